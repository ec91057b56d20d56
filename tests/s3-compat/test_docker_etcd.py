"""The Docker deployment on etcd (docker/compose-etcd.yaml: 3 etcd members, 6 storage nodes, 2
gateways sharing the catalog), built and driven through `STRATA_DOCKER_CATALOG=etcd docker/cluster.sh`.

Both gateways serve the same buckets and objects; exactly one is the leader; with one etcd
member killed (`compose kill`) both keep serving reads and writes; with the first gateway's
container killed the second keeps serving everything acknowledged, and the first comes back.
The project is always torn down (`cluster.sh down`: containers, network, volumes).

Skipped only when `docker info` fails (as test_docker.py); a strata build without the etcd
catalog (`strata gateway --catalog`) FAILS here with that reason.
"""

from __future__ import annotations

import json
import os
import time

import boto3
import pytest
from botocore.config import Config

import multi_gateway_support
import support
from support import KIB, MIB
from test_docker import UP_TIMEOUT, DockerCluster, docker_usable

pytestmark = [
    pytest.mark.strata_only,
    pytest.mark.skipif(not docker_usable(), reason="docker is not usable here (`docker info` failed)"),
    pytest.mark.timeout(UP_TIMEOUT + 600),
]


class DockerEtcdCluster(DockerCluster):
    def __init__(self, project: str, ports: tuple[int, int], strata_bin: str):
        super().__init__(project, ports[0], strata_bin)
        self.env.update(STRATA_DOCKER_CATALOG="etcd", STRATA_DOCKER_PORT1=str(ports[1]))
        self.endpoints = [f"http://127.0.0.1:{p}" for p in ports]

    def identity(self, g: int) -> dict:
        resp = support.raw_request(self.endpoints[g], "GET", "/_strata/admin/cluster", signed=True, timeout=10)
        assert resp.status == 200, f"admin status of gateway{g}: {resp.status} {resp.body[:300]!r}"
        return json.loads(resp.body).get("gateway") or {}


def s3_client(endpoint: str):
    session = boto3.session.Session(aws_access_key_id=support.ACCESS_KEY, aws_secret_access_key=support.SECRET_KEY,
                                    region_name=support.REGION)
    config = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=60)
    return session.client("s3", endpoint_url=endpoint, config=config)


@pytest.fixture(scope="module")
def etcd_cluster(strata_bin):
    problem = multi_gateway_support.gateway_supports_etcd(strata_bin)
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    dc = DockerEtcdCluster(f"strata-etcd-test-{os.getpid()}", (support.free_port(), support.free_port()), strata_bin)
    try:
        started = time.monotonic()
        dc.script("up", timeout=UP_TIMEOUT)
        print(f"\ndocker etcd cluster {dc.project} ready on {dc.endpoints} in {time.monotonic() - started:.1f}s")
        yield dc
    finally:
        dc.script("down", timeout=300, check=False)
        label = f"label=com.docker.compose.project={dc.project}"
        leftovers = [
            *support.run(["docker", "ps", "-aq", "--filter", label], timeout=30, check=False).stdout.split(),
            *support.run(["docker", "volume", "ls", "-q", "--filter", label], timeout=30, check=False).stdout.split(),
        ]
        assert not leftovers, f"left behind by {dc.project}: {leftovers}"


def wait_for(what: str, fn, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - retried until the deadline, then reported
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"{what} within {timeout}s: {last!r}")


def test_docker_two_gateways_one_catalog_survive_faults(etcd_cluster):
    dc = etcd_cluster
    s3s = [s3_client(e) for e in dc.endpoints]
    ids = [dc.identity(g) for g in range(2)]
    assert ids[0].get("id") != ids[1].get("id"), ids
    assert sorted(bool(i.get("leader")) for i in ids) == [False, True], f"not exactly one leader: {ids}"

    s3s[0].create_bucket(Bucket="docker-etcd")
    objects = {"inline": support.data(KIB, seed=1), "striped": support.data(3 * MIB + 1, seed=2)}
    for key, body in objects.items():
        s3s[0].put_object(Bucket="docker-etcd", Key=key, Body=body)
    for key, body in objects.items():
        assert s3s[1].get_object(Bucket="docker-etcd", Key=key)["Body"].read() == body

    # One etcd member killed: quorum holds, both gateways keep writing and reading.
    dc.compose("kill", "etcd0")
    try:
        for g, s3 in enumerate(s3s):
            body = support.data(MIB + g, seed=10 + g)
            wait_for(f"PUT via gateway{g} with etcd0 killed",
                     lambda s3=s3, g=g, body=body: s3.put_object(Bucket="docker-etcd", Key=f"etcd-down/{g}", Body=body))
            objects[f"etcd-down/{g}"] = body
        for s3 in s3s:
            for key, body in objects.items():
                assert s3.get_object(Bucket="docker-etcd", Key=key)["Body"].read() == body
    finally:
        dc.compose("start", "etcd0")

    # The first gateway's container killed: the second serves everything acknowledged.
    dc.compose("kill", "gateway0")
    try:
        body = support.data(2 * MIB, seed=20)
        s3s[1].put_object(Bucket="docker-etcd", Key="gateway0-down", Body=body)
        objects["gateway0-down"] = body
        for key, body in objects.items():
            assert s3s[1].get_object(Bucket="docker-etcd", Key=key)["Body"].read() == body

        def gateway1_leads():
            assert dc.identity(1).get("leader") is True, "gateway1 is not the leader yet"

        wait_for("gateway1 taking the lead", gateway1_leads)
    finally:
        dc.compose("start", "gateway0")
    wait_for("gateway0 back", lambda: s3s[0].head_bucket(Bucket="docker-etcd"))
    for key, body in objects.items():
        assert s3s[0].get_object(Bucket="docker-etcd", Key=key)["Body"].read() == body
