"""Loop callbacks the Ray tests put into the training workers (``worker_callbacks`` of
:func:`pipelines.ray_jobs.run_training`): a one-off injected failure and a record of where each
rank ran. The module is pickled by value, so the workers need not import the tests."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import ray
import ray.cloudpickle
import ray.train

from dplc.train import NullCallback

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


class _Fail(NullCallback):
    def __init__(self, at: int) -> None:
        self.at = at

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        if step >= self.at:
            raise RuntimeError(f"injected failure at step {step} (fault test)")


@dataclass(frozen=True)
class FailOnce:
    """Raise at step ``at`` in a first attempt only (a resumed worker group trains on)."""

    at: int

    def __call__(self, resumed_from: int) -> NullCallback:
        return _Fail(self.at) if resumed_from == 0 else NullCallback()


@dataclass(frozen=True)
class Trace:
    """Write ``rank<r>-<pid>.json`` into ``folder``: rank, world size, node, pid, resumed step."""

    folder: str

    def __call__(self, resumed_from: int) -> NullCallback:
        ctx = ray.train.get_context()
        trace = {"rank": ctx.get_world_rank(), "world": ctx.get_world_size(),
                 "node": ray.get_runtime_context().get_node_id(), "pid": os.getpid(),
                 "resumed_from": resumed_from}  # fmt: skip
        Path(self.folder, f"rank{trace['rank']}-{os.getpid()}.json").write_text(json.dumps(trace))
        return NullCallback()
