"""A real Strata cluster for fault tests: 6 `strata storage-node` processes + 1 `strata gateway`.

Owns: spawning the storage nodes (each on its own free 127.0.0.1 port with its own data dir),
writing the gateway's TOML (short timeouts so faults show up in seconds), the fault helpers
(kill -9, SIGSTOP/SIGCONT, restart on the same port and directory), SigV4-signed admin status,
cluster-auth signing of raw node requests (to check a node refuses a wrong secret), bounded
waits on node states, and teardown.

Invariants:
- nothing here talks to anything but 127.0.0.1;
- every wait is bounded (deadline loops, subprocess and socket timeouts);
- `Cluster.close()` always SIGCONTs every node first (a stopped process cannot die on SIGTERM),
  then terminates and finally SIGKILLs every process it ever started; children also get
  SIGKILL from the kernel if the test process dies (PR_SET_PDEATHSIG, Linux), so no process
  is leaked even when pytest itself is killed;
- spawned processes never inherit the caller's `STRATA_*` variables (a stray
  `STRATA_CLUSTER_SECRET` would override the per-node secrets the auth tests depend on).

Contract of the binary used here: `strata storage-node --listen ADDR --data DIR [--no-fsync]
[--secret-file FILE]` and `strata gateway --config FILE.toml` (see the cluster CLI contract).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import hmac
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from botocore.config import Config

import support

CLUSTER_SECRET = "strata-fault-test-cluster-secret-0123456789"
WRONG_SECRET = "this-is-not-the-cluster-secret-9876543210"

# Gateway timeouts required by the fault tests (short, so a dead or hung node costs seconds).
GATEWAY_TIMEOUTS = {
    "connect_timeout_ms": 500,
    "request_timeout_ms": 2000,
    "idle_timeout_ms": 2000,
    "shard_timeout_secs": 4,
    "hedge_after_ms": 200,
    "health_interval_ms": 300,
}

START_TIMEOUT = 30.0
SHARD_NAME = re.compile(r"^[0-9a-f]{32}\.[0-9]+$")
STOP_TIMEOUT = 10.0

_PR_SET_PDEATHSIG = 1
_libc = None
try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
except OSError:  # not Linux: rely on close() alone
    _libc = None


def _die_with_parent() -> None:
    """preexec_fn: SIGKILL this child when the spawning thread dies."""
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def clean_env(extra: dict | None = None) -> dict:
    """os.environ minus every STRATA_* variable, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATA_")}
    env.setdefault("STRATA_LOG", "info")
    env.update(extra or {})
    return env


def spawn(cmd: list[str], log_path: Path, env: dict) -> subprocess.Popen:
    """Start a process with stdout+stderr appended to `log_path`, dying with its parent.

    PR_SET_PDEATHSIG fires when the *thread* that forked dies, so only call this from the
    test's main thread (Cluster asserts that)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                preexec_fn=_die_with_parent)


def port_open(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def node_request(port: int, method: str, path: str, *, secret: str | None, query: str = "",
                 timeout: float = 5.0) -> tuple[int, bytes]:
    """One request straight to a storage node, signed (wire protocol 2) when `secret` is given.

    MAC = HMAC-SHA256(secret, "STRATA-WIRE-2" "\\n" method "\\n" path "\\n" query "\\n"
    unix-seconds "\\n" nonce). The answer body is returned as sent: a signed chunk chain
    (storage/src/signed_body.rs), which these tests do not open."""
    headers = {}
    if secret is not None:
        date = str(int(time.time()))
        nonce = os.urandom(16).hex()
        message = "\n".join(["STRATA-WIRE-2", method, path, query, date, nonce]).encode()
        mac = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
        headers = {"x-strata-date": date, "x-strata-nonce": nonce,
                   "authorization": f"STRATA2-HMAC-SHA256 {mac}"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path + (f"?{query}" if query else ""), headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@dataclass
class Node:
    index: int
    port: int
    data_dir: Path
    log_path: Path
    secret: str | None  # None: start without any secret (must be refused)
    secret_file: Path | None = None
    proc: subprocess.Popen | None = None
    stopped: bool = False
    history: list[subprocess.Popen] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    extra_args: list[str] = field(default_factory=list)

    def command(self, binary: str) -> list[str]:
        cmd = [binary, "storage-node", "--listen", self.address, "--data", str(self.data_dir), "--no-fsync"]
        if self.secret_file is not None:
            cmd += ["--secret-file", str(self.secret_file)]
        return cmd + self.extra_args

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self) -> str:
        try:
            return support.tail(self.log_path.read_bytes(), 2000)
        except OSError:
            return "(no log)"

    def shard_files(self) -> list[Path]:
        """Shard files on this node's disk: DIR/shards/<2 hex>/<32 hex>.<index>."""
        root = self.data_dir / "shards"
        if not root.is_dir():
            return []
        return [p for p in root.glob("*/*") if p.is_file() and SHARD_NAME.match(p.name)]


class Cluster:
    """6 storage nodes + 1 gateway on loopback, with fault injection helpers.

    Use as a context manager or call close() in a finally: teardown never leaks processes."""

    def __init__(self, binary: str, root: Path, *, nodes: int = 6, data_shards: int = 4, parity_shards: int = 2,
                 node_secrets: dict[int, str | None] | None = None, gateway_extra: dict | None = None,
                 node_args: list[str] | None = None, node_tls: tuple[Path, Path, Path] | None = None):
        """`node_tls`: (ca, cert, key) PEM files: every node serves HTTPS with cert/key, the
        gateway lists them as https://127.0.0.1:port and trusts `ca` (`node_tls_ca`)."""
        self.binary = binary
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.data_shards = data_shards
        self.parity_shards = parity_shards
        self.secret_file = self.root / "cluster.secret"
        self.secret_file.write_text(CLUSTER_SECRET + "\n")
        self.secret_file.chmod(0o600)
        self.gateway_extra = dict(gateway_extra or {})
        self.node_scheme = "https://" if node_tls else ""
        if node_tls:
            ca, cert, key = node_tls
            self.gateway_extra.setdefault("node_tls_ca", str(ca))
            node_args = list(node_args or []) + ["--tls-cert", str(cert), "--tls-key", str(key)]
        self.access_key = support.ACCESS_KEY
        self.secret_key = support.SECRET_KEY
        self.nodes: list[Node] = []
        node_secrets = node_secrets or {}
        for i in range(nodes):
            secret = node_secrets.get(i, CLUSTER_SECRET)
            node = Node(i, support.free_port(), self.root / f"node{i}", self.root / f"node{i}.log", secret,
                        extra_args=list(node_args or []))
            if secret is not None:
                node.secret_file = self.root / f"node{i}.secret"
                node.secret_file.write_text(secret + "\n")
                node.secret_file.chmod(0o600)
            self.nodes.append(node)
        self.gateway_port = support.free_port()
        self.gateway_dir = self.root / "gateway"
        self.gateway_log = self.root / "gateway.log"
        self.config_path = self.root / "gateway.toml"
        self.gateway: subprocess.Popen | None = None
        self._all: list[subprocess.Popen] = []
        self._main_thread = threading.get_ident()

    # ---- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> "Cluster":
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def start(self, *, wait: bool = True) -> None:
        for i in range(len(self.nodes)):
            self.start_node(i)
        self.write_config()
        self.start_gateway()
        if wait:
            self.wait_ready()

    def _spawn(self, cmd: list[str], log: Path, env: dict) -> subprocess.Popen:
        assert threading.get_ident() == self._main_thread, "spawn processes from the main thread only"
        proc = spawn(cmd, log, env)
        self._all.append(proc)
        return proc

    def start_node(self, i: int, *, wait: bool = True) -> subprocess.Popen:
        node = self.nodes[i]
        assert not node.alive(), f"node {i} is already running"
        node.data_dir.mkdir(parents=True, exist_ok=True)
        node.proc = self._spawn(node.command(self.binary), node.log_path, clean_env())
        node.history.append(node.proc)
        node.stopped = False
        if wait:
            deadline = time.monotonic() + START_TIMEOUT
            while not port_open(node.port):
                if node.proc.poll() is not None:
                    raise RuntimeError(f"storage node {i} exited with {node.proc.returncode} during start\n"
                                       f"{node.log_tail()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"storage node {i} not listening within {START_TIMEOUT}s\n{node.log_tail()}")
                time.sleep(0.05)
        return node.proc

    def config_text(self) -> str:
        lines = [
            f'listen = "127.0.0.1:{self.gateway_port}"',
            f"data = {json.dumps(str(self.gateway_dir))}",
            f"data_shards = {self.data_shards}",
            f"parity_shards = {self.parity_shards}",
            f"cluster_secret_file = {json.dumps(str(self.secret_file))}",
            "fsync = false",
        ]
        settings = dict(GATEWAY_TIMEOUTS)
        settings.update(self.gateway_extra)
        for key, value in settings.items():
            lines.append(f"{key} = {json.dumps(value)}")
        for node in self.nodes:
            lines += ["", "[[nodes]]", f"id = {node.index}", f'address = "{self.node_scheme}{node.address}"']
        return "\n".join(lines) + "\n"

    def write_config(self) -> None:
        self.config_path.write_text(self.config_text())

    def gateway_env(self) -> dict:
        return clean_env({"STRATA_ACCESS_KEY": self.access_key, "STRATA_SECRET_KEY": self.secret_key})

    def start_gateway(self) -> None:
        assert self.gateway is None or self.gateway.poll() is not None, "gateway already running"
        self.gateway = self._spawn([self.binary, "gateway", "--config", str(self.config_path)], self.gateway_log,
                                   self.gateway_env())
        deadline = time.monotonic() + START_TIMEOUT
        while support.http_status(self.endpoint + "/_strata/health/live", timeout=1) != 200:
            if self.gateway.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.gateway.returncode} during start\n"
                                   f"{self.gateway_log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"gateway not live within {START_TIMEOUT}s\n{self.gateway_log_tail()}")
            time.sleep(0.05)

    def gateway_log_tail(self) -> str:
        try:
            return support.tail(self.gateway_log.read_bytes(), 4000)
        except OSError:
            return "(no log)"

    def logs(self) -> str:
        parts = [f"--- gateway ---\n{self.gateway_log_tail()}"]
        parts += [f"--- node {n.index} ---\n{n.log_tail()}" for n in self.nodes]
        return "\n".join(parts)

    def close(self) -> None:
        """SIGCONT everything, SIGTERM, wait (bounded), SIGKILL what is left. Never raises."""
        for proc in self._all:
            if proc.poll() is None:
                try:
                    proc.send_signal(signal.SIGCONT)
                except OSError:
                    pass
        for proc in self._all:
            if proc.poll() is None:
                try:
                    proc.send_signal(signal.SIGTERM)
                except OSError:
                    pass
        deadline = time.monotonic() + STOP_TIMEOUT
        for proc in self._all:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in self._all:
            if proc.poll() is None:
                try:
                    proc.kill()
                    proc.wait(timeout=5)
                except (OSError, subprocess.TimeoutExpired):
                    pass
        for node in self.nodes:
            node.stopped = False

    def leaked(self) -> list[int]:
        """Pids of processes this cluster started that are still running."""
        return [p.pid for p in self._all if p.poll() is None]

    # ---- faults ------------------------------------------------------------------------------

    def kill9(self, i: int) -> float:
        """SIGKILL node i; returns the monotonic time of the kill."""
        node = self.nodes[i]
        assert node.alive(), f"node {i} is not running"
        node.proc.send_signal(signal.SIGKILL)
        at = time.monotonic()
        node.proc.wait(timeout=10)
        node.stopped = False
        return at

    def stop(self, i: int) -> None:
        """SIGSTOP node i: it hangs (accepts TCP in the kernel backlog, never answers)."""
        node = self.nodes[i]
        assert node.alive(), f"node {i} is not running"
        node.proc.send_signal(signal.SIGSTOP)
        node.stopped = True

    def cont(self, i: int) -> None:
        node = self.nodes[i]
        if node.alive():
            node.proc.send_signal(signal.SIGCONT)
        node.stopped = False

    def restart(self, i: int, *, wait: bool = True) -> None:
        """Start node i again on the same port and data dir (killing it first if it runs)."""
        node = self.nodes[i]
        if node.alive():
            self.cont(i)
            node.proc.kill()
            node.proc.wait(timeout=10)
        self.start_node(i, wait=wait)

    def set_node_secret(self, i: int, secret: str | None) -> None:
        """Change the secret node i uses from its next (re)start."""
        node = self.nodes[i]
        node.secret = secret
        if secret is None:
            node.secret_file = None
        else:
            node.secret_file = self.root / f"node{i}.secret"
            node.secret_file.write_text(secret + "\n")

    # ---- observation -------------------------------------------------------------------------

    def admin_status(self, timeout: float = 5.0, *, endpoint: str | None = None) -> dict:
        """GET /_strata/admin/cluster, SigV4-signed with the gateway's keys (of `endpoint`, default
        this cluster's gateway)."""
        resp = support.raw_request(endpoint or self.endpoint, "GET", "/_strata/admin/cluster", signed=True,
                                   access_key=self.access_key, secret_key=self.secret_key, timeout=timeout)
        if resp.status != 200:
            raise AssertionError(f"admin status answered {resp.status}: {resp.body[:500]!r}")
        return json.loads(resp.body)

    def node_states(self) -> dict[int, str]:
        return {n["id"]: n["state"] for n in self.admin_status()["nodes"]}

    def ready_status(self, *, endpoint: str | None = None) -> int | None:
        return support.http_status((endpoint or self.endpoint) + "/_strata/health/ready", timeout=2)

    def wait_states(self, want: dict[int, str], timeout: float = 15.0, *, since: float | None = None) -> float:
        """Wait until every node in `want` shows its state; returns seconds since `since` (or the call)."""
        start = time.monotonic() if since is None else since
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                status = self.admin_status(timeout=2)
                nodes = {n["id"]: n for n in status["nodes"]}
                last = {i: (nodes[i]["state"], nodes[i]["consecutive_failures"]) for i in want}
                if all(nodes[i]["state"] == state and (state == "down" or nodes[i]["last_check_ms"] > 0)
                       for i, state in want.items()):
                    return time.monotonic() - start
            except (OSError, AssertionError, KeyError, ValueError):
                pass
            time.sleep(0.02)
        raise AssertionError(f"nodes did not reach {want} within {timeout}s; last seen {last}\n{self.logs()}")

    def wait_ready(self, timeout: float = 30.0) -> None:
        """All nodes checked and up (consecutive_failures 0), and /_strata/health/ready is 200."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                status = self.admin_status(timeout=2)
                last = status
                nodes_ok = all(n["state"] == "up" and n["consecutive_failures"] == 0 and n["last_check_ms"] > 0
                               for n in status["nodes"])
                if nodes_ok and len(status["nodes"]) == len(self.nodes) and self.ready_status() == 200:
                    return
            except (OSError, AssertionError, ValueError):
                pass
            if self.gateway is not None and self.gateway.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.gateway.returncode}\n{self.logs()}")
            time.sleep(0.05)
        raise AssertionError(f"cluster not ready within {timeout}s; last status {last}\n{self.logs()}")

    # ---- clients -----------------------------------------------------------------------------

    def client(self, *, read_timeout: float = 20.0, connect_timeout: float = 5.0, max_pool: int = 16,
               endpoint: str | None = None):
        """boto3 S3 client: path style, one attempt, explicit timeouts (a hang becomes an error)."""
        session = boto3.session.Session(aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
                                        region_name=support.REGION)
        config = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=connect_timeout,
                        read_timeout=read_timeout, s3={"addressing_style": "path"},
                        max_pool_connections=max_pool)
        return session.client("s3", endpoint_url=endpoint or self.endpoint, config=config)

    def signed_headers(self, method: str, path: str) -> dict:
        """SigV4 headers for a raw request (streaming GETs with urllib3)."""
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        request = AWSRequest(method=method, url=self.endpoint + path, data=b"")
        S3SigV4Auth(Credentials(self.access_key, self.secret_key), "s3", support.REGION).add_auth(request)
        return dict(request.headers.items())


# ---- the shared s3-compat server as a cluster (S3COMPAT_CLUSTER=1) ------------------------------


class ClusterServer:
    """Drop-in for support.StrataServer backed by a Cluster: same start/stop/endpoint/log_tail.

    Lets the whole s3-compat suite run against `strata gateway` + 6 storage nodes, or, with
    `S3COMPAT_GATEWAYS=N` (N > 1), against N gateways over a 3-member etcd catalog behind a
    round-robin proxy that sends each request to the next gateway."""

    def __init__(self, binary: str, data_dir: Path, log_path: Path, *, data_shards: int = 4,
                 parity_shards: int = 2, fsync: bool = True):
        del fsync  # nodes run --no-fsync and the gateway fsync = false: process faults only
        self.log_path = log_path
        self.proxy = None
        if GATEWAYS > 1:
            import multi_gateway_support

            self.cluster = multi_gateway_support.Topology(binary, Path(data_dir), gateways=GATEWAYS,
                                                          nodes=data_shards + parity_shards,
                                                          data_shards=data_shards, parity_shards=parity_shards)
        else:
            self.cluster = Cluster(binary, Path(data_dir), nodes=data_shards + parity_shards,
                                   data_shards=data_shards, parity_shards=parity_shards)

    @property
    def endpoint(self) -> str:
        return self.proxy.endpoint if self.proxy is not None else self.cluster.endpoint

    @property
    def port(self) -> int:
        return self.proxy.port if self.proxy is not None else self.cluster.gateway_port

    def start(self) -> None:
        try:
            if GATEWAYS > 1:
                import multi_gateway_support

                for problem in (multi_gateway_support.etcd_usable(),
                                multi_gateway_support.gateway_supports_etcd(self.cluster.binary)):
                    if problem is not None:
                        raise RuntimeError(f"S3COMPAT_GATEWAYS={GATEWAYS}: {problem}")
            self.cluster.start()
            if GATEWAYS > 1:
                self.proxy = multi_gateway_support.RoundRobinProxy([g.port for g in self.cluster.gateways])
                self.proxy.start()
        except (RuntimeError, AssertionError) as exc:
            self.close_proxy()
            self.cluster.close()
            raise RuntimeError(f"cluster did not start: {exc}") from exc

    def close_proxy(self) -> None:
        if self.proxy is not None:
            # conftest's terminal summary shows them (a session teardown's print is swallowed).
            PROXY_CONNECTIONS.append(list(self.proxy.connections))
            self.proxy.close()
            self.proxy = None

    def stop(self) -> int | None:
        """SIGTERM the gateway(s) (the first one's exit code is returned, or the first non-zero
        one), then close the whole cluster."""
        self.close_proxy()
        gateways = [g.proc for g in self.cluster.gateways] if GATEWAYS > 1 else [self.cluster.gateway]
        codes = []
        for gateway in gateways:
            if gateway is not None and gateway.poll() is None:
                gateway.send_signal(signal.SIGTERM)
        for gateway in gateways:
            if gateway is None:
                continue
            try:
                codes.append(gateway.wait(timeout=STOP_TIMEOUT))
            except subprocess.TimeoutExpired:
                codes.append(None)
        self.cluster.close()
        failed = [c for c in codes if c not in (0, None)]
        return failed[0] if failed else (codes[0] if codes else None)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self) -> str:
        return self.cluster.logs()


def install_shared_cluster() -> None:
    """Make conftest's shared server (data dir `shared-data`) a ClusterServer; other callers of
    support.StrataServer (the durability tests' embedded instances) are unchanged. A subclass,
    not a factory function, so test modules can still subclass support.StrataServer."""
    original = support.StrataServer
    if getattr(original, "_cluster_factory", False):
        return

    class SharedClusterServer(original):
        _cluster_factory = True

        def __new__(cls, binary, data_dir, log_path, **kwargs):
            if cls is SharedClusterServer and Path(data_dir).name == "shared-data":
                # Not an instance of cls, so Python skips __init__: the cluster is complete.
                return ClusterServer(binary, data_dir, log_path, **kwargs)
            return super().__new__(cls)

    support.StrataServer = SharedClusterServer


# Client connections per gateway of each round-robin proxy closed (S3COMPAT_GATEWAYS > 1).
PROXY_CONNECTIONS: list[list[int]] = []

# S3COMPAT_GATEWAYS=N (N > 1): the shared server is N gateways over etcd; that is a cluster run
# too, so every test that asks S3COMPAT_CLUSTER sees "1".
try:
    GATEWAYS = int(os.environ.get("S3COMPAT_GATEWAYS") or "1")
except ValueError as _exc:
    raise RuntimeError(f"S3COMPAT_GATEWAYS must be a number, not {os.environ['S3COMPAT_GATEWAYS']!r}") from _exc
if GATEWAYS < 1:
    raise RuntimeError(f"S3COMPAT_GATEWAYS must be at least 1, not {GATEWAYS}")
if GATEWAYS > 1:
    if os.environ.get("S3COMPAT_CLUSTER", "1") != "1":
        raise RuntimeError("S3COMPAT_GATEWAYS > 1 is a cluster run: do not set S3COMPAT_CLUSTER to anything but 1")
    os.environ["S3COMPAT_CLUSTER"] = "1"

if os.environ.get("S3COMPAT_CLUSTER") == "1":
    install_shared_cluster()
