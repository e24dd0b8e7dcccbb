"""The polar dither code in the image G*'s latent, through the Wasserstein++ encoder: a first look.

    python benchmarks/latent_dither.py --checkpoint DIR [--bits 16 64] [--images 10000]

The Gaussian source's study (``benchmarks/gaussian_dither_latent.py``) codes G*'s latent with
``dplc.polar_dither``: exactly N(0, I) decoded latents when the encoder's latents are N(0, I).
Here the same on images. E and G* come from a Wasserstein++ generator job's checkpoint
(``DIR/last.pt``; the generator stage exports G* only and deletes its checkpoints when the job
ends, so the checkpoint is one copied while the job ran, maybe short of its last step). G* is
that checkpoint's (``dplc.methods.generator_of``: its weight average), E its live encoder, so
the two are of the same step.

- the latent z = E(x) (32-d) is rotated by V from the SVD A = U·S·Vᵀ of G*'s least-squares
  linear fit x ≈ A·z + b on prior latents, so that latent pairs are ordered by their weight s²
  in pixels (rotations keep N(0, I));
- consecutive rotated coordinates form 16 pairs. The budget of R bits is split over them by a
  Lagrangian on Σ log₂ Mₚ ≤ R. Each pair's error per message count comes from
  ``polar_dither.best_rings``, at most ``PAIR_BUDGET`` messages each, weighted by (s²ₐ + s²_b)/2;
- decode: G*(V·ẑ).

Reports per rate the test MSE on the [−1, 1] scale, the same with an independent dither at the
decoder, and E(X)'s held-out latent MMD in null s.d. (2,000 test images), the one reading the
code's realism rests on. Alongside: G*(E(x))'s MSE, the code's limit at infinite rate. Writes
``reports/bench/latent_dither.json`` with the machine and package versions.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
from torch import Tensor

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dplc import data, polar_dither, realism  # noqa: E402
from dplc.methods import generator_of  # noqa: E402
from dplc.train import CHECKPOINT_NAME, load_checkpoint, new_method  # noqa: E402
from pipelines import environment  # noqa: E402
from pipelines import layout as L  # noqa: E402
from pipelines import params as P  # noqa: E402

OUT = ROOT / "reports" / "bench" / "latent_dither.json"
PAIR_BUDGET = 1024
"""The most messages one latent pair gets (10 bits): ``best_rings``'s tables grow with it."""
HOLDOUT = 2000


def frontier(budget: int) -> list[tuple[int, float, tuple[int, ...]]]:
    """(messages, standard 2-d error, rings) with the least error at each message count ≤ budget,
    over 1–``polar_dither.MAX_RING_SYMBOLS`` radius symbols."""
    best: dict[int, tuple[float, tuple[int, ...]]] = {}
    for radius_symbols in range(1, polar_dither.MAX_RING_SYMBOLS + 1):
        for m, (err, rings) in polar_dither.best_rings(radius_symbols, budget).items():
            if m not in best or err < best[m][0]:
                best[m] = (err, rings)
    return [(m, *best[m]) for m in sorted(best)]


def split(weights: list[float], bits: float, front: list[tuple[int, float, tuple[int, ...]]]) -> list[tuple[int, ...]]:
    """Rings per pair minimising Σ wₚ·err(Mₚ) subject to Σ log₂ Mₚ ≤ ``bits``: each pair's
    choice at a slope μ, μ found by bisection (the most rate that fits)."""

    def choose(mu: float) -> list[tuple[int, float, tuple[int, ...]]]:
        return [min(front, key=lambda f: w * f[1] + mu * math.log2(f[0])) for w in weights]

    lo, hi = 1e-9, 1e6  # small μ: much rate; large μ: none
    for _ in range(100):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if sum(math.log2(f[0]) for f in choose(mid)) > bits else (lo, mid)
    return [f[2] for f in choose(hi)]


@torch.no_grad()
def principal_axes(generator: torch.nn.Module, dim: int, n: int = 8192) -> tuple[Tensor, list[float]]:
    """V and s² of the SVD of A in G*'s least-squares linear fit x ≈ A·z + b on prior latents."""
    z = torch.randn(n, dim, generator=torch.Generator().manual_seed(21))
    x = torch.cat([generator(c).flatten(1) for c in z.split(512)])
    a = torch.linalg.lstsq((z - z.mean(0)).double(), (x - x.mean(0)).double()).solution.T
    _, s, vh = torch.linalg.svd(a, full_matrices=False)
    return vh.T, [float(v) for v in s**2]


@torch.no_grad()
def decode_through(generator: torch.nn.Module, z: Tensor) -> Tensor:
    return torch.cat([generator(c.float()) for c in z.split(500)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, required=True, help="folder with the wpp job's last.pt")
    ap.add_argument("--bits", type=float, nargs="+", default=[16.0, 64.0])
    ap.add_argument("--images", type=int, default=10_000)
    args = ap.parse_args()
    params = P.load()
    torch.set_num_threads(int(params["ray"]["threads_per_worker"]))
    method = new_method(P.train_config(params, "wpp"))
    step = load_checkpoint(args.checkpoint / CHECKPOINT_NAME, method)
    encoder, generator = method.encoder.eval(), generator_of(method).eval()
    split_ = data.read_split(L.prepared_dir(), "test", limit=args.images)
    x = data.to_float(data.to_tensor(split_.images, int(params["data"]["image_size"])))
    t0 = time.time()
    with torch.no_grad():
        z = torch.cat([encoder(c) for c in x.split(500)]).flatten(1)
    dim = z.shape[1]
    null = realism.mmd_null(HOLDOUT, dim, seed=0)
    latent_sd = realism.latent_mmd_sd(z[:HOLDOUT], null, seed=0)
    floor = float((decode_through(generator, z) - x).pow(2).mean())
    v, s2 = principal_axes(generator, dim)
    weights = [(s2[2 * p] + s2[2 * p + 1]) / 2 for p in range(dim // 2)]
    front = frontier(PAIR_BUDGET)
    rows = []
    for bits in args.bits:
        rings = split(weights, bits, front)
        layout = tuple(polar_dither.Pair((2 * p, 2 * p + 1), r) for p, r in enumerate(rings))
        gen = torch.Generator().manual_seed(int(bits))
        u = torch.rand(z.shape[0], 2 * len(layout), generator=gen, dtype=torch.float64)
        other = torch.rand(z.shape[0], 2 * len(layout), generator=gen, dtype=torch.float64)
        rotated = z.double() @ v
        # pair by pair: one mixed-radix message would overflow int64 past 62 bits
        per_pair = [polar_dither.encode(rotated[:, 2 * p : 2 * p + 2], (1.0, 1.0), (polar_dither.Pair((0, 1), g.rings),),
                                        u[:, 2 * p : 2 * p + 2]) for p, g in enumerate(layout)]  # fmt: skip

        def decoded(dither: Tensor, per_pair: list[Tensor] = per_pair, layout: tuple = layout) -> Tensor:
            parts = [polar_dither.decode(mp, (1.0, 1.0), (polar_dither.Pair((0, 1), g.rings),), dither[:, 2 * p : 2 * p + 2])
                     for p, (mp, g) in enumerate(zip(per_pair, layout, strict=True))]  # fmt: skip
            return torch.cat(parts, 1) @ v.T

        z_hat, z_wrong = decoded(u), decoded(other)
        mse = float((decode_through(generator, z_hat) - x).pow(2).mean())
        mse_wrong = float((decode_through(generator, z_wrong) - x).pow(2).mean())
        used = sum(math.log2(g.messages) for g in layout)
        rows.append({"bits": bits, "bits_used": used, "rings": [list(r) for r in rings], "mse": mse,
                     "mse_wrong_dither": mse_wrong,
                     "decoded_latent_mmd_sd": realism.latent_mmd_sd(z_hat[:HOLDOUT].float(), null, seed=0)})  # fmt: skip
        print(f"{bits:6.0f} bits ({used:.1f} used): MSE {mse:.4f}, wrong dither {mse_wrong:.4f}, "
              f"pairs coded {sum(g.messages > 1 for g in layout)}")  # fmt: skip
    out = {"checkpoint_step": step, "images": int(x.shape[0]), "encoder_latent_mmd_sd": latent_sd,
           "generator_of_encoder_mse": floor, "latent_weights": s2, "rows": rows,
           "seconds": round(time.time() - t0, 1), "environment": environment.describe()}  # fmt: skip
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"E(X) latent MMD {latent_sd:.2f} null s.d.; |x − G*(E(x))|² {floor:.4f}; wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
