//! The placement index and the repair queue: the catalog side of healing.
//!
//! Invariants:
//! - a `placement` row `node ‖ group` exists for every shard a live layout (version or part
//!   attempt) places on a node and does not mark missing; it is written in the transaction that
//!   publishes or swaps the layout and removed only when GC has deleted that very shard (same
//!   node, same index), so the orphan scan never deletes a shard someone may still read; its
//!   owner is resolved to the record holding the layout now by `load_owner` (a completed
//!   upload's part attempts resolve to the version, through the completed-upload record);
//! - a group is queued for repair at most once: `system` row `i/repair/‖group` names its one
//!   `repair` row, and both change in one transaction; a second
//!   report merges its shard indexes into the queued item instead of adding a row (both rows
//!   are read with checked reads, so two concurrent reports cannot both add one);
//! - [`Catalog::swap_repaired`] rewrites the layout, its placement rows, the GC of replaced
//!   shards, the repair intent and the queue item in one transaction that reads the owner
//!   record, and does nothing when the owner record no longer holds the group (overwritten or
//!   deleted).

use super::{consume_intents, parse_opaque_id, queue_gc, Catalog, MAX_PAGES, PAGE_ROWS};
use crate::keys;
use crate::kv::Table;
use crate::model::{
    self, CompletedUploadRecord, DataLayout, LayoutOwner, ObjectHead, PartRecord, PlacementRecord,
    RepairItem, ShardedLayout, VersionRecord, NO_NODE,
};
use crate::txn::Txn;
use crate::MetaError;

/// What [`Catalog::swap_repaired`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwapOutcome {
    /// The layout now lists the rebuilt shards; this is the new layout.
    Swapped(ShardedLayout),
    /// The owner record no longer holds the group: nothing changed; the rebuilt shards are
    /// garbage (abandon the repair intent).
    Gone,
    /// A rebuilt shard's target already holds another placement row of the group (a replaced
    /// shard waiting for GC): nothing changed, try again later.
    Conflict,
}

/// Adds the placement rows of `layout` (every present shard) owned by `owner` to `txn`.
fn put_placement(
    txn: &mut Txn<'_>,
    layout: &ShardedLayout,
    owner: &LayoutOwner,
) -> Result<(), MetaError> {
    for (index, &node) in layout.nodes.iter().enumerate() {
        let Ok(index) = u8::try_from(index) else {
            break;
        };
        if node == NO_NODE || layout.missing.contains(&index) {
            continue;
        }
        let record = PlacementRecord {
            index,
            owner: owner.clone(),
        };
        txn.put_record(
            Table::Placement,
            keys::placement_key(node, &layout.group),
            &record,
        )?;
    }
    Ok(())
}

/// Publishes a freshly written layout owned by `owner`: its placement rows, and a repair
/// (due `now_ms`) when the write left shards missing in a group it wrote (`intents_done`).
pub(super) fn publish_layout(
    txn: &mut Txn<'_>,
    layout: &ShardedLayout,
    owner: &LayoutOwner,
    intents_done: &[[u8; 16]],
    now_ms: u64,
) -> Result<(), MetaError> {
    put_placement(txn, layout, owner)?;
    if !layout.missing.is_empty() && intents_done.contains(&layout.group) {
        queue_repair_in(
            txn,
            layout.group,
            "missing at write",
            &layout.missing,
            now_ms,
        )?;
    }
    Ok(())
}

/// The exponential backoff after `attempts` failures: 1 s, 2 s, 4 s, … capped at 5 minutes.
pub fn repair_backoff_ms(attempts: u32) -> u64 {
    const BASE_MS: u64 = 1000;
    const CAP_MS: u64 = 5 * 60 * 1000;
    BASE_MS
        .checked_shl(attempts.min(20))
        .unwrap_or(CAP_MS)
        .min(CAP_MS)
}

impl Catalog {
    /// Queues `group` for repair, due at `due_ms`, with the reported bad `shards` (may be
    /// empty: "check the whole group"). Idempotent: an already queued group keeps its row and
    /// due time (the earlier one wins) and gains the new shard indexes. Returns true when a new
    /// item was created.
    pub fn queue_repair(
        &self,
        group: [u8; 16],
        reason: &str,
        shards: &[u8],
        due_ms: u64,
    ) -> Result<bool, MetaError> {
        self.transact(|txn| queue_repair_in(txn, group, reason, shards, due_ms))
    }

    /// Up to `limit` repair items due at or before `now_ms`, oldest first, with their row keys.
    pub fn due_repairs(
        &self,
        now_ms: u64,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, RepairItem)>, MetaError> {
        let end = match now_ms.checked_add(1) {
            Some(after) => after.to_be_bytes().to_vec(),
            None => Vec::new(),
        };
        self.kv()
            .scan(Table::Repair, b"", &end, limit)?
            .into_iter()
            .map(|(key, value)| Ok((key, model::decode(&value)?)))
            .collect()
    }

    /// Number of queued repair items, counting at most `limit`.
    pub fn repair_queue_len(&self, limit: usize) -> Result<usize, MetaError> {
        self.count_rows(Table::Repair, limit)
    }

    /// Number of queued GC items, counting at most `limit`.
    pub fn gc_queue_len(&self, limit: usize) -> Result<usize, MetaError> {
        self.count_rows(Table::Gc, limit)
    }

    fn count_rows(&self, table: Table, limit: usize) -> Result<usize, MetaError> {
        let mut count = 0usize;
        let mut from = Vec::new();
        for _ in 0..MAX_PAGES {
            let page = self
                .kv()
                .scan(table, &from, b"", PAGE_ROWS.min(limit - count))?;
            let full = page.len() == PAGE_ROWS.min(limit - count);
            count += page.len();
            match page.last() {
                Some((last, _)) if full && count < limit => from = keys::next_key(last),
                _ => break,
            }
        }
        Ok(count)
    }

    /// Ends the repair item at `row_key` after an attempt that handled (rebuilt or found
    /// healthy) the shard indexes in `handled`: reports that arrived meanwhile for other
    /// indexes stay queued, due now. Idempotent.
    pub fn finish_repair(
        &self,
        row_key: &[u8],
        handled: &[u8],
        now_ms: u64,
    ) -> Result<(), MetaError> {
        if keys::due_key_group(row_key).is_none() {
            return Err(MetaError::Corrupt("repair key length".to_string()));
        }
        self.transact(|txn| finish_repair_in(txn, row_key, handled, now_ms))
    }

    /// Moves the repair item at `row_key` to `due_ms` after an attempt that did not finish it:
    /// drops the reported indexes in `handled` (rebuilt meanwhile), adds `extra` (indexes found
    /// bad meanwhile) and counts the attempt. Idempotent if the row is gone.
    pub fn retry_repair(
        &self,
        row_key: &[u8],
        handled: &[u8],
        extra: &[u8],
        due_ms: u64,
    ) -> Result<(), MetaError> {
        let Some(group) = keys::due_key_group(row_key) else {
            return Err(MetaError::Corrupt("repair key length".to_string()));
        };
        self.transact(|txn| {
            let Some(mut item) = txn.get_record::<RepairItem>(Table::Repair, row_key)? else {
                return Ok(());
            };
            item.attempts = item.attempts.saturating_add(1);
            item.shards.retain(|s| !handled.contains(s));
            merge_shards(&mut item.shards, extra);
            txn.delete(Table::Repair, row_key.to_vec());
            let new_key = keys::due_key(due_ms, &group);
            txn.put(
                Table::System,
                keys::system_repair_index_key(&group),
                new_key.clone(),
            );
            txn.put_record(Table::Repair, new_key, &item)
        })
    }

    /// The placement row of `group` on `node`, if any.
    pub fn placement(
        &self,
        node: u32,
        group: &[u8; 16],
    ) -> Result<Option<PlacementRecord>, MetaError> {
        self.get_record(Table::Placement, &keys::placement_key(node, group))
    }

    /// Up to `limit` placement rows of `node` with a group strictly after `after`, in group order.
    pub fn placements_on_node(
        &self,
        node: u32,
        after: Option<[u8; 16]>,
        limit: usize,
    ) -> Result<Vec<([u8; 16], PlacementRecord)>, MetaError> {
        let prefix = node.to_be_bytes();
        let start = match after {
            Some(group) => keys::next_key(&keys::placement_key(node, &group)),
            None => prefix.to_vec(),
        };
        let end = keys::successor(&prefix);
        let mut out = Vec::new();
        for (key, value) in self.kv().scan(Table::Placement, &start, &end, limit)? {
            let group = keys::placement_group(&key)
                .ok_or_else(|| MetaError::Corrupt("placement key length".to_string()))?;
            out.push((group, crate::model::decode(&value)?));
        }
        Ok(out)
    }

    /// Whether shard `index` of `group` on `node` is part of a live layout: its placement row
    /// names that index and the owner's current layout lists that node there (not missing).
    /// GC never deletes a live shard, even when an old GC item names it.
    pub fn shard_is_live(&self, node: u32, group: &[u8; 16], index: u8) -> Result<bool, MetaError> {
        self.transact(|txn| shard_is_live_in(txn, node, group, index))
    }

    /// The owner and current layout of `group`, found through its placement row on any of
    /// `nodes`; `None` when no live record holds the group any more. The owner is the record
    /// that holds the layout now: a placement row owned by a part attempt of a completed
    /// upload yields the version (see [`load_owner`]).
    pub fn find_group_layout(
        &self,
        group: &[u8; 16],
        nodes: &[u32],
    ) -> Result<Option<(LayoutOwner, ShardedLayout)>, MetaError> {
        self.transact(|txn| {
            for &node in nodes {
                let Some(placement) = placement_in(txn, node, group)? else {
                    continue;
                };
                if let Some((owner, layout)) = owner_layout(txn, &placement.owner, group)? {
                    return Ok(Some((owner, layout)));
                }
            }
            Ok(None)
        })
    }

    /// Publishes a repair: in the layout of `group` held by `owner`, shard `index` now lives on
    /// `node` for every `(index, node)` of `rebuilt` (and is no longer missing). In the same
    /// transaction: placement rows of the new locations, GC of each replaced shard on its old
    /// node (due `now_ms + gc_delay_ms`, so reads that started on the old layout finish),
    /// removal of the repair intent when `intent` is set (`Err(Db)` if it is gone: collected as
    /// stale), and the end of the queue item `repair_key` for the handled indexes.
    #[allow(clippy::too_many_arguments)]
    pub fn swap_repaired(
        &self,
        owner: &LayoutOwner,
        group: [u8; 16],
        rebuilt: &[(u8, u32)],
        intent: bool,
        repair_key: Option<&[u8]>,
        handled: &[u8],
        now_ms: u64,
        gc_delay_ms: u64,
    ) -> Result<SwapOutcome, MetaError> {
        let due = now_ms.saturating_add(gc_delay_ms);
        self.transact(|txn| {
            let Some((owner, mut record)) = load_owner(txn, owner)? else {
                return Ok(SwapOutcome::Gone);
            };
            let owner = &owner;
            let Some(layout) = record.layout_mut(&group) else {
                return Ok(SwapOutcome::Gone);
            };
            for &(index, node) in rebuilt {
                let slot = usize::from(index);
                let Some(&old) = layout.nodes.get(slot) else {
                    return Err(MetaError::Corrupt(format!("repaired shard index {index}")));
                };
                let was_missing = layout.missing.contains(&index);
                if old != node {
                    if let Some(existing) = placement_in(txn, node, &group)? {
                        if existing.index != index {
                            return Ok(SwapOutcome::Conflict);
                        }
                    }
                    if old != NO_NODE {
                        // The replaced shard (missing, corrupt or on a lost node) is deleted
                        // after the grace delay; its placement row goes with it.
                        let mut single = layout.clone();
                        single.nodes = vec![NO_NODE; layout.nodes.len()];
                        if let Some(s) = single.nodes.get_mut(slot) {
                            *s = old;
                        }
                        single.missing = Vec::new();
                        let reason = if was_missing {
                            "missing shard relocated by repair"
                        } else {
                            "shard replaced by repair"
                        };
                        queue_gc(txn, &single, due, reason)?;
                    }
                    if let Some(s) = layout.nodes.get_mut(slot) {
                        *s = node;
                    }
                }
                layout.missing.retain(|&m| m != index);
                let placement = PlacementRecord {
                    index,
                    owner: owner.clone(),
                };
                txn.put_record(
                    Table::Placement,
                    keys::placement_key(node, &group),
                    &placement,
                )?;
            }
            let new_layout = layout.clone();
            record.put_in(txn, owner)?;
            if intent {
                consume_intents(txn, &[group])?;
            }
            if let Some(repair_key) = repair_key {
                finish_repair_in(txn, repair_key, handled, now_ms)?;
            }
            Ok(SwapOutcome::Swapped(new_layout))
        })
    }
}

/// [`Catalog::queue_repair`] inside a caller's transaction.
fn queue_repair_in(
    txn: &mut Txn<'_>,
    group: [u8; 16],
    reason: &str,
    shards: &[u8],
    due_ms: u64,
) -> Result<bool, MetaError> {
    let index_key = keys::system_repair_index_key(&group);
    if let Some(row_key) = txn.get(Table::System, &index_key)? {
        if let Some(mut item) = txn.get_record::<RepairItem>(Table::Repair, &row_key)? {
            let before = item.shards.len();
            merge_shards(&mut item.shards, shards);
            let queued_due = keys::read_u64(&row_key, 0).unwrap_or(0);
            if due_ms < queued_due {
                txn.delete(Table::Repair, row_key);
                let new_key = keys::due_key(due_ms, &group);
                txn.put(Table::System, index_key, new_key.clone());
                txn.put_record(Table::Repair, new_key, &item)?;
            } else if item.shards.len() != before {
                txn.put_record(Table::Repair, row_key, &item)?;
            }
            return Ok(false);
        }
    }
    let mut item = RepairItem {
        group,
        reason: reason.to_string(),
        attempts: 0,
        shards: Vec::new(),
        queued_ms: super::now_ms(),
    };
    merge_shards(&mut item.shards, shards);
    let row_key = keys::due_key(due_ms, &group);
    txn.put(Table::System, index_key, row_key.clone());
    txn.put_record(Table::Repair, row_key, &item)?;
    Ok(true)
}

fn finish_repair_in(
    txn: &mut Txn<'_>,
    row_key: &[u8],
    handled: &[u8],
    now_ms: u64,
) -> Result<(), MetaError> {
    let Some(item) = txn.get_record::<RepairItem>(Table::Repair, row_key)? else {
        return Ok(());
    };
    let left: Vec<u8> = item
        .shards
        .iter()
        .copied()
        .filter(|s| !handled.contains(s))
        .collect();
    txn.delete(Table::Repair, row_key.to_vec());
    let index_key = keys::system_repair_index_key(&item.group);
    if left.is_empty() {
        txn.delete(Table::System, index_key);
        return Ok(());
    }
    let requeued = RepairItem {
        shards: left,
        attempts: 0,
        ..item
    };
    let new_key = keys::due_key(now_ms, &requeued.group);
    txn.put(Table::System, index_key, new_key.clone());
    txn.put_record(Table::Repair, new_key, &requeued)?;
    Ok(())
}

/// The placement row of `group` on `node` (checked).
pub(super) fn placement_in(
    txn: &mut Txn<'_>,
    node: u32,
    group: &[u8; 16],
) -> Result<Option<PlacementRecord>, MetaError> {
    txn.get_record(Table::Placement, &keys::placement_key(node, group))
}

/// [`Catalog::shard_is_live`] inside a transaction.
pub(super) fn shard_is_live_in(
    txn: &mut Txn<'_>,
    node: u32,
    group: &[u8; 16],
    index: u8,
) -> Result<bool, MetaError> {
    let Some(row) = placement_in(txn, node, group)? else {
        return Ok(false);
    };
    if row.index != index {
        return Ok(false);
    }
    Ok(
        owner_layout(txn, &row.owner, group)?.is_some_and(|(_, layout)| {
            layout.nodes.get(usize::from(index)) == Some(&node) && !layout.missing.contains(&index)
        }),
    )
}

/// The layout of `group` inside the live record `owner` resolves to (see [`load_owner`]), with
/// that record's owner, if it still holds the group.
fn owner_layout(
    txn: &mut Txn<'_>,
    owner: &LayoutOwner,
    group: &[u8; 16],
) -> Result<Option<(LayoutOwner, ShardedLayout)>, MetaError> {
    let Some((owner, mut record)) = load_owner(txn, owner)? else {
        return Ok(None);
    };
    Ok(record
        .layout_mut(group)
        .map(|layout| (owner, layout.clone())))
}

/// The live record `owner` resolves to, with its own owner; every read checked.
/// - A version is live while the head row names its seq (a replaced version's row may stay
///   until its cleanup job is done).
/// - A part attempt is its part row while its upload row exists. Once the upload is
///   completed, the placement rows of its attempts stay (Complete does not rewrite them), and
///   the completed-upload record of the key names the version that holds the kept layouts:
///   the owner resolves to that version while it is live (the record goes when the version is
///   replaced or deleted). An aborted upload, or an attempt of a replaced version, resolves
///   to nothing.
fn load_owner(
    txn: &mut Txn<'_>,
    owner: &LayoutOwner,
) -> Result<Option<(LayoutOwner, OwnerRecord)>, MetaError> {
    match owner {
        LayoutOwner::Version { bucket, key, seq } => {
            let head: Option<ObjectHead> =
                txn.get_record(Table::Objects, &keys::object_key(bucket, key.as_bytes()))?;
            if head.map(|h| h.seq) != Some(*seq) {
                return Ok(None);
            }
            Ok(txn
                .get_record::<VersionRecord>(
                    Table::Versions,
                    &keys::version_key(bucket, key.as_bytes(), *seq),
                )?
                .map(|version| (owner.clone(), OwnerRecord::Version(Box::new(version)))))
        }
        LayoutOwner::Part {
            bucket,
            key,
            useq,
            part_number,
            attempt,
        } => {
            let upload_row = keys::upload_key(bucket, key.as_bytes(), *useq);
            if txn.get(Table::Uploads, &upload_row)?.is_some() {
                return Ok(txn
                    .get_record::<PartRecord>(
                        Table::Parts,
                        &keys::part_key(*useq, *part_number, *attempt),
                    )?
                    .map(|part| (owner.clone(), OwnerRecord::Part(part))));
            }
            let completed: Option<CompletedUploadRecord> = txn.get_record(
                Table::System,
                &keys::system_completed_upload_key(bucket, key.as_bytes()),
            )?;
            match completed {
                Some(record) if parse_opaque_id(&record.upload_id) == Some(*useq) => {
                    let version = LayoutOwner::Version {
                        bucket: *bucket,
                        key: key.clone(),
                        seq: record.seq,
                    };
                    load_owner(txn, &version)
                }
                _ => Ok(None),
            }
        }
    }
}

/// The record a [`LayoutOwner`] names (the version boxed: it is the larger record).
enum OwnerRecord {
    Version(Box<VersionRecord>),
    Part(PartRecord),
}

impl OwnerRecord {
    fn layout_mut(&mut self, group: &[u8; 16]) -> Option<&mut ShardedLayout> {
        let data = match self {
            OwnerRecord::Version(version) => version
                .parts
                .iter_mut()
                .map(|p| &mut p.data)
                .find(|d| matches!(d, DataLayout::Sharded(l) if &l.group == group))?,
            OwnerRecord::Part(part) => &mut part.data,
        };
        match data {
            DataLayout::Sharded(layout) if &layout.group == group => Some(layout),
            _ => None,
        }
    }

    fn put_in(&self, txn: &mut Txn<'_>, owner: &LayoutOwner) -> Result<(), MetaError> {
        match (self, owner) {
            (OwnerRecord::Version(version), LayoutOwner::Version { bucket, key, seq }) => txn
                .put_record(
                    Table::Versions,
                    keys::version_key(bucket, key.as_bytes(), *seq),
                    version,
                ),
            (
                OwnerRecord::Part(part),
                LayoutOwner::Part {
                    useq,
                    part_number,
                    attempt,
                    ..
                },
            ) => txn.put_record(
                Table::Parts,
                keys::part_key(*useq, *part_number, *attempt),
                part,
            ),
            _ => Err(MetaError::Corrupt("owner record kind".to_string())),
        }
    }
}

/// Adds the indexes of `more` missing from `shards`, keeping it sorted.
fn merge_shards(shards: &mut Vec<u8>, more: &[u8]) {
    shards.extend_from_slice(more);
    shards.sort_unstable();
    shards.dedup();
}
