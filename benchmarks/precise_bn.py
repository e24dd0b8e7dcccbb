"""Precise BatchNorm on the pipeline's finished per-rate codecs: realism and distortion before and
after re-estimating their running statistics.

    python benchmarks/precise_bn.py [--codecs dplc_wpp dplc_shared_wpp cae gc] [--batches 200]

The realism constraint holds the held-out latent MMD at ≤ 1 null s.d. *with batch statistics*
(the training-mode measurement of ``dplc.rate_methods.DPLC.holdout_mmd_sd``), while the evaluate
stage measures the finished codec in eval mode, with BatchNorm's running averages. This script
takes each trained codec of the default profile (``runs/train/<codec>/<rate>/codec``), measures
it as it is, then recomputes the running statistics of its own BatchNorm layers from
``--batches`` batches of 128 training images (``dplc.precise_bn.recalibrate``; G* of a DPLC codec
stays frozen; the images the constraint held out are not used) and measures it again: latent MMD
on the evaluate stage's 2,000 test images (DPLC kinds), MSE and the domain FID (featnet) of
one decode of all test images (the same noise before and after), and the fraction of code
symbols that the new statistics change. Since the recalibration runs after the last step and
leaves the weights as they are, its figures are what a training stage that ends with it gives.
Writes ``reports/bench/precise_bn.json`` (rows of earlier runs for other codecs or rates kept).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dplc import data, metrics  # noqa: E402
from dplc.codec import Codec  # noqa: E402
from dplc.precise_bn import recalibrate  # noqa: E402
from pipelines import environment  # noqa: E402
from pipelines import layout as L  # noqa: E402
from pipelines import params as P  # noqa: E402

OUT = ROOT / "reports" / "bench" / "precise_bn.json"
FROZEN_G = ("dplc_wpp", "dplc_shared_wpp")


@torch.no_grad()
def measure(codec: Codec, x: torch.Tensor, noise: torch.Tensor, realism_n: int, featnet: Path,
            h: int, w: int) -> dict[str, float | torch.Tensor]:  # fmt: skip
    """Latent MMD (null s.d.), MSE and featnet FID of one decode of ``x`` with ``noise``
    (rounded to 8 bits as a decoded file is), and the code."""
    codes, decoded = [], []
    for xb, nb in zip(x.split(500), noise.split(500), strict=True):
        code = codec.code(xb, nb)
        codes.append(code)
        decoded.append(codec.generator(codec.latent(code, nb)))
    x_hat = data.to_float(data.to_uint8(data.crop_to(torch.cat(decoded), h, w)))  # as decoded files
    real = data.crop_to(x, h, w)
    out: dict[str, float | torch.Tensor] = {
        "mse": metrics.mse(x_hat, real),
        "code": torch.cat(codes),
    }
    size = codec.net.image_size
    pad = (size - w) // 2, (size - w + 1) // 2, (size - h) // 2, (size - h + 1) // 2
    fid = metrics.fid_kid(torch.nn.functional.pad(real, pad, value=-1.0),
                          torch.nn.functional.pad(x_hat, pad, value=-1.0), featnet)  # fmt: skip
    out["rfid_featnet"] = fid["fid_featnet"]
    if codec.mode not in ("mean", "prior") and codec.bmap is not None and realism_n >= 2:
        out["latent_mmd_sd"] = metrics.latent_realism(codec, x[:realism_n])
    return out


def training_batches(codec: Codec, train, batch_size: int, seed: int) -> Callable[[], None]:
    """One forward pass of ``codec`` per call on a fresh random batch of ``train`` images and
    fresh decoder noise (the passes :func:`dplc.precise_bn.recalibrate` averages over)."""
    g = torch.Generator().manual_seed(seed)

    def forward() -> None:
        idx = torch.randint(0, len(train), (batch_size,), generator=g).numpy()
        xb = data.to_float(data.to_tensor(train[idx], codec.net.image_size))
        nb = codec.draw_noise(batch_size, g)
        codec.generator(codec.latent(codec.code(xb, nb), nb))

    return forward


def merged(rows: list[dict]) -> list[dict]:
    """``rows`` with the rows of an earlier run for other (codec, rate) pairs kept, sorted."""
    earlier = json.loads(OUT.read_text())["rows"] if OUT.is_file() else []
    done = {(r["codec"], r["rate"]) for r in rows}
    keep = [r for r in earlier if (r["codec"], r["rate"]) not in done]
    return sorted(keep + rows, key=lambda r: (r["codec"], r["rate"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--codecs", nargs="+", default=["dplc_wpp", "dplc_shared_wpp", "cae", "gc"])
    ap.add_argument("--rates", type=int, nargs="*", help="code channels C (default: every rate)")
    ap.add_argument("--batches", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--realism-n", type=int, default=2000, help="the evaluate stage's realism_n")
    args = ap.parse_args()
    torch.manual_seed(0)
    params = P.load()
    holdout = int(params["train"]["dplc"]["method"]["realism_holdout"])
    test = data.read_split(L.prepared_dir(), "test").images
    train = data.read_split(L.prepared_dir(), "train").images
    train = train[: len(train) - holdout]  # never the images the realism constraint held out
    h, w = test.shape[1], test.shape[2]
    rows = []
    t_all = time.perf_counter()
    for name in args.codecs:
        for rate_dir in sorted(
            (L.train_root() / name).glob("*/codec"), key=lambda p: int(p.parent.name)
        ):
            rate = int(rate_dir.parent.name)
            if rate == 0 or (args.rates and rate not in args.rates):
                continue  # no code: nothing to recalibrate that rate 0's decodes depend on but B
            codec = Codec.load(rate_dir)
            x = data.to_float(data.to_tensor(test, codec.net.image_size))
            noise = codec.draw_noise(x.shape[0], torch.Generator().manual_seed(7))
            t0 = time.perf_counter()
            before = measure(codec, x, noise, args.realism_n, L.featnet_weights(), h, w)
            skip = ("generator",) if name in FROZEN_G else ()
            forward = training_batches(codec, train, args.batch_size, seed=11)
            layers = recalibrate(codec, forward, args.batches, skip)
            after = measure(codec, x, noise, args.realism_n, L.featnet_weights(), h, w)
            changed = float((before.pop("code") != after.pop("code")).float().mean())
            row = {"codec": name, "rate": rate, "bits_per_image": codec.bits_per_image, "layers": layers,
                   "symbols_changed": changed, "before": before, "after": after,
                   "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
            rows.append(row)
            print(json.dumps(row), flush=True)
    rows = merged(rows)
    out = {"rows": rows, "batches": args.batches, "batch_size": args.batch_size,
           "realism_n": args.realism_n, "seconds": round(time.perf_counter() - t_all, 1),
           "environment": environment.describe()}  # fmt: skip
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
