#!/usr/bin/env python3
"""What the storage-node wire costs: 64 MiB PUT and GET (c=4) through a 6-node cluster
(`strata gateway` + 6 `strata storage-node`, 4+2, fsync off so the CPU cost of the wire shows
instead of the disk), optionally with TLS between the gateway and the nodes.

Usage: STRATA_BIN=<binary> [WIRE_TLS=1] [BENCH_REPEATS=3] [BENCH_SECONDS=5]
       python3 tests/bench/wire_cost.py
Prints one line per run and the medians. Run it with two binaries (before/after a wire change)
to compare; BENCHMARKS.md ("node wire authentication") records such a comparison.

Invariants: every process it starts is stopped at the end (cluster_support owns that); the
scratch directory (STRATA_BENCH_DIR or the system temp dir, `strata-bench-wire-*`) is removed.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import suite  # noqa: E402  (also puts tests/s3-compat on the path)

import cluster_support  # noqa: E402
import tls_support  # noqa: E402


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="strata-bench-wire-", dir=os.environ.get("STRATA_BENCH_DIR")))
    try:
        node_tls = None
        if os.environ.get("WIRE_TLS") == "1":
            certs = tls_support.make_certificates(root / "pki", name="node")
            node_tls = (certs.ca, certs.cert, certs.key)
        cluster = cluster_support.Cluster(suite.BIN, root / "cluster", gateway_extra=suite.CLUSTER_SETTINGS,
                                          node_tls=node_tls)
        with cluster:  # starts the nodes and the gateway, stops them on exit
            endpoint = cluster.endpoint
            put = suite.repeat("put 64MiB", "put", endpoint, ["put", *suite.size_args("64MiB", 4)])
            get = suite.repeat("get 64MiB", "get", endpoint,
                               ["get", *suite.size_args("64MiB", 4), "--objects", "8", "--seed", "64",
                                "--key-prefix", "large/", "--keep"])
        for figure in (put, get):
            values = figure.values("mib_per_s")
            print(f"{figure.name}: median {statistics.median(values):.1f} MiB/s, runs "
                  f"{', '.join(f'{v:.0f}' for v in values)}, errors {figure.errors()}")
        return 0 if put.errors() == 0 and get.errors() == 0 else 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
