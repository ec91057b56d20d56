"""Basic protocol and auth behaviour seen on the wire (raw HTTP, no SDK smoothing).

Anonymous requests are refused with AccessDenied XML, every response carries
x-amz-request-id, HEAD errors have no body, error bodies have the AWS shape, and the
reserved health paths answer without credentials.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

import support


def error_xml(body: bytes) -> dict[str, str]:
    root = ET.fromstring(body)
    assert root.tag == "Error", body
    return {child.tag: (child.text or "") for child in root}


@pytest.fixture
def stored(s3, bucket):
    s3.put_object(Bucket=bucket, Key="obj", Body=b"hello")
    return bucket


@pytest.mark.moto_quirk("moto allows anonymous access")
@pytest.mark.parametrize("method, path_template", [
    ("GET", "/{bucket}/obj"),
    ("GET", "/{bucket}"),
    ("GET", "/"),
    ("PUT", "/{bucket}/anon-put"),
    ("DELETE", "/{bucket}/obj"),
])
def test_anonymous_request_is_access_denied(endpoint, s3, stored, method, path_template):
    path = path_template.format(bucket=stored)
    res = support.raw_request(endpoint, method, path, body=b"data" if method == "PUT" else b"")
    assert res.status == 403
    assert res.headers.get("content-type", "").startswith("application/xml")
    assert error_xml(res.body)["Code"] == "AccessDenied"
    assert res.request_id()
    assert s3.get_object(Bucket=stored, Key="obj")["Body"].read() == b"hello"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=stored)["Contents"]] == ["obj"]


def test_anonymous_head_has_no_body(endpoint, stored):
    res = support.raw_request(endpoint, "HEAD", f"/{stored}/obj")
    assert res.status == 403
    assert res.body == b""
    assert res.request_id()


def test_signed_get_ok_and_request_id(endpoint, stored):
    res = support.raw_request(endpoint, "GET", f"/{stored}/obj", signed=True)
    assert res.status == 200 and res.body == b"hello"
    assert res.request_id()
    assert res.headers.get("etag") == support.quoted_md5(b"hello")
    assert res.headers.get("content-length") == "5"


def test_error_body_shape(endpoint, stored):
    res = support.raw_request(endpoint, "GET", f"/{stored}/missing%20key", signed=True)
    assert res.status == 404
    assert res.headers.get("content-type", "").startswith("application/xml")
    fields = error_xml(res.body)
    assert fields["Code"] == "NoSuchKey"
    assert fields.get("Message")
    assert fields.get("RequestId") == res.request_id()


@pytest.mark.parametrize("path_template, expected", [
    ("/{bucket}/missing", 404),
    ("/no-such-bucket-s3compat/missing", 404),
    ("/no-such-bucket-s3compat", 404),
])
def test_head_errors_have_no_body(endpoint, stored, path_template, expected):
    res = support.raw_request(endpoint, "HEAD", path_template.format(bucket=stored), signed=True)
    assert res.status == expected
    assert res.body == b""
    assert res.request_id()


def test_request_id_on_every_response(endpoint, stored):
    for method, path in [("GET", "/"), ("GET", f"/{stored}"), ("GET", f"/{stored}?list-type=2"),
                         ("HEAD", f"/{stored}/obj"), ("GET", f"/{stored}/nope"), ("PUT", f"/{stored}/new"),
                         ("DELETE", f"/{stored}/new")]:
        res = support.raw_request(endpoint, method, path, signed=True, body=b"x" if method == "PUT" else b"")
        assert res.request_id(), (method, path, res.status)


@pytest.mark.strata_only
@pytest.mark.parametrize("path", ["/_strata/health/live", "/_strata/health/ready"])
def test_health_endpoints(endpoint, path):
    res = support.raw_request(endpoint, "GET", path)
    assert res.status == 200
    assert res.headers.get("x-amz-request-id"), res.headers


def test_empty_body_expecting_continue_closes_connection(endpoint, s3, bucket):
    """An empty PUT with `Expect: 100-continue` gets its final answer without `100 Continue`;
    the connection is then closed, because aws-cli v1's botocore would misread the next
    response on it (see expects_continue_without_body in gateway/src/s3/service.rs)."""
    expect = {"Expect": "100-continue"}
    empty = support.raw_request(endpoint, "PUT", f"/{bucket}/empty", headers={**expect, "Content-Length": "0"},
                                signed=True)
    assert empty.status == 200 and empty.headers.get("connection") == "close"
    ten = support.raw_request(endpoint, "PUT", f"/{bucket}/ten", headers=expect, body=b"0123456789", signed=True)
    assert ten.status == 200 and ten.headers.get("connection") != "close"
    assert s3.get_object(Bucket=bucket, Key="empty")["Body"].read() == b""
    assert s3.get_object(Bucket=bucket, Key="ten")["Body"].read() == b"0123456789"
