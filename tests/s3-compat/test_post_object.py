"""Browser-based POST uploads (PostObject): boto3's `generate_presigned_post` with SigV4 and
with its us-east-1 default (SigV2), a hand-built SigV2 policy, the success answers
(204 / 201 XML / 303 redirect), `${filename}`, and every way a form can break its policy.

Forms are sent exactly as a browser would: multipart/form-data with the file field last, no
Authorization header.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import http.client
import json
import urllib.parse

import pytest
import urllib3
from botocore.config import Config
from botocore.exceptions import ClientError

import support
from support import MIB, error_code

pytestmark = pytest.mark.strata_only


def post_form(url: str, fields: dict | list, filename: str, body: bytes, file_type: str = "application/octet-stream"):
    """POSTs a form (fields in order, then the file); returns (status, headers, body)."""
    items = list(fields.items()) if isinstance(fields, dict) else list(fields)
    items.append(("file", (filename, body, file_type)))
    payload, content_type = urllib3.encode_multipart_formdata(items)
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
    try:
        conn.request("POST", parsed.path or "/", body=payload, headers={"Content-Type": content_type})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


@pytest.fixture
def s3v4(make_client):
    return make_client(config=Config(signature_version="s3v4"))


def test_v4_presigned_post_201_with_filename_and_metadata(s3v4, s3, bucket):
    body = support.data(100 * 1024, 1)
    post = s3v4.generate_presigned_post(
        bucket, "uploads/${filename}",
        Fields={"Content-Type": "image/png", "success_action_status": "201", "x-amz-meta-origin": "form"},
        Conditions=[{"Content-Type": "image/png"}, {"success_action_status": "201"},
                    {"x-amz-meta-origin": "form"}, ["content-length-range", 1, MIB]],
        ExpiresIn=600)
    assert post["fields"]["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    status, headers, answer = post_form(post["url"], post["fields"], "pic.png", body, "image/png")
    assert status == 201, answer
    assert b"<Key>uploads/pic.png</Key>" in answer and b"<Bucket>" + bucket.encode() in answer
    assert headers["etag"] == support.quoted_md5(body)
    got = s3.get_object(Bucket=bucket, Key="uploads/pic.png")
    assert got["Body"].read() == body
    assert got["ContentType"] == "image/png" and got["Metadata"] == {"origin": "form"}


def test_post_with_sse_s3_field_stores_the_object_encrypted(s3v4, s3, bucket):
    body = support.data(70 * 1024, 5)
    post = s3v4.generate_presigned_post(
        bucket, "sse/form.bin",
        Fields={"x-amz-server-side-encryption": "AES256"},
        Conditions=[{"x-amz-server-side-encryption": "AES256"}],
        ExpiresIn=600)
    status, headers, answer = post_form(post["url"], post["fields"], "form.bin", body)
    assert status == 204, answer
    assert headers.get("x-amz-server-side-encryption") == "AES256"
    got = s3.get_object(Bucket=bucket, Key="sse/form.bin")
    assert got["ServerSideEncryption"] == "AES256" and got["Body"].read() == body


def test_post_with_sse_c_fields_over_plain_http_is_refused(s3v4, bucket):
    key = bytes(range(32))
    fields = {"x-amz-server-side-encryption-customer-algorithm": "AES256",
              "x-amz-server-side-encryption-customer-key": base64.b64encode(key).decode(),
              "x-amz-server-side-encryption-customer-key-md5":
                  base64.b64encode(hashlib.md5(key).digest()).decode()}
    post = s3v4.generate_presigned_post(
        bucket, "sse/customer.bin", Fields=fields, Conditions=[{k: v} for k, v in fields.items()],
        ExpiresIn=600)
    status, _, answer = post_form(post["url"], post["fields"], "c.bin", b"secret")
    assert status == 400 and b"<Code>InvalidRequest</Code>" in answer, answer


def test_default_boto3_post_in_us_east_1_is_sigv2_and_answers_204(s3, bucket):
    post = s3.generate_presigned_post(bucket, "v2/key.bin", ExpiresIn=600)
    assert "AWSAccessKeyId" in post["fields"] and "signature" in post["fields"], "boto3's us-east-1 default"
    body = support.data(3000, 2)
    status, headers, answer = post_form(post["url"], post["fields"], "ignored.bin", body)
    assert status == 204, answer
    assert s3.get_object(Bucket=bucket, Key="v2/key.bin")["Body"].read() == body


def v2_form(bucket: str, key: str, conditions: list, extra: dict | None = None, expires_in: int = 600) -> dict:
    expiration = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=expires_in)
    policy = {"expiration": expiration.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
              "conditions": [{"bucket": bucket}, *conditions]}
    encoded = base64.b64encode(json.dumps(policy).encode()).decode()
    signature = base64.b64encode(hmac.new(support.SECRET_KEY.encode(), encoded.encode(), hashlib.sha1).digest())
    return {"key": key, **(extra or {}), "AWSAccessKeyId": support.ACCESS_KEY, "policy": encoded,
            "signature": signature.decode()}


def test_hand_built_v2_policy_with_redirect_and_large_spooled_file(endpoint, s3, bucket):
    redirect = "http://example.invalid/done?x=1"
    form = v2_form(bucket, "big/${filename}",
                   [["starts-with", "$key", "big/"], {"success_action_redirect": redirect},
                    ["starts-with", "$Content-Type", ""], ["content-length-range", 0, 20 * MIB]],
                   extra={"success_action_redirect": redirect, "Content-Type": "application/x-big"})
    body = support.data(12 * MIB + 5, 3)  # beyond the in-memory spool: goes through a temp file
    status, headers, answer = post_form(f"{endpoint}/{bucket}", form, "data.bin", body)
    assert status == 303, answer
    location = urllib.parse.urlsplit(headers["location"])
    query = urllib.parse.parse_qs(location.query)
    assert (location.netloc, query["x"], query["bucket"], query["key"]) == (
        "example.invalid", ["1"], [bucket], ["big/data.bin"])
    assert query["etag"] == [support.quoted_md5(body)]
    got = s3.get_object(Bucket=bucket, Key="big/data.bin")
    assert got["ContentType"] == "application/x-big"
    assert hashlib.sha256(got["Body"].read()).digest() == hashlib.sha256(body).digest()


def test_post_tagging_and_acl_fields(endpoint, s3, bucket):
    tagging = "<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>"
    form = v2_form(bucket, "tagged", [{"key": "tagged"}, {"tagging": tagging}, {"acl": "private"}],
                   extra={"tagging": tagging, "acl": "private"})
    status, _, answer = post_form(f"{endpoint}/{bucket}", form, "f", b"tagged body")
    assert status == 204, answer
    assert s3.get_object_tagging(Bucket=bucket, Key="tagged")["TagSet"] == [{"Key": "k", "Value": "v"}]
    form = v2_form(bucket, "public", [{"key": "public"}, {"acl": "public-read"}], extra={"acl": "public-read"})
    status, _, answer = post_form(f"{endpoint}/{bucket}", form, "f", b"x")
    assert (status, error_code(answer)) == (400, "AccessControlListNotSupported")


def _assert_absent(s3, bucket, key):
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key=key)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_policy_violations_are_refused_and_store_nothing(s3v4, s3, endpoint, bucket):
    url = f"{endpoint}/{bucket}"
    post = s3v4.generate_presigned_post(bucket, "only/${filename}",
                                        Conditions=[["content-length-range", 10, 100]], ExpiresIn=600)
    cases = []
    tampered = dict(post["fields"], key="elsewhere/x")
    cases.append(("tampered key", tampered, b"x" * 50, 403, "AccessDenied"))
    extra = dict(post["fields"])
    extra["x-amz-meta-sneaky"] = "1"
    cases.append(("extra field", extra, b"x" * 50, 403, "AccessDenied"))
    cases.append(("too large", post["fields"], b"x" * 101, 400, "EntityTooLarge"))
    cases.append(("too small", post["fields"], b"x" * 9, 400, "EntityTooSmall"))
    bad_sig = dict(post["fields"], **{"x-amz-signature": "0" * 64})
    cases.append(("bad signature", bad_sig, b"x" * 50, 403, "SignatureDoesNotMatch"))
    no_policy = {k: v for k, v in post["fields"].items() if k != "policy"}
    cases.append(("no policy", no_policy, b"x" * 50, 403, "AccessDenied"))
    garbage = dict(post["fields"], policy="bm90IGpzb24=")  # "not json", signature no longer matches
    cases.append(("garbage policy", garbage, b"x" * 50, 403, "SignatureDoesNotMatch"))
    for name, fields, body, want_status, want_code in cases:
        status, _, answer = post_form(url, fields, "f.txt", body)
        assert (status, error_code(answer)) == (want_status, want_code), name
    _assert_absent(s3, bucket, "only/f.txt")
    _assert_absent(s3, bucket, "elsewhere/x")

    expired = s3v4.generate_presigned_post(bucket, "late", ExpiresIn=-60)
    status, _, answer = post_form(url, expired["fields"], "f", b"late")
    assert (status, error_code(answer)) == (403, "AccessDenied") and b"expired" in answer
    _assert_absent(s3, bucket, "late")


def test_malformed_forms(endpoint, s3, bucket):
    form = v2_form(bucket, "nofile", [{"key": "nofile"}])
    payload, content_type = urllib3.encode_multipart_formdata(list(form.items()))
    raw = support.raw_request(endpoint, "POST", f"/{bucket}", body=payload, headers={"Content-Type": content_type})
    assert (raw.status, error_code(raw.body)) == (400, "IncorrectNumberOfFilesInPostRequest")
    raw = support.raw_request(endpoint, "POST", f"/{bucket}", body=b"--x\r\nbroken",
                              headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert (raw.status, error_code(raw.body)) == (400, "MalformedPOSTRequest")
    raw = support.raw_request(endpoint, "POST", f"/{bucket}", body=b"a",
                              headers={"Content-Type": "multipart/form-data"})
    assert (raw.status, error_code(raw.body)) == (400, "MalformedPOSTRequest")
    missing_key = {k: v for k, v in v2_form(bucket, "k", []).items() if k != "key"}
    status, _, answer = post_form(f"{endpoint}/{bucket}", missing_key, "f", b"x")
    assert (status, error_code(answer)) == (400, "InvalidArgument")
    form = v2_form("no-such-bucket-here", "k", [{"key": "k"}])
    status, _, answer = post_form(f"{endpoint}/no-such-bucket-here", form, "f", b"x")
    assert (status, error_code(answer)) == (404, "NoSuchBucket")
