//! The serving roles. `strata server`: the embedded single-process deployment — the S3 gateway
//! plus one local shard store per shard directory and the RocksDB catalog. `strata gateway`: the
//! same gateway over storage nodes reached by HTTP. `strata storage-node`: one disk served over
//! HTTP. All drain in-flight requests on SIGINT/SIGTERM. The S3 port is plain HTTP, or HTTPS
//! when a certificate is configured (optionally both, HTTPS on a second address: `tls.rs`).

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use http::StatusCode;
use storage::local::LocalShardStore;
use storage::scrub::spawn_scrubber;
use storage::store::ShardStore;
use tokio::sync::watch;
use tracing::info;

use crate::catalog_setup;
use crate::config::{CatalogConfig, ClientLimits, ServerConfig};
use crate::credentials::Credentials;
use crate::engine::cluster::{Cluster, NodeSpec};
use crate::engine::healing::backup::{BackupConfig, CatalogBackup};
use crate::engine::members::Membership;
use crate::engine::{Engine, EngineConfig, Healer};
use crate::identity::IdentityService;
use crate::metrics::Metrics;
use crate::s3::auth::AuthConfig;
use crate::s3::limits::RequestLimits;
use crate::s3::service::{handle_s3, S3Service};
use crate::tls::TlsListener;

/// Starts everything and serves until SIGINT/SIGTERM; in-flight requests finish first.
pub async fn run_server(mut config: ServerConfig) -> Result<(), String> {
    // A bad certificate setup fails before anything is created or opened.
    let tls_server = match &config.tls {
        Some(tls) => Some(crate::tls::load_server_config(tls).map_err(|e| e.to_string())?),
        None => None,
    };
    std::fs::create_dir_all(&config.data).map_err(|e| {
        format!(
            "cannot create data directory {}: {e}",
            config.data.display()
        )
    })?;
    // The catalog, and (shared catalog) the cluster's shape and keys every gateway agrees on.
    let ((catalog, rocks), credentials, config) = tokio::task::spawn_blocking(move || {
        let (catalog, rocks) = catalog_setup::open_catalog_and_store(&config)?;
        catalog_setup::agree_on_cluster(&catalog, &mut config)?;
        let credentials = catalog_setup::admin_credentials(&catalog, &config)?;
        config.sse.keys = catalog_setup::sse_keys(&catalog, &config)?;
        Ok::<_, String>(((catalog, rocks), credentials, config))
    })
    .await
    .map_err(|e| e.to_string())??;
    let members = match config.catalog {
        CatalogConfig::Rocks => Membership::exclusive(),
        CatalogConfig::Etcd(_) => {
            Membership::shared(config.listen.to_string(), config.leader_lease)
        }
    };
    // The liveness row exists before this gateway writes its first intent.
    {
        let (members, catalog) = (members.clone(), catalog.clone());
        tokio::task::spawn_blocking(move || members.tick(&catalog))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("cannot join the cluster's membership: {e}"))?;
    }
    let (nodes, local_stores) = build_nodes(&config)?;
    let cluster = Arc::new(Cluster::new(nodes).map_err(|e| e.to_string())?);
    let engine = Engine::with_members(
        catalog.clone(),
        cluster.clone(),
        engine_config(&config),
        members.clone(),
    )
    .map_err(|e| e.to_string())?;
    let healer = Healer::new(engine.clone());
    // Catalog backups onto the nodes are for a RocksDB catalog; etcd is backed up with etcdctl.
    let backup = rocks.map(|rocks| {
        CatalogBackup::new(
            engine.clone(),
            rocks,
            BackupConfig {
                interval: config.healing.catalog_backup_interval,
                keep: config.healing.catalog_backups_kept,
                scratch: config.data.join("backup-scratch"),
            },
        )
    });
    let identity = IdentityService::new(
        catalog.clone(),
        config.sse.keys.master.clone(),
        credentials.access_key.clone(),
        credentials.secret_key.clone(),
        matches!(config.catalog, CatalogConfig::Etcd(_)),
    )
    .await
    .map_err(|e| format!("cannot load users and keys: {e}"))?;
    let service = Arc::new(S3Service {
        engine: engine.clone(),
        healer: healer.clone(),
        identity,
        auth: AuthConfig {
            strict_region: config.strict_region.then(|| config.region.clone()),
            max_skew: config.max_clock_skew,
            max_presign_expiry: config.max_presign_expiry,
        },
        domains: config.domains.clone(),
        metrics: Metrics::new(config.metrics_access.clone()),
        limits: RequestLimits::new(
            config.limits.body_idle_timeout,
            config.limits.request_timeout,
            config.limits.max_inflight_bodies,
        ),
        sse_c_allow_http: config.sse.c_allow_http,
    });
    let listeners = bind_listeners(&config, tls_server).await?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let membership = engine.spawn_membership(shutdown_rx.clone());
    let gc = healer.spawn_gc(shutdown_rx.clone());
    // Embedded mode scrubs its own directories; storage nodes scrub theirs.
    let scrubbers: Vec<_> = local_stores
        .into_iter()
        .map(|store| spawn_scrubber(store, config.scrub.clone(), shutdown_rx.clone()))
        .collect();
    let scrub_poller = healer.spawn_scrub_poller(config.scrub_poll_interval, shutdown_rx.clone());
    let repair = healer.spawn_repair(shutdown_rx.clone());
    // Only the background leader makes scheduled backups.
    let backups = backup.as_ref().map(|backup| {
        let members = engine.members().clone();
        backup.spawn(move || members.is_leader(), shutdown_rx.clone())
    });
    let health = cluster.spawn_health_checker(
        config.health_interval,
        config
            .health_interval
            .max(std::time::Duration::from_secs(1)),
        shutdown_rx,
    );
    let app = router(engine, service, backup);
    print_banner(&config, &credentials, &listeners);
    serve(listeners, app, config.limits.clone()).await?;
    info!("draining done, stopping background work");
    let _ = shutdown_tx.send(true);
    let _ = gc.await;
    let _ = repair.await;
    if let Some(backups) = backups {
        let _ = backups.await;
    }
    let _ = health.await;
    let _ = scrub_poller.await;
    let _ = membership.await;
    for scrubber in scrubbers {
        let _ = scrubber.await;
    }
    Ok(())
}

/// The S3 port(s): plain HTTP on `listen`, or HTTPS there, or both (HTTPS on `tls_listen`).
struct Listeners {
    plain: Option<tokio::net::TcpListener>,
    tls: Option<TlsListener>,
}

async fn bind(address: std::net::SocketAddr) -> Result<tokio::net::TcpListener, String> {
    tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| format!("cannot listen on {address}: {e}"))
}

async fn bind_listeners(
    config: &ServerConfig,
    tls_server: Option<Arc<rustls::ServerConfig>>,
) -> Result<Listeners, String> {
    let (Some(tls), Some(tls_server)) = (&config.tls, tls_server) else {
        return Ok(Listeners {
            plain: Some(bind(config.listen).await?),
            tls: None,
        });
    };
    let plain = match tls.listen {
        Some(_) => Some(bind(config.listen).await?),
        None => None,
    };
    let tcp = bind(tls.listen.unwrap_or(config.listen)).await?;
    let tls = TlsListener::new(tcp, tls_server, tls.handshake_timeout)
        .map_err(|e| format!("cannot start the TLS listener: {e}"))?;
    Ok(Listeners {
        plain,
        tls: Some(tls),
    })
}

/// Serves until SIGINT/SIGTERM, then drains in-flight requests on every listener.
async fn serve(listeners: Listeners, app: Router, limits: ClientLimits) -> Result<(), String> {
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        crate::shutdown::shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let plain = async {
        if let Some(listener) = listeners.plain {
            serve_listener(listener, app.clone(), &limits, stop_rx.clone()).await;
        }
    };
    let tls = async {
        if let Some(listener) = listeners.tls {
            // Requests over TLS may carry SSE-C keys.
            let app = app
                .clone()
                .layer(axum::Extension(crate::s3::state::OverTls));
            serve_listener(listener, app, &limits, stop_rx.clone()).await;
        }
    };
    futures::future::join(plain, tls).await;
    Ok(())
}

/// One listener's accept loop: each connection is served by hyper's HTTP/1 with the header
/// limits and the header-read timeout (which hyper starts as soon as a connection waits for a
/// request head, so it is also the keep-alive idle limit); at most `max_connections` are open,
/// further ones wait in the kernel's accept queue. On stop, accepting ends and every open
/// connection finishes its request in progress, then closes (idle ones close at once).
async fn serve_listener<L>(
    mut listener: L,
    app: Router,
    limits: &ClientLimits,
    mut stop: watch::Receiver<bool>,
) where
    L: axum::serve::Listener<Addr = std::net::SocketAddr>,
{
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;
    use tower::ServiceExt;

    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes)
        .keep_alive(true);
    // hyper's read buffer (about 400 KiB by default) must hold the largest head allowed.
    if limits.max_header_bytes > 256 * 1024 {
        http.max_buf_size(limits.max_header_bytes + 64 * 1024);
    }
    // hyper keeps up to 100 header slots on the stack; another count moves them to the heap.
    if limits.max_header_count != 100 {
        http.max_headers(limits.max_header_count);
    }
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    loop {
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            _ = stop.wait_for(|stop| *stop) => break,
        };
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|stop| *stop) => break,
        };
        // Policies see the client's address (`aws:SourceIp`).
        let peer = crate::s3::state::PeerAddr(peer.ip());
        let service = TowerToHyperService::new(app.clone().map_request(
            move |request: http::Request<hyper::body::Incoming>| {
                let mut request = request.map(axum::body::Body::new);
                request.extensions_mut().insert(peer);
                request
            },
        ));
        let connection = graceful.watch(http.serve_connection(TokioIo::new(io), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// The shard stores: local directories (embedded) or storage nodes over HTTP (cluster). The
/// local stores are also returned as such, for their scrubbers.
pub(crate) fn build_nodes(
    config: &ServerConfig,
) -> Result<(Vec<NodeSpec>, Vec<LocalShardStore>), String> {
    let mut nodes = Vec::new();
    let mut locals = Vec::new();
    if let Some(cluster) = &config.cluster {
        return Ok((crate::node_roles::http_nodes(cluster)?, locals));
    }
    for (i, dir) in config.shard_dirs.iter().enumerate() {
        let store = LocalShardStore::open(dir.clone(), format!("disk{i}"), config.fsync)
            .map_err(|e| format!("cannot open shard directory {}: {e}", dir.display()))?;
        locals.push(store.clone());
        nodes.push(NodeSpec {
            id: i as u32,
            address: dir.display().to_string(),
            zone: None,
            weight: 1.0,
            store: Arc::new(store) as Arc<dyn ShardStore>,
        });
    }
    Ok((nodes, locals))
}

/// The engine's tunables out of the validated configuration.
pub fn engine_config(config: &ServerConfig) -> EngineConfig {
    EngineConfig {
        geometry: config.geometry,
        inline_threshold: config.inline_threshold,
        write_quorum: config.write_quorum,
        gc_delay: config.gc_delay,
        shard_timeout: config.shard_timeout,
        hedge_after: config.hedge_after,
        region: config.region.clone(),
        healing: config.healing.clone(),
        sse: config.sse.keys.clone(),
    }
}

fn router(
    engine: Arc<Engine>,
    service: Arc<S3Service>,
    backup: Option<Arc<CatalogBackup>>,
) -> Router {
    let ready_engine = engine.clone();
    Router::new()
        .route(
            "/_strata/health/live",
            get(|| async { (StatusCode::OK, "ok\n") }),
        )
        .route(
            "/_strata/health/ready",
            get(move || {
                let engine = ready_engine.clone();
                async move {
                    if engine.ready() {
                        (StatusCode::OK, "ready\n")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
                    }
                }
            }),
        )
        .route(
            "/_strata/admin/cluster",
            get(crate::admin::handle_cluster_status),
        )
        .route(
            "/_strata/admin/scrub",
            get(crate::admin::handle_scrub_status),
        )
        .route("/_strata/metrics", get(crate::admin::handle_metrics))
        .route(
            "/_strata/admin/repair",
            get(crate::admin::handle_repair_status),
        )
        .route("/_strata/admin/gc", get(crate::admin::handle_gc_status))
        .route(
            "/_strata/admin/{section}",
            axum::routing::any(crate::admin::identity::handle_identity),
        )
        .route(
            "/_strata/admin/{section}/{*rest}",
            axum::routing::any(crate::admin::identity::handle_identity),
        )
        .route(
            "/_strata/admin/sse-rewrap",
            axum::routing::any(crate::admin::handle_sse_rewrap),
        )
        .route(
            "/_strata/admin/backup",
            axum::routing::any(
                move |state: axum::extract::State<Arc<S3Service>>,
                      request: http::Request<axum::body::Body>| {
                    crate::admin::handle_backup(state, backup.clone(), request)
                },
            ),
        )
        .fallback(handle_s3)
        .with_state(service)
        .layer(axum::middleware::map_response(ensure_request_id))
}

/// Health and admin answers carry a request id too, like every S3 response.
async fn ensure_request_id(mut response: axum::response::Response) -> axum::response::Response {
    if !response.headers().contains_key("x-amz-request-id") {
        if let Ok(id) = http::HeaderValue::from_str(&crate::s3::service::new_request_id()) {
            response.headers_mut().insert("x-amz-request-id", id);
        }
    }
    response
}

fn print_banner(config: &ServerConfig, credentials: &Credentials, listeners: &Listeners) {
    let g = &config.geometry;
    let (count, what) = match &config.cluster {
        Some(cluster) => (cluster.nodes.len(), "storage nodes"),
        None => (config.shard_dirs.len(), "shard directories"),
    };
    let plain = listeners
        .plain
        .as_ref()
        .and_then(|l| l.local_addr().ok())
        .map(|a| format!("http://{a}"));
    let https = listeners
        .tls
        .as_ref()
        .and_then(|l| axum::serve::Listener::local_addr(l).ok())
        .map(|a| format!("https://{a}"));
    let endpoints: Vec<String> = plain.into_iter().chain(https).collect();
    let local = endpoints.last().cloned().unwrap_or_default();
    let ca_hint = if local.starts_with("https://") {
        " --ca-bundle CA.pem"
    } else {
        ""
    };
    println!(
        "Strata S3 endpoint: {}  ({}+{} erasure coding over {count} {what}, data in {}{})",
        endpoints.join(" and "),
        g.data_shards,
        g.parity_shards,
        config.data.display(),
        if config.fsync { "" } else { ", fsync OFF" }
    );
    println!("Access key: {}", credentials.access_key);
    println!("Secret key: {}", credentials.secret_key);
    println!(
        "Try: AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={} AWS_DEFAULT_REGION={} aws --endpoint-url {local}{ca_hint} s3 ls",
        credentials.access_key, credentials.secret_key, config.region
    );
}
