//! [`S3Service`], the shared state of the S3 endpoint (engine, keys, addressing, metrics), apart
//! from the pipeline in `service` that routes requests to handlers: a handler that needs the
//! state (browser POST uploads check their own signature) imports this leaf, not the pipeline.

use std::sync::Arc;
use std::time::SystemTime;

use super::auth::{authenticate, AuthConfig, AuthContext, Keyring};
use super::error::S3Error;
use super::limits::RequestLimits;
use crate::engine::{Engine, Healer};
use crate::metrics::Metrics;

/// Shared state of the S3 endpoint.
pub struct S3Service {
    pub engine: Arc<Engine>,
    /// Background work over `engine` (its status calls serve the admin API and the metrics).
    pub healer: Arc<Healer>,
    pub keyring: Keyring,
    pub auth: AuthConfig,
    /// Domains of virtual-hosted-style addressing (`{bucket}.{domain}`); empty: path style only.
    pub domains: Vec<String>,
    /// Request counters and latencies (`/_strata/metrics`).
    pub metrics: Arc<Metrics>,
    /// Body idle timeout, request deadline and the cap on requests with a body in progress.
    pub limits: RequestLimits,
    /// Accept SSE-C keys over plain HTTP (AWS refuses them: 400 InvalidRequest).
    pub sse_c_allow_http: bool,
}

/// Request extension set by the TLS listener: the request came over HTTPS.
#[derive(Debug, Clone, Copy)]
pub struct OverTls;

impl S3Service {
    /// Authenticates a request against this service's keys (S3 and admin routes alike).
    pub fn authenticate(&self, parts: &http::request::Parts) -> Result<AuthContext, S3Error> {
        authenticate(
            &parts.method,
            &parts.uri,
            &parts.headers,
            &self.keyring,
            &self.auth,
            SystemTime::now(),
        )
    }
}
