"""`strata bench` smoke (part of `make test`): the load generator runs against the shared server,
ends with exit 0, reports no errors, and verified what it read. Speed is never asserted here.

Also: a wrong secret makes the run fail loudly (exit 1, the S3 error named), so a bench that
cannot authenticate can never look like a fast one.
"""

from __future__ import annotations

import json
import os

import pytest

import support

pytestmark = pytest.mark.strata_only


def bench(strata_bin: str, endpoint: str, args: list[str], secret: str = support.SECRET_KEY,
          timeout: float = 120):
    env = dict(os.environ)
    env.update({"AWS_ACCESS_KEY_ID": support.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": secret,
                "AWS_REGION": support.REGION})
    cmd = [strata_bin, "bench", *args, "--endpoint", endpoint, "--json", "--quiet"]
    return support.run(cmd, env=env, timeout=timeout, check=False)


def test_mixed_bench_runs_clean_and_verifies_every_get(strata_bin, endpoint):
    bucket = support.bucket_name("bench-smoke")
    proc = bench(strata_bin, endpoint, ["mixed", "--bucket", bucket, "--size", "1KiB-256KiB", "-c", "8",
                                        "--objects", "32", "--duration", "5s"])
    assert proc.returncode == 0, support.tail(proc.stderr)
    report = json.loads(proc.stdout)
    assert report["error_count"] == 0 and report["errors"] == {}, report["errors"]
    ops = report["operations"]
    assert {"get", "put", "stat", "delete"} <= set(ops), ops.keys()
    assert report["verified_gets"] == ops["get"]["count"] > 0
    assert ops["get"]["bytes"] > 0 and ops["get"]["latency_ms"]["max"] >= ops["get"]["latency_ms"]["p50"] > 0
    # The run cleaned up after itself: the bucket it created is gone.
    assert support.raw_request(endpoint, "HEAD", f"/{bucket}", signed=True).status == 404


def test_list_and_multipart_benches_check_their_results(strata_bin, endpoint):
    bucket = support.bucket_name("bench-list")
    listing = bench(strata_bin, endpoint, ["list", "--bucket", bucket, "--size", "0", "--objects", "120",
                                           "--prefixes", "7", "--count", "3", "-c", "2"])
    assert listing.returncode == 0, support.tail(listing.stderr)
    report = json.loads(listing.stdout)
    assert report["operations"]["list"]["count"] == 3
    # 7 common prefixes per listing, and the bench checked that count itself.
    assert report["operations"]["list"]["items_per_s"] * report["seconds"] == pytest.approx(21)
    multipart = bench(strata_bin, endpoint, ["multipart", "--bucket", bucket, "--size", "11MiB",
                                             "--part-size", "5MiB", "--count", "2", "-c", "2"])
    assert multipart.returncode == 0, support.tail(multipart.stderr)
    assert json.loads(multipart.stdout)["operations"]["multipart"]["count"] == 2


def test_a_wrong_secret_fails_the_run(strata_bin, endpoint):
    proc = bench(strata_bin, endpoint, ["put", "--bucket", support.bucket_name("bench-denied"),
                                        "--size", "1KiB", "--count", "2"], secret="not-the-secret")
    assert proc.returncode == 1
    assert b"SignatureDoesNotMatch" in proc.stderr, support.tail(proc.stderr)
