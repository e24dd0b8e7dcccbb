"""`dvc repro` with one Ray runtime for the whole run, which every stage joins.

    python -m pipelines.repro                  # = dvc repro, Ray started once
    python -m pipelines.repro train@wpp-4 -f   # any dvc repro arguments

Each training stage would otherwise start (and stop) a local Ray runtime of its own, seconds
of fixed cost per stage. Here a head node starts first (``ray start --head --block`` in its own
process group, on free ports of 127.0.0.1, with the dashboard whose State API Ray Train's
placement-group cleaner uses), ``RAY_ADDRESS`` points every stage at it, and the head is shut
down when ``dvc repro`` ends, however it ends. With ``RAY_ADDRESS`` already set (a cluster),
``dvc repro`` runs as it is.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_head(env: dict[str, str], timeout_s: float = 120.0) -> tuple[subprocess.Popen, str]:
    """Start a blocking Ray head in a new session; return (process, address) once it answers.

    The head keeps its session files in a temporary folder of its own (``--temp-dir``), not in
    /tmp/ray: ``ray start`` records its address there as "the current cluster", which a later
    plain ``ray.init()`` would try to join, and hang on, after this head is gone.
    """
    port, dash = free_port(), free_port()
    temp = tempfile.mkdtemp(prefix="dplc-ray-", dir="/tmp")  # short: Ray's socket paths
    cmd = [str(BIN / "ray"), "start", "--head", "--block", f"--port={port}", f"--temp-dir={temp}",
           "--node-ip-address=127.0.0.1", "--include-dashboard=true",
           "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}", "--disable-usage-stats",
           f"--num-cpus={os.cpu_count() or 1}"]  # fmt: skip
    head = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)  # fmt: skip
    head.temp_dir = temp  # type: ignore[attr-defined] - removed by stop_head
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if head.poll() is not None:
            raise RuntimeError(f"ray start failed: {head.stderr.read()[-2000:] if head.stderr else ''}")
        probe = subprocess.run([str(BIN / "ray"), "status", f"--address={address}"], env=env,
                               capture_output=True, text=True)  # fmt: skip
        if probe.returncode == 0:
            return head, address
        time.sleep(1.0)
    stop_head(head)
    raise RuntimeError(f"Ray head at {address} did not answer within {timeout_s:.0f} s")


def stop_head(head: subprocess.Popen, grace_s: float = 5.0) -> None:
    """Stop the head and every process it started (its process group): SIGTERM, then SIGKILL
    for what is left after ``grace_s`` (``ray start --block`` itself lingers ~30 s once its
    children have gone)."""
    try:
        if head.poll() is not None:
            return
        os.killpg(head.pid, signal.SIGTERM)
        _wait_or_kill(head, grace_s)
    finally:
        shutil.rmtree(getattr(head, "temp_dir", ""), ignore_errors=True)


def _wait_or_kill(head: subprocess.Popen, grace_s: float) -> None:
    try:
        head.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)
        head.wait()


def ensure_auth_token(env: dict[str, str]) -> None:
    """Give a fresh machine its Ray authentication token (``~/.ray/auth_token``).

    ``ray start --head`` refuses to start under token authentication without a token, where
    ``ray.init`` would make one; ``ray get-auth-token --generate`` makes it only if none exists
    (so a cluster's own token is kept) and prints it, which is discarded here.
    """
    done = subprocess.run([str(BIN / "ray"), "get-auth-token", "--generate"], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"ray get-auth-token --generate failed: {done.stderr[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    env = dict(os.environ, DVC_NO_ANALYTICS="1", RAY_USAGE_STATS_ENABLED="0")
    dvc = [str(BIN / "dvc"), "repro", *args]
    if env.get("RAY_ADDRESS"):
        return subprocess.run(dvc, env=env).returncode
    env.setdefault("RAY_AUTH_MODE", "token")
    if env["RAY_AUTH_MODE"] == "token":
        ensure_auth_token(env)
    t0 = time.perf_counter()
    head, address = start_head(env)
    print(f"Ray runtime for this repro at {address} ({time.perf_counter() - t0:.1f} s to start)",
          flush=True)  # fmt: skip
    try:
        return subprocess.run(dvc, env=env | {"RAY_ADDRESS": address}).returncode
    finally:
        stop_head(head)


if __name__ == "__main__":
    sys.exit(main())
