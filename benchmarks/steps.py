"""Do the per-rate codecs gain from more steps? DPLC and the CAE at one rate and several step counts.

    python benchmarks/steps.py [--rates 64] [--steps 1000 3000] [--methods dplc cae]
    python benchmarks/steps.py --rates 64 --steps 2000 --methods dplc_shared \
        --per-rate '{"method": {"free_fraction": 0.5}}' --tag free05

Trains each method at each rate and step count exactly as the train stage configures it (the
finished default G*, ``runs/generator/wpp/codec``; the tuned settings of
``runs/tune/best.yaml``; the stage's seed), only with ``steps`` replaced, in this process (no
Ray; :func:`benchmarks.seeds.train_one`), and evaluates it on the test split like the evaluate
stage (MSE and its split into the mean decode's error and PV, rFID, the test latents' MMD in
null s.d.). The learning-rate schedule's milestones are fractions of the steps, so a longer run
decays later. A finished (method, rate, steps) is kept under ``runs/steps/`` and not trained
again (a codec whose weights were saved but not its entropy model gets that model); its row
then says ``"reused": true`` and ``"train_s": null`` (the time is in the row
written when it was trained). Appends one JSON line per codec to ``reports/bench/steps.jsonl``
with the environment.

``--per-rate JSON`` lays one ``train.<method>.per_rate`` entry (keys ``steps``, ``noise``,
``method``) over every rate trained, as params.yaml would; such codecs are kept under
``runs/steps/<tag>/`` and their rows carry ``tag`` and ``per_rate``.

It asks whether the high rates' MSE ratio DPLC/CAE (docs/realism.md, "Where the MSE goes at
1,024 bits") is a matter of steps, as it was on the Gaussian source at 8 bits.
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

from benchmarks import jsonl  # noqa: E402
from benchmarks.seeds import evaluate, is_exported, run_dir, train_one  # noqa: E402
from dplc import data  # noqa: E402
from dplc.codec import Codec  # noqa: E402
from pipelines import layout as L  # noqa: E402
from pipelines import params as P  # noqa: E402

OUT = ROOT / "reports" / "bench" / "steps.jsonl"
WORK = L.RUNS / "steps"
FIELDS = ("mse", "mse_mean_decode", "pv", "rfid_featnet", "latent_mmd_sd")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", type=int, nargs="+", default=[64], help="code channels C")
    ap.add_argument("--steps", type=int, nargs="+", default=[1000, 3000])
    ap.add_argument("--methods", nargs="+", default=["dplc", "cae"], choices=["dplc", "dplc_shared", "cae"])
    ap.add_argument("--per-rate", type=json.loads, default=None, help="a per_rate entry (JSON) at every rate")
    ap.add_argument("--tag", default=None, help="names the variant's cache folder; needed with --per-rate")
    ap.add_argument("--test-images", type=int, default=10000)
    args = ap.parse_args()
    if (args.per_rate is None) != (args.tag is None):
        ap.error("--per-rate and --tag go together")
    params = P.load()
    work = WORK if args.tag is None else WORK / args.tag
    torch.set_num_threads(int(params["ray"]["threads_per_worker"]))
    split = data.read_split(L.prepared_dir(), "train", limit=params["data"].get("train_limit"))
    images = data.to_tensor(split.images, int(params["data"]["image_size"]))
    test = data.read_split(L.prepared_dir(), "test", limit=args.test_images).images
    for rate in args.rates:
        for steps in args.steps:
            for method in args.methods:
                if args.per_rate is not None:
                    section = params["train"].setdefault(method, {}) or {}
                    params["train"][method] = section | {"per_rate": {rate: args.per_rate}}
                reused = is_exported(run_dir(params, method, rate, None, steps, work) / "codec")
                t0 = time.perf_counter()
                codec_dir = train_one(params, method, rate, None, images, steps=steps, work=work)
                seconds = time.perf_counter() - t0
                m = evaluate(codec_dir, test, params)
                meta = Codec.load(codec_dir).meta
                row = {"method": method, "rate": rate, "steps": steps,
                       **{k: m.get(k) for k in FIELDS},
                       "lambda_rate": meta.get("lambda_rate"), "train_s": None if reused else round(seconds, 1), "reused": reused,
                       **({"tag": args.tag, "per_rate": args.per_rate} if args.tag else {})}  # fmt: skip
                jsonl.append(OUT, row)


if __name__ == "__main__":
    main()
