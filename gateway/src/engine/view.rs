//! What the engine shows its callers: buckets, objects, parts, uploads and listing pages as
//! read-only views. The catalog's records (`metadata::model`) stay inside the engine; a view
//! wraps its record privately, so the protocol layer can read what it needs to answer a request
//! but cannot see or build data layouts, shard groups or sequence numbers, and a record format
//! change stops here.
//!
//! Stored strings become types at this boundary: a record's checksum algorithm and type become
//! [`Checksum`], its storage class a [`StorageClass`]. Records keep storing the strings they
//! always stored (the on-disk format does not change); the conversions are in this file.

use metadata::catalog::{ListPage, UploadListPage};
use metadata::model::{BucketRecord, StoredChecksum, UploadRecord, VersionRecord};

use crate::checksum::{Checksum, ChecksumAlgorithm, ChecksumType};
use crate::sse::{BucketDefaultEncryption, SseKind};

/// The storage classes this store offers (S3's `x-amz-storage-class`): one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StorageClass {
    #[default]
    Standard,
}

impl StorageClass {
    /// The name as S3 writes it.
    pub fn name(&self) -> &'static str {
        match self {
            StorageClass::Standard => "STANDARD",
        }
    }

    /// Parses a storage class name (exact, as S3 compares it).
    pub fn from_name(name: &str) -> Option<Self> {
        (name == "STANDARD").then_some(StorageClass::Standard)
    }

    /// The class of a stored record (every record stores `STANDARD`).
    fn from_stored(stored: &str) -> Self {
        Self::from_name(stored).unwrap_or_default()
    }
}

/// A stored checksum as a typed value (`None` for a name this build does not know).
pub(super) fn checksum_from_stored(stored: &StoredChecksum) -> Option<Checksum> {
    Some(Checksum {
        algorithm: ChecksumAlgorithm::from_name(&stored.algorithm)?,
        value: stored.value.clone(),
        kind: ChecksumType::from_name(&stored.kind)?,
    })
}

/// The record form of a checksum: the strings records have always stored.
pub(super) fn checksum_to_stored(checksum: &Checksum) -> StoredChecksum {
    StoredChecksum {
        algorithm: checksum.algorithm.name().to_string(),
        value: checksum.value.clone(),
        kind: checksum.kind.name().to_string(),
    }
}

/// A bucket, resolved once per request and handed to every engine call that works in it.
#[derive(Debug, Clone)]
pub struct BucketInfo {
    pub(super) record: BucketRecord,
}

impl BucketInfo {
    pub fn name(&self) -> &str {
        &self.record.name
    }

    /// Access key of the creator.
    pub fn owner(&self) -> &str {
        &self.record.owner
    }

    /// Region the bucket was created in (GetBucketLocation).
    pub fn region(&self) -> &str {
        &self.record.region
    }

    pub fn created_ms(&self) -> u64 {
        self.record.created_ms
    }

    /// The bucket's default encryption (PutBucketEncryption), if set.
    pub fn default_encryption(&self) -> Option<BucketDefaultEncryption> {
        self.record
            .default_encryption
            .as_ref()
            .map(|d| BucketDefaultEncryption {
                algorithm: d.algorithm.clone(),
                kms_key_id: d.kms_key_id.clone(),
                bucket_key_enabled: d.bucket_key_enabled,
            })
    }
}

/// The live version of an object: what HEAD and GET answer with, and what a read or copy opens.
#[derive(Debug, Clone)]
pub struct ObjectInfo {
    pub(super) record: VersionRecord,
}

/// The owner and access control list of a version, as the S3 layer reads and sets them
/// (`acl`: the stored ACL bytes of `s3::acl`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectAccess {
    pub owner: String,
    pub acl: Option<Vec<u8>>,
}

impl ObjectAccess {
    pub(super) fn into_record(self) -> metadata::model::ObjectAccess {
        metadata::model::ObjectAccess {
            owner: self.owner,
            acl: self.acl,
        }
    }
}

impl ObjectInfo {
    /// The version's owner and ACL, if any were set when it was written (or since).
    pub fn access(&self) -> Option<ObjectAccess> {
        self.record.access.as_ref().map(|a| ObjectAccess {
            owner: a.owner.clone(),
            acl: a.acl.clone(),
        })
    }

    /// How the version is encrypted at rest, if it is.
    pub fn encryption(&self) -> Option<SseKind> {
        self.record.encryption.as_ref().and_then(SseKind::of)
    }

    pub fn version_id(&self) -> &str {
        &self.record.version_id
    }

    pub fn size(&self) -> u64 {
        self.record.size
    }

    /// Unquoted ETag: hex MD5, or `md5-N` for a multipart object.
    pub fn etag(&self) -> &str {
        &self.record.etag
    }

    pub fn mtime_ms(&self) -> u64 {
        self.record.mtime_ms
    }

    pub fn storage_class(&self) -> StorageClass {
        StorageClass::from_stored(&self.record.storage_class)
    }

    pub fn content_type(&self) -> Option<&str> {
        self.record.content_type.as_deref()
    }

    /// Standard headers stored verbatim (lowercase names), including the tag set.
    pub fn headers(&self) -> &[(String, String)] {
        &self.record.headers
    }

    /// `x-amz-meta-*` without the prefix, lowercase names.
    pub fn user_metadata(&self) -> &[(String, String)] {
        &self.record.user_metadata
    }

    pub fn checksum(&self) -> Option<Checksum> {
        self.record.checksum.as_ref().and_then(checksum_from_stored)
    }

    /// True for an object made by CompleteMultipartUpload (its ETag is `md5-N`).
    pub fn is_multipart(&self) -> bool {
        self.record.etag.contains('-')
    }

    /// The parts in order (a single-PUT object is one part), dated with the object.
    pub fn parts(&self) -> impl Iterator<Item = PartInfo> + '_ {
        self.record.parts.iter().map(|part| PartInfo {
            part_number: part.part_number,
            size: part.size,
            etag: part.etag.clone(),
            mtime_ms: self.record.mtime_ms,
            checksum: part.checksum.as_ref().and_then(checksum_from_stored),
            encryption: None,
        })
    }

    pub fn parts_count(&self) -> usize {
        self.record.parts.len()
    }
}

/// One part: of a multipart upload (its newest attempt), or of a completed object.
#[derive(Debug, Clone)]
pub struct PartInfo {
    pub part_number: u32,
    pub size: u64,
    /// Unquoted hex MD5.
    pub etag: String,
    pub mtime_ms: u64,
    pub checksum: Option<Checksum>,
    /// Set on the answer of UploadPart/UploadPartCopy: the upload's encryption.
    pub encryption: Option<SseKind>,
}

/// An open multipart upload.
#[derive(Debug, Clone)]
pub struct UploadInfo {
    pub(super) record: UploadRecord,
}

impl UploadInfo {
    /// How the upload's parts are encrypted at rest, if they are.
    pub fn encryption(&self) -> Option<SseKind> {
        self.record.encryption.as_ref().and_then(SseKind::of)
    }

    pub fn upload_id(&self) -> &str {
        &self.record.upload_id
    }

    pub fn key(&self) -> &str {
        &self.record.key
    }

    pub fn initiated_ms(&self) -> u64 {
        self.record.initiated_ms
    }

    pub fn storage_class(&self) -> StorageClass {
        StorageClass::from_stored(&self.record.storage_class)
    }

    /// The algorithm the upload was created with (`x-amz-checksum-algorithm`).
    pub fn checksum_algorithm(&self) -> Option<ChecksumAlgorithm> {
        self.record
            .checksum_algorithm
            .as_deref()
            .and_then(ChecksumAlgorithm::from_name)
    }

    /// The object checksum type the upload was created with.
    pub fn checksum_type(&self) -> Option<ChecksumType> {
        self.record
            .checksum_type
            .as_deref()
            .and_then(ChecksumType::from_name)
    }
}

/// One object of a listing page.
#[derive(Debug, Clone)]
pub struct ListedObject {
    pub key: String,
    pub size: u64,
    /// Unquoted ETag.
    pub etag: String,
    pub mtime_ms: u64,
    pub storage_class: StorageClass,
}

/// One page of a bucket listing (V1 and V2 share it).
#[derive(Debug, Clone)]
pub struct ObjectListing {
    pub entries: Vec<ListedObject>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    /// The last key or common prefix returned, when truncated.
    pub next_marker: Option<String>,
}

impl From<ListPage> for ObjectListing {
    fn from(page: ListPage) -> Self {
        ObjectListing {
            entries: page
                .entries
                .into_iter()
                .map(|(key, head)| ListedObject {
                    key,
                    size: head.size,
                    etag: head.etag,
                    mtime_ms: head.mtime_ms,
                    storage_class: StorageClass::from_stored(&head.storage_class),
                })
                .collect(),
            common_prefixes: page.common_prefixes,
            is_truncated: page.is_truncated,
            next_marker: page.next_marker,
        }
    }
}

/// One page of ListMultipartUploads.
#[derive(Debug, Clone)]
pub struct UploadListing {
    pub uploads: Vec<UploadInfo>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    pub next_key_marker: Option<String>,
    pub next_upload_id_marker: Option<String>,
}

impl From<UploadListPage> for UploadListing {
    fn from(page: UploadListPage) -> Self {
        UploadListing {
            uploads: page
                .uploads
                .into_iter()
                .map(|record| UploadInfo { record })
                .collect(),
            common_prefixes: page.common_prefixes,
            is_truncated: page.is_truncated,
            next_key_marker: page.next_key_marker,
            next_upload_id_marker: page.next_upload_id_marker,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_strings_convert_both_ways() {
        let stored = StoredChecksum {
            algorithm: "CRC64NVME".into(),
            value: "rosUhgp5mIg=".into(),
            kind: "FULL_OBJECT".into(),
        };
        let typed = checksum_from_stored(&stored);
        assert_eq!(
            typed,
            Some(Checksum {
                algorithm: ChecksumAlgorithm::Crc64Nvme,
                value: "rosUhgp5mIg=".into(),
                kind: ChecksumType::FullObject,
            })
        );
        assert_eq!(typed.map(|c| checksum_to_stored(&c)), Some(stored));
        let composite = StoredChecksum {
            algorithm: "SHA256".into(),
            value: "x-2".into(),
            kind: "COMPOSITE".into(),
        };
        assert_eq!(
            checksum_from_stored(&composite).map(|c| checksum_to_stored(&c)),
            Some(composite)
        );
        assert_eq!(
            StorageClass::from_stored("STANDARD"),
            StorageClass::Standard
        );
        assert_eq!(StorageClass::Standard.name(), "STANDARD");
        assert_eq!(StorageClass::from_name("GLACIER"), None);
    }
}
