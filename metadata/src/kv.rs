//! The narrow ordered key-value interface the catalog is written against — consistent views,
//! optimistic commits — and its in-memory implementation.
//!
//! The model (what every back end provides, and all the catalog relies on):
//! - keys within a [`Table`] are ordered bytewise; `scan` returns rows in key order;
//! - [`KvStore::view`] is a consistent snapshot: every read through one view sees the same
//!   committed state, taken no earlier than `view()` and no later than the view's first read;
//! - every read returns a [`Stamp`] of what it saw; [`KvStore::commit`] applies a
//!   [`WriteBatch`] atomically (all of its operations or none; later operations on a key win)
//!   **only if** every [`Check`] still holds, and answers [`MetaError::Conflict`] otherwise;
//! - a [`Check::Row`] holds while the row is exactly as seen (present with the same stamp, or
//!   still absent); a [`Check::Range`] holds while no row of the range was created or changed
//!   since it was read. A back end may also detect deletions inside a range (the local ones
//!   do), but callers must not rely on it: where a deletion matters, check the row itself;
//! - [`KvStore::limits`] bounds what one commit may carry (etcd refuses transactions over 128
//!   operations or ~1.5 MB by default); callers size their transactions to fit.
//!
//! A back end for TiKV or FoundationDB maps onto this directly: their snapshots are views,
//! their optimistic transactions' conflict detection replaces the checks (a back end may
//! validate the checks itself or hand the read set to the engine), and `limits` carries their
//! transaction size limits (10 MB / 5 s for FoundationDB).

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use crate::MetaError;

/// One row of a scan: (key, value).
pub type Row = (Vec<u8>, Vec<u8>);

/// What a point read found: the value and its stamp, if the row exists.
pub type Found = Option<(Vec<u8>, Stamp)>;

type TableRows = BTreeMap<Vec<u8>, Vec<u8>>;
type Tables = BTreeMap<Table, Arc<TableRows>>;

/// One table per RocksDB column family (DESIGN §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Buckets,
    Objects,
    Versions,
    Uploads,
    Parts,
    Intents,
    Gc,
    Repair,
    Placement,
    System,
    /// Users, access keys and named identity policies (`catalog::identity`).
    Identity,
}

impl Table {
    /// Every table, in a fixed order.
    pub const ALL: [Table; 11] = [
        Table::Buckets,
        Table::Objects,
        Table::Versions,
        Table::Uploads,
        Table::Parts,
        Table::Intents,
        Table::Gc,
        Table::Repair,
        Table::Placement,
        Table::System,
        Table::Identity,
    ];

    /// The column family name.
    pub fn name(self) -> &'static str {
        match self {
            Table::Buckets => "buckets",
            Table::Objects => "objects",
            Table::Versions => "versions",
            Table::Uploads => "uploads",
            Table::Parts => "parts",
            Table::Intents => "intents",
            Table::Gc => "gc",
            Table::Repair => "repair",
            Table::Placement => "placement",
            Table::System => "system",
            Table::Identity => "identity",
        }
    }

    /// A one-byte tag, stable forever: key prefixes in back ends with a single keyspace.
    pub fn tag(self) -> u8 {
        match self {
            Table::Buckets => b'b',
            Table::Objects => b'o',
            Table::Versions => b'v',
            Table::Uploads => b'u',
            Table::Parts => b'p',
            Table::Intents => b'i',
            Table::Gc => b'g',
            Table::Repair => b'r',
            Table::Placement => b'l',
            Table::System => b's',
            Table::Identity => b'a',
        }
    }
}

/// One operation of a [`WriteBatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put {
        table: Table,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        table: Table,
        key: Vec<u8>,
    },
}

impl Op {
    pub fn table(&self) -> Table {
        match self {
            Op::Put { table, .. } | Op::Delete { table, .. } => *table,
        }
    }

    pub fn key(&self) -> &[u8] {
        match self {
            Op::Put { key, .. } | Op::Delete { key, .. } => key,
        }
    }

    /// Bytes this operation adds to a request (key and value).
    pub fn size(&self) -> usize {
        match self {
            Op::Put { key, value, .. } => key.len() + value.len(),
            Op::Delete { key, .. } => key.len(),
        }
    }
}

/// A list of writes applied atomically by [`KvStore::commit`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    pub ops: Vec<Op>,
}

impl WriteBatch {
    pub fn new() -> WriteBatch {
        WriteBatch::default()
    }

    pub fn put(&mut self, table: Table, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(Op::Put {
            table,
            key: key.into(),
            value: value.into(),
        });
    }

    pub fn delete(&mut self, table: Table, key: impl Into<Vec<u8>>) {
        self.ops.push(Op::Delete {
            table,
            key: key.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Bytes of every key and value in the batch.
    pub fn size(&self) -> usize {
        self.ops.iter().map(Op::size).sum()
    }
}

/// What a read saw, in the back end's own terms (a value hash, a revision): compared by
/// [`KvStore::commit`], never interpreted by callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Stamp(pub u64);

/// A condition a commit is applied under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The row is as it was read: present with stamp `seen`, or absent (`None`).
    Row {
        table: Table,
        key: Vec<u8>,
        seen: Option<Stamp>,
    },
    /// No row of `[start, end)` (empty `end`: unbounded) was created or changed since a scan
    /// that returned stamp `seen`.
    Range {
        table: Table,
        start: Vec<u8>,
        end: Vec<u8>,
        seen: Stamp,
    },
}

/// What one commit may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most checks plus operations.
    pub max_ops: usize,
    /// Most bytes of keys and values.
    pub max_bytes: usize,
}

impl Limits {
    pub const UNBOUNDED: Limits = Limits {
        max_ops: usize::MAX,
        max_bytes: usize::MAX,
    };
    /// etcd's defaults: `--max-txn-ops=128`, `--max-request-bytes=1.5 MiB` (less room for the
    /// request's own framing).
    pub const ETCD_DEFAULT: Limits = Limits {
        max_ops: 128,
        max_bytes: 1400 * 1024,
    };
}

/// A consistent read-only snapshot of a [`KvStore`].
pub trait KvView {
    /// The value stored under `key` and its stamp, if any.
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<(Vec<u8>, Stamp)>, MetaError>;

    /// [`KvView::get`] of several keys, answered in their order: one round trip where the
    /// back end is remote (etcd), the same answers as one `get` each.
    fn get_many(&self, keys: &[(Table, &[u8])]) -> Result<Vec<Found>, MetaError> {
        keys.iter()
            .map(|(table, key)| self.get(*table, key))
            .collect()
    }

    /// Up to `limit` rows with `start <= key < end` (empty `end`: no upper bound), in key
    /// order, and the stamp of the range they cover (see [`covered_end`]).
    fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<(Vec<Row>, Stamp), MetaError>;
}

/// An ordered key-value store with one keyspace per [`Table`].
pub trait KvStore: Send + Sync {
    /// A consistent snapshot to read from.
    fn view(&self) -> Result<Box<dyn KvView + '_>, MetaError>;

    /// Applies `batch` atomically (durably, when the store syncs writes) if every check holds;
    /// `Err(Conflict)` without applying anything otherwise.
    fn commit(&self, checks: Vec<Check>, batch: WriteBatch) -> Result<(), MetaError>;

    /// What one commit may carry.
    fn limits(&self) -> Limits {
        Limits::UNBOUNDED
    }

    /// Forgets history no view can still need. A back end that keeps old versions of rows
    /// until told otherwise (etcd keeps every revision until it is compacted, and refuses
    /// all writes once its database reaches its space quota) drops those that were replaced
    /// more than `keep` ago; a view pinned that far back then reads `Conflict` and its
    /// transaction runs again. Returns the back end's oldest readable revision, or `None` if
    /// it keeps no history (RocksDB snapshots and memory views need no such care).
    fn compact_history(&self, keep: std::time::Duration) -> Result<Option<u64>, MetaError> {
        let _ = keep;
        Ok(None)
    }

    /// One row, read from a fresh view.
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, MetaError> {
        Ok(self.view()?.get(table, key)?.map(|(value, _)| value))
    }

    /// One scan, read from a fresh view.
    fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<Row>, MetaError> {
        Ok(self.view()?.scan(table, start, end, limit)?.0)
    }

    /// Applies `batch` unconditionally.
    fn write(&self, batch: WriteBatch) -> Result<(), MetaError> {
        self.commit(Vec::new(), batch)
    }
}

/// The end of the range a scan of `[start, end)` limited to `limit` rows has covered: `end`
/// when it returned fewer rows, otherwise just past the last row returned.
pub fn covered_end(rows: &[Row], end: &[u8], limit: usize) -> Vec<u8> {
    match rows.last() {
        Some((last, _)) if rows.len() >= limit => crate::keys::next_key(last),
        _ => end.to_vec(),
    }
}

/// The stamp local back ends give a row: a hash of its value.
pub fn value_stamp(value: &[u8]) -> Stamp {
    Stamp(xxhash_rust::xxh3::xxh3_64(value))
}

/// The stamp local back ends give a scanned range: a hash of its rows, keys and values.
pub fn rows_stamp(rows: &[Row]) -> Stamp {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for (key, value) in rows {
        hasher.update(&(key.len() as u64).to_be_bytes());
        hasher.update(key);
        hasher.update(&(value.len() as u64).to_be_bytes());
        hasher.update(value);
    }
    Stamp(hasher.digest())
}

/// Read access to the current state, for validating checks in local back ends.
pub trait CurrentState {
    fn current(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, MetaError>;
    fn current_scan(
        &self,
        table: Table,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<Row>, MetaError>;
}

/// Whether every check holds against `state`, with local stamps ([`value_stamp`],
/// [`rows_stamp`]). A range holds when rescanning it gives the same rows (so local back ends
/// detect deletions too).
pub fn checks_hold(state: &dyn CurrentState, checks: &[Check]) -> Result<bool, MetaError> {
    for check in checks {
        let holds = match check {
            Check::Row { table, key, seen } => {
                state.current(*table, key)?.as_deref().map(value_stamp) == *seen
            }
            Check::Range {
                table,
                start,
                end,
                seen,
            } => {
                let rows = state.current_scan(*table, start, end, usize::MAX)?;
                rows_stamp(&rows) == *seen
            }
        };
        if !holds {
            return Ok(false);
        }
    }
    Ok(true)
}

fn range_of<'a>(
    rows: &'a TableRows,
    start: &[u8],
    end: &[u8],
) -> impl Iterator<Item = (&'a Vec<u8>, &'a Vec<u8>)> {
    // BTreeMap::range panics on an inverted range: an empty one is simply no rows.
    let empty = !end.is_empty() && start >= end;
    let upper = if end.is_empty() {
        Bound::Unbounded
    } else {
        Bound::Excluded(end)
    };
    (!empty)
        .then(|| rows.range::<[u8], _>((Bound::Included(start), upper)))
        .into_iter()
        .flatten()
}

fn scan_tables(tables: &Tables, table: Table, start: &[u8], end: &[u8], limit: usize) -> Vec<Row> {
    match tables.get(&table) {
        None => Vec::new(),
        Some(rows) => range_of(rows, start, end)
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// A [`KvStore`] held in memory: copy-on-write tables behind one mutex, so a view is a cheap
/// clone of the table pointers and a commit validates and applies under the lock. For tests
/// and throwaway servers. `with_limits` makes it refuse commits over given limits, so tests can
/// hold the catalog to etcd's sizes without etcd.
#[derive(Debug, Default)]
pub struct MemKvStore {
    tables: Mutex<Tables>,
    limits: Option<Limits>,
}

struct MemView {
    tables: Tables,
}

impl KvView for MemView {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<(Vec<u8>, Stamp)>, MetaError> {
        Ok(self
            .tables
            .get(&table)
            .and_then(|t| t.get(key))
            .map(|v| (v.clone(), value_stamp(v))))
    }

    fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<(Vec<Row>, Stamp), MetaError> {
        let rows = scan_tables(&self.tables, table, start, end, limit);
        let stamp = rows_stamp(&rows);
        Ok((rows, stamp))
    }
}

impl CurrentState for Tables {
    fn current(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, MetaError> {
        Ok(self.get(&table).and_then(|t| t.get(key)).cloned())
    }

    fn current_scan(
        &self,
        table: Table,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<Row>, MetaError> {
        Ok(scan_tables(self, table, start, end, limit))
    }
}

/// Refuses a commit over `limits`.
pub fn check_limits(limits: Limits, checks: &[Check], batch: &WriteBatch) -> Result<(), MetaError> {
    let ops = checks.len() + batch.ops.len();
    let bytes = batch.size()
        + checks
            .iter()
            .map(|c| match c {
                Check::Row { key, .. } => key.len(),
                Check::Range { start, end, .. } => start.len() + end.len(),
            })
            .sum::<usize>();
    if ops > limits.max_ops || bytes > limits.max_bytes {
        return Err(MetaError::TooLarge { ops, bytes });
    }
    Ok(())
}

impl MemKvStore {
    pub fn new() -> MemKvStore {
        MemKvStore::default()
    }

    /// A store that refuses commits over `limits`.
    pub fn with_limits(limits: Limits) -> MemKvStore {
        MemKvStore {
            tables: Mutex::default(),
            limits: Some(limits),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        // A commit is validated first and then applied without fallible steps, so a panic
        // cannot leave a half-applied batch: a poisoned lock is still sound.
        self.tables
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl KvStore for MemKvStore {
    fn view(&self) -> Result<Box<dyn KvView + '_>, MetaError> {
        Ok(Box::new(MemView {
            tables: self.lock().clone(),
        }))
    }

    fn commit(&self, checks: Vec<Check>, batch: WriteBatch) -> Result<(), MetaError> {
        if let Some(limits) = self.limits {
            check_limits(limits, &checks, &batch)?;
        }
        let mut tables = self.lock();
        if !checks_hold(&*tables, &checks)? {
            return Err(MetaError::Conflict);
        }
        for op in batch.ops {
            match op {
                Op::Put { table, key, value } => {
                    Arc::make_mut(tables.entry(table).or_default()).insert(key, value);
                }
                Op::Delete { table, key } => {
                    if let Some(t) = tables.get_mut(&table) {
                        Arc::make_mut(t).remove(&key);
                    }
                }
            }
        }
        Ok(())
    }

    fn limits(&self) -> Limits {
        self.limits.unwrap_or(Limits::UNBOUNDED)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn mem_store_batches_and_scans_in_order() {
        let kv = MemKvStore::new();
        let mut batch = WriteBatch::new();
        for k in [b"b".as_slice(), b"a", b"c", b"d"] {
            batch.put(Table::Objects, k.to_vec(), k.to_vec());
        }
        batch.delete(Table::Objects, b"d".to_vec());
        kv.write(batch).unwrap();
        let rows = kv.scan(Table::Objects, b"a", b"c", 10).unwrap();
        let keys: Vec<_> = rows.into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(kv.scan(Table::Objects, b"", b"", 10).unwrap().len(), 3);
        assert_eq!(kv.scan(Table::Objects, b"", b"", 1).unwrap().len(), 1);
        assert_eq!(kv.get(Table::Objects, b"d").unwrap(), None);
        assert_eq!(kv.get(Table::Buckets, b"a").unwrap(), None);
        assert!(kv.scan(Table::Objects, b"c", b"a", 10).unwrap().is_empty());
    }

    #[test]
    fn covered_end_stops_at_the_last_row_of_a_full_scan() {
        let rows = vec![(b"a".to_vec(), vec![]), (b"b".to_vec(), vec![])];
        assert_eq!(covered_end(&rows, b"z", 2), b"b\0".to_vec());
        assert_eq!(covered_end(&rows, b"z", 3), b"z".to_vec());
        assert_eq!(covered_end(&[], b"", 3), Vec::<u8>::new());
    }
}
