//! The TOML file of `strata server` and `strata gateway`: its shape (every key optional,
//! unknown keys refused) and how it is read. Which value wins over the file is decided in
//! `table` (the scalar settings) and in `ServerConfig::build` (addresses, paths, layout).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;

/// The TOML file's shape (every field optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    pub(crate) listen: Option<SocketAddr>,
    pub(crate) data: Option<PathBuf>,
    pub(crate) data_shards: Option<usize>,
    pub(crate) parity_shards: Option<usize>,
    pub(crate) shard_dirs: Option<Vec<PathBuf>>,
    pub(crate) block_size: Option<usize>,
    pub(crate) write_quorum: Option<usize>,
    pub(crate) inline_threshold: Option<usize>,
    pub(crate) fsync: Option<bool>,
    pub(crate) region: Option<String>,
    pub(crate) strict_region: Option<bool>,
    /// Virtual-hosted-style domain (`bucket.domain`); `domains` lists several.
    pub(crate) domain: Option<String>,
    pub(crate) domains: Option<Vec<String>>,
    pub(crate) gc_delay_secs: Option<u64>,
    pub(crate) shard_timeout_secs: Option<u64>,
    pub(crate) hedge_after_ms: Option<u64>,
    pub(crate) sse_master_key_file: Option<PathBuf>,
    pub(crate) sse_kms_key_file: Option<PathBuf>,
    pub(crate) sse_c_allow_http: Option<bool>,
    /// Cluster mode (`strata gateway`): the storage nodes.
    pub(crate) nodes: Option<Vec<NodeEntry>>,
    pub(crate) cluster_secret: Option<String>,
    pub(crate) cluster_secret_file: Option<PathBuf>,
    pub(crate) connect_timeout_ms: Option<u64>,
    pub(crate) request_timeout_ms: Option<u64>,
    pub(crate) idle_timeout_ms: Option<u64>,
    pub(crate) node_concurrency: Option<usize>,
    /// TLS to storage nodes listed as `https://host:port`: the CA file (PEM) to trust.
    pub(crate) node_tls_ca: Option<PathBuf>,
    /// The name expected in every node's certificate (default: the host of its address).
    pub(crate) node_tls_server_name: Option<String>,
    pub(crate) health_interval_ms: Option<u64>,
    pub(crate) tls_cert: Option<PathBuf>,
    pub(crate) tls_key: Option<PathBuf>,
    pub(crate) tls_listen: Option<SocketAddr>,
    pub(crate) tls_handshake_timeout_ms: Option<u64>,
    pub(crate) header_read_timeout_ms: Option<u64>,
    pub(crate) body_idle_timeout_ms: Option<u64>,
    pub(crate) request_timeout_secs: Option<u64>,
    pub(crate) max_connections: Option<usize>,
    pub(crate) max_inflight_bodies: Option<usize>,
    pub(crate) max_header_count: Option<usize>,
    pub(crate) max_header_bytes: Option<usize>,
    /// Scrubbing of the embedded server's shard directories (storage nodes take flags).
    pub(crate) scrub_enabled: Option<bool>,
    pub(crate) scrub_bytes_per_sec: Option<u64>,
    pub(crate) scrub_file_pause_ms: Option<u64>,
    pub(crate) scrub_interval_secs: Option<u64>,
    /// How often the gateway collects scrub reports from every store.
    pub(crate) scrub_poll_ms: Option<u64>,
    /// `/_strata/metrics` without authentication (default: signed or bearer token).
    pub(crate) metrics_public: Option<bool>,
    /// Bearer token accepted on `/_strata/metrics` (also `STRATA_METRICS_TOKEN`).
    pub(crate) metrics_bearer_token: Option<String>,
    pub(crate) repair_bytes_per_sec: Option<u64>,
    pub(crate) repair_busy_bytes_per_sec: Option<u64>,
    pub(crate) repair_parallelism: Option<usize>,
    pub(crate) repair_interval_ms: Option<u64>,
    pub(crate) node_lost_after_secs: Option<u64>,
    pub(crate) stale_intent_secs: Option<u64>,
    pub(crate) upload_expiry_secs: Option<u64>,
    pub(crate) scan_interval_secs: Option<u64>,
    pub(crate) read_lease_secs: Option<u64>,
    /// Catalog backups onto the storage nodes: schedule (0: off) and how many are kept.
    pub(crate) catalog_backup_interval_secs: Option<u64>,
    pub(crate) catalog_backups_kept: Option<usize>,
    /// History the catalog keeps of replaced rows (etcd compaction).
    pub(crate) catalog_history_secs: Option<u64>,
    /// Largest clock difference of a signed request (S3's `RequestTimeTooSkewed` window).
    pub(crate) max_clock_skew_secs: Option<u64>,
    /// Longest validity of a presigned URL (`X-Amz-Expires`).
    pub(crate) max_presign_expiry_secs: Option<u64>,
    pub(crate) leader_lease_ms: Option<u64>,
    pub(crate) etcd_timeout_ms: Option<u64>,
    pub(crate) etcd_max_txn_ops: Option<usize>,
    pub(crate) etcd_max_request_bytes: Option<usize>,
    pub(crate) etcd_requests_in_flight: Option<usize>,
    pub(crate) catalog: Option<super::CatalogKind>,
    pub(crate) etcd_endpoints: Option<Vec<String>>,
    pub(crate) etcd_prefix: Option<String>,
    pub(crate) etcd_user: Option<String>,
    pub(crate) etcd_password: Option<String>,
    pub(crate) etcd_password_file: Option<PathBuf>,
    pub(crate) etcd_ca_file: Option<PathBuf>,
    pub(crate) etcd_cert_file: Option<PathBuf>,
    pub(crate) etcd_key_file: Option<PathBuf>,
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

pub(crate) fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}
