"""pipelines/train.py: what a training stage records about its own cost."""

import time

import pytest

from pipelines import train


def test_training_seconds_extrapolates_the_logged_span_to_every_step():
    rows = [{"step": 10, "time": 100.0}, {"step": 20, "time": 102.0}, {"step": 30, "time": 104.0}]
    assert train.training_seconds(rows) == pytest.approx(6.0)  # 0.2 s a step, 30 steps
    assert train.training_seconds(rows[:1]) == 0.0  # one row says nothing about the pace
    assert train.training_seconds([]) == 0.0


def test_timing_splits_a_stage_into_phases_and_overhead():
    timing = train.Timing()
    assert timing.phases["start_and_imports"] > 0  # counted from the process's creation
    with timing.phase("export"):
        time.sleep(0.05)
    with timing.phase("export"):  # a phase entered twice adds up
        time.sleep(0.05)
    summary = timing.summary(training_seconds=0.0)
    assert summary["phases"]["export"] >= 0.1
    assert summary["overhead_seconds"] == summary["total_seconds"] >= 0.1
    assert "ray_job_parts" not in summary  # only a Ray job has them
    history = [{"step": 50, "time": 109.0}, {"step": 100, "time": 110.0}]
    timing.split_ray_job(100.0, 112.0, {"entered": 104.0, "ready": 105.0}, history)
    assert timing.summary(0.0)["ray_job_parts"] == {
        "ray_start": 4.0, "worker_setup": 1.0, "steps": 5.0, "after_last_step": 2.0
    }
    bare = train.Timing()
    bare.split_ray_job(100.0, 112.0, {}, history)  # no worker times (an old checkpoint): no parts
    assert "ray_job_parts" not in bare.summary(0.0)
