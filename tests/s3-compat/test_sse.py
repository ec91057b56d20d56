"""Encryption at rest (issue 17 item 2): SSE-S3, SSE-C, bucket default encryption, SSE-KMS.

Two servers: the session's shared one (embedded, or a cluster with S3COMPAT_CLUSTER=1) for
SSE-S3, bucket encryption and the answer without a KMS; and one of this module's own
(`strata server`, HTTPS plus a plain-HTTP port, a local key-file KMS) for SSE-C — AWS accepts
customer keys only over TLS — KMS keys, and the check that no plaintext reaches its disks: the
shard files and the RocksDB catalog (WAL included) of its data directory are searched for a
recognizable plaintext, with an unencrypted control object that must be found there so the
search cannot pass vacuously. Every call uses boto3 or the aws CLI.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

import support
import tls_support
from support import KIB, MIB

pytestmark = pytest.mark.strata_only

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
KMS_KEY = base64.b64encode(bytes([7] * 32)).decode()


def sse_c(key: bytes = KEY, prefix: str = "SSECustomer") -> dict:
    return {f"{prefix}Algorithm": "AES256", f"{prefix}Key": key}


def error_of(call) -> tuple[int, str]:
    with pytest.raises(botocore.exceptions.ClientError) as info:
        call()
    response = info.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def marker_bytes(size: int, tag: str) -> bytes:
    """Recognizable, non-repeating plaintext: numbered lines carrying `tag`."""
    out = bytearray()
    line = 0
    while len(out) < size:
        out += f"{tag}-line-{line:08d}-plaintext-marker\n".encode()
        line += 1
    return bytes(out[:size])


# --- SSE-S3, bucket encryption, no KMS: the shared server ---------------------------------------

def test_sse_s3_put_get_range_head_and_listing_sizes(s3, bucket):
    body = support.data(300 * KIB + 7, seed=1)
    put = s3.put_object(Bucket=bucket, Key="big", Body=body, ServerSideEncryption="AES256")
    assert put["ServerSideEncryption"] == "AES256"
    assert put["ETag"] == support.quoted_md5(body)
    got = s3.get_object(Bucket=bucket, Key="big")
    assert got["ServerSideEncryption"] == "AES256"
    assert got["ContentLength"] == len(body)
    assert got["Body"].read() == body
    for first, last in [(0, 0), (65_535, 65_536), (1000, 200_000), (len(body) - 5, len(body) - 1)]:
        part = s3.get_object(Bucket=bucket, Key="big", Range=f"bytes={first}-{last}")
        assert part["ContentRange"] == f"bytes {first}-{last}/{len(body)}"
        assert part["ContentLength"] == last - first + 1
        assert part["Body"].read() == body[first:last + 1]
    head = s3.head_object(Bucket=bucket, Key="big")
    assert head["ServerSideEncryption"] == "AES256"
    assert head["ContentLength"] == len(body)
    small = b"tiny inline object"
    s3.put_object(Bucket=bucket, Key="small", Body=small, ServerSideEncryption="AES256")
    assert s3.get_object(Bucket=bucket, Key="small")["Body"].read() == small
    sizes = {o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert sizes == {"big": len(body), "small": len(small)}
    assert "ServerSideEncryption" not in s3.put_object(Bucket=bucket, Key="plain", Body=b"x")


def test_sse_s3_checksums_are_of_the_plaintext(s3, bucket):
    body = support.data(100 * KIB, seed=2)
    put = s3.put_object(Bucket=bucket, Key="c", Body=body, ServerSideEncryption="AES256",
                        ChecksumAlgorithm="CRC32C")
    head = s3.head_object(Bucket=bucket, Key="c", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32C"] == put["ChecksumCRC32C"]
    assert s3.get_object(Bucket=bucket, Key="c", ChecksumMode="ENABLED")["Body"].read() == body


def test_sse_s3_multipart_and_part_number_get(s3, bucket):
    parts_data = [support.data(5 * MIB, seed=3), support.data(100 * KIB + 3, seed=4)]
    created = s3.create_multipart_upload(Bucket=bucket, Key="mp", ServerSideEncryption="AES256")
    assert created["ServerSideEncryption"] == "AES256"
    parts = []
    for number, data in enumerate(parts_data, start=1):
        answer = s3.upload_part(Bucket=bucket, Key="mp", UploadId=created["UploadId"],
                                PartNumber=number, Body=data)
        assert answer["ServerSideEncryption"] == "AES256"
        assert answer["ETag"] == support.quoted_md5(data)
        parts.append({"PartNumber": number, "ETag": answer["ETag"]})
    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=created["UploadId"],
                                        MultipartUpload={"Parts": parts})
    assert done["ServerSideEncryption"] == "AES256"
    whole = b"".join(parts_data)
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == whole
    second = s3.get_object(Bucket=bucket, Key="mp", PartNumber=2)
    assert second["Body"].read() == parts_data[1]
    edge = 5 * MIB
    got = s3.get_object(Bucket=bucket, Key="mp", Range=f"bytes={edge - 3}-{edge + 70_000}")
    assert got["Body"].read() == whole[edge - 3:edge + 70_001]


def test_copy_changes_encryption(s3, bucket):
    body = support.data(200 * KIB, seed=5)
    s3.put_object(Bucket=bucket, Key="plain", Body=body)
    copied = s3.copy_object(Bucket=bucket, Key="enc", CopySource={"Bucket": bucket, "Key": "plain"},
                            ServerSideEncryption="AES256")
    assert copied["ServerSideEncryption"] == "AES256"
    assert s3.head_object(Bucket=bucket, Key="enc")["ServerSideEncryption"] == "AES256"
    back = s3.copy_object(Bucket=bucket, Key="dec", CopySource={"Bucket": bucket, "Key": "enc"})
    assert "ServerSideEncryption" not in back
    assert s3.get_object(Bucket=bucket, Key="dec")["Body"].read() == body
    # Copying an object onto itself is allowed when it changes the encryption.
    s3.copy_object(Bucket=bucket, Key="plain", CopySource={"Bucket": bucket, "Key": "plain"},
                   ServerSideEncryption="AES256")
    assert s3.head_object(Bucket=bucket, Key="plain")["ServerSideEncryption"] == "AES256"
    assert s3.get_object(Bucket=bucket, Key="plain")["Body"].read() == body


def test_bucket_default_encryption(s3, bucket, endpoint):
    status, code = error_of(lambda: s3.get_bucket_encryption(Bucket=bucket))
    assert (status, code) == (404, "ServerSideEncryptionConfigurationNotFoundError")
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    put = s3.put_object(Bucket=bucket, Key="d", Body=b"defaulted")
    assert put["ServerSideEncryption"] == "AES256"
    assert s3.get_object(Bucket=bucket, Key="d")["Body"].read() == b"defaulted"
    s3.delete_bucket_encryption(Bucket=bucket)
    assert "ServerSideEncryption" not in s3.put_object(Bucket=bucket, Key="e", Body=b"x")
    assert error_of(lambda: s3.get_bucket_encryption(Bucket=bucket))[0] == 404
    response = _signed(endpoint, "PUT", f"/{bucket}?encryption", b"<ServerSideEncryptionConfiguration>")
    assert response.status == 400 and b"MalformedXML" in response.body


def _signed(endpoint: str, method: str, path: str, body: bytes):
    return support.raw_request(endpoint, method, path, body=body, signed=True)


def test_kms_without_a_kms_is_not_implemented(s3, bucket):
    status, code = error_of(lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"x",
                                                  ServerSideEncryption="aws:kms"))
    assert (status, code) == (501, "NotImplemented")
    status, code = error_of(lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"x",
                                                  ServerSideEncryption="DES"))
    assert (status, code) == (400, "InvalidArgument")


def test_sse_c_over_plain_http_is_refused(s3, bucket):
    status, code = error_of(lambda: s3.put_object(Bucket=bucket, Key="c", Body=b"x", **sse_c()))
    assert (status, code) == (400, "InvalidRequest")


def test_aws_cli_sse_s3(aws, aws_json, bucket, work):
    source = work / "cli.bin"
    body = support.write_file(source, 150 * KIB, seed=6)
    aws("s3", "cp", source, f"s3://{bucket}/cli", "--sse", "AES256")
    head = aws_json("s3api", "head-object", "--bucket", bucket, "--key", "cli")
    assert head["ServerSideEncryption"] == "AES256"
    aws("s3", "cp", f"s3://{bucket}/cli", work / "back.bin")
    assert (work / "back.bin").read_bytes() == body


# --- SSE-C, KMS and the disks: a server of this module (HTTPS + HTTP, key-file KMS) -------------

@pytest.fixture(scope="module")
def own(scratch_root, strata_bin, tls_certificates):
    root = scratch_root / "sse-own"
    root.mkdir(parents=True, exist_ok=True)
    kms_file = root / "kms.keys"
    kms_file.write_text(f"app-key {KMS_KEY}\n")
    server = tls_support.TlsStrataServer(
        strata_bin, root / "data", root / "strata.log", tls_certificates, plain_too=True,
        config_toml=f'sse_kms_key_file = "{kms_file}"\n', fsync=False)
    server.start()
    yield server
    server.stop()


def _session():
    return boto3.session.Session(aws_access_key_id=support.ACCESS_KEY,
                                 aws_secret_access_key=support.SECRET_KEY, region_name=support.REGION)


@pytest.fixture(scope="module")
def tls_s3(own):
    return _session().client("s3", endpoint_url=own.endpoint, verify=str(own.certs.ca),
                             config=Config(retries={"max_attempts": 1}))


@pytest.fixture(scope="module")
def plain_s3(own):
    return _session().client("s3", endpoint_url=own.plain_endpoint,
                             config=Config(retries={"max_attempts": 1}))


@pytest.fixture
def own_bucket(tls_s3, request):
    name = support.bucket_name(request.node.name)
    tls_s3.create_bucket(Bucket=name)
    return name


def test_sse_c_put_get_head_range_and_key_errors(tls_s3, plain_s3, own_bucket):
    b = own_bucket
    body = support.data(200 * KIB + 11, seed=7)
    put = tls_s3.put_object(Bucket=b, Key="c", Body=body, **sse_c())
    key_md5 = base64.b64encode(hashlib.md5(KEY).digest()).decode()
    assert put["SSECustomerAlgorithm"] == "AES256" and put["SSECustomerKeyMD5"] == key_md5
    assert put["ETag"] != support.quoted_md5(body)
    got = tls_s3.get_object(Bucket=b, Key="c", **sse_c())
    assert got["SSECustomerKeyMD5"] == key_md5
    assert got["Body"].read() == body
    part = tls_s3.get_object(Bucket=b, Key="c", Range="bytes=70000-140000", **sse_c())
    assert part["Body"].read() == body[70000:140001]
    head = tls_s3.head_object(Bucket=b, Key="c", **sse_c())
    assert head["ContentLength"] == len(body) and head["SSECustomerAlgorithm"] == "AES256"
    # Missing key: 400 InvalidRequest; wrong key: 403; a key for an unencrypted object: 400.
    assert error_of(lambda: tls_s3.get_object(Bucket=b, Key="c")) == (400, "InvalidRequest")
    assert error_of(lambda: tls_s3.head_object(Bucket=b, Key="c"))[0] == 400
    assert error_of(lambda: tls_s3.get_object(Bucket=b, Key="c", **sse_c(OTHER_KEY))) == (403, "AccessDenied")
    tls_s3.put_object(Bucket=b, Key="plain", Body=b"plain")
    assert error_of(lambda: tls_s3.get_object(Bucket=b, Key="plain", **sse_c())) == (400, "InvalidRequest")
    # A wrong key MD5 (given explicitly, botocore then sends the key as it is): 400.
    wrong_md5 = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": base64.b64encode(KEY).decode(),
                 "SSECustomerKeyMD5": "AAAAAAAAAAAAAAAAAAAAAA=="}
    assert error_of(lambda: tls_s3.put_object(Bucket=b, Key="m", Body=b"x", **wrong_md5)) == \
        (400, "InvalidArgument")
    # The same server's plain-HTTP port refuses customer keys.
    assert error_of(lambda: plain_s3.get_object(Bucket=b, Key="c", **sse_c())) == (400, "InvalidRequest")


def test_sse_c_copy_with_copy_source_keys(tls_s3, own_bucket):
    b = own_bucket
    body = support.data(90 * KIB, seed=8)
    tls_s3.put_object(Bucket=b, Key="src", Body=body, **sse_c())
    source = {"Bucket": b, "Key": "src"}
    status, _ = error_of(lambda: tls_s3.copy_object(Bucket=b, Key="dst", CopySource=source))
    assert status == 400
    tls_s3.copy_object(Bucket=b, Key="dst", CopySource=source, **sse_c(prefix="CopySourceSSECustomer"),
                       **sse_c(OTHER_KEY))
    assert tls_s3.get_object(Bucket=b, Key="dst", **sse_c(OTHER_KEY))["Body"].read() == body
    copied = tls_s3.copy_object(Bucket=b, Key="s3", CopySource=source,
                                **sse_c(prefix="CopySourceSSECustomer"), ServerSideEncryption="AES256")
    assert copied["ServerSideEncryption"] == "AES256"
    assert tls_s3.get_object(Bucket=b, Key="s3")["Body"].read() == body


def test_sse_c_multipart_with_part_copy(tls_s3, own_bucket):
    b = own_bucket
    first = support.data(5 * MIB, seed=9)
    tls_s3.put_object(Bucket=b, Key="src", Body=support.data(64 * KIB, seed=10), ServerSideEncryption="AES256")
    created = tls_s3.create_multipart_upload(Bucket=b, Key="mp", **sse_c())
    upload = created["UploadId"]
    assert created["SSECustomerAlgorithm"] == "AES256"
    assert error_of(lambda: tls_s3.upload_part(Bucket=b, Key="mp", UploadId=upload, PartNumber=1,
                                               Body=first))[0] == 400
    p1 = tls_s3.upload_part(Bucket=b, Key="mp", UploadId=upload, PartNumber=1, Body=first, **sse_c())
    p2 = tls_s3.upload_part_copy(Bucket=b, Key="mp", UploadId=upload, PartNumber=2,
                                 CopySource={"Bucket": b, "Key": "src"}, **sse_c())
    tls_s3.complete_multipart_upload(Bucket=b, Key="mp", UploadId=upload, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": p1["ETag"]}, {"PartNumber": 2, "ETag": p2["CopyPartResult"]["ETag"]}]})
    whole = first + support.data(64 * KIB, seed=10)
    assert tls_s3.get_object(Bucket=b, Key="mp", **sse_c())["Body"].read() == whole
    assert tls_s3.get_object(Bucket=b, Key="mp", PartNumber=2, **sse_c())["Body"].read() == whole[5 * MIB:]


def test_kms_with_the_key_file_kms(tls_s3, own_bucket):
    b = own_bucket
    put = tls_s3.put_object(Bucket=b, Key="k", Body=b"kms data", ServerSideEncryption="aws:kms",
                            SSEKMSKeyId="app-key")
    assert put["ServerSideEncryption"] == "aws:kms" and put["SSEKMSKeyId"] == "app-key"
    got = tls_s3.get_object(Bucket=b, Key="k")
    assert got["ServerSideEncryption"] == "aws:kms" and got["Body"].read() == b"kms data"
    status, code = error_of(lambda: tls_s3.put_object(Bucket=b, Key="k2", Body=b"x",
                                                      ServerSideEncryption="aws:kms", SSEKMSKeyId="nope"))
    assert (status, code) == (400, "KMS.NotFoundException")


def test_aws_cli_sse_c(own, own_bucket, client_env, work):
    key_file = work / "key.bin"
    key_file.write_bytes(KEY)
    source = work / "c.bin"
    body = support.write_file(source, 80 * KIB, seed=11)
    base = [support.tool("aws"), "--endpoint-url", own.endpoint, "--ca-bundle", str(own.certs.ca)]
    support.run(base + ["s3", "cp", str(source), f"s3://{own_bucket}/c", "--sse-c", "AES256",
                        "--sse-c-key", f"fileb://{key_file}"], env=client_env)
    support.run(base + ["s3", "cp", f"s3://{own_bucket}/c", str(work / "back"), "--sse-c", "AES256",
                        "--sse-c-key", f"fileb://{key_file}"], env=client_env)
    assert (work / "back").read_bytes() == body


def _all_bytes(root: Path, pattern: str) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.glob(pattern)) if p.is_file())


def test_no_plaintext_in_shard_files_or_catalog(own, tls_s3, own_bucket):
    b = own_bucket
    big = marker_bytes(3 * MIB + 5, "sharded-secret")
    small = marker_bytes(900, "inline-secret")
    customer = marker_bytes(600 * KIB, "customer-secret")
    control = marker_bytes(900, "inline-control")
    tls_s3.put_object(Bucket=b, Key="big", Body=big, ServerSideEncryption="AES256")
    tls_s3.put_object(Bucket=b, Key="small", Body=small, ServerSideEncryption="AES256")
    tls_s3.put_object(Bucket=b, Key="cust", Body=customer, **sse_c())
    tls_s3.put_object(Bucket=b, Key="control", Body=control)
    shard_files = sorted(own.data_dir.glob("disk*/shards/*/*"))
    assert len(shard_files) >= 12, "expected the sharded objects' files on disk"
    shards = b"".join(p.read_bytes() for p in shard_files)
    catalog = b"".join(p.read_bytes() for p in sorted(own.data_dir.rglob("*"))
                       if p.is_file() and "shards" not in p.parts)
    assert b"inline-control-line-00000001" in catalog, "the control object must be findable"
    for needle in (b"sharded-secret-line-00000100", b"customer-secret-line-00000100",
                   b"inline-secret-line-00000001"):
        assert needle not in shards and needle not in catalog, needle
    assert tls_s3.get_object(Bucket=b, Key="big")["Body"].read() == big
    assert tls_s3.get_object(Bucket=b, Key="small")["Body"].read() == small
