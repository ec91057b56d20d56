"""The Docker deployment (docker/compose.yaml: one gateway + six storage nodes), built and driven.

Brings the compose cluster up with `docker/cluster.sh up` (local base image, host-built binary,
no registry) under its own compose project and port, drives it with boto3 and aws-cli, then
injects container faults: `compose stop` of one node and `docker network disconnect` of another.
With one node gone reads stay byte-exact and writes still reach the 5-of-6 write quorum; the
node comes back and the gateway's admin status shows it up again, and it serves its shards
(an object written before the fault is read with two *other* nodes stopped). The cluster is
always torn down (`cluster.sh down`: containers, network, volumes).

Skipped only when `docker info` fails. Every wait is bounded; the first run may spend several
minutes in debootstrap (cached afterwards under ~/.cache/strata/).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

import support
from support import KIB, MIB

REPO = Path(__file__).resolve().parents[2]
CLUSTER_SH = REPO / "docker" / "cluster.sh"
NODES = 6
# Bounds: `up` may include the first debootstrap; everything else is seconds.
UP_TIMEOUT = 1500
COMPOSE_TIMEOUT = 120
STATE_TIMEOUT = 45.0


def docker_usable() -> bool:
    try:
        return subprocess.run(["docker", "info"], check=False, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


pytestmark = [
    pytest.mark.strata_only,
    pytest.mark.skipif(not docker_usable(), reason="docker is not usable here (`docker info` failed)"),
    # The whole module, the first debootstrap included, must finish; cached runs take ~2-4 min.
    pytest.mark.timeout(UP_TIMEOUT + 600),
]


class DockerCluster:
    """A compose project of docker/compose.yaml, controlled through docker/cluster.sh."""

    def __init__(self, project: str, port: int, strata_bin: str):
        self.project = project
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"
        self.env = dict(os.environ)
        self.env.update(
            COMPOSE_PROJECT_NAME=project,
            STRATA_DOCKER_PORT=str(port),
            STRATA_BIN=strata_bin,
            STRATA_CLUSTER_SECRET=f"docker-test-secret-{os.getpid()}-{time.time_ns()}",
            STRATA_ACCESS_KEY=support.ACCESS_KEY,
            STRATA_SECRET_KEY=support.SECRET_KEY,
            STRATA_DOCKER_WAIT=os.environ.get("STRATA_DOCKER_WAIT", "120"),
        )

    def script(self, *args: str, timeout: float = COMPOSE_TIMEOUT, check: bool = True):
        return support.run([str(CLUSTER_SH), *args], env=self.env, timeout=timeout, check=check)

    def compose(self, *args: str, timeout: float = COMPOSE_TIMEOUT, check: bool = True):
        return self.script("compose", *args, timeout=timeout, check=check)

    def container(self, service: str) -> str:
        out = self.compose("ps", "-q", service).stdout.decode().split()
        assert len(out) == 1, f"expected one container for {service}, got {out}"
        return out[0]

    def network_of(self, container: str) -> str:
        out = support.run(["docker", "inspect", "-f", "{{json .NetworkSettings.Networks}}", container],
                          timeout=30).stdout
        networks = list(json.loads(out))
        assert len(networks) == 1, f"{container} is on {networks}, expected exactly the cluster network"
        return networks[0]

    def status(self) -> dict:
        resp = support.raw_request(self.endpoint, "GET", "/_strata/admin/cluster", signed=True, timeout=10)
        assert resp.status == 200, f"admin status: {resp.status} {resp.body[:500]!r}"
        return json.loads(resp.body)

    def node_states(self) -> dict[int, str]:
        return {n["id"]: n["state"] for n in self.status()["nodes"]}

    def wait_states(self, want: dict[int, str], timeout: float = STATE_TIMEOUT) -> dict[int, str]:
        """Polls the admin status until every node in `want` is in the wanted state."""
        deadline = time.monotonic() + timeout
        states: dict[int, str] = {}
        while time.monotonic() < deadline:
            try:
                states = self.node_states()
            except (AssertionError, OSError, ValueError):
                states = {}
            if states and all(states.get(i) == s for i, s in want.items()):
                return states
            time.sleep(0.25)
        raise AssertionError(f"node states never became {want} within {timeout}s; last {states}\n"
                             f"{self.logs()}")

    def all_up(self) -> dict[int, str]:
        return self.wait_states({i: "up" for i in range(NODES)})

    def logs(self) -> str:
        proc = self.compose("logs", "--no-color", "--tail", "15", check=False, timeout=60)
        return support.tail(proc.stdout + proc.stderr, 6000)


@pytest.fixture(scope="module")
def cluster(strata_bin):
    dc = DockerCluster(f"strata-test-{os.getpid()}", support.free_port(), strata_bin)
    try:
        started = time.monotonic()
        dc.script("up", timeout=UP_TIMEOUT)
        print(f"\ndocker cluster {dc.project} ready on {dc.endpoint} in {time.monotonic() - started:.1f}s")
        dc.all_up()
        yield dc
    finally:
        dc.script("down", timeout=300, check=False)
        label = f"label=com.docker.compose.project={dc.project}"
        leftovers = [
            *support.run(["docker", "ps", "-aq", "--filter", label], timeout=30, check=False).stdout.split(),
            *support.run(["docker", "volume", "ls", "-q", "--filter", label], timeout=30, check=False).stdout.split(),
            *support.run(["docker", "network", "ls", "-q", "--filter", label], timeout=30, check=False).stdout.split(),
        ]
        assert not leftovers, f"left behind by {dc.project}: {leftovers}"


@pytest.fixture(scope="module")
def dcs3(cluster):
    session = boto3.session.Session(aws_access_key_id=support.ACCESS_KEY, aws_secret_access_key=support.SECRET_KEY,
                                    region_name=support.REGION)
    return session.client("s3", endpoint_url=cluster.endpoint)


@pytest.fixture(scope="module")
def seeded(cluster, dcs3):
    """A bucket with objects written while all six nodes were up (inline, striped, multipart)."""
    name = support.bucket_name("docker-seeded")
    dcs3.create_bucket(Bucket=name)
    objects = {
        "inline": support.data(1 * KIB, seed=1),
        "striped": support.data(3 * MIB + 17, seed=2),
        "multipart": support.data(20 * MIB, seed=3),
    }
    for key, body in objects.items():
        if key == "multipart":
            upload_multipart(dcs3, name, key, body)
        else:
            dcs3.put_object(Bucket=name, Key=key, Body=body)
    return name, objects


def upload_multipart(s3, bucket: str, key: str, body: bytes, part_size: int = 8 * MIB) -> None:
    parts = support.split_parts(body, part_size)
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)
    done = []
    for number, part in enumerate(parts, start=1):
        resp = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=number, Body=part)
        done.append({"PartNumber": number, "ETag": resp["ETag"]})
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": done})
    assert s3.head_object(Bucket=bucket, Key=key)["ETag"] == support.multipart_etag(parts)


def assert_exact(s3, bucket: str, objects: dict[str, bytes]) -> None:
    for key, body in objects.items():
        got = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert len(got) == len(body), f"{key}: {len(got)} bytes, want {len(body)}"
        assert got == body, f"{key}: bytes differ"


def aws_cli(cluster, client_env, *args, timeout=support.SUBPROCESS_TIMEOUT):
    cmd = [support.tool("aws"), "--endpoint-url", cluster.endpoint, *map(str, args)]
    return support.run(cmd, env=client_env, timeout=timeout)


def test_docker_boto3_and_awscli(cluster, dcs3, seeded, client_env, work):
    states = cluster.status()
    assert (states["data_shards"], states["parity_shards"], states["write_quorum"]) == (4, 2, 5)
    assert states["nodes_up"] == NODES
    assert sorted(n["address"] for n in states["nodes"]) == [f"node{i}:7000" for i in range(NODES)]

    bucket, objects = seeded
    assert_exact(dcs3, bucket, objects)
    listed = dcs3.list_objects_v2(Bucket=bucket)
    assert sorted((o["Key"], o["Size"]) for o in listed["Contents"]) == sorted(
        (k, len(v)) for k, v in objects.items())

    # boto3's managed transfer: 20 MiB in 5 MiB parts, uploaded concurrently.
    body = support.data(20 * MIB, seed=20)
    src = work / "boto3.bin"
    src.write_bytes(body)
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB, max_concurrency=4)
    dcs3.upload_file(str(src), bucket, "boto3/20mib", Config=config)
    head = dcs3.head_object(Bucket=bucket, Key="boto3/20mib")
    assert head["ContentLength"] == len(body)
    assert head["ETag"] == support.multipart_etag(support.split_parts(body, 5 * MIB))
    dst = work / "boto3.out"
    dcs3.download_file(bucket, "boto3/20mib", str(dst), Config=config)
    assert support.file_sha256(dst) == support.file_sha256(src)
    ranged = dcs3.get_object(Bucket=bucket, Key="boto3/20mib", Range="bytes=7340000-9437300")["Body"].read()
    assert ranged == body[7340000:9437301]

    # aws-cli: 20 MiB through its 8 MiB multipart threshold, both directions, then ls.
    cli_src = work / "cli.bin"
    cli_body = support.write_file(cli_src, 20 * MIB, seed=21)
    aws_cli(cluster, client_env, "s3", "cp", cli_src, f"s3://{bucket}/cli/20mib")
    head = dcs3.head_object(Bucket=bucket, Key="cli/20mib")
    assert head["ETag"] == support.multipart_etag(support.split_parts(cli_body, 8 * MIB))
    cli_dst = work / "cli.out"
    aws_cli(cluster, client_env, "s3", "cp", f"s3://{bucket}/cli/20mib", cli_dst)
    assert support.file_sha256(cli_dst) == support.file_sha256(cli_src)
    lines = aws_cli(cluster, client_env, "s3", "ls", "--recursive", f"s3://{bucket}/").stdout.decode().splitlines()
    assert {line.split()[-1] for line in lines} >= {"boto3/20mib", "cli/20mib", *objects}


def test_docker_node_stopped_then_rejoins(cluster, dcs3, seeded):
    bucket, objects = seeded
    cluster.all_up()
    try:
        cluster.compose("stop", "-t", "20", "node3")
        cluster.wait_states({3: "down", 0: "up", 1: "up", 2: "up", 4: "up", 5: "up"})
        assert cluster.status()["nodes_up"] == NODES - 1
        # The gateway stays ready: 5 nodes still meet the write quorum.
        assert support.http_status(cluster.endpoint + "/_strata/health/ready") == 200
        assert_exact(dcs3, bucket, objects)
        written = {"while-down/striped": support.data(2 * MIB + 5, seed=30),
                   "while-down/multipart": support.data(20 * MIB, seed=31)}
        dcs3.put_object(Bucket=bucket, Key="while-down/striped", Body=written["while-down/striped"])
        upload_multipart(dcs3, bucket, "while-down/multipart", written["while-down/multipart"])
        assert_exact(dcs3, bucket, written)
    finally:
        cluster.compose("start", "node3")
    states = cluster.all_up()
    assert states[3] == "up"
    assert_exact(dcs3, bucket, written)

    # The rejoined node serves its shards again: with two *other* nodes stopped, the objects
    # written before the fault need node3's shard (4 of the 6 remain).
    try:
        cluster.compose("stop", "-t", "20", "node0", "node1")
        cluster.wait_states({0: "down", 1: "down", 3: "up"})
        assert_exact(dcs3, bucket, objects)
        # Two nodes down: below the write quorum, a striped PUT must fail with a 503.
        with pytest.raises(ClientError) as failed:
            dcs3.put_object(Bucket=bucket, Key="no-quorum", Body=support.data(MIB, seed=40))
        assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503, failed.value.response
    finally:
        cluster.compose("start", "node0", "node1")
    cluster.all_up()


def test_docker_node_disconnected_then_reconnected(cluster, dcs3, seeded):
    bucket, objects = seeded
    cluster.all_up()
    node = cluster.container("node5")
    network = cluster.network_of(node)
    support.run(["docker", "network", "disconnect", network, node], timeout=60)
    try:
        cluster.wait_states({5: "down", 0: "up", 1: "up", 2: "up", 3: "up", 4: "up"})
        started = time.monotonic()
        assert_exact(dcs3, bucket, objects)
        elapsed = time.monotonic() - started
        assert elapsed < 60, f"reads with a partitioned node took {elapsed:.1f}s"
        written = {"partitioned/striped": support.data(3 * MIB, seed=50),
                   "partitioned/multipart": support.data(20 * MIB, seed=51)}
        dcs3.put_object(Bucket=bucket, Key="partitioned/striped", Body=written["partitioned/striped"])
        upload_multipart(dcs3, bucket, "partitioned/multipart", written["partitioned/multipart"])
        assert_exact(dcs3, bucket, written)
    finally:
        # Back on the network under its service name, as compose attached it.
        support.run(["docker", "network", "connect", "--alias", "node5", network, node], timeout=60, check=False)
    states = cluster.all_up()
    assert states[5] == "up"
    assert_exact(dcs3, bucket, {**objects, **written})
