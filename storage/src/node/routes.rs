//! Request routing and handlers of the storage node: one `Endpoint` parsed strictly from
//! (method, path, query), one `handle_<operation>` per endpoint, all backed by the node's
//! `LocalShardStore`.
//!
//! Invariants: a request is authenticated before anything else; a shard id comes only from
//! `ShardId::parse_file_name` (so `..`, `/`, `%2e` or uppercase hex never reach the disk); a
//! shard PUT is written through a `ShardWriter` and committed only after the whole body arrived,
//! matched the header's length and every frame's checksum — any other outcome aborts the writer,
//! which removes its temporary file; the body is buffered at most one frame at a time.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::request::Parts;
use http::{HeaderValue, Method, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tracing::Instrument;

use super::auth::authenticate;
use super::wire::{self, ChunksBody};
use super::NodeState;
use crate::error::StorageError;
use crate::format::{self, ShardHeader, MAX_HEADER_LEN};
use crate::id::ShardId;
use crate::local::MAX_FRAMES_PER_READ;
use crate::store::{ShardStore, ShardWriter};

/// A PUT body that sends nothing for this long is abandoned (the writer is aborted).
pub(super) const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest query string parsed.
const MAX_QUERY_LEN: usize = 256;

/// One operation of the node protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Endpoint {
    PutShard(ShardId),
    ReadFrames {
        id: ShardId,
        first: u64,
        count: u64,
    },
    StatShard(ShardId),
    DeleteShard(ShardId),
    ListShards {
        after: Option<ShardId>,
        limit: usize,
    },
    Health,
    /// `GET /v1/scrub`: scrub progress and pending reports.
    ScrubStatus,
    /// `DELETE /v1/scrub/reports?upto=N`: forget reports with id <= N.
    AckScrubReports {
        up_to: u64,
    },
}

/// An error answer: status, kind word (see `wire::ERROR_KIND_HEADER`) and a plain-text message.
#[derive(Debug)]
pub(super) struct Rejection {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl Rejection {
    fn bad_request(message: impl Into<String>) -> Self {
        Rejection {
            status: StatusCode::BAD_REQUEST,
            kind: "invalid-argument",
            message: message.into(),
        }
    }

    /// The request body was not a valid shard file.
    fn bad_body(message: impl Into<String>) -> Self {
        Rejection {
            status: StatusCode::BAD_REQUEST,
            kind: "corrupt",
            message: message.into(),
        }
    }

    fn plain(status: StatusCode, message: impl Into<String>) -> Self {
        Rejection {
            status,
            kind: "",
            message: message.into(),
        }
    }

    /// A store error, with the data directory named for the two a operator must act on.
    fn from_store(state: &NodeState, err: StorageError) -> Self {
        let (status, kind) = wire::error_status(&err);
        let message = match &err {
            StorageError::DiskFull => {
                format!("no space left in data directory {}", state.data.display())
            }
            StorageError::ReadOnly => {
                format!("data directory {} is read-only", state.data.display())
            }
            other => other.to_string(),
        };
        Rejection {
            status,
            kind,
            message,
        }
    }

    fn into_response(self) -> Response<ChunksBody> {
        let mut response = Response::new(ChunksBody::from(Bytes::from(self.message + "\n")));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if !self.kind.is_empty() {
            headers.insert(wire::ERROR_KIND_HEADER, HeaderValue::from_static(self.kind));
        }
        response
    }
}

/// Serves one request: authenticate, route, handle. Never fails: errors become responses.
pub(super) async fn handle_request(
    state: Arc<NodeState>,
    request: http::Request<Incoming>,
) -> Response<ChunksBody> {
    let (parts, body) = request.into_parts();
    if let Err(err) = authenticate(&parts, &state.secret, state.max_skew) {
        tracing::warn!(method = %parts.method, path = parts.uri.path(), reason = %err, "refused unauthenticated request");
        return Rejection {
            status: StatusCode::UNAUTHORIZED,
            kind: wire::UNAUTHORIZED_KIND,
            message: err.to_string(),
        }
        .into_response();
    }
    let endpoint = match parse_endpoint(&parts.method, parts.uri.path(), parts.uri.query()) {
        Ok(endpoint) => endpoint,
        Err(rejection) => {
            tracing::debug!(method = %parts.method, path = parts.uri.path(), status = %rejection.status, "rejected request");
            return rejection.into_response();
        }
    };
    let outcome = match endpoint {
        Endpoint::PutShard(id) => {
            // Its own task: hyper drops a request's future when the connection fails, and an
            // upload cut short between two awaits of the store could leak its temporary file.
            // Run to completion, it sees the broken body and aborts its writer.
            let upload_state = Arc::clone(&state);
            let upload = async move { handle_put_shard(&upload_state, id, &parts, body).await };
            match tokio::spawn(upload.in_current_span()).await {
                Ok(outcome) => outcome,
                Err(join_error) => Err(Rejection::from_store(&state, join_error.into())),
            }
        }
        Endpoint::ReadFrames { id, first, count } => {
            handle_read_frames(&state, id, first, count).await
        }
        Endpoint::StatShard(id) => handle_stat_shard(&state, id).await,
        Endpoint::DeleteShard(id) => handle_delete_shard(&state, id).await,
        Endpoint::ListShards { after, limit } => handle_list_shards(&state, after, limit).await,
        Endpoint::Health => handle_health(&state).await,
        Endpoint::ScrubStatus => handle_scrub_status(&state).await,
        Endpoint::AckScrubReports { up_to } => handle_ack_scrub_reports(&state, up_to).await,
    };
    match outcome {
        Ok(response) => response,
        Err(rejection) => {
            tracing::info!(status = %rejection.status, message = %rejection.message, "request failed");
            rejection.into_response()
        }
    }
}

fn ok(body: impl Into<ChunksBody>) -> Result<Response<ChunksBody>, Rejection> {
    Ok(Response::new(body.into()))
}

fn parse_endpoint(method: &Method, path: &str, query: Option<&str>) -> Result<Endpoint, Rejection> {
    let query = parse_query(query.unwrap_or(""))?;
    let no_query = |endpoint: Endpoint| {
        if query.is_empty() {
            Ok(endpoint)
        } else {
            Err(Rejection::bad_request("this endpoint takes no query"))
        }
    };
    if path == wire::HEALTH_PATH {
        return match *method {
            Method::GET => no_query(Endpoint::Health),
            _ => Err(method_not_allowed()),
        };
    }
    if path == wire::SCRUB_PATH {
        return match *method {
            Method::GET => no_query(Endpoint::ScrubStatus),
            _ => Err(method_not_allowed()),
        };
    }
    if path == wire::SCRUB_REPORTS_PATH {
        if *method != Method::DELETE {
            return Err(method_not_allowed());
        }
        return match query.as_slice() {
            [("upto", value)] => Ok(Endpoint::AckScrubReports {
                up_to: parse_number("upto", value)?,
            }),
            _ => Err(Rejection::bad_request("acknowledging needs exactly upto=N")),
        };
    }
    if path == wire::SHARDS_PATH {
        if *method != Method::GET {
            return Err(method_not_allowed());
        }
        let mut after = None;
        let mut limit = wire::DEFAULT_LIST_LIMIT;
        for (key, value) in query {
            match key {
                "after" => after = Some(parse_shard_id(value)?),
                "limit" => {
                    limit = parse_number(key, value)?.min(wire::MAX_LIST_LIMIT as u64) as usize
                }
                _ => return Err(Rejection::bad_request(format!("unknown parameter {key:?}"))),
            }
        }
        return Ok(Endpoint::ListShards { after, limit });
    }
    let Some(rest) = path
        .strip_prefix(wire::SHARDS_PATH)
        .and_then(|rest| rest.strip_prefix('/'))
    else {
        return Err(Rejection::plain(StatusCode::NOT_FOUND, "no such endpoint"));
    };
    let (name, frames) = match rest.split_once('/') {
        Some((name, "frames")) => (name, true),
        Some(_) => return Err(Rejection::bad_request("bad shard path")),
        None => (rest, false),
    };
    let id = parse_shard_id(name)?;
    match (frames, method.clone()) {
        (true, Method::GET) => {
            let (mut first, mut count) = (None, None);
            for (key, value) in query {
                match key {
                    "first" => first = Some(parse_number(key, value)?),
                    "count" => count = Some(parse_number(key, value)?),
                    _ => return Err(Rejection::bad_request(format!("unknown parameter {key:?}"))),
                }
            }
            match (first, count) {
                (Some(first), Some(count)) => Ok(Endpoint::ReadFrames { id, first, count }),
                _ => Err(Rejection::bad_request("frames needs first and count")),
            }
        }
        (false, Method::PUT) => no_query(Endpoint::PutShard(id)),
        (false, Method::GET) => no_query(Endpoint::StatShard(id)),
        (false, Method::DELETE) => no_query(Endpoint::DeleteShard(id)),
        _ => Err(method_not_allowed()),
    }
}

fn method_not_allowed() -> Rejection {
    Rejection::plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}

fn parse_shard_id(text: &str) -> Result<ShardId, Rejection> {
    ShardId::parse_file_name(text).map_err(|err| Rejection::bad_request(err.to_string()))
}

/// `key=value` pairs; each key at most once; no percent-decoding (no valid value needs it).
fn parse_query(query: &str) -> Result<Vec<(&str, &str)>, Rejection> {
    if query.len() > MAX_QUERY_LEN {
        return Err(Rejection::bad_request("query too long"));
    }
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| Rejection::bad_request("malformed query"))?;
        if pairs.iter().any(|(seen, _)| *seen == key) {
            return Err(Rejection::bad_request(format!(
                "repeated parameter {key:?}"
            )));
        }
        pairs.push((key, value));
    }
    Ok(pairs)
}

fn parse_number(key: &str, value: &str) -> Result<u64, Rejection> {
    let canonical = !value.is_empty()
        && value.len() <= 20
        && value.bytes().all(|b| b.is_ascii_digit())
        && (value == "0" || !value.starts_with('0'));
    canonical
        .then(|| value.parse().ok())
        .flatten()
        .ok_or_else(|| Rejection::bad_request(format!("{key} must be a decimal number")))
}

async fn handle_read_frames(
    state: &NodeState,
    id: ShardId,
    first: u64,
    count: u64,
) -> Result<Response<ChunksBody>, Rejection> {
    if count > MAX_FRAMES_PER_READ {
        return Err(Rejection::bad_request(format!(
            "at most {MAX_FRAMES_PER_READ} frames per read"
        )));
    }
    let frames = state
        .store
        .read_frames(id, first, count)
        .await
        .map_err(|err| Rejection::from_store(state, err))?;
    ok(wire::encode_frames(&frames).map_err(|err| Rejection::from_store(state, err))?)
}

async fn handle_stat_shard(
    state: &NodeState,
    id: ShardId,
) -> Result<Response<ChunksBody>, Rejection> {
    let stat = state
        .store
        .stat(id)
        .await
        .map_err(|err| Rejection::from_store(state, err))?;
    ok(wire::encode_stat(&stat))
}

async fn handle_delete_shard(
    state: &NodeState,
    id: ShardId,
) -> Result<Response<ChunksBody>, Rejection> {
    state
        .store
        .delete(id)
        .await
        .map_err(|err| Rejection::from_store(state, err))?;
    tracing::debug!(shard = %id, "deleted shard");
    ok(ChunksBody::default())
}

async fn handle_list_shards(
    state: &NodeState,
    after: Option<ShardId>,
    limit: usize,
) -> Result<Response<ChunksBody>, Rejection> {
    let ids = state
        .store
        .list(after, limit)
        .await
        .map_err(|err| Rejection::from_store(state, err))?;
    ok(wire::encode_list(&ids))
}

async fn handle_health(state: &NodeState) -> Result<Response<ChunksBody>, Rejection> {
    let health = state
        .store
        .health()
        .await
        .map_err(|err| Rejection::from_store(state, err))?;
    ok(wire::encode_health(&health))
}

async fn handle_scrub_status(state: &NodeState) -> Result<Response<ChunksBody>, Rejection> {
    let status = state
        .store
        .scrub_status()
        .await
        .map_err(|err| Rejection::from_store(state, err))?;
    ok(wire::encode_scrub_status(&status).map_err(|err| Rejection::from_store(state, err))?)
}

async fn handle_ack_scrub_reports(
    state: &NodeState,
    up_to: u64,
) -> Result<Response<ChunksBody>, Rejection> {
    state
        .store
        .ack_scrub_reports(up_to)
        .await
        .map_err(|err| Rejection::from_store(state, err))?;
    tracing::debug!(up_to, "scrub reports acknowledged");
    ok(ChunksBody::default())
}

/// Receives a shard file (header, then frames) and commits it once all of it arrived intact.
async fn handle_put_shard(
    state: &NodeState,
    id: ShardId,
    parts: &Parts,
    body: Incoming,
) -> Result<Response<ChunksBody>, Rejection> {
    let declared_len = match parts.headers.get(http::header::CONTENT_LENGTH) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|text| text.parse::<u64>().ok())
                .ok_or_else(|| Rejection::bad_request("bad content-length"))?,
        ),
    };
    let mut body = BodyReader {
        body,
        buffer: BytesMut::new(),
        ended: false,
    };
    let (header, header_len) = body.read_header().await?;
    if header.shard_id() != id {
        return Err(Rejection::bad_request(format!(
            "body holds the header of shard {}, not {id}",
            header.shard_id()
        )));
    }
    let geometry = header
        .geometry()
        .map_err(|err| Rejection::bad_body(err.to_string()))?;
    let part_length = header.part_length;
    let expected_len = format::file_len(header_len as u64, &geometry, part_length);
    if declared_len.is_some_and(|declared| declared != expected_len) {
        return Err(Rejection::bad_request(format!(
            "content-length does not match the {expected_len} bytes the header describes"
        )));
    }
    body.buffer.advance(header_len);
    let mut writer = state
        .store
        .create(id, header)
        .await
        .map_err(|err| Rejection::from_store(state, err))?;
    let stripe_count = geometry.stripe_count(part_length);
    let received = receive_frames(
        state,
        &mut body,
        writer.as_mut(),
        |stripe| {
            usize::try_from(format::frame_len(&geometry, part_length, stripe)).unwrap_or(usize::MAX)
        },
        stripe_count,
    )
    .await;
    match received {
        Ok(()) => {
            writer
                .commit()
                .await
                .map_err(|err| Rejection::from_store(state, err))?;
            tracing::debug!(shard = %id, bytes = expected_len, "stored shard");
            ok(ChunksBody::default())
        }
        Err(rejection) => {
            writer.abort().await;
            Err(rejection)
        }
    }
}

/// Moves every frame from the body into the writer, verifying each checksum on arrival, then
/// checks the body ends exactly after the last frame.
async fn receive_frames(
    state: &NodeState,
    body: &mut BodyReader,
    writer: &mut dyn ShardWriter,
    frame_len: impl Fn(u64) -> usize,
    stripe_count: u64,
) -> Result<(), Rejection> {
    for stripe in 0..stripe_count {
        let len = frame_len(stripe);
        body.fill(len).await?;
        if body.buffer.len() < len {
            return Err(Rejection::bad_body(format!(
                "body ends inside frame {stripe}"
            )));
        }
        let frame = body.buffer.split_to(len).freeze();
        let Some(shard) = format::verify_frame(&frame) else {
            return Err(Rejection::bad_body(format!(
                "frame {stripe} failed its checksum"
            )));
        };
        let shard = frame.slice_ref(shard);
        writer
            .write_frame(shard)
            .await
            .map_err(|err| Rejection::from_store(state, err))?;
    }
    body.fill(1).await?;
    if !body.buffer.is_empty() {
        return Err(Rejection::bad_body("bytes after the last frame"));
    }
    Ok(())
}

/// Pulls a request body into a buffer on demand, with an idle timeout per chunk.
struct BodyReader {
    body: Incoming,
    buffer: BytesMut,
    ended: bool,
}

impl BodyReader {
    /// Reads until the buffer starts with a whole shard header, decoding as bytes arrive (the
    /// header's length is only known from inside it); gives up past `MAX_HEADER_LEN` bytes.
    async fn read_header(&mut self) -> Result<(ShardHeader, usize), Rejection> {
        // Each round reads at least one more byte or ends the body: bounded by MAX_HEADER_LEN.
        loop {
            let wanted = self.buffer.len().saturating_add(1).min(MAX_HEADER_LEN);
            self.fill(wanted).await?;
            match ShardHeader::decode(&self.buffer) {
                Ok(decoded) => return Ok(decoded),
                Err(err) if self.ended || self.buffer.len() >= MAX_HEADER_LEN => {
                    return Err(Rejection::bad_body(err.to_string()))
                }
                Err(_) => {}
            }
        }
    }

    /// Reads until the buffer holds `want` bytes or the body ended. Each chunk read consumes
    /// body bytes, so the loop is bounded by the body's length.
    async fn fill(&mut self, want: usize) -> Result<(), Rejection> {
        while self.buffer.len() < want && !self.ended {
            match tokio::time::timeout(BODY_IDLE_TIMEOUT, self.body.frame()).await {
                Err(_) => {
                    return Err(Rejection::plain(
                        StatusCode::REQUEST_TIMEOUT,
                        "request body stalled",
                    ))
                }
                Ok(None) => self.ended = true,
                Ok(Some(Err(err))) => {
                    return Err(Rejection::bad_body(format!("request body failed: {err}")))
                }
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffer.extend_from_slice(&data);
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef.4";

    fn parse(method: Method, path: &str, query: Option<&str>) -> Result<Endpoint, StatusCode> {
        parse_endpoint(&method, path, query).map_err(|rejection| rejection.status)
    }

    #[test]
    fn endpoints_parse_strictly() {
        let id = ShardId::parse_file_name(ID).unwrap();
        let shard = format!("/v1/shards/{ID}");
        assert_eq!(parse(Method::PUT, &shard, None), Ok(Endpoint::PutShard(id)));
        assert_eq!(
            parse(Method::GET, &shard, None),
            Ok(Endpoint::StatShard(id))
        );
        assert_eq!(
            parse(Method::DELETE, &shard, None),
            Ok(Endpoint::DeleteShard(id))
        );
        assert_eq!(
            parse(
                Method::GET,
                &format!("{shard}/frames"),
                Some("first=2&count=3")
            ),
            Ok(Endpoint::ReadFrames {
                id,
                first: 2,
                count: 3
            })
        );
        assert_eq!(
            parse(
                Method::GET,
                "/v1/shards",
                Some(&format!("after={ID}&limit=99999"))
            ),
            Ok(Endpoint::ListShards {
                after: Some(id),
                limit: wire::MAX_LIST_LIMIT
            })
        );
        assert_eq!(
            parse(Method::GET, "/v1/shards", None),
            Ok(Endpoint::ListShards {
                after: None,
                limit: wire::DEFAULT_LIST_LIMIT
            })
        );
        assert_eq!(parse(Method::GET, "/v1/health", None), Ok(Endpoint::Health));
        assert_eq!(
            parse(Method::GET, "/v1/scrub", None),
            Ok(Endpoint::ScrubStatus)
        );
        assert_eq!(
            parse(Method::DELETE, "/v1/scrub/reports", Some("upto=17")),
            Ok(Endpoint::AckScrubReports { up_to: 17 })
        );
    }

    #[test]
    fn scrub_endpoints_parse_strictly() {
        let bad_request = Err(StatusCode::BAD_REQUEST);
        for query in [
            None,
            Some("upto="),
            Some("upto=01"),
            Some("upto=-1"),
            Some("upto=1&upto=2"),
            Some("upto=1&x=1"),
            Some("upto=99999999999999999999999"),
            Some("upto=..%2f"),
        ] {
            assert_eq!(
                parse(Method::DELETE, "/v1/scrub/reports", query),
                bad_request,
                "{query:?}"
            );
        }
        assert_eq!(parse(Method::GET, "/v1/scrub", Some("x=1")), bad_request);
        assert_eq!(
            parse(Method::POST, "/v1/scrub", None),
            Err(StatusCode::METHOD_NOT_ALLOWED)
        );
        assert_eq!(
            parse(Method::GET, "/v1/scrub/reports", Some("upto=1")),
            Err(StatusCode::METHOD_NOT_ALLOWED)
        );
    }

    #[test]
    fn disk_full_and_read_only_name_the_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let state = NodeState {
            store: crate::local::LocalShardStore::open(dir.path().join("d"), "n".into(), false)
                .unwrap(),
            data: dir.path().join("d"),
            secret: b"s".to_vec(),
            max_skew: Duration::from_secs(1),
        };
        let full = Rejection::from_store(&state, StorageError::DiskFull);
        assert_eq!(full.status, StatusCode::INSUFFICIENT_STORAGE);
        assert_eq!(full.kind, "disk-full");
        assert!(full.message.contains("no space left") && full.message.contains("/d"));
        let read_only = Rejection::from_store(&state, StorageError::ReadOnly);
        assert_eq!(read_only.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(read_only.kind, "read-only");
        assert!(read_only.message.contains("is read-only"));
        let response = read_only.into_response();
        assert_eq!(response.headers()[wire::ERROR_KIND_HEADER], "read-only");
    }

    #[test]
    fn bad_paths_and_queries_are_refused() {
        let bad_request = Err(StatusCode::BAD_REQUEST);
        for path in [
            "/v1/shards/..",
            "/v1/shards/../../etc/passwd",
            "/v1/shards/%2e%2e",
            "/v1/shards/0123456789ABCDEF0123456789abcdef.4",
            "/v1/shards/0123456789abcdef0123456789abcdef.04",
            "/v1/shards/0123456789abcdef.4",
            "/v1/shards/",
            &format!("/v1/shards/{ID}/frames/x"),
            &format!("/v1/shards/{ID}/other"),
        ] {
            assert_eq!(parse(Method::GET, path, None), bad_request, "{path}");
        }
        let frames = format!("/v1/shards/{ID}/frames");
        for query in [
            "first=1",
            "first=1&count=01",
            "first=1&count=1&count=1",
            "first=-1&count=1",
            "first=1&count=1&x=1",
            "first",
        ] {
            assert_eq!(
                parse(Method::GET, &frames, Some(query)),
                bad_request,
                "{query}"
            );
        }
        assert_eq!(
            parse(Method::GET, "/v1/shards", Some("after=..")),
            bad_request
        );
        assert_eq!(
            parse(Method::GET, &format!("/v1/shards/{ID}"), Some("x=1")),
            bad_request
        );
        assert_eq!(
            parse(Method::GET, "/etc/passwd", None),
            Err(StatusCode::NOT_FOUND)
        );
        assert_eq!(
            parse(Method::POST, &format!("/v1/shards/{ID}"), None),
            Err(StatusCode::METHOD_NOT_ALLOWED)
        );
        assert_eq!(
            parse(Method::PUT, "/v1/health", None),
            Err(StatusCode::METHOD_NOT_ALLOWED)
        );
    }
}
