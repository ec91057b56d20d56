"""The S3 operations stock clients rely on beyond plain PUT/GET: copies (CopyObject,
UploadPartCopy, `aws s3 cp s3://… s3://…`), object tagging, DeleteObjects, conditional reads
and writes (including racing conditional writers), ListObjectVersions on unversioned buckets,
ACLs, storage classes, `partNumber` reads and GetObjectAttributes.

Every happy path is checked byte for byte and every error by its S3 code and HTTP status.
"""

from __future__ import annotations

import datetime
import hashlib
import http.client
import threading
import time
import urllib.parse

import pytest
from botocore.exceptions import ClientError

import support
from support import MIB


def expect_error(call, code: str, http_status: int, **kwargs):
    with pytest.raises(ClientError) as err:
        call(**kwargs)
    response = err.value.response
    assert (response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]) == (code, http_status)
    return response


def tags_of(s3, bucket, key):
    return {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]}


def upload_parts(s3, bucket, key, bodies, **create):
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key, **create)["UploadId"]
    parts = []
    for number, body in enumerate(bodies, start=1):
        etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=body)["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    return upload, parts


# --- object tagging ---------------------------------------------------------------------------


def test_tagging_put_get_delete_keeps_etag_and_mtime(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"tagged", Tagging="team=blue&note=two%20words&empty=")
    assert tags_of(s3, bucket, "k") == {"team": "blue", "note": "two words", "empty": ""}
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["TagCount"] == 3 and got["Body"].read() == b"tagged"
    assert "x-amz-tagging" not in got["ResponseMetadata"]["HTTPHeaders"], "the stored tag set must not leak"
    before = s3.head_object(Bucket=bucket, Key="k")
    time.sleep(1.1)
    s3.put_object_tagging(Bucket=bucket, Key="k",
                          Tagging={"TagSet": [{"Key": "ü&<>", "Value": "v=1&x"}]})
    assert tags_of(s3, bucket, "k") == {"ü&<>": "v=1&x"}
    after = s3.head_object(Bucket=bucket, Key="k")
    assert (after["ETag"], after["LastModified"]) == (before["ETag"], before["LastModified"])
    s3.delete_object_tagging(Bucket=bucket, Key="k")
    assert tags_of(s3, bucket, "k") == {}
    assert "TagCount" not in s3.get_object(Bucket=bucket, Key="k")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"tagged"


@pytest.mark.parametrize("tagset", [
    [{"Key": f"k{i}", "Value": "v"} for i in range(11)],
    [{"Key": "k" * 129, "Value": "v"}],
    [{"Key": "k", "Value": "v" * 257}],
    [{"Key": "dup", "Value": "1"}, {"Key": "dup", "Value": "2"}],
])
def test_tag_limits_are_invalid_tag(s3, bucket, tagset):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="keep=me")
    expect_error(s3.put_object_tagging, "InvalidTag", 400, Bucket=bucket, Key="k", Tagging={"TagSet": tagset})
    assert tags_of(s3, bucket, "k") == {"keep": "me"}


def test_tag_limits_on_put_and_edges_accepted(s3, bucket):
    expect_error(s3.put_object, "InvalidTag", 400, Bucket=bucket, Key="k", Body=b"x",
                 Tagging="&".join(f"k{i}=v" for i in range(11)))
    expect_error(s3.head_object, "404", 404, Bucket=bucket, Key="k")
    ten = {f"k{i}": "v" * 256 for i in range(9)} | {"K" * 128: ""}
    s3.put_object(Bucket=bucket, Key="k2", Body=b"x")
    s3.put_object_tagging(Bucket=bucket, Key="k2",
                          Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in ten.items()]})
    assert tags_of(s3, bucket, "k2") == ten


def test_tagging_missing_key_is_no_such_key(s3, bucket):
    expect_error(s3.get_object_tagging, "NoSuchKey", 404, Bucket=bucket, Key="nope")
    expect_error(s3.put_object_tagging, "NoSuchKey", 404, Bucket=bucket, Key="nope",
                 Tagging={"TagSet": [{"Key": "a", "Value": "b"}]})


def test_multipart_upload_carries_tags(s3, bucket):
    bodies = [support.data(5 * MIB, 1), support.data(100, 2)]
    upload, parts = upload_parts(s3, bucket, "mp", bodies, Tagging="a=1&b=2")
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload={"Parts": parts})
    assert tags_of(s3, bucket, "mp") == {"a": "1", "b": "2"}
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"".join(bodies)


# --- CopyObject -------------------------------------------------------------------------------


def test_copy_object_copy_and_replace_directives(s3, bucket):
    body = support.data(300 * 1024, 7)
    s3.put_object(Bucket=bucket, Key="src", Body=body, ContentType="text/x-src", Metadata={"m": "1"},
                  CacheControl="no-cache", Tagging="t=1")
    out = s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "src"})
    assert out["CopyObjectResult"]["ETag"] == support.quoted_md5(body)
    head = s3.head_object(Bucket=bucket, Key="copy")
    assert (head["ContentType"], head["Metadata"], head["CacheControl"]) == ("text/x-src", {"m": "1"}, "no-cache")
    assert tags_of(s3, bucket, "copy") == {"t": "1"}
    assert s3.get_object(Bucket=bucket, Key="copy")["Body"].read() == body

    s3.copy_object(Bucket=bucket, Key="replaced", CopySource=f"{bucket}/src", MetadataDirective="REPLACE",
                   ContentType="text/x-new", Metadata={"n": "2"}, TaggingDirective="REPLACE", Tagging="u=2")
    head = s3.head_object(Bucket=bucket, Key="replaced")
    assert (head["ContentType"], head["Metadata"]) == ("text/x-new", {"n": "2"})
    assert "CacheControl" not in head
    assert tags_of(s3, bucket, "replaced") == {"u": "2"}
    assert s3.get_object(Bucket=bucket, Key="replaced")["Body"].read() == body


def test_copy_onto_itself_needs_replace(s3, bucket):
    s3.put_object(Bucket=bucket, Key="self", Body=b"same", Metadata={"v": "1"})
    expect_error(s3.copy_object, "InvalidRequest", 400, Bucket=bucket, Key="self",
                 CopySource={"Bucket": bucket, "Key": "self"})
    s3.copy_object(Bucket=bucket, Key="self", CopySource={"Bucket": bucket, "Key": "self"},
                   MetadataDirective="REPLACE", Metadata={"v": "2"})
    got = s3.get_object(Bucket=bucket, Key="self")
    assert got["Metadata"] == {"v": "2"} and got["Body"].read() == b"same"


def test_copy_source_conditions_follow_s3_precedence(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"conditional")
    etag = s3.head_object(Bucket=bucket, Key="src")["ETag"]
    past = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
    future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
    src = {"Bucket": bucket, "Key": "src"}
    expect_error(s3.copy_object, "PreconditionFailed", 412, Bucket=bucket, Key="d", CopySource=src,
                 CopySourceIfMatch='"0000"')
    expect_error(s3.copy_object, "PreconditionFailed", 412, Bucket=bucket, Key="d", CopySource=src,
                 CopySourceIfNoneMatch=etag)
    expect_error(s3.copy_object, "PreconditionFailed", 412, Bucket=bucket, Key="d", CopySource=src,
                 CopySourceIfModifiedSince=future)
    expect_error(s3.copy_object, "PreconditionFailed", 412, Bucket=bucket, Key="d", CopySource=src,
                 CopySourceIfUnmodifiedSince=past)
    expect_error(s3.head_object, "404", 404, Bucket=bucket, Key="d")
    # A true if-match wins over a false if-unmodified-since.
    s3.copy_object(Bucket=bucket, Key="d", CopySource=src, CopySourceIfMatch=etag,
                   CopySourceIfUnmodifiedSince=past)
    assert s3.get_object(Bucket=bucket, Key="d")["Body"].read() == b"conditional"


def test_copy_source_encoding_version_null_and_missing(s3, bucket, make_client):
    key = "dir/a b+c?&ü.txt"
    s3.put_object(Bucket=bucket, Key=key, Body=b"awkward")
    s3.copy_object(Bucket=bucket, Key="out1", CopySource={"Bucket": bucket, "Key": key, "VersionId": "null"})
    assert s3.get_object(Bucket=bucket, Key="out1")["Body"].read() == b"awkward"
    expect_error(s3.copy_object, "NoSuchKey", 404, Bucket=bucket, Key="out2",
                 CopySource={"Bucket": bucket, "Key": "missing"})
    expect_error(s3.copy_object, "InvalidStorageClass", 400, Bucket=bucket, Key="out3",
                 CopySource={"Bucket": bucket, "Key": key}, StorageClass="GLACIER")


def test_copy_object_conditional_destination(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"new")
    s3.put_object(Bucket=bucket, Key="dst", Body=b"old")
    expect_error(s3.copy_object, "PreconditionFailed", 412, Bucket=bucket, Key="dst",
                 CopySource={"Bucket": bucket, "Key": "src"}, IfNoneMatch="*")
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"old"
    old_etag = s3.head_object(Bucket=bucket, Key="dst")["ETag"]
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"}, IfMatch=old_etag)
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"new"


def test_copy_keeps_or_computes_checksums(s3, bucket):
    body = support.data(70_000, 3)
    s3.put_object(Bucket=bucket, Key="src", Body=body, ChecksumAlgorithm="SHA256")
    out = s3.copy_object(Bucket=bucket, Key="same", CopySource={"Bucket": bucket, "Key": "src"})
    assert out["CopyObjectResult"]["ChecksumSHA256"] == support.checksum_b64("SHA256", body)
    out = s3.copy_object(Bucket=bucket, Key="other", CopySource={"Bucket": bucket, "Key": "src"},
                         ChecksumAlgorithm="CRC32")
    assert out["CopyObjectResult"]["ChecksumCRC32"] == support.checksum_b64("CRC32", body)
    head = s3.head_object(Bucket=bucket, Key="other", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == support.checksum_b64("CRC32", body)


# --- UploadPartCopy and the aws-cli S3→S3 copy ------------------------------------------------


def test_upload_part_copy_with_ranges(s3, bucket):
    src = support.data(12 * MIB + 11, 9)
    s3.put_object(Bucket=bucket, Key="src", Body=src)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
    ranges = [(0, 5 * MIB - 1), (5 * MIB, 10 * MIB - 1), (10 * MIB, len(src) - 1)]
    parts = []
    for number, (first, last) in enumerate(ranges, start=1):
        out = s3.upload_part_copy(Bucket=bucket, Key="dst", UploadId=upload, PartNumber=number,
                                  CopySource={"Bucket": bucket, "Key": "src"},
                                  CopySourceRange=f"bytes={first}-{last}")
        assert out["CopyPartResult"]["ETag"] == support.quoted_md5(src[first:last + 1])
        parts.append({"PartNumber": number, "ETag": out["CopyPartResult"]["ETag"]})
    listed = s3.list_parts(Bucket=bucket, Key="dst", UploadId=upload)["Parts"]
    assert [p["Size"] for p in listed] == [last - first + 1 for first, last in ranges]
    s3.complete_multipart_upload(Bucket=bucket, Key="dst", UploadId=upload, MultipartUpload={"Parts": parts})
    got = s3.get_object(Bucket=bucket, Key="dst")["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(src).digest()


def test_upload_part_copy_errors(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"0123456789")
    upload = s3.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
    common = dict(Bucket=bucket, Key="dst", UploadId=upload, PartNumber=1, CopySource={"Bucket": bucket, "Key": "src"})
    for bad in ["bytes=5-", "bytes=-5", "bytes=7-3", "0-3", "bytes=a-b"]:
        expect_error(s3.upload_part_copy, "InvalidArgument", 400, CopySourceRange=bad, **common)
    expect_error(s3.upload_part_copy, "InvalidRange", 416, CopySourceRange="bytes=0-10", **common)
    expect_error(s3.upload_part_copy, "PreconditionFailed", 412, CopySourceIfMatch='"nope"', **common)
    expect_error(s3.upload_part_copy, "NoSuchUpload", 404, **(common | {"UploadId": "0" * 32}))
    out = s3.upload_part_copy(CopySourceRange="bytes=2-4", **common)
    assert out["CopyPartResult"]["ETag"] == support.quoted_md5(b"234")
    assert s3.list_parts(Bucket=bucket, Key="dst", UploadId=upload)["Parts"][0]["Size"] == 3


def test_s3_to_s3_copy_100mib_awscli_and_copy_props(aws, aws_json, s3, bucket, work):
    size = 100 * MIB
    src = work / "big.bin"
    support.write_file(src, size, seed=100)
    aws("s3", "cp", src, f"s3://{bucket}/big.bin", "--metadata", "origin=test", "--content-type", "video/x-test")
    s3.put_object_tagging(Bucket=bucket, Key="big.bin",
                          Tagging={"TagSet": [{"Key": "class", "Value": "big"}, {"Key": "n", "Value": "1"}]})
    # aws-cli (v1 on PyPI): HeadObject, CreateMultipartUpload, UploadPartCopy with ranges and
    # x-amz-copy-source-if-match, Complete. (v1 carries neither properties nor tags.)
    aws("s3", "cp", f"s3://{bucket}/big.bin", f"s3://{bucket}/copy/big.bin")
    head = aws_json("s3api", "head-object", "--bucket", bucket, "--key", "copy/big.bin")
    assert head["ContentLength"] == size
    dst = work / "copy.bin"
    aws("s3", "cp", f"s3://{bucket}/copy/big.bin", dst)
    assert support.file_sha256(dst) == support.file_sha256(src)
    dst.unlink()

    # aws-cli v2's default --copy-props on the same s3transfer copy: the source's properties go
    # on CreateMultipartUpload, then GetObjectTagging on the source and PutObjectTagging on the
    # finished copy.
    source = s3.head_object(Bucket=bucket, Key="big.bin")
    s3.copy({"Bucket": bucket, "Key": "big.bin"}, bucket, "props/big.bin",
            ExtraArgs={"ContentType": source["ContentType"], "Metadata": source["Metadata"]})
    tags = s3.get_object_tagging(Bucket=bucket, Key="big.bin")["TagSet"]
    s3.put_object_tagging(Bucket=bucket, Key="props/big.bin", Tagging={"TagSet": tags})
    head = s3.head_object(Bucket=bucket, Key="props/big.bin")
    assert (head["ContentLength"], head["ContentType"], head["Metadata"]) == (size, "video/x-test", {"origin": "test"})
    assert tags_of(s3, bucket, "props/big.bin") == {"class": "big", "n": "1"}
    aws("s3", "cp", f"s3://{bucket}/props/big.bin", dst)
    assert support.file_sha256(dst) == support.file_sha256(src)


# --- DeleteObjects ----------------------------------------------------------------------------


def test_delete_objects_verbose_quiet_and_limits(s3, bucket):
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"k{i}", Body=b"x")
    out = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k0"}, {"Key": "k1"}, {"Key": "never"}]})
    assert sorted(d["Key"] for d in out["Deleted"]) == ["k0", "k1", "never"]
    out = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k2"}, {"Key": "k3", "VersionId": "null"}],
                                                   "Quiet": True})
    assert "Deleted" not in out and "Errors" not in out
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["k4"]
    expect_error(s3.delete_objects, "MalformedXML", 400, Bucket=bucket,
                 Delete={"Objects": [{"Key": f"x{i}"} for i in range(1001)]})
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["k4"]


@pytest.mark.strata_only
def test_delete_objects_checksum_instead_of_md5_and_bad_xml(endpoint, s3, bucket):
    s3.put_object(Bucket=bucket, Key="gone", Body=b"x")
    doc = b"<Delete><Object><Key>gone</Key></Object></Delete>"
    ok = support.raw_request(endpoint, "POST", f"/{bucket}?delete", body=doc, signed=True,
                             headers={"x-amz-checksum-crc32": support.checksum_b64("CRC32", doc)})
    assert ok.status == 200 and b"<Deleted><Key>gone</Key>" in ok.body
    bad = support.raw_request(endpoint, "POST", f"/{bucket}?delete", body=doc, signed=True,
                              headers={"x-amz-checksum-crc32": support.checksum_b64("CRC32", b"other")})
    assert bad.status == 400 and b"<Code>BadDigest</Code>" in bad.body
    broken = support.raw_request(endpoint, "POST", f"/{bucket}?delete", body=b"<Delete><Object>", signed=True)
    assert broken.status == 400 and b"<Code>MalformedXML</Code>" in broken.body


# --- conditional reads ------------------------------------------------------------------------


def test_conditional_get_and_head(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"cond")
    etag = s3.head_object(Bucket=bucket, Key="k")["ETag"]
    past = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
    future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
    for call in (s3.get_object, s3.head_object):
        expect_error(call, "PreconditionFailed" if call == s3.get_object else "412", 412,
                     Bucket=bucket, Key="k", IfMatch='"bad"')
        expect_error(call, "PreconditionFailed" if call == s3.get_object else "412", 412,
                     Bucket=bucket, Key="k", IfUnmodifiedSince=past)
        expect_error(call, "304", 304, Bucket=bucket, Key="k", IfNoneMatch=etag)
        expect_error(call, "304", 304, Bucket=bucket, Key="k", IfModifiedSince=future)
        # Precedence: a true If-Match beats a false If-Unmodified-Since ...
        assert call(Bucket=bucket, Key="k", IfMatch=etag, IfUnmodifiedSince=past)["ETag"] == etag
        # ... and a false If-None-Match beats a true If-Modified-Since (not modified).
        assert call(Bucket=bucket, Key="k", IfNoneMatch='"other"', IfModifiedSince=future)["ETag"] == etag
        assert call(Bucket=bucket, Key="k", IfMatch="*", IfModifiedSince=past)["ETag"] == etag


# --- conditional writes -----------------------------------------------------------------------


def test_conditional_put_and_complete(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"one", IfNoneMatch="*")
    expect_error(s3.put_object, "PreconditionFailed", 412, Bucket=bucket, Key="k", Body=b"two", IfNoneMatch="*")
    etag = s3.head_object(Bucket=bucket, Key="k")["ETag"]
    expect_error(s3.put_object, "PreconditionFailed", 412, Bucket=bucket, Key="k", Body=b"two", IfMatch='"bad"')
    expect_error(s3.put_object, "NoSuchKey", 404, Bucket=bucket, Key="absent", Body=b"two", IfMatch=etag)
    s3.put_object(Bucket=bucket, Key="k", Body=b"three", IfMatch=etag)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"three"

    upload, parts = upload_parts(s3, bucket, "k", [b"mp"])
    expect_error(s3.complete_multipart_upload, "PreconditionFailed", 412, Bucket=bucket, Key="k",
                 UploadId=upload, MultipartUpload={"Parts": parts}, IfNoneMatch="*")
    upload2, parts2 = upload_parts(s3, bucket, "fresh", [b"mp"])
    expect_error(s3.complete_multipart_upload, "NoSuchKey", 404, Bucket=bucket, Key="fresh",
                 UploadId=upload2, MultipartUpload={"Parts": parts2}, IfMatch='"x"')
    s3.complete_multipart_upload(Bucket=bucket, Key="fresh", UploadId=upload2,
                                 MultipartUpload={"Parts": parts2}, IfNoneMatch="*")
    current = s3.head_object(Bucket=bucket, Key="k")["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=upload, MultipartUpload={"Parts": parts},
                                 IfMatch=current)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"mp"


def _race(make_client, bucket, key, rounds, bodies_of, **conditions_of):
    """Runs `rounds` races of two conditional PUTs; returns [(statuses, stored body, bodies)]."""
    clients = [make_client(), make_client()]
    results = []
    for round_no in range(rounds):
        bodies = bodies_of(round_no)
        conditions = {name: make(round_no) for name, make in conditions_of.items()}
        statuses = [None, None]
        barrier = threading.Barrier(2, timeout=30)

        def run(i):
            barrier.wait()
            try:
                clients[i].put_object(Bucket=bucket, Key=key(round_no), Body=bodies[i], **conditions)
                statuses[i] = 200
            except ClientError as exc:
                statuses[i] = exc.response["ResponseMetadata"]["HTTPStatusCode"]

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        stored = clients[0].get_object(Bucket=bucket, Key=key(round_no))["Body"].read()
        results.append((statuses, stored, bodies))
    return results


@pytest.mark.moto_quirk("moto's conditional writes are not atomic")
def test_racing_if_none_match_writers_exactly_one_wins(make_client, bucket):
    # 20 KiB bodies: big enough to go through the sharded write path, not the inline one.
    results = _race(make_client, bucket, lambda r: f"race-{r}", 25,
                    lambda r: [support.data(20 * 1024, 2 * r), support.data(20 * 1024, 2 * r + 1)],
                    IfNoneMatch=lambda r: "*")
    for statuses, stored, bodies in results:
        assert sorted(statuses) in ([200, 409], [200, 412]), statuses
        assert stored == bodies[statuses.index(200)], "the winner's bytes are what is stored"


@pytest.mark.moto_quirk("moto's conditional writes are not atomic")
def test_racing_if_match_writers_exactly_one_wins(make_client, s3, bucket):
    for r in range(25):
        s3.put_object(Bucket=bucket, Key=f"m-{r}", Body=b"base")
    etag = support.quoted_md5(b"base")
    results = _race(make_client, bucket, lambda r: f"m-{r}", 25,
                    lambda r: [support.data(20 * 1024, 100 + 2 * r), support.data(20 * 1024, 101 + 2 * r)],
                    IfMatch=lambda r: etag)
    for statuses, stored, bodies in results:
        assert sorted(statuses) in ([200, 409], [200, 412]), statuses
        assert stored == bodies[statuses.index(200)]


def _slow_signed_put(endpoint, bucket, key, body, headers, pieces=16, pause=0.1):
    """A SigV4-signed PUT whose body trickles in over about pieces*pause seconds."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="PUT", url=f"{endpoint}/{bucket}/{key}", data=body,
                         headers=dict(headers, **{"Content-Length": str(len(body))}))
    S3SigV4Auth(Credentials(support.ACCESS_KEY, support.SECRET_KEY), "s3", support.REGION).add_auth(request)
    parsed = urllib.parse.urlsplit(endpoint)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    try:
        conn.putrequest("PUT", f"/{bucket}/{key}", skip_accept_encoding=True)
        for name, value in request.headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        step = -(-len(body) // pieces)
        for start in range(0, len(body), step):
            conn.send(body[start:start + step])
            time.sleep(pause)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.mark.strata_only
def test_if_match_write_whose_object_is_deleted_meanwhile_is_409(endpoint, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"base")
    etag = s3.head_object(Bucket=bucket, Key="k")["ETag"]
    body = support.data(4 * MIB, 21)
    outcome = {}

    def writer():
        outcome["answer"] = _slow_signed_put(endpoint, bucket, "k", body, {"If-Match": etag})

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(0.5)  # the writer has passed its precondition check and is streaming
    s3.delete_object(Bucket=bucket, Key="k")
    thread.join(timeout=60)
    status, answer = outcome["answer"]
    assert status == 409 and b"<Code>ConditionalRequestConflict</Code>" in answer, answer
    expect_error(s3.head_object, "404", 404, Bucket=bucket, Key="k")


# --- versioning views of an unversioned bucket ------------------------------------------------


def test_get_bucket_versioning_unversioned(s3, bucket):
    out = s3.get_bucket_versioning(Bucket=bucket)
    assert "Status" not in out and "MFADelete" not in out


def test_list_object_versions_unversioned(s3, bucket):
    keys = ["a/1", "a/2", "b", "c/x/y", "d", "e f+g"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    out = s3.list_object_versions(Bucket=bucket)
    assert [v["Key"] for v in out["Versions"]] == sorted(keys)
    assert all(v["VersionId"] == "null" and v["IsLatest"] for v in out["Versions"])
    assert all(v["StorageClass"] == "STANDARD" for v in out["Versions"])
    assert out["Versions"][0]["ETag"] == support.quoted_md5(b"a/1")
    assert "DeleteMarkers" not in out
    out = s3.list_object_versions(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in out["CommonPrefixes"]] == ["a/", "c/"]
    assert [v["Key"] for v in out["Versions"]] == ["b", "d", "e f+g"]
    out = s3.list_object_versions(Bucket=bucket, Prefix="a/")
    assert [v["Key"] for v in out["Versions"]] == ["a/1", "a/2"]
    pages = list(s3.get_paginator("list_object_versions").paginate(Bucket=bucket, PaginationConfig={"PageSize": 2}))
    assert len(pages) == 3
    assert [v["Key"] for p in pages for v in p.get("Versions", [])] == sorted(keys)
    assert pages[0]["NextVersionIdMarker"] == "null"
    out = s3.list_object_versions(Bucket=bucket, KeyMarker="b", VersionIdMarker="null")
    assert [v["Key"] for v in out["Versions"]] == ["c/x/y", "d", "e f+g"]
    expect_error(s3.list_object_versions, "InvalidArgument", 400, Bucket=bucket, VersionIdMarker="null")


@pytest.mark.strata_only
def test_list_object_versions_url_encoding(endpoint, s3, bucket):
    s3.put_object(Bucket=bucket, Key="sp ace+plus", Body=b"x")
    raw = support.raw_request(endpoint, "GET", f"/{bucket}?versions&encoding-type=url", signed=True)
    assert raw.status == 200
    assert b"<Key>sp%20ace%2Bplus</Key>" in raw.body and b"<EncodingType>url</EncodingType>" in raw.body
    # botocore asks for encoding-type=url by itself and decodes the answer.
    assert s3.list_object_versions(Bucket=bucket)["Versions"][0]["Key"] == "sp ace+plus"


# --- ACLs and storage classes -----------------------------------------------------------------


@pytest.mark.moto_quirk("moto implements ACLs; Strata answers like an S3 bucket with BucketOwnerEnforced")
def test_owner_only_acls(s3, bucket):
    s3.put_object(Bucket=bucket, Key="private", Body=b"x", ACL="private")
    s3.put_object(Bucket=bucket, Key="bofc", Body=b"x", ACL="bucket-owner-full-control")
    expect_error(s3.put_object, "AccessControlListNotSupported", 400, Bucket=bucket, Key="public",
                 Body=b"x", ACL="public-read")
    expect_error(s3.head_object, "404", 404, Bucket=bucket, Key="public")
    for acl in (s3.get_bucket_acl(Bucket=bucket), s3.get_object_acl(Bucket=bucket, Key="private")):
        assert [g["Permission"] for g in acl["Grants"]] == ["FULL_CONTROL"]
        assert acl["Grants"][0]["Grantee"]["Type"] == "CanonicalUser"
        assert acl["Grants"][0]["Grantee"]["ID"] == acl["Owner"]["ID"]
    s3.put_bucket_acl(Bucket=bucket, ACL="private")
    s3.put_object_acl(Bucket=bucket, Key="private", ACL="bucket-owner-full-control")
    policy = s3.get_object_acl(Bucket=bucket, Key="private")
    s3.put_object_acl(Bucket=bucket, Key="private",
                      AccessControlPolicy={"Owner": policy["Owner"], "Grants": policy["Grants"]})
    expect_error(s3.put_bucket_acl, "AccessControlListNotSupported", 400, Bucket=bucket, ACL="public-read")
    expect_error(s3.put_object_acl, "AccessControlListNotSupported", 400, Bucket=bucket, Key="private",
                 GrantRead='uri="http://acs.amazonaws.com/groups/global/AllUsers"')
    expect_error(s3.get_object_acl, "NoSuchKey", 404, Bucket=bucket, Key="absent")
    name = support.bucket_name("acl-create")
    s3.create_bucket(Bucket=name, ACL="private")
    # AWS (since April 2023): a public ACL on a new bucket, whose ACLs are disabled by default.
    expect_error(s3.create_bucket, "InvalidBucketAclWithObjectOwnership", 400,
                 Bucket=support.bucket_name("acl-pub"), ACL="public-read")


def test_storage_classes(s3, bucket):
    s3.put_object(Bucket=bucket, Key="std", Body=b"x", StorageClass="STANDARD")
    expect_error(s3.put_object, "InvalidStorageClass", 400, Bucket=bucket, Key="g", Body=b"x",
                 StorageClass="GLACIER")
    expect_error(s3.create_multipart_upload, "InvalidStorageClass", 400, Bucket=bucket, Key="g",
                 StorageClass="DEEP_ARCHIVE")
    assert s3.list_objects_v2(Bucket=bucket)["Contents"][0]["StorageClass"] == "STANDARD"
    assert s3.list_objects(Bucket=bucket)["Contents"][0]["StorageClass"] == "STANDARD"


# --- partNumber reads and GetObjectAttributes -------------------------------------------------


@pytest.fixture
def multipart_object(s3, bucket):
    bodies = [support.data(5 * MIB, 11), support.data(5 * MIB + 7, 12), support.data(1234, 13)]
    upload, parts = upload_parts(s3, bucket, "mp", bodies, ChecksumAlgorithm="CRC32")
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload={"Parts": parts})
    return bodies


def test_part_number_reads(s3, bucket, multipart_object):
    bodies = multipart_object
    total = sum(map(len, bodies))
    start = len(bodies[0])
    got = s3.get_object(Bucket=bucket, Key="mp", PartNumber=2)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["PartsCount"] == 3
    assert got["ContentRange"] == f"bytes {start}-{start + len(bodies[1]) - 1}/{total}"
    assert got["Body"].read() == bodies[1]
    head = s3.head_object(Bucket=bucket, Key="mp", PartNumber=3)
    assert (head["ContentLength"], head["PartsCount"]) == (len(bodies[2]), 3)
    assert "PartsCount" not in s3.head_object(Bucket=bucket, Key="mp")
    expect_error(s3.get_object, "InvalidPartNumber", 416, Bucket=bucket, Key="mp", PartNumber=4)
    expect_error(s3.get_object, "InvalidRequest", 400, Bucket=bucket, Key="mp", PartNumber=1, Range="bytes=0-1")
    s3.put_object(Bucket=bucket, Key="single", Body=b"0123456789")
    one = s3.get_object(Bucket=bucket, Key="single", PartNumber=1)
    assert one["ResponseMetadata"]["HTTPStatusCode"] == 206 and one["ContentRange"] == "bytes 0-9/10"
    assert one["Body"].read() == b"0123456789"
    expect_error(s3.get_object, "InvalidPartNumber", 416, Bucket=bucket, Key="single", PartNumber=2)


def test_get_object_attributes(s3, bucket, multipart_object):
    bodies = multipart_object
    out = s3.get_object_attributes(Bucket=bucket, Key="mp",
                                   ObjectAttributes=["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"])
    assert out["ETag"] == support.multipart_etag(bodies).strip('"')
    assert out["ObjectSize"] == sum(map(len, bodies))
    assert out["StorageClass"] == "STANDARD"
    assert out["Checksum"]["ChecksumCRC32"] == support.composite_checksum_b64("CRC32", bodies)
    assert out["ObjectParts"]["TotalPartsCount"] == 3
    assert [p["Size"] for p in out["ObjectParts"]["Parts"]] == [len(b) for b in bodies]
    assert out["ObjectParts"]["Parts"][1]["ChecksumCRC32"] == support.checksum_b64("CRC32", bodies[1])
    paged = s3.get_object_attributes(Bucket=bucket, Key="mp", ObjectAttributes=["ObjectParts"], MaxParts=2)
    assert paged["ObjectParts"]["IsTruncated"] and len(paged["ObjectParts"]["Parts"]) == 2
    rest = s3.get_object_attributes(Bucket=bucket, Key="mp", ObjectAttributes=["ObjectParts"],
                                    PartNumberMarker=paged["ObjectParts"]["NextPartNumberMarker"])
    assert [p["PartNumber"] for p in rest["ObjectParts"]["Parts"]] == [3]
    s3.put_object(Bucket=bucket, Key="single", Body=b"abc")
    single = s3.get_object_attributes(Bucket=bucket, Key="single", ObjectAttributes=["ETag", "ObjectParts"])
    assert single["ETag"] == support.md5_hex(b"abc") and "ObjectParts" not in single
    expect_error(s3.get_object_attributes, "NoSuchKey", 404, Bucket=bucket, Key="nope", ObjectAttributes=["ETag"])
    expect_error(s3.get_object_attributes, "InvalidArgument", 400, Bucket=bucket, Key="single",
                 ObjectAttributes=["Bogus"])
