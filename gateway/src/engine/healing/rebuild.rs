//! Rebuilding one shard group (the body of a repair attempt).
//!
//! Steps: find the group's live layout through the placement index; survey every shard (stat
//! on nodes that are up; shards on lost nodes, missing or reported bad are to be rebuilt);
//! pick a target per shard — its own node when that node is up, else an up node that holds no
//! shard of the group; record a repair intent for the targets that are not already covered by
//! a placement row; stream every stripe from the good shards (frames verified by the store),
//! decode, re-encode, and write the rebuilt shards through the normal shard writers (fsync,
//! rename); then swap the layout in one catalog batch. If the object was overwritten or
//! deleted meanwhile the swap does nothing and the intent turns the rebuilt shards into GC.
//!
//! Invariants: nothing a reader can see changes before the swap; a frame that fails its
//! checksum is never copied (it is an erasure and its shard is reported for another round).

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use metadata::catalog::SwapOutcome;
use metadata::model::{IntentRecord, RepairItem, ShardedLayout, NO_NODE};
use storage::codec::{ErasureCodec, Geometry};
use storage::format::{self, ShardHeader};
use storage::id::{ShardGroupId, ShardId};
use storage::store::{ShardStore, StorageError};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::repair::Attempt;
use super::Healer;
use crate::engine::placement::place_group;
use crate::engine::write::{run_shard_writer, WriterMessage};
use crate::engine::{now_ms, EngineError};

/// Bytes of stripes read per batch while rebuilding.
const BATCH_BYTES: usize = 4 * 1024 * 1024;

/// What the survey of a group found.
struct Survey {
    /// Indexes to rebuild.
    rebuild: BTreeSet<u8>,
    /// Indexes whose shard looks complete on an up node (read from these).
    sources: Vec<u8>,
    /// The header of a good shard (the rebuilt ones copy it, with their own index).
    template: Option<ShardHeader>,
}

impl Healer {
    /// One repair attempt of the queue item `key`.
    pub(crate) async fn repair_group(
        &self,
        key: &[u8],
        item: &RepairItem,
    ) -> Result<Attempt, EngineError> {
        let group = item.group;
        let nodes = self.engine.cluster.node_ids();
        let found = self
            .engine
            .meta(move |c| c.find_group_layout(&group, &nodes))
            .await?;
        let Some((owner, layout)) = found else {
            return Ok(Attempt::Gone);
        };
        let geometry = Geometry::new(
            usize::from(layout.data_shards),
            usize::from(layout.parity_shards),
            layout.block_size as usize,
        )
        .map_err(|e| EngineError::internal("layout geometry", e))?;
        let total = geometry.total_shards();
        if layout.nodes.len() != total {
            return Err(EngineError::invariant(format!(
                "layout of {} lists {} nodes for {total} shards",
                hex::encode(group),
                layout.nodes.len()
            )));
        }
        let survey = self.survey(&layout, &geometry, item).await;
        if survey.rebuild.is_empty() {
            return Ok(Attempt::Healthy);
        }
        let Some(template) = survey.template.clone() else {
            return Err(EngineError::unavailable(
                format!("readable shards of group {}", hex::encode(group)),
                geometry.data_shards,
                0,
            ));
        };
        if survey.sources.len() < geometry.data_shards {
            return Err(EngineError::unavailable(
                format!("readable shards of {total}"),
                geometry.data_shards,
                survey.sources.len(),
            ));
        }
        let (targets, deferred) = self.choose_targets(&layout, &survey.rebuild).await?;
        if targets.is_empty() {
            return Err(EngineError::unavailable(
                format!(
                    "nodes to take shards {:?} of group {}",
                    survey.rebuild,
                    hex::encode(group)
                ),
                survey.rebuild.len(),
                0,
            ));
        }

        // Targets not covered by a placement row get an intent first: if this attempt dies,
        // the intent becomes GC work instead of leaving orphans.
        let mut partial = layout.clone();
        partial.nodes = vec![NO_NODE; total];
        partial.missing = Vec::new();
        for &(index, node) in &targets {
            let slot = usize::from(index);
            if layout.nodes.get(slot) != Some(&node) || layout.missing.contains(&index) {
                if let Some(s) = partial.nodes.get_mut(slot) {
                    *s = node;
                }
            }
        }
        let intent = partial.nodes.iter().any(|&n| n != NO_NODE);
        if intent {
            let record = IntentRecord {
                created_ms: now_ms(),
                layout: partial,
                owner: self.engine.members.id().to_string(),
            };
            self.engine
                .meta(move |c| c.put_intent(group, &record))
                .await?;
        }

        let started = Instant::now();
        let streamed = self
            .rebuild_shards(&layout, &geometry, &template, &survey.sources, &targets)
            .await;
        let (rebuilt, extra_bad, bytes_written) = match streamed {
            Ok(done) => done,
            Err(e) => {
                if intent {
                    self.engine.abandon_intent(group).await;
                }
                return Err(e);
            }
        };
        if rebuilt.is_empty() {
            if intent {
                self.engine.abandon_intent(group).await;
            }
            return Err(EngineError::unavailable(
                "rebuilt shards written",
                targets.len(),
                0,
            ));
        }
        let complete = rebuilt.len() == targets.len() && deferred.is_empty();
        let rebuilt_indexes: Vec<u8> = rebuilt.iter().map(|&(i, _)| i).collect();
        let mut handled = item.shards.clone();
        handled.extend_from_slice(&rebuilt_indexes);
        let swap_owner = owner.clone();
        let swap_rebuilt = rebuilt.clone();
        let queue_key = complete.then(|| key.to_vec());
        let swap_handled = handled.clone();
        let gc_delay = self.engine.config.gc_delay.as_millis() as u64;
        let outcome = self
            .engine
            .meta(move |c| {
                c.swap_repaired(
                    &swap_owner,
                    group,
                    &swap_rebuilt,
                    intent,
                    queue_key.as_deref(),
                    &swap_handled,
                    now_ms(),
                    gc_delay,
                )
            })
            .await;
        match outcome {
            Ok(SwapOutcome::Swapped(new_layout)) => {
                let counters = &self.state.counters;
                counters.groups_repaired.fetch_add(1, Ordering::Relaxed);
                counters
                    .shards_rebuilt
                    .fetch_add(rebuilt.len() as u64, Ordering::Relaxed);
                counters
                    .bytes_rebuilt
                    .fetch_add(bytes_written, Ordering::Relaxed);
                counters.last_repair_ms.store(now_ms(), Ordering::Relaxed);
                info!(
                    group = %hex::encode(group),
                    reason = %item.reason,
                    rebuilt = ?rebuilt,
                    nodes = ?new_layout.nodes,
                    bytes = bytes_written,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "repaired shard group"
                );
                if complete && extra_bad.is_empty() {
                    return Ok(Attempt::Repaired);
                }
                let mut extra = extra_bad;
                extra.extend(deferred);
                extra.extend(
                    targets
                        .iter()
                        .map(|&(i, _)| i)
                        .filter(|i| !rebuilt_indexes.contains(i)),
                );
                if complete {
                    // The item ended with the swap; the shards found bad meanwhile start a new one.
                    let now = now_ms();
                    self.engine
                        .meta(move |c| c.queue_repair(group, "found during repair", &extra, now))
                        .await?;
                    return Ok(Attempt::Repaired);
                }
                Ok(Attempt::Retry {
                    handled: rebuilt_indexes,
                    extra,
                })
            }
            Ok(SwapOutcome::Gone) => {
                if intent {
                    self.engine.abandon_intent(group).await;
                }
                Ok(Attempt::Retry {
                    handled: Vec::new(),
                    extra: Vec::new(),
                })
            }
            Ok(SwapOutcome::Conflict) => {
                if intent {
                    self.engine.abandon_intent(group).await;
                }
                Err(EngineError::unavailable(
                    "target nodes free of a replaced shard of the group",
                    targets.len(),
                    0,
                ))
            }
            Err(e) => {
                if intent {
                    self.engine.abandon_intent(group).await;
                }
                Err(e)
            }
        }
    }

    /// Which shards need rebuilding and which can be read.
    async fn survey(
        &self,
        layout: &ShardedLayout,
        geometry: &Geometry,
        item: &RepairItem,
    ) -> Survey {
        let total = geometry.total_shards();
        let mut rebuild: BTreeSet<u8> = layout
            .missing
            .iter()
            .chain(item.shards.iter())
            .copied()
            .filter(|&i| usize::from(i) < total)
            .collect();
        let group = ShardGroupId(layout.group);
        let timeout = self.engine.config.shard_timeout;
        let mut stats = Vec::new();
        for (slot, &node) in layout.nodes.iter().enumerate() {
            let Ok(index) = u8::try_from(slot) else { break };
            if rebuild.contains(&index) {
                continue;
            }
            if node == NO_NODE || self.node_lost(node) {
                rebuild.insert(index);
                continue;
            }
            if !self.engine.cluster.is_up(node) {
                continue;
            }
            let Some(store) = self.engine.cluster.store(node) else {
                rebuild.insert(index);
                continue;
            };
            let id = ShardId { group, index };
            stats.push(tokio::spawn(async move {
                (index, tokio::time::timeout(timeout, store.stat(id)).await)
            }));
        }
        let mut sources = Vec::new();
        let mut template = None;
        for task in stats {
            let Ok((index, result)) = task.await else {
                continue;
            };
            match result {
                Ok(Ok(stat)) => {
                    let expected = stat
                        .header
                        .geometry()
                        .map(|g| format::file_len(stat.header_len, &g, stat.header.part_length));
                    let consistent = stat.header.part_length == layout.length
                        && stat.header.block_size == layout.block_size
                        && expected.as_ref().is_ok_and(|&len| len == stat.file_len);
                    if consistent {
                        sources.push(index);
                        template.get_or_insert(stat.header);
                    } else {
                        rebuild.insert(index);
                    }
                }
                Ok(Err(StorageError::NotFound | StorageError::Corrupt(_))) => {
                    rebuild.insert(index);
                }
                // Unreachable or slow: neither a source nor proven bad.
                Ok(Err(_)) | Err(_) => {}
            }
        }
        sources.sort_unstable();
        Survey {
            rebuild,
            sources,
            template,
        }
    }

    /// A target node per shard to rebuild: its own node when up (and not lost), else an up node
    /// holding no shard of the group (placement order). Returns (targets, indexes with none).
    async fn choose_targets(
        &self,
        layout: &ShardedLayout,
        rebuild: &BTreeSet<u8>,
    ) -> Result<(Vec<(u8, u32)>, Vec<u8>), EngineError> {
        let group = layout.group;
        let nodes = self.engine.cluster.node_ids();
        // Nodes with any placement row of the group (live or waiting for GC) are not free.
        let occupied: Vec<u32> = self
            .engine
            .meta(move |c| {
                let mut occupied = Vec::new();
                for node in nodes {
                    if c.placement(node, &group)?.is_some() {
                        occupied.push(node);
                    }
                }
                Ok(occupied)
            })
            .await?;
        let mut taken: Vec<u32> = layout.nodes.clone();
        taken.extend(occupied);
        let mut targets = Vec::new();
        let mut deferred = Vec::new();
        for &index in rebuild {
            let own = layout
                .nodes
                .get(usize::from(index))
                .copied()
                .unwrap_or(NO_NODE);
            if own != NO_NODE && self.engine.cluster.is_up(own) && !self.node_lost(own) {
                targets.push((index, own));
                continue;
            }
            let candidates: Vec<_> = self
                .engine
                .cluster
                .up_candidates()
                .into_iter()
                .filter(|c| !taken.contains(&c.id) && !self.node_lost(c.id))
                .collect();
            match place_group(&group, &candidates, 1).and_then(|v| v.first().copied()) {
                Some(node) => {
                    taken.push(node);
                    targets.push((index, node));
                }
                None => deferred.push(index),
            }
        }
        Ok((targets, deferred))
    }

    /// Streams the group from `sources`, rebuilding every target shard. Returns the targets
    /// written durably, source indexes found bad on the way, and the bytes written.
    async fn rebuild_shards(
        &self,
        layout: &ShardedLayout,
        geometry: &Geometry,
        template: &ShardHeader,
        sources: &[u8],
        targets: &[(u8, u32)],
    ) -> Result<(Vec<(u8, u32)>, Vec<u8>, u64), EngineError> {
        let group = ShardGroupId(layout.group);
        let codec = if *geometry == self.engine.config.geometry {
            self.engine.codec.clone()
        } else {
            ErasureCodec::new(*geometry).map_err(|e| EngineError::internal("codec", e))?
        };
        let timeout = self.engine.config.shard_timeout;
        let mut senders = Vec::new();
        let mut writers = Vec::new();
        for &(index, node) in targets {
            let store = self
                .engine
                .cluster
                .store(node)
                .ok_or_else(|| EngineError::invariant(format!("unknown node {node}")))?;
            let mut header = template.clone();
            header.index = index;
            let (tx, rx) = mpsc::channel(4);
            senders.push(Some(tx));
            let id = ShardId { group, index };
            writers.push(tokio::spawn(run_shard_writer(
                store, id, header, rx, timeout,
            )));
        }
        let stores: Vec<(u8, Arc<dyn ShardStore>)> = sources
            .iter()
            .filter_map(|&i| {
                let node = *layout.nodes.get(usize::from(i))?;
                Some((i, self.engine.cluster.store(node)?))
            })
            .collect();
        let mut extra_bad: BTreeSet<u8> = BTreeSet::new();
        let mut bytes_written = 0u64;
        let stripes = geometry.stripe_count(layout.length);
        let batch = (BATCH_BYTES / geometry.block_size).max(1) as u64;
        let mut first = 0u64;
        while first < stripes {
            let count = batch.min(stripes - first);
            let reads = stores.iter().map(|(index, store)| {
                let store = store.clone();
                let id = ShardId {
                    group,
                    index: *index,
                };
                async move {
                    let result =
                        tokio::time::timeout(timeout, store.read_frames(id, first, count)).await;
                    (id.index, result)
                }
            });
            let mut columns: Vec<Option<Vec<Option<Bytes>>>> = vec![None; geometry.total_shards()];
            let mut read_bytes = 0u64;
            for (index, result) in futures::future::join_all(reads).await {
                match result {
                    Ok(Ok(frames)) => {
                        let checked: Vec<Option<Bytes>> = frames
                            .into_iter()
                            .enumerate()
                            .map(|(s, frame)| {
                                let want = geometry.shard_len(layout.length, first + s as u64);
                                frame.filter(|f| f.len() == want)
                            })
                            .collect();
                        if checked.iter().any(Option::is_none) || checked.len() as u64 != count {
                            extra_bad.insert(index);
                        }
                        read_bytes += checked
                            .iter()
                            .flatten()
                            .map(|f| f.len() as u64)
                            .sum::<u64>();
                        if let Some(slot) = columns.get_mut(usize::from(index)) {
                            *slot = Some(checked);
                        }
                    }
                    Ok(Err(StorageError::NotFound | StorageError::Corrupt(_))) => {
                        extra_bad.insert(index);
                    }
                    Ok(Err(_)) | Err(_) => {}
                }
            }
            self.state
                .counters
                .bytes_read
                .fetch_add(read_bytes, Ordering::Relaxed);
            self.pace(read_bytes).await;
            let wanted: Vec<u8> = targets.iter().map(|&(i, _)| i).collect();
            let codec = codec.clone();
            let geometry_copy = *geometry;
            let length = layout.length;
            let rebuilt = tokio::task::spawn_blocking(move || {
                rebuild_batch(
                    &codec,
                    &geometry_copy,
                    length,
                    first,
                    count,
                    columns,
                    &wanted,
                )
            })
            .await
            .map_err(|e| EngineError::internal("rebuild task", e))??;
            let mut batch_written = 0u64;
            for stripe in rebuilt {
                for (slot, shard) in stripe.into_iter().enumerate() {
                    let Some(sender) = senders.get_mut(slot) else {
                        continue;
                    };
                    let Some(tx) = sender else { continue };
                    let len = shard.len() as u64;
                    if tx
                        .send(WriterMessage::Frame(Bytes::from(shard)))
                        .await
                        .is_err()
                    {
                        *sender = None;
                    } else {
                        batch_written += len;
                    }
                }
            }
            bytes_written += batch_written;
            self.pace(batch_written).await;
            first += count;
        }
        for tx in senders.iter_mut().filter_map(Option::take) {
            let _ = tx.send(WriterMessage::Commit).await;
        }
        let mut rebuilt = Vec::new();
        for (writer, &(index, node)) in writers.into_iter().zip(targets) {
            match writer.await {
                Ok(Ok(())) => rebuilt.push((index, node)),
                Ok(Err(e)) => {
                    warn!(group = %group.to_hex(), index, node, error = %e, "writing a rebuilt shard failed")
                }
                Err(e) => {
                    warn!(group = %group.to_hex(), index, node, error = %e, "rebuilt shard writer task failed")
                }
            }
        }
        Ok((rebuilt, extra_bad.into_iter().collect(), bytes_written))
    }
}

/// Decodes `count` stripes from `columns` (one per shard index, `None` = unavailable) and
/// re-encodes them, returning for each stripe the shards of `wanted`, in that order.
/// CPU-bound: runs in `spawn_blocking`.
fn rebuild_batch(
    codec: &ErasureCodec,
    geometry: &Geometry,
    length: u64,
    first: u64,
    count: u64,
    columns: Vec<Option<Vec<Option<Bytes>>>>,
    wanted: &[u8],
) -> Result<Vec<Vec<Vec<u8>>>, EngineError> {
    let mut out = Vec::with_capacity(count as usize);
    for s in 0..count as usize {
        let stripe = first + s as u64;
        let mut shards: Vec<Option<Vec<u8>>> = columns
            .iter()
            .map(|c| c.as_ref()?.get(s)?.as_ref().map(|b| b.to_vec()))
            .collect();
        let data_len = geometry.stripe_data_len(length, stripe);
        codec
            .reconstruct_data(&mut shards)
            .map_err(|e| EngineError::store(format!("rebuilding stripe {stripe}"), e))?;
        let data = codec
            .join_data(&shards, data_len)
            .map_err(|e| EngineError::internal(format!("stripe {stripe}"), e))?;
        let encoded = codec
            .encode_stripe(&data)
            .map_err(|e| EngineError::internal(format!("stripe {stripe}"), e))?;
        let picked = wanted
            .iter()
            .map(|&i| encoded.get(usize::from(i)).cloned().unwrap_or_default())
            .collect();
        out.push(picked);
    }
    Ok(out)
}
