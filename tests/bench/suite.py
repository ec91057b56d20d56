#!/usr/bin/env python3
"""`make bench`: the standard benchmark suite. Writes the generated part of BENCHMARKS.md.

Runs, in one go and on this machine: the machine's ceilings (`strata bench ceilings`), then an
embedded server and a 6-node cluster (storage-node processes + gateway), both on free
127.0.0.1 ports with fsync on, each driven by `strata bench` (64 MiB PUT/GET c=4, 1 MiB PUT/GET
c=16, 4 KiB PUT/GET c=32, degraded 64 MiB GET with m shards missing; on the embedded server
also LIST of 100,000 keys, flat and under 100 prefixes with a delimiter), and foreground GETs on
a cluster while a wiped node is being refilled by repair. Every figure is the
median of several runs and sits beside its ceiling as a ratio. The gateway's peak RSS (VmHWM)
is read right after the 64 MiB runs.

Invariants: every spawned process is stopped at the end (cluster_support and support own
that); every bench run has a duration and a subprocess timeout; a failed run (exit code != 0,
or any error) is reported as such in BENCHMARKS.md, never silently dropped. Only the text
between the `suite:begin` and `suite:end` markers of BENCHMARKS.md is replaced, so the
hand-written optimisation log around it survives.

Then the shared-catalog comparison: the same 6 nodes with the catalog in RocksDB (one gateway),
in a 3-member etcd cluster with one gateway, and with two gateways (the bench client sends
its requests to both in turn): 4 KiB, 1 MiB and 64 MiB PUT/GET and LIST, and how the 4 KiB rates
scale from one gateway to two. It has its own markers (`etcd:begin`/`etcd:end`) and can be run
alone with BENCH_ONLY=etcd.

Environment: STRATA_BIN (binary), STRATA_BENCH_DIR (scratch parent, default the system temp
dir), BENCH_REPEATS (default 3), BENCH_SECONDS (per run, default 5), BENCH_LIST_KEYS
(default 100000), BENCH_OUT (default BENCHMARKS.md at the top of the repository), BENCH_ONLY
(`etcd`: only the shared-catalog comparison).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "s3-compat"))

import cluster_support  # noqa: E402
import support  # noqa: E402

BIN = os.environ.get("STRATA_BIN") or str(Path.home() / ".cache/strata/target/release/strata")
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
LIST_KEYS = int(os.environ.get("BENCH_LIST_KEYS", "100000"))
OUT = Path(os.environ.get("BENCH_OUT") or REPO / "BENCHMARKS.md")
K, M = 4, 2
BEGIN, END = "<!-- suite:begin -->", "<!-- suite:end -->"
ETCD_BEGIN, ETCD_END = "<!-- etcd:begin -->", "<!-- etcd:end -->"
ONLY = os.environ.get("BENCH_ONLY", "")
ETCD_LIST_KEYS = int(os.environ.get("BENCH_ETCD_LIST_KEYS", "10000"))
MIB = 1024 * 1024


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run_bench(endpoint: str, args: list[str], timeout: float = 900) -> dict:
    """One `strata bench` run with --json; returns the report plus its exit code."""
    env = dict(os.environ)
    env.update({"AWS_ACCESS_KEY_ID": support.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": support.SECRET_KEY,
                "AWS_REGION": support.REGION, "STRATA_LOG": "warn"})
    cmd = [BIN, "bench", *args, "--endpoint", endpoint, "--json", "--quiet"]
    proc = subprocess.run(cmd, env=env, capture_output=True, timeout=timeout)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        report = {"error_count": -1, "errors": {"no report": 1}, "operations": {},
                  "stderr": proc.stderr.decode(errors="replace")[-2000:]}
    report["exit_code"] = proc.returncode
    if proc.returncode != 0:
        log(f"run failed ({proc.returncode}): {' '.join(args)}\n{proc.stderr.decode(errors='replace')[-2000:]}")
    return report


@dataclasses.dataclass
class Figure:
    """Several runs of one workload, summarised by the median of one operation's metric."""
    name: str
    op: str
    runs: list[dict]

    def values(self, metric: str) -> list[float]:
        return [r["operations"].get(self.op, {}).get(metric, 0.0) for r in self.runs]

    def median(self, metric: str) -> float:
        values = self.values(metric)
        return statistics.median(values) if values else 0.0

    def p99_ms(self) -> float:
        values = [r["operations"].get(self.op, {}).get("latency_ms", {}).get("p99", 0.0) for r in self.runs]
        return statistics.median(values) if values else 0.0

    def errors(self) -> int:
        return sum(max(r.get("error_count", 0), 0) + (1 if r.get("exit_code") else 0) for r in self.runs)

    def verified(self) -> int:
        return sum(r.get("verified_gets", 0) for r in self.runs)

    def client_cpu(self) -> float:
        return statistics.median([r.get("client_cpu_share", 0.0) for r in self.runs]) if self.runs else 0.0


def repeat(name: str, op: str, endpoint: str, args: list[str], times: int = REPEATS) -> Figure:
    runs = []
    for i in range(times):
        report = run_bench(endpoint, args)
        runs.append(report)
        op_report = report["operations"].get(op, {})
        log(f"{name} run {i + 1}/{times}: {op_report.get('mib_per_s', 0):.1f} MiB/s, "
            f"{op_report.get('ops_per_s', 0):.0f} ops/s, errors {report.get('error_count')}")
    return Figure(name, op, runs)


def ceilings(scratch: Path) -> dict:
    samples = []
    for i in range(REPEATS):
        proc = subprocess.run([BIN, "bench", "ceilings", "--dir", str(scratch), "--json", "--seconds", "1"],
                              capture_output=True, timeout=600, check=True)
        samples.append(json.loads(proc.stdout))
        log(f"ceilings run {i + 1}: {samples[-1]}")
    return {key: statistics.median(s[key] for s in samples) for key in samples[0]}


def peak_rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def size_args(size: str, concurrency: int) -> list[str]:
    return ["--size", size, "-c", str(concurrency), "--duration", f"{SECONDS}s"]


def data_path_suite(endpoint: str, pid_of_gateway, degrade, label: str) -> dict:
    """64 MiB, 1 MiB, 4 KiB PUT/GET and a degraded 64 MiB GET against one endpoint."""
    figures = {}
    figures["put 64 MiB c=4"] = repeat(f"{label} put 64MiB", "put", endpoint, ["put", *size_args("64MiB", 4)])
    figures["get 64 MiB c=4"] = repeat(
        f"{label} get 64MiB", "get", endpoint,
        ["get", *size_args("64MiB", 4), "--objects", "8", "--seed", "64", "--key-prefix", "large/", "--keep"])
    rss = peak_rss_mib(pid_of_gateway())
    log(f"{label}: gateway peak RSS after the 64 MiB runs: {rss:.0f} MiB")
    figures["put 1 MiB c=16"] = repeat(f"{label} put 1MiB", "put", endpoint, ["put", *size_args("1MiB", 16)])
    figures["get 1 MiB c=16"] = repeat(f"{label} get 1MiB", "get", endpoint,
                                       ["get", *size_args("1MiB", 16), "--objects", "64"])
    figures["put 4 KiB c=32"] = repeat(f"{label} put 4KiB", "put", endpoint, ["put", *size_args("4KiB", 32), "--keep"])
    figures["get 4 KiB c=32"] = repeat(f"{label} get 4KiB", "get", endpoint,
                                       ["get", *size_args("4KiB", 32), "--objects", "256"])
    what = degrade()
    log(f"{label}: degraded: {what}")
    figures["degraded get 64 MiB c=4"] = repeat(
        f"{label} degraded get 64MiB", "get", endpoint,
        ["get", *size_args("64MiB", 4), "--objects", "8", "--seed", "64", "--key-prefix", "large/", "--existing",
         "--keep"])
    return {"figures": figures, "rss_mib": rss, "degraded": what}


def list_suite(endpoint: str) -> dict:
    common = ["--objects", str(LIST_KEYS), "--size", "0", "-c", "32", "--duration", f"{SECONDS}s",
              "--prefixes", "100", "--key-prefix", "listing/", "--keep"]
    log(f"uploading {LIST_KEYS} keys for the listing runs …")
    first = run_bench(endpoint, ["list", *common], timeout=3600)
    delimited = Figure("list, delimiter, 100 prefixes", "list",
                       [first] + repeat("list delimiter", "list", endpoint, ["list", *common, "--existing"],
                                        REPEATS - 1).runs)
    # Flat listings of 100 pages each: a few at a time, so the latency column means something.
    flat_args = [a if a != "32" else "4" for a in common]
    flat = repeat("list flat", "list", endpoint, ["list", *flat_args, "--existing", "--flat"])
    small = ["--objects", "1000", "--size", "0", "-c", "32", "--duration", f"{SECONDS}s", "--prefixes", "100",
             "--key-prefix", "small-listing/", "--keep"]
    few = repeat("list delimiter 10 keys per prefix", "list", endpoint, ["list", *small])
    return {"flat": flat, "delimited": delimited, "few": few}


def remove_shard_dirs(data_dir: Path, count: int) -> str:
    removed = []
    for i in range(count):
        shards = data_dir / f"disk{i}" / "shards"
        shutil.rmtree(shards, ignore_errors=True)
        removed.append(str(shards.relative_to(data_dir)))
    return f"embedded: shard directories {', '.join(removed)} deleted while the server runs"


REPAIR_OBJECTS = int(os.environ.get("BENCH_REPAIR_OBJECTS", "600"))


def admin_json(cluster: "FsyncCluster", what: str) -> dict:
    resp = support.raw_request(cluster.endpoint, "GET", f"/_strata/admin/{what}", signed=True,
                               access_key=cluster.access_key, secret_key=cluster.secret_key, timeout=10)
    if resp.status != 200:
        raise RuntimeError(f"/_strata/admin/{what} answered {resp.status}: {resp.body[:300]!r}")
    return json.loads(resp.body)


def repair_impact_suite(root: Path) -> dict:
    """Foreground 1 MiB GETs (c=16) on a 6-node cluster before, and while, a wiped node is refilled.

    Node 0 is killed, marked down by the health checker, its shard directory deleted and the
    node restarted empty: the gateway's node scan queues every group it held, and repair
    rebuilds them at the default `repair_bytes_per_sec` while the GET run goes on. The GETs
    during that window also meet the missing shards (degraded reads), as a user's would."""
    common = ["get", *size_args("1MiB", 16), "--objects", str(REPAIR_OBJECTS), "--seed", "11",
              "--key-prefix", "repair/", "--keep"]
    with FsyncCluster(BIN, root / "repair-cluster") as nodes:
        log(f"repair: uploading {REPAIR_OBJECTS} × 1 MiB …")
        run_bench(nodes.endpoint, common)
        before = repeat("repair: get 1MiB before", "get", nodes.endpoint, [*common, "--existing"])
        nodes.kill9(0)
        nodes.wait_states({0: "down"})
        # Repair is done when every shard file node 0 held is back, not when the queue is
        # momentarily empty (the node scan may still be queueing groups).
        wiped = sum(1 for f in (nodes.nodes[0].data_dir / "shards").rglob("*") if f.is_file())
        shutil.rmtree(nodes.nodes[0].data_dir / "shards", ignore_errors=True)
        started = time.monotonic()
        nodes.restart(0)
        during = repeat("repair: get 1MiB during", "get", nodes.endpoint, [*common, "--existing"], times=1)
        at_end_of_window = admin_json(nodes, "repair")
        window_s = time.monotonic() - started
        still_repairing = at_end_of_window["shards_rebuilt"] < wiped
        status, done_after = at_end_of_window, None
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            status = admin_json(nodes, "repair")
            if status["shards_rebuilt"] >= wiped and status["queue_length"] == 0 and status["in_flight"] == 0:
                done_after = time.monotonic() - started
                break
            time.sleep(0.5)
        log(f"repair: {wiped} shard files wiped; done after {done_after} s, status {status}")
    return {"before": before, "during": during, "still_repairing": still_repairing, "status": status,
            "done_after": done_after, "wiped": wiped, "window": at_end_of_window, "window_s": window_s}


def render_repair(result: dict) -> list[str]:
    before, during, status = result["before"], result["during"], result["status"]
    base, load = before.median("mib_per_s"), during.median("mib_per_s")
    share = load / base if base > 0 else 0.0
    done = result["done_after"]
    speed = status["bytes_rebuilt"] / MIB / done if done else 0.0
    window, window_s = result["window"], result["window_s"]
    busy_speed = window["bytes_rebuilt"] / MIB / window_s if window_s > 0 else 0.0
    idle_s = (done or 0) - window_s
    idle_speed = (status["bytes_rebuilt"] - window["bytes_rebuilt"]) / MIB / idle_s if idle_s > 1 else 0.0
    ended = ("the repair was still running when the window ended" if result["still_repairing"]
             else "**the repair ended inside the window** (the figure is a blend of repair and no repair)")
    return ["### Foreground GET during a repair (6-node cluster)", "",
            "| workload | MiB/s | runs | p99 ms | errors |", "|---|---|---|---|---|",
            f"| get 1 MiB c=16, healthy | {base:.1f} | {', '.join(f'{v:.0f}' for v in before.values('mib_per_s'))} | "
            f"{before.p99_ms():.1f} | {before.errors()} |",
            f"| get 1 MiB c=16, node 0 wiped and being refilled | {load:.1f} | "
            f"{', '.join(f'{v:.0f}' for v in during.values('mib_per_s'))} | {during.p99_ms():.1f} | "
            f"{during.errors()} |", "",
            f"During the repair the GETs ran at **{share:.0%}** of the healthy rate (target ≥ 70%: "
            f"{verdict(share >= 0.7)}); {ended}. Repair rebuilt {status['shards_rebuilt']} shards "
            f"({status['bytes_rebuilt'] / MIB:.0f} MiB; node 0 had held {result['wiped']} shard files) in "
            f"{done or 0:.1f} s from the node's restart, **{speed:.1f} MiB/s** of shards written overall: "
            f"{busy_speed:.1f} MiB/s during the {window_s:.0f} s GET window (budget "
            f"`repair_busy_bytes_per_sec` = {status.get('busy_bytes_per_sec_limit', 0) / MIB:.0f} MiB/s of reads + "
            f"writes), {idle_speed:.1f} MiB/s after it (budget `repair_bytes_per_sec` = "
            f"{status['bytes_per_sec_limit'] / MIB:.0f} MiB/s).", ""]


class FsyncNode(cluster_support.Node):
    """A storage node with fsync on (cluster_support's nodes run with --no-fsync)."""

    def command(self, binary: str) -> list[str]:
        return [part for part in super().command(binary) if part != "--no-fsync"]


class FsyncCluster(cluster_support.Cluster):
    """cluster_support's cluster with fsync on everywhere and production-like timeouts."""

    def __init__(self, binary: str, root: Path):
        super().__init__(binary, root, gateway_extra={
            "connect_timeout_ms": 2000, "request_timeout_ms": 60000, "idle_timeout_ms": 30000,
            "shard_timeout_secs": 60, "hedge_after_ms": 300, "health_interval_ms": 500})
        self.nodes = [FsyncNode(**{f.name: getattr(n, f.name) for f in dataclasses.fields(n)}) for n in self.nodes]

    def config_text(self) -> str:
        return super().config_text().replace("fsync = false", "fsync = true")


CLUSTER_SETTINGS = {"connect_timeout_ms": 2000, "request_timeout_ms": 60000, "idle_timeout_ms": 30000,
                    "shard_timeout_secs": 60, "hedge_after_ms": 300, "health_interval_ms": 500}


def fsync_topology(root: Path, gateways: int):
    """3 etcd members (fsync on, etcd's default) + 6 fsync'd nodes + `gateways` gateways."""
    import multi_gateway_support

    class FsyncTopology(multi_gateway_support.Topology):
        def __init__(self):
            super().__init__(BIN, root, gateways=gateways,
                             gateway_extra={**CLUSTER_SETTINGS, "gc_delay_secs": 60})
            self.nodes = [FsyncNode(**{f.name: getattr(n, f.name) for f in dataclasses.fields(n)})
                          for n in self.nodes]

        def config_text(self) -> str:
            return super().config_text().replace("fsync = false", "fsync = true")

    return FsyncTopology()


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by the processes `pids`."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


ETCD_COUNTERS = {
    "Txn": 'grpc_server_handled_total{grpc_code="OK",grpc_method="Txn"',
    "Range": 'grpc_server_handled_total{grpc_code="OK",grpc_method="Range"',
    "fsyncs": "etcd_disk_wal_fsync_duration_seconds_count",
}


def etcd_counters(client_urls: list[str]) -> dict:
    """etcd's own counters, summed over `client_urls` (each member's /metrics): gRPC Txn and
    Range requests served, and WAL fsyncs."""
    totals = dict.fromkeys(ETCD_COUNTERS, 0.0)
    for url in client_urls:
        try:
            with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
                text = response.read().decode()
        except OSError:
            continue
        for line in text.splitlines():
            for name, prefix in ETCD_COUNTERS.items():
                if line.startswith(prefix):
                    totals[name] += float(line.rsplit(" ", 1)[1])
    return totals


def catalog_workloads(label: str, endpoint: str, roles: dict, etcd_urls: list[str] | None = None) -> dict:
    """The shared-catalog comparison's workloads against `endpoint` (comma-separated: in turn).
    `roles` maps a process role to its pids: the CPU each role used during the 4 KiB PUT runs
    is recorded (cores busy on average), which says what limits the small-object rate. With
    `etcd_urls`, etcd's requests and fsyncs per PUT during those runs are recorded too."""
    figures = {}
    before = {role: cpu_seconds(pids) for role, pids in roles.items()}
    counted = etcd_counters(etcd_urls) if etcd_urls else None
    clock = time.monotonic()
    figures["put 4 KiB c=32"] = repeat(f"{label} put 4KiB", "put", endpoint, ["put", *size_args("4KiB", 32)])
    wall = time.monotonic() - clock
    figures["put 4 KiB c=32"].cpu = {role: (cpu_seconds(pids) - before[role]) / wall for role, pids in roles.items()}
    log(f"{label}: cores busy during put 4KiB: {figures['put 4 KiB c=32'].cpu}")
    if counted is not None:
        puts = sum(r["operations"].get("put", {}).get("count", 0) for r in figures["put 4 KiB c=32"].runs)
        after = etcd_counters(etcd_urls)
        members = len(etcd_urls)
        figures["put 4 KiB c=32"].etcd = {
            "Txn requests": (after["Txn"] - counted["Txn"]) / max(puts, 1),
            "Range requests": (after["Range"] - counted["Range"]) / max(puts, 1),
            "WAL fsyncs per member": (after["fsyncs"] - counted["fsyncs"]) / members / max(puts, 1),
        }
        log(f"{label}: etcd per PUT: {figures['put 4 KiB c=32'].etcd}")
    figures["get 4 KiB c=32"] = repeat(f"{label} get 4KiB", "get", endpoint,
                                       ["get", *size_args("4KiB", 32), "--objects", "256"])
    figures["put 4 KiB c=64"] = repeat(f"{label} put 4KiB c64", "put", endpoint, ["put", *size_args("4KiB", 64)])
    figures["put 1 MiB c=16"] = repeat(f"{label} put 1MiB", "put", endpoint, ["put", *size_args("1MiB", 16)])
    figures["get 1 MiB c=16"] = repeat(f"{label} get 1MiB", "get", endpoint,
                                       ["get", *size_args("1MiB", 16), "--objects", "64"])
    figures["put 64 MiB c=4"] = repeat(f"{label} put 64MiB", "put", endpoint, ["put", *size_args("64MiB", 4)])
    figures["get 64 MiB c=4"] = repeat(f"{label} get 64MiB", "get", endpoint,
                                       ["get", *size_args("64MiB", 4), "--objects", "8"])
    common = ["--objects", str(ETCD_LIST_KEYS), "--size", "0", "-c", "32", "--duration", f"{SECONDS}s",
              "--prefixes", "100", "--key-prefix", "listing/", "--keep"]
    log(f"{label}: uploading {ETCD_LIST_KEYS} keys for the listing runs …")
    first = run_bench(endpoint, ["list", *common], timeout=3600)
    figures["list, delimiter, 100 prefixes"] = Figure(
        "list", "list", [first] + repeat(f"{label} list", "list", endpoint, ["list", *common, "--existing"],
                                         REPEATS - 1).runs)
    return figures


def etcd_suite(root: Path) -> dict:
    """RocksDB catalog (1 gateway) vs etcd catalog with 1 and 2 gateways, same nodes and load."""
    results = {}
    with FsyncCluster(BIN, root / "rocks-cluster") as nodes:
        roles = {"gateway": [nodes.gateway.pid], "nodes": [n.proc.pid for n in nodes.nodes if n.proc]}
        results["rocksdb, 1 gateway"] = catalog_workloads("rocksdb 1gw", nodes.endpoint, roles)
    for gateways in (1, 2):
        with fsync_topology(root / f"etcd-{gateways}", gateways) as topology:
            endpoint = ",".join(g.endpoint for g in topology.gateways)
            label = f"etcd, {gateways} gateway{'s' if gateways > 1 else ''}"
            roles = {"gateways": [g.proc.pid for g in topology.gateways if g.proc],
                     "etcd": [m.proc.pid for m in topology.etcd.members if m.proc],
                     "nodes": [n.proc.pid for n in topology.nodes if n.proc]}
            results[label] = catalog_workloads(label, endpoint, roles, topology.etcd.endpoints)
    return results


def render_etcd(results: dict, started: str, info: dict) -> str:
    labels = list(results)
    lines = [ETCD_BEGIN, "", f"### Shared catalog: RocksDB vs etcd, 1 and 2 gateways (generated {started}, commit "
             f"`{info['commit']}`)", "",
             "Six fsync'd storage nodes (4+2) in every column; etcd is 3 members on this machine (fsync on, its "
             "defaults); with 2 gateways the one bench client sends its requests to both in turn. Medians of "
             f"{REPEATS} runs of {SECONDS:.0f} s; ops/s for 4 KiB and LIST (listings/s), MiB/s otherwise.", "",
             "| workload | " + " | ".join(labels) + " | errors |", "|---|" + "---|" * (len(labels) + 1)]
    for key in results[labels[0]]:
        cells, errors = [], 0
        for label in labels:
            fig = results[label][key]
            metric = "ops_per_s" if ("4 KiB" in key or key.startswith("list")) else "mib_per_s"
            cells.append(f"{fig.median(metric):,.1f} (p99 {fig.p99_ms():.1f} ms)")
            errors += fig.errors()
        lines.append(f"| {key} | " + " | ".join(cells) + f" | {errors} |")
    lines.append("")
    one = [label for label in labels if label.startswith("etcd, 1")]
    two = [label for label in labels if label.startswith("etcd, 2")]
    rocks = results.get("rocksdb, 1 gateway")
    if one and two and rocks:
        for key in ("put 4 KiB c=32", "put 4 KiB c=64", "get 4 KiB c=32"):
            a = results[one[0]][key].median("ops_per_s")
            b = results[two[0]][key].median("ops_per_s")
            r = rocks[key].median("ops_per_s")
            scaling = f"{b / a:.2f}×" if a > 0 else "n/a"
            versus = f"{b / r:.0%}" if r > 0 else "n/a"
            lines.append(f"- {key}: 1 → 2 gateways on etcd scales {scaling}; 2 gateways on etcd reach "
                         f"{versus} of the RocksDB gateway's rate.")
        lines.append("")
    lines += ["CPU during `put 4 KiB c=32` (cores busy on average, of this machine's "
              f"{os.cpu_count()}; the bench client takes the rest):", ""]
    for label in labels:
        cpu = getattr(results[label]["put 4 KiB c=32"], "cpu", {})
        lines.append(f"- {label}: " + ", ".join(f"{role} {cores:.2f}" for role, cores in cpu.items()))
    lines.append("")
    per_put = [(label, getattr(results[label]["put 4 KiB c=32"], "etcd", None)) for label in labels]
    if any(counts for _, counts in per_put):
        lines += ["etcd's own counters during `put 4 KiB c=32`, per PUT (gRPC requests served by all members; "
                  "a grouped request counts once):", ""]
        for label, counts in per_put:
            if counts:
                lines.append(f"- {label}: " + ", ".join(f"{name} {value:.2f}" for name, value in counts.items()))
        lines.append("")
    lines.append(ETCD_END)
    return "\n".join(lines)


def write_section(generated: str, begin: str, end: str) -> None:
    """Replaces the text between `begin` and `end` in BENCHMARKS.md (appends it if missing)."""
    text = OUT.read_text() if OUT.exists() else "# Strata benchmarks\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        OUT.write_text(head + generated + tail)
    else:
        OUT.write_text(text.rstrip("\n") + "\n\n" + generated + "\n")


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    scratch_parent = os.environ.get("STRATA_BENCH_DIR") or tempfile.gettempdir()
    disk = subprocess.run(["df", "-hT", scratch_parent], capture_output=True, text=True).stdout.splitlines()[-1:]
    load = os.getloadavg()
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    return {"nproc": os.cpu_count(), "cpu": cpu, "mem_gib": mem_gib, "disk": " ".join(disk[0].split()) if disk else "?",
            "kernel": platform.release(), "load": load, "commit": commit}


def ratio(value: float, ceiling: float) -> str:
    return f"{value / ceiling:.0%}" if ceiling > 0 else "n/a"


def verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def render(info: dict, started: str, elapsed: float, ceil: dict, embedded: dict, cluster: dict,
           listing: dict, repair: dict | None) -> str:
    # A PUT writes its k+m shard files at once: the disk ceiling is the parallel probe's.
    disk = max(ceil["disk_fsync_write_mib_s"], ceil.get("disk_parallel_fsync_write_mib_s", 0))
    disk_share = disk * K / (K + M)
    lines = [BEGIN, "", f"Generated by `make bench` (tests/bench/suite.py) on {started} in {elapsed / 60:.1f} min, "
             f"commit `{info['commit']}`.", "",
             f"- Machine: {info['nproc']} vCPU {info['cpu']}, {info['mem_gib']:.0f} GiB RAM, kernel {info['kernel']}; "
             f"scratch disk: `{info['disk']}`.",
             f"- Load average when the suite started: {info['load'][0]:.2f} / {info['load'][1]:.2f} / "
             f"{info['load'][2]:.2f}. The machine is shared (other builds may run): read the ratios, which were "
             f"taken in the same run, rather than absolute figures across runs.",
             f"- Every figure is the median of {REPEATS} runs of {SECONDS:.0f} s; the load generator runs on the same "
             f"2 cores as the server (its own CPU share is listed). Storage is {K}+{M} Reed-Solomon, fsync on, "
             f"HTTP without TLS, `UNSIGNED-PAYLOAD` SigV4.", "",
             "### Ceilings of this machine (medians)", "",
             "| probe | figure |", "|---|---|",
             f"| sequential write + fsync (64 MiB files, one writer) | {ceil['disk_fsync_write_mib_s']:.0f} MiB/s |",
             f"| sequential write + fsync ({ceil.get('disk_writers', K + M)} writers at once, 16 MiB files: "
             f"the shard files of 64 MiB PUTs) | {ceil.get('disk_parallel_fsync_write_mib_s', 0):.0f} MiB/s |",
             f"| the larger of the two × k/(k+m) = PUT ceiling | {disk_share:.0f} MiB/s |",
             f"| 4 KiB append + fdatasync | {ceil['fsync_appends_per_s']:.0f} /s |",
             f"| plain hyper loopback, 64 MiB GET, c=4 | {ceil['loopback_large_get_mib_s']:.0f} MiB/s |",
             f"| plain hyper loopback, 4 KiB GET, c=32 | {ceil['loopback_small_get_per_s']:.0f} /s |",
             f"| MD5, one core | {ceil['md5_mib_s']:.0f} MiB/s |",
             f"| SHA-256, one core | {ceil['sha256_mib_s']:.0f} MiB/s |",
             f"| CRC32C, one core | {ceil['crc32c_mib_s']:.0f} MiB/s |",
             f"| xxh3, one core | {ceil['xxh3_mib_s']:.0f} MiB/s |", ""]
    for title, result in (("Embedded server (`strata server`)", embedded),
                          ("6-node cluster (`strata gateway` + 6 `strata storage-node`)", cluster)):
        if result is None:
            continue
        f = result["figures"]
        lines += [f"### {title}", "",
                  "| workload | median | runs | p99 ms | ceiling | ratio | target | client CPU | errors |",
                  "|---|---|---|---|---|---|---|---|---|"]

        def row(key: str, metric: str, unit: str, ceiling: float, ceiling_unit: str, target: str, ok) -> None:
            fig = f[key]
            value = fig.median(metric)
            runs = ", ".join(f"{v:.0f}" for v in fig.values(metric))
            met = "" if ok is None else f" ({verdict(ok(value, ceiling))})"
            lines.append(f"| {key} | {value:.1f} {unit} | {runs} | {fig.p99_ms():.1f} | {ceiling:.0f} {ceiling_unit} | "
                         f"{ratio(value, ceiling)} | {target}{met} | {fig.client_cpu():.0%} | {fig.errors()} |")

        row("put 64 MiB c=4", "mib_per_s", "MiB/s", disk_share, "MiB/s", "≥ 70% of disk×k/(k+m)",
            lambda v, c: v >= 0.7 * c)
        row("get 64 MiB c=4", "mib_per_s", "MiB/s", ceil["loopback_large_get_mib_s"], "MiB/s", "≥ 50% of loopback",
            lambda v, c: v >= 0.5 * c)
        row("degraded get 64 MiB c=4", "mib_per_s", "MiB/s", ceil["loopback_large_get_mib_s"], "MiB/s",
            "≥ 35% of loopback", lambda v, c: v >= 0.35 * c)
        row("put 1 MiB c=16", "mib_per_s", "MiB/s", disk_share, "MiB/s", "—", None)
        row("get 1 MiB c=16", "mib_per_s", "MiB/s", ceil["loopback_large_get_mib_s"], "MiB/s", "—", None)
        row("put 4 KiB c=32", "ops_per_s", "/s", ceil["loopback_small_get_per_s"], "/s", "≥ 3,000/s",
            lambda v, c: v >= 3000)
        row("get 4 KiB c=32", "ops_per_s", "/s", ceil["loopback_small_get_per_s"], "/s", "≥ 10,000/s",
            lambda v, c: v >= 10000)
        verified = sum(fig.verified() for fig in f.values())
        lines += ["", f"Gateway peak RSS (VmHWM) after the 64 MiB runs: **{result['rss_mib']:.0f} MiB** "
                      f"(target < 300 MiB: {verdict(0 < result['rss_mib'] < 300)}). "
                      f"Degraded runs: {result['degraded']}. GETs verified (size + xxh3): {verified}.", ""]
    if listing is not None:
        flat, delimited, few = listing["flat"], listing["delimited"], listing["few"]
        flat_keys = flat.median("items_per_s")
        lines += ["### Listing (embedded server, ListObjectsV2, 1,000 keys per page)", "",
                  "| workload | median | runs | p99 ms | target | errors |", "|---|---|---|---|---|---|",
                  f"| flat, {LIST_KEYS:,} keys | {flat_keys:,.0f} keys/s | "
                  f"{', '.join(f'{v:,.0f}' for v in flat.values('items_per_s'))} | {flat.p99_ms():.1f} | "
                  f"≥ 100,000 keys/s ({verdict(flat_keys >= 100000)}) | {flat.errors()} |",
                  f"| delimiter `/`, 100 prefixes × {LIST_KEYS // 100:,} keys | {delimited.median('ops_per_s'):.1f} "
                  f"listings/s | {', '.join(f'{v:.1f}' for v in delimited.values('ops_per_s'))} | "
                  f"{delimited.p99_ms():.1f} | independent of keys per prefix | {delimited.errors()} |",
                  f"| delimiter `/`, 100 prefixes × 10 keys | {few.median('ops_per_s'):.1f} listings/s | "
                  f"{', '.join(f'{v:.1f}' for v in few.values('ops_per_s'))} | {few.p99_ms():.1f} | "
                  f"(reference for the row above) | {few.errors()} |", ""]
        if few.median("ops_per_s") > 0:
            share = delimited.median("ops_per_s") / few.median("ops_per_s")
            lines += [f"Delimiter listing with {LIST_KEYS // 100:,} keys per prefix runs at {share:.0%} of the rate "
                      f"with 10 keys per prefix.", ""]
    if repair is not None:
        lines += render_repair(repair)
    lines.append(END)
    return "\n".join(lines)


def write_output(generated: str) -> None:
    if OUT.exists():
        text = OUT.read_text()
        if BEGIN in text and END in text:
            head, rest = text.split(BEGIN, 1)
            _, tail = rest.split(END, 1)
            OUT.write_text(head + generated + tail)
            return
    OUT.write_text("# Strata benchmarks\n\nRun `make bench` to regenerate the measured section.\n\n"
                   "## Latest `make bench`\n\n" + generated + "\n")


def main() -> int:
    if not os.access(BIN, os.X_OK):
        print(f"strata binary not found at {BIN} (set STRATA_BIN)", file=sys.stderr)
        return 2
    started_at = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    info = machine()
    clock = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="strata-bench-", dir=os.environ.get("STRATA_BENCH_DIR")))
    embedded = cluster = listing = repair = None
    if ONLY == "etcd":
        try:
            results = etcd_suite(root)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        write_section(render_etcd(results, started_at, info), ETCD_BEGIN, ETCD_END)
        log(f"wrote {OUT}")
        return 0
    try:
        ceil = ceilings(root)
        server = support.StrataServer(BIN, root / "embedded", root / "embedded.log", fsync=True)
        server.start()
        try:
            embedded = data_path_suite(server.endpoint, lambda: server.proc.pid,
                                       lambda: remove_shard_dirs(root / "embedded", M), "embedded")
        finally:
            server.stop()
        # Listing on a fresh server, so the data-path runs above do not skew it.
        server = support.StrataServer(BIN, root / "listing", root / "listing.log", fsync=True)
        server.start()
        try:
            listing = list_suite(server.endpoint)
        finally:
            server.stop()
        with FsyncCluster(BIN, root / "cluster") as nodes:
            def degrade_cluster() -> str:
                for i in range(M):
                    nodes.kill9(i)
                time.sleep(2.0)  # let the health checker mark them down
                return f"cluster: storage nodes 0..{M - 1} killed (SIGKILL) before the runs"

            cluster = data_path_suite(nodes.endpoint, lambda: nodes.gateway.pid, degrade_cluster, "cluster")
        repair = repair_impact_suite(root)
        shared = etcd_suite(root)
        write_section(render_etcd(shared, started_at, info), ETCD_BEGIN, ETCD_END)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        if embedded is not None:
            write_output(render(info, started_at, time.monotonic() - clock, ceil, embedded, cluster, listing,
                                repair))
            log(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
