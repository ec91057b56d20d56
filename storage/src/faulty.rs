//! `FaultyShardStore`: a fault-injecting wrapper around any `ShardStore`, for tests.
//!
//! Faults are switched at runtime through `&self` methods and apply to every operation that
//! starts afterwards (including frames written through writers created earlier):
//! failing (`Unavailable`), delaying, hanging (sleeping ~an hour, so callers' timeouts fire) and
//! corrupting reads (every returned frame becomes `None`, as if its checksum failed).
//! With no fault set it behaves exactly like the wrapped store.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::StorageError;
use crate::format::ShardHeader;
use crate::id::ShardId;
use crate::scrub::ScrubStatus;
use crate::store::{ShardStat, ShardStore, ShardWriter, StoreHealth};

/// How long a "hanging" operation sleeps.
const HANG: Duration = Duration::from_secs(3600);

#[derive(Debug, Default)]
struct Faults {
    fail: AtomicBool,
    hang: AtomicBool,
    corrupt_reads: AtomicBool,
    delay_micros: AtomicU64,
    read_calls: AtomicU64,
    frames_written: AtomicU64,
    /// Added to the inner store's health `instance`: a simulated restart.
    restarts: AtomicU64,
}

impl Faults {
    /// Applies delay/hang/fail before an operation.
    async fn before(&self, operation: &str) -> Result<(), StorageError> {
        let delay = self.delay_micros.load(Ordering::Relaxed);
        if delay > 0 {
            tokio::time::sleep(Duration::from_micros(delay)).await;
        }
        if self.hang.load(Ordering::Relaxed) {
            tokio::time::sleep(HANG).await;
        }
        if self.fail.load(Ordering::Relaxed) {
            return Err(StorageError::Unavailable(format!(
                "injected fault in {operation}"
            )));
        }
        Ok(())
    }
}

/// Wraps a store and injects faults on demand. Cheap to clone; clones share the fault switches.
#[derive(Clone)]
pub struct FaultyShardStore {
    inner: Arc<dyn ShardStore>,
    faults: Arc<Faults>,
}

impl FaultyShardStore {
    pub fn new(inner: Arc<dyn ShardStore>) -> Self {
        FaultyShardStore {
            inner,
            faults: Arc::new(Faults::default()),
        }
    }

    /// Every operation (and every frame write) fails with `Unavailable`.
    pub fn set_fail(&self, fail: bool) {
        self.faults.fail.store(fail, Ordering::Relaxed);
    }

    /// Every operation first sleeps `delay` (zero turns it off).
    pub fn set_delay(&self, delay: Duration) {
        let micros = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.faults.delay_micros.store(micros, Ordering::Relaxed);
    }

    /// Every operation sleeps about an hour before doing anything.
    pub fn set_hang(&self, hang: bool) {
        self.faults.hang.store(hang, Ordering::Relaxed);
    }

    /// `read_frames` returns `None` for every frame (checksum failures).
    pub fn set_corrupt_reads(&self, corrupt: bool) {
        self.faults.corrupt_reads.store(corrupt, Ordering::Relaxed);
    }

    /// Turns every fault off.
    /// Makes `health` report a new instance, as a store restarted in place would.
    pub fn restart(&self) {
        self.faults.restarts.fetch_add(1, Ordering::Relaxed);
    }

    pub fn clear(&self) {
        self.set_fail(false);
        self.set_hang(false);
        self.set_corrupt_reads(false);
        self.set_delay(Duration::ZERO);
    }

    /// How many `read_frames` calls reached this store (to assert which shards were read).
    pub fn read_calls(&self) -> u64 {
        self.faults.read_calls.load(Ordering::Relaxed)
    }

    /// How many frames were successfully written through this store's writers.
    pub fn frames_written(&self) -> u64 {
        self.faults.frames_written.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl ShardStore for FaultyShardStore {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn create(
        &self,
        id: ShardId,
        header: ShardHeader,
    ) -> Result<Box<dyn ShardWriter>, StorageError> {
        self.faults.before("create").await?;
        let writer = self.inner.create(id, header).await?;
        Ok(Box::new(FaultyShardWriter {
            inner: writer,
            faults: Arc::clone(&self.faults),
        }))
    }

    async fn read_frames(
        &self,
        id: ShardId,
        first_stripe: u64,
        count: u64,
    ) -> Result<Vec<Option<Bytes>>, StorageError> {
        self.faults.read_calls.fetch_add(1, Ordering::Relaxed);
        self.faults.before("read_frames").await?;
        let mut frames = self.inner.read_frames(id, first_stripe, count).await?;
        if self.faults.corrupt_reads.load(Ordering::Relaxed) {
            frames.iter_mut().for_each(|frame| *frame = None);
        }
        Ok(frames)
    }

    async fn stat(&self, id: ShardId) -> Result<ShardStat, StorageError> {
        self.faults.before("stat").await?;
        self.inner.stat(id).await
    }

    async fn delete(&self, id: ShardId) -> Result<(), StorageError> {
        self.faults.before("delete").await?;
        self.inner.delete(id).await
    }

    async fn list(
        &self,
        after: Option<ShardId>,
        limit: usize,
    ) -> Result<Vec<ShardId>, StorageError> {
        self.faults.before("list").await?;
        self.inner.list(after, limit).await
    }

    async fn health(&self) -> Result<StoreHealth, StorageError> {
        self.faults.before("health").await?;
        let mut health = self.inner.health().await?;
        health.instance = health
            .instance
            .wrapping_add(self.faults.restarts.load(Ordering::Relaxed));
        Ok(health)
    }

    async fn scrub_status(&self) -> Result<ScrubStatus, StorageError> {
        self.faults.before("scrub_status").await?;
        self.inner.scrub_status().await
    }

    async fn ack_scrub_reports(&self, up_to: u64) -> Result<(), StorageError> {
        self.faults.before("ack_scrub_reports").await?;
        self.inner.ack_scrub_reports(up_to).await
    }
}

struct FaultyShardWriter {
    inner: Box<dyn ShardWriter>,
    faults: Arc<Faults>,
}

#[async_trait]
impl ShardWriter for FaultyShardWriter {
    async fn write_frame(&mut self, shard_bytes: Bytes) -> Result<(), StorageError> {
        self.faults.before("write_frame").await?;
        self.inner.write_frame(shard_bytes).await?;
        self.faults.frames_written.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<(), StorageError> {
        self.faults.before("commit").await?;
        self.inner.commit().await
    }

    async fn abort(self: Box<Self>) {
        self.inner.abort().await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::conformance::{sample_header, write_shard};
    use crate::local::LocalShardStore;
    use crate::ShardGroupId;

    async fn faulty() -> (tempfile::TempDir, FaultyShardStore) {
        let dir = tempfile::tempdir().unwrap();
        let local = LocalShardStore::open(dir.path().join("d"), "d".into(), false).unwrap();
        (dir, FaultyShardStore::new(Arc::new(local)))
    }

    #[tokio::test]
    async fn fail_and_corrupt_switch_at_runtime() {
        let (_dir, store) = faulty().await;
        let id = ShardId::new(ShardGroupId::new_v7(), 0);
        write_shard(&store, id, 3000).await;
        assert_eq!(store.frames_written(), 3);

        store.set_fail(true);
        assert!(matches!(
            store.read_frames(id, 0, 1).await,
            Err(StorageError::Unavailable(_))
        ));
        assert!(store.stat(id).await.is_err());
        assert!(store.list(None, 10).await.is_err());
        assert!(store.health().await.is_err());
        store.set_fail(false);

        store.set_corrupt_reads(true);
        assert_eq!(store.read_frames(id, 0, 3).await.unwrap(), vec![None; 3]);
        store.clear();
        assert!(store
            .read_frames(id, 0, 3)
            .await
            .unwrap()
            .iter()
            .all(Option::is_some));
        assert_eq!(store.read_calls(), 3);
    }

    #[tokio::test]
    async fn failing_mid_write_fails_the_writer() {
        let (_dir, store) = faulty().await;
        let id = ShardId::new(ShardGroupId::new_v7(), 1);
        let header = sample_header(id, 3000);
        let mut writer = store.create(id, header).await.unwrap();
        writer
            .write_frame(Bytes::from(vec![1u8; 256]))
            .await
            .unwrap();
        store.set_fail(true);
        assert!(writer
            .write_frame(Bytes::from(vec![1u8; 256]))
            .await
            .is_err());
        writer.abort().await;
        store.set_fail(false);
        assert_eq!(store.stat(id).await, Err(StorageError::NotFound));
    }

    #[tokio::test(start_paused = true)]
    async fn hang_and_delay_are_observable_by_timeouts() {
        let (_dir, store) = faulty().await;
        store.set_hang(true);
        let hung = tokio::time::timeout(Duration::from_secs(5), store.list(None, 1)).await;
        assert!(hung.is_err(), "a hanging store must not answer");
        store.set_hang(false);
        store.set_delay(Duration::from_secs(2));
        let slow = tokio::time::timeout(Duration::from_secs(1), store.list(None, 1)).await;
        assert!(slow.is_err());
        let answered = tokio::time::timeout(Duration::from_secs(3), store.list(None, 1)).await;
        assert!(answered.is_ok());
    }
}
