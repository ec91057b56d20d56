//! [`RocksKvStore`]: the [`KvStore`] backed by RocksDB, one column family per [`Table`].
//!
//! Invariants: every column family exists after `open` (missing ones are created); a batch is
//! one RocksDB `WriteBatch`, so it is atomic; with `sync_writes` on, `write` returns only after
//! the WAL is fsynced.

use std::path::Path;

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DBCompressionType, Direction, IteratorMode,
    Options, ReadOptions, WriteOptions, DB,
};

use crate::kv::{KvStore, Op, Row, Table, WriteBatch};
use crate::MetaError;

/// Block cache shared by all column families.
const BLOCK_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// A RocksDB database opened with every catalog column family.
pub struct RocksKvStore {
    db: DB,
    sync_writes: bool,
}

impl std::fmt::Debug for RocksKvStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksKvStore")
            .field("path", &self.db.path())
            .field("sync_writes", &self.sync_writes)
            .finish()
    }
}

fn db_error(e: rocksdb::Error) -> MetaError {
    MetaError::Db(e.into_string())
}

impl RocksKvStore {
    /// Opens (creating if needed) the database at `path`. `sync_writes` fsyncs the WAL on every
    /// batch; turn it off only for benchmarks.
    pub fn open(path: &Path, sync_writes: bool) -> Result<RocksKvStore, MetaError> {
        let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
        let mut table_options = BlockBasedOptions::default();
        table_options.set_block_cache(&cache);
        table_options.set_bloom_filter(10.0, false);
        table_options.set_cache_index_and_filter_blocks(true);

        let mut cf_options = Options::default();
        cf_options.set_compression_type(DBCompressionType::Lz4);
        cf_options.set_block_based_table_factory(&table_options);
        cf_options.set_level_compaction_dynamic_level_bytes(true);

        let mut db_options = cf_options.clone();
        db_options.create_if_missing(true);
        db_options.create_missing_column_families(true);
        db_options.set_max_background_jobs(2);
        db_options.set_keep_log_file_num(4);
        db_options.set_bytes_per_sync(1024 * 1024);

        let descriptors = Table::ALL
            .iter()
            .map(|t| ColumnFamilyDescriptor::new(t.name(), cf_options.clone()));
        let db = DB::open_cf_descriptors(&db_options, path, descriptors).map_err(db_error)?;
        Ok(RocksKvStore { db, sync_writes })
    }

    fn cf(&self, table: Table) -> Result<&rocksdb::ColumnFamily, MetaError> {
        self.db
            .cf_handle(table.name())
            .ok_or_else(|| MetaError::Db(format!("column family {} missing", table.name())))
    }
}

impl KvStore for RocksKvStore {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, MetaError> {
        self.db.get_cf(self.cf(table)?, key).map_err(db_error)
    }

    fn write(&self, batch: WriteBatch) -> Result<(), MetaError> {
        let mut rocks_batch = rocksdb::WriteBatch::default();
        for op in &batch.ops {
            match op {
                Op::Put { table, key, value } => rocks_batch.put_cf(self.cf(*table)?, key, value),
                Op::Delete { table, key } => rocks_batch.delete_cf(self.cf(*table)?, key),
            }
        }
        let mut options = WriteOptions::default();
        options.set_sync(self.sync_writes);
        self.db.write_opt(rocks_batch, &options).map_err(db_error)
    }

    fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<Row>, MetaError> {
        if limit == 0 || (!end.is_empty() && start >= end) {
            return Ok(Vec::new());
        }
        let mut options = ReadOptions::default();
        if !end.is_empty() {
            options.set_iterate_upper_bound(end.to_vec());
        }
        let iter = self.db.iterator_cf_opt(
            self.cf(table)?,
            options,
            IteratorMode::From(start, Direction::Forward),
        );
        let mut rows = Vec::with_capacity(limit.min(1024));
        for item in iter.take(limit) {
            let (key, value) = item.map_err(db_error)?;
            rows.push((key.into_vec(), value.into_vec()));
        }
        Ok(rows)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rocks_store_roundtrips_and_bounds_scans() {
        let dir = tempfile::tempdir().unwrap();
        {
            let kv = RocksKvStore::open(dir.path(), true).unwrap();
            let mut batch = WriteBatch::new();
            batch.put(Table::Gc, b"k1".to_vec(), b"v1".to_vec());
            batch.put(Table::Gc, b"k2".to_vec(), b"v2".to_vec());
            batch.put(Table::Gc, b"k3".to_vec(), b"v3".to_vec());
            batch.delete(Table::Gc, b"k3".to_vec());
            kv.write(batch).unwrap();
            let rows = kv.scan(Table::Gc, b"k1", b"k2", 10).unwrap();
            assert_eq!(rows, vec![(b"k1".to_vec(), b"v1".to_vec())]);
            assert!(kv.get(Table::Objects, b"k1").unwrap().is_none());
        }
        let kv = RocksKvStore::open(dir.path(), false).unwrap();
        assert_eq!(kv.get(Table::Gc, b"k2").unwrap(), Some(b"v2".to_vec()));
        assert_eq!(kv.scan(Table::Gc, b"", b"", 10).unwrap().len(), 2);
    }
}
