"""Fixtures for the real-client suite: one server per session, a fresh bucket per test.

Target selection (environment):
- `S3COMPAT_TARGET=strata` (default): spawn `$STRATA_BIN` (default
  `~/.cache/strata/target/release/strata`) with `server --listen 127.0.0.1:PORT --data DIR`.
  The shared server runs with `--no-fsync` for speed unless `S3COMPAT_FSYNC=1`; the durability
  tests always spawn their own instances with fsync on.
- `S3COMPAT_TARGET=moto`: spawn `moto_server` instead, to check the tests against a reference
  S3. Tests marked `strata_only` are skipped; tests marked `moto_quirk(reason)` are expected
  to fail there (non-strict) because of a documented moto limitation.
- `S3COMPAT_CLUSTER=1`: the shared server is `strata gateway` + 6 `strata storage-node`s.
- `S3COMPAT_GATEWAYS=N` (N > 1, implies the cluster run): N gateways over a 3-member etcd
  catalog, reached through a round-robin TCP proxy that closes each connection after one
  response, so every request of every client goes to the next gateway (cluster_support,
  multi_gateway_support).

Every client is isolated from the user's configuration: aws-cli and boto3 read only the
config/credential files written here, s3cmd only its `-c` file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import boto3
import pytest

import support
# HTTPS fixtures: tls_server (endpoint + CA bundle), tls_make_client (boto3), tls_aws (aws-cli).
# Imported before cluster_support: TlsStrataServer subclasses support.StrataServer, which
# cluster_support replaces by a factory function when S3COMPAT_CLUSTER=1 (or S3COMPAT_GATEWAYS > 1).
from tls_support import (  # noqa: F401
    tls_aws,
    tls_ca_bundle,
    tls_certificates,
    tls_endpoint,
    tls_make_client,
    tls_server,
)
import cluster_support  # noqa: F401,E402  (S3COMPAT_CLUSTER=1: the shared server is a 6-node cluster)

TARGET = support.TARGET
STRATA_BIN = support.STRATA_BIN
KEEP_DATA = os.environ.get("S3COMPAT_KEEP_DATA") == "1"

def pytest_configure(config):
    config.addinivalue_line("markers", "strata_only: needs a strata server (skipped on moto)")
    config.addinivalue_line("markers", "moto_quirk(reason): known moto limitation; xfail on moto")
    config.addinivalue_line("markers", "client(name): the client a test drives (for matrix_table.py)")
    config.addinivalue_line("markers", "covers(*operations): client-matrix operations a test proves")
    if TARGET not in ("strata", "moto"):
        raise pytest.UsageError(f"S3COMPAT_TARGET must be 'strata' or 'moto', not {TARGET!r}")


def pytest_collection_modifyitems(config, items):
    if TARGET != "moto":
        return
    for item in items:
        if item.get_closest_marker("strata_only"):
            item.add_marker(pytest.mark.skip(reason="strata-only test (S3COMPAT_TARGET=moto)"))
        quirk = item.get_closest_marker("moto_quirk")
        if quirk:
            reason = quirk.args[0] if quirk.args else "moto limitation"
            item.add_marker(pytest.mark.xfail(reason=f"moto: {reason}", strict=False))


def pytest_report_header(config):
    header = f"s3-compat target: {TARGET}" + (f" ({STRATA_BIN})" if TARGET == "strata" else "")
    if TARGET == "strata" and cluster_support.GATEWAYS > 1:
        header += f"; shared server: {cluster_support.GATEWAYS} gateways on etcd behind a round-robin proxy"
    elif TARGET == "strata" and os.environ.get("S3COMPAT_CLUSTER") == "1":
        header += "; shared server: gateway + 6 storage nodes"
    return header


def pytest_terminal_summary(terminalreporter):
    for counts in cluster_support.PROXY_CONNECTIONS:
        terminalreporter.write_line(f"round-robin proxy: client connections per gateway {counts}")


@pytest.fixture(scope="session")
def scratch_root():
    """A session directory for server data and test files, removed at the end."""
    root = Path(tempfile.mkdtemp(prefix="s3compat-"))
    yield root
    if not KEEP_DATA:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def strata_bin():
    if TARGET != "strata":
        pytest.skip("strata-only")
    if not os.access(STRATA_BIN, os.X_OK):
        pytest.exit(f"strata binary not found or not executable at {STRATA_BIN} (set STRATA_BIN)", returncode=2)
    return STRATA_BIN


@pytest.fixture(scope="session")
def cluster_bin():
    """The strata binary for tests that start their own cluster (`gateway` + `storage-node`
    processes); skips (never fails) where the binary is missing or lacks those roles."""
    if TARGET != "strata":
        pytest.skip("strata-only")
    if not os.access(STRATA_BIN, os.X_OK):
        pytest.skip(f"no strata binary at {STRATA_BIN}")
    for role in ("gateway", "storage-node"):
        try:
            proc = subprocess.run([STRATA_BIN, role, "--help"], capture_output=True, timeout=20)
        except subprocess.TimeoutExpired:
            pytest.fail(f"`strata {role} --help` hung")
        if proc.returncode != 0:
            pytest.skip(f"{STRATA_BIN} has no `{role}` subcommand")
    return STRATA_BIN


@pytest.fixture(scope="session")
def server(scratch_root):
    """The shared server for the whole session."""
    if TARGET == "moto":
        srv = support.MotoServer(scratch_root / "moto.log")
    else:
        if not os.access(STRATA_BIN, os.X_OK):
            pytest.exit(f"strata binary not found or not executable at {STRATA_BIN} (set STRATA_BIN)",
                        returncode=2)
        fsync = os.environ.get("S3COMPAT_FSYNC") == "1"
        srv = support.StrataServer(STRATA_BIN, scratch_root / "shared-data", scratch_root / "strata.log",
                                   fsync=fsync)
    try:
        srv.start()
    except RuntimeError as exc:
        pytest.exit(str(exc), returncode=3)
    yield srv
    code = srv.stop()
    if TARGET == "strata" and code not in (0, None):
        # A server that crashes or cannot drain on SIGTERM is a bug worth seeing, but the
        # tests have already reported; print instead of failing teardown of every test.
        print(f"\nwarning: strata exited with {code} after SIGTERM; log tail:\n{srv.log_tail()}")


@pytest.fixture(scope="session")
def endpoint(server) -> str:
    return server.endpoint


@pytest.fixture(scope="session")
def client_config_dir(scratch_root, endpoint):
    """Isolated aws-cli/boto3 config + credentials, and an s3cmd config (path style, http)."""
    cfg = scratch_root / "client-config"
    cfg.mkdir()
    (cfg / "aws-config").write_text(f"[default]\nregion = {support.REGION}\noutput = json\n")
    (cfg / "aws-credentials").write_text(
        f"[default]\naws_access_key_id = {support.ACCESS_KEY}\n"
        f"aws_secret_access_key = {support.SECRET_KEY}\n"
    )
    host = endpoint.removeprefix("http://")
    (cfg / "s3cmd.cfg").write_text(
        "[default]\n"
        f"access_key = {support.ACCESS_KEY}\n"
        f"secret_key = {support.SECRET_KEY}\n"
        f"host_base = {host}\n"
        f"host_bucket = {host}\n"
        "use_https = False\n"
        "signature_v2 = False\n"
        "bucket_location = US\n"
        "check_ssl_certificate = False\n"
        "progress_meter = False\n"
    )
    return cfg


@pytest.fixture(scope="session", autouse=True)
def isolated_aws_environment(client_config_dir):
    """Point this process (boto3) at the isolated files; drop any AWS_* overrides."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("AWS_"):
                mp.delenv(name)
        mp.setenv("AWS_CONFIG_FILE", str(client_config_dir / "aws-config"))
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(client_config_dir / "aws-credentials"))
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
        mp.setenv("AWS_PAGER", "")
        yield


@pytest.fixture(scope="session")
def client_env(isolated_aws_environment) -> dict:
    """Environment for client subprocesses (aws, s3cmd, curl)."""
    env = dict(os.environ)
    env["PYTHONWARNINGS"] = "ignore"
    return env


@pytest.fixture(scope="session")
def make_client(endpoint, isolated_aws_environment):
    """Factory for boto3 S3 clients with current defaults (extra Config or keys optional)."""

    def factory(access_key=support.ACCESS_KEY, secret_key=support.SECRET_KEY, config=None):
        session = boto3.session.Session(aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                                        region_name=support.REGION)
        return session.client("s3", endpoint_url=endpoint, config=config)

    return factory


@pytest.fixture(scope="session")
def s3(make_client):
    return make_client()


@pytest.fixture
def bucket(s3, request) -> str:
    """A fresh, empty bucket for this test (left behind: the data dir goes at session end)."""
    name = support.bucket_name(request.node.name)
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def work(scratch_root, request):
    """A per-test directory for local files, removed after the test (files can be big)."""
    path = scratch_root / "work" / support.bucket_name(request.node.name)
    path.mkdir(parents=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def aws(endpoint, client_env):
    """Run `aws --endpoint-url … ARGS`; returns the CompletedProcess (check=True by default)."""

    def call(*args, check=True, timeout=support.SUBPROCESS_TIMEOUT, cwd=None):
        cmd = [support.tool("aws"), "--endpoint-url", endpoint, *map(str, args)]
        return support.run(cmd, env=client_env, timeout=timeout, check=check, cwd=cwd)

    return call


@pytest.fixture
def aws_json(aws):
    import json

    def call(*args, **kwargs):
        out = aws(*args, "--output", "json", **kwargs).stdout
        return json.loads(out) if out.strip() else {}

    return call


@pytest.fixture
def s3cmd(client_config_dir, client_env):
    """Run `s3cmd -c CFG ARGS`; returns the CompletedProcess (check=True by default)."""

    def call(*args, check=True, timeout=support.SUBPROCESS_TIMEOUT, cwd=None):
        cmd = [support.tool("s3cmd"), "-c", str(client_config_dir / "s3cmd.cfg"), *map(str, args)]
        return support.run(cmd, env=client_env, timeout=timeout, check=check, cwd=cwd)

    return call


@pytest.fixture
def curl(client_env):
    def call(*args, check=True, timeout=120):
        cmd = ["curl", "--globoff", "--max-time", str(timeout), *map(str, args)]
        return support.run(cmd, env=client_env, timeout=timeout + 10, check=check)

    return call


# ---- the client matrix: every transport a client can use ---------------------------------------

SCHEMES = ["http", "https"]


def tls_target(request) -> support.Target:
    """The HTTPS server of tls_support (its own strata, a throwaway CA) as a Target."""
    return support.Target(request.getfixturevalue("tls_endpoint"), request.getfixturevalue("tls_ca_bundle"))


@pytest.fixture(scope="session", params=SCHEMES)
def target(request, endpoint) -> support.Target:
    """The server over each transport in turn (http, then https with a private CA)."""
    if request.param == "http":
        return support.Target(endpoint)
    if os.environ.get("S3COMPAT_CLUSTER") == "1":
        # tls_server is an embedded strata even in the cluster run: the embedded run covers it.
        pytest.skip("https target is an embedded server; covered by the embedded run")
    return tls_target(request)


@pytest.fixture
def target_client(target, isolated_aws_environment):
    session = boto3.session.Session(aws_access_key_id=support.ACCESS_KEY, aws_secret_access_key=support.SECRET_KEY,
                                    region_name=support.REGION)
    return session.client("s3", endpoint_url=target.url, verify=target.ca_bundle or True)


@pytest.fixture
def target_bucket(target_client, request) -> str:
    """A fresh, empty bucket created through `target` (so it exists on that server)."""
    name = support.bucket_name(request.node.name)
    target_client.create_bucket(Bucket=name)
    return name
