"""pipelines/stage_timing.py: what a stage records about its own cost, apart from its outputs."""

import time

import pytest

from pipelines import stage_timing


def test_training_seconds_extrapolates_the_logged_span_to_every_step():
    rows = [{"step": 10, "time": 100.0}, {"step": 20, "time": 102.0}, {"step": 30, "time": 104.0}]
    assert stage_timing.training_seconds(rows) == pytest.approx(6.0)  # 0.2 s a step, 30 steps
    assert stage_timing.training_seconds(rows[:1]) == 0.0  # one row says nothing about the pace
    assert stage_timing.training_seconds([]) == 0.0


def test_timing_splits_a_stage_into_phases_and_overhead():
    timing = stage_timing.Timing()
    assert timing.phases["start_and_imports"] > 0  # counted from the process's creation
    with timing.phase("export"):
        time.sleep(0.05)
    with timing.phase("export"):  # a phase entered twice adds up
        time.sleep(0.05)
    summary = timing.summary()
    assert summary["phases"]["export"] >= 0.1
    assert summary["overhead_seconds"] == summary["total_seconds"] >= 0.1
    assert "ray_job_parts" not in summary  # only a Ray job has them
    history = [{"step": 50, "time": 109.0}, {"step": 100, "time": 110.0}]
    timing.split_ray_job(100.0, 112.0, {"entered": 104.0, "ready": 105.0}, history)
    assert timing.summary()["ray_job_parts"] == {
        "ray_start": 4.0, "worker_setup": 1.0, "steps": 5.0, "after_last_step": 2.0
    }
    bare = stage_timing.Timing()
    bare.split_ray_job(100.0, 112.0, {}, history)  # no worker times (an old checkpoint): no parts
    assert "ray_job_parts" not in bare.summary()


def test_a_job_s_times_are_recorded_and_written_under_runs_timing(tmp_path, monkeypatch):
    monkeypatch.setattr(stage_timing.L, "RUNS", tmp_path)
    timing = stage_timing.Timing()
    timing.record_job(12.5, [{"step": 10, "time": 100.0}, {"step": 20, "time": 101.0}])
    summary = timing.summary()
    assert summary["job_seconds"] == 12.5 and summary["training_seconds"] == pytest.approx(2.0)
    path = stage_timing.write("train-cae-c4", summary)
    assert path == tmp_path / "timing" / "train-cae-c4.json" and path.read_text().count("job_seconds") == 1
    assert stage_timing.without_times({"step": 3, "time": 1.0, "loss": 0.5}) == {"step": 3, "loss": 0.5}


def test_a_resumed_job_times_only_its_own_steps():
    attempt = [{"step": 50, "time": 1000.0}, {"step": 100, "time": 1010.0}]  # then interrupted
    resumed = [{"step": 150, "time": 5000.0}, {"step": 200, "time": 5010.0}]  # 0.2 s a step again
    assert stage_timing.training_seconds(attempt + resumed) > 5_000  # the pause counted as steps
    timing = stage_timing.Timing()
    timing.record_job(30.0, attempt + resumed, since=4_990.0)
    summary = timing.summary()
    assert summary["training_seconds"] == pytest.approx(20.0)  # steps 101-200 at 0.2 s
    assert stage_timing.training_seconds(resumed, since=4_990.0) == pytest.approx(40.0)  # fresh: all 200
