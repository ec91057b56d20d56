#!/usr/bin/env python3
"""What authorization costs: the 4 KiB GET rate of an embedded server (fsync off, c=32) for
- the root key (decided without evaluating any policy),
- a user with the `readwrite` policy on a bucket they own, no bucket policy,
- the same user and bucket with a 20-statement bucket policy (conditions on aws:SourceIp,
  s3:prefix, aws:SecureTransport and aws:UserAgent; one statement applies),
interleaved over BENCH_REPEATS rounds so that drift hits every case alike.

Usage: STRATA_BIN=<binary> [BENCH_REPEATS=5] [BENCH_SECONDS=5] python3 tests/bench/auth_cost.py
Prints one line per run and the medians; BENCHMARKS.md ("Authorization") records a run.

Invariants: the server it starts is stopped at the end; the scratch directory
(STRATA_BENCH_DIR or the system temp dir, `strata-bench-auth-*`) is removed.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import suite  # noqa: E402  (also puts tests/s3-compat on the path)

import boto3  # noqa: E402
import support  # noqa: E402

BUCKET = "auth-bench"
REPEATS = int(os.environ.get("BENCH_REPEATS", "5"))


def twenty_statement_policy() -> dict:
    """19 statements that do not apply to the benchmark's GETs, then one that allows them."""
    statements = []
    for i in range(5):
        statements.append({"Sid": f"DenyOtherNet{i}", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                           "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
                           "Condition": {"IpAddress": {"aws:SourceIp": f"10.{i}.0.0/16"}}})
    for i in range(5):
        statements.append({"Sid": f"ListPrefix{i}", "Effect": "Allow", "Principal": {"AWS": "*"},
                           "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{BUCKET}",
                           "Condition": {"StringLike": {"s3:prefix": [f"team{i}/*", f"shared{i}/*"]}}})
    for i in range(5):
        statements.append({"Sid": f"DenyWrites{i}", "Effect": "Deny", "Principal": "*",
                           "Action": ["s3:PutObject", "s3:DeleteObject"],
                           "Resource": f"arn:aws:s3:::{BUCKET}/locked{i}/*"})
    for i in range(4):
        statements.append({"Sid": f"AgentOnly{i}", "Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
                           "Resource": f"arn:aws:s3:::{BUCKET}/agents{i}/*",
                           "Condition": {"StringNotLike": {"aws:UserAgent": f"agent-{i}*"}}})
    statements.append({"Sid": "ReadAll", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                       "Resource": f"arn:aws:s3:::{BUCKET}/*",
                       "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
    assert len(statements) == 20
    return {"Version": "2012-10-17", "Statement": statements}


def bench_as(endpoint: str, keys: tuple[str, str], args: list[str]) -> dict:
    env = dict(os.environ)
    env.update({"AWS_ACCESS_KEY_ID": keys[0], "AWS_SECRET_ACCESS_KEY": keys[1], "AWS_REGION": support.REGION,
                "STRATA_LOG": "warn"})
    cmd = [suite.BIN, "bench", *args, "--endpoint", endpoint, "--bucket", BUCKET, "--json", "--quiet"]
    proc = subprocess.run(cmd, env=env, capture_output=True, timeout=900)
    if proc.returncode != 0:
        raise SystemExit(f"bench failed: {proc.stderr.decode(errors='replace')[-2000:]}")
    return json.loads(proc.stdout)


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="strata-bench-auth-", dir=os.environ.get("STRATA_BENCH_DIR")))
    try:
        server = support.StrataServer(suite.BIN, root / "data", root / "server.log", fsync=False)
        server.start()
        try:
            endpoint = server.endpoint
            admin = [suite.BIN, "admin", "--endpoint", endpoint, "--access-key", support.ACCESS_KEY,
                     "--secret-key", support.SECRET_KEY, "--json"]
            made = json.loads(subprocess.run(admin[:2] + ["user", "create", "bencher", "--policy", "readwrite"]
                                             + admin[2:], capture_output=True, check=True, timeout=60).stdout)
            user = (made["access_key"], made["secret_key"])
            root_keys = (support.ACCESS_KEY, support.SECRET_KEY)
            get = ["get", *suite.size_args("4KiB", 32), "--objects", "256", "--seed", "4", "--key-prefix", "g/"]
            # The user uploads the objects (and so owns the bucket); every run then reads them.
            bench_as(endpoint, user, [*get, "--keep"])
            s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=user[0],
                              aws_secret_access_key=user[1], region_name=support.REGION)
            rates: dict[str, list[float]] = {"root": [], "user, no bucket policy": [],
                                             "user, 20-statement bucket policy": []}
            for round_ in range(REPEATS):
                for case in rates:
                    if case.endswith("bucket policy") and "20" in case:
                        s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(twenty_statement_policy()))
                    else:
                        s3.delete_bucket_policy(Bucket=BUCKET)
                    keys = root_keys if case == "root" else user
                    report = bench_as(endpoint, keys, [*get, "--existing", "--keep"])
                    rate = report["operations"]["get"]["ops_per_s"]
                    rates[case].append(rate)
                    print(f"round {round_ + 1} {case}: {rate:.0f} GET/s, errors {report.get('error_count')}",
                          flush=True)
        finally:
            server.stop()
        base = statistics.median(rates["user, no bucket policy"])
        for case, values in rates.items():
            median = statistics.median(values)
            print(f"{case}: median {median:.0f} GET/s ({median / base:.3f} of the user without a policy), "
                  f"runs {', '.join(f'{v:.0f}' for v in values)}")
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
