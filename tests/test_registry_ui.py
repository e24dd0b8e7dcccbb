"""The registry a person can browse: descriptions and tags, through the client and in the MLflow UI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

import mlflow
import pytest
from _browser import dump_dom
from mlflow import MlflowClient
from test_bitstream import fitted_entropy, tiny_codec

from dplc import registry
from pipelines.repro import free_ports, stop_head

NAME = "fashion_mnist-dplc_wpp"
DESCRIPTION = "DPLC into the frozen G*; Dataset: fashion_mnist at 32x32"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite store with one described, tagged model and one bare one."""
    root = tmp_path_factory.mktemp("registry-ui")
    codec = tiny_codec()
    codec.save(root / "codec")
    fitted_entropy(codec).save(root / "codec")
    uri = f"sqlite:///{root}/mlflow.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        exp = mlflow.create_experiment("ui", artifact_location=str(root / "artifacts"))
        with mlflow.start_run(experiment_id=exp):
            info = registry.log_codec(root / "codec")
            mv = registry.register(info.model_uri, NAME, alias="c4")
            registry.describe_model(NAME, DESCRIPTION, {"dataset": "fashion_mnist"})
            registry.tag_version(NAME, mv.version, {"bits_per_image": "64", "eval.mse": "0.1234"},
                                 description="C = 4 (64 bits per image)")  # fmt: skip
            registry.register(info.model_uri, "bare", alias=None)
        assert registry.version_by_alias(NAME, "c4") == str(mv.version)
        assert registry.version_by_alias(NAME, "c99") is None
    return uri


def test_descriptions_and_tags_through_the_client(store: str) -> None:
    client = MlflowClient(store, registry_uri=store)
    model = client.get_registered_model(NAME)
    assert model.description == DESCRIPTION and model.tags == {"dataset": "fashion_mnist"}
    version = client.get_model_version_by_alias(NAME, "c4")
    assert version.tags == {"bits_per_image": "64", "eval.mse": "0.1234"}
    assert version.description == "C = 4 (64 bits per image)"
    assert client.get_model_version("bare", "1").tags == {}


@pytest.mark.slow
def test_the_mlflow_ui_shows_models_and_version_tags(store: str) -> None:
    (port,) = free_ports(1)
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store,
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        env=os.environ | {"MLFLOW_LOGGING_LEVEL": "WARNING"},
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if urllib.request.urlopen(f"{base}/health", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.5)
        else:
            raise AssertionError("the MLflow server did not start")
        models = dump_dom(f"{base}/#/models")
        assert NAME in models and "bare" in models
        assert "Dataset: fashion_mnist" in dump_dom(f"{base}/#/models/{NAME}")  # the description
        page = dump_dom(f"{base}/#/models/{NAME}/versions/1")
        assert "eval.mse" in page and "0.1234" in page and "bits_per_image" in page
        bare = dump_dom(f"{base}/#/models/bare/versions/1")  # the check can fail: no tags there
        assert "bare" in bare and "eval.mse" not in bare
    finally:  # the server and its workers: SIGTERM, SIGKILL after 30 s (a loaded machine)
        stop_head(server, grace_s=30)
