//! [`S3Service`], the shared state of the S3 endpoint (engine, keys, addressing, metrics), apart
//! from the pipeline in `service` that routes requests to handlers: a handler that needs the
//! state (browser POST uploads check their own signature) imports this leaf, not the pipeline.

use std::sync::Arc;
use std::time::SystemTime;

use super::auth::{authenticate, is_unsigned, security_token, AuthConfig, AuthContext};
use super::authorize::{Access, Caller};
use super::context_keys::{request_keys, Connection, SigningScheme};
use super::endpoint::Query;
use super::error::{S3Error, S3ErrorCode};
use super::limits::RequestLimits;
use crate::engine::{Engine, Healer};
use crate::identity::{Directory, IdentityService};
use crate::metrics::Metrics;

/// Shared state of the S3 endpoint.
pub struct S3Service {
    pub engine: Arc<Engine>,
    /// Background work over `engine` (its status calls serve the admin API and the metrics).
    pub healer: Arc<Healer>,
    /// Users, keys, policies and buckets' access settings.
    pub identity: Arc<IdentityService>,
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

/// Request extension set by every listener: the client's address.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub std::net::IpAddr);

/// An authenticated request: how it was signed, by whom, and the directory it was checked
/// against.
#[derive(Debug)]
pub struct Authenticated {
    pub auth: AuthContext,
    pub caller: Caller,
    pub directory: Arc<Directory>,
}

impl S3Service {
    /// Authenticates a request against the current directory's keys (S3 and admin routes
    /// alike). An unsigned request is the anonymous caller.
    pub async fn authenticate(
        &self,
        parts: &http::request::Parts,
    ) -> Result<Authenticated, S3Error> {
        let directory = self
            .identity
            .current()
            .await
            .map_err(|e| S3Error::new(S3ErrorCode::ServiceUnavailable).with_source(e))?;
        if is_unsigned(&parts.uri, &parts.headers) {
            return Ok(Authenticated {
                auth: AuthContext::anonymous(),
                caller: Caller::anonymous(),
                directory,
            });
        }
        if security_token(&parts.uri, &parts.headers).is_some() {
            return Err(S3Error::new(S3ErrorCode::InvalidToken));
        }
        let auth = authenticate(
            &parts.method,
            &parts.uri,
            &parts.headers,
            &directory.keyring,
            &self.auth,
            SystemTime::now(),
        )?;
        let user = directory
            .user_of_key(&auth.access_key)
            .ok_or_else(|| S3Error::new(S3ErrorCode::InvalidAccessKeyId))?;
        let caller = Caller {
            user: Some(user),
            session_policy: None,
            access_key: auth.access_key.clone(),
        };
        Ok(Authenticated {
            auth,
            caller,
            directory,
        })
    }

    /// The authorizer of one authenticated request, with the condition keys it carries.
    pub fn access(
        &self,
        parts: &http::request::Parts,
        query: &Query,
        scheme: SigningScheme,
        caller: Caller,
        directory: Arc<Directory>,
    ) -> Access {
        let connection = Connection {
            peer: parts
                .extensions
                .get::<PeerAddr>()
                .map_or(std::net::IpAddr::from([127, 0, 0, 1]), |peer| peer.0),
            secure: parts.extensions.get::<OverTls>().is_some(),
        };
        let keys = request_keys(
            &parts.headers,
            query.pairs(),
            connection,
            scheme,
            &caller.principal(),
            SystemTime::now(),
        );
        Access::new(directory, caller, keys)
    }
}
