//! Everything the storage node and `HttpShardStore` must agree on besides authentication: the
//! request paths, the response bodies of `read_frames`, `stat`, `list` and `health`, and the
//! table from `StorageError` to an HTTP status and an error kind (and back).
//!
//! Invariants: every decoder checks lengths before using them and fails with `Corrupt` (never a
//! panic) on bytes that do not parse; a frame travels with its stored checksum so the client
//! re-verifies it end to end; the error table is the only place statuses are chosen for store
//! errors, and `error_from_wire` inverts it exactly for every `StorageError` variant.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use http::StatusCode;
use http_body::{Body, Frame, SizeHint};

use crate::error::StorageError;
use crate::format::{self, ShardHeader};
use crate::id::ShardId;
use crate::scrub::{ScrubStatus, LEDGER_FORMAT, MAX_REPORTS};
use crate::store::{ShardStat, StoreHealth};

/// Prefix of every shard path; `GET` on it alone is the listing.
pub const SHARDS_PATH: &str = "/v1/shards";
/// Free and total bytes of the node's disk.
pub const HEALTH_PATH: &str = "/v1/health";
/// Scrub progress and pending reports (`GET`).
pub const SCRUB_PATH: &str = "/v1/scrub";
/// Acknowledging scrub reports (`DELETE ?upto=N`).
pub const SCRUB_REPORTS_PATH: &str = "/v1/scrub/reports";
/// Response header naming the `StorageError` variant of an error response.
pub const ERROR_KIND_HEADER: &str = "x-strata-error";
/// Largest page the node answers for a listing (a larger `limit` is clamped).
pub const MAX_LIST_LIMIT: usize = 10_000;
/// The node closes a connection that does not send a request's headers within this time,
/// idle keep-alive connections included; clients must retire pooled connections sooner.
pub const NODE_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Page size when the listing request names no `limit`.
pub const DEFAULT_LIST_LIMIT: usize = 1_000;

/// Tag and version at the start of a `read_frames` answer.
pub const FRAMES_MAGIC: &[u8; 4] = b"SNF1";
/// Tag and version at the start of a `stat` answer.
pub const STAT_MAGIC: &[u8; 4] = b"SNS1";
const FRAME_PRESENT: u8 = 1;
const FRAME_MISSING: u8 = 0;

/// `/v1/shards/<group hex>.<index>`
pub fn shard_path(id: ShardId) -> String {
    format!("{SHARDS_PATH}/{}", id.file_name())
}

/// `/v1/shards/<group hex>.<index>/frames`
pub fn frames_path(id: ShardId) -> String {
    format!("{SHARDS_PATH}/{}/frames", id.file_name())
}

/// The kind word sent in [`ERROR_KIND_HEADER`] for an authentication failure.
pub const UNAUTHORIZED_KIND: &str = "unauthorized";

/// HTTP status and kind word for a store error.
pub fn error_status(err: &StorageError) -> (StatusCode, &'static str) {
    match err {
        StorageError::NotFound => (StatusCode::NOT_FOUND, "not-found"),
        StorageError::Corrupt(_) => (StatusCode::INTERNAL_SERVER_ERROR, "corrupt"),
        StorageError::InvalidArgument(_) => (StatusCode::BAD_REQUEST, "invalid-argument"),
        StorageError::DiskFull => (StatusCode::INSUFFICIENT_STORAGE, "disk-full"),
        StorageError::ReadOnly => (StatusCode::SERVICE_UNAVAILABLE, "read-only"),
        StorageError::Io(_) => (StatusCode::SERVICE_UNAVAILABLE, "io"),
        StorageError::Timeout => (StatusCode::REQUEST_TIMEOUT, "timeout"),
        StorageError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
    }
}

/// The client's reading of an error response from node `node`.
pub fn error_from_wire(
    node: &str,
    status: StatusCode,
    kind: Option<&str>,
    message: String,
) -> StorageError {
    match kind {
        Some("not-found") => StorageError::NotFound,
        Some("corrupt") => StorageError::Corrupt(message),
        Some("invalid-argument") => StorageError::InvalidArgument(message),
        Some("disk-full") => StorageError::DiskFull,
        Some("read-only") => StorageError::ReadOnly,
        Some("io") => StorageError::Io(format!("{node}: {message}")),
        Some("timeout") => StorageError::Timeout,
        Some("unavailable") => StorageError::Unavailable(format!("{node}: {message}")),
        _ => match status {
            StatusCode::UNAUTHORIZED => StorageError::Unavailable(format!(
                "{node} refused authentication (check the cluster secret and clocks): {message}"
            )),
            // Without a kind word a 404 is not "no such shard": it may be a wrong URL or
            // another server, and reading it as a missing shard could start a needless repair.
            StatusCode::INSUFFICIENT_STORAGE => StorageError::DiskFull,
            _ => StorageError::Unavailable(format!("{node} answered {status}: {message}")),
        },
    }
}

/// A response body made of chunks known up front: sent without copying, with an exact length.
#[derive(Debug, Default)]
pub struct ChunksBody {
    chunks: VecDeque<Bytes>,
    remaining: u64,
}

impl ChunksBody {
    pub fn new(chunks: impl IntoIterator<Item = Bytes>) -> Self {
        let chunks: VecDeque<Bytes> = chunks.into_iter().filter(|c| !c.is_empty()).collect();
        let remaining = chunks.iter().map(|c| c.len() as u64).sum();
        ChunksBody { chunks, remaining }
    }
}

impl ChunksBody {
    /// The chunks not sent yet, in order.
    pub fn into_chunks(self) -> VecDeque<Bytes> {
        self.chunks
    }
}

impl From<Bytes> for ChunksBody {
    fn from(bytes: Bytes) -> Self {
        ChunksBody::new([bytes])
    }
}

impl Body for ChunksBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let next = self.chunks.pop_front();
        if let Some(chunk) = &next {
            self.remaining = self.remaining.saturating_sub(chunk.len() as u64);
        }
        Poll::Ready(next.map(|chunk| Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// `read_frames` answer: `"SNF1" | count u32 |` then per frame either `0` (missing) or
/// `1 | length u32 | checksum u64 | shard bytes` (length counts checksum and bytes).
/// The shard bytes are not copied: the body sends them as their own chunks.
pub fn encode_frames(frames: &[Option<Bytes>]) -> Result<ChunksBody, StorageError> {
    let count = u32::try_from(frames.len())
        .map_err(|_| StorageError::InvalidArgument("too many frames for one answer".into()))?;
    let mut chunks = Vec::with_capacity(frames.len() * 2 + 1);
    let mut prefix = Vec::with_capacity(8);
    prefix.extend_from_slice(FRAMES_MAGIC);
    prefix.extend_from_slice(&count.to_be_bytes());
    chunks.push(Bytes::from(prefix));
    for frame in frames {
        match frame {
            None => chunks.push(Bytes::from_static(&[FRAME_MISSING])),
            Some(shard) => {
                let stored_len = u32::try_from(shard.len() as u64 + format::FRAME_CHECKSUM_LEN)
                    .map_err(|_| StorageError::InvalidArgument("frame too large".into()))?;
                let mut head = Vec::with_capacity(13);
                head.push(FRAME_PRESENT);
                head.extend_from_slice(&stored_len.to_be_bytes());
                head.extend_from_slice(&format::frame_checksum(shard).to_be_bytes());
                chunks.push(Bytes::from(head));
                chunks.push(shard.clone());
            }
        }
    }
    Ok(ChunksBody::new(chunks))
}

/// Decodes a `read_frames` answer that must hold exactly `expected` frames. A frame whose
/// checksum fails on arrival becomes `None`, like a bad frame on disk.
pub fn decode_frames(mut body: Bytes, expected: u64) -> Result<Vec<Option<Bytes>>, StorageError> {
    let corrupt = |what: &str| StorageError::Corrupt(format!("frames answer: {what}"));
    if body.len() < 8 || !body.starts_with(FRAMES_MAGIC) {
        return Err(corrupt("bad tag"));
    }
    body.advance(FRAMES_MAGIC.len());
    let count = u64::from(body.get_u32());
    if count != expected {
        return Err(corrupt(&format!("{count} frames, asked for {expected}")));
    }
    let mut frames = Vec::with_capacity(usize::try_from(count).unwrap_or(0).min(1 << 16));
    for _ in 0..count {
        if body.is_empty() {
            return Err(corrupt("truncated"));
        }
        match body.get_u8() {
            FRAME_MISSING => frames.push(None),
            FRAME_PRESENT => {
                if body.len() < 4 {
                    return Err(corrupt("truncated frame length"));
                }
                let len = body.get_u32() as usize;
                if body.len() < len {
                    return Err(corrupt("truncated frame"));
                }
                let frame = body.split_to(len);
                frames.push(format::verify_frame(&frame).map(|shard| frame.slice_ref(shard)));
            }
            other => return Err(corrupt(&format!("unknown frame flag {other}"))),
        }
    }
    if !body.is_empty() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(frames)
}

/// `stat` answer: `"SNS1" | file length u64 | encoded header`.
pub fn encode_stat(stat: &ShardStat) -> Bytes {
    let header = stat.header.encode();
    let mut out = Vec::with_capacity(12 + header.len());
    out.extend_from_slice(STAT_MAGIC);
    out.extend_from_slice(&stat.file_len.to_be_bytes());
    out.extend_from_slice(&header);
    Bytes::from(out)
}

/// Decodes a `stat` answer for shard `id`.
pub fn decode_stat(body: &[u8], id: ShardId) -> Result<ShardStat, StorageError> {
    let corrupt = |what: &str| StorageError::Corrupt(format!("stat answer: {what}"));
    let rest = body
        .strip_prefix(STAT_MAGIC)
        .ok_or_else(|| corrupt("bad tag"))?;
    let (file_len, encoded) = rest
        .split_first_chunk::<8>()
        .ok_or_else(|| corrupt("truncated"))?;
    let (header, header_len) = ShardHeader::decode(encoded)?;
    if header_len != encoded.len() {
        return Err(corrupt("trailing bytes"));
    }
    if header.shard_id() != id {
        return Err(corrupt(&format!(
            "header of {} for {id}",
            header.shard_id()
        )));
    }
    Ok(ShardStat {
        header,
        header_len: header_len as u64,
        file_len: u64::from_be_bytes(*file_len),
    })
}

/// Listing answer: one shard file name per line.
pub fn encode_list(ids: &[ShardId]) -> Bytes {
    let mut out = String::with_capacity(ids.len() * 36);
    for id in ids {
        out.push_str(&id.file_name());
        out.push('\n');
    }
    Bytes::from(out)
}

pub fn decode_list(body: &[u8]) -> Result<Vec<ShardId>, StorageError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| StorageError::Corrupt("listing answer is not UTF-8".into()))?;
    text.lines()
        .map(|line| {
            ShardId::parse_file_name(line)
                .map_err(|_| StorageError::Corrupt("listing answer holds a bad shard id".into()))
        })
        .collect()
}

/// Health answer: `free_bytes=<n>\ntotal_bytes=<n>\n`.
pub fn encode_health(health: &StoreHealth) -> Bytes {
    Bytes::from(format!(
        "free_bytes={}\ntotal_bytes={}\ninstance={}\n",
        health.free_bytes, health.total_bytes, health.instance
    ))
}

pub fn decode_health(body: &[u8]) -> Result<StoreHealth, StorageError> {
    let corrupt = || StorageError::Corrupt("health answer does not parse".into());
    let text = std::str::from_utf8(body).map_err(|_| corrupt())?;
    let mut lines = text.lines();
    let mut field = |name: &str| -> Result<u64, StorageError> {
        lines
            .next()
            .and_then(|line| line.strip_prefix(name))
            .and_then(|rest| rest.strip_prefix('='))
            .and_then(|value| value.parse().ok())
            .ok_or_else(corrupt)
    };
    let free_bytes = field("free_bytes")?;
    let total_bytes = field("total_bytes")?;
    // Nodes before the instance line answer two lines: instance 0 (not reported).
    let instance = match lines.next() {
        None => 0,
        Some(line) => line
            .strip_prefix("instance=")
            .and_then(|value| value.parse().ok())
            .ok_or_else(corrupt)?,
    };
    Ok(StoreHealth {
        free_bytes,
        total_bytes,
        instance,
    })
}

/// The scrub status answer: `{"format":1,"status":{…}}` (JSON, `ScrubStatus`'s fields).
#[derive(serde::Serialize, serde::Deserialize)]
struct ScrubAnswer {
    format: u32,
    status: ScrubStatus,
}

pub fn encode_scrub_status(status: &ScrubStatus) -> Result<Bytes, StorageError> {
    let answer = ScrubAnswer {
        format: LEDGER_FORMAT,
        status: status.clone(),
    };
    serde_json::to_vec(&answer)
        .map(Bytes::from)
        .map_err(|err| StorageError::Io(format!("cannot encode the scrub status: {err}")))
}

pub fn decode_scrub_status(body: &[u8]) -> Result<ScrubStatus, StorageError> {
    let answer: ScrubAnswer = serde_json::from_slice(body)
        .map_err(|err| StorageError::Corrupt(format!("scrub status answer: {err}")))?;
    if answer.format != LEDGER_FORMAT {
        return Err(StorageError::Corrupt(format!(
            "scrub status answer has format {}",
            answer.format
        )));
    }
    if answer.status.reports.len() > MAX_REPORTS {
        return Err(StorageError::Corrupt(
            "scrub status answer lists too many reports".into(),
        ));
    }
    Ok(answer.status)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use http_body_util::BodyExt;

    use super::*;
    use crate::codec::Geometry;
    use crate::format::BackReference;
    use crate::id::ShardGroupId;

    async fn collect(body: ChunksBody) -> Bytes {
        body.collect().await.unwrap().to_bytes()
    }

    /// Freezes the frames answer, version 1.
    #[tokio::test]
    async fn frames_answer_bytes_are_frozen() {
        let frames = vec![Some(Bytes::from_static(b"abc")), None];
        let body = encode_frames(&frames).unwrap();
        assert_eq!(body.size_hint().exact(), Some(8 + 13 + 3 + 1));
        let bytes = collect(body).await;
        let mut expected = b"SNF1\x00\x00\x00\x02\x01\x00\x00\x00\x0b".to_vec();
        expected.extend_from_slice(&format::frame_checksum(b"abc").to_be_bytes());
        expected.extend_from_slice(b"abc\x00");
        assert_eq!(bytes.as_ref(), expected.as_slice());
        assert_eq!(decode_frames(bytes, 2).unwrap(), frames);
    }

    #[tokio::test]
    async fn damaged_frames_answers_are_erasures_or_errors_never_panics() {
        let frames = vec![
            Some(Bytes::from_static(b"hello")),
            Some(Bytes::from_static(b"xy")),
        ];
        let bytes = collect(encode_frames(&frames).unwrap()).await;
        // A flipped shard byte in transit: that frame is an erasure.
        let mut damaged = bytes.to_vec();
        damaged[8 + 13] ^= 1;
        let decoded = decode_frames(Bytes::from(damaged), 2).unwrap();
        assert_eq!(decoded, vec![None, Some(Bytes::from_static(b"xy"))]);
        assert!(decode_frames(bytes.clone(), 3).is_err());
        for cut in 0..bytes.len() {
            assert!(decode_frames(bytes.slice(..cut), 2).is_err(), "cut {cut}");
        }
        let mut long = bytes.to_vec();
        long.push(0);
        assert!(decode_frames(Bytes::from(long), 2).is_err());
    }

    #[test]
    fn stat_list_and_health_round_trip() {
        let id = ShardId::new(ShardGroupId([7; 16]), 3);
        let geometry = Geometry::new(4, 2, 1024).unwrap();
        let reference = BackReference {
            bucket: "b".into(),
            key: "k".into(),
            version: "v".into(),
            part_number: 1,
        };
        let header = ShardHeader::new(&geometry, id, 5000, reference).unwrap();
        let stat = ShardStat {
            header_len: header.encode().len() as u64,
            header,
            file_len: 1234,
        };
        let encoded = encode_stat(&stat);
        assert_eq!(decode_stat(&encoded, id).unwrap(), stat);
        let other = ShardId::new(id.group, 4);
        assert!(decode_stat(&encoded, other).is_err());
        for cut in 0..encoded.len() {
            assert!(decode_stat(&encoded[..cut], id).is_err());
        }

        let ids = vec![id, other];
        assert_eq!(decode_list(&encode_list(&ids)).unwrap(), ids);
        assert_eq!(decode_list(b"").unwrap(), vec![]);
        assert!(decode_list(b"../etc\n").is_err());

        let health = StoreHealth {
            free_bytes: 5,
            total_bytes: 9,
            instance: 77,
        };
        assert_eq!(decode_health(&encode_health(&health)).unwrap(), health);
        assert!(decode_health(b"free_bytes=5\n").is_err());
        assert!(decode_health(b"free_bytes=5\ntotal_bytes=9\ninstance=x\n").is_err());
        // An older node's two-line answer: instance not reported.
        let old = decode_health(b"free_bytes=5\ntotal_bytes=9\n").unwrap();
        assert_eq!(old.instance, 0);

        let status = ScrubStatus {
            enabled: true,
            passes_completed: 3,
            reports: vec![crate::scrub::ScrubReport {
                id: 7,
                shard: id.file_name(),
                found_ms: 1,
                reason: "bad".into(),
                quarantine: None,
            }],
            ..ScrubStatus::default()
        };
        let encoded = encode_scrub_status(&status).unwrap();
        assert!(encoded.starts_with(b"{\"format\":1,\"status\":{"));
        assert_eq!(decode_scrub_status(&encoded).unwrap(), status);
        for cut in 0..encoded.len() {
            assert!(decode_scrub_status(&encoded[..cut]).is_err());
        }
        let other_format = String::from_utf8(encoded.to_vec()).unwrap().replacen(
            "\"format\":1",
            "\"format\":9",
            1,
        );
        assert!(decode_scrub_status(other_format.as_bytes()).is_err());
    }

    #[test]
    fn every_error_survives_the_wire() {
        for err in [
            StorageError::NotFound,
            StorageError::Corrupt("c".into()),
            StorageError::InvalidArgument("i".into()),
            StorageError::DiskFull,
            StorageError::ReadOnly,
            StorageError::Io("x".into()),
            StorageError::Timeout,
            StorageError::Unavailable("u".into()),
        ] {
            let (status, kind) = error_status(&err);
            let back = error_from_wire("n", status, Some(kind), "x".into());
            assert_eq!(
                std::mem::discriminant(&back),
                std::mem::discriminant(&err),
                "{err:?}"
            );
        }
        let unknown = error_from_wire("n", StatusCode::NOT_FOUND, None, "no such endpoint".into());
        assert!(
            matches!(unknown, StorageError::Unavailable(_)),
            "{unknown:?}"
        );
        let auth = error_from_wire(
            "n",
            StatusCode::UNAUTHORIZED,
            Some(UNAUTHORIZED_KIND),
            "bad".into(),
        );
        assert!(matches!(auth, StorageError::Unavailable(m) if m.contains("authentication")));
    }
}
