"""boto3 across generations and transports: current boto3 and boto3 1.35, over http and https.

Every case in `boto3_matrix.py` runs four ways: in this process with the current boto3
(flexible CRC32 checksums: a header over http, an aws-chunked trailer over https) and in a
subprocess under the pinned boto3 1.35 venv (`S3COMPAT_BOTO135_PYTHON`, made by run.sh:
Content-MD5, no checksums, no trailers). Each case also asserts which of those shapes it
actually sent, so a client upgrade cannot silently change what is covered.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import boto3_matrix
import support

HERE = Path(__file__).resolve().parent
LEGACY_PYTHON = os.environ.get("S3COMPAT_BOTO135_PYTHON", "")
GENERATIONS = ["current", "boto3-1.35"]
MOTO_QUIRKS = {
    "delete_objects": "moto lists the deleted keys in Quiet mode",
    "presigned_urls": "moto does not verify presigned signatures",
}


def case_marks(name: str) -> list:
    marks = [pytest.mark.covers(*boto3_matrix.COVERS[name])]
    if name in MOTO_QUIRKS:
        marks.append(pytest.mark.moto_quirk(MOTO_QUIRKS[name]))
    return marks


CASE_PARAMS = [pytest.param(name, marks=case_marks(name)) for name in sorted(boto3_matrix.CASES)]
pytestmark = pytest.mark.client("boto3")


def run_legacy(case_name: str, target: support.Target, bucket: str, work: Path, env: dict) -> None:
    if not os.access(LEGACY_PYTHON, os.X_OK):
        pytest.fail("S3COMPAT_BOTO135_PYTHON is not set to an interpreter (run the suite through run.sh)")
    cmd = [LEGACY_PYTHON, str(HERE / "boto3_matrix.py"), case_name, "--endpoint", target.url, "--bucket", bucket,
           "--work", str(work)]
    if target.ca_bundle:
        cmd += ["--ca-bundle", target.ca_bundle]
    env = dict(env, PYTHONPATH=str(HERE))
    proc = support.run(cmd, env=env, check=False, cwd=HERE)
    assert proc.returncode == 0, f"boto3 1.35 case {case_name} failed:\n{support.tail(proc.stderr)}"
    assert b"botocore 1.35." in proc.stdout, proc.stdout  # really the legacy client


@pytest.mark.parametrize("generation", GENERATIONS)
@pytest.mark.parametrize("case_name", CASE_PARAMS)
def test_boto3(case_name, generation, target, target_bucket, work, client_env):
    if generation == "current":
        assert not boto3_matrix.legacy_client(), "the main venv must hold boto3 >= 1.36"
        boto3_matrix.CASES[case_name](boto3_matrix.Case(target.url, target_bucket, work, target.ca_bundle))
    else:
        run_legacy(case_name, target, target_bucket, work, client_env)

