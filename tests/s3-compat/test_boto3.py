"""boto3 with current defaults (CRC32 request checksums, ChecksumMode=ENABLED on GET).

Object CRUD, user metadata, ETags, ListObjectsV2/V1 pagination, delimiters and
encoding-type=url, s3transfer multipart upload/download, and byte ranges.
"""

from __future__ import annotations

import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

import support
from support import KIB, MIB, error_code
from support import status_code as status


def test_put_get_head_delete(s3, bucket):
    body = support.data(10 * KIB + 3, seed=1)
    put = s3.put_object(Bucket=bucket, Key="obj", Body=body, ContentType="application/x-thing")
    assert put["ETag"] == support.quoted_md5(body)
    head = s3.head_object(Bucket=bucket, Key="obj")
    assert head["ContentLength"] == len(body)
    assert head["ContentType"] == "application/x-thing"
    assert head["ETag"] == put["ETag"]
    got = s3.get_object(Bucket=bucket, Key="obj")
    assert got["Body"].read() == body
    assert got["ETag"] == put["ETag"]
    assert got["LastModified"] == head["LastModified"]
    deleted = s3.delete_object(Bucket=bucket, Key="obj")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="obj")
    assert status(err.value) == 404
    # Deleting a missing key is not an error in S3.
    assert s3.delete_object(Bucket=bucket, Key="obj")["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_overwrite_replaces_content(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=support.data(100 * KIB, seed=1))
    second = support.data(7, seed=2)
    s3.put_object(Bucket=bucket, Key="k", Body=second)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == second
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert [(o["Key"], o["Size"]) for o in listed] == [("k", 7)]


@pytest.mark.parametrize("size", [0, 1, 4 * KIB, 4 * KIB + 1, 5000, MIB + 1])
def test_single_put_etag_is_quoted_md5(s3, bucket, size):
    body = support.data(size, seed=size)
    put = s3.put_object(Bucket=bucket, Key=f"e{size}", Body=body)
    assert put["ETag"] == support.quoted_md5(body)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"e{size}")["Contents"]
    assert listed[0]["ETag"] == support.quoted_md5(body)
    assert listed[0]["Size"] == size
    assert s3.get_object(Bucket=bucket, Key=f"e{size}")["Body"].read() == body


def test_user_metadata_round_trip(s3, bucket):
    meta = {"color": "blue", "with-dash": "x y z", "number": "42", "empty": ""}
    s3.put_object(Bucket=bucket, Key="m", Body=b"m", Metadata=meta, CacheControl="no-cache",
                  ContentDisposition='attachment; filename="m.txt"', ContentEncoding="identity",
                  ContentLanguage="en")
    head = s3.head_object(Bucket=bucket, Key="m")
    assert head["Metadata"] == meta
    assert head["CacheControl"] == "no-cache"
    assert head["ContentDisposition"] == 'attachment; filename="m.txt"'
    assert head["ContentEncoding"] == "identity"
    assert head["ContentLanguage"] == "en"
    got = s3.get_object(Bucket=bucket, Key="m")
    assert got["Metadata"] == meta


@pytest.fixture(scope="module")
def listing_bucket(s3):
    """~1,100 keys, written in parallel once for the pagination tests."""
    name = support.bucket_name("listing-1100")
    s3.create_bucket(Bucket=name)
    keys = [f"k/{i:05d}" for i in range(1100)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=name, Key=k, Body=k.encode()), keys))
    return name, keys


def test_list_objects_v2_paginator(s3, listing_bucket):
    name, keys = listing_bucket
    paginator = s3.get_paginator("list_objects_v2")
    pages = list(paginator.paginate(Bucket=name))
    assert [len(p.get("Contents", [])) for p in pages] == [1000, 100], "server default page is 1000 keys"
    assert pages[0]["IsTruncated"] is True and pages[0]["NextContinuationToken"]
    assert [o["Key"] for p in pages for o in p["Contents"]] == keys
    pages = list(paginator.paginate(Bucket=name, PaginationConfig={"PageSize": 250}))
    assert len(pages) == 5
    assert [o["Key"] for p in pages for o in p["Contents"]] == keys
    assert all(p["KeyCount"] == len(p["Contents"]) for p in pages)
    after = s3.list_objects_v2(Bucket=name, StartAfter="k/01050")
    assert [o["Key"] for o in after["Contents"]] == keys[1051:]


def test_list_objects_v1_marker(s3, listing_bucket):
    name, keys = listing_bucket
    seen, marker = [], ""
    for _ in range(50):
        res = s3.list_objects(Bucket=name, Marker=marker, MaxKeys=300)
        page = [o["Key"] for o in res.get("Contents", [])]
        assert len(page) <= 300
        seen += page
        if not res["IsTruncated"]:
            break
        marker = res.get("NextMarker") or page[-1]
    assert seen == keys
    res = s3.list_objects(Bucket=name, Marker="k/01097")
    assert [o["Key"] for o in res["Contents"]] == keys[1098:]
    assert res["IsTruncated"] is False


def test_delimiter_common_prefixes(s3, bucket):
    for key in ["a", "a/", "a/b", "a/c/d", "b", "c/x"]:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    res = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [o["Key"] for o in res["Contents"]] == ["a", "b"]
    assert [p["Prefix"] for p in res["CommonPrefixes"]] == ["a/", "c/"]
    assert res["KeyCount"] == 4
    res = s3.list_objects_v2(Bucket=bucket, Delimiter="/", Prefix="a/")
    assert [o["Key"] for o in res["Contents"]] == ["a/", "a/b"]
    assert [p["Prefix"] for p in res["CommonPrefixes"]] == ["a/c/"]
    res = s3.list_objects_v2(Bucket=bucket, Prefix="a")
    assert [o["Key"] for o in res["Contents"]] == ["a", "a/", "a/b", "a/c/d"]
    res = s3.list_objects(Bucket=bucket, Delimiter="/")  # v1, as s3cmd lists
    assert [o["Key"] for o in res["Contents"]] == ["a", "b"]
    assert [p["Prefix"] for p in res["CommonPrefixes"]] == ["a/", "c/"]
    # Common prefixes count toward MaxKeys and paginate like keys.
    first = s3.list_objects_v2(Bucket=bucket, Delimiter="/", MaxKeys=2)
    assert first["IsTruncated"] is True
    rest = s3.list_objects_v2(Bucket=bucket, Delimiter="/", ContinuationToken=first["NextContinuationToken"])
    entries = [o["Key"] for o in first.get("Contents", []) + rest.get("Contents", [])]
    entries += [p["Prefix"] for p in first.get("CommonPrefixes", []) + rest.get("CommonPrefixes", [])]
    assert sorted(entries) == ["a", "a/", "b", "c/"]


def test_encoding_type_url(s3, bucket):
    keys = ["plain", "sp ace", "plus+", "ü/日本", "amp&lt", "pct%41"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    # Explicit EncodingType: botocore does not decode, so we see the wire values.
    res = s3.list_objects_v2(Bucket=bucket, EncodingType="url", Delimiter="/")
    assert res["EncodingType"] == "url"
    raw = [o["Key"] for o in res["Contents"]]
    for value in raw:
        assert all(33 <= ord(ch) < 127 for ch in value), f"not url-encoded: {value!r}"
    # botocore decodes these with unquote_plus, so '+' must travel as %2B.
    assert sorted(urllib.parse.unquote_plus(v) for v in raw) == sorted(k for k in keys if "/" not in k)
    assert [urllib.parse.unquote_plus(p["Prefix"]) for p in res["CommonPrefixes"]] == ["ü/"]
    res = s3.list_objects(Bucket=bucket, EncodingType="url")
    assert sorted(urllib.parse.unquote_plus(o["Key"]) for o in res["Contents"]) == sorted(keys)
    # Default boto3 (sends encoding-type=url itself and decodes): exact keys come back.
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]) == sorted(keys)


def test_upload_file_download_file_multipart(s3, bucket, work):
    size = 20 * MIB
    src = work / "twenty.bin"
    body = support.write_file(src, size, seed=20)
    s3.upload_file(str(src), bucket, "twenty.bin")  # default TransferConfig: 8 MiB parts
    head = s3.head_object(Bucket=bucket, Key="twenty.bin")
    assert head["ContentLength"] == size
    assert head["ETag"] == support.multipart_etag(support.split_parts(body, 8 * MIB))
    dst = work / "twenty.out"
    s3.download_file(bucket, "twenty.bin", str(dst))
    assert dst.read_bytes() == body
    # Single-stream download of the same object (GET without range).
    dst2 = work / "twenty.single"
    s3.download_file(bucket, "twenty.bin", str(dst2),
                     Config=TransferConfig(multipart_threshold=64 * MIB, max_concurrency=1))
    assert dst2.read_bytes() == body


@pytest.fixture
def hundred(s3, bucket):
    body = support.data(100, seed=100)
    s3.put_object(Bucket=bucket, Key="hundred", Body=body)
    return body


@pytest.mark.parametrize(
    "spec, start, end",
    [("bytes=0-0", 0, 0), ("bytes=5-", 5, 99), ("bytes=-7", 93, 99), ("bytes=90-200", 90, 99),
     ("bytes=0-99", 0, 99), ("bytes=10-19", 10, 19)],
)
def test_ranges(s3, bucket, hundred, spec, start, end):
    got = s3.get_object(Bucket=bucket, Key="hundred", Range=spec)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["ContentRange"] == f"bytes {start}-{end}/100"
    assert got["ContentLength"] == end - start + 1
    assert got["Body"].read() == hundred[start : end + 1]


@pytest.mark.parametrize("spec", ["bytes=100-", "bytes=200-300"])
def test_range_past_end_is_416(s3, bucket, hundred, spec):
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="hundred", Range=spec)
    assert status(err.value) == 416
    assert error_code(err.value) == "InvalidRange"


@pytest.mark.moto_quirk("moto omits Content-Range on 416")
def test_range_past_end_has_content_range(s3, bucket, hundred):
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="hundred", Range="bytes=100-")
    headers = err.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert headers.get("content-range") == "bytes */100"


def test_range_across_stripes(s3, bucket):
    body = support.data(3 * MIB + 5, seed=9)
    s3.put_object(Bucket=bucket, Key="big", Body=body)
    for start, end in [(MIB - 1, MIB), (MIB - 10, 2 * MIB + 10), (3 * MIB, 3 * MIB + 4), (0, 3 * MIB + 4)]:
        got = s3.get_object(Bucket=bucket, Key="big", Range=f"bytes={start}-{end}")
        assert got["Body"].read() == body[start : end + 1], (start, end)
