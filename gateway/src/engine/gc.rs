//! Background garbage collection (DESIGN §7, first part): deletes the shards of replaced and
//! deleted versions, aborted uploads and abandoned writes once their grace delay has passed, and
//! turns intents left behind by a crash into GC work.
//!
//! A GC item is only finished once every shard delete succeeded (deletes are idempotent); a
//! failed delete is retried later, so an unreachable store never leaks data for good.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use metadata::model::ShardedLayout;
use storage::id::{ShardGroupId, ShardId};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::{now_ms, Engine, EngineError};

/// How often the collector wakes up.
const GC_INTERVAL: Duration = Duration::from_secs(2);
/// Items handled per pass.
const GC_BATCH: usize = 256;
/// A write whose intent is older than this crashed or hung: collect its shards.
const STALE_INTENT: Duration = Duration::from_secs(6 * 3600);
/// Delay before a failed GC item is tried again.
const GC_RETRY: Duration = Duration::from_secs(60);

impl Engine {
    /// Runs the collector until `shutdown` flips to true.
    pub fn spawn_gc(
        self: &Arc<Self>,
        mut shutdown: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let engine = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(GC_INTERVAL) => {}
                    _ = shutdown.changed() => {}
                }
                if *shutdown.borrow() {
                    break;
                }
                if let Err(e) = engine.gc_pass().await {
                    warn!(error = %e, "gc pass failed");
                }
            }
        })
    }

    /// One pass: stale intents → GC queue, then every due item. Returns items finished.
    pub async fn gc_pass(&self) -> Result<usize, EngineError> {
        let cutoff = now_ms().saturating_sub(STALE_INTENT.as_millis() as u64);
        let stale = self
            .meta(move |c| c.stale_intents(cutoff, GC_BATCH))
            .await?;
        for (group, _) in stale {
            info!(group = %hex::encode(group), "collecting an abandoned write");
            self.abandon_intent(group).await;
        }
        let now = now_ms();
        let due = self.meta(move |c| c.due_gc(now, GC_BATCH)).await?;
        let mut finished = 0;
        for (key, item) in due {
            if self.delete_group(&item.layout).await {
                let bytes = collected_bytes(&item.layout);
                self.meta(move |c| c.finish_gc(&key)).await?;
                self.counters
                    .gc_groups_collected
                    .fetch_add(1, Ordering::Relaxed);
                self.counters
                    .gc_bytes_collected
                    .fetch_add(bytes, Ordering::Relaxed);
                debug!(group = %hex::encode(item.layout.group), reason = %item.reason, "collected");
                finished += 1;
            } else {
                let due = now_ms() + GC_RETRY.as_millis() as u64;
                self.meta(move |c| c.retry_gc(&key, &item, due)).await?;
                self.counters.gc_retries.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(finished)
    }

    /// Items waiting in the GC queue (due or not), counted up to `limit`.
    pub async fn gc_queue_len(&self, limit: usize) -> Result<usize, EngineError> {
        self.meta(move |c| c.due_gc(u64::MAX, limit).map(|items| items.len()))
            .await
    }

    /// Deletes every shard of a group; true when all deletes succeeded.
    async fn delete_group(&self, layout: &ShardedLayout) -> bool {
        let group = ShardGroupId(layout.group);
        let mut tasks = Vec::new();
        for (index, &node) in layout.nodes.iter().enumerate() {
            let Some(store) = self.cluster.store(node) else {
                continue;
            };
            let id = ShardId {
                group,
                index: index as u8,
            };
            let timeout = self.config.shard_timeout;
            tasks.push(tokio::spawn(async move {
                matches!(
                    tokio::time::timeout(timeout, store.delete(id)).await,
                    Ok(Ok(()))
                )
            }));
        }
        let mut all = true;
        for task in tasks {
            all &= task.await.unwrap_or(false);
        }
        all
    }
}

/// Shard bytes (frames, without headers) of the written shards of a group.
fn collected_bytes(layout: &ShardedLayout) -> u64 {
    let Ok(geometry) = storage::codec::Geometry::new(
        usize::from(layout.data_shards),
        usize::from(layout.parity_shards),
        layout.block_size as usize,
    ) else {
        return 0;
    };
    let per_shard = storage::format::file_len(0, &geometry, layout.length);
    let written = layout.nodes.len().saturating_sub(layout.missing.len()) as u64;
    per_shard.saturating_mul(written)
}
