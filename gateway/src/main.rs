//! `strata`: one binary for every role of the object store (DESIGN §1).

use strata_gateway::{admin, bench, config, node_roles, server};

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// Rust allocations go to jemalloc, whose background threads purge freed pages (decay
/// `dirty_decay_ms`, 10 s by default): after a burst of large uploads the resident memory
/// returns to near its baseline, where glibc's arenas kept hundreds of MB (issue 13; numbers
/// in the commit that made this change). RocksDB's C++ keeps glibc malloc and the settings of
/// [`MALLOC_SETTINGS`].
#[cfg(all(feature = "jemalloc", target_os = "linux", target_env = "gnu"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "strata",
    version,
    about = "Strata: an erasure-coded, S3-compatible object store"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Embedded single-process server: S3 gateway + local shard directories + metadata.
    Server(config::ServerArgs),
    /// Cluster gateway: the S3 endpoint over the storage nodes listed in --config.
    Gateway(config::ServerArgs),
    /// Storage node: serves one directory's shards over HTTP to gateways.
    StorageNode(NodeArgs),
    /// Cluster, repair, scrub and GC status from a running gateway's admin API.
    Admin(admin::cli::AdminArgs),
    /// Load generator for any S3 endpoint (warp-style), and the machine's ceilings.
    Bench(bench::BenchArgs),
}

#[derive(clap::Args)]
struct NodeArgs {
    /// Address to listen on.
    #[arg(long, env = "STRATA_LISTEN")]
    listen: std::net::SocketAddr,
    /// Directory holding this node's shards.
    #[arg(long, env = "STRATA_DATA")]
    data: std::path::PathBuf,
    /// File holding the cluster secret (else STRATA_CLUSTER_SECRET).
    #[arg(long)]
    secret_file: Option<std::path::PathBuf>,
    /// Turn off fsync (benchmarks only).
    #[arg(long, env = "STRATA_NO_FSYNC")]
    no_fsync: bool,
    /// Do not scrub (re-verify) the shard files in the background.
    #[arg(long, env = "STRATA_NO_SCRUB")]
    no_scrub: bool,
    /// Scrub read rate in bytes per second (0 = unlimited; default 8 MiB/s).
    #[arg(long, env = "STRATA_SCRUB_BYTES_PER_SEC")]
    scrub_bytes_per_sec: Option<u64>,
    /// Pause after each scrubbed file, in milliseconds (default 5).
    #[arg(long, env = "STRATA_SCRUB_FILE_PAUSE_MS")]
    scrub_file_pause_ms: Option<u64>,
    /// Seconds from the end of one scrub pass to the start of the next (default 86400).
    #[arg(long, env = "STRATA_SCRUB_INTERVAL_SECS")]
    scrub_interval_secs: Option<u64>,
    /// Largest clock difference, in seconds, of a gateway's signed request to this node.
    #[arg(long, env = "STRATA_NODE_MAX_CLOCK_SKEW_SECS", default_value_t = 300)]
    max_clock_skew_secs: u64,
    /// Serve HTTPS to the gateways with this certificate chain (PEM, leaf first); needs
    /// --tls-key. Gateways then list the node as https://host:port and trust its CA
    /// (node_tls_ca).
    #[arg(long, env = "STRATA_NODE_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "STRATA_NODE_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
}

/// glibc malloc settings for a data path of short-lived 1–4 MiB buffers (shard frames, stripes,
/// frame batches). By default glibc serves such buffers with mmap and unmaps them on free, so
/// every GET batch faults in and zeroes fresh pages (a fifth of the CPU of a degraded GET,
/// measured with perf; BENCHMARKS.md), and it gives each thread of the blocking pool its own
/// arena, where freed memory piles up. With these, buffers below 8 MiB come from the arenas,
/// free memory above 16 MiB at an arena's top goes back to the kernel, and 4 arenas bound what
/// freed memory can be held. glibc reads them from the environment when it starts, and the
/// workspace forbids `unsafe` (so no `mallopt`): a server role re-executes itself once with
/// them set. An operator's own `MALLOC_*` variable wins over each setting.
const MALLOC_SETTINGS: [(&str, &str); 3] = [
    ("MALLOC_MMAP_THRESHOLD_", "8388608"),
    ("MALLOC_TRIM_THRESHOLD_", "16777216"),
    ("MALLOC_ARENA_MAX", "4"),
];
/// Set on the re-executed process, so it does not re-execute again.
const MALLOC_TUNED: &str = "STRATA_MALLOC_TUNED";

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os(MALLOC_TUNED).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new(exe);
    if let Some(arg0) = args.next() {
        command.arg0(arg0);
    }
    command.args(args).env(MALLOC_TUNED, "1");
    for (variable, value) in MALLOC_SETTINGS {
        if std::env::var_os(variable).is_none() {
            command.env(variable, value);
        }
    }
    // Replaces this process (same pid, same descriptors); returns only if that failed.
    let error = command.exec();
    eprintln!("strata: running without the allocator settings (re-exec failed: {error})");
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}

fn main() {
    let cli = Cli::parse();
    let command = match cli.command {
        // A client command: no logging set-up, a small runtime, its own exit codes.
        Command::Admin(args) => std::process::exit(admin::cli::run(args)),
        other => other,
    };
    if matches!(
        command,
        Command::Server(_) | Command::Gateway(_) | Command::StorageNode(_)
    ) {
        tune_allocator();
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("STRATA_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(n) = std::env::var("TOKIO_WORKER_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        runtime.worker_threads(n);
    }
    let runtime = match runtime.build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("strata: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    let result = runtime.block_on(async {
        match command {
            Command::Server(args) => {
                let config = config::ServerConfig::load(&args).map_err(|e| e.to_string())?;
                server::run_server(config).await
            }
            Command::Gateway(args) => {
                let config =
                    config::ServerConfig::load_gateway(&args).map_err(|e| e.to_string())?;
                server::run_server(config).await
            }
            Command::Admin(_) => Ok(()),
            Command::StorageNode(args) => {
                let secret = config::cluster_secret(None, args.secret_file.as_deref())
                    .map_err(|e| e.to_string())?;
                let scrub = config::scrub_config(
                    !args.no_scrub,
                    args.scrub_bytes_per_sec,
                    args.scrub_file_pause_ms,
                    args.scrub_interval_secs,
                )
                .map_err(|e| e.to_string())?;
                let tls = match (&args.tls_cert, &args.tls_key) {
                    (Some(cert), Some(key)) => Some(
                        storage::node_tls::load_server_config(cert, key)
                            .map_err(|e| format!("--tls-cert/--tls-key: {e}"))?,
                    ),
                    _ => None,
                };
                node_roles::run_storage_node(storage::node::NodeConfig {
                    listen: args.listen,
                    data: args.data,
                    secret,
                    fsync: !args.no_fsync,
                    max_skew: std::time::Duration::from_secs(args.max_clock_skew_secs.max(1)),
                    scrub,
                    tls,
                })
                .await
            }
            Command::Bench(args) => match bench::run(args).await? {
                true => Ok(()),
                false => Err("some operations failed (see the errors above)".to_string()),
            },
        }
    });
    if let Err(e) = result {
        eprintln!("strata: {e}");
        std::process::exit(1);
    }
}
