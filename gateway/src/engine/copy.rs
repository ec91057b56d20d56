//! Server-side copies: CopyObject and UploadPartCopy inside the engine.
//!
//! The caller opens the source (a ranged read, [`Engine::open_object`]) after checking its
//! copy conditions, and hands the open read here: its stream goes straight into the write path,
//! so a copy never holds more than the read and write pipelines' bounded buffers and its bytes
//! never pass through the protocol layer.
//!
//! Checksums: a byte-identical whole copy keeps the source's FULL_OBJECT checksum; otherwise
//! (another algorithm asked for, a COMPOSITE source, a part of a checksummed upload) the
//! checksum is computed here over the copied bytes as they stream.

use metadata::catalog::WriteCondition;

use super::objects::{ObjectRead, PendingChecksum, PutObjectRequest};
use super::view::{BucketInfo, ObjectInfo, PartInfo, StorageClass, UploadInfo};
use super::{Engine, EngineError};
use crate::checksum::{ChecksumAlgorithm, ChecksumType};
use crate::sse::{CustomerKey, SseRequest};

/// Where and as what CopyObject writes its copy.
pub struct CopyTarget {
    pub key: String,
    pub content_type: Option<String>,
    /// Standard headers stored verbatim (the tag set included), lowercase names.
    pub headers: Vec<(String, String)>,
    /// `x-amz-meta-*` without the prefix, lowercase names.
    pub user_metadata: Vec<(String, String)>,
    pub storage_class: StorageClass,
    /// `x-amz-checksum-algorithm` of the request, if any.
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
    pub condition: WriteCondition,
    /// Encryption of the copy (the source's is undone by the read).
    pub encryption: SseRequest,
    /// The copy's owner and ACL (`None`: the bucket owner's, private).
    pub access: Option<super::ObjectAccess>,
}

impl Engine {
    /// CopyObject: stores all of `source` (opened over its whole size) as `target` in `bucket`.
    pub async fn copy_object(
        &self,
        bucket: &BucketInfo,
        source: ObjectRead,
        target: CopyTarget,
    ) -> Result<ObjectInfo, EngineError> {
        let source_checksum = source.version.checksum();
        let kept = source_checksum
            .clone()
            .filter(|c| c.kind == ChecksumType::FullObject)
            .filter(|c| target.checksum_algorithm.is_none_or(|a| a == c.algorithm));
        let compute = match (&kept, target.checksum_algorithm, &source_checksum) {
            (Some(_), _, _) => None,
            (None, Some(a), _) => Some(a),
            (None, None, Some(c)) => Some(c.algorithm),
            (None, None, None) => None,
        };
        let (body, checksum) = match compute {
            Some(algorithm) => {
                let (body, pending) = PendingChecksum::hashing(source.body, algorithm);
                (body, Some(pending))
            }
            None => (source.body, kept.map(PendingChecksum::Known)),
        };
        let request = PutObjectRequest {
            key: target.key,
            length: source.range.end - source.range.start,
            content_type: target.content_type,
            headers: target.headers,
            user_metadata: target.user_metadata,
            storage_class: target.storage_class,
            expected_md5: None,
            checksum: None,
            condition: target.condition,
            encryption: target.encryption,
            access: target.access,
        };
        self.store_object(&bucket.record, request, checksum, body)
            .await
    }

    /// UploadPartCopy: stores the range `source` was opened over as part `part_number` of
    /// `upload`, with the upload's checksum algorithm computed over the copied bytes.
    pub async fn copy_part(
        &self,
        bucket: &BucketInfo,
        upload: &UploadInfo,
        part_number: u32,
        source: ObjectRead,
        customer: Option<&CustomerKey>,
    ) -> Result<PartInfo, EngineError> {
        let length = source.range.end - source.range.start;
        let (body, checksum) = match upload.checksum_algorithm() {
            Some(algorithm) => {
                let (body, pending) = PendingChecksum::hashing(source.body, algorithm);
                (body, Some(pending))
            }
            None => (source.body, None),
        };
        self.store_part(
            &bucket.record,
            upload.record.clone(),
            part_number,
            length,
            None,
            checksum,
            customer,
            body,
        )
        .await
    }
}
