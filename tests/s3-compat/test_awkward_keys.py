"""Awkward object keys through every client: spaces, unicode, `+ % & " ' ? = #`, `a//b`,
a trailing slash and 1024-byte keys.

Each client encodes keys its own way (botocore quotes paths and signs the encoded form,
s3cmd has its own quoting, aws-cli lists with encoding-type=url, presigned URLs carry the
key in the signed path), so the server's path decoding, canonical-request encoding and
listing encoding are all exercised.
"""

from __future__ import annotations

import pytest
from botocore.config import Config

import support

KEYS = support.AWKWARD_KEYS
# Local-file based uploads cannot produce a key ending in '/' (the client treats it as a folder).
FILE_KEYS = {name: key for name, key in KEYS.items() if not key.endswith("/")}


def body_for(key: str) -> bytes:
    return key.encode() + b"|" + support.data(5000, seed=len(key))  # > 4 KiB: not inline


@pytest.mark.parametrize("key", KEYS.values(), ids=KEYS.keys())
def test_boto3(s3, bucket, key):
    body = body_for(key)
    s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata={"k": "v"})
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == len(body) and head["Metadata"] == {"k": "v"}
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    assert s3.get_object(Bucket=bucket, Key=key, Range="bytes=0-9")["Body"].read() == body[:10]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == [key]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=key)["Contents"]] == [key]
    assert [o["Key"] for o in s3.list_objects(Bucket=bucket)["Contents"]] == [key]
    s3.delete_object(Bucket=bucket, Key=key)
    assert not s3.list_objects_v2(Bucket=bucket).get("Contents")


def test_boto3_all_keys_listed_and_batch_deleted(s3, bucket):
    keys = sorted(KEYS.values())
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == sorted(keys, key=lambda k: k.encode())  # S3 orders by UTF-8 bytes
    listed_v1 = [o["Key"] for o in s3.list_objects(Bucket=bucket)["Contents"]]
    assert listed_v1 == listed
    res = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys]})
    assert sorted(d["Key"] for d in res["Deleted"]) == keys
    assert not res.get("Errors")
    assert not s3.list_objects_v2(Bucket=bucket).get("Contents")


def test_awscli_listing(aws_json, s3, bucket):
    keys = sorted(KEYS.values(), key=lambda k: k.encode())
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    res = aws_json("s3api", "list-objects-v2", "--bucket", bucket)
    assert [o["Key"] for o in res["Contents"]] == keys


@pytest.mark.parametrize("key", FILE_KEYS.values(), ids=FILE_KEYS.keys())
def test_awscli_cp_up_s3api_get_down(aws, aws_json, s3, bucket, work, key):
    src = work / "src"
    body = body_for(key)
    src.write_bytes(body)
    aws("s3", "cp", src, f"s3://{bucket}/{key}")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == [key]
    dst = work / "dst"
    got = aws_json("s3api", "get-object", "--bucket", bucket, "--key", key, dst)
    assert got["ETag"] == support.quoted_md5(body)
    assert dst.read_bytes() == body


def test_awscli_trailing_slash_key(aws, aws_json, s3, bucket, work):
    key = KEYS["trailing-slash"]
    src = work / "src"
    src.write_bytes(b"folder marker")
    aws_json("s3api", "put-object", "--bucket", bucket, "--key", key, "--body", src)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"folder marker"
    dst = work / "dst"
    aws("s3api", "get-object", "--bucket", bucket, "--key", key, dst)
    assert dst.read_bytes() == b"folder marker"


@pytest.mark.parametrize("key", FILE_KEYS.values(), ids=FILE_KEYS.keys())
def test_s3cmd_put_get(s3cmd, s3, bucket, work, key):
    src = work / "src"
    body = body_for(key)
    src.write_bytes(body)
    s3cmd("put", src, f"s3://{bucket}/{key}")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == [key]
    dst = work / "dst"
    s3cmd("get", f"s3://{bucket}/{key}", dst)
    assert dst.read_bytes() == body
    s3cmd("del", f"s3://{bucket}/{key}")
    assert not s3.list_objects_v2(Bucket=bucket).get("Contents")


@pytest.mark.parametrize("key", KEYS.values(), ids=KEYS.keys())
def test_presigned_curl(make_client, s3, bucket, curl, work, key):
    presigner = make_client(config=Config(signature_version="s3v4"))
    body = body_for(key)
    src = work / "src"
    src.write_bytes(body)
    put_url = presigner.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=300)
    # curl -T appends the local file name to a URL path ending in '/', so send that one as data.
    upload = ["-H", "Content-Type: application/octet-stream", "--data-binary", f"@{src}"] \
        if key.endswith("/") else ["-T", src]
    curl("-sS", "-f", "-X", "PUT", *upload, put_url)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    get_url = presigner.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=300)
    dst = work / "dst"
    curl("-sS", "-f", "-o", dst, get_url)
    assert dst.read_bytes() == body


def test_keys_are_distinct(s3, bucket):
    """Encodings must not collide: 'a b', 'a+b', 'a%20b' and 'a%2Bb' are four objects."""
    keys = ["a b", "a+b", "a%20b", "a%2Bb", "a/b", "a%2Fb"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    for key in keys:
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]) == sorted(keys)
