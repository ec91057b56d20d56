"""Self-healing on a real cluster (storage-node processes + gateway, 4+2): repair and GC.

- a storage node whose disk is wiped and which is restarted empty gets every shard back, and
  then two *other* nodes can die (m=2) with every object still reading back exact;
- a node that stays down past `node_lost_after_secs` has its groups rebuilt on the other nodes
  (8 nodes), which then survive m further failures;
- bytes flipped in data-shard files are found by reads, repaired in place, and the repaired
  shards are then needed (and good) when two other nodes die;
- overwriting and deleting 1,000 objects and aborting multipart uploads: after GC the nodes'
  shard bytes on disk are what the live objects need (within a small per-shard margin);
- kill -9 of the gateway in the middle of a large PUT: after a restart the abandoned write is
  collected and no shard is left behind.

Repair speed (MiB/s rebuilt) is printed, not asserted. Every wait is bounded.
"""

from __future__ import annotations

import concurrent.futures
import json
import random
import signal
import subprocess
import threading
import time

import pytest

import support
from cluster_support import Cluster
from support import KIB, MIB

pytestmark = pytest.mark.strata_only

BUCKET = "healing"
K, M = 4, 2
# Short intervals so healing shows up in seconds (the defaults are minutes to hours).
HEALING = {
    "gc_delay_secs": 1,
    "repair_interval_ms": 100,
    "repair_bytes_per_sec": 0,
    "scan_interval_secs": 3,
    "node_lost_after_secs": 3,
}
WAIT = 90.0


@pytest.fixture
def make_cluster(cluster_bin, tmp_path, request):
    made: list[Cluster] = []
    failed_before = request.session.testsfailed

    def factory(nodes: int = 6, **extra) -> Cluster:
        settings = dict(HEALING)
        settings.update(extra)
        cluster = Cluster(cluster_bin, tmp_path / f"cluster{len(made)}", nodes=nodes, data_shards=K,
                          parity_shards=M, gateway_extra=settings)
        made.append(cluster)
        cluster.start()
        cluster.client().create_bucket(Bucket=BUCKET)
        return cluster

    yield factory
    for cluster in made:
        try:
            if request.session.testsfailed > failed_before:
                print(f"\n[cluster logs, {cluster.root}]\n{cluster.logs()}")
        finally:
            cluster.close()
        assert not cluster.leaked(), f"processes still running after teardown: {cluster.leaked()}"


def admin(cluster: Cluster, what: str) -> dict:
    resp = support.raw_request(cluster.endpoint, "GET", f"/_strata/admin/{what}", signed=True,
                               access_key=cluster.access_key, secret_key=cluster.secret_key, timeout=10)
    assert resp.status == 200, f"/_strata/admin/{what}: {resp.status} {resp.body[:300]!r}"
    return json.loads(resp.body)


def wait_until(what: str, check, cluster: Cluster, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (OSError, AssertionError, ValueError) as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last: {last}\n"
                         f"repair: {admin(cluster, 'repair')}\ngc: {admin(cluster, 'gc')}")


def put_objects(cluster: Cluster, count: int, seed: int) -> dict[str, bytes]:
    """A mix of sizes: inline (≤ 4 KiB), one stripe, several stripes, and a multipart object."""
    s3 = cluster.client()
    sizes = [1 * KIB, 100 * KIB, 1 * MIB + 7, 3 * MIB + 5]
    objects = {}
    for i in range(count):
        key = f"obj-{seed}-{i}"
        objects[key] = support.data(sizes[i % len(sizes)] + i, seed=seed * 1000 + i)
        s3.put_object(Bucket=BUCKET, Key=key, Body=objects[key])
    key = f"mp-{seed}"
    parts = [support.data(5 * MIB, seed=seed + 1), support.data(2 * MIB + 3, seed=seed + 2)]
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    etags = [s3.upload_part(Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=n + 1, Body=body)["ETag"]
             for n, body in enumerate(parts)]
    s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload, MultipartUpload={
        "Parts": [{"PartNumber": n + 1, "ETag": etag} for n, etag in enumerate(etags)]})
    objects[key] = b"".join(parts)
    return objects


def assert_all_exact(cluster: Cluster, objects: dict[str, bytes]) -> None:
    s3 = cluster.client(read_timeout=30)
    for key, body in objects.items():
        got = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        assert got == body, f"{key}: {len(got)} bytes read, {len(body)} expected"


def sharded_groups(objects: dict[str, bytes]) -> int:
    return sum(2 if key.startswith("mp-") else int(len(body) > 4 * KIB) for key, body in objects.items())


def report_speed(label: str, repair: dict, seconds: float) -> None:
    mib = repair["bytes_rebuilt"] / MIB
    print(f"\n[repair speed] {label}: {mib:.1f} MiB rebuilt in {seconds:.1f} s = "
          f"{mib / max(seconds, 1e-6):.1f} MiB/s ({repair['shards_rebuilt']} shards, "
          f"{repair['groups_repaired']} groups)")


def test_wiped_disk_is_refilled_then_two_other_nodes_can_die(make_cluster):
    cluster = make_cluster()
    objects = put_objects(cluster, 12, seed=1)
    s3 = cluster.client(read_timeout=60)
    for i in range(4):  # enough data for a meaningful repair-speed figure
        objects[f"large-{i}"] = support.data(16 * MIB + i, seed=100 + i)
        s3.put_object(Bucket=BUCKET, Key=f"large-{i}", Body=objects[f"large-{i}"])
    groups = sharded_groups(objects)
    assert len(cluster.nodes[2].shard_files()) == groups

    cluster.kill9(2)
    cluster.wait_states({2: "down"})
    subprocess.run(["rm", "-rf", str(cluster.nodes[2].data_dir)], check=True, timeout=30)
    started = time.monotonic()
    cluster.restart(2)
    cluster.wait_states({2: "up"})

    def refilled():
        repair = admin(cluster, "repair")
        return (len(cluster.nodes[2].shard_files()) == groups and repair["queue_length"] == 0
                and repair["groups_repaired"] >= groups and repair)

    repair = wait_until("node 2 to get every shard back", refilled, cluster)
    report_speed("wiped node refilled", repair, time.monotonic() - started)
    assert repair["missing_shards_found"] >= groups
    for other in (0, 1):
        cluster.kill9(other)
    cluster.wait_states({0: "down", 1: "down"})
    assert_all_exact(cluster, objects)


def test_node_down_past_grace_is_rebuilt_on_other_nodes(make_cluster):
    cluster = make_cluster(nodes=8)
    objects = put_objects(cluster, 12, seed=2)
    on_lost = len(cluster.nodes[3].shard_files())
    assert on_lost > 0
    cluster.kill9(3)
    started = time.monotonic()

    def rebuilt():
        repair = admin(cluster, "repair")
        return (3 in repair["nodes_lost"] and repair["queue_length"] == 0
                and repair["groups_repaired"] >= on_lost and repair)

    repair = wait_until("node 3's groups to be rebuilt elsewhere", rebuilt, cluster)
    report_speed("lost node rebuilt elsewhere", repair, time.monotonic() - started)
    total = sum(len(n.shard_files()) for i, n in enumerate(cluster.nodes) if i != 3)
    assert total == sharded_groups(objects) * (K + M)
    for other in (0, 5):
        cluster.kill9(other)
    cluster.wait_states({0: "down", 5: "down"})
    assert_all_exact(cluster, objects)


def test_flipped_bytes_are_found_by_reads_and_repaired(make_cluster):
    cluster = make_cluster()
    objects = put_objects(cluster, 8, seed=3)
    rng = random.Random(3)
    # Node 4's data shards (index < k): a full GET reads them, so reads find every flip. (Flips
    # in parity shards are the scrubber's to find; it reports them through the same queue.)
    on_node = cluster.nodes[4].shard_files()
    assert len(on_node) == sharded_groups(objects)
    victims = [p for p in on_node if int(p.name.rsplit(".", 1)[1]) < K]
    assert victims
    for path in victims:
        raw = bytearray(path.read_bytes())
        # Somewhere in the frames (past the header), a handful of bytes.
        at = rng.randrange(len(raw) // 2, len(raw) - 8)
        for i in range(8):
            raw[at + i] ^= 0xA5
        path.write_bytes(bytes(raw))

    started = time.monotonic()
    assert_all_exact(cluster, objects)  # reads rebuild from parity and report the bad shards

    def repaired():
        repair = admin(cluster, "repair")
        return repair["queue_length"] == 0 and repair["shards_rebuilt"] >= len(victims) and repair

    repair = wait_until("the flipped shards to be rebuilt", repaired, cluster)
    report_speed("corrupt shards rebuilt", repair, time.monotonic() - started)
    assert repair["shards_reported"] == len(victims)
    for path in victims:
        assert path.exists(), f"{path} was not rewritten in place"
    # Every read of the victims' groups now needs node 4's (repaired) shards: only 4 of 6
    # nodes remain.
    for other in (0, 1):
        cluster.kill9(other)
    cluster.wait_states({0: "down", 1: "down"})
    assert_all_exact(cluster, objects)


def shard_bytes(cluster: Cluster) -> tuple[int, int]:
    files = [p for n in cluster.nodes for p in n.shard_files()]
    return sum(p.stat().st_size for p in files), len(files)


def test_gc_returns_disk_usage_to_what_live_objects_need(make_cluster):
    cluster = make_cluster()
    s3 = cluster.client(max_pool=8)
    rng = random.Random(4)
    live: dict[str, bytes] = {}
    lock = threading.Lock()

    def put(key: str, size: int, seed: int) -> None:
        body = support.data(size, seed=seed)
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        with lock:
            live[key] = body

    sizes = [512, 3 * KIB, 6 * KIB, 20 * KIB, 70 * KIB]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: put(f"k{i}", rng.choice(sizes) + i, i), range(1000)))
        # Overwrite 500 (new sizes), then delete 500 others.
        list(pool.map(lambda i: put(f"k{i}", rng.choice(sizes) + 2 * i, 5000 + i), range(0, 1000, 2)))

        def delete(i: int) -> None:
            s3.delete_object(Bucket=BUCKET, Key=f"k{i}")
            with lock:
                live.pop(f"k{i}", None)

        list(pool.map(delete, range(1, 1000, 2)))
    # Aborted multipart uploads with a stored part each.
    for n in range(3):
        upload = s3.create_multipart_upload(Bucket=BUCKET, Key=f"abandoned-{n}")["UploadId"]
        s3.upload_part(Bucket=BUCKET, Key=f"abandoned-{n}", UploadId=upload, PartNumber=1,
                       Body=support.data(5 * MIB, seed=n))
        s3.abort_multipart_upload(Bucket=BUCKET, Key=f"abandoned-{n}", UploadId=upload)

    sharded = [b for b in live.values() if len(b) > 4 * KIB]
    # What the live objects need: k+m shards of ceil(size/k) bytes (+ 8-byte frame checksums).
    need = sum((K + M) * (-(-len(b) // K) + 8) for b in sharded)
    margin_per_shard = 512  # header + back-reference

    def collected():
        gc = admin(cluster, "gc")
        used, files = shard_bytes(cluster)
        return gc["queue_length"] == 0 and files == len(sharded) * (K + M) and (gc, used)

    gc, used = wait_until("GC to reclaim overwritten, deleted and aborted data", collected, cluster)
    print(f"\n[gc] live shard bytes needed {need}, on disk {used}, collected {gc['bytes_collected']} "
          f"in {gc['groups_collected']} groups")
    assert need <= used <= need + margin_per_shard * len(sharded) * (K + M)
    keys = sorted(live)
    for key in rng.sample(keys, 50):
        assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == live[key]
    # Emptying the bucket and deleting it leaves no shard at all.
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: s3.delete_object(Bucket=BUCKET, Key=k), keys))
    s3.delete_bucket(Bucket=BUCKET)
    wait_until("every shard to be collected", lambda: shard_bytes(cluster)[1] == 0, cluster)


def test_gateway_killed_mid_put_leaves_nothing_behind(make_cluster):
    cluster = make_cluster()
    s3 = cluster.client()
    s3.put_object(Bucket=BUCKET, Key="survivor", Body=support.data(300 * KIB, seed=9))
    size = 256 * MIB
    chunk = support.data(1 * MIB, seed=5)
    sent = threading.Event()

    def body():
        for i in range(size // len(chunk)):
            if i == 24:
                sent.set()
            yield chunk
            time.sleep(0.01)

    def upload():
        try:
            url = s3.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": "big"},
                                            ExpiresIn=600)
            import urllib3
            urllib3.PoolManager().request("PUT", url, body=body(), headers={"Content-Length": str(size)},
                                          timeout=urllib3.Timeout(connect=5, read=60), retries=False)
        except Exception:  # the gateway dies under it: any transport error is expected
            pass

    thread = threading.Thread(target=upload, daemon=True)
    thread.start()
    assert sent.wait(60), "the upload did not get going"
    time.sleep(0.5)
    cluster.gateway.send_signal(signal.SIGKILL)
    cluster.gateway.wait(timeout=10)
    thread.join(timeout=30)
    cluster.start_gateway()
    cluster.wait_ready()

    def cleaned():
        gc = admin(cluster, "gc")
        files = [p for n in cluster.nodes for p in n.shard_files()]
        tmp = [p for n in cluster.nodes for p in (n.data_dir / "tmp").glob("*")]
        return gc["stale_intents_collected"] >= 1 and gc["queue_length"] == 0 and len(files) == K + M \
            and not tmp and gc

    gc = wait_until("the abandoned write to be collected", cleaned, cluster)
    print(f"\n[gc] after kill -9 mid-PUT: {gc}")
    assert s3.get_object(Bucket=BUCKET, Key="survivor")["Body"].read() == support.data(300 * KIB, seed=9)
    with pytest.raises(Exception):
        s3.head_object(Bucket=BUCKET, Key="big")
