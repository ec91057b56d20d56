"""S3 error codes and statuses as boto3 (current defaults) sees them.

Each test provokes one documented error and checks the code clients branch on and the
HTTP status, and that the failed request changed nothing it must not change.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import support
from support import MIB


def expect_error(call, code: str, http_status: int, **kwargs):
    with pytest.raises(ClientError) as err:
        call(**kwargs)
    response = err.value.response
    assert (response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]) == (code, http_status)
    return response


def test_no_such_key(s3, bucket):
    response = expect_error(s3.get_object, "NoSuchKey", 404, Bucket=bucket, Key="missing/key")
    assert response["Error"].get("Key", "missing/key") == "missing/key"
    # HEAD has no body: botocore reports the bare status as the code.
    expect_error(s3.head_object, "404", 404, Bucket=bucket, Key="missing/key")


def test_no_such_bucket(s3):
    name = support.bucket_name("never-created")
    expect_error(s3.get_object, "NoSuchBucket", 404, Bucket=name, Key="k")
    expect_error(s3.list_objects_v2, "NoSuchBucket", 404, Bucket=name)
    expect_error(s3.put_object, "NoSuchBucket", 404, Bucket=name, Key="k", Body=b"x")
    expect_error(s3.delete_bucket, "NoSuchBucket", 404, Bucket=name)
    expect_error(s3.head_bucket, "404", 404, Bucket=name)


def test_bucket_not_empty(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    expect_error(s3.delete_bucket, "BucketNotEmpty", 409, Bucket=bucket)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"


def test_recreating_an_owned_bucket_in_us_east_1_is_200(s3, bucket):
    # AWS's legacy us-east-1 behaviour (moto agrees); other regions answer 409
    # BucketAlreadyOwnedByYou (issue 13, item 10).
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3.create_bucket(Bucket=bucket)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x", "re-create must not wipe the bucket"


_MOTO_NAMES = pytest.mark.moto_quirk("moto only checks the length of bucket names")


@pytest.mark.parametrize("name", ["ab", "a" * 64] + [
    pytest.param(n, marks=_MOTO_NAMES)
    for n in ["under_score", "UpperCase", "double..dot", "-leading-dash", "trailing-dash-", "192.168.5.4"]])
def test_invalid_bucket_name(s3, name):
    expect_error(s3.create_bucket, "InvalidBucketName", 400, Bucket=name)


@pytest.mark.moto_quirk("moto does not verify signatures")
def test_wrong_secret_is_signature_does_not_match(make_client, bucket):
    bad = make_client(secret_key="not-the-secret-" + "x" * 25)
    expect_error(bad.list_objects_v2, "SignatureDoesNotMatch", 403, Bucket=bucket)
    expect_error(bad.put_object, "SignatureDoesNotMatch", 403, Bucket=bucket, Key="k", Body=b"x")


@pytest.mark.moto_quirk("moto does not verify access keys")
def test_unknown_access_key(make_client, bucket):
    bad = make_client(access_key="AKIDUNKNOWN000000000")
    expect_error(bad.list_objects_v2, "InvalidAccessKeyId", 403, Bucket=bucket)


@pytest.mark.moto_quirk("moto does not verify Content-MD5")
def test_content_md5_mismatch_is_bad_digest(make_client, s3, bucket):
    no_retry = make_client(config=Config(retries={"mode": "standard", "max_attempts": 1}))
    wrong = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    expect_error(no_retry.put_object, "BadDigest", 400, Bucket=bucket, Key="k", Body=b"hello", ContentMD5=wrong)
    expect_error(s3.head_object, "404", 404, Bucket=bucket, Key="k")
    right = base64.b64encode(hashlib.md5(b"hello").digest()).decode()
    s3.put_object(Bucket=bucket, Key="k", Body=b"hello", ContentMD5=right)


@pytest.mark.moto_quirk("moto does not verify x-amz-checksum-* headers")
def test_wrong_flexible_checksum_is_bad_digest(make_client, s3, bucket):
    no_retry = make_client(config=Config(retries={"mode": "standard", "max_attempts": 1}))
    wrong = support.checksum_b64("CRC32", b"something else")
    # S3-CLIENTS.md server checklist (4): a wrong header/trailer checksum is BadDigest.
    expect_error(no_retry.put_object, "BadDigest", 400, Bucket=bucket, Key="k", Body=b"hello", ChecksumCRC32=wrong)
    expect_error(s3.head_object, "404", 404, Bucket=bucket, Key="k")


def _upload(s3, bucket, key, bodies):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = []
    for number, body in enumerate(bodies, start=1):
        res = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body)
        parts.append({"PartNumber": number, "ETag": res["ETag"]})
    return upload_id, parts


def test_entity_too_small_at_complete(s3, bucket):
    upload_id, parts = _upload(s3, bucket, "small", [b"a" * 1024, b"b" * 1024])
    expect_error(s3.complete_multipart_upload, "EntityTooSmall", 400, Bucket=bucket, Key="small",
                 UploadId=upload_id, MultipartUpload={"Parts": parts})
    expect_error(s3.head_object, "404", 404, Bucket=bucket, Key="small")


def test_invalid_part(s3, bucket):
    upload_id, parts = _upload(s3, bucket, "ip", [b"only part"])
    bad_etag = [{"PartNumber": 1, "ETag": '"00000000000000000000000000000000"'}]
    expect_error(s3.complete_multipart_upload, "InvalidPart", 400, Bucket=bucket, Key="ip",
                 UploadId=upload_id, MultipartUpload={"Parts": bad_etag})
    missing = parts + [{"PartNumber": 2, "ETag": parts[0]["ETag"]}]
    expect_error(s3.complete_multipart_upload, "InvalidPart", 400, Bucket=bucket, Key="ip",
                 UploadId=upload_id, MultipartUpload={"Parts": missing})
    # The upload survives a failed Complete and can still be completed correctly.
    done = s3.complete_multipart_upload(Bucket=bucket, Key="ip", UploadId=upload_id,
                                        MultipartUpload={"Parts": parts})
    assert done["ETag"] == support.multipart_etag([b"only part"])
    assert s3.get_object(Bucket=bucket, Key="ip")["Body"].read() == b"only part"


@pytest.mark.moto_quirk("moto sorts the parts of Complete itself")
def test_invalid_part_order(s3, bucket):
    # Both parts >= 5 MiB so that EntityTooSmall cannot be the answer in either order.
    first, second = support.data(5 * MIB, seed=1), support.data(5 * MIB, seed=2)
    upload_id, parts = _upload(s3, bucket, "order", [first, second])
    expect_error(s3.complete_multipart_upload, "InvalidPartOrder", 400, Bucket=bucket, Key="order",
                 UploadId=upload_id, MultipartUpload={"Parts": list(reversed(parts))})
    s3.complete_multipart_upload(Bucket=bucket, Key="order", UploadId=upload_id, MultipartUpload={"Parts": parts})
    assert s3.get_object(Bucket=bucket, Key="order")["Body"].read() == first + second


@pytest.mark.moto_quirk("moto answers 500 for an upload id it never issued")
def test_no_such_upload_bogus_id(s3, bucket):
    bogus = "bm8tc3VjaC11cGxvYWQ"
    expect_error(s3.upload_part, "NoSuchUpload", 404, Bucket=bucket, Key="k", UploadId=bogus, PartNumber=1,
                 Body=b"x")
    expect_error(s3.list_parts, "NoSuchUpload", 404, Bucket=bucket, Key="k", UploadId=bogus)
    expect_error(s3.abort_multipart_upload, "NoSuchUpload", 404, Bucket=bucket, Key="k", UploadId=bogus)


@pytest.mark.moto_quirk("moto answers 500 for Complete on an aborted upload")
def test_no_such_upload_after_abort(s3, bucket):
    upload_id, parts = _upload(s3, bucket, "k", [b"x"])
    s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id)
    expect_error(s3.complete_multipart_upload, "NoSuchUpload", 404, Bucket=bucket, Key="k", UploadId=upload_id,
                 MultipartUpload={"Parts": parts})
    expect_error(s3.upload_part, "NoSuchUpload", 404, Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=2,
                 Body=b"y")


@pytest.mark.moto_quirk("moto accepts keys over 1024 bytes")
def test_key_too_long(s3, bucket):
    expect_error(s3.put_object, "KeyTooLongError", 400, Bucket=bucket, Key="k" * 1025, Body=b"x")
