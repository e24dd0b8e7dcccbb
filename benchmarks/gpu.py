"""The GPU path, measured: what ``ray.use_gpu`` workers run, without Ray (``dplc.train.fit``).

Runs where a CUDA device is present (this project's CI never has one; the device tool lends
one to some sessions). Five parts by default, each recorded even when another fails:

- ``peaks``: TFLOP/s of an 8192³ matmul in fp32 (TF32 off), TF32 and bf16 (wall clock around
  a device synchronisation, the best of ten after warm-up): the ceilings the steps are
  compared with.
- ``steps``: for each method at the default profile's geometry (params.yaml, C = 4 for the
  per-rate codecs, as ``benchmarks/flops.py``) and at the paper's 64×64 colour geometry, in
  fp32 and under bf16 autocast: ms per optimisation step (median of 20 after 3 warm-up
  steps), images/s, FLOPs per step (``flops.CountFlops``, torch's own per-operator formulas)
  and the fraction of the matching matmul peak reached.
- ``batch_sweep``: ``wpp`` and ``dplc`` at the default geometry with 1, 4 and 16 times the
  profile's batches (fp32): whether the device computes or waits on kernel launches.
- ``budget``: the default profile's training jobs (``flops.profile_jobs``) at those step times:
  what its training would take on this GPU, in fp32 and in bf16, without overheads.
- ``loop``: ``dplc.train.fit`` on the GPU for ``wpp`` and ``dplc`` (the default profile's
  settings, seeded random images): an uninterrupted run against one stopped at its
  checkpoint and resumed in a fresh method (bit-identical weights?), a second uninterrupted
  run (the same?), the weights' SHA-256 (to compare two processes), and the same run on the
  CPU from the same seed (the losses' relative difference).

``--only determinism`` runs instead two fresh fp32 runs and a resumed one under torch's
defaults, cuDNN's deterministic algorithms, and ``torch.use_deterministic_algorithms``
(``dplc.train.deterministic_kernels`` held off); ``--only loop`` runs the ``loop`` part alone;
``--only first_use`` runs fp32 runs in a given order (``--order``, optionally ``--no-cudnn``, or
interrupted with ``--ckpt``/``--stop-at`` and resumed in a second process): where a process's
first run departs from its later ones.

    python benchmarks/gpu.py [--out reports/bench/gpu.json] [--quick] [--only determinism|loop|first_use]

``--quick`` (few steps, small matmuls, fp32 at the default geometry) checks the script on a
CPU: every part then runs on the CPU and the file says so; it is not a measurement.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import flops  # noqa: E402

from dplc.config import MethodConfig, NetConfig, TrainConfig, from_dict, method_defaults  # noqa: E402
from dplc.method_specs import BY_NAME, METHODS  # noqa: E402
from dplc.methods import build_method  # noqa: E402
from dplc.nets import Generator  # noqa: E402
from dplc.train import fit, images_per_step, setup  # noqa: E402

PAPER_64 = {"image_size": 64, "channels": 3, "width": 64, "latent_dim": 128}
"""The authors' 64×64 colour nets (Tschannen et al. 2018, Sec. 5), as ``benchmarks/train.py``."""


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_tflops(device: torch.device, dtype: torch.dtype, tf32: bool, n: int, repeats: int = 10) -> float:
    """Best TFLOP/s of an n³ matmul (2n³ FLOPs) of ``dtype`` on ``device``."""
    torch.backends.cuda.matmul.allow_tf32 = tf32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t0)
    torch.backends.cuda.matmul.allow_tf32 = False
    return 2 * n**3 / best / 1e12


def peaks(device: torch.device, n: int) -> dict:
    """{fp32, tf32, bf16}: matmul TFLOP/s (TF32 is what cuDNN's convolutions use by default)."""
    return {
        "fp32": round(matmul_tflops(device, torch.float32, False, n), 2),
        "tf32": round(matmul_tflops(device, torch.float32, True, n), 2),
        "bf16": round(matmul_tflops(device, torch.bfloat16, False, n), 2),
    }


def method_at(name: str, geometry: str, params: dict, precision: str, device: torch.device):
    """(method on ``device``, batch function over random images) for ``name`` at the default
    profile's settings (``flops.build``) or the paper's 64×64 nets with the authors' method
    settings."""
    if geometry == "default":
        bench = flops.bench_config(params, name)
        net, cfg = bench.net, bench.method
    else:
        c = flops.METHOD_RATES[name]
        cfg = from_dict(MethodConfig, method_defaults(name))
        net = from_dict(NetConfig, PAPER_64 | {"code_channels": c, "noise": BY_NAME[name].decoder_noise})
    gen = None
    if BY_NAME[name].into_generator:
        gen = Generator(NetConfig(**{**net.__dict__, "code_channels": 0})).eval()
    torch.manual_seed(0)
    method = build_method(net, cfg, 1000, precision, gen).to(device)
    method.to_memory_format(torch.channels_last)
    data = (torch.rand(4096, *net.image_shape) * 2 - 1).to(device)
    g = torch.Generator().manual_seed(0)

    def batch(n: int) -> torch.Tensor:
        idx = torch.randint(0, data.shape[0], (n,), generator=g).to(device)
        return data[idx].contiguous(memory_format=torch.channels_last)

    return method, batch


def step_ms(method, batch, device: torch.device, steps: int) -> float:  # noqa: ANN001
    """Median ms of one ``method.step`` (the clock waits for the device) after 3 warm-ups."""
    for _ in range(3):
        method.step(batch)
        method.end_step()
    times = []
    for _ in range(steps):
        sync(device)
        t0 = time.perf_counter()
        method.step(batch)
        method.end_step()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def steps_table(params: dict, device: torch.device, peak: dict, steps: int,
                precisions: tuple[str, ...] = ("fp32", "bf16"),
                geometries: tuple[str, ...] = ("default", "paper64")) -> dict:
    """{geometry: {method: {precision: {ms, images_per_s, gflop, tflops, peak_fraction}}}}."""
    torch.backends.cudnn.benchmark = True
    out: dict = {}
    for geometry in geometries:
        for name in METHODS:
            for precision in precisions:
                method, batch = method_at(name, geometry, params, precision, device)
                ms = step_ms(method, batch, device, steps)
                with flops.CountFlops() as fc:
                    method.step(batch)
                method.end_step()
                tflops = fc.total / (ms / 1e3) / 1e12
                ref = peak["bf16"] if precision == "bf16" else peak["tf32"]
                row = {"ms": round(ms, 2), "images_per_s": round(images_per_step(method) / ms * 1e3, 1),
                       "gflop": round(fc.total / 1e9, 3), "tflops": round(tflops, 3),
                       "peak_fraction": round(tflops / ref, 4)}  # fmt: skip
                out.setdefault(geometry, {}).setdefault(name, {})[precision] = row
                print(f"{geometry:8s} {name:12s} {precision:5s} {ms:8.2f} ms {row['images_per_s']:9.1f} img/s "
                      f"{row['gflop']:7.3f} GFLOP {tflops:7.3f} TFLOP/s = {row['peak_fraction']:.4f} of peak",
                      flush=True)  # fmt: skip
                del method
    return out


def batch_sweep(params: dict, device: torch.device, steps: int, mults: tuple[int, ...]) -> dict:
    """{method: {multiple: {batch, ms, images_per_s}}}: the default geometry's step with every
    batch (the critic's too) ``multiple`` times the profile's, in fp32: whether the device is
    busy computing or waiting on launches at the profile's batch."""
    out: dict = {}
    for name in ("wpp", "dplc"):
        for k in mults:
            method, batch = method_at(name, "default", params, "fp32", device)
            cfg = dataclasses.replace(method.cfg, batch_size=method.cfg.batch_size * k,
                                      critic_batch_size=method.cfg.critic_batch_size * k)  # fmt: skip
            gen = method.codec.generator if BY_NAME[name].into_generator else None
            method = build_method(method.net, cfg, 1000, "fp32", gen).to(device)
            method.to_memory_format(torch.channels_last)
            ms = step_ms(method, batch, device, steps)
            ips = images_per_step(method) / ms * 1e3
            out.setdefault(name, {})[k] = {"batch": cfg.batch_size, "ms": round(ms, 2), "images_per_s": round(ips, 1)}
            print(f"sweep {name:5s} x{k:<3d} batch {cfg.batch_size:5d} {ms:8.2f} ms {ips:10.1f} img/s", flush=True)
    return out


def budget(params: dict, table: dict) -> dict:
    """Seconds the default profile's training jobs take at the measured step times, per
    precision (``flops.profile_jobs``; steps only: no Ray, data loading, checkpoints or MLflow)."""
    jobs = flops.profile_jobs(params)
    out = {}
    for precision in table["default"][next(iter(table["default"]))]:
        per_job = {job: steps * table["default"][m][precision]["ms"] / 1e3 for job, (m, steps) in jobs.items()}
        out[precision] = {"training_seconds": round(sum(per_job.values()), 1),
                          "seconds_by_job": {k: round(v, 2) for k, v in per_job.items()}}  # fmt: skip
    out["steps"] = sum(steps for _, steps in jobs.values())
    return out


def _state(method) -> dict[str, torch.Tensor]:  # noqa: ANN001
    return {f"{k}.{n}": t.detach().cpu().clone()
            for k, mod in method.modules.items() for n, t in mod.state_dict().items()}  # fmt: skip


def _config(params: dict, name: str, steps: int, precision: str) -> TrainConfig:
    cfg = flops.bench_config(params, name)
    loop = dataclasses.replace(cfg.loop, steps=steps, checkpoint_every=steps // 2, log_every=1,
                               progress_every_s=0, precision=precision, threads=0)  # fmt: skip
    return dataclasses.replace(cfg, loop=loop)


def _max_abs_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Largest absolute difference between two :func:`_state` dicts' floating-point tensors."""
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].is_floating_point())


def _digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the weights' names and bytes: equal in two processes iff bit-identical."""
    import hashlib

    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].contiguous().numpy().tobytes())
    return h.hexdigest()


def _g_star(name: str, cfg: TrainConfig) -> Generator | None:
    """A fixed untrained G* (seed 1) for a method that decodes through one, else None."""
    if not BY_NAME[name].into_generator:
        return None
    torch.manual_seed(1)
    return Generator(dataclasses.replace(cfg.net, code_channels=0)).eval()


class Interrupted(Exception):
    """Raised by the recorder at a checkpoint: a job killed right after writing it."""


def _run(cfg: TrainConfig, images: torch.Tensor, gen, device: str, ckpt: Path | None,  # noqa: ANN001
         stop_at: int | None = None):  # fmt: skip
    """(method, per-step losses, result) of ``fit``; with ``stop_at`` the run is interrupted
    right after its checkpoint at that step (and the method is returned as it stood)."""
    losses: list[dict[str, float]] = []

    class Record:
        def on_step(self, step: int, metrics: dict[str, float]) -> None:
            losses.append(dict(metrics))

        def on_checkpoint(self, step: int, path: Path) -> None:
            if step == stop_at:
                raise Interrupted

    method, batches = setup(cfg, images, gen)
    try:
        result = fit(cfg, method, batches, ckpt, [Record()], device=device)
    except Interrupted:
        result = None
    return method, losses, result


def loop_checks(params: dict, device: torch.device, steps: int,
                precisions: tuple[str, ...] = ("fp32", "auto")) -> dict:
    """Resume bit-exactness on the device, and the device's losses against the CPU's (cuDNN's
    autotuner off, as ``dplc.train`` leaves it)."""
    torch.backends.cudnn.benchmark = False
    out: dict = {}
    images = torch.randint(0, 256, (6000, 1, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    for name in ("wpp", "dplc"):
        for precision in precisions:
            cfg = _config(params, name, steps, precision)
            gen = _g_star(name, cfg)
            with tempfile.TemporaryDirectory() as tmp:
                full, losses, result = _run(cfg, images, gen, str(device), Path(tmp) / "full")
                again, _, _ = _run(cfg, images, gen, str(device), Path(tmp) / "again")
                _run(cfg, images, gen, str(device), Path(tmp) / "resumed", stop_at=steps // 2)
                resumed, _, r2 = _run(cfg, images, gen, str(device), Path(tmp) / "resumed")
            a, b = _state(full), _state(resumed)
            repeat = _state(again)
            gap, diff = _max_abs_difference(b, repeat), _max_abs_difference(a, b)
            row = {"precision_ran": full.precision, "steps": result.steps, "images_per_s": round(result.images_per_s, 1),
                   "resumed_from": r2.resumed_from, "resume_bit_identical": diff == 0.0,
                   "resume_max_abs_weight_difference": diff, "last_losses": losses[-1],
                   "repeat_vs_resumed_max_abs_difference": gap,
                   "weights_sha256": _digest(a), "repeat_weights_sha256": _digest(repeat)}  # fmt: skip
            if precision == "fp32":
                _, cpu_losses, _ = _run(cfg, images, gen, "cpu", None)
                rel = [{k: abs(x[k] - y[k]) / (abs(y[k]) + 1e-6) for k in y}
                       for x, y in zip(losses, cpu_losses, strict=True)]  # fmt: skip
                row["cpu_vs_device_loss_relative_difference"] = {"first_step": rel[0], "last_step": rel[-1]}
            out[f"{name}_{precision}"] = row
            print(name, precision, json.dumps(row), flush=True)
    return out


def determinism(params: dict, device: torch.device, steps: int) -> dict:
    """fp32 training on the device under three settings (torch's defaults; cuDNN's
    deterministic algorithms; ``torch.use_deterministic_algorithms`` with cuBLAS's fixed
    workspace): are two fresh runs identical, is a resumed run identical to the uninterrupted
    one, and what does the setting cost in images/s."""
    import os

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.benchmark = False
    images = torch.randint(0, 256, (6000, 1, 32, 32), dtype=torch.uint8)
    out: dict = {}
    import dplc.train

    keep = dplc.train.deterministic_kernels
    dplc.train.deterministic_kernels = lambda device: None  # the settings below, not fit's own
    for setting in ("default", "cudnn_deterministic", "deterministic_algorithms"):
        torch.backends.cudnn.deterministic = setting != "default"
        torch.use_deterministic_algorithms(setting == "deterministic_algorithms")
        for name in ("wpp", "dplc"):
            cfg = _config(params, name, steps, "fp32")
            gen = _g_star(name, cfg)
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    a, _, ra = _run(cfg, images, gen, str(device), Path(tmp) / "a")
                    b, _, _ = _run(cfg, images, gen, str(device), Path(tmp) / "b")
                    _run(cfg, images, gen, str(device), Path(tmp) / "c", stop_at=steps // 2)
                    c, _, _ = _run(cfg, images, gen, str(device), Path(tmp) / "c")
                sa, sb, sc = _state(a), _state(b), _state(c)
                row = {"repeat_max_abs_difference": _max_abs_difference(sa, sb),
                       "resume_max_abs_difference": _max_abs_difference(sa, sc),
                       "images_per_s": round(ra.images_per_s, 1)}  # fmt: skip
            except Exception as e:  # noqa: BLE001 - an op without a deterministic kernel is a finding
                row = {"error": f"{type(e).__name__}: {e}"[:500]}
            out.setdefault(setting, {})[name] = row
            print("determinism", setting, name, json.dumps(row), flush=True)
    torch.use_deterministic_algorithms(False)
    torch.backends.cudnn.deterministic = False
    dplc.train.deterministic_kernels = keep
    return out


def _first_difference(a: list[dict[str, float]], b: list[dict[str, float]]) -> int | None:
    """The first step (1-based) whose logged losses differ between two runs, else None."""
    return next((i + 1 for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y), None)


def first_use(params: dict, device: torch.device, steps: int, order: list[str],
              stop_at: int | None = None, ckpt: Path | None = None, warmup: int = 0) -> dict:
    """The fp32 runs of ``order`` in one process, in that order (seeded random images, as
    :func:`loop_checks`): each run's weight digest, and for each run after the first of its
    method the first step whose losses differ from that method's previous run. With ``ckpt``
    the first run keeps its checkpoint there (and with ``stop_at`` is interrupted right after
    it), so a second process can resume it: what a pipeline job resumed after a crash does.
    ``warmup`` steps of ``order[0]``'s method, thrown away, come before everything."""
    torch.backends.cudnn.benchmark = False
    images = torch.randint(0, 256, (6000, 1, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    if warmup:
        cfg = _config(params, order[0], warmup, "fp32")
        _run(cfg, images, _g_star(order[0], cfg), str(device), None)
    runs: list[dict] = []
    last: dict[str, tuple[list[dict[str, float]], dict[str, torch.Tensor]]] = {}
    for i, name in enumerate(order):
        cfg = _config(params, name, steps, "fp32")
        with tempfile.TemporaryDirectory() as tmp:
            where = ckpt if (ckpt is not None and i == 0) else Path(tmp) / "run"
            method, losses, result = _run(cfg, images, _g_star(name, cfg), str(device), where,
                                          stop_at=stop_at if i == 0 else None)  # fmt: skip
        state = _state(method)
        row: dict = {"method": name, "weights_sha256": _digest(state), "steps_logged": len(losses),
                     "resumed_from": result.resumed_from if result is not None else None,
                     "interrupted": result is None}  # fmt: skip
        if name in last and len(last[name][0]) == len(losses):
            row["first_step_differing_from_previous"] = _first_difference(last[name][0], losses)
            row["max_abs_weight_difference_from_previous"] = _max_abs_difference(last[name][1], state)
        last[name] = (losses, state)
        runs.append(row)
        print("first_use", json.dumps(row), flush=True)
    return {"order": order, "warmup_steps": warmup, "cudnn_enabled": torch.backends.cudnn.enabled,
            "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(), "runs": runs}  # fmt: skip


def guarded(out: dict, key: str, fn: Callable[[], object]) -> None:
    """``out[key] = fn()``, or the error and its traceback (the other parts still run)."""
    t0 = time.perf_counter()
    try:
        out[key] = fn()
    except Exception as e:  # noqa: BLE001 - a benchmark records what failed and goes on
        out[key] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-3000:]}
        print(out[key]["traceback"], flush=True)
    out.setdefault("part_seconds", {})[key] = round(time.perf_counter() - t0, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "reports/bench/gpu.json")
    ap.add_argument("--only", choices=("determinism", "loop", "first_use"), help="run this part alone")
    ap.add_argument("--order", default="wpp,wpp,wpp", help="first_use: the methods' fp32 runs, in order")
    ap.add_argument("--ckpt", type=Path, help="first_use: the first run's checkpoint directory (resumed if present)")
    ap.add_argument("--stop-at", type=int, help="first_use: interrupt the first run after this step's checkpoint")
    ap.add_argument("--warmup", type=int, default=0, help="first_use: thrown-away steps before the runs")
    ap.add_argument("--no-cudnn", action="store_true", help="first_use: torch.backends.cudnn.enabled = False")
    ap.add_argument("--deterministic-algorithms", action="store_true",
                    help="first_use: torch.use_deterministic_algorithms(True) as well")  # fmt: skip
    ap.add_argument("--quick", action="store_true", help="check the script on a CPU (not a measurement)")
    args = ap.parse_args()
    cuda = torch.cuda.is_available()
    if not cuda and not args.quick:
        sys.exit("no CUDA device: run this where one is, or pass --quick to check the script on the CPU")
    device = torch.device("cuda" if cuda else "cpu")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    out: dict = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "device": torch.cuda.get_device_name(0) if cuda else "cpu (--quick: a check, not a measurement)",
        "torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
        "python": platform.python_version(), "numpy": np.__version__, "cpu_threads": torch.get_num_threads(),
    }  # fmt: skip
    if cuda:
        out["capability"] = ".".join(map(str, torch.cuda.get_device_capability(0)))
        out["bf16_supported"] = torch.cuda.is_bf16_supported()
    n, steps, loop_steps = (256, 1, 4) if args.quick else (8192, 20, 40)
    if args.only == "determinism":
        guarded(out, "determinism", lambda: determinism(params, device, loop_steps))
    if args.only == "loop":
        guarded(out, "loop", lambda: loop_checks(params, device, loop_steps))
    if args.only == "first_use":
        torch.backends.cudnn.enabled = not args.no_cudnn
        if args.deterministic_algorithms:
            import os

            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
        order = args.order.split(",")
        guarded(out, "first_use", lambda: first_use(params, device, loop_steps, order, args.stop_at, args.ckpt, args.warmup))
    if args.only:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {args.out}")
        return
    precisions = ("fp32",) if args.quick else ("fp32", "bf16")  # bf16 is slow on most CPUs
    geometries = ("default",) if args.quick else ("default", "paper64")
    guarded(out, "peaks", lambda: peaks(device, n))
    print("peaks (TFLOP/s):", out["peaks"], flush=True)
    if "error" not in out["peaks"]:
        guarded(out, "steps", lambda: steps_table(params, device, out["peaks"], steps, precisions, geometries))
        if "error" not in out["steps"]:
            guarded(out, "budget", lambda: budget(params, out["steps"]))
            print("default profile's training at these step times:",
                  {p: v["training_seconds"] for p, v in out["budget"].items() if p != "steps"}, flush=True)  # fmt: skip
    guarded(out, "batch_sweep", lambda: batch_sweep(params, device, steps, (1, 2) if args.quick else (1, 4, 16)))
    guarded(out, "loop", lambda: loop_checks(params, device, loop_steps, precisions[:1] if args.quick else ("fp32", "auto")))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
