//! The admin API under `/_strata/admin/…` on the S3 port. Requests are authenticated exactly like
//! S3 requests (SigV4/SigV2 with the server's keys), so `curl --aws-sigv4 "aws:amz:us-east-1:s3"
//! --user KEY:SECRET` works, and answers are JSON.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use http::{Request, Response, StatusCode};
use serde::Serialize;

use crate::engine::cluster::NodeStatus;
use crate::s3::service::{new_request_id, S3Service};

#[derive(Serialize)]
struct ClusterStatus {
    data_shards: usize,
    parity_shards: usize,
    write_quorum: usize,
    nodes_up: usize,
    nodes: Vec<NodeStatus>,
}

fn json_response(status: StatusCode, body: String) -> Response<Body> {
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
    let (parts, _) = request.into_parts();
    if let Err(error) = service.authenticate(&parts) {
        return error.to_response(&new_request_id(), false);
    }
    let engine = &service.engine;
    let config = engine.config();
    let nodes = engine.cluster().status();
    let status = ClusterStatus {
        data_shards: config.geometry.data_shards,
        parity_shards: config.geometry.parity_shards,
        write_quorum: config.write_quorum,
        nodes_up: nodes.iter().filter(|n| n.state == "up").count(),
        nodes,
    };
    to_json(&status)
}

fn to_json<T: Serialize>(value: &T) -> Response<Body> {
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
    let (parts, _) = request.into_parts();
    if let Err(error) = service.authenticate(&parts) {
        return error.to_response(&new_request_id(), false);
    }
    match service.engine.repair_status().await {
        Ok(status) => to_json(&status),
        Err(e) => error_json(&e.to_string()),
    }
}

/// `GET /_strata/admin/gc`: GC queue length and counters ([`crate::engine::GcStatus`]).
pub async fn handle_gc_status(
    State(service): State<Arc<S3Service>>,
    request: Request<Body>,
) -> Response<Body> {
    let (parts, _) = request.into_parts();
    if let Err(error) = service.authenticate(&parts) {
        return error.to_response(&new_request_id(), false);
    }
    match service.engine.gc_status().await {
        Ok(status) => to_json(&status),
        Err(e) => error_json(&e.to_string()),
    }
}
