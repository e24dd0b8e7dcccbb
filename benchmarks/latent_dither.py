"""The polar dither code in the image G*'s latent, through the Wasserstein++ encoder.

    python benchmarks/latent_dither.py --checkpoint DIR [--bits 16 64 256 1024] [--images 10000]

``dplc.latent_polar`` codes E(x) pair by pair with ``dplc.polar_dither``, shared dither, and
decodes G*(ẑ). E and G* come from a Wasserstein++ generator job's checkpoint (``DIR/last.pt``;
the generator stage exports G* only and deletes its checkpoints when the job ends, so the
checkpoint is one copied while the job ran, maybe short of its last step). G* is that
checkpoint's weight average (``dplc.methods.generator_of``), E its live encoder, so the two are
of the same step.

Per rate and for two forms of the code, E's raw latents (no whitening) and the ZCA-whitened ones
(``latent_polar.whitening`` of ``--train-images`` training latents):

- the test MSE on the [−1, 1] scale, and the same decoded with an independent dither (a
  private-noise code with the same cells and the same output law);
- the decoded latents' held-out MMD against N(0, I) in null s.d. (2,000 test images) and their
  moment gap in null s.d. (all test images), the readings realism rests on;
- PV = E Var(X̂ | X) over 8 shared seeds with re-encoding each time (1,000 test images);
- with ``--featnet`` (the featnet stage's weights, default where the stage writes them, skipped
  when absent): rFID against the test images, beside G*'s sample FID (as many prior samples);
- the messages' empirical entropy per pair, summed (``bits_entropy``): what an entropy coder of
  each pair would spend, against the fixed-length ``bits_used`` and the whole bytes
  ``latent_polar.pack`` writes per image (``bits_packed``; checked to read back).

Alongside: E(X)'s own readings raw and whitened, and G*(t)'s MSE with t the encoder's latent
(raw, whitened), the code's limits at infinite rate. A pair gets at most
``latent_polar.PAIR_BUDGET`` messages, so a rate above that many bits per pair spends less than
its budget: ``bits_used`` says what it spent. Writes ``reports/bench/latent_dither.json`` with
the machine and package versions.
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

from dplc import data, latent_polar, metrics, realism  # noqa: E402
from dplc.method import Method  # noqa: E402
from dplc.methods import generator_of  # noqa: E402
from dplc.train import CHECKPOINT_NAME, load_checkpoint, new_method  # noqa: E402
from pipelines import environment  # noqa: E402
from pipelines import layout as L  # noqa: E402
from pipelines import params as P  # noqa: E402

OUT = ROOT / "reports" / "bench" / "latent_dither.json"
HOLDOUT = 2000
PV_IMAGES = 1000
PV_SEEDS = 8


@torch.no_grad()
def decode_through(generator: torch.nn.Module, z: Tensor) -> Tensor:
    return torch.cat([generator(c.float()) for c in z.split(500)])


def images(params: dict, split: str, limit: int | None) -> Tensor:
    s = data.read_split(L.prepared_dir(), split, limit=limit)
    return data.to_float(data.to_tensor(s.images, int(params["data"]["image_size"])))


def checkpoint_method(params: dict, checkpoint: Path) -> tuple[int, Method]:
    """The Wasserstein++ job's method restored from ``checkpoint/last.pt``, and its step."""
    torch.set_num_threads(int(params["ray"]["threads_per_worker"]))
    method = new_method(P.train_config(params, "wpp"))
    return load_checkpoint(checkpoint / CHECKPOINT_NAME, method), method


@torch.no_grad()
def encode(encoder: torch.nn.Module, x: Tensor) -> Tensor:
    """E's flattened latents of ``x``, in chunks."""
    return torch.cat([encoder(c) for c in x.split(500)]).flatten(1)


def readings(z: Tensor, null: realism.NullSpread, mnull: realism.NullSpread) -> dict[str, float]:
    return {"latent_mmd_sd": realism.latent_mmd_sd(z[:HOLDOUT].float(), null, seed=0),
            "latent_moment_sd": realism.latent_moment_sd(z.float(), mnull)}  # fmt: skip


def entropy_bits(messages: Tensor) -> float:
    """Σ over pairs of the empirical entropy of the pair's messages, bits per image: what an
    entropy coder of each pair's messages would spend, against the fixed-length Σ log₂ Mₚ."""
    total = 0.0
    for column in messages.T:
        p = torch.bincount(column).double() / column.numel()
        p = p[p > 0]
        total -= float((p * p.log2()).sum())
    return total


def fid(x: Tensor, fake: Tensor, featnet: Path | None) -> float | None:
    return None if featnet is None else metrics.fid_kid(x, fake.clamp(-1, 1), featnet)["fid_featnet"]


def measure(code: latent_polar.LatentPolarCode, generator: torch.nn.Module, z: Tensor, x: Tensor, bits: float,
            null: realism.NullSpread, mnull: realism.NullSpread, featnet: Path | None) -> dict:  # fmt: skip
    seed = int(bits) + 1
    u = latent_polar.dither(seed, z.shape[0], code.dim)
    other = latent_polar.dither(seed + 10_000, z.shape[0], code.dim)
    messages = code.encode(z, u)
    if not torch.equal(latent_polar.unpack(latent_polar.pack(messages, code.rings), code.rings, z.shape[0]), messages):
        raise AssertionError("the packed messages do not read back")
    z_hat = code.decode(messages, u)
    x_hat = decode_through(generator, z_hat)
    mse = float((x_hat - x).pow(2).mean())
    mse_private = float((decode_through(generator, code.decode(messages, other)) - x).pow(2).mean())
    with torch.no_grad():
        draws = torch.stack([decode_through(generator, code.decode(code.encode(z[:PV_IMAGES], v), v))
                             for v in (latent_polar.dither(seed + 100 + k, PV_IMAGES, code.dim) for k in range(PV_SEEDS))])  # fmt: skip
    return {"bits": bits, "bits_used": code.bits, "bits_entropy": entropy_bits(messages),
            "bits_packed": 8 * latent_polar.image_bytes(code.rings), "rings": [list(r) for r in code.rings], "mse": mse,
            "mse_private_dither": mse_private, "pv": float(draws.var(0).mean()), "rfid": fid(x, x_hat, featnet), **readings(z_hat, null, mnull)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, required=True, help="folder with the wpp job's last.pt")
    ap.add_argument("--bits", type=float, nargs="+", default=[16.0, 64.0, 256.0, 1024.0])
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--train-images", type=int, default=20_000)
    ap.add_argument("--featnet", type=Path, default=L.featnet_weights())
    args = ap.parse_args()
    featnet = args.featnet if args.featnet.is_file() else None
    params = P.load()
    step, method = checkpoint_method(params, args.checkpoint)
    encoder, generator = method.encoder.eval(), generator_of(method).eval()
    x, x_train = images(params, "test", args.images), images(params, "train", args.train_images)
    t0 = time.time()
    z, z_train = encode(encoder, x).double(), encode(encoder, x_train).double()
    dim = z.shape[1]
    null, mnull = realism.mmd_null(HOLDOUT, dim, seed=0), realism.moment_null(z.shape[0], dim)
    axes, weights = latent_polar.principal_axes(generator, dim)
    eye = torch.eye(dim, dtype=torch.float64)
    forms: dict[str, dict] = {}
    for form in ("raw", "whitened"):
        shift, whiten = latent_polar.whitening(z_train) if form == "whitened" else (torch.zeros(dim, dtype=torch.float64), eye)
        t = (z - shift) @ whiten
        rows = []
        for bits in args.bits:
            base = latent_polar.fit(z_train, axes, weights, bits)
            code = latent_polar.LatentPolarCode(shift, whiten, base.axes, base.rings)
            rows.append(measure(code, generator, z, x, bits, null, mnull, featnet))
            r = rows[-1]
            print(f"{form:8s} {bits:6.0f} bits ({r['bits_used']:.1f} used, entropy {r['bits_entropy']:.1f}): MSE {r['mse']:.4f}, private dither "
                  f"{r['mse_private_dither']:.4f}, PV {r['pv']:.4f}, MMD {r['latent_mmd_sd']:.2f} sd, "
                  f"moments {r['latent_moment_sd']:.1f} sd, rFID {r['rfid']}", flush=True)  # fmt: skip
        forms[form] = {"encoder": {"mse_through_generator": float((decode_through(generator, t) - x).pow(2).mean()),
                                   **readings(t, null, mnull)}, "rows": rows}  # fmt: skip
        e = forms[form]["encoder"]
        print(f"{form:8s} E(X): MMD {e['latent_mmd_sd']:.2f} sd, moments {e['latent_moment_sd']:.1f} sd, "
              f"|x − G*(t)|² {e['mse_through_generator']:.4f}", flush=True)  # fmt: skip
    prior = torch.randn(z.shape[0], dim, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    out = {"checkpoint_step": step, "sfid": fid(x, decode_through(generator, prior), featnet), "images": int(x.shape[0]), "train_images": int(x_train.shape[0]),
           "latent_weights": weights, "forms": forms, "seconds": round(time.time() - t0, 1),
           "environment": environment.describe()}  # fmt: skip
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)} in {out['seconds']} s")


if __name__ == "__main__":
    main()
