"""TLS between the gateway and its storage nodes, with a real cluster (6 `strata storage-node`
processes serving HTTPS + 1 `strata gateway`, 4+2) and a throw-away CA made by the openssl CLI.

- the gateway trusting the nodes' CA (`node_tls_ca`, nodes listed as https://127.0.0.1:port)
  writes and reads objects through them, bit-exact;
- a gateway trusting another CA refuses to talk to the nodes: every node is "down" and a PUT
  answers 503;
- a gateway with https:// nodes and no CA at all refuses to start, naming `node_tls_ca`.

Skipped when `$STRATA_BIN` has no `gateway`/`storage-node` subcommands.
"""

from __future__ import annotations

import subprocess

import pytest
from botocore.exceptions import ClientError

import support
import tls_support
from cluster_support import Cluster, START_TIMEOUT
from support import MIB

pytestmark = pytest.mark.strata_only

BUCKET = "tls-nodes"


def test_gateway_talks_tls_to_nodes_only_with_their_ca(cluster_bin, tmp_path, request):
    certs = tls_support.make_certificates(tmp_path / "pki", name="node")
    other = tls_support.make_certificates(tmp_path / "other-pki", name="other")
    cluster = Cluster(cluster_bin, tmp_path / "cluster", node_tls=(certs.ca, certs.cert, certs.key))
    failed_before = request.session.testsfailed
    try:
        cluster.start()
        s3 = cluster.client()
        s3.create_bucket(Bucket=BUCKET)
        objects = {f"o/{n}": support.data(MIB + n * 4099, seed=n) for n in range(3)}
        for key, body in objects.items():
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        for key, body in objects.items():
            assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == body, key
        assert sum(len(node.shard_files()) for node in cluster.nodes) >= 3 * 6

        # Same nodes, a gateway that trusts another CA: no node is reachable, PUT is refused.
        cluster.gateway.terminate()
        cluster.gateway.wait(timeout=10)
        cluster.gateway_extra["node_tls_ca"] = str(other.ca)
        cluster.write_config()
        cluster.start_gateway()
        cluster.wait_states({i: "down" for i in range(len(cluster.nodes))}, timeout=15)
        with pytest.raises(ClientError) as refused:
            cluster.client().put_object(Bucket=BUCKET, Key="never", Body=b"x" * 100_000)
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert "certificate" in cluster.gateway_log_tail().lower() or "tls" in cluster.gateway_log_tail().lower()

        # No CA at all: the gateway refuses to start and says why.
        cluster.gateway.terminate()
        cluster.gateway.wait(timeout=10)
        del cluster.gateway_extra["node_tls_ca"]
        cluster.write_config()
        started = subprocess.run([cluster_bin, "gateway", "--config", str(cluster.config_path)],
                                 capture_output=True, text=True, timeout=START_TIMEOUT,
                                 env=cluster.gateway_env())
        assert started.returncode != 0
        assert "node_tls_ca" in started.stderr, started.stderr
    finally:
        try:
            if request.session.testsfailed > failed_before:
                print(f"\n[cluster logs, {cluster.root}]\n{cluster.logs()}")
        finally:
            cluster.close()
    assert not cluster.leaked()
