"""MLflow: the stage tracking helpers, fail-fast on an unreachable store, and the UI server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import pytest

from pipelines import tracking
from pipelines.repro import free_ports, stop_head

ROOT = Path(__file__).resolve().parents[2]


def _params(tmp_path: Path, uri: str | None = None) -> dict:
    return {
        "profile_name": "test",
        "mlflow": {
            "tracking_uri": uri or f"sqlite:///{tmp_path / 'mlflow.db'}",
            "artifact_root": str(tmp_path / "artifacts"),
            "experiment": "dplc-test",
        },
    }


def test_stage_run_logs_params_metrics_and_artifacts(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    params = _params(tmp_path)
    (tmp_path / "a.txt").write_text("hello")
    with tracking.stage_run(params, "unit") as run:
        run.log_params({"net": {"width": 8, "betas": [0.5, 0.9]}})
        run.log_metrics({"loss": 1.0}, step=1)
        run.log_metrics({"loss": 0.5}, step=2)
        run.log_artifact(tmp_path / "a.txt")
        run.log_history([{"step": s, "time": 0.0, "mse": 1.0 / s, "bad": float("nan")}
                         for s in range(1, 1502)])  # fmt: skip - over one batch of 1000
        run_id = run.run_id
    client = mlflow.tracking.MlflowClient(params["mlflow"]["tracking_uri"])
    r = client.get_run(run_id)
    assert r.data.params["net.width"] == "8" and json.loads(r.data.params["net.betas"]) == [0.5, 0.9]
    assert [m.value for m in client.get_metric_history(run_id, "loss")] == [1.0, 0.5]
    assert r.data.tags["dplc.stage"] == "unit"
    assert r.data.tags["dplc.env.torch"] and r.data.tags["dplc.env.cpu_model"]
    history = client.get_metric_history(run_id, "mse")
    assert sorted(m.step for m in history) == list(range(1, 1502))
    assert not client.get_metric_history(run_id, "bad") and not client.get_metric_history(run_id, "time")
    assert [a.path for a in client.list_artifacts(run_id)] == ["a.txt"]


def test_unreachable_store_fails_before_training(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    params = _params(tmp_path, uri="sqlite:////nonexistent-dir/dplc/mlflow.db")
    with pytest.raises(tracking.TrackingUnavailableError, match="unreachable"):
        tracking.check_store(params)
    env = dict(os.environ, MLFLOW_TRACKING_URI="http://127.0.0.1:9/", DPLC_PARAMS=str(ROOT / "params.yaml"),
               MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT="2")  # fmt: skip
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "pipelines.generator", "--method", "wpp"], cwd=tmp_path,
                         env=env | {"PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode != 0
    assert "MLflow tracking store http://127.0.0.1:9/ is unreachable" in out.stderr
    assert "Ray" not in out.stdout and time.perf_counter() - t0 < 60
    assert not (tmp_path / "runs").exists()


def _get(url: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"{}")


@pytest.mark.slow
def test_mlflow_ui_lists_experiment_and_registered_models(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    params = _params(tmp_path)
    uri = params["mlflow"]["tracking_uri"]
    with tracking.stage_run(params, "unit"):
        mlflow.log_metric("x", 1.0)
    client = mlflow.tracking.MlflowClient(uri)
    client.create_registered_model("fashion_mnist-dplc_wpp")
    (port,) = free_ports(1)
    exe = Path(sys.executable).with_name("mlflow")
    proc = subprocess.Popen([str(exe), "ui", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(base + "/health", timeout=2)
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise
                time.sleep(1)
        exps = _get(base + "/api/2.0/mlflow/experiments/search", {"max_results": 100})
        assert "dplc-test" in [e["name"] for e in exps["experiments"]]
        models = _get(base + "/api/2.0/mlflow/registered-models/search")
        assert "fashion_mnist-dplc_wpp" in [m["name"] for m in models["registered_models"]]
    finally:  # the server and its workers: SIGTERM, SIGKILL after 30 s (a loaded machine)
        stop_head(proc, grace_s=30)
