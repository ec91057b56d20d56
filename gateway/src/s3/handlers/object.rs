//! Object operations: PutObject, GetObject, HeadObject (with `partNumber`), DeleteObject,
//! DeleteObjects.

use std::sync::Arc;

use axum::body::Body;
use http::{HeaderMap, Response, StatusCode};

use super::acl::check_canned_acl;
use super::{empty_response, internal, read_request_document, xml_response, S3Request, S3Result};
use crate::checksum::{Checksum, ChecksumSlot};
use crate::engine::{
    ByteRange, Engine, ObjectInfo, PutObjectRequest, StorageClass, WriteCondition, NULL_VERSION,
};
use crate::s3::endpoint::Query;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::headers::{
    evaluate_preconditions, header_str, http_date, put_header, quote_etag, resolve_range,
    stored_headers, unquote_etag, user_metadata, user_metadata_value, Precondition,
};
use crate::s3::payload::body::{prepare_body, PreparedBody};
use crate::s3::payload::checksum::verify_content_md5;
use crate::s3::sse;
use crate::s3::tagging::{replace_stored_tags, request_tags, stored_tags, TAGGING_HEADER};
use crate::s3::xml::{parse, DeleteXml, XmlWriter};

/// Largest DeleteObjects document we read (1,000 keys of 1 KiB plus markup).
const MAX_DELETE_BODY: usize = 2 * 1024 * 1024;
/// Most keys in one DeleteObjects request (S3's limit).
const MAX_DELETE_KEYS: usize = 1000;

/// What a `versionId` names on a bucket that holds only the `null` version of each key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionIdTarget {
    /// `null`: the one version.
    Null,
    /// A well-formed id of a version that cannot exist here.
    Absent,
}

/// Classifies a `versionId` value: `null`, a well-formed but absent id, or (empty, too long,
/// characters no version id has) 400 `InvalidArgument`, as S3 answers "Invalid version id
/// specified".
pub fn classify_version_id(value: &str) -> Result<VersionIdTarget, S3Error> {
    if value == NULL_VERSION {
        return Ok(VersionIdTarget::Null);
    }
    let well_formed = (1..=1024).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=._-".contains(&b));
    if well_formed {
        Ok(VersionIdTarget::Absent)
    } else {
        let error = S3Error::new(S3ErrorCode::InvalidArgument)
            .with_message("Invalid version id specified")
            .with_extra("ArgumentName", "versionId");
        // Echoed only when XML 1.0 can carry it (a NUL cannot even be escaped).
        if value.chars().all(|c| !c.is_control()) {
            Err(error.with_extra("ArgumentValue", value))
        } else {
            Err(error)
        }
    }
}

/// The `versionId` gate of every single-object call that addresses an existing version
/// (GET, HEAD, DELETE, tagging, ACL, attributes), decided once in dispatch so that no handler
/// can ignore it: `Ok(None)` lets the call through (no `versionId`, or `null`); a well-formed
/// other id is 404 `NoSuchVersion` — except DeleteObject, which S3 answers 204 without
/// touching anything (the key's live `null` version must never be deleted by it).
pub async fn version_id_gate(
    engine: &Engine,
    query: &Query,
    bucket: &str,
    key: &str,
    is_delete: bool,
) -> Result<Option<S3Result>, S3Error> {
    if !query.has("versionId") {
        return Ok(None);
    }
    let value = query.get("versionId").unwrap_or("");
    if classify_version_id(value)? == VersionIdTarget::Null {
        return Ok(None);
    }
    engine.bucket(bucket).await?;
    if is_delete {
        return Ok(Some(empty_response(StatusCode::NO_CONTENT)));
    }
    Err(S3Error::new(S3ErrorCode::NoSuchVersion)
        .with_resource(format!("/{bucket}/{key}"))
        .with_extra("Key", key)
        .with_extra("VersionId", value))
}

/// Storage class of a request: only STANDARD exists here.
pub fn storage_class(headers: &HeaderMap) -> Result<StorageClass, S3Error> {
    match header_str(headers, "x-amz-storage-class") {
        None => Ok(StorageClass::Standard),
        Some(c) => StorageClass::from_name(&c).ok_or_else(|| {
            S3Error::new(S3ErrorCode::InvalidStorageClass)
                .with_message(format!("The storage class {c} is not supported"))
        }),
    }
}

/// Where the body leaves the checksum it verified, when the client asked for one.
pub fn checksum_slot(prepared: &PreparedBody) -> Option<ChecksumSlot> {
    prepared.checksum_algorithm?;
    Some(prepared.checksum.clone())
}

/// Adds `x-amz-checksum-<alg>` and its type for an object's checksum.
pub fn put_checksum_headers(headers: &mut HeaderMap, checksum: &Checksum) {
    put_header(headers, checksum.algorithm.header_name(), &checksum.value);
    put_header(headers, "x-amz-checksum-type", checksum.kind.name());
}

/// The write condition of a PUT or Complete (`If-None-Match: *`, `If-Match: "etag"`).
pub fn write_condition(headers: &HeaderMap) -> Result<WriteCondition, S3Error> {
    if let Some(v) = header_str(headers, "if-none-match") {
        if v.trim() != "*" {
            return Err(S3Error::new(S3ErrorCode::NotImplemented)
                .with_message("If-None-Match on writes only supports *"));
        }
        return Ok(WriteCondition::IfNoneMatchAny);
    }
    if let Some(v) = header_str(headers, "if-match") {
        return Ok(WriteCondition::IfMatch(unquote_etag(&v)));
    }
    Ok(WriteCondition::None)
}

/// The stored headers of a new object: the standard ones plus its `x-amz-tagging` tag set.
pub fn new_object_headers(headers: &HeaderMap) -> Result<Vec<(String, String)>, S3Error> {
    let mut stored = stored_headers(headers);
    if let Some(tags) = request_tags(headers)? {
        replace_stored_tags(&mut stored, &tags);
    }
    Ok(stored)
}

pub async fn handle_put_object(req: S3Request, bucket: &str, key: &str) -> S3Result {
    check_canned_acl(&req.headers)?;
    let expected_md5 = verify_content_md5(&req.headers)?;
    let condition = write_condition(&req.headers)?;
    let headers = new_object_headers(&req.headers)?;
    let encryption = sse::write_request(&req.headers, req.customer_keys_allowed)?;
    let prepared = prepare_body(req.body, &req.headers, &req.auth)?;
    let length = prepared
        .content_length
        .ok_or_else(|| S3Error::new(S3ErrorCode::MissingContentLength))?;
    let bucket = req.engine.bucket(bucket).await?;
    let request = PutObjectRequest {
        key: key.to_string(),
        length,
        content_type: header_str(&req.headers, "content-type"),
        headers,
        user_metadata: user_metadata(&req.headers)?,
        storage_class: storage_class(&req.headers)?,
        expected_md5,
        checksum: checksum_slot(&prepared),
        condition,
        encryption,
    };
    let object = req
        .engine
        .put_object(&bucket, request, prepared.stream)
        .await?;
    let mut response = empty_response(StatusCode::OK)?;
    let headers = response.headers_mut();
    put_header(headers, "etag", &quote_etag(object.etag()));
    if let Some(checksum) = &object.checksum() {
        put_checksum_headers(headers, checksum);
    }
    sse::put_response_headers(headers, object.encryption().as_ref());
    Ok(response)
}

/// Headers common to GET and HEAD of a version.
fn object_headers(headers: &mut HeaderMap, version: &ObjectInfo) {
    put_header(headers, "etag", &quote_etag(version.etag()));
    put_header(headers, "last-modified", &http_date(version.mtime_ms()));
    put_header(headers, "accept-ranges", "bytes");
    put_header(
        headers,
        "content-type",
        version.content_type().unwrap_or("binary/octet-stream"),
    );
    for (name, value) in version.headers() {
        if name != TAGGING_HEADER {
            put_header(headers, name, value);
        }
    }
    let tags = stored_tags(version.headers());
    if !tags.is_empty() {
        put_header(headers, "x-amz-tagging-count", &tags.len().to_string());
    }
    for (name, value) in version.user_metadata() {
        put_header(
            headers,
            &format!("x-amz-meta-{name}"),
            &user_metadata_value(value),
        );
    }
    let class = version.storage_class();
    if class != StorageClass::Standard {
        put_header(headers, "x-amz-storage-class", class.name());
    }
}

/// The byte range of `partNumber` (1-based). A single-PUT object is one part.
fn part_range(query_value: &str, version: &ObjectInfo) -> Result<ByteRange, S3Error> {
    let number = query_value
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=crate::engine::MAX_PART_NUMBER).contains(n))
        .ok_or_else(|| {
            S3Error::new(S3ErrorCode::InvalidArgument)
                .with_message("Part number must be an integer between 1 and 10000, inclusive")
                .with_extra("ArgumentName", "partNumber")
                .with_extra("ArgumentValue", query_value)
        })?;
    let mut start = 0u64;
    for part in version.parts() {
        if part.part_number == number {
            return Ok(ByteRange {
                start,
                end: start + part.size,
            });
        }
        start += part.size;
    }
    Err(S3Error::new(S3ErrorCode::InvalidPartNumber))
}

/// `response-*` query overrides of GetObject.
const RESPONSE_OVERRIDES: &[(&str, &str)] = &[
    ("response-content-type", "content-type"),
    ("response-content-language", "content-language"),
    ("response-expires", "expires"),
    ("response-cache-control", "cache-control"),
    ("response-content-disposition", "content-disposition"),
    ("response-content-encoding", "content-encoding"),
];

/// Shared by GET and HEAD: preconditions, range, headers; GET also streams the body.
async fn read_object(req: S3Request, bucket: &str, key: &str, with_body: bool) -> S3Result {
    let resource = format!("/{bucket}/{key}");
    let version = req
        .engine
        .head_object(bucket, key)
        .await
        .map_err(|e| S3Error::from(e).with_extra("Key", key))?;
    let customer = sse::customer_key(&req.headers, sse::CUSTOMER, req.customer_keys_allowed)?;
    req.engine.check_read_key(&version, customer.as_ref())?;
    match evaluate_preconditions(&req.headers, &version) {
        Precondition::Proceed => {}
        Precondition::Failed => {
            return Err(S3Error::new(S3ErrorCode::PreconditionFailed).with_resource(resource))
        }
        Precondition::NotModified => {
            let mut response = empty_response(StatusCode::NOT_MODIFIED)?;
            put_header(response.headers_mut(), "etag", &quote_etag(version.etag()));
            put_header(
                response.headers_mut(),
                "last-modified",
                &http_date(version.mtime_ms()),
            );
            return Ok(response);
        }
    }
    let range_header = header_str(&req.headers, "range");
    let mut headers = HeaderMap::new();
    object_headers(&mut headers, &version);
    sse::put_response_headers(&mut headers, version.encryption().as_ref());
    let range = match req.query.get("partNumber") {
        Some(_) if range_header.is_some() => {
            return Err(S3Error::new(S3ErrorCode::InvalidRequest)
                .with_message("Cannot specify both Range header and partNumber query parameter"))
        }
        Some(number) => {
            let range = part_range(number, &version)?;
            if version.is_multipart() {
                put_header(
                    &mut headers,
                    "x-amz-mp-parts-count",
                    &version.parts_count().to_string(),
                );
            }
            // A 0-byte object has no range to send: a plain 200.
            Some(range).filter(|r| r.end > r.start)
        }
        None => resolve_range(range_header.as_deref(), version.size())
            .map_err(|e| e.with_resource(resource.clone()))?,
    };
    let checksum_mode = header_str(&req.headers, "x-amz-checksum-mode")
        .is_some_and(|m| m.eq_ignore_ascii_case("ENABLED"));
    if checksum_mode && range.is_none() {
        if let Some(checksum) = &version.checksum() {
            put_checksum_headers(&mut headers, checksum);
        }
    }
    if with_body {
        for (param, header) in RESPONSE_OVERRIDES {
            if let Some(value) = req.query.get(param) {
                put_header(&mut headers, header, value);
            }
        }
    }
    let size = version.size();
    let (status, byte_range) = match range {
        Some(r) => {
            put_header(
                &mut headers,
                "content-range",
                &format!("bytes {}-{}/{}", r.start, r.end.saturating_sub(1), size),
            );
            (StatusCode::PARTIAL_CONTENT, r)
        }
        None => (
            StatusCode::OK,
            ByteRange {
                start: 0,
                end: size,
            },
        ),
    };
    put_header(
        &mut headers,
        "content-length",
        &(byte_range.end - byte_range.start).to_string(),
    );
    let body = if with_body {
        let read = req
            .engine
            .open_object(version, byte_range, customer.as_ref())
            .await?;
        Body::from_stream(read.body)
    } else {
        Body::empty()
    };
    let mut response = Response::builder()
        .status(status)
        .body(body)
        .map_err(|e| internal(&e))?;
    *response.headers_mut() = headers;
    Ok(response)
}

pub async fn handle_get_object(req: S3Request, bucket: &str, key: &str) -> S3Result {
    read_object(req, bucket, key, true).await
}

pub async fn handle_head_object(req: S3Request, bucket: &str, key: &str) -> S3Result {
    read_object(req, bucket, key, false).await
}

/// The condition of a DeleteObject: `If-Match: "etag"` or `If-Match: *` (the key must exist),
/// as S3's conditional deletes. `If-None-Match` has no meaning on a delete and S3 defines none:
/// refused rather than ignored.
fn delete_condition(headers: &HeaderMap) -> Result<WriteCondition, S3Error> {
    if header_str(headers, "if-none-match").is_some() {
        return Err(S3Error::new(S3ErrorCode::NotImplemented)
            .with_message("If-None-Match is not supported on DeleteObject; use If-Match"));
    }
    Ok(match header_str(headers, "if-match") {
        Some(v) => WriteCondition::IfMatch(unquote_etag(&v)),
        None => WriteCondition::None,
    })
}

pub async fn handle_delete_object(req: S3Request, bucket: &str, key: &str) -> S3Result {
    let condition = delete_condition(&req.headers)?;
    let bucket = req.engine.bucket(bucket).await?;
    req.engine
        .delete_object_if(&bucket, key, condition)
        .await
        .map_err(|e| {
            let e = S3Error::from(e);
            match e.code {
                S3ErrorCode::NoSuchKey => e.with_extra("Key", key),
                _ => e,
            }
        })?;
    empty_response(StatusCode::NO_CONTENT)
}

pub async fn handle_delete_objects(req: S3Request, bucket: &str) -> S3Result {
    let engine = Arc::clone(&req.engine);
    let req_access = Arc::clone(&req.access);
    let body = read_request_document(req.body, &req.headers, &req.auth, MAX_DELETE_BODY).await?;
    let request: DeleteXml = parse(&body)?;
    if request.objects.is_empty() || request.objects.len() > MAX_DELETE_KEYS {
        return Err(S3Error::new(S3ErrorCode::MalformedXML));
    }
    let resolved = engine.bucket(bucket).await?;
    let mut w = XmlWriter::new("DeleteResult");
    for object in &request.objects {
        // Unversioned buckets hold only the `null` version: any other well-formed id is
        // reported deleted without touching the key, a malformed (or empty) one is an error.
        let target = match object.version_id.as_deref() {
            None => Ok(VersionIdTarget::Null),
            Some(value) => classify_version_id(value),
        };
        // The deferred per-key check of DeleteObjects (access.rs): each key is its own decision.
        let permission = crate::s3::access::Permission {
            action: if object.version_id.is_some() {
                "s3:DeleteObjectVersion"
            } else {
                "s3:DeleteObject"
            },
            resource: crate::s3::access::object_arn(bucket, &object.key),
        };
        let target = target.and_then(|target| {
            req_access.require(&permission, Some(bucket))?;
            Ok(target)
        });
        let result = match target {
            Ok(VersionIdTarget::Null) => engine
                .delete_object_if(
                    &resolved,
                    &object.key,
                    match &object.etag {
                        Some(etag) => WriteCondition::IfMatch(unquote_etag(etag)),
                        None => WriteCondition::None,
                    },
                )
                .await
                .map_err(|e| S3Error::from(e).with_resource(format!("/{bucket}/{}", object.key))),
            Ok(VersionIdTarget::Absent) => Ok(()),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                if !request.quiet {
                    w.open("Deleted").text("Key", &object.key);
                    w.optional("VersionId", object.version_id.as_deref());
                    w.close("Deleted");
                }
            }
            Err(error) => {
                w.open("Error")
                    .text("Key", &object.key)
                    .text("Code", error.code.as_str())
                    .text("Message", &error.message)
                    .close("Error");
            }
        }
    }
    xml_response(w.finish("DeleteResult"))
}
