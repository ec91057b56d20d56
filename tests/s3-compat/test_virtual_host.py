"""Virtual-hosted-style addressing (`bucket.s3.localhost:PORT`) under a configured domain:
boto3 with `addressing_style="virtual"` (SigV4 headers and presigned URLs, SigV2 presigned
URLs) and s3cmd with its default vhost `host_bucket` (SigV4 and SigV2), while path style keeps
working on the same server.

`*.s3.localhost` does not resolve to 127.0.0.1 through glibc here, so the clients keep the
virtual Host header and URL but connect to 127.0.0.1: boto3 through a patched
`socket.getaddrinfo` in this process, s3cmd through its `proxy_host` setting (it then sends
absolute-form request lines, which the server must accept too).
"""

from __future__ import annotations

import http.client
import socket
import urllib.parse

import pytest
from botocore.config import Config

import support

pytestmark = pytest.mark.strata_only

DOMAIN = "s3.localhost"


class VhostServer(support.StrataServer):
    def environment(self) -> dict:
        env = super().environment()
        env["STRATA_DOMAINS"] = DOMAIN
        return env


@pytest.fixture(scope="module")
def vhost_server(strata_bin, scratch_root):
    server = VhostServer(strata_bin, scratch_root / "vhost-data", scratch_root / "vhost.log", fsync=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def loopback_resolver(monkeypatch):
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        if isinstance(host, str) and (host == DOMAIN or host.endswith("." + DOMAIN)):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


def vhost_client(server, signature_version=None):
    import boto3

    config = Config(s3={"addressing_style": "virtual"}, signature_version=signature_version)
    session = boto3.session.Session(aws_access_key_id=support.ACCESS_KEY,
                                    aws_secret_access_key=support.SECRET_KEY, region_name=support.REGION)
    return session.client("s3", endpoint_url=f"http://{DOMAIN}:{server.port}", config=config)


def fetch(url: str) -> tuple[int, bytes]:
    """GETs `url` over a connection to 127.0.0.1, keeping the URL's Host."""
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection("127.0.0.1", parsed.port, timeout=30)
    try:
        path = parsed.path + ("?" + parsed.query if parsed.query else "")
        conn.request("GET", path, headers={"Host": parsed.netloc})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_boto3_virtual_host_round_trip(vhost_server, loopback_resolver):
    s3 = vhost_client(vhost_server)
    bucket = support.bucket_name("vhost-boto3")
    s3.create_bucket(Bucket=bucket)
    key = "dir/a b+c.txt"
    body = support.data(70_000, 5)
    put = s3.put_object(Bucket=bucket, Key=key, Body=body)
    assert put["ResponseMetadata"]["HTTPHeaders"].get("x-amz-request-id")
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == [key]
    s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": key})
    s3.put_object_tagging(Bucket=bucket, Key="copy", Tagging={"TagSet": [{"Key": "a", "Value": "b"}]})
    assert s3.get_object_tagging(Bucket=bucket, Key="copy")["TagSet"] == [{"Key": "a", "Value": "b"}]
    assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] in (None, "")
    # Presigned GETs in virtual-host form: SigV4 explicitly, SigV2 as boto3's us-east-1 default.
    for client in (vhost_client(vhost_server, "s3v4"), s3):
        url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=300)
        assert urllib.parse.urlsplit(url).hostname == f"{bucket}.{DOMAIN}"
        assert fetch(url) == (200, body)
    # Path style keeps working against the same server.
    path_style = support.raw_request(vhost_server.endpoint, "GET", f"/{bucket}/copy", signed=True)
    assert path_style.status == 200 and path_style.body == body
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key}, {"Key": "copy"}]})
    s3.delete_bucket(Bucket=bucket)


def test_unknown_vhost_bucket_is_no_such_bucket(vhost_server, loopback_resolver):
    s3 = vhost_client(vhost_server)
    with pytest.raises(Exception) as err:
        s3.get_object(Bucket="never-made-bucket", Key="k")
    assert err.value.response["Error"]["Code"] == "NoSuchBucket"


@pytest.mark.parametrize("signature_v2", [False, True])
def test_s3cmd_default_virtual_host_style(vhost_server, strata_bin, scratch_root, client_env, work, signature_v2):
    port = vhost_server.port
    cfg = work / "s3cmd-vhost.cfg"
    cfg.write_text(
        "[default]\n"
        f"access_key = {support.ACCESS_KEY}\n"
        f"secret_key = {support.SECRET_KEY}\n"
        f"host_base = {DOMAIN}:{port}\n"
        f"host_bucket = %(bucket)s.{DOMAIN}:{port}\n"
        f"proxy_host = 127.0.0.1\nproxy_port = {port}\n"
        "use_https = False\n"
        f"signature_v2 = {signature_v2}\n"
        "bucket_location = US\n"
        "progress_meter = False\n"
    )

    def s3cmd(*args):
        return support.run([support.tool("s3cmd"), "-c", str(cfg), *map(str, args)], env=client_env,
                           timeout=support.SUBPROCESS_TIMEOUT)

    bucket = support.bucket_name(f"vhost-s3cmd-{int(signature_v2)}")
    src = work / "file.bin"
    body = support.write_file(src, 20 * 1024 * 1024 + 3, seed=9)  # > 15 MiB: s3cmd multipart
    s3cmd("mb", f"s3://{bucket}")
    s3cmd("put", src, f"s3://{bucket}/data/file.bin")
    listing = s3cmd("ls", f"s3://{bucket}/data/").stdout.decode()
    assert f"s3://{bucket}/data/file.bin" in listing
    out = work / "out.bin"
    s3cmd("get", f"s3://{bucket}/data/file.bin", out)
    assert out.read_bytes() == body
    url = s3cmd("signurl", f"s3://{bucket}/data/file.bin", "+300").stdout.decode().strip()
    assert urllib.parse.urlsplit(url).hostname == f"{bucket}.{DOMAIN}"
    assert fetch(url) == (200, body)
    s3cmd("del", f"s3://{bucket}/data/file.bin")
    s3cmd("rb", f"s3://{bucket}")
