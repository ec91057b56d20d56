"""Nothing silently ignored: the tables of docs/s3-support.md against a running server.

Every sub-resource row the document marks `501 NotImplemented` is sent (signed, on a bucket or
an object, with a body for PUT/POST) and must get exactly that error; every keyword with a
method the document does not list for that scope must get 405 MethodNotAllowed; every refused
request header must get its documented error. None of these may change anything: the bucket's
objects, their content and tags, the list of buckets and of multipart uploads are compared
before and after (the cases of issue 17, `PUT /b?session` creating a bucket and `GET
/b?metadataTable` listing one, included). Also: `versionId` on an unversioned bucket and
conditional deletes (`If-Match` on DeleteObject and DeleteObjects).
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import botocore
import pytest

import support

pytestmark = pytest.mark.strata_only

DOC = Path(__file__).resolve().parents[2] / "docs" / "s3-support.md"
METHODS = ("GET", "PUT", "POST", "DELETE", "HEAD")


def _table(title: str) -> list[list[str]]:
    """The rows (cells without their backquotes) of the Markdown table under `### title`."""
    text = DOC.read_text()
    start = text.index(f"### {title}\n")
    rows = []
    for line in text[start:].splitlines()[1:]:
        if line.startswith("### "):
            break
        if not line.startswith("|") or line.startswith("|---"):
            continue
        cells = [c.strip().strip("`") for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        rows.append([c.replace("\\|", "|") for c in cells])
    assert rows and rows[0][0] in ("Scope", "Header", "Query"), f"table {title!r} not found"
    return rows[1:]


SUBRESOURCES = [dict(zip(("scope", "method", "param", "operation", "strata"), r))
                for r in _table("Sub-resources")]
HEADERS = [dict(zip(("header", "strata", "note"), r)) for r in _table("Request headers")]


def test_the_document_lists_what_the_issue_names():
    params = {r["param"] for r in SUBRESOURCES}
    for name in ("acl", "policy", "versioning", "lifecycle", "encryption", "object-lock",
                 "retention", "legal-hold", "replication", "website", "cors", "logging",
                 "notification", "accelerate", "requestPayment", "analytics", "inventory",
                 "metrics", "intelligent-tiering", "ownershipControls", "publicAccessBlock",
                 "session", "metadataTable", "torrent", "restore", "select", "attributes",
                 "versions", "uploads", "uploadId", "tagging", "delete", "location",
                 "policyStatus"):
        assert name in params, name
    assert len(SUBRESOURCES) > 60
    assert any(h["header"] == "x-amz-server-side-encryption" for h in HEADERS)


def _snapshot(s3, bucket: str) -> dict:
    """What a fallen-through request could have changed."""
    objects = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    state = {
        "buckets": sorted(b["Name"] for b in s3.list_buckets()["Buckets"]),
        "objects": sorted((o["Key"], o["ETag"], o["Size"]) for o in objects),
        "uploads": sorted(u["UploadId"] for u in
                          s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])),
    }
    for o in objects:
        key = o["Key"]
        state[f"tags:{key}"] = s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
        state[f"body:{key}"] = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return state


@pytest.fixture
def populated(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"original body",
                  Tagging="keep=me")
    s3.put_object(Bucket=bucket, Key="other", Body=b"other body")
    return bucket


def _send(endpoint, method, path, *, headers=None, body=b""):
    return support.raw_request(endpoint, method, path, headers=headers, body=body, signed=True)


def _check_error(response, status: int, code: str | None, what: str):
    assert response.status == status, f"{what}: {response.status} {response.body[:300]!r}"
    if code is not None and response.body:
        assert support.error_code(response) == code, f"{what}: {response.body[:300]!r}"


def _path(scope: str, bucket: str, query: str) -> str:
    return f"/{bucket}?{query}" if scope == "bucket" else f"/{bucket}/k?{query}"


@pytest.mark.parametrize("param", sorted({r["param"] for r in SUBRESOURCES}))
def test_each_sub_resource_is_answered_as_documented_and_changes_nothing(
        s3, endpoint, populated, param):
    bucket = populated
    before = _snapshot(s3, bucket)
    fresh = support.bucket_name("never")
    for scope in ("bucket", "object"):
        for method in METHODS:
            row = next((r for r in SUBRESOURCES if r["scope"] == scope
                        and r["method"] == method and r["param"] == param), None)
            if row is not None and row["strata"] == "implemented":
                continue  # the operation itself: covered by the operation tests
            body = b"<NotRead/>" if method in ("PUT", "POST") else b""
            what = f"{method} {scope} ?{param}"
            paths = [_path(scope, bucket, param)]
            if method == "PUT":
                # A fall-through would create a bucket or an object here.
                paths.append(f"/{fresh}?{param}" if scope == "bucket" else f"/{bucket}/fresh?{param}")
            for path in paths:
                response = _send(endpoint, method, path, body=body)
                if row is None:
                    _check_error(response, 405, "MethodNotAllowed", what)
                else:
                    assert row["strata"] == "501 NotImplemented", row
                    _check_error(response, 501, "NotImplemented", what)
    after = _snapshot(s3, bucket)
    assert after == before
    assert fresh not in after["buckets"]
    assert "fresh" not in {o[0] for o in after["objects"]}


def test_the_two_cases_of_the_issue(s3, endpoint):
    fresh = support.bucket_name("session")
    response = _send(endpoint, "PUT", f"/{fresh}?session")
    _check_error(response, 405, "MethodNotAllowed", "PUT ?session")
    assert fresh not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.create_bucket(Bucket=fresh)
    s3.put_object(Bucket=fresh, Key="listed?", Body=b"x")
    response = _send(endpoint, "GET", f"/{fresh}?metadataTable")
    _check_error(response, 501, "NotImplemented", "GET ?metadataTable")
    assert b"listed" not in response.body
    assert b"GetBucketMetadataTableConfiguration" in response.body


SAMPLE_VALUES = {
    "x-amz-server-side-encryption": "AES256",
    "x-amz-object-lock-mode": "GOVERNANCE",
    "x-amz-object-lock-retain-until-date": "2030-01-01T00:00:00Z",
    "x-amz-object-lock-legal-hold": "ON",
    "x-amz-bypass-governance-retention": "true",
    "x-amz-website-redirect-location": "/elsewhere",
    "x-amz-mfa": "serial 123456",
    "x-amz-write-offset-bytes": "0",
    "x-amz-if-match-size": "13",
    "x-amz-object-ownership": "ObjectWriter",
}


def _refused_headers():
    for row in HEADERS:
        match = re.match(r"(\d{3}) (\w+)", row["strata"])
        if not match:
            continue
        for name in (n.strip() for n in row["header"].split(",")):
            concrete = name.replace("*", "customer-algorithm")
            yield concrete, int(match.group(1)), match.group(2)


@pytest.mark.parametrize("name,status,code", list(_refused_headers()))
def test_each_refused_header_is_refused_and_changes_nothing(s3, endpoint, populated, name, status,
                                                            code):
    bucket = populated
    before = _snapshot(s3, bucket)
    value = SAMPLE_VALUES.get(name, "AES256")
    headers = {name: value}
    # A new object, a replaced one, a copy, a read and a delete: all refused.
    for method, path, extra in (
            ("PUT", f"/{bucket}/new", {}),
            ("PUT", f"/{bucket}/k", {}),
            ("PUT", f"/{bucket}/copy", {"x-amz-copy-source": f"/{bucket}/k"}),
            ("GET", f"/{bucket}/k", {}),
            ("DELETE", f"/{bucket}/k", {})):
        body = b"replacement" if method == "PUT" and not extra else b""
        response = _send(endpoint, method, path, headers={**headers, **extra}, body=body)
        _check_error(response, status, code, f"{method} {path} with {name}")
    fresh = support.bucket_name("hdr")
    response = _send(endpoint, "PUT", f"/{fresh}", headers=headers)
    _check_error(response, status, code, f"CreateBucket with {name}")
    after = _snapshot(s3, bucket)
    assert after == before
    assert fresh not in after["buckets"]


def test_allowed_header_values_and_acknowledgements_pass(s3, endpoint, bucket):
    fresh = support.bucket_name("owned")
    response = _send(endpoint, "PUT", f"/{fresh}",
                     headers={"x-amz-object-ownership": "BucketOwnerEnforced"})
    assert response.status == 200, response.body
    s3.delete_bucket(Bucket=fresh)
    # Every bucket belongs to the one account (000000000000): that owner passes, another is
    # refused as S3 refuses a wrong expected owner (403 AccessDenied).
    s3.put_object(Bucket=bucket, Key="payer", Body=b"x", RequestPayer="requester",
                  ExpectedBucketOwner="000000000000")
    assert s3.get_object(Bucket=bucket, Key="payer", ExpectedBucketOwner="000000000000")["Body"].read() == b"x"
    with pytest.raises(botocore.exceptions.ClientError) as wrong_owner:
        s3.get_object(Bucket=bucket, Key="payer", ExpectedBucketOwner="123456789012")
    assert wrong_owner.value.response["Error"]["Code"] == "AccessDenied"


def test_version_ids_on_an_unversioned_bucket(s3, endpoint, bucket):
    s3.put_object(Bucket=bucket, Key="v", Body=b"only version")
    assert s3.get_object(Bucket=bucket, Key="v", VersionId="null")["Body"].read() == b"only version"
    response = _send(endpoint, "GET", f"/{bucket}/v?versionId=3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY")
    _check_error(response, 404, "NoSuchVersion", "GET with another version id")
    response = _send(endpoint, "DELETE", f"/{bucket}/v?versionId=3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY")
    assert response.status == 204
    assert s3.get_object(Bucket=bucket, Key="v")["Body"].read() == b"only version"
    response = _send(endpoint, "GET", f"/{bucket}/v?versionId=%00bad")
    _check_error(response, 400, "InvalidArgument", "malformed version id")
    s3.delete_object(Bucket=bucket, Key="v", VersionId="null")
    with pytest.raises(Exception) as missing:
        s3.head_object(Bucket=bucket, Key="v")
    assert support.status_code(missing.value) == 404


def test_conditional_delete_object(s3, endpoint, bucket):
    etag = s3.put_object(Bucket=bucket, Key="c", Body=b"v1")["ETag"]
    response = _send(endpoint, "DELETE", f"/{bucket}/c", headers={"If-Match": '"0123456789abcdef"'})
    _check_error(response, 412, "PreconditionFailed", "If-Match with another ETag")
    assert s3.get_object(Bucket=bucket, Key="c")["Body"].read() == b"v1"
    response = _send(endpoint, "DELETE", f"/{bucket}/c", headers={"If-None-Match": "*"})
    _check_error(response, 501, "NotImplemented", "If-None-Match on DeleteObject")
    assert s3.get_object(Bucket=bucket, Key="c")["Body"].read() == b"v1"
    response = _send(endpoint, "DELETE", f"/{bucket}/c", headers={"If-Match": etag})
    assert response.status == 204, response.body
    response = _send(endpoint, "DELETE", f"/{bucket}/c", headers={"If-Match": etag})
    _check_error(response, 404, "NoSuchKey", "If-Match on a missing key")
    response = _send(endpoint, "DELETE", f"/{bucket}/c", headers={"If-Match": "*"})
    _check_error(response, 404, "NoSuchKey", "If-Match: * on a missing key")
    s3.put_object(Bucket=bucket, Key="c", Body=b"v2")
    response = _send(endpoint, "DELETE", f"/{bucket}/c", headers={"If-Match": "*"})
    assert response.status == 204, response.body
    # Without a condition, deleting a missing key still succeeds.
    assert _send(endpoint, "DELETE", f"/{bucket}/c").status == 204


def test_conditional_delete_objects(s3, endpoint, bucket):
    etag = s3.put_object(Bucket=bucket, Key="a", Body=b"a")["ETag"]
    s3.put_object(Bucket=bucket, Key="b", Body=b"b")
    document = (f"<Delete><Object><Key>a</Key><ETag>{etag}</ETag></Object>"
                "<Object><Key>b</Key><ETag>\"ffffffffffffffffffffffffffffffff\"</ETag></Object>"
                "</Delete>").encode()
    md5 = base64.b64encode(hashlib.md5(document).digest()).decode()
    response = _send(endpoint, "POST", f"/{bucket}?delete", body=document,
                     headers={"Content-MD5": md5, "Content-Type": "application/xml"})
    assert response.status == 200, response.body
    text = response.body.decode()
    assert "<Deleted><Key>a</Key>" in text, text
    assert "<Error><Key>b</Key><Code>PreconditionFailed</Code>" in text, text
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == ["b"]
