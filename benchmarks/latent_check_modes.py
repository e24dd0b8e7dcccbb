"""The train stage's DPLC codecs' latent MMD (null s.d.) with BatchNorm in eval and in training
mode, on test images and on the training images DPLC held out for its constraint.

    python benchmarks/latent_check_modes.py 16 64      # code channels C

DPLC's dual reads the held-out check on copies of E and B in training mode
(:meth:`dplc.rate_methods.DPLC.holdout_mmd_sd`: BatchNorm normalises with the 2,000 images' own
statistics); the evaluate stage reads the finished codec as it decodes, in eval mode with its
recalibrated running statistics (:func:`dplc.metrics.latent_realism`, 2,000 test images). This
reads both modes on both image sets, each as the mean and s.d. of ``--draws`` readings (noise
draw and null sample seeded 0, 1, ...; the evaluate stage's is seed 0), so a gap between the
training constraint and the evaluated check can be put on the mode or on the images. Writes
``reports/bench/latent_check_modes.json`` with the machine and package versions.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dplc import data, metrics  # noqa: E402
from dplc.codec import Codec  # noqa: E402
from pipelines import environment  # noqa: E402
from pipelines import layout as L  # noqa: E402
from pipelines import params as P  # noqa: E402

OUT = ROOT / "reports" / "bench" / "latent_check_modes.json"
IMAGES = 2000  # the evaluate stage's realism sample and DPLC's default realism_holdout


def readings(codec: Codec, x: torch.Tensor, draws: int) -> dict[str, float | list[float]]:
    """``draws`` readings of :func:`dplc.metrics.latent_realism` (seeds 0, 1, ...), their mean and s.d."""
    values = [metrics.latent_realism(codec, x, seed=s) for s in range(draws)]
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values), "values": values}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rates", type=int, nargs="+", help="code channels C")
    ap.add_argument("--draws", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(1)
    params = P.load()
    size = int(params["data"]["image_size"])
    train = data.read_split(L.prepared_dir(), "train", limit=params["data"].get("train_limit")).images
    test = data.read_split(L.prepared_dir(), "test", limit=IMAGES).images
    sets = {"test": data.to_float(data.to_tensor(test, size)),  # the evaluate stage's sample
            "holdout": data.to_float(data.to_tensor(train[-IMAGES:], size))}  # dplc.train's holdout  # fmt: skip
    out: dict = {"draws": args.draws, "images": IMAGES, "per_rate": {}}
    for rate in args.rates:
        codec = Codec.load(L.codec_dir(P.codec_name("dplc", "wpp"), rate)).eval()
        modes = {"eval": codec, "train": copy.deepcopy(codec).train()}
        row = {f"{name}_{mode}": readings(c, x, args.draws) for mode, c in modes.items() for name, x in sets.items()}
        out["per_rate"][str(rate)] = {"bits_per_image": P.net_config(params, rate).bits_per_image, **row}
        print(rate, {k: round(v["mean"], 2) for k, v in row.items()}, flush=True)
    out["environment"] = environment.describe()
    OUT.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
