//! Configuration of `strata server` and `strata gateway`: one typed [`ServerConfig`] built from
//! defaults, an optional TOML file, `STRATA_*` environment variables and flags, validated once
//! at start so that a bad value is a clear error naming the field, never a panic later.
//!
//! One precedence everywhere: flag > environment > file > default. Every scalar setting is in
//! the table of `table` (flag, variable, file key and default in one line); the settings that
//! shape the deployment (addresses, paths, erasure layout, TLS files, domains) are flags with
//! variables here and keys in `file`, merged the same way in [`ServerConfig::build`].
//! `healing` checks the repair, GC and scrub settings into their types.

mod file;
mod healing;
mod table;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use storage::codec::Geometry;
use storage::scrub::ScrubConfig;

use crate::engine::HealingConfig;
pub use file::NodeEntry;
use file::{read_file, FileConfig};
use healing::healing_config;
pub use healing::scrub_config;
pub use table::{SettingArgs, Settings};

/// Flags of `strata server` (each also readable from its `STRATA_*` variable).
#[derive(Debug, Args, Default)]
pub struct ServerArgs {
    /// TOML configuration file (flags and environment override it).
    #[arg(long, env = "STRATA_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "STRATA_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Data directory: metadata, keys and (by default) the shard directories.
    #[arg(long, env = "STRATA_DATA")]
    pub data: Option<PathBuf>,
    /// Data shards per stripe (k).
    #[arg(long, env = "STRATA_DATA_SHARDS")]
    pub data_shards: Option<usize>,
    /// Parity shards per stripe (m).
    #[arg(long, env = "STRATA_PARITY_SHARDS")]
    pub parity_shards: Option<usize>,
    /// Shard directories (repeat; at least k+m). Default: DATA/disk0 … DATA/disk{k+m-1}.
    #[arg(long = "shard-dir", env = "STRATA_SHARD_DIRS", value_delimiter = ',')]
    pub shard_dirs: Vec<PathBuf>,
    /// Stripe size in bytes.
    #[arg(long, env = "STRATA_BLOCK_SIZE")]
    pub block_size: Option<usize>,
    /// Durable acknowledgements needed per write (default min(k+m, k+1)).
    #[arg(long, env = "STRATA_WRITE_QUORUM")]
    pub write_quorum: Option<usize>,
    /// Turn off fsync (benchmarks only: acknowledged data may be lost on power failure).
    #[arg(long, env = "STRATA_NO_FSYNC")]
    pub no_fsync: bool,
    /// Region reported to clients.
    #[arg(long, env = "STRATA_REGION")]
    pub region: Option<String>,
    /// Reject signatures scoped to any other region than --region.
    #[arg(long, env = "STRATA_STRICT_REGION")]
    pub strict_region: bool,
    /// TLS certificate chain (PEM). With --tls-key, `listen` serves HTTPS (unless --tls-listen).
    #[arg(long, env = "STRATA_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM: PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(long, env = "STRATA_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Serve HTTPS on this second address and keep `listen` plain HTTP.
    #[arg(long, env = "STRATA_TLS_LISTEN")]
    pub tls_listen: Option<SocketAddr>,
    /// Domain for virtual-hosted-style requests (`bucket.DOMAIN`); repeat for several.
    #[arg(long = "domain", env = "STRATA_DOMAINS", value_delimiter = ',')]
    pub domains: Vec<String>,
    /// Bearer token accepted on `/_strata/metrics` (at least 16 printable characters).
    #[arg(long, env = "STRATA_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_bearer_token: Option<String>,
    /// The scalar settings (see `config::table`).
    #[command(flatten)]
    pub settings: SettingArgs,
}

/// How the gateway talks to storage nodes.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    pub nodes: Vec<NodeEntry>,
    pub secret: Vec<u8>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub idle_timeout: Duration,
    pub node_concurrency: usize,
}

/// HTTPS: like MinIO, setting a certificate and key turns `listen` into an HTTPS listener;
/// with `tls_listen` HTTPS is served there instead and `listen` stays plain HTTP.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// A separate HTTPS address (`None`: HTTPS on `listen`).
    pub listen: Option<SocketAddr>,
    /// A client that has not finished its TLS handshake by then is disconnected.
    pub handshake_timeout: Duration,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// HTTPS settings; `None` serves plain HTTP only.
    pub tls: Option<TlsConfig>,
    pub data: PathBuf,
    pub geometry: Geometry,
    pub shard_dirs: Vec<PathBuf>,
    pub write_quorum: usize,
    pub inline_threshold: usize,
    pub fsync: bool,
    pub region: String,
    pub strict_region: bool,
    /// Domains under which `{bucket}.{domain}` addresses a bucket (virtual-hosted style).
    pub domains: Vec<String>,
    pub gc_delay: Duration,
    pub shard_timeout: Duration,
    pub hedge_after: Duration,
    pub health_interval: Duration,
    /// Repair, GC and orphan-scan tunables.
    pub healing: HealingConfig,
    /// Present in cluster mode: shards live on these storage nodes instead of `shard_dirs`.
    pub cluster: Option<ClusterSettings>,
    /// How the embedded server scrubs its shard directories (unused in cluster mode: each
    /// storage node scrubs its own disk).
    pub scrub: ScrubConfig,
    /// How often the gateway collects scrub reports and progress from every store.
    pub scrub_poll_interval: Duration,
    /// Who may read `/_strata/metrics`.
    pub metrics_access: MetricsAccess,
    /// Largest clock difference of a signed request (`RequestTimeTooSkewed` beyond it).
    pub max_clock_skew: Duration,
    /// Longest validity of a presigned URL.
    pub max_presign_expiry: Duration,
}

/// Who may scrape `/_strata/metrics`. Like MinIO, not public by default: a SigV4/SigV2 request
/// signed with the server's keys, or `Authorization: Bearer <token>` when a token is configured
/// (what a Prometheus `authorization` block sends). `public = true` opens it to anyone.
#[derive(Clone, Default)]
pub struct MetricsAccess {
    pub public: bool,
    pub bearer_token: Option<String>,
}

impl std::fmt::Debug for MetricsAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsAccess")
            .field("public", &self.public)
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Reads the cluster secret: `STRATA_CLUSTER_SECRET`, else the config's value or file.
pub fn cluster_secret(inline: Option<String>, file: Option<&Path>) -> Result<Vec<u8>, ConfigError> {
    if let Some(secret) = std::env::var("STRATA_CLUSTER_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
    {
        return check_secret(secret);
    }
    if let Some(secret) = inline {
        return check_secret(secret);
    }
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        return check_secret(text.trim().to_string());
    }
    Err(invalid(
        "cluster_secret",
        "missing: set STRATA_CLUSTER_SECRET, cluster_secret or cluster_secret_file",
    ))
}

fn check_secret(secret: String) -> Result<Vec<u8>, ConfigError> {
    if secret.len() < 16 {
        return Err(invalid("cluster_secret", "must be at least 16 characters"));
    }
    Ok(secret.into_bytes())
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid `{field}`: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        message: message.into(),
    }
}

impl ServerConfig {
    /// Embedded mode: shards in local directories.
    pub fn load(args: &ServerArgs) -> Result<ServerConfig, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        if file.nodes.is_some() {
            return Err(invalid(
                "nodes",
                "belongs in a `strata gateway` config, not `strata server`",
            ));
        }
        Self::build(args, file)
    }

    /// Cluster mode (`strata gateway --config FILE`): shards on the listed storage nodes.
    pub fn load_gateway(args: &ServerArgs) -> Result<ServerConfig, ConfigError> {
        let path = args
            .config
            .as_ref()
            .ok_or_else(|| invalid("config", "`strata gateway` needs --config FILE"))?;
        let mut file = read_file(path)?;
        let nodes = file.nodes.take().unwrap_or_default();
        let secret = cluster_secret(
            file.cluster_secret.take(),
            file.cluster_secret_file.as_deref(),
        )?;
        let s = Settings::resolve(&args.settings, &file);
        let settings = ClusterSettings {
            secret,
            connect_timeout: Duration::from_millis(s.connect_timeout_ms.max(1)),
            request_timeout: Duration::from_millis(s.request_timeout_ms.max(1)),
            idle_timeout: Duration::from_millis(s.idle_timeout_ms.max(1)),
            node_concurrency: s.node_concurrency.max(1),
            nodes,
        };
        let mut config = Self::build(args, file)?;
        let total = config.geometry.total_shards();
        if settings.nodes.len() < total {
            return Err(invalid(
                "nodes",
                format!(
                    "{} nodes for {total} shards per stripe: need at least {total}",
                    settings.nodes.len()
                ),
            ));
        }
        for node in &settings.nodes {
            if node.id == metadata::model::NO_NODE {
                return Err(invalid("nodes", format!("node id {} is reserved", node.id)));
            }
            if node.weight.is_some_and(|w| !(w > 0.0 && w.is_finite())) {
                return Err(invalid(
                    "nodes",
                    format!("node {}: weight must be positive", node.id),
                ));
            }
            if node.address.parse::<SocketAddr>().is_err() && !node.address.contains(':') {
                return Err(invalid(
                    "nodes",
                    format!("node {}: address must be host:port", node.id),
                ));
            }
        }
        config.shard_dirs.clear();
        config.cluster = Some(settings);
        Ok(config)
    }

    fn build(args: &ServerArgs, file: FileConfig) -> Result<ServerConfig, ConfigError> {
        let s = Settings::resolve(&args.settings, &file);
        let listen = args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9000)));
        let tls = tls_config(args, &file, &s, listen)?;
        let healing = healing_config(&s)?;
        let data_shards = args.data_shards.or(file.data_shards).unwrap_or(4);
        let parity_shards = args.parity_shards.or(file.parity_shards).unwrap_or(2);
        if data_shards == 0 {
            return Err(invalid("data_shards", "must be at least 1"));
        }
        if data_shards + parity_shards > 32 {
            return Err(invalid("parity_shards", "k+m must be at most 32"));
        }
        let block_size = args.block_size.or(file.block_size).unwrap_or(1024 * 1024);
        if !(4096..=16 * 1024 * 1024).contains(&block_size) {
            return Err(invalid(
                "block_size",
                "must be between 4096 and 16777216 bytes",
            ));
        }
        let geometry = Geometry::new(data_shards, parity_shards, block_size)
            .map_err(|e| invalid("data_shards", e.to_string()))?;
        let total = data_shards + parity_shards;
        let data = args
            .data
            .clone()
            .or(file.data)
            .unwrap_or_else(|| PathBuf::from("./strata-data"));
        let shard_dirs = if !args.shard_dirs.is_empty() {
            args.shard_dirs.clone()
        } else if let Some(dirs) = file.shard_dirs {
            dirs
        } else {
            (0..total).map(|i| data.join(format!("disk{i}"))).collect()
        };
        if file.nodes.is_none() && shard_dirs.len() < total {
            return Err(invalid(
                "shard_dirs",
                format!("{} directories for {data_shards}+{parity_shards} coding: need at least {total}", shard_dirs.len()),
            ));
        }
        let mut unique = shard_dirs.clone();
        unique.sort();
        unique.dedup();
        if unique.len() != shard_dirs.len() {
            return Err(invalid("shard_dirs", "a directory is listed twice"));
        }
        let write_quorum = args
            .write_quorum
            .or(file.write_quorum)
            .unwrap_or_else(|| total.min(data_shards + 1));
        if write_quorum < data_shards || write_quorum > total {
            return Err(invalid(
                "write_quorum",
                format!("must be between k ({data_shards}) and k+m ({total})"),
            ));
        }
        let inline_threshold = s.inline_threshold;
        if inline_threshold > 256 * 1024 {
            return Err(invalid("inline_threshold", "must be at most 262144 bytes"));
        }
        let scrub = scrub_config(
            s.scrub_enabled,
            Some(s.scrub_bytes_per_sec),
            Some(s.scrub_file_pause_ms),
            Some(s.scrub_interval_secs),
        )?;
        let scrub_poll_ms = s.scrub_poll_ms;
        if !(100..=3_600_000).contains(&scrub_poll_ms) {
            return Err(invalid("scrub_poll_ms", "must be between 100 and 3600000"));
        }
        if !(1..=24 * 3600).contains(&s.max_clock_skew_secs) {
            return Err(invalid(
                "max_clock_skew_secs",
                "must be between 1 and 86400",
            ));
        }
        if !(1..=7 * 24 * 3600).contains(&s.max_presign_expiry_secs) {
            return Err(invalid(
                "max_presign_expiry_secs",
                "must be between 1 and 604800 (S3's limit)",
            ));
        }
        let bearer_token = args
            .metrics_bearer_token
            .clone()
            .filter(|token| !token.is_empty())
            .or(file.metrics_bearer_token);
        if bearer_token
            .as_ref()
            .is_some_and(|token| token.len() < 16 || !token.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(invalid(
                "metrics_bearer_token",
                "must be at least 16 printable ASCII characters without spaces",
            ));
        }
        let region = args
            .region
            .clone()
            .or(file.region)
            .unwrap_or_else(|| "us-east-1".to_string());
        if region.is_empty()
            || !region
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(invalid("region", "letters, digits and '-' only"));
        }
        let domains = if args.domains.is_empty() {
            file.domains
                .unwrap_or_default()
                .into_iter()
                .chain(file.domain)
                .collect()
        } else {
            args.domains.clone()
        };
        let domains = validate_domains(domains)?;
        Ok(ServerConfig {
            listen,
            tls,
            domains,
            data,
            geometry,
            shard_dirs,
            write_quorum,
            inline_threshold,
            fsync: !args.no_fsync && file.fsync.unwrap_or(true),
            region,
            strict_region: args.strict_region || file.strict_region.unwrap_or(false),
            gc_delay: Duration::from_secs(s.gc_delay_secs),
            shard_timeout: Duration::from_secs(s.shard_timeout_secs.max(1)),
            hedge_after: Duration::from_millis(s.hedge_after_ms.max(1)),
            health_interval: Duration::from_millis(s.health_interval_ms.max(100)),
            healing,
            cluster: None,
            scrub,
            scrub_poll_interval: Duration::from_millis(scrub_poll_ms),
            metrics_access: MetricsAccess {
                public: s.metrics_public,
                bearer_token,
            },
            max_clock_skew: Duration::from_secs(s.max_clock_skew_secs),
            max_presign_expiry: Duration::from_secs(s.max_presign_expiry_secs),
        })
    }
}

fn tls_config(
    args: &ServerArgs,
    file: &FileConfig,
    s: &Settings,
    listen: SocketAddr,
) -> Result<Option<TlsConfig>, ConfigError> {
    let cert = args.tls_cert.clone().or_else(|| file.tls_cert.clone());
    let key = args.tls_key.clone().or_else(|| file.tls_key.clone());
    let tls_listen = args.tls_listen.or(file.tls_listen);
    let (cert, key) = match (cert, key) {
        (Some(cert), Some(key)) => (cert, key),
        (None, None) if tls_listen.is_none() => return Ok(None),
        (None, None) => return Err(invalid("tls_listen", "needs tls_cert and tls_key")),
        (Some(_), None) => return Err(invalid("tls_key", "tls_cert is set but tls_key is not")),
        (None, Some(_)) => return Err(invalid("tls_cert", "tls_key is set but tls_cert is not")),
    };
    if tls_listen == Some(listen) {
        return Err(invalid(
            "tls_listen",
            "must differ from `listen` (leave it unset to serve HTTPS on `listen`)",
        ));
    }
    let timeout_ms = s.tls_handshake_timeout_ms;
    if !(100..=300_000).contains(&timeout_ms) {
        return Err(invalid(
            "tls_handshake_timeout_ms",
            "must be between 100 and 300000",
        ));
    }
    Ok(Some(TlsConfig {
        cert,
        key,
        listen: tls_listen,
        handshake_timeout: Duration::from_millis(timeout_ms),
    }))
}

/// Lower-cases and checks virtual-host domains (DNS names: letters, digits, `-`, `.`).
fn validate_domains(domains: Vec<String>) -> Result<Vec<String>, ConfigError> {
    domains
        .into_iter()
        .map(|d| d.trim().trim_matches('.').to_ascii_lowercase())
        .map(|d| {
            let valid = !d.is_empty()
                && d.len() <= 253
                && d.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            if valid {
                Ok(d)
            } else {
                Err(invalid("domains", format!("{d:?} is not a DNS name")))
            }
        })
        .collect()
}
