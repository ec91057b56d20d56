//! Configuration of `strata server`: one typed [`ServerConfig`] built from defaults, an optional
//! TOML file, `STRATA_*` environment variables and flags (later ones win), validated once at
//! start so that a bad value is a clear error naming the field, never a panic later.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Deserialize;
use storage::codec::Geometry;
use storage::scrub::ScrubConfig;

use crate::engine::HealingConfig;

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
}

/// The TOML file's shape (every field optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data: Option<PathBuf>,
    data_shards: Option<usize>,
    parity_shards: Option<usize>,
    shard_dirs: Option<Vec<PathBuf>>,
    block_size: Option<usize>,
    write_quorum: Option<usize>,
    inline_threshold: Option<usize>,
    fsync: Option<bool>,
    region: Option<String>,
    strict_region: Option<bool>,
    /// Virtual-hosted-style domain (`bucket.domain`); `domains` lists several.
    domain: Option<String>,
    domains: Option<Vec<String>>,
    gc_delay_secs: Option<u64>,
    shard_timeout_secs: Option<u64>,
    hedge_after_ms: Option<u64>,
    /// Cluster mode (`strata gateway`): the storage nodes.
    nodes: Option<Vec<NodeEntry>>,
    cluster_secret: Option<String>,
    cluster_secret_file: Option<PathBuf>,
    connect_timeout_ms: Option<u64>,
    request_timeout_ms: Option<u64>,
    idle_timeout_ms: Option<u64>,
    node_concurrency: Option<usize>,
    health_interval_ms: Option<u64>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_listen: Option<SocketAddr>,
    tls_handshake_timeout_ms: Option<u64>,
    /// Scrubbing of the embedded server's shard directories (storage nodes take flags).
    scrub_enabled: Option<bool>,
    scrub_bytes_per_sec: Option<u64>,
    scrub_file_pause_ms: Option<u64>,
    scrub_interval_secs: Option<u64>,
    /// How often the gateway collects scrub reports from every store.
    scrub_poll_ms: Option<u64>,
    /// `/_strata/metrics` without authentication (default: signed or bearer token).
    metrics_public: Option<bool>,
    /// Bearer token accepted on `/_strata/metrics` (also `STRATA_METRICS_TOKEN`).
    metrics_bearer_token: Option<String>,
    repair_bytes_per_sec: Option<u64>,
    repair_busy_bytes_per_sec: Option<u64>,
    repair_parallelism: Option<usize>,
    repair_interval_ms: Option<u64>,
    node_lost_after_secs: Option<u64>,
    stale_intent_secs: Option<u64>,
    upload_expiry_secs: Option<u64>,
    scan_interval_secs: Option<u64>,
    /// Longest time a GET in progress keeps replaced data from GC.
    read_lease_secs: Option<u64>,
}

/// One storage node of a cluster.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    pub id: u32,
    /// `host:port` of the node's HTTP listener.
    pub address: String,
    pub zone: Option<String>,
    pub weight: Option<f64>,
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

/// Builds and validates a scrub configuration (shared by the TOML file and the storage-node
/// flags). `bytes_per_sec` 0 means unlimited; otherwise at least 64 KiB/s.
pub fn scrub_config(
    enabled: bool,
    bytes_per_sec: Option<u64>,
    file_pause_ms: Option<u64>,
    interval_secs: Option<u64>,
) -> Result<ScrubConfig, ConfigError> {
    let defaults = ScrubConfig::default();
    let bytes_per_sec = bytes_per_sec.unwrap_or(defaults.bytes_per_sec);
    if bytes_per_sec != 0 && bytes_per_sec < 64 * 1024 {
        return Err(invalid(
            "scrub_bytes_per_sec",
            "must be 0 (unlimited) or at least 65536",
        ));
    }
    let file_pause = match file_pause_ms {
        Some(ms) if ms > 60_000 => {
            return Err(invalid("scrub_file_pause_ms", "must be at most 60000"))
        }
        Some(ms) => Duration::from_millis(ms),
        None => defaults.file_pause,
    };
    let pass_interval = match interval_secs {
        Some(secs) if secs > 366 * 24 * 3600 => {
            return Err(invalid("scrub_interval_secs", "must be at most a year"))
        }
        Some(secs) => Duration::from_secs(secs),
        None => defaults.pass_interval,
    };
    Ok(ScrubConfig {
        enabled,
        bytes_per_sec,
        file_pause,
        pass_interval,
    })
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

fn invalid(field: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        message: message.into(),
    }
}

/// Largest object stored inline in its metadata record by default.
const DEFAULT_INLINE_THRESHOLD: usize = 4096;

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
        let settings = ClusterSettings {
            secret,
            connect_timeout: Duration::from_millis(file.connect_timeout_ms.unwrap_or(1000).max(1)),
            request_timeout: Duration::from_millis(file.request_timeout_ms.unwrap_or(5000).max(1)),
            idle_timeout: Duration::from_millis(file.idle_timeout_ms.unwrap_or(5000).max(1)),
            node_concurrency: file.node_concurrency.unwrap_or(64).max(1),
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
        let listen = args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9000)));
        let tls = tls_config(args, &file, listen)?;
        let healing = healing_config(&file)?;
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
        let inline_threshold = file.inline_threshold.unwrap_or(DEFAULT_INLINE_THRESHOLD);
        if inline_threshold > 256 * 1024 {
            return Err(invalid("inline_threshold", "must be at most 262144 bytes"));
        }
        let scrub = scrub_config(
            file.scrub_enabled.unwrap_or(true),
            file.scrub_bytes_per_sec,
            file.scrub_file_pause_ms,
            file.scrub_interval_secs,
        )?;
        let scrub_poll_ms = file.scrub_poll_ms.unwrap_or(10_000);
        if !(100..=3_600_000).contains(&scrub_poll_ms) {
            return Err(invalid("scrub_poll_ms", "must be between 100 and 3600000"));
        }
        let bearer_token = std::env::var("STRATA_METRICS_TOKEN")
            .ok()
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
            gc_delay: Duration::from_secs(
                env_u64("gc_delay_secs", file.gc_delay_secs)?.unwrap_or(60),
            ),
            shard_timeout: Duration::from_secs(file.shard_timeout_secs.unwrap_or(30).max(1)),
            hedge_after: Duration::from_millis(file.hedge_after_ms.unwrap_or(300).max(1)),
            health_interval: Duration::from_millis(
                file.health_interval_ms.unwrap_or(1000).max(100),
            ),
            healing,
            cluster: None,
            scrub,
            scrub_poll_interval: Duration::from_millis(scrub_poll_ms),
            metrics_access: MetricsAccess {
                public: file.metrics_public.unwrap_or(false),
                bearer_token,
            },
        })
    }
}

fn tls_config(
    args: &ServerArgs,
    file: &FileConfig,
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
    let timeout_ms = file.tls_handshake_timeout_ms.unwrap_or(10_000);
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

/// Reads a `u64` from `STRATA_<NAME>` (the variable wins over the file, like the flags).
fn env_u64(field: &'static str, file: Option<u64>) -> Result<Option<u64>, ConfigError> {
    let var = format!("STRATA_{}", field.to_ascii_uppercase());
    match std::env::var(&var) {
        Ok(text) if !text.trim().is_empty() => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| invalid(field, format!("{var}={text:?} is not a whole number"))),
        _ => Ok(file),
    }
}

/// [`env_u64`], else `default`, refused with `message` below `min`.
fn env_at_least(
    field: &'static str,
    file: Option<u64>,
    default: u64,
    min: u64,
    message: &str,
) -> Result<u64, ConfigError> {
    let value = env_u64(field, file)?.unwrap_or(default);
    if value < min {
        return Err(invalid(field, message));
    }
    Ok(value)
}

/// Repair and GC settings: file values, overridden by `STRATA_*` variables, then checked.
fn healing_config(file: &FileConfig) -> Result<HealingConfig, ConfigError> {
    let defaults = HealingConfig::default();
    let secs = |d: Duration| d.as_secs();
    let bytes_per_sec = env_u64("repair_bytes_per_sec", file.repair_bytes_per_sec)?
        .unwrap_or(defaults.repair_bytes_per_sec);
    let busy_bytes_per_sec = env_u64("repair_busy_bytes_per_sec", file.repair_busy_bytes_per_sec)?
        .unwrap_or(defaults.repair_busy_bytes_per_sec);
    let parallelism = env_u64(
        "repair_parallelism",
        file.repair_parallelism.map(|p| p as u64),
    )?
    .unwrap_or(defaults.repair_parallelism as u64);
    if !(1..=64).contains(&parallelism) {
        return Err(invalid("repair_parallelism", "must be between 1 and 64"));
    }
    let interval_ms = env_u64("repair_interval_ms", file.repair_interval_ms)?
        .unwrap_or(defaults.repair_interval.as_millis() as u64);
    if !(50..=60_000).contains(&interval_ms) {
        return Err(invalid(
            "repair_interval_ms",
            "must be between 50 and 60000",
        ));
    }
    let lost = env_at_least(
        "node_lost_after_secs",
        file.node_lost_after_secs,
        secs(defaults.node_lost_after),
        1,
        "must be at least 1",
    )?;
    let stale = env_at_least(
        "stale_intent_secs",
        file.stale_intent_secs,
        secs(defaults.stale_intent_after),
        60,
        "must be at least 60 (a slow upload must not lose its shards)",
    )?;
    let expiry = env_at_least(
        "upload_expiry_secs",
        file.upload_expiry_secs,
        secs(defaults.upload_expiry),
        1,
        "must be at least 1",
    )?;
    let scan = env_at_least(
        "scan_interval_secs",
        file.scan_interval_secs,
        secs(defaults.scan_interval),
        1,
        "must be at least 1",
    )?;
    let read_lease = env_at_least(
        "read_lease_secs",
        file.read_lease_secs,
        secs(defaults.read_lease_max),
        1,
        "must be at least 1",
    )?;
    Ok(HealingConfig {
        repair_bytes_per_sec: bytes_per_sec,
        repair_busy_bytes_per_sec: busy_bytes_per_sec,
        repair_parallelism: parallelism as usize,
        repair_interval: Duration::from_millis(interval_ms),
        node_lost_after: Duration::from_secs(lost),
        stale_intent_after: Duration::from_secs(stale),
        upload_expiry: Duration::from_secs(expiry),
        scan_interval: Duration::from_secs(scan),
        read_lease_max: Duration::from_secs(read_lease),
    })
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_embedded_layout() {
        let config = ServerConfig::load(&ServerArgs::default()).unwrap();
        assert_eq!(config.geometry.data_shards, 4);
        assert_eq!(config.geometry.parity_shards, 2);
        assert_eq!(config.shard_dirs.len(), 6);
        assert_eq!(config.write_quorum, 5);
        assert!(config.fsync);
        assert_eq!(config.listen.port(), 9000);
        assert!(config.tls.is_none());
    }

    #[test]
    fn tls_needs_both_files_and_a_distinct_address() {
        let args = ServerArgs {
            tls_cert: Some("cert.pem".into()),
            ..Default::default()
        };
        let err = ServerConfig::load(&args).unwrap_err().to_string();
        assert!(err.contains("tls_key"), "{err}");
        let args = ServerArgs {
            tls_listen: Some("127.0.0.1:9443".parse().unwrap()),
            ..Default::default()
        };
        let err = ServerConfig::load(&args).unwrap_err().to_string();
        assert!(err.contains("tls_listen"), "{err}");
        let args = ServerArgs {
            tls_cert: Some("cert.pem".into()),
            tls_key: Some("key.pem".into()),
            tls_listen: Some("127.0.0.1:9000".parse().unwrap()),
            ..Default::default()
        };
        let err = ServerConfig::load(&args).unwrap_err().to_string();
        assert!(err.contains("tls_listen"), "{err}");
        let args = ServerArgs {
            tls_cert: Some("cert.pem".into()),
            tls_key: Some("key.pem".into()),
            ..Default::default()
        };
        let tls = ServerConfig::load(&args).unwrap().tls.unwrap();
        assert_eq!(tls.listen, None);
        assert_eq!(tls.handshake_timeout, Duration::from_secs(10));
    }

    #[test]
    fn bad_values_name_their_field() {
        let args = ServerArgs {
            data_shards: Some(0),
            ..Default::default()
        };
        let err = ServerConfig::load(&args).unwrap_err().to_string();
        assert!(err.contains("data_shards"), "{err}");
        let args = ServerArgs {
            shard_dirs: vec!["a".into(), "b".into()],
            ..Default::default()
        };
        let err = ServerConfig::load(&args).unwrap_err().to_string();
        assert!(err.contains("shard_dirs"), "{err}");
        let args = ServerArgs {
            write_quorum: Some(7),
            ..Default::default()
        };
        assert!(ServerConfig::load(&args)
            .unwrap_err()
            .to_string()
            .contains("write_quorum"));
    }

    #[test]
    fn file_values_apply_and_unknown_fields_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("strata.toml");
        std::fs::write(
            &path,
            "data_shards = 3\nparity_shards = 1\nlisten = \"127.0.0.1:9100\"\n",
        )
        .unwrap();
        let args = ServerArgs {
            config: Some(path.clone()),
            ..Default::default()
        };
        let config = ServerConfig::load(&args).unwrap();
        assert_eq!(config.geometry.total_shards(), 4);
        assert_eq!(config.listen.port(), 9100);
        std::fs::write(
            &path,
            "scrub_bytes_per_sec = 1048576\nscrub_interval_secs = 60\nscrub_poll_ms = 500\n",
        )
        .unwrap();
        let config = ServerConfig::load(&args).unwrap();
        assert_eq!(config.scrub.bytes_per_sec, 1 << 20);
        assert_eq!(config.scrub.pass_interval, Duration::from_secs(60));
        assert_eq!(config.scrub_poll_interval, Duration::from_millis(500));
        assert!(!config.metrics_access.public);
        for (text, field) in [
            ("scrub_bytes_per_sec = 10\n", "scrub_bytes_per_sec"),
            ("scrub_poll_ms = 1\n", "scrub_poll_ms"),
            ("scrub_file_pause_ms = 999999\n", "scrub_file_pause_ms"),
            ("metrics_bearer_token = \"short\"\n", "metrics_bearer_token"),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = ServerConfig::load(&args).unwrap_err().to_string();
            assert!(err.contains(field), "{text}: {err}");
        }
        std::fs::write(
            &path,
            "node_lost_after_secs = 5\nscan_interval_secs = 2\nrepair_bytes_per_sec = 0\nrepair_busy_bytes_per_sec = 4096\n",
        )
        .unwrap();
        let config = ServerConfig::load(&args).unwrap();
        assert_eq!(config.healing.node_lost_after, Duration::from_secs(5));
        assert_eq!(config.healing.scan_interval, Duration::from_secs(2));
        assert_eq!(config.healing.repair_bytes_per_sec, 0);
        assert_eq!(config.healing.repair_busy_bytes_per_sec, 4096);
        std::fs::write(&path, "repair_parallelism = 0\n").unwrap();
        let err = ServerConfig::load(&args).unwrap_err().to_string();
        assert!(err.contains("repair_parallelism"), "{err}");
        std::fs::write(&path, "stale_intent_secs = 5\n").unwrap();
        let err = ServerConfig::load(&args).unwrap_err().to_string();
        assert!(err.contains("stale_intent_secs"), "{err}");
        std::fs::write(&path, "data_shardz = 3\n").unwrap();
        assert!(matches!(
            ServerConfig::load(&args),
            Err(ConfigError::Parse { .. })
        ));
    }

    #[test]
    fn virtual_host_domains_from_file_or_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("strata.toml");
        std::fs::write(&path, "domain = \"S3.Localhost.\"\n").unwrap();
        let mut args = ServerArgs {
            config: Some(path.clone()),
            ..Default::default()
        };
        assert_eq!(
            ServerConfig::load(&args).unwrap().domains,
            vec!["s3.localhost"]
        );
        args.domains = vec!["a.example".into(), "b.example".into()];
        assert_eq!(
            ServerConfig::load(&args).unwrap().domains,
            vec!["a.example", "b.example"]
        );
        args.domains = vec!["bad_domain".into()];
        let err = ServerConfig::load(&args).unwrap_err().to_string();
        assert!(err.contains("domains"), "{err}");
        assert!(ServerConfig::load(&ServerArgs::default())
            .unwrap()
            .domains
            .is_empty());
    }
}
