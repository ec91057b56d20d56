//! The identity part of the admin API: users, access keys and named policies, as JSON, for
//! the root credentials only (`super::require_admin`).
//!
//! | request | does |
//! |---|---|
//! | `GET /_strata/admin/users` | every user |
//! | `POST /_strata/admin/users` `{"name", "policies"?}` | creates a user and a first key; answers the key pair |
//! | `DELETE /_strata/admin/users/NAME` | deletes a user and their keys |
//! | `PUT /_strata/admin/users/NAME/policies` `{"policies"}` | replaces the user's policies |
//! | `GET /_strata/admin/keys[?user=NAME]` | keys (never secrets) |
//! | `POST /_strata/admin/keys` `{"user"}` | a new key; its secret is shown this once |
//! | `PUT /_strata/admin/keys/KEY` `{"status": "active"\|"disabled"}` | enables or disables |
//! | `DELETE /_strata/admin/keys/KEY` | deletes a key |
//! | `GET /_strata/admin/policies` | named and built-in policies |
//! | `PUT /_strata/admin/policies/NAME` (the policy document) | stores a policy |
//! | `DELETE /_strata/admin/policies/NAME` | deletes an unattached policy |
//!
//! Invariants: bodies are read only after the signature is checked, bounded, and verified
//! against the signed payload hash; a secret appears in exactly one answer (the creation).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use http::{Method, Request, Response, StatusCode};
use metadata::MetaError;
use serde::Deserialize;

use super::{json_response, to_json};
use crate::identity::IdentityError;
use crate::s3::handlers::read_request_document;
use crate::s3::service::{new_request_id, S3Service};

/// Largest request body (a policy document is at most 6 KiB).
const MAX_BODY: usize = 64 * 1024;

#[derive(Deserialize)]
struct CreateUser {
    name: String,
    #[serde(default)]
    policies: Vec<String>,
}

#[derive(Deserialize)]
struct SetPolicies {
    policies: Vec<String>,
}

#[derive(Deserialize)]
struct CreateKey {
    user: String,
}

#[derive(Deserialize)]
struct SetStatus {
    status: String,
}

fn error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "error": message, "code": code }).to_string();
    json_response(status, body)
}

fn identity_error(e: &IdentityError) -> Response<Body> {
    let (status, code) = match e {
        IdentityError::Meta(MetaError::NoSuchUser) => (StatusCode::NOT_FOUND, "NoSuchUser"),
        IdentityError::Meta(MetaError::NoSuchAccessKey) => {
            (StatusCode::NOT_FOUND, "NoSuchAccessKey")
        }
        IdentityError::Meta(MetaError::NoSuchPolicy) => (StatusCode::NOT_FOUND, "NoSuchPolicy"),
        IdentityError::Meta(MetaError::UserExists) => (StatusCode::CONFLICT, "UserExists"),
        IdentityError::Meta(MetaError::AccessKeyExists) => {
            (StatusCode::CONFLICT, "AccessKeyExists")
        }
        IdentityError::Meta(MetaError::PolicyInUse(..)) => (StatusCode::CONFLICT, "PolicyInUse"),
        IdentityError::Meta(MetaError::TooManyKeys(_)) => (StatusCode::CONFLICT, "LimitExceeded"),
        IdentityError::Invalid { .. } => (StatusCode::BAD_REQUEST, "InvalidInput"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
    };
    error(status, code, &e.to_string())
}

fn bad_json(e: &serde_json::Error) -> Response<Body> {
    error(StatusCode::BAD_REQUEST, "MalformedJSON", &e.to_string())
}

fn created<T: serde::Serialize>(value: &T) -> Response<Body> {
    let mut response = to_json(value);
    if response.status() == StatusCode::OK {
        *response.status_mut() = StatusCode::CREATED;
    }
    response
}

fn done() -> Response<Body> {
    json_response(StatusCode::OK, "{}".to_string())
}

/// Parses a JSON body.
fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice(body)
}

/// Every `/_strata/admin/{users,keys,policies}[/…]` request.
pub async fn handle_identity(
    State(service): State<Arc<S3Service>>,
    request: Request<Body>,
) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let authenticated = match service.authenticate(&parts).await {
        Ok(authenticated) => authenticated,
        Err(e) => return e.to_response(&new_request_id(), false),
    };
    if let Err(e) = super::require_admin(&service, &parts).await {
        return e.to_response(&new_request_id(), false);
    }
    let body =
        match read_request_document(body, &parts.headers, &authenticated.auth, MAX_BODY).await {
            Ok(body) => body,
            Err(e) => return e.to_response(&new_request_id(), false),
        };
    let path = parts.uri.path().trim_end_matches('/');
    let segments: Vec<&str> = path
        .strip_prefix("/_strata/admin/")
        .unwrap_or("")
        .split('/')
        .collect();
    let query = crate::s3::endpoint::Query::parse(parts.uri.query());
    let identity = &service.identity;
    let answer = match (&parts.method, segments.as_slice()) {
        (&Method::GET, ["users"]) => identity.list_users().await.map(|u| to_json(&u)),
        (&Method::POST, ["users"]) => {
            let request: CreateUser = match parse(&body) {
                Ok(r) => r,
                Err(e) => return bad_json(&e),
            };
            match identity.create_user(&request.name, request.policies).await {
                Ok(user) => identity.create_key(&user.name).await.map(|key| {
                    created(&serde_json::json!({
                        "user": user.name,
                        "arn": user.arn,
                        "policies": user.policies,
                        "access_key": key.access_key,
                        "secret_key": key.secret_key,
                    }))
                }),
                Err(e) => Err(e),
            }
        }
        (&Method::DELETE, ["users", name]) => identity.delete_user(name).await.map(|()| done()),
        (&Method::PUT, ["users", name, "policies"]) => {
            let request: SetPolicies = match parse(&body) {
                Ok(r) => r,
                Err(e) => return bad_json(&e),
            };
            identity
                .set_user_policies(name, request.policies)
                .await
                .map(|u| to_json(&u))
        }
        (&Method::GET, ["keys"]) => identity
            .list_keys(query.get("user"))
            .await
            .map(|k| to_json(&k)),
        (&Method::POST, ["keys"]) => {
            let request: CreateKey = match parse(&body) {
                Ok(r) => r,
                Err(e) => return bad_json(&e),
            };
            identity
                .create_key(&request.user)
                .await
                .map(|k| created(&k))
        }
        (&Method::PUT, ["keys", key]) => {
            let request: SetStatus = match parse(&body) {
                Ok(r) => r,
                Err(e) => return bad_json(&e),
            };
            let active = match request.status.as_str() {
                "active" | "enabled" => true,
                "disabled" | "inactive" => false,
                other => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "InvalidInput",
                        &format!("status {other:?}: expected \"active\" or \"disabled\""),
                    )
                }
            };
            identity.set_key_active(key, active).await.map(|()| done())
        }
        (&Method::DELETE, ["keys", key]) => identity.delete_key(key).await.map(|()| done()),
        (&Method::GET, ["policies"]) => identity.list_policies().await.map(|policies| {
            let list: Vec<_> = policies
                .into_iter()
                .map(|(name, document, builtin)| {
                    serde_json::json!({"name": name, "builtin": builtin, "document": document})
                })
                .collect();
            to_json(&list)
        }),
        (&Method::PUT, ["policies", name]) => {
            let Ok(document) = std::str::from_utf8(&body) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidInput",
                    "policy is not UTF-8",
                );
            };
            identity.put_policy(name, document).await.map(|()| done())
        }
        (&Method::DELETE, ["policies", name]) => {
            identity.delete_policy(name).await.map(|()| done())
        }
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                "NoSuchAdminCall",
                &format!("no admin call {} {}", parts.method, parts.uri.path()),
            )
        }
    };
    answer.unwrap_or_else(|e| identity_error(&e))
}
