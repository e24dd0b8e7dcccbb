"""DVC stage `prepare`: the source dataset -> Parquet shards + manifest in data/prepared/.

python -m pipelines.prepare
"""

from __future__ import annotations

import time

from dplc import data, sources
from pipelines import layout as L
from pipelines import params as P
from pipelines import stage_timing, tracking


def main() -> None:
    timing = stage_timing.Timing()
    params = P.load()
    d = params["data"]
    t0 = time.perf_counter()
    splits = sources.load_source(d["source"], d.get("path"), bool(d.get("download", True)))
    limits = {"train": d.get("train_limit"), "test": d.get("test_limit")}
    splits = {k: v.subset(limits[k]) for k, v in splits.items()}
    manifest = data.write_shards(
        L.prepared_dir(), splits, source=d["source"], shard_size=int(d["shard_size"])
    )
    seconds = time.perf_counter() - t0
    print(
        f"prepared {manifest['counts']} from {d['source']} in {seconds:.1f} s -> {L.prepared_dir()}"
    )
    with tracking.stage_run(params, "prepare") as run:
        run.log_params({"data": d})
        run.log_metrics(
            {
                "train_images": manifest["counts"]["train"],
                "test_images": manifest["counts"]["test"],
                "seconds": seconds,
            }
        )
        run.log_artifact(L.prepared_dir() / "manifest.json")
    stage_timing.write("prepare", timing.summary())


if __name__ == "__main__":
    main()
