"""Training steps of two processes sharing the cores: OpenMP's spin-wait against passive waiting.

    python benchmarks/omp_wait.py [--method cae] [--threads 2] [--seconds 20]

`make test` runs the suite on two pytest-xdist workers, so two training processes (two stages of
two end-to-end repros, each with ``threads_per_worker`` torch threads) can share the machine's
cores. torch's OpenMP threads spin while they wait for work (libgomp's default
``OMP_WAIT_POLICY``), and a spinning thread takes a core from the other process. This runs the
params' ``--method`` training step (``benchmarks/flops.py``'s model and batch) for ``--seconds``
in one process alone and in two processes at once, under each policy, and writes the steps per
second of each process to ``reports/bench/omp_wait.json`` with the machine it ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OUT = ROOT / "reports" / "bench" / "omp_wait.json"
POLICIES = {"spin (default)": None, "passive": "PASSIVE"}


def worker(method_name: str, threads: int, seconds: float) -> None:
    """Child: time the method's training steps for ``seconds``; print steps/s and CPU use."""
    import torch
    import yaml

    from benchmarks.flops import build

    torch.set_num_threads(threads)
    method, batch = build(yaml.safe_load((ROOT / "params.yaml").read_text()), method_name)
    for _ in range(2):  # warm-up
        method.step(batch)
        method.end_step()
    t0, c0, n = time.perf_counter(), time.process_time(), 0
    while time.perf_counter() - t0 < seconds:
        method.step(batch)
        method.end_step()
        n += 1
    wall = time.perf_counter() - t0
    print(json.dumps({"steps_per_s": n / wall, "cpu_cores_used": (time.process_time() - c0) / wall}))


def run(policy: str | None, processes: int, args: argparse.Namespace) -> list[dict]:
    """``processes`` children started together under ``policy``; their results."""
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    cmd = [sys.executable, __file__, "--worker", "--method", args.method, "--threads", str(args.threads),
           "--seconds", str(args.seconds)]  # fmt: skip
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True) for _ in range(processes)]
    outs = [p.communicate()[0] for p in procs]
    if any(p.returncode for p in procs):
        raise RuntimeError(f"a worker failed under {policy or 'the default policy'}")
    return [json.loads(o.strip().splitlines()[-1]) for o in outs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="cae")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.method, args.threads, args.seconds)
        return
    from pipelines import environment

    rows = {}
    for label, policy in POLICIES.items():
        alone = run(policy, 1, args)[0]
        pair = run(policy, 2, args)
        rows[label] = {"alone_steps_per_s": round(alone["steps_per_s"], 2),
                       "alone_cpu_cores": round(alone["cpu_cores_used"], 2),
                       "pair_steps_per_s": [round(r["steps_per_s"], 2) for r in pair],
                       "pair_total_over_alone": round(sum(r["steps_per_s"] for r in pair) / alone["steps_per_s"], 3)}  # fmt: skip
        print(label, json.dumps(rows[label]), flush=True)
    out = {"method": args.method, "threads_per_process": args.threads, "seconds": args.seconds,
           "policies": rows, "date": time.strftime("%Y-%m-%d"), "environment": environment.describe()}  # fmt: skip
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
