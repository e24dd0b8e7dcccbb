"""Training images against test images: how much of a per-rate codec's test MSE is a generalisation gap?

    python benchmarks/generalisation.py runs/steps/dplc-c64-s64-n2000/codec runs/steps/cae-c64-s64-n1000/codec

For each codec folder, the MSE of its decodes (seed 0, on the networks' [-1, 1] float input,
32x32 for Fashion-MNIST, so not the evaluate stage's 28x28 uint8 figure) on the first ``--images``
training images and the first ``--images`` test images, and their ratio. A codec whose training
MSE is well below its test MSE has fitted its training set; if DPLC's gap is larger than the
CAE's of the same rate, part of the ratio MSE_DPLC/MSE_CAE is that gap, not realism. Appends one
JSON line per codec to ``reports/bench/generalisation.jsonl`` with the environment.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import jsonl  # noqa: E402
from dplc import data  # noqa: E402
from dplc.codec import Codec  # noqa: E402
from pipelines import layout as L  # noqa: E402

OUT = ROOT / "reports" / "bench" / "generalisation.jsonl"


@torch.no_grad()
def mse(codec: Codec, images: torch.Tensor) -> float:
    """Mean squared error of ``codec``'s seed-0 decodes of ``images`` ([-1, 1] floats)."""
    noise = codec.shared_noise(0, images.shape[0])
    decoded = codec.decode(codec.encode(images, noise=noise), seed=0, noise=noise)
    return float(((decoded - images) ** 2).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("codecs", type=Path, nargs="+", help="codec folders")
    ap.add_argument("--images", type=int, default=5000)
    args = ap.parse_args()
    torch.set_num_threads(2)
    for folder in args.codecs:
        codec = Codec.load(folder)
        size = codec.net.image_size
        split = {s: data.to_float(data.to_tensor(data.read_split(L.prepared_dir(), s, limit=args.images).images, size))
                 for s in ("train", "test")}  # fmt: skip
        t0 = time.perf_counter()
        row = {"codec": str(folder), "images": args.images,
               **{f"mse_{s}": mse(codec, x) for s, x in split.items()}}  # fmt: skip
        row["test_over_train"] = row["mse_test"] / row["mse_train"]
        row["seconds"] = round(time.perf_counter() - t0, 1)
        jsonl.append(OUT, row)


if __name__ == "__main__":
    main()
