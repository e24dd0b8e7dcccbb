"""G*'s realistic inversion floor: the best MSE through G* with latents held to its prior.

    python benchmarks/realistic_floor.py [--images 2000] [--steps 300 300]

Runs :func:`dplc.metrics.realistic_inversion_floor` on the finished default G*
(``runs/generator/wpp/codec``) and the first ``--images`` test images: one free latent per
image, first inverted freely, then held to latent MMD ≤ 1 null s.d. (the realism constraint the
per-rate DPLC encoders train with, measured at the evaluate stage's 2,000 points). No DPLC codec
into this G* whose latents meet the constraint on these images decodes them better at any rate,
so a DPLC MSE far above this floor is not G*'s doing. Writes
``reports/bench/realistic_floor.json`` (merged into ``reports/bench/results.json`` as
``realistic_inversion_floor_mse`` by ``benchmarks/results.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dplc import data, metrics  # noqa: E402
from dplc.codec import Codec  # noqa: E402
from pipelines import environment  # noqa: E402
from pipelines import layout as L  # noqa: E402
from pipelines import params as P  # noqa: E402

OUT = ROOT / "reports" / "bench" / "realistic_floor.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--steps", type=int, nargs=2, default=[300, 300], help="free, then constrained")
    args = ap.parse_args()
    params = P.load()
    torch.set_num_threads(int(params["ray"]["threads_per_worker"]))
    generator = Codec.load(L.generator_codec("wpp")).generator
    split = data.read_split(L.prepared_dir(), "test", limit=args.images)
    x = data.to_float(data.to_tensor(split.images, int(params["data"]["image_size"])))
    t0 = time.perf_counter()
    r = metrics.realistic_inversion_floor(generator, x, steps=tuple(args.steps), seed=0)
    out = {"images": args.images, "steps": args.steps, **r, "seconds": round(time.perf_counter() - t0, 1),
           "environment": environment.describe()}  # fmt: skip
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=2))
    print(json.dumps({k: v for k, v in out.items() if k != "environment"}, indent=2))


if __name__ == "__main__":
    main()
