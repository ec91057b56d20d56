//! [`RocksKvStore`] in a build without the `rocksdb` feature (the fuzz harness, which must not
//! compile RocksDB's C++): the same public surface, but `open` always fails, so no value of the
//! type can exist and every method is unreachable by construction.

use std::convert::Infallible;
use std::path::Path;

use crate::kv::{Check, KvStore, KvView, WriteBatch};
use crate::MetaError;

/// Uninhabited: this build has no RocksDB.
#[derive(Debug)]
pub struct RocksKvStore {
    never: Infallible,
}

impl RocksKvStore {
    /// Always `Err`: this build was made without the `rocksdb` feature.
    pub fn open(path: &Path, sync_writes: bool) -> Result<RocksKvStore, MetaError> {
        let _ = (path, sync_writes);
        Err(MetaError::Db(
            "this build of strata has no RocksDB (the metadata crate's `rocksdb` feature is off)"
                .to_string(),
        ))
    }

    pub fn checkpoint(&self, path: &Path) -> Result<(), MetaError> {
        let _ = path;
        match self.never {}
    }
}

impl KvStore for RocksKvStore {
    fn view(&self) -> Result<Box<dyn KvView + '_>, MetaError> {
        match self.never {}
    }

    fn commit(&self, checks: Vec<Check>, batch: WriteBatch) -> Result<(), MetaError> {
        let _ = (checks, batch);
        match self.never {}
    }
}
