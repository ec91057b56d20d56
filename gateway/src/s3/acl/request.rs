//! Turning a request into an ACL: the canned `x-amz-acl` header, the five `x-amz-grant-*`
//! headers and, for PutBucketAcl/PutObjectAcl, the `<AccessControlPolicy>` body.
//!
//! Rules (AWS PutBucketAcl/PutObjectAcl): a request names its ACL one way only — a canned ACL,
//! grant headers, or a body. Canned plus grant headers is `InvalidRequest` ("Specifying both
//! Canned ACLs and Header Grants is not allowed"); a header plus a body is refused too (AWS
//! answers `UnexpectedContent`, "This request does not support content"; Strata's error table
//! has no such row, so this is `InvalidRequest` with that message); none of the three is
//! `MissingSecurityHeader` naming `x-amz-acl`. Grant headers replace the whole ACL: the owner's
//! FULL_CONTROL is not added unless a header names the owner.
//!
//! Grant header syntax: `x-amz-grant-read: id="…", uri="http://…", emailAddress="…"` — a
//! comma-separated list of `type=value`, the value quoted or not; types compare
//! case-insensitively; repeated header lines add up.

use http::HeaderMap;

use super::document::{email_refused, invalid_group_uri};
use super::{Acl, Grant, Grantee, Group, Owner, Permission, MAX_GRANTS};
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::headers::header_str;

/// The canned-ACL header.
pub const CANNED_ACL_HEADER: &str = "x-amz-acl";

/// The grant headers and the permission each grants, in the order AWS documents them (and the
/// order their grants are listed in).
pub const GRANT_HEADERS: [(&str, Permission); 5] = [
    ("x-amz-grant-read", Permission::Read),
    ("x-amz-grant-write", Permission::Write),
    ("x-amz-grant-read-acp", Permission::ReadAcp),
    ("x-amz-grant-write-acp", Permission::WriteAcp),
    ("x-amz-grant-full-control", Permission::FullControl),
];

fn invalid_header(header: &str, value: &str) -> S3Error {
    S3Error::new(S3ErrorCode::InvalidArgument)
        .with_message("Argument format not recognized")
        .with_extra("ArgumentName", header)
        .with_extra("ArgumentValue", value)
}

fn has_grant_headers(headers: &HeaderMap) -> bool {
    GRANT_HEADERS
        .iter()
        .any(|(name, _)| headers.contains_key(*name))
}

/// Splits on the commas that are outside double quotes.
fn split_outside_quotes(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (index, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&value[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
}

/// One `type=value` item of a grant header.
fn parse_grantee(item: &str, header: &str) -> Result<Grantee, S3Error> {
    let (kind, value) = item
        .split_once('=')
        .ok_or_else(|| invalid_header(header, item))?;
    let value = value.trim();
    let value = match value.strip_prefix('"') {
        Some(rest) => rest
            .strip_suffix('"')
            .ok_or_else(|| invalid_header(header, item))?,
        None => value,
    };
    if value.is_empty() || value.contains('"') {
        return Err(invalid_header(header, item));
    }
    let kind = kind.trim();
    if kind.eq_ignore_ascii_case("id") {
        Ok(Grantee::user(value))
    } else if kind.eq_ignore_ascii_case("uri") {
        Group::from_uri(value)
            .map(Grantee::Group)
            .ok_or_else(|| invalid_group_uri(value))
    } else if kind.eq_ignore_ascii_case("emailAddress") {
        Err(email_refused(value))
    } else {
        Err(invalid_header(header, item))
    }
}

impl Acl {
    /// The ACL the `x-amz-grant-*` headers describe, owned by `owner`; `None` when there is no
    /// grant header. Only the named grantees get access (the owner's FULL_CONTROL is not added).
    /// More than [`MAX_GRANTS`] grants is `InvalidArgument`.
    pub fn from_grant_headers(headers: &HeaderMap, owner: &Owner) -> Result<Option<Acl>, S3Error> {
        if !has_grant_headers(headers) {
            return Ok(None);
        }
        let mut grants = Vec::new();
        for (header, permission) in GRANT_HEADERS {
            for value in headers.get_all(header) {
                let text = value.to_str().map_err(|_| {
                    invalid_header(header, &String::from_utf8_lossy(value.as_bytes()))
                })?;
                for item in split_outside_quotes(text) {
                    grants.push(Grant::new(parse_grantee(item, header)?, permission));
                    if grants.len() > MAX_GRANTS {
                        return Err(S3Error::new(S3ErrorCode::InvalidArgument)
                            .with_message("An ACL can have at most 100 grants")
                            .with_extra("ArgumentName", header));
                    }
                }
            }
        }
        Ok(Some(Acl {
            owner: owner.clone(),
            grants,
        }))
    }
}

/// The ACL the headers of a write (PutObject, CopyObject, CreateMultipartUpload, CreateBucket)
/// ask for, owned by `owner`; `None` when they ask for none (the caller applies its default).
/// `bucket_owner` is the owner of the object's bucket (`None` when the resource is a bucket).
pub fn acl_from_headers(
    headers: &HeaderMap,
    owner: &Owner,
    bucket_owner: Option<&Owner>,
) -> Result<Option<Acl>, S3Error> {
    let canned = header_str(headers, CANNED_ACL_HEADER);
    match (canned, has_grant_headers(headers)) {
        (Some(_), true) => Err(S3Error::new(S3ErrorCode::InvalidRequest)
            .with_message("Specifying both Canned ACLs and Header Grants is not allowed")),
        (Some(name), false) => Acl::canned(name.trim(), owner, bucket_owner).map(Some),
        (None, _) => Acl::from_grant_headers(headers, owner),
    }
}

/// The new ACL of a PutBucketAcl or PutObjectAcl: from the canned header, the grant headers or
/// the `<AccessControlPolicy>` body (size-capped by the caller), exactly one of them.
///
/// `owner` is the resource's owner; a body naming another owner is `AccessDenied` (S3 does not
/// let an ACL write change ownership). The returned ACL carries `owner` (its display name
/// included), whatever display name the body sent for it.
pub fn acl_from_request(
    headers: &HeaderMap,
    body: &[u8],
    owner: &Owner,
    bucket_owner: Option<&Owner>,
) -> Result<Acl, S3Error> {
    let has_body = !body.trim_ascii().is_empty();
    match (acl_from_headers(headers, owner, bucket_owner)?, has_body) {
        (Some(_), true) => Err(S3Error::new(S3ErrorCode::InvalidRequest)
            .with_message("This request does not support content")),
        (Some(acl), false) => Ok(acl),
        (None, true) => {
            let acl = Acl::from_xml(body)?;
            if acl.owner.id != owner.id {
                return Err(S3Error::new(S3ErrorCode::AccessDenied));
            }
            Ok(Acl {
                owner: owner.clone(),
                grants: acl.grants,
            })
        }
        (None, false) => Err(S3Error::new(S3ErrorCode::MissingSecurityHeader)
            .with_extra("MissingHeaderName", CANNED_ACL_HEADER)),
    }
}
