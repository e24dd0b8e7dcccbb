"""Evaluation benchmark (issue 5): time to evaluate one rate on the test split, broken down.

    python benchmarks/evaluate.py [--codec runs/train/dplc_wpp/4/codec] [--images 10000]

Times the parts of :func:`dplc.evaluation.evaluate_codec` separately on the same inputs: the
bitstream round trip (encode + ANS + decode), the features and FID/KID (torch-fidelity with the
domain feature network), generator samples for sFID, and PV (64 images x 100 decodes); then the
whole call. Writes ``reports/bench/evaluate.json``.
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

from dplc import data, evaluation, files, metrics  # noqa: E402
from dplc.bundle import CodecBundle  # noqa: E402
from dplc.codec import Codec  # noqa: E402
from dplc.entropy import load_entropy_model  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--codec", type=Path, default=ROOT / "runs/train/dplc_wpp/4/codec")
    ap.add_argument("--featnet", type=Path, default=ROOT / "runs/featnet/featnet.safetensors")
    ap.add_argument("--images", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "reports/bench/evaluate.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    codec, entropy = Codec.load(args.codec), load_entropy_model(args.codec)
    test = data.read_split(ROOT / "data/prepared", "test", limit=args.images).images
    out: dict = {"codec": str(args.codec.relative_to(ROOT)), "images": int(test.shape[0]), "threads": args.threads}
    t = time.perf_counter()
    blob = files.compress(codec, entropy, test, "bench", 0)
    decoded = files.decompress(blob, codec, entropy)
    out["decode_seconds"] = round(time.perf_counter() - t, 3)
    real, fake = data.to_tensor(test, codec.net.image_size), data.to_tensor(decoded, codec.net.image_size)
    t = time.perf_counter()
    metrics.fid_kid(real, fake, args.featnet)
    out["features_fid_kid_seconds"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    samples = data.to_uint8(codec.sample(test.shape[0], seed=1))
    out["sample_seconds"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    metrics.fid_kid(real, samples, args.featnet)
    out["sfid_seconds"] = round(time.perf_counter() - t, 3)
    first = data.to_float(real[:64])
    sym = codec.encode(first)
    t = time.perf_counter()
    metrics.conditional_pixel_variance(lambda s: codec.decode(sym, seed=s), 100)
    out["pv_seconds"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    result = evaluation.evaluate_codec(CodecBundle(codec, entropy, "eval"), test, args.featnet, sample_fid=True)
    out["evaluate_seconds_per_rate"] = round(time.perf_counter() - t, 3)
    acc_path = ROOT / "runs/featnet/metrics.json"
    out["featnet_test_accuracy"] = json.loads(acc_path.read_text())["featnet_test_accuracy"] if acc_path.is_file() else None
    out["metrics"] = result
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
