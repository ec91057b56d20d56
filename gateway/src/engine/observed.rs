//! `ObservedStore`: a `ShardStore` decorator that counts failed calls per operation, so the
//! metrics can show errors per node without the read, write and GC paths knowing about it.
//! `Cluster::new` wraps every node's store in one.
//!
//! Invariants: behaviour is exactly the wrapped store's (same results, same errors, no extra
//! waiting); only `Err` results are counted (a call abandoned by a caller's timeout is not an
//! error of the store and is not seen here); writers returned by `create` are wrapped too, so
//! failed frame writes and commits count against the node.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use storage::format::ShardHeader;
use storage::id::ShardId;
use storage::scrub::ScrubStatus;
use storage::store::{ShardStat, ShardStore, ShardWriter, StoreHealth};
use storage::StorageError;

/// The operations counted, in the order of [`StoreErrors::snapshot`].
pub const OPERATIONS: [&str; 8] = [
    "create", "write", "commit", "read", "stat", "delete", "list", "health",
];
const CREATE: usize = 0;
const WRITE: usize = 1;
const COMMIT: usize = 2;
const READ: usize = 3;
const STAT: usize = 4;
const DELETE: usize = 5;
const LIST: usize = 6;
/// Health pings and scrub status calls: the store's control plane.
const HEALTH: usize = 7;

/// Failed calls of one store, per operation.
#[derive(Debug, Default)]
pub struct StoreErrors {
    counts: [AtomicU64; OPERATIONS.len()],
}

impl StoreErrors {
    fn count<T>(&self, operation: usize, result: &Result<T, StorageError>) {
        if result.is_err() {
            if let Some(counter) = self.counts.get(operation) {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// `(operation, failed calls)` for every operation in [`OPERATIONS`].
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        OPERATIONS
            .iter()
            .zip(self.counts.iter())
            .map(|(name, count)| (*name, count.load(Ordering::Relaxed)))
            .collect()
    }
}

/// Counts the errors of `inner` into `errors`.
pub struct ObservedStore {
    inner: Arc<dyn ShardStore>,
    errors: Arc<StoreErrors>,
}

impl ObservedStore {
    pub fn new(inner: Arc<dyn ShardStore>, errors: Arc<StoreErrors>) -> Self {
        ObservedStore { inner, errors }
    }
}

#[async_trait]
impl ShardStore for ObservedStore {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn create(
        &self,
        id: ShardId,
        header: ShardHeader,
    ) -> Result<Box<dyn ShardWriter>, StorageError> {
        let result = self.inner.create(id, header).await;
        self.errors.count(CREATE, &result);
        let writer = result?;
        Ok(Box::new(ObservedWriter {
            inner: writer,
            errors: Arc::clone(&self.errors),
        }))
    }

    async fn read_frames(
        &self,
        id: ShardId,
        first_stripe: u64,
        count: u64,
    ) -> Result<Vec<Option<Bytes>>, StorageError> {
        let result = self.inner.read_frames(id, first_stripe, count).await;
        self.errors.count(READ, &result);
        result
    }

    async fn stat(&self, id: ShardId) -> Result<ShardStat, StorageError> {
        let result = self.inner.stat(id).await;
        self.errors.count(STAT, &result);
        result
    }

    async fn delete(&self, id: ShardId) -> Result<(), StorageError> {
        let result = self.inner.delete(id).await;
        self.errors.count(DELETE, &result);
        result
    }

    async fn list(
        &self,
        after: Option<ShardId>,
        limit: usize,
    ) -> Result<Vec<ShardId>, StorageError> {
        let result = self.inner.list(after, limit).await;
        self.errors.count(LIST, &result);
        result
    }

    async fn health(&self) -> Result<StoreHealth, StorageError> {
        let result = self.inner.health().await;
        self.errors.count(HEALTH, &result);
        result
    }

    async fn scrub_status(&self) -> Result<ScrubStatus, StorageError> {
        let result = self.inner.scrub_status().await;
        self.errors.count(HEALTH, &result);
        result
    }

    async fn ack_scrub_reports(&self, up_to: u64) -> Result<(), StorageError> {
        let result = self.inner.ack_scrub_reports(up_to).await;
        self.errors.count(HEALTH, &result);
        result
    }
}

struct ObservedWriter {
    inner: Box<dyn ShardWriter>,
    errors: Arc<StoreErrors>,
}

#[async_trait]
impl ShardWriter for ObservedWriter {
    async fn write_frame(&mut self, shard_bytes: Bytes) -> Result<(), StorageError> {
        let result = self.inner.write_frame(shard_bytes).await;
        self.errors.count(WRITE, &result);
        result
    }

    async fn commit(self: Box<Self>) -> Result<(), StorageError> {
        let errors = self.errors;
        let result = self.inner.commit().await;
        errors.count(COMMIT, &result);
        result
    }

    async fn abort(self: Box<Self>) {
        self.inner.abort().await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use storage::{FaultyShardStore, LocalShardStore, ShardGroupId};

    #[tokio::test]
    async fn failed_calls_are_counted_per_operation_and_results_pass_through() {
        let dir = tempfile::tempdir().unwrap();
        let local = LocalShardStore::open(dir.path().join("d"), "d".into(), false).unwrap();
        let faulty = Arc::new(FaultyShardStore::new(Arc::new(local)));
        let errors = Arc::new(StoreErrors::default());
        let observed = ObservedStore::new(faulty.clone(), Arc::clone(&errors));
        let id = ShardId::new(ShardGroupId::new_v7(), 0);
        assert_eq!(observed.stat(id).await, Err(StorageError::NotFound));
        assert!(observed.health().await.is_ok());
        faulty.set_fail(true);
        assert!(observed.list(None, 1).await.is_err());
        assert!(observed.read_frames(id, 0, 1).await.is_err());
        let counts: std::collections::HashMap<_, _> = errors.snapshot().into_iter().collect();
        assert_eq!(counts["stat"], 1);
        assert_eq!(counts["list"], 1);
        assert_eq!(counts["read"], 1);
        assert_eq!(counts["health"], 0);
        assert_eq!(counts["create"], 0);
    }
}
