//! Encryption at rest (S3 server-side encryption): what a request asks for ([`SseRequest`]),
//! the keys the gateway holds ([`SseKeys`]), and how a data key is made, wrapped into the
//! catalog's opaque [`EncryptionRecord`] and recovered from it. The stored data format is in
//! [`format`], key wrapping and key files in [`keys`]; the engine streams through both
//! (`engine::sse`). The protocol layer only parses headers into an [`SseRequest`] and maps
//! [`SseError`]s to S3 errors; it never sees a key other than the customer's own.
//!
//! Invariants: a data key exists in the clear only in memory while a request runs; a customer
//! key (SSE-C) is never stored (only a salted check value); every wrapped key names the master
//! or KMS key that sealed it, so rotation only needs the old keys kept until a rewrap.

pub mod format;
pub mod keys;

use metadata::model::EncryptionRecord;

use keys::{KeyBytes, Keyring, SCHEME_C, SCHEME_KMS, SCHEME_S3};

/// Environment variable with an SSE-S3 master key (base64 of 32 bytes), used as key id `env`
/// and active over the key file's keys.
pub const MASTER_KEY_ENV: &str = "STRATA_SSE_MASTER_KEY";
/// File name of the master keys generated in the data directory on first start.
pub const DEFAULT_KEY_FILE: &str = "sse-master.keys";

/// Why an encryption step failed. The S3 layer maps each to one S3 error.
#[derive(Debug, thiserror::Error)]
pub enum SseError {
    /// Stored encrypted data or key material does not decode or authenticate.
    #[error("encrypted data is corrupt: {0}")]
    Corrupt(String),
    #[error("key file: {0}")]
    KeyFile(String),
    /// A wrapped data key did not open under the key it names.
    #[error("data key does not unwrap")]
    Unwrap,
    /// The master key a data key was wrapped with is not in the keyring any more.
    #[error("master key {0} is not in the keyring")]
    UnknownMasterKey(String),
    #[error("no SSE-S3 master key is configured")]
    NoMasterKey,
    /// The object is SSE-C and the request has no customer key.
    #[error("customer key required")]
    CustomerKeyMissing,
    /// The customer key is not the one the object was stored with.
    #[error("wrong customer key")]
    CustomerKeyWrong,
    /// A customer key was given for an object that is not SSE-C.
    #[error("customer key given for an object not encrypted with one")]
    CustomerKeyUnexpected,
    /// SSE-KMS without a KMS configured.
    #[error("no KMS is configured")]
    KmsNotConfigured,
    #[error("KMS key {0} does not exist")]
    KmsKeyNotFound(String),
}

/// What a write asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SseRequest {
    #[default]
    None,
    /// `x-amz-server-side-encryption: AES256`.
    S3,
    /// `x-amz-server-side-encryption: aws:kms` (or `aws:kms:dsse`) with an optional key id.
    Kms { key_id: Option<String> },
    /// SSE-C with the customer's key.
    Customer(CustomerKey),
}

/// A customer-provided key (SSE-C), already checked against its MD5.
#[derive(Clone, PartialEq, Eq)]
pub struct CustomerKey {
    pub key: KeyBytes,
    /// Base64 MD5 of the key, as sent and echoed.
    pub md5: String,
}

impl std::fmt::Debug for CustomerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomerKey")
            .field("md5", &self.md5)
            .finish()
    }
}

/// How a stored version is encrypted, as responses describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseKind {
    S3,
    Kms { key_id: String },
    Customer { key_md5: String },
}

impl SseKind {
    /// Of a stored record (`None` for an unknown scheme).
    pub fn of(record: &EncryptionRecord) -> Option<Self> {
        match record.scheme {
            SCHEME_S3 => Some(SseKind::S3),
            SCHEME_KMS => Some(SseKind::Kms {
                key_id: record.key_id.clone(),
            }),
            SCHEME_C => Some(SseKind::Customer {
                key_md5: record.key_md5.clone(),
            }),
            _ => None,
        }
    }
}

/// A bucket's default encryption as PutBucketEncryption sets it: `algorithm` is `AES256`,
/// `aws:kms` or `aws:kms:dsse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketDefaultEncryption {
    pub algorithm: String,
    pub kms_key_id: Option<String>,
    pub bucket_key_enabled: bool,
}

/// The keys this gateway encrypts with: SSE-S3 master keys and the local KMS's named keys.
#[derive(Debug, Clone, Default)]
pub struct SseKeys {
    pub master: Keyring,
    pub kms: Option<Keyring>,
}

impl SseKeys {
    /// A new data key for a write asking for `request`, and its record (`None`: not encrypted).
    pub fn new_data_key(
        &self,
        request: &SseRequest,
    ) -> Result<Option<(KeyBytes, EncryptionRecord)>, SseError> {
        let data_key = keys::new_data_key();
        let record = match request {
            SseRequest::None => return Ok(None),
            SseRequest::S3 => {
                let (id, kek) = self.master.active().ok_or(SseError::NoMasterKey)?;
                EncryptionRecord {
                    scheme: SCHEME_S3,
                    key_id: id.to_string(),
                    wrapped_key: keys::wrap(kek, SCHEME_S3, id, &data_key),
                    salt: Vec::new(),
                    key_check: Vec::new(),
                    key_md5: String::new(),
                }
            }
            SseRequest::Kms { key_id } => {
                let ring = self.kms.as_ref().ok_or(SseError::KmsNotConfigured)?;
                let (id, kek) = match key_id {
                    Some(id) => {
                        let id = strip_kms_arn(id);
                        let kek = ring
                            .get(id)
                            .ok_or_else(|| SseError::KmsKeyNotFound(id.to_string()))?;
                        (id, kek)
                    }
                    None => ring.active().ok_or(SseError::KmsNotConfigured)?,
                };
                EncryptionRecord {
                    scheme: SCHEME_KMS,
                    key_id: id.to_string(),
                    wrapped_key: keys::wrap(kek, SCHEME_KMS, id, &data_key),
                    salt: Vec::new(),
                    key_check: Vec::new(),
                    key_md5: String::new(),
                }
            }
            SseRequest::Customer(customer) => {
                let salt: [u8; 16] = rand::random();
                let derived = keys::derive_customer(&customer.key, &salt);
                EncryptionRecord {
                    scheme: SCHEME_C,
                    key_id: String::new(),
                    wrapped_key: keys::wrap(&derived.kek, SCHEME_C, "", &data_key),
                    salt: salt.to_vec(),
                    key_check: derived.check,
                    key_md5: customer.md5.clone(),
                }
            }
        };
        Ok(Some((data_key, record)))
    }

    /// The data key of a stored record; `customer` is the request's SSE-C key, if any.
    pub fn data_key(
        &self,
        record: &EncryptionRecord,
        customer: Option<&CustomerKey>,
    ) -> Result<KeyBytes, SseError> {
        match record.scheme {
            SCHEME_C => {
                let customer = customer.ok_or(SseError::CustomerKeyMissing)?;
                let derived = keys::derive_customer(&customer.key, &record.salt);
                use subtle::ConstantTimeEq;
                if !bool::from(derived.check.as_slice().ct_eq(&record.key_check)) {
                    return Err(SseError::CustomerKeyWrong);
                }
                keys::unwrap(&derived.kek, SCHEME_C, "", &record.wrapped_key)
            }
            SCHEME_S3 | SCHEME_KMS if customer.is_some() => Err(SseError::CustomerKeyUnexpected),
            SCHEME_S3 => {
                let kek = self
                    .master
                    .get(&record.key_id)
                    .ok_or_else(|| SseError::UnknownMasterKey(record.key_id.clone()))?;
                keys::unwrap(kek, SCHEME_S3, &record.key_id, &record.wrapped_key)
            }
            SCHEME_KMS => {
                let ring = self.kms.as_ref().ok_or(SseError::KmsNotConfigured)?;
                let kek = ring
                    .get(&record.key_id)
                    .ok_or_else(|| SseError::KmsKeyNotFound(record.key_id.clone()))?;
                keys::unwrap(kek, SCHEME_KMS, &record.key_id, &record.wrapped_key)
            }
            other => Err(SseError::Corrupt(format!("unknown SSE scheme {other}"))),
        }
    }

    /// An SSE-S3 record rewrapped under the active master key; `None` when it already is (or
    /// is not SSE-S3: SSE-C keys belong to the customer, KMS keys to the KMS).
    pub fn rewrap(&self, record: &EncryptionRecord) -> Result<Option<EncryptionRecord>, SseError> {
        if record.scheme != SCHEME_S3 {
            return Ok(None);
        }
        let (active, kek) = self.master.active().ok_or(SseError::NoMasterKey)?;
        if record.key_id == active {
            return Ok(None);
        }
        let data_key = self.data_key(record, None)?;
        Ok(Some(EncryptionRecord {
            key_id: active.to_string(),
            wrapped_key: keys::wrap(kek, SCHEME_S3, active, &data_key),
            ..record.clone()
        }))
    }
}

/// `arn:aws:kms:region:account:key/<id>` → `<id>`; a bare id (or alias) stays as it is.
fn strip_kms_arn(id: &str) -> &str {
    if id.starts_with("arn:") {
        if let Some((_, rest)) = id.rsplit_once(":key/") {
            return rest;
        }
    }
    id
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn keys_with(ids: &[&str]) -> SseKeys {
        let mut master = Keyring::default();
        for (i, id) in ids.iter().enumerate() {
            master.push(id, [i as u8 + 1; 32]);
        }
        SseKeys { master, kms: None }
    }

    #[test]
    fn sse_s3_rotation_rewrap_and_key_removal() {
        let old = keys_with(&["k1"]);
        let (data, record) = old.new_data_key(&SseRequest::S3).unwrap().unwrap();
        assert_eq!(record.key_id, "k1");
        let rotated = keys_with(&["k1", "k2"]);
        assert_eq!(rotated.data_key(&record, None).unwrap(), data);
        let rewrapped = rotated.rewrap(&record).unwrap().unwrap();
        assert_eq!(rewrapped.key_id, "k2");
        assert!(rotated.rewrap(&rewrapped).unwrap().is_none());
        let mut only_new = SseKeys::default();
        only_new.master.push("k2", [2u8; 32]);
        assert_eq!(only_new.data_key(&rewrapped, None).unwrap(), data);
        assert!(matches!(
            only_new.data_key(&record, None),
            Err(SseError::UnknownMasterKey(_))
        ));
    }

    #[test]
    fn sse_c_needs_the_right_key() {
        let keys = SseKeys::default();
        let customer = CustomerKey {
            key: [9u8; 32],
            md5: "md5".into(),
        };
        let (data, record) = keys
            .new_data_key(&SseRequest::Customer(customer.clone()))
            .unwrap()
            .unwrap();
        assert!(!record.wrapped_key.is_empty());
        assert_eq!(keys.data_key(&record, Some(&customer)).unwrap(), data);
        let wrong = CustomerKey {
            key: [8u8; 32],
            md5: "x".into(),
        };
        assert!(matches!(
            keys.data_key(&record, Some(&wrong)),
            Err(SseError::CustomerKeyWrong)
        ));
        assert!(matches!(
            keys.data_key(&record, None),
            Err(SseError::CustomerKeyMissing)
        ));
        let s3 = keys_with(&["k"]);
        let (_, s3_record) = s3.new_data_key(&SseRequest::S3).unwrap().unwrap();
        assert!(matches!(
            s3.data_key(&s3_record, Some(&customer)),
            Err(SseError::CustomerKeyUnexpected)
        ));
    }

    #[test]
    fn kms_needs_a_configured_known_key() {
        let none = SseKeys::default();
        assert!(matches!(
            none.new_data_key(&SseRequest::Kms { key_id: None }),
            Err(SseError::KmsNotConfigured)
        ));
        let mut ring = Keyring::default();
        ring.push("app", [4u8; 32]);
        let kms = SseKeys {
            master: Keyring::default(),
            kms: Some(ring),
        };
        let (data, record) = kms
            .new_data_key(&SseRequest::Kms {
                key_id: Some("arn:aws:kms:us-east-1:1:key/app".into()),
            })
            .unwrap()
            .unwrap();
        assert_eq!(record.key_id, "app");
        assert_eq!(kms.data_key(&record, None).unwrap(), data);
        assert!(matches!(
            kms.new_data_key(&SseRequest::Kms {
                key_id: Some("nope".into())
            }),
            Err(SseError::KmsKeyNotFound(_))
        ));
    }
}
