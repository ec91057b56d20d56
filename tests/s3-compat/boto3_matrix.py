"""Shared boto3 test bodies, run by every boto3 generation of the client matrix.

Owns: one plain function per scenario (`case_*`), each taking a `Case` (a boto3 client built
for one endpoint, a fresh bucket, a scratch directory) and raising AssertionError on any
deviation. `test_boto3_matrix.py` runs every case in-process with the current boto3 and, in a
subprocess, under the pinned legacy boto3 1.35 venv (`python boto3_matrix.py CASE …`), so the
same assertions cover both wire shapes:

- boto3 >= 1.36: CRC32 flexible checksums (a header over http, an aws-chunked trailer over
  https), no Content-MD5;
- boto3 1.35: Content-MD5 on PutObject/UploadPart/DeleteObjects, no x-amz-checksum-*, no trailer.

Invariants: this module imports only the standard library, boto3/botocore and `support` (which
imports nothing but the standard library at load time), so it runs under either interpreter;
every transfer is compared byte for byte; nothing talks to anything but the given endpoint.
"""

from __future__ import annotations

import argparse
import http.client
import ssl
import sys
import traceback
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import botocore
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

import support
from support import KIB, MIB, error_code


@dataclass
class Case:
    endpoint: str
    bucket: str
    work: Path
    ca_bundle: str | None = None
    sent: list = field(default_factory=list)  # (operation name, headers) of every request sent

    def client(self, **config) -> "botocore.client.BaseClient":
        session = boto3.session.Session(aws_access_key_id=support.ACCESS_KEY,
                                        aws_secret_access_key=support.SECRET_KEY, region_name=support.REGION)
        s3 = session.client("s3", endpoint_url=self.endpoint, verify=self.ca_bundle or True,
                            config=Config(**config) if config else None)
        s3.meta.events.register("before-send.s3.*", self._record)
        return s3

    def _record(self, request, **kwargs):
        operation = kwargs.get("event_name", "").rsplit(".", 1)[-1]
        self.sent.append((operation, {k.lower(): (v.decode() if isinstance(v, bytes) else v)
                                      for k, v in request.headers.items()}))

    def sent_headers(self, operation: str) -> list[dict]:
        return [headers for name, headers in self.sent if name == operation]

    @property
    def https(self) -> bool:
        return self.endpoint.startswith("https://")


def legacy_client() -> bool:
    """True for botocore before the 1.36 default-checksum change."""
    major, minor = (int(x) for x in botocore.__version__.split(".")[:2])
    return (major, minor) < (1, 36)


def check_upload_wire_shape(case: Case, operation: str) -> None:
    """Every recorded `operation` request carried this generation's integrity header(s)."""
    sent = case.sent_headers(operation)
    assert sent, f"no {operation} request was recorded"
    for headers in sent:
        checksum_headers = sorted(h for h in headers if h.startswith("x-amz-checksum-"))
        if legacy_client():
            assert "content-md5" in headers, f"boto3 1.35 sends Content-MD5 on {operation}: {headers}"
            assert not checksum_headers and "x-amz-trailer" not in headers, headers
        elif case.https and operation in ("PutObject", "UploadPart"):
            # Streaming body over TLS: an unsigned aws-chunked body with a CRC32 trailer.
            assert headers.get("x-amz-content-sha256") == "STREAMING-UNSIGNED-PAYLOAD-TRAILER", headers
            assert headers.get("x-amz-trailer") == "x-amz-checksum-crc32", headers
            assert "content-md5" not in headers, headers
        else:
            assert checksum_headers == ["x-amz-checksum-crc32"], headers
            assert "content-md5" not in headers, headers


def fetch(case: Case, url: str, method: str = "GET", body: bytes | None = None,
          headers: dict | None = None) -> tuple[int, bytes]:
    """A plain HTTP(S) request (as a browser or curl would send a presigned URL)."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme == "https":
        context = ssl.create_default_context(cafile=case.ca_bundle)
        conn = http.client.HTTPSConnection(parsed.hostname, parsed.port, timeout=60, context=context)
    else:
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    try:
        target = parsed.path + (f"?{parsed.query}" if parsed.query else "")
        conn.request(method, target, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


# ---- the cases -------------------------------------------------------------------------------


def case_put_get_head_delete(case: Case) -> None:
    s3 = case.client()
    for size in (0, 1, 4 * KIB + 1, 300 * KIB + 7):
        body = support.data(size, seed=size)
        key = f"obj/{size}"
        put = s3.put_object(Bucket=case.bucket, Key=key, Body=body, ContentType="application/x-matrix",
                            Metadata={"generation": "any"})
        assert put["ETag"] == support.quoted_md5(body), (size, put["ETag"])
        head = s3.head_object(Bucket=case.bucket, Key=key)
        assert head["ContentLength"] == size and head["ETag"] == put["ETag"]
        assert head["ContentType"] == "application/x-matrix" and head["Metadata"] == {"generation": "any"}
        got = s3.get_object(Bucket=case.bucket, Key=key)
        assert got["Body"].read() == body, size
    check_upload_wire_shape(case, "PutObject")
    s3.delete_object(Bucket=case.bucket, Key="obj/1")
    try:
        s3.get_object(Bucket=case.bucket, Key="obj/1")
        raise AssertionError("a deleted key must be gone")
    except ClientError as exc:
        assert error_code(exc) == "NoSuchKey", exc.response


def case_list_v1_v2(case: Case) -> None:
    s3 = case.client()
    keys = ["a/1", "a/2", "a/b/3", "c", "d/4", "e"]
    for key in keys:
        s3.put_object(Bucket=case.bucket, Key=key, Body=key.encode())
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=case.bucket, PaginationConfig={"PageSize": 2}))
    assert len(pages) == 3
    assert [o["Key"] for p in pages for o in p["Contents"]] == keys
    res = s3.list_objects_v2(Bucket=case.bucket, Delimiter="/")
    assert [o["Key"] for o in res["Contents"]] == ["c", "e"]
    assert [p["Prefix"] for p in res["CommonPrefixes"]] == ["a/", "d/"]
    pages = list(s3.get_paginator("list_objects").paginate(Bucket=case.bucket, PaginationConfig={"PageSize": 4}))
    assert [o["Key"] for p in pages for o in p["Contents"]] == keys
    res = s3.list_objects(Bucket=case.bucket, Prefix="a/", Delimiter="/")
    assert [o["Key"] for o in res["Contents"]] == ["a/1", "a/2"]
    assert [p["Prefix"] for p in res["CommonPrefixes"]] == ["a/b/"]


def case_multipart_low_level(case: Case) -> None:
    s3 = case.client()
    bodies = [support.data(5 * MIB, seed=11), support.data(5 * MIB, seed=12), support.data(77 * KIB, seed=13)]
    upload_id = s3.create_multipart_upload(Bucket=case.bucket, Key="mp", ContentType="x/y")["UploadId"]
    parts = []
    for number, body in enumerate(bodies, start=1):
        res = s3.upload_part(Bucket=case.bucket, Key="mp", UploadId=upload_id, PartNumber=number, Body=body)
        assert res["ETag"] == support.quoted_md5(body)
        parts.append({"PartNumber": number, "ETag": res["ETag"]})
    check_upload_wire_shape(case, "UploadPart")
    listed = s3.list_parts(Bucket=case.bucket, Key="mp", UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in listed] == [(i + 1, len(b)) for i, b in enumerate(bodies)]
    done = s3.complete_multipart_upload(Bucket=case.bucket, Key="mp", UploadId=upload_id,
                                        MultipartUpload={"Parts": parts})
    assert done["ETag"] == support.multipart_etag(bodies)
    got = s3.get_object(Bucket=case.bucket, Key="mp")
    assert got["ContentType"] == "x/y" and got["ContentLength"] == sum(map(len, bodies))
    assert got["Body"].read() == b"".join(bodies)
    # An aborted upload leaves nothing behind.
    aborted = s3.create_multipart_upload(Bucket=case.bucket, Key="gone")["UploadId"]
    s3.upload_part(Bucket=case.bucket, Key="gone", UploadId=aborted, PartNumber=1, Body=b"x" * 100)
    s3.abort_multipart_upload(Bucket=case.bucket, Key="gone", UploadId=aborted)
    assert not s3.list_multipart_uploads(Bucket=case.bucket).get("Uploads")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=case.bucket)["Contents"]] == ["mp"]


def case_transfer_manager(case: Case) -> None:
    """upload_file/download_file with a 5 MiB threshold: 3 parts up, ranged parallel GETs down."""
    s3 = case.client()
    src = case.work / "eleven.bin"
    body = support.write_file(src, 11 * MIB, seed=11)
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB, max_concurrency=4)
    s3.upload_file(str(src), case.bucket, "eleven.bin", Config=config)
    head = s3.head_object(Bucket=case.bucket, Key="eleven.bin")
    assert head["ContentLength"] == len(body)
    assert head["ETag"] == support.multipart_etag(support.split_parts(body, 5 * MIB))
    check_upload_wire_shape(case, "UploadPart")
    dst = case.work / "eleven.out"
    s3.download_file(case.bucket, "eleven.bin", str(dst), Config=config)
    assert dst.read_bytes() == body
    ranged = [h for h in case.sent_headers("GetObject") if "range" in h]
    assert len(ranged) >= 3, "download_file above the threshold must use ranged GETs"
    # Below the threshold: one PutObject, one GET.
    small = case.work / "small.bin"
    small_body = support.write_file(small, 3 * MIB, seed=3)
    s3.upload_file(str(small), case.bucket, "small.bin", Config=config)
    assert s3.head_object(Bucket=case.bucket, Key="small.bin")["ETag"] == support.quoted_md5(small_body)
    s3.download_file(case.bucket, "small.bin", str(case.work / "small.out"), Config=config)
    assert (case.work / "small.out").read_bytes() == small_body


def case_copy_object(case: Case) -> None:
    s3 = case.client()
    body = support.data(70 * KIB, seed=70)
    s3.put_object(Bucket=case.bucket, Key="src", Body=body, Metadata={"a": "1"}, ContentType="text/x-src")
    copied = s3.copy_object(Bucket=case.bucket, Key="dst", CopySource={"Bucket": case.bucket, "Key": "src"})
    assert copied["CopyObjectResult"]["ETag"] == support.quoted_md5(body)
    head = s3.head_object(Bucket=case.bucket, Key="dst")
    assert head["Metadata"] == {"a": "1"} and head["ContentType"] == "text/x-src"
    assert s3.get_object(Bucket=case.bucket, Key="dst")["Body"].read() == body
    s3.copy_object(Bucket=case.bucket, Key="dst2", CopySource=f"{case.bucket}/src", MetadataDirective="REPLACE",
                   Metadata={"b": "2"}, ContentType="text/x-dst")
    head = s3.head_object(Bucket=case.bucket, Key="dst2")
    assert head["Metadata"] == {"b": "2"} and head["ContentType"] == "text/x-dst"
    assert s3.get_object(Bucket=case.bucket, Key="dst2")["Body"].read() == body
    # The managed copy (s3transfer) below its multipart threshold is one CopyObject.
    s3.copy({"Bucket": case.bucket, "Key": "src"}, case.bucket, "dst3")
    assert s3.get_object(Bucket=case.bucket, Key="dst3")["Body"].read() == body


def case_managed_copy_multipart(case: Case) -> None:
    """s3.copy() above its threshold: CreateMultipartUpload + UploadPartCopy with source ranges."""
    s3 = case.client()
    body = support.data(11 * MIB, seed=111)
    s3.put_object(Bucket=case.bucket, Key="big-src", Body=body, Metadata={"m": "v"})
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    s3.copy({"Bucket": case.bucket, "Key": "big-src"}, case.bucket, "big-dst", Config=config)
    assert case.sent_headers("UploadPartCopy"), "the managed copy must have used UploadPartCopy"
    head = s3.head_object(Bucket=case.bucket, Key="big-dst")
    assert head["ContentLength"] == len(body)
    # The s3transfer of boto3 1.35 (0.10) creates the multipart copy without the source's user
    # metadata (on AWS too); current s3transfer carries it over from its HeadObject.
    assert head["Metadata"] == ({} if legacy_client() else {"m": "v"})
    assert head["ETag"] == support.multipart_etag(support.split_parts(body, 5 * MIB))
    assert s3.get_object(Bucket=case.bucket, Key="big-dst")["Body"].read() == body


def case_delete_objects(case: Case) -> None:
    s3 = case.client()
    keys = [f"d/{i}" for i in range(5)]
    for key in keys + ["keep"]:
        s3.put_object(Bucket=case.bucket, Key=key, Body=b"x")
    res = s3.delete_objects(Bucket=case.bucket, Delete={"Objects": [{"Key": k} for k in keys[:3]]})
    assert sorted(d["Key"] for d in res["Deleted"]) == keys[:3] and not res.get("Errors")
    quiet = s3.delete_objects(Bucket=case.bucket, Delete={"Objects": [{"Key": k} for k in keys[3:]], "Quiet": True})
    assert not quiet.get("Deleted") and not quiet.get("Errors")
    check_upload_wire_shape(case, "DeleteObjects")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=case.bucket)["Contents"]] == ["keep"]


def case_ranges(case: Case) -> None:
    s3 = case.client()
    body = support.data(2 * MIB + 13, seed=21)
    s3.put_object(Bucket=case.bucket, Key="r", Body=body)
    size = len(body)
    for spec, start, end in [("bytes=0-0", 0, 0), ("bytes=100-", 100, size - 1), ("bytes=-9", size - 9, size - 1),
                             (f"bytes={MIB - 5}-{MIB + 5}", MIB - 5, MIB + 5)]:
        got = s3.get_object(Bucket=case.bucket, Key="r", Range=spec)
        assert got["ContentRange"] == f"bytes {start}-{end}/{size}", spec
        assert got["Body"].read() == body[start : end + 1], spec
    try:
        s3.get_object(Bucket=case.bucket, Key="r", Range=f"bytes={size}-")
        raise AssertionError("a range past the end must be refused")
    except ClientError as exc:
        assert error_code(exc) == "InvalidRange", exc.response


def case_presigned_urls(case: Case) -> None:
    """generate_presigned_url as users call it: the default (SigV2 in us-east-1) and s3v4."""
    body = support.data(9 * KIB + 1, seed=9)
    for label, client in (("default", case.client()), ("s3v4", case.client(signature_version="s3v4"))):
        key = f"presigned/{label}"
        put_url = client.generate_presigned_url("put_object", Params={"Bucket": case.bucket, "Key": key},
                                                ExpiresIn=300)
        status, answer = fetch(case, put_url, "PUT", body)
        assert status == 200, (label, put_url, answer)
        get_url = client.generate_presigned_url("get_object", Params={"Bucket": case.bucket, "Key": key},
                                                ExpiresIn=300)
        if label == "default":
            assert "AWSAccessKeyId=" in get_url and "Signature=" in get_url, f"expected SigV2: {get_url}"
        else:
            assert "X-Amz-Signature=" in get_url, get_url
        assert fetch(case, get_url) == (200, body), label
        status, answer = fetch(case, get_url.replace(f"/{key}?", f"/{key}x?"))
        assert status == 403 and b"SignatureDoesNotMatch" in answer, (label, status, answer)


CASES = {name.removeprefix("case_"): fn for name, fn in globals().items() if name.startswith("case_")}
# What each case proves, for the README's client-matrix table (matrix_table.py).
COVERS = {
    "put_get_head_delete": ["put/get/head/delete"],
    "list_v1_v2": ["ListObjects V1/V2 paginators"],
    "multipart_low_level": ["multipart (create/upload/list/complete/abort)"],
    "transfer_manager": ["upload_file/download_file above and below the multipart threshold"],
    "copy_object": ["copy (COPY/REPLACE, managed copy)"],
    "managed_copy_multipart": ["managed copy above the threshold (UploadPartCopy)"],
    "delete_objects": ["DeleteObjects (verbose/quiet)"],
    "ranges": ["ranges"],
    "presigned_urls": ["presigned GET/PUT (default SigV2, s3v4)"],
}


def main(argv: list[str]) -> int:
    """`python boto3_matrix.py CASE --endpoint URL --bucket NAME --work DIR [--ca-bundle PEM]`."""
    parser = argparse.ArgumentParser()
    parser.add_argument("case", choices=sorted(CASES))
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--work", required=True, type=Path)
    parser.add_argument("--ca-bundle")
    args = parser.parse_args(argv)
    case = Case(args.endpoint, args.bucket, args.work, args.ca_bundle)
    try:
        CASES[args.case](case)
    except Exception:  # report everything (assertions and client errors) to the parent test
        traceback.print_exc()
        return 1
    print(f"ok {args.case} boto3 {boto3.__version__} botocore {botocore.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
