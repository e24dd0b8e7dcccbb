"""End to end in the paper's 64×64 colour setting: `dvc repro` of the ``rgb64-smoke`` profile
on synthetic CelebA-layout JPEGs (aligned 178×218, centre-cropped to 64×64), in a temporary
copy of the repository; then the metrics, plots and registered models, and RGB PNGs through
``python -m dplc.compress`` with a registered model.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from _repo import copy_repo, env, run
from conftest import RAY_LANE

pytestmark = [pytest.mark.slow, RAY_LANE]


def test_rgb64_smoke_profile_runs_the_whole_dag(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    run([sys.executable, "-m", "pipelines.profile", "rgb64-smoke"], repo)
    params = (repo / "params.yaml").read_text()
    assert "source: celeba" in params and "channels: 3" in params and "image_size: 64" in params
    # 1. the whole DAG on synthetic aligned-CelebA JPEGs
    run([sys.executable, "-m", "dplc.synthetic", "celeba", "data/raw/rgb64-smoke", "--count", "320"], repo)
    log = run([sys.executable, "-m", "pipelines.repro"], repo, timeout=1200)
    assert "prepared {'train': 288, 'test': 32} from celeba" in log
    assert "'featnet_task': 'rotation'" in log  # an unlabelled source: the rotation task
    # 2. metrics and plots under the profile's own report folder
    reports = repo / "runs" / "reports" / "rgb64-smoke"
    assert not (repo / "reports").exists()
    metrics = json.loads((reports / "metrics.json").read_text())
    for name in ("dplc_wpp", "gc", "cae"):
        for rate in (2,):  # the profile's one rate (rate 0, channel-blind, is the quick test's)
            assert metrics[f"{name}.c{rate}.mse"] > 0 and metrics[f"{name}.c{rate}.rfid"] >= 0
    for name in ("mse", "psnr", "rfid", "pv"):
        assert (reports / "plots" / f"{name}.png").stat().st_size > 1000
    assert (reports / "decodes.png").stat().st_size > 10_000
    results = json.loads((reports / "compressai" / "dplc_wpp.json").read_text())
    assert results["results"]["bpp"]
    # 3. registered models: one version per rate (one rate here), named for the dataset
    import mlflow

    client = mlflow.tracking.MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    for name in ("celeba-dplc_wpp", "celeba-gc", "celeba-cae"):
        assert len(client.search_model_versions(f"name='{name}'")) == 1, name
        assert client.get_model_version_by_alias(name, "c2").tags["bits_per_image"] == "32"
    # 4. RGB PNGs round trip through the CLI with the registered model, in two processes
    from PIL import Image

    from dplc import data

    folder = tmp_path / "pngs"
    folder.mkdir()
    imgs = data.read_split(repo / "data" / "prepared", "test", limit=5).images
    assert imgs.shape == (5, 64, 64, 3)
    for i, img in enumerate(imgs):
        Image.fromarray(img).save(folder / f"{i}.png")
    uri = {"MLFLOW_TRACKING_URI": f"sqlite:///{repo / 'mlflow.db'}"}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dplc.compress", *args], cwd=tmp_path, env=env(repo) | uri,
                              capture_output=True, text=True, timeout=300)  # fmt: skip

    model = "models:/celeba-dplc_wpp@c2"
    c = cli("compress", str(folder), "-o", str(tmp_path / "x.dplc"), "--model", model)
    assert c.returncode == 0, c.stderr
    info = cli("info", str(tmp_path / "x.dplc"))
    assert "channels                     3" in info.stdout and "height                       64" in info.stdout
    d = cli("decompress", str(tmp_path / "x.dplc"), "-o", str(tmp_path / "out"), "--model", model)
    assert d.returncode == 0, d.stderr
    outs = sorted((tmp_path / "out").glob("*.png"))
    assert len(outs) == 5
    decoded = np.stack([np.asarray(Image.open(p)) for p in outs])
    assert decoded.shape == (5, 64, 64, 3) and decoded.std() > 0
    # 5. the LSUN layout (an LMDB of JPEGs of varied sizes) through the same prepare stage; the
    # stages after it read only the prepared shards, which do not depend on the source
    run([sys.executable, "-m", "dplc.synthetic", "lsun", "data/raw/lsun", "--count", "40"], repo)
    run([sys.executable, "-m", "pipelines.profile", "rgb64-smoke", "-S", "data.source=lsun", "-S", "data.path=data/raw/lsun"], repo)
    prepared = run(["dvc", "repro", "prepare"], repo)
    assert "prepared {'train': 36, 'test': 4} from lsun" in prepared
    assert data.read_split(repo / "data" / "prepared", "train").images.shape == (36, 64, 64, 3)
