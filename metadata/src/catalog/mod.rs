//! [`Catalog`]: the metadata operations the engine calls — buckets, objects, listing, multipart
//! uploads, write intents, the GC and repair queues and the placement index — over any
//! [`KvStore`].
//!
//! Invariants:
//! - every read-modify-write is one optimistic transaction ([`crate::txn::run`]): it reads
//!   what its decision depends on with checked reads and commits atomically only if none of
//!   that changed — no in-process lock is needed for atomicity, so several catalogs (threads,
//!   processes, gateways) may share one store;
//! - a commit that consumes an intent reads that intent row, so it fails if the intent is gone
//!   (moved to GC as stale): a version never references a shard group queued for deletion;
//! - an operation on a bucket's rows reads the bucket-id row, so it cannot commit after a
//!   concurrent `delete_bucket` did; `delete_bucket` scans the bucket's objects, so it cannot
//!   commit after a concurrent object commit did;
//! - an `objects` head row exists iff its `versions` row exists, and never for a delete marker;
//! - sequence numbers from [`Catalog::next_seq`] are never reused, even across restarts and
//!   between catalogs sharing a store: each catalog hands out numbers from a block it reserved
//!   by a transaction on the persisted high-water mark, before any number of it is used;
//! - operations on a deleted bucket fail with `NoSuchBucket`; its leftover rows are removed
//!   by a cleanup job in bounded steps (`cleanup`);
//! - every transaction is sized to the store's limits (etcd: 128 operations, 1.5 MiB)
//!   whatever the data: work that grows with the data (the part rows of a completed or aborted
//!   upload, the GC of a many-part version, a deleted bucket's rows) is queued as a cleanup job
//!   by the small transaction that decides it, and done by [`Catalog::cleanup_step`].

mod background;
mod cleanup;
mod encryption;
mod identity;
mod listing;
mod members;
mod multipart;
mod objects;
mod repair;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

pub use encryption::{RewrapStep, RewrapTable};
pub use identity::{IdentitySnapshot, MAX_KEYS_PER_USER};
pub use listing::{ListPage, ListQuery, UploadListPage, UploadListQuery};
pub use members::{GatewayRecord, LeaderRecord};
pub use objects::WriteCondition;
pub use repair::{repair_backoff_ms, SwapOutcome};

use crate::keys;
use crate::kv::{KvStore, MemKvStore, Row, Table};
use crate::model::{self, BucketId, BucketRecord, GcItem, ShardedLayout, VersionRecord, NO_NODE};
use crate::rocks::RocksKvStore;
use crate::txn::{self, Txn};
use crate::MetaError;

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
    /// The numbers of the reserved sequence block not handed out yet.
    seq: Mutex<SeqState>,
}

/// `next..high_water` is this catalog's reserved, unused block of sequence numbers.
struct SeqState {
    next: u64,
    high_water: u64,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").finish_non_exhaustive()
    }
}

/// Locks a mutex guarding plain counters: a panic elsewhere cannot leave them half-updated,
/// so poisoning is ignored.
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

/// The catalog's creation time in `raw`.
fn decode_birth(raw: &[u8]) -> Result<u64, MetaError> {
    keys::read_u64(raw, 0)
        .filter(|_| raw.len() == 8)
        .ok_or_else(|| MetaError::Corrupt("catalog creation time".to_string()))
}

/// The persisted sequence high-water mark in `raw`.
fn decode_high_water(raw: Option<Vec<u8>>) -> Result<u64, MetaError> {
    match raw {
        None => Ok(0),
        Some(raw) => keys::read_u64(&raw, 0)
            .filter(|_| raw.len() == 8)
            .ok_or_else(|| MetaError::Corrupt("sequence high-water mark".to_string())),
    }
}

impl Catalog {
    /// A catalog over `kv`. Sequence numbers come from blocks reserved in the store.
    pub fn new(kv: Arc<dyn KvStore>) -> Result<Catalog, MetaError> {
        // Fail early on a corrupt high-water mark rather than on the first write.
        decode_high_water(kv.get(Table::System, keys::SYSTEM_SEQ_KEY)?)?;
        Ok(Catalog {
            inner: Arc::new(Inner {
                kv,
                seq: Mutex::new(SeqState {
                    next: 0,
                    high_water: 0,
                }),
            }),
        })
    }

    /// A catalog in a RocksDB database at `path` (created if missing).
    pub fn open_rocks(path: &Path, sync_writes: bool) -> Result<Catalog, MetaError> {
        Catalog::new(Arc::new(RocksKvStore::open(path, sync_writes)?))
    }

    /// An empty catalog held in memory.
    pub fn in_memory() -> Catalog {
        Catalog {
            inner: Arc::new(Inner {
                kv: Arc::new(MemKvStore::new()),
                seq: Mutex::new(SeqState {
                    next: 0,
                    high_water: 0,
                }),
            }),
        }
    }

    /// The next sequence number: never 0, never handed out twice by any catalog sharing the
    /// store (even across restarts), increasing within this catalog.
    pub fn next_seq(&self) -> Result<u64, MetaError> {
        self.next_seq_above(0)
    }

    /// [`Catalog::next_seq`], but greater than `floor` too (a version must sort above the one
    /// it replaces, even when another catalog wrote that one from a later block).
    pub fn next_seq_above(&self, floor: u64) -> Result<u64, MetaError> {
        let mut state = lock(&self.inner.seq);
        if state.next <= floor {
            state.next = floor.saturating_add(1);
        }
        if state.next >= state.high_water {
            let wanted = state.next.max(1);
            let (start, high_water) = txn::run(self.kv(), |txn| {
                let stored = decode_high_water(txn.get(Table::System, keys::SYSTEM_SEQ_KEY)?)?;
                let start = stored.max(wanted);
                let high_water = start
                    .checked_add(SEQ_BLOCK)
                    .ok_or_else(|| MetaError::Corrupt("sequence exhausted".to_string()))?;
                txn.put(
                    Table::System,
                    keys::SYSTEM_SEQ_KEY,
                    high_water.to_be_bytes().to_vec(),
                );
                Ok((start, high_water))
            })?;
            state.next = start;
            state.high_water = high_water;
        }
        let seq = state.next;
        state.next += 1;
        Ok(seq)
    }

    /// When this catalog was created (milliseconds since the epoch), recorded by the first
    /// call on a new catalog (the gateway makes it at start). Nothing the catalog references
    /// can be older, so a shard group made before it belongs to a catalog that was lost or
    /// replaced: the orphan scan never deletes such shards (they are what a restore brings
    /// back). A restored backup or etcd snapshot keeps its catalog's original time.
    pub fn birth_ms(&self) -> Result<u64, MetaError> {
        if let Some(raw) = self.kv().get(Table::System, keys::SYSTEM_BIRTH_KEY)? {
            return decode_birth(&raw);
        }
        let now = now_ms().to_be_bytes().to_vec();
        let stored = self.transact(|txn| {
            if let Some(existing) = txn.get(Table::System, keys::SYSTEM_BIRTH_KEY)? {
                return Ok(existing);
            }
            txn.put(Table::System, keys::SYSTEM_BIRTH_KEY.to_vec(), now.clone());
            Ok(now.clone())
        })?;
        decode_birth(&stored)
    }

    /// A caller-owned value of the `system` table (keys, settings).
    pub fn get_system(&self, name: &str) -> Result<Option<Vec<u8>>, MetaError> {
        self.kv().get(Table::System, &keys::system_user_key(name))
    }

    /// Stores a caller-owned value in the `system` table.
    pub fn put_system(&self, name: &str, value: &[u8]) -> Result<(), MetaError> {
        self.transact(|txn| {
            txn.put(Table::System, keys::system_user_key(name), value.to_vec());
            Ok(())
        })
    }

    /// Stores `value` under `name` unless a value is there already; returns the value that is
    /// stored afterwards (the existing one, or `value`). Every catalog sharing the store agrees
    /// on the first value written (cluster settings, the first credentials).
    pub fn put_system_if_absent(&self, name: &str, value: &[u8]) -> Result<Vec<u8>, MetaError> {
        self.transact(|txn| {
            let key = keys::system_user_key(name);
            if let Some(existing) = txn.get(Table::System, &key)? {
                return Ok(existing);
            }
            txn.put(Table::System, key, value.to_vec());
            Ok(value.to_vec())
        })
    }

    /// Creates a bucket with a fresh id; `Err(BucketExists)` if the name is taken.
    pub fn create_bucket(
        &self,
        name: &str,
        owner: &str,
        region: &str,
        now_ms: u64,
    ) -> Result<BucketRecord, MetaError> {
        let record = BucketRecord {
            name: name.to_string(),
            id: uuid::Uuid::now_v7().into_bytes(),
            created_ms: now_ms,
            owner: owner.to_string(),
            region: region.to_string(),
            default_encryption: None,
            access: None,
        };
        self.transact(|txn| {
            if txn.get(Table::Buckets, name.as_bytes())?.is_some() {
                return Err(MetaError::BucketExists);
            }
            txn.put_record(Table::Buckets, name.as_bytes(), &record)?;
            txn.put(
                Table::System,
                keys::system_bucket_id_key(&record.id),
                name.as_bytes(),
            );
            identity::bump_generation(txn)
        })?;
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
    /// object head exists. One small transaction removes the bucket (so every operation on it
    /// fails from then on) and queues a [`model::CleanupJob::Bucket`] that removes its leftover
    /// rows in bounded steps ([`Catalog::cleanup_step`]): delete markers, completed-upload
    /// records, and its multipart uploads (aborted: their shard groups queued to GC, due now).
    pub fn delete_bucket(&self, name: &str) -> Result<(), MetaError> {
        let due = now_ms();
        self.transact(|txn| {
            let record: BucketRecord = txn
                .get_record(Table::Buckets, name.as_bytes())?
                .ok_or(MetaError::NoSuchBucket)?;
            let bid = record.id;
            let bucket_end = keys::successor(&bid);
            // Checked: an object committed meanwhile makes this transaction conflict.
            if !txn.scan(Table::Objects, &bid, &bucket_end, 1)?.is_empty() {
                return Err(MetaError::BucketNotEmpty);
            }
            // Removing the id row makes every in-flight operation on the bucket conflict.
            txn.get(Table::System, &keys::system_bucket_id_key(&bid))?;
            txn.delete(Table::Buckets, name.as_bytes());
            txn.delete(Table::System, keys::system_bucket_id_key(&bid));
            identity::bump_generation(txn)?;
            let job = model::CleanupJob::Bucket {
                bucket: bid,
                stage: 0,
                after: Vec::new(),
                due_ms: due,
            };
            txn.put_record(Table::System, cleanup::bucket_job_key(&bid), &job)
        })
    }

    fn kv(&self) -> &dyn KvStore {
        self.inner.kv.as_ref()
    }

    /// Drops the store's history older than `keep` (etcd: compaction), see
    /// [`KvStore::compact_history`]. Run by the background leader.
    pub fn compact_history(&self, keep: std::time::Duration) -> Result<Option<u64>, MetaError> {
        self.kv().compact_history(keep)
    }

    /// Runs `body` as one optimistic transaction on this catalog's store (see [`crate::txn`]).
    fn transact<T>(
        &self,
        body: impl FnMut(&mut Txn<'_>) -> Result<T, MetaError>,
    ) -> Result<T, MetaError> {
        txn::run(self.kv(), body)
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

    /// Every row in `[start, end)` (empty `end` = unbounded), read page by page from one view.
    fn scan_all(&self, table: Table, start: &[u8], end: &[u8]) -> Result<Vec<Row>, MetaError> {
        self.transact(|txn| txn.scan_all(table, start, end))
    }
}

/// Adds the removal of the `done` intent rows to `txn`; fails if one no longer exists (it was
/// collected as stale, so its shards are queued for deletion).
fn consume_intents(txn: &mut Txn<'_>, done: &[[u8; 16]]) -> Result<(), MetaError> {
    for group in done {
        if txn.get(Table::Intents, group)?.is_none() {
            return Err(MetaError::Db(format!(
                "write intent of shard group {} is gone (collected as stale)",
                hex::encode(group)
            )));
        }
        txn.delete(Table::Intents, group.to_vec());
    }
    Ok(())
}

/// `Err(NoSuchBucket)` unless bucket `bid` exists; checked, so a concurrent `delete_bucket`
/// makes the transaction conflict.
fn require_bucket(txn: &mut Txn<'_>, bid: &BucketId) -> Result<(), MetaError> {
    match txn.get(Table::System, &keys::system_bucket_id_key(bid))? {
        Some(_) => Ok(()),
        None => Err(MetaError::NoSuchBucket),
    }
}

/// Adds a GC queue row for `layout`, due at `due_ms`. The row key is `due ‖ group`; a partial
/// layout (some slots [`NO_NODE`]: one replaced shard) appends its first node, so several
/// replaced shards of one group can wait side by side.
fn queue_gc(
    txn: &mut Txn<'_>,
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
    txn.put_record(Table::Gc, key, &item)
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
