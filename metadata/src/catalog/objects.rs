//! Object operations: conditional commit of a version, read, delete.
//!
//! Invariants: a commit or delete is one batch written under the key's stripe lock, after the
//! condition was checked against the head read under that same lock (so two racing
//! `IfNoneMatchAny` writers cannot both win). Shard groups of a replaced or deleted version
//! are queued to GC in the same batch — except groups the new version still references.

use super::repair::put_placement_into;
use super::{queue_gc, referenced_groups, Catalog};
use crate::keys;
use crate::kv::{Table, WriteBatch};
use crate::model::{
    self, BucketId, CompletedUploadRecord, LayoutOwner, ObjectHead, UploadRecord, VersionRecord,
};
use crate::MetaError;

/// Attempts at reading a head and its version row consistently without a lock.
const GET_RETRIES: usize = 8;

/// Precondition of a write, checked atomically with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteCondition {
    None,
    /// The key must not exist (`If-None-Match: *`).
    IfNoneMatchAny,
    /// The live version's ETag must equal this one (unquoted; `*` means "the key exists").
    IfMatch(String),
}

/// ETags compared without surrounding quotes.
fn etag_matches(stored: &str, wanted: &str) -> bool {
    stored.trim_matches('"') == wanted.trim_matches('"')
}

impl WriteCondition {
    fn check(&self, head: Option<&ObjectHead>) -> Result<(), MetaError> {
        let ok = match (self, head) {
            (WriteCondition::None, _) => true,
            (WriteCondition::IfNoneMatchAny, head) => head.is_none(),
            (WriteCondition::IfMatch(_), None) => false,
            (WriteCondition::IfMatch(wanted), Some(head)) => {
                wanted == "*" || etag_matches(&head.etag, wanted)
            }
        };
        if ok {
            Ok(())
        } else {
            Err(MetaError::PreconditionFailed)
        }
    }
}

impl Catalog {
    /// The live version of `key`, if any.
    pub fn get_object(
        &self,
        bucket: &BucketId,
        key: &str,
    ) -> Result<Option<VersionRecord>, MetaError> {
        // Lock-free read: a commit between reading the head and its version row replaces both,
        // so a missing version row means "read again", not corruption — unless it persists.
        for _ in 0..GET_RETRIES {
            let Some(head) = self.get_head(bucket, key)? else {
                return Ok(None);
            };
            if let Some(version) = self.get_version(bucket, key, head.seq)? {
                return Ok(Some(version));
            }
            if self.get_head(bucket, key)?.as_ref() == Some(&head) {
                break;
            }
        }
        Err(MetaError::Corrupt(format!(
            "head of {key:?} without version row"
        )))
    }

    /// Atomically: checks `cond`, writes the `versions` row and the `objects` head row, removes
    /// the `intents_done` intent rows (`Err(Db)` if one is gone: it was collected as stale),
    /// writes the placement rows of every sharded part (owned by this version), queues a repair
    /// for each new group (`intents_done`) written with missing shards, queues every sharded
    /// part of the replaced version (if any) to GC due at `now_ms + gc_delay_ms`, and returns
    /// the replaced version.
    ///
    /// A `version.seq` of 0 is replaced by [`Catalog::next_seq`]; an empty `version_id` by one
    /// derived from the seq plus random bytes. With `upload`, the same batch removes that
    /// upload and all its part rows, queueing to GC every part attempt whose shard group
    /// `version.parts` does not reference; `Err(NoSuchUpload)` if the upload is already gone.
    #[allow(clippy::too_many_arguments)]
    pub fn commit_version(
        &self,
        bucket: &BucketId,
        key: &str,
        mut version: VersionRecord,
        cond: WriteCondition,
        intents_done: &[[u8; 16]],
        upload: Option<&UploadRecord>,
        now_ms: u64,
        gc_delay_ms: u64,
    ) -> Result<Option<VersionRecord>, MetaError> {
        let _guard = self.lock_key(bucket, key);
        let _intents = self.lock_intents(intents_done);
        self.require_bucket(bucket)?;
        let head = self.get_head(bucket, key)?;
        cond.check(head.as_ref())?;
        if let Some(upload) = upload {
            if upload.bucket_id != *bucket || upload.key != key {
                return Err(MetaError::NoSuchUpload);
            }
            self.require_upload(upload)?;
        }
        if version.seq == 0 {
            version.seq = self.next_seq()?;
        }
        if version.version_id.is_empty() {
            version.version_id = super::opaque_id(version.seq);
        }
        let replaced = match &head {
            Some(head) => self.get_version(bucket, key, head.seq)?,
            None => None,
        };
        let due = now_ms.saturating_add(gc_delay_ms);
        let kept = referenced_groups(&version);

        let mut batch = WriteBatch::new();
        batch.put(
            Table::Versions,
            keys::version_key(bucket, key.as_bytes(), version.seq),
            model::encode(&version)?,
        );
        let object_row = keys::object_key(bucket, key.as_bytes());
        if version.delete_marker {
            batch.delete(Table::Objects, object_row);
        } else {
            batch.put(Table::Objects, object_row, model::encode(&version.head())?);
        }
        if let Some(head) = &head {
            if head.seq != version.seq {
                batch.delete(
                    Table::Versions,
                    keys::version_key(bucket, key.as_bytes(), head.seq),
                );
            }
        }
        self.consume_intents(&mut batch, intents_done)?;
        let owner = LayoutOwner::Version {
            bucket: *bucket,
            key: key.to_string(),
            seq: version.seq,
        };
        for layout in version.parts.iter().filter_map(|p| p.data.sharded()) {
            put_placement_into(&mut batch, layout, &owner)?;
            if !layout.missing.is_empty() && intents_done.contains(&layout.group) {
                self.queue_repair_into(
                    &mut batch,
                    layout.group,
                    "missing at write",
                    &layout.missing,
                    now_ms,
                )?;
            }
        }
        if let Some(old) = &replaced {
            for layout in old.parts.iter().filter_map(|p| p.data.sharded()) {
                if !kept.contains(&layout.group) {
                    queue_gc(&mut batch, layout, due, "replaced")?;
                }
            }
        }
        // The completed-upload record follows the live version: the replaced version's goes,
        // and an upload completing here leaves one naming the new version.
        let completed_row = keys::system_completed_upload_key(bucket, key.as_bytes());
        batch.delete(Table::System, completed_row.clone());
        if let Some(upload) = upload {
            batch.delete(
                Table::Uploads,
                keys::upload_key(bucket, key.as_bytes(), upload.useq),
            );
            self.remove_parts_into(&mut batch, upload.useq, &kept, due, "unused part")?;
            let completed = CompletedUploadRecord {
                upload_id: upload.upload_id.clone(),
                seq: version.seq,
                completed_ms: now_ms,
            };
            batch.put(Table::System, completed_row, model::encode(&completed)?);
        }
        self.kv().write(batch)?;
        Ok(replaced)
    }

    /// Removes the head and version rows of `key` and queues its shard groups to GC due at
    /// `now_ms + gc_delay_ms`. Returns the removed version; `Ok(None)` if there was none.
    pub fn delete_object(
        &self,
        bucket: &BucketId,
        key: &str,
        now_ms: u64,
        gc_delay_ms: u64,
    ) -> Result<Option<VersionRecord>, MetaError> {
        let _guard = self.lock_key(bucket, key);
        let Some(head) = self.get_head(bucket, key)? else {
            return Ok(None);
        };
        let removed = self.get_version(bucket, key, head.seq)?;
        let mut batch = WriteBatch::new();
        batch.delete(Table::Objects, keys::object_key(bucket, key.as_bytes()));
        batch.delete(
            Table::System,
            keys::system_completed_upload_key(bucket, key.as_bytes()),
        );
        batch.delete(
            Table::Versions,
            keys::version_key(bucket, key.as_bytes(), head.seq),
        );
        if let Some(version) = &removed {
            let due = now_ms.saturating_add(gc_delay_ms);
            for layout in version.parts.iter().filter_map(|p| p.data.sharded()) {
                queue_gc(&mut batch, layout, due, "deleted")?;
            }
        }
        self.kv().write(batch)?;
        Ok(removed)
    }

    /// Sets (or with `None` removes) the stored header `name` of the live version of `key`
    /// in place: same seq, ETag and mtime, one batch under the key's stripe lock (object
    /// tagging changes a version without making a new one). `Ok(None)` if `key` has no live
    /// version.
    pub fn set_version_header(
        &self,
        bucket: &BucketId,
        key: &str,
        name: &str,
        value: Option<String>,
    ) -> Result<Option<VersionRecord>, MetaError> {
        let _guard = self.lock_key(bucket, key);
        self.require_bucket(bucket)?;
        let Some(head) = self.get_head(bucket, key)? else {
            return Ok(None);
        };
        let Some(mut version) = self.get_version(bucket, key, head.seq)? else {
            return Err(MetaError::Corrupt(format!(
                "head of {key:?} without version row"
            )));
        };
        version.headers.retain(|(n, _)| n != name);
        if let Some(value) = value {
            version.headers.push((name.to_string(), value));
        }
        let mut batch = WriteBatch::new();
        batch.put(
            Table::Versions,
            keys::version_key(bucket, key.as_bytes(), version.seq),
            model::encode(&version)?,
        );
        self.kv().write(batch)?;
        Ok(Some(version))
    }

    /// The live version of `key` if multipart upload `upload_id` made it (and nothing has
    /// replaced or deleted it since): what a repeated CompleteMultipartUpload answers with.
    pub fn completed_upload(
        &self,
        bucket: &BucketId,
        key: &str,
        upload_id: &str,
    ) -> Result<Option<VersionRecord>, MetaError> {
        let record: Option<CompletedUploadRecord> = self.get_record(
            Table::System,
            &keys::system_completed_upload_key(bucket, key.as_bytes()),
        )?;
        let Some(record) = record.filter(|r| r.upload_id == upload_id) else {
            return Ok(None);
        };
        let Some(head) = self.get_head(bucket, key)? else {
            return Ok(None);
        };
        if head.seq != record.seq {
            return Ok(None);
        }
        self.get_version(bucket, key, head.seq)
    }

    fn get_head(&self, bucket: &BucketId, key: &str) -> Result<Option<ObjectHead>, MetaError> {
        self.get_record(Table::Objects, &keys::object_key(bucket, key.as_bytes()))
    }

    fn get_version(
        &self,
        bucket: &BucketId,
        key: &str,
        seq: u64,
    ) -> Result<Option<VersionRecord>, MetaError> {
        self.get_record(
            Table::Versions,
            &keys::version_key(bucket, key.as_bytes(), seq),
        )
    }
}
