"""Scrubbing, `strata admin` and `/_strata/metrics` (strata only), with real processes.

- A 6-node cluster whose nodes scrub fast: bytes flipped in shard files on disk are found by
  the nodes' scrubbers, the files move to `quarantine/` (not deleted), the gateway collects the
  reports (admin scrub status, metrics counters) and every object still reads back exact.
- The embedded server scrubs its shard directories the same way; `strata admin … status`
  works against it with `--data DIR` (its credentials.toml) and fails clearly with a wrong key
  or an unreachable endpoint.
- `/_strata/metrics` parses strictly as OpenMetrics text (the Prometheus project's Python
  parser) and its request and byte counters move with traffic; it refuses unsigned scrapes.

Layout contract used here: shard files are `DIR/shards/<2 hex>/<32 hex>.<index>`, their last
byte lies inside the last frame's shard bytes; quarantined files go to `DIR/quarantine/`.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import boto3
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

import support
from cluster_support import Cluster, clean_env
from support import KIB, MIB

pytestmark = pytest.mark.strata_only

SIZES = [200 * KIB, MIB + 1, 2 * MIB + 512 * KIB + 7]
FAST_NODE_SCRUB = ["--scrub-bytes-per-sec", "0", "--scrub-file-pause-ms", "0", "--scrub-interval-secs", "1"]
WAIT = 45.0
METRICS_TOKEN = "scrape-token-0123456789abcdef"


def flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x5A
    path.write_bytes(bytes(data))


def shard_files(data_dir: Path) -> list[Path]:
    root = data_dir / "shards"
    return sorted(p for p in root.glob("*/*") if p.is_file()) if root.is_dir() else []


def quarantined(data_dir: Path) -> list[Path]:
    root = data_dir / "quarantine"
    return sorted(root.iterdir()) if root.is_dir() else []


def admin(binary: str, *args: str, env: dict | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([binary, "admin", *args], capture_output=True, text=True, timeout=timeout,
                          env=env if env is not None else clean_env())


def signed_get(endpoint: str, path: str, access: str, secret: str) -> support.RawResponse:
    return support.raw_request(endpoint, "GET", path, signed=True, access_key=access, secret_key=secret, timeout=10)


def wait_scrub(endpoint: str, access: str, secret: str, want_handed: int, logs) -> dict:
    """Polls /_strata/admin/scrub until the gateway handed `want_handed` shards to repair."""
    deadline = time.monotonic() + WAIT
    last = None
    while time.monotonic() < deadline:
        resp = signed_get(endpoint, "/_strata/admin/scrub", access, secret)
        assert resp.status == 200, resp.body[:300]
        last = json.loads(resp.body)
        if last["shards_handed_to_repair"] >= want_handed and last["pending_reports"] == 0:
            return last
        time.sleep(0.2)
    raise AssertionError(f"scrub findings not collected within {WAIT}s; last {json.dumps(last)[:2000]}\n{logs()}")


def metric_families(text: str) -> dict:
    """Strict OpenMetrics parse; returns {family name: family}."""
    assert text.endswith("# EOF\n"), text[-200:]
    return {family.name: family for family in text_string_to_metric_families(text)}


def sample_sum(families: dict, family: str, suffix: str = "", **match) -> float:
    found = families.get(family)
    if found is None:
        return 0.0
    total = 0.0
    for sample in found.samples:
        if sample.name == family + suffix and all(sample.labels.get(k) == v for k, v in match.items()):
            total += sample.value
    return total


def scrape(endpoint: str, access: str, secret: str) -> dict:
    resp = signed_get(endpoint, "/_strata/metrics", access, secret)
    assert resp.status == 200, resp.body[:300]
    assert resp.headers["content-type"].startswith("application/openmetrics-text"), resp.headers
    return metric_families(resp.body.decode())


def put_objects(s3, bucket: str) -> dict[str, bytes]:
    s3.create_bucket(Bucket=bucket)
    objects = {}
    for i, size in enumerate(SIZES):
        body = support.data(size, seed=i + 40)
        s3.put_object(Bucket=bucket, Key=f"obj-{i}", Body=body)
        objects[f"obj-{i}"] = body
    return objects


def assert_read_back(s3, bucket: str, objects: dict[str, bytes]) -> None:
    for key, body in objects.items():
        got = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert got == body, f"{key}: {len(got)} bytes back, {len(body)} expected"


def damage(files: list[Path], count: int, seen_groups: set[str]) -> list[Path]:
    """Flips the last byte of `count` shard files, at most one per shard group overall."""
    chosen = []
    for path in files:
        group = path.name.split(".")[0]
        if group in seen_groups:
            continue
        seen_groups.add(group)
        flip_last_byte(path)
        chosen.append(path)
        if len(chosen) == count:
            break
    assert len(chosen) == count, f"only {len(chosen)} shard files to damage"
    return chosen


def test_cluster_nodes_scrub_quarantine_and_report_objects_read_back(strata_bin, scratch_root):
    with Cluster(strata_bin, scratch_root / "scrub-cluster", node_args=FAST_NODE_SCRUB,
                 gateway_extra={"scrub_poll_ms": 200}) as cluster:
        s3 = cluster.client()
        objects = put_objects(s3, "scrubbed")
        groups: set[str] = set()
        damaged = damage(shard_files(cluster.nodes[0].data_dir), 2, groups)
        damaged += damage(shard_files(cluster.nodes[3].data_dir), 1, groups)
        damaged_bytes = {path: path.read_bytes() for path in damaged}

        status = wait_scrub(cluster.endpoint, cluster.access_key, cluster.secret_key, 3, cluster.logs)
        assert status["corrupt_found_total"] >= 3
        assert status["stores"] == 6 and status["stores_reachable"] == 6
        per_node = {s["node"]: s for s in status["stores_detail"]}
        assert per_node[0]["status"]["total_corrupt_found"] == 2
        assert per_node[3]["status"]["total_corrupt_found"] == 1
        assert per_node[1]["status"]["total_files_checked"] > 0
        assert all(s["status"]["passes_completed"] >= 1 for s in status["stores_detail"])

        # Evidence kept: the damaged files moved to quarantine/ with their bytes as they were.
        # Repair may already have rebuilt a shard at its old path (its node is up): then that
        # file is a new one, never the damaged bytes.
        for path in damaged:
            assert not path.exists() or path.read_bytes() != damaged_bytes[path], f"{path} still in shards/"
        moved = quarantined(cluster.nodes[0].data_dir) + quarantined(cluster.nodes[3].data_dir)
        assert sorted(p.name.rsplit(".", 1)[0] for p in moved) == sorted(p.name for p in damaged)
        by_name = {path.name: data for path, data in damaged_bytes.items()}
        for p in moved:
            assert p.read_bytes() == by_name[p.name.rsplit(".", 1)[0]], f"{p} is not the damaged file"

        assert_read_back(s3, "scrubbed", objects)

        families = scrape(cluster.endpoint, cluster.access_key, cluster.secret_key)
        assert sample_sum(families, "strata_scrub_corrupt_shards", "_total") >= 3
        assert sample_sum(families, "strata_scrub_shards_handed_to_repair", "_total") >= 3
        assert sample_sum(families, "strata_scrub_corrupt_shards", "_total", node="0") == 2
        assert sample_sum(families, "strata_node_up") == 6

        # strata admin against the cluster: keys from the environment, endpoint from a flag.
        env = clean_env({"AWS_ACCESS_KEY_ID": cluster.access_key, "AWS_SECRET_ACCESS_KEY": cluster.secret_key})
        table = admin(strata_bin, "scrub", "status", "--endpoint", cluster.endpoint, env=env)
        assert table.returncode == 0, table.stderr
        assert "6 of 6 stores answering, 3 corrupt shards found, 3 handed to repair" in table.stdout, table.stdout
        assert "CORRUPT" in table.stdout and "LAST PASS" in table.stdout, table.stdout
        as_json = admin(strata_bin, "cluster", "status", "--json", "--endpoint", cluster.endpoint, env=env)
        assert as_json.returncode == 0, as_json.stderr
        assert json.loads(as_json.stdout)["nodes_up"] == 6
        cluster_table = admin(strata_bin, "cluster", "status", "--endpoint", cluster.endpoint, env=env)
        assert cluster_table.returncode == 0 and "6 of 6 nodes up" in cluster_table.stdout, cluster_table.stdout

        wrong = admin(strata_bin, "scrub", "status", "--endpoint", cluster.endpoint, "--access-key",
                      cluster.access_key, "--secret-key", "not-the-secret-key-at-all", env=env)
        assert wrong.returncode == 1
        assert "refused the credentials" in wrong.stderr and "SignatureDoesNotMatch" in wrong.stderr, wrong.stderr


class ScrubbingServer(support.StrataServer):
    """An embedded server with a fast scrub, keys generated into DATA/credentials.toml."""

    def __init__(self, binary: str, root: Path):
        super().__init__(binary, root / "data", root / "strata.log", fsync=False)
        root.mkdir(parents=True, exist_ok=True)
        self.config_file = root / "strata.toml"
        self.config_file.write_text("scrub_bytes_per_sec = 0\nscrub_file_pause_ms = 0\n"
                                    "scrub_interval_secs = 1\nscrub_poll_ms = 200\n"
                                    f"metrics_bearer_token = \"{METRICS_TOKEN}\"\n")

    def command(self) -> list[str]:
        return super().command() + ["--config", str(self.config_file)]

    def environment(self) -> dict:
        return clean_env()

    def credentials(self) -> tuple[str, str]:
        text = (self.data_dir / "credentials.toml").read_text()
        values = dict(line.split(" = ", 1) for line in text.splitlines() if " = " in line)
        return json.loads(values["access_key"]), json.loads(values["secret_key"])


def test_embedded_server_scrubs_its_directories_and_admin_cli_uses_data_dir(strata_bin, scratch_root):
    server = ScrubbingServer(strata_bin, scratch_root / "scrub-embedded")
    server.start()
    try:
        access, secret = server.credentials()
        session = boto3.session.Session(aws_access_key_id=access, aws_secret_access_key=secret,
                                        region_name=support.REGION)
        s3 = session.client("s3", endpoint_url=server.endpoint)
        objects = put_objects(s3, "embedded")
        groups: set[str] = set()
        damaged = damage(shard_files(server.data_dir / "disk2"), 2, groups)

        status = wait_scrub(server.endpoint, access, secret, 2, server.log_tail)
        per_disk = {s["name"]: s for s in status["stores_detail"]}
        assert per_disk["disk2"]["status"]["total_corrupt_found"] == 2
        assert len(quarantined(server.data_dir / "disk2")) == 2
        assert all(not p.exists() for p in damaged)
        assert_read_back(s3, "embedded", objects)

        # Prometheus' bearer-token scrape works when a token is configured; another token not.
        scraped = support.raw_request(server.endpoint, "GET", "/_strata/metrics",
                                      headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert scraped.status == 200, scraped.body[:300]
        families = metric_families(scraped.body.decode())
        assert sample_sum(families, "strata_scrub_corrupt_shards", "_total", name="disk2") == 2
        assert sample_sum(families, "strata_scrub_passes", "_total") >= 6
        refused = support.raw_request(server.endpoint, "GET", "/_strata/metrics",
                                      headers={"Authorization": f"Bearer {METRICS_TOKEN}x"})
        assert refused.status == 403

        env = clean_env()
        ok = admin(strata_bin, "scrub", "status", "--data", str(server.data_dir), "--endpoint", server.endpoint,
                   env=env)
        assert ok.returncode == 0, ok.stderr
        assert "disk2" in ok.stdout, ok.stdout
        via_env = admin(strata_bin, "cluster", "status", "--json", "--data", str(server.data_dir),
                        env=clean_env({"STRATA_ENDPOINT": server.endpoint}))
        assert via_env.returncode == 0, via_env.stderr
        assert json.loads(via_env.stdout)["nodes_up"] == 6

        wrong = admin(strata_bin, "scrub", "status", "--endpoint", server.endpoint, env=clean_env(
            {"AWS_ACCESS_KEY_ID": "STRATANOSUCHKEY00000", "AWS_SECRET_ACCESS_KEY": "x" * 40}))
        assert wrong.returncode == 1
        assert "refused the credentials" in wrong.stderr and "InvalidAccessKeyId" in wrong.stderr, wrong.stderr
        missing = admin(strata_bin, "scrub", "status", "--endpoint", server.endpoint, env=clean_env())
        assert missing.returncode == 1 and "no credentials" in missing.stderr, missing.stderr
    finally:
        code = server.stop()
    assert code == 0, server.log_tail()

    gone = admin(strata_bin, "scrub", "status", "--data", str(server.data_dir), "--endpoint", server.endpoint,
                 "--timeout", "3", env=clean_env())
    assert gone.returncode == 1 and "cannot reach" in gone.stderr, gone.stderr


def test_metrics_parse_and_move_with_traffic(s3, bucket, endpoint):
    before = scrape(endpoint, support.ACCESS_KEY, support.SECRET_KEY)
    body = support.data(300 * KIB, seed=7)
    s3.put_object(Bucket=bucket, Key="metered", Body=body)
    assert s3.get_object(Bucket=bucket, Key="metered")["Body"].read() == body
    with pytest.raises(Exception):
        s3.get_object(Bucket=bucket, Key="no-such-key")
    after = scrape(endpoint, support.ACCESS_KEY, support.SECRET_KEY)

    def delta(family, suffix="", **labels):
        return sample_sum(after, family, suffix, **labels) - sample_sum(before, family, suffix, **labels)

    assert delta("strata_s3_requests", "_total", operation="PutObject", status="2xx") == 1
    assert delta("strata_s3_requests", "_total", operation="GetObject", status="2xx") == 1
    assert delta("strata_s3_requests", "_total", operation="GetObject", status="4xx") == 1
    assert delta("strata_s3_received_bytes", "_total") >= len(body)
    assert delta("strata_s3_sent_bytes", "_total") >= len(body)
    assert delta("strata_s3_request_duration_seconds", "_count", operation="PutObject") == 1
    assert after["strata_s3_request_duration_seconds"].type == "histogram"
    assert after["strata_node_up"].type == "gauge"
    assert after["strata_gc_queue_items"].type == "gauge"
    assert after["strata_node_errors"].type == "counter"

    # Not public by default: unsigned, wrongly signed and wrong bearer scrapes are refused.
    assert support.raw_request(endpoint, "GET", "/_strata/metrics").status == 403
    wrong = support.raw_request(endpoint, "GET", "/_strata/metrics", signed=True, secret_key="wrong" * 8)
    assert wrong.status == 403
    bearer = support.raw_request(endpoint, "GET", "/_strata/metrics",
                                 headers={"Authorization": "Bearer not-a-configured-token"})
    assert bearer.status == 403
