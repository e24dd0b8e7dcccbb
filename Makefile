# The two fresh-machine commands (see README):
#   make main   set up, then run the default pipeline (`dvc repro`)
#   make test   set up, then run the tests
SHELL := /bin/bash
VENV := .venv/bin
export DVC_NO_ANALYTICS := 1
# Ray's default (token authentication), said explicitly so that Ray does not warn it chose it
export RAY_AUTH_MODE := token

.PHONY: setup main quick test lint bench ui lock

setup:
	bash scripts/setup.sh

# pipelines.repro = dvc repro with one Ray runtime that every stage joins
main: setup
	$(VENV)/python -m pipelines.profile default
	PATH=$(CURDIR)/.venv/bin:$$PATH $(VENV)/python -m pipelines.repro

quick: setup
	$(VENV)/python -m pipelines.profile quick
	PATH=$(CURDIR)/.venv/bin:$$PATH $(VENV)/python -m pipelines.repro

# two pytest workers (README, "On a fresh machine"): OpenMP threads that wait passively, so two training
# processes share the cores instead of spinning on them, and Ray dashboards given 300 s to start
# (Ray's 60 s was too short once, for the loopback cluster's head beside the quick end to end)
test: setup
	bash scripts/test-system.sh
	$(VENV)/ruff check dplc pipelines tests benchmarks scripts
	OMP_WAIT_POLICY=PASSIVE RAY_DASHBOARD_STARTUP_TIMEOUT_S=300 PATH=$(CURDIR)/.venv/bin:$$PATH $(VENV)/python -m pytest -q -n 2 --dist loadgroup --timeout 1800 --durations 25

# Refresh requirements.lock (uv: resolves the whole tree in seconds and writes a plain
# requirements file that scripts/setup.sh installs with the uv it pins; torch/torchvision pinned by
# scripts/lock-constraints.txt)
lock: setup
	$(VENV)/uv pip compile pyproject.toml --extra test --universal --python-version 3.11 \
	  -c scripts/lock-constraints.txt -o requirements.lock

ui:
	$(VENV)/mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port 5000
