//! The admin API under `/_strata/admin/…` on the S3 port, and `/_strata/metrics`. Admin requests
//! are authenticated exactly like S3 requests (SigV4/SigV2 with the server's keys), so
//! `curl --aws-sigv4 "aws:amz:us-east-1:s3" --user KEY:SECRET` and `strata admin` (`cli`) work,
//! and answers are JSON. Metrics follow `config::MetricsAccess` (signed, bearer token or public).
//!
//! | path | answer |
//! |---|---|
//! | `GET /_strata/admin/cluster` | geometry, quorum, every node's state, latency and space |
//! | `GET /_strata/admin/scrub` | every store's scrub progress, totals and pending reports |
//! | `GET /_strata/metrics` | Prometheus/OpenMetrics text (`crate::metrics`) |
//! | `POST /_strata/admin/backup` | makes a catalog backup now; `GET`: backup counters |
//! | `POST /_strata/admin/sse-rewrap` | rewraps SSE-S3 data keys under the active master key |
//!
//! `restore` is not an API: `strata admin restore-catalog` runs offline, gateway stopped.

pub mod cli;
pub mod identity;
mod rebuild;
pub mod reconcile;
pub mod restore;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use http::{Request, Response, StatusCode};
use serde::Serialize;

use crate::engine::cluster::NodeStatus;
use crate::engine::healing::backup::CatalogBackup;
use crate::engine::healing::scrub::StoreScrubView;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::service::{new_request_id, S3Service};

#[derive(Serialize)]
struct ClusterStatus {
    data_shards: usize,
    parity_shards: usize,
    write_quorum: usize,
    nodes_up: usize,
    nodes: Vec<NodeStatus>,
    /// This gateway: its id and whether it leads background work.
    gateway: GatewayStatus,
    /// Every gateway sharing the catalog (empty when this one has its catalog to itself).
    gateways: Vec<crate::engine::members::MemberView>,
}

#[derive(Serialize)]
struct GatewayStatus {
    id: String,
    leader: bool,
    /// The lease holder as last seen (this gateway's id when it leads).
    leader_id: Option<String>,
}

#[derive(Serialize)]
struct ScrubOverview {
    stores: usize,
    stores_reachable: usize,
    corrupt_found_total: u64,
    pending_reports: usize,
    /// Corrupt shards this gateway handed to repair since it started.
    shards_handed_to_repair: u64,
    stores_detail: Vec<StoreScrubView>,
}

pub(crate) fn json_response(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// `GET /_strata/admin/cluster`: every node's state, latency and free space.
pub async fn handle_cluster_status(
    State(service): State<Arc<S3Service>>,
    request: Request<Body>,
) -> Response<Body> {
    if let Some(denied) = deny_unsigned(&service, request).await {
        return denied;
    }
    let engine = &service.engine;
    let config = engine.config();
    let nodes = engine.cluster().status();
    let members = engine.members().clone();
    let catalog = engine.catalog().clone();
    let rows = tokio::task::spawn_blocking(move || catalog.gateways()).await;
    let gateways = match rows {
        Ok(Ok(rows)) => engine.members().members(&rows),
        Ok(Err(e)) => return error_json(&format!("cannot read the gateways: {e}")),
        Err(e) => return error_json(&e.to_string()),
    };
    let status = ClusterStatus {
        gateway: GatewayStatus {
            id: members.id().to_string(),
            leader: members.is_leader(),
            leader_id: members.leader_id(),
        },
        gateways,
        data_shards: config.geometry.data_shards,
        parity_shards: config.geometry.parity_shards,
        write_quorum: config.write_quorum,
        nodes_up: nodes.iter().filter(|n| n.state == "up").count(),
        nodes,
    };
    to_json(&status)
}

/// The S3 error answer for a request not signed with the root (admin) credentials, else
/// `None`: the admin API is the root's alone.
async fn deny_unsigned(service: &S3Service, request: Request<Body>) -> Option<Response<Body>> {
    let (parts, _) = request.into_parts();
    let error = require_admin(service, &parts).await.err()?;
    Some(error.to_response(&new_request_id(), false))
}

/// `Ok` for a request signed with the root credentials; `AccessDenied` for anyone else.
pub(crate) async fn require_admin(
    service: &S3Service,
    parts: &http::request::Parts,
) -> Result<(), S3Error> {
    let authenticated = service.authenticate(parts).await?;
    match &authenticated.caller.user {
        Some(user) if user.admin && authenticated.caller.session_policy.is_none() => Ok(()),
        _ => Err(S3Error::new(S3ErrorCode::AccessDenied)
            .with_message("The admin API needs the root credentials")),
    }
}

/// A status as JSON, or its error as a 500 with `{"error": …}`.
fn json_result<T: Serialize, E: std::fmt::Display>(status: Result<T, E>) -> Response<Body> {
    match status {
        Ok(status) => to_json(&status),
        Err(e) => error_json(&e.to_string()),
    }
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> Response<Body> {
    match serde_json::to_string_pretty(value) {
        Ok(body) => json_response(StatusCode::OK, body),
        Err(e) => error_json(&e.to_string()),
    }
}

fn error_json(message: &str) -> Response<Body> {
    let body = serde_json::json!({ "error": message }).to_string();
    json_response(StatusCode::INTERNAL_SERVER_ERROR, body)
}

/// `GET /_strata/admin/repair`: repair queue length and counters ([`crate::engine::RepairStatus`]).
pub async fn handle_repair_status(
    State(service): State<Arc<S3Service>>,
    request: Request<Body>,
) -> Response<Body> {
    if let Some(denied) = deny_unsigned(&service, request).await {
        return denied;
    }
    json_result(service.healer.repair_status().await)
}

/// `GET /_strata/admin/gc`: GC queue length and counters ([`crate::engine::GcStatus`]).
pub async fn handle_gc_status(
    State(service): State<Arc<S3Service>>,
    request: Request<Body>,
) -> Response<Body> {
    if let Some(denied) = deny_unsigned(&service, request).await {
        return denied;
    }
    json_result(service.healer.gc_status().await)
}

/// `POST /_strata/admin/backup`: one catalog backup now (answered once it is stored, with its
/// key and manifest); `GET`: this gateway's backup counters and last backup.
pub async fn handle_backup(
    State(service): State<Arc<S3Service>>,
    backup: Option<Arc<CatalogBackup>>,
    request: Request<Body>,
) -> Response<Body> {
    let method = request.method().clone();
    if let Some(denied) = deny_unsigned(&service, request).await {
        return denied;
    }
    let Some(backup) = backup else {
        let body = serde_json::json!({
            "error": "catalog backups onto the storage nodes are made for a RocksDB catalog; back up an etcd catalog with `etcdctl snapshot save`"
        });
        return json_response(StatusCode::NOT_IMPLEMENTED, body.to_string());
    };
    match method {
        http::Method::POST => json_result(backup.run().await),
        http::Method::GET => to_json(&backup.status()),
        _ => {
            let body = serde_json::json!({ "error": "use POST (backup now) or GET (status)" });
            json_response(StatusCode::METHOD_NOT_ALLOWED, body.to_string())
        }
    }
}

/// `POST /_strata/admin/sse-rewrap`: rewraps every SSE-S3 data key under the active master key
/// (after a rotation), in small catalog transactions; answers what it did.
pub async fn handle_sse_rewrap(
    State(service): State<Arc<S3Service>>,
    request: Request<Body>,
) -> Response<Body> {
    if request.method() != http::Method::POST {
        let body = serde_json::json!({ "error": "use POST" });
        return json_response(StatusCode::METHOD_NOT_ALLOWED, body.to_string());
    }
    if let Some(denied) = deny_unsigned(&service, request).await {
        return denied;
    }
    json_result(service.engine.rewrap_data_keys().await)
}

/// `GET /_strata/admin/scrub`: the last scrub status the gateway collected from every store.
pub async fn handle_scrub_status(
    State(service): State<Arc<S3Service>>,
    request: Request<Body>,
) -> Response<Body> {
    if let Some(denied) = deny_unsigned(&service, request).await {
        return denied;
    }
    let healer = &service.healer;
    let views = healer.scrub_views();
    let overview = ScrubOverview {
        stores: healer.engine().cluster().len(),
        stores_reachable: views.iter().filter(|view| view.reachable).count(),
        corrupt_found_total: views
            .iter()
            .filter_map(|view| view.status.as_ref())
            .map(|status| status.total_corrupt_found)
            .sum(),
        pending_reports: views.iter().map(|view| view.pending_reports).sum(),
        shards_handed_to_repair: healer.counters().snapshot().scrub_corrupt_shards,
        stores_detail: views,
    };
    to_json(&overview)
}

/// `GET /_strata/metrics`: Prometheus metrics, for whoever `MetricsAccess` lets in.
pub async fn handle_metrics(
    State(service): State<Arc<S3Service>>,
    request: Request<Body>,
) -> Response<Body> {
    let (parts, _) = request.into_parts();
    let access = service.metrics.access();
    let bearer_ok = access.bearer_token.as_ref().is_some_and(|token| {
        parts
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .is_some_and(|given| {
                bool::from(subtle::ConstantTimeEq::ct_eq(
                    given.trim().as_bytes(),
                    token.as_bytes(),
                ))
            })
    });
    if !access.public && !bearer_ok {
        // A bearer header that is not the token must not be read as a (malformed) signature.
        let is_bearer = parts
            .headers
            .get(http::header::AUTHORIZATION)
            .is_some_and(|value| value.as_bytes().starts_with(b"Bearer "));
        let denied = if is_bearer {
            Err(S3Error::new(S3ErrorCode::AccessDenied).with_message("Invalid bearer token"))
        } else {
            require_admin(&service, &parts).await
        };
        if let Err(error) = denied {
            return error.to_response(&new_request_id(), false);
        }
    }
    match service.metrics.render(&service.healer).await {
        Ok(text) => {
            let mut response = Response::new(Body::from(text));
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
            );
            response
        }
        Err(e) => error_json(&e.to_string()),
    }
}
