"""Thin DVC stage entry points over the dplc library (Ray, DVC and MLflow live here).

Every stage's output reaches `dvc repro`'s terminal through a pipe, where Python would buffer it
in blocks: stdout is made line-buffered so that lines appear as they are printed.
"""

import sys

if hasattr(sys.stdout, "reconfigure"):
    sys.stdout.reconfigure(line_buffering=True)
