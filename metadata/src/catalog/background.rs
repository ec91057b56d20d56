//! Write intents and the GC queue: the catalog side of background cleanup (the placement
//! index and the repair queue live in `repair`).
//!
//! Invariants: an intent row exists from before the first shard of a group is written until
//! the batch that commits (or abandons) the group; the GC queue is ordered by due time
//! (`due_ms ‖ group`), so `due_gc` is a prefix scan; moving an item (`retry_gc`,
//! `remove_intent_to_gc`) is one transaction that reads the row it moves, so an item is never
//! lost or duplicated, even when two gateways move it at once.

use super::repair::{placement_in, shard_is_live_in};
use super::{queue_gc, Catalog, MAX_PAGES, PAGE_ROWS};
use crate::keys;
use crate::kv::Table;
use crate::model::{self, GcItem, IntentRecord, NO_NODE};
use crate::MetaError;

impl Catalog {
    /// Records that shard group `group` is about to be written.
    pub fn put_intent(&self, group: [u8; 16], rec: &IntentRecord) -> Result<(), MetaError> {
        let value = model::encode_intent(rec)?;
        self.transact(|txn| {
            txn.put(Table::Intents, group.to_vec(), value.clone());
            Ok(())
        })
    }

    /// A write failed: moves the intent of `group` to the GC queue, due at `now_ms`.
    /// Idempotent (no intent, nothing to do).
    pub fn remove_intent_to_gc(&self, group: [u8; 16], now_ms: u64) -> Result<(), MetaError> {
        self.transact(|txn| {
            let Some(raw) = txn.get(Table::Intents, &group)? else {
                return Ok(());
            };
            let intent = model::decode_intent(&raw)?;
            txn.delete(Table::Intents, group.to_vec());
            queue_gc(txn, &intent.layout, now_ms, "failed write")
        })
    }

    /// Up to `limit` intents created before `older_than_ms` (a timestamp, not an age) or owned
    /// by a gateway `owner_dead` says is gone: writes that neither committed nor cleaned up,
    /// e.g. because their gateway crashed. Callers judge liveness from rows read *after* this
    /// scan: a gateway's liveness row is written before any of its intents, so every owner
    /// seen here is either listed there or gone.
    pub fn stale_intents(
        &self,
        older_than_ms: u64,
        owner_dead: &dyn Fn(&str) -> bool,
        limit: usize,
    ) -> Result<Vec<([u8; 16], IntentRecord)>, MetaError> {
        let mut stale = Vec::new();
        let mut from = Vec::new();
        for _ in 0..MAX_PAGES {
            if stale.len() >= limit {
                break;
            }
            let page = self.kv().scan(Table::Intents, &from, b"", PAGE_ROWS)?;
            let full = page.len() == PAGE_ROWS;
            if let Some((last, _)) = page.last() {
                from = keys::next_key(last);
            }
            for (key, value) in page {
                let group: [u8; 16] = key
                    .as_slice()
                    .try_into()
                    .map_err(|_| MetaError::Corrupt("intent key length".to_string()))?;
                let intent = model::decode_intent(&value)?;
                let stale_now = intent.created_ms < older_than_ms || owner_dead(&intent.owner);
                if stale_now && stale.len() < limit {
                    stale.push((group, intent));
                }
            }
            if !full {
                break;
            }
        }
        Ok(stale)
    }

    /// Up to `limit` GC items due at or before `now_ms`, oldest first, with their queue keys.
    pub fn due_gc(&self, now_ms: u64, limit: usize) -> Result<Vec<(Vec<u8>, GcItem)>, MetaError> {
        let end = match now_ms.checked_add(1) {
            Some(after) => after.to_be_bytes().to_vec(),
            None => Vec::new(),
        };
        self.kv()
            .scan(Table::Gc, b"", &end, limit)?
            .into_iter()
            .map(|(key, value)| Ok((key, model::decode(&value)?)))
            .collect()
    }

    /// Removes a GC item whose shards are deleted, together with the placement rows of exactly
    /// those shards (same node and index, and not live: a row a live layout has since put there
    /// stays). Idempotent.
    pub fn finish_gc(&self, key: &[u8], item: &GcItem) -> Result<(), MetaError> {
        let group = item.layout.group;
        self.transact(|txn| {
            if txn.get(Table::Gc, key)?.is_none() {
                return Ok(());
            }
            txn.delete(Table::Gc, key.to_vec());
            for (index, &node) in item.layout.nodes.iter().enumerate() {
                if node == NO_NODE {
                    continue;
                }
                let Ok(index) = u8::try_from(index) else {
                    break;
                };
                if let Some(row) = placement_in(txn, node, &group)? {
                    if row.index == index && !shard_is_live_in(txn, node, &group, index)? {
                        txn.delete(Table::Placement, keys::placement_key(node, &group));
                    }
                }
            }
            Ok(())
        })
    }

    /// Whether the shard group `group` on `node` is referenced by metadata: a write or repair
    /// intent, or a placement row (live layouts and shards waiting for GC). The intent is read
    /// first: a shard exists only after its intent was written, and the batch that removes the
    /// intent writes the placement row, so this order never misses a reference.
    pub fn shard_referenced(&self, node: u32, group: &[u8; 16]) -> Result<bool, MetaError> {
        if self.kv().get(Table::Intents, group)?.is_some() {
            return Ok(true);
        }
        Ok(self.placement(node, group)?.is_some())
    }

    /// Moves a GC item to a later due time (after a failed attempt). Idempotent.
    pub fn retry_gc(&self, key: &[u8], item: &GcItem, due_ms: u64) -> Result<(), MetaError> {
        self.transact(|txn| {
            if txn.get(Table::Gc, key)?.is_none() {
                return Ok(());
            }
            txn.delete(Table::Gc, key.to_vec());
            queue_gc(txn, &item.layout, due_ms, &item.reason)
        })
    }
}
