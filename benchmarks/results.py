"""Headline results of the default profile + the costs, as reports/bench/results.json.

    python benchmarks/results.py

Merges what the `report` stage wrote (reports/results.json: the table's headline lists,
findings, the Gaussian check) with the measured costs: the wall time of `dvc repro` of the
default profile and of every stage (reports/bench/pipeline.json, from
``benchmarks/pipeline.py --default-repro``), training images/s per method
(reports/bench/train.json), compress/decompress images/s (reports/bench/codec.json) and the Ray
overhead ratio, and the spread over seeds (reports/bench/seeds.json from benchmarks/seeds.py:
``mse_ratio_dplc_cae_mean`` and ``_sd`` aligned with ``bits_per_image``, None at rates the
benchmark did not train), and G*'s realistic inversion floor (reports/bench/realistic_floor.json
from benchmarks/realistic_floor.py: ``realistic_inversion_floor_mse``). Prints the JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "reports" / "bench"


def _load(path: Path) -> dict:
    if not path.is_file():
        raise SystemExit(f"{path} is missing: run the stage or benchmark that writes it first")
    return json.loads(path.read_text())


def main() -> None:
    out = _load(ROOT / "reports" / "results.json")
    pipe = _load(BENCH / "pipeline.json")
    train = _load(BENCH / "train.json")
    codec = _load(BENCH / "codec.json")
    out["default_profile_seconds"] = pipe.get("default_repro_seconds")
    out["default_stage_seconds"] = pipe.get("default_stage_seconds", {})
    out["ray_2workers_vs_plain_throughput_ratio"] = pipe.get("ray_2workers_vs_plain_throughput_ratio")
    out["train_images_per_s"] = {
        k[: -len("_images_per_s")]: v
        for k, v in train.items()
        if k.endswith("_images_per_s") and "bf16" not in k and "64px" not in k
    }
    seeds_path = BENCH / "seeds.json"
    if seeds_path.is_file():  # benchmarks/seeds.py: the spread over seeds, aligned with the ladder
        per_rate = {v["bits_per_image"]: v["mse_ratio_dplc_cae"] for v in json.loads(seeds_path.read_text())["per_rate"].values()}
        out["mse_ratio_dplc_cae_mean"] = [per_rate[b]["mean"] if b in per_rate else None for b in out["bits_per_image"]]
        out["mse_ratio_dplc_cae_sd"] = [per_rate[b]["sd"] if b in per_rate else None for b in out["bits_per_image"]]
    floor_path = BENCH / "realistic_floor.json"
    if floor_path.is_file():  # benchmarks/realistic_floor.py: G*'s floor with realistic latents
        floor = json.loads(floor_path.read_text())
        out["realistic_inversion_floor_mse"] = floor["mse"] if floor["feasible"] else None
    out["compress_images_per_s"] = codec.get("compress_images_per_s")
    out["decompress_images_per_s"] = codec.get("decompress_images_per_s")
    (BENCH / "results.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
