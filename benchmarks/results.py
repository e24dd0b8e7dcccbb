"""Headline results of the default profile + the costs, as reports/bench/results.json.

    python benchmarks/results.py

Merges what the `report` stage wrote (reports/results.json: the table's headline lists,
findings, the Gaussian check) with the measured costs: the wall time of `dvc repro` of the
default profile and of every stage (reports/bench/pipeline.json, from
``benchmarks/pipeline.py --default-repro``), training images/s per method
(reports/bench/train.json), compress/decompress images/s (reports/bench/codec.json) and the Ray
overhead ratio, and the spread over seeds (reports/bench/seeds.json from benchmarks/seeds.py:
``mse_ratio_dplc_cae_mean`` and ``_sd`` aligned with ``bits_per_image``, None at rates the
benchmark did not train or trained for another run: :func:`seed_spread`), and G*'s realistic inversion floor (reports/bench/realistic_floor.json
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


def seed_spread(
    per_rate: dict, bits: list[float], ratios: list[float], rel: float = 1e-9
) -> tuple[list[float | None], list[float | None], dict[str, str]]:
    """The seed benchmark's mean and s.d. of MSE_DPLC/MSE_CAE aligned with ``bits``, and the
    rates left out with why.

    A rate's spread stands beside this run only when one of its seeds *is* this run's codec
    (its ratio equals this run's ``ratios`` entry to ``rel``): a spread measured on codecs of
    other params or code (an earlier recipe) says nothing of this run's.

    >>> entry = {"bits_per_image": 16.0, "mse_ratio_dplc_cae": {"values": [1.6, 1.7], "mean": 1.65, "sd": 0.07}}
    >>> seed_spread({"1": entry}, [0.0, 16.0], [1.9, 1.7])
    ([None, 1.65], [None, 0.07], {})
    >>> seed_spread({"1": entry}, [0.0, 16.0], [1.9, 1.5])[2]
    {'16': "no seed's ratio is this run's 1.5: measured on codecs of another run"}
    """
    by_bits = {v["bits_per_image"]: v["mse_ratio_dplc_cae"] for v in per_rate.values()}
    mean: list[float | None] = []
    sd: list[float | None] = []
    dropped: dict[str, str] = {}
    for b, ratio in zip(bits, ratios, strict=True):
        entry = by_bits.get(b)
        if entry is not None and not any(abs(v - ratio) <= rel * abs(ratio) for v in entry["values"]):
            dropped[f"{b:g}"] = f"no seed's ratio is this run's {ratio:.6g}: measured on codecs of another run"
            entry = None
        mean.append(None if entry is None else entry["mean"])
        sd.append(None if entry is None else entry["sd"])
    return mean, sd, dropped


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
        spread = seed_spread(json.loads(seeds_path.read_text())["per_rate"], out["bits_per_image"],
                             out["mse_ratio_dplc_cae"])  # fmt: skip
        out["mse_ratio_dplc_cae_mean"], out["mse_ratio_dplc_cae_sd"], dropped = spread
        out["mse_ratio_dplc_cae_spread_dropped"] = dropped
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
