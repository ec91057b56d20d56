//! Single objects: put (with conditions), look-up, ranged reads, delete and listing.
//!
//! A put writes its data first (invisible), then publishes it with one catalog batch that also
//! checks the write condition, removes the intent and queues the replaced version's shards for
//! GC after the grace delay. If publishing fails, the freshly written shards go to GC.

use std::sync::{Arc, Mutex};

use metadata::catalog::{ListQuery, WriteCondition};
use metadata::model::{BucketRecord, PartLayout, StoredChecksum, VersionRecord};

use super::read::ByteRange;
use super::view::{checksum_to_stored, BucketInfo, ObjectInfo, ObjectListing, StorageClass};
use super::write::DataOwner;
use super::{now_ms, BodyStream, Engine, EngineError};
use crate::checksum::{Checksum, ChecksumAlgorithm, ChecksumHasher, ChecksumSlot, ChecksumType};
use crate::sse::{CustomerKey, SseRequest};

/// Everything a PutObject needs besides the bucket and the body.
pub struct PutObjectRequest {
    pub key: String,
    /// Exact body length (decoded length for aws-chunked bodies).
    pub length: u64,
    pub content_type: Option<String>,
    /// Standard headers stored verbatim (content-encoding, cache-control, …), lowercase names.
    pub headers: Vec<(String, String)>,
    /// `x-amz-meta-*` without the prefix, lowercase names.
    pub user_metadata: Vec<(String, String)>,
    pub storage_class: StorageClass,
    pub expected_md5: Option<[u8; 16]>,
    /// Where the protocol layer leaves the checksum it verified, once the body has ended.
    pub checksum: Option<ChecksumSlot>,
    pub condition: WriteCondition,
    /// Encryption at rest asked for (the bucket default applies when `None`).
    pub encryption: SseRequest,
}

/// An open read: the version it reads and the bytes of the requested range.
pub struct ObjectRead {
    pub version: ObjectInfo,
    pub range: ByteRange,
    pub body: BodyStream,
}

/// Version id of every object in an unversioned bucket.
pub const NULL_VERSION: &str = "null";

/// The checksum a write will store, known once its body has been written.
pub(super) enum PendingChecksum {
    /// Verified by the protocol layer while the body streamed.
    Verified(ChecksumSlot),
    /// Known in advance (a byte-identical copy keeps its source's).
    Known(Checksum),
    /// Computed here over the bytes as they stream ([`PendingChecksum::hashing`]).
    Hashing(ChecksumAlgorithm, Arc<Mutex<Option<ChecksumHasher>>>),
}

impl PendingChecksum {
    /// Wraps `body` so that `algorithm`'s checksum of its bytes is known once it was consumed.
    pub(super) fn hashing(body: BodyStream, algorithm: ChecksumAlgorithm) -> (BodyStream, Self) {
        use futures::StreamExt;
        let hasher = Arc::new(Mutex::new(Some(algorithm.hasher())));
        let feeding = hasher.clone();
        let stream: BodyStream = Box::pin(body.map(move |chunk| {
            if let (Ok(bytes), Ok(mut guard)) = (&chunk, feeding.lock()) {
                if let Some(h) = guard.as_mut() {
                    h.update(bytes);
                }
            }
            chunk
        }));
        (stream, PendingChecksum::Hashing(algorithm, hasher))
    }

    /// The whole-body checksum, in record form (after the body was written).
    pub(super) fn finish(self) -> Option<StoredChecksum> {
        let checksum = match self {
            PendingChecksum::Verified(slot) => {
                let (algorithm, value) = slot.get()?;
                Checksum {
                    algorithm: *algorithm,
                    value: value.clone(),
                    kind: ChecksumType::FullObject,
                }
            }
            PendingChecksum::Known(checksum) => checksum,
            PendingChecksum::Hashing(algorithm, hasher) => Checksum {
                algorithm,
                value: hasher.lock().ok()?.take()?.finish_base64(),
                kind: ChecksumType::FullObject,
            },
        };
        Some(checksum_to_stored(&checksum))
    }
}

impl Engine {
    /// Stores an object; it becomes visible atomically once durable.
    pub async fn put_object(
        &self,
        bucket: &BucketInfo,
        mut request: PutObjectRequest,
        body: BodyStream,
    ) -> Result<ObjectInfo, EngineError> {
        let pending = request.checksum.take().map(PendingChecksum::Verified);
        self.store_object(&bucket.record, request, pending, body)
            .await
    }

    /// Writes and publishes one object (PutObject, CopyObject).
    pub(super) async fn store_object(
        &self,
        bucket: &BucketRecord,
        request: PutObjectRequest,
        checksum: Option<PendingChecksum>,
        body: BodyStream,
    ) -> Result<ObjectInfo, EngineError> {
        if request.condition != WriteCondition::None {
            // Fail fast before streaming; the commit re-checks atomically.
            self.check_condition(bucket, &request.key, &request.condition)
                .await?;
        }
        let owner = DataOwner {
            bucket: bucket.name.clone(),
            key: request.key.clone(),
            version: NULL_VERSION.to_string(),
            part_number: 1,
        };
        let encryption = self.new_encryption(&super::sse::with_bucket_default(
            &request.encryption,
            bucket,
        ))?;
        let sealing = super::sse::sealing_of(&encryption);
        let written = self
            .write_sealed(
                body,
                request.length,
                owner,
                request.expected_md5,
                sealing.as_ref(),
            )
            .await?;
        let checksum = checksum.and_then(PendingChecksum::finish);
        let seq = self.meta(|c| c.next_seq()).await?;
        let etag = hex::encode(written.md5);
        let mtime_ms = now_ms();
        let version = VersionRecord {
            seq,
            version_id: NULL_VERSION.to_string(),
            size: written.size,
            etag: etag.clone(),
            mtime_ms,
            storage_class: request.storage_class.name().to_string(),
            content_type: request.content_type,
            headers: request.headers,
            user_metadata: request.user_metadata,
            checksum: checksum.clone(),
            delete_marker: false,
            parts: vec![PartLayout {
                part_number: 1,
                size: written.size,
                etag,
                checksum,
                data: written.layout,
            }],
            encryption: encryption.map(|(_, record)| record),
            access: None,
        };
        self.publish(
            bucket,
            &request.key,
            version,
            request.condition,
            written.intent,
            None,
        )
        .await
    }

    /// The one place a version becomes visible (also used by CompleteMultipartUpload).
    pub(crate) async fn publish(
        &self,
        bucket: &BucketRecord,
        key: &str,
        version: VersionRecord,
        condition: WriteCondition,
        intent: Option<[u8; 16]>,
        upload: Option<metadata::model::UploadRecord>,
    ) -> Result<ObjectInfo, EngineError> {
        let bucket_id = bucket.id;
        let key_owned = key.to_string();
        let record = version.clone();
        let condition_kind = condition.clone();
        let gc_delay = self.config.gc_delay.as_millis() as u64;
        let result = self
            .meta(move |c| {
                let intents: Vec<[u8; 16]> = intent.into_iter().collect();
                c.commit_version(
                    &bucket_id,
                    &key_owned,
                    record,
                    condition,
                    &intents,
                    upload.as_ref(),
                    now_ms(),
                    gc_delay,
                )
            })
            .await;
        match result {
            Ok(_replaced) => Ok(ObjectInfo { record: version }),
            Err(e) => {
                if let Some(group) = intent {
                    self.abandon_intent(group).await;
                }
                Err(self
                    .classify_commit_failure(bucket, key, &condition_kind, e)
                    .await)
            }
        }
    }

    /// S3 answers a conditional write whose object changed under it in two ways: 412 when the
    /// condition is now false (a racing `If-None-Match: *` writer finished first), and 409
    /// ConditionalRequestConflict when the object an `If-Match` write was checked against was
    /// deleted before the write could commit ("a conflicting operation occurred during the
    /// upload"; the client should retry from the start).
    async fn classify_commit_failure(
        &self,
        bucket: &BucketRecord,
        key: &str,
        condition: &WriteCondition,
        error: EngineError,
    ) -> EngineError {
        if !matches!(error, EngineError::PreconditionFailed)
            || !matches!(condition, WriteCondition::IfMatch(_))
        {
            return error;
        }
        match self.get_version(bucket, key).await {
            Ok(None) => EngineError::ConditionalConflict,
            _ => error,
        }
    }

    pub(super) async fn check_condition(
        &self,
        bucket: &BucketRecord,
        key: &str,
        condition: &WriteCondition,
    ) -> Result<(), EngineError> {
        let current = self.get_version(bucket, key).await?;
        match (condition, current) {
            (WriteCondition::IfNoneMatchAny, Some(_)) => Err(EngineError::PreconditionFailed),
            (WriteCondition::IfMatch(_), None) => Err(EngineError::NoSuchKey),
            (WriteCondition::IfMatch(etag), Some(v)) if &v.etag != etag => {
                Err(EngineError::PreconditionFailed)
            }
            _ => Ok(()),
        }
    }

    async fn get_version(
        &self,
        bucket: &BucketRecord,
        key: &str,
    ) -> Result<Option<VersionRecord>, EngineError> {
        let bucket_id = bucket.id;
        let key = key.to_string();
        self.meta(move |c| c.get_object(&bucket_id, &key)).await
    }

    /// The current version of an object (HeadObject, and the first step of GetObject).
    /// Takes the bucket by name: both lookups run in one blocking catalog call, since each
    /// `spawn_blocking` round trip costs two thread switches, the top of the small-GET profile
    /// (BENCHMARKS.md).
    /// The reserved bucket of catalog backups is never found, as in [`Engine::bucket`].
    pub async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectInfo, EngineError> {
        if bucket == super::healing::backup::CATALOG_BACKUP_BUCKET {
            return Err(EngineError::NoSuchBucket);
        }
        let (name, key) = (bucket.to_string(), key.to_string());
        self.meta(move |c| {
            let bucket = c
                .get_bucket(&name)?
                .ok_or(metadata::MetaError::NoSuchBucket)?;
            c.get_object(&bucket.id, &key)
        })
        .await?
        .filter(|v| !v.delete_marker)
        .map(|record| ObjectInfo { record })
        .ok_or(EngineError::NoSuchKey)
    }

    /// Checks that a request may read `version` with the customer key it gave (SSE-C: the
    /// right key; otherwise none): HeadObject, and every read before it starts.
    pub fn check_read_key(
        &self,
        version: &ObjectInfo,
        customer: Option<&CustomerKey>,
    ) -> Result<(), EngineError> {
        self.data_key_of(version.record.encryption.as_ref(), customer)
            .map(|_| ())
    }

    /// Opens `range` (plaintext) of a version obtained from [`Engine::head_object`];
    /// `customer` is the request's SSE-C key.
    pub async fn open_object(
        self: &Arc<Self>,
        version: ObjectInfo,
        range: ByteRange,
        customer: Option<&CustomerKey>,
    ) -> Result<ObjectRead, EngineError> {
        let data_key = self.data_key_of(version.record.encryption.as_ref(), customer)?;
        let body = if range.start >= range.end {
            Box::pin(futures::stream::empty()) as BodyStream
        } else {
            self.read_version_with(&version.record, range, data_key)
                .await?
        };
        Ok(ObjectRead {
            version,
            range,
            body,
        })
    }

    /// Sets (or with `None` removes) one stored header of the live version in place, without
    /// a new version: same ETag and mtime (object tagging). `NoSuchKey` if there is none.
    pub async fn set_stored_header(
        &self,
        bucket: &BucketInfo,
        key: &str,
        name: &str,
        value: Option<String>,
    ) -> Result<ObjectInfo, EngineError> {
        let bucket_id = bucket.record.id;
        let key = key.to_string();
        let name = name.to_string();
        self.meta(move |c| c.set_version_header(&bucket_id, &key, &name, value))
            .await?
            .filter(|v| !v.delete_marker)
            .map(|record| ObjectInfo { record })
            .ok_or(EngineError::NoSuchKey)
    }

    /// Deletes an object; deleting a missing key succeeds (S3 semantics).
    pub async fn delete_object(&self, bucket: &BucketInfo, key: &str) -> Result<(), EngineError> {
        self.delete_object_if(bucket, key, WriteCondition::None)
            .await
    }

    /// Deletes an object if `condition` holds, checked atomically with the delete
    /// (DeleteObject with `If-Match`): 412 `PreconditionFailed` on another ETag, and for
    /// `If-Match` on a missing key 404 `NoSuchKey`, as S3's conditional deletes answer.
    pub async fn delete_object_if(
        &self,
        bucket: &BucketInfo,
        key: &str,
        condition: WriteCondition,
    ) -> Result<(), EngineError> {
        let bucket_id = bucket.record.id;
        let key_owned = key.to_string();
        let gc_delay = self.config.gc_delay.as_millis() as u64;
        let cond = condition.clone();
        let result = self
            .meta(move |c| c.delete_object_if(&bucket_id, &key_owned, &cond, now_ms(), gc_delay))
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(EngineError::PreconditionFailed)
                if matches!(condition, WriteCondition::IfMatch(_)) =>
            {
                match self.get_version(&bucket.record, key).await? {
                    None => Err(EngineError::NoSuchKey),
                    Some(_) => Err(EngineError::PreconditionFailed),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// One page of a bucket listing (V1 and V2 share it).
    pub async fn list_objects(
        &self,
        bucket: &BucketInfo,
        query: ListQuery,
    ) -> Result<ObjectListing, EngineError> {
        let bucket_id = bucket.record.id;
        let page = self
            .meta(move |c| c.list_objects(&bucket_id, &query))
            .await?;
        Ok(page.into())
    }
}
