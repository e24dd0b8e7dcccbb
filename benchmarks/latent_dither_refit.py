"""E fitted into the frozen G*: does a better inverse lower the polar latent code's limit?

    python benchmarks/latent_dither_refit.py --checkpoint DIR [--steps 800] [--bits 16 64 256]

The polar code (``dplc.latent_polar``) decodes G*(t̂) with t the whitened latent of E, so it
cannot go below |x − G*(t)|², which E sets. E comes from a Wasserstein++ generator job's
checkpoint (``DIR/last.pt``): it was trained with the live generator, while G* (the generator
stage's export, ``runs/generator/wpp``) is that generator's weight average. Here a copy of E is
trained ``--steps`` more into the frozen G* with the Wasserstein++ autoencoder terms,
√(batch MSE) + λ_mmd·MMD(E(x), N(0, I)) (λ_mmd from the params, batch 64, Adam 1e-4, training
images), and for E and the refitted E: the limit raw and whitened, E(X)'s latent MMD in null
s.d., and the whitened polar code's MSE and decoded-latent MMD at each rate (10,000 test
images). Writes ``reports/bench/latent_dither_refit.json`` with the machine and package versions.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import torch
from torch import Tensor

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.latent_dither import checkpoint_method, decode_through, encode, images  # noqa: E402
from dplc import latent_polar, losses, realism  # noqa: E402
from dplc.codec import Codec  # noqa: E402
from pipelines import environment  # noqa: E402
from pipelines import layout as L  # noqa: E402
from pipelines import params as P  # noqa: E402

OUT = ROOT / "reports" / "bench" / "latent_dither_refit.json"
HOLDOUT = 2000


def refit(encoder: torch.nn.Module, generator: torch.nn.Module, x_train: Tensor, steps: int, lambda_mmd: float) -> torch.nn.Module:
    """A copy of ``encoder`` trained into the frozen ``generator`` (seeded batches and prior draws)."""
    enc = copy.deepcopy(encoder).train()
    generator.requires_grad_(False)
    opt = torch.optim.Adam(enc.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        x = x_train[torch.randint(0, x_train.shape[0], (64,), generator=g)]
        z = enc(x).flatten(1)
        loss = losses.sqrt_mse(generator(z), x) + lambda_mmd * losses.mmd_imq(z, torch.randn(z.shape, generator=g))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return enc.eval()


def figures(encoder: torch.nn.Module, generator: torch.nn.Module, x: Tensor, x_train: Tensor, bits: list[float],
            null: realism.NullSpread) -> dict:  # fmt: skip
    z, z_train = encode(encoder, x).double(), encode(encoder, x_train[:20_000]).double()
    axes, weights = latent_polar.principal_axes(generator, z.shape[1])
    shift, whiten = latent_polar.whitening(z_train)
    t = (z - shift) @ whiten
    out = {"limit_raw": float((decode_through(generator, z) - x).pow(2).mean()),
           "limit_whitened": float((decode_through(generator, t) - x).pow(2).mean()),
           "latent_mmd_sd_raw": realism.latent_mmd_sd(z[:HOLDOUT].float(), null, seed=0),
           "latent_mmd_sd_whitened": realism.latent_mmd_sd(t[:HOLDOUT].float(), null, seed=0), "rows": []}  # fmt: skip
    for b in bits:
        code = latent_polar.fit(z_train, axes, weights, b)
        u = latent_polar.dither(int(b) + 1, z.shape[0], code.dim)
        z_hat = code.decode(code.encode(z, u), u)
        out["rows"].append({"bits": b, "bits_used": code.bits, "mse": float((decode_through(generator, z_hat) - x).pow(2).mean()),
                            "latent_mmd_sd": realism.latent_mmd_sd(z_hat[:HOLDOUT].float(), null, seed=0)})  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, required=True, help="folder with the wpp job's last.pt")
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--bits", type=float, nargs="+", default=[16.0, 64.0, 256.0])
    args = ap.parse_args()
    params = P.load()
    x = images(params, "test", None)
    x_train = images(params, "train", None)
    cfg = P.train_config(params, "wpp")
    step, method = checkpoint_method(params, args.checkpoint)
    generator = Codec.load(L.generator_codec("wpp")).generator.eval()
    null = realism.mmd_null(HOLDOUT, cfg.net.latent_dim, seed=0)
    t0 = time.time()
    out = {"encoder_checkpoint_step": step, "refit_steps": args.steps, "lambda_mmd": cfg.method.lambda_mmd}
    out["E"] = figures(method.encoder.eval(), generator, x, x_train, args.bits, null)
    t1 = time.time()
    fitted = refit(method.encoder, generator, x_train, args.steps, cfg.method.lambda_mmd)
    out["refit_seconds"] = round(time.time() - t1, 1)
    out["E_refit"] = figures(fitted, generator, x, x_train, args.bits, null)
    for name in ("E", "E_refit"):
        f = out[name]
        print(f"{name}: limit {f['limit_raw']:.4f} raw, {f['limit_whitened']:.4f} whitened; latents "
              f"{f['latent_mmd_sd_raw']:.2f} / {f['latent_mmd_sd_whitened']:.2f} null s.d.; "
              + ", ".join(f"{r['bits']:g} bits {r['mse']:.4f} ({r['latent_mmd_sd']:.2f})" for r in f["rows"]))  # fmt: skip
    out |= {"seconds": round(time.time() - t0, 1), "environment": environment.describe()}
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)} in {out['seconds']} s")


if __name__ == "__main__":
    main()
