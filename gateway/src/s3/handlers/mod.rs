//! S3 operation handlers: one `handle_<operation>` function each, grouped by resource.
//!
//! A handler gets the parsed request ([`S3Request`]), calls the engine and builds the response.
//! `From<EngineError> for S3Error` is the one mapping from engine errors to S3 errors.

pub mod acl;
pub mod attributes;
pub mod bucket;
pub mod copy;
pub mod encryption;
pub mod keep_alive;
pub mod list;
pub mod multipart;
pub mod object;
pub mod policy;
pub mod post_object;
pub mod tagging;

use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, Method, Response, StatusCode};

use super::auth::AuthContext;
use super::endpoint::Query;
use super::error::{S3Error, S3ErrorCode};
use super::payload::body::{prepare_body, s3_error_of, PreparedBody};
use super::payload::checksum::{check_content_md5, verify_content_md5};
use super::xml::XmlWriter;
use crate::engine::{Engine, EngineError};

/// Everything a handler may need about the request besides its endpoint.
pub struct S3Request {
    pub engine: Arc<Engine>,
    pub method: Method,
    pub headers: HeaderMap,
    pub query: Query,
    pub auth: AuthContext,
    /// The request's authorizer (its dispatch decision is made; handlers use it for the
    /// checks they make later: DeleteObjects per key, copy sources, ListBuckets filtering).
    pub access: Arc<crate::s3::authorize::Access>,
    /// Users, keys and buckets' access settings (bucket policies, ACLs are changed here).
    pub identity: Arc<crate::identity::IdentityService>,
    pub body: Body,
    /// The `x-amz-request-id` this request is answered with.
    pub request_id: String,
    /// The request may carry SSE-C keys: it came over TLS, or the server allows them over
    /// plain HTTP (`sse_c_allow_http`).
    pub customer_keys_allowed: bool,
}

/// Result type of every handler.
pub type S3Result = Result<Response<Body>, S3Error>;

/// The one mapping from engine errors to the S3 error a client expects. `<Resource>` is filled
/// in by the dispatcher from the endpoint (a handler that means another resource, such as a copy
/// source, sets its own first). Failures of the service itself keep the engine error as their
/// source, which the request log prints with its whole cause chain (DESIGN §8).
impl From<EngineError> for S3Error {
    fn from(error: EngineError) -> Self {
        use EngineError as E;
        let code = match error {
            E::NoSuchBucket => S3ErrorCode::NoSuchBucket,
            E::NoSuchKey => S3ErrorCode::NoSuchKey,
            E::NoSuchUpload => S3ErrorCode::NoSuchUpload,
            E::BucketExists => S3ErrorCode::BucketAlreadyOwnedByYou,
            E::BucketNotEmpty => S3ErrorCode::BucketNotEmpty,
            E::PreconditionFailed => S3ErrorCode::PreconditionFailed,
            E::ConditionalConflict => S3ErrorCode::ConditionalRequestConflict,
            E::BadDigest => S3ErrorCode::BadDigest,
            E::MissingContentLength => S3ErrorCode::MissingContentLength,
            E::EntityTooLarge => S3ErrorCode::EntityTooLarge,
            E::EntityTooSmall(_) => S3ErrorCode::EntityTooSmall,
            E::InvalidPartOrder => S3ErrorCode::InvalidPartOrder,
            E::IncompleteBody(message) => {
                return S3Error::new(S3ErrorCode::IncompleteBody).with_message(message)
            }
            E::InvalidPart(message) => {
                return S3Error::new(S3ErrorCode::InvalidPart).with_message(message)
            }
            E::Sse(error) => return crate::s3::sse::s3_error(error),
            E::Body(body) => {
                return match s3_error_of(&body) {
                    Some(s3) => s3,
                    None => S3Error::new(S3ErrorCode::IncompleteBody).with_source(E::Body(body)),
                }
            }
            error @ (E::Unavailable { .. } | E::Store { .. }) => return S3Error::new(
                S3ErrorCode::ServiceUnavailable,
            )
            .with_message(
                "Not enough storage nodes are available to serve this request. Please retry.",
            )
            .with_source(error),
            // The catalog is out of reach (no etcd quorum) or too contended: nothing was
            // decided, the client retries.
            error @ E::CatalogUnavailable(_) => {
                return S3Error::new(S3ErrorCode::ServiceUnavailable)
                    .with_message("The metadata catalog is unavailable right now. Please retry.")
                    .with_source(error)
            }
            error @ (E::Metadata(_) | E::Internal { .. }) => {
                return S3Error::new(S3ErrorCode::InternalError).with_source(error)
            }
        };
        S3Error::new(code)
    }
}

/// A 200 response with an XML document.
pub fn xml_response(doc: String) -> S3Result {
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "application/xml")
        .body(Body::from(doc))
        .map_err(|e| internal(&e))
}

/// An empty response with `status`.
pub fn empty_response(status: StatusCode) -> S3Result {
    Response::builder()
        .status(status)
        .body(Body::empty())
        .map_err(|e| internal(&e))
}

pub fn internal(e: &dyn std::fmt::Display) -> S3Error {
    tracing::error!(error = %e, "internal error");
    S3Error::new(S3ErrorCode::InternalError)
}

/// Reads a small request document (XML bodies), verifying its declared checksums, capped at
/// `limit` bytes.
pub async fn read_small_body(prepared: PreparedBody, limit: usize) -> Result<Bytes, S3Error> {
    let mut stream = prepared.stream;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            s3_error_of(&e).unwrap_or_else(|| S3Error::new(S3ErrorCode::IncompleteBody))
        })?;
        if out.len() + chunk.len() > limit {
            return Err(S3Error::new(S3ErrorCode::MalformedXML)
                .with_message("The XML you provided was too large"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}

/// Reads a request document (DeleteObjects, tagging, ACL …) of at most `limit` bytes,
/// verifying `Content-MD5` and any `x-amz-checksum-*` the client sent (either may stand in for
/// the other, as S3 accepts since the flexible-checksum change).
pub async fn read_request_document(
    body: Body,
    headers: &HeaderMap,
    auth: &AuthContext,
    limit: usize,
) -> Result<Bytes, S3Error> {
    let expected_md5 = verify_content_md5(headers)?;
    let prepared = prepare_body(body, headers, auth)?;
    let document = read_small_body(prepared, limit).await?;
    if expected_md5.is_some() {
        use md5::Digest;
        let actual: [u8; 16] = md5::Md5::digest(&document).into();
        check_content_md5(expected_md5, &actual)?;
    }
    Ok(document)
}

/// The owner block used in listings (single-tenant: the request's access key).
pub fn write_owner(w: &mut XmlWriter, owner: &OwnerView) {
    write_principal(w, "Owner", owner);
}

/// `<{element}><ID>…</ID><DisplayName>…</DisplayName></{element}>` (Owner, Initiator).
pub fn write_principal(w: &mut XmlWriter, element: &str, who: &OwnerView) {
    w.open(element)
        .text("ID", &who.id)
        .text("DisplayName", &who.display_name)
        .close(element);
}

/// An owner as listings show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerView {
    pub id: String,
    pub display_name: String,
}

/// The owner of `bucket` (and, buckets enforcing bucket ownership, of its objects and
/// uploads); the caller when the bucket is unknown.
pub fn bucket_owner(req: &S3Request, bucket: &str) -> OwnerView {
    let id = req
        .access
        .directory()
        .bucket(bucket)
        .map_or_else(|| req.access.owner().0, |entry| entry.owner.clone());
    let display_name = req.access.display_name(&id);
    OwnerView { id, display_name }
}

/// The caller as an owner.
pub fn caller_owner(req: &S3Request) -> OwnerView {
    let (id, display_name) = req.access.owner();
    OwnerView { id, display_name }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_failures_keep_their_cause_chain_for_the_log_only() {
        let disk = std::io::Error::other("disk on fire");
        let error = S3Error::from(EngineError::internal("codec", disk));
        assert_eq!(error.code, S3ErrorCode::InternalError);
        assert_eq!(
            error.cause_chain().as_deref(),
            Some("internal error: codec: disk on fire")
        );
        assert!(std::error::Error::source(&error).is_some());
        assert!(!error.to_xml("r").contains("disk on fire"));

        let quorum = S3Error::from(EngineError::unavailable("shard writers left", 5, 3));
        assert_eq!(quorum.code, S3ErrorCode::ServiceUnavailable);
        assert_eq!(
            quorum.cause_chain().as_deref(),
            Some("not enough shard stores: shard writers left (3 available, 5 needed)")
        );
        assert!(quorum.resource.is_none(), "dispatch fills the resource");
        // Client errors have no cause to log.
        assert!(S3Error::from(EngineError::NoSuchKey)
            .cause_chain()
            .is_none());
    }
}
