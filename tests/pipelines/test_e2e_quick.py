"""End to end: `dvc repro` of the quick profile in a temporary copy of the repository.

The first run is interrupted during a training stage; the rerun must redo only what is missing.
Then the metrics, plots, registered models and a compress/decompress round trip through the
registry (`python -m dplc.compress ... --model models:/NAME@ALIAS`) are checked.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest
from _repo import copy_repo, env, run

pytestmark = pytest.mark.slow


def test_quick_profile_repro_interrupt_resume_and_registry(tmp_path, capsys, monkeypatch):
    repo = copy_repo(tmp_path / "repo")
    run([sys.executable, "-m", "pipelines.profile", "quick"], repo)
    # 1. interrupt the first repro while a Ray training stage runs
    log = open(tmp_path / "first.log", "w")  # noqa: SIM115 - held open while the process runs
    # a shell that starts CI in the background ignores SIGINT, and children inherit that:
    # restore the default so the interrupt below is a real Ctrl-C
    proc = subprocess.Popen(["dvc", "repro"], cwd=repo, env=env(repo), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    try:
        deadline = time.time() + 600
        while not (repo / "runs" / "ray").exists():
            assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            assert time.time() < deadline
            time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:  # never leave a repro running behind a failed test
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
        # what the interrupted stage started (its local Ray runtime) is in the repro's session:
        # end only that, never `ray stop`, which would end every Ray runtime on the machine
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0
    assert (repo / "runs" / "featnet" / "metrics.json").is_file()
    assert not (repo / "runs" / "generator" / "wpp" / "codec").exists()
    # 2. the rerun redoes only what is missing, in one Ray runtime that every stage joins
    second = run([sys.executable, "-m", "pipelines.repro"], repo, timeout=1200)
    assert "Ray runtime for this repro at 127.0.0.1:" in second
    assert "Started a local Ray instance" not in second  # no stage started a runtime of its own
    # the log reads like a story: progress lines, none of Ray's known-harmless warnings
    assert "[wpp] step 60/60 (100%)" in second and "img/s" in second
    for noise in ("PlacementGroupCleaner", "Token authentication is enabled", "PreemptionWatcher",
                  "Reporting training result", "BuildBackendWarning", "Running in local mode",
                  "max_concurrent_trials"):
        assert noise not in second, noise
    assert second.count("[wpp] step 60/60") == 1  # a worker's line is forwarded once
    port = re.search(r"Ray runtime for this repro at 127\.0\.0\.1:(\d+)", second).group(1)
    # nothing listens on the head's port any more (`ray status` would say so only after its 40 s
    # GCS timeout), and no `ray start` of that port is left
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", int(port)), timeout=5):
        pass
    left = [p.info["cmdline"] for p in psutil.process_iter(["cmdline"]) if f"--port={port}" in (p.info["cmdline"] or [])]
    assert left == [], f"the repro's Ray runtime outlived it: {left}"
    assert "Stage 'prepare' didn't change, skipping" in second
    assert "Stage 'featnet' didn't change, skipping" in second
    assert "Running stage 'generator@wpp'" in second
    assert "Running stage 'report'" in second
    # finished jobs leave no Ray run folder behind (a forced rerun must train, not resume)
    leftover = [p.name for p in (repo / "runs" / "ray").glob("*") if p.name.startswith(("train-", "generator-"))]
    assert leftover == [], leftover
    # 3. metrics, plots and results, under the quick profile's own report folder
    reports = repo / "runs" / "reports" / "quick"
    assert not (repo / "reports").exists()  # the committed default-profile reports stay as they are
    metrics = json.loads((reports / "metrics.json").read_text())
    assert 0 <= metrics["featnet_test_accuracy"] <= 1 and "dplc_wpp.c4.mse" in metrics
    for name in ("mse", "psnr", "rfid", "pv"):
        assert (reports / "plots" / f"{name}.png").stat().st_size > 1000
    assert "dplc_wpp" in (reports / "results.md").read_text()
    recorded = json.loads((reports / "environment.json").read_text())
    assert recorded["cpu_model"] and recorded["versions"]["torch"] != "absent"
    assert "timing" not in json.loads((repo / "runs" / "train" / "cae" / "4" / "train.json").read_text())
    timing = json.loads((repo / "runs" / "timing" / "train-cae-c4.json").read_text())
    assert 0 < timing["training_seconds"] < timing["total_seconds"]
    parts = timing["ray_job_parts"]  # the Ray job itemised from the worker's own clock
    # a one-worker job on this machine runs in Ray Train's local mode: no actors to start
    assert 0 <= parts["ray_start"] < 1.0 and parts["worker_setup"] > 0 and parts["steps"] > 0
    assert sum(parts.values()) <= timing["phases"]["ray_job"] + 0.5
    shown = run(["dvc", "metrics", "show", "--json"], repo)
    assert "featnet_test_accuracy" in shown
    run(["dvc", "plots", "show", "-o", str(tmp_path / "plots")], repo)
    page = (tmp_path / "plots" / "index.html").read_text()
    assert "vega-embed" in page and "https://cdn" not in page  # the vendored offline template
    for name in ("dplc_wpp", "gc", "cae", "jpeg"):  # CompressAI-layout results of every codec
        layout = json.loads((reports / "compressai" / f"{name}.json").read_text())
        assert layout["name"] == name and layout["description"] and layout["results"]["bpp"]
    assert (reports / "decodes.png").stat().st_size > 10_000
    assert "didn't change" in run(["dvc", "repro", "report"], repo)  # a finished DAG is up to date
    # a stage run again on the same inputs writes the same outputs (its wall times go to
    # runs/timing/, which no stage reads), so DVC has nothing after it to redo
    timed = (repo / "runs" / "timing" / "generator-wpp.json").read_text()
    rerun = run([sys.executable, "-m", "pipelines.repro", "--force", "--no-run-cache", "--single-item",
                 "generator@wpp"], repo, timeout=600)  # fmt: skip
    assert "Running stage 'generator@wpp'" in rerun
    assert (repo / "runs" / "timing" / "generator-wpp.json").read_text() != timed  # it did run
    assert "up to date" in run(["dvc", "status"], repo)
    # 4. registered models, one version per rate and an alias per rate
    import mlflow

    client = mlflow.tracking.MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    for name in ("fashion_mnist-dplc_wpp", "fashion_mnist-gc", "fashion_mnist-cae"):
        versions = client.search_model_versions(f"name='{name}'")
        assert len(versions) == 2, name
        for alias in ("c0", "c4"):
            assert client.get_model_version_by_alias(name, alias).name == name
        model = client.get_registered_model(name)
        assert "Dataset: fashion_mnist" in model.description and model.tags["dataset"] == "fashion_mnist"
        v4 = client.get_model_version_by_alias(name, "c4")
        assert v4.tags["bits_per_image"] == "64" and v4.tags["code_channels"] == "4"
        assert v4.tags["training_run_id"] and float(v4.tags["eval.mse"]) > 0
        assert "eval.rfid_featnet" in v4.tags and "eval.bpp_file" in v4.tags
        if name.endswith("dplc_wpp"):
            assert v4.tags["generator_sha256"] and float(v4.tags["lambda_rate"]) > 0
    experiment = client.get_experiment_by_name("dplc-quick")
    assert "Codecs are registered" in experiment.tags["mlflow.note.content"]
    assert (repo / "runs" / "train" / "dplc_wpp" / "4" / "codec" / "decoder.onnx").is_file()
    # 5. compress with the registered model in one process, decompress in another
    from PIL import Image

    folder = tmp_path / "pngs"
    folder.mkdir()
    from dplc import data

    imgs = data.read_split(repo / "data" / "prepared", "test", limit=5).images
    for i, img in enumerate(imgs):
        Image.fromarray(img[..., 0]).save(folder / f"{i}.png")
    env_uri = {"MLFLOW_TRACKING_URI": f"sqlite:///{repo / 'mlflow.db'}"}
    cli = lambda *a: subprocess.run([sys.executable, "-m", "dplc.compress", *a], cwd=tmp_path, env=env(repo) | env_uri,  # noqa: E731
                                    capture_output=True, text=True, timeout=300)  # fmt: skip
    c = cli("compress", str(folder), "-o", str(tmp_path / "x.dplc"), "--model", "models:/fashion_mnist-dplc_wpp@c4")
    assert c.returncode == 0, c.stderr
    d = cli("decompress", str(tmp_path / "x.dplc"), "-o", str(tmp_path / "out"), "--model", "models:/fashion_mnist-dplc_wpp@c4")
    assert d.returncode == 0, d.stderr
    outs = sorted((tmp_path / "out").glob("*.png"))
    assert len(outs) == 5 and np.asarray(Image.open(outs[0])).shape == (28, 28)
    # 6. dplc_shared: registered at its one rate, its files are format 3 and refuse another seed
    shared = client.get_model_version_by_alias("fashion_mnist-dplc_shared_wpp", "c4")
    assert float(shared.tags["eval.mse"]) > 0 and "shared" in client.get_registered_model(shared.name).description
    model = "models:/fashion_mnist-dplc_shared_wpp@c4"
    assert cli("compress", str(folder), "-o", str(tmp_path / "s.dplc"), "--model", model).returncode == 0
    # the header and the refusal of another seed, in this process (the CLI's own tests run
    # them as subprocesses; here only the registry's file matters)
    from dplc.compress import main

    monkeypatch.setenv("MLFLOW_TRACKING_URI", env_uri["MLFLOW_TRACKING_URI"])
    capsys.readouterr()
    assert main(["info", str(tmp_path / "s.dplc"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["shared_noise"] is True and info["version"] == 3
    assert main(["decompress", str(tmp_path / "s.dplc"), "-o", str(tmp_path / "s1"), "--seed", "1"]) == 2
    assert "shared with the encoder" in capsys.readouterr().err
    assert cli("decompress", str(tmp_path / "s.dplc"), "-o", str(tmp_path / "s0")).returncode == 0
    assert len(list((tmp_path / "s0").glob("*.png"))) == 5
