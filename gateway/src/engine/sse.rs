//! Encryption at rest inside the engine: the write path's body is sealed package by package
//! (`sse::format`) before it is cut into stripes, and the read path opens only the packages that
//! cover the requested plaintext range. Sealing and opening run off the reactor
//! (`spawn_blocking`, one call per batch of packages), like erasure coding.
//!
//! Invariants: the stored length of a part is `sse::format::sealed_len(plaintext length)`;
//! catalog sizes (version, parts) are plaintext sizes; the MD5 reported for an SSE-S3/KMS write
//! is the plaintext's (the ETag AWS gives), computed while sealing.

use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use md5::{Digest, Md5};
use metadata::model::{DataLayout, EncryptionRecord, PartLayout};
use tokio::sync::mpsc;

use super::read::ByteRange;
use super::{BodyError, BodyStream, Engine, EngineError};
use crate::sse::format::{self, Header, PartCipher, HEADER_SIZE, PACKAGE_SIZE};
use crate::sse::keys::KeyBytes;
use crate::sse::{CustomerKey, SseError, SseRequest};

/// Packages sealed or opened per blocking call (4 MiB of plaintext).
const PACKAGES_PER_BATCH: u64 = 64;

/// The plaintext MD5 of a sealed body, known once the body has been consumed.
pub(super) type PlainMd5 = Arc<Mutex<Option<[u8; 16]>>>;

struct SealState {
    body: BodyStream,
    buffer: BytesMut,
    received: u64,
    length: u64,
    next: u64,
    packages: u64,
    cipher: Arc<PartCipher>,
    hasher: Option<Md5>,
    header_sent: bool,
    md5: PlainMd5,
}

/// Wraps a plaintext body of exactly `length` bytes into the stored (sealed) form of one part.
pub(super) fn seal_body(
    body: BodyStream,
    length: u64,
    data_key: &KeyBytes,
) -> (BodyStream, PlainMd5) {
    let md5: PlainMd5 = Arc::new(Mutex::new(None));
    let state = SealState {
        body,
        buffer: BytesMut::new(),
        received: 0,
        length,
        next: 0,
        packages: format::package_count(length),
        cipher: Arc::new(PartCipher::new(data_key, Header::random(), length)),
        hasher: Some(Md5::new()),
        header_sent: false,
        md5: md5.clone(),
    };
    let stream = futures::stream::unfold(Some(state), |state| async move {
        let mut state = state?;
        match seal_step(&mut state).await {
            Ok(Some(bytes)) => Some((Ok(bytes), Some(state))),
            Ok(None) => None,
            Err(e) => Some((Err(e), None)),
        }
    });
    (Box::pin(stream), md5)
}

async fn seal_step(state: &mut SealState) -> Result<Option<Bytes>, BodyError> {
    if !state.header_sent {
        state.header_sent = true;
        return Ok(Some(Bytes::copy_from_slice(&state.cipher.header().0)));
    }
    if state.next >= state.packages {
        return Ok(None);
    }
    let batch = (PACKAGES_PER_BATCH * PACKAGE_SIZE) as usize;
    while state.buffer.len() < batch && state.received < state.length {
        match state.body.next().await {
            Some(Ok(chunk)) => {
                state.received += chunk.len() as u64;
                if state.received > state.length {
                    return Err(Box::new(EngineError::IncompleteBody(
                        "body longer than declared".into(),
                    )));
                }
                state.buffer.extend_from_slice(&chunk);
            }
            Some(Err(e)) => return Err(e),
            None => {
                return Err(Box::new(EngineError::IncompleteBody(format!(
                    "got {} of {} bytes",
                    state.received, state.length
                ))))
            }
        }
    }
    let whole = state.received == state.length;
    let take = if whole {
        state.buffer.len().min(batch)
    } else {
        state.buffer.len() / PACKAGE_SIZE as usize * PACKAGE_SIZE as usize
    };
    let plain = state.buffer.split_to(take).freeze();
    let cipher = state.cipher.clone();
    let mut hasher = state.hasher.take().ok_or("sealing hasher lost")?;
    let first = state.next;
    let packages = state.packages;
    let (sealed, hasher, count) = tokio::task::spawn_blocking(move || {
        hasher.update(&plain);
        let mut out = Vec::with_capacity(plain.len() + plain.len() / 4096 + 32);
        let mut index = first;
        let result = if plain.is_empty() && first + 1 == packages {
            index += 1;
            cipher.seal(first, &[], &mut out)
        } else {
            plain.chunks(PACKAGE_SIZE as usize).try_for_each(|chunk| {
                let r = cipher.seal(index, chunk, &mut out);
                index += 1;
                r
            })
        };
        (result.map(|()| out), hasher, index - first)
    })
    .await
    .map_err(|e| Box::new(e) as BodyError)?;
    if count == 0 {
        return Err("sealing made no progress".into());
    }
    state.next += count;
    let sealed = sealed.map_err(|e| Box::new(e) as BodyError)?;
    if state.next >= state.packages {
        let done: [u8; 16] = hasher.finalize().into();
        if let Ok(mut slot) = state.md5.lock() {
            *slot = Some(done);
        }
        // Anything after the declared length is a body longer than declared.
        while let Some(extra) = state.body.next().await {
            match extra {
                Ok(chunk) if chunk.is_empty() => continue,
                Ok(_) => {
                    return Err(Box::new(EngineError::IncompleteBody(
                        "body longer than declared".into(),
                    )))
                }
                Err(e) => return Err(e),
            }
        }
    } else {
        state.hasher = Some(hasher);
    }
    Ok(Some(Bytes::from(sealed)))
}

impl From<SseError> for EngineError {
    fn from(e: SseError) -> Self {
        EngineError::Sse(e)
    }
}

impl Engine {
    /// The data key and record of a new object or upload, for the request's encryption (or the
    /// bucket default when the request asks for none).
    pub(super) fn new_encryption(
        &self,
        request: &SseRequest,
    ) -> Result<Option<(KeyBytes, EncryptionRecord)>, EngineError> {
        Ok(self.config.sse.new_data_key(request)?)
    }

    /// The data key of a stored record, checking the request's customer key.
    pub(super) fn data_key_of(
        &self,
        record: Option<&EncryptionRecord>,
        customer: Option<&CustomerKey>,
    ) -> Result<Option<KeyBytes>, EngineError> {
        match record {
            Some(record) => Ok(Some(self.config.sse.data_key(record, customer)?)),
            None if customer.is_some() => Err(SseError::CustomerKeyUnexpected.into()),
            None => Ok(None),
        }
    }

    /// Stored bytes `[start, end)` of one part's data.
    async fn read_stored(
        &self,
        data: &DataLayout,
        start: u64,
        end: u64,
    ) -> Result<Bytes, EngineError> {
        match data {
            DataLayout::Inline(bytes) => bytes
                .get(start as usize..end as usize)
                .map(Bytes::copy_from_slice)
                .ok_or_else(|| SseError::Corrupt("inline data too short".into()).into()),
            DataLayout::Sharded(layout) => {
                let (tx, mut rx) = mpsc::channel::<Result<Bytes, BodyError>>(16);
                let range = ByteRange { start, end };
                let producer = async move {
                    let result = self.produce_sharded(layout, range, &tx).await;
                    drop(tx);
                    result
                };
                let collector = async {
                    let mut out = BytesMut::with_capacity((end - start) as usize);
                    while let Some(item) = rx.recv().await {
                        match item {
                            Ok(chunk) => out.extend_from_slice(&chunk),
                            Err(e) => return Err(EngineError::internal("encrypted read", e)),
                        }
                    }
                    Ok(out.freeze())
                };
                let (produced, collected) = tokio::join!(producer, collector);
                produced?;
                let bytes = collected?;
                if bytes.len() as u64 != end - start {
                    return Err(SseError::Corrupt("stored part too short".into()).into());
                }
                Ok(bytes)
            }
        }
    }

    /// Streams plaintext `range` (part-relative) of an encrypted part. False: the client left.
    pub(super) async fn produce_encrypted(
        &self,
        part: &PartLayout,
        range: ByteRange,
        data_key: &KeyBytes,
        tx: &mpsc::Sender<Result<Bytes, BodyError>>,
    ) -> Result<bool, EngineError> {
        let len = part.size;
        let span = format::span(len, range.start, range.end)?;
        let sealed_total = format::sealed_len(len);
        let header = Header::parse(&self.read_stored(&part.data, 0, HEADER_SIZE).await?)?;
        let cipher = Arc::new(PartCipher::new(data_key, header, len));
        let last = span.first + span.count;
        let mut index = span.first;
        let mut skip = span.skip as usize;
        let mut remaining = (range.end - range.start) as usize;
        while index < last && remaining > 0 {
            let count = (last - index).min(PACKAGES_PER_BATCH);
            let start = HEADER_SIZE + index * format::SEALED_PACKAGE;
            let end = (HEADER_SIZE + (index + count) * format::SEALED_PACKAGE).min(sealed_total);
            let sealed = self.read_stored(&part.data, start, end).await?;
            let opener = cipher.clone();
            let first = index;
            let plain = tokio::task::spawn_blocking(move || {
                let mut out = Vec::with_capacity(sealed.len());
                opener.open(first, &sealed, &mut out).map(|()| out)
            })
            .await
            .map_err(|e| EngineError::internal("decrypt task", e))??;
            let plain = Bytes::from(plain);
            let from = skip.min(plain.len());
            let to = (from + remaining).min(plain.len());
            let piece = plain.slice(from..to);
            remaining -= piece.len();
            skip = 0;
            index += count;
            if !piece.is_empty() && tx.send(Ok(piece)).await.is_err() {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Plaintext `range` of an encrypted inline part.
pub(super) fn open_inline(
    bytes: &[u8],
    len: u64,
    range: ByteRange,
    data_key: &KeyBytes,
) -> Result<Bytes, EngineError> {
    Ok(Bytes::from(format::open_range(
        data_key,
        bytes,
        len,
        range.start,
        range.end,
    )?))
}

/// How a write seals its data.
pub(super) struct Sealing {
    pub data_key: KeyBytes,
    /// SSE-C: the ETag is not the plaintext MD5 (AWS gives an opaque value); here it is the
    /// MD5 of the stored bytes.
    pub opaque_etag: bool,
}

impl Engine {
    /// [`Engine::write_data`] of a plaintext body of `length` bytes, sealed when `sealing` is
    /// given. The result's size is the plaintext size and its MD5 the ETag's.
    pub(super) async fn write_sealed(
        &self,
        body: BodyStream,
        length: u64,
        owner: super::write::DataOwner,
        expected_md5: Option<[u8; 16]>,
        sealing: Option<&Sealing>,
    ) -> Result<super::write::WrittenData, EngineError> {
        let Some(sealing) = sealing else {
            return self.write_data(body, length, owner, expected_md5).await;
        };
        if length > super::MAX_PART_SIZE {
            return Err(EngineError::EntityTooLarge);
        }
        let (sealed, plain_md5) = seal_body(body, length, &sealing.data_key);
        let mut written = self
            .write_data(sealed, format::sealed_len(length), owner, None)
            .await?;
        let plain = plain_md5.lock().ok().and_then(|slot| *slot);
        let refused = match plain {
            None => Some(EngineError::invariant("sealed body ended without its MD5")),
            Some(md5) if expected_md5.is_some_and(|e| e != md5) => Some(EngineError::BadDigest),
            Some(_) => None,
        };
        if let Some(error) = refused {
            if let Some(group) = written.intent {
                self.abandon_intent(group).await;
            }
            return Err(error);
        }
        if let (Some(md5), false) = (plain, sealing.opaque_etag) {
            written.md5 = md5;
        }
        written.size = length;
        Ok(written)
    }
}

/// The encryption a write gets: the request's, or the bucket's default when it asks for none.
pub(super) fn with_bucket_default(
    request: &SseRequest,
    bucket: &metadata::model::BucketRecord,
) -> SseRequest {
    if *request != SseRequest::None {
        return request.clone();
    }
    match &bucket.default_encryption {
        Some(default) if default.algorithm == "AES256" => SseRequest::S3,
        Some(default) if default.algorithm.starts_with("aws:kms") => SseRequest::Kms {
            key_id: default.kms_key_id.clone(),
        },
        _ => SseRequest::None,
    }
}

/// The sealing of a write whose data key and record are `encryption`.
pub(super) fn sealing_of(encryption: &Option<(KeyBytes, EncryptionRecord)>) -> Option<Sealing> {
    encryption.as_ref().map(|(key, record)| Sealing {
        data_key: *key,
        opaque_etag: record.scheme == crate::sse::keys::SCHEME_C,
    })
}

/// What `strata admin sse rewrap` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RewrapReport {
    pub active_key: String,
    pub rows_scanned: usize,
    pub rewrapped: usize,
    /// Records whose data key did not unwrap (their master key is missing): left as they are.
    pub failed: usize,
}

/// Rows per rewrap transaction.
const REWRAP_BATCH: usize = 64;

impl Engine {
    /// Sets (`Some`) or removes the bucket's default encryption.
    pub async fn set_bucket_encryption(
        &self,
        bucket: &super::BucketInfo,
        default: Option<crate::sse::BucketDefaultEncryption>,
    ) -> Result<(), EngineError> {
        if let Some(d) = &default {
            if d.algorithm.starts_with("aws:kms") && self.config.sse.kms.is_none() {
                return Err(SseError::KmsNotConfigured.into());
            }
        }
        let name = bucket.name().to_string();
        let stored = default.map(|d| metadata::model::BucketEncryption {
            algorithm: d.algorithm,
            kms_key_id: d.kms_key_id,
            bucket_key_enabled: d.bucket_key_enabled,
        });
        self.meta(move |c| c.set_bucket_encryption(&name, stored))
            .await?;
        Ok(())
    }

    /// Rewraps every SSE-S3 data key (versions and open uploads) under the active master key,
    /// `REWRAP_BATCH` rows per catalog transaction. Idempotent; safe while serving.
    pub async fn rewrap_data_keys(&self) -> Result<RewrapReport, EngineError> {
        use metadata::catalog::RewrapTable;
        let keys = self.config.sse.clone();
        let active = keys
            .master
            .active()
            .map(|(id, _)| id.to_string())
            .ok_or(SseError::NoMasterKey)?;
        let mut report = RewrapReport {
            active_key: active,
            ..RewrapReport::default()
        };
        let failed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for table in [RewrapTable::Versions, RewrapTable::Uploads] {
            let mut after: Vec<u8> = Vec::new();
            // Each step moves `after` strictly forward, so this ends; the cap is a backstop.
            for _ in 0..100_000_000u64 {
                let (keys, failed, from) = (keys.clone(), failed.clone(), after.clone());
                let step = self
                    .meta(move |c| {
                        let rewrap = |record: &EncryptionRecord| match keys.rewrap(record) {
                            Ok(new) => new,
                            Err(_) => {
                                failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                None
                            }
                        };
                        c.rewrap_step(table, &from, REWRAP_BATCH, &rewrap)
                    })
                    .await?;
                report.rows_scanned += step.scanned;
                report.rewrapped += step.rewrapped;
                match step.next {
                    Some(next) => after = next,
                    None => break,
                }
            }
        }
        report.failed = failed.load(std::sync::atomic::Ordering::Relaxed);
        Ok(report)
    }
}

impl Engine {
    /// How a write asking for `request` into `bucket` will be encrypted (the response headers
    /// of calls that answer before the write ends, such as CopyObject).
    pub fn expected_encryption(
        &self,
        bucket: &super::BucketInfo,
        request: &SseRequest,
    ) -> Option<crate::sse::SseKind> {
        use crate::sse::SseKind;
        match with_bucket_default(request, &bucket.record) {
            SseRequest::None => None,
            SseRequest::S3 => Some(SseKind::S3),
            SseRequest::Customer(customer) => Some(SseKind::Customer {
                key_md5: customer.md5,
            }),
            SseRequest::Kms { key_id } => {
                let active = || {
                    self.config
                        .sse
                        .kms
                        .as_ref()
                        .and_then(|ring| ring.active().map(|(id, _)| id.to_string()))
                };
                key_id.or_else(active).map(|key_id| SseKind::Kms { key_id })
            }
        }
    }
}
