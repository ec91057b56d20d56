//! The settings table: every scalar setting once, with its type, its `STRATA_*` variable and
//! its default. The macro makes of it the flags (`--shard-timeout-secs`, each also read from
//! its variable by clap) and [`Settings::resolve`], the one place where the precedence
//! flag > environment > file > default is applied. The file keys are the setting names
//! (`file::FileConfig` holds them). Checks of the values are made where they are turned into
//! typed configuration (`ServerConfig::build`, `healing`).

use std::path::PathBuf;

use storage::scrub::ScrubConfig;

use super::file::FileConfig;
use crate::engine::HealingConfig;

macro_rules! settings {
    ($( $(#[doc = $doc:literal])+ $name:ident : $ty:ty = $default:expr, $env:literal; )*) => {
        /// Flags of the settings table (each also read from its `STRATA_*` variable).
        #[derive(Debug, Default, Clone, clap::Args)]
        pub struct SettingArgs {
            $(
                $(#[doc = $doc])+
                #[arg(long, env = $env)]
                pub $name: Option<$ty>,
            )*
        }

        /// The settings after precedence: flag > environment > file > default.
        #[derive(Debug, Clone)]
        pub struct Settings {
            $(
                $(#[doc = $doc])+
                pub $name: $ty,
            )*
        }

        impl Settings {
            /// Applies the precedence (clap has already put each flag before its variable).
            pub(crate) fn resolve(args: &SettingArgs, file: &FileConfig) -> Settings {
                Settings {
                    $(
                        $name: args
                            .$name
                            .clone()
                            .or_else(|| file.$name.clone())
                            .unwrap_or_else(|| $default),
                    )*
                }
            }
        }
    };
}

settings! {
    /// Objects and parts at most this long (bytes) live inside their metadata record.
    inline_threshold: usize = 4096, "STRATA_INLINE_THRESHOLD";
    /// Seconds replaced data stays readable for in-flight GETs before GC removes it.
    gc_delay_secs: u64 = 60, "STRATA_GC_DELAY_SECS";
    /// Budget of one shard store call, in seconds.
    shard_timeout_secs: u64 = 30, "STRATA_SHARD_TIMEOUT_SECS";
    /// A read whose data shards have not all answered after this many milliseconds also asks
    /// for parity.
    hedge_after_ms: u64 = 300, "STRATA_HEDGE_AFTER_MS";
    /// How often every node's health is checked, in milliseconds.
    health_interval_ms: u64 = 1000, "STRATA_HEALTH_INTERVAL_MS";
    /// Connect timeout to a storage node, in milliseconds (cluster mode).
    connect_timeout_ms: u64 = 1000, "STRATA_CONNECT_TIMEOUT_MS";
    /// Request timeout to a storage node, in milliseconds (cluster mode).
    request_timeout_ms: u64 = 5000, "STRATA_REQUEST_TIMEOUT_MS";
    /// Idle connections to a storage node are closed after this many milliseconds.
    idle_timeout_ms: u64 = 5000, "STRATA_IDLE_TIMEOUT_MS";
    /// Concurrent requests to one storage node (cluster mode).
    node_concurrency: usize = 64, "STRATA_NODE_CONCURRENCY";
    /// A client that has not finished its TLS handshake after this many milliseconds is
    /// disconnected.
    tls_handshake_timeout_ms: u64 = 10_000, "STRATA_TLS_HANDSHAKE_TIMEOUT_MS";
    /// A connection that has not sent a complete request head this many milliseconds after it
    /// became ready for one (a new connection, or a keep-alive connection after its previous
    /// response: the keep-alive idle limit) is closed.
    header_read_timeout_ms: u64 = 10_000, "STRATA_HEADER_READ_TIMEOUT_MS";
    /// A request body that brings no data for this many milliseconds while the server waits
    /// for it is abandoned: 400 RequestTimeout, the partial upload is discarded.
    body_idle_timeout_ms: u64 = 20_000, "STRATA_BODY_IDLE_TIMEOUT_MS";
    /// Deadline, in seconds, of a call that streams no object data (listings, deletes,
    /// tagging, ACLs, bucket calls…), reading of its request document included: 503 after it.
    request_timeout_secs: u64 = 120, "STRATA_REQUEST_TIMEOUT_SECS";
    /// Open client connections at most (per listener); further ones wait in the kernel's
    /// accept queue until one closes. Keep it well below the open-file limit.
    max_connections: usize = 4096, "STRATA_MAX_CONNECTIONS";
    /// Requests with a body (uploads, request documents) in progress at most; one more is
    /// answered 503 SlowDown, which S3 clients retry. Bounds the memory of upload buffers.
    max_inflight_bodies: usize = 256, "STRATA_MAX_INFLIGHT_BODIES";
    /// Most header fields in one request (431 beyond).
    max_header_count: usize = 100, "STRATA_MAX_HEADER_COUNT";
    /// Largest request head (request line and headers) in bytes (431 beyond).
    max_header_bytes: usize = 64 * 1024, "STRATA_MAX_HEADER_BYTES";
    /// Scrub the embedded server's shard directories in the background.
    scrub_enabled: bool = true, "STRATA_SCRUB_ENABLED";
    /// Scrub read rate in bytes per second (0: unlimited).
    scrub_bytes_per_sec: u64 = ScrubConfig::default().bytes_per_sec, "STRATA_SCRUB_BYTES_PER_SEC";
    /// Pause after each scrubbed file, in milliseconds.
    scrub_file_pause_ms: u64 = ScrubConfig::default().file_pause.as_millis() as u64, "STRATA_SCRUB_FILE_PAUSE_MS";
    /// Seconds from the end of one scrub pass to the start of the next.
    scrub_interval_secs: u64 = ScrubConfig::default().pass_interval.as_secs(), "STRATA_SCRUB_INTERVAL_SECS";
    /// How often the gateway collects scrub reports from every store, in milliseconds.
    scrub_poll_ms: u64 = 10_000, "STRATA_SCRUB_POLL_MS";
    /// Serve `/_strata/metrics` without authentication.
    metrics_public: bool = false, "STRATA_METRICS_PUBLIC";
    /// Repair reads and writes at most this many shard bytes per second (0: unlimited).
    repair_bytes_per_sec: u64 = HealingConfig::default().repair_bytes_per_sec, "STRATA_REPAIR_BYTES_PER_SEC";
    /// The repair budget while clients are being served (0: repair does not slow down).
    repair_busy_bytes_per_sec: u64 = HealingConfig::default().repair_busy_bytes_per_sec, "STRATA_REPAIR_BUSY_BYTES_PER_SEC";
    /// Shard groups repaired at the same time.
    repair_parallelism: usize = HealingConfig::default().repair_parallelism, "STRATA_REPAIR_PARALLELISM";
    /// How often the repair worker looks at its queue and at node states, in milliseconds.
    repair_interval_ms: u64 = HealingConfig::default().repair_interval.as_millis() as u64, "STRATA_REPAIR_INTERVAL_MS";
    /// A node down for longer than this many seconds is lost: its shards are rebuilt elsewhere.
    node_lost_after_secs: u64 = HealingConfig::default().node_lost_after.as_secs(), "STRATA_NODE_LOST_AFTER_SECS";
    /// A write intent older than this many seconds belongs to a hung write and is collected.
    stale_intent_secs: u64 = HealingConfig::default().stale_intent_after.as_secs(), "STRATA_STALE_INTENT_SECS";
    /// Multipart uploads not completed within this many seconds are aborted.
    upload_expiry_secs: u64 = HealingConfig::default().upload_expiry.as_secs(), "STRATA_UPLOAD_EXPIRY_SECS";
    /// How often every node's shards are compared with the placement index, in seconds.
    scan_interval_secs: u64 = HealingConfig::default().scan_interval.as_secs(), "STRATA_SCAN_INTERVAL_SECS";
    /// Longest time, in seconds, a GET in progress keeps the data it reads from GC (a stuck
    /// reader cannot pin replaced data forever).
    read_lease_secs: u64 = HealingConfig::default().read_lease_max.as_secs(), "STRATA_READ_LEASE_SECS";
    /// Seconds between scheduled catalog backups onto the storage nodes (RocksDB catalog; 0: off).
    catalog_backup_interval_secs: u64 = HealingConfig::default().catalog_backup_interval.as_secs(), "STRATA_CATALOG_BACKUP_INTERVAL_SECS";
    /// Catalog backups kept on the storage nodes (older ones are deleted).
    catalog_backups_kept: usize = HealingConfig::default().catalog_backups_kept, "STRATA_CATALOG_BACKUPS_KEPT";
    /// Seconds of history the catalog keeps of replaced rows (etcd: older revisions are
    /// compacted by the leading gateway, so etcd's database stops growing with overwrites).
    catalog_history_secs: u64 = HealingConfig::default().catalog_history.as_secs(), "STRATA_CATALOG_HISTORY_SECS";
    /// SSE-S3 master key file: `<id> <base64 of 32 bytes>` per line, the last line is the active
    /// key. Unset: `sse-master.keys` in the data directory, created on first start (a shared
    /// etcd catalog instead keeps one generated key for all gateways).
    sse_master_key_file: PathBuf = PathBuf::new(), "STRATA_SSE_MASTER_KEY_FILE";
    /// Key file of the local KMS (SSE-KMS): named keys, same format. Unset: SSE-KMS is refused
    /// with 501 NotImplemented.
    sse_kms_key_file: PathBuf = PathBuf::new(), "STRATA_SSE_KMS_KEY_FILE";
    /// Accept SSE-C customer keys over plain HTTP (AWS accepts them only over HTTPS).
    sse_c_allow_http: bool = false, "STRATA_SSE_C_ALLOW_HTTP";
    /// Largest clock difference of a signed request, in seconds (S3: 15 minutes).
    max_clock_skew_secs: u64 = 15 * 60, "STRATA_MAX_CLOCK_SKEW_SECS";
    /// Longest validity of a presigned URL (`X-Amz-Expires`), in seconds (S3: 7 days).
    max_presign_expiry_secs: u64 = 7 * 24 * 3600, "STRATA_MAX_PRESIGN_EXPIRY_SECS";
    /// Gateways sharing a catalog: a gateway that has not renewed its liveness row or the
    /// background-work lease for this many milliseconds is gone, and another takes over.
    leader_lease_ms: u64 = 5000, "STRATA_LEADER_LEASE_MS";
    /// Budget of one etcd call, in milliseconds (catalog = "etcd").
    etcd_timeout_ms: u64 = 5000, "STRATA_ETCD_TIMEOUT_MS";
    /// The etcd cluster's `--max-txn-ops` (operations per transaction).
    etcd_max_txn_ops: usize = metadata::Limits::ETCD_DEFAULT.max_ops, "STRATA_ETCD_MAX_TXN_OPS";
    /// The etcd cluster's `--max-request-bytes`.
    etcd_max_request_bytes: usize = metadata::Limits::ETCD_DEFAULT.max_bytes, "STRATA_ETCD_MAX_REQUEST_BYTES";
    /// etcd requests a gateway keeps on the wire at once (1–64); catalog calls arriving
    /// meanwhile leave grouped in the next one (group commit).
    etcd_requests_in_flight: usize = metadata::EtcdConfig::new(Vec::new()).in_flight, "STRATA_ETCD_REQUESTS_IN_FLIGHT";
}
