//! Multipart uploads and their parts.
//!
//! Invariants: adding a part reads the upload row (checked), and completing or aborting an
//! upload deletes it, so a part cannot be added to an upload that a concurrent complete or
//! abort removes: one of the two transactions conflicts. Every attempt at a part is kept
//! (`useq ‖ part_number ‖ attempt`). Whoever removes the upload row queues a cleanup job
//! (`cleanup`, `i/cleanup/u/‖useq`) in the same transaction, which removes the part rows in
//! bounded steps and queues the shard groups of the attempts the completed version does not
//! hold to GC — so complete and abort are constant-size transactions whatever the number of
//! parts. The placement rows of a part attempt stay owned by the attempt: while the upload
//! row exists they resolve to the part row, afterwards through the completed-upload record to
//! the version (or to nothing: not live).

use super::cleanup::upload_job_key;
use super::repair::publish_layout;
use super::{
    consume_intents, opaque_id, parse_opaque_id, require_bucket, Catalog, MAX_PAGES, PAGE_ROWS,
};
use crate::keys;
use crate::kv::Table;
use crate::model::{self, BucketId, CleanupJob, LayoutOwner, PartRecord, UploadRecord};
use crate::txn::Txn;
use crate::MetaError;

impl Catalog {
    /// A fresh upload sequence number and the opaque upload id that encodes it.
    pub fn new_upload_id(&self) -> Result<(u64, String), MetaError> {
        let useq = self.next_seq()?;
        Ok((useq, opaque_id(useq)))
    }

    /// Records a new multipart upload. `rec.upload_id` must come from
    /// [`Catalog::new_upload_id`] together with `rec.useq`. `Err(NoSuchBucket)` if the bucket
    /// is gone.
    pub fn create_upload(&self, rec: UploadRecord) -> Result<(), MetaError> {
        if parse_opaque_id(&rec.upload_id) != Some(rec.useq) {
            return Err(MetaError::Corrupt(format!(
                "upload id {:?} does not encode useq {}",
                rec.upload_id, rec.useq
            )));
        }
        self.transact(|txn| {
            require_bucket(txn, &rec.bucket_id)?;
            txn.put_record(
                Table::Uploads,
                keys::upload_key(&rec.bucket_id, rec.key.as_bytes(), rec.useq),
                &rec,
            )
        })
    }

    /// The upload `upload_id` of `key`; `None` if the id is malformed, unknown, or belongs to
    /// another key or bucket.
    pub fn get_upload(
        &self,
        bucket: &BucketId,
        key: &str,
        upload_id: &str,
    ) -> Result<Option<UploadRecord>, MetaError> {
        let Some(useq) = parse_opaque_id(upload_id) else {
            return Ok(None);
        };
        let record: Option<UploadRecord> = self.get_record(
            Table::Uploads,
            &keys::upload_key(bucket, key.as_bytes(), useq),
        )?;
        Ok(record.filter(|r| r.upload_id == upload_id))
    }

    /// Records one attempt at a part (every attempt is kept), its placement rows (and a repair
    /// when shards are missing), and removes the `intents_done` intent rows (`Err(Db)` if one
    /// is gone), atomically. An `attempt` of 0 is replaced by [`Catalog::next_seq`].
    /// `Err(NoSuchUpload)` if the upload is gone.
    pub fn put_part(
        &self,
        upload: &UploadRecord,
        mut part: PartRecord,
        intents_done: &[[u8; 16]],
    ) -> Result<(), MetaError> {
        if part.attempt == 0 {
            part.attempt = self.next_seq()?;
        }
        self.transact(|txn| {
            require_upload(txn, upload)?;
            txn.put_record(
                Table::Parts,
                keys::part_key(upload.useq, part.part_number, part.attempt),
                &part,
            )?;
            consume_intents(txn, intents_done)?;
            if let Some(layout) = part.data.sharded() {
                let owner = LayoutOwner::Part {
                    bucket: upload.bucket_id,
                    key: upload.key.clone(),
                    useq: upload.useq,
                    part_number: part.part_number,
                    attempt: part.attempt,
                };
                publish_layout(txn, layout, &owner, intents_done, part.mtime_ms)?;
            }
            Ok(())
        })
    }

    /// Up to `limit` uploads (of any bucket) initiated before `older_than_ms`, scanning from
    /// the `uploads` row key `after` (exclusive); returns them with the key to resume from
    /// (`None` once the table is exhausted).
    #[allow(clippy::type_complexity)]
    pub fn expired_uploads(
        &self,
        older_than_ms: u64,
        after: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<(Vec<UploadRecord>, Option<Vec<u8>>), MetaError> {
        let mut from = after.map(|k| keys::next_key(&k)).unwrap_or_default();
        let mut found = Vec::new();
        for _ in 0..MAX_PAGES {
            let page = self.kv().scan(Table::Uploads, &from, b"", PAGE_ROWS)?;
            let full = page.len() == PAGE_ROWS;
            for (key, value) in page {
                let upload: UploadRecord = model::decode(&value)?;
                if upload.initiated_ms < older_than_ms {
                    found.push(upload);
                }
                from = keys::next_key(&key);
                if found.len() >= limit {
                    return Ok((found, Some(key)));
                }
            }
            if !full {
                break;
            }
        }
        Ok((found, None))
    }

    /// Every attempt at every part of `upload`, ordered by (part_number, attempt). After the
    /// upload is completed or aborted, the attempts its cleanup job has not removed yet.
    pub fn list_parts(&self, upload: &UploadRecord) -> Result<Vec<PartRecord>, MetaError> {
        let prefix = keys::parts_prefix(upload.useq);
        self.scan_all(Table::Parts, &prefix, &keys::successor(&prefix))?
            .iter()
            .map(|(_, value)| model::decode(value))
            .collect()
    }

    /// Removes the upload (one small transaction) and queues a cleanup job that removes all its
    /// parts in bounded steps ([`Catalog::cleanup_step`]), queueing every sharded part to GC due
    /// at `now_ms + gc_delay_ms`. `Err(NoSuchUpload)` if it is already gone.
    pub fn abort_upload(
        &self,
        upload: &UploadRecord,
        now_ms: u64,
        gc_delay_ms: u64,
    ) -> Result<(), MetaError> {
        let due = now_ms.saturating_add(gc_delay_ms);
        self.transact(|txn| {
            require_upload(txn, upload)?;
            txn.delete(
                Table::Uploads,
                keys::upload_key(&upload.bucket_id, upload.key.as_bytes(), upload.useq),
            );
            let job = CleanupJob::Upload {
                bucket: upload.bucket_id,
                key: upload.key.clone(),
                useq: upload.useq,
                version: None,
                due_ms: due,
                reason: "aborted".to_string(),
            };
            txn.put_record(Table::System, upload_job_key(upload.useq), &job)
        })
    }
}

/// `Err(NoSuchUpload)` unless `upload` is still recorded (checked).
pub(super) fn require_upload(txn: &mut Txn<'_>, upload: &UploadRecord) -> Result<(), MetaError> {
    let key = keys::upload_key(&upload.bucket_id, upload.key.as_bytes(), upload.useq);
    match txn.get_record::<UploadRecord>(Table::Uploads, &key)? {
        Some(found) if found.upload_id == upload.upload_id => Ok(()),
        _ => Err(MetaError::NoSuchUpload),
    }
}
