"""Fixtures for the pipeline tests: a tiny prepared dataset and Ray params."""

from __future__ import annotations

import os

import numpy as np
import pytest

from dplc import data
from pipelines.params import RayParams


@pytest.fixture(scope="session")
def tiny_prepared(tmp_path_factory):
    """256 training and 64 test images of smooth blobs, written with the real Parquet writer."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:28, 0:28]

    def make(n):
        cx, cy = rng.uniform(8, 20, (2, n, 1, 1))
        img = 255 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 30.0)
        return data.ImageArray(img.astype(np.uint8)[..., None], rng.integers(0, 10, n))

    root = tmp_path_factory.mktemp("prepared")
    data.write_shards(root, {"train": make(256), "test": make(64)}, source="blobs")
    return root


def ray_params(
    workers: int = 1,
    threads: int = 1,
    address: str | None = None,
    failures: int = 2,
    local_mode: str = "never",
) -> RayParams:
    """Ray params for the tests; jobs run on worker actors unless ``local_mode='auto'``."""
    return RayParams(
        address=address,
        num_workers=workers,
        use_gpu=False,
        threads_per_worker=threads,
        max_failures=failures,
        report_every=1,
        local_mode=local_mode,
    )


@pytest.fixture(autouse=True)
def _isolate_mlflow():
    """Stage helpers set MLflow's tracking URI (and its environment variable): undo that."""
    before = os.environ.get("MLFLOW_TRACKING_URI")
    yield
    import mlflow

    while mlflow.active_run():
        mlflow.end_run()
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before
    mlflow.set_tracking_uri(before)


RAY_LANE = pytest.mark.xdist_group("ray")
"""The tests that start Ray runtimes of their own on default ports or join "the current cluster"
(``ray.init()`` in this process, ``ray up`` on loopback), and the 64×64 end to end: `make test`
runs the suite on two pytest-xdist workers (``--dist loadgroup``), and this group's tests run one
after another on one of them while the quick end to end runs on the other."""
