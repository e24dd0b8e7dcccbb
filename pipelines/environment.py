"""What a result was produced with: package versions, the lock file, the CPU model.

Every MLflow run is tagged with :func:`describe` (``dplc.env.*``), the report stage writes it to
``reports/environment.json`` and the benchmarks embed it, so a figure always travels with the
machine and versions that produced it.

    python -m pipelines.environment     # print it as JSON
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
PACKAGES = ("torch", "ray", "mlflow", "dvc", "pyarrow", "torch-fidelity", "numpy", "constriction", "onnxruntime")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """{package: installed version} ("absent" for one that is not installed)."""
    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def lock_digest(path: Path = LOCK) -> str:
    """SHA-256 (first 16 hex digits) of the lock file the environment was installed from."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else "none"


def describe() -> dict[str, object]:
    """CPU model, core count, package versions and the lock file's digest."""
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count() or 0,
        "versions": versions(),
        "lock_sha256": lock_digest(),
    }


def as_tags(env: dict[str, object] | None = None) -> dict[str, str]:
    """:func:`describe` flattened into MLflow tags ``dplc.env.<key>``."""
    env = env or describe()
    tags = {f"dplc.env.{k}": str(v) for k, v in env.items() if k != "versions"}
    tags |= {f"dplc.env.{k}": v for k, v in dict(env["versions"]).items()}  # type: ignore[arg-type]
    return tags


if __name__ == "__main__":
    print(json.dumps(describe(), indent=2))
