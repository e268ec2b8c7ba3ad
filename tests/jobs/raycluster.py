"""A real two-node Ray cluster on this machine (`ray start --head` + `ray start --address`), for tests.

Each node gets its own temporary directory, ports and a custom resource naming it; the
cluster has its own token (Ray >= 2.59 starts clusters with token authentication), so
nothing of the user's `~/.ray` is read. `stop` kills every process of the cluster by its
process group and by its temporary directory, never by name: other Ray instances on the
machine are left alone. `ray_up` is the one-node local Ray of the tests that need no cluster.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import ray

# `ray start`, with a longer wait for the raylet to register: Ray allows it a fixed 30 s (not
# configurable), which a heavily loaded machine misses, and the raylet then dies with the command.
RAY_START = [sys.executable, "-c", """
import sys, time
import ray._private.services as services
from ray.scripts.scripts import main
get_node = services.get_node
def patient_get_node(*args, **kwargs):
    deadline = time.monotonic() + 300
    while True:
        try:
            return get_node(*args, **kwargs)
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)
services.get_node = patient_get_node
sys.argv[0] = "ray"
sys.exit(main())
""", "start"]


def free_ports(n: int) -> list[int]:
    """`n` TCP ports free right now (bound then released: good enough for a test)."""
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


@dataclass
class LocalCluster:
    """Handles of a two-node cluster started by `start`."""

    base: Path                       # temporary root: node temp dirs and the token file
    env: dict[str, str]              # what a driver needs to join (token auth settings)
    address: str = ""                # HOST:PORT of the head's GCS
    groups: list[int] = field(default_factory=list)  # process group of each `ray start`

    def node_dir(self, name: str) -> Path:
        return self.base / name

    def stop(self) -> None:
        """Kill every process of this cluster (its process groups, then anything naming its directory)."""
        for pgid in self.groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        kill_processes_naming(self.base, None)
        shutil.rmtree(self.base, ignore_errors=True)


def kill_processes_naming(marker: Path, group: int | None) -> None:
    """SIGKILL process group `group` (if given) and every process whose command line contains `marker`.

    Ray's daemons name their temp dir on their command line; a unique temp dir per test
    therefore finds exactly the test's processes (never this one or its parent).
    """
    if group is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
    needle = str(marker).encode()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) in (os.getpid(), os.getppid()):
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if needle in fh.read():
                    os.kill(int(pid), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            continue


def _ray_start(cluster: LocalCluster, name: str, args: list[str], attempts: int = 3) -> None:
    """`ray start ARGS` for node `name`; retried, because Ray gives a raylet a fixed 30 s to register
    with the GCS, which a heavily loaded machine can miss."""
    node = cluster.node_dir(name)
    for attempt in range(1, attempts + 1):
        ports = free_ports(6)
        cmd = [*RAY_START, "--temp-dir", str(node), "--node-ip-address", "127.0.0.1", "--num-gpus", "0",
               "--disable-usage-stats", "--object-store-memory", str(300 * 2**20),
               "--node-manager-port", str(ports[0]), "--object-manager-port", str(ports[1]),
               "--dashboard-agent-listen-port", str(ports[2]), "--dashboard-agent-grpc-port", str(ports[3]),
               "--runtime-env-agent-port", str(ports[4]), "--metrics-export-port", str(ports[5]), *args]
        # its own session: the daemons it leaves behind stay in that process group, which `stop` kills
        proc = subprocess.run(cmd, env=cluster.env, cwd="/", capture_output=True, text=True, timeout=600,
                              start_new_session=True)
        group = proc_group_of(node)
        if group is not None and group != os.getpgid(0):
            cluster.groups.append(group)
        if proc.returncode == 0:
            return
        if attempt == attempts:
            raise RuntimeError(f"ray start ({name}) failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        kill_processes_naming(node, group if group != os.getpgid(0) else None)  # what half started
        shutil.rmtree(node, ignore_errors=True)


def proc_group_of(node: Path) -> int | None:
    """The process group of the processes whose command line names `node` (a node's raylet and friends)."""
    marker = str(node).encode()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if marker in fh.read():
                    return os.getpgid(int(pid))
        except (OSError, ProcessLookupError):
            continue
    return None


def start(num_cpus: tuple[int, int] = (1, 1)) -> LocalCluster:
    """Start a head node and a second node; stop it with `LocalCluster.stop` (also on failure here)."""
    base = Path(tempfile.mkdtemp(prefix="rsc-", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    token = base / "token"
    token.write_text(secrets.token_hex(32), encoding="ascii")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token), RAY_USAGE_STATS_ENABLED="0",
               RAY_raylet_start_wait_time_s="180")  # a loaded machine registers a node slowly
    # the nodes must not find this checkout on their own: the driver ships its code (jobs.ray_runtime)
    env.pop("PYTHONPATH", None)
    cluster = LocalCluster(base=base, env={**env})
    try:
        gcs, dash = free_ports(2)
        _ray_start(cluster, "head", ["--head", "--port", str(gcs), "--num-cpus", str(num_cpus[0]),
                                     "--resources", '{"reusescan_head": 1}', "--include-dashboard", "false",
                                     "--dashboard-port", str(dash)])
        cluster.address = f"127.0.0.1:{gcs}"
        wait_for_nodes(cluster, 1, timeout_s=300)
        _ray_start(cluster, "second", ["--address", cluster.address, "--num-cpus", str(num_cpus[1]),
                                       "--resources", '{"reusescan_second": 1}'])
        wait_for_nodes(cluster, 2, timeout_s=300)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def nodes(cluster: LocalCluster) -> list[dict[str, object]]:
    """`ray.nodes()` of the cluster (alive and dead), from a driver that only asks and leaves.

    Asked from a subprocess carrying the cluster's token settings, so this test process's own
    Ray is untouched.
    """
    code = (f"import json, ray; ray.init(address={cluster.address!r}, log_to_driver=False, "
            "include_dashboard=False); print(json.dumps(ray.nodes(), default=str))")
    proc = subprocess.run([sys.executable, "-c", code], env=cluster.env, capture_output=True, text=True,
                          timeout=120, cwd="/")
    if proc.returncode:
        raise RuntimeError(f"ray.nodes() failed: {proc.stderr[-2000:]}")
    rows: list[dict[str, object]] = json.loads(proc.stdout.strip().splitlines()[-1])
    return rows


def wait_for_nodes(cluster: LocalCluster, n: int, timeout_s: float = 90.0) -> None:
    """Block until the cluster reports `n` alive nodes."""
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(RuntimeError, ValueError, IndexError):
            if sum(bool(node.get("Alive")) for node in nodes(cluster)) >= n:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the cluster at {cluster.address} did not reach {n} nodes")
        time.sleep(1.0)


@contextlib.contextmanager
def ray_up() -> Iterator[None]:
    """Ray with 2 CPUs for the body: started here and shut down after, unless it was up already."""
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        if started:
            ray.shutdown()
