"""Where a training job's MLflow time goes: the store's set-up in a fresh process, and each call.

    python benchmarks/mlflow_costs.py [--processes 3] [--repeats 3]

A training stage is one process per job, and it talks to the local SQLite store
(``pipelines.tracking``, ``dplc.registry``). This measures, against a throw-away store in a
temporary folder:

- ``import_seconds`` / ``first_store_call_seconds``: in ``--processes`` fresh interpreters,
  ``import mlflow`` and then the first call that needs the store (``search_experiments``;
  MLflow builds its SQLAlchemy store on first use), with the second call beside them;
- ``calls_seconds``: the median over ``--repeats`` runs of each call a training job makes, in
  the order it makes them (tags, params, the history batch, metrics, the sample grid, the
  logged model, registration, the model's description and the version's tags), the first run's
  ``log_model`` apart (``log_model_first_seconds``: its own imports).

A small untrained codec (8 channels, 2 code channels, an entropy model fitted on random
images) stands in for a trained one: the calls' cost does not depend on the weights' values.
Appends one JSON line to ``reports/bench/mlflow_costs.jsonl`` with the environment.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.jsonl import append  # noqa: E402

OUT = ROOT / "reports" / "bench" / "mlflow_costs.jsonl"

FRESH = """
import time
t0 = time.perf_counter()
import mlflow
from mlflow.tracking import MlflowClient
t1 = time.perf_counter()
mlflow.set_tracking_uri({uri!r})
MlflowClient().search_experiments()
t2 = time.perf_counter()
MlflowClient().search_experiments()
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""


def _codec_folder(folder: Path) -> Path:
    """A small untrained codec with a fitted entropy model, saved as training saves one."""
    import numpy as np
    import torch

    from dplc.codec import build_codec
    from dplc.config import NetConfig
    from dplc.data import to_float, to_tensor
    from dplc.entropy import EntropyModel

    torch.manual_seed(0)
    codec = build_codec(NetConfig(width=8, latent_dim=16, code_channels=2, levels=2), "map").eval()
    images = np.random.default_rng(0).integers(0, 256, (64, 28, 28, 1), dtype=np.uint8)
    codec.save(folder)
    EntropyModel.fit(codec.encode(to_float(to_tensor(images, 32))), codec.net.levels).save(folder)
    return folder


def fresh_processes(uri: str, n: int) -> list[list[float]]:
    """[import, first store call, second store call] seconds in ``n`` fresh interpreters."""
    rows = []
    for _ in range(n):
        out = subprocess.run([sys.executable, "-c", FRESH.format(uri=uri)], capture_output=True, text=True,
                             check=True, cwd=ROOT)  # fmt: skip
        rows.append([float(v) for v in out.stdout.split()[-3:]])
    return rows


def job_calls(root: Path, repeats: int) -> tuple[dict[str, float], float]:
    """({call: median seconds over ``repeats`` runs}, the first run's log_model seconds)."""
    import mlflow
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    from dplc import registry
    from pipelines import environment

    folder = _codec_folder(root / "codec")
    grid = root / "decodes.png"
    grid.write_bytes(b"\x89PNG\r\n" + bytes(5000))
    times: dict[str, list[float]] = {}
    first_log_model = 0.0
    for rep in range(repeats):
        with mlflow.start_run(run_name=f"job{rep}") as run:
            rid = run.info.run_id
            history = [Metric(f"m{k}", 1.0, 0, s) for s in range(20) for k in range(6)]
            calls = [
                ("set_tags", lambda: mlflow.set_tags({"dplc.stage": "train"} | environment.as_tags())),
                ("log_params", lambda: mlflow.log_params({f"p{i}": i for i in range(80)})),
                ("log_history", lambda: MlflowClient().log_batch(rid, metrics=history)),  # noqa: B023
                ("log_metrics", lambda: mlflow.log_metrics({"wall_seconds": 1.0, "steps": 2.0})),
                ("log_artifact", lambda: mlflow.log_artifact(str(grid))),
            ]  # fmt: skip
            for name, call in calls:
                t = time.perf_counter()
                call()
                times.setdefault(name, []).append(time.perf_counter() - t)
            t = time.perf_counter()
            info = registry.log_codec(folder, "codec")
            seconds = time.perf_counter() - t
            if rep == 0:
                first_log_model = seconds
            else:
                times.setdefault("log_model", []).append(seconds)
            for name, call in [
                ("register", lambda: registry.register(info.model_uri, "tiny", alias=f"c{rep}")),  # noqa: B023
                ("describe_model", lambda: registry.describe_model("tiny", "a codec", {"a": "1", "b": "2"})),
                ("tag_version", lambda: registry.tag_version("tiny", rep + 1, {f"t{i}": i for i in range(8)},  # noqa: B023
                                                             description="C = 2")),  # fmt: skip
            ]:
                t = time.perf_counter()
                call()
                times.setdefault(name, []).append(time.perf_counter() - t)
    return {k: round(statistics.median(v), 4) for k, v in times.items()}, round(first_log_model, 4)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--processes", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="dplc-mlflow-costs-") as tmp:
        root = Path(tmp)
        uri = f"sqlite:///{root}/mlflow.db"
        import mlflow

        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(experiment_id=mlflow.create_experiment("costs", artifact_location=str(root / "art")))
        fresh = fresh_processes(uri, args.processes)
        calls, first_log_model = job_calls(root, args.repeats)
    row = {
        "import_seconds": [round(r[0], 3) for r in fresh],
        "first_store_call_seconds": [round(r[1], 3) for r in fresh],
        "second_store_call_seconds": [round(r[2], 4) for r in fresh],
        "log_model_first_seconds": first_log_model,
        "calls_seconds": calls,
        "calls_total_seconds": round(sum(calls.values()), 3),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    append(OUT, row)


if __name__ == "__main__":
    main()
