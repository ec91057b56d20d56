//! Strata's metadata catalog: buckets, objects, versions, multipart uploads and parts, write
//! intents, the GC and repair queues and the placement index, stored in an ordered key-value
//! store: RocksDB (embedded and single-gateway), etcd (a catalog shared by several gateways) or
//! an in-memory map (tests).
//!
//! Layering, bottom up: [`kv`] (a narrow ordered-KV trait: consistent views and commits
//! conditional on what was read), [`txn`] (optimistic read-modify-write transactions),
//! [`keys`] (the one place where row keys are encoded), [`model`] (versioned record values),
//! [`catalog`] (the operations the engine calls). The crate knows nothing of S3 wire formats;
//! it does implement listing semantics (prefix, delimiter, marker) because they depend on the
//! key encoding. Every method is synchronous; async callers use `spawn_blocking`.

pub mod catalog;
mod etcd;
#[cfg(feature = "rocksdb")]
mod group_commit;
pub mod keys;
pub mod kv;
pub mod model;
#[cfg(feature = "rocksdb")]
mod rocks;
#[cfg(not(feature = "rocksdb"))]
#[path = "rocks_disabled.rs"]
mod rocks;
pub mod txn;

pub use catalog::{Catalog, ListPage, ListQuery, UploadListPage, UploadListQuery, WriteCondition};
pub use etcd::{EtcdConfig, EtcdKvStore, EtcdTls};
pub use kv::{Check, KvStore, KvView, Limits, MemKvStore, Op, Stamp, Table, WriteBatch};
pub use model::{
    BucketId, BucketRecord, DataLayout, GcItem, IntentRecord, LayoutOwner, ObjectHead, PartLayout,
    PartRecord, PlacementRecord, RepairItem, ShardedLayout, StoredChecksum, UploadRecord,
    VersionRecord, NO_NODE,
};
pub use rocks::RocksKvStore;
pub mod testing;

/// Errors of the metadata crate. The first five are outcomes a caller maps to S3 errors; the
/// rest are failures (a record that does not decode, the database itself, a transaction that
/// kept conflicting, one too large, or a store out of reach).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetaError {
    #[error("no such bucket")]
    NoSuchBucket,
    #[error("bucket already exists")]
    BucketExists,
    #[error("bucket is not empty")]
    BucketNotEmpty,
    #[error("no such multipart upload")]
    NoSuchUpload,
    #[error("no such user")]
    NoSuchUser,
    #[error("user already exists")]
    UserExists,
    #[error("no such access key")]
    NoSuchAccessKey,
    #[error("access key already exists")]
    AccessKeyExists,
    #[error("no such policy")]
    NoSuchPolicy,
    /// A named policy still attached to a user cannot be deleted.
    #[error("policy {0} is attached to user {1}")]
    PolicyInUse(String, String),
    /// A user already has the most access keys allowed.
    #[error("user has the most access keys allowed ({0})")]
    TooManyKeys(usize),
    #[error("precondition failed")]
    PreconditionFailed,
    #[error("corrupt metadata: {0}")]
    Corrupt(String),
    #[error("metadata database error: {0}")]
    Db(String),
    /// A commit's checks failed (another writer changed what it read), after the retries a
    /// transaction is allowed.
    #[error("the metadata transaction kept conflicting with concurrent writers")]
    Conflict,
    /// A commit larger than the store accepts (a catalog bug: transactions are sized to fit).
    #[error("metadata transaction too large: {ops} operations, {bytes} bytes")]
    TooLarge { ops: usize, bytes: usize },
    /// The store cannot be reached or has no quorum. The commit's outcome is unknown (a
    /// request that timed out may still be applied once a quorum returns), as with any
    /// replicated store; callers answer 503 and let the client retry.
    #[error("metadata store unavailable: {0}")]
    Unavailable(String),
}
