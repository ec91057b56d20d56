//! `HttpShardStore`: the `ShardStore` of one storage node, spoken to over HTTP/1.1 (protocol in
//! `crate::node`).
//!
//! Invariants: every call is signed with the cluster secret (wire protocol 2: a fresh nonce per
//! request, bodies both ways as signed chunk chains, `crate::signed_body`) and bounded in time — connecting by
//! `connect_timeout`, the first response byte by `request_timeout` (which also bounds the whole
//! of the small calls: stat, delete, list, health), and each body chunk, sent or received, by
//! `idle_timeout`; at most `max_concurrency` calls (an open writer counts as one) run against
//! the node at once, and waiting for a slot counts against the call's timeout. Connections are
//! pooled and kept alive. A shard upload is streamed: the writer checks each frame's length
//! locally, seals it as the next chunk of the request's chain and sends it through a bounded
//! channel; the body has a fixed `content-length`, and only `commit` sends the final chunk, so a
//! writer aborted or dropped — even after its last frame — leaves the body short and unclosed,
//! the request fails and the node discards its temporary file. No byte of an answer is used
//! before its chunk verified against the chain seeded by this request's MAC, status and error
//! kind: an answer that fails (forged, cut, replayed from another request, or from a node that
//! does not speak wire protocol 2) is `Unavailable` — for a frame read, a failed shard that
//! the engine reconstructs around, never bytes and never proof of a bad shard on disk. Frames
//! read back are also re-verified against their checksums; a bad one is `None`.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderValue, Method, Request};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::cluster_auth::{self, RequestTarget};
use crate::codec::Geometry;
use crate::error::StorageError;
use crate::format::{self, ShardHeader};
use crate::id::ShardId;
use crate::node::signed_http::{ChannelBody, VerifiedBody, VerifiedBodyError};
use crate::node::wire;
use crate::node_tls::NodeTlsClient;
use crate::scrub::ScrubStatus;
use crate::signed_body::{self, ChunkDecoder, ChunkSigner, Tag};
use crate::store::{ShardStat, ShardStore, ShardWriter, StoreHealth};

/// Largest error message read from a node.
const MAX_ERROR_BODY: usize = 4096;
/// Largest answer of a small call (a listing page of 10 000 ids is ~350 KiB).
const MAX_SMALL_BODY: usize = 4 << 20;
/// Largest `read_frames` answer accepted.
const MAX_FRAMES_BODY: u64 = 4 << 30;
/// Upload chunks buffered between the writer and the connection.
const UPLOAD_CHANNEL_DEPTH: usize = 4;

type RequestBody = BoxBody<Bytes, io::Error>;

/// Timeouts and limits of an `HttpShardStore`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpStoreConfig {
    /// Establishing a TCP connection.
    pub connect_timeout: Duration,
    /// From sending a request to the first byte of the answer; the whole of a small call.
    pub request_timeout: Duration,
    /// A body chunk (sent or received) may take this long; also how long a pooled connection
    /// may stay unused (capped below the node's own idle limit, so the node never closes a
    /// connection the client is about to reuse).
    pub idle_timeout: Duration,
    /// Calls in flight against this node at once (an open writer holds one).
    pub max_concurrency: usize,
}

impl Default for HttpStoreConfig {
    fn default() -> Self {
        HttpStoreConfig {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_concurrency: 64,
        }
    }
}

/// Client of one storage node.
pub struct HttpShardStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for HttpShardStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpShardStore")
            .field("name", &self.inner.name)
            .field("base_url", &self.inner.base_url)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

struct Inner {
    name: String,
    base_url: String,
    secret: Vec<u8>,
    config: HttpStoreConfig,
    client: Client<HttpsConnector<HttpConnector>, RequestBody>,
    slots: Arc<Semaphore>,
}

impl HttpShardStore {
    /// A client of the node at `base_url` (`http://host:port`, no path). Connects lazily.
    pub fn new(
        name: String,
        base_url: String,
        secret: Vec<u8>,
        cfg: HttpStoreConfig,
    ) -> Result<Self, StorageError> {
        Self::with_tls(name, base_url, secret, cfg, None)
    }

    /// A client of the node at `base_url`: `http://host:port`, or `https://host:port` when
    /// `tls` says which CA to trust (without it an `https://` address is refused). Connects
    /// lazily.
    pub fn with_tls(
        name: String,
        base_url: String,
        secret: Vec<u8>,
        cfg: HttpStoreConfig,
        tls: Option<NodeTlsClient>,
    ) -> Result<Self, StorageError> {
        if secret.is_empty() {
            return Err(StorageError::InvalidArgument(
                "the cluster secret is empty".into(),
            ));
        }
        if cfg.max_concurrency == 0 {
            return Err(StorageError::InvalidArgument(
                "max_concurrency must be at least 1".into(),
            ));
        }
        let base_url = base_url.trim_end_matches('/').to_string();
        let uri: http::Uri = base_url.parse().map_err(|err| {
            StorageError::InvalidArgument(format!("node url {base_url:?}: {err}"))
        })?;
        let scheme_ok = match uri.scheme_str() {
            Some("http") => true,
            Some("https") if tls.is_some() => true,
            Some("https") => {
                return Err(StorageError::InvalidArgument(format!(
                    "node url {base_url:?} is https but no CA to trust was configured \
                     (node_tls_ca)"
                )))
            }
            _ => false,
        };
        let well_formed = scheme_ok
            && uri.authority().is_some()
            && matches!(uri.path(), "" | "/")
            && uri.query().is_none();
        if !well_formed {
            return Err(StorageError::InvalidArgument(format!(
                "node url must look like http://host:port or https://host:port, got {base_url:?}"
            )));
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(cfg.connect_timeout));
        connector.set_nodelay(true);
        // The TLS layer below handles https URLs; plain ones pass through it.
        connector.enforce_http(false);
        let (tls_config, server_name) = match tls {
            Some(tls) => ((*tls.config).clone(), tls.server_name),
            // Never used: an https URL without a CA was refused above.
            None => (
                rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .map_err(|err| StorageError::InvalidArgument(err.to_string()))?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
                None,
            ),
        };
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config)
            .https_or_http();
        let builder = match server_name {
            Some(name) => {
                let name = rustls::pki_types::ServerName::try_from(name).map_err(|err| {
                    StorageError::InvalidArgument(format!("node TLS server name: {err}"))
                })?;
                builder.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name))
            }
            None => builder,
        };
        let connector = builder.enable_http1().wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(cfg.idle_timeout.min(wire::NODE_HEADER_READ_TIMEOUT / 2))
            .pool_max_idle_per_host(cfg.max_concurrency)
            .build(connector);
        Ok(HttpShardStore {
            inner: Arc::new(Inner {
                name,
                base_url,
                secret,
                config: cfg,
                client,
                slots: Arc::new(Semaphore::new(cfg.max_concurrency)),
            }),
        })
    }

    /// Free/total space of the node's disk and the round-trip time of asking.
    pub async fn ping(&self) -> Result<(StoreHealth, Duration), StorageError> {
        let started = Instant::now();
        let health = self.health().await?;
        Ok((health, started.elapsed()))
    }
}

impl Inner {
    /// Waits for a concurrency slot, at most `wait`.
    async fn slot(&self, wait: Duration) -> Result<OwnedSemaphorePermit, StorageError> {
        match tokio::time::timeout(wait, Arc::clone(&self.slots).acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(StorageError::Unavailable(format!(
                "{}: client closed",
                self.name
            ))),
            Err(_) => Err(StorageError::Timeout),
        }
    }

    /// A signed request with `body`, and its MAC (the seed of the body chains both ways).
    fn request(
        &self,
        method: Method,
        path: &str,
        query: &str,
        body: RequestBody,
    ) -> Result<(Request<RequestBody>, Tag), StorageError> {
        let target = RequestTarget {
            method: method.as_str(),
            path,
            query,
        };
        let signed = cluster_auth::sign(&self.secret, &target, SystemTime::now())
            .map_err(|err| StorageError::InvalidArgument(err.to_string()))?;
        let uri = if query.is_empty() {
            format!("{}{path}", self.base_url)
        } else {
            format!("{}{path}?{query}", self.base_url)
        };
        let header = |value: String| {
            HeaderValue::try_from(value)
                .map_err(|err| StorageError::InvalidArgument(format!("header value: {err}")))
        };
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header(cluster_auth::DATE_HEADER, header(signed.date)?)
            .header(cluster_auth::NONCE_HEADER, header(signed.nonce)?)
            .header(http::header::AUTHORIZATION, header(signed.authorization)?)
            .body(body)
            .map_err(|err| StorageError::InvalidArgument(format!("request: {err}")))?;
        Ok((request, signed.mac))
    }

    /// Sends a request and waits for the answer's head (at most `request_timeout`).
    async fn send(
        &self,
        request: Request<RequestBody>,
    ) -> Result<http::Response<Incoming>, StorageError> {
        match tokio::time::timeout(self.config.request_timeout, self.client.request(request)).await
        {
            Err(_) => Err(StorageError::Timeout),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(err)) => Err(self.transport_error(&err)),
        }
    }

    fn transport_error(&self, err: &hyper_util::client::legacy::Error) -> StorageError {
        let detail = std::error::Error::source(err)
            .map(|source| source.to_string())
            .unwrap_or_default();
        if err.is_connect() {
            StorageError::Unavailable(format!("{}: cannot connect: {err} {detail}", self.name))
        } else {
            StorageError::Unavailable(format!("{}: request failed: {err} {detail}", self.name))
        }
    }

    /// Reads a plain (unsigned) answer body: only 401s and answers of nodes that do not speak
    /// wire protocol 2 are plain, and only their text is used, for the error message.
    async fn read_plain_text(&self, response: http::Response<Incoming>) -> String {
        let mut body = response.into_body();
        let mut text = Vec::new();
        // Each round reads a body frame or ends; stops at MAX_ERROR_BODY bytes.
        while text.len() < MAX_ERROR_BODY {
            match tokio::time::timeout(self.config.idle_timeout, body.frame()).await {
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        text.extend_from_slice(&data);
                    }
                }
                _ => break,
            }
        }
        text.truncate(MAX_ERROR_BODY);
        String::from_utf8_lossy(&text).trim().to_string()
    }

    /// Reads and verifies a whole answer to the request whose MAC is `request_mac`: each chunk
    /// within `idle_timeout`, at most `limit` payload bytes. Success answers give their payload,
    /// error answers the error they carry. The buffer is sized from the answer's
    /// `Content-Length` (within `limit`) up front: growing it by doubling would copy a large
    /// frame batch several times and fault in fresh pages at each step.
    async fn read_answer(
        &self,
        response: http::Response<Incoming>,
        request_mac: &Tag,
        limit: u64,
    ) -> Result<Bytes, StorageError> {
        let status = response.status();
        let headers = response.headers();
        let speaks_v2 = headers
            .get(cluster_auth::WIRE_VERSION_HEADER)
            .is_some_and(|value| value.as_bytes() == cluster_auth::WIRE_VERSION.as_bytes());
        let kind = headers
            .get(wire::ERROR_KIND_HEADER)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let expected = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok())
            .unwrap_or(0);
        if !speaks_v2 {
            let message = self.read_plain_text(response).await;
            return Err(StorageError::Unavailable(format!(
                "{} does not speak storage wire protocol {} (an older strata storage-node? \
                 upgrade nodes and gateways together); it answered {status}: {message}",
                self.name,
                cluster_auth::WIRE_VERSION
            )));
        }
        if status == http::StatusCode::UNAUTHORIZED {
            let message = self.read_plain_text(response).await;
            return Err(wire::error_from_wire(
                &self.name,
                status,
                kind.as_deref(),
                message,
            ));
        }
        let refused = |reason: String| {
            StorageError::Unavailable(format!(
                "{}: answer failed authentication: {reason}",
                self.name
            ))
        };
        let seed = cluster_auth::answer_seed(
            &self.secret,
            request_mac,
            status.as_u16(),
            kind.as_deref().unwrap_or(""),
        )
        .map_err(|err| refused(err.to_string()))?;
        let decoder =
            ChunkDecoder::new(&self.secret, seed).map_err(|err| refused(err.to_string()))?;
        let mut body = VerifiedBody::new(response.into_body(), decoder, self.config.idle_timeout);
        let payload = match body.read_all(limit, expected).await {
            Ok(payload) => payload,
            Err(None) => {
                return Err(StorageError::Corrupt(format!(
                    "{}: answer larger than {limit} bytes",
                    self.name
                )))
            }
            Err(Some(VerifiedBodyError::Stalled)) => return Err(StorageError::Timeout),
            Err(Some(err @ VerifiedBodyError::Auth(_))) => {
                tracing::warn!(node = %self.name, %status, reason = %err, "refused an answer that failed authentication");
                return Err(refused(err.to_string()));
            }
            Err(Some(VerifiedBodyError::Transport(err))) => {
                return Err(StorageError::Unavailable(format!(
                    "{}: answer body failed: {err}",
                    self.name
                )))
            }
        };
        if status.is_success() {
            return Ok(payload);
        }
        let end = payload.len().min(MAX_ERROR_BODY);
        let message = String::from_utf8_lossy(payload.get(..end).unwrap_or_default())
            .trim()
            .to_string();
        Err(wire::error_from_wire(
            &self.name,
            status,
            kind.as_deref(),
            message,
        ))
    }

    /// A bodiless call whose whole answer must arrive within `request_timeout`.
    async fn small_call(
        &self,
        method: Method,
        path: &str,
        query: &str,
    ) -> Result<Bytes, StorageError> {
        let deadline = self.config.request_timeout;
        let call = async {
            let _slot = self.slot(deadline).await?;
            let (request, mac) = self.request(method, path, query, empty_body())?;
            let response = self.send(request).await?;
            self.read_answer(response, &mac, MAX_SMALL_BODY as u64)
                .await
        };
        tokio::time::timeout(deadline, call)
            .await
            .map_err(|_| StorageError::Timeout)?
    }
}

fn empty_body() -> RequestBody {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}

#[async_trait]
impl ShardStore for HttpShardStore {
    fn name(&self) -> &str {
        &self.inner.name
    }

    async fn create(
        &self,
        id: ShardId,
        header: ShardHeader,
    ) -> Result<Box<dyn ShardWriter>, StorageError> {
        let geometry = header.check_for(id)?;
        let encoded = Bytes::from(header.encode());
        let part_length = header.part_length;
        let stripe_count = geometry.stripe_count(part_length);
        // The sealed body: the header, then each frame (checksum and shard bytes), each cut
        // into chunks exactly as `HttpShardWriter` seals them, then the final chunk.
        let wire_len = signed_body::sealed_len(std::iter::once(encoded.len() as u64).chain(
            (0..stripe_count).map(|stripe| format::frame_len(&geometry, part_length, stripe)),
        ));
        let inner = &self.inner;
        let slot = inner.slot(inner.config.request_timeout).await?;
        let (sender, receiver) = mpsc::channel(UPLOAD_CHANNEL_DEPTH);
        let body = ChannelBody::new(receiver, wire_len);
        let (mut request, mac) =
            inner.request(Method::PUT, &wire::shard_path(id), "", body.boxed())?;
        request
            .headers_mut()
            .insert(http::header::CONTENT_LENGTH, HeaderValue::from(wire_len));
        let signer = ChunkSigner::new(&inner.secret, mac)
            .map_err(|err| StorageError::InvalidArgument(err.to_string()))?;
        let span = tracing::debug_span!("shard_put", node = %inner.name, shard = %id);
        let task_inner = Arc::clone(inner);
        let response = tokio::spawn(
            async move {
                let response = match task_inner.client.request(request).await {
                    Ok(response) => response,
                    Err(err) => return Err(task_inner.transport_error(&err)),
                };
                task_inner
                    .read_answer(response, &mac, MAX_ERROR_BODY as u64)
                    .await
                    .map(drop)
            }
            .instrument(span),
        );
        let mut writer = HttpShardWriter {
            inner: Arc::clone(inner),
            id,
            geometry,
            part_length,
            stripe_count,
            next_stripe: 0,
            signer: Some(signer),
            sender: Some(sender),
            response: Some(response),
            _slot: slot,
        };
        let sealed = writer.seal_with(|signer| signer.seal_piece(&encoded))?;
        writer.send(sealed).await?;
        Ok(Box::new(writer))
    }

    async fn read_frames(
        &self,
        id: ShardId,
        first_stripe: u64,
        count: u64,
    ) -> Result<Vec<Option<Bytes>>, StorageError> {
        let inner = &self.inner;
        let span = tracing::debug_span!("shard_read", node = %inner.name, shard = %id, first_stripe, count);
        async {
            let slot_and_head = async {
                let slot = inner.slot(inner.config.request_timeout).await?;
                let query = format!("first={first_stripe}&count={count}");
                let (request, mac) =
                    inner.request(Method::GET, &wire::frames_path(id), &query, empty_body())?;
                Ok::<_, StorageError>((slot, mac, inner.send(request).await?))
            };
            let (_slot, mac, response) =
                tokio::time::timeout(inner.config.request_timeout, slot_and_head)
                    .await
                    .map_err(|_| StorageError::Timeout)??;
            let body = inner.read_answer(response, &mac, MAX_FRAMES_BODY).await?;
            let frames = wire::decode_frames(body, count)?;
            let bad = frames.iter().filter(|frame| frame.is_none()).count();
            if bad > 0 {
                tracing::warn!(bad, "frames came back as erasures");
            }
            Ok(frames)
        }
        .instrument(span)
        .await
    }

    async fn stat(&self, id: ShardId) -> Result<ShardStat, StorageError> {
        let body = self
            .inner
            .small_call(Method::GET, &wire::shard_path(id), "")
            .await?;
        wire::decode_stat(&body, id)
    }

    async fn delete(&self, id: ShardId) -> Result<(), StorageError> {
        self.inner
            .small_call(Method::DELETE, &wire::shard_path(id), "")
            .await
            .map(drop)
    }

    async fn list(
        &self,
        after: Option<ShardId>,
        limit: usize,
    ) -> Result<Vec<ShardId>, StorageError> {
        let mut found = Vec::new();
        let mut cursor = after;
        // Each round asks for at most one node page; ceil(limit / page) rounds at most.
        let rounds = limit.div_ceil(wire::MAX_LIST_LIMIT);
        for _ in 0..rounds {
            let want = (limit - found.len()).min(wire::MAX_LIST_LIMIT);
            let query = match cursor {
                Some(id) => format!("after={}&limit={want}", id.file_name()),
                None => format!("limit={want}"),
            };
            let body = self
                .inner
                .small_call(Method::GET, wire::SHARDS_PATH, &query)
                .await?;
            let page = wire::decode_list(&body)?;
            let ordered = page.windows(2).all(|pair| pair.first() < pair.get(1))
                && page
                    .first()
                    .is_none_or(|first| cursor.is_none_or(|c| *first > c));
            if !ordered || page.len() > want {
                return Err(StorageError::Corrupt(format!(
                    "{}: listing is out of order or too long",
                    self.inner.name
                )));
            }
            let short = page.len() < want;
            cursor = page.last().copied().or(cursor);
            found.extend(page);
            if short || found.len() >= limit {
                break;
            }
        }
        Ok(found)
    }

    async fn health(&self) -> Result<StoreHealth, StorageError> {
        let body = self
            .inner
            .small_call(Method::GET, wire::HEALTH_PATH, "")
            .await?;
        wire::decode_health(&body)
    }

    async fn scrub_status(&self) -> Result<ScrubStatus, StorageError> {
        let body = self
            .inner
            .small_call(Method::GET, wire::SCRUB_PATH, "")
            .await?;
        wire::decode_scrub_status(&body)
    }

    async fn ack_scrub_reports(&self, up_to: u64) -> Result<(), StorageError> {
        self.inner
            .small_call(
                Method::DELETE,
                wire::SCRUB_REPORTS_PATH,
                &format!("upto={up_to}"),
            )
            .await
            .map(drop)
    }
}

/// Streams one shard to the node: the PUT request runs in its own task while frames are fed
/// through `sender`.
struct HttpShardWriter {
    inner: Arc<Inner>,
    id: ShardId,
    geometry: Geometry,
    part_length: u64,
    stripe_count: u64,
    next_stripe: u64,
    /// Seals the body's chunks; taken by `commit` to write the final chunk, which alone lets
    /// the node commit the shard.
    signer: Option<ChunkSigner>,
    /// `None` after commit/abort or once sending failed.
    sender: Option<mpsc::Sender<Vec<Bytes>>>,
    /// The request task; `None` once its outcome was collected.
    response: Option<JoinHandle<Result<(), StorageError>>>,
    _slot: OwnedSemaphorePermit,
}

impl HttpShardWriter {
    /// Seals the next body pieces with the chain's signer.
    fn seal_with(
        &mut self,
        seal: impl FnOnce(&mut ChunkSigner) -> Vec<Bytes>,
    ) -> Result<Vec<Bytes>, StorageError> {
        match self.signer.as_mut() {
            Some(signer) => Ok(seal(signer)),
            None => Err(StorageError::Io(format!(
                "writer of shard {} is already closed",
                self.id
            ))),
        }
    }

    /// Sends sealed body pieces within `idle_timeout`; if the request already ended (the node
    /// answered early or the connection failed), returns why.
    async fn send(&mut self, chunk: Vec<Bytes>) -> Result<(), StorageError> {
        let (Some(sender), Some(task)) = (self.sender.as_ref(), self.response.as_mut()) else {
            return Err(StorageError::Io(format!(
                "writer of shard {} is unusable after an earlier failure",
                self.id
            )));
        };
        let idle_timeout = self.inner.config.idle_timeout;
        let early_outcome = tokio::select! {
            sent = tokio::time::timeout(idle_timeout, sender.send(chunk)) => match sent {
                Ok(Ok(())) => return Ok(()),
                // The body was dropped: the request failed; its task says why.
                Ok(Err(_closed)) => None,
                Err(_) => {
                    self.fail();
                    return Err(StorageError::Timeout);
                }
            },
            finished = task => Some(finished),
        };
        let outcome = match early_outcome {
            Some(finished) => {
                self.response = None;
                finished
                    .map_err(StorageError::from)
                    .and_then(|outcome| outcome)
            }
            None => self.outcome(self.inner.config.request_timeout).await,
        };
        self.fail();
        Err(outcome.err().unwrap_or_else(|| {
            StorageError::Unavailable(format!(
                "{}: node answered before the upload was complete",
                self.inner.name
            ))
        }))
    }

    /// Waits at most `wait` for the request task's outcome.
    async fn outcome(&mut self, wait: Duration) -> Result<(), StorageError> {
        let Some(mut task) = self.response.take() else {
            return Err(StorageError::Io("upload outcome already collected".into()));
        };
        match tokio::time::timeout(wait, &mut task).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(join_error)) => Err(StorageError::from(join_error)),
            Err(_) => {
                task.abort();
                Err(StorageError::Timeout)
            }
        }
    }

    /// Abandons the upload: the body ends short of its length and without its final chunk, so
    /// the request fails and the node discards the temporary file.
    fn fail(&mut self) {
        self.signer = None;
        self.sender = None;
        if let Some(task) = self.response.take() {
            task.abort();
        }
    }
}

#[async_trait]
impl ShardWriter for HttpShardWriter {
    async fn write_frame(&mut self, shard_bytes: Bytes) -> Result<(), StorageError> {
        format::check_next_frame(
            self.id,
            &self.geometry,
            self.part_length,
            self.next_stripe,
            shard_bytes.len(),
        )?;
        let checksum = Bytes::copy_from_slice(&format::frame_checksum(&shard_bytes).to_be_bytes());
        let sealed = self.seal_with(|signer| signer.seal_prefixed(&checksum, &shard_bytes))?;
        self.send(sealed).await?;
        self.next_stripe += 1;
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<(), StorageError> {
        if self.next_stripe != self.stripe_count {
            self.fail();
            return Err(StorageError::InvalidArgument(format!(
                "shard {} has {} of its {} frames",
                self.id, self.next_stripe, self.stripe_count
            )));
        }
        // The final chunk completes the body (it ends by its length); the node answers once
        // the shard is durable.
        let Some(signer) = self.signer.take() else {
            return Err(StorageError::Io(format!(
                "writer of shard {} is already closed",
                self.id
            )));
        };
        self.send(vec![Bytes::copy_from_slice(&signer.finish())])
            .await?;
        self.sender = None;
        let wait = self.inner.config.request_timeout;
        self.outcome(wait).await
    }

    async fn abort(mut self: Box<Self>) {
        self.fail();
    }
}

impl Drop for HttpShardWriter {
    fn drop(&mut self) {
        // Commit took the task; anything still here is an abandoned upload.
        self.fail();
    }
}
