//! Encryption-at-rest metadata: a bucket's default encryption, and the bounded rewrap of the
//! wrapped data keys stored in version and upload rows (master-key rotation).
//!
//! The catalog treats [`EncryptionRecord`]s as opaque: the caller decides what a rewrapped
//! record is. Each rewrap step is one transaction over at most `limit` rows of one table, so a
//! store of any size is rewrapped in small transactions (the catalog may be etcd).

use super::Catalog;
use crate::keys;
use crate::kv::Table;
use crate::model::{
    self, BucketEncryption, BucketRecord, EncryptionRecord, UploadRecord, VersionRecord,
};
use crate::MetaError;

/// Which rows a rewrap step walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RewrapTable {
    Versions,
    Uploads,
}

/// The outcome of one rewrap step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RewrapStep {
    /// Row key to continue after; `None` when the table is done.
    pub next: Option<Vec<u8>>,
    pub scanned: usize,
    pub rewrapped: usize,
}

impl Catalog {
    /// Sets (or with `None` removes) the default encryption of bucket `name`.
    pub fn set_bucket_encryption(
        &self,
        name: &str,
        encryption: Option<BucketEncryption>,
    ) -> Result<BucketRecord, MetaError> {
        self.transact(|txn| {
            let mut record: BucketRecord = txn
                .get_record(Table::Buckets, name.as_bytes())?
                .ok_or(MetaError::NoSuchBucket)?;
            record.default_encryption = encryption.clone();
            txn.put_record(Table::Buckets, name.as_bytes(), &record)?;
            Ok(record)
        })
    }

    /// Rewraps the encryption records of at most `limit` rows of `table` after row key `after`
    /// (empty: from the start) in one transaction. `rewrap` returns the new record, or `None`
    /// to leave a row as it is.
    pub fn rewrap_step(
        &self,
        table: RewrapTable,
        after: &[u8],
        limit: usize,
        rewrap: &dyn Fn(&EncryptionRecord) -> Option<EncryptionRecord>,
    ) -> Result<RewrapStep, MetaError> {
        let kv_table = match table {
            RewrapTable::Versions => Table::Versions,
            RewrapTable::Uploads => Table::Uploads,
        };
        let start = if after.is_empty() {
            Vec::new()
        } else {
            keys::next_key(after)
        };
        let limit = limit.max(1);
        self.transact(|txn| {
            let rows = txn.scan(kv_table, &start, b"", limit)?;
            let mut step = RewrapStep {
                next: None,
                scanned: rows.len(),
                rewrapped: 0,
            };
            for (key, value) in &rows {
                match table {
                    RewrapTable::Versions => {
                        let mut record: VersionRecord = model::decode(value)?;
                        if let Some(new) = record.encryption.as_ref().and_then(rewrap) {
                            record.encryption = Some(new);
                            txn.put_record(kv_table, key.clone(), &record)?;
                            step.rewrapped += 1;
                        }
                    }
                    RewrapTable::Uploads => {
                        let mut record: UploadRecord = model::decode(value)?;
                        if let Some(new) = record.encryption.as_ref().and_then(rewrap) {
                            record.encryption = Some(new);
                            txn.put_record(kv_table, key.clone(), &record)?;
                            step.rewrapped += 1;
                        }
                    }
                }
            }
            if rows.len() == limit {
                step.next = rows.last().map(|(key, _)| key.clone());
            }
            Ok(step)
        })
    }
}
