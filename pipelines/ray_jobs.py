"""Ray Train and Ray Tune set-up shared by the training stages.

Every training job is a ``TorchTrainer``: ``ScalingConfig`` (workers, GPUs) from params, data
parallelism over the workers (gradients all-reduced over the torch process group Ray sets up;
DDP's wrapper cannot differentiate the gradient penalty twice, so the library's explicit
all-reduce hook is used instead), checkpoints reported through ``ray.train.report`` and a
``FailureConfig`` so a failed worker group restarts from the last checkpoint.

The worker function only adapts: it loads data, runs :func:`dplc.train.fit` with callbacks
that turn the loop's checkpoints into Ray checkpoints, and nothing else. The driver exports the
trained model from the final Ray checkpoint, so it works whether or not the workers share a
filesystem with the driver.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ray
import ray.train
import ray.train.torch
import ray.train.v2.api.config
import torch
from ray.train import (
    Checkpoint,
    CheckpointConfig,
    FailureConfig,
    LoggingConfig,
    RunConfig,
    ScalingConfig,
)
from ray.train.torch import TorchTrainer

from dplc import data
from dplc.codec import Codec
from dplc.config import TrainConfig, from_dict, to_dict
from dplc.train import CHECKPOINT_NAME, Callback, NullCallback, fit, load_method, set_threads, setup
from pipelines import layout as L
from pipelines.params import RayParams

HISTORY_NAME = "history.json"
TIMING_NAME = "worker_timing.json"
"""Rank 0's wall-clock times (``time.time()``) of entering the worker function and of being
ready to train (data read, method built), saved with each checkpoint: where a job's fixed cost
goes (:func:`worker_timing`)."""


# Settings for the processes Ray starts (controller, workers), chosen so that a `dvc repro` log
# shows training, not Ray's internals: print() in a worker goes to stdout once (Ray Train's print
# patch would echo each line a second time through its logger), and a local runtime, which
# nothing can preempt, runs no preemption watcher (its actor makes the core worker log an error
# about restartable actors).
WORKER_ENV = {"RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.5", "RAY_TRAIN_ENABLE_PRINT_PATCH": "0"}
LOCAL_ENV = {"RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0"}
TRAIN_LOG_LEVEL = "WARNING"
"""Ray Train's own log level on the console: its per-report INFO lines ("Reporting training
result", "Checkpoint successfully created") are replaced by the loop's progress lines."""


def _on_this_machine(address: str) -> bool:
    """Whether a Ray address names a runtime on this machine (a loopback address)."""
    return address.startswith(("127.", "localhost"))


def runtime_settings(address: str | None) -> dict[str, str]:
    """Environment for Ray's processes: :data:`WORKER_ENV`, plus :data:`LOCAL_ENV` when no
    cluster address is given or it names a runtime on this machine; then also ``RAY_ADDRESS``,
    so that Ray Train's helpers that query the State API find *this* runtime even when
    another one runs on the same machine."""
    if not address:
        return WORKER_ENV | LOCAL_ENV
    if _on_this_machine(address):
        return WORKER_ENV | LOCAL_ENV | {"RAY_ADDRESS": address}
    return dict(WORKER_ENV)


def init_ray(rp: RayParams) -> None:
    """Join the cluster at ``rp.address`` (or ``RAY_ADDRESS``), else start a local runtime.

    A local runtime starts with the dashboard, whose State API Ray Train's placement-group
    cleaner polls every second (without it, each poll logs a warning). ``python -m
    pipelines.repro`` starts one runtime for a whole ``dvc repro`` and every stage joins it;
    it (and the Makefile) set ``RAY_AUTH_MODE=token`` in the environment, which keeps Ray's
    default token authentication without its warning that it chose it.
    """
    if ray.is_initialized():
        return
    settings = runtime_settings(rp.address)
    os.environ.update(settings)  # the driver's own Ray Train controller reads them too
    env = {"env_vars": settings}
    if rp.address:
        ray.init(address=rp.address, runtime_env=env, log_to_driver=True)
    else:
        ray.init(include_dashboard=True, dashboard_host="127.0.0.1", runtime_env=env,
                 log_to_driver=True)  # fmt: skip


def allreduce_gradients(module: torch.nn.Module) -> None:
    """Average the gradients of ``module`` over the torch process group (data parallelism)."""
    import torch.distributed as dist

    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads or not dist.is_initialized() or dist.get_world_size() == 1:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset : offset + n].view_as(g))
        offset += n


class _RayReporter(NullCallback):
    """Loop callback: every checkpoint becomes a ``ray.train.report`` (rank 0 attaches files).

    In Ray Train's local mode, which keeps only the last reported checkpoint object and writes
    nothing, ``keep`` names the folder where rank 0 also keeps the checkpoint's files, so that
    an interrupted local job resumes (:func:`_local_checkpoint`)."""

    def __init__(self, rank: int, report_every: int, total: int, history: list[dict[str, Any]],
                 times: dict[str, float] | None = None, keep: Path | None = None) -> None:  # fmt: skip
        self.rank = rank
        self.keep = keep
        self.times = times if times is not None else {}
        self.report_every = report_every
        self.total = total
        self.history = history
        self.last: dict[str, float] = {}

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        self.last = metrics
        self.history.append({"step": step, "time": time.time(), **metrics})

    def on_checkpoint(self, step: int, path: Path) -> None:
        if step % self.report_every and step != self.total:
            return
        metrics = {"step": step, **self.last}
        if self.rank != 0:
            ray.train.report(metrics, checkpoint=None)
            return
        if self.keep is not None:
            ray.train.report(metrics, checkpoint=Checkpoint.from_directory(self._keep(path)))
            return
        with tempfile.TemporaryDirectory() as tmp:
            self._write(path, Path(tmp))
            ray.train.report(metrics, checkpoint=Checkpoint.from_directory(tmp))

    def _write(self, path: Path, folder: Path) -> None:
        shutil.copy2(path, folder / CHECKPOINT_NAME)
        (folder / HISTORY_NAME).write_text(json.dumps(self.history))
        (folder / TIMING_NAME).write_text(json.dumps(self.times))

    def _keep(self, path: Path) -> Path:
        """Write the checkpoint next to ``keep`` and swap it in (the previous one stays whole
        until the new one is complete); returns ``keep``."""
        assert self.keep is not None
        new, old = self.keep.with_name(self.keep.name + ".new"), self.keep.with_name(self.keep.name + ".old")
        shutil.rmtree(new, ignore_errors=True)
        new.mkdir(parents=True)
        self._write(path, new)
        if self.keep.exists():
            shutil.rmtree(old, ignore_errors=True)
            self.keep.rename(old)
        new.rename(self.keep)
        shutil.rmtree(old, ignore_errors=True)
        return self.keep


def _local_checkpoint(keep: Path) -> Checkpoint | None:
    """The checkpoint a local-mode job kept (:class:`_RayReporter`), or the previous one when
    the job stopped between the two renames of a swap; None when there is none."""
    for folder in (keep, keep.with_name(keep.name + ".old")):
        if (folder / CHECKPOINT_NAME).is_file():
            return Checkpoint.from_directory(str(folder))
    return None


def _quiet_report_logger() -> None:
    """Ray Train logs "Reporting training result ..." (with every metric) at each report through
    a logger named after its source *file* (``logging.getLogger(__file__)`` in
    ``ray.train.v2._internal.execution.context``), so :data:`TRAIN_LOG_LEVEL` misses it: set
    that one logger's level here, in the worker. In local mode the same line comes as
    "Reported metrics ..." from ``train_fn_utils``' module logger."""
    from ray.train.v2._internal.execution import context, train_fn_utils

    logging.getLogger(context.__file__).setLevel(TRAIN_LOG_LEVEL)
    logging.getLogger(train_fn_utils.__name__).setLevel(TRAIN_LOG_LEVEL)


WorkerCallback = Callable[[int], Callback]
"""Makes one more loop callback in each worker, given the step the worker resumed from (0 on a
first attempt); it may read ``ray.train.get_context()``. This is how a caller watches or
interrupts the workers' loop (the tests inject a failure and record where each rank ran)."""


def _worker(config: dict[str, Any]) -> None:
    """train_loop_per_worker: resume from Ray's checkpoint, run dplc.train.fit, report."""
    times = {"entered": time.time()}
    _quiet_report_logger()
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    cfg = from_dict(TrainConfig, config["train"])
    set_threads(cfg.loop.threads)
    split = data.read_split(config["data_dir"], "train", limit=config.get("train_limit"))
    images = data.to_tensor(split.images, cfg.net.image_size)
    generator = (
        Codec.load(config["generator_dir"]).generator if config.get("generator_dir") else None
    )
    local = Path(tempfile.mkdtemp(prefix=f"dplc-rank{rank}-"))
    history: list[dict[str, Any]] = []
    keep = Path(config["keep_checkpoint"]) if config.get("keep_checkpoint") else None
    restored = _local_checkpoint(keep) if keep is not None else ray.train.get_checkpoint()
    if restored is not None:
        with restored.as_directory() as d:
            shutil.copy2(Path(d) / CHECKPOINT_NAME, local / CHECKPOINT_NAME)
            if (Path(d) / HISTORY_NAME).is_file():
                history = json.loads((Path(d) / HISTORY_NAME).read_text())
    resumed_from = int(history[-1]["step"]) if history else 0
    callbacks = [_RayReporter(rank, int(config["report_every"]), cfg.loop.steps, history, times, keep)]
    callbacks += [make(resumed_from) for make in config.get("worker_callbacks", ())]
    sync = allreduce_gradients if world > 1 else None
    # every rank builds the same initial weights and draws its own batches; a worker Ray gave a
    # GPU (ray.use_gpu) trains there, with NCCL all-reducing the gradients
    device = ray.train.torch.get_device() if torch.cuda.is_available() else None
    method, batches = setup(cfg, images, generator, sync)
    times["ready"] = time.time()
    fit(cfg, method, batches, local, callbacks, rank=rank, device=device)
    shutil.rmtree(local, ignore_errors=True)


def job_name(
    name: str,
    cfg: TrainConfig,
    generator_dir: Path | None,
    train_limit: int | None,
    data_dir: Path,
) -> str:
    """``name`` plus a fingerprint of everything the job's result depends on.

    Ray Train resumes a run whose storage folder already exists. Keying the folder on the
    training config, G*'s weight hash and the prepared data's manifest means only an
    interrupted run of the *same* job is resumed; a job with other params starts afresh.
    """
    gen_hash = None
    if generator_dir is not None:
        desc = Path(generator_dir) / "codec.json"
        gen_hash = json.loads(desc.read_text()).get("weights_sha256") if desc.is_file() else None
    manifest = Path(data_dir) / "manifest.json"
    train = to_dict(cfg)
    for cosmetic in ("progress_every_s", "label"):  # how progress is shown changes no result
        train["loop"].pop(cosmetic, None)
    key = {
        "train": train,
        "generator": gen_hash,
        "train_limit": train_limit,
        "data": hashlib.sha256(manifest.read_bytes()).hexdigest() if manifest.is_file() else None,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    return f"{name}-{digest[:12]}"


def runs_locally(rp: RayParams) -> bool:
    """Whether a job runs in Ray Train's local mode (``ScalingConfig(num_workers=0)``: the
    worker function in this process, no controller or worker actors).

    ``ray.local_mode: auto`` chooses it for what it costs nothing to run here: one CPU worker
    and no cluster (no address, or a runtime on this machine, like the one ``pipelines.repro``
    starts). Its results are the actor worker's, bit for bit (tests/pipelines/test_ray_jobs.py);
    what it gives up is Ray's restart of a failed worker (``max_failures``): a failed local job
    fails its stage, and the stage's rerun resumes from the kept checkpoint. ``never`` always
    starts the actors. On a cluster (``ray submit``: ``RAY_ADDRESS=auto``), with GPUs or with
    more than one worker, jobs always run on actors.
    """
    if rp.local_mode == "never" or rp.num_workers != 1 or rp.use_gpu:
        return False
    return not rp.address or _on_this_machine(rp.address)


def discard_run(result: ray.train.Result) -> None:
    """Delete a finished job's Ray storage folder (checkpoints already exported), so that a later
    forced rerun of the same job trains again instead of resuming at its last step."""
    path = Path(result.path) if getattr(result, "path", None) else None
    if path is not None and path.is_dir():
        shutil.rmtree(path, ignore_errors=True)


def run_training(
    cfg: TrainConfig,
    rp: RayParams,
    name: str,
    generator_dir: Path | None = None,
    train_limit: int | None = None,
    storage: Path | None = None,
    worker_callbacks: Sequence[WorkerCallback] = (),
    callbacks: list | None = None,
    data_dir: Path | None = None,
) -> ray.train.Result:
    """Run one training job as a TorchTrainer and return Ray's Result.

    ``worker_callbacks`` add loop callbacks in every worker (:data:`WorkerCallback`; they travel
    to the workers pickled, so define them at a module's top level); ``callbacks`` are Ray
    Train's, on the driver.
    """
    local = runs_locally(rp)
    if not local:
        init_ray(rp)
    storage = (storage or L.ray_storage()).resolve()
    storage.mkdir(parents=True, exist_ok=True)
    data_dir = (data_dir or L.prepared_dir()).resolve()
    name = job_name(name, cfg, generator_dir, train_limit, data_dir)
    threads = max(1, cfg.loop.threads)
    keep = storage / name / "checkpoint" if local else None
    if local:  # chosen, not stumbled into: no "Running in local mode ... file a report" line
        logging.getLogger(ray.train.v2.api.config.__name__).setLevel(TRAIN_LOG_LEVEL)
    trainer = TorchTrainer(
        _worker,
        train_loop_config={
            "train": to_dict(cfg),
            "data_dir": str(data_dir),
            "generator_dir": str(generator_dir.resolve()) if generator_dir else None,
            "report_every": max(
                cfg.loop.checkpoint_every,
                rp.report_every // cfg.loop.checkpoint_every * cfg.loop.checkpoint_every,
            ),
            "train_limit": train_limit,
            "worker_callbacks": list(worker_callbacks),
            "keep_checkpoint": str(keep) if keep else None,
        },
        scaling_config=ScalingConfig(
            num_workers=0 if local else rp.num_workers,
            use_gpu=rp.use_gpu,
            resources_per_worker={"CPU": threads} if not rp.use_gpu else None,
        ),
        run_config=RunConfig(
            name=name,
            storage_path=str(storage),
            failure_config=FailureConfig(max_failures=rp.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=1),
            callbacks=callbacks,
            logging_config=LoggingConfig(log_level=TRAIN_LOG_LEVEL),
        ),
    )
    result = trainer.fit()
    # local mode leaves the run folder to the caller: name it, as the actor path does
    return dataclasses.replace(result, path=str(storage / name)) if local else result


def worker_timing(result: ray.train.Result) -> dict[str, float]:
    """Rank 0's :data:`TIMING_NAME` times from the job's final checkpoint ({} if absent)."""
    if result.checkpoint is None:
        return {}
    with result.checkpoint.as_directory() as d:
        path = Path(d) / TIMING_NAME
        return json.loads(path.read_text()) if path.is_file() else {}


def restore_method(cfg: TrainConfig, result: ray.train.Result, generator_dir: Path | None = None):
    """(method, step, history): the trained method from the job's final Ray checkpoint (on the
    driver), and the loop's metrics history the workers reported."""
    if result.checkpoint is None:
        raise RuntimeError(f"training job finished without a checkpoint: {result.error}")
    generator = Codec.load(generator_dir).generator if generator_dir else None
    with result.checkpoint.as_directory() as d:
        method, step = load_method(cfg, Path(d) / CHECKPOINT_NAME, generator)
        hist_path = Path(d) / HISTORY_NAME
        history = json.loads(hist_path.read_text()) if hist_path.is_file() else []
    return method, step, history
