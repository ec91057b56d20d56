//! `strata bench`: a load generator in the style of MinIO's warp for any S3 endpoint, plus
//! `strata bench ceilings`, which measures what this machine itself can do (disk, loopback
//! HTTP, hashing) so that every benchmark figure can be read as a share of its ceiling.
//!
//! Layout: [`client`] signs and sends requests, [`workload`] runs the operations, [`stats`]
//! accounts for them, [`ceilings`] holds the machine probes. Invariants: every GET is verified
//! (size and xxh3 of the body against what this run stored); objects the run created are
//! deleted at the end unless `--keep`; every loop is bounded by the duration or the count.

pub mod ceilings;
pub mod client;
pub mod stats;
pub mod workload;

use std::time::Duration;

use clap::{Args, Subcommand};

/// `strata bench …`
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: BenchCommand,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Upload new objects.
    Put(LoadArgs),
    /// Download (and verify) objects uploaded first.
    Get(LoadArgs),
    /// A mix of GET, HEAD (stat), PUT and DELETE over a set of objects (see --mix).
    Mixed(LoadArgs),
    /// List the bucket (ListObjectsV2, every page) after uploading --objects keys.
    List(LoadArgs),
    /// Delete objects uploaded first (one DeleteObject per operation).
    Delete(LoadArgs),
    /// Upload objects as multipart uploads of --part-size parts.
    Multipart(LoadArgs),
    /// Measure this machine's ceilings: fsync'd disk writes, loopback HTTP, hashing rates.
    Ceilings(ceilings::CeilingArgs),
}

/// Flags shared by every load benchmark.
#[derive(Debug, Args, Clone)]
pub struct LoadArgs {
    /// S3 endpoint, http://host:port; several, comma-separated, take requests in turn
    /// (gateways sharing one catalog).
    #[arg(
        long,
        env = "AWS_ENDPOINT_URL",
        default_value = "http://127.0.0.1:9000"
    )]
    pub endpoint: String,
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    pub access_key: String,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub secret_key: String,
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub region: String,
    /// Bucket to use (created if missing; deleted at the end only if this run created it).
    #[arg(long, default_value = "strata-bench")]
    pub bucket: String,
    /// Object size: a size (4KiB, 1MiB, 64MiB, 1000) or a range (1KiB-1MiB, uniform).
    #[arg(long, default_value = "1MiB")]
    pub size: String,
    /// Operations in flight at once.
    #[arg(long, short = 'c', default_value_t = 16)]
    pub concurrency: usize,
    /// How long the measured phase runs (e.g. 10s, 500ms, 2m).
    #[arg(long, default_value = "10s")]
    pub duration: String,
    /// Stop after this many operations instead (the duration still bounds the run).
    #[arg(long)]
    pub count: Option<u64>,
    /// Distinct objects uploaded before get/mixed/list/delete run (default: 4 per worker,
    /// at least 16; delete: 1000).
    #[arg(long)]
    pub objects: Option<usize>,
    /// list: spread the keys under this many prefixes (`p0000/` …) and list with
    /// delimiter `/` (0: flat keys, flat listing).
    #[arg(long, default_value_t = 0)]
    pub prefixes: usize,
    /// list: list without a delimiter even when the keys sit under --prefixes.
    #[arg(long)]
    pub flat: bool,
    /// Seed of the random object data (default: random). Same seed and size, same bodies.
    #[arg(long)]
    pub seed: Option<u64>,
    /// get/list: the objects already exist (uploaded by an earlier run with --keep and the same
    /// --seed, --size, --key-prefix, --objects and --prefixes): skip the upload phase.
    #[arg(long)]
    pub existing: bool,
    /// mixed: weights of each operation.
    #[arg(long, default_value = "get=45,stat=30,put=15,delete=10")]
    pub mix: String,
    /// multipart: part size.
    #[arg(long, default_value = "5MiB")]
    pub part_size: String,
    /// Key prefix of this run's objects (default: a random `bench-XXXXXXXX/`).
    #[arg(long)]
    pub key_prefix: Option<String>,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout_secs: u64,
    /// Print the result as JSON on stdout (the table goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Leave the objects in place at the end.
    #[arg(long)]
    pub keep: bool,
    /// No progress line.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Ask for SSE-S3 encryption at rest on every upload (`x-amz-server-side-encryption:
    /// AES256`; unsigned, as the payload).
    #[arg(long)]
    pub sse_s3: bool,
}

/// Runs `strata bench …`; the process exit code is 1 if any operation failed.
pub async fn run(args: BenchArgs) -> Result<bool, String> {
    match args.command {
        BenchCommand::Ceilings(args) => ceilings::run(args).await.map(|()| true),
        BenchCommand::Put(load) => workload::run(workload::Benchmark::Put, load).await,
        BenchCommand::Get(load) => workload::run(workload::Benchmark::Get, load).await,
        BenchCommand::Mixed(load) => workload::run(workload::Benchmark::Mixed, load).await,
        BenchCommand::List(load) => workload::run(workload::Benchmark::List, load).await,
        BenchCommand::Delete(load) => workload::run(workload::Benchmark::Delete, load).await,
        BenchCommand::Multipart(load) => workload::run(workload::Benchmark::Multipart, load).await,
    }
}

/// Parses `64MiB`, `4KiB`, `1MB`, `1GiB`, `1000` (bytes) into bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("size {text:?}: expected a number with an optional unit"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "kb" => 1000,
        "m" | "mib" => 1 << 20,
        "mb" => 1_000_000,
        "g" | "gib" => 1 << 30,
        "gb" => 1_000_000_000,
        other => return Err(format!("size {text:?}: unknown unit {other:?}")),
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("size {text:?} is too large"))
}

/// Parses a size or an inclusive range `LOW-HIGH`.
pub fn parse_size_range(text: &str) -> Result<(u64, u64), String> {
    match text.split_once('-') {
        None => parse_size(text).map(|s| (s, s)),
        Some((low, high)) => {
            let (low, high) = (parse_size(low)?, parse_size(high)?);
            if low > high {
                return Err(format!(
                    "size range {text:?}: the low end exceeds the high end"
                ));
            }
            Ok((low, high))
        }
    }
}

/// Parses `10s`, `500ms`, `2m`, `1h` or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("duration {text:?}: expected e.g. 10s"))?;
    let seconds = match unit {
        "" | "s" => number,
        "ms" => number / 1000.0,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        other => return Err(format!("duration {text:?}: unknown unit {other:?}")),
    };
    if !(0.0..=86_400.0 * 7.0).contains(&seconds) {
        return Err(format!("duration {text:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sizes_ranges_and_durations_parse() {
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("4KiB").unwrap(), 4096);
        assert_eq!(parse_size("1MB").unwrap(), 1_000_000);
        assert_eq!(parse_size("0").unwrap(), 0);
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("4XB").is_err());
        assert!(parse_size("99999999999999GiB").is_err());
        assert_eq!(parse_size_range("1KiB-1MiB").unwrap(), (1024, 1 << 20));
        assert!(parse_size_range("2MiB-1MiB").is_err());
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("1d").is_err());
    }
}
