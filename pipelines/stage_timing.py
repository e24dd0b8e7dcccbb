"""What a stage's run cost in wall time, kept out of the outputs other stages depend on.

A stage's outputs hold only what its inputs determine, so that running it again on the same
inputs writes the same bytes and DVC leaves every stage after it alone (a wall time inside
``train.json`` or ``best.yaml`` would change their hash on every rerun and send DVC through the
whole DAG again). Each stage writes its times to ``runs/timing/<run name>.json`` instead
(:func:`pipelines.layout.timing_file`), a DVC metric that no stage depends on; the benchmarks
read them from there (``benchmarks/pipeline.py``).

>>> rows = [{"step": 10, "time": 100.0}, {"step": 30, "time": 104.0}]
>>> training_seconds(rows)  # 0.2 s a step over the logged span, times all 30 steps
6.0
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from pipelines import layout as L


class Timing:
    """Wall seconds of a stage's phases, from the process's creation (so imports count): what
    a job costs besides its training steps."""

    def __init__(self) -> None:
        self.created = psutil.Process().create_time()
        self.phases: dict[str, float] = {"start_and_imports": round(time.time() - self.created, 2)}
        self.ray_job_parts: dict[str, float] = {}
        self.job_seconds = 0.0
        self.training_seconds = 0.0

    def record_job(self, seconds: float, history: list[dict], since: float | None = None) -> None:
        """A training job's wall seconds and its steps' share (:func:`training_seconds`; rows
        logged before ``since``, the job's start, are an interrupted attempt's)."""
        self.job_seconds = seconds
        self.training_seconds = training_seconds(history, since)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.phases[name] = round(self.phases.get(name, 0.0) + time.perf_counter() - t0, 2)

    def summary(self) -> dict[str, float | dict[str, float]]:
        """Total, training and overhead (the rest) seconds so far, the phases and the job's parts."""
        total = time.time() - self.created
        out = {"total_seconds": round(total, 2), "training_seconds": round(self.training_seconds, 2),
               "overhead_seconds": round(total - self.training_seconds, 2), "phases": self.phases}  # fmt: skip
        if self.job_seconds:
            out["job_seconds"] = round(self.job_seconds, 2)
        return out | ({"ray_job_parts": self.ray_job_parts} if self.ray_job_parts else {})

    def split_ray_job(self, start: float, end: float, worker: dict[str, float], history: list[dict]) -> None:
        """Itemise the ``ray_job`` phase (wall times ``start`` .. ``end`` on the driver) with rank
        0's :data:`pipelines.ray_jobs.TIMING_NAME` times and the loop's last logged step:
        Ray Train's start (controller and worker processes) until the worker function runs, the
        worker's set-up (data, method), its steps, and what follows the last step (the final
        checkpoint's report, Ray Train's shutdown)."""
        rows = [h for h in history if "time" in h]
        if not rows or "entered" not in worker or "ready" not in worker:
            return
        last = rows[-1]["time"]
        self.ray_job_parts = {"ray_start": round(worker["entered"] - start, 2),
                              "worker_setup": round(worker["ready"] - worker["entered"], 2),
                              "steps": round(last - worker["ready"], 2),
                              "after_last_step": round(end - last, 2)}  # fmt: skip


def training_seconds(history: list[dict], since: float | None = None) -> float:
    """Seconds the steps took, from the loop's logged (step, time) rows: the span between the
    first and the last row, scaled up to all steps (the first window's time is not logged).

    A job resumed from a checkpoint carries the interrupted attempt's rows, logged before
    ``since`` (this job's start): only the steps after the last of them count, at the pace of
    the rows after ``since``, so neither the attempt nor the pause between the two is timed.

    >>> old = [{"step": 10, "time": 50.0}, {"step": 20, "time": 52.0}]  # an attempt, then a pause
    >>> new = [{"step": 30, "time": 104.0}, {"step": 40, "time": 106.0}]  # resumed at step 20
    >>> training_seconds(old + new, since=100.0)  # steps 21-40 at 0.2 s; without since: 74.7
    4.0
    """
    rows = [h for h in history if "time" in h]
    base = 0
    if since is not None:
        base = max((h["step"] for h in rows if h["time"] < since), default=0)
        rows = [h for h in rows if h["time"] >= since]
    if len(rows) < 2 or rows[-1]["step"] == rows[0]["step"]:
        return 0.0
    per_step = (rows[-1]["time"] - rows[0]["time"]) / (rows[-1]["step"] - rows[0]["step"])
    return per_step * (rows[-1]["step"] - base)


def without_times(row: dict[str, Any]) -> dict[str, Any]:
    """A history row as an output may hold it: its wall-clock ``time`` dropped."""
    return {k: v for k, v in row.items() if k != "time"}


def write(run_name: str, record: dict[str, Any]) -> Path:
    """``runs/timing/<run_name>.json``: the stage's times (never read by another stage)."""
    path = L.timing_file(run_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2))
    return path
