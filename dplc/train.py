"""The single-process training loop: seeding, checkpoints, exact resume, NaN guard, callbacks.

The loop knows nothing of Ray or MLflow. It calls :class:`Callback` hooks with the step's
metrics and with every checkpoint it writes, so a pipeline can forward them to Ray Train or
MLflow. Checkpoints hold the method's modules, optimisers and schedulers, the batch sampler's
generator and torch's global RNG state (and the CUDA one on a GPU), written atomically with ``torch.save`` and read back
with ``torch.load(weights_only=True)`` (no arbitrary unpickling). A resumed run therefore
continues bit-identically on the CPU.

A non-finite loss stops the run with :class:`NonFiniteLossError`; the last good checkpoint is
never overwritten by the bad step.

Typical use::

    method, images = setup(cfg, to_tensor(train.images, 32))
    result = fit(cfg, method, images, checkpoint_dir="ckpt")
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from dplc.codec import Codec
from dplc.config import LoopConfig, NetConfig, TrainConfig
from dplc.data import BatchSampler
from dplc.method import GradSync, Method
from dplc.method_specs import BY_NAME
from dplc.methods import build_method, generator_of
from dplc.progress import ProgressLine

CHECKPOINT_NAME = "last.pt"


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; training stopped and the last checkpoint was kept."""


class Callback(Protocol):
    """Hooks the loop calls; any may be omitted by subclassing :class:`NullCallback`."""

    def on_step(self, step: int, metrics: dict[str, float]) -> None: ...

    def on_checkpoint(self, step: int, path: Path) -> None: ...


class NullCallback:
    """A callback that does nothing; subclass it and override what you need."""

    def on_step(self, step: int, metrics: dict[str, float]) -> None:  # noqa: D102
        pass

    def on_checkpoint(self, step: int, path: Path) -> None:  # noqa: D102
        pass


@dataclass
class TrainResult:
    """What a finished run reports."""

    steps: int
    seconds: float
    images_per_s: float
    last_metrics: dict[str, float] = field(default_factory=dict)
    checkpoint: Path | None = None
    resumed_from: int = 0


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (the modules' initial weights depend on it)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_threads(threads: int) -> None:
    """Limit torch's intra-op threads (0 keeps torch's default)."""
    if threads > 0:
        torch.set_num_threads(threads)


def save_checkpoint(path: Path, step: int, method: Method, sampler: BatchSampler) -> Path:
    """Atomically write the full training state (temp file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "step": step,
        "method_name": method.name,
        "method": method.state_dict(),
        "sampler": sampler.state(),
        "torch_rng": torch.get_rng_state(),
    }
    if method.device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(method.device)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: Path, method: Method, sampler: BatchSampler | None = None) -> int:
    """Restore what :func:`save_checkpoint` wrote; returns the step to continue from.

    With ``sampler`` the run's whole state comes back (the sampler's position, torch's RNG) so
    training continues bit-identically; without it only the method (modules, optimisers,
    schedulers), as for exporting a trained model.
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("method_name") != method.name:
        raise ValueError(
            f"checkpoint {path} is for method {state.get('method_name')!r}, not {method.name!r}"
        )
    method.load_state_dict(state["method"])
    if sampler is not None:
        sampler.set_state(state["sampler"])
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and method.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], method.device)
    return int(state["step"])


def _check_finite(name: str, metrics: dict[str, float], step: int, ckpt: Path | None) -> None:
    """Raise :class:`NonFiniteLossError` when a step's loss is NaN or infinite."""
    bad = {k: v for k, v in metrics.items() if not math.isfinite(v)}
    if bad:
        where = f"; last good checkpoint kept at {ckpt}" if ckpt is not None and ckpt.is_file() else ""
        raise NonFiniteLossError(f"{name}: non-finite loss {bad} at step {step}{where}")


def images_per_step(method: Method) -> int:
    """Images one step of ``method`` draws (:meth:`dplc.method_specs.MethodSpec.images_per_step`)."""
    cfg = method.cfg
    return BY_NAME[method.name].images_per_step(cfg.batch_size, cfg.n_critic, cfg.critic_batch_size)


def deterministic_kernels(device: torch.device) -> None:
    """On a CUDA device, have cuDNN pick deterministic convolution algorithms and no autotuner.

    With torch's defaults cuDNN may choose kernels that accumulate in a varying order, so two
    fp32 runs from the same seed drift apart and a job resumed from its checkpoint does not
    repeat the uninterrupted one; with this both are bit-identical (``benchmarks/gpu.py
    --only determinism`` measures both settings). cuBLAS gets its fixed-size workspace
    (``CUBLAS_WORKSPACE_CONFIG``, read when a process first uses cuBLAS on the device), as
    torch's reproducibility notes ask. The CPU path is deterministic already.
    """
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


CUDA_WARMUP_STEPS = 10
"""Steps a CUDA run takes, and throws away, before its first counted one (:func:`warm_up`)."""


def warm_up(method: Method, sampler: BatchSampler, batch: Callable[[int], torch.Tensor], steps: int) -> None:
    """Take ``steps`` optimisation steps, then restore the whole training state they changed.

    On a CUDA device a process's first few steps need not compute bit for bit what the same
    steps compute once the process has run some (``benchmarks/gpu.py --only first_use``), so
    a job resumed in a fresh process would not repeat the uninterrupted one. Steps taken here
    and undone through :func:`save_checkpoint`/:func:`load_checkpoint` (modules, optimisers,
    schedulers, the sampler's position, torch's RNG) bring the process to that steady state
    and leave the run where it was.
    """
    with tempfile.TemporaryDirectory(prefix="dplc-warmup-") as tmp:
        path = save_checkpoint(Path(tmp) / CHECKPOINT_NAME, 0, method, sampler)
        for _ in range(steps):
            method.step(batch)
            method.end_step()
        load_checkpoint(path, method, sampler)


def _batches(method: Method, sampler: BatchSampler, channels_last: bool) -> Callable[[int], torch.Tensor]:
    """``batch(n)`` for ``method.step``: the sampler's draws on the method's device, in the
    channels-last layout when asked (the method's modules are switched to it here too)."""
    batch: Callable[[int], torch.Tensor] = sampler
    if method.device.type != "cpu":
        batch = lambda n: sampler(n).to(method.device, non_blocking=True)  # noqa: E731
    if channels_last:
        method.to_memory_format(torch.channels_last)
        on_device = batch
        batch = lambda n: on_device(n).contiguous(memory_format=torch.channels_last)  # noqa: E731
    return batch


def train(
    method: Method,
    sampler: BatchSampler,
    loop: LoopConfig,
    checkpoint_dir: str | Path | None = None,
    callbacks: Sequence[Callback] = (),
    resume: bool = True,
    device: torch.device | str | None = None,
) -> TrainResult:
    """Run ``loop.steps`` steps of ``method``, checkpointing every ``loop.checkpoint_every``.

    With ``resume`` and an existing ``checkpoint_dir/last.pt`` the run continues from there.
    Metrics are averaged over each ``loop.log_every`` window before the callbacks see them.
    With ``device`` the method moves there and every batch follows it (the sampler stays on
    the CPU, so its draws are the same on every device); on a GPU the run is kept repeatable
    (:func:`deterministic_kernels`) and its counted steps start in a warmed-up process
    (:func:`warm_up`), so a run resumed in a fresh process repeats the uninterrupted one.
    """
    set_threads(loop.threads)
    if device is not None:
        method.to(device)
    deterministic_kernels(method.device)
    ckpt = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir is not None else None
    start = 0
    if resume and ckpt is not None and ckpt.is_file():
        start = load_checkpoint(ckpt, method, sampler)
    method.train(True)
    batch = _batches(method, sampler, loop.channels_last)
    if method.device.type == "cuda" and start < loop.steps:
        warm_up(method, sampler, batch, CUDA_WARMUP_STEPS)
    if loop.progress_every_s > 0:
        line = ProgressLine(loop.label or method.name, loop.steps, images_per_step(method),
                            start=start, every_s=loop.progress_every_s)  # fmt: skip
        callbacks = [*callbacks, line]
    window: dict[str, list[float]] = {}
    last: dict[str, float] = {}
    t0 = time.perf_counter()
    step = start
    for step in range(start + 1, loop.steps + 1):
        metrics = method.step(batch)
        _check_finite(method.name, metrics, step, ckpt)
        method.end_step()
        for k, v in metrics.items():
            window.setdefault(k, []).append(v)
        if step % loop.log_every == 0 or step == loop.steps:
            last = {k: float(np.mean(v)) for k, v in window.items()}
            window = {}
            for cb in callbacks:
                cb.on_step(step, last)
        if ckpt is not None and (step % loop.checkpoint_every == 0 or step == loop.steps):
            save_checkpoint(ckpt, step, method, sampler)
            for cb in callbacks:
                cb.on_checkpoint(step, ckpt)
    if loop.channels_last:
        method.to_memory_format(torch.contiguous_format)
    method.train(False)
    seconds = time.perf_counter() - t0
    done = max(step - start, 0)
    ips = done * images_per_step(method) / seconds if seconds > 0 and done else 0.0
    return TrainResult(done, seconds, ips, last, ckpt, start)


def split_holdout(cfg: TrainConfig, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(training images, held-out images): dplc with a realism constraint keeps the last
    ``cfg.method.realism_holdout`` images out of its batches to measure the latent MMD on."""
    m = cfg.method
    if not BY_NAME[m.name].realism_constraint or m.mmd_epsilon <= 0 or cfg.net.code_channels == 0:
        return images, None
    if images.shape[0] < 2 * m.realism_holdout:
        raise ValueError(
            f"dplc holds out {m.realism_holdout} images for its realism constraint and needs at "
            f"least twice that many training images, got {images.shape[0]}"
        )
    return images[: -m.realism_holdout], images[-m.realism_holdout :]


def new_method(
    cfg: TrainConfig,
    generator: torch.nn.Module | None = None,
    grad_sync: GradSync | None = None,
    holdout: torch.Tensor | None = None,
    calibration: torch.Tensor | None = None,
) -> Method:
    """The method of ``cfg`` with fresh weights: :func:`dplc.methods.build_method` over the three
    parts of a TrainConfig (``generator`` is dplc's frozen G*, ``holdout`` where it measures its
    realism constraint, ``calibration`` the training images its check re-estimates BatchNorm
    statistics on)."""
    return build_method(cfg.net, cfg.method, cfg.loop.steps, cfg.loop.precision, generator,
                        grad_sync, holdout, calibration)  # fmt: skip


def setup(
    cfg: TrainConfig,
    images: torch.Tensor,
    generator: torch.nn.Module | None = None,
    grad_sync: GradSync | None = None,
) -> tuple[Method, torch.Tensor]:
    """(method, the images its batches come from) for training ``cfg`` on ``images`` (uint8,
    N x C x S x S).

    The initial weights are seeded with ``cfg.loop.seed``, so every rank builds the same ones;
    dplc's held-out images (:func:`split_holdout`) and the training images its check
    re-estimates BatchNorm statistics on (seeded draws) are the same on every rank too, so every
    rank measures the same latent MMD and takes the same dual step.
    """
    if images.dtype != torch.uint8 or tuple(images.shape[1:]) != cfg.net.image_shape:
        raise ValueError(
            f"training images must be uint8 of shape (N, {', '.join(map(str, cfg.net.image_shape))}), "
            f"got {images.dtype} {tuple(images.shape)}"
        )
    seed_everything(cfg.loop.seed)
    set_threads(cfg.loop.threads)
    images, holdout = split_holdout(cfg, images)
    return new_method(cfg, generator, grad_sync, holdout, calibration=images), images


def fit(
    cfg: TrainConfig,
    method: Method,
    images: torch.Tensor,
    checkpoint_dir: str | Path | None = None,
    callbacks: Sequence[Callback] = (),
    rank: int = 0,
    device: torch.device | str | None = None,
    resume: bool = True,
) -> TrainResult:
    """Train the ``method`` of :func:`setup` on its ``images`` for ``cfg.loop``.

    Each rank draws its own batches (seed + 1000·rank); only rank 0 prints progress. ``device``
    is where the method trains (a worker's GPU; the CPU when omitted).

    >>> from dplc.config import LoopConfig, MethodConfig, NetConfig
    >>> cfg = TrainConfig(NetConfig(width=4, latent_dim=4, code_channels=1, noise=False),
    ...                   MethodConfig(name="cae", batch_size=4),
    ...                   LoopConfig(steps=2, progress_every_s=0))
    >>> images = torch.zeros(8, 1, 32, 32, dtype=torch.uint8)
    >>> method, batches = setup(cfg, images)
    >>> fit(cfg, method, batches).steps
    2
    """
    sampler = BatchSampler(images, seed=cfg.loop.seed + 1000 * rank)
    loop = cfg.loop if rank == 0 else dataclasses.replace(cfg.loop, progress_every_s=0)
    return train(method, sampler, loop, checkpoint_dir, callbacks, resume, device)


def load_method(
    cfg: TrainConfig, checkpoint: str | Path, generator: torch.nn.Module | None = None
) -> tuple[Method, int]:
    """(method, step): the trained method of ``cfg`` from a checkpoint of :func:`train`, in
    evaluation mode (no sampler or RNG state is restored)."""
    method = new_method(cfg, generator)
    step = load_checkpoint(Path(checkpoint), method)
    method.train(False)
    return method, step


def export_generator(method: Method, directory: str | Path) -> Codec:
    """Save G* of a generative method as a rate-0 ``prior`` codec (its samples are the decodes)."""
    net = NetConfig(**{**method.net.__dict__, "code_channels": 0})
    codec = Codec(
        net, generator_of(method), mode="prior", meta={"method": method.name, "role": "generator"}
    )
    codec.eval().save(directory)
    return codec


def export_codec(method: Method, directory: str | Path) -> Codec:
    """Save the trained per-rate codec of ``dplc``, ``gc`` or ``cae``."""
    codec = getattr(method, "codec", None)
    if not isinstance(codec, Codec):
        raise ValueError(f"{method.name} does not train a per-rate codec")
    codec.eval().save(directory)
    return codec
