"""Helpers of the end-to-end tests: a copy of the repository to run `dvc repro` in, and the
environment its commands run with."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIP = {".venv", ".git", "data", "runs", "mlartifacts", "reports", ".pytest_cache", ".ruff_cache", ".hypothesis"}


def copy_repo(dest: Path) -> Path:
    """The tracked and untracked-but-not-ignored files, without data, runs or results; a fresh
    git repository (DVC needs one) and the DVC config without its cache."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True)
    for rel in files.stdout.splitlines():
        if rel.split("/")[0] in SKIP or rel == "mlflow.db" or not (ROOT / rel).is_file():
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel)
    shutil.copytree(ROOT / ".dvc", dest / ".dvc", ignore=shutil.ignore_patterns("cache", "tmp"), dirs_exist_ok=True)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    return dest


def env(repo: Path) -> dict:
    """This interpreter's bin folder first on PATH, the copy on PYTHONPATH, no MLflow or Ray
    address inherited from the caller."""
    bindir = str(Path(sys.executable).parent)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RAY_ADDRESS"))}
    return base | {"DVC_NO_ANALYTICS": "1", "PATH": bindir + os.pathsep + base.get("PATH", ""), "PYTHONPATH": str(repo)}


def run(cmd: list[str], repo: Path, timeout: int = 900) -> str:
    """Run ``cmd`` in ``repo``; its output, or a failed assertion with the output's tail.

    The command runs in a session of its own, and all of it is ended if it outlives
    ``timeout``: a ``pipelines.repro`` killed alone would leave its Ray head running."""
    proc = subprocess.Popen(cmd, cwd=repo, env=env(repo), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # whatever it left behind, on success or not
        if proc.poll() is None:
            proc.wait()
    assert proc.returncode == 0, f"{cmd} failed:\n{stdout[-4000:]}\n{stderr[-4000:]}"
    return stdout + stderr
