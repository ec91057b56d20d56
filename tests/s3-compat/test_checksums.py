"""Flexible checksums (x-amz-checksum-*) as boto3 sends and validates them by default.

boto3 >= 1.36 sends CRC32 on every PutObject/UploadPart unless told otherwise, and GETs with
x-amz-checksum-mode: ENABLED, validating the body against the returned value. Here each
algorithm must be stored and returned verbatim (compared with a locally computed value),
ranged GETs must not carry the full-object checksum, and multipart uploads must return
per-part checksums and a consistent object checksum (see S3-CLIENTS.md §2a).
"""

from __future__ import annotations

import pytest
from boto3.s3.transfer import TransferConfig

import support
from support import KIB, MIB

ALGORITHMS = ["CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"]
CRT_ONLY = {"CRC32C", "CRC64NVME"}


def field(algorithm: str) -> str:
    return "Checksum" + algorithm


def needs_client_support(algorithm: str):
    if algorithm in CRT_ONLY and not support.has_crt():
        pytest.skip(f"{algorithm} needs awscrt in the client (boto3[crt])")


@pytest.mark.parametrize("size", [100, 300 * KIB + 3])
@pytest.mark.parametrize("algorithm", [None] + ALGORITHMS)
def test_checksum_stored_and_returned(s3, bucket, algorithm, size):
    """None = the client default (CRC32), i.e. what every plain put_object sends today."""
    effective = algorithm or "CRC32"
    needs_client_support(effective)
    body = support.data(size, seed=size)
    expected = support.checksum_b64(effective, body)
    extra = {"ChecksumAlgorithm": algorithm} if algorithm else {}
    put = s3.put_object(Bucket=bucket, Key="c", Body=body, **extra)
    assert put.get(field(effective)) == expected, f"PutObject must echo the {effective} checksum"
    head = s3.head_object(Bucket=bucket, Key="c", ChecksumMode="ENABLED")
    assert head.get(field(effective)) == expected
    got = s3.get_object(Bucket=bucket, Key="c", ChecksumMode="ENABLED")
    assert got.get(field(effective)) == expected
    assert got["Body"].read() == body  # botocore validates against the header while reading
    plain = s3.head_object(Bucket=bucket, Key="c")
    assert plain["ETag"] == support.quoted_md5(body), "checksums do not replace the MD5 ETag"


def test_ranged_get_has_no_full_object_checksum(s3, bucket):
    body = support.data(200 * KIB, seed=4)
    s3.put_object(Bucket=bucket, Key="r", Body=body)
    got = s3.get_object(Bucket=bucket, Key="r", Range="bytes=10-1000", ChecksumMode="ENABLED")
    assert got["Body"].read() == body[10:1001]
    headers = got["ResponseMetadata"]["HTTPHeaders"]
    assert not [h for h in headers if h.startswith("x-amz-checksum-") and h != "x-amz-checksum-type"], headers


def check_object_checksum(value: str, algorithm: str, parts: list[bytes]):
    """A multipart object's checksum is COMPOSITE ('…-N') or FULL_OBJECT; either must be right."""
    if value.endswith(f"-{len(parts)}"):
        assert value == support.composite_checksum_b64(algorithm, parts)
    else:
        assert value == support.checksum_b64(algorithm, b"".join(parts))


@pytest.mark.moto_quirk("moto's ListParts and CompleteMultipartUpload omit the checksums")
@pytest.mark.parametrize("algorithm", ["CRC32", "SHA256"])
def test_multipart_checksums(s3, bucket, algorithm):
    bodies = [support.data(5 * MIB, seed=1), support.data(123 * KIB, seed=2)]
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="mp", ChecksumAlgorithm=algorithm)["UploadId"]
    parts = []
    for number, body in enumerate(bodies, start=1):
        res = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=number, Body=body,
                             ChecksumAlgorithm=algorithm)
        expected = support.checksum_b64(algorithm, body)
        assert res.get(field(algorithm)) == expected, "UploadPart must return the part checksum (s3transfer uses it)"
        parts.append({"PartNumber": number, "ETag": res["ETag"], field(algorithm): expected})
    listed = s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload_id)["Parts"]
    assert [p.get(field(algorithm)) for p in listed] == [p[field(algorithm)] for p in parts]
    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload_id,
                                        MultipartUpload={"Parts": parts})
    assert done["ETag"] == support.multipart_etag(bodies)
    check_object_checksum(done[field(algorithm)], algorithm, bodies)
    head = s3.head_object(Bucket=bucket, Key="mp", ChecksumMode="ENABLED")
    assert head.get(field(algorithm)) == done[field(algorithm)]
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"".join(bodies)


@pytest.mark.strata_only
def test_multipart_checksum_type_is_an_enum(s3, bucket):
    """CreateMultipartUpload's x-amz-checksum-type is FULL_OBJECT or COMPOSITE (echoed upper-case,
    and listed by ListParts); any other value is refused, not stored and echoed."""
    res = s3.create_multipart_upload(Bucket=bucket, Key="t", ChecksumAlgorithm="CRC32",
                                     ChecksumType="FULL_OBJECT")
    assert res.get("ChecksumType") == "FULL_OBJECT"
    listed = s3.list_parts(Bucket=bucket, Key="t", UploadId=res["UploadId"])
    assert listed.get("ChecksumType") == "FULL_OBJECT"
    assert listed.get("ChecksumAlgorithm") == "CRC32"
    with pytest.raises(Exception) as refused:
        s3.create_multipart_upload(Bucket=bucket, Key="t", ChecksumAlgorithm="CRC32", ChecksumType="PARTIAL")
    assert support.error_code(refused.value) == "InvalidRequest"


@pytest.mark.moto_quirk("moto returns the COMPOSITE checksum without its '-N' suffix")
def test_upload_file_default_checksum(s3, bucket, work):
    """s3transfer with defaults: CRC32 on Create/UploadPart/Complete, 8 MiB parts."""
    src = work / "twelve.bin"
    body = support.write_file(src, 12 * MIB, seed=12)
    s3.upload_file(str(src), bucket, "twelve", Config=TransferConfig())
    head = s3.head_object(Bucket=bucket, Key="twelve", ChecksumMode="ENABLED")
    assert head["ETag"] == support.multipart_etag(support.split_parts(body, 8 * MIB))
    assert field("CRC32") in head, "the CRC32 that s3transfer sent must be stored and returned"
    check_object_checksum(head[field("CRC32")], "CRC32", support.split_parts(body, 8 * MIB))
    dst = work / "twelve.out"
    s3.download_file(bucket, "twelve", str(dst))
    assert dst.read_bytes() == body
