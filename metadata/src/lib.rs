//! Strata's metadata catalog: buckets, objects, versions, multipart uploads and parts, write
//! intents, the GC and repair queues and the placement index, stored in an ordered key-value store (RocksDB in production, an
//! in-memory map in tests).
//!
//! Layering, bottom up: [`kv`] (a narrow ordered-KV trait with atomic write batches),
//! [`keys`] (the one place where row keys are encoded), [`model`] (versioned record values),
//! [`catalog`] (the operations the engine calls). The crate knows nothing of S3 wire formats;
//! it does implement listing semantics (prefix, delimiter, marker) because they depend on the
//! key encoding. Every method is synchronous; async callers use `spawn_blocking`.

pub mod catalog;
mod group_commit;
pub mod keys;
pub mod kv;
pub mod model;
mod rocks;

pub use catalog::{Catalog, ListPage, ListQuery, UploadListPage, UploadListQuery, WriteCondition};
pub use kv::{KvStore, MemKvStore, Op, Table, WriteBatch};
pub use model::{
    BucketId, BucketRecord, DataLayout, GcItem, IntentRecord, LayoutOwner, ObjectHead, PartLayout,
    PartRecord, PlacementRecord, RepairItem, ShardedLayout, StoredChecksum, UploadRecord,
    VersionRecord, NO_NODE,
};
pub use rocks::RocksKvStore;

/// Errors of the metadata crate. The first five are outcomes a caller maps to S3 errors; the
/// last two are failures (a record that does not decode, or the database itself).
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
    #[error("precondition failed")]
    PreconditionFailed,
    #[error("corrupt metadata: {0}")]
    Corrupt(String),
    #[error("metadata database error: {0}")]
    Db(String),
}
