//! The narrow ordered key-value interface the catalog is written against, and its in-memory
//! implementation.
//!
//! Invariants every implementation keeps: keys within a [`Table`] are ordered bytewise; a
//! [`WriteBatch`] is applied atomically (all of its operations or none) and, in the same batch,
//! later operations on a key win over earlier ones; `scan` returns rows in key order.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Mutex;

use crate::MetaError;

/// One row of a scan: (key, value).
pub type Row = (Vec<u8>, Vec<u8>);

type Tables = BTreeMap<Table, BTreeMap<Vec<u8>, Vec<u8>>>;

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
}

impl Table {
    /// Every table, in a fixed order.
    pub const ALL: [Table; 10] = [
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

/// A list of writes applied atomically by [`KvStore::write`].
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
}

/// An ordered key-value store with one keyspace per [`Table`].
pub trait KvStore: Send + Sync {
    /// The value stored under `key`, if any.
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, MetaError>;

    /// Applies every operation of `batch` atomically (durably, when the store syncs writes).
    fn write(&self, batch: WriteBatch) -> Result<(), MetaError>;

    /// Up to `limit` rows with `start <= key < end`, in key order. An empty `end` means no upper
    /// bound.
    fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<Row>, MetaError>;
}

/// A [`KvStore`] held in memory: one `BTreeMap` per table behind a single mutex, which makes
/// batches trivially atomic. For tests and throwaway servers.
#[derive(Debug, Default)]
pub struct MemKvStore {
    tables: Mutex<Tables>,
}

impl MemKvStore {
    pub fn new() -> MemKvStore {
        MemKvStore::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        // A panic while holding the lock cannot leave a half-applied batch (batches are applied
        // after validation, op by op, without fallible steps), so a poisoned lock is still sound.
        self.tables
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl KvStore for MemKvStore {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, MetaError> {
        Ok(self.lock().get(&table).and_then(|t| t.get(key).cloned()))
    }

    fn write(&self, batch: WriteBatch) -> Result<(), MetaError> {
        let mut tables = self.lock();
        for op in batch.ops {
            match op {
                Op::Put { table, key, value } => {
                    tables.entry(table).or_default().insert(key, value);
                }
                Op::Delete { table, key } => {
                    if let Some(t) = tables.get_mut(&table) {
                        t.remove(&key);
                    }
                }
            }
        }
        Ok(())
    }

    fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<Row>, MetaError> {
        let tables = self.lock();
        let Some(t) = tables.get(&table) else {
            return Ok(Vec::new());
        };
        if !end.is_empty() && start >= end {
            return Ok(Vec::new());
        }
        let upper = if end.is_empty() {
            Bound::Unbounded
        } else {
            Bound::Excluded(end)
        };
        Ok(t.range::<[u8], _>((Bound::Included(start), upper))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
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
}
