//! Access control lists: GetBucketAcl, PutBucketAcl, GetObjectAcl, PutObjectAcl and the
//! `x-amz-acl` / `x-amz-grant-*` headers of writes.
//!
//! Strata has one owner per bucket and no ACLs, which is exactly S3's default for new buckets
//! since 2023 (Object Ownership = BucketOwnerEnforced). So we answer like such a bucket: reads
//! return the owner with FULL_CONTROL; writes that ask for that same state (`private`,
//! `bucket-owner-full-control`, or a policy granting only FULL_CONTROL to the owner) succeed and
//! change nothing; any other canned ACL, grant header or grant is refused with S3's
//! `AccessControlListNotSupported` (400), never silently ignored (an object a user believes is
//! `public-read` must not quietly stay private).

use http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::{empty_response, read_request_document, xml_response, S3Request, S3Result};
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::headers::header_str;
use crate::s3::xml::{parse, XmlWriter};

/// Canned ACLs that describe the only state a Strata object or bucket can be in.
const OWNER_ONLY_ACLS: &[&str] = &["private", "bucket-owner-full-control"];
/// Largest PutBucketAcl/PutObjectAcl document read.
const MAX_ACL_BODY: usize = 64 * 1024;

fn not_supported() -> S3Error {
    S3Error::new(S3ErrorCode::AccessControlListNotSupported)
}

/// Accepts a write's `x-amz-acl` only when it means "owner only"; refuses grant headers.
pub fn check_canned_acl(headers: &HeaderMap) -> Result<(), S3Error> {
    if headers
        .keys()
        .any(|name| name.as_str().starts_with("x-amz-grant-"))
    {
        return Err(not_supported());
    }
    match header_str(headers, "x-amz-acl") {
        None => Ok(()),
        Some(acl) if OWNER_ONLY_ACLS.contains(&acl.trim()) => Ok(()),
        Some(_) => Err(not_supported()),
    }
}

/// The `<AccessControlPolicy>` of an owner-only resource.
fn owner_only_policy(owner: &str) -> String {
    let mut w = XmlWriter::new("AccessControlPolicy");
    w.open("Owner")
        .text("ID", owner)
        .text("DisplayName", owner)
        .close("Owner");
    w.open("AccessControlList").open("Grant");
    // XmlWriter has no attribute API; this fixed, escaped-free literal is the grantee type.
    w.open(
        "Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\"",
    );
    w.text("ID", owner)
        .text("DisplayName", owner)
        .close("Grantee")
        .text("Permission", "FULL_CONTROL")
        .close("Grant")
        .close("AccessControlList");
    w.finish("AccessControlPolicy")
}

#[derive(Debug, Deserialize)]
struct AccessControlPolicyXml {
    #[serde(rename = "AccessControlList", default)]
    list: AccessControlListXml,
}

#[derive(Debug, Deserialize, Default)]
struct AccessControlListXml {
    #[serde(rename = "Grant", default)]
    grants: Vec<GrantXml>,
}

#[derive(Debug, Deserialize)]
struct GrantXml {
    #[serde(rename = "Grantee")]
    grantee: GranteeXml,
    #[serde(rename = "Permission")]
    permission: String,
}

#[derive(Debug, Deserialize)]
struct GranteeXml {
    #[serde(rename = "ID")]
    id: Option<String>,
}

/// True when a PutAcl document grants FULL_CONTROL to `owner` and nothing else.
pub fn policy_is_owner_only(body: &[u8], owner: &str) -> Result<bool, S3Error> {
    let policy: AccessControlPolicyXml = parse(body)?;
    Ok(!policy.list.grants.is_empty()
        && policy
            .list
            .grants
            .iter()
            .all(|g| g.permission == "FULL_CONTROL" && g.grantee.id.as_deref() == Some(owner)))
}

/// Shared by PutBucketAcl and PutObjectAcl once the resource is known to exist.
async fn put_acl(req: S3Request, owner: &str) -> S3Result {
    check_canned_acl(&req.headers)?;
    let has_header = req.headers.contains_key("x-amz-acl");
    let body = read_request_document(req.body, &req.headers, &req.auth, MAX_ACL_BODY).await?;
    match (has_header, body.is_empty()) {
        (true, true) => {}
        (true, false) => {
            return Err(S3Error::new(S3ErrorCode::InvalidRequest)
                .with_message("Specifying both Canned ACLs and Header Grants is not allowed"))
        }
        (false, true) => {
            return Err(S3Error::new(S3ErrorCode::MissingSecurityHeader)
                .with_extra("MissingHeaderName", "x-amz-acl"))
        }
        (false, false) => {
            if !policy_is_owner_only(&body, owner)? {
                return Err(not_supported());
            }
        }
    }
    empty_response(StatusCode::OK)
}

pub async fn handle_get_bucket_acl(req: S3Request, bucket: &str) -> S3Result {
    let record = req.engine.bucket(bucket).await?;
    xml_response(owner_only_policy(record.owner()))
}

pub async fn handle_put_bucket_acl(req: S3Request, bucket: &str) -> S3Result {
    let record = req.engine.bucket(bucket).await?;
    put_acl(req, record.owner()).await
}

pub async fn handle_get_object_acl(req: S3Request, bucket: &str, key: &str) -> S3Result {
    let record = req.engine.bucket(bucket).await?;
    req.engine
        .head_object(bucket, key)
        .await
        .map_err(|e| S3Error::from(e).with_extra("Key", key))?;
    xml_response(owner_only_policy(record.owner()))
}

pub async fn handle_put_object_acl(req: S3Request, bucket: &str, key: &str) -> S3Result {
    let record = req.engine.bucket(bucket).await?;
    req.engine
        .head_object(bucket, key)
        .await
        .map_err(|e| S3Error::from(e).with_extra("Key", key))?;
    put_acl(req, record.owner()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn only_owner_only_canned_acls_pass() {
        let mut headers = HeaderMap::new();
        assert!(check_canned_acl(&headers).is_ok());
        for acl in OWNER_ONLY_ACLS {
            headers.insert("x-amz-acl", HeaderValue::from_static(acl));
            assert!(check_canned_acl(&headers).is_ok(), "{acl}");
        }
        for acl in [
            "public-read",
            "public-read-write",
            "authenticated-read",
            "bogus",
        ] {
            headers.insert("x-amz-acl", HeaderValue::from_static(acl));
            assert_eq!(
                check_canned_acl(&headers).unwrap_err().code,
                S3ErrorCode::AccessControlListNotSupported
            );
        }
        let mut grants = HeaderMap::new();
        grants.insert("x-amz-grant-read", HeaderValue::from_static("uri=x"));
        assert!(check_canned_acl(&grants).is_err());
    }

    #[test]
    fn policies_granting_only_the_owner_full_control_pass() {
        let doc = owner_only_policy("alice");
        assert!(policy_is_owner_only(doc.as_bytes(), "alice").unwrap());
        assert!(!policy_is_owner_only(doc.as_bytes(), "bob").unwrap());
        let public = doc.replace(
            "</AccessControlList>",
            "<Grant><Grantee><URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee>\
             <Permission>READ</Permission></Grant></AccessControlList>",
        );
        assert!(!policy_is_owner_only(public.as_bytes(), "alice").unwrap());
        assert!(policy_is_owner_only(b"<AccessControlPolicy>", "alice").is_err());
    }
}
