"""Pipeline benchmark (issue 3): Ray Train throughput with 1 and 2 CPU worker actors and in Ray
Train's local mode against the library's plain loop at the same total threads, and the wall
time of `dvc repro`.

    python benchmarks/pipeline.py [--steps 60] [--method dplc] [--quick-repro]
    python benchmarks/pipeline.py --peak            # train_step_peak_fraction (benchmarks/flops.py)
    python benchmarks/pipeline.py --default-repro   # default_repro_seconds, per-job overheads
    python benchmarks/pipeline.py --floor           # Ray Train's own cost per job, actors and local mode
    python benchmarks/pipeline.py --budget          # training FLOPs of the profile at a 105 GFLOP/s peak
    python benchmarks/pipeline.py --imports         # a stage's imports, compiled and from source
    python benchmarks/pipeline.py --quick-repro     # the quick profile's repro, per stage and job

Throughput is images/s while training (between the first and the last logged step, so Ray's
start-up is excluded and reported separately as ``ray_startup_seconds``). The plain loop uses
2 torch threads; the Ray jobs use 1 worker x 2 threads and 2 workers x 1 thread (gradients
all-reduced over gloo). ``--quick-repro`` times ``pipelines.repro`` of the quick profile in a copy
of the repo; ``default_repro_seconds`` is read from reports/bench/pipeline.json when a default
run recorded it: ``--default-repro`` runs `dvc repro` of the committed (default) params in
this repo (through ``pipelines.repro``: one Ray runtime for all stages), timestamps every stage
from DVC's "Running stage" lines, and writes ``default_repro_seconds``,
``default_stage_seconds`` and ``per_job_overhead_seconds`` (each training stage's wall time
minus its training steps, from its timing file (runs/timing/, pipelines.stage_timing); the log goes to
reports/bench/default_repro.log). Every run records ``cpu_model`` and the package versions
(``environment``: the newest run's machine) and, in ``measured_on``, for each key it wrote, the
machine, versions, date and (where that run measured it) the sgemm peak of the run that wrote
it: the file keeps figures from several runs, often on different machines.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("RAY_AUTH_MODE", "token")  # as pipelines.repro runs; Ray reads it on import
sys.path.insert(0, str(ROOT))

from dplc import data  # noqa: E402
from dplc.codec import Codec  # noqa: E402
from dplc.config import LoopConfig, TrainConfig  # noqa: E402
from dplc.nets import Generator  # noqa: E402
from dplc.train import NullCallback, fit, setup  # noqa: E402
from pipelines import environment, ray_jobs  # noqa: E402
from pipelines import layout as L  # noqa: E402
from pipelines import params as P  # noqa: E402
from pipelines.params import RayParams  # noqa: E402

OUT = ROOT / "reports" / "bench" / "pipeline.json"


class _Clock(NullCallback):
    def __init__(self) -> None:
        self.marks: list[tuple[int, float]] = []

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        self.marks.append((step, time.time()))


def _images(n: int = 6000) -> tuple[Path, torch.Tensor]:
    prepared = L.prepared_dir()
    if (prepared / "manifest.json").is_file():
        return prepared, data.to_tensor(data.read_split(prepared, "train", limit=n).images, 32)
    tmp = Path(tempfile.mkdtemp())
    rng = np.random.default_rng(0)
    arr = data.ImageArray(
        rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8), np.zeros(n, np.int64)
    )
    data.write_shards(tmp, {"train": arr, "test": arr.subset(100)}, source="synthetic")
    return tmp, data.to_tensor(arr.images, 32)


def _throughput(marks: list[tuple[int, float]], images_per_step: int) -> float:
    (s0, t0), (s1, t1) = marks[0], marks[-1]
    return (s1 - s0) * images_per_step / (t1 - t0)


STAGE_LINE = re.compile(r"^Running stage '([^']+)'")
LOG_LINE = re.compile(r"^\[\s*([0-9.]+)\] (.*)$")


def time_repro(repo: Path, log_path: Path, force: bool = True,
               env: dict[str, str] | None = None) -> tuple[float, dict[str, float]]:  # fmt: skip
    """Run `dvc repro` in ``repo`` (with ``env``, else this process's); (total seconds, seconds
    per stage).

    ``force``: ``--force --no-run-cache``, every stage runs (none is restored from DVC's run
    cache), so the figure is the cost of the whole profile from prepared nothing. Without it,
    only the stages an interrupted run left unfinished run (:func:`logged_stage_seconds`).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    stages: dict[str, float] = {}
    current: tuple[str, float] | None = None
    t0 = time.perf_counter()
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipelines.repro", *(["--force"] if force else []),
             "--no-run-cache"], cwd=repo, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        assert proc.stdout is not None
        for line in proc.stdout:
            now = time.perf_counter()
            log.write(f"[{now - t0:8.1f}] {line}")  # read back by LOG_LINE
            log.flush()
            m = STAGE_LINE.match(line)
            if m:
                if current is not None:
                    stages[current[0]] = round(now - current[1], 1)
                current = (m.group(1), now)
        rc = proc.wait()
    total = round(time.perf_counter() - t0, 1)
    if current is not None:
        stages[current[0]] = round(time.perf_counter() - current[1], 1)
    if rc != 0:
        raise SystemExit(f"dvc repro failed with exit code {rc}; see {log_path}")
    return total, stages


def logged_stage_seconds(log_path: Path) -> tuple[dict[str, float], str | None, float]:
    """What an interrupted :func:`time_repro` log holds: ({stage: seconds} of the stages it saw
    finish, the stage it was in when it ends, that stage's seconds until the log's last line)."""
    marks, last = [], 0.0
    for line in log_path.read_text().splitlines():
        m = LOG_LINE.match(line)  # "[seconds] " + the repro's line, as time_repro writes it
        if m:
            last = float(m.group(1))
            stage = STAGE_LINE.match(m.group(2))
            if stage:
                marks.append((stage.group(1), last))
    done = {a: round(tb - ta, 1) for (a, ta), (_, tb) in zip(marks, marks[1:], strict=False)}
    return done, (marks[-1][0] if marks else None), round(last - marks[-1][1], 1) if marks else 0.0


def _job_timings(timing_dir: Path) -> dict[str, dict]:
    """{job name: its timing file} for every training job (generator and per-rate) a repro
    timed under ``timing_dir`` (:mod:`pipelines.stage_timing`)."""
    paths = sorted(timing_dir.glob("generator-*.json")) + sorted(timing_dir.glob("train-*.json"))
    return {p.stem: json.loads(p.read_text()) for p in paths}


def job_overhead(timing: dict) -> float:
    """A job's seconds besides its steps: for a Ray job, its stage's total less the steps the
    worker timed on its own clock in *this* run (a job Ray resumed carries the earlier run's
    history, whose span ``overhead_seconds`` subtracts too); else ``overhead_seconds``."""
    steps = timing.get("ray_job_parts", {}).get("steps")
    return round(timing["total_seconds"] - steps, 2) if steps is not None else timing["overhead_seconds"]


def job_overheads(timing_dir: Path) -> dict[str, float]:
    """{job name: overhead seconds} of every training job a repro timed under ``timing_dir``."""
    return {name: job_overhead(t) for name, t in _job_timings(timing_dir).items()}


STAGE_MODULES = ("pipelines.prepare", "pipelines.train", "pipelines.evaluate")


def import_seconds(modules: tuple[str, ...] = STAGE_MODULES, repeats: int = 3) -> dict[str, dict[str, float]]:
    """Median wall seconds of a fresh ``python -c "import M"``, with the bytecode the install
    compiled (``scripts/setup.sh``) and from source (``PYTHONPYCACHEPREFIX`` at an empty folder
    and ``PYTHONDONTWRITEBYTECODE=1``: what every process paid with a .venv installed without
    bytecode on a machine that sets that variable). The two alternate, so a slow minute hits both."""
    empty = tempfile.mkdtemp()
    base = dict(os.environ, PYTHONPATH=str(ROOT))
    modes = {"compiled": base,
             "from_source": base | {"PYTHONPYCACHEPREFIX": empty, "PYTHONDONTWRITEBYTECODE": "1"}}  # fmt: skip
    times: dict[str, dict[str, list[float]]] = {m: {k: [] for k in modes} for m in modules}
    for _ in range(repeats):
        for module in modules:
            for mode, env in modes.items():
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-c", f"import {module}"], env=env, cwd=ROOT, check=True)
                times[module][mode].append(time.perf_counter() - t0)
    shutil.rmtree(empty, ignore_errors=True)
    return {m: {k: round(float(np.median(v)), 2) for k, v in t.items()} for m, t in times.items()}


def quick_repro() -> dict:
    """``pipelines.repro`` of the quick profile in the copy of the repo the e2e test makes: its
    wall seconds, each stage's (from DVC's log), each training job's overhead and the median of
    each itemised part of it (:func:`overhead_parts`)."""
    sys.path.insert(0, str(ROOT / "tests" / "pipelines"))
    from _repo import copy_repo, env

    tmp = Path(tempfile.mkdtemp())
    try:
        repo = copy_repo(tmp / "repo")
        subprocess.run([sys.executable, "-m", "pipelines.profile", "quick"], cwd=repo, env=env(repo), check=True)
        log = tmp / "quick.log"
        total, stages = time_repro(repo, log, force=False, env=env(repo))
        jobs = job_overheads(repo / "runs" / "timing")
        head = re.search(r"\(([0-9.]+) s to start\)", log.read_text())
        return {"quick_repro_seconds": total, "quick_stage_seconds": stages,
                "quick_ray_head_start_seconds": float(head.group(1)) if head else None,
                "quick_per_job_overhead_seconds": {"median": round(float(np.median(list(jobs.values()))), 2),
                                                   "jobs": jobs},
                "quick_per_job_overhead_parts_median": overhead_parts(repo / "runs" / "timing")}  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _trivial_worker(config: dict) -> None:
    """A Ray Train worker that does nothing but note when it started."""
    print(f"worker entered {time.time() - config['submitted']:.2f} s after submission")


def ray_train_floor(repeats: int = 3) -> dict[str, dict]:
    """Median seconds of a ``TorchTrainer.fit`` whose worker does nothing (1 worker, all CPUs),
    on a head started as ``pipelines.repro`` starts it: Ray Train's own fixed cost per job
    (its controller and worker processes), which no change inside a job removes; and, in the
    same run, the same fit in Ray Train's local mode (``num_workers=0``: the function in this
    process), which ``ray.local_mode: auto`` uses for a one-worker job on this machine."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from pipelines.repro import start_head, stop_head

    head, address = start_head(dict(os.environ))
    walls: dict[str, list[float]] = {"actors": [], "local_mode": []}
    try:
        ray_jobs.init_ray(RayParams(address, 1, False, 2, 0, 1))
        for i in range(repeats):
            for mode, workers in (("actors", 1), ("local_mode", 0)):
                t0 = time.time()
                TorchTrainer(
                    _trivial_worker, train_loop_config={"submitted": t0},
                    scaling_config=ScalingConfig(num_workers=workers,
                                                 resources_per_worker={"CPU": 2} if workers else None),
                    run_config=RunConfig(name=f"floor-{mode}-{i}", storage_path=tempfile.mkdtemp()),
                ).fit()  # fmt: skip
                walls[mode].append(time.time() - t0)
    finally:
        import ray

        ray.shutdown()
        stop_head(head)
    return {
        mode: {"median": round(float(np.median(w)), 3), "runs": [round(x, 3) for x in w]}
        for mode, w in walls.items()
    }


def overhead_parts(timing_dir: Path) -> dict[str, float]:
    """Median over the training jobs timed under ``timing_dir`` of each itemised part of their
    overhead (the phases besides the Ray job, and the Ray job's parts besides its steps)."""
    parts: dict[str, list[float]] = {}
    for timing in _job_timings(timing_dir).values():
        if "ray_job_parts" not in timing:
            continue
        items = {k: v for k, v in timing["phases"].items() if k != "ray_job"}
        items |= {k: v for k, v in timing["ray_job_parts"].items() if k != "steps"}
        for k, v in items.items():
            parts.setdefault(k, []).append(v)
    return {k: round(float(np.median(v)), 2) for k, v in parts.items()}


def training_budget(params: dict, step_gflop: dict[str, float], slow_gflops: float = 105.0) -> dict:
    """The training FLOPs of the profile in ``params`` and what they cost at 100% of a
    ``slow_gflops`` fp32 peak: Σ over the profile's training jobs (:func:`flops.profile_jobs`,
    Tune's trials included) of steps × FLOPs of one step of that method (``step_gflop``:
    ``train_step`` of ``--peak``, measured at C = 4, so the per-rate codecs' FLOPs are
    approximated by that rate's). A lower bound on the profile's time on such a machine: no
    overhead, no evaluation, perfect efficiency."""
    from flops import profile_jobs

    jobs = {job: steps * step_gflop[method] for job, (method, steps) in profile_jobs(params).items()}
    tflop = sum(jobs.values()) / 1e3
    return {"training_tflop": round(tflop, 1), "slow_machine_gflops": slow_gflops,
            "seconds_at_full_slow_peak": round(tflop * 1e3 / slow_gflops, 1),
            "tflop_by_job": {k: round(v / 1e3, 2) for k, v in jobs.items()}}  # fmt: skip


def _stamp(out: dict, before: dict, env: dict, wrote: tuple[str, ...] = ()) -> None:
    """Record ``env`` (and the date) in ``out["measured_on"]`` for every key this run changed
    or names in ``wrote``, so each figure names the machine it was measured on; the sgemm peak
    goes with it only when this run measured one."""
    changed = [k for k, v in out.items() if k not in before or before[k] != v or k in wrote]
    peak = out.get("fp32_matmul_peak_gflops") if "fp32_matmul_peak_gflops" in changed else None
    stamp = {"cpu_model": env["cpu_model"], "versions": env["versions"],
             "date": time.strftime("%Y-%m-%d"), "fp32_matmul_peak_gflops": peak}  # fmt: skip
    measured = out.setdefault("measured_on", {})
    for key in changed:
        if key not in ("cpu_model", "environment", "measured_on"):
            measured[key] = stamp


def _write(out: dict, before: dict, env: dict, wrote: tuple[str, ...] = ()) -> None:
    _stamp(out, before, env, wrote)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--method", default="dplc")
    ap.add_argument("--quick-repro", action="store_true",
                    help="time pipelines.repro of the quick profile in a copy of the repo, per stage")
    ap.add_argument("--imports", action="store_true",
                    help="a stage module's import, with the installed bytecode and from source")
    ap.add_argument("--default-repro", action="store_true", help="time `dvc repro` here")
    ap.add_argument("--resume", action="store_true",
                    help="with --default-repro: finish an interrupted run, counting its log")
    ap.add_argument("--peak", action="store_true", help="FLOPs per step against the sgemm peak")
    ap.add_argument("--budget", action="store_true",
                    help="the default profile's training FLOPs at 100%% of a 105 GFLOP/s peak (after --peak)")
    ap.add_argument("--floor", action="store_true",
                    help="Ray Train's fixed cost per job, and the itemised overheads under runs/")  # fmt: skip
    args = ap.parse_args()
    out = json.loads(OUT.read_text()) if OUT.is_file() else {}
    before = json.loads(json.dumps(out))
    env = environment.describe()
    out |= {"cpu_model": env["cpu_model"], "environment": env}
    if args.peak:
        import flops

        torch.set_num_threads(2)
        out |= flops.peak_fractions(P.load())
        _write(out, before, env, wrote=("fp32_matmul_peak_gflops",))
        print(f"wrote {OUT}")
        return
    if args.budget:
        gflop = {m: v["gflop"] for m, v in out["train_step"].items()}
        out["training_budget"] = training_budget(P.load(), gflop)
        _write(out, before, env)
        print(json.dumps(out["training_budget"], indent=1))
        return
    if args.floor:
        floor = ray_train_floor()
        out["ray_train_floor_seconds"] = floor["actors"]
        out["ray_train_local_mode_seconds"] = floor["local_mode"]
        if L.timing_dir().is_dir():  # the jobs of the last repro here, itemised
            out["per_job_overhead_parts_median"] = overhead_parts(L.timing_dir())
        _write(out, before, env)
        print(json.dumps({k: out[k] for k in ("ray_train_floor_seconds", "ray_train_local_mode_seconds")}))
        return
    if args.imports:
        out["stage_import_seconds"] = import_seconds()
        _write(out, before, env)
        print(json.dumps(out["stage_import_seconds"], indent=1))
        return
    if args.quick_repro:
        out |= quick_repro()
        _write(out, before, env)
        print(f"quick profile repro: {out['quick_repro_seconds']} s; wrote {OUT}")
        return
    if args.default_repro:
        log = ROOT / "reports" / "bench" / "default_repro.log"
        done: dict[str, float] = {}
        partial = 0.0
        if args.resume:  # Ray resumes the interrupted stage from its last checkpoint: the total
            # without its time before the interruption is a lower bound, with it an upper one
            done, lost, partial = logged_stage_seconds(log)
            out["default_repro_interrupted"] = {"stage": lost, "seconds_before": partial}
            log = log.with_name("default_repro_resumed.log")
        total, stages = time_repro(ROOT, log, force=not args.resume)
        total = round(total + sum(done.values()), 1)
        out["default_repro_seconds"] = total
        if args.resume:
            out["default_repro_seconds_with_interrupted"] = round(total + partial, 1)
        out["default_stage_seconds"] = done | stages
        jobs = job_overheads(L.timing_dir())
        out["per_job_overhead_seconds"] = {
            "median": round(float(np.median(list(jobs.values()))), 2) if jobs else None,
            "max": max(jobs.values()) if jobs else None,
            "jobs": jobs,
        }
        if out.get("fp32_matmul_peak_gflops"):
            out["default_repro_seconds_at_105_gflops"] = round(
                total * out["fp32_matmul_peak_gflops"] / 105.0, 1
            )
        _write(out, before, env)
        print(f"dvc repro (default): {total} s; wrote {OUT}")
        return
    params = P.load()
    c = 4 if args.method in ("dplc", "gc", "cae") else 0
    base = P.train_config(params, args.method, c, best={})
    loop = LoopConfig(
        steps=args.steps,
        seed=0,
        checkpoint_every=args.steps,
        log_every=5,
        precision=base.loop.precision,
        threads=2,
        progress_every_s=0,
    )
    cfg = TrainConfig(base.net, base.method, loop)
    data_dir, images = _images()
    gen_dir = None
    generator = None
    if args.method == "dplc":
        gen_dir = Path(tempfile.mkdtemp()) / "g"
        net0 = type(cfg.net)(**{**cfg.net.__dict__, "code_channels": 0})
        Codec(net0, Generator(net0).eval(), mode="prior").save(gen_dir)
        generator = Codec.load(gen_dir).generator
    per_step = cfg.method.batch_size
    clock = _Clock()
    torch.set_num_threads(2)
    method, batches = setup(cfg, images, generator)
    fit(cfg, method, batches, None, [clock])
    plain = _throughput(clock.marks, per_step)
    out |= {
        "method": args.method,
        "code_channels": c,
        "steps": args.steps,
        "plain_2threads_images_per_s": round(plain, 1),
    }
    print(f"plain loop, 2 threads: {plain:.1f} images/s")
    # worker actors (1 x 2 threads, 2 x 1) and Ray Train's local mode (the function in this
    # process, what ray.local_mode: auto runs a one-worker job on this machine in)
    for label, workers, threads, local_mode in (("1workers", 1, 2, "never"), ("local_mode", 1, 2, "auto"),
                                                ("2workers", 2, 1, "never")):  # fmt: skip
        rp = RayParams(
            address=None,
            num_workers=workers,
            use_gpu=False,
            threads_per_worker=threads,
            max_failures=0,
            report_every=args.steps,
            local_mode=local_mode,
        )
        wcfg = TrainConfig(cfg.net, cfg.method, LoopConfig(**{**loop.__dict__, "threads": threads}))
        t0 = time.perf_counter()
        result = ray_jobs.run_training(
            wcfg,
            rp,
            f"bench-{label}",
            gen_dir,
            storage=Path(tempfile.mkdtemp()),
            data_dir=data_dir,
        )
        wall = time.perf_counter() - t0
        _, _, history = ray_jobs.restore_method(wcfg, result, gen_dir)
        marks = [(h["step"], h["time"]) for h in history]
        ips = _throughput(marks, per_step * workers)
        out[f"ray_{label}_images_per_s"] = round(ips, 1)
        out[f"ray_{label}_vs_plain_throughput_ratio"] = round(ips / plain, 3)
        out[f"ray_{label}_job_seconds"] = round(wall, 1)
        out[f"ray_{label}_startup_seconds"] = round(wall - (marks[-1][1] - marks[0][1]), 1)
        print(
            f"ray {label} ({workers} x {threads} thread(s)): {ips:.1f} images/s ({ips / plain:.2f}x plain), job {wall:.1f} s"
        )
    out.setdefault("default_repro_seconds", None)
    _write(out, before, env, wrote=("method", "code_channels", "steps"))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
