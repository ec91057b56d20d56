"""curl with presigned URLs (SigV2 and SigV4) and with its own `--aws-sigv4` signing.

Presigned URLs come from boto3's generate_presigned_url: `signature_version="s3"` gives the
SigV2 query form (`AWSAccessKeyId/Expires/Signature`, what boto3 and aws-cli v1 produce by
default in us-east-1, and what `s3cmd signurl` produces), `"s3v4"` the SigV4 one. curl sends no
x-amz-content-sha256, so the V4 canonical request uses UNSIGNED-PAYLOAD; `-T file` carries
Content-Length. Expired or tampered URLs, and a GET URL used for a PUT, are refused with 403
and leave the object untouched. Everything runs over http and https (`--cacert`).
"""

from __future__ import annotations

import re
import time
import urllib.parse

import pytest
from botocore.config import Config

import support
from support import KIB, MIB

pytestmark = pytest.mark.client("curl")

SIGNATURES = {"v2": "s3", "v4": "s3v4"}


@pytest.fixture(params=sorted(SIGNATURES))
def presigner(request, target, isolated_aws_environment):
    import boto3

    session = boto3.session.Session(aws_access_key_id=support.ACCESS_KEY, aws_secret_access_key=support.SECRET_KEY,
                                    region_name=support.REGION)
    client = session.client("s3", endpoint_url=target.url, verify=target.ca_bundle or True,
                            config=Config(signature_version=SIGNATURES[request.param]))
    client.signature_label = request.param
    return client


@pytest.fixture
def tcurl(curl, target):
    """curl for this test's transport (trusting the test CA over https)."""

    def call(*args, check=True):
        tls = ["--cacert", target.ca_bundle] if target.ca_bundle else []
        return curl(*tls, *args, check=check)

    return call


def http_code(tcurl, *args) -> tuple[int, bytes]:
    res = tcurl("-sS", "-o", "-", "-w", "\n%{http_code}", *args, check=False)
    body, _, code = res.stdout.rpartition(b"\n")
    return int(code.decode() or 0), body


def presign(presigner, method, bucket, key, expires=300, **params):
    url = presigner.generate_presigned_url(method, Params={"Bucket": bucket, "Key": key, **params},
                                           ExpiresIn=expires)
    marker = "Signature=" if presigner.signature_label == "v2" else "X-Amz-Signature="
    assert marker in url and ("AWSAccessKeyId=" in url) == (presigner.signature_label == "v2"), url
    return url


@pytest.mark.covers("presigned GET (V2+V4)")
@pytest.mark.parametrize("size", [0, 5 * KIB, MIB + 1])
def test_presigned_get(presigner, target_client, target_bucket, tcurl, work, size):
    body = support.data(size, seed=size)
    target_client.put_object(Bucket=target_bucket, Key="dl/obj.bin", Body=body)
    url = presign(presigner, "get_object", target_bucket, "dl/obj.bin")
    out = work / "out"
    tcurl("-sS", "-f", "-o", out, url)
    assert out.read_bytes() == body


@pytest.mark.covers("presigned PUT (V2+V4)")
@pytest.mark.parametrize("size", [3, 70 * KIB, 2 * MIB + 9])
def test_presigned_put(presigner, target_client, target_bucket, tcurl, work, size):
    src = work / "up.bin"
    body = support.write_file(src, size, seed=size)
    url = presign(presigner, "put_object", target_bucket, "up/obj.bin")
    tcurl("-sS", "-f", "-X", "PUT", "-T", src, url)
    got = target_client.get_object(Bucket=target_bucket, Key="up/obj.bin")
    assert got["Body"].read() == body
    assert got["ETag"] == support.quoted_md5(body)


def test_presigned_put_with_content_type(presigner, target_client, target_bucket, tcurl, work):
    src = work / "page.html"
    src.write_bytes(b"<html>hi</html>")
    url = presign(presigner, "put_object", target_bucket, "page.html", ContentType="text/html")
    tcurl("-sS", "-f", "-X", "PUT", "-H", "Content-Type: text/html", "-T", src, url)
    head = target_client.head_object(Bucket=target_bucket, Key="page.html")
    assert head["ContentType"] == "text/html"
    assert target_client.get_object(Bucket=target_bucket, Key="page.html")["Body"].read() == b"<html>hi</html>"


@pytest.mark.moto_quirk("moto does not verify presigned signatures")
def test_presigned_put_other_content_type_is_403(presigner, target_client, target_bucket, tcurl, work):
    """The content type is part of what was signed (SigV2 string-to-sign, SigV4 signed header)."""
    src = work / "page.html"
    src.write_bytes(b"<html>hi</html>")
    url = presign(presigner, "put_object", target_bucket, "page.html", ContentType="text/html")
    code, _ = http_code(tcurl, "-X", "PUT", "-H", "Content-Type: text/plain", "-T", src, url)
    assert code == 403
    assert not target_client.list_objects_v2(Bucket=target_bucket).get("Contents")


@pytest.mark.covers("expiry")
@pytest.mark.moto_quirk("moto does not check presigned expiry")
def test_expired_presigned_url_is_403(presigner, target_client, target_bucket, tcurl):
    target_client.put_object(Bucket=target_bucket, Key="k", Body=b"secret")
    url = presign(presigner, "get_object", target_bucket, "k", expires=1)
    time.sleep(2.5)
    code, body = http_code(tcurl, url)
    assert code == 403
    assert b"<Error>" in body and b"AccessDenied" in body and b"secret" not in body


def tamper_signature(url: str) -> str:
    """The same URL with the first character of its signature changed."""
    match = re.search(r"((?:X-Amz-)?Signature=)([^&]+)", url)
    signature = urllib.parse.unquote(match.group(2))
    # A digit of both alphabets a signature uses (hex for V4, base64 for V2).
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    return url[: match.start(2)] + urllib.parse.quote(flipped, safe="") + url[match.end(2):]


@pytest.mark.covers("tampering")
@pytest.mark.moto_quirk("moto does not verify presigned signatures")
def test_tampered_presigned_urls_are_403(presigner, target_client, target_bucket, tcurl, work):
    target_client.put_object(Bucket=target_bucket, Key="k", Body=b"secret")
    url = presign(presigner, "get_object", target_bucket, "k")
    for bad in [tamper_signature(url), url.replace("/k?", "/other?")]:
        code, body = http_code(tcurl, bad)
        assert code == 403, bad
        assert b"SignatureDoesNotMatch" in body and b"secret" not in body
    # A longer validity than was signed.
    expires_field = "Expires" if presigner.signature_label == "v2" else "X-Amz-Expires"
    value = re.search(rf"[?&]{expires_field}=(\d+)", url).group(1)
    code, _ = http_code(tcurl, url.replace(f"{expires_field}={value}", f"{expires_field}={int(value) + 1}"))
    assert code == 403
    # A presigned GET does not authorize a PUT.
    src = work / "x"
    src.write_bytes(b"overwrite")
    code, _ = http_code(tcurl, "-X", "PUT", "-T", src, url)
    assert code == 403
    assert target_client.get_object(Bucket=target_bucket, Key="k")["Body"].read() == b"secret"


# ---- curl --aws-sigv4: curl signs every request itself --------------------------------------


@pytest.fixture
def sigv4_curl(tcurl, target):
    def call(method, path, *args, check=True):
        url = target.url + path
        return tcurl("-sS", "--aws-sigv4", f"aws:amz:{support.REGION}:s3", "--user",
                     f"{support.ACCESS_KEY}:{support.SECRET_KEY}", "-X", method, *args, url, check=check)

    return call


@pytest.mark.covers("--aws-sigv4 PUT/GET/HEAD/list/DELETE")
@pytest.mark.moto_quirk("moto does not verify signatures")
def test_curl_aws_sigv4_put_get_list_delete(sigv4_curl, target_client, target_bucket, work):
    """curl (7.88, Debian 12) signs but does not send x-amz-content-sha256; S3 requires it on a
    PUT, so users add it, as against AWS: UNSIGNED-PAYLOAD or the body's hex SHA-256."""
    src = work / "body.bin"
    body = support.write_file(src, 200 * KIB + 1, seed=200)
    sigv4_curl("PUT", f"/{target_bucket}/signed/by-curl.bin", "-f", "-T", src,
               "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD")
    assert target_client.get_object(Bucket=target_bucket, Key="signed/by-curl.bin")["Body"].read() == body
    sigv4_curl("PUT", f"/{target_bucket}/signed/hashed.bin", "-f", "-T", src,
               "-H", f"x-amz-content-sha256: {support.file_sha256(src)}")
    assert target_client.get_object(Bucket=target_bucket, Key="signed/hashed.bin")["Body"].read() == body
    out = work / "out.bin"
    sigv4_curl("GET", f"/{target_bucket}/signed/by-curl.bin", "-f", "-o", out)
    assert out.read_bytes() == body
    head = sigv4_curl("HEAD", f"/{target_bucket}/signed/by-curl.bin", "-f", "-I").stdout.decode().lower()
    assert f"content-length: {len(body)}" in head and support.md5_hex(body) in head
    listing = sigv4_curl("GET", f"/{target_bucket}?list-type=2&prefix=signed%2F", "-f").stdout.decode()
    assert "<Key>signed/by-curl.bin</Key>" in listing and f"<Size>{len(body)}</Size>" in listing
    sigv4_curl("DELETE", f"/{target_bucket}/signed/by-curl.bin", "-f")
    sigv4_curl("DELETE", f"/{target_bucket}/signed/hashed.bin", "-f")
    assert not target_client.list_objects_v2(Bucket=target_bucket).get("Contents")


@pytest.mark.moto_quirk("moto does not verify signatures")
def test_curl_aws_sigv4_put_without_or_with_wrong_payload_hash(sigv4_curl, target_client, target_bucket, work):
    src = work / "body.bin"
    support.write_file(src, 1000, seed=1)
    res = sigv4_curl("PUT", f"/{target_bucket}/k", "-o", "-", "-w", "\n%{http_code}", "-T", src, check=False)
    body, _, code = res.stdout.rpartition(b"\n")
    assert code == b"400" and b"<Code>InvalidRequest</Code>" in body and b"x-amz-content-sha256" in body, body
    wrong = "0" * 64
    res = sigv4_curl("PUT", f"/{target_bucket}/k", "-o", "-", "-w", "\n%{http_code}", "-T", src,
                     "-H", f"x-amz-content-sha256: {wrong}", check=False)
    body, _, code = res.stdout.rpartition(b"\n")
    assert code == b"400" and b"XAmzContentSHA256Mismatch" in body, body
    assert not target_client.list_objects_v2(Bucket=target_bucket).get("Contents")


@pytest.mark.moto_quirk("moto does not verify signatures")
def test_curl_aws_sigv4_wrong_secret_is_403(tcurl, target, target_client, target_bucket):
    target_client.put_object(Bucket=target_bucket, Key="k", Body=b"secret")
    res = tcurl("-sS", "-o", "-", "-w", "\n%{http_code}", "--aws-sigv4", f"aws:amz:{support.REGION}:s3", "--user",
                f"{support.ACCESS_KEY}:not-the-secret", f"{target.url}/{target_bucket}/k", check=False)
    body, _, code = res.stdout.rpartition(b"\n")
    assert code == b"403" and b"SignatureDoesNotMatch" in body and body != b"secret"
