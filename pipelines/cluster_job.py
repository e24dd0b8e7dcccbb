"""Entry point for `ray submit pipelines/cluster.yaml pipelines/cluster_job.py -- [options]`.

Runs on the head node of the cluster: composes params.yaml for the chosen profile (optional),
then runs `dvc repro` with ``RAY_ADDRESS=auto`` so every stage's Ray jobs use the cluster.

    python pipelines/cluster_job.py --profile celeba64 --workers 4 --gpu
    python pipelines/cluster_job.py --profile quick -S train.cae.steps=10 train_baseline@cae-4

`ray submit` copies this script alone to the head's home directory, so the job runs in the
checkout around the script when there is one, else in ``~/dplc`` (where the cluster files mount
the repository); ``--root`` overrides both.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MOUNTED = Path("~/dplc")  # file_mounts target in pipelines/cluster*.yaml


def default_root() -> Path:
    """The repository the job runs in: the script's own checkout, else the cluster mount."""
    if (ROOT / "dvc.yaml").is_file():
        return ROOT
    return MOUNTED.expanduser()


def command(args: argparse.Namespace) -> list[list[str]]:
    """The commands the job runs, in order (also what --dry-run prints)."""
    cmds: list[list[str]] = []
    if args.profile:
        overrides = [
            f"ray.num_workers={args.workers}",
            f"ray.use_gpu={'true' if args.gpu else 'false'}",
            *args.set,
        ]
        cmds.append(
            [
                sys.executable,
                "-m",
                "pipelines.profile",
                args.profile,
                *sum((["-S", o] for o in overrides), []),
            ]
        )
    cmds.append(["dvc", "repro", *args.targets])
    return cmds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default=None, help="compose params.yaml for this profile first")
    ap.add_argument("--workers", type=int, default=1, help="Ray Train workers per job")
    ap.add_argument("--gpu", action="store_true", help="one GPU per worker")
    ap.add_argument(
        "-S", "--set", action="append", default=[], metavar="KEY=VALUE",
        help="extra params override for the profile (repeatable)",
    )  # fmt: skip
    ap.add_argument("--root", type=Path, default=None, help="repository on the head node")
    ap.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    ap.add_argument("targets", nargs="*", help="dvc repro targets (default: the whole DAG)")
    args = ap.parse_args(argv)
    if args.set and not args.profile:
        ap.error("-S/--set needs --profile")
    root = (args.root or default_root()).expanduser().resolve()
    print(f"# repository: {root}", flush=True)
    env = dict(os.environ, RAY_ADDRESS=os.environ.get("RAY_ADDRESS", "auto"), DVC_NO_ANALYTICS="1")
    for cmd in command(args):
        print("+", " ".join(cmd), flush=True)
        if not args.dry_run:
            subprocess.run(cmd, cwd=root, env=env, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
