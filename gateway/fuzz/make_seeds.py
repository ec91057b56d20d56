#!/usr/bin/env python3
"""Writes the committed seed corpora of the fuzz targets (gateway/fuzz/seeds/<target>/).

Real client output where a client exists: botocore (the library under boto3 and aws-cli)
signs the SigV4 header, presigned, SigV2 header and SigV2 presigned requests, encodes the
aws-chunked body with a checksum trailer, and builds the POST policy forms; AWS's documented
examples (credentials AKIAIOSFODNN7EXAMPLE, 2013-05-24) supply the signed aws-chunked bodies.
The clock is frozen at 2013-05-24T00:00:00Z so the signatures stay valid for the targets.
Run: python3 gateway/fuzz/make_seeds.py   (needs botocore; deterministic output)
"""

import base64
import datetime
import hashlib
import hmac
import io
import json
import os
import struct
import sys

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.httpchecksum

HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = os.path.join(HERE, "seeds")
ACCESS = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
NOW = datetime.datetime(2013, 5, 24, tzinfo=datetime.timezone.utc)
NOW_EPOCH = int(NOW.timestamp())
CREDS = botocore.credentials.Credentials(ACCESS, SECRET)

# Every botocore signer reads the clock through this function.
botocore.auth.get_current_datetime = lambda *a, **k: NOW.replace(tzinfo=None)


def write(target, name, data):
    directory = os.path.join(SEEDS, target)
    os.makedirs(directory, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def request_text(method, url, headers, now=NOW_EPOCH):
    """The auth target's input: now, request line, headers."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    lines = [str(now), f"{method} {target}", f"host: {parts.netloc}"]
    for name, value in headers.items():
        if name.lower() == "host":
            continue
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        lines.append(f"{name}: {value}")
    return "\n".join(lines) + "\n"


def sign(auth, method, url, body=b"", headers=None):
    request = botocore.awsrequest.AWSRequest(method=method, url=url, data=body, headers=headers or {})
    auth.add_auth(request)
    return request


def auth_seeds():
    v4 = botocore.auth.S3SigV4Auth(CREDS, "s3", "us-east-1")
    base = "http://127.0.0.1:9000"
    r = sign(v4, "GET", f"{base}/examplebucket/test.txt", headers={"Range": "bytes=0-9"})
    write("auth", "sigv4_get_range", request_text("GET", r.url, dict(r.headers)))
    r = sign(v4, "PUT", f"{base}/examplebucket/photos/2013%20may.jpg", body=b"Welcome to Amazon S3.",
             headers={"x-amz-meta-author": "me", "Content-Type": "text/plain"})
    write("auth", "sigv4_put_meta", request_text("PUT", r.url, dict(r.headers)))
    r = sign(v4, "GET", f"{base}/examplebucket?list-type=2&prefix=a%2Fb&max-keys=2&continuation-token=djE6YQ")
    write("auth", "sigv4_list_v2", request_text("GET", r.url, dict(r.headers)))
    r = sign(v4, "POST", f"{base}/examplebucket?delete", body=b"<Delete/>",
             headers={"Content-MD5": base64.b64encode(hashlib.md5(b"<Delete/>").digest()).decode()})
    write("auth", "sigv4_delete_objects", request_text("POST", r.url, dict(r.headers)))
    # Streaming headers as aws-cli sends them for a checksummed upload.
    r = sign(v4, "PUT", f"{base}/examplebucket/chunked", headers={
        "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "Content-Encoding": "aws-chunked", "x-amz-trailer": "x-amz-checksum-crc32",
        "x-amz-decoded-content-length": "11"})
    write("auth", "sigv4_streaming_trailer", request_text("PUT", r.url, dict(r.headers)))

    presigner = botocore.auth.S3SigV4QueryAuth(CREDS, "s3", "us-east-1", expires=3600)
    r = sign(presigner, "GET", f"{base}/examplebucket/test.txt?versionId=null")
    write("auth", "sigv4_presigned_get", request_text("GET", r.url, {}))
    r = sign(presigner, "PUT", f"{base}/examplebucket/upload%2Bplus.bin?uploadId=abc&partNumber=2")
    write("auth", "sigv4_presigned_put_part", request_text("PUT", r.url, {}))

    v2 = botocore.auth.HmacV1Auth(CREDS)
    r = sign(v2, "GET", f"{base}/examplebucket/photos/puppy.jpg?acl")
    write("auth", "sigv2_get_acl", request_text("GET", r.url, dict(r.headers)))
    r = sign(v2, "PUT", f"{base}/examplebucket/db-backup.dat.gz", body=b"x",
             headers={"Content-Type": "application/x-download", "x-amz-meta-reviewedby": "joe@example.com",
                      "x-amz-meta-checksumalgorithm": "crc32", "Content-MD5": "4gJE4saaMU4BqNR0kLY+lw=="})
    write("auth", "sigv2_put_amz_headers", request_text("PUT", r.url, dict(r.headers)))
    v2q = botocore.auth.HmacV1QueryAuth(CREDS, expires=3600)
    r = sign(v2q, "GET", f"{base}/examplebucket/photos/puppy.jpg")
    write("auth", "sigv2_presigned", request_text("GET", r.url, {}))
    # AWS's SigV4 documentation example (GET /test.txt with Range), header form.
    write("auth", "aws_doc_get_object", "\n".join([
        str(NOW_EPOCH), "GET /test.txt", "host: examplebucket.s3.amazonaws.com", "range: bytes=0-9",
        "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "x-amz-date: 20130524T000000Z",
        "authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"]) + "\n")


def chunk_signature(key, previous, data):
    empty = hashlib.sha256(b"").hexdigest()
    to_sign = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", "20130524T000000Z",
                         "20130524/us-east-1/s3/aws4_request", previous, empty,
                         hashlib.sha256(data).hexdigest()])
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def signing_key():
    key = ("AWS4" + SECRET).encode()
    for part in ("20130524", "us-east-1", "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def chunked_seeds():
    # Control byte: bits 0-1 mode (0 unsigned trailer, 1 signed, 2 signed + trailer), 2-7 piece size.
    wrapper = botocore.httpchecksum.AwsChunkedWrapper(
        io.BytesIO(b"Hello, world! " * 20), checksum_cls=botocore.httpchecksum.Crc32Checksum,
        checksum_name="x-amz-checksum-crc32", chunk_size=64)
    write("aws_chunked", "botocore_unsigned_trailer", bytes([0 | (6 << 2)]) + wrapper.read())
    write("aws_chunked", "unsigned_trailer_lf_only", bytes([0 | (2 << 2)]) +
          b"5\nhello\n0\nx-amz-checksum-crc64nvme:AAAAAAAAAAA=\n\n")
    write("aws_chunked", "unsigned_no_final_crlf", bytes([0]) + b"3\r\nabc\r\n0\r\n\r\n")
    key = signing_key()
    previous = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    body = b""
    for data in (b"a" * 40, b"b" * 7, b""):
        signature = chunk_signature(key, previous, data)
        body += f"{len(data):x};chunk-signature={signature}\r\n".encode() + data + b"\r\n"
        previous = signature
    write("aws_chunked", "signed_three_chunks", bytes([1 | (3 << 2)]) + body)
    previous = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"
    body = b""
    for data in (b"a" * 33, b""):
        signature = chunk_signature(key, previous, data)
        body += f"{len(data):x};chunk-signature={signature}\r\n".encode() + data
        body += b"\r\n" if data else b""
        previous = signature
    trailer = b"x-amz-checksum-crc32c:sOO8/Q==\n"
    to_sign = "\n".join(["AWS4-HMAC-SHA256-TRAILER", "20130524T000000Z",
                         "20130524/us-east-1/s3/aws4_request", previous,
                         hashlib.sha256(trailer).hexdigest()])
    trailer_signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    body += b"x-amz-checksum-crc32c:sOO8/Q==\r\nx-amz-trailer-signature:" + trailer_signature.encode() + b"\r\n\r\n"
    write("aws_chunked", "signed_trailer", bytes([2 | (5 << 2)]) + body)


def xml_seeds():
    ns = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'
    write("xml", "complete_multipart", f'<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUpload {ns}>'
          '<Part><ETag>"a54357aff0632cce46d942af68356b38"</ETag><PartNumber>1</PartNumber>'
          '<ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part><Part><ETag>"0c78aef83f66abc1fa1e8477f296d394"</ETag>'
          '<PartNumber>2</PartNumber></Part></CompleteMultipartUpload>')
    write("xml", "delete_quiet", f'<Delete {ns}><Quiet>true</Quiet><Object><Key>sample1.txt</Key></Object>'
          '<Object><Key>a &amp; b</Key><VersionId>null</VersionId><ETag>"abc"</ETag></Object></Delete>')
    write("xml", "create_bucket", f'<CreateBucketConfiguration {ns}><LocationConstraint>eu-west-1'
          '</LocationConstraint></CreateBucketConfiguration>')
    write("xml", "tagging", '<Tagging><TagSet><Tag><Key>Project</Key><Value>Project One</Value></Tag>'
          '<Tag><Key>user</Key><Value>jsmith</Value></Tag></TagSet></Tagging>')
    write("xml", "acl_owner_only", '<AccessControlPolicy xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
          '<Owner><ID>owner</ID></Owner><AccessControlList><Grant><Grantee '
          'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser"><ID>owner</ID>'
          '</Grantee><Permission>FULL_CONTROL</Permission></Grant></AccessControlList></AccessControlPolicy>')
    write("xml", "doctype_comment_cdata", '<?xml version="1.0"?><!-- c --><!DOCTYPE Tagging>'
          '<Tagging><TagSet><Tag><Key><![CDATA[k<1>]]></Key><Value>&#x41;&lt;</Value></Tag></TagSet></Tagging>')


def range_seeds():
    def seed(size, mtime_ms, lines):
        return struct.pack("<QQ", size, mtime_ms) + "\n".join(lines).encode()
    write("range_conditional", "range_first_bytes", seed(100, 1369353600000, ["bytes=0-9"]))
    write("range_conditional", "range_suffix", seed(100, 0, ["bytes=-500"]))
    write("range_conditional", "range_open", seed(10, 0, ["bytes=9-"]))
    write("range_conditional", "range_unsatisfiable", seed(10, 0, ["bytes=10-20"]))
    write("range_conditional", "conditionals", seed(100, 1369353600000, [
        "", '"d41d8cd98f00b204e9800998ecf8427e", "other"', "*",
        "Fri, 24 May 2013 00:00:00 GMT", "Thu, 23 May 2013 00:00:00 GMT",
        "d41d8cd98f00b204e9800998ecf8427e"]))


def token_seeds():
    for name, key in (("plain", "photos/2006/January/sample.jpg"), ("unicode", "ключ/ü"), ("empty", "")):
        write("continuation_token", name, base64.urlsafe_b64encode(f"v1:{key}".encode()).decode().rstrip("="))
    write("continuation_token", "padded", base64.urlsafe_b64encode(b"v1:ab").decode())


def policy_document(conditions):
    return json.dumps({"expiration": "2013-05-25T00:00:00Z", "conditions": conditions})


def post_seeds():
    conditions = [{"bucket": "examplebucket"}, ["starts-with", "$key", "user/user1/"], {"acl": "private"},
                  ["content-length-range", 1, 1048576], ["eq", "$Content-Type", "image/jpeg"],
                  {"x-amz-meta-uuid": "14365123651274"}]
    write("post_policy", "aws_example", policy_document(conditions) +
          "\0key=user/user1/photo.jpg\nacl=private\ncontent-type=image/jpeg\nx-amz-meta-uuid=14365123651274\n")
    write("post_policy", "numbers_as_strings", '{"expiration":"2030-01-01T00:00:00.000Z","conditions":'
          '[["content-length-range","0","10"],["starts-with","$Content-Type",""],["eq","$key","a"]]}')

    auth = botocore.auth.S3SigV4PostAuth(CREDS, "s3", "us-east-1")
    request = botocore.awsrequest.AWSRequest(method="POST", url="http://127.0.0.1:9000/examplebucket")
    request.context["s3-presign-post-fields"] = {"key": "user/user1/${filename}", "acl": "private"}
    request.context["s3-presign-post-policy"] = {
        "expiration": "2013-05-25T00:00:00Z",
        "conditions": [{"bucket": "examplebucket"}, ["starts-with", "$key", "user/user1/"],
                       {"acl": "private"}, ["content-length-range", 0, 100]]}
    auth.add_auth(request)
    post = {"fields": request.context["s3-presign-post-fields"]}
    boundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW"
    parts = []
    for name, value in post["fields"].items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n')
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="photo.jpg"\r\n'
                 'Content-Type: image/jpeg\r\n\r\nJPEGDATA\r\n')
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="submit"\r\n\r\nUpload\r\n--{boundary}--\r\n')
    write("post_form", "botocore_presigned_post",
          f"multipart/form-data; boundary={boundary}\n" + "".join(parts))
    # SigV2 form (policy signed with HMAC-SHA1), as older boto/HTML forms send it.
    policy = base64.b64encode(policy_document([{"bucket": "examplebucket"}, ["starts-with", "$key", ""]]).encode()).decode()
    signature = base64.b64encode(hmac.new(SECRET.encode(), policy.encode(), hashlib.sha1).digest()).decode()
    fields = {"key": "a.txt", "AWSAccessKeyId": ACCESS, "policy": policy, "signature": signature}
    body = "".join(f'--xyz\r\nContent-Disposition: form-data; name="{n}"\r\n\r\n{v}\r\n' for n, v in fields.items())
    body += '--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nhello\r\n--xyz--\r\n'
    write("post_form", "sigv2_form", "multipart/form-data; boundary=xyz\n" + body)


def xxh3(data):
    try:
        import xxhash
    except ImportError:
        return None
    return xxhash.xxh3_64_intdigest(data)


def storage_seeds():
    # A shard header as storage::format encodes it (version 1, RS 4+2, index 1, 1 MiB blocks).
    fixed = b"STRATASH" + struct.pack(">HBBBBIQ", 1, 1, 4, 2, 1, 1 << 20, 5_000_000) + bytes(range(16)) + b"\x01"
    reference = struct.pack(">B", 3) + b"bkt" + struct.pack(">H", 5) + b"a/key" + struct.pack(">B", 4) + b"null" + struct.pack(">I", 1)
    # Checksums are fixed up by the target (control bit 0), so zeros are fine here.
    header = fixed + bytes(8) + struct.pack(">I", len(reference)) + reference + bytes(8)
    write("storage_wire", "shard_header", b"\x01" + header)
    write("storage_wire", "stat_answer", b"\x01" + b"SNS1" + struct.pack(">Q", 123456) + header)
    frame = b"shard-bytes"
    write("storage_wire", "frames_answer", bytes([2 << 1]) + b"SNF1" + struct.pack(">I", 2) + b"\x00" +
          b"\x01" + struct.pack(">I", 8 + len(frame)) + bytes(8) + frame)
    write("storage_wire", "health_answer", b"\x00free_bytes=1000\ntotal_bytes=2000\ninstance=7\n")
    write("storage_wire", "list_answer", b"\x00" + b"000102030405060708090a0b0c0d0e0f.1\n")
    write("storage_wire", "scrub_status", b'\x00{"format":1,"status":{"reports":[]}}')


def main():
    auth_seeds()
    chunked_seeds()
    xml_seeds()
    range_seeds()
    token_seeds()
    post_seeds()
    storage_seeds()


if __name__ == "__main__":
    sys.exit(main())
