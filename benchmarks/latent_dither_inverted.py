"""The polar latent code on latents inverted through G*: does an encoder nearer G*'s inverse lift
the code's limit?

    python benchmarks/latent_dither_inverted.py --checkpoint DIR [--steps 0 50 200] [--images 2000]

The polar code (``dplc.latent_polar``) decodes G*(ẑ) from the whitened latent t of an encoder,
so its MSE cannot fall below |x − G*(t)|², which the encoder sets: 0.0748 for the Wasserstein++
E (``benchmarks/latent_dither.py``), while G*'s free inversion floor, min_z |x − G*(z)|², is
near 0.03 (``benchmarks/realistic_floor.py``). Here the encoder is E followed by ``s`` Adam
steps per image on |x − G*(z)|² (learning rate ``--lr``), for each ``s`` of ``--steps``: an
encoder that costs s forward and backward passes through G* per image, and that depends on the
image alone (no batch statistic), so it is a per-image encoder a codec could run. The whitening
and the code's split are fitted on ``--train-images`` training images inverted the same way.

Per ``s``: the limit raw and whitened, the inverted latents' held-out MMD and moment gap in
null s.d. raw and whitened, and per rate the whitened code's readings of
``benchmarks/latent_dither.py`` (MSE, the same cells with a private dither, PV over 8 shared
seeds, the decoded latents' MMD and moments, rFID through the feature network when its weights
are there, the messages' entropy and packed size). Realism is the decoded latents' MMD ≤ 2 null
s.d.: the polar code is exact only for inputs whose whitened law is N(0, I), so the inverted
latents' own law decides it. Writes ``reports/bench/latent_dither_inverted.json`` with the
machine and package versions.
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

from benchmarks.latent_dither import (  # noqa: E402
    HOLDOUT,
    checkpoint_method,
    decode_through,
    encode,
    images,
    measure,
    readings,
)
from benchmarks.latent_dither_vs_dplc import dplc_figures  # noqa: E402
from dplc import latent_polar, realism  # noqa: E402
from dplc.codec import Codec  # noqa: E402
from dplc.methods import generator_of  # noqa: E402
from pipelines import environment  # noqa: E402
from pipelines import layout as L  # noqa: E402
from pipelines import params as P  # noqa: E402

OUT = ROOT / "reports" / "bench" / "latent_dither_inverted.json"
CHUNK = 1000


def invert(generator: torch.nn.Module, x: Tensor, z: Tensor, steps: int, lr: float) -> Tensor:
    """``z`` moved by ``steps`` Adam steps per image on |x − G*(z)|², chunk by chunk (each image's
    latent sees its own error only, so the result does not depend on the chunking)."""
    out = []
    for xc, zc in zip(x.split(CHUNK), z.float().split(CHUNK), strict=True):
        zc = zc.clone().requires_grad_(True)
        opt = torch.optim.Adam([zc], lr=lr)
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            (generator(zc) - xc).pow(2).flatten(1).mean(1).sum().backward()
            opt.step()
        out.append(zc.detach())
    return torch.cat(out).double()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, required=True, help="folder with the wpp job's last.pt")
    ap.add_argument("--steps", type=int, nargs="+", default=[0, 50, 200])
    ap.add_argument("--lr", type=float, default=0.02)
    ap.add_argument("--bits", type=float, nargs="+", default=[16.0, 64.0, 256.0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--train-images", type=int, default=4000)
    ap.add_argument("--featnet", type=Path, default=L.featnet_weights())
    ap.add_argument("--generator", choices=("stage", "checkpoint"), default="stage",
                    help="G*: the generator stage's export (the one DPLC is trained into) or the checkpoint's weight average")
    ap.add_argument("--dplc-rates", type=int, nargs="*", default=[], help="code channels C of train-stage DPLC codecs to measure on the same images")
    args = ap.parse_args()
    featnet = args.featnet if args.featnet.is_file() else None
    params = P.load()
    step, method = checkpoint_method(params, args.checkpoint)
    encoder = method.encoder.eval()
    generator = (Codec.load(L.generator_codec("wpp")).generator if args.generator == "stage" else generator_of(method)).eval()
    generator.requires_grad_(False)
    x, x_train = images(params, "test", args.images), images(params, "train", args.train_images)
    t0 = time.time()
    z0, z0_train = encode(encoder, x), encode(encoder, x_train)
    dim = z0.shape[1]
    null, mnull = realism.mmd_null(min(HOLDOUT, z0.shape[0]), dim, seed=0), realism.moment_null(z0.shape[0], dim)
    axes, weights = latent_polar.principal_axes(generator, dim)
    runs = []
    for s in args.steps:
        t1 = time.time()
        z, z_train = invert(generator, x, z0, s, args.lr), invert(generator, x_train, z0_train, s, args.lr)
        seconds = time.time() - t1
        shift, whiten = latent_polar.whitening(z_train)
        t = (z - shift) @ whiten
        run = {"steps": s, "invert_seconds": round(seconds, 1),
               "limit_raw": float((decode_through(generator, z) - x).pow(2).mean()),
               "limit_whitened": float((decode_through(generator, t) - x).pow(2).mean()),
               "raw": readings(z, null, mnull), "whitened": readings(t, null, mnull), "rows": []}  # fmt: skip
        print(f"{s} steps ({seconds:.0f} s): limit {run['limit_raw']:.4f} raw, {run['limit_whitened']:.4f} whitened; "
              f"latents {run['raw']['latent_mmd_sd']:.2f} raw, {run['whitened']['latent_mmd_sd']:.2f} whitened null s.d.", flush=True)  # fmt: skip
        for bits in args.bits:
            base = latent_polar.fit(z_train, axes, weights, bits)
            code = latent_polar.LatentPolarCode(shift, whiten, base.axes, base.rings)
            r = measure(code, generator, z, x, bits, null, mnull, featnet)
            run["rows"].append(r)
            print(f"   {bits:6.0f} bits ({r['bits_used']:.1f} used): MSE {r['mse']:.4f}, private dither {r['mse_private_dither']:.4f}, "
                  f"PV {r['pv']:.4f}, MMD {r['latent_mmd_sd']:.2f} sd, moments {r['latent_moment_sd']:.1f} sd, rFID {r['rfid']}", flush=True)  # fmt: skip
        runs.append(run)
    dplc = {}
    for c in args.dplc_rates:
        dplc[c] = dplc_figures(Codec.load(L.codec_dir("dplc_wpp", c)).eval(), x, null)
        print(f"DPLC C={c} ({dplc[c]['bits']:g} bits): MSE {dplc[c]['mse']:.4f}, MMD {dplc[c]['latent_mmd_sd']:.2f} sd", flush=True)
    out = {"checkpoint_step": step, "generator": args.generator, "images": int(x.shape[0]), "train_images": int(x_train.shape[0]), "lr": args.lr,
           "runs": runs, "dplc": dplc, "seconds": round(time.time() - t0, 1), "environment": environment.describe()}  # fmt: skip
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)} in {out['seconds']} s")


if __name__ == "__main__":
    main()
