//! The node's side of cluster authentication: every request is checked against the cluster
//! secret (`crate::cluster_auth`) before its path is even parsed or its body read, so an
//! unauthenticated request can neither touch the disk nor learn which shards exist. The
//! request MAC it returns seeds the request body's chain and the answer's.

use std::time::{Duration, SystemTime};

use http::request::Parts;

use crate::cluster_auth::{self, AuthError, PresentedHeaders, RequestTarget};
use crate::signed_body::Tag;

/// Verifies the signature headers of a request against `secret`; returns the request MAC.
pub(super) fn authenticate(
    parts: &Parts,
    secret: &[u8],
    max_skew: Duration,
) -> Result<Tag, AuthError> {
    let target = RequestTarget {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
    };
    let header = |name: &str| parts.headers.get(name).map(|value| value.as_bytes());
    cluster_auth::verify(
        secret,
        &target,
        PresentedHeaders {
            date: header(cluster_auth::DATE_HEADER),
            nonce: header(cluster_auth::NONCE_HEADER),
            authorization: header(http::header::AUTHORIZATION.as_str()),
        },
        SystemTime::now(),
        max_skew,
    )
}
