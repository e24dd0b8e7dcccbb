"""Thin DVC stage entry points over the dplc library (Ray, DVC and MLflow live here).

Every stage's output reaches `dvc repro`'s terminal through a pipe, where Python would buffer it
in blocks: stdout is made line-buffered so that lines appear as they are printed.
"""

import os
import sys

# MLflow, configured before it is imported: warnings and errors only (no INFO lines about
# database tables and signatures in every stage), no progress bars for artifact transfers.
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

if hasattr(sys.stdout, "reconfigure"):
    sys.stdout.reconfigure(line_buffering=True)
