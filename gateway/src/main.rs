//! `strata`: one binary for every role of the object store (DESIGN §1).

use strata_gateway::{bench, config, node_roles, server};

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

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
}

fn main() {
    let cli = Cli::parse();
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
        match cli.command {
            Command::Server(args) => {
                let config = config::ServerConfig::load(&args).map_err(|e| e.to_string())?;
                server::run_server(config).await
            }
            Command::Gateway(args) => {
                let config =
                    config::ServerConfig::load_gateway(&args).map_err(|e| e.to_string())?;
                server::run_server(config).await
            }
            Command::StorageNode(args) => {
                let secret = config::cluster_secret(None, args.secret_file.as_deref())
                    .map_err(|e| e.to_string())?;
                node_roles::run_storage_node(storage::node::NodeConfig {
                    listen: args.listen,
                    data: args.data,
                    secret,
                    fsync: !args.no_fsync,
                    max_skew: std::time::Duration::from_secs(300),
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
