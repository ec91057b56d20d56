//! Bucket policies: PutBucketPolicy, GetBucketPolicy, DeleteBucketPolicy and
//! GetBucketPolicyStatus. A policy is validated in full when stored (`MalformedPolicy` naming
//! the problem) and kept as the client sent it, so GetBucketPolicy returns the same text; the
//! authorizer (`authorize.rs`) evaluates the parsed form from the access directory.

use http::{HeaderValue, StatusCode};

use super::{empty_response, read_request_document, xml_response, S3Request, S3Result};
use crate::identity::IdentityError;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::policy::{Policy, PolicyKind, MAX_BUCKET_POLICY_BYTES};
use crate::s3::xml::XmlWriter;

/// The S3 answer for a failed access-setting change.
pub fn identity_error(error: IdentityError) -> S3Error {
    if error.is_no_such_bucket() {
        S3Error::new(S3ErrorCode::NoSuchBucket)
    } else if error.is_unavailable() {
        S3Error::new(S3ErrorCode::ServiceUnavailable).with_source(error)
    } else {
        S3Error::new(S3ErrorCode::InternalError).with_source(error)
    }
}

/// The bucket's stored policy text, `NoSuchBucket` / `NoSuchBucketPolicy` otherwise.
fn stored_policy(req: &S3Request, bucket: &str) -> Result<Option<String>, S3Error> {
    Ok(req.access.bucket_entry(bucket)?.access.policy.clone())
}

pub async fn handle_put_bucket_policy(req: S3Request, bucket: &str) -> S3Result {
    // Reading a little more than the limit tells "too large" from "exactly at the limit".
    let body = read_request_document(
        req.body,
        &req.headers,
        &req.auth,
        MAX_BUCKET_POLICY_BYTES + 1,
    )
    .await?;
    let policy = Policy::parse(&body, PolicyKind::Bucket(bucket))
        .map_err(|e| S3Error::new(S3ErrorCode::MalformedPolicy).with_message(e.to_string()))?;
    // As IAM: a principal naming a user of this account that does not exist is refused.
    let user_prefix = format!("arn:aws:iam::{}:user/", crate::identity::ACCOUNT_ID);
    if let Some(unknown) = policy.principal_names().find(|name| {
        name.strip_prefix(&user_prefix)
            .is_some_and(|user| req.access.directory().user(user).is_none())
    }) {
        return Err(S3Error::new(S3ErrorCode::MalformedPolicy)
            .with_message(format!("Invalid principal in policy: {unknown}")));
    }
    let blocked = req
        .access
        .directory()
        .bucket(bucket)
        .is_some_and(|entry| entry.public_access_block.block_public_policy);
    if blocked && policy.is_public() {
        // BlockPublicPolicy: S3 refuses a public policy with 403 AccessDenied.
        return Err(S3Error::new(S3ErrorCode::AccessDenied).with_message(
            "The bucket's public access block refuses a policy that grants public access",
        ));
    }
    let text = String::from_utf8(body.to_vec()).map_err(|_| {
        S3Error::new(S3ErrorCode::MalformedPolicy).with_message("Policy is not valid UTF-8")
    })?;
    req.identity
        .update_bucket_access(bucket, move |access| {
            access.policy = Some(text.clone());
            Ok(())
        })
        .await
        .map_err(identity_error)?;
    empty_response(StatusCode::NO_CONTENT)
}

pub async fn handle_get_bucket_policy(req: S3Request, bucket: &str) -> S3Result {
    let text = stored_policy(&req, bucket)?.ok_or_else(|| {
        S3Error::new(S3ErrorCode::NoSuchBucketPolicy).with_extra("BucketName", bucket)
    })?;
    let mut response = http::Response::new(axum::body::Body::from(text));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

pub async fn handle_delete_bucket_policy(req: S3Request, bucket: &str) -> S3Result {
    req.identity
        .update_bucket_access(bucket, |access| {
            access.policy = None;
            Ok(())
        })
        .await
        .map_err(identity_error)?;
    empty_response(StatusCode::NO_CONTENT)
}

pub async fn handle_get_bucket_policy_status(req: S3Request, bucket: &str) -> S3Result {
    stored_policy(&req, bucket)?.ok_or_else(|| {
        S3Error::new(S3ErrorCode::NoSuchBucketPolicy).with_extra("BucketName", bucket)
    })?;
    let public = req
        .access
        .directory()
        .bucket(bucket)
        .and_then(|entry| entry.policy.as_ref())
        .is_some_and(|policy| policy.is_public());
    let mut w = XmlWriter::new("PolicyStatus");
    w.text("IsPublic", if public { "true" } else { "false" });
    xml_response(w.finish("PolicyStatus"))
}
