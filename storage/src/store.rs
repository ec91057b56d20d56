//! The `ShardStore` trait: the narrow interface between the engine and one disk or node.
//!
//! Invariants every implementation keeps (checked by `conformance`): a shard becomes visible
//! atomically at `ShardWriter::commit` and never before; a frame is only returned after its
//! checksum matched (a bad frame is `None`, an erasure, never bytes); `delete` is idempotent;
//! `list` is ordered by `ShardId` and paged strictly after the cursor; scrub reports are
//! acknowledged by id, idempotently.
//! The trait is object safe and used as `Arc<dyn ShardStore>`.

use async_trait::async_trait;

pub use crate::error::StorageError;
use crate::format::ShardHeader;
use crate::id::ShardId;
use crate::scrub::report::ScrubStatus;

#[async_trait]
pub trait ShardStore: Send + Sync + 'static {
    /// Human-readable name for logs ("disk3" or "node-2@127.0.0.1:7001").
    fn name(&self) -> &str;

    /// Starts writing a shard file (to tmp/). Nothing is visible until `ShardWriter::commit`.
    /// The header must describe `id` (same group and index) and be valid.
    async fn create(
        &self,
        id: ShardId,
        header: ShardHeader,
    ) -> Result<Box<dyn ShardWriter>, StorageError>;

    /// Reads `count` frames of shard `id` starting at stripe `first_stripe`, each verified
    /// against its checksum. Ok(vec) has one entry per frame: Some(bytes) verified, None =
    /// frame corrupt/short (an erasure). Err(NotFound) when the shard file is absent;
    /// Err(Corrupt) when its header is bad; Err(InvalidArgument) when the range goes past the
    /// header's stripe count.
    async fn read_frames(
        &self,
        id: ShardId,
        first_stripe: u64,
        count: u64,
    ) -> Result<Vec<Option<bytes::Bytes>>, StorageError>;

    /// Header and file size of a committed shard.
    async fn stat(&self, id: ShardId) -> Result<ShardStat, StorageError>;

    /// Idempotent: deleting an absent shard is Ok.
    async fn delete(&self, id: ShardId) -> Result<(), StorageError>;

    /// Paged listing in ShardId order, strictly after `after`, at most `limit` ids.
    async fn list(
        &self,
        after: Option<ShardId>,
        limit: usize,
    ) -> Result<Vec<ShardId>, StorageError>;

    /// Free and total space of the underlying filesystem.
    async fn health(&self) -> Result<StoreHealth, StorageError>;

    /// Scrub progress of the store and the corrupt shards its scrubber found that no gateway
    /// has acknowledged yet (oldest first, bounded). Stores that do not scrub answer
    /// `Unavailable` (the default, so test doubles need not implement it).
    async fn scrub_status(&self) -> Result<ScrubStatus, StorageError> {
        Err(StorageError::Unavailable(format!(
            "{} does not scrub",
            self.name()
        )))
    }

    /// Forgets the scrub reports whose id is at most `up_to`, once they were handed to repair.
    /// Idempotent.
    async fn ack_scrub_reports(&self, up_to: u64) -> Result<(), StorageError> {
        let _ = up_to;
        Err(StorageError::Unavailable(format!(
            "{} does not scrub",
            self.name()
        )))
    }
}

#[async_trait]
pub trait ShardWriter: Send {
    /// Appends the next frame (stripe order); computes the frame checksum. The length must be
    /// `Geometry::shard_len` of that stripe.
    async fn write_frame(&mut self, shard_bytes: bytes::Bytes) -> Result<(), StorageError>;

    /// Checks the frame count matches the header, fsyncs the file (if enabled), renames into
    /// place, fsyncs the directory.
    async fn commit(self: Box<Self>) -> Result<(), StorageError>;

    /// Removes the temporary file. Also happens if the writer is dropped without commit (best
    /// effort).
    async fn abort(self: Box<Self>);
}

/// What `stat` reports about a committed shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardStat {
    pub header: ShardHeader,
    /// Encoded header length: the offset of the first frame.
    pub header_len: u64,
    /// Size of the shard file in bytes (shorter than expected means truncated frames).
    pub file_len: u64,
}

/// Space on the store's filesystem, and which run of the store answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreHealth {
    pub free_bytes: u64,
    pub total_bytes: u64,
    /// Random per opening of the store (a storage node's process run): a new value means the
    /// store restarted, possibly on an empty disk, even if no health check ever failed.
    /// 0: not reported (an older node).
    pub instance: u64,
}
