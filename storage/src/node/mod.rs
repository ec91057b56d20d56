//! The storage node (`strata storage-node`): one disk's `LocalShardStore` served over HTTP/1.1
//! (hyper) to the gateway's `HttpShardStore`.
//!
//! # Wire protocol, version 2
//!
//! Every request carries `x-strata-date: <unix seconds>`, `x-strata-nonce: <32 hex>` and
//! `authorization: STRATA2-HMAC-SHA256 <hex>`, an HMAC-SHA256 under the cluster secret of
//! the method, path, query, date and nonce (see `crate::cluster_auth`); a date more than
//! `max_skew` away from the node's clock is refused. Every body, both ways, is a signed chunk
//! chain (`crate::signed_body`): the PUT body's chain is seeded by the request MAC, an
//! answer's by `cluster_auth::answer_seed` (request MAC, status, error kind), so an answer is
//! bound to the one request it answers. The bodies below are the chains' payloads. Only a 401
//! answer is plain (it cannot be bound to a request that failed authentication). Every answer
//! carries `x-strata-wire: 2`; a version-1 peer on either side is refused with a 401 that says
//! so. With `NodeConfig::tls` the node serves HTTPS (`crate::node_tls`; handshakes bounded by
//! `node_tls::HANDSHAKE_TIMEOUT`, each in its connection's own task); the protocol inside is
//! the same. `<id>` is a shard file name, `<group hex>.<index>`, parsed strictly by
//! `ShardId::parse_file_name`.
//!
//! | request | success answer |
//! |---|---|
//! | `PUT /v1/shards/<id>`, body = the shard file bytes: encoded header, then every frame `[checksum u64][shard bytes]` | `200`, empty, once the shard is durable (fsync + rename) |
//! | `GET /v1/shards/<id>/frames?first=N&count=M` | `200`, `"SNF1" count u32` then per frame `0` (erasure) or `1 len u32 checksum u64 bytes` |
//! | `GET /v1/shards/<id>` (stat) | `200`, `"SNS1" file-length u64` then the encoded header |
//! | `DELETE /v1/shards/<id>` (idempotent) | `200`, empty |
//! | `GET /v1/shards?after=<id>&limit=N` (limit ≤ 10000, default 1000) | `200`, one `<id>` per line, in `ShardId` order |
//! | `GET /v1/health` | `200`, `free_bytes=<n>\ntotal_bytes=<n>\n` |
//! | `GET /v1/scrub` | `200`, JSON `{"format":1,"status":{…}}`: scrub progress and unacknowledged reports (`crate::scrub::ScrubStatus`) |
//! | `DELETE /v1/scrub/reports?upto=N` (idempotent) | `200`, empty: reports with id ≤ N are forgotten |
//!
//! Errors have a plain-text body, a status and an `x-strata-error` kind naming the
//! `StorageError` variant (`node::wire::error_status`): 400 malformed request, bad shard id,
//! path traversal or a PUT body that is not a valid shard (kind `corrupt` for bad bytes);
//! 401 missing, malformed or wrong authentication or a stale date; 404 unknown shard;
//! 405 wrong method; 408 a body that stalled; 500 a damaged shard file; 503 read-only data
//! directory or I/O failure; 507 disk full.
//!
//! Invariants: the PUT body is streamed — the node verifies each chunk's tag as it arrives,
//! decodes the header (whose id must match the path), verifies each frame's checksum and hands
//! it to a `LocalShardWriter`; the shard is committed only if the final chunk verified and the
//! payload ended exactly after the last frame, otherwise (forged or reordered chunk, bad frame,
//! short or cut body, dropped connection) the writer is aborted and its temporary file removed. Unauthenticated or malformed requests are
//! answered before the disk is touched. The node runs the scrubber of its store
//! (`crate::scrub`) unless `scrub.enabled` is off. On shutdown the node stops accepting, lets in-flight
//! requests finish (up to `DRAIN_TIMEOUT`) and returns.

mod auth;
mod routes;
pub mod signed_http;
pub mod wire;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tracing::Instrument;

use crate::cluster_auth::DEFAULT_MAX_SKEW;
use crate::error::StorageError;
use crate::local::LocalShardStore;
use crate::scrub::{spawn_scrubber, ScrubConfig};

/// How long shutdown waits for in-flight requests before returning anyway.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How one storage node runs.
#[derive(Clone)]
pub struct NodeConfig {
    /// The address the node was asked to listen on (for logs; `serve_node` takes the bound
    /// listener).
    pub listen: SocketAddr,
    /// The disk's data directory (a `LocalShardStore` root).
    pub data: PathBuf,
    /// The cluster secret shared with the gateways. Must not be empty.
    pub secret: Vec<u8>,
    /// fsync shard files and directories before answering a PUT (on by default; off only for
    /// benchmarks).
    pub fsync: bool,
    /// Largest accepted difference between a request's date and the node's clock.
    pub max_skew: Duration,
    /// How the node's scrubber re-verifies its shards.
    pub scrub: ScrubConfig,
    /// Serve HTTPS with this configuration (`crate::node_tls::load_server_config`); `None`:
    /// plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl NodeConfig {
    /// A config with fsync on and the default clock skew (5 minutes).
    pub fn new(listen: SocketAddr, data: PathBuf, secret: Vec<u8>) -> Self {
        NodeConfig {
            listen,
            data,
            secret,
            fsync: true,
            max_skew: DEFAULT_MAX_SKEW,
            scrub: ScrubConfig::default(),
            tls: None,
        }
    }
}

impl std::fmt::Debug for NodeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeConfig")
            .field("listen", &self.listen)
            .field("data", &self.data)
            .field("secret", &"<redacted>")
            .field("fsync", &self.fsync)
            .field("max_skew", &self.max_skew)
            .field("scrub", &self.scrub)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// What every request handler shares.
struct NodeState {
    store: LocalShardStore,
    data: PathBuf,
    secret: Vec<u8>,
    max_skew: Duration,
}

/// Serves the node on `listener` until `shutdown` resolves, then drains in-flight requests and
/// returns. Fails at start if the secret is empty or the data directory cannot be opened.
/// Prints nothing; logs with `tracing`.
pub async fn serve_node(
    config: NodeConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StorageError> {
    if config.secret.is_empty() {
        return Err(StorageError::InvalidArgument(
            "the cluster secret is empty".into(),
        ));
    }
    let data = config.data.clone();
    let name = format!("node@{}", config.listen);
    let store =
        tokio::task::spawn_blocking(move || LocalShardStore::open(data, name, config.fsync))
            .await?
            .map_err(|err| match err {
                StorageError::ReadOnly => StorageError::Unavailable(format!(
                    "data directory {} is read-only or not accessible",
                    config.data.display()
                )),
                StorageError::DiskFull => StorageError::Unavailable(format!(
                    "no space left in data directory {}",
                    config.data.display()
                )),
                other => other,
            })?;
    if let Err(err) = probe_writable(&config.data).await {
        tracing::warn!(data = %config.data.display(), error = %err, "data directory refuses writes: the node will serve reads only");
    }
    let (scrub_stop, scrub_stopped) = tokio::sync::watch::channel(false);
    let scrubber = spawn_scrubber(store.clone(), config.scrub.clone(), scrub_stopped);
    let state = Arc::new(NodeState {
        store,
        data: config.data.clone(),
        secret: config.secret.clone(),
        max_skew: config.max_skew,
    });
    let local = listener.local_addr().ok();
    tracing::info!(listen = %config.listen, bound = ?local, data = %config.data.display(), fsync = config.fsync, tls = config.tls.is_some(), "storage node serving");

    let acceptor = config.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(wire::NODE_HEADER_READ_TIMEOUT)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(error = %err, "could not set TCP_NODELAY");
        }
        let connection_state = Arc::clone(&state);
        let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
            let state = Arc::clone(&connection_state);
            let span = tracing::info_span!("node_request", method = %request.method(), path = request.uri().path(), %peer);
            async move { Ok::<_, Infallible>(routes::handle_request(state, request).await) }
                .instrument(span)
        });
        let Some(acceptor) = acceptor.clone() else {
            let connection =
                graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
            tokio::spawn(async move {
                if let Err(err) = connection.await {
                    tracing::debug!(%peer, error = %err, "connection ended with an error");
                }
            });
            continue;
        };
        // The handshake runs in the connection's own task, bounded in time, so a client that
        // connects and stalls holds only its own socket.
        let watcher = graceful.watcher();
        let builder = builder.clone();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(
                crate::node_tls::HANDSHAKE_TIMEOUT,
                acceptor.accept(stream),
            )
            .await
            {
                Ok(Ok(stream)) => stream,
                Ok(Err(err)) => {
                    tracing::info!(%peer, error = %err, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::info!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let connection = watcher.watch(builder.serve_connection(TokioIo::new(stream), service));
            if let Err(err) = connection.await {
                tracing::debug!(%peer, error = %err, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = scrub_stop.send(true);
    tracing::info!(in_flight = graceful.count(), "storage node draining");
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("gave up waiting for in-flight requests");
    }
    // The scrubber stops between two steps of at most ~1 MiB of reading.
    if tokio::time::timeout(DRAIN_TIMEOUT, scrubber).await.is_err() {
        tracing::warn!("gave up waiting for the scrubber");
    }
    tracing::info!("storage node stopped");
    Ok(())
}

/// Creates and removes a file in the data directory, to report a read-only disk at start.
async fn probe_writable(data: &std::path::Path) -> Result<(), StorageError> {
    let probe = data
        .join("tmp")
        .join(format!(".probe.{}", uuid::Uuid::new_v4().simple()));
    tokio::task::spawn_blocking(move || {
        std::fs::write(&probe, b"")?;
        std::fs::remove_file(&probe)?;
        Ok(())
    })
    .await?
}
