//! Record values stored in the catalog tables, and their encoding.
//!
//! Invariant: every stored value is `[FORMAT_TAG] ‖ postcard(record)`. Decoding a value whose
//! tag is not [`FORMAT_TAG`], or whose body does not decode completely, is a
//! [`MetaError::Corrupt`], never a panic. A change to any record's fields must bump the tag
//! (and keep a decoder for the old one); the golden test below freezes today's bytes.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::MetaError;

/// Format tag written before every record. Each format added at most one trailing optional
/// field to a record, so a value of an older format decodes with `None` there (see [`decode`]):
/// - format 2 added `encryption: Option<EncryptionRecord>` to [`VersionRecord`] and
///   [`UploadRecord`] and `default_encryption: Option<BucketEncryption>` to [`BucketRecord`];
/// - format 3 added `access: Option<ObjectAccess>` to [`VersionRecord`] and [`UploadRecord`]
///   and `access: Option<BucketAccess>` to [`BucketRecord`] (owners, ACLs, policies).
///
/// Every other record is unchanged since format 1.
pub const FORMAT_TAG: u8 = 3;
/// The format before encryption at rest.
pub const FORMAT_TAG_V1: u8 = 1;
/// The format before access control (owners, ACLs, policies).
pub const FORMAT_TAG_V2: u8 = 2;

/// Who may do what to a bucket, beyond its owner: opaque documents the gateway's access module
/// reads and writes (the catalog knows nothing of their meaning).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketAccess {
    /// The bucket policy, as stored by PutBucketPolicy (JSON text).
    pub policy: Option<String>,
    /// The bucket's access control list, in the gateway's stored ACL format.
    pub acl: Option<Vec<u8>>,
    /// The Object Ownership setting (`BucketOwnerEnforced`, …); `None`: never set.
    pub ownership: Option<String>,
    /// The Public Access Block configuration, in the gateway's stored format.
    pub public_access_block: Option<Vec<u8>>,
}

/// The owner and access control list of a version (or of the object an upload will make).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectAccess {
    /// The writer's canonical id (the bucket owner's under `BucketOwnerEnforced`).
    pub owner: String,
    /// The object's access control list, in the gateway's stored ACL format; `None`: private.
    pub acl: Option<Vec<u8>>,
}

/// How the data of a version (or of every part of an upload) is encrypted at rest: opaque key
/// material the gateway's SSE module reads. `scheme`: 1 SSE-S3, 2 SSE-C, 3 SSE-KMS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptionRecord {
    pub scheme: u8,
    /// Master key id (SSE-S3), KMS key id (SSE-KMS); empty for SSE-C.
    pub key_id: String,
    /// The data key, wrapped under the key named by `key_id` (or derived from the customer key).
    pub wrapped_key: Vec<u8>,
    /// SSE-C: the HKDF salt.
    pub salt: Vec<u8>,
    /// SSE-C: the value that tells the right customer key from a wrong one.
    pub key_check: Vec<u8>,
    /// SSE-C: base64 MD5 of the customer key, as responses echo it.
    pub key_md5: String,
}

/// A bucket's default encryption (PutBucketEncryption): `algorithm` is `AES256` or `aws:kms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketEncryption {
    pub algorithm: String,
    pub kms_key_id: Option<String>,
    pub bucket_key_enabled: bool,
}

/// Bucket id: 16 bytes, never reused.
pub type BucketId = [u8; 16];

/// `buckets` table value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketRecord {
    pub name: String,
    pub id: BucketId,
    pub created_ms: u64,
    pub owner: String,
    pub region: String,
    pub default_encryption: Option<BucketEncryption>,
    /// Policy, ACL, ownership controls and public access block; `None` before any was set.
    pub access: Option<BucketAccess>,
}

/// `identity` table value under `u/<name>`: a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub name: String,
    /// The id ACL grants and owners name (64 lower-case hex characters).
    pub canonical_id: String,
    pub created_ms: u64,
    /// Names of the identity policies attached (named policies or the gateway's built-ins).
    pub policies: Vec<String>,
    /// The user's access key ids (so deleting the user deletes them in the same commit).
    pub access_keys: Vec<String>,
}

/// `identity` table value under `k/<access key id>`: an access key of a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKeyRecord {
    pub access_key: String,
    pub user: String,
    /// The secret key, sealed by the gateway under its master key (SigV4 needs the secret
    /// itself, so it cannot be hashed).
    pub sealed_secret: Vec<u8>,
    /// A disabled key authenticates nothing.
    pub active: bool,
    pub created_ms: u64,
}

/// `identity` table value under `p/<name>`: a named identity policy (its JSON text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRecord {
    pub name: String,
    pub document: String,
    pub created_ms: u64,
}

/// `objects` table value: the listing index entry of the live version of a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectHead {
    pub seq: u64,
    pub version_id: String,
    pub size: u64,
    pub etag: String,
    pub mtime_ms: u64,
    pub storage_class: String,
}

/// `versions` table value: everything needed to serve a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    pub seq: u64,
    pub version_id: String,
    pub size: u64,
    pub etag: String,
    pub mtime_ms: u64,
    pub storage_class: String,
    pub content_type: Option<String>,
    /// content-encoding, cache-control, … stored verbatim.
    pub headers: Vec<(String, String)>,
    /// x-amz-meta-* (name without the prefix, lowercase).
    pub user_metadata: Vec<(String, String)>,
    pub checksum: Option<StoredChecksum>,
    pub delete_marker: bool,
    /// A single PUT is one part; a multipart object is N parts in order.
    pub parts: Vec<PartLayout>,
    /// Set when the data is encrypted at rest; `size` and part sizes are plaintext sizes.
    pub encryption: Option<EncryptionRecord>,
    /// The version's owner and ACL; `None`: written before access control (the bucket owner's,
    /// private).
    pub access: Option<ObjectAccess>,
}

impl VersionRecord {
    /// The listing-index entry of this version.
    pub fn head(&self) -> ObjectHead {
        ObjectHead {
            seq: self.seq,
            version_id: self.version_id.clone(),
            size: self.size,
            etag: self.etag.clone(),
            mtime_ms: self.mtime_ms,
            storage_class: self.storage_class.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredChecksum {
    pub algorithm: String,
    pub value: String,
    /// "FULL_OBJECT" or "COMPOSITE".
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartLayout {
    pub part_number: u32,
    pub size: u64,
    pub etag: String,
    pub checksum: Option<StoredChecksum>,
    pub data: DataLayout,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DataLayout {
    Inline(Vec<u8>),
    Sharded(ShardedLayout),
}

impl DataLayout {
    /// The shard layout, when the data lives in shards.
    pub fn sharded(&self) -> Option<&ShardedLayout> {
        match self {
            DataLayout::Inline(_) => None,
            DataLayout::Sharded(layout) => Some(layout),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardedLayout {
    pub group: [u8; 16],
    pub data_shards: u8,
    pub parity_shards: u8,
    pub block_size: u32,
    pub length: u64,
    /// Node/disk id holding shard i; `len == data_shards + parity_shards`.
    pub nodes: Vec<u32>,
    /// Shard indexes that were not written.
    pub missing: Vec<u8>,
}

/// `uploads` table value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRecord {
    pub upload_id: String,
    pub bucket_id: BucketId,
    pub key: String,
    pub initiated_ms: u64,
    pub useq: u64,
    pub content_type: Option<String>,
    pub headers: Vec<(String, String)>,
    pub user_metadata: Vec<(String, String)>,
    pub storage_class: String,
    pub checksum_algorithm: Option<String>,
    pub checksum_type: Option<String>,
    /// The upload's data key: every part is encrypted with it.
    pub encryption: Option<EncryptionRecord>,
    /// The owner and ACL the completed object gets.
    pub access: Option<ObjectAccess>,
}

/// `system` value under [`crate::keys::system_completed_upload_key`]: the multipart upload
/// whose completion made the live version `seq` of a key, so that a repeated
/// CompleteMultipartUpload (an SDK retrying after a lost response) gets the same answer. At
/// most one per key; removed in the batch that replaces or deletes that version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletedUploadRecord {
    pub upload_id: String,
    pub seq: u64,
    pub completed_ms: u64,
}

/// `system` value under `i/cleanup/…` (see `catalog::cleanup`): removal of a number of rows
/// that grows with the data, decided by one small transaction and carried out by
/// `Catalog::cleanup_step` in bounded, idempotent steps. A job row exists until its last step
/// has removed it; every step reads and rewrites it, so two workers never run one job at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CleanupJob {
    /// The part rows of upload `useq` of `bucket`/`key`, which was completed into version
    /// `version` (`Some(seq)`) or aborted (`None`). Each step removes some part rows and queues
    /// to GC (due `due_ms`, with `reason`) the shard groups the version does not hold.
    Upload {
        bucket: BucketId,
        key: String,
        useq: u64,
        version: Option<u64>,
        due_ms: u64,
        reason: String,
    },
    /// The version row `bucket ‖ esc(key) ‖ !seq`, replaced or deleted, which stays (no longer
    /// named by the head, so not live) until every layout of it from part index `next` on has
    /// been queued to GC (due `due_ms`) — except the groups in `kept`, which the version that
    /// replaced it holds — and then goes with the job.
    Version {
        bucket: BucketId,
        key: String,
        seq: u64,
        kept: Vec<[u8; 16]>,
        next: u32,
        due_ms: u64,
        reason: String,
    },
    /// The rows left by deleted bucket `bucket`: its version rows (delete markers; rows with a
    /// pending `Version` job are left to that job), completed-upload records, and uploads (each
    /// becomes an `Upload` job). `stage` 0, 1, 2 in that order; `after` is the last row key
    /// handled within the stage.
    Bucket {
        bucket: BucketId,
        stage: u8,
        after: Vec<u8>,
        due_ms: u64,
    },
}

/// `parts` table value: one attempt at uploading one part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRecord {
    pub part_number: u32,
    pub attempt: u64,
    pub size: u64,
    pub etag: String,
    pub mtime_ms: u64,
    pub checksum: Option<StoredChecksum>,
    pub data: DataLayout,
}

/// `intents` table value: a shard group being written right now, and who writes it.
///
/// Stored with [`INTENT_TAG`] (see [`encode_intent`]); values of format 1 (before intents had
/// an owner) decode with an empty `owner`, which no live gateway has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntentRecord {
    pub created_ms: u64,
    pub layout: ShardedLayout,
    /// Id of the gateway process writing the group: its intents are collected as soon as it
    /// is known dead (its liveness row expired), not only after `stale_intent_secs`.
    pub owner: String,
}

/// Format tag of [`IntentRecord`] values (format 1 had no owner).
pub const INTENT_TAG: u8 = 2;

/// An intent as format 1 stored it.
#[derive(Deserialize)]
struct IntentRecordV1 {
    created_ms: u64,
    layout: ShardedLayout,
}

/// Encodes an intent as `INTENT_TAG ‖ postcard(intent)`.
pub fn encode_intent(intent: &IntentRecord) -> Result<Vec<u8>, MetaError> {
    let mut out = encode(intent)?;
    out[0] = INTENT_TAG;
    Ok(out)
}

/// Decodes an intent of either format.
pub fn decode_intent(bytes: &[u8]) -> Result<IntentRecord, MetaError> {
    match bytes.split_first() {
        Some((&INTENT_TAG, body)) => {
            let mut tagged = Vec::with_capacity(bytes.len());
            tagged.push(FORMAT_TAG);
            tagged.extend_from_slice(body);
            decode(&tagged)
        }
        _ => {
            let old: IntentRecordV1 = decode(bytes)?;
            Ok(IntentRecord {
                created_ms: old.created_ms,
                layout: old.layout,
                owner: String::new(),
            })
        }
    }
}

/// `gc` table value: a shard group whose shards must be deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcItem {
    pub layout: ShardedLayout,
    pub reason: String,
}

/// A layout slot that names no node. Partial layouts (the shards a repair is writing, one
/// replaced shard queued for deletion) put it on every index they do not cover; GC and repair
/// skip such slots. Configuration refuses it as a node id.
pub const NO_NODE: u32 = u32::MAX;

/// Where the layout of a shard group is recorded, so repair can find and swap it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LayoutOwner {
    /// A part of the version row `bucket ‖ esc(key) ‖ !seq`.
    Version {
        bucket: BucketId,
        key: String,
        seq: u64,
    },
    /// The part attempt row `useq ‖ part_number ‖ attempt` of an upload of `bucket`/`key`.
    Part {
        bucket: BucketId,
        key: String,
        useq: u64,
        part_number: u32,
        attempt: u64,
    },
}

/// `placement` table value (key `node ‖ group`): which shard of the group the node holds and
/// whose layout lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementRecord {
    pub index: u8,
    pub owner: LayoutOwner,
}

/// `repair` table value (key `due_ms ‖ group`): a shard group that needs healing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairItem {
    pub group: [u8; 16],
    /// Why it was queued first ("missing at write", "read failure", "node lost", …).
    pub reason: String,
    /// Failed attempts so far (drives the backoff).
    pub attempts: u32,
    /// Shard indexes reported bad; the repair also finds missing ones by itself.
    pub shards: Vec<u8>,
    pub queued_ms: u64,
}

/// Encodes a record as `FORMAT_TAG ‖ postcard(record)`.
pub fn encode<T: Serialize>(record: &T) -> Result<Vec<u8>, MetaError> {
    let mut out = vec![FORMAT_TAG];
    postcard::to_io(record, &mut out)
        .map_err(|e| MetaError::Corrupt(format!("cannot encode record: {e}")))?;
    Ok(out)
}

/// Decodes a value written by [`encode`]; an unknown tag or trailing bytes are corruption.
/// A value of an older format is decoded as it is, or — for the records later formats extended
/// by trailing optional fields — with those fields absent (postcard writes `None` as one 0
/// byte, so each missing field is one appended 0).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, MetaError> {
    match bytes.split_first() {
        Some((&tag, body)) if (FORMAT_TAG_V1..FORMAT_TAG).contains(&tag) => decode_body(body)
            .or_else(|first| {
                // One more `None` per format since `tag`, tried fewest first.
                (1..=usize::from(FORMAT_TAG - tag))
                    .find_map(|missing| {
                        let mut extended = body.to_vec();
                        extended.resize(body.len() + missing, 0);
                        decode_body(&extended).ok()
                    })
                    .ok_or(first)
            }),
        Some((&FORMAT_TAG, body)) => decode_body(body),
        Some((tag, _)) => Err(MetaError::Corrupt(format!("unknown format tag {tag}"))),
        None => Err(MetaError::Corrupt("empty record".to_string())),
    }
}

/// Decodes one postcard body that must be consumed exactly.
fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, MetaError> {
    let (record, rest) = postcard::take_from_bytes(body)
        .map_err(|e| MetaError::Corrupt(format!("cannot decode record: {e}")))?;
    if !rest.is_empty() {
        return Err(MetaError::Corrupt(format!(
            "{} trailing bytes after record",
            rest.len()
        )));
    }
    Ok(record)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample_version() -> VersionRecord {
        VersionRecord {
            seq: 42,
            version_id: "v1".to_string(),
            size: 300,
            etag: "abc-2".to_string(),
            mtime_ms: 1_700_000_000_000,
            storage_class: "STANDARD".to_string(),
            content_type: Some("text/plain".to_string()),
            headers: vec![("cache-control".to_string(), "no-cache".to_string())],
            user_metadata: vec![("color".to_string(), "blue".to_string())],
            checksum: Some(StoredChecksum {
                algorithm: "CRC32C".to_string(),
                value: "AAAA".to_string(),
                kind: "COMPOSITE".to_string(),
            }),
            delete_marker: false,
            parts: vec![
                PartLayout {
                    part_number: 1,
                    size: 3,
                    etag: "e1".to_string(),
                    checksum: None,
                    data: DataLayout::Inline(vec![1, 2, 3]),
                },
                PartLayout {
                    part_number: 2,
                    size: 297,
                    etag: "e2".to_string(),
                    checksum: None,
                    data: DataLayout::Sharded(ShardedLayout {
                        group: [0xAB; 16],
                        data_shards: 4,
                        parity_shards: 2,
                        block_size: 1 << 20,
                        length: 297,
                        nodes: vec![0, 1, 2, 3, 4, 5],
                        missing: vec![5],
                    }),
                },
            ],
            encryption: None,
            access: None,
        }
    }

    /// Frozen bytes of `sample_version()`. If this test fails, the on-disk format changed:
    /// bump FORMAT_TAG and keep a decoder for the old format instead of editing this constant.
    const GOLDEN_VERSION_HEX: &str = concat!(
        "012a027631ac02056162632d3280d095ffbc31085354414e44415244010a746578742f706c61696e010d6361",
        "6368652d636f6e74726f6c086e6f2d63616368650105636f6c6f7204626c7565010643524333324304414141",
        "4109434f4d504f534954450002010302653100000301020302a9020265320001abababababababababababab",
        "abababab0402808040a902060001020304050105",
    );

    /// The same version in format 2 (tag 2, `encryption: None` as a trailing 0).
    fn golden_version_v2_hex() -> String {
        format!("02{}00", &GOLDEN_VERSION_HEX[2..])
    }

    /// The same version in format 3 (tag 3, `encryption` and `access` `None`: two trailing 0s).
    fn golden_version_v3_hex() -> String {
        format!("03{}0000", &GOLDEN_VERSION_HEX[2..])
    }

    #[test]
    fn version_record_encoding_is_frozen() {
        let bytes = encode(&sample_version()).unwrap();
        assert_eq!(hex::encode(&bytes), golden_version_v3_hex());
        let back: VersionRecord = decode(&bytes).unwrap();
        assert_eq!(back, sample_version());
        // Formats 1 and 2 still decode, as a version without encryption or access record.
        let back: VersionRecord = decode(&hex::decode(GOLDEN_VERSION_HEX).unwrap()).unwrap();
        assert_eq!(back, sample_version());
        let back: VersionRecord = decode(&hex::decode(golden_version_v2_hex()).unwrap()).unwrap();
        assert_eq!(back, sample_version());
    }

    #[test]
    fn access_records_are_frozen() {
        let mut version = sample_version();
        version.access = Some(ObjectAccess {
            owner: "c1".to_string(),
            acl: Some(vec![7, 8]),
        });
        let bytes = encode(&version).unwrap();
        assert!(hex::encode(&bytes).ends_with("0001026331010207 08".replace(' ', "").as_str()));
        assert_eq!(decode::<VersionRecord>(&bytes).unwrap(), version);
        let bucket = BucketRecord {
            name: "b".to_string(),
            id: [1; 16],
            created_ms: 5,
            owner: "o".to_string(),
            region: "r".to_string(),
            default_encryption: None,
            access: Some(BucketAccess {
                policy: Some("{}".to_string()),
                acl: None,
                ownership: Some("X".to_string()),
                public_access_block: Some(vec![1]),
            }),
        };
        let bytes = encode(&bucket).unwrap();
        assert_eq!(
            hex::encode(&bytes),
            "030162010101010101010101010101010101010501 6f0172 00 01 01027b7d 00 010158 010101"
                .replace(' ', "")
        );
        assert_eq!(decode::<BucketRecord>(&bytes).unwrap(), bucket);
    }

    #[test]
    fn encrypted_version_and_bucket_records_are_frozen() {
        let mut version = sample_version();
        version.parts.truncate(1);
        version.encryption = Some(EncryptionRecord {
            scheme: 2,
            key_id: String::new(),
            wrapped_key: vec![1, 2],
            salt: vec![3],
            key_check: vec![4],
            key_md5: "m".to_string(),
        });
        let bytes = encode(&version).unwrap();
        assert_eq!(decode::<VersionRecord>(&bytes).unwrap(), version);
        assert!(
            hex::encode(&bytes).ends_with("0102000201020103010401 6d 00".replace(' ', "").as_str())
        );
        let bucket = BucketRecord {
            name: "b".to_string(),
            id: [1; 16],
            created_ms: 5,
            owner: "o".to_string(),
            region: "r".to_string(),
            default_encryption: Some(BucketEncryption {
                algorithm: "AES256".to_string(),
                kms_key_id: None,
                bucket_key_enabled: false,
            }),
            access: None,
        };
        let bytes = encode(&bucket).unwrap();
        assert_eq!(
            hex::encode(&bytes),
            "030162010101010101010101010101010101010501 6f01720106414553323536 0000 00"
                .replace(' ', "")
        );
        // The same bucket in format 2 (no access record) still decodes.
        let mut v2 = bytes[..bytes.len() - 1].to_vec();
        v2[0] = FORMAT_TAG_V2;
        assert_eq!(decode::<BucketRecord>(&v2).unwrap(), bucket);
        assert_eq!(decode::<BucketRecord>(&bytes).unwrap(), bucket);
        // A format-1 bucket (no default encryption) still decodes.
        let v1 = hex::decode("0201620101010101010101010101010101010105016f0172").unwrap();
        let mut v1 = v1;
        v1[0] = FORMAT_TAG_V1;
        let old: BucketRecord = decode(&v1).unwrap();
        assert_eq!(old.default_encryption, None);
        assert_eq!(old.region, "r");
    }

    #[test]
    fn completed_upload_record_encoding_is_frozen() {
        let record = CompletedUploadRecord {
            upload_id: "u1".to_string(),
            seq: 42,
            completed_ms: 1_700_000_000_000,
        };
        let bytes = encode(&record).unwrap();
        assert_eq!(hex::encode(&bytes), "030275312a80d095ffbc31");
        assert_eq!(decode::<CompletedUploadRecord>(&bytes).unwrap(), record);
        // Unchanged by formats 2 and 3: the format-1 bytes decode the same.
        let v1 = hex::decode("010275312a80d095ffbc31").unwrap();
        assert_eq!(decode::<CompletedUploadRecord>(&v1).unwrap(), record);
    }

    #[test]
    fn decode_rejects_unknown_tags_truncation_and_trailing_bytes() {
        let mut bytes = encode(&sample_version()).unwrap();
        let mut wrong_tag = bytes.clone();
        wrong_tag[0] = 4;
        assert!(matches!(
            decode::<VersionRecord>(&wrong_tag),
            Err(MetaError::Corrupt(_))
        ));
        assert!(matches!(
            decode::<VersionRecord>(&[]),
            Err(MetaError::Corrupt(_))
        ));
        let truncated = &bytes[..bytes.len() - 3];
        assert!(matches!(
            decode::<VersionRecord>(truncated),
            Err(MetaError::Corrupt(_))
        ));
        bytes.push(0);
        assert!(matches!(
            decode::<VersionRecord>(&bytes),
            Err(MetaError::Corrupt(_))
        ));
    }

    #[test]
    fn every_record_roundtrips() {
        let layout = match &sample_version().parts[1].data {
            DataLayout::Sharded(l) => l.clone(),
            DataLayout::Inline(_) => unreachable!(),
        };
        let gc = GcItem {
            layout: layout.clone(),
            reason: "replaced".to_string(),
        };
        assert_eq!(decode::<GcItem>(&encode(&gc).unwrap()).unwrap(), gc);
        let intent = IntentRecord {
            created_ms: 5,
            layout: layout.clone(),
            owner: "gw-1".to_string(),
        };
        assert_eq!(
            decode_intent(&encode_intent(&intent).unwrap()).unwrap(),
            intent
        );
        // Format 1 (no owner) still decodes, as an intent no live gateway owns.
        #[derive(Serialize)]
        struct V1 {
            created_ms: u64,
            layout: ShardedLayout,
        }
        let mut old = encode(&V1 {
            created_ms: 5,
            layout,
        })
        .unwrap();
        old[0] = FORMAT_TAG_V1;
        let decoded = decode_intent(&old).unwrap();
        assert_eq!(decoded.owner, "");
        assert_eq!(decoded.created_ms, 5);
        let head = sample_version().head();
        assert_eq!(decode::<ObjectHead>(&encode(&head).unwrap()).unwrap(), head);
        let placement = PlacementRecord {
            index: 3,
            owner: LayoutOwner::Part {
                bucket: [1; 16],
                key: "k".to_string(),
                useq: 9,
                part_number: 2,
                attempt: 11,
            },
        };
        assert_eq!(
            decode::<PlacementRecord>(&encode(&placement).unwrap()).unwrap(),
            placement
        );
        let repair = RepairItem {
            group: [2; 16],
            reason: "read failure".to_string(),
            attempts: 1,
            shards: vec![0, 5],
            queued_ms: 7,
        };
        assert_eq!(
            decode::<RepairItem>(&encode(&repair).unwrap()).unwrap(),
            repair
        );
        let jobs = [
            CleanupJob::Upload {
                bucket: [3; 16],
                key: "k".to_string(),
                useq: 12,
                version: Some(13),
                due_ms: 14,
                reason: "unused part".to_string(),
            },
            CleanupJob::Version {
                bucket: [3; 16],
                key: "k".to_string(),
                seq: 13,
                kept: vec![[4; 16]],
                next: 120,
                due_ms: 14,
                reason: "deleted".to_string(),
            },
            CleanupJob::Bucket {
                bucket: [3; 16],
                stage: 1,
                after: vec![1, 2],
                due_ms: 15,
            },
        ];
        for job in jobs {
            assert_eq!(decode::<CleanupJob>(&encode(&job).unwrap()).unwrap(), job);
        }
    }
}
