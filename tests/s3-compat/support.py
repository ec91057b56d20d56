"""Shared helpers for the real-client S3 compatibility suite.

Owns: locating the client tools, deterministic test data, local checksum/ETag computation,
bounded subprocess calls, raw (signed or anonymous) HTTP requests, and the lifecycle of a
spawned server (strata or moto). Every wait here is bounded; every subprocess has a timeout.
Nothing in this module talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import itertools
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import zlib
from dataclasses import dataclass
from pathlib import Path

TARGET = os.environ.get("S3COMPAT_TARGET", "strata").lower()
# The strata binary under test (the `strata_bin` and `cluster_bin` fixtures of conftest.py check it).
STRATA_BIN = os.environ.get("STRATA_BIN") or str(Path.home() / ".cache/strata/target/release/strata")

KIB = 1024
MIB = 1024 * 1024

ACCESS_KEY = "STRATACOMPATTESTKEY1"
SECRET_KEY = "compat-test-secret-0123456789abcdefABCDEF"
REGION = "us-east-1"

# Default wall-clock bound for one client subprocess (big multipart transfers included).
SUBPROCESS_TIMEOUT = 240

# Keys that trip up encoders, signers and routers. Used by every client in test_awkward_keys.
AWKWARD_KEYS = {
    "space": "with space.txt",
    "unicode": "ключ/日本/ü",
    "plus": "plus+sign",
    "percent": "percent%20literal%",
    "ampersand": "amp&ersand",
    "double-quote": 'double"quote',
    "single-quote": "single'quote",
    "question": "question?mark",
    "equals": "equals=sign",
    "hash": "hash#sign",
    "all-together": "all + % & \" ' ? = # together",
    "double-slash": "a//b",
    "trailing-slash": "trailing/",
    "1024-ascii": "k" * 1024,  # the longest key S3 allows (1024 bytes of UTF-8)
    "1024-multibyte": "ü" * 512,  # also 1024 bytes
}

_bucket_counter = itertools.count()


def bucket_name(hint: str) -> str:
    """A unique, valid bucket name derived from a test name."""
    slug = re.sub(r"[^a-z0-9]+", "-", hint.lower()).strip("-")
    name = f"t{next(_bucket_counter):04d}-{os.getpid() % 10000}-{slug}"[:63]
    return name.rstrip("-")


def tool(name: str) -> str:
    """Path of a client tool: the copy installed next to this Python first, then PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"client tool {name!r} not found (install tests/s3-compat/requirements.txt)")
    return found


def data(size: int, seed: int = 0) -> bytes:
    """Deterministic incompressible bytes (so no layer can cheat with zeros)."""
    return random.Random(f"{seed}:{size}").randbytes(size)


def write_file(path: Path, size: int, seed: int = 0) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = data(size, seed)
    path.write_bytes(body)
    return body


def md5_hex(body: bytes) -> str:
    return hashlib.md5(body).hexdigest()


def quoted_md5(body: bytes) -> str:
    return f'"{md5_hex(body)}"'


def multipart_etag(parts: list[bytes]) -> str:
    """S3's ETag of a multipart object: md5 of the concatenated binary part md5s, then '-N'."""
    joined = b"".join(hashlib.md5(p).digest() for p in parts)
    return f'"{hashlib.md5(joined).hexdigest()}-{len(parts)}"'


def split_parts(body: bytes, part_size: int) -> list[bytes]:
    return [body[i : i + part_size] for i in range(0, len(body), part_size)] or [b""]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(MIB), b""):
            digest.update(block)
    return digest.hexdigest()


def checksum_raw(algorithm: str, body: bytes) -> bytes:
    """Raw digest bytes of an S3 flexible checksum, computed locally."""
    algorithm = algorithm.upper()
    if algorithm == "CRC32":
        return zlib.crc32(body).to_bytes(4, "big")
    if algorithm == "SHA1":
        return hashlib.sha1(body).digest()
    if algorithm == "SHA256":
        return hashlib.sha256(body).digest()
    if algorithm == "CRC32C":
        from awscrt import checksums  # optional; callers skip when missing

        return checksums.crc32c(body).to_bytes(4, "big")
    if algorithm == "CRC64NVME":
        from awscrt import checksums

        return checksums.crc64nvme(body).to_bytes(8, "big")
    raise ValueError(f"unknown checksum algorithm {algorithm}")


def checksum_b64(algorithm: str, body: bytes) -> str:
    return base64.b64encode(checksum_raw(algorithm, body)).decode()


def composite_checksum_b64(algorithm: str, parts: list[bytes]) -> str:
    """COMPOSITE multipart checksum: checksum of the concatenated raw part checksums, '-N'."""
    joined = b"".join(checksum_raw(algorithm, p) for p in parts)
    return f"{checksum_b64(algorithm, joined)}-{len(parts)}"


def has_crt() -> bool:
    try:
        from awscrt import checksums  # noqa: F401
    except ImportError:
        return False
    return True


def run(cmd: list[str], *, env: dict | None = None, timeout: float = SUBPROCESS_TIMEOUT,
        check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run a client command with a hard timeout; on failure raise with the full story."""
    try:
        proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"timed out after {timeout}s: {shown(cmd)}\nstderr: {tail(exc.stderr)}") from exc
    if check and proc.returncode != 0:
        raise AssertionError(
            f"command failed (rc={proc.returncode}): {shown(cmd)}\n"
            f"stdout: {tail(proc.stdout)}\nstderr: {tail(proc.stderr)}"
        )
    return proc


def shown(cmd: list[str]) -> str:
    return " ".join(c if len(c) < 200 else c[:200] + "…" for c in cmd)


def tail(raw: bytes | str | None, limit: int = 3000) -> str:
    if raw is None:
        return ""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return text if len(text) <= limit else "…" + text[-limit:]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Target:
    """One way to reach the server: its base URL and, for https, the CA bundle to trust."""

    url: str
    ca_bundle: str | None = None

    @property
    def scheme(self) -> str:
        return urllib.parse.urlsplit(self.url).scheme

    @property
    def host_port(self) -> str:
        return urllib.parse.urlsplit(self.url).netloc


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def request_id(self) -> str | None:
        found = self.headers.get("x-amz-request-id")
        if found is None and TARGET == "moto":
            found = self.headers.get("x-amzn-requestid")  # moto quirk: the JSON-protocol header name
        return found


def error_code(error) -> str | None:
    """The S3 error code of a failed request: from a botocore `ClientError` (or any exception
    with a `response` dict), a `RawResponse`, or a raw XML body. None when there is none."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    if isinstance(error, RawResponse):
        error = error.body
    if isinstance(error, (bytes, bytearray)):
        text = bytes(error).decode(errors="replace")
        if "<Code>" in text:
            return text.split("<Code>", 1)[1].split("</Code>", 1)[0]
    return None


def status_code(error) -> int | None:
    """The HTTP status of a failed request: from a botocore `ClientError` (or any exception with
    a `response` dict) or a `RawResponse`. None when there is none (a timeout, say)."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if isinstance(error, RawResponse):
        return error.status
    return None


def quote_key(key: str) -> str:
    return urllib.parse.quote(key, safe="/~")


def raw_request(endpoint: str, method: str, path: str, *, headers: dict | None = None,
                body: bytes = b"", signed: bool = False, access_key: str = ACCESS_KEY,
                secret_key: str = SECRET_KEY, timeout: float = 30) -> RawResponse:
    """One HTTP request to the endpoint, optionally SigV4-signed with botocore's signer.

    `path` must already be URL-encoded (use quote_key for object keys)."""
    headers = dict(headers or {})
    if signed:
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        request = AWSRequest(method=method, url=endpoint + path, data=body, headers=headers)
        S3SigV4Auth(Credentials(access_key, secret_key), "s3", REGION).add_auth(request)
        headers = dict(request.headers.items())
    parsed = urllib.parse.urlsplit(endpoint)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
    try:
        conn.request(method, path, body=body or None, headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
        return RawResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()}, payload)
    finally:
        conn.close()


def http_status(url: str, timeout: float = 2) -> int | None:
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
    try:
        conn.request("GET", parsed.path or "/")
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except OSError:
        return None
    finally:
        conn.close()


class ServerProcess:
    """A spawned S3 server on 127.0.0.1 with a bounded start (readiness poll) and stop."""

    ready_path = "/"
    start_timeout = 60.0
    stop_timeout = 30.0

    def __init__(self, log_path: Path):
        self.port = free_port()
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict:
        return dict(os.environ)

    def is_ready(self) -> bool:
        """One readiness probe of `start` (subclasses probe over another transport)."""
        return http_status(self.endpoint + self.ready_path) == 200

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=self.environment())
        finally:
            log.close()
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode} during start: "
                                   f"{shown(self.command())}\nlog: {self.log_tail()}")
            if self.is_ready():
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server not ready within {self.start_timeout}s: {shown(self.command())}\n"
                           f"log: {self.log_tail()}")

    def stop(self) -> int | None:
        """SIGTERM, wait (bounded), then SIGKILL. Returns the exit code."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        return proc.returncode

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self) -> str:
        try:
            return tail(self.log_path.read_bytes())
        except OSError:
            return "(no log)"


class StrataServer(ServerProcess):
    ready_path = "/_strata/health/ready"

    def __init__(self, binary: str, data_dir: Path, log_path: Path, *, data_shards: int = 4,
                 parity_shards: int = 2, fsync: bool = True):
        super().__init__(log_path)
        self.binary = binary
        self.data_dir = data_dir
        self.data_shards = data_shards
        self.parity_shards = parity_shards
        self.fsync = fsync

    def command(self) -> list[str]:
        cmd = [self.binary, "server", "--listen", f"127.0.0.1:{self.port}", "--data", str(self.data_dir),
               "--data-shards", str(self.data_shards), "--parity-shards", str(self.parity_shards)]
        if not self.fsync:
            cmd.append("--no-fsync")
        return cmd

    def environment(self) -> dict:
        env = dict(os.environ)
        env["STRATA_ACCESS_KEY"] = ACCESS_KEY
        env["STRATA_SECRET_KEY"] = SECRET_KEY
        return env


class MotoServer(ServerProcess):
    """moto in server mode: the reference S3 used to validate the tests themselves."""

    ready_path = "/"

    def command(self) -> list[str]:
        return [os.environ.get("S3COMPAT_MOTO_SERVER") or tool("moto_server"), "-H", "127.0.0.1",
                "-p", str(self.port)]
