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
    /// Where the catalog lives: `rocksdb` (in the data directory, this gateway alone) or
    /// `etcd` (shared by every gateway of the cluster).
    #[arg(long, env = "STRATA_CATALOG", value_enum)]
    pub catalog: Option<CatalogKind>,
    /// etcd client URLs (`http://host:port` or `https://…`; repeat or comma-separate).
    #[arg(
        long = "etcd-endpoints",
        env = "STRATA_ETCD_ENDPOINTS",
        value_delimiter = ','
    )]
    pub etcd_endpoints: Vec<String>,
    /// Prefix of every etcd key of this cluster (default `strata/`).
    #[arg(long, env = "STRATA_ETCD_PREFIX")]
    pub etcd_prefix: Option<String>,
    /// etcd user, when the etcd cluster has authentication enabled.
    #[arg(long, env = "STRATA_ETCD_USER")]
    pub etcd_user: Option<String>,
    /// Password of --etcd-user.
    #[arg(long, env = "STRATA_ETCD_PASSWORD", hide_env_values = true)]
    pub etcd_password: Option<String>,
    /// CA certificate (PEM) of the etcd members' TLS certificates.
    #[arg(long, env = "STRATA_ETCD_CA_FILE")]
    pub etcd_ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for etcd members that require one (with --etcd-key-file).
    #[arg(long, env = "STRATA_ETCD_CERT_FILE")]
    pub etcd_cert_file: Option<PathBuf>,
    /// Key (PEM) of --etcd-cert-file.
    #[arg(long, env = "STRATA_ETCD_KEY_FILE")]
    pub etcd_key_file: Option<PathBuf>,
    /// The scalar settings (see `config::table`).
    #[command(flatten)]
    pub settings: SettingArgs,
}

/// Where the catalog lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatalogKind {
    /// RocksDB in `DATA/meta`: the only process using it.
    Rocksdb,
    /// An etcd v3 cluster shared by every gateway.
    Etcd,
}

/// The catalog's store, validated.
#[derive(Debug, Clone)]
pub enum CatalogConfig {
    /// RocksDB in `DATA/meta`.
    Rocks,
    /// etcd, shared with the other gateways of the cluster.
    Etcd(Box<metadata::EtcdConfig>),
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
    /// TLS to the nodes listed as `https://host:port`: the CA to trust (`node_tls_ca`) and an
    /// optional name to expect in their certificates (`node_tls_server_name`).
    pub node_tls: Option<storage::node_tls::NodeTlsClient>,
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

/// What one client may hold of the server: connections, time and memory (slow and hostile
/// clients cannot starve the others).
#[derive(Debug, Clone)]
pub struct ClientLimits {
    /// Time to send a complete request head once the connection is ready for one (also the
    /// keep-alive idle limit).
    pub header_read_timeout: Duration,
    /// Longest wait for the next piece of a request body.
    pub body_idle_timeout: Duration,
    /// Deadline of calls that stream no object data.
    pub request_timeout: Duration,
    /// Open connections per listener.
    pub max_connections: usize,
    /// Requests with a body in progress.
    pub max_inflight_bodies: usize,
    pub max_header_count: usize,
    pub max_header_bytes: usize,
}

impl Default for ClientLimits {
    fn default() -> Self {
        ClientLimits {
            header_read_timeout: Duration::from_secs(10),
            body_idle_timeout: Duration::from_secs(20),
            request_timeout: Duration::from_secs(120),
            max_connections: 4096,
            max_inflight_bodies: 256,
            max_header_count: 100,
            max_header_bytes: 64 * 1024,
        }
    }
}

impl ClientLimits {
    fn from_settings(s: &Settings) -> Result<ClientLimits, ConfigError> {
        let millis = |field: &'static str, value: u64| {
            if (100..=3_600_000).contains(&value) {
                Ok(Duration::from_millis(value))
            } else {
                Err(invalid(
                    field,
                    "must be between 100 and 3600000 milliseconds",
                ))
            }
        };
        let count = |field: &'static str, value: usize, range: std::ops::RangeInclusive<usize>| {
            if range.contains(&value) {
                Ok(value)
            } else {
                Err(invalid(
                    field,
                    format!("must be between {} and {}", range.start(), range.end()),
                ))
            }
        };
        if !(1..=24 * 3600).contains(&s.request_timeout_secs) {
            return Err(invalid(
                "request_timeout_secs",
                "must be between 1 and 86400",
            ));
        }
        Ok(ClientLimits {
            header_read_timeout: millis("header_read_timeout_ms", s.header_read_timeout_ms)?,
            body_idle_timeout: millis("body_idle_timeout_ms", s.body_idle_timeout_ms)?,
            request_timeout: Duration::from_secs(s.request_timeout_secs),
            max_connections: count("max_connections", s.max_connections, 1..=1_000_000)?,
            max_inflight_bodies: count("max_inflight_bodies", s.max_inflight_bodies, 1..=100_000)?,
            max_header_count: count("max_header_count", s.max_header_count, 16..=10_000)?,
            max_header_bytes: count("max_header_bytes", s.max_header_bytes, 8192..=1024 * 1024)?,
        })
    }
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
    /// Where the catalog lives.
    pub catalog: CatalogConfig,
    /// Liveness and background-work lease of gateways sharing a catalog.
    pub leader_lease: Duration,
    /// Timeouts and caps that protect the S3 port from slow and hostile clients.
    pub limits: ClientLimits,
    /// Encryption at rest: key files, SSE-C over HTTP, and (once loaded) the keys.
    pub sse: SseSettings,
}

/// Settings of encryption at rest.
#[derive(Debug, Clone, Default)]
pub struct SseSettings {
    /// `None`: the default (`sse-master.keys` in the data directory, or the shared catalog's).
    pub master_key_file: Option<PathBuf>,
    /// `None`: no KMS.
    pub kms_key_file: Option<PathBuf>,
    pub c_allow_http: bool,
    /// Loaded at start (`catalog_setup::sse_keys`); empty until then.
    pub keys: crate::sse::SseKeys,
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

/// The gateway's TLS client settings for storage nodes, loaded (and checked) at start.
fn node_tls(
    ca: Option<PathBuf>,
    server_name: Option<String>,
) -> Result<Option<storage::node_tls::NodeTlsClient>, ConfigError> {
    match (ca, server_name) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(invalid(
            "node_tls_server_name",
            "needs node_tls_ca (the CA that signed the nodes' certificates)",
        )),
        (Some(ca), server_name) => storage::node_tls::NodeTlsClient::from_ca_file(&ca, server_name)
            .map(Some)
            .map_err(|e| invalid("node_tls_ca", e.to_string())),
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
        let config = Self::build(args, file)?;
        if matches!(config.catalog, CatalogConfig::Etcd(_)) {
            return Err(invalid(
                "catalog",
                "etcd is for `strata gateway` (several gateways over shared storage nodes); \
                 `strata server` keeps its shards and catalog on this machine",
            ));
        }
        Ok(config)
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
            node_tls: node_tls(file.node_tls_ca.take(), file.node_tls_server_name.take())?,
            nodes,
        };
        let mut config = Self::build(args, file)?;
        // With a shared catalog the node list may come from the catalog (`check_nodes` runs
        // again once it is known).
        if !(settings.nodes.is_empty() && matches!(config.catalog, CatalogConfig::Etcd(_))) {
            check_nodes(&settings.nodes, config.geometry.total_shards())?;
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
        let catalog = catalog_config(args, &file, &s)?;
        if !(400..=600_000).contains(&s.leader_lease_ms) {
            return Err(invalid("leader_lease_ms", "must be between 400 and 600000"));
        }
        if matches!(catalog, CatalogConfig::Etcd(_))
            && s.gc_delay_secs.saturating_mul(1000) < s.leader_lease_ms / 2
        {
            // Reads on other gateways publish what they hold every lease / 4: replaced data
            // must outlive that.
            return Err(invalid(
                "gc_delay_secs",
                format!(
                    "with a shared catalog must be at least half of leader_lease_ms ({} ms)",
                    s.leader_lease_ms
                ),
            ));
        }
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
        let limits = ClientLimits::from_settings(&s)?;
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
            catalog,
            leader_lease: Duration::from_millis(s.leader_lease_ms),
            limits,
            sse: SseSettings {
                master_key_file: Some(s.sse_master_key_file.clone())
                    .filter(|p| !p.as_os_str().is_empty()),
                kms_key_file: Some(s.sse_kms_key_file.clone())
                    .filter(|p| !p.as_os_str().is_empty()),
                c_allow_http: s.sse_c_allow_http,
                keys: crate::sse::SseKeys::default(),
            },
        })
    }
}

/// Checks the storage node list of a cluster coded with `total` shards per stripe.
pub fn check_nodes(nodes: &[NodeEntry], total: usize) -> Result<(), ConfigError> {
    if nodes.len() < total {
        return Err(invalid(
            "nodes",
            format!(
                "{} nodes for {total} shards per stripe: need at least {total}",
                nodes.len()
            ),
        ));
    }
    for node in nodes {
        if node.id == metadata::model::NO_NODE {
            return Err(invalid("nodes", format!("node id {} is reserved", node.id)));
        }
        if node.weight.is_some_and(|w| !(w > 0.0 && w.is_finite())) {
            return Err(invalid(
                "nodes",
                format!("node {}: weight must be positive", node.id),
            ));
        }
        let host_port = node
            .address
            .strip_prefix("https://")
            .unwrap_or(&node.address);
        if host_port.parse::<SocketAddr>().is_err() && !host_port.contains(':') {
            return Err(invalid(
                "nodes",
                format!(
                    "node {}: address must be host:port or https://host:port",
                    node.id
                ),
            ));
        }
    }
    Ok(())
}

/// Where the catalog lives; for etcd, the endpoints, prefix, credentials, TLS and limits.
fn catalog_config(
    args: &ServerArgs,
    file: &FileConfig,
    s: &Settings,
) -> Result<CatalogConfig, ConfigError> {
    let kind = args
        .catalog
        .or(file.catalog)
        .unwrap_or(CatalogKind::Rocksdb);
    let endpoints = if args.etcd_endpoints.is_empty() {
        file.etcd_endpoints.clone().unwrap_or_default()
    } else {
        args.etcd_endpoints.clone()
    };
    let endpoints: Vec<String> = endpoints
        .into_iter()
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty())
        .collect();
    if kind == CatalogKind::Rocksdb {
        if !endpoints.is_empty() {
            return Err(invalid(
                "etcd_endpoints",
                "set, but `catalog` is rocksdb (set catalog = \"etcd\" to use them)",
            ));
        }
        return Ok(CatalogConfig::Rocks);
    }
    if endpoints.is_empty() {
        return Err(invalid(
            "etcd_endpoints",
            "catalog = \"etcd\" needs at least one endpoint (http://host:port)",
        ));
    }
    let tls_wanted = endpoints.iter().any(|e| e.starts_with("https://"));
    for endpoint in &endpoints {
        let Some(rest) = endpoint
            .strip_prefix("http://")
            .or_else(|| endpoint.strip_prefix("https://"))
        else {
            return Err(invalid(
                "etcd_endpoints",
                format!("{endpoint:?}: must start with http:// or https://"),
            ));
        };
        if !rest.contains(':') || endpoint.starts_with("https://") != tls_wanted {
            return Err(invalid(
                "etcd_endpoints",
                format!("{endpoint:?}: must be http(s)://host:port, all with the same scheme"),
            ));
        }
    }
    let prefix = args
        .etcd_prefix
        .clone()
        .or_else(|| file.etcd_prefix.clone())
        .unwrap_or_else(|| "strata/".to_string());
    if prefix.is_empty() {
        return Err(invalid("etcd_prefix", "must not be empty"));
    }
    let user = args.etcd_user.clone().or_else(|| file.etcd_user.clone());
    let password = match (
        &args.etcd_password,
        &file.etcd_password,
        &file.etcd_password_file,
    ) {
        (Some(p), _, _) | (None, Some(p), _) => Some(p.clone()),
        (None, None, Some(path)) => Some(
            std::fs::read_to_string(path)
                .map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?
                .trim()
                .to_string(),
        ),
        (None, None, None) => None,
    };
    let user = match (user, password) {
        (Some(user), Some(password)) => Some((user, password)),
        (None, None) => None,
        (Some(_), None) => return Err(invalid("etcd_password", "etcd_user is set without it")),
        (None, Some(_)) => return Err(invalid("etcd_user", "etcd_password is set without it")),
    };
    let read = |path: &PathBuf| {
        std::fs::read(path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })
    };
    let ca = args.etcd_ca_file.as_ref().or(file.etcd_ca_file.as_ref());
    let cert = args
        .etcd_cert_file
        .as_ref()
        .or(file.etcd_cert_file.as_ref());
    let key = args.etcd_key_file.as_ref().or(file.etcd_key_file.as_ref());
    let tls = match (ca, tls_wanted) {
        (Some(ca), true) => {
            let identity = match (cert, key) {
                (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
                (None, None) => None,
                _ => {
                    return Err(invalid(
                        "etcd_cert_file",
                        "etcd_cert_file and etcd_key_file go together",
                    ))
                }
            };
            Some(metadata::EtcdTls {
                ca: read(ca)?,
                identity,
            })
        }
        (None, true) => {
            return Err(invalid(
                "etcd_ca_file",
                "https:// etcd endpoints need the CA of their certificates",
            ))
        }
        (Some(_), false) => {
            return Err(invalid(
                "etcd_ca_file",
                "set, but the etcd endpoints are http:// (use https://)",
            ))
        }
        (None, false) => None,
    };
    if !(100..=120_000).contains(&s.etcd_timeout_ms) {
        return Err(invalid("etcd_timeout_ms", "must be between 100 and 120000"));
    }
    if s.etcd_max_txn_ops < 16 {
        return Err(invalid("etcd_max_txn_ops", "must be at least 16"));
    }
    if s.etcd_max_request_bytes < 64 * 1024 {
        return Err(invalid("etcd_max_request_bytes", "must be at least 65536"));
    }
    if !(1..=64).contains(&s.etcd_requests_in_flight) {
        return Err(invalid(
            "etcd_requests_in_flight",
            "must be between 1 and 64",
        ));
    }
    let mut config = metadata::EtcdConfig::new(endpoints);
    config.in_flight = s.etcd_requests_in_flight;
    config.prefix = prefix.into_bytes();
    config.timeout = Duration::from_millis(s.etcd_timeout_ms);
    config.user = user;
    config.tls = tls;
    config.limits = metadata::Limits {
        max_ops: s.etcd_max_txn_ops,
        max_bytes: s.etcd_max_request_bytes,
    };
    Ok(CatalogConfig::Etcd(Box::new(config)))
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
