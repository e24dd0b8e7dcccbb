"""The train stage's DPLC codecs' latent MMD (null s.d.) with BatchNorm in eval and in training
mode, on test images and on the training images DPLC held out for its constraint.

    python benchmarks/latent_check_modes.py 16 64      # code channels C
    python benchmarks/latent_check_modes.py 4 --codec runs/steps/check0/dplc-c4-s4-n1000/codec ...

DPLC's dual reads the held-out check on copies of E and B, in eval mode with statistics
re-estimated on training images (:meth:`dplc.rate_methods.DPLC.holdout_mmd_sd`; with
``check_bn_batches: 0`` in training mode, where BatchNorm normalises with the 2,000 images' own
statistics); the evaluate stage reads the finished codec as it decodes, in eval mode with its
recalibrated running statistics (:func:`dplc.metrics.latent_realism`, 2,000 test images). This
reads both modes on both image sets, each as the mean and s.d. of ``--draws`` readings (noise
draw and null sample seeded 0, 1, ...; the evaluate stage's first eight), so a gap between the
training constraint and the evaluated check can be put on the mode or on the images. Writes
``reports/bench/latent_check_modes.json`` with the machine and package versions.

With ``--codec DIR`` (repeatable) it reads those codecs instead (for instance the controls of
``benchmarks/steps.py`` under ``runs/steps/``), in eval mode only, with the held-out set of the
one rate given, and adds them to ``reports/bench/latent_check_codecs.json`` (keyed by directory,
with that rate; a codec read again replaces its row).
"""

from __future__ import annotations

import argparse
import copy
import inspect
import json
import statistics
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dplc import data, evaluation, metrics  # noqa: E402
from dplc.codec import Codec  # noqa: E402
from dplc.train import split_holdout  # noqa: E402
from pipelines import environment  # noqa: E402
from pipelines import layout as L  # noqa: E402
from pipelines import params as P  # noqa: E402

OUT = ROOT / "reports" / "bench" / "latent_check_modes.json"
TEST_IMAGES = inspect.signature(evaluation.evaluate_codec).parameters["realism_n"].default
"""The evaluate stage's realism sample: the first this many test images."""


def readings(codec: Codec, x: torch.Tensor, draws: int) -> dict[str, float | list[float]]:
    """``draws`` readings of :func:`dplc.metrics.latent_realism` (seeds 0, 1, ...), their mean and s.d."""
    values = [metrics.latent_realism(codec, x, seed=s) for s in range(draws)]
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values), "values": values}


def image_sets(params: dict, rate: int, train, test: torch.Tensor, size: int) -> dict[str, torch.Tensor]:
    """The evaluate stage's test images and the training images DPLC holds out at ``rate``."""
    _, holdout = split_holdout(P.train_config(params, "dplc", rate), data.to_tensor(train, size))
    return {"test": test, "holdout": data.to_float(holdout)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rates", type=int, nargs="+", help="code channels C")
    ap.add_argument("--draws", type=int, default=8)
    ap.add_argument("--codec", action="append", default=[], help="a codec directory to read instead")
    args = ap.parse_args()
    if args.codec and len(args.rates) != 1:
        ap.error("--codec reads codecs of one rate: give that rate's C alone")
    torch.set_num_threads(1)
    params = P.load()
    size = int(params["data"]["image_size"])
    train = data.read_split(L.prepared_dir(), "train", limit=params["data"].get("train_limit")).images
    test = data.to_float(data.to_tensor(data.read_split(L.prepared_dir(), "test", limit=TEST_IMAGES).images, size))
    out: dict = {"draws": args.draws, "images": TEST_IMAGES, "per_rate": {}}
    if args.codec:
        sets = image_sets(params, args.rates[0], train, test, size)
        target = OUT.with_name("latent_check_codecs.json")
        out["codecs"] = json.loads(target.read_text()).get("codecs", {}) if target.exists() else {}
        for path in args.codec:
            codec = Codec.load(path).eval()
            row = {f"{name}_eval": readings(codec, x, args.draws) for name, x in sets.items()}
            out["codecs"][path] = {"code_channels": args.rates[0], **row}
            print(path, {k: round(v["mean"], 2) for k, v in row.items()}, flush=True)
        out["environment"] = environment.describe()
        target.write_text(json.dumps(out, indent=2))
        return
    for rate in args.rates:
        sets = image_sets(params, rate, train, test, size)
        codec = Codec.load(L.codec_dir(P.codec_name("dplc", "wpp"), rate)).eval()
        modes = {"eval": codec, "train": copy.deepcopy(codec).train()}
        row = {f"{name}_{mode}": readings(c, x, args.draws) for mode, c in modes.items() for name, x in sets.items()}
        out["per_rate"][str(rate)] = {"bits_per_image": P.net_config(params, rate).bits_per_image, **row}
        print(rate, {k: round(v["mean"], 2) for k, v in row.items()}, flush=True)
    out["environment"] = environment.describe()
    OUT.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
