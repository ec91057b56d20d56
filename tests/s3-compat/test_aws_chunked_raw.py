"""Raw aws-chunked requests over a real socket, one per variant, built from the AWS examples.

The AWS SigV4 documentation ("Transferring Payload in Multiple Chunks" and "Including Trailing
Headers") signs a PUT of 66,560 bytes of 'a' in 64 KiB chunks. The signer below is first checked
against the published seed, chunk and trailer signatures (so it is AWS's algorithm, not ours),
then used with this server's key and the current time (the published requests are from 2013
and would fail the clock-skew check) to send the same bodies, byte for byte in shape, as
`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`, `…-PAYLOAD-TRAILER` and `STREAMING-UNSIGNED-PAYLOAD-TRAILER`.
The negative cases each expect the exact S3 error and prove that nothing was stored: the
previous object under the key is intact and a fresh key stays absent.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import http.client
import socket
import urllib.parse

import pytest

import support
from support import error_code

pytestmark = pytest.mark.strata_only

DOC_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
DOC_TIMESTAMP = "20130524T000000Z"
DOC_SCOPE = "20130524/us-east-1/s3/aws4_request"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
PAYLOAD = b"a" * 66560
CHUNK = 64 * 1024
CRC32C_OF_PAYLOAD = "sOO8/Q=="  # the published trailer value for 66,560 bytes of 'a'

SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str = support.REGION) -> bytes:
    key = _hmac(("AWS4" + secret).encode(), date)
    for part in (region, "s3", "aws4_request"):
        key = _hmac(key, part)
    return key


def seed_signature(key: bytes, timestamp: str, scope: str, method: str, path: str,
                   headers: dict[str, str]) -> tuple[str, str]:
    """(signed headers, signature) of the request headers; the payload hash is the mode."""
    names = sorted(headers)
    canonical = "\n".join([method, path, "", *(f"{n}:{headers[n].strip()}" for n in names), "",
                           ";".join(names), headers["x-amz-content-sha256"]])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", timestamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    return ";".join(names), hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def chunk_signature(key: bytes, timestamp: str, scope: str, previous: str, data: bytes) -> str:
    to_sign = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", timestamp, scope, previous, EMPTY_SHA256,
                         hashlib.sha256(data).hexdigest()])
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def trailer_signature(key: bytes, timestamp: str, scope: str, previous: str, trailer: bytes) -> str:
    to_sign = "\n".join(["AWS4-HMAC-SHA256-TRAILER", timestamp, scope, previous,
                         hashlib.sha256(trailer).hexdigest()])
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def chunked_body(mode: str, payload: bytes, *, key: bytes = b"", timestamp: str = "", scope: str = "",
                 seed: str = "", trailer: list[tuple[str, str]] | None = None) -> bytes:
    """The aws-chunked encoding of `payload` in 64 KiB chunks, as the AWS examples frame it."""
    out = bytearray()
    previous = seed
    pieces = [payload[i:i + CHUNK] for i in range(0, len(payload), CHUNK)] + [b""]
    for piece in pieces:
        if mode == UNSIGNED_TRAILER:
            out += f"{len(piece):x}\r\n".encode()
        else:
            previous = chunk_signature(key, timestamp, scope, previous, piece)
            out += f"{len(piece):x};chunk-signature={previous}\r\n".encode()
        if piece:
            out += piece + b"\r\n"
    if mode == SIGNED:
        return bytes(out + b"\r\n")
    canonical = b"".join(f"{n}:{v}\n".encode() for n, v in trailer or [])
    for name, value in trailer or []:
        out += f"{name}:{value}\r\n".encode()
    if mode == SIGNED_TRAILER:
        out += f"x-amz-trailer-signature:{trailer_signature(key, timestamp, scope, previous, canonical)}\r\n".encode()
    return bytes(out + b"\r\n")


def test_signer_reproduces_the_published_aws_examples():
    key = signing_key(DOC_SECRET, "20130524", "us-east-1")
    headers = {
        "host": "s3.amazonaws.com", "x-amz-date": DOC_TIMESTAMP, "x-amz-storage-class": "REDUCED_REDUNDANCY",
        "content-encoding": "aws-chunked", "x-amz-decoded-content-length": "66560", "content-length": "66824",
        "x-amz-content-sha256": SIGNED,
    }
    _, seed = seed_signature(key, DOC_TIMESTAMP, DOC_SCOPE, "PUT", "/examplebucket/chunkObject.txt", headers)
    assert seed == "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    body = chunked_body(SIGNED, PAYLOAD, key=key, timestamp=DOC_TIMESTAMP, scope=DOC_SCOPE, seed=seed)
    assert len(body) == 66824, "the published Content-Length"
    for published in ("ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
                      "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
                      "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"):
        assert f"chunk-signature={published}".encode() in body
    # The trailer example: its published seed, chunk signatures, trailer and trailer signature.
    body = chunked_body(SIGNED_TRAILER, PAYLOAD, key=key, timestamp=DOC_TIMESTAMP, scope=DOC_SCOPE,
                        seed="106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e",
                        trailer=[("x-amz-checksum-crc32c", CRC32C_OF_PAYLOAD)])
    for published in ("b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
                      "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
                      "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992"):
        assert f"chunk-signature={published}".encode() in body
    assert (b"x-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"
            in body)
    if support.has_crt():
        assert support.checksum_b64("CRC32C", PAYLOAD) == CRC32C_OF_PAYLOAD


class ChunkedUpload:
    """One aws-chunked PUT against the server: headers signed now, with the suite's key."""

    def __init__(self, endpoint: str, bucket: str, key: str, mode: str, *,
                 trailer_name: str | None = "x-amz-checksum-crc32c", decoded_length: int = len(PAYLOAD)):
        self.endpoint = endpoint
        self.path = f"/{bucket}/{support.quote_key(key)}"
        self.mode = mode
        now = datetime.datetime.now(datetime.timezone.utc)
        self.timestamp = now.strftime("%Y%m%dT%H%M%SZ")
        self.scope = f"{now:%Y%m%d}/{support.REGION}/s3/aws4_request"
        self.key = signing_key(support.SECRET_KEY, f"{now:%Y%m%d}")
        self.host = urllib.parse.urlsplit(endpoint).netloc
        self.headers = {
            "host": self.host, "x-amz-date": self.timestamp, "x-amz-content-sha256": mode,
            "content-encoding": "aws-chunked", "x-amz-decoded-content-length": str(decoded_length),
        }
        if mode != SIGNED and trailer_name:
            self.headers["x-amz-trailer"] = trailer_name
        signed, self.seed = seed_signature(self.key, self.timestamp, self.scope, "PUT", self.path, self.headers)
        self.authorization = (f"AWS4-HMAC-SHA256 Credential={support.ACCESS_KEY}/{self.scope}, "
                              f"SignedHeaders={signed}, Signature={self.seed}")

    def body(self, payload: bytes = PAYLOAD, trailer: list[tuple[str, str]] | None = None) -> bytes:
        if trailer is None and self.mode != SIGNED:
            trailer = [("x-amz-checksum-crc32c", CRC32C_OF_PAYLOAD)]
        return chunked_body(self.mode, payload, key=self.key, timestamp=self.timestamp, scope=self.scope,
                            seed=self.seed, trailer=trailer)

    def send(self, body: bytes, *, transfer_chunked: bool = False) -> support.RawResponse:
        """Sends the request with `body` as is (Content-Length, or HTTP/1.1 chunked framing)."""
        lines = [f"PUT {self.path} HTTP/1.1"] + [f"{k}: {v}" for k, v in self.headers.items()]
        lines.append(f"authorization: {self.authorization}")
        if transfer_chunked:
            lines.append("transfer-encoding: chunked")
            wire = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n" if body else b"0\r\n\r\n"
        else:
            lines.append(f"content-length: {len(body)}")
            wire = body
        parsed = urllib.parse.urlsplit(self.endpoint)
        with socket.create_connection((parsed.hostname, parsed.port), timeout=30) as sock:
            try:
                sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + wire)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server may answer (and close) before reading a bad body to its end
            response = http.client.HTTPResponse(sock)
            response.begin()
            payload = response.read()
            return support.RawResponse(response.status, {k.lower(): v for k, v in response.getheaders()},
                                       payload)


@pytest.mark.parametrize("mode", [SIGNED, SIGNED_TRAILER, UNSIGNED_TRAILER])
@pytest.mark.parametrize("framing", ["content-length", "transfer-encoding", "no-final-crlf"])
def test_each_variant_stores_the_documented_payload(endpoint, s3, bucket, mode, framing):
    upload = ChunkedUpload(endpoint, bucket, "chunkObject.txt", mode)
    body = upload.body()
    if framing == "no-final-crlf":
        assert body.endswith(b"\r\n\r\n")
        body = body[:-2]  # some clients omit the CRLF that ends the body (S3-CLIENTS.md §2a)
    answer = upload.send(body, transfer_chunked=framing == "transfer-encoding")
    assert answer.status == 200, answer.body
    assert answer.headers["etag"] == support.quoted_md5(PAYLOAD)
    head = s3.head_object(Bucket=bucket, Key="chunkObject.txt", ChecksumMode="ENABLED")
    assert head["ContentLength"] == len(PAYLOAD)
    assert "aws-chunked" not in head.get("ContentEncoding", ""), "aws-chunked must not be stored"
    if mode != SIGNED:
        assert head.get("ChecksumCRC32C") == CRC32C_OF_PAYLOAD
    assert s3.get_object(Bucket=bucket, Key="chunkObject.txt")["Body"].read() == PAYLOAD


def flip_signature(body: bytes, index: int) -> bytes:
    """Changes one hex digit of the index-th chunk signature."""
    marker = b"chunk-signature="
    position = -1
    for _ in range(index + 1):
        position = body.index(marker, position + 1)
    digit = position + len(marker)
    replacement = b"0" if body[digit:digit + 1] != b"0" else b"1"
    return body[:digit] + replacement + body[digit + 1:]


def oversize_header(upload: ChunkedUpload) -> bytes:
    body = upload.body()
    return body.replace(b"\r\n", b";" + b"x" * 5000 + b"\r\n", 1)


def oversize_trailer(upload: ChunkedUpload) -> bytes:
    return upload.body(trailer=[("x-amz-checksum-crc32c", CRC32C_OF_PAYLOAD), ("x-amz-meta-pad", "p" * 20000)])


def drop_final_chunk(upload: ChunkedUpload) -> bytes:
    body = upload.body()
    # The final chunk's header is the only line "0;…" or "0" that follows a CRLF.
    final = max(body.rfind(b"\r\n0;"), body.rfind(b"\r\n0\r\n"))
    assert final > 0
    return body[:final + 2]


def wrong_trailer_signature(upload: ChunkedUpload) -> bytes:
    body = upload.body()
    marker = b"x-amz-trailer-signature:"
    digit = body.index(marker) + len(marker)
    replacement = b"0" if body[digit:digit + 1] != b"0" else b"1"
    return body[:digit] + replacement + body[digit + 1:]


def wrong_trailer_checksum(upload: ChunkedUpload) -> bytes:
    return upload.body(trailer=[("x-amz-checksum-crc32c", support_b64_of(b"something else"))])


def support_b64_of(data: bytes) -> str:
    import base64
    import zlib

    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()  # 4 bytes: a valid CRC32C shape


def tampered_data(upload: ChunkedUpload) -> bytes:
    body = upload.body()
    position = body.index(b"\r\n") + 2 + 1000
    return body[:position] + b"b" + body[position + 1:]


NEGATIVE_CASES = [
    # (name, modes, body builder, status, code)
    ("wrong-chunk-signature", [SIGNED, SIGNED_TRAILER], lambda u: flip_signature(u.body(), 1), 403,
     "SignatureDoesNotMatch"),
    ("wrong-final-chunk-signature", [SIGNED, SIGNED_TRAILER], lambda u: flip_signature(u.body(), 2), 403,
     "SignatureDoesNotMatch"),
    ("tampered-data", [SIGNED, SIGNED_TRAILER], tampered_data, 403, "SignatureDoesNotMatch"),
    ("wrong-trailer-signature", [SIGNED_TRAILER], wrong_trailer_signature, 403, "SignatureDoesNotMatch"),
    ("missing-final-chunk", [SIGNED, SIGNED_TRAILER, UNSIGNED_TRAILER], drop_final_chunk, 400, "IncompleteBody"),
    ("oversize-chunk-header", [SIGNED, SIGNED_TRAILER, UNSIGNED_TRAILER], oversize_header, 400, "IncompleteBody"),
    ("oversize-trailer", [SIGNED_TRAILER, UNSIGNED_TRAILER], oversize_trailer, 400, "MalformedTrailerError"),
    ("trailer-checksum-mismatch", [SIGNED_TRAILER, UNSIGNED_TRAILER], wrong_trailer_checksum, 400, "BadDigest"),
    ("short-decoded-length", [SIGNED, UNSIGNED_TRAILER], None, 400, "IncompleteBody"),
]


@pytest.mark.parametrize("name,mode,build,status,code", [
    pytest.param(name, mode, build, status, code, id=f"{name}-{mode}")
    for name, modes, build, status, code in NEGATIVE_CASES for mode in modes
])
def test_bad_chunked_bodies_are_refused_and_nothing_is_stored(endpoint, s3, bucket, name, mode, build, status,
                                                              code):
    s3.put_object(Bucket=bucket, Key="existing", Body=b"the previous version")
    for key in ("existing", "fresh"):
        if build is None:  # the body holds one byte more than x-amz-decoded-content-length says
            upload = ChunkedUpload(endpoint, bucket, key, mode, decoded_length=len(PAYLOAD) - 1)
            body = upload.body()
        else:
            upload = ChunkedUpload(endpoint, bucket, key, mode)
            body = build(upload)
        answer = upload.send(body)
        assert (answer.status, error_code(answer)) == (status, code), answer.body[:500]
        assert answer.request_id()
    assert s3.get_object(Bucket=bucket, Key="existing")["Body"].read() == b"the previous version"
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    assert [o["Key"] for o in listed] == ["existing"], "a refused upload must leave nothing behind"
    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert uploads == []
