//! Background garbage collection (DESIGN §7, first part): runs the catalog's cleanup jobs in
//! bounded steps (`Catalog::run_cleanup`: the part rows of completed and aborted uploads, the
//! layouts of replaced many-part versions, a deleted bucket's rows — they queue GC items);
//! deletes the shards of replaced and
//! deleted versions, aborted and expired uploads, unused part attempts, shards replaced by
//! repair and abandoned writes once their grace delay has passed; turns intents left behind by
//! a crash (any intent of a gateway known dead, or older than `stale_intent_after`) into GC
//! work; and runs the periodic maintenance pass (orphan scan, upload expiry) every
//! `scan_interval`.
//!
//! A group that a GET in progress still reads (a read lease, `leases.rs`) is not collected
//! until that read ends or its lease expires (`read_lease_secs`).
//!
//! A GC item is only finished once every shard delete succeeded (deletes are idempotent); a
//! failed delete is retried later, so an unreachable store never leaks data for good.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use metadata::model::{ShardedLayout, NO_NODE};
use storage::codec::Geometry;
use storage::id::{ShardGroupId, ShardId};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::Healer;
use crate::engine::{now_ms, EngineError};

/// How often the collector wakes up.
const GC_INTERVAL: Duration = Duration::from_secs(2);
/// Items handled per pass.
const GC_BATCH: usize = 256;
/// Catalog cleanup steps (one bounded transaction each) run per pass: on etcd a step removes
/// about 60 part rows, so a 10,000-part upload is cleaned up within a few passes.
const CLEANUP_STEPS: usize = 64;
/// The first maintenance pass runs this long after start (or after `scan_interval`, if shorter).
const FIRST_SCAN_AFTER: Duration = Duration::from_secs(60);
/// Delay before a failed GC item is tried again.
const GC_RETRY: Duration = Duration::from_secs(60);
/// Delay before a GC item whose group a read still leases is looked at again.
const LEASED_RETRY: Duration = Duration::from_secs(2);
/// How often the leader samples the catalog's revision and compacts its history (at most
/// `catalog_history`, so short histories are kept short).
const COMPACT_EVERY: Duration = Duration::from_secs(60);

impl Healer {
    /// Runs the collector until `shutdown` flips to true.
    pub fn spawn_gc(
        self: &Arc<Self>,
        mut shutdown: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let healer = self.clone();
        tokio::spawn(async move {
            let scan_interval = healer.engine.config.healing.scan_interval;
            // The first scan comes soon after start: a disk replaced while the gateway was down
            // (or a crash that left orphans) is found without waiting a whole interval.
            let mut next_scan = tokio::time::Instant::now() + scan_interval.min(FIRST_SCAN_AFTER);
            let interval = GC_INTERVAL.min(scan_interval);
            let history = healer.engine.config.healing.catalog_history;
            let mut next_compaction = tokio::time::Instant::now() + COMPACT_EVERY.min(history);
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = shutdown.changed() => {}
                }
                if *shutdown.borrow() {
                    break;
                }
                if !healer.engine.members.is_leader() {
                    // Another gateway runs background work; the scan starts afresh here
                    // if this one takes over.
                    next_scan = tokio::time::Instant::now() + scan_interval.min(FIRST_SCAN_AFTER);
                    continue;
                }
                if let Err(e) = healer.gc_pass().await {
                    warn!(error = %e, "gc pass failed");
                }
                if tokio::time::Instant::now() >= next_compaction {
                    next_compaction = tokio::time::Instant::now() + COMPACT_EVERY.min(history);
                    match healer
                        .engine
                        .meta(move |c| c.compact_history(history))
                        .await
                    {
                        Ok(Some(revision)) => debug!(revision, "catalog history compacted"),
                        Ok(None) => {}
                        Err(e) => warn!(error = %e, "catalog history compaction failed"),
                    }
                }
                if tokio::time::Instant::now() >= next_scan {
                    if let Err(e) = healer.maintenance_pass().await {
                        warn!(error = %e, "maintenance pass failed");
                    }
                    next_scan = tokio::time::Instant::now() + scan_interval;
                }
            }
        })
    }

    /// One pass: bounded steps of the catalog's cleanup jobs (part rows of completed and
    /// aborted uploads, GC of many-part versions, rows of deleted buckets: each step one small
    /// transaction that may queue GC items), stale intents → GC queue, then every due item.
    /// Returns items finished.
    ///
    /// An intent is stale when it is older than `stale_intent_after`, or its owner is known
    /// dead (`members`: a gateway whose liveness row expired or is gone; with a catalog of its
    /// own, any earlier process), so it belongs to a write that crashed midway.
    pub async fn gc_pass(&self) -> Result<usize, EngineError> {
        let steps = self.engine.meta(|c| c.run_cleanup(CLEANUP_STEPS)).await?;
        if steps > 0 {
            debug!(steps, "catalog cleanup steps");
        }
        let stale_after = self.engine.config.healing.stale_intent_after.as_millis() as u64;
        let cutoff = now_ms().saturating_sub(stale_after);
        let members = self.engine.members.clone();
        let stale = self
            .engine
            .meta(move |c| {
                members.refresh(c)?;
                let dead = |owner: &str| members.owner_dead(owner);
                let candidates = c.stale_intents(cutoff, &dead, GC_BATCH)?;
                // Liveness is judged again from rows read after the intents (an owner's row
                // predates its intents): a gateway that started during the scan is alive.
                members.refresh(c)?;
                Ok(candidates
                    .into_iter()
                    .filter(|(_, i)| i.created_ms < cutoff || members.owner_dead(&i.owner))
                    .collect::<Vec<_>>())
            })
            .await?;
        for (group, intent) in stale {
            let owner_gone = self.engine.members.owner_dead(&intent.owner);
            info!(group = %hex::encode(group), owner = %intent.owner, owner_gone, "collecting an abandoned write");
            self.engine.abandon_intent(group).await;
            self.state
                .counters
                .stale_intents_collected
                .fetch_add(1, Ordering::Relaxed);
        }
        let now = now_ms();
        let members = self.engine.members.clone();
        let (due, remote_reads) = self
            .engine
            .meta(move |c| {
                let due = c.due_gc(now, GC_BATCH)?;
                // Groups that reads on other gateways still need (nothing to read when due is
                // empty).
                let remote = if due.is_empty() {
                    Default::default()
                } else {
                    members.remote_reads(c)?
                };
                Ok((due, remote))
            })
            .await?;
        let mut finished = 0;
        for (key, item) in due {
            let group = &item.layout.group;
            if self.engine.leases.is_held(group) || remote_reads.contains(group) {
                // A GET still streams this group (the version was replaced or deleted under
                // it): try again shortly, behind the other due items.
                let due = now_ms() + LEASED_RETRY.as_millis() as u64;
                self.engine
                    .meta(move |c| c.retry_gc(&key, &item, due))
                    .await?;
                continue;
            }
            // A group being repaired or scanned waits for the next pass.
            let Some(_claim) = self.state.claim(item.layout.group) else {
                continue;
            };
            let layout = item.layout.clone();
            let live = self.engine.meta(move |c| live_shards(c, &layout)).await?;
            if self.delete_group(&item.layout, &live).await {
                let shards = item.layout.nodes.iter().filter(|&&n| n != NO_NODE).count() as u64;
                let bytes = shard_bytes(&item.layout).saturating_mul(shards);
                let group = item.layout.group;
                let reason = item.reason.clone();
                self.engine.meta(move |c| c.finish_gc(&key, &item)).await?;
                debug!(group = %hex::encode(group), reason = %reason, "collected");
                let counters = &self.state.counters;
                counters.gc_groups_collected.fetch_add(1, Ordering::Relaxed);
                counters
                    .gc_shards_deleted
                    .fetch_add(shards, Ordering::Relaxed);
                counters
                    .gc_bytes_collected
                    .fetch_add(bytes, Ordering::Relaxed);
                finished += 1;
            } else {
                self.state
                    .counters
                    .gc_failures
                    .fetch_add(1, Ordering::Relaxed);
                let due = now_ms() + GC_RETRY.as_millis() as u64;
                self.engine
                    .meta(move |c| c.retry_gc(&key, &item, due))
                    .await?;
            }
        }
        Ok(finished)
    }

    /// Deletes every shard of a group except the `live` ones (a later repair put a shard back
    /// at that very node and index); true when all deletes succeeded.
    async fn delete_group(&self, layout: &ShardedLayout, live: &[bool]) -> bool {
        let group = ShardGroupId(layout.group);
        let mut tasks = Vec::new();
        for (index, &node) in layout.nodes.iter().enumerate() {
            if node == NO_NODE || live.get(index).copied().unwrap_or(false) {
                continue;
            }
            let Some(store) = self.engine.cluster.store(node) else {
                continue;
            };
            let id = ShardId {
                group,
                index: index as u8,
            };
            let timeout = self.engine.config.shard_timeout;
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

/// Frame bytes of one shard of `layout` (what one deleted shard file frees, header aside).
fn shard_bytes(layout: &ShardedLayout) -> u64 {
    Geometry::new(
        usize::from(layout.data_shards),
        usize::from(layout.parity_shards),
        layout.block_size as usize,
    )
    .map(|g| storage::format::file_len(0, &g, layout.length))
    .unwrap_or(0)
}

/// For each slot of a GC item's layout: whether a live layout still uses that very shard.
fn live_shards(
    catalog: &metadata::Catalog,
    layout: &ShardedLayout,
) -> Result<Vec<bool>, metadata::MetaError> {
    layout
        .nodes
        .iter()
        .enumerate()
        .map(|(index, &node)| match u8::try_from(index) {
            Ok(index) if node != NO_NODE => catalog.shard_is_live(node, &layout.group, index),
            _ => Ok(false),
        })
        .collect()
}
