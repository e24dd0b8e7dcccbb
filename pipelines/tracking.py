"""MLflow for the stages: one run per stage (nested runs for tune trials), metrics per step.

The tracking store defaults to a SQLite database and a local artifact folder inside the repo
(``mlflow.db`` and ``mlartifacts/``, both ignored by git); ``MLFLOW_TRACKING_URI`` overrides
params. :func:`check_store` fails fast, before any training, when the store is unreachable.

    mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port 5000
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient

from pipelines import environment
from pipelines.params import ROOT


class TrackingUnavailableError(RuntimeError):
    """The MLflow tracking store cannot be reached or created."""


def tracking_uri(params: dict) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else params' URI with relative SQLite paths made absolute."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or params["mlflow"]["tracking_uri"]
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri[len(prefix) :].startswith("/"):
        uri = prefix + str(ROOT / uri[len(prefix) :])
    return uri


def artifact_location(params: dict) -> str:
    root = Path(params["mlflow"]["artifact_root"])
    root = root if root.is_absolute() else ROOT / root
    return (root / params["mlflow"]["experiment"]).resolve().as_uri()


def check_store(params: dict) -> str:
    """Connect to the tracking store (creating SQLite and the experiment); clear error if not."""
    uri = tracking_uri(params)
    if uri.startswith("sqlite:///"):
        folder = Path(uri[len("sqlite:///") :]).parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise TrackingUnavailableError(
                f"MLflow tracking store {uri} is unreachable: {folder} is not a writable folder"
            )
    mlflow.set_tracking_uri(uri)
    try:
        client = MlflowClient(uri)
        name = params["mlflow"]["experiment"]
        exp = client.get_experiment_by_name(name)
        if exp is None:
            exp_id = client.create_experiment(name, artifact_location=artifact_location(params))
            client.set_experiment_tag(exp_id, "mlflow.note.content", experiment_description(params))
        mlflow.set_experiment(name)
    except Exception as e:  # noqa: BLE001 - any backend failure means the same to the user
        raise TrackingUnavailableError(
            f"MLflow tracking store {uri} is unreachable: {type(e).__name__}: {e}"
        ) from e
    return uri


def experiment_description(params: dict) -> str:
    """The experiment's description in the MLflow UI: what its runs and models are."""
    d = params.get("data", {})
    where = f" on {d['source']} at {d['image_size']}x{d['image_size']}" if "source" in d else ""
    return (
        f"dplc (distribution-preserving lossy compression, Tschannen et al. 2018){where}. "
        "One run per DVC stage (prepare, featnet, "
        "generator, tune, train, evaluate, report), tagged dplc.stage, dplc.profile and the "
        "environment (dplc.env.*). Codecs are registered as <dataset>-<codec> (dplc_wpp, gc, cae), "
        "one version per rate with alias c<C>; each version's tags give its rate, provenance and "
        "evaluation (eval.*)."
    )


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists become JSON strings (MLflow params are strings)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out |= flatten(v, key + ".")
        else:
            out[key] = json.dumps(v) if isinstance(v, (list, tuple)) else v
    return out


class StageRun:
    """Thin wrapper over the active MLflow run."""

    def __init__(self, run: mlflow.ActiveRun) -> None:
        self.run = run
        self.run_id = run.info.run_id

    def log_params(self, params: dict[str, Any]) -> None:
        flat = {k: str(v)[:6000] for k, v in flatten(params).items()}
        items = list(flat.items())
        for i in range(0, len(items), 100):
            mlflow.log_params(dict(items[i : i + 100]))

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        clean = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and v == v}
        mlflow.log_metrics(clean, step=step)

    def log_history(self, rows: list[dict[str, Any]]) -> None:
        """Metrics of many steps (``{"step": s, name: value, ...}`` rows) in one batch call:
        one write to the store instead of one per row."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, int(row["step"])) for row in rows for k, v in row.items()
                   if k not in ("step", "time") and isinstance(v, (int, float)) and v == v]  # fmt: skip
        client = MlflowClient()
        for i in range(0, len(metrics), 1000):  # MLflow accepts at most 1000 metrics a call
            client.log_batch(self.run_id, metrics=metrics[i : i + 1000])

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        p = Path(path)
        if p.is_dir():
            mlflow.log_artifacts(str(p), artifact_path=artifact_path or p.name)
        elif p.is_file():
            mlflow.log_artifact(str(p), artifact_path=artifact_path)

    def set_tags(self, tags: dict[str, str]) -> None:
        mlflow.set_tags(tags)


@contextlib.contextmanager
def stage_run(
    params: dict, stage: str, run_name: str | None = None, nested: bool = False
) -> Iterator[StageRun]:
    """An MLflow run for one stage, tagged with the stage, the profile and the environment
    (CPU model, versions of torch, ray, mlflow, dvc..., the lock file's digest)."""
    check_store(params)
    with mlflow.start_run(run_name=run_name or stage, nested=nested) as run:
        mlflow.set_tags(
            {"dplc.stage": stage, "dplc.profile": str(params.get("profile_name", "default"))}
            | environment.as_tags()
        )
        yield StageRun(run)

