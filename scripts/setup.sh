#!/usr/bin/env bash
# Set up a fresh machine for dplc: system data package, a virtual environment, the project.
#   bash scripts/setup.sh            (idempotent; reuses .venv when it exists)
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  if command -v apt-get >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null
  else
    echo "note: no apt-get; Fashion-MNIST will be downloaded on first use" >&2
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
export PIP_DISABLE_PIP_VERSION_CHECK=1
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
# uv, pinned here (the one place): it installs the lock and `make lock` refreshes it with it
UV_VERSION=0.13.8
.venv/bin/python -m pip install -q "uv==$UV_VERSION" 2>&1 | grep -v "^WARNING: Location" || true
# Exactly the versions of requirements.lock (made by `make lock`: uv pip compile of pyproject.toml
# with the test extras), then the project itself without resolving anything again. torch is the
# ordinary registry build (CUDA, runs on the CPU at full speed; torchvision matches it). uv
# fetches the ~6 GB in parallel, several times faster than pip (reports/bench/install.json);
# copy mode, as the cache may sit on another filesystem.
# --compile-bytecode: the .pyc files now, once. Without them every process compiles what it imports
# (torch, mlflow, ray) again wherever PYTHONDONTWRITEBYTECODE is set, as on this project's
# machines: `import pipelines.train` took 17.0 s that way and 7.1 s compiled (reports/bench/pipeline.json).
UV_LINK_MODE=copy .venv/bin/uv pip install -q --python .venv/bin/python --no-deps --compile-bytecode -r requirements.lock
# a .venv installed before that flag: compile it once (uv compiles only when it installs something)
if [ ! -d .venv/lib/python3*/site-packages/torch/__pycache__ ]; then
  .venv/bin/python -m compileall -q -j 0 .venv/lib/python3*/site-packages >/dev/null 2>&1 || true
fi
# (setuptools says, as a warning, only that the install is editable: silenced here)
PYTHONWARNINGS="ignore:Editable installation" .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -m pip check
.venv/bin/python -c "import dplc, torch, torchvision, ray, mlflow, dvc; print('dplc', dplc.__version__, 'torch', torch.__version__)"
