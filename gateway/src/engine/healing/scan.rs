//! Node scans: each node's shard list compared with the placement index (a merge of two
//! sorted streams), plus the periodic maintenance pass that runs them and aborts expired
//! multipart uploads.
//!
//! A placement row without its shard file is a lost shard (wiped or replaced disk, deleted
//! file): its group is queued for repair. A shard file without a placement row or intent is an
//! orphan (a crashed write, a late straggler, a repair that never published): it is deleted
//! once its group is older than the GC grace delay (group ids are UUIDv7, so their age is
//! known without a stat). Invariant: an orphan is re-checked against fresh metadata (intent
//! first, then placement — see `Catalog::shard_referenced`) right before it is deleted, so a
//! write or repair that published after the listing is never touched. A shard whose group is
//! older than the catalog itself (`Catalog::birth_ms`) is never deleted: it belongs to a
//! catalog that was lost or replaced (a gateway started on an empty catalog directory must not
//! wipe the cluster), and `strata admin restore-catalog` brings it back.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use metadata::model::PlacementRecord;
use storage::id::ShardId;
use storage::store::StorageError;
use tracing::{info, warn};

use super::Healer;
use crate::engine::{now_ms, EngineError};

/// Shard ids per list call and placement rows per scan call.
const SCAN_PAGE: usize = 1000;
/// Upper bound on pages per node scan (bounds the loop; 10 M shards).
const MAX_SCAN_PAGES: usize = 10_000;
/// Expired uploads aborted per maintenance pass.
const EXPIRY_BATCH: usize = 1000;

/// What one node scan found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NodeScan {
    pub listed: u64,
    pub missing: u64,
    pub orphans_removed: u64,
    /// Unreferenced shards kept because their group is older than the catalog.
    pub older_than_catalog: u64,
}

/// Milliseconds since the epoch at which a UUIDv7 group id was made (`None` for other ids).
fn group_created_ms(group: &[u8; 16]) -> Option<u64> {
    let uuid = uuid::Uuid::from_bytes(*group);
    let (secs, nanos) = uuid.get_timestamp()?.to_unix();
    Some(secs.saturating_mul(1000) + u64::from(nanos / 1_000_000))
}

/// How many of `shards` belong to groups made before `born_ms`.
fn older_than(shards: &[ShardId], born_ms: u64) -> u64 {
    shards
        .iter()
        .filter(|s| group_created_ms(&s.group.0).is_some_and(|ms| ms < born_ms))
        .count() as u64
}

impl Healer {
    /// Compares node `node`'s shards with the placement index: queues a repair for every shard
    /// placement expects but the node lacks, and (with `remove_orphans`) deletes shards nothing
    /// references that are older than the GC delay.
    pub async fn scan_node(
        &self,
        node: u32,
        remove_orphans: bool,
    ) -> Result<NodeScan, EngineError> {
        let store = self
            .engine
            .cluster
            .store(node)
            .ok_or_else(|| EngineError::invariant(format!("unknown node {node}")))?;
        let timeout = self.engine.config.shard_timeout;
        let mut scan = NodeScan::default();
        let mut listed: VecDeque<ShardId> = VecDeque::new();
        let mut list_after: Option<ShardId> = None;
        let mut list_done = false;
        let mut placed: VecDeque<([u8; 16], PlacementRecord)> = VecDeque::new();
        let mut placed_after: Option<[u8; 16]> = None;
        let mut placed_done = false;
        let mut front_matched = false;
        let mut missing: Vec<([u8; 16], u8)> = Vec::new();
        let mut orphans: Vec<ShardId> = Vec::new();
        let born = self.engine.meta(|c| c.birth_ms()).await?;
        let orphan_cutoff = now_ms().saturating_sub(self.engine.config.gc_delay.as_millis() as u64);
        // Each step consumes one listed shard or one placement row.
        for _ in 0..MAX_SCAN_PAGES.saturating_mul(SCAN_PAGE).saturating_mul(2) {
            if listed.is_empty() && !list_done {
                let page = tokio::time::timeout(timeout, store.list(list_after, SCAN_PAGE))
                    .await
                    .map_err(|_| {
                        EngineError::store(format!("listing node {node}"), StorageError::Timeout)
                    })?
                    .map_err(|e| EngineError::store(format!("listing node {node}"), e))?;
                list_done = page.len() < SCAN_PAGE;
                list_after = page.last().copied();
                scan.listed += page.len() as u64;
                listed.extend(page);
            }
            if placed.is_empty() && !placed_done {
                let after = placed_after;
                let page = self
                    .engine
                    .meta(move |c| c.placements_on_node(node, after, SCAN_PAGE))
                    .await?;
                placed_done = page.len() < SCAN_PAGE;
                placed_after = page.last().map(|(g, _)| *g);
                placed.extend(page);
            }
            let next_placed = placed.front().map(|(group, row)| (*group, row.index));
            match (listed.front().copied(), next_placed) {
                (None, None) => break,
                (Some(shard), None) => {
                    orphans.push(shard);
                    listed.pop_front();
                }
                (None, Some((group, index))) => {
                    if !front_matched {
                        missing.push((group, index));
                    }
                    placed.pop_front();
                    front_matched = false;
                }
                (Some(shard), Some((group, index))) => {
                    if shard.group.0 < group {
                        orphans.push(shard);
                        listed.pop_front();
                    } else if shard.group.0 == group {
                        if shard.index == index {
                            front_matched = true;
                        } else {
                            orphans.push(shard);
                        }
                        listed.pop_front();
                    } else {
                        if !front_matched {
                            missing.push((group, index));
                        }
                        placed.pop_front();
                        front_matched = false;
                    }
                }
            }
            // Keep memory bounded: act on what was found every page.
            if missing.len() >= SCAN_PAGE {
                scan.missing += self
                    .queue_missing(node, std::mem::take(&mut missing))
                    .await?;
            }
            if orphans.len() >= SCAN_PAGE && remove_orphans {
                let batch = std::mem::take(&mut orphans);
                scan.older_than_catalog += older_than(&batch, born);
                scan.orphans_removed += self
                    .remove_orphans(node, batch, (born, orphan_cutoff))
                    .await?;
            }
        }
        scan.missing += self.queue_missing(node, missing).await?;
        if remove_orphans {
            scan.older_than_catalog += older_than(&orphans, born);
            scan.orphans_removed += self
                .remove_orphans(node, orphans, (born, orphan_cutoff))
                .await?;
        }
        if scan.older_than_catalog > 0 {
            warn!(
                node,
                shards = scan.older_than_catalog,
                catalog_created_ms = born,
                "unreferenced shards older than this catalog are kept, not deleted: if the \
                 catalog was lost, restore it (strata admin restore-catalog)"
            );
        }
        let counters = &self.state.counters;
        counters.node_scans.fetch_add(1, Ordering::Relaxed);
        counters.last_scan_ms.store(now_ms(), Ordering::Relaxed);
        if scan.missing > 0 || scan.orphans_removed > 0 {
            info!(
                node,
                listed = scan.listed,
                missing = scan.missing,
                orphans_removed = scan.orphans_removed,
                "node scan"
            );
        }
        Ok(scan)
    }

    async fn queue_missing(
        &self,
        node: u32,
        missing: Vec<([u8; 16], u8)>,
    ) -> Result<u64, EngineError> {
        if missing.is_empty() {
            return Ok(0);
        }
        let count = missing.len() as u64;
        warn!(
            node,
            shards = count,
            "shards missing on node: queued for repair"
        );
        self.state
            .counters
            .missing_shards_found
            .fetch_add(count, Ordering::Relaxed);
        let now = now_ms();
        self.engine
            .meta(move |c| {
                for (group, index) in &missing {
                    c.queue_repair(*group, "shard missing on node", &[*index], now)?;
                }
                Ok(())
            })
            .await?;
        Ok(count)
    }

    async fn remove_orphans(
        &self,
        node: u32,
        candidates: Vec<ShardId>,
        (created_from_ms, created_before_ms): (u64, u64),
    ) -> Result<u64, EngineError> {
        let Some(store) = self.engine.cluster.store(node) else {
            return Ok(0);
        };
        let timeout = self.engine.config.shard_timeout;
        let mut removed = 0u64;
        for shard in candidates {
            // Old enough to be past the GC grace delay, and not older than the catalog.
            let old_enough = group_created_ms(&shard.group.0)
                .is_some_and(|ms| (created_from_ms..created_before_ms).contains(&ms));
            if !old_enough {
                continue;
            }
            let group = shard.group.0;
            let Some(_claim) = self.state.claim(group) else {
                continue;
            };
            if self
                .engine
                .meta(move |c| c.shard_referenced(node, &group))
                .await?
            {
                continue;
            }
            let size = match tokio::time::timeout(timeout, store.stat(shard)).await {
                Ok(Ok(stat)) => stat.file_len,
                _ => 0,
            };
            match tokio::time::timeout(timeout, store.delete(shard)).await {
                Ok(Ok(())) => {
                    removed += 1;
                    let counters = &self.state.counters;
                    counters.orphans_removed.fetch_add(1, Ordering::Relaxed);
                    counters
                        .orphan_bytes_removed
                        .fetch_add(size, Ordering::Relaxed);
                    info!(node, shard = %shard, bytes = size, "removed orphaned shard");
                }
                Ok(Err(e)) => {
                    warn!(node, shard = %shard, error = %e, "could not remove orphaned shard")
                }
                Err(_) => warn!(node, shard = %shard, "removing orphaned shard timed out"),
            }
        }
        Ok(removed)
    }

    /// The periodic maintenance pass: aborts expired multipart uploads, then scans every node
    /// that is up (lost shards → repair, orphans → deleted).
    pub async fn maintenance_pass(&self) -> Result<(), EngineError> {
        self.abort_expired_uploads().await?;
        for node in self.engine.cluster.node_ids() {
            if !self.engine.cluster.is_up(node) {
                continue;
            }
            if let Err(e) = self.scan_node(node, true).await {
                warn!(node, error = %e, "node scan failed");
            }
        }
        Ok(())
    }

    /// Aborts multipart uploads initiated longer ago than `upload_expiry`; their parts go to GC.
    pub async fn abort_expired_uploads(&self) -> Result<u64, EngineError> {
        let expiry = self.engine.config.healing.upload_expiry.as_millis() as u64;
        let cutoff = now_ms().saturating_sub(expiry);
        let gc_delay = self.engine.config.gc_delay.as_millis() as u64;
        let mut after = None;
        let mut aborted = 0u64;
        for _ in 0..MAX_SCAN_PAGES {
            let from = after.take();
            let (uploads, next) = self
                .engine
                .meta(move |c| c.expired_uploads(cutoff, from, EXPIRY_BATCH))
                .await?;
            for upload in uploads {
                let id = upload.upload_id.clone();
                let result = self
                    .engine
                    .meta(move |c| c.abort_upload(&upload, now_ms(), gc_delay))
                    .await;
                match result {
                    Ok(()) => {
                        aborted += 1;
                        info!(upload = %id, "aborted an expired multipart upload");
                    }
                    Err(EngineError::NoSuchUpload) => {}
                    Err(e) => return Err(e),
                }
            }
            match next {
                Some(key) => after = Some(key),
                None => break,
            }
        }
        self.state
            .counters
            .expired_uploads_aborted
            .fetch_add(aborted, Ordering::Relaxed);
        Ok(aborted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v7_group_ids_tell_their_age() {
        let before = now_ms();
        let group = uuid::Uuid::now_v7().into_bytes();
        let made = group_created_ms(&group).unwrap_or(0);
        assert!(
            made >= before.saturating_sub(1) && made <= now_ms() + 1,
            "{made} vs {before}"
        );
        assert_eq!(group_created_ms(&uuid::Uuid::new_v4().into_bytes()), None);
    }
}
