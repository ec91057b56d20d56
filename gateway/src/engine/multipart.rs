//! Multipart uploads: create, upload part, list, complete and abort.
//!
//! Every part upload is its own shard group and its own catalog row; retries of the same part
//! number are all kept (keyed by an attempt number) so that a Complete naming an older attempt's
//! ETag still finds its data. Complete picks, for each listed part, the newest attempt with that
//! ETag, publishes the object in one batch with the upload's removal, and sends every attempt it
//! did not use to GC.

use md5::{Digest, Md5};
use metadata::catalog::{UploadListPage, UploadListQuery, WriteCondition};
use metadata::model::{PartLayout, PartRecord, StoredChecksum, UploadRecord, VersionRecord};

use super::objects::{ChecksumSource, PutOutcome, NULL_VERSION};
use super::write::DataOwner;
use super::{now_ms, BodyStream, Engine, EngineError, MAX_PART_NUMBER, MIN_PART_SIZE};

/// One `<Part>` of a CompleteMultipartUpload request.
#[derive(Debug, Clone)]
pub struct CompletedPart {
    pub part_number: u32,
    /// Unquoted hex ETag as the client sent it.
    pub etag: String,
}

/// The newest attempt of a part, as ListParts shows it.
#[derive(Debug, Clone)]
pub struct PartSummary {
    pub part_number: u32,
    pub size: u64,
    pub etag: String,
    pub mtime_ms: u64,
    pub checksum: Option<StoredChecksum>,
}

/// Metadata fixed when an upload starts.
pub struct CreateUploadRequest {
    pub content_type: Option<String>,
    pub headers: Vec<(String, String)>,
    pub user_metadata: Vec<(String, String)>,
    pub storage_class: String,
    pub checksum_algorithm: Option<String>,
    pub checksum_type: Option<String>,
}

/// Computes the object checksum from the chosen parts (protocol-specific; may be absent), or
/// refuses the completion (`BadDigest` when the checksum the client stated does not match).
pub type CombineChecksums = Box<
    dyn FnOnce(&UploadRecord, &[PartRecord]) -> Result<Option<StoredChecksum>, EngineError> + Send,
>;

impl Engine {
    pub async fn create_upload(
        &self,
        bucket: &str,
        key: &str,
        request: CreateUploadRequest,
    ) -> Result<UploadRecord, EngineError> {
        let bucket = self.bucket(bucket).await?;
        let (useq, upload_id) = self.meta(|c| c.new_upload_id()).await?;
        let record = UploadRecord {
            upload_id,
            bucket_id: bucket.id,
            key: key.to_string(),
            initiated_ms: now_ms(),
            useq,
            content_type: request.content_type,
            headers: request.headers,
            user_metadata: request.user_metadata,
            storage_class: request.storage_class,
            checksum_algorithm: request.checksum_algorithm,
            checksum_type: request.checksum_type,
        };
        let stored = record.clone();
        self.meta(move |c| c.create_upload(stored)).await?;
        Ok(record)
    }

    /// The upload `upload_id` of `bucket`/`key`, or `NoSuchUpload`.
    pub async fn get_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<UploadRecord, EngineError> {
        let bucket = self.bucket(bucket).await?;
        let key = key.to_string();
        let upload_id = upload_id.to_string();
        self.meta(move |c| c.get_upload(&bucket.id, &key, &upload_id))
            .await?
            .ok_or(EngineError::NoSuchUpload)
    }

    /// Stores one part attempt; returns the recorded part (its ETag is the unquoted MD5).
    #[allow(clippy::too_many_arguments)]
    pub async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        length: u64,
        expected_md5: Option<[u8; 16]>,
        checksum: Option<ChecksumSource>,
        body: BodyStream,
    ) -> Result<PartRecord, EngineError> {
        if !(1..=MAX_PART_NUMBER).contains(&part_number) {
            return Err(EngineError::InvalidPart(format!(
                "part number {part_number} outside 1..={MAX_PART_NUMBER}"
            )));
        }
        let upload = self.get_upload(bucket, key, upload_id).await?;
        let owner = DataOwner {
            bucket: bucket.to_string(),
            key: key.to_string(),
            version: upload.upload_id.clone(),
            part_number,
        };
        let written = self.write_data(body, length, owner, expected_md5).await?;
        let attempt = self.meta(|c| c.next_seq()).await?;
        let part = PartRecord {
            part_number,
            attempt,
            size: written.size,
            etag: hex::encode(written.md5),
            mtime_ms: now_ms(),
            checksum: checksum.and_then(|source| source()),
            data: written.layout,
        };
        let stored = part.clone();
        let intent = written.intent;
        let result = self
            .meta(move |c| {
                let intents: Vec<[u8; 16]> = intent.into_iter().collect();
                c.put_part(&upload, stored, &intents)
            })
            .await;
        if let Err(e) = result {
            if let Some(group) = intent {
                self.abandon_intent(group).await;
            }
            return Err(e);
        }
        Ok(part)
    }

    /// The newest attempt of each part, in part-number order.
    pub async fn list_parts(&self, upload: &UploadRecord) -> Result<Vec<PartSummary>, EngineError> {
        let upload = upload.clone();
        let attempts = self.meta(move |c| c.list_parts(&upload)).await?;
        let mut parts: Vec<PartSummary> = Vec::new();
        for part in attempts {
            let summary = PartSummary {
                part_number: part.part_number,
                size: part.size,
                etag: part.etag,
                mtime_ms: part.mtime_ms,
                checksum: part.checksum,
            };
            match parts.last_mut() {
                Some(last) if last.part_number == summary.part_number => *last = summary,
                _ => parts.push(summary),
            }
        }
        Ok(parts)
    }

    /// Publishes the object made of `requested` parts and ends the upload.
    pub async fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        requested: Vec<CompletedPart>,
        condition: WriteCondition,
        combine: CombineChecksums,
    ) -> Result<PutOutcome, EngineError> {
        let bucket_record = self.bucket(bucket).await?;
        let upload = match self.get_upload(bucket, key, upload_id).await {
            Err(EngineError::NoSuchUpload) => {
                // A retry of a completion that already succeeded (its response was lost) gets
                // the same answer while the version it made is still the live one, as in S3.
                let (bid, key, upload_id) =
                    (bucket_record.id, key.to_string(), upload_id.to_string());
                let version = self
                    .meta(move |c| c.completed_upload(&bid, &key, &upload_id))
                    .await?
                    .ok_or(EngineError::NoSuchUpload)?;
                return Ok(PutOutcome { version });
            }
            other => other?,
        };
        if condition != WriteCondition::None {
            // Fail fast (404 for If-Match on a missing key); the commit re-checks atomically.
            self.check_condition(&bucket_record, key, &condition)
                .await?;
        }
        let listed = upload.clone();
        let attempts = self.meta(move |c| c.list_parts(&listed)).await?;
        let mut chosen: Vec<PartRecord> = Vec::with_capacity(requested.len());
        let mut previous = 0u32;
        for wanted in &requested {
            if wanted.part_number <= previous {
                return Err(EngineError::InvalidPartOrder);
            }
            previous = wanted.part_number;
            let found = attempts
                .iter()
                .filter(|p| p.part_number == wanted.part_number && p.etag == wanted.etag)
                .max_by_key(|p| p.attempt)
                .ok_or_else(|| {
                    EngineError::InvalidPart(format!(
                        "part {} with ETag {} was not uploaded",
                        wanted.part_number, wanted.etag
                    ))
                })?;
            chosen.push(found.clone());
        }
        if chosen.is_empty() {
            return Err(EngineError::InvalidPart("no parts".into()));
        }
        let last = chosen.len() - 1;
        for part in &chosen[..last] {
            if part.size < MIN_PART_SIZE {
                return Err(EngineError::EntityTooSmall(part.part_number));
            }
        }
        let mut etag_hasher = Md5::new();
        for part in &chosen {
            let digest = hex::decode(&part.etag)
                .map_err(|e| EngineError::internal("stored part ETag", e))?;
            etag_hasher.update(&digest);
        }
        let etag = format!("{}-{}", hex::encode(etag_hasher.finalize()), chosen.len());
        let checksum = combine(&upload, &chosen)?;
        let size = chosen.iter().map(|p| p.size).sum();
        let seq = self.meta(|c| c.next_seq()).await?;
        let version = VersionRecord {
            seq,
            version_id: NULL_VERSION.to_string(),
            size,
            etag,
            mtime_ms: now_ms(),
            storage_class: upload.storage_class.clone(),
            content_type: upload.content_type.clone(),
            headers: upload.headers.clone(),
            user_metadata: upload.user_metadata.clone(),
            checksum,
            delete_marker: false,
            parts: chosen
                .into_iter()
                .map(|p| PartLayout {
                    part_number: p.part_number,
                    size: p.size,
                    etag: p.etag,
                    checksum: p.checksum,
                    data: p.data,
                })
                .collect(),
        };
        self.publish(&bucket_record, key, version, condition, None, Some(upload))
            .await
    }

    /// Ends an upload; its parts' data is collected after the grace delay.
    pub async fn abort_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), EngineError> {
        let upload = self.get_upload(bucket, key, upload_id).await?;
        let gc_delay = self.config.gc_delay.as_millis() as u64;
        self.meta(move |c| c.abort_upload(&upload, now_ms(), gc_delay))
            .await
    }

    pub async fn list_uploads(
        &self,
        bucket: &str,
        query: UploadListQuery,
    ) -> Result<UploadListPage, EngineError> {
        let bucket = self.bucket(bucket).await?;
        self.meta(move |c| c.list_uploads(&bucket.id, &query)).await
    }
}
