//! `strata`: one binary for every role of the object store (DESIGN §1).

use strata_gateway::{config, server};

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "strata", version, about = "Strata: an erasure-coded, S3-compatible object store")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Embedded single-process server: S3 gateway + local shard directories + metadata.
    Server(config::ServerArgs),
}

fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("STRATA_LOG").unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(n) = std::env::var("TOKIO_WORKER_THREADS").ok().and_then(|v| v.parse().ok()) {
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
        }
    });
    if let Err(e) = result {
        eprintln!("strata: {e}");
        std::process::exit(1);
    }
}
