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


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports on 127.0.0.1 that nothing listens on right now. Every socket
    stays bound until all are chosen: ports taken one at a time can repeat, since a closed port
    is free again at once.

    >>> a, b = free_ports(2)
    >>> a != b
    True
    """
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]


def start_head(env: dict[str, str], timeout_s: float = 120.0, num_cpus: int | None = None,
               extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen, str]:  # fmt: skip
    """Start a blocking Ray head in a new session; return (process, address) once it answers.

    The head keeps its session files in a temporary folder of its own (``--temp-dir``), not in
    /tmp/ray: ``ray start`` records its address there as "the current cluster", which a later
    plain ``ray.init()`` would try to join, and hang on, after this head is gone. ``num_cpus``
    (default: the machine's) and ``extra`` (more ``ray start`` flags) shape the node.
    """
    port, dash = free_ports(2)
    temp = tempfile.mkdtemp(prefix="dplc-ray-", dir="/tmp")  # short: Ray's socket paths
    cmd = [str(BIN / "ray"), "start", "--head", "--block", f"--port={port}", f"--temp-dir={temp}",
           "--node-ip-address=127.0.0.1", "--include-dashboard=true",
           "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}", "--disable-usage-stats",
           f"--num-cpus={num_cpus or os.cpu_count() or 1}", *extra]  # fmt: skip
    head = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)  # fmt: skip
    head.temp_dir = temp  # type: ignore[attr-defined] - removed by stop_head
    address = f"127.0.0.1:{port}"
    _wait_for_nodes(head, address, 1, env, timeout_s)
    return head, address


def join_node(address: str, env: dict[str, str], nodes: int, num_cpus: int = 1,
              extra: tuple[str, ...] = (), timeout_s: float = 120.0) -> subprocess.Popen:  # fmt: skip
    """Start a blocking Ray worker node on 127.0.0.1 that joins the head at ``address``, in a new
    session (so :func:`stop_head` ends it and only it, unlike ``ray stop``, which ends every Ray
    runtime on the machine); return once the cluster has ``nodes`` live nodes."""
    cmd = [str(BIN / "ray"), "start", "--block", f"--address={address}",
           "--node-ip-address=127.0.0.1", f"--num-cpus={num_cpus}", *extra]  # fmt: skip
    node = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)  # fmt: skip
    _wait_for_nodes(node, address, nodes, env, timeout_s)
    return node


def _wait_for_nodes(proc: subprocess.Popen, address: str, nodes: int, env: dict[str, str],
                    timeout_s: float) -> None:  # fmt: skip
    """Wait until the cluster at ``address`` answers with ``nodes`` live nodes; stop ``proc``
    and raise if it exits or the time runs out."""
    deadline = time.monotonic() + timeout_s
    host, port = address.rsplit(":", 1)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"ray start failed: {proc.stderr.read()[-2000:] if proc.stderr else ''}"
            )
        if not _accepts(host, int(port)):  # a connect is cheap; each `ray status` imports Ray
            time.sleep(0.2)
            continue
        probe = subprocess.run([str(BIN / "ray"), "status", f"--address={address}"], env=env,
                               capture_output=True, text=True)  # fmt: skip
        if probe.returncode == 0 and _live_nodes(probe.stdout) >= nodes:
            return
        time.sleep(1.0)
    stop_head(proc)
    raise RuntimeError(
        f"Ray at {address} did not show {nodes} live node(s) within {timeout_s:.0f} s"
    )


def _accepts(host: str, port: int) -> bool:
    """Whether something listens on ``host:port`` (the head's GCS, before asking it anything)."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def _live_nodes(status: str) -> int:
    """The number of live nodes in ``ray status`` output (the lines under "Active:")."""
    lines = status.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Active:") + 1
    except StopIteration:
        return 0
    count = 0
    for line in lines[start:]:
        if not line.strip().startswith("1 node_"):
            break
        count += 1
    return count


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


WARM_COORDINATOR = (
    "import ray\n"
    "from ray.data._internal.cluster_autoscaler.default_autoscaling_coordinator import (\n"
    "    get_or_create_autoscaling_coordinator)\n"
    "ray.init(log_to_driver=False, logging_level='ERROR')\n"
    "ray.get(get_or_create_autoscaling_coordinator().__ray_ready__.remote(), timeout=300)\n"
)
"""Creates Ray's detached AutoscalingCoordinator actor on the repro's head. Every Ray Train job
registers its resources with it and allows that 5 s; the first job of a fresh runtime would
otherwise pay the actor's creation (a new worker process importing ``ray.data``), time out on a
busy 2-core machine and log a harmless warning with a traceback."""


def warm_coordinator(address: str, env: dict[str, str]) -> subprocess.Popen:
    """Start creating the AutoscalingCoordinator in the background (:data:`WARM_COORDINATOR`),
    while the first, Ray-free stages run; the caller waits for it before stopping the head."""
    return subprocess.Popen([sys.executable, "-c", WARM_COORDINATOR], env=env | {"RAY_ADDRESS": address},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip


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
    warm = warm_coordinator(address, env)
    try:
        return subprocess.run(dvc, env=env | {"RAY_ADDRESS": address}).returncode
    finally:
        _wait_or_kill(warm, 60.0)
        stop_head(head)


if __name__ == "__main__":
    sys.exit(main())
