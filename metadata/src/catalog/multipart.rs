//! Multipart uploads and their parts.
//!
//! Invariants: an upload row and its part rows change under the stripe lock of the upload's
//! (bucket, key) — the same lock `commit_version` takes — so a part cannot be added to an
//! upload that a concurrent complete or abort has just removed. Every attempt at a part is
//! kept (`useq ‖ part_number ‖ attempt`); whoever removes the upload queues the shard groups
//! of the attempts nobody references to GC in the same batch.

use super::repair::put_placement_into;
use super::{opaque_id, parse_opaque_id, queue_gc, Catalog, MAX_PAGES, PAGE_ROWS};
use crate::keys;
use crate::kv::{Table, WriteBatch};
use crate::model::{self, BucketId, LayoutOwner, PartRecord, UploadRecord};
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
        let _guard = self.lock_key(&rec.bucket_id, &rec.key);
        self.require_bucket(&rec.bucket_id)?;
        let mut batch = WriteBatch::new();
        batch.put(
            Table::Uploads,
            keys::upload_key(&rec.bucket_id, rec.key.as_bytes(), rec.useq),
            model::encode(&rec)?,
        );
        self.kv().write(batch)
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
        let _guard = self.lock_key(&upload.bucket_id, &upload.key);
        let _intents = self.lock_intents(intents_done);
        self.require_upload(upload)?;
        if part.attempt == 0 {
            part.attempt = self.next_seq()?;
        }
        let mut batch = WriteBatch::new();
        batch.put(
            Table::Parts,
            keys::part_key(upload.useq, part.part_number, part.attempt),
            model::encode(&part)?,
        );
        self.consume_intents(&mut batch, intents_done)?;
        if let Some(layout) = part.data.sharded() {
            let owner = LayoutOwner::Part {
                bucket: upload.bucket_id,
                key: upload.key.clone(),
                useq: upload.useq,
                part_number: part.part_number,
                attempt: part.attempt,
            };
            put_placement_into(&mut batch, layout, &owner)?;
            if !layout.missing.is_empty() && intents_done.contains(&layout.group) {
                self.queue_repair_into(
                    &mut batch,
                    layout.group,
                    "missing at write",
                    &layout.missing,
                    part.mtime_ms,
                )?;
            }
        }
        self.kv().write(batch)
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

    /// Every attempt at every part of `upload`, ordered by (part_number, attempt).
    pub fn list_parts(&self, upload: &UploadRecord) -> Result<Vec<PartRecord>, MetaError> {
        let prefix = keys::parts_prefix(upload.useq);
        self.scan_all(Table::Parts, &prefix, &keys::successor(&prefix))?
            .iter()
            .map(|(_, value)| model::decode(value))
            .collect()
    }

    /// Removes the upload and all its parts, queueing every sharded part to GC due at
    /// `now_ms + gc_delay_ms`. `Err(NoSuchUpload)` if it is already gone.
    pub fn abort_upload(
        &self,
        upload: &UploadRecord,
        now_ms: u64,
        gc_delay_ms: u64,
    ) -> Result<(), MetaError> {
        let _guard = self.lock_key(&upload.bucket_id, &upload.key);
        self.require_upload(upload)?;
        let mut batch = WriteBatch::new();
        batch.delete(
            Table::Uploads,
            keys::upload_key(&upload.bucket_id, upload.key.as_bytes(), upload.useq),
        );
        let due = now_ms.saturating_add(gc_delay_ms);
        self.remove_parts_into(&mut batch, upload.useq, &[], due, "aborted")?;
        self.kv().write(batch)
    }

    /// `Err(NoSuchUpload)` unless `upload` is still recorded. Call under its stripe lock.
    pub(super) fn require_upload(&self, upload: &UploadRecord) -> Result<(), MetaError> {
        match self.get_upload(&upload.bucket_id, &upload.key, &upload.upload_id)? {
            Some(_) => Ok(()),
            None => Err(MetaError::NoSuchUpload),
        }
    }

    /// Adds to `batch` the removal of every part row of upload `useq`, queueing each sharded
    /// attempt whose group is not in `kept` to GC due at `due_ms`.
    pub(super) fn remove_parts_into(
        &self,
        batch: &mut WriteBatch,
        useq: u64,
        kept: &[[u8; 16]],
        due_ms: u64,
        reason: &str,
    ) -> Result<(), MetaError> {
        let prefix = keys::parts_prefix(useq);
        for (key, value) in self.scan_all(Table::Parts, &prefix, &keys::successor(&prefix))? {
            let part: PartRecord = model::decode(&value)?;
            if let Some(layout) = part.data.sharded() {
                if !kept.contains(&layout.group) {
                    queue_gc(batch, layout, due_ms, reason)?;
                }
            }
            batch.delete(Table::Parts, key);
        }
        Ok(())
    }
}
