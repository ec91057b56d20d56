"""HTTPS: the TLS listener, and the trailer mode boto3 and aws-cli switch to over https://.

Over an https:// endpoint botocore sends PutObject and UploadPart as aws-chunked with
`x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER` and the checksum in a trailer
(S3-CLIENTS.md §2a). These tests prove the server really saw that mode (its per-body debug
line), that every default-checksum upload and download is byte-exact, and that the listener
itself behaves: start-time validation of the certificate and key, a handshake timeout that
frees stalled sockets, HTTP/1.1 by ALPN, graceful drain of TLS connections, and HTTPS next to
plain HTTP with `tls_listen`.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import threading
import time

import pytest
from boto3.s3.transfer import TransferConfig

import support
import tls_support
from support import KIB, MIB

pytestmark = pytest.mark.strata_only

ALGORITHMS = ["CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"]


def new_bucket(client, hint: str) -> str:
    name = support.bucket_name(hint)
    client.create_bucket(Bucket=name)
    return name


def modes_of(server, request_ids: set[str]) -> list[dict]:
    return [m for m in server.body_modes() if m["id"] in request_ids]


def request_id(response) -> str:
    return response["ResponseMetadata"]["RequestId"]


@pytest.mark.parametrize("algorithm", [None] + ALGORITHMS)
def test_put_over_https_uses_unsigned_trailer(tls_server, tls_make_client, algorithm):
    """None = boto3's default (CRC32). The server must have decoded the trailer mode."""
    effective = algorithm or "CRC32"
    if effective in ("CRC32C", "CRC64NVME") and not support.has_crt():
        pytest.skip(f"{effective} needs awscrt")
    s3 = tls_make_client()
    bucket = new_bucket(s3, f"trailer-{effective}")
    ids = set()
    for size in (0, 1, 5 * KIB + 7, 1 * MIB + 1):
        body = support.data(size, seed=size)
        extra = {"ChecksumAlgorithm": algorithm} if algorithm else {}
        put = s3.put_object(Bucket=bucket, Key=f"k{size}", Body=body, **extra)
        ids.add(request_id(put))
        expected = support.checksum_b64(effective, body)
        assert put.get("Checksum" + effective) == expected
        got = s3.get_object(Bucket=bucket, Key=f"k{size}", ChecksumMode="ENABLED")
        assert got.get("Checksum" + effective) == expected
        assert got["Body"].read() == body  # botocore validates the checksum while reading
    seen = modes_of(tls_server, ids)
    assert len(seen) == len(ids), f"no body line for some PUTs: {seen}"
    for mode in seen:
        assert mode["payload"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER", mode
        assert mode["checksum"] == effective and mode["source"] == "trailer", mode


def test_upload_file_multipart_over_https(tls_server, tls_make_client, work):
    """s3transfer: Create + UploadPart (trailer mode, CRC32) + Complete, then ranged download."""
    s3 = tls_make_client()
    bucket = new_bucket(s3, "mp-https")
    src = work / "src.bin"
    body = support.write_file(src, 18 * MIB + 5, seed=18)
    config = TransferConfig(multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB)
    before = len(tls_server.body_modes())
    s3.upload_file(str(src), bucket, "big", Config=config)
    head = s3.head_object(Bucket=bucket, Key="big", ChecksumMode="ENABLED")
    parts = support.split_parts(body, 8 * MIB)
    assert head["ETag"] == support.multipart_etag(parts)
    assert head["ContentLength"] == len(body)
    value = head["ChecksumCRC32"]
    if value.endswith(f"-{len(parts)}"):
        assert value == support.composite_checksum_b64("CRC32", parts)
    else:
        assert value == support.checksum_b64("CRC32", body)
    dst = work / "dst.bin"
    s3.download_file(bucket, "big", str(dst), Config=config)
    assert dst.read_bytes() == body
    puts = [m for m in tls_server.body_modes()[before:] if m["method"] == "PUT"]
    assert len(puts) == len(parts), puts
    assert all(m["payload"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER" and m["checksum"] == "CRC32"
               and m["source"] == "trailer" for m in puts), "UploadPart over https must use the trailer mode"


def test_aws_cli_over_https(tls_server, tls_aws, tls_make_client, work):
    """aws-cli with --ca-bundle: single PUT and multipart, sync, download, all byte-exact."""
    s3 = tls_make_client()
    bucket = new_bucket(s3, "awscli-https")
    small = work / "small.txt"
    small_body = support.write_file(small, 3 * KIB + 1, seed=3)
    large = work / "large.bin"
    large_body = support.write_file(large, 9 * MIB + 17, seed=9)
    before = len(tls_server.body_modes())
    tls_aws("s3", "cp", small, f"s3://{bucket}/small.txt")
    tls_aws("s3", "cp", large, f"s3://{bucket}/large.bin")
    out = work / "out"
    tls_aws("s3", "sync", f"s3://{bucket}", out)
    assert (out / "small.txt").read_bytes() == small_body
    assert (out / "large.bin").read_bytes() == large_body
    listed = json.loads(tls_aws("s3api", "list-objects-v2", "--bucket", bucket, "--output", "json").stdout)
    assert sorted(o["Key"] for o in listed["Contents"]) == ["large.bin", "small.txt"]
    new = [m for m in tls_server.body_modes()[before:] if m["method"] == "PUT"]
    assert len(new) >= 3, new  # 1 PutObject + 2 UploadParts at least
    assert all(m["payload"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER" and m["source"] == "trailer" for m in new), new


def test_http_client_against_https_port_gets_nothing(tls_server):
    """A plain-HTTP request to the TLS port is not served (no bytes of an S3 answer)."""
    with socket.create_connection(("127.0.0.1", tls_server.tls_port), timeout=5) as sock:
        sock.sendall(b"GET /_strata/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            data = sock.recv(4096)
        except (ConnectionResetError, socket.timeout):
            data = b""
    assert b"HTTP/1.1 200" not in data and b"ok" not in data


def test_alpn_is_http11(tls_server):
    context = tls_support.client_context(tls_server.certs.ca, alpn=["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", tls_server.tls_port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.selected_alpn_protocol() == "http/1.1"
            assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_untrusted_certificate_is_refused_by_clients(tls_server, scratch_root):
    """The checks the clients do are real: another CA does not verify our certificate."""
    other = tls_support.make_certificates(scratch_root / "other-ca", name="other")
    assert tls_support.https_status(tls_server.endpoint, other.ca) is None
    assert tls_support.https_status(tls_server.endpoint, tls_server.certs.ca) == 200


def spawn(strata_bin, scratch_root, name, certs, **kwargs) -> tls_support.TlsStrataServer:
    return tls_support.TlsStrataServer(strata_bin, scratch_root / f"{name}-data", scratch_root / f"{name}.log",
                                       certs, fsync=False, **kwargs)


def test_bad_certificate_setup_fails_at_start(strata_bin, scratch_root, tls_certificates):
    """Missing file, not PEM, key of another certificate: a clear error naming the field."""
    other = tls_support.make_certificates(scratch_root / "mismatch", name="mismatch")
    garbage = scratch_root / "garbage.pem"
    garbage.write_text("this is not a certificate\n")
    cases = [
        (tls_certificates.cert.with_name("missing.pem"), tls_certificates.key, "tls_cert", "missing.pem"),
        (tls_certificates.cert, scratch_root / "missing.key", "tls_key", "missing.key"),
        (garbage, tls_certificates.key, "tls_cert", "no CERTIFICATE"),
        (tls_certificates.cert, garbage, "tls_key", "private key"),
        (tls_certificates.cert, other.key, "tls_key", "not the private key"),
    ]
    for cert, key, field, words in cases:
        cmd = [strata_bin, "server", "--listen", f"127.0.0.1:{support.free_port()}", "--data",
               str(scratch_root / "never-started"), "--tls-cert", str(cert), "--tls-key", str(key)]
        proc = subprocess.run(cmd, capture_output=True, timeout=60,
                              env={**os.environ, "STRATA_LOG": "error"})
        err = proc.stderr.decode(errors="replace")
        assert proc.returncode != 0, f"{cert.name}/{key.name} must be refused"
        assert field in err and words in err, err
        assert "panicked" not in err


def test_stalled_handshake_is_dropped_and_does_not_block_others(strata_bin, scratch_root, tls_certificates):
    server = spawn(strata_bin, scratch_root, "handshake", tls_certificates,
                   config_toml="tls_handshake_timeout_ms = 500\n")
    server.start()
    try:
        stalled = [socket.create_connection(("127.0.0.1", server.tls_port), timeout=10) for _ in range(20)]
        # Others are served while the stalled sockets sit there.
        assert tls_support.https_status(server.endpoint, tls_certificates.ca) == 200
        started = time.monotonic()
        for sock in stalled:
            with sock:
                try:
                    assert sock.recv(1) == b"", "the server must close a connection without a handshake"
                except ConnectionResetError:
                    pass
        assert time.monotonic() - started < 8
    finally:
        assert server.stop() == 0, server.log_tail()


def test_sigterm_drains_an_upload_in_flight_over_tls(strata_bin, scratch_root, tls_certificates):
    """SIGTERM mid-upload: the upload still completes with 200, the server exits 0, and after a
    restart the object reads back exactly (no acknowledged byte lost)."""
    server = spawn(strata_bin, scratch_root, "drain", tls_certificates)
    server.start()
    s3 = support_client(server)
    bucket = new_bucket(s3, "drain")
    body = support.data(2 * MIB + 3, seed=77)
    half = len(body) // 2
    # A raw, presigned PUT so the test controls when each half of the body is sent.
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=300)
    path = url.split("127.0.0.1:", 1)[1].split("/", 1)[1]
    context = tls_support.client_context(tls_certificates.ca)
    result = {}
    with socket.create_connection(("127.0.0.1", server.tls_port), timeout=30) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(f"PUT /{path} HTTP/1.1\r\nHost: 127.0.0.1:{server.tls_port}\r\n"
                        f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:half])
            time.sleep(0.3)
            server.proc.send_signal(15)
            time.sleep(0.5)
            assert server.proc.poll() is None, "the server must wait for the upload in flight"

            def finish():
                tls.sendall(body[half:])
                result["answer"] = tls.recv(65536)

            sender = threading.Thread(target=finish)
            sender.start()
            sender.join(30)
            assert not sender.is_alive()
    assert result["answer"].startswith(b"HTTP/1.1 200"), result["answer"][:300]
    assert server.proc.wait(timeout=30) == 0, server.log_tail()
    server.proc = None
    server.start()
    try:
        assert support_client(server).get_object(Bucket=bucket, Key="k")["Body"].read() == body
    finally:
        assert server.stop() == 0


def support_client(server):
    import boto3

    session = boto3.session.Session(aws_access_key_id=support.ACCESS_KEY,
                                    aws_secret_access_key=support.SECRET_KEY, region_name=support.REGION)
    return session.client("s3", endpoint_url=server.endpoint, verify=str(server.certs.ca))


def test_tls_listen_serves_https_next_to_http(strata_bin, scratch_root, tls_certificates, make_client):
    """`tls_listen`: HTTPS on a second port, `listen` stays plain HTTP; one store behind both."""
    server = spawn(strata_bin, scratch_root, "both", tls_certificates, plain_too=True)
    server.start()
    try:
        assert support.http_status(server.plain_endpoint + "/_strata/health/ready") == 200
        https = support_client(server)
        bucket = new_bucket(https, "both")
        body = support.data(300 * KIB, seed=5)
        https.put_object(Bucket=bucket, Key="via-https", Body=body)
        import boto3

        plain = boto3.session.Session(aws_access_key_id=support.ACCESS_KEY,
                                      aws_secret_access_key=support.SECRET_KEY,
                                      region_name=support.REGION).client("s3", endpoint_url=server.plain_endpoint)
        assert plain.get_object(Bucket=bucket, Key="via-https")["Body"].read() == body
        put = plain.put_object(Bucket=bucket, Key="via-http", Body=body)
        assert https.get_object(Bucket=bucket, Key="via-http")["Body"].read() == body
        modes = {m["id"]: m for m in server.body_modes()}
        assert modes[request_id(put)]["payload"] == "sha256", "plain HTTP: a signed payload hash"
        assert modes[request_id(put)]["source"] == "header"
    finally:
        assert server.stop() == 0, server.log_tail()


def test_cluster_gateway_serves_https(strata_bin, scratch_root, tls_certificates):
    """`strata gateway` (over 6 storage-node processes) takes the same TLS settings."""
    import boto3

    import cluster_support

    tls_port = support.free_port()
    extra = {"tls_cert": str(tls_certificates.cert), "tls_key": str(tls_certificates.key),
             "tls_listen": f"127.0.0.1:{tls_port}"}
    with cluster_support.Cluster(strata_bin, scratch_root / "tls-cluster", gateway_extra=extra):
        https = boto3.session.Session(aws_access_key_id=support.ACCESS_KEY,
                                      aws_secret_access_key=support.SECRET_KEY, region_name=support.REGION)
        s3 = https.client("s3", endpoint_url=f"https://127.0.0.1:{tls_port}", verify=str(tls_certificates.ca))
        bucket = new_bucket(s3, "cluster-https")
        body = support.data(3 * MIB + 1, seed=31)
        put = s3.put_object(Bucket=bucket, Key="k", Body=body)
        assert put["ChecksumCRC32"] == support.checksum_b64("CRC32", body)
        assert s3.get_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")["Body"].read() == body
