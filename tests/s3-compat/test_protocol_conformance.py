"""Protocol conformance regressions of issue 13: bugs a third-party conformance suite found
in features Strata has, each driven by the client that produced the request (boto3 1.44 at
its defaults where it can; raw signed requests where no client sends the input).

Covers: CompleteMultipartUpload's object-checksum header and its retry, SigV2 bucket-level
requests signed as `/bucket/`, SigV4 with botocore's `Date` header, `encoding-type=url` on the
V1 `<Prefix>`, an empty V2 continuation token, POST policy documents, ListBuckets paging and
filters, RFC 2047 user metadata, re-creating an owned bucket in us-east-1, Object Lock on
CreateBucket, `versionId` on single-object calls, CreateBucket bodies, `strata admin --data`
with environment keys, and a slow GET that outlives the overwrite of its object (read leases).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import subprocess
import time
import urllib.parse
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import pytest
import urllib3
from botocore.config import Config
from botocore.exceptions import ClientError

import support
from support import MIB

pytestmark = pytest.mark.strata_only

ABSENT_VERSION = "3HL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY-MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo"


def code_of(err: ClientError) -> str:
    return err.response["Error"]["Code"]


def status_of(err: ClientError) -> int:
    return err.response["ResponseMetadata"]["HTTPStatusCode"]


def error_code(body: bytes) -> str:
    return ET.fromstring(body).findtext("Code") or ""


def multipart(s3, bucket: str, key: str, parts: list[bytes], **create) -> tuple[str, list[dict]]:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **create)["UploadId"]
    done = []
    for number, body in enumerate(parts, start=1):
        kwargs = {}
        if "ChecksumAlgorithm" in create:
            kwargs["ChecksumAlgorithm"] = create["ChecksumAlgorithm"]
        answer = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body, **kwargs)
        part = {"PartNumber": number, "ETag": answer["ETag"]}
        for name in ("ChecksumCRC32", "ChecksumSHA256", "ChecksumSHA1"):
            if name in answer:
                part[name] = answer[name]
        done.append(part)
    return upload_id, done


# ---- 1, 2: CompleteMultipartUpload --------------------------------------------------------------


def test_complete_checks_a_full_object_crc32_header_against_the_object(s3, bucket):
    parts = [support.data(5 * MIB, seed) for seed in (1, 2, 3)]
    whole = b"".join(parts)
    full = base64.b64encode(zlib.crc32(whole).to_bytes(4, "big")).decode()
    upload_id, done = multipart(s3, bucket, "full", parts, ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT")
    wrong = base64.b64encode((zlib.crc32(whole) ^ 1).to_bytes(4, "big")).decode()
    with pytest.raises(ClientError) as err:
        s3.complete_multipart_upload(Bucket=bucket, Key="full", UploadId=upload_id,
                                     MultipartUpload={"Parts": done}, ChecksumCRC32=wrong)
    assert (status_of(err.value), code_of(err.value)) == (400, "BadDigest")
    # The refused completion left the upload open; the right value completes it.
    answer = s3.complete_multipart_upload(Bucket=bucket, Key="full", UploadId=upload_id,
                                          MultipartUpload={"Parts": done}, ChecksumCRC32=full)
    assert answer["ChecksumCRC32"] == full and answer["ChecksumType"] == "FULL_OBJECT"
    assert s3.get_object(Bucket=bucket, Key="full")["Body"].read() == whole


@pytest.mark.parametrize("algorithm", ["SHA256", "SHA1", "CRC32"])
def test_complete_checks_a_composite_header_against_the_part_checksums(s3, bucket, algorithm):
    parts = [support.data(5 * MIB, 4), support.data(5 * MIB, 5), support.data(1000, 6)]
    composite = support.composite_checksum_b64(algorithm, parts)
    upload_id, done = multipart(s3, bucket, "composite", parts, ChecksumAlgorithm=algorithm)
    member = f"Checksum{algorithm}"
    wrong = support.composite_checksum_b64(algorithm, parts[:2] + [b"other"])
    with pytest.raises(ClientError) as err:
        s3.complete_multipart_upload(Bucket=bucket, Key="composite", UploadId=upload_id,
                                     MultipartUpload={"Parts": done}, **{member: wrong})
    assert (status_of(err.value), code_of(err.value)) == (400, "BadDigest")
    answer = s3.complete_multipart_upload(Bucket=bucket, Key="composite", UploadId=upload_id,
                                          MultipartUpload={"Parts": done}, **{member: composite})
    assert answer[member] == composite and answer["ChecksumType"] == "COMPOSITE"


def test_upload_file_with_a_full_object_checksum_completes(s3, bucket, work):
    # boto3's high-level transfer sends the whole file's CRC32 on Complete when asked to.
    path = work / "f.bin"
    body = support.write_file(path, 17 * MIB, 7)
    from boto3.s3.transfer import TransferConfig

    s3.upload_file(str(path), bucket, "transfer", Config=TransferConfig(multipart_threshold=5 * MIB,
                                                                        multipart_chunksize=5 * MIB),
                   ExtraArgs={"ChecksumAlgorithm": "CRC32"})
    assert s3.get_object(Bucket=bucket, Key="transfer")["Body"].read() == body


def test_a_repeated_complete_answers_the_same_while_its_version_is_current(s3, bucket):
    parts = [support.data(5 * MIB, 8), support.data(100, 9)]
    upload_id, done = multipart(s3, bucket, "retry", parts, ChecksumAlgorithm="CRC32")
    first = s3.complete_multipart_upload(Bucket=bucket, Key="retry", UploadId=upload_id,
                                         MultipartUpload={"Parts": done})
    again = s3.complete_multipart_upload(Bucket=bucket, Key="retry", UploadId=upload_id,
                                         MultipartUpload={"Parts": done})
    for field in ("ETag", "Key", "Bucket", "Location", "ChecksumCRC32", "ChecksumType"):
        assert again.get(field) == first.get(field), field
    assert first["ETag"] == support.multipart_etag(parts)
    # Another upload id of the same key is still unknown.
    other, other_parts = multipart(s3, bucket, "retry", [b"x"])
    s3.abort_multipart_upload(Bucket=bucket, Key="retry", UploadId=other)
    with pytest.raises(ClientError) as err:
        s3.complete_multipart_upload(Bucket=bucket, Key="retry", UploadId=other,
                                     MultipartUpload={"Parts": other_parts})
    assert code_of(err.value) == "NoSuchUpload"
    # Once the version it made is replaced (or deleted), the upload is forgotten.
    s3.put_object(Bucket=bucket, Key="retry", Body=b"replaced")
    with pytest.raises(ClientError) as err:
        s3.complete_multipart_upload(Bucket=bucket, Key="retry", UploadId=upload_id,
                                     MultipartUpload={"Parts": done})
    assert code_of(err.value) == "NoSuchUpload"
    assert s3.get_object(Bucket=bucket, Key="retry")["Body"].read() == b"replaced"
    upload_id, done = multipart(s3, bucket, "gone", [b"y"])
    s3.complete_multipart_upload(Bucket=bucket, Key="gone", UploadId=upload_id, MultipartUpload={"Parts": done})
    s3.delete_object(Bucket=bucket, Key="gone")
    with pytest.raises(ClientError) as err:
        s3.complete_multipart_upload(Bucket=bucket, Key="gone", UploadId=upload_id, MultipartUpload={"Parts": done})
    assert code_of(err.value) == "NoSuchUpload"


# ---- 3, 4: signatures -----------------------------------------------------------------------------


def test_sigv2_bucket_level_requests(make_client, s3):
    v2 = make_client(config=Config(signature_version="s3", s3={"addressing_style": "path"}))
    name = support.bucket_name("sigv2-bucket-level")
    v2.create_bucket(Bucket=name)
    v2.head_bucket(Bucket=name)
    v2.put_object(Bucket=name, Key="a/b", Body=b"v2")
    assert [o["Key"] for o in v2.list_objects(Bucket=name)["Contents"]] == ["a/b"]
    assert [o["Key"] for o in v2.list_objects_v2(Bucket=name)["Contents"]] == ["a/b"]
    assert v2.get_object(Bucket=name, Key="a/b")["Body"].read() == b"v2"
    deleted = v2.delete_objects(Bucket=name, Delete={"Objects": [{"Key": "a/b"}]})
    assert [d["Key"] for d in deleted["Deleted"]] == ["a/b"]
    v2.delete_bucket(Bucket=name)
    with pytest.raises(ClientError):
        s3.head_bucket(Bucket=name)


def test_sigv4_with_botocore_date_header(endpoint, make_client, bucket):
    # botocore's S3SigV4Auth, given a Date header, re-writes it as RFC 2822 with `-0000`
    # (email.utils.formatdate), signs it and drops X-Amz-Date.
    res = support.raw_request(endpoint, "PUT", f"/{bucket}/dated", body=b"date", signed=True,
                              headers={"Date": "replaced by the signer"})
    assert res.status == 200, res.body
    res = support.raw_request(endpoint, "GET", f"/{bucket}/dated", signed=True, headers={"Date": "x"})
    assert (res.status, res.body) == (200, b"date")
    # With both headers (a Date added after botocore set X-Amz-Date), X-Amz-Date is the time.
    client = make_client()

    def add_date(request, **_):
        request.headers["Date"] = "Mon, 01 Jan 2001 00:00:00 -0000"

    client.meta.events.register("before-sign.s3.*", add_date)
    assert client.get_object(Bucket=bucket, Key="dated")["Body"].read() == b"date"


# ---- 5, 6: listings -------------------------------------------------------------------------------


def test_v1_listing_does_not_encode_the_top_level_prefix(s3, bucket):
    s3.put_object(Bucket=bucket, Key="dir\nx/a b", Body=b"1")
    # boto3 adds encoding-type=url itself and decodes only what S3 encodes.
    v1 = s3.list_objects(Bucket=bucket, Prefix="dir\nx/", Delimiter="/")
    assert v1["Prefix"] == "dir\nx/"
    assert [o["Key"] for o in v1["Contents"]] == ["dir\nx/a b"]
    v2 = s3.list_objects_v2(Bucket=bucket, Prefix="dir\nx/", StartAfter="dir\nx/")
    assert (v2["Prefix"], v2["StartAfter"]) == ("dir\nx/", "dir\nx/")
    versions = s3.list_object_versions(Bucket=bucket, Prefix="dir\nx/", KeyMarker="dir\n")
    assert versions["Prefix"] == "dir\nx/" and versions["KeyMarker"] == "dir\n"
    assert [v["Key"] for v in versions["Versions"]] == ["dir\nx/a b"]


def test_multipart_uploads_listing_encodes_what_s3_encodes(endpoint, s3, bucket):
    s3.create_multipart_upload(Bucket=bucket, Key="up\nload/a+b")
    query = "uploads&encoding-type=url&prefix=up%0Aload%2F"
    res = support.raw_request(endpoint, "GET", f"/{bucket}?{query}", signed=True)
    assert res.status == 200, res.body
    root = ET.fromstring(res.body)
    ns = {"s": root.tag.split("}")[0].strip("{")}
    assert root.findtext("s:Prefix", namespaces=ns) == "up%0Aload/"
    assert root.findtext("s:Upload/s:Key", namespaces=ns) == "up%0Aload/a%2Bb"


def test_empty_continuation_token_is_the_first_page(endpoint, s3, bucket):
    for key in ("a", "b"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    res = support.raw_request(endpoint, "GET", f"/{bucket}?list-type=2&continuation-token=", signed=True)
    assert res.status == 200, res.body
    assert re.findall(rb"<Key>([^<]*)</Key>", res.body) == [b"a", b"b"]


# ---- 7: POST policy -------------------------------------------------------------------------------


def post_form(url: str, fields: list, filename: str, body: bytes):
    items = list(fields) + [("file", (filename, body, "application/octet-stream"))]
    payload, content_type = urllib3.encode_multipart_formdata(items)
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    try:
        conn.request("POST", parsed.path, body=payload, headers={"Content-Type": content_type})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def v2_form(policy: dict, key: str, extra: list | None = None) -> list:
    encoded = base64.b64encode(json.dumps(policy).encode()).decode()
    signature = base64.b64encode(hmac.new(support.SECRET_KEY.encode(), encoded.encode(), hashlib.sha1).digest())
    return [("key", key), *(extra or []), ("AWSAccessKeyId", support.ACCESS_KEY), ("policy", encoded),
            ("signature", signature.decode())]


def expiration(seconds: int = 600) -> str:
    at = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return at.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_post_policy_documents_that_s3_refuses(endpoint, s3, bucket):
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=600)
    for policy in (
        {"expiration": str(later.replace(tzinfo=None)), "conditions": [{"bucket": bucket}]},
        {"expiration": expiration(), "conditions": [{}]},
    ):
        status, answer = post_form(f"{endpoint}/{bucket}", v2_form(policy, "refused"), "f", b"data")
        assert (status, error_code(answer)) == (400, "InvalidPolicyDocument"), (policy, answer)
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="refused")


def test_post_policy_sees_the_key_with_filename_substituted(endpoint, s3, bucket):
    policy = {"expiration": expiration(), "conditions": [{"bucket": bucket}, ["eq", "$key", "up/photo.png"]]}
    status, answer = post_form(f"{endpoint}/{bucket}", v2_form(policy, "up/${filename}"), "photo.png", b"png")
    assert status == 204, answer
    assert s3.get_object(Bucket=bucket, Key="up/photo.png")["Body"].read() == b"png"
    status, answer = post_form(f"{endpoint}/{bucket}", v2_form(policy, "up/${filename}"), "other.png", b"png")
    assert (status, error_code(answer)) == (403, "AccessDenied"), answer


def test_post_checksum_field_is_part_of_the_upload(endpoint, s3, bucket):
    body = support.data(70_000, 10)
    policy = {"expiration": expiration(), "conditions": [{"bucket": bucket}, ["starts-with", "$key", "sum/"]]}
    good = support.checksum_b64("CRC32", body)
    form = v2_form(policy, "sum/ok", [("x-amz-checksum-crc32", good)])
    status, answer = post_form(f"{endpoint}/{bucket}", form, "f", body)
    assert status == 204, answer
    head = s3.head_object(Bucket=bucket, Key="sum/ok", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == good
    bad = support.checksum_b64("CRC32", body + b"!")
    status, answer = post_form(f"{endpoint}/{bucket}", v2_form(policy, "sum/bad", [("x-amz-checksum-crc32", bad)]),
                               "f", body)
    assert (status, error_code(answer)) == (400, "BadDigest"), answer
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="sum/bad")


# ---- 8, 10, 11, 14: buckets -------------------------------------------------------------------------


def test_list_buckets_pages_and_filters(s3):
    stem = support.bucket_name("lb-page")[:40]
    names = [f"{stem}-{i}" for i in range(3)]
    for name in names:
        s3.create_bucket(Bucket=name)
    seen = []
    token = None
    for _ in range(10):
        kwargs = {"MaxBuckets": 2, "Prefix": stem}
        if token:
            kwargs["ContinuationToken"] = token
        page = s3.list_buckets(**kwargs)
        assert len(page["Buckets"]) <= 2
        assert page.get("Prefix") == stem
        seen += [b["Name"] for b in page["Buckets"]]
        token = page.get("ContinuationToken")
        if not token:
            break
    assert seen == names
    assert [b["Name"] for b in s3.list_buckets(Prefix=stem, BucketRegion="us-east-1")["Buckets"]] == names
    assert s3.list_buckets(Prefix=stem, BucketRegion="eu-west-1")["Buckets"] == []

def test_list_buckets_rejects_a_bad_max_buckets(endpoint):
    # boto3 validates MaxBuckets itself, so raw requests carry the bad values.
    for value in ("0", "10001", "x"):
        res = support.raw_request(endpoint, "GET", f"/?max-buckets={value}", signed=True)
        assert (res.status, error_code(res.body)) == (400, "InvalidArgument"), value


def test_recreating_an_owned_bucket_in_us_east_1_succeeds(s3, bucket):
    s3.put_object(Bucket=bucket, Key="kept", Body=b"k")
    s3.create_bucket(Bucket=bucket)
    assert s3.get_object(Bucket=bucket, Key="kept")["Body"].read() == b"k"


def test_object_lock_on_create_bucket_is_refused(s3):
    name = support.bucket_name("object-lock")
    with pytest.raises(ClientError) as err:
        s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    assert (status_of(err.value), code_of(err.value)) == (501, "NotImplemented")
    with pytest.raises(ClientError):
        s3.head_bucket(Bucket=name)


def test_create_bucket_body_must_be_a_configuration(endpoint, s3):
    for body in (b"not xml at all", b"<Other><LocationConstraint/></Other>", b"<" + b"a" * 200_000):
        name = support.bucket_name("cb-body")
        res = support.raw_request(endpoint, "PUT", f"/{name}", body=body, signed=True)
        assert (res.status, error_code(res.body)) == (400, "MalformedXML"), body[:40]
        with pytest.raises(ClientError):
            s3.head_bucket(Bucket=name)
    name = support.bucket_name("cb-body-ok")
    good = (b'<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            b"<LocationConstraint>us-east-1</LocationConstraint></CreateBucketConfiguration>")
    res = support.raw_request(endpoint, "PUT", f"/{name}", body=good, signed=True)
    assert res.status == 200, res.body
    s3.head_bucket(Bucket=name)


def test_admin_with_data_dir_when_keys_came_from_the_environment(server, strata_bin, client_env):
    data_dir = getattr(server, "data_dir", None)
    if data_dir is None:
        data_dir = server.cluster.gateway_dir
    assert not (Path(data_dir) / "credentials.toml").exists(), "the suite's keys come from the environment"
    env = dict(client_env)
    env.update({"STRATA_ACCESS_KEY": support.ACCESS_KEY, "STRATA_SECRET_KEY": support.SECRET_KEY})
    proc = subprocess.run([strata_bin, "admin", "gc", "status", "--data", str(data_dir),
                           "--endpoint", server.endpoint, "--json"],
                          capture_output=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr.decode()
    json.loads(proc.stdout)


# ---- 9: user metadata -------------------------------------------------------------------------------


def test_non_ascii_metadata_is_rfc2047_encoded(s3, bucket):
    encoded = "=?UTF-8?B?" + base64.b64encode("café ☕".encode()).decode() + "?="
    s3.put_object(Bucket=bucket, Key="b", Body=b"1", Metadata={"drink": encoded})
    assert s3.head_object(Bucket=bucket, Key="b")["Metadata"] == {"drink": encoded}
    # A Q-encoded word is decoded when stored, so it comes back in the B form.
    s3.put_object(Bucket=bucket, Key="q", Body=b"1", Metadata={"drink": "=?UTF-8?Q?caf=C3=A9_=E2=98=95?="})
    assert s3.get_object(Bucket=bucket, Key="q")["Metadata"] == {"drink": encoded}
    # Plain ASCII is returned as sent.
    s3.put_object(Bucket=bucket, Key="a", Body=b"1", Metadata={"drink": "tea =?x"})
    assert s3.head_object(Bucket=bucket, Key="a")["Metadata"] == {"drink": "tea =?x"}


def test_raw_utf8_metadata_comes_back_rfc2047_encoded(endpoint, bucket):
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    # Signed over the text (botocore hashes it as UTF-8), sent as raw UTF-8 bytes.
    request = AWSRequest(method="PUT", url=f"{endpoint}/{bucket}/raw", data=b"1",
                         headers={"x-amz-meta-drink": "café"})
    S3SigV4Auth(Credentials(support.ACCESS_KEY, support.SECRET_KEY), "s3", support.REGION).add_auth(request)
    headers = dict(request.headers.items())
    headers["x-amz-meta-drink"] = "café".encode()
    parsed = urllib.parse.urlsplit(endpoint)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    try:
        conn.putrequest("PUT", f"/{bucket}/raw", skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.putheader("Content-Length", "1")
        conn.endheaders(b"1")
        resp = conn.getresponse()
        answer = resp.read()
        assert resp.status == 200, answer
    finally:
        conn.close()
    res = support.raw_request(endpoint, "HEAD", f"/{bucket}/raw", signed=True)
    assert res.headers["x-amz-meta-drink"] == "=?UTF-8?B?Y2Fmw6k=?="


# ---- 12: versionId on an unversioned bucket ---------------------------------------------------------


def test_version_id_addresses_only_the_null_version(s3, bucket):
    s3.put_object(Bucket=bucket, Key="live", Body=b"keep me")
    s3.put_object_tagging(Bucket=bucket, Key="live", Tagging={"TagSet": [{"Key": "t", "Value": "1"}]})
    # DELETE of an absent version: 204 and nothing touched.
    s3.delete_object(Bucket=bucket, Key="live", VersionId=ABSENT_VERSION)
    assert s3.get_object(Bucket=bucket, Key="live")["Body"].read() == b"keep me"
    calls = [
        lambda: s3.get_object(Bucket=bucket, Key="live", VersionId=ABSENT_VERSION),
        lambda: s3.get_object_tagging(Bucket=bucket, Key="live", VersionId=ABSENT_VERSION),
        lambda: s3.delete_object_tagging(Bucket=bucket, Key="live", VersionId=ABSENT_VERSION),
        lambda: s3.put_object_tagging(Bucket=bucket, Key="live", VersionId=ABSENT_VERSION,
                                      Tagging={"TagSet": []}),
        lambda: s3.get_object_acl(Bucket=bucket, Key="live", VersionId=ABSENT_VERSION),
        lambda: s3.get_object_attributes(Bucket=bucket, Key="live", VersionId=ABSENT_VERSION,
                                         ObjectAttributes=["ETag"]),
    ]
    for call in calls:
        with pytest.raises(ClientError) as err:
            call()
        assert (status_of(err.value), code_of(err.value)) == (404, "NoSuchVersion")
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="live", VersionId=ABSENT_VERSION)
    assert status_of(err.value) == 404
    assert s3.get_object_tagging(Bucket=bucket, Key="live")["TagSet"] == [{"Key": "t", "Value": "1"}]
    assert s3.get_object(Bucket=bucket, Key="live", VersionId="null")["Body"].read() == b"keep me"
    s3.head_object(Bucket=bucket, Key="live", VersionId="null")
    s3.delete_object(Bucket=bucket, Key="live", VersionId="null")
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="live")
    assert status_of(err.value) == 404


def test_malformed_version_ids_are_invalid_arguments(endpoint, s3, bucket):
    s3.put_object(Bucket=bucket, Key="live", Body=b"keep me")
    for method, query in (("DELETE", "versionId="), ("GET", "versionId="), ("DELETE", "versionId=%00bad"),
                          ("GET", "versionId=a%20b")):
        res = support.raw_request(endpoint, method, f"/{bucket}/live?{query}", signed=True)
        assert (res.status, error_code(res.body)) == (400, "InvalidArgument"), (method, query)
    answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "live", "VersionId": ""},
                                                                   {"Key": "live", "VersionId": ABSENT_VERSION}]})
    assert [(e["Key"], e["Code"]) for e in answer.get("Errors", [])] == [("live", "InvalidArgument")]
    assert [d["Key"] for d in answer["Deleted"]] == ["live"]
    assert s3.get_object(Bucket=bucket, Key="live")["Body"].read() == b"keep me"
    # boto3 drops (dict) or encodes (str) an empty copy-source versionId: a raw request.
    res = support.raw_request(endpoint, "PUT", f"/{bucket}/copy", signed=True,
                              headers={"x-amz-copy-source": f"/{bucket}/live?versionId="})
    assert (res.status, error_code(res.body)) == (400, "InvalidArgument"), res.body


# ---- 13: a slow GET outlives the overwrite of its object ---------------------------------------------


class LeaseServer(support.StrataServer):
    """An embedded server whose replaced data becomes collectable after one second."""

    def environment(self) -> dict:
        env = super().environment()
        env["STRATA_GC_DELAY_SECS"] = "1"
        return env


@pytest.fixture(scope="module")
def short_gc_server(strata_bin, scratch_root):
    root = scratch_root / "lease-server"
    if os.environ.get("S3COMPAT_CLUSTER") == "1":
        from cluster_support import Cluster

        cluster = Cluster(strata_bin, root, gateway_extra={"gc_delay_secs": 1})
        try:
            cluster.start()
            yield cluster.endpoint, root
        finally:
            cluster.close()
        return
    server = LeaseServer(strata_bin, root / "data", root / "strata.log", fsync=False)
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield server.endpoint, root
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


SHARD_NAME = re.compile(r"^[0-9a-f]{32}\.[0-9]+$")


def shard_files(root: Path) -> list[Path]:
    """Committed shard files (`…/shards/<2 hex>/<group>.<index>`) under a server's directories."""
    return [p for p in root.rglob("*") if p.is_file() and SHARD_NAME.match(p.name) and p.parent.parent.name == "shards"]


def test_a_slow_get_reads_every_byte_of_an_overwritten_object(short_gc_server, make_client):
    endpoint, root = short_gc_server
    import boto3

    client = boto3.session.Session(aws_access_key_id=support.ACCESS_KEY, aws_secret_access_key=support.SECRET_KEY,
                                   region_name=support.REGION).client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket="lease")
    body = support.data(40 * MIB, 11)
    client.put_object(Bucket="lease", Key="big", Body=body)
    assert shard_files(root), "a 40 MiB object is stored as shards"

    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="GET", url=f"{endpoint}/lease/big", data=b"")
    S3SigV4Auth(Credentials(support.ACCESS_KEY, support.SECRET_KEY), "s3", support.REGION).add_auth(request)
    parsed = urllib.parse.urlsplit(endpoint)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
    try:
        conn.request("GET", "/lease/big", headers=dict(request.headers.items()))
        resp = conn.getresponse()
        assert resp.status == 200
        received = resp.read(2 * MIB)
        # The object is replaced while the download is under way; GC may now collect the old
        # version's shards (gc_delay_secs = 1, a GC pass every 2 s) — but not while it is read.
        client.put_object(Bucket="lease", Key="big", Body=b"small")
        time.sleep(10)
        while len(received) < len(body):
            chunk = resp.read(4 * MIB)
            if not chunk:
                break
            received += chunk
    finally:
        conn.close()
    assert len(received) == len(body)
    assert received == body
    assert client.get_object(Bucket="lease", Key="big")["Body"].read() == b"small"
    # Once the reader is gone, the old shards are collected (bounded wait).
    deadline = time.monotonic() + 90
    while shard_files(root) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert shard_files(root) == []
