//! The object service: S3-agnostic buckets, objects, listing and multipart uploads on top of the
//! erasure-coded shard stores (`storage`) and the catalog (`metadata`).
//!
//! Invariants kept here:
//! - nothing becomes visible before its data is durable on at least `write_quorum` shard stores and
//!   the one metadata batch that publishes it has been written;
//! - a failed or cancelled write leaves only an intent, which turns into garbage collection;
//! - reads never hand out bytes that failed a frame checksum: such frames are erasures and are
//!   rebuilt from parity, and a stripe that cannot be rebuilt ends the stream with an error.
//!
//! Nothing here knows about HTTP, XML or S3 error codes; `gateway::s3` maps [`EngineError`].
//!
//! Callers see the engine's own view types (`view`: [`BucketInfo`], [`ObjectInfo`], [`PartInfo`],
//! [`UploadInfo`], listing pages), never the catalog's records; checksum arithmetic is the
//! shared [`crate::checksum`], so the engine computes and combines object checksums itself and
//! never calls back into the protocol layer. A bucket is resolved once per request
//! ([`Engine::bucket`]) and the [`BucketInfo`] is handed to every call that works in it.
//!
//! The request path (buckets, objects, multipart, read, write) is [`Engine`]; background work
//! (repair, rebuild, GC, scans, scrub polling) is the [`Healer`] in `healing`, which holds the
//! engine. The request path reaches healing only through `signals` and the catalog's queues.

mod buckets;
pub mod cluster;
mod copy;
pub mod healing;
mod leases;
pub mod members;
mod multipart;
mod objects;
pub mod observed;
mod placement;
mod read;
mod signals;
mod sse;
mod view;
mod write;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::Stream;
use metadata::catalog::Catalog;
use storage::codec::{ErasureCodec, Geometry};
use storage::error::StorageError;

pub use copy::CopyTarget;
pub use healing::{GcStatus, Healer, NodeScan, RepairStatus};
pub use metadata::catalog::{ListQuery, UploadListQuery, WriteCondition};
pub use multipart::{check_part_number, CompletedPart, CreateUploadRequest, StatedChecksum};
pub use objects::{ObjectRead, PutObjectRequest, NULL_VERSION};
pub use read::ByteRange;
pub use view::{
    BucketInfo, ListedObject, ObjectAccess, ObjectInfo, ObjectListing, PartInfo, StorageClass,
    UploadInfo, UploadListing,
};

/// Error carried by a request body stream (the S3 layer puts its own typed error inside).
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;
/// A request or response body: a stream of byte chunks whose last item may be an error.
pub type BodyStream = std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, BodyError>> + Send>>;

/// Why an engine operation failed. The S3 layer maps each variant to exactly one S3 error.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no such bucket")]
    NoSuchBucket,
    #[error("no such key")]
    NoSuchKey,
    #[error("no such upload")]
    NoSuchUpload,
    #[error("bucket already exists")]
    BucketExists,
    #[error("bucket not empty")]
    BucketNotEmpty,
    #[error("precondition failed")]
    PreconditionFailed,
    #[error("a concurrent conditional write won")]
    ConditionalConflict,
    #[error("content MD5 mismatch")]
    BadDigest,
    #[error("body shorter or longer than declared: {0}")]
    IncompleteBody(String),
    #[error("length required")]
    MissingContentLength,
    #[error("entity too large")]
    EntityTooLarge,
    #[error("entity too small: part {0}")]
    EntityTooSmall(u32),
    #[error("invalid part: {0}")]
    InvalidPart(String),
    #[error("part list not in ascending order")]
    InvalidPartOrder,
    /// Too few nodes or shards for the operation (`got` of the `need`ed were there).
    #[error("not enough shard stores: {what} ({got} available, {need} needed)")]
    Unavailable {
        what: String,
        need: usize,
        got: usize,
    },
    /// A shard store call failed (or timed out) and the operation cannot go on without it.
    #[error("shard store {what}: {source}")]
    Store {
        what: String,
        #[source]
        source: StorageError,
    },
    #[error("request body failed: {0}")]
    Body(BodyError),
    /// Encryption at rest refused or failed (keys, customer key, stored ciphertext).
    #[error("encryption: {0}")]
    Sse(crate::sse::SseError),
    /// The catalog is out of reach (no quorum) or too contended right now: nothing was
    /// decided by this request, the client may retry.
    #[error("metadata catalog unavailable: {0}")]
    CatalogUnavailable(#[source] metadata::MetaError),
    /// A catalog failure that is not one of the client-visible outcomes above.
    #[error("metadata: {0}")]
    Metadata(#[source] metadata::MetaError),
    /// Anything else: `context` says what was being done, `source` (if any) why it failed.
    #[error("internal error: {context}{}", .source.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    Internal {
        context: String,
        #[source]
        source: Option<BodyError>,
    },
}

impl EngineError {
    /// An internal failure of `context`, caused by `source`.
    pub fn internal(context: impl Into<String>, source: impl Into<BodyError>) -> Self {
        EngineError::Internal {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    /// A broken invariant with no underlying error.
    pub fn invariant(context: impl Into<String>) -> Self {
        EngineError::Internal {
            context: context.into(),
            source: None,
        }
    }

    /// Fewer than `need` nodes or shards (`got`) for `what`.
    pub fn unavailable(what: impl Into<String>, need: usize, got: usize) -> Self {
        EngineError::Unavailable {
            what: what.into(),
            need,
            got,
        }
    }

    /// A failed shard store call: `what` names the store and the call.
    pub fn store(what: impl Into<String>, source: StorageError) -> Self {
        EngineError::Store {
            what: what.into(),
            source,
        }
    }
}

impl From<metadata::MetaError> for EngineError {
    fn from(e: metadata::MetaError) -> Self {
        use metadata::MetaError as M;
        match e {
            M::NoSuchBucket => EngineError::NoSuchBucket,
            M::BucketExists => EngineError::BucketExists,
            M::BucketNotEmpty => EngineError::BucketNotEmpty,
            M::NoSuchUpload => EngineError::NoSuchUpload,
            M::PreconditionFailed => EngineError::PreconditionFailed,
            e @ (M::Unavailable(_) | M::Conflict) => EngineError::CatalogUnavailable(e),
            other => EngineError::Metadata(other),
        }
    }
}

/// Tunables of the object service (validated by `config`).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub geometry: Geometry,
    /// Objects and parts at most this long live inside their metadata record.
    pub inline_threshold: usize,
    /// Durable shard acknowledgements needed before a write is committed.
    pub write_quorum: usize,
    /// How long replaced data stays readable for in-flight GETs before GC removes it.
    pub gc_delay: Duration,
    /// Per shard-store call budget.
    pub shard_timeout: Duration,
    /// A read whose data shards have not all answered by then also asks for parity.
    pub hedge_after: Duration,
    /// Region reported by GetBucketLocation and stored with new buckets.
    pub region: String,
    /// Repair and garbage-collection tunables.
    pub healing: HealingConfig,
    /// Keys of encryption at rest (SSE-S3 master keys, local KMS keys).
    pub sse: crate::sse::SseKeys,
}

/// Tunables of repair, GC and the orphan scan (validated by `config`).
#[derive(Debug, Clone)]
pub struct HealingConfig {
    /// Repair reads and writes at most this many shard bytes per second (0: unlimited).
    pub repair_bytes_per_sec: u64,
    /// The repair budget while clients are being served (a request started within the last
    /// second); at most `repair_bytes_per_sec`. 0: repair does not slow down for clients.
    pub repair_busy_bytes_per_sec: u64,
    /// Shard groups repaired at the same time.
    pub repair_parallelism: usize,
    /// How often the repair worker looks at its queue and at node states.
    pub repair_interval: Duration,
    /// A node down for longer than this is lost: its shards are rebuilt elsewhere.
    pub node_lost_after: Duration,
    /// A write intent older than this belongs to a hung write: its shards are collected.
    /// (Intents of an earlier gateway process are collected at once.)
    pub stale_intent_after: Duration,
    /// Multipart uploads not completed within this are aborted.
    pub upload_expiry: Duration,
    /// How often every node's shard list is compared with the placement index (orphans are
    /// deleted, lost shards queued for repair) and expired uploads are aborted.
    pub scan_interval: Duration,
    /// A read keeps the shard groups it reads from GC for at most this long (a stuck reader
    /// cannot pin replaced data forever).
    pub read_lease_max: Duration,
    /// Time between scheduled catalog backups onto the storage nodes (RocksDB catalog only;
    /// zero: no schedule, `POST /_strata/admin/backup` still works).
    pub catalog_backup_interval: Duration,
    /// Catalog backups kept on the storage nodes; older ones are deleted (at least 1).
    pub catalog_backups_kept: usize,
    /// History the catalog keeps of replaced rows (etcd: revisions older than this are
    /// compacted by the leader; a catalog transaction lasts seconds).
    pub catalog_history: Duration,
}

impl Default for HealingConfig {
    fn default() -> Self {
        HealingConfig {
            repair_bytes_per_sec: 64 * 1024 * 1024,
            repair_busy_bytes_per_sec: 16 * 1024 * 1024,
            repair_parallelism: 2,
            repair_interval: Duration::from_secs(1),
            node_lost_after: Duration::from_secs(600),
            stale_intent_after: Duration::from_secs(6 * 3600),
            upload_expiry: Duration::from_secs(7 * 24 * 3600),
            scan_interval: Duration::from_secs(3600),
            read_lease_max: Duration::from_secs(3600),
            catalog_backup_interval: Duration::from_secs(3600),
            catalog_backups_kept: 3,
            catalog_history: Duration::from_secs(300),
        }
    }
}

/// Largest single PUT or part (S3's limit).
pub const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// Smallest non-final multipart part (S3's limit).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Highest multipart part number (S3's limit).
pub const MAX_PART_NUMBER: u32 = 10_000;

/// The object service shared by every request handler.
pub struct Engine {
    catalog: Catalog,
    cluster: Arc<cluster::Cluster>,
    codec: ErasureCodec,
    config: EngineConfig,
    /// This gateway among those sharing the catalog: the owner id of its intents, and
    /// whether it leads background work.
    members: Arc<members::Membership>,
    /// What the request path tells the [`Healer`].
    signals: signals::HealingSignals,
    /// Shard groups that reads in progress keep alive (GC skips them).
    leases: Arc<leases::ReadLeases>,
}

impl Engine {
    /// Builds the engine over a catalog no other process uses and the cluster of shard stores.
    pub fn new(
        catalog: Catalog,
        cluster: Arc<cluster::Cluster>,
        config: EngineConfig,
    ) -> Result<Arc<Engine>, EngineError> {
        Engine::with_members(catalog, cluster, config, members::Membership::exclusive())
    }

    /// Builds the engine as the member `members` of the gateways sharing `catalog`.
    pub fn with_members(
        catalog: Catalog,
        cluster: Arc<cluster::Cluster>,
        config: EngineConfig,
        members: Arc<members::Membership>,
    ) -> Result<Arc<Engine>, EngineError> {
        let codec =
            ErasureCodec::new(config.geometry).map_err(|e| EngineError::internal("codec", e))?;
        if cluster.len() < config.geometry.total_shards() {
            return Err(EngineError::invariant(format!(
                "{} nodes for {} shards per stripe",
                cluster.len(),
                config.geometry.total_shards()
            )));
        }
        // A new catalog records when it was created before anything is written through it
        // (the orphan scan never deletes shards older than their catalog).
        catalog.birth_ms()?;
        let leases = leases::ReadLeases::new(config.healing.read_lease_max);
        Ok(Arc::new(Engine {
            catalog,
            cluster,
            codec,
            config,
            members,
            signals: signals::HealingSignals::default(),
            leases,
        }))
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Records that a client request started: repair runs at its busy budget for the next
    /// second (the S3 layer calls this for every request it serves).
    pub fn note_foreground(&self) {
        self.signals.note_foreground();
    }

    /// True when enough nodes are up to accept writes and the catalog answers.
    pub fn ready(&self) -> bool {
        self.cluster.up_count() >= self.config.write_quorum && self.members.catalog_reachable()
    }

    pub fn cluster(&self) -> &Arc<cluster::Cluster> {
        &self.cluster
    }

    /// This gateway's membership (id, leadership, liveness of the others).
    pub fn members(&self) -> &Arc<members::Membership> {
        &self.members
    }

    /// Runs this gateway's membership (liveness, the background lease, published read leases)
    /// until `shutdown`; a no-op loop for a catalog of its own.
    pub fn spawn_membership(
        &self,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let leases = self.leases.clone();
        self.members.spawn(
            self.catalog.clone(),
            Box::new(move || leases.held_groups()),
            shutdown,
        )
    }

    /// The catalog, for the membership loop and the admin API.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Runs a blocking catalog call off the reactor.
    async fn meta<T, F>(&self, f: F) -> Result<T, EngineError>
    where
        T: Send + 'static,
        F: FnOnce(&Catalog) -> Result<T, metadata::MetaError> + Send + 'static,
    {
        let catalog = self.catalog.clone();
        tokio::task::spawn_blocking(move || f(&catalog))
            .await
            .map_err(|e| EngineError::internal("metadata task", e))?
            .map_err(EngineError::from)
    }
}

/// Milliseconds since the Unix epoch, the time unit of every record.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
