//! Request routing and handlers of the storage node: one `Endpoint` parsed strictly from
//! (method, path, query), one `handle_<operation>` per endpoint, all backed by the node's
//! `LocalShardStore`.
//!
//! Invariants: a request is authenticated before anything else; a shard id comes only from
//! `ShardId::parse_file_name` (so `..`, `/`, `%2e` or uppercase hex never reach the disk); a
//! shard PUT body is read as a signed chunk chain (`crate::signed_body`) seeded by the request
//! MAC, and a byte reaches the `ShardWriter` only after its chunk's tag verified; the shard is
//! committed only after the final chunk verified and the body matched the header's length and
//! every frame's checksum — any other outcome aborts the writer, which removes its temporary
//! file; the body is buffered at most one frame (plus one chunk) at a time. Every answer but a
//! 401 is sent as a signed chunk chain seeded by `cluster_auth::answer_seed` (request MAC,
//! status, error kind); a 401 cannot be bound to an unauthenticated request and is sent plain.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderValue, Method, Response, StatusCode};
use http_body_util::Either;
use hyper::body::Incoming;
use tracing::Instrument;

use super::auth::authenticate;
use super::signed_http::{SealedBody, VerifiedBody, VerifiedBodyError};
use super::wire::{self, ChunksBody};
use super::NodeState;
use crate::cluster_auth::{self, answer_seed};
use crate::error::StorageError;
use crate::format::{self, ShardHeader, MAX_HEADER_LEN};
use crate::id::ShardId;
use crate::local::MAX_FRAMES_PER_READ;
use crate::signed_body::{ChunkDecoder, ChunkSigner, Tag};
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

/// An answer of the node: signed (everything but a 401) or plain.
pub(super) type NodeBody = Either<SealedBody, ChunksBody>;

/// Serves one request: authenticate, route, handle, sign the answer. Never fails: errors
/// become responses.
pub(super) async fn handle_request(
    state: Arc<NodeState>,
    request: http::Request<Incoming>,
) -> Response<NodeBody> {
    let (parts, body) = request.into_parts();
    let request_mac = match authenticate(&parts, &state.secret, state.max_skew) {
        Ok(mac) => mac,
        Err(err) => {
            tracing::warn!(method = %parts.method, path = parts.uri.path(), reason = %err, "refused unauthenticated request");
            let mut response = Rejection {
                status: StatusCode::UNAUTHORIZED,
                kind: wire::UNAUTHORIZED_KIND,
                message: err.to_string(),
            }
            .into_response();
            mark_wire_version(&mut response);
            return response.map(Either::Right);
        }
    };
    let response = route(&state, request_mac, parts, body).await;
    seal_answer(&state.secret, &request_mac, response)
}

/// Adds the `x-strata-wire` header.
fn mark_wire_version<B>(response: &mut Response<B>) {
    response.headers_mut().insert(
        cluster_auth::WIRE_VERSION_HEADER,
        HeaderValue::from_static(cluster_auth::WIRE_VERSION),
    );
}

/// Sends `response`'s body as a chunk chain bound to the request, its status and error kind.
fn seal_answer(
    secret: &[u8],
    request_mac: &Tag,
    response: Response<ChunksBody>,
) -> Response<NodeBody> {
    let (mut parts, body) = response.into_parts();
    let kind = parts
        .headers
        .get(wire::ERROR_KIND_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let signer = answer_seed(secret, request_mac, parts.status.as_u16(), kind)
        .map_err(|err| err.to_string())
        .and_then(|seed| ChunkSigner::new(secret, seed).map_err(|err| err.to_string()));
    match signer {
        Ok(signer) => {
            parts.headers.remove(http::header::CONTENT_LENGTH);
            let mut response = Response::from_parts(
                parts,
                Either::Left(SealedBody::new(signer, body.into_chunks())),
            );
            mark_wire_version(&mut response);
            response
        }
        Err(reason) => {
            // Cannot happen with a non-empty secret and a known kind word; the client refuses
            // the unsigned answer.
            tracing::error!(%reason, "cannot sign an answer");
            let mut response =
                Rejection::plain(StatusCode::INTERNAL_SERVER_ERROR, reason).into_response();
            mark_wire_version(&mut response);
            response.map(Either::Right)
        }
    }
}

/// Routes an authenticated request to its handler.
async fn route(
    state: &Arc<NodeState>,
    request_mac: Tag,
    parts: http::request::Parts,
    body: Incoming,
) -> Response<ChunksBody> {
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
            let upload_state = Arc::clone(state);
            let upload =
                async move { handle_put_shard(&upload_state, id, request_mac, body).await };
            match tokio::spawn(upload.in_current_span()).await {
                Ok(outcome) => outcome,
                Err(join_error) => Err(Rejection::from_store(state, join_error.into())),
            }
        }
        Endpoint::ReadFrames { id, first, count } => {
            handle_read_frames(state, id, first, count).await
        }
        Endpoint::StatShard(id) => handle_stat_shard(state, id).await,
        Endpoint::DeleteShard(id) => handle_delete_shard(state, id).await,
        Endpoint::ListShards { after, limit } => handle_list_shards(state, after, limit).await,
        Endpoint::Health => handle_health(state).await,
        Endpoint::ScrubStatus => handle_scrub_status(state).await,
        Endpoint::AckScrubReports { up_to } => handle_ack_scrub_reports(state, up_to).await,
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

/// Receives a shard file (header, then frames) and commits it once all of it arrived intact
/// and authenticated.
async fn handle_put_shard(
    state: &NodeState,
    id: ShardId,
    request_mac: Tag,
    body: Incoming,
) -> Result<Response<ChunksBody>, Rejection> {
    let decoder = ChunkDecoder::new(&state.secret, request_mac)
        .map_err(|err| Rejection::bad_request(err.to_string()))?;
    let mut body = BodyReader {
        body: VerifiedBody::new(body, decoder, BODY_IDLE_TIMEOUT),
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

/// Pulls a request body's verified payload into a buffer on demand, with an idle timeout per
/// read. `ended` is set only once the final chunk verified and the transport body ended.
struct BodyReader {
    body: VerifiedBody<Incoming>,
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

    /// Reads until the buffer holds `want` bytes or the body ended. Each verified chunk
    /// consumes body bytes, so the loop is bounded by the body's length.
    async fn fill(&mut self, want: usize) -> Result<(), Rejection> {
        while self.buffer.len() < want && !self.ended {
            match self.body.next_payload().await {
                Ok(Some(payload)) => self.buffer.extend_from_slice(&payload),
                Ok(None) => self.ended = true,
                Err(VerifiedBodyError::Stalled) => {
                    return Err(Rejection::plain(
                        StatusCode::REQUEST_TIMEOUT,
                        "request body stalled",
                    ))
                }
                Err(err @ VerifiedBodyError::Auth(_)) => {
                    tracing::warn!(reason = %err, "refused a request body that failed authentication");
                    return Err(Rejection::bad_body(format!("request body: {err}")));
                }
                Err(err) => return Err(Rejection::bad_body(format!("request body failed: {err}"))),
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
