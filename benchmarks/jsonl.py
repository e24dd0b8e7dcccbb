"""One benchmark row a line: printed, and appended to a ``.jsonl`` file under ``reports/bench``
with the machine it ran on."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines import environment


def append(out: Path, row: dict) -> None:
    """Print ``row`` and append it to ``out`` as one JSON line, with ``environment`` (the CPU
    model and package versions, :func:`pipelines.environment.describe`) added to the file's copy."""
    print(json.dumps(row), flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as f:
        f.write(json.dumps(row | {"environment": environment.describe()}) + "\n")
