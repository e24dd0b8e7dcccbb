"""Time installing ``requirements.lock`` into a fresh virtual environment, with pip and with uv.

    python benchmarks/install.py [--tools uv pip]

Each tool installs the lock with ``--no-deps`` into its own new venv under a temporary folder,
with its cache off (``pip --no-cache-dir``, ``uv --no-cache``), as on a fresh CI machine; the
venv is then checked by importing torch, ray, mlflow and dvc. ``scripts/setup.sh`` installs
with uv because of these figures. Writes ``reports/bench/install.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipelines import environment  # noqa: E402

OUT = ROOT / "reports" / "bench" / "install.json"
LOCK = ROOT / "requirements.lock"
CHECK = "import torch, ray, mlflow, dvc; print(torch.__version__)"


def uv_version() -> str:
    """The uv version ``scripts/setup.sh`` pins (its ``UV_VERSION=`` line)."""
    for line in (ROOT / "scripts" / "setup.sh").read_text().splitlines():
        if line.startswith("UV_VERSION="):
            return line.split("=", 1)[1].strip()
    raise SystemExit("scripts/setup.sh pins no UV_VERSION")


def install_command(tool: str, venv: Path) -> list[str]:
    """The command installing the lock into ``venv`` with ``tool``, its cache off."""
    py = str(venv / "bin" / "python")
    if tool == "pip":
        return [py, "-m", "pip", "install", "-q", "--no-cache-dir", "--no-deps", "-r", str(LOCK)]
    return [str(venv / "bin" / "uv"), "pip", "install", "-q", "--no-cache", "--python", py, "--no-deps", "-r", str(LOCK)]


def time_install(tool: str, folder: Path) -> dict[str, object]:
    """Seconds to install the lock with ``tool`` into a fresh venv, and the size it took."""
    venv = folder / tool
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    if tool == "uv":
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", f"uv=={uv_version()}"],
                       check=True, capture_output=True)  # fmt: skip
    t0 = time.perf_counter()
    subprocess.run(install_command(tool, venv), check=True, capture_output=True)
    seconds = time.perf_counter() - t0
    torch_version = subprocess.run([str(venv / "bin" / "python"), "-c", CHECK], check=True, capture_output=True, text=True)
    size = sum(p.stat().st_size for p in venv.rglob("*") if p.is_file() and not p.is_symlink())
    shutil.rmtree(venv)
    return {"seconds": round(seconds, 1), "gib": round(size / 2**30, 2), "torch": torch_version.stdout.strip()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tools", nargs="+", choices=["uv", "pip"], default=["uv", "pip"])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        timings = {tool: time_install(tool, Path(tmp)) for tool in args.tools}
    out = {"lock_packages": sum(1 for line in LOCK.read_text().splitlines() if "==" in line),
           "uv_version": uv_version(), **timings, "environment": environment.describe()}  # fmt: skip
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=2))
    print(json.dumps({k: v for k, v in out.items() if k != "environment"}, indent=2))


if __name__ == "__main__":
    main()
