//! Configuration of `strata server`: one typed [`ServerConfig`] built from defaults, an optional
//! TOML file, `STRATA_*` environment variables and flags (later ones win), validated once at
//! start so that a bad value is a clear error naming the field, never a panic later.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Deserialize;
use storage::codec::Geometry;

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
    pub gc_delay: Duration,
    pub shard_timeout: Duration,
    pub hedge_after: Duration,
    pub health_interval: Duration,
    /// Present in cluster mode: shards live on these storage nodes instead of `shard_dirs`.
    pub cluster: Option<ClusterSettings>,
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
        Ok(ServerConfig {
            listen,
            tls,
            data,
            geometry,
            shard_dirs,
            write_quorum,
            inline_threshold,
            fsync: !args.no_fsync && file.fsync.unwrap_or(true),
            region,
            strict_region: args.strict_region || file.strict_region.unwrap_or(false),
            gc_delay: Duration::from_secs(file.gc_delay_secs.unwrap_or(60)),
            shard_timeout: Duration::from_secs(file.shard_timeout_secs.unwrap_or(30).max(1)),
            hedge_after: Duration::from_millis(file.hedge_after_ms.unwrap_or(300).max(1)),
            health_interval: Duration::from_millis(
                file.health_interval_ms.unwrap_or(1000).max(100),
            ),
            cluster: None,
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
        std::fs::write(&path, "data_shardz = 3\n").unwrap();
        assert!(matches!(
            ServerConfig::load(&args),
            Err(ConfigError::Parse { .. })
        ));
    }
}
