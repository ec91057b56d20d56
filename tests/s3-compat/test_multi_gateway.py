"""Several gateways over one etcd catalog (issue 14), under real process faults.

Each test starts its own topology (multi_gateway_support.Topology: 3 etcd members, 6 storage
nodes, 2 gateways, all on free 127.0.0.1 ports) and drives it with boto3 clients that alternate
between the gateways:

- the gateways share one catalog: what one writes the other reads at once, one key pair serves
  both, each has its own id and exactly one is the leader;
- kill -9 of the etcd leader under a mixed load (PUT/GET/HEAD/LIST on both gateways): requests
  stall for a while (measured: the longest time without a successful request around the kill),
  answer nothing but success or 503, then continue; every acknowledged write reads back
  bit-exact through every gateway;
- two of three etcd members down: writes answer 503 (never 500, never a timeout), reads answer
  503 or the right bytes; a write that answered 503 is afterwards either absent or complete
  (never half-applied); when one member returns, both gateways recover by themselves (same
  processes), measured;
- kill -9 of the leader gateway while it holds PUTs in flight (slow uploads, so the kill lands
  mid-body) and both gateways are under load: the other gateway keeps serving without a single
  failure, takes over the lead (measured), and the dead gateway's write intents (and their
  shards) are collected once its lease has expired (measured); the half-sent objects never
  become visible; the killed gateway restarts and rejoins. Before the kill, a slow PUT on the
  live non-leader keeps its intent for 1.5 lease periods (a live gateway's writes are never
  collected) and then completes;
- the round-robin proxy used by the S3COMPAT_GATEWAYS=2 suite run alternates requests.

Timings are printed and written to <tmp>/multi-gateway-measurements.json; only generous
correctness bounds are asserted. A build without the etcd catalog (`strata gateway --catalog`)
makes every topology test here FAIL with that reason (never skip); a missing etcd binary
fails too.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError

import multi_gateway_support
import support
from multi_gateway_support import Topology
from support import KIB, MIB
from support import status_code as status_of

pytestmark = [pytest.mark.strata_only, pytest.mark.timeout(600)]

BUCKET = "multi"
READ_TIMEOUT = 30.0
CONNECT_TIMEOUT = 5.0
TIMEOUT_ERRORS = (ReadTimeoutError, ConnectTimeoutError)
# Correctness bounds, not speed targets: a stall or takeover longer than this is a bug.
STALL_BOUND = 30.0
RECOVERY_BOUND = 60.0
# The contract's default: a dead gateway loses its lease after leader_lease_ms.
LEADER_LEASE_MS = 5000
# The history the leader keeps in etcd (compacted every `min(60 s, this)`).
HISTORY_SECS = 10
MEASUREMENTS: dict = {}


def record(name: str, values: dict) -> None:
    MEASUREMENTS[name] = values
    print(f"\n[{name}] " + ", ".join(f"{k}={v}" for k, v in values.items()))


@pytest.fixture(scope="module", autouse=True)
def measurements_file(tmp_path_factory):
    yield
    if MEASUREMENTS:
        path = Path(tmp_path_factory.getbasetemp()) / "multi-gateway-measurements.json"
        path.write_text(json.dumps(MEASUREMENTS, indent=2, sort_keys=True))
        print(f"\n[multi-gateway measurements] {path}\n{json.dumps(MEASUREMENTS, indent=2, sort_keys=True)}")


@pytest.fixture
def topology(cluster_bin, tmp_path, request):
    """A fresh, ready topology (3 etcd members, 6 nodes, 2 gateways) with bucket BUCKET."""
    for problem in (multi_gateway_support.etcd_usable(), multi_gateway_support.gateway_supports_etcd(cluster_bin)):
        if problem is not None:
            pytest.fail(problem, pytrace=False)
    failed_before = request.session.testsfailed
    topo = Topology(cluster_bin, tmp_path / "topology", gateways=2,
                    gateway_extra={"gc_delay_secs": 3, "leader_lease_ms": LEADER_LEASE_MS,
                                   "catalog_history_secs": HISTORY_SECS})
    try:
        topo.start()
        topo.client().create_bucket(Bucket=BUCKET)
        yield topo
    finally:
        try:
            if request.session.testsfailed > failed_before:
                print(f"\n[topology logs, {topo.root}]\n{topo.logs()}")
        finally:
            topo.close()
        leaked = topo.leaked()
        assert not leaked, f"processes still running after teardown: {leaked}"


def clients(topo: Topology) -> list:
    return [topo.client(endpoint=g.endpoint, read_timeout=READ_TIMEOUT, connect_timeout=CONNECT_TIMEOUT)
            for g in topo.gateways]


def get(s3, key: str) -> bytes:
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def timed(fn, *args, **kwargs):
    """(ok, result or exception, start, end) with monotonic times."""
    started = time.monotonic()
    try:
        return True, fn(*args, **kwargs), started, time.monotonic()
    except Exception as exc:  # noqa: BLE001 - every failure is recorded and judged by the caller
        return False, exc, started, time.monotonic()


def describe(exc) -> str:
    return f"{type(exc).__name__} status={status_of(exc)} {str(exc)[:160]}"


# ---- a mixed load on every gateway -------------------------------------------------------------


@dataclass
class Op:
    kind: str
    gateway: int
    key: str
    ok: bool
    result: object
    start: float
    end: float
    body: bytes | None = None


class MixedLoad:
    """Worker threads, each alternating between the gateways: PUT (inline and sharded sizes),
    GET (bytes checked), HEAD and LIST; acknowledged PUTs are remembered. Bounded by an op
    count per worker and by `stop()`."""

    SIZES = [1 * KIB, 64 * KIB + 3, 300 * KIB + 1, MIB + 7]

    def __init__(self, s3s: list, *, workers: int = 4, max_ops: int = 400, prefix: str = "load",
                 gateways: list[int] | None = None, sizes: list[int] | None = None, seed: int = 1):
        self.s3s = s3s
        self.gateways = gateways if gateways is not None else list(range(len(s3s)))
        self.workers = workers
        self.max_ops = max_ops
        self.prefix = prefix
        self.sizes = sizes or self.SIZES
        self.seed = seed
        self.ops: list[Op] = []
        self.acked: dict[str, bytes] = {}
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers)
        self._futures = []

    def start(self) -> None:
        self._futures = [self._pool.submit(self._worker, w) for w in range(self.workers)]

    def stop(self, timeout: float = 120.0) -> None:
        self._stop.set()
        deadline = time.monotonic() + timeout
        for future in self._futures:
            future.result(timeout=max(1.0, deadline - time.monotonic()))
        self._pool.shutdown(wait=True)

    def _worker(self, w: int) -> None:
        rng = random.Random(self.seed * 1000 + w)
        for n in range(self.max_ops):
            if self._stop.is_set():
                return
            gateway = self.gateways[(w + n) % len(self.gateways)]
            s3 = self.s3s[gateway]
            choice = rng.random()
            with self.lock:
                known = sorted(self.acked)
            if choice < 0.45 or not known:
                key = f"{self.prefix}/{w}/{n}"
                body = support.data(self.sizes[n % len(self.sizes)], seed=self.seed * 100_000 + w * 1000 + n)
                ok, res, t0, t1 = timed(s3.put_object, Bucket=BUCKET, Key=key, Body=body)
                if ok:
                    with self.lock:
                        self.acked[key] = body
                op = Op("PUT", gateway, key, ok, res, t0, t1, body)
            elif choice < 0.8:
                key = rng.choice(known)
                with self.lock:
                    body = self.acked[key]
                ok, res, t0, t1 = timed(get, s3, key)
                op = Op("GET", gateway, key, ok, res, t0, t1, body)
            elif choice < 0.9:
                key = rng.choice(known)
                ok, res, t0, t1 = timed(s3.head_object, Bucket=BUCKET, Key=key)
                op = Op("HEAD", gateway, key, ok, res, t0, t1)
            else:
                ok, res, t0, t1 = timed(s3.list_objects_v2, Bucket=BUCKET, Prefix=f"{self.prefix}/{w}/", MaxKeys=50)
                op = Op("LIST", gateway, f"{self.prefix}/{w}/", ok, res, t0, t1)
            with self.lock:
                self.ops.append(op)
            if not ok:
                time.sleep(0.05)  # a failing cluster is not hammered in a tight loop

    def successes_after(self, at: float) -> int:
        with self.lock:
            return sum(1 for op in self.ops if op.ok and op.start > at)

    def wait_successes_after(self, at: float, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.successes_after(at) < count:
            if all(f.done() for f in self._futures):
                break
            time.sleep(0.05)


def longest_gap(ops: list[Op], start: float, end: float) -> float:
    """The longest interval within [start, end] in which no request completed successfully."""
    ends = sorted(op.end for op in ops if op.ok and start <= op.end <= end)
    points = [start, *ends, end]
    return max(b - a for a, b in zip(points, points[1:]))


def judge_load(load: MixedLoad, *, allow_503: bool) -> dict:
    """Asserts: no hang, no wrong bytes, failures only 503 (when allowed). Returns counts."""
    hangs = [op for op in load.ops if not op.ok and isinstance(op.result, TIMEOUT_ERRORS)]
    wrong = [op for op in load.ops if op.kind == "GET" and op.ok and op.result != op.body]
    failed = [op for op in load.ops if not op.ok]
    not_503 = [op for op in failed if status_of(op.result) != 503]
    for op in failed[:8]:
        print(f"  {op.kind} {op.key} via gateway {op.gateway} failed after {op.end - op.start:.2f}s: "
              f"{describe(op.result)}")
    assert not hangs, f"requests hung until the client timeout: {[(o.kind, o.key, o.gateway) for o in hangs]}"
    assert not wrong, f"GET returned wrong bytes: {[(o.key, o.gateway) for o in wrong]}"
    if allow_503:
        assert not not_503, ("requests failed with something else than 503: "
                             f"{[(o.kind, o.key, o.gateway, describe(o.result)) for o in not_503]}")
    else:
        assert not failed, f"requests failed: {[(o.kind, o.key, o.gateway, describe(o.result)) for o in failed]}"
    return {"ops": len(load.ops), "failed": len(failed), "puts_acked": len(load.acked)}


def assert_readable_everywhere(s3s: list, objects: dict[str, bytes]) -> None:
    """Every object reads back bit-exact through every gateway."""
    problems = []
    for key, body in sorted(objects.items()):
        for g, s3 in enumerate(s3s):
            ok, res, _, _ = timed(get, s3, key)
            if not ok:
                problems.append((key, g, describe(res)))
            elif res != body:
                problems.append((key, g, "different bytes"))
    assert not problems, f"acknowledged objects not readable through every gateway: {problems[:20]}"


def absent_or_exact(s3, key: str, body: bytes, old: bytes | None = None) -> str:
    """A refused write left nothing half-done: the key is absent (or still `old`), or it is
    exactly `body`. Returns which."""
    ok, res, _, _ = timed(get, s3, key)
    if ok:
        if res == body:
            return "applied"
        assert old is not None and res == old, f"{key}: a refused write left other bytes visible"
        return "unchanged"
    assert status_of(res) == 404 and old is None, f"{key}: after a refused write GET answered {describe(res)}"
    return "absent"


# ---------------------------------------------------------------------------------------------
# two gateways, one catalog


def test_two_gateways_share_one_catalog(topology):
    s3a, s3b = clients(topology)
    ids = [topology.gateway_identity(i) for i in range(2)]
    assert ids[0]["id"] != ids[1]["id"], f"both gateways report the same id: {ids}"
    leader = topology.leader_gateway()
    print(f"\n[gateways] {ids}, leader: gateway {leader}")

    # The same credentials on both, printed in both banners: only gateway 0 was given them
    # (STRATA_ACCESS_KEY/STRATA_SECRET_KEY), gateway 1 took them from the catalog.
    for gateway in topology.gateways:
        log = gateway.log_path.read_text(errors="replace")
        assert f"Access key: {topology.access_key}" in log, f"gateway {gateway.index} banner:\n{log[:2000]}"

    for n, size in enumerate([100, 64 * KIB, 3 * MIB + 5]):
        body = support.data(size, seed=n)
        writer, reader = (s3a, s3b) if n % 2 == 0 else (s3b, s3a)
        writer.put_object(Bucket=BUCKET, Key=f"shared/{n}", Body=body)
        assert get(reader, f"shared/{n}") == body, f"object {n} written on one gateway reads differently on the other"
    listed = [[o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="shared/")["Contents"]] for s3 in (s3a, s3b)]
    assert listed[0] == listed[1] == ["shared/0", "shared/1", "shared/2"], listed

    s3b.delete_object(Bucket=BUCKET, Key="shared/0")
    with pytest.raises(ClientError) as info:
        s3a.head_object(Bucket=BUCKET, Key="shared/0")
    assert status_of(info.value) == 404

    # Buckets and multipart uploads span gateways too.
    s3a.create_bucket(Bucket="second")
    assert "second" in {b["Name"] for b in s3b.list_buckets()["Buckets"]}
    upload = s3a.create_multipart_upload(Bucket=BUCKET, Key="mpu")["UploadId"]
    parts = [support.data(5 * MIB, seed=10), support.data(MIB + 1, seed=11)]
    etags = [s3.upload_part(Bucket=BUCKET, Key="mpu", UploadId=upload, PartNumber=i + 1, Body=p)["ETag"]
             for i, (s3, p) in enumerate(zip((s3b, s3a), parts))]
    s3b.complete_multipart_upload(Bucket=BUCKET, Key="mpu", UploadId=upload, MultipartUpload={
        "Parts": [{"PartNumber": i + 1, "ETag": e} for i, e in enumerate(etags)]})
    assert get(s3a, "mpu") == b"".join(parts)


def etcd_read_at(topo: Topology, revision: int) -> str:
    """A range read at `revision` on a live etcd member: "ok", or etcd's refusal."""
    member = next(m for m in topo.etcd.members if m.alive())
    body = {"key": multi_gateway_support._b64(b"strata/"), "revision": revision, "limit": 1}
    try:
        multi_gateway_support._post_json(member.client_port, "/v3/kv/range", body)
        return "ok"
    except OSError as exc:
        return str(exc)


def test_leader_compacts_etcd_history(topology):
    """etcd keeps every revision until compacted (and refuses all writes at its space quota):
    the leading gateway compacts revisions older than `catalog_history_secs`. Overwrites
    leave old revisions; within a bounded wait a read at an early revision is refused as
    compacted, and every object still reads back through both gateways."""
    s3a, s3b = clients(topology)
    for n in range(20):
        (s3a if n % 2 else s3b).put_object(Bucket=BUCKET, Key="overwritten", Body=f"version {n}".encode())
    early = 2
    assert etcd_read_at(topology, early) == "ok", "history is kept before the first compaction"
    started = time.monotonic()
    deadline = started + HISTORY_SECS * 3 + 30
    answer = "ok"
    while time.monotonic() < deadline:
        answer = etcd_read_at(topology, early)
        if answer != "ok":
            break
        s3a.put_object(Bucket=BUCKET, Key="ticker", Body=b"t")  # moves the revision on
        time.sleep(1)
    print(f"\n[etcd compaction] a read at revision {early} refused after "
          f"{time.monotonic() - started:.1f} s: {answer[:160]}")
    assert "compacted" in answer, f"etcd history was not compacted within the bound: {answer}"
    for s3 in (s3a, s3b):
        assert get(s3, "overwritten") == b"version 19"


# ---------------------------------------------------------------------------------------------
# kill -9 of the etcd leader under load


def test_kill9_etcd_leader_under_mixed_load(topology):
    s3s = clients(topology)
    load = MixedLoad(s3s, workers=4, max_ops=2000, prefix="leader-kill")
    load.start()
    try:
        load.wait_successes_after(0, 40, timeout=60)
        victim = topology.etcd.leader()
        killed_at = topology.etcd.kill9(victim)
        new_leader = topology.etcd.leader(timeout=30)
        elected_s = time.monotonic() - killed_at
        # Keep the load going until well after the stall: 60 successes after the kill.
        load.wait_successes_after(killed_at + 0.001, 60, timeout=STALL_BOUND + 30)
    finally:
        load.stop()
    ended = max(op.end for op in load.ops)
    started_after = [op for op in load.ops if op.start > killed_at]
    gap = longest_gap(load.ops, killed_at - 1.0, ended)
    around_kill = [op for op in load.ops if op.start <= killed_at + gap + 1 and op.end >= killed_at]
    counts = judge_load(load, allow_503=True)
    record("etcd leader kill -9", {
        "victim": victim, "new_leader": new_leader, "etcd_election_s": round(elected_s, 2),
        "longest_gap_without_success_s": round(gap, 2),
        "max_latency_in_flight_at_kill_s": round(max((o.end - o.start for o in around_kill), default=0), 2),
        "failed_503": counts["failed"], "ops": counts["ops"], "ops_started_after_kill": len(started_after),
    })
    assert gap < STALL_BOUND, f"no request succeeded for {gap:.1f}s after the etcd leader was killed"
    assert load.successes_after(killed_at + gap) > 0, "requests did not continue after the stall"
    per_gateway = {g: sum(1 for o in started_after if o.ok and o.gateway == g) for g in range(2)}
    assert all(per_gateway.values()), f"a gateway served nothing after the kill: {per_gateway}"

    # Every acknowledged write reads back through every gateway, and refused PUTs left nothing half-done.
    assert_readable_everywhere(s3s, load.acked)
    for op in load.ops:
        if op.kind == "PUT" and not op.ok:
            absent_or_exact(s3s[0], op.key, op.body)

    # The member comes back and catches up.
    topology.etcd.start_member(victim)
    topology.etcd.wait_healthy()


# ---------------------------------------------------------------------------------------------
# two of three etcd members down


def test_etcd_quorum_lost_503_then_recovers(topology):
    s3s = clients(topology)
    existing = {f"before/{n}": support.data(size, seed=n) for n, size in enumerate([2 * KIB, 700 * KIB, 2 * MIB])}
    for n, (key, body) in enumerate(existing.items()):
        s3s[n % 2].put_object(Bucket=BUCKET, Key=key, Body=body)
    pids = [g.proc.pid for g in topology.gateways]

    leader = topology.etcd.leader()
    follower = next(m.index for m in topology.etcd.members if m.index != leader)
    survivor = next(m.index for m in topology.etcd.members if m.index not in (leader, follower))
    lost_at = time.monotonic()
    for victim in (follower, leader):
        topology.etcd.kill9(victim)

    refused: list[tuple[str, bytes, bytes | None]] = []
    latencies: dict[str, list[float]] = {}
    reads: dict[str, int] = {"503": 0, "ok": 0}

    def expect_503(what: str, fn, *args, **kwargs):
        ok, res, t0, t1 = timed(fn, *args, **kwargs)
        latencies.setdefault(what, []).append(round(t1 - t0, 2))
        assert not ok, f"{what} succeeded with 2 of 3 etcd members down"
        assert not isinstance(res, TIMEOUT_ERRORS), f"{what} hung until the client timeout ({t1 - t0:.1f}s)"
        assert status_of(res) == 503, f"{what}: expected 503 with the catalog unavailable, got {describe(res)}"

    for g, s3 in enumerate(s3s):
        body = support.data(MIB + g, seed=50 + g)
        expect_503(f"PUT new via {g}", s3.put_object, Bucket=BUCKET, Key=f"refused/{g}", Body=body)
        refused.append((f"refused/{g}", body, None))
        small = support.data(100, seed=60 + g)
        expect_503(f"PUT inline via {g}", s3.put_object, Bucket=BUCKET, Key=f"refused-inline/{g}", Body=small)
        refused.append((f"refused-inline/{g}", small, None))
        key, old = list(existing.items())[g + 1]
        new = support.data(len(old) + 1, seed=70 + g)
        expect_503(f"PUT overwrite via {g}", s3.put_object, Bucket=BUCKET, Key=key, Body=new)
        refused.append((key, new, old))
        expect_503(f"DELETE via {g}", s3.delete_object, Bucket=BUCKET, Key="before/0")
        expect_503(f"CreateBucket via {g}", s3.create_bucket, Bucket=f"refused-bucket-{g}")
        expect_503(f"CreateMultipartUpload via {g}", s3.create_multipart_upload, Bucket=BUCKET, Key=f"mpu/{g}")
        # Reads: 503, or (a gateway serving from what it already knows) the exact bytes.
        for key, body in existing.items():
            ok, res, t0, t1 = timed(get, s3, key)
            latencies.setdefault(f"GET via {g}", []).append(round(t1 - t0, 2))
            if ok:
                assert res == body, f"GET {key} via gateway {g} returned wrong bytes without quorum"
                reads["ok"] += 1
            else:
                assert not isinstance(res, TIMEOUT_ERRORS), f"GET {key} via {g} hung ({t1 - t0:.1f}s)"
                assert status_of(res) == 503, f"GET {key} via {g}: expected 503 or the object, got {describe(res)}"
                reads["503"] += 1
    ready = [topology.ready_status(endpoint=g.endpoint) for g in topology.gateways]
    # Every request above took its timeout, so more than a lease has passed since the gateways
    # last reached the catalog: they say not ready, and a load balancer stops sending to them.
    assert ready == [503] * len(topology.gateways), f"ready without quorum: {ready}"

    # One member returns: both gateways recover by themselves (same processes).
    restarted_at = time.monotonic()
    topology.etcd.start_member(leader)
    recovered = {}
    deadline = restarted_at + RECOVERY_BOUND
    while len(recovered) < len(s3s) and time.monotonic() < deadline:
        for g, s3 in enumerate(s3s):
            if g in recovered:
                continue
            ok, res, _, t1 = timed(s3.put_object, Bucket=BUCKET, Key=f"recovered/{g}", Body=b"back")
            if ok:
                recovered[g] = round(t1 - restarted_at, 2)
            else:
                assert status_of(res) == 503, f"while recovering, PUT via {g}: {describe(res)}"
                time.sleep(0.2)
    record("etcd quorum lost", {
        "latency_s": {k: max(v) for k, v in latencies.items()}, "reads_without_quorum": reads,
        "ready_status_without_quorum": ready, "recovered_after_member_restart_s": recovered,
        "outage_s": round(restarted_at - lost_at, 1),
    })
    assert len(recovered) == len(s3s), f"gateways not serving writes {RECOVERY_BOUND}s after quorum returned"
    for g in topology.gateways:
        topology.wait_gateway_ready(g.index)  # ready again by themselves (bounded)
    assert [g.proc.pid for g in topology.gateways] == pids and all(g.alive() for g in topology.gateways)

    outcomes = {key: absent_or_exact(s3s[1], key, body, old) for key, body, old in refused}
    print(f"[etcd quorum lost] refused writes afterwards: {outcomes}")
    # A refused CreateBucket either never happened or made a whole, usable bucket.
    names = {b["Name"] for b in s3s[0].list_buckets()["Buckets"]}
    for name in ("refused-bucket-0", "refused-bucket-1"):
        if name in names:
            s3s[1].list_objects_v2(Bucket=name)
    # The refused DELETE: the object is whole or gone.
    ok, res, _, _ = timed(get, s3s[0], "before/0")
    assert (ok and res == existing["before/0"]) or (not ok and status_of(res) == 404), describe(res)
    assert_readable_everywhere(s3s, {k: v for k, v in existing.items() if outcomes.get(k) != "applied"
                                     and k != "before/0"})
    topology.etcd.start_member(follower)
    topology.etcd.wait_healthy(timeout=RECOVERY_BOUND)
    assert topology.etcd.members[survivor].alive()
    for g, s3 in enumerate(s3s):
        body = support.data(MIB + 3, seed=90 + g)
        s3.put_object(Bucket=BUCKET, Key=f"after/{g}", Body=body)
        assert get(s3s[1 - g], f"after/{g}") == body


# ---------------------------------------------------------------------------------------------
# kill -9 of a gateway mid-PUT under load


def signed_put_headers(topo: Topology, endpoint: str, key: str, body: bytes) -> dict:
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    path = f"/{BUCKET}/{support.quote_key(key)}"
    request = AWSRequest(method="PUT", url=endpoint + path, data=body,
                         headers={"content-length": str(len(body))})
    S3SigV4Auth(Credentials(topo.access_key, topo.secret_key), "s3", support.REGION).add_auth(request)
    return dict(request.headers.items())


class SlowPut:
    """A PUT that sends its headers and the first `sent` bytes of the body, then waits: the
    gateway has an intent in the catalog and shards on the nodes for it, and no object."""

    def __init__(self, topo: Topology, gateway: int, key: str, body: bytes, sent: int):
        self.key = key
        self.body = body
        endpoint = topo.gateways[gateway].endpoint
        headers = signed_put_headers(topo, endpoint, key, body)
        self.conn = http.client.HTTPConnection("127.0.0.1", topo.gateways[gateway].port, timeout=30)
        self.conn.putrequest("PUT", f"/{BUCKET}/{support.quote_key(key)}", skip_accept_encoding=True)
        for name, value in headers.items():
            self.conn.putheader(name, value)
        self.conn.endheaders()
        for offset in range(0, sent, 256 * KIB):
            self.conn.send(body[offset:min(sent, offset + 256 * KIB)])

    def finish(self, sent: int) -> int:
        """Send the rest of the body (from byte `sent`); returns the response status."""
        for offset in range(sent, len(self.body), 256 * KIB):
            self.conn.send(self.body[offset:offset + 256 * KIB])
        resp = self.conn.getresponse()
        resp.read()
        return resp.status

    def close(self) -> None:
        self.conn.close()


def hold_slow_put(topo: Topology, gateway: int, key: str, body: bytes, sent: int) -> tuple[SlowPut, set[bytes]]:
    """Start a SlowPut and wait (bounded) until its intent row appears; returns it and the new
    intent keys (only this PUT writes sharded data while it starts)."""
    before = set(topo.intent_keys())
    put = SlowPut(topo, gateway, key, body, sent)
    deadline = time.monotonic() + 30
    new: set[bytes] = set()
    while time.monotonic() < deadline and not new:
        new = set(topo.intent_keys()) - before
        if not new:
            time.sleep(0.05)
    return put, new


def shard_files_of(topo: Topology, groups: set[str]) -> list[str]:
    return [f"node{n.index}/{p.name}" for n in topo.nodes for p in n.shard_files() if p.name.split(".")[0] in groups]


def test_kill9_gateway_mid_put_other_serves_and_collects_intents(topology):
    s3s = clients(topology)
    victim = topology.leader_gateway()
    survivor = 1 - victim
    inline = [1 * KIB, 2 * KIB + 1]
    # Until the kill, the survivor's load is inline objects only (no intents), so every intent
    # row that exists at the kill is the victim's. Its requests must all succeed, throughout.
    survivor_before = MixedLoad(s3s, workers=2, max_ops=2000, prefix="survivor-inline", gateways=[survivor],
                                sizes=inline, seed=3)
    survivor_after = MixedLoad(s3s, workers=3, max_ops=2000, prefix="survivor", gateways=[survivor], seed=4)
    victim_load = MixedLoad(s3s, workers=2, max_ops=2000, prefix="victim", gateways=[victim], seed=2)
    survivor_before.start()
    slow: list[SlowPut] = []
    survivor_put: SlowPut | None = None
    held: set[bytes] = set()
    takeover_s = collected_s = None
    remaining: set[bytes] = set()
    try:
        survivor_before.wait_successes_after(0, 20, timeout=60)
        # A slow upload on the survivor (not the leader) whose intent must outlive a lease period:
        # the leader never collects the intents of a gateway that is alive.
        survivor_body = support.data(6 * MIB, seed=400)
        survivor_put, survivor_intent = hold_slow_put(topology, survivor, "slow-on-survivor", survivor_body, 2 * MIB)
        # Slow uploads hold intents on the victim: 3 PUTs of 12 MiB, 5 MiB of each sent.
        for n in range(3):
            put, new = hold_slow_put(topology, victim, f"half-sent/{n}", support.data(12 * MIB, seed=500 + n), 5 * MIB)
            slow.append(put)
            held |= new
        victim_load.start()
        victim_load.wait_successes_after(0, 10, timeout=60)
        time.sleep(1.5 * LEADER_LEASE_MS / 1000)
        live_intents = set(topology.intent_keys())
        assert survivor_intent and survivor_intent <= live_intents, (
            "the intent of a live gateway's write in progress was collected")
        assert held <= live_intents, "the intents of the (live) leader's writes in progress vanished"
        status = survivor_put.finish(2 * MIB)
        assert status == 200, f"the survivor's slow PUT answered {status}"
        assert get(s3s[0], "slow-on-survivor") == survivor_body
        killed_at = topology.kill9_gateway(victim)
        dead_intents = set(topology.intent_keys())
        survivor_before.stop()
        survivor_after.start()
        victim_load.stop()
        # The survivor keeps serving; it takes over the lead once the victim's lease has expired.
        deadline = killed_at + RECOVERY_BOUND
        while time.monotonic() < deadline:
            try:
                if topology.gateway_identity(survivor, timeout=2)["leader"]:
                    takeover_s = time.monotonic() - killed_at
                    break
            except (OSError, ValueError, AssertionError):
                pass
            time.sleep(0.05)
        # The victim's intents (every row that existed at the kill) are collected.
        remaining = dead_intents
        while time.monotonic() < deadline:
            remaining = dead_intents & set(topology.intent_keys())
            if not remaining:
                collected_s = time.monotonic() - killed_at
                break
            time.sleep(0.1)
        survivor_after.wait_successes_after(killed_at + (collected_s or 0), 20, timeout=60)
    finally:
        for put in [*slow, survivor_put]:
            if put is not None:
                put.close()
        for load in (victim_load, survivor_before, survivor_after):
            if load._futures:
                load.stop()

    groups = {key.hex() for key in dead_intents}
    leftover_shards = shard_files_of(topology, groups)
    shard_deadline = time.monotonic() + RECOVERY_BOUND
    while leftover_shards and time.monotonic() < shard_deadline:
        time.sleep(0.2)
        leftover_shards = shard_files_of(topology, groups)
    before_counts = judge_load(survivor_before, allow_503=False)
    after_counts = judge_load(survivor_after, allow_503=False)
    record("gateway kill -9 mid-PUT", {
        "victim": victim, "slow_put_intents": len(held), "intents_at_kill": len(dead_intents),
        "takeover_s": round(takeover_s, 2) if takeover_s is not None else None,
        "intents_collected_s": round(collected_s, 2) if collected_s is not None else None,
        "leader_lease_ms": LEADER_LEASE_MS, "victim_ops_before_kill": len(victim_load.ops),
        "survivor_ops_before_kill": before_counts["ops"], "survivor_ops_after_kill": after_counts["ops"],
    })
    assert len(held) >= len(slow), f"the slow PUTs did not hold intents before the kill: {len(held)}"
    assert held <= dead_intents, "a slow PUT's intent vanished before the kill"
    assert takeover_s is not None, f"gateway {survivor} did not become leader within {RECOVERY_BOUND}s"
    assert collected_s is not None, (f"{len(remaining)} intents of the dead gateway still there "
                                     f"{RECOVERY_BOUND}s after the kill")
    assert not leftover_shards, f"shards of collected intents still on the nodes: {leftover_shards[:10]}"
    for put in slow:
        with pytest.raises(ClientError) as info:
            s3s[survivor].head_object(Bucket=BUCKET, Key=put.key)
        assert status_of(info.value) == 404, f"half-sent {put.key} is visible"
    # Everything acknowledged, by either gateway, reads back; the victim restarts and rejoins.
    acked = {**victim_load.acked, **survivor_before.acked, **survivor_after.acked}
    assert_readable_everywhere([s3s[survivor]], acked)
    topology.start_gateway_index(victim)
    topology.wait_gateway_ready(victim)
    assert topology.gateway_identity(victim)["leader"] is False, "the restarted gateway took the lead back"
    assert_readable_everywhere(s3s, acked)


# ---------------------------------------------------------------------------------------------
# the round-robin proxy of the 2-gateway client-suite run (test support; needs no etcd)


def test_round_robin_proxy_alternates_connections():
    import http.server
    import socketserver

    servers = []

    def backend(name: str):
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive unless the proxy says otherwise

            def do_GET(self):  # noqa: N802 - http.server's naming
                payload = name.encode()
                self.send_response(200)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        servers.append(server)
        return server.server_address[1]

    ports = [backend("a"), backend("b")]
    dead = support.free_port()  # nothing listens here: skipped
    proxy = multi_gateway_support.RoundRobinProxy([ports[0], dead, ports[1]])
    proxy.start()
    try:
        seen = []
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
        try:
            for _ in range(6):
                # One keep-alive client: the proxy closes each connection after its response,
                # so every request reaches the next backend.
                conn.request("GET", "/")
                resp = conn.getresponse()
                seen.append(resp.read().decode())
                assert resp.getheader("connection") == "close"
        finally:
            conn.close()
        assert seen == ["a", "b"] * 3, seen
        assert proxy.connections == [3, 0, 3]
        # Interim responses pass untouched; the final one is the one marked.
        forward, held, done = multi_gateway_support.RoundRobinProxy._close_after_first_response(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nConnection: keep-alive\r\n")
        assert (forward, held, done) == (b"HTTP/1.1 100 Continue\r\n\r\n",
                                         b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n", False)
    finally:
        proxy.close()
        for server in servers:
            server.shutdown()
            server.server_close()
