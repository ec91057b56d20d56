//! Object Ownership controls (Get/Put/DeleteBucketOwnershipControls) and the public access
//! block (Get/Put/DeletePublicAccessBlock) of a bucket: stored in the bucket's access record
//! through the identity service, so every gateway's authorizer sees them on its next request.
//!
//! Invariants: a bucket that never set Object Ownership is `BucketOwnerEnforced` (AWS's
//! default since 2023) and reports it; switching to `BucketOwnerEnforced` is refused while the
//! bucket ACL grants anyone but the owner (`InvalidBucketAclWithObjectOwnership`), as S3 does.

use http::StatusCode;

use super::policy::identity_error;
use super::{empty_response, read_request_document, xml_response, S3Request, S3Result};
use crate::s3::acl::{ObjectOwnership, PublicAccessBlock};
use crate::s3::error::{S3Error, S3ErrorCode};

/// Largest settings document read (each is a few hundred bytes).
const MAX_SETTINGS_BODY: usize = 16 * 1024;

pub async fn handle_get_ownership_controls(req: S3Request, bucket: &str) -> S3Result {
    xml_response(req.access.bucket_entry(bucket)?.ownership.to_xml())
}

pub async fn handle_put_ownership_controls(req: S3Request, bucket: &str) -> S3Result {
    let current = req.access.bucket_entry(bucket)?;
    let others_granted = current
        .acl
        .as_ref()
        .is_some_and(|acl| !acl.is_full_control_only_for(&current.owner));
    let body = read_request_document(req.body, &req.headers, &req.auth, MAX_SETTINGS_BODY).await?;
    let ownership = ObjectOwnership::from_xml(&body)?;
    if ownership == ObjectOwnership::BucketOwnerEnforced && others_granted {
        return Err(
            S3Error::new(S3ErrorCode::InvalidBucketAclWithObjectOwnership).with_message(
                "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting",
            ),
        );
    }
    req.identity
        .update_bucket_access(bucket, move |access| {
            access.ownership = Some(ownership.as_str().to_string());
            if ownership == ObjectOwnership::BucketOwnerEnforced {
                access.acl = None;
            }
            Ok(())
        })
        .await
        .map_err(identity_error)?;
    empty_response(StatusCode::OK)
}

pub async fn handle_delete_ownership_controls(req: S3Request, bucket: &str) -> S3Result {
    let current = req.access.bucket_entry(bucket)?;
    if current.access.ownership.is_none() {
        return Err(S3Error::new(S3ErrorCode::OwnershipControlsNotFoundError)
            .with_extra("BucketName", bucket));
    }
    req.identity
        .update_bucket_access(bucket, |access| {
            access.ownership = None;
            access.acl = None;
            Ok(())
        })
        .await
        .map_err(identity_error)?;
    empty_response(StatusCode::NO_CONTENT)
}

pub async fn handle_get_public_access_block(req: S3Request, bucket: &str) -> S3Result {
    let current = req.access.bucket_entry(bucket)?;
    if current.access.public_access_block.is_none() {
        return Err(
            S3Error::new(S3ErrorCode::NoSuchPublicAccessBlockConfiguration)
                .with_extra("BucketName", bucket),
        );
    }
    xml_response(current.public_access_block.to_xml())
}

pub async fn handle_put_public_access_block(req: S3Request, bucket: &str) -> S3Result {
    req.access.bucket_entry(bucket)?;
    let body = read_request_document(req.body, &req.headers, &req.auth, MAX_SETTINGS_BODY).await?;
    let block = PublicAccessBlock::from_xml(&body)?;
    let stored = block.encode();
    req.identity
        .update_bucket_access(bucket, move |access| {
            access.public_access_block = Some(stored.clone());
            Ok(())
        })
        .await
        .map_err(identity_error)?;
    empty_response(StatusCode::OK)
}

pub async fn handle_delete_public_access_block(req: S3Request, bucket: &str) -> S3Result {
    req.access.bucket_entry(bucket)?;
    req.identity
        .update_bucket_access(bucket, |access| {
            access.public_access_block = None;
            Ok(())
        })
        .await
        .map_err(identity_error)?;
    empty_response(StatusCode::NO_CONTENT)
}
