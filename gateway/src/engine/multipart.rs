//! Multipart uploads: create, upload part, list, complete and abort.
//!
//! Every part upload is its own shard group and its own catalog row; retries of the same part
//! number are all kept (keyed by an attempt number) so that a Complete naming an older attempt's
//! ETag still finds its data. Complete picks, for each listed part, the newest attempt with that
//! ETag, publishes the object in one batch with the upload's removal, and sends every attempt it
//! did not use to GC.

use md5::{Digest, Md5};
use metadata::catalog::{UploadListQuery, WriteCondition};
use metadata::model::{BucketRecord, PartLayout, PartRecord, UploadRecord, VersionRecord};

use super::objects::{PendingChecksum, NULL_VERSION};
use super::view::{
    checksum_from_stored, checksum_to_stored, BucketInfo, ObjectInfo, PartInfo, StorageClass,
    UploadInfo, UploadListing,
};
use super::write::DataOwner;
use super::{now_ms, BodyStream, Engine, EngineError, MAX_PART_NUMBER, MIN_PART_SIZE};
use crate::checksum::{Checksum, ChecksumAlgorithm, ChecksumSlot, ChecksumType};
use crate::sse::{CustomerKey, SseRequest};

/// One `<Part>` of a CompleteMultipartUpload request.
#[derive(Debug, Clone)]
pub struct CompletedPart {
    pub part_number: u32,
    /// Unquoted hex ETag as the client sent it.
    pub etag: String,
}

/// Metadata fixed when an upload starts.
pub struct CreateUploadRequest {
    pub content_type: Option<String>,
    pub headers: Vec<(String, String)>,
    pub user_metadata: Vec<(String, String)>,
    pub storage_class: StorageClass,
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
    pub checksum_type: Option<ChecksumType>,
    /// Encryption of every part (the bucket default applies when `None`).
    pub encryption: SseRequest,
}

/// A part attempt as callers see it.
fn part_info(part: &PartRecord) -> PartInfo {
    PartInfo {
        part_number: part.part_number,
        size: part.size,
        etag: part.etag.clone(),
        mtime_ms: part.mtime_ms,
        checksum: part.checksum.as_ref().and_then(checksum_from_stored),
        encryption: None,
    }
}

/// The object checksum a CompleteMultipartUpload request states (boto3's upload helpers send
/// it): FULL_OBJECT (`base64`, CRCs only) or COMPOSITE (`base64-N`), with the type if sent.
#[derive(Debug, Clone)]
pub struct StatedChecksum {
    pub algorithm: ChecksumAlgorithm,
    pub value: String,
    pub kind: Option<ChecksumType>,
}

/// The object checksum of the chosen parts: `None` unless the upload asked for an algorithm
/// and every part carries a checksum of it (see [`Checksum::of_parts`]). A stated checksum is
/// checked first: the value computed for its algorithm and form must match it, else
/// `BadDigest` (and the upload stays open, as in S3).
fn combine_checksums(
    upload: &UploadInfo,
    parts: &[PartRecord],
    stated: Option<&StatedChecksum>,
) -> Result<Option<Checksum>, EngineError> {
    let checksums: Vec<Option<Checksum>> = parts
        .iter()
        .map(|p| p.checksum.as_ref().and_then(checksum_from_stored))
        .collect();
    let values: Vec<(Option<&Checksum>, u64)> = checksums
        .iter()
        .zip(parts)
        .map(|(c, p)| (c.as_ref(), p.size))
        .collect();
    if let Some(stated) = stated {
        if let (Some(kind), Some(upload_kind)) = (stated.kind, upload.checksum_type()) {
            if kind != upload_kind {
                return Err(EngineError::BadDigest);
            }
        }
        let mut of_algorithm = Vec::with_capacity(values.len());
        for (checksum, size) in &values {
            match checksum {
                Some(c) if c.algorithm == stated.algorithm => {
                    of_algorithm.push((c.value.as_str(), *size))
                }
                _ => return Err(EngineError::BadDigest),
            }
        }
        let computed = if stated.value.contains('-') {
            stated.algorithm.combine_composite(&of_algorithm)
        } else {
            stated.algorithm.combine_full_object(&of_algorithm)
        };
        if computed.as_deref() != Some(stated.value.as_str()) {
            return Err(EngineError::BadDigest);
        }
    }
    let Some(algorithm) = upload.checksum_algorithm() else {
        return Ok(None);
    };
    Ok(Checksum::of_parts(
        algorithm,
        upload.checksum_type(),
        &values,
    ))
}

impl Engine {
    pub async fn create_upload(
        &self,
        bucket: &BucketInfo,
        key: &str,
        request: CreateUploadRequest,
    ) -> Result<UploadInfo, EngineError> {
        let encryption = self
            .new_encryption(&super::sse::with_bucket_default(
                &request.encryption,
                &bucket.record,
            ))?
            .map(|(_, record)| record);
        let (useq, upload_id) = self.meta(|c| c.new_upload_id()).await?;
        let record = UploadRecord {
            upload_id,
            bucket_id: bucket.record.id,
            key: key.to_string(),
            initiated_ms: now_ms(),
            useq,
            content_type: request.content_type,
            headers: request.headers,
            user_metadata: request.user_metadata,
            storage_class: request.storage_class.name().to_string(),
            checksum_algorithm: request.checksum_algorithm.map(|a| a.name().to_string()),
            checksum_type: request.checksum_type.map(|t| t.name().to_string()),
            encryption,
            access: None,
        };
        let stored = record.clone();
        self.meta(move |c| c.create_upload(stored)).await?;
        Ok(UploadInfo { record })
    }

    /// The upload `upload_id` of `bucket`/`key`, or `NoSuchUpload`.
    pub async fn get_upload(
        &self,
        bucket: &BucketInfo,
        key: &str,
        upload_id: &str,
    ) -> Result<UploadInfo, EngineError> {
        let bucket_id = bucket.record.id;
        let key = key.to_string();
        let upload_id = upload_id.to_string();
        let record = self
            .meta(move |c| c.get_upload(&bucket_id, &key, &upload_id))
            .await?
            .ok_or(EngineError::NoSuchUpload)?;
        Ok(UploadInfo { record })
    }

    /// Stores one part attempt; returns the recorded part (its ETag is the unquoted MD5).
    #[allow(clippy::too_many_arguments)]
    pub async fn upload_part(
        &self,
        bucket: &BucketInfo,
        key: &str,
        upload_id: &str,
        part_number: u32,
        length: u64,
        expected_md5: Option<[u8; 16]>,
        checksum: Option<ChecksumSlot>,
        customer: Option<&CustomerKey>,
        body: BodyStream,
    ) -> Result<PartInfo, EngineError> {
        check_part_number(part_number)?;
        let upload = self.get_upload(bucket, key, upload_id).await?;
        let pending = checksum.map(PendingChecksum::Verified);
        self.store_part(
            &bucket.record,
            upload.record,
            part_number,
            length,
            expected_md5,
            pending,
            customer,
            body,
        )
        .await
    }

    /// Writes one part attempt and records it (UploadPart, UploadPartCopy).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn store_part(
        &self,
        bucket: &BucketRecord,
        upload: UploadRecord,
        part_number: u32,
        length: u64,
        expected_md5: Option<[u8; 16]>,
        checksum: Option<PendingChecksum>,
        customer: Option<&CustomerKey>,
        body: BodyStream,
    ) -> Result<PartInfo, EngineError> {
        check_part_number(part_number)?;
        let sealing = self
            .data_key_of(upload.encryption.as_ref(), customer)?
            .map(|data_key| super::sse::Sealing {
                data_key,
                opaque_etag: upload
                    .encryption
                    .as_ref()
                    .is_some_and(|e| e.scheme == crate::sse::keys::SCHEME_C),
            });
        let owner = DataOwner {
            bucket: bucket.name.clone(),
            key: upload.key.clone(),
            version: upload.upload_id.clone(),
            part_number,
        };
        let written = self
            .write_sealed(body, length, owner, expected_md5, sealing.as_ref())
            .await?;
        let attempt = self.meta(|c| c.next_seq()).await?;
        let part = PartRecord {
            part_number,
            attempt,
            size: written.size,
            etag: hex::encode(written.md5),
            mtime_ms: now_ms(),
            checksum: checksum.and_then(PendingChecksum::finish),
            data: written.layout,
        };
        let stored = part.clone();
        let intent = written.intent;
        let kind = upload.encryption.as_ref().and_then(crate::sse::SseKind::of);
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
        let mut info = part_info(&part);
        info.encryption = kind;
        Ok(info)
    }

    /// The newest attempt of each part, in part-number order.
    pub async fn list_parts(&self, upload: &UploadInfo) -> Result<Vec<PartInfo>, EngineError> {
        let upload = upload.record.clone();
        let attempts = self.meta(move |c| c.list_parts(&upload)).await?;
        let mut parts: Vec<PartInfo> = Vec::new();
        for part in attempts {
            let summary = part_info(&part);
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
        bucket: &BucketInfo,
        key: &str,
        upload_id: &str,
        requested: Vec<CompletedPart>,
        condition: WriteCondition,
        stated: Option<StatedChecksum>,
    ) -> Result<ObjectInfo, EngineError> {
        let upload = match self.get_upload(bucket, key, upload_id).await {
            Err(EngineError::NoSuchUpload) => {
                // A retry of a completion that already succeeded (its response was lost) gets
                // the same answer while the version it made is still the live one, as in S3.
                let (bid, key, upload_id) =
                    (bucket.record.id, key.to_string(), upload_id.to_string());
                let record = self
                    .meta(move |c| c.completed_upload(&bid, &key, &upload_id))
                    .await?
                    .ok_or(EngineError::NoSuchUpload)?;
                return Ok(ObjectInfo { record });
            }
            other => other?,
        };
        if condition != WriteCondition::None {
            // Fail fast (404 for If-Match on a missing key); the commit re-checks atomically.
            self.check_condition(&bucket.record, key, &condition)
                .await?;
        }
        let listed = upload.record.clone();
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
        let checksum =
            combine_checksums(&upload, &chosen, stated.as_ref())?.map(|c| checksum_to_stored(&c));
        let upload = upload.record;
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
            encryption: upload.encryption.clone(),
            access: upload.access.clone(),
        };
        self.publish(&bucket.record, key, version, condition, None, Some(upload))
            .await
    }

    /// Ends an upload; its parts' data is collected after the grace delay.
    pub async fn abort_upload(
        &self,
        bucket: &BucketInfo,
        key: &str,
        upload_id: &str,
    ) -> Result<(), EngineError> {
        let upload = self.get_upload(bucket, key, upload_id).await?.record;
        let gc_delay = self.config.gc_delay.as_millis() as u64;
        self.meta(move |c| c.abort_upload(&upload, now_ms(), gc_delay))
            .await
    }

    pub async fn list_uploads(
        &self,
        bucket: &BucketInfo,
        query: UploadListQuery,
    ) -> Result<UploadListing, EngineError> {
        let bucket_id = bucket.record.id;
        let page = self
            .meta(move |c| c.list_uploads(&bucket_id, &query))
            .await?;
        Ok(page.into())
    }
}

/// Part numbers run from 1 to 10,000 (S3's limit).
pub fn check_part_number(part_number: u32) -> Result<(), EngineError> {
    if (1..=MAX_PART_NUMBER).contains(&part_number) {
        return Ok(());
    }
    Err(EngineError::InvalidPart(format!(
        "part number {part_number} outside 1..={MAX_PART_NUMBER}"
    )))
}
