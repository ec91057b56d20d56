//! Object operations: conditional commit of a version, read, delete.
//!
//! Invariants: a commit or delete is one transaction whose condition is checked against the
//! head it read with a checked read (so of two racing `IfNoneMatchAny` writers exactly one
//! commits; the other conflicts, runs again and fails its condition). Shard groups of a
//! replaced or deleted version are queued to GC — except groups the new version still
//! references — in the same transaction when there are few (at most
//! `cleanup::INLINE_GC_LAYOUTS`), otherwise by a cleanup job the same transaction queues (the
//! version row stays, not live, until that job is done). A version is live iff the head row
//! names its seq.

use std::collections::HashSet;

use super::cleanup::{retire_version, upload_job_key};
use super::repair::publish_layout;
use super::{consume_intents, queue_gc, referenced_groups, require_bucket, Catalog};
use crate::keys;
use crate::kv::Table;
use crate::model::{
    BucketId, CleanupJob, CompletedUploadRecord, LayoutOwner, ObjectAccess, ObjectHead,
    UploadRecord, VersionRecord,
};
use crate::txn::Txn;
use crate::MetaError;

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
    /// The live version of `key`, if any (head and version row read from one view).
    pub fn get_object(
        &self,
        bucket: &BucketId,
        key: &str,
    ) -> Result<Option<VersionRecord>, MetaError> {
        self.transact(|txn| live_version(txn, bucket, key))
    }

    /// Atomically: checks `cond`, writes the `versions` row and the `objects` head row, removes
    /// the `intents_done` intent rows (`Err(Db)` if one is gone: it was collected as stale),
    /// writes the placement rows of every sharded part (owned by this version), queues a repair
    /// for each new group (`intents_done`) written with missing shards, retires the replaced
    /// version (if any: its sharded parts go to GC due at `now_ms + gc_delay_ms`, directly or
    /// through a cleanup job, see the module doc), and returns the replaced version.
    ///
    /// A `version.seq` of 0 is replaced by [`Catalog::next_seq`]; an empty `version_id` by one
    /// derived from the seq plus random bytes. With `upload` (CompleteMultipartUpload), the same
    /// batch removes that upload row, records the completed upload, and queues a cleanup job
    /// that removes its part rows in bounded steps, queueing to GC every part attempt whose
    /// shard group `version.parts` does not reference; `Err(NoSuchUpload)` if the upload is
    /// already gone. The layouts taken from the upload's parts keep their part-owned placement
    /// rows (resolved through the completed-upload record), so this transaction has the same
    /// size whatever the number of parts; only groups in `intents_done` get new placement rows.
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
        let due = now_ms.saturating_add(gc_delay_ms);
        let assign_seq = version.seq == 0;
        let assign_id = version.version_id.is_empty();
        self.transact(|txn| {
            prefetch_bucket_and_head(txn, bucket, key)?;
            require_bucket(txn, bucket)?;
            let head = get_head(txn, bucket, key)?;
            cond.check(head.as_ref())?;
            if let Some(upload) = upload {
                if upload.bucket_id != *bucket || upload.key != key {
                    return Err(MetaError::NoSuchUpload);
                }
                super::multipart::require_upload(txn, upload)?;
            }
            if assign_seq {
                let floor = head.as_ref().map_or(0, |h| h.seq);
                if version.seq <= floor {
                    version.seq = self.next_seq_above(floor)?;
                }
            }
            if assign_id {
                version.version_id = super::opaque_id(version.seq);
            }
            let replaced = match &head {
                Some(head) => get_version(txn, bucket, key, head.seq)?,
                None => None,
            };
            let kept: HashSet<[u8; 16]> = referenced_groups(&version).into_iter().collect();
            txn.put_record(
                Table::Versions,
                keys::version_key(bucket, key.as_bytes(), version.seq),
                &version,
            )?;
            let object_row = keys::object_key(bucket, key.as_bytes());
            if version.delete_marker {
                txn.delete(Table::Objects, object_row);
            } else {
                txn.put_record(Table::Objects, object_row, &version.head())?;
            }
            consume_intents(txn, intents_done)?;
            let owner = LayoutOwner::Version {
                bucket: *bucket,
                key: key.to_string(),
                seq: version.seq,
            };
            for layout in version.parts.iter().filter_map(|p| p.data.sharded()) {
                if upload.is_some() && !intents_done.contains(&layout.group) {
                    // A part attempt's layout: its placement rows exist, owned by the attempt.
                    continue;
                }
                publish_layout(txn, layout, &owner, intents_done, now_ms)?;
            }
            if let Some(head) = &head {
                if head.seq != version.seq {
                    retire_version(
                        txn,
                        bucket,
                        key,
                        replaced.as_ref(),
                        head.seq,
                        &kept,
                        due,
                        "replaced",
                    )?;
                } else if let Some(old) = &replaced {
                    // Rewritten in place under the same seq (the row was just overwritten).
                    for layout in old.parts.iter().filter_map(|p| p.data.sharded()) {
                        if !kept.contains(&layout.group) {
                            queue_gc(txn, layout, due, "replaced")?;
                        }
                    }
                }
            }
            // The completed-upload record follows the live version: the replaced version's
            // goes, and an upload completing here leaves one naming the new version.
            let completed_row = keys::system_completed_upload_key(bucket, key.as_bytes());
            txn.delete(Table::System, completed_row.clone());
            if let Some(upload) = upload {
                txn.delete(
                    Table::Uploads,
                    keys::upload_key(bucket, key.as_bytes(), upload.useq),
                );
                let job = CleanupJob::Upload {
                    bucket: *bucket,
                    key: key.to_string(),
                    useq: upload.useq,
                    version: Some(version.seq),
                    due_ms: due,
                    reason: "unused part".to_string(),
                };
                txn.put_record(Table::System, upload_job_key(upload.useq), &job)?;
                let completed = CompletedUploadRecord {
                    upload_id: upload.upload_id.clone(),
                    seq: version.seq,
                    completed_ms: now_ms,
                };
                txn.put_record(Table::System, completed_row, &completed)?;
            }
            Ok(replaced)
        })
    }

    /// Removes the head row of `key` and retires its version (its shard groups go to GC due at
    /// `now_ms + gc_delay_ms`, directly or through a cleanup job). Returns the removed
    /// version; `Ok(None)` if there was none.
    pub fn delete_object(
        &self,
        bucket: &BucketId,
        key: &str,
        now_ms: u64,
        gc_delay_ms: u64,
    ) -> Result<Option<VersionRecord>, MetaError> {
        self.delete_object_if(bucket, key, &WriteCondition::None, now_ms, gc_delay_ms)
    }

    /// [`Catalog::delete_object`] if `cond` holds for the live version, in the same
    /// transaction (DeleteObject with `If-Match`): `PreconditionFailed` when it does not,
    /// including `If-Match` on a missing key (the caller tells that case apart).
    pub fn delete_object_if(
        &self,
        bucket: &BucketId,
        key: &str,
        cond: &WriteCondition,
        now_ms: u64,
        gc_delay_ms: u64,
    ) -> Result<Option<VersionRecord>, MetaError> {
        let due = now_ms.saturating_add(gc_delay_ms);
        self.transact(|txn| {
            let head = get_head(txn, bucket, key)?;
            cond.check(head.as_ref())?;
            let Some(head) = head else {
                return Ok(None);
            };
            let removed = get_version(txn, bucket, key, head.seq)?;
            txn.delete(Table::Objects, keys::object_key(bucket, key.as_bytes()));
            txn.delete(
                Table::System,
                keys::system_completed_upload_key(bucket, key.as_bytes()),
            );
            retire_version(
                txn,
                bucket,
                key,
                removed.as_ref(),
                head.seq,
                &HashSet::new(),
                due,
                "deleted",
            )?;
            Ok(removed)
        })
    }

    /// Sets (or with `None` removes) the stored header `name` of the live version of `key`
    /// in place: same seq, ETag and mtime, one transaction (object
    /// tagging changes a version without making a new one). `Ok(None)` if `key` has no live
    /// version.
    pub fn set_version_header(
        &self,
        bucket: &BucketId,
        key: &str,
        name: &str,
        value: Option<String>,
    ) -> Result<Option<VersionRecord>, MetaError> {
        self.update_live_version(bucket, key, &|version| {
            version.headers.retain(|(n, _)| n != name);
            if let Some(value) = &value {
                version.headers.push((name.to_string(), value.clone()));
            }
        })
    }

    /// Changes the live version of `key` in place by `update` (same seq: no new version), in
    /// one transaction. `Ok(None)` if `key` has no live version.
    fn update_live_version(
        &self,
        bucket: &BucketId,
        key: &str,
        update: &dyn Fn(&mut VersionRecord),
    ) -> Result<Option<VersionRecord>, MetaError> {
        self.transact(|txn| {
            prefetch_bucket_and_head(txn, bucket, key)?;
            require_bucket(txn, bucket)?;
            let Some(mut version) = live_version(txn, bucket, key)? else {
                return Ok(None);
            };
            update(&mut version);
            txn.put_record(
                Table::Versions,
                keys::version_key(bucket, key.as_bytes(), version.seq),
                &version,
            )?;
            Ok(Some(version))
        })
    }
}

impl Catalog {
    /// Replaces the owner and ACL of the live version of `key` in place (same seq, ETag and
    /// mtime, one transaction). `Ok(None)` if `key` has no live version.
    pub fn set_version_access(
        &self,
        bucket: &BucketId,
        key: &str,
        access: ObjectAccess,
    ) -> Result<Option<VersionRecord>, MetaError> {
        self.update_live_version(bucket, key, &|version| {
            version.access = Some(access.clone());
        })
    }

    /// The live version of `key` if multipart upload `upload_id` made it (and nothing has
    /// replaced or deleted it since): what a repeated CompleteMultipartUpload answers with.
    pub fn completed_upload(
        &self,
        bucket: &BucketId,
        key: &str,
        upload_id: &str,
    ) -> Result<Option<VersionRecord>, MetaError> {
        self.transact(|txn| {
            let record: Option<CompletedUploadRecord> = txn.get_record(
                Table::System,
                &keys::system_completed_upload_key(bucket, key.as_bytes()),
            )?;
            let Some(record) = record.filter(|r| r.upload_id == upload_id) else {
                return Ok(None);
            };
            match live_version(txn, bucket, key)? {
                Some(version) if version.seq == record.seq => Ok(Some(version)),
                _ => Ok(None),
            }
        })
    }
}

/// The live version of `key`: its head and the version row the head names (checked).
fn live_version(
    txn: &mut Txn<'_>,
    bucket: &BucketId,
    key: &str,
) -> Result<Option<VersionRecord>, MetaError> {
    let Some(head) = get_head(txn, bucket, key)? else {
        return Ok(None);
    };
    match get_version(txn, bucket, key, head.seq)? {
        Some(version) => Ok(Some(version)),
        None => Err(MetaError::Corrupt(format!(
            "head of {key:?} without version row"
        ))),
    }
}

/// Reads the bucket's id row and the head row of `key` in one go: a transaction that needs
/// both then pays one round trip to a remote store instead of two.
fn prefetch_bucket_and_head(
    txn: &mut Txn<'_>,
    bucket: &BucketId,
    key: &str,
) -> Result<(), MetaError> {
    let bucket_row = keys::system_bucket_id_key(bucket);
    let head_row = keys::object_key(bucket, key.as_bytes());
    txn.prefetch(&[(Table::System, &bucket_row), (Table::Objects, &head_row)])
}

fn get_head(
    txn: &mut Txn<'_>,
    bucket: &BucketId,
    key: &str,
) -> Result<Option<ObjectHead>, MetaError> {
    txn.get_record(Table::Objects, &keys::object_key(bucket, key.as_bytes()))
}

fn get_version(
    txn: &mut Txn<'_>,
    bucket: &BucketId,
    key: &str,
    seq: u64,
) -> Result<Option<VersionRecord>, MetaError> {
    txn.get_record(
        Table::Versions,
        &keys::version_key(bucket, key.as_bytes(), seq),
    )
}
