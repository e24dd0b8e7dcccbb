"""Ray Train jobs: data parallel over 2 workers, resume after an injected worker failure,
and a real two-node Ray cluster on loopback with one worker on each node."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import time

import pytest
import ray
import torch
from _tiny import tiny_method, tiny_net
from _worker_hooks import FailOnce, Trace
from conftest import RAY_LANE, ray_params

from dplc.config import LoopConfig, TrainConfig, from_dict, to_dict
from pipelines import ray_jobs, repro

pytestmark = [pytest.mark.slow, RAY_LANE]


def _cfg(steps: int = 8, name: str = "cae", c: int = 1) -> TrainConfig:
    loop = LoopConfig(
        steps=steps, seed=1, checkpoint_every=2, log_every=1, threads=1, progress_every_s=0
    )
    return TrainConfig(
        tiny_net(code_channels=c, noise=name != "cae"), tiny_method(name, batch_size=8), loop
    )


@pytest.fixture
def local_ray():
    ray.shutdown()
    yield
    ray.shutdown()


def test_two_workers_survive_an_injected_failure_and_resume(local_ray, tiny_prepared, tmp_path):
    trace = tmp_path / "trace"
    trace.mkdir()
    cfg = _cfg()
    result = ray_jobs.run_training(
        cfg, ray_params(workers=2, threads=1), "fault", None, storage=tmp_path / "ray",
        worker_callbacks=[FailOnce(5), Trace(str(trace))], data_dir=tiny_prepared,
    )  # fmt: skip
    assert result.error is None
    method, step, history = ray_jobs.restore_method(cfg, result)
    assert step == cfg.loop.steps
    steps = [h["step"] for h in history]
    assert steps == sorted(set(steps)) and steps[-1] == cfg.loop.steps, steps
    runs = [json.loads(p.read_text()) for p in trace.glob("rank*.json")]
    assert {r["rank"] for r in runs} == {0, 1}
    attempts = sorted((r for r in runs if r["rank"] == 0), key=lambda r: r["resumed_from"])
    assert len(attempts) == 2  # the worker group was restarted once...
    assert attempts[0]["resumed_from"] == 0 and attempts[1]["resumed_from"] == 4  # ...from step 4


def _status_until(address: str, env: dict[str, str], live: int,
                  timeout_s: float) -> subprocess.CompletedProcess:  # fmt: skip
    """``ray status`` polled until it reports ``live`` live nodes or the time runs out (the GCS
    marks a killed node dead only after its health checks fail, seconds later); the last probe."""
    deadline = time.monotonic() + timeout_s
    while True:
        probe = subprocess.run([str(repro.BIN / "ray"), "status", f"--address={address}"],
                               env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
        done = probe.returncode == 0 and repro._live_nodes(probe.stdout) == live
        if done or time.monotonic() > deadline:
            return probe
        time.sleep(1.0)


def test_two_node_loopback_cluster_places_one_worker_per_node(tiny_prepared, tmp_path):
    """Two Ray nodes on 127.0.0.1, each in a process group of its own, ended by killing those
    groups: never ``ray stop``, which would end every Ray runtime on the machine (a repro's too)."""
    ray.shutdown()
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    head, address = repro.start_head(env, num_cpus=1, extra=("--resources", '{"head": 1}'))
    second = None
    try:
        second = repro.join_node(address, env, nodes=2, extra=("--resources", '{"second": 1}'))
        trace = tmp_path / "trace"
        trace.mkdir()
        cfg = _cfg(steps=4)
        result = ray_jobs.run_training(
            cfg, ray_params(workers=2, threads=1, address=address), "two-node", None,
            storage=tmp_path / "ray", data_dir=tiny_prepared, worker_callbacks=[Trace(str(trace))],
        )  # fmt: skip
        assert result.error is None
        assert len([n for n in ray.nodes() if n["Alive"]]) == 2
        placed = [
            json.loads(p.read_text()) for p in sorted(trace.glob("rank*.json"))
        ]  # one attempt
        assert sorted(p["rank"] for p in placed) == [0, 1]
        assert len({p["node"] for p in placed}) == 2, placed
        ray.shutdown()
        repro.stop_head(second)  # ends that node's group only: the head still answers, alone
        second = None
        probe = _status_until(address, env, live=1, timeout_s=90.0)
        assert probe.returncode == 0 and repro._live_nodes(probe.stdout) == 1, probe.stdout
    finally:
        ray.shutdown()
        if second is not None:
            repro.stop_head(second)
        repro.stop_head(head)


def test_job_name_changes_with_anything_the_result_depends_on(tiny_prepared, tmp_path):
    """Ray resumes a run whose folder exists: the folder name must change with the job."""
    cfg = _cfg()
    base = ray_jobs.job_name("j", cfg, None, None, tiny_prepared)
    assert base == ray_jobs.job_name("j", cfg, None, None, tiny_prepared)
    other_steps = from_dict(TrainConfig, to_dict(cfg) | {"loop": to_dict(cfg.loop) | {"steps": 9}})
    assert ray_jobs.job_name("j", other_steps, None, None, tiny_prepared) != base
    assert ray_jobs.job_name("j", cfg, None, 100, tiny_prepared) != base
    gen = tmp_path / "g"
    gen.mkdir()
    (gen / "codec.json").write_text(json.dumps({"weights_sha256": "a"}))
    with_a = ray_jobs.job_name("j", cfg, gen, None, tiny_prepared)
    (gen / "codec.json").write_text(json.dumps({"weights_sha256": "b"}))
    assert with_a != ray_jobs.job_name("j", cfg, gen, None, tiny_prepared) != base


def test_local_mode_trains_what_a_worker_actor_trains_and_resumes_from_its_kept_checkpoint(
    local_ray, tiny_prepared, tmp_path, monkeypatch
):
    # a runtime of this test's own: joining a loopback head exports RAY_ADDRESS (init_ray), and
    # an earlier test's head is gone
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    cfg = _cfg()
    on_actor = ray_jobs.run_training(cfg, ray_params(), "a", None, storage=tmp_path / "a",
                                     data_dir=tiny_prepared)  # fmt: skip
    ray.shutdown()
    local = ray_params(local_mode="auto")
    assert ray_jobs.runs_locally(local)
    with pytest.raises(RuntimeError, match="injected failure at step 5"):  # an interrupted job
        ray_jobs.run_training(cfg, local, "l", None, storage=tmp_path / "l",
                              worker_callbacks=[FailOnce(5)], data_dir=tiny_prepared)  # fmt: skip
    assert not ray.is_initialized()  # local mode needs no Ray runtime
    kept = list((tmp_path / "l").glob("l-*/checkpoint"))
    assert len(kept) == 1 and (kept[0] / "history.json").is_file()
    assert json.loads((kept[0] / "history.json").read_text())[-1]["step"] == 4
    in_process = ray_jobs.run_training(cfg, local, "l", None, storage=tmp_path / "l",
                                       worker_callbacks=[FailOnce(5)], data_dir=tiny_prepared)  # fmt: skip
    assert not ray.is_initialized()
    a, step_a, _ = ray_jobs.restore_method(cfg, on_actor)
    b, step_b, history = ray_jobs.restore_method(cfg, in_process)
    assert step_a == step_b == cfg.loop.steps
    # FailOnce raises in a first attempt only: this run finished, so it resumed (at step 4)
    assert [h["step"] for h in history] == list(range(1, cfg.loop.steps + 1))
    for name, module in a.modules.items():  # bit for bit
        sa, sb = module.state_dict(), b.modules[name].state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa), name
    assert ray_jobs.worker_timing(in_process)["ready"] > 0
    ray_jobs.discard_run(in_process)
    assert list((tmp_path / "l").iterdir()) == []


def test_local_mode_only_for_one_cpu_worker_on_this_machine():
    auto = ray_params(local_mode="auto")
    assert ray_jobs.runs_locally(auto)
    assert ray_jobs.runs_locally(ray_params(local_mode="auto", address="127.0.0.1:6380"))
    assert not ray_jobs.runs_locally(ray_params(local_mode="never"))
    assert not ray_jobs.runs_locally(ray_params(workers=2, local_mode="auto"))
    assert not ray_jobs.runs_locally(ray_params(local_mode="auto", address="auto"))  # ray submit
    assert not ray_jobs.runs_locally(ray_params(local_mode="auto", address="10.0.0.5:6379"))
    assert not ray_jobs.runs_locally(dataclasses.replace(auto, use_gpu=True))


def test_runtime_settings_keep_cluster_features_and_pin_a_local_address():
    local = ray_jobs.runtime_settings(None)
    assert local["RAY_TRAIN_ENABLE_PRINT_PATCH"] == "0" and "RAY_ADDRESS" not in local
    assert local["RAY_TRAIN_ENABLE_PREEMPTION_WATCHER"] == "0"  # nothing preempts a laptop
    joined = ray_jobs.runtime_settings("127.0.0.1:6380")
    assert joined["RAY_ADDRESS"] == "127.0.0.1:6380"
    remote = ray_jobs.runtime_settings("10.0.0.5:6379")  # a real cluster may be preempted
    assert "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER" not in remote and "RAY_ADDRESS" not in remote
