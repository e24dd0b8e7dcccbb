"""The polar dither code in the latent space of the Gaussian stage's frozen G*: an explicit B.

    python benchmarks/gaussian_dither_latent.py [--vectors 200000]

DPLC decodes G*(B(code, noise)) and asks B's latents to follow G*'s prior N(0, I). Here the
code is ``dplc.polar_dither`` applied to the latent z = E(x) of G*'s own WAE encoder (trained
with G*, as the ``gaussian`` stage trains it; the stage keeps only G*). The encoder and decoder
share the dither. The latent is first rotated by V from the SVD A = U·S·Vᵀ of G*'s least-squares
linear fit x ≈ A·z + b, so the pairs are ordered by their weight sᵢ² in x. A rotation keeps
N(0, I), so the decoded latent ẑ = V·(decoded rotated latent) has exactly E(X)'s law. When that
law is N(0, I), the decodes have exactly G*'s law, the same target DPLC's realism constraint
sets. What is left to measure is whether E(X) is N(0, I): the held-out latent MMD in null s.d.
(as for DPLC's B), and the decodes' variance errors and quantile W₂² against the source.

G* and its encoder are those of the stage: the same seed, steps and torch thread count
(``dplc.gaussian.train_autoencoder``). The stage itself codes this way with ``gaussian.shared:
polar`` (``dplc.gaussian_study.polar_figures``); this benchmark adds the inversion floor and the
encoder's own realism.
Per rate of the stage: the layout, MSE / (2·D_K) with the stage's D_K, the MSE with an
independent dither at the decoder, the realism readings, beside G*'s inversion floor
|x − G*(E(x))|². Writes ``reports/bench/gaussian_dither_latent.json`` with the machine and
package versions.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import yaml
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dplc.gaussian as G  # noqa: E402
from dplc import polar_dither  # noqa: E402
from dplc.gaussian_bounds import lloyd_distortion, quantile_w2_squared  # noqa: E402
from dplc.latent_polar import principal_axes  # noqa: E402
from dplc.realism import latent_mmd_sd, mmd_null  # noqa: E402
from pipelines import environment  # noqa: E402

OUT = ROOT / "reports" / "bench" / "gaussian_dither_latent.json"


def stage_generator(cfg: G.GaussianConfig) -> tuple[nn.Module, nn.Module]:
    """(encoder, G*) trained exactly as ``dplc.gaussian_study.run`` trains G*."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    return G.train_autoencoder(cfg, G.Source(cfg.variances, cfg.seed))


@torch.no_grad()
def code_latents(z: torch.Tensor, v: torch.Tensor, weights: tuple[float, ...], bits: float,
                 seed: int) -> tuple[torch.Tensor, torch.Tensor, list[str]]:  # fmt: skip
    """Decoded latents with the encoder's dither and with an independent one, and the layout."""
    layout = polar_dither.design(weights, bits)
    gen = torch.Generator().manual_seed(seed)
    u = torch.rand(z.shape[0], 2 * len(layout), generator=gen, dtype=torch.float64)
    other = torch.rand(z.shape[0], 2 * len(layout), generator=gen, dtype=torch.float64)
    unit = (1.0,) * len(weights)  # the rotated latent is N(0, I): unit variances to the code
    rotated = z.double() @ v
    m = polar_dither.encode(rotated, unit, layout, u)
    right, wrong = (polar_dither.decode(m, unit, layout, w) @ v.T for w in (u, other))
    return right.float(), wrong.float(), [repr(g) for g in layout]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--vectors", type=int, default=200_000, help="test vectors per rate")
    args = p.parse_args()
    cfg = G.GaussianConfig.from_dict(yaml.safe_load((ROOT / "params.yaml").read_text())["gaussian"])
    t0 = time.time()
    enc, gen = stage_generator(cfg)
    v, s2 = principal_axes(gen, cfg.dim, n=100_000)
    weights = tuple(s2)
    x = G.Source(cfg.variances, cfg.seed + 31).sample(args.vectors)
    reference = G.Source(cfg.variances, cfg.seed + 32).sample(args.vectors)
    with torch.no_grad():
        z = enc(x)
        floor = float((gen(z) - x).pow(2).mean())
        holdout = enc(G.Source(cfg.variances, cfg.seed + 33).sample(cfg.realism_holdout))
    null = mmd_null(cfg.realism_holdout, cfg.dim, seed=cfg.seed)
    rows = []
    for c in cfg.rates:
        bits = cfg.bits(c)
        right, wrong, layout = code_latents(z, v, weights, bits, cfg.seed + 34 + c)
        with torch.no_grad():
            x_hat, x_wrong = gen(right), gen(wrong)
        mse, d_k = float((x_hat - x).pow(2).mean()), lloyd_distortion(cfg.variances, bits, seed=cfg.seed + 5)
        rows.append({"bits": bits, "layout": layout, "mse": mse, "d_k": d_k, "mse_over_2dk": mse / (2 * d_k),
                     "mse_wrong_dither": float((x_wrong - x).pow(2).mean()),
                     "variance_error": G.variance_errors(x_hat, cfg.variances),
                     "variance_error_wrong_dither": G.variance_errors(x_wrong, cfg.variances),
                     "quantile_w2": quantile_w2_squared(x_hat, reference),
                     "quantile_w2_null": quantile_w2_squared(x, reference)})  # fmt: skip
    with torch.no_grad():
        g_samples = gen(torch.randn(args.vectors, cfg.dim, generator=torch.Generator().manual_seed(7)))
    out = {"rows": rows, "latent_weights": list(weights), "inversion_floor_mse": floor,
           "encoder_latent_mmd_sd": latent_mmd_sd(holdout, null, seed=cfg.seed),
           "generator_variance_error": G.variance_errors(g_samples, cfg.variances),
           "vectors": args.vectors, "seconds": round(time.time() - t0, 1), "environment": environment.describe()}  # fmt: skip
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"latent weights s² {', '.join(f'{w:.3f}' for w in weights)}; inversion floor {floor:.4f}; "
          f"E(X)'s held-out latent MMD {out['encoder_latent_mmd_sd']:.2f} null s.d.; G*'s variance errors "
          + ", ".join(f"{e:+.3f}" for e in out["generator_variance_error"]))  # fmt: skip
    print("bits  MSE/(2·D_K)  largest variance error  wrong-dither MSE ×  layout")
    for r in rows:
        print(f"{r['bits']:4.0f}  {r['mse_over_2dk']:11.3f}  {max(map(abs, r['variance_error'])):22.4f}  "
              f"{r['mse_wrong_dither'] / r['mse']:18.2f}  {' '.join(r['layout'])}")  # fmt: skip
    print(f"wrote {OUT.relative_to(ROOT)} ({out['seconds']} s)")


if __name__ == "__main__":
    main()
