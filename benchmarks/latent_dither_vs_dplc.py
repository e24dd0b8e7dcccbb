"""The polar code in G*'s latent against the train stage's DPLC into the same G*.

    python benchmarks/latent_dither_vs_dplc.py --checkpoint DIR [--rates 1 4 16]

DPLC at code channels C is the train stage's codec (``runs/train/dplc_wpp/C``), trained into
the generator stage's G* (``runs/generator/wpp``). The polar code (``dplc.latent_polar``, E's
latents whitened) takes E from a checkpoint of that generator job (``DIR/last.pt``, copied while
it ran, maybe short of its last step: the stage keeps G* only) and decodes through the *same*
G*, at DPLC's bits per image. Per rate, on the test images:

- DPLC's MSE (one noise draw per image), its decoded latents' held-out MMD in null s.d. (2,000
  images) and its final λ_rate;
- the polar code's MSE, the same with an independent dither (a private-noise codec with the
  same cells), its latents' MMD, its bits, and its limit |x − G*(t)|² (t the whitened latent).

Writes ``reports/bench/latent_dither_vs_dplc.json`` with the machine and package versions.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch import Tensor

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.latent_dither import checkpoint_method, decode_through, encode, images  # noqa: E402
from dplc import latent_polar, realism  # noqa: E402
from dplc.codec import Codec  # noqa: E402
from pipelines import environment  # noqa: E402
from pipelines import layout as L  # noqa: E402
from pipelines import params as P  # noqa: E402

OUT = ROOT / "reports" / "bench" / "latent_dither_vs_dplc.json"
HOLDOUT = 2000


@torch.no_grad()
def dplc_figures(codec: Codec, x: Tensor, null: realism.NullSpread) -> dict:
    """DPLC's MSE with one private noise draw per image (seeded) and its latents' MMD."""
    g = torch.Generator().manual_seed(1)
    errors, latents = [], []
    for chunk in x.split(500):
        noise = codec.draw_noise(chunk.shape[0], g)
        z = codec.latent(codec.code(chunk, noise), noise)
        errors.append((codec.generator(z) - chunk).pow(2).flatten(1).mean(1))
        latents.append(z.flatten(1))
    return {"bits": codec.bits_per_image, "mse": float(torch.cat(errors).mean()),
            "latent_mmd_sd": realism.latent_mmd_sd(torch.cat(latents)[:HOLDOUT], null, seed=0),
            "lambda_rate": codec.meta.get("lambda_rate")}  # fmt: skip


def polar_figures(code: latent_polar.LatentPolarCode, generator: torch.nn.Module, z: Tensor, x: Tensor,
                  seed: int, null: realism.NullSpread) -> dict:  # fmt: skip
    u = latent_polar.dither(seed, z.shape[0], code.dim)
    other = latent_polar.dither(seed + 10_000, z.shape[0], code.dim)
    m = code.encode(z, u)
    z_hat = code.decode(m, u)
    return {"bits_used": code.bits, "mse": float((decode_through(generator, z_hat) - x).pow(2).mean()),
            "mse_private_dither": float((decode_through(generator, code.decode(m, other)) - x).pow(2).mean()),
            "latent_mmd_sd": realism.latent_mmd_sd(z_hat[:HOLDOUT].float(), null, seed=0),
            "limit_mse": float((decode_through(generator, (z - code.shift) @ code.whiten) - x).pow(2).mean())}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, required=True, help="folder with the wpp job's last.pt")
    ap.add_argument("--rates", type=int, nargs="+", default=[1, 4, 16], help="code channels C")
    ap.add_argument("--train-images", type=int, default=20_000)
    args = ap.parse_args()
    params = P.load()
    x = images(params, "test", None)
    x_train = images(params, "train", args.train_images)
    step, method = checkpoint_method(params, args.checkpoint)
    encoder = method.encoder.eval()
    generator = Codec.load(L.generator_codec("wpp")).generator.eval()
    t0 = time.time()
    z, z_train = encode(encoder, x).double(), encode(encoder, x_train).double()
    null = realism.mmd_null(HOLDOUT, z.shape[1], seed=0)
    axes, weights = latent_polar.principal_axes(generator, z.shape[1])
    rows = []
    for c in args.rates:
        dplc = dplc_figures(Codec.load(L.codec_dir("dplc_wpp", c)).eval(), x, null)
        code = latent_polar.fit(z_train, axes, weights, dplc["bits"])
        polar = polar_figures(code, generator, z, x, c + 1, null)
        rows.append({"code_channels": c, "dplc": dplc, "polar": polar, "polar_over_dplc": polar["mse"] / dplc["mse"]})
        print(f"C={c} ({dplc['bits']:g} bits): DPLC {dplc['mse']:.4f} ({dplc['latent_mmd_sd']:.2f} sd), polar "
              f"{polar['mse']:.4f} ({polar['latent_mmd_sd']:.2f} sd; private dither {polar['mse_private_dither']:.4f}; "
              f"limit {polar['limit_mse']:.4f}), polar/DPLC {rows[-1]['polar_over_dplc']:.3f}", flush=True)  # fmt: skip
    out = {"encoder_checkpoint_step": step, "images": int(x.shape[0]), "rows": rows,
           "seconds": round(time.time() - t0, 1), "environment": environment.describe()}  # fmt: skip
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)} in {out['seconds']} s")


if __name__ == "__main__":
    main()
