"""Several gateways over one etcd catalog: a 3-member etcd cluster, the storage nodes and N
`strata gateway` processes on free 127.0.0.1 ports, plus a round-robin TCP proxy in front of them.

Owns: spawning and killing etcd members (each with its own free client and peer port and its
own data dir; `$STRATA_ETCD_BIN` or `etcd` on PATH), finding the etcd leader and reading rows
straight from etcd (its JSON gateway, `/v3/...`), the gateways' configurations (the contract of
issue 14: `catalog = "etcd"`, `etcd_endpoints`, `etcd_prefix`, one data dir per gateway, the
same secret, coding and node list everywhere), gateway faults (kill -9, restart on the same port
and directory), and `RoundRobinProxy`, which sends each request to the next gateway (it ends
each connection after one response) so that stock clients alternate between gateways without
knowing it.

Invariants (those of cluster_support.Cluster, which `Topology` extends):
- nothing here talks to anything but 127.0.0.1; every wait is bounded;
- every process is spawned through `Cluster._spawn` (main thread, PR_SET_PDEATHSIG), so
  `close()` stops etcd members and gateways as well as storage nodes, and `leaked()` sees them;
- etcd runs with its defaults (heartbeat 100 ms, election timeout 1 s, 128 operations and
  1.5 MiB per transaction) and the gateways with theirs, so what the fault tests measure is a
  default deployment's behaviour.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import itertools
import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import support
from cluster_support import START_TIMEOUT, Cluster, clean_env

ETCD_BIN = os.environ.get("STRATA_ETCD_BIN") or "etcd"
ETCD_PREFIX = "strata/"
# Catalog tables as etcd keys: prefix ‖ table tag ‖ '/' ‖ row key (metadata/src/etcd.rs, kv.rs).
INTENTS_TAG = "i"


def etcd_usable() -> str | None:
    """None when the etcd binary runs, else why not."""
    try:
        proc = subprocess.run([ETCD_BIN, "--version"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run {ETCD_BIN}: {exc} (install etcd-server: make deps)"
    if proc.returncode != 0:
        return f"{ETCD_BIN} --version exited with {proc.returncode}"
    return None


def gateway_supports_etcd(binary: str) -> str | None:
    """None when `strata gateway` has the etcd catalog options of the contract, else why not."""
    try:
        proc = subprocess.run([binary, "gateway", "--help"], capture_output=True, timeout=20, env=clean_env())
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`{binary} gateway --help` failed: {exc}"
    text = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
    missing = [flag for flag in ("--catalog", "--etcd-endpoints") if flag not in text]
    if missing:
        return (f"{binary} has no {', '.join(missing)}: the gateway-on-etcd work (branch multi-gw, "
                "issue 14) is not in this build")
    return None


def _post_json(port: int, path: str, body: dict, timeout: float = 3.0) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body=json.dumps(body), headers={"content-type": "application/json"})
        resp = conn.getresponse()
        raw = resp.read()
        if resp.status != 200:
            raise OSError(f"etcd {path} answered {resp.status}: {raw[:300]!r}")
        return json.loads(raw)
    finally:
        conn.close()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def prefix_end(prefix: bytes) -> bytes:
    """The smallest key above every key starting with `prefix` (etcd's range_end for a prefix)."""
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\0"


@dataclass
class EtcdMember:
    index: int
    client_port: int
    peer_port: int
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen | None = None
    history: list[subprocess.Popen] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"etcd{self.index}"

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self) -> str:
        try:
            return support.tail(self.log_path.read_bytes(), 1500)
        except OSError:
            return "(no log)"


class EtcdCluster:
    """A 3-member (by default) etcd cluster of child processes, started through `spawn`."""

    def __init__(self, root: Path, members: int, spawn):
        self.root = Path(root)
        self._spawn = spawn
        self.token = f"strata-test-{os.getpid()}-{time.monotonic_ns()}"
        self.members = [
            EtcdMember(i, support.free_port(), support.free_port(), self.root / f"etcd{i}",
                       self.root / f"etcd{i}.log")
            for i in range(members)
        ]

    @property
    def endpoints(self) -> list[str]:
        return [m.client_url for m in self.members]

    def initial_cluster(self) -> str:
        return ",".join(f"{m.name}={m.peer_url}" for m in self.members)

    def command(self, member: EtcdMember) -> list[str]:
        # On a restart the data dir exists and etcd ignores the --initial-* flags.
        return [
            ETCD_BIN, "--name", member.name, "--data-dir", str(member.data_dir),
            "--listen-client-urls", member.client_url, "--advertise-client-urls", member.client_url,
            "--listen-peer-urls", member.peer_url, "--initial-advertise-peer-urls", member.peer_url,
            "--initial-cluster", self.initial_cluster(), "--initial-cluster-state", "new",
            "--initial-cluster-token", self.token,
        ]

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for i in range(len(self.members)):
            self.start_member(i)
        self.wait_healthy()

    def start_member(self, i: int) -> None:
        member = self.members[i]
        assert not member.alive(), f"etcd member {i} is already running"
        member.proc = self._spawn(self.command(member), member.log_path, clean_env())
        member.history.append(member.proc)

    def kill9(self, i: int) -> float:
        """SIGKILL member i; returns the monotonic time of the kill."""
        member = self.members[i]
        assert member.alive(), f"etcd member {i} is not running"
        member.proc.send_signal(signal.SIGKILL)
        at = time.monotonic()
        member.proc.wait(timeout=10)
        return at

    def healthy(self, i: int) -> bool:
        """Member i answers /health with "true" (it is up and sees a leader)."""
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.members[i].client_port, timeout=2)
            try:
                conn.request("GET", "/health")
                resp = conn.getresponse()
                return resp.status == 200 and json.loads(resp.read()).get("health") == "true"
            finally:
                conn.close()
        except (OSError, ValueError):
            return False

    def wait_healthy(self, members: list[int] | None = None, timeout: float = START_TIMEOUT) -> float:
        """Wait until every member in `members` (default: every running one) is healthy."""
        started = time.monotonic()
        deadline = started + timeout
        want = members if members is not None else [m.index for m in self.members if m.alive()]
        while time.monotonic() < deadline:
            for i in want:
                if not self.members[i].alive():
                    raise RuntimeError(f"etcd member {i} exited with {self.members[i].proc.returncode}\n"
                                       f"{self.members[i].log_tail()}")
            if all(self.healthy(i) for i in want):
                return time.monotonic() - started
            time.sleep(0.05)
        raise RuntimeError(f"etcd members {want} not healthy within {timeout}s\n{self.logs()}")

    def status(self, i: int) -> dict:
        """Member i's /v3/maintenance/status (member id, leader id, raft term)."""
        return _post_json(self.members[i].client_port, "/v3/maintenance/status", {})

    def leader(self, timeout: float = 15.0) -> int:
        """Index of the current leader, as the running members report it."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            ids = {}
            leaders = set()
            for member in self.members:
                if not member.alive():
                    continue
                try:
                    status = self.status(member.index)
                except (OSError, ValueError):
                    continue
                last = status
                ids[status["header"]["member_id"]] = member.index
                if status.get("leader") and status["leader"] != "0":
                    leaders.add(status["leader"])
            if len(leaders) == 1:
                leader = leaders.pop()
                if leader in ids:
                    return ids[leader]
            time.sleep(0.05)
        raise RuntimeError(f"no etcd leader within {timeout}s; last status {last}")

    def keys(self, prefix: bytes) -> list[bytes]:
        """Every key under `prefix`, read (linearizably) from the first member that answers."""
        body = {"key": _b64(prefix), "range_end": _b64(prefix_end(prefix)), "keys_only": True}
        errors = []
        for member in self.members:
            if not member.alive():
                continue
            try:
                resp = _post_json(member.client_port, "/v3/kv/range", body)
                return [base64.b64decode(kv["key"]) for kv in resp.get("kvs", [])]
            except (OSError, ValueError, KeyError) as exc:
                errors.append(f"{member.name}: {exc}")
        raise RuntimeError(f"no etcd member answered a range read: {errors}")

    def logs(self) -> str:
        return "\n".join(f"--- {m.name} ---\n{m.log_tail()}" for m in self.members)


@dataclass
class Gateway:
    index: int
    port: int
    data_dir: Path
    log_path: Path
    config_path: Path
    proc: subprocess.Popen | None = None
    history: list[subprocess.Popen] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, limit: int = 4000) -> str:
        try:
            return support.tail(self.log_path.read_bytes(), limit)
        except OSError:
            return "(no log)"


class Topology(Cluster):
    """3 etcd members + the storage nodes + `gateways` gateways sharing the etcd catalog.

    `endpoint`, `client()`, `admin_status()` … of the base class address gateway 0; pass
    `endpoint=topology.gateways[i].endpoint` for another one."""

    def __init__(self, binary: str, root: Path, *, gateways: int = 2, etcd_members: int = 3,
                 etcd_prefix: str = ETCD_PREFIX, gateway_extra: dict | None = None, **kwargs):
        super().__init__(binary, root, gateway_extra=gateway_extra, **kwargs)
        self.etcd = EtcdCluster(self.root / "etcd", etcd_members, self._spawn)
        self.etcd_prefix = etcd_prefix
        settings = {
            "catalog": "etcd",
            "etcd_endpoints": self.etcd.endpoints,
            "etcd_prefix": etcd_prefix,
        }
        settings.update(self.gateway_extra)
        self.gateway_extra = settings
        self.gateways = [
            Gateway(i, support.free_port(), self.root / f"gateway{i}", self.root / f"gateway{i}.log",
                    self.root / f"gateway{i}.toml")
            for i in range(gateways)
        ]
        # The base class's single-gateway attributes name gateway 0.
        self.gateway_port = self.gateways[0].port
        self.gateway_dir = self.gateways[0].data_dir
        self.gateway_log = self.gateways[0].log_path
        self.config_path = self.gateways[0].config_path

    # ---- lifecycle -----------------------------------------------------------------------------

    def start(self, *, wait: bool = True) -> None:
        self.etcd.start()
        for i in range(len(self.nodes)):
            self.start_node(i)
        # One after the other: the first gateway initialises the catalog (cluster settings,
        # credentials), the next ones compare their configuration with it.
        for gateway in self.gateways:
            self.start_gateway_index(gateway.index)
            if wait:
                self.wait_gateway_ready(gateway.index)

    def gateway_config_text(self, i: int) -> str:
        gateway = self.gateways[i]
        lines = []
        for line in self.config_text().splitlines():
            if line.startswith("listen = "):
                line = f'listen = "127.0.0.1:{gateway.port}"'
            elif line.startswith("data = "):
                line = f"data = {json.dumps(str(gateway.data_dir))}"
            lines.append(line)
        return "\n".join(lines) + "\n"

    def write_config(self) -> None:
        for gateway in self.gateways:
            gateway.config_path.write_text(self.gateway_config_text(gateway.index))

    def start_gateway(self) -> None:
        """The base class's single-gateway start: gateway 0."""
        self.start_gateway_index(0)

    def start_gateway_index(self, i: int) -> None:
        gateway = self.gateways[i]
        assert not gateway.alive(), f"gateway {i} is already running"
        gateway.config_path.write_text(self.gateway_config_text(i))
        # Only the first gateway is given the S3 keys; the others must take them from the catalog.
        env = self.gateway_env() if i == 0 else clean_env()
        gateway.proc = self._spawn([self.binary, "gateway", "--config", str(gateway.config_path)],
                                   gateway.log_path, env)
        gateway.history.append(gateway.proc)
        if i == 0:
            self.gateway = gateway.proc
        deadline = time.monotonic() + START_TIMEOUT
        while support.http_status(gateway.endpoint + "/_strata/health/live", timeout=1) != 200:
            if gateway.proc.poll() is not None:
                raise RuntimeError(f"gateway {i} exited with {gateway.proc.returncode} during start\n"
                                   f"{gateway.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"gateway {i} not live within {START_TIMEOUT}s\n{gateway.log_tail()}")
            time.sleep(0.05)

    def wait_gateway_ready(self, i: int, timeout: float = 60.0) -> None:
        """Gateway i sees every node up and answers ready 200."""
        gateway = self.gateways[i]
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                status = self.admin_status(timeout=2, endpoint=gateway.endpoint)
                last = status
                nodes_ok = all(n["state"] == "up" and n["consecutive_failures"] == 0 and n["last_check_ms"] > 0
                               for n in status["nodes"])
                if (nodes_ok and len(status["nodes"]) == len(self.nodes)
                        and self.ready_status(endpoint=gateway.endpoint) == 200):
                    return
            except (OSError, AssertionError, ValueError):
                pass
            if not gateway.alive():
                raise RuntimeError(f"gateway {i} exited with {gateway.proc.returncode}\n{self.logs()}")
            time.sleep(0.05)
        raise AssertionError(f"gateway {i} not ready within {timeout}s; last status {last}\n{self.logs()}")

    def wait_ready(self, timeout: float = 30.0) -> None:
        for gateway in self.gateways:
            if gateway.alive():
                self.wait_gateway_ready(gateway.index, timeout)

    def logs(self) -> str:
        parts = [f"--- gateway {g.index} ---\n{g.log_tail()}" for g in self.gateways]
        parts += [f"--- node {n.index} ---\n{n.log_tail()}" for n in self.nodes]
        parts.append(self.etcd.logs())
        return "\n".join(parts)

    # ---- gateway faults and observation ----------------------------------------------------------

    def kill9_gateway(self, i: int) -> float:
        """SIGKILL gateway i; returns the monotonic time of the kill."""
        gateway = self.gateways[i]
        assert gateway.alive(), f"gateway {i} is not running"
        gateway.proc.send_signal(signal.SIGKILL)
        at = time.monotonic()
        gateway.proc.wait(timeout=10)
        return at

    def gateway_identity(self, i: int, timeout: float = 5.0) -> dict:
        """`{"id": ..., "leader": bool}` of gateway i (admin status, contract of issue 14)."""
        status = self.admin_status(timeout=timeout, endpoint=self.gateways[i].endpoint)
        identity = status.get("gateway")
        if not isinstance(identity, dict) or "id" not in identity or "leader" not in identity:
            raise AssertionError(f"gateway {i}'s admin status has no gateway id/leader: {json.dumps(status)[:500]}")
        return identity

    def leader_gateway(self, timeout: float = 30.0) -> int:
        """Index of the one running gateway that reports itself leader (bounded wait)."""
        deadline = time.monotonic() + timeout
        seen = None
        while time.monotonic() < deadline:
            seen = {}
            for gateway in self.gateways:
                if gateway.alive():
                    try:
                        seen[gateway.index] = self.gateway_identity(gateway.index, timeout=2)["leader"]
                    except (OSError, ValueError):
                        seen[gateway.index] = None
            leaders = [i for i, leader in seen.items() if leader is True]
            if len(leaders) == 1:
                return leaders[0]
            time.sleep(0.05)
        raise AssertionError(f"no single leader gateway within {timeout}s; last seen {seen}")

    def intent_keys(self) -> list[bytes]:
        """Write-intent rows in the etcd catalog (row keys: the shard group ids)."""
        prefix = f"{self.etcd_prefix}{INTENTS_TAG}/".encode()
        return [key[len(prefix):] for key in self.etcd.keys(prefix)]


# ---- a round-robin TCP proxy -------------------------------------------------------------------


class RoundRobinProxy:
    """A loopback TCP proxy: each accepted connection is piped to the next backend port in turn.

    With `one_request_per_connection` (default), the first final response on each connection
    gets `Connection: close` (its other Connection headers dropped; 1xx interim responses pass
    untouched), so HTTP clients open a new connection, hence reach the next backend, for every
    request: requests alternate between gateways even though clients keep connections alive.
    Everything else is copied unchanged in both directions (SigV4 and presigned URLs are
    unaffected: the Host header names the proxy, which is what the client signed). A backend
    that refuses the connection is skipped (the next one is tried, each at most once). Runs an
    asyncio loop on its own thread; `close()` stops it and every open connection (bounded)."""

    # A response header block longer than this is not HTTP: it is passed through unchanged.
    MAX_HEAD = 64 * 1024

    CONNECT_TIMEOUT = 5.0

    def __init__(self, backend_ports: list[int], *, one_request_per_connection: bool = True):
        assert backend_ports, "a proxy needs at least one backend"
        self.backend_ports = list(backend_ports)
        self.one_request_per_connection = one_request_per_connection
        self.port = 0
        self.connections = [0] * len(self.backend_ports)
        self._next = itertools.cycle(range(len(self.backend_ports)))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._writers: set = set()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="round-robin-proxy", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout=10):
            raise RuntimeError("round-robin proxy did not start within 10 s")
        if self._error is not None:
            raise RuntimeError(f"round-robin proxy failed to start: {self._error!r}")

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._server = loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._error = exc
            self._started.set()
            loop.close()
            return
        self._started.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _connect(self):
        for _ in range(len(self.backend_ports)):
            index = next(self._next)
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", self.backend_ports[index]), self.CONNECT_TIMEOUT)
            except (OSError, asyncio.TimeoutError):
                continue
            self.connections[index] += 1
            return reader, writer
        return None

    async def _handle(self, client_reader, client_writer) -> None:
        self._writers.add(client_writer)
        try:
            upstream = await self._connect()
        except asyncio.CancelledError:
            upstream = None
        if upstream is None:
            client_writer.close()
            self._writers.discard(client_writer)
            return
        up_reader, up_writer = upstream
        self._writers.add(up_writer)

        async def pipe(reader, writer, rewrite: bool = False):
            head = b""  # response bytes held back until the final response's header block ends
            try:
                while True:
                    chunk = await reader.read(256 * 1024)
                    if not chunk:
                        break
                    if rewrite:
                        chunk, head, done = self._close_after_first_response(head + chunk)
                        rewrite = not done
                        if not chunk:
                            continue  # the header block is not complete yet
                    writer.write(chunk)
                    await writer.drain()
                if head:
                    writer.write(head)
                if writer.can_write_eof():
                    writer.write_eof()
            except (OSError, RuntimeError):
                # One side broke: drop both, as a real connection would.
                client_writer.transport.abort()
                up_writer.transport.abort()

        try:
            await asyncio.gather(pipe(client_reader, up_writer),
                                 pipe(up_reader, client_writer, rewrite=self.one_request_per_connection))
        except asyncio.CancelledError:
            pass  # close(): the connections are aborted below
        finally:
            for writer in (client_writer, up_writer):
                writer.close()
                self._writers.discard(writer)

    @classmethod
    def _close_after_first_response(cls, data: bytes) -> tuple[bytes, bytes, bool]:
        """Splits response bytes into (to forward now, to hold back, done): interim (1xx)
        responses are forwarded at once; the first final response's header block is held back
        until complete, then forwarded with `Connection: close`, and `done` is True."""
        forward = b""
        while True:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                if len(data) > cls.MAX_HEAD:
                    return forward + data, b"", True
                return forward, data, False
            block, data = data[:end], data[end + 4:]
            lines = block.split(b"\r\n")
            status = lines[0].split(b" ", 2)
            if len(status) > 1 and status[1].startswith(b"1") and status[1] != b"101":
                forward += block + b"\r\n\r\n"  # 100 Continue and friends: the final response follows
                continue
            kept = [line for line in lines[1:] if not line.lower().startswith((b"connection:", b"keep-alive:"))]
            return forward + b"\r\n".join([lines[0], *kept, b"Connection: close"]) + b"\r\n\r\n" + data, b"", True

    def close(self) -> None:
        loop = self._loop
        if loop is None or self._thread is None:
            return

        def shutdown():
            if self._server is not None:
                self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.call_later(0.2, loop.stop)

        if loop.is_running():
            loop.call_soon_threadsafe(shutdown)
        self._thread.join(timeout=10)
