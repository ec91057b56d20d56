//! AWS Signature Version 2 (HMAC-SHA1): `Authorization: AWS AKID:signature` and presigned
//! `?AWSAccessKeyId=…&Expires=…&Signature=…` — what s3cmd's `signurl` and boto3/aws-cli v1 in
//! us-east-1 produce.
//!
//! String to sign: `METHOD\nContent-MD5\nContent-Type\nDate-or-Expires\n` + the `x-amz-*` headers
//! (`name:value\n`, sorted, repeated values joined by `,`) + the resource: `/bucket` for
//! virtual-hosted requests, the raw path, then the signed sub-resources (`?acl`, `?uploadId=…`,
//! `response-*` …) sorted by name with decoded values.
//!
//! Invariants: the bucket of a virtual-hosted request is not known here, so every prefix of the
//! Host (and the whole Host, for CNAME buckets) is tried, path-style first; clients disagree on
//! whether an empty sub-resource value keeps its `=`, so both forms are tried. All comparisons are
//! constant-time and the number of candidates is bounded.

use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

use super::{decode, header_str, AuthContext, PayloadMode, Request};
use crate::s3::context_keys::SigningScheme;
use crate::s3::error::{S3Error, S3ErrorCode};

/// Query parameters that are part of the SigV2 canonical resource.
const SUB_RESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "delete",
    "encryption",
    "intelligent-tiering",
    "inventory",
    "legal-hold",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "partNumber",
    "policy",
    "policyStatus",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "retention",
    "select",
    "select-type",
    "storageClass",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// Host labels tried as a virtual-hosted bucket name.
const MAX_HOST_LABELS: usize = 8;

pub(super) fn hmac_sha1(key: &[u8], data: &[u8]) -> [u8; 20] {
    let mut mac = match Hmac::<Sha1>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return [0; 20],
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

pub(super) fn authenticate_header(
    request: &Request<'_>,
    credentials: &str,
) -> Result<AuthContext, S3Error> {
    let Some((access_key, signature)) = credentials.trim().split_once(':') else {
        return Err(S3Error::new(S3ErrorCode::InvalidArgument)
            .with_message("AWS authorization header is invalid.  Expected AwsAccessKeyId:signature")
            .with_extra("ArgumentName", "Authorization"));
    };
    let secret = request.secret_of(access_key)?;
    let amz_date = header_str(request.headers, "x-amz-date")?;
    let date = header_str(request.headers, "date")?;
    let at = amz_date
        .or(date)
        .and_then(parse_http_date_lenient)
        .ok_or_else(|| {
            S3Error::new(S3ErrorCode::AccessDenied)
                .with_message("AWS authentication requires a valid Date or x-amz-date header")
        })?;
    request.check_skew(at)?;
    // The Date line is the Date header (empty when absent); clients that only send x-amz-date
    // sign an empty line and carry the date among the x-amz-* headers.
    let mut date_lines = vec![date.unwrap_or("").trim()];
    if !date_lines.contains(&"") && amz_date.is_some() {
        date_lines.push("");
    }
    verify(request, access_key, secret, signature, &date_lines)
}

pub(super) fn authenticate_query(request: &Request<'_>) -> Result<AuthContext, S3Error> {
    let query = request.query;
    let (Some(access_key), Some(signature), Some(expires)) = (
        query.get("AWSAccessKeyId"),
        query.get("Signature"),
        query.get("Expires"),
    ) else {
        return Err(S3Error::new(S3ErrorCode::AccessDenied).with_message(
            "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters",
        ));
    };
    let secret = request.secret_of(&access_key)?;
    let expires_epoch: u64 = expires.trim().parse().map_err(|_| {
        S3Error::new(S3ErrorCode::AccessDenied)
            .with_message("Invalid date (should be seconds since epoch): ".to_owned() + &expires)
    })?;
    let expires_at =
        SystemTime::UNIX_EPOCH + Duration::from_secs(expires_epoch.min(u64::from(u32::MAX) * 4));
    if request.now > expires_at {
        return Err(S3Error::new(S3ErrorCode::AccessDenied)
            .with_message("Request has expired")
            .with_extra("Expires", httpdate::fmt_http_date(expires_at))
            .with_extra("ServerTime", httpdate::fmt_http_date(request.now)));
    }
    verify(request, &access_key, secret, &signature, &[expires.trim()])
}

fn verify(
    request: &Request<'_>,
    access_key: &str,
    secret: &str,
    signature: &str,
    date_lines: &[&str],
) -> Result<AuthContext, S3Error> {
    let provided = BASE64.decode(signature.trim()).unwrap_or_default();
    let content_md5 = header_str(request.headers, "content-md5")?
        .unwrap_or("")
        .trim();
    let content_type = header_str(request.headers, "content-type")?
        .unwrap_or("")
        .trim();
    let amz_headers = canonical_amz_headers(request);
    let resources = canonical_resources(request);
    let mut first_string_to_sign = None;
    for date_line in date_lines {
        for resource in &resources {
            let string_to_sign = format!(
                "{}\n{content_md5}\n{content_type}\n{date_line}\n{amz_headers}{resource}",
                request.method.as_str()
            );
            let expected = hmac_sha1(secret.as_bytes(), string_to_sign.as_bytes());
            if bool::from(expected[..].ct_eq(&provided[..])) {
                return Ok(AuthContext {
                    access_key: access_key.to_owned(),
                    payload: PayloadMode::Unsigned,
                    scheme: SigningScheme::V2Header,
                });
            }
            first_string_to_sign.get_or_insert(string_to_sign);
        }
    }
    Err(S3Error::new(S3ErrorCode::SignatureDoesNotMatch)
        .with_extra("AWSAccessKeyId", access_key)
        .with_extra("StringToSign", first_string_to_sign.unwrap_or_default())
        .with_extra("SignatureProvided", signature))
}

/// `name:value\n` for every `x-amz-*` header, sorted by name.
fn canonical_amz_headers(request: &Request<'_>) -> String {
    let mut names: Vec<&str> = request
        .headers
        .keys()
        .map(http::HeaderName::as_str)
        .filter(|name| name.starts_with("x-amz-"))
        .collect();
    names.sort_unstable();
    let mut block = String::new();
    for name in names {
        let values: Vec<String> = request
            .headers
            .get_all(name)
            .iter()
            .map(|value| String::from_utf8_lossy(value.as_bytes()).trim().to_owned())
            .collect();
        block.push_str(name);
        block.push(':');
        block.push_str(&values.join(","));
        block.push('\n');
    }
    block
}

/// Every canonical resource this request may have been signed with, most likely first.
fn canonical_resources(request: &Request<'_>) -> Vec<String> {
    let path = match request.uri.path() {
        "" => "/",
        path => path,
    };
    // `None` for a name without `=` (`?acl`), so that `?uploads=` can keep its `=`.
    let mut sub_resources: Vec<(String, Option<String>)> = request
        .query
        .pairs
        .iter()
        .map(|(key, value, had_equals)| (decode(key), had_equals.then(|| decode(value))))
        .filter(|(key, _)| SUB_RESOURCES.contains(&key.as_str()))
        .collect();
    sub_resources.sort_by(|a, b| a.0.cmp(&b.0));
    let with_equals = sub_resource_string(&sub_resources, true);
    let without_equals = sub_resource_string(&sub_resources, false);

    let mut prefixes = vec![String::new()];
    prefixes.extend(
        bucket_candidates(request.host())
            .into_iter()
            .map(|bucket| format!("/{bucket}")),
    );
    let mut resources = Vec::new();
    for prefix in prefixes {
        for path in bucket_path_forms(path) {
            for sub in [&with_equals, &without_equals] {
                let resource = format!("{prefix}{path}{sub}");
                if !resources.contains(&resource) {
                    resources.push(resource);
                }
            }
        }
    }
    resources
}

/// The path as sent, and for a path-style bucket request (`/bucket` or `/bucket/`) the other
/// form too: botocore's HmacV1Auth signs bucket-level requests as `/bucket/` while sending
/// `/bucket` (boto3 1.44 CreateBucket, ListObjects, HeadBucket, DeleteObjects), other clients
/// sign exactly what they send.
fn bucket_path_forms(path: &str) -> Vec<String> {
    let mut forms = vec![path.to_owned()];
    let inner = path.strip_prefix('/').unwrap_or("");
    let bucket = inner.strip_suffix('/').unwrap_or(inner);
    if !bucket.is_empty() && !bucket.contains('/') {
        let other = if inner.ends_with('/') {
            format!("/{bucket}")
        } else {
            format!("/{bucket}/")
        };
        forms.push(other);
    }
    forms
}

/// `?a&b=1…`, or empty. `keep_empty_equals` writes an empty value as `k=` rather than `k`.
fn sub_resource_string(
    sub_resources: &[(String, Option<String>)],
    keep_empty_equals: bool,
) -> String {
    let pieces: Vec<String> = sub_resources
        .iter()
        .map(|(key, value)| match value {
            Some(value) if !value.is_empty() || keep_empty_equals => format!("{key}={value}"),
            _ => key.clone(),
        })
        .collect();
    if pieces.is_empty() {
        String::new()
    } else {
        format!("?{}", pieces.join("&"))
    }
}

/// Virtual-hosted bucket names the Host may carry: each dotted prefix, then the whole host.
fn bucket_candidates(host: Option<&str>) -> Vec<String> {
    let Some(host) = host else {
        return Vec::new();
    };
    let host = host.trim().trim_end_matches('.');
    let host = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !name.contains(']') => {
            name
        }
        _ => host,
    };
    if host.is_empty() || host.starts_with('[') || host.parse::<std::net::IpAddr>().is_ok() {
        return Vec::new();
    }
    let mut candidates: Vec<String> = host
        .match_indices('.')
        .take(MAX_HOST_LABELS)
        .map(|(index, _)| host.get(..index).unwrap_or("").to_owned())
        .filter(|bucket| !bucket.is_empty())
        .collect();
    candidates.push(host.to_ascii_lowercase());
    candidates
}

/// RFC 7231 dates, plus the RFC 2822 `+0000` form the AWS examples and some clients use.
pub(crate) fn parse_http_date_lenient(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    if let Ok(at) = httpdate::parse_http_date(text) {
        return Some(at);
    }
    // RFC 2822 §3.3 `-0000` ("UTC, local offset unknown"), what botocore's formatdate writes.
    let normalized;
    let text = match text.strip_suffix("-0000") {
        Some(stem) => {
            normalized = format!("{stem}+0000");
            normalized.as_str()
        }
        None => text,
    };
    let parsed =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc2822).ok()?;
    let seconds = u64::try_from(parsed.unix_timestamp()).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
}
