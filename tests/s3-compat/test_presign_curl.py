"""SigV4 presigned URLs (boto3 generate_presigned_url with signature_version='s3v4') used by curl.

curl sends no x-amz-content-sha256: the canonical request uses UNSIGNED-PAYLOAD. A PUT with
`-T file` carries Content-Length. Expired or tampered URLs must be refused with 403.
"""

from __future__ import annotations

import time

import pytest
from botocore.config import Config

import support
from support import KIB, MIB


@pytest.fixture(scope="module")
def presigner(make_client):
    return make_client(config=Config(signature_version="s3v4"))


def http_code(curl, *args) -> tuple[int, bytes]:
    res = curl("-sS", "-o", "-", "-w", "\n%{http_code}", *args, check=False)
    body, _, code = res.stdout.rpartition(b"\n")
    return int(code.decode() or 0), body


@pytest.mark.parametrize("size", [0, 5 * KIB, MIB + 1])
def test_presigned_get(presigner, s3, bucket, curl, work, size):
    body = support.data(size, seed=size)
    s3.put_object(Bucket=bucket, Key="dl/obj.bin", Body=body)
    url = presigner.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "dl/obj.bin"},
                                           ExpiresIn=300)
    assert "X-Amz-Signature=" in url
    out = work / "out"
    curl("-sS", "-f", "-o", out, url)
    assert out.read_bytes() == body


@pytest.mark.parametrize("size", [3, 70 * KIB, 2 * MIB + 9])
def test_presigned_put(presigner, s3, bucket, curl, work, size):
    src = work / "up.bin"
    body = support.write_file(src, size, seed=size)
    url = presigner.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "up/obj.bin"},
                                           ExpiresIn=300)
    curl("-sS", "-f", "-X", "PUT", "-T", src, url)
    got = s3.get_object(Bucket=bucket, Key="up/obj.bin")
    assert got["Body"].read() == body
    assert got["ETag"] == support.quoted_md5(body)


def test_presigned_put_with_content_type(presigner, s3, bucket, curl, work):
    src = work / "page.html"
    src.write_bytes(b"<html>hi</html>")
    url = presigner.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "page.html", "ContentType": "text/html"}, ExpiresIn=300)
    curl("-sS", "-f", "-X", "PUT", "-H", "Content-Type: text/html", "-T", src, url)
    head = s3.head_object(Bucket=bucket, Key="page.html")
    assert head["ContentType"] == "text/html"
    assert s3.get_object(Bucket=bucket, Key="page.html")["Body"].read() == b"<html>hi</html>"


@pytest.mark.moto_quirk("moto does not check presigned expiry")
def test_expired_presigned_url_is_403(presigner, s3, bucket, curl):
    s3.put_object(Bucket=bucket, Key="k", Body=b"secret")
    url = presigner.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=1)
    time.sleep(2.5)
    code, body = http_code(curl, url)
    assert code == 403
    assert b"<Error>" in body and b"secret" not in body


@pytest.mark.moto_quirk("moto does not verify presigned signatures")
def test_garbled_presigned_url_is_403(presigner, s3, bucket, curl, work):
    s3.put_object(Bucket=bucket, Key="k", Body=b"secret")
    url = presigner.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=300)
    head, _, signature = url.rpartition("X-Amz-Signature=")
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    code, body = http_code(curl, head + "X-Amz-Signature=" + flipped)
    assert code == 403
    assert b"SignatureDoesNotMatch" in body and b"secret" not in body
    # Another key under the same signature.
    code, _ = http_code(curl, url.replace("/k?", "/other?"))
    assert code == 403
    # A presigned GET does not authorize a PUT.
    src = work / "x"
    src.write_bytes(b"overwrite")
    code, _ = http_code(curl, "-X", "PUT", "-T", src, url)
    assert code == 403
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"secret"
