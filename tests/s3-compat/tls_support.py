"""HTTPS for the real-client suite: a throwaway CA and server certificate, and strata over TLS.

Owns: generating (with the `openssl` CLI, run-time only, nothing checked in) a CA and a
certificate for 127.0.0.1/localhost signed by it; `TlsStrataServer`, a strata server whose S3
port speaks HTTPS (readiness polled over TLS against the CA, so a bad certificate setup fails the
start); the session fixtures `tls_server` (endpoint + CA bundle path), `tls_make_client` (boto3
with `verify=<ca>`) and `tls_aws` (aws-cli with `--ca-bundle`). With a https:// endpoint, boto3
and aws-cli send PutObject/UploadPart bodies as STREAMING-UNSIGNED-PAYLOAD-TRAILER
(S3-CLIENTS.md §2a); `body_modes()` reads what the server saw from its debug log.

Invariants: every wait is bounded; nothing talks to anything but 127.0.0.1; the CA key never
leaves the session's scratch directory.
"""

from __future__ import annotations

import http.client
import re
import ssl
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

import support

# The debug line body.rs writes for every request body (see `prepare_body`).
BODY_LOG_FILTER = "info,strata_gateway::s3::payload::body=debug"
_BODY_LINE = re.compile(
    r'request_id=(?P<id>[0-9A-F]+) method=(?P<method>[A-Z]+).*?request body'
    r' payload="?(?P<payload>[A-Za-z0-9-]+)"?'
    r' checksum="?(?P<checksum>[A-Z0-9]+|none)"? checksum_source="?(?P<source>\w+)"?'
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class Certificates:
    ca: Path  # the CA certificate: what clients trust (--ca-bundle / verify=)
    cert: Path  # server certificate chain (leaf), SAN 127.0.0.1 + localhost
    key: Path  # server private key (PKCS#8 PEM)


def _openssl(*args: str, cwd: Path) -> None:
    support.run(["openssl", *args], cwd=cwd, timeout=60)


def make_certificates(directory: Path, name: str = "server") -> Certificates:
    """A fresh CA and a server certificate for 127.0.0.1 and localhost (valid two days)."""
    directory.mkdir(parents=True, exist_ok=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", f"{name}-ca.key", "-out", f"{name}-ca.pem", "-days", "2",
             "-subj", "/CN=Strata throwaway test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", "/CN=localhost",
             cwd=directory)
    (directory / f"{name}.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid,issuer\n"
    )
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{name}-ca.pem", "-CAkey", f"{name}-ca.key",
             "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext",
             cwd=directory)
    return Certificates(ca=directory / f"{name}-ca.pem", cert=directory / f"{name}.pem",
                        key=directory / f"{name}.key")


def client_context(ca: Path, alpn: list[str] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    if alpn:
        context.set_alpn_protocols(alpn)
    return context


def https_status(url: str, ca: Path, timeout: float = 2) -> int | None:
    host, _, port = url.removeprefix("https://").partition(":")
    conn = http.client.HTTPSConnection(host, int(port), timeout=timeout, context=client_context(ca))
    try:
        conn.request("GET", "/_strata/health/ready")
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except (OSError, ssl.SSLError):
        return None
    finally:
        conn.close()


class TlsStrataServer(support.StrataServer):
    """`strata server` whose S3 port is HTTPS (or, with `plain_too`, HTTPS on a second port)."""

    def __init__(self, binary: str, data_dir: Path, log_path: Path, certs: Certificates, *,
                 plain_too: bool = False, config_toml: str = "", **kwargs):
        super().__init__(binary, data_dir, log_path, **kwargs)
        self.certs = certs
        self.plain_too = plain_too
        self.tls_port = support.free_port() if plain_too else self.port
        self.config_toml = config_toml

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.tls_port}"

    @property
    def plain_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        cmd = super().command() + ["--tls-cert", str(self.certs.cert), "--tls-key", str(self.certs.key)]
        if self.plain_too:
            cmd += ["--tls-listen", f"127.0.0.1:{self.tls_port}"]
        if self.config_toml:
            path = self.data_dir.parent / f"{self.data_dir.name}.toml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(self.config_toml)
            cmd += ["--config", str(path)]
        return cmd

    def environment(self) -> dict:
        env = {k: v for k, v in super().environment().items() if not k.startswith("STRATA_TLS")}
        env["STRATA_LOG"] = BODY_LOG_FILTER
        return env

    def is_ready(self) -> bool:
        return https_status(self.endpoint, self.certs.ca) == 200

    def body_modes(self) -> list[dict]:
        """Every request body the server has read: id, method, payload mode, checksum, source."""
        text = _ANSI.sub("", self.log_path.read_text(errors="replace"))
        return [m.groupdict() for m in _BODY_LINE.finditer(text)]


@pytest.fixture(scope="session")
def tls_certificates(scratch_root) -> Certificates:
    return make_certificates(scratch_root / "tls")


@pytest.fixture(scope="session")
def tls_server(scratch_root, strata_bin, tls_certificates):
    """A strata server over HTTPS for the session: `.endpoint` (https://…) and `.certs.ca`."""
    server = TlsStrataServer(strata_bin, scratch_root / "tls-data", scratch_root / "strata-tls.log",
                             tls_certificates, fsync=False)
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield server
    code = server.stop()
    if code not in (0, None):
        print(f"\nwarning: TLS strata exited with {code} after SIGTERM; log tail:\n{server.log_tail()}")


@pytest.fixture(scope="session")
def tls_endpoint(tls_server) -> str:
    return tls_server.endpoint


@pytest.fixture(scope="session")
def tls_ca_bundle(tls_server) -> str:
    return str(tls_server.certs.ca)


@pytest.fixture(scope="session")
def tls_make_client(tls_server, isolated_aws_environment):
    """Factory for boto3 clients with current defaults against the HTTPS endpoint."""

    def factory(config=None):
        session = boto3.session.Session(aws_access_key_id=support.ACCESS_KEY,
                                        aws_secret_access_key=support.SECRET_KEY,
                                        region_name=support.REGION)
        return session.client("s3", endpoint_url=tls_server.endpoint, verify=str(tls_server.certs.ca),
                              config=config)

    return factory


@pytest.fixture
def tls_aws(tls_server, client_env):
    """Run `aws --endpoint-url https://… --ca-bundle CA ARGS` (check=True by default)."""

    def call(*args, check=True, timeout=support.SUBPROCESS_TIMEOUT, cwd=None):
        cmd = [support.tool("aws"), "--endpoint-url", tls_server.endpoint, "--ca-bundle",
               str(tls_server.certs.ca), *map(str, args)]
        return support.run(cmd, env=client_env, timeout=timeout, check=check, cwd=cwd)

    return call
