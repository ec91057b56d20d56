//! Result accounting of `strata bench`: per-worker recorders merged into one [`Report`] with
//! operations/s, MiB/s, exact latency percentiles and errors by kind, printed as a table or
//! as JSON.
//!
//! Invariants: only successful operations contribute latency, bytes and counts; every failed
//! operation is counted once under its kind; rates divide by the measured phase's wall time
//! (preparation and cleanup are excluded); percentiles are nearest-rank over every sample.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

/// Operation kinds a run can mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    Put,
    Get,
    Stat,
    Delete,
    List,
    Multipart,
}

impl OpKind {
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Put => "put",
            OpKind::Get => "get",
            OpKind::Stat => "stat",
            OpKind::Delete => "delete",
            OpKind::List => "list",
            OpKind::Multipart => "multipart",
        }
    }
}

/// What one worker saw of one operation kind.
#[derive(Debug, Default, Clone)]
pub struct OpRecorder {
    /// Latency of each successful operation, microseconds.
    latencies_us: Vec<u64>,
    bytes: u64,
    /// Items returned by listings (keys plus common prefixes).
    items: u64,
}

/// What one worker saw.
#[derive(Debug, Default, Clone)]
pub struct Recorder {
    ops: BTreeMap<OpKind, OpRecorder>,
    errors: BTreeMap<String, u64>,
    /// GETs whose size and checksum were compared with what was stored.
    pub verified: u64,
}

impl Recorder {
    pub fn success(&mut self, kind: OpKind, latency: Duration, bytes: u64, items: u64) {
        let op = self.ops.entry(kind).or_default();
        op.latencies_us
            .push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
        op.bytes += bytes;
        op.items += items;
    }

    pub fn failure(&mut self, kind: String) {
        *self.errors.entry(kind).or_default() += 1;
    }

    pub fn merge(&mut self, other: Recorder) {
        for (kind, op) in other.ops {
            let mine = self.ops.entry(kind).or_default();
            mine.latencies_us.extend(op.latencies_us);
            mine.bytes += op.bytes;
            mine.items += op.items;
        }
        for (kind, count) in other.errors {
            *self.errors.entry(kind).or_default() += count;
        }
        self.verified += other.verified;
    }

    /// The report of a phase that ran for `elapsed`.
    pub fn report(mut self, elapsed: Duration, context: RunContext) -> Report {
        let seconds = elapsed.as_secs_f64().max(1e-9);
        let mut operations = BTreeMap::new();
        for (kind, op) in &mut self.ops {
            op.latencies_us.sort_unstable();
            let count = op.latencies_us.len() as u64;
            operations.insert(
                kind.name().to_string(),
                OpReport {
                    count,
                    ops_per_s: count as f64 / seconds,
                    mib_per_s: op.bytes as f64 / MIB / seconds,
                    bytes: op.bytes,
                    items_per_s: (op.items > 0).then(|| op.items as f64 / seconds),
                    latency_ms: Latency::of_sorted(&op.latencies_us),
                },
            );
        }
        let error_count = self.errors.values().sum();
        Report {
            context,
            seconds,
            operations,
            errors: self.errors,
            error_count,
            verified_gets: self.verified,
            client_cpu_s: 0.0,
            client_cpu_share: 0.0,
        }
    }
}

const MIB: f64 = 1024.0 * 1024.0;

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    /// Nearest-rank percentiles of ascending samples (microseconds).
    pub fn of_sorted(samples_us: &[u64]) -> Latency {
        let rank = |p: f64| -> f64 {
            if samples_us.is_empty() {
                return 0.0;
            }
            let n = samples_us.len();
            let index = ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
            samples_us.get(index).copied().unwrap_or(0) as f64 / 1000.0
        };
        Latency {
            p50: rank(0.50),
            p90: rank(0.90),
            p99: rank(0.99),
            max: rank(1.0),
        }
    }
}

/// One operation kind's figures.
#[derive(Debug, Clone, Serialize)]
pub struct OpReport {
    pub count: u64,
    pub ops_per_s: f64,
    pub mib_per_s: f64,
    pub bytes: u64,
    /// Listed items (keys + common prefixes) per second, for listings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items_per_s: Option<f64>,
    pub latency_ms: Latency,
}

/// What was run, echoed in the report.
#[derive(Debug, Clone, Serialize)]
pub struct RunContext {
    pub benchmark: String,
    pub endpoint: String,
    pub bucket: String,
    pub concurrency: usize,
    pub size: String,
    pub objects: usize,
}

/// The result of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    #[serde(flatten)]
    pub context: RunContext,
    /// Wall time of the measured phase.
    pub seconds: f64,
    pub operations: BTreeMap<String, OpReport>,
    pub errors: BTreeMap<String, u64>,
    pub error_count: u64,
    pub verified_gets: u64,
    /// CPU time (user + system) the bench process itself used during the measured phase.
    pub client_cpu_s: f64,
    /// The same as a share of one core over the phase (1.0 = one full core).
    pub client_cpu_share: f64,
}

impl Report {
    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let c = &self.context;
        let _ = writeln!(
            out,
            "{} against {} bucket {}: size {}, concurrency {}, {:.1} s",
            c.benchmark, c.endpoint, c.bucket, c.size, c.concurrency, self.seconds
        );
        let _ = writeln!(
            out,
            "{:<10} {:>9} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9}",
            "operation", "count", "ops/s", "MiB/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
        );
        for (name, op) in &self.operations {
            let _ = writeln!(
                out,
                "{:<10} {:>9} {:>10.1} {:>10.1} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                name,
                op.count,
                op.ops_per_s,
                op.mib_per_s,
                op.latency_ms.p50,
                op.latency_ms.p90,
                op.latency_ms.p99,
                op.latency_ms.max
            );
            if let Some(items) = op.items_per_s {
                let _ = writeln!(out, "{:<10} {items:.0} keys/s listed", "");
            }
        }
        let _ = writeln!(
            out,
            "verified GETs: {}   client CPU: {:.2} s ({:.0}% of one core)",
            self.verified_gets,
            self.client_cpu_s,
            self.client_cpu_share * 100.0
        );
        if self.errors.is_empty() {
            let _ = writeln!(out, "errors: none");
        } else {
            let _ = writeln!(out, "errors: {}", self.error_count);
            for (kind, count) in &self.errors {
                let _ = writeln!(out, "  {count:>8}  {kind}");
            }
        }
        out
    }
}

/// CPU seconds (user + system) used by this process so far, from `/proc/self/stat`
/// (Linux reports them in USER_HZ ticks, 100 per second on every supported architecture).
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may contain spaces: fields are counted after its closing parenthesis.
    let after = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, i.e. 12 and 13 after `)`.
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    Some((user + system) / 100.0)
}

/// Peak resident set size of process `pid` (`VmHWM`), in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn context() -> RunContext {
        RunContext {
            benchmark: "mixed".to_string(),
            endpoint: "http://127.0.0.1:1".to_string(),
            bucket: "b".to_string(),
            concurrency: 2,
            size: "1MiB".to_string(),
            objects: 10,
        }
    }

    #[test]
    fn merged_recorders_report_rates_percentiles_and_errors() {
        let mut first = Recorder::default();
        let mut second = Recorder::default();
        for ms in 1..=100u64 {
            let target = if ms % 2 == 0 { &mut first } else { &mut second };
            target.success(OpKind::Get, Duration::from_millis(ms), 1024 * 1024, 0);
        }
        first.success(OpKind::List, Duration::from_millis(5), 0, 1000);
        first.failure("HTTP 503 SlowDown".to_string());
        second.failure("HTTP 503 SlowDown".to_string());
        second.failure("verify: checksum".to_string());
        first.verified = 50;
        second.verified = 49;
        first.merge(second);
        let report = first.report(Duration::from_secs(2), context());

        let get = &report.operations["get"];
        assert_eq!(get.count, 100);
        assert!((get.ops_per_s - 50.0).abs() < 1e-9);
        assert!((get.mib_per_s - 50.0).abs() < 1e-9);
        assert_eq!(get.latency_ms.p50, 50.0);
        assert_eq!(get.latency_ms.p90, 90.0);
        assert_eq!(get.latency_ms.p99, 99.0);
        assert_eq!(get.latency_ms.max, 100.0);
        assert_eq!(get.items_per_s, None);
        assert_eq!(report.operations["list"].items_per_s, Some(500.0));
        assert_eq!(report.error_count, 3);
        assert_eq!(report.errors["HTTP 503 SlowDown"], 2);
        assert_eq!(report.verified_gets, 99);

        let json: serde_json::Value = serde_json::to_value(&report).unwrap();
        assert_eq!(json["benchmark"], "mixed");
        assert_eq!(json["operations"]["get"]["count"], 100);
        assert_eq!(json["errors"]["verify: checksum"], 1);
        let table = report.table();
        assert!(table.contains("get"), "{table}");
        assert!(table.contains("HTTP 503 SlowDown"), "{table}");
    }

    #[test]
    fn empty_and_single_sample_percentiles() {
        assert_eq!(Latency::of_sorted(&[]), Latency::default());
        let one = Latency::of_sorted(&[2500]);
        assert_eq!((one.p50, one.p99, one.max), (2.5, 2.5, 2.5));
    }

    #[test]
    fn own_cpu_time_and_peak_rss_are_readable() {
        assert!(process_cpu_seconds().unwrap() >= 0.0);
        assert!(peak_rss_kib(std::process::id()).unwrap() > 0);
    }
}
