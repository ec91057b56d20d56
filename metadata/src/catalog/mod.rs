//! [`Catalog`]: the metadata operations the engine calls — buckets, objects, listing, multipart
//! uploads, write intents, the GC and repair queues and the placement index — over any
//! [`KvStore`].
//!
//! Invariants:
//! - every change is one atomic [`WriteBatch`];
//! - read-modify-write on an object key (and on the uploads of that key) runs under one of
//!   [`STRIPES`] mutexes chosen by hashing `bucket id ‖ key`; an operation holds at most one
//!   stripe, except `delete_bucket`, which takes all of them in ascending order; intent-row
//!   stripes are taken after any key stripe, in ascending order (so no lock cycle exists);
//! - a commit that consumes an intent fails if that intent is gone (moved to GC as stale), so a
//!   version never references a shard group queued for deletion;
//! - an `objects` head row exists iff its `versions` row exists, and never for a delete marker;
//! - sequence numbers from [`Catalog::next_seq`] are never reused, even across restarts: the
//!   high-water mark is persisted, a block ahead of use, before any number below it is handed out;
//! - rows of a deleted bucket are gone: operations on it fail with `NoSuchBucket`.

mod background;
mod listing;
mod multipart;
mod objects;
mod repair;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

pub use listing::{ListPage, ListQuery, UploadListPage, UploadListQuery};
pub use objects::WriteCondition;
pub use repair::{repair_backoff_ms, SwapOutcome};

use crate::keys;
use crate::kv::{KvStore, MemKvStore, Row, Table, WriteBatch};
use crate::model::{self, BucketId, BucketRecord, GcItem, ShardedLayout, VersionRecord, NO_NODE};
use crate::rocks::RocksKvStore;
use crate::MetaError;

/// Number of striped locks serializing read-modify-write per (bucket, key).
pub const STRIPES: usize = 256;
/// Number of striped locks guarding intent rows (always taken after a key stripe).
const INTENT_STRIPES: usize = 64;
/// Sequence numbers reserved per persisted high-water-mark update.
const SEQ_BLOCK: u64 = 1000;
/// Rows fetched per scan when a whole range must be read.
const PAGE_ROWS: usize = 1000;
/// Upper bound on pages read by one whole-range scan (bounds every loop).
const MAX_PAGES: usize = 1_000_000;

/// The metadata catalog. Cheap to clone (shared state behind an `Arc`).
#[derive(Clone)]
pub struct Catalog {
    inner: Arc<Inner>,
}

struct Inner {
    kv: Arc<dyn KvStore>,
    stripes: Vec<Mutex<()>>,
    /// Serializes the removal of an intent row with its check (commit) or its move to GC.
    intent_stripes: Vec<Mutex<()>>,
    /// Serializes bucket creation and deletion.
    buckets_lock: Mutex<()>,
    seq: Mutex<SeqState>,
}

struct SeqState {
    next: u64,
    high_water: u64,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").finish_non_exhaustive()
    }
}

/// Locks a mutex guarding `()` or plain counters: a panic elsewhere cannot leave them
/// half-updated, so poisoning is ignored.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Catalog {
    /// A catalog over `kv`; loads the sequence high-water mark from the `system` table.
    pub fn new(kv: Arc<dyn KvStore>) -> Result<Catalog, MetaError> {
        let high_water = match kv.get(Table::System, keys::SYSTEM_SEQ_KEY)? {
            None => 0,
            Some(raw) => keys::read_u64(&raw, 0)
                .filter(|_| raw.len() == 8)
                .ok_or_else(|| MetaError::Corrupt("sequence high-water mark".to_string()))?,
        };
        Ok(Catalog::with_high_water(kv, high_water))
    }

    /// A catalog in a RocksDB database at `path` (created if missing).
    pub fn open_rocks(path: &Path, sync_writes: bool) -> Result<Catalog, MetaError> {
        Catalog::new(Arc::new(RocksKvStore::open(path, sync_writes)?))
    }

    /// An empty catalog held in memory.
    pub fn in_memory() -> Catalog {
        Catalog::with_high_water(Arc::new(MemKvStore::new()), 0)
    }

    fn with_high_water(kv: Arc<dyn KvStore>, high_water: u64) -> Catalog {
        Catalog {
            inner: Arc::new(Inner {
                kv,
                stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
                intent_stripes: (0..INTENT_STRIPES).map(|_| Mutex::new(())).collect(),
                buckets_lock: Mutex::new(()),
                seq: Mutex::new(SeqState {
                    next: high_water.max(1),
                    high_water,
                }),
            }),
        }
    }

    /// The next sequence number: strictly increasing, never 0, never reused across restarts.
    pub fn next_seq(&self) -> Result<u64, MetaError> {
        let mut state = lock(&self.inner.seq);
        if state.next >= state.high_water {
            let high_water = state
                .next
                .checked_add(SEQ_BLOCK)
                .ok_or_else(|| MetaError::Corrupt("sequence exhausted".to_string()))?;
            let mut batch = WriteBatch::new();
            batch.put(
                Table::System,
                keys::SYSTEM_SEQ_KEY,
                high_water.to_be_bytes().to_vec(),
            );
            self.kv().write(batch)?;
            state.high_water = high_water;
        }
        let seq = state.next;
        state.next += 1;
        Ok(seq)
    }

    /// A caller-owned value of the `system` table (keys, settings).
    pub fn get_system(&self, name: &str) -> Result<Option<Vec<u8>>, MetaError> {
        self.kv().get(Table::System, &keys::system_user_key(name))
    }

    /// Stores a caller-owned value in the `system` table.
    pub fn put_system(&self, name: &str, value: &[u8]) -> Result<(), MetaError> {
        let mut batch = WriteBatch::new();
        batch.put(Table::System, keys::system_user_key(name), value.to_vec());
        self.kv().write(batch)
    }

    /// Creates a bucket with a fresh id; `Err(BucketExists)` if the name is taken.
    pub fn create_bucket(
        &self,
        name: &str,
        owner: &str,
        region: &str,
        now_ms: u64,
    ) -> Result<BucketRecord, MetaError> {
        let _guard = lock(&self.inner.buckets_lock);
        if self.get_bucket(name)?.is_some() {
            return Err(MetaError::BucketExists);
        }
        let record = BucketRecord {
            name: name.to_string(),
            id: uuid::Uuid::now_v7().into_bytes(),
            created_ms: now_ms,
            owner: owner.to_string(),
            region: region.to_string(),
        };
        let mut batch = WriteBatch::new();
        batch.put(Table::Buckets, name.as_bytes(), model::encode(&record)?);
        batch.put(
            Table::System,
            keys::system_bucket_id_key(&record.id),
            name.as_bytes(),
        );
        self.kv().write(batch)?;
        Ok(record)
    }

    pub fn get_bucket(&self, name: &str) -> Result<Option<BucketRecord>, MetaError> {
        self.get_record(Table::Buckets, name.as_bytes())
    }

    /// Every bucket, sorted by name.
    pub fn list_buckets(&self) -> Result<Vec<BucketRecord>, MetaError> {
        self.scan_all(Table::Buckets, b"", b"")?
            .iter()
            .map(|(_, value)| model::decode(value))
            .collect()
    }

    /// Deletes an empty bucket. `Err(NoSuchBucket)` if absent, `Err(BucketNotEmpty)` if any
    /// object head exists. Its multipart uploads are aborted in the same batch (their shard
    /// groups queued to GC, due now).
    pub fn delete_bucket(&self, name: &str) -> Result<(), MetaError> {
        let _guard = lock(&self.inner.buckets_lock);
        // No object or upload operation of any key may be mid-flight while the rows go away.
        let _stripes: Vec<MutexGuard<'_, ()>> = self.inner.stripes.iter().map(lock).collect();
        let record = self.get_bucket(name)?.ok_or(MetaError::NoSuchBucket)?;
        let bid = record.id;
        let bucket_end = keys::successor(&bid);
        if !self
            .kv()
            .scan(Table::Objects, &bid, &bucket_end, 1)?
            .is_empty()
        {
            return Err(MetaError::BucketNotEmpty);
        }
        let mut batch = WriteBatch::new();
        batch.delete(Table::Buckets, name.as_bytes());
        batch.delete(Table::System, keys::system_bucket_id_key(&bid));
        // Leftover version rows (delete markers) belong to the bucket too.
        for (key, _) in self.scan_all(Table::Versions, &bid, &bucket_end)? {
            batch.delete(Table::Versions, key);
        }
        let completed = keys::system_completed_upload_prefix(&bid);
        for (key, _) in self.scan_all(Table::System, &completed, &keys::successor(&completed))? {
            batch.delete(Table::System, key);
        }
        let due = now_ms();
        for (key, value) in self.scan_all(Table::Uploads, &bid, &bucket_end)? {
            let upload: model::UploadRecord = model::decode(&value)?;
            batch.delete(Table::Uploads, key);
            self.remove_parts_into(&mut batch, upload.useq, &[], due, "bucket deleted")?;
        }
        self.kv().write(batch)
    }

    fn kv(&self) -> &dyn KvStore {
        self.inner.kv.as_ref()
    }

    /// The stripe lock serializing changes to `key` in bucket `bid`.
    fn lock_key(&self, bid: &BucketId, key: &str) -> MutexGuard<'_, ()> {
        let mut hasher = DefaultHasher::new();
        bid.hash(&mut hasher);
        key.hash(&mut hasher);
        let index = usize::try_from(hasher.finish() % STRIPES as u64).unwrap_or(0);
        lock(&self.inner.stripes[index])
    }

    /// Locks the intent stripes of `groups` (ascending, each once).
    fn lock_intents(&self, groups: &[[u8; 16]]) -> Vec<MutexGuard<'_, ()>> {
        let mut indexes: Vec<usize> = groups
            .iter()
            .map(|group| {
                let mut hasher = DefaultHasher::new();
                group.hash(&mut hasher);
                usize::try_from(hasher.finish() % INTENT_STRIPES as u64).unwrap_or(0)
            })
            .collect();
        indexes.sort_unstable();
        indexes.dedup();
        indexes
            .into_iter()
            .map(|i| lock(&self.inner.intent_stripes[i]))
            .collect()
    }

    /// Adds the removal of the `done` intent rows to `batch`; fails if one no longer exists
    /// (it was collected as stale, so its shards are queued for deletion). Call with the
    /// intents locked.
    fn consume_intents(&self, batch: &mut WriteBatch, done: &[[u8; 16]]) -> Result<(), MetaError> {
        for group in done {
            if self.kv().get(Table::Intents, group)?.is_none() {
                return Err(MetaError::Db(format!(
                    "write intent of shard group {} is gone (collected as stale)",
                    hex::encode(group)
                )));
            }
            batch.delete(Table::Intents, group.to_vec());
        }
        Ok(())
    }

    /// `Err(NoSuchBucket)` unless bucket `bid` exists. Call under a stripe lock so that a
    /// concurrent `delete_bucket` cannot slip in between the check and the write.
    fn require_bucket(&self, bid: &BucketId) -> Result<(), MetaError> {
        match self
            .kv()
            .get(Table::System, &keys::system_bucket_id_key(bid))?
        {
            Some(_) => Ok(()),
            None => Err(MetaError::NoSuchBucket),
        }
    }

    fn get_record<T: serde::de::DeserializeOwned>(
        &self,
        table: Table,
        key: &[u8],
    ) -> Result<Option<T>, MetaError> {
        self.kv()
            .get(table, key)?
            .map(|raw| model::decode(&raw))
            .transpose()
    }

    /// Every row in `[start, end)` (empty `end` = unbounded), read page by page.
    fn scan_all(&self, table: Table, start: &[u8], end: &[u8]) -> Result<Vec<Row>, MetaError> {
        let mut rows = Vec::new();
        let mut from = start.to_vec();
        for _ in 0..MAX_PAGES {
            let page = self.kv().scan(table, &from, end, PAGE_ROWS)?;
            let full = page.len() == PAGE_ROWS;
            if let Some((last, _)) = page.last() {
                from = keys::next_key(last);
            }
            rows.extend(page);
            if !full {
                return Ok(rows);
            }
        }
        Err(MetaError::Db(format!(
            "{} scan exceeded its bound",
            table.name()
        )))
    }
}

/// Adds a GC queue row for `layout`, due at `due_ms`. The row key is `due ‖ group`; a partial
/// layout (some slots [`NO_NODE`]: one replaced shard) appends its first node, so several
/// replaced shards of one group can wait side by side.
fn queue_gc(
    batch: &mut WriteBatch,
    layout: &ShardedLayout,
    due_ms: u64,
    reason: &str,
) -> Result<(), MetaError> {
    let item = GcItem {
        layout: layout.clone(),
        reason: reason.to_string(),
    };
    let mut key = keys::due_key(due_ms, &layout.group);
    if layout.nodes.contains(&NO_NODE) {
        if let Some(node) = layout.nodes.iter().find(|&&n| n != NO_NODE) {
            key.extend_from_slice(&node.to_be_bytes());
        }
    }
    batch.put(Table::Gc, key, model::encode(&item)?);
    Ok(())
}

/// Shard groups referenced by the parts of `version`.
fn referenced_groups(version: &VersionRecord) -> Vec<[u8; 16]> {
    version
        .parts
        .iter()
        .filter_map(|p| p.data.sharded())
        .map(|layout| layout.group)
        .collect()
}

/// An opaque id that encodes `seq` (16 hex digits) followed by 8 random bytes (16 hex digits).
fn opaque_id(seq: u64) -> String {
    let random: [u8; 8] = rand::random();
    format!("{seq:016x}{}", hex::encode(random))
}

/// The seq encoded by [`opaque_id`], or `None` if `id` is not such an id.
fn parse_opaque_id(id: &str) -> Option<u64> {
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(id.get(..16)?, 16).ok()
}
