//! The STS calls on the S3 port (`AssumeRole`, `GetCallerIdentity`, as MinIO serves them): the
//! request is SigV4-signed for service `sts` by a user's long-term key (or the root key); the
//! form body is hashed here, because STS clients do not send `x-amz-content-sha256`.
//!
//! Invariants: a temporary credential cannot mint another (no role chaining: 403); a session
//! policy is validated in full before a token carries it; a session's rights are its parent's
//! rights intersected with its session policy (`authorize.rs`), and the parent key must still
//! be active on every request the session signs (`state.rs`); answers and errors are STS XML.

use std::time::SystemTime;

use axum::body::Body;
use http::{HeaderValue, Method, Response};
use http_body_util::{BodyExt, Limited};
use sha2::{Digest, Sha256};

use crate::identity::ACCOUNT_ID;
use crate::s3::auth::{authenticate_service, security_token};
use crate::s3::policy::{Policy, PolicyKind};
use crate::s3::state::S3Service;
use crate::s3::sts::{
    assume_role_xml, caller_identity_xml, mint, parse_sts_request, StsAction, StsError,
    MAX_FORM_BYTES,
};

fn xml(status: http::StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml"),
    );
    response
}

fn sts_error(error: &StsError, request_id: &str) -> Response<Body> {
    xml(error.status, error.error_xml(request_id))
}

/// An S3 authentication error in STS terms (the client is an STS client).
fn from_s3(error: &crate::s3::error::S3Error) -> StsError {
    use crate::s3::error::S3ErrorCode as C;
    match error.code {
        C::InvalidAccessKeyId => StsError::invalid_client_token_id(),
        C::SignatureDoesNotMatch => StsError::access_denied(
            "The request signature we calculated does not match the signature you provided.",
        ),
        _ => StsError::access_denied(error.message.clone()),
    }
}

/// Answers one STS call.
pub async fn handle_sts(
    service: &S3Service,
    parts: http::request::Parts,
    body: Body,
    request_id: &str,
) -> Response<Body> {
    match answer(service, parts, body, request_id).await {
        Ok(response) => response,
        Err(error) => sts_error(&error, request_id),
    }
}

async fn answer(
    service: &S3Service,
    parts: http::request::Parts,
    body: Body,
    request_id: &str,
) -> Result<Response<Body>, StsError> {
    let form = if parts.method == Method::POST {
        Limited::new(body, MAX_FORM_BYTES)
            .collect()
            .await
            .map_err(|_| {
                StsError::invalid_parameter_value(format!(
                    "The request parameters exceed {MAX_FORM_BYTES} bytes"
                ))
            })?
            .to_bytes()
    } else {
        bytes::Bytes::new()
    };
    if security_token(&parts.uri, &parts.headers).is_some() {
        return Err(StsError::access_denied(
            "Temporary credentials cannot request other temporary credentials",
        ));
    }
    let directory = service
        .identity
        .current()
        .await
        .map_err(|_| StsError::internal_failure())?;
    // The signature covers the body through its hash; STS clients leave the header out, so
    // the hash of the body received is what the canonical request must carry.
    let digest: [u8; 32] = Sha256::digest(&form).into();
    let auth = authenticate_service(
        &parts.method,
        &parts.uri,
        &parts.headers,
        &directory.keyring,
        &service.auth,
        SystemTime::now(),
        ("sts", Some(digest)),
    )
    .map_err(|e| from_s3(&e))?;
    if let crate::s3::auth::PayloadMode::Sha256Hex(expected) = auth.payload {
        if expected != digest {
            return Err(StsError::access_denied(
                "The request body does not match its signed hash",
            ));
        }
    }
    let user = directory
        .user_of_key(&auth.access_key)
        .ok_or_else(StsError::invalid_client_token_id)?;
    let text = std::str::from_utf8(&form)
        .map_err(|_| StsError::invalid_parameter_value("The request body is not UTF-8"))?;
    let params = match (text.is_empty(), parts.uri.query()) {
        (false, Some(query)) => format!("{text}&{query}"),
        (false, None) => text.to_string(),
        (true, query) => query.unwrap_or("").to_string(),
    };
    match parse_sts_request(&params)? {
        StsAction::GetCallerIdentity => {
            let user_id = if user.admin {
                ACCOUNT_ID.to_string()
            } else {
                user.canonical_id.clone()
            };
            Ok(xml(
                http::StatusCode::OK,
                caller_identity_xml(&user.arn, &user_id, ACCOUNT_ID, request_id),
            ))
        }
        StsAction::AssumeRole(request) => {
            if let Some(policy) = &request.policy {
                Policy::parse(policy.as_bytes(), PolicyKind::Identity)
                    .map_err(|e| StsError::malformed_policy_document(e.to_string()))?;
            }
            let claims = mint(
                &auth.access_key,
                request.duration,
                request.policy.clone(),
                request.session_name.clone(),
                SystemTime::now(),
            );
            let credentials = service.sts_keys.issue(&claims)?;
            let session = request
                .session_name
                .clone()
                .unwrap_or_else(|| claims.access_key.clone());
            let role = request
                .role_arn
                .as_deref()
                .and_then(|arn| arn.rsplit_once('/').map(|(_, name)| name.to_string()))
                .unwrap_or_else(|| user.name.clone());
            let arn = format!("arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role}/{session}");
            let role_id = format!("{}:{session}", claims.access_key);
            Ok(xml(
                http::StatusCode::OK,
                assume_role_xml(&credentials, &arn, &role_id, request_id),
            ))
        }
    }
}
