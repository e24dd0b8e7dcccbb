"""The README's cluster path for real, on loopback: `ray up`, `ray submit`, `ray down`.

pipelines/cluster_local.yaml (Ray's `local` node provider: a head at 127.0.0.1, a worker node at
127.0.0.2) is brought up over SSH against an sshd this test starts on a free port (its own host
key, authorized key and config; a ForceCommand gives every session a home directory under
tmp_path, so the cluster's files, `~/dplc` included, stay there). `ray submit` then runs
pipelines/cluster_job.py on the head: the quick profile, cut down further, for one training stage
and its upstream. The test checks the trained codec, its registered MLflow version and alias,
that the training ran in Ray actors on the worker node of this cluster, and that `ray down`
leaves no Ray process behind.

Where the kernel allows it (root, as in CI), sshd runs as the first process of a new PID
namespace: `ray stop` (run by `ray down` and by nothing else here) then sees only this cluster's
processes, never a Ray runtime someone else runs on the machine, and ending sshd ends everything
the cluster started.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from conftest import RAY_LANE

from pipelines.repro import free_ports

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "pipelines" / "cluster_local.yaml"
BIN = Path(sys.executable).parent
TARGET = "train_baseline@cae-4"  # one Ray training stage; its only upstream is `prepare`
SMALL = [  # the quick profile, smaller still: a minute of work on two cores
    "data.train_limit=1000", "data.test_limit=100", "train.cae.steps=20", "train.checkpoint_every=10",
    "train.log_every=10", "ray.report_every=10", "ray.threads_per_worker=1",
]  # fmt: skip

pytestmark = RAY_LANE

PROBE = """\
import json, ray
import ray._private.state as state
ray.init(address="auto", logging_level="ERROR", log_to_driver=False)
nodes = [{"ip": n["NodeManagerAddress"], "alive": n["Alive"], "cpus": n["Resources"].get("CPU", 0)}
         for n in ray.nodes()]
actors = [{"cls": a["ActorClassName"], "ip": a["Address"]["IPAddress"]} for a in state.actors().values()]
jobs = [{"ip": j.get("DriverIPAddress"), "entrypoint": j.get("Entrypoint", "")} for j in state.jobs()]
print("PROBE " + json.dumps({"nodes": nodes, "actors": actors, "jobs": jobs}))
"""


def test_cluster_local_yaml_validates_against_ray_schema():
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load(CLUSTER.read_text())
    validate_config(prepare_config(config))  # Ray's own schema check; raises on a violation
    assert config["provider"]["type"] == "local"
    assert config["provider"]["head_ip"] == "127.0.0.1" and config["provider"]["worker_ips"]
    assert not any("pip install" in c for c in config["setup_commands"])  # nothing downloaded
    assert not any("ray stop" in c for k in ("head_start_ray_commands", "worker_start_ray_commands") for c in config[k])


def _copy_repo(dest: Path) -> Path:
    """The copy the end-to-end tests make (sources, no outputs, no caches), plus this
    checkout's environment linked in, as a user's checkout has it."""
    from _repo import copy_repo  # pytest puts this folder on sys.path

    copy_repo(dest)
    (dest / ".venv").symlink_to(ROOT / ".venv")
    return dest


RAY_PORTS = ("6379", "8265", "52365", "52366")  # cluster_local.yaml's GCS, dashboard, two agents


def _wait_port(host: str, port: int, proc: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while True:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            assert proc.poll() is None, f"sshd exited:\n{log.read_text()}"
            assert time.time() < deadline, f"sshd not listening on {host}:{port}:\n{log.read_text()}"
            time.sleep(0.2)


def _start_sshd(tmp: Path, home: Path, port: int, use_pidns: bool) -> subprocess.Popen:
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    assert Path(sshd).is_file(), "sshd missing: apt-get install openssh-server (.ci/run does)"
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "dplc-test", "-f", str(tmp / name)], check=True)
    shutil.copy(tmp / "client_key.pub", tmp / "authorized_keys")
    session = tmp / "session.sh"  # every session gets HOME under tmp_path
    session.write_text(
        f'#!/bin/bash\nexport HOME={home}\ncd "$HOME"\n'
        '[ -n "$SSH_ORIGINAL_COMMAND" ] && exec /bin/bash -c "$SSH_ORIGINAL_COMMAND"\nexec /bin/bash -l\n'
    )
    session.chmod(0o755)
    (tmp / "sshd_config").write_text(
        f"ListenAddress 127.0.0.1:{port}\nListenAddress 127.0.0.2:{port}\nHostKey {tmp / 'host_key'}\n"
        f"PidFile {tmp / 'sshd.pid'}\nAuthorizedKeysFile {tmp / 'authorized_keys'}\nAllowUsers {getpass.getuser()}\n"
        f"ForceCommand {session}\nPermitRootLogin prohibit-password\nPubkeyAuthentication yes\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        "MaxStartups 100\nMaxSessions 100\nX11Forwarding no\nPrintMotd no\nLogLevel ERROR\n"
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
    cmd = [sshd, "-D", "-e", "-f", str(tmp / "sshd_config")]
    if use_pidns:
        cmd = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", *cmd]
    log = tmp / "sshd.log"
    proc = subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)  # noqa: SIM115
    for host in ("127.0.0.1", "127.0.0.2"):
        _wait_port(host, port, proc, log)
    return proc


def _pidns_available() -> bool:
    if not shutil.which("unshare"):
        return False
    out = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True)
    return out.returncode == 0


def _processes(ray_tmp: Path, pidns: str | None) -> list[tuple[int, str]]:
    """(pid, command line) of the processes this test started: those in sshd's PID namespace,
    else those whose command line names this cluster's Ray temp dir."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            mine = os.readlink(d / "ns" / "pid") == pidns if pidns else str(ray_tmp) in cmd
        except OSError:
            continue
        if mine:
            found.append((int(d.name), cmd))
    return found


def _cluster_config(tmp: Path, key: Path, ports: list[int]) -> Path:
    """A copy of cluster_local.yaml with the test's key and ``ports`` for Ray (:data:`RAY_PORTS`
    in order)."""
    text = CLUSTER.read_text()
    for default, port in zip(RAY_PORTS, ports, strict=True):
        assert default in text, default
        text = text.replace(default, str(port))
    config = yaml.safe_load(text)
    config["auth"] = {"ssh_user": getpass.getuser(), "ssh_private_key": str(key)}
    path = tmp / "cluster.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _ray(args: list[str], repo: Path, env: dict, log: Path, timeout: int) -> str:
    with open(log, "a") as f:
        f.write(f"\n$ ray {' '.join(args)}\n")
        f.flush()
        try:
            proc = subprocess.run([str(BIN / "ray"), *args], cwd=repo, env=env, stdout=f, stderr=subprocess.STDOUT, timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"ray {args[0]} timed out after {timeout}s:\n{log.read_text()[-6000:]}")
    text = log.read_text()
    assert proc.returncode == 0, f"ray {args[0]} failed:\n{text[-6000:]}"
    return text


def _probe(cfg: Path, probe: Path, repo: Path, env: dict, log: Path) -> dict:
    out = _ray(["submit", "--no-config-cache", str(cfg), str(probe)], repo, env, log, timeout=120)
    line = [ln for ln in out.splitlines() if ln.startswith("PROBE ")][-1]
    return json.loads(line[len("PROBE ") :])


@pytest.mark.slow
def test_ray_up_submit_down_on_loopback(tmp_path):
    shutil.which("rsync") or pytest.fail("rsync missing: apt-get install rsync (.ci/run does)")
    repo = _copy_repo(tmp_path / "repo")
    home = tmp_path / "home"  # the nodes' home directory (see session.sh)
    home.mkdir()
    # Ray's temp dir (sockets: the path must stay short) keeps this cluster apart from any other
    # Ray on the machine: its address file, its local-provider state, its sessions
    ray_tmp = Path(tempfile.mkdtemp(prefix="dplc-lo-", dir="/tmp"))
    # `ray up` here and the head's autoscaler both reach the nodes with `ssh` (rsync too): a
    # wrapper first on their PATH adds the test sshd's port, and expands `~` in the key's path
    # (the head's copy of the key) with $HOME, which ssh itself takes from the passwd entry
    ssh_port, *ray_ports = free_ports(1 + len(RAY_PORTS))  # all distinct
    (home / "bin").mkdir()
    (home / "bin" / "ssh").write_text(
        '#!/bin/bash\nargs=()\nwhile [ $# -gt 0 ]; do\n'
        '  if [ "$1" = -i ]; then args+=(-i "${2/#\\~/$HOME}"); shift 2; else args+=("$1"); shift; fi\ndone\n'
        f'exec {shutil.which("ssh") or "/usr/bin/ssh"} -p {ssh_port} "${{args[@]}}"\n'
    )
    (home / "bin" / "ssh").chmod(0o755)
    isolated = f"RAY_TMPDIR={ray_tmp} TMPDIR={ray_tmp} RAY_USAGE_STATS_ENABLED=0 DVC_NO_ANALYTICS=1"
    # the nodes' login shells do not inherit this process's environment: pass on how long a node
    # may take to start its dashboard (`make test` allows more than Ray's 60 s, for a machine whose
    # other test worker keeps both cores busy)
    if "RAY_DASHBOARD_STARTUP_TIMEOUT_S" in os.environ:
        isolated += f" RAY_DASHBOARD_STARTUP_TIMEOUT_S={os.environ['RAY_DASHBOARD_STARTUP_TIMEOUT_S']}"
    (home / ".bashrc").write_text(f"export PATH={home / 'bin'}:$PATH {isolated}\n")
    (home / ".profile").write_text("")
    use_pidns = _pidns_available()
    cfg = _cluster_config(tmp_path, tmp_path / "client_key", ray_ports)
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RAY_"))}
    env |= dict(kv.split("=") for kv in isolated.split()) | {"PATH": f"{home / 'bin'}:{BIN}:{env.get('PATH', '')}"}
    log = tmp_path / "ray.log"
    sshd, pidns = None, None
    t0 = time.time()
    try:
        sshd = _start_sshd(tmp_path, home, ssh_port, use_pidns)
        pidns = os.readlink(f"/proc/{sshd.pid}/ns/pid_for_children") if use_pidns else None
        _ray(["up", "-y", "--no-config-cache", str(cfg)], repo, env, log, timeout=600)
        assert (home / "dplc" / "dvc.yaml").is_file()  # file_mounts put the repository there
        assert not (home / "dplc" / ".venv").exists()
        # the head's autoscaler starts the worker node over SSH: wait for both raylets
        deadline = time.time() + 180
        while True:
            state = _probe(cfg, probe, repo, env, log)
            alive = [n["ip"] for n in state["nodes"] if n["alive"]]
            if len(alive) == 2 and "127.0.0.2" in alive:
                break
            assert time.time() < deadline, f"nodes: {state['nodes']}\n{log.read_text()[-6000:]}"
            time.sleep(3)
        out = _ray(
            ["submit", "--no-config-cache", str(cfg), "pipelines/cluster_job.py", "--", "--profile", "quick", *sum((["-S", s] for s in SMALL), []), TARGET],
            repo, env, log, timeout=600,
        )  # fmt: skip
        assert f"# repository: {home / 'dplc'}" in out
        assert "Running stage 'prepare'" in out and f"Running stage '{TARGET}'" in out
        assert "Started a local Ray instance" not in out  # the stages joined the cluster
        # outputs in the head's copy of the repository
        remote = home / "dplc"
        assert (remote / "runs" / "train" / "cae" / "4" / "codec").is_dir()
        import mlflow

        client = mlflow.tracking.MlflowClient(f"sqlite:///{remote / 'mlflow.db'}")
        mv = client.get_model_version_by_alias("fashion_mnist-cae", "c4")
        assert mv.name == "fashion_mnist-cae" and int(mv.version) == 1
        # the training ran in this cluster: its driver on the head, its Ray Train worker on the
        # worker node (the head offers no CPUs; Ray registers it under the machine's address)
        state = _probe(cfg, probe, repo, env, log)
        cpus = {n["ip"]: n["cpus"] for n in state["nodes"] if n["alive"]}
        head = next(ip for ip in cpus if ip != "127.0.0.2")
        assert len(cpus) == 2 and cpus[head] == 0 < cpus["127.0.0.2"], cpus
        train_actors = [a for a in state["actors"] if "TrainWorker" in a["cls"]]
        assert train_actors and {a["ip"] for a in train_actors} == {"127.0.0.2"}, state["actors"]
        assert any("pipelines.train" in j["entrypoint"] and j["ip"] == head for j in state["jobs"]), state["jobs"]
        _ray(["down", "-y", str(cfg)], repo, env, log, timeout=120)
        deadline = time.time() + 30
        while (left := _not_sshd(_processes(ray_tmp, pidns))) and time.time() < deadline:
            time.sleep(0.5)
        assert not left, f"`ray down` left processes behind: {left}"
        print(f"loopback cluster: {time.time() - t0:.0f}s, {'own' if use_pidns else 'shared'} PID namespace")
    finally:
        if sshd is not None and sshd.poll() is None:
            os.killpg(sshd.pid, signal.SIGTERM)  # in its PID namespace, this ends all it started
            try:
                sshd.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(sshd.pid, signal.SIGKILL)
                sshd.wait()
        for pid, _ in _processes(ray_tmp, pidns):  # after a failure: what `ray down` did not stop
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.time() + 10
        while (leftovers := _processes(ray_tmp, pidns)) and time.time() < deadline:
            time.sleep(0.2)
        logs = ray_tmp / "ray" / "session_latest" / "logs"  # kept in tmp_path for a post-mortem
        shutil.copytree(logs, tmp_path / "ray_logs", ignore=shutil.ignore_patterns("worker-*", "python-core-*"),
                        symlinks=False, dirs_exist_ok=True, ignore_dangling_symlinks=True) if logs.is_dir() else None  # fmt: skip
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert not leftovers, f"processes left behind: {leftovers}"


def _not_sshd(procs: list[tuple[int, str]]) -> list[tuple[int, str]]:
    return [(pid, cmd) for pid, cmd in procs if not cmd.startswith(("sshd", "/usr/sbin/sshd"))]
