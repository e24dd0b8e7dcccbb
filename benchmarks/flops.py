"""FLOPs of a training step and the machine's fp32 matmul peak, measured in one process.

``train_step_peak_fraction`` = (FLOPs of one optimisation step / its wall time) / the fp32
sgemm peak measured in the same run, so the figure means the same on a slow and a fast CPU.

FLOPs are counted with torch's own per-operator formulas (``torch.utils.flop_counter``'s
registry: matmuls and convolutions, forward and backward) under a bare ``TorchDispatchMode``.
``FlopCounterMode`` itself cannot be used for the critic methods: its module tracker fails on
the gradient penalty's double backward (``autograd.grad`` with ``create_graph``); the dispatch
mode sees the same aten calls without tracking modules, so it counts that too. For methods
without a penalty both give the same total (``--check`` compares them).

    python benchmarks/flops.py [--check]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import yaml
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode, flop_registry

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dplc.config import NetConfig, TrainConfig  # noqa: E402
from dplc.method import Method  # noqa: E402
from dplc.method_specs import BY_NAME, PER_RATE  # noqa: E402
from dplc.methods import build_method  # noqa: E402
from dplc.nets import Generator  # noqa: E402

METHOD_RATES = {name: 4 if spec.per_rate else 0 for name, spec in BY_NAME.items()}


class CountFlops(TorchDispatchMode):
    """Sum of ``flop_registry`` FLOPs over every aten call made while active."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        count = flop_registry.get(func._overloadpacket)
        if count is not None:
            self.total += int(count(*args, **kwargs, out_val=out))
        return out


def sgemm_peak_gflops(n: int = 2048, repeats: int = 7) -> float:
    """Best GFLOP/s of an n³ fp32 matmul (2n³ FLOPs) at torch's current thread count."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def bench_config(params: dict, name: str) -> TrainConfig:
    """The TrainConfig of ``name`` in ``params`` at its benchmark rate (:data:`METHOD_RATES`)."""
    from pipelines import params as P

    return P.train_config(params, name, METHOD_RATES[name], best={})


def build(params: dict, name: str) -> tuple[Method, object]:
    """The method of params at its benchmark rate, and a batch function over random images,
    both in the channels-last layout the training loop uses."""
    cfg = bench_config(params, name)
    net = cfg.net
    gen = None
    if BY_NAME[name].into_generator:
        gen = Generator(NetConfig(**{**net.__dict__, "code_channels": 0})).eval()
    method = build_method(net, cfg.method, 1000, cfg.loop.precision, gen)
    data = torch.rand(4096, *net.image_shape) * 2 - 1
    g = torch.Generator().manual_seed(0)
    layout = torch.channels_last if cfg.loop.channels_last else torch.contiguous_format
    method.to_memory_format(layout)

    def batch(n: int) -> torch.Tensor:
        return data[torch.randint(0, data.shape[0], (n,), generator=g)].contiguous(memory_format=layout)

    return method, batch


def step_flops(method: Method, batch) -> int:  # noqa: ANN001
    """FLOPs of one ``method.step`` (after a warm-up step)."""
    method.step(batch)
    method.end_step()
    with CountFlops() as fc:
        method.step(batch)
    method.end_step()
    return fc.total


def step_seconds(method: Method, batch, steps: int = 8) -> float:  # noqa: ANN001
    """Median wall seconds of one step over ``steps`` steps."""
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        method.step(batch)
        method.end_step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def peak_fractions(params: dict, methods: tuple[str, ...] = tuple(METHOD_RATES), steps: int = 8) -> dict:
    """{"fp32_matmul_peak_gflops", "train_step_peak_fraction": {m: f}, "train_step": {...}}."""
    peak = sgemm_peak_gflops()
    out: dict = {"fp32_matmul_peak_gflops": round(peak, 1), "train_step_peak_fraction": {},
                 "train_step": {}}  # fmt: skip
    for name in methods:
        method, batch = build(params, name)
        flops = step_flops(method, batch)
        sec = step_seconds(method, batch, steps)
        frac = flops / sec / 1e9 / peak
        out["train_step_peak_fraction"][name] = round(frac, 3)
        out["train_step"][name] = {"gflop": round(flops / 1e9, 3), "ms": round(sec * 1e3, 1),
                                   "gflops": round(flops / sec / 1e9, 1)}  # fmt: skip
        print(f"{name:8s} {flops / 1e9:7.2f} GFLOP/step {sec * 1e3:7.1f} ms "
              f"{flops / sec / 1e9:6.1f} GFLOP/s = {frac:.2f} of peak {peak:.0f}")  # fmt: skip
    return out


def profile_jobs(params: dict) -> dict[str, tuple[str, int]]:
    """{job: (method, steps)} for every training job of the profile in ``params``: each
    generator, each per-rate codec at each rate of its ladder (rate 0 left out where nothing is
    learned there), and Tune's trials as one job of dplc steps."""
    from pipelines import params as P

    jobs: dict[str, tuple[str, int]] = {}
    for g in params["generators"]:
        jobs[f"generator@{g}"] = (g, P.train_config(params, g).loop.steps)
    for method in PER_RATE:
        rates = params["shared_ladder"] if BY_NAME[method].shared_noise else params["ladder"]
        for c in rates:
            if c == 0 and BY_NAME[method].rate0_steps is not None:
                continue  # nothing is learned at rate 0 (G*'s sampler, the training mean)
            gen = params["generators"][0] if BY_NAME[method].into_generator else None
            jobs[f"{method}@{c}"] = (method, P.train_config(params, method, c, best={}, generator=gen).loop.steps)
    t = params["tune"]
    if t.get("enabled", True):
        jobs["tune"] = ("dplc", t["num_samples"] * t["steps"])
    return jobs


def check_counts(params: dict) -> None:
    """The dispatch count equals FlopCounterMode's where the latter works (no penalty)."""
    for name in ("dplc", "cae", "wae"):
        method, batch = build(params, name)
        ours = step_flops(method, batch)
        with FlopCounterMode(display=False) as fc:
            method.step(batch)
        method.end_step()
        assert ours == fc.get_total_flops(), (name, ours, fc.get_total_flops())
        print(f"{name}: {ours} FLOPs, FlopCounterMode agrees")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--check", action="store_true", help="compare with FlopCounterMode")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    if args.check:
        check_counts(params)
    peak_fractions(params)


if __name__ == "__main__":
    main()
