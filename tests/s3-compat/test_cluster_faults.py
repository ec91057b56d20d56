"""Fault tests against a real Strata cluster (6 storage-node processes + 1 gateway, 4+2, W=5).

Each test starts its own cluster (cluster_support.Cluster) on free 127.0.0.1 ports and injects
real process faults:

- kill -9 of m=2 nodes during concurrent PUTs/GETs: every acknowledged PUT reads back
  bit-exact, nothing readable is wrong, and no request outlives the client timeout budget;
- SIGSTOP of one node (a hang): PUT and GET still finish, served by the other nodes;
- m+1=3 nodes down: PUT answers 503, nothing half-written becomes visible, and once the nodes
  come back PUT works again with the same gateway process;
- kill of 1 and of 3 nodes during a streamed 64 MiB GET: the client gets the exact bytes or an
  aborted transfer, never a complete-looking truncated body (and never wrong bytes);
- restart of a node with its disk intact: it rejoins and serves its shards (proved by killing
  two other nodes so that every read needs it);
- cluster secret: a node without one refuses to start, a node with a wrong one is marked down
  by the gateway and answers 401 to the gateway's signature, and gets nothing written to it;
- measurements (printed, and written to <tmp>/cluster-measurements.json): kill -9 → "down" in
  the admin status, PUT/GET throughput of 40 × 1 MiB with all nodes up vs one node down.

Clients use one attempt (no retries) and explicit connect/read timeouts, so a hung request
surfaces as a client timeout error, which the tests treat as a failure.
Skipped when `$STRATA_BIN` has no `gateway`/`storage-node` subcommands.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import random
import subprocess
import threading
import time
from pathlib import Path

import pytest
import urllib3
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError

import cluster_support
import support
from cluster_support import Cluster
from support import KIB, MIB, error_code
from support import status_code as status_of

pytestmark = pytest.mark.strata_only

BUCKET = "faults"
READ_TIMEOUT = 20.0
CONNECT_TIMEOUT = 5.0
# A request may take at most this long before we call it a hang (client timeouts + slack).
REQUEST_BUDGET = READ_TIMEOUT + CONNECT_TIMEOUT
TIMEOUT_ERRORS = (ReadTimeoutError, ConnectTimeoutError)


def _open_cluster(binary, root: Path, request, **kwargs):
    failed_before = request.session.testsfailed
    cluster = Cluster(binary, root, **kwargs)
    return cluster, failed_before


def _teardown(cluster: Cluster, request, failed_before: int):
    try:
        if request.session.testsfailed > failed_before:
            print(f"\n[cluster logs, {cluster.root}]\n{cluster.logs()}")
    finally:
        cluster.close()
    leaked = cluster.leaked()
    assert not leaked, f"processes still running after teardown: {leaked}"


@pytest.fixture
def cluster(cluster_bin, tmp_path, request):
    """A fresh, ready 6-node cluster with bucket BUCKET."""
    cluster, failed_before = _open_cluster(cluster_bin, tmp_path / "cluster", request)
    try:
        cluster.start()
        cluster.client().create_bucket(Bucket=BUCKET)
        yield cluster
    finally:
        _teardown(cluster, request, failed_before)


def put(s3, key: str, body: bytes) -> float:
    started = time.monotonic()
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return time.monotonic() - started


def get(s3, key: str) -> bytes:
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def assert_missing(s3, key: str) -> None:
    with pytest.raises(ClientError) as info:
        s3.head_object(Bucket=BUCKET, Key=key)
    assert status_of(info.value) == 404, f"{key}: expected 404 after a failed PUT, got {info.value}"


def sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def timed(fn, *args, **kwargs):
    """(ok, result or exception, seconds)."""
    started = time.monotonic()
    try:
        return True, fn(*args, **kwargs), time.monotonic() - started
    except Exception as exc:  # noqa: BLE001 - every failure is recorded and judged by the caller
        return False, exc, time.monotonic() - started


# ---------------------------------------------------------------------------------------------
# kill -9 of m nodes during a concurrent workload


def test_kill9_m_nodes_during_concurrent_workload(cluster):
    s3 = cluster.client(read_timeout=READ_TIMEOUT, connect_timeout=CONNECT_TIMEOUT)
    seed = int(os.environ.get("S3COMPAT_FAULT_SEED", "20261127"))
    rng = random.Random(seed)
    victims = rng.sample(range(len(cluster.nodes)), cluster.parity_shards)
    sizes = [1 * KIB, 200 * KIB + 3, MIB + 7, 2 * MIB + 512 * KIB]
    acked: dict[str, bytes] = {}
    lock = threading.Lock()
    records = []

    for n in range(8):  # something to read from the first moment on
        key = f"pre/{n}"
        body = support.data(sizes[n % len(sizes)], seed=n)
        put(s3, key, body)
        acked[key] = body

    def do_put(n: int):
        key = f"w/{n}"
        body = support.data(sizes[n % len(sizes)], seed=1000 + n)
        ok, res, took = timed(put, s3, key, body)
        if ok:
            with lock:
                acked[key] = body
        return ("PUT", key, ok, res, took, body)

    def do_get(n: int):
        with lock:
            key = random.Random(n).choice(sorted(acked))
            body = acked[key]
        ok, res, took = timed(get, s3, key)
        return ("GET", key, ok, res, took, body)

    total_ops = 72
    puts_done = [0]

    def run(n: int):
        record = do_put(n) if n % 2 == 0 else do_get(n)
        if record[0] == "PUT":
            with lock:
                puts_done[0] += 1
        return record

    kills = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        futures = [pool.submit(run, n) for n in range(total_ops)]
        # Stagger the kills: the first after ~1/4 of the PUTs, the second after ~1/2.
        for victim, threshold in zip(victims, (total_ops // 8, total_ops // 4)):
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                with lock:
                    if puts_done[0] >= threshold:
                        break
                if all(f.done() for f in futures):
                    break
                time.sleep(0.01)
            kills[victim] = cluster.kill9(victim)
        for future in futures:
            records.append(future.result(timeout=REQUEST_BUDGET * total_ops))

    hangs = [r for r in records if not r[2] and isinstance(r[3], TIMEOUT_ERRORS)]
    too_slow = [r for r in records if r[4] > REQUEST_BUDGET]
    wrong_reads = [r for r in records if r[0] == "GET" and r[2] and r[3] != r[5]]
    put_fail = [r for r in records if r[0] == "PUT" and not r[2]]
    get_fail = [r for r in records if r[0] == "GET" and not r[2]]
    unexpected_put_errors = [r for r in put_fail if status_of(r[3]) != 503]
    print(f"\n[kill9 workload] seed={seed} victims={victims} ops={len(records)} puts_acked={len(acked) - 8} "
          f"put_failures={len(put_fail)} get_failures={len(get_fail)} "
          f"max_latency={max(r[4] for r in records):.2f}s")
    for r in get_fail[:5] + unexpected_put_errors[:5]:
        print(f"  {r[0]} {r[1]} failed after {r[4]:.2f}s: {r[3]!r}")

    assert not hangs, f"requests hung until the client timeout: {[(r[0], r[1], r[4]) for r in hangs]}"
    assert not too_slow, f"requests over the {REQUEST_BUDGET}s budget: {[(r[0], r[1], r[4]) for r in too_slow]}"
    assert not wrong_reads, f"GET returned wrong bytes for {[r[1] for r in wrong_reads]}"
    assert not unexpected_put_errors, (
        "PUT failed with something else than 503: "
        f"{[(r[1], status_of(r[3]), error_code(r[3]), repr(r[3])[:200]) for r in unexpected_put_errors]}")

    # Afterwards, with exactly k nodes left: every acknowledged PUT reads back bit-exact.
    cluster.wait_states({v: "down" for v in victims}, timeout=15)
    mismatched, unreadable = [], []
    for key, body in sorted(acked.items()):
        ok, res, took = timed(get, s3, key)
        assert took <= REQUEST_BUDGET, f"GET {key} took {took:.1f}s"
        if not ok:
            unreadable.append((key, repr(res)[:200]))
        elif res != body:
            mismatched.append(key)
    assert not unreadable, f"acknowledged objects unreadable with {len(victims)} nodes down: {unreadable}"
    assert not mismatched, f"acknowledged objects read back different: {mismatched}"

    # A PUT that failed must not have left a corrupt object behind: absent, or exactly its body.
    for r in put_fail:
        ok, res, _ = timed(get, s3, r[1])
        if ok:
            assert res == r[5], f"failed PUT {r[1]} left different bytes visible"
        else:
            assert status_of(res) == 404, f"failed PUT {r[1]}: GET answered {res!r}"

    # And the cluster heals: nodes back, PUT and GET work again.
    for v in victims:
        cluster.restart(v)
    cluster.wait_ready()
    body = support.data(MIB + 1, seed=77)
    put(s3, "after-restart", body)
    assert get(s3, "after-restart") == body


# ---------------------------------------------------------------------------------------------
# SIGSTOP: a hung node


def test_sigstop_one_node_put_and_get_still_finish(cluster):
    s3 = cluster.client(read_timeout=READ_TIMEOUT, connect_timeout=CONNECT_TIMEOUT)
    before = {f"before/{n}": support.data(MIB + n * 100_003, seed=n) for n in range(6)}
    for key, body in before.items():
        put(s3, key, body)

    victim = 3
    cluster.stop(victim)
    timings = {"put_hung": [], "get_hung": [], "put_marked_down": [], "get_marked_down": []}
    after = {}
    try:
        # Straight away: the health checker has not noticed yet, the node accepts TCP and hangs.
        for n in range(3):
            key, body = f"during/{n}", support.data(MIB + 11 * n, seed=100 + n)
            ok, res, took = timed(put, s3, key, body)
            assert ok, f"PUT {key} with node {victim} hung failed after {took:.2f}s: {res!r}"
            timings["put_hung"].append(took)
            after[key] = body
        for key, body in before.items():
            ok, res, took = timed(get, s3, key)
            assert ok, f"GET {key} with node {victim} hung failed after {took:.2f}s: {res!r}"
            assert res == body, f"GET {key} returned wrong bytes while node {victim} hung"
            timings["get_hung"].append(took)

        cluster.wait_states({victim: "down"}, timeout=15)
        for n in range(3):
            key, body = f"down/{n}", support.data(MIB + 13 * n, seed=200 + n)
            ok, res, took = timed(put, s3, key, body)
            assert ok, f"PUT {key} with node {victim} marked down failed: {res!r}"
            timings["put_marked_down"].append(took)
            after[key] = body
        for key, body in list(before.items())[:3]:
            ok, res, took = timed(get, s3, key)
            assert ok and res == body, f"GET {key} with node {victim} marked down: {res!r}"
            timings["get_marked_down"].append(took)
    finally:
        cluster.cont(victim)

    print(f"\n[sigstop node {victim}] " + ", ".join(
        f"{name}: max {max(v):.2f}s avg {sum(v) / len(v):.2f}s" for name, v in timings.items() if v))
    for name, values in timings.items():
        # shard_timeout_secs = 4: nothing should wait for the hung node much longer than that.
        assert max(values) < 10.0, f"{name}: {values} (a hung node must be bypassed, not waited for)"

    cluster.wait_states({victim: "up"}, timeout=15)
    for key, body in {**before, **after}.items():
        assert get(s3, key) == body, f"{key} differs after SIGCONT"


# ---------------------------------------------------------------------------------------------
# m+1 nodes down


def test_m_plus_1_nodes_down_put_503_nothing_visible_then_recovers(cluster):
    s3 = cluster.client(read_timeout=READ_TIMEOUT, connect_timeout=CONNECT_TIMEOUT)
    v1 = support.data(MIB + 5, seed=1)
    put(s3, "existing", v1)
    gateway_pid = cluster.gateway.pid
    victims = list(range(cluster.parity_shards + 1))

    for v in victims:
        cluster.kill9(v)
    failed_keys = []

    def expect_503(key: str, body: bytes, when: str):
        ok, res, took = timed(put, s3, key, body)
        assert not ok, f"PUT {key} ({when}, {len(victims)} nodes down) was acknowledged"
        assert status_of(res) == 503, f"PUT {key} ({when}): expected 503, got {res!r}"
        assert took < 10.0, f"PUT {key} ({when}) took {took:.1f}s to fail"
        failed_keys.append(key)
        return error_code(res), took

    # Before the health checker noticed (writes fail on the dead nodes themselves)…
    early = expect_503("early", support.data(2 * MIB, seed=2), "before detection")
    cluster.wait_states({v: "down" for v in victims}, timeout=15)
    assert cluster.ready_status() == 503, "ready must be 503 below write quorum"
    # …and after.
    late = expect_503("late", support.data(MIB, seed=3), "after detection")
    overwrite = expect_503("existing", support.data(MIB + 9, seed=4), "overwrite")
    print(f"\n[m+1 down] early PUT: {early}, late PUT: {late}, overwrite: {overwrite}")

    # Multipart: a part cannot be stored either.
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="mpu")
    ok, res, _ = timed(s3.upload_part, Bucket=BUCKET, Key="mpu", UploadId=upload["UploadId"], PartNumber=1,
                       Body=support.data(5 * MIB, seed=5))
    assert not ok and status_of(res) == 503, f"upload_part with {len(victims)} nodes down: {res!r}"
    s3.abort_multipart_upload(Bucket=BUCKET, Key="mpu", UploadId=upload["UploadId"])

    # Inline objects (<= 4 KiB) live in metadata only: report what the server does.
    ok, res, _ = timed(put, s3, "tiny", b"x" * 100)
    print(f"[m+1 down] inline 100-byte PUT: {'acknowledged' if ok else repr(res)[:120]}")
    if not ok:
        failed_keys.append("tiny")

    listed = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])}
    assert "early" not in listed and "late" not in listed, f"failed PUTs listed: {listed}"
    for key in ("early", "late"):
        assert_missing(s3, key)

    # Nodes return (same ports, same disks): same gateway process, PUT works again.
    for v in victims:
        cluster.restart(v)
    cluster.wait_ready(timeout=30)
    assert cluster.gateway.poll() is None and cluster.gateway.pid == gateway_pid
    assert get(s3, "existing") == v1, "a refused overwrite changed the object"
    for key in ("early", "late"):
        assert_missing(s3, key)
    listed = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])}
    assert "early" not in listed and "late" not in listed
    for n in range(3):
        body = support.data(MIB + n, seed=10 + n)
        put(s3, f"after/{n}", body)
        assert get(s3, f"after/{n}") == body
    v3 = support.data(MIB + 3, seed=30)
    put(s3, "existing", v3)
    assert get(s3, "existing") == v3


# ---------------------------------------------------------------------------------------------
# kill during a large streamed GET


def stream_get(cluster: Cluster, key: str, expected: bytes, trigger_at: int, action) -> dict:
    """Stream GET `key`, run `action()` once `trigger_at` bytes arrived; never trust the end."""
    path = "/" + BUCKET + "/" + support.quote_key(key)
    pool = urllib3.HTTPConnectionPool("127.0.0.1", cluster.gateway_port, maxsize=1, retries=False,
                                      timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT))
    outcome = {"key": key, "received": 0, "prefix_ok": True, "completed": False, "error": None,
               "content_length": None, "triggered_at": None, "seconds_after_trigger": None}
    digest = hashlib.sha256()
    resp = pool.request("GET", path, headers=cluster.signed_headers("GET", path), preload_content=False,
                        enforce_content_length=True)
    try:
        assert resp.status == 200, f"GET {key}: {resp.status} {resp.data[:300]!r}"
        outcome["content_length"] = resp.headers.get("content-length")
        outcome["transfer_encoding"] = resp.headers.get("transfer-encoding")
        got = 0
        fired_at = None
        try:
            for chunk in resp.stream(256 * KIB):
                if chunk != expected[got : got + len(chunk)]:
                    outcome["prefix_ok"] = False
                digest.update(chunk)
                got += len(chunk)
                outcome["received"] = got
                if fired_at is None and got >= trigger_at:
                    outcome["triggered_at"] = got
                    action()
                    fired_at = time.monotonic()
            outcome["completed"] = True
        except (urllib3.exceptions.ProtocolError, urllib3.exceptions.ReadTimeoutError,
                urllib3.exceptions.DecodeError, OSError) as exc:
            outcome["error"] = repr(exc)[:300]
            outcome["timed_out"] = isinstance(exc, urllib3.exceptions.ReadTimeoutError)
        if fired_at is not None:
            outcome["seconds_after_trigger"] = round(time.monotonic() - fired_at, 3)
        outcome["sha_ok"] = digest.hexdigest() == sha(expected)
    finally:
        resp.release_conn()
        resp.close()
        pool.close()
    return outcome


def judge_stream(outcome: dict, expected: bytes) -> None:
    assert outcome["triggered_at"] is not None, f"the fault was never injected mid-transfer: {outcome}"
    assert outcome["prefix_ok"], f"wrong bytes before the end of the transfer: {outcome}"
    assert not outcome.get("timed_out"), f"the transfer stalled until the client read timeout: {outcome}"
    if outcome["completed"]:
        # A clean end of response must mean the whole, exact object.
        assert outcome["received"] == len(expected) and outcome["sha_ok"], (
            f"complete-looking but truncated or wrong body: {outcome}")
        if outcome["content_length"] is not None:
            assert int(outcome["content_length"]) == len(expected), outcome
    else:
        assert outcome["received"] < len(expected) or not outcome["sha_ok"], outcome


def test_kill_nodes_mid_large_get_never_truncates_silently(cluster, tmp_path):
    s3 = cluster.client(read_timeout=60, connect_timeout=CONNECT_TIMEOUT)
    body = support.data(64 * MIB, seed=64)
    put(s3, "big", body)

    # One node dies mid-transfer: k+1 shards are still there.
    one = stream_get(cluster, "big", body, 8 * MIB, lambda: cluster.kill9(5))
    print(f"\n[mid-GET kill 1] {one}")
    judge_stream(one, body)

    cluster.restart(5)
    cluster.wait_ready()

    # m+1 nodes die mid-transfer: the rest cannot be decoded; the transfer must not end cleanly short.
    def kill_three():
        for v in (0, 1, 2):
            cluster.kill9(v)

    three = stream_get(cluster, "big", body, 8 * MIB, kill_three)
    print(f"[mid-GET kill 3] {three}")
    judge_stream(three, body)
    (tmp_path / "mid-get.json").write_text(json.dumps({"kill_one": one, "kill_three": three}, indent=2))


# ---------------------------------------------------------------------------------------------
# restart with the disk intact


def test_restarted_node_rejoins_and_serves_its_shards(cluster):
    s3 = cluster.client(read_timeout=READ_TIMEOUT, connect_timeout=CONNECT_TIMEOUT)
    objects = {f"obj/{n}": support.data(300 * KIB + n * 250_001, seed=n) for n in range(8)}
    for key, body in objects.items():
        put(s3, key, body)

    victim = 1
    node = cluster.nodes[victim]
    files_before = {p.relative_to(node.data_dir): p.stat().st_size for p in node.shard_files()}
    assert len(files_before) >= len(objects), f"node {victim} holds {len(files_before)} shards for {len(objects)} objects"

    killed_at = cluster.kill9(victim)
    down_after = cluster.wait_states({victim: "down"}, timeout=15, since=killed_at)
    restarted_at = time.monotonic()
    cluster.restart(victim)
    up_after = cluster.wait_states({victim: "up"}, timeout=15, since=restarted_at)
    print(f"\n[restart node {victim}] down after {down_after:.2f}s, up again {up_after:.2f}s after restart")
    files_after = {p.relative_to(node.data_dir): p.stat().st_size for p in node.shard_files()}
    assert files_after == files_before, "the restarted node's shard files changed"

    # With two *other* nodes dead only 4 = k shards are left, one of them on the restarted node:
    # every read now needs it.
    others = [i for i in range(len(cluster.nodes)) if i != victim][:2]
    for i in others:
        cluster.kill9(i)
    cluster.wait_states({i: "down" for i in others}, timeout=15)
    for key, body in objects.items():
        ok, res, took = timed(get, s3, key)
        assert ok, f"GET {key} needing node {victim}'s shard failed after {took:.2f}s: {res!r}"
        assert res == body, f"GET {key} returned wrong bytes"


# ---------------------------------------------------------------------------------------------
# cluster secret


def test_node_and_gateway_without_secret_refuse_to_start(cluster_bin, tmp_path):
    port = support.free_port()
    cases = {
        "no secret": [],
        "short secret": ["--secret-file", str(tmp_path / "short.secret")],
    }
    (tmp_path / "short.secret").write_text("too-short\n")
    for name, extra in cases.items():
        cmd = [cluster_bin, "storage-node", "--listen", f"127.0.0.1:{port}", "--data", str(tmp_path / "n"),
               "--no-fsync", *extra]
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=15, env=cluster_support.clean_env())
        except subprocess.TimeoutExpired:
            pytest.fail(f"storage node with {name} kept running instead of refusing to start")
        output = (proc.stdout + proc.stderr).decode("utf-8", "replace")
        assert proc.returncode != 0, f"storage node with {name} exited 0: {output}"
        assert "secret" in output.lower(), f"storage node with {name}: error does not name the secret: {output}"

    # A gateway whose config has no secret at all refuses to start too.
    cluster = Cluster(cluster_bin, tmp_path / "gw")
    config = "\n".join(line for line in cluster.config_text().splitlines() if "cluster_secret" not in line)
    (tmp_path / "nosecret.toml").write_text(config)
    try:
        proc = subprocess.run([cluster_bin, "gateway", "--config", str(tmp_path / "nosecret.toml")],
                              capture_output=True, timeout=15, env=cluster.gateway_env())
    except subprocess.TimeoutExpired:
        pytest.fail("gateway without a cluster secret kept running")
    output = (proc.stdout + proc.stderr).decode("utf-8", "replace")
    assert proc.returncode != 0 and "secret" in output.lower(), output


def test_node_with_wrong_secret_is_refused_both_ways(cluster_bin, tmp_path, request):
    wrong = 5
    cluster, failed_before = _open_cluster(cluster_bin, tmp_path / "cluster", request,
                                           node_secrets={wrong: cluster_support.WRONG_SECRET})
    try:
        cluster.start(wait=False)
        good = [i for i in range(len(cluster.nodes)) if i != wrong]
        cluster.wait_states({wrong: "down", **{i: "up" for i in good}}, timeout=15)
        status = {n["id"]: n for n in cluster.admin_status()["nodes"]}
        assert status[wrong]["consecutive_failures"] >= 2, status[wrong]

        # The node refuses the gateway's signature; it is alive and accepts its own secret.
        bad_node, good_node = cluster.nodes[wrong].port, cluster.nodes[0].port
        assert cluster_support.node_request(bad_node, "GET", "/v1/health",
                                            secret=cluster_support.CLUSTER_SECRET)[0] == 401
        assert cluster_support.node_request(bad_node, "GET", "/v1/health",
                                            secret=cluster_support.WRONG_SECRET)[0] == 200
        # …and a correctly configured node refuses unsigned and wrongly signed requests.
        assert cluster_support.node_request(good_node, "GET", "/v1/health", secret=None)[0] == 401
        assert cluster_support.node_request(good_node, "GET", "/v1/health",
                                            secret=cluster_support.WRONG_SECRET)[0] == 401
        assert cluster_support.node_request(good_node, "GET", "/v1/health",
                                            secret=cluster_support.CLUSTER_SECRET)[0] == 200

        # Five good nodes = W: writes work, and nothing lands on the refused node.
        s3 = cluster.client(read_timeout=READ_TIMEOUT, connect_timeout=CONNECT_TIMEOUT)
        s3.create_bucket(Bucket=BUCKET)
        objects = {f"o/{n}": support.data(MIB + n * 4099, seed=n) for n in range(4)}
        for key, body in objects.items():
            ok, res, took = timed(put, s3, key, body)
            assert ok, f"PUT {key} with 5 good nodes (W=5) failed after {took:.2f}s: {res!r}"
        for key, body in objects.items():
            assert get(s3, key) == body
        assert cluster.nodes[wrong].shard_files() == [], "shards were written to a node with a wrong secret"
        assert sum(len(cluster.nodes[i].shard_files()) for i in good) >= len(objects) * cluster.data_shards

        # Give the node the right secret: it is accepted.
        cluster.set_node_secret(wrong, cluster_support.CLUSTER_SECRET)
        cluster.restart(wrong)
        cluster.wait_ready(timeout=15)
    finally:
        _teardown(cluster, request, failed_before)


# ---------------------------------------------------------------------------------------------
# measurements


def _throughput(fn, items, workers: int = 4) -> tuple[float, list]:
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(fn, items, timeout=REQUEST_BUDGET * len(items)))
    return time.monotonic() - started, results


def test_measure_detection_and_throughput(cluster, tmp_path):
    s3 = cluster.client(read_timeout=READ_TIMEOUT, connect_timeout=CONNECT_TIMEOUT)
    count = 40
    bodies = {f"up/{n}": support.data(MIB, seed=5000 + n) for n in range(count)}
    bodies_down = {f"down/{n}": support.data(MIB, seed=6000 + n) for n in range(count)}

    def put_one(item):
        key, body = item
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)

    def get_one(key):
        return get(s3, key) == bodies.get(key, bodies_down.get(key))

    results = {"object_mib": 1, "objects": count, "workers": 4, "timeouts": cluster_support.GATEWAY_TIMEOUTS}
    put_up, _ = _throughput(put_one, bodies.items())
    get_up, ok_up = _throughput(get_one, list(bodies))
    assert all(ok_up)

    victim = 4
    killed_at = cluster.kill9(victim)
    detect = cluster.wait_states({victim: "down"}, timeout=15, since=killed_at)
    put_down, _ = _throughput(put_one, bodies_down.items())
    get_down_degraded, ok_deg = _throughput(get_one, list(bodies))  # written with 6 shards, one lost
    get_down_new, ok_new = _throughput(get_one, list(bodies_down))
    assert all(ok_deg) and all(ok_new)

    results.update({
        "kill9_to_down_seconds": round(detect, 3),
        "all_up": {"put_mib_s": round(count / put_up, 2), "get_mib_s": round(count / get_up, 2),
                   "put_seconds": round(put_up, 3), "get_seconds": round(get_up, 3)},
        "one_down": {"put_mib_s": round(count / put_down, 2),
                     "get_degraded_mib_s": round(count / get_down_degraded, 2),
                     "get_written_while_down_mib_s": round(count / get_down_new, 2),
                     "put_seconds": round(put_down, 3), "get_degraded_seconds": round(get_down_degraded, 3)},
    })
    out = tmp_path / "cluster-measurements.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"\n[measurements] {out}\n{json.dumps(results, indent=2)}")
    # 2 failed pings at health_interval_ms = 300 (a dead port fails fast): well under 5 s.
    assert detect < 5.0, f"kill -9 took {detect:.2f}s to show as down"
