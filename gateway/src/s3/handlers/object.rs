//! Object operations: PutObject, CopyObject, GetObject, HeadObject, DeleteObject, DeleteObjects.

use std::sync::Arc;

use axum::body::Body;
use http::{HeaderMap, Response, StatusCode};
use percent_encoding::percent_decode_str;

use super::{
    empty_response, engine_error, internal, read_small_body, xml_response, S3Request, S3Result,
};
use crate::engine::{
    ByteRange, ChecksumSource, PutObjectRequest, StoredChecksum, VersionRecord, WriteCondition,
};
use crate::s3::body::{prepare_body, PreparedBody};
use crate::s3::checksum::{verify_content_md5, ChecksumAlgorithm};
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::headers::{
    evaluate_preconditions, header_str, http_date, put_header, quote_etag, resolve_range,
    stored_headers, unquote_etag, user_metadata, Precondition,
};
use crate::s3::xml::{iso8601, parse, DeleteXml, XmlWriter};

/// Largest DeleteObjects document we read (1,000 keys of 1 KiB plus markup).
const MAX_DELETE_BODY: usize = 2 * 1024 * 1024;
/// Most keys in one DeleteObjects request (S3's limit).
const MAX_DELETE_KEYS: usize = 1000;

/// Storage class of a request: only STANDARD exists here.
pub fn storage_class(headers: &HeaderMap) -> Result<String, S3Error> {
    match header_str(headers, "x-amz-storage-class") {
        None => Ok("STANDARD".to_string()),
        Some(c) if c == "STANDARD" => Ok(c),
        Some(c) => Err(S3Error::new(S3ErrorCode::InvalidStorageClass)
            .with_message(format!("The storage class {c} is not supported"))),
    }
}

/// Turns the checksum the body verified into what the engine stores.
pub fn checksum_source(prepared: &PreparedBody) -> Option<ChecksumSource> {
    prepared.checksum_algorithm?;
    let slot = prepared.checksum.clone();
    Some(Box::new(move || {
        slot.get().map(|(algorithm, value)| StoredChecksum {
            algorithm: algorithm.name().to_string(),
            value: value.clone(),
            kind: "FULL_OBJECT".to_string(),
        })
    }))
}

/// Adds `x-amz-checksum-<alg>` (and its type) for a stored checksum.
pub fn put_checksum_headers(headers: &mut HeaderMap, checksum: &StoredChecksum) {
    if let Some(algorithm) = ChecksumAlgorithm::from_name(&checksum.algorithm) {
        put_header(headers, algorithm.header_name(), &checksum.value);
        put_header(headers, "x-amz-checksum-type", &checksum.kind);
    }
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

pub async fn handle_put_object(req: S3Request, bucket: &str, key: &str) -> S3Result {
    let resource = format!("/{bucket}/{key}");
    let expected_md5 = verify_content_md5(&req.headers)?;
    let condition = write_condition(&req.headers)?;
    let prepared = prepare_body(req.body, &req.headers, &req.auth)?;
    let length = prepared
        .content_length
        .ok_or_else(|| S3Error::new(S3ErrorCode::MissingContentLength))?;
    let request = PutObjectRequest {
        bucket: bucket.to_string(),
        key: key.to_string(),
        length,
        content_type: header_str(&req.headers, "content-type"),
        headers: stored_headers(&req.headers),
        user_metadata: user_metadata(&req.headers)?,
        storage_class: storage_class(&req.headers)?,
        expected_md5,
        checksum: checksum_source(&prepared),
        condition,
    };
    let outcome = req
        .engine
        .put_object(request, prepared.stream)
        .await
        .map_err(|e| engine_error(e, &resource))?;
    let mut response = empty_response(StatusCode::OK)?;
    let headers = response.headers_mut();
    put_header(headers, "etag", &quote_etag(&outcome.version.etag));
    if let Some(checksum) = &outcome.version.checksum {
        put_checksum_headers(headers, checksum);
    }
    Ok(response)
}

/// Parses `x-amz-copy-source` (`[/]bucket/key[?versionId=…]`, URL-encoded).
fn copy_source(headers: &HeaderMap) -> Result<(String, String), S3Error> {
    let invalid = || {
        S3Error::new(S3ErrorCode::InvalidArgument).with_message(
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
        )
    };
    let raw = header_str(headers, "x-amz-copy-source").ok_or_else(invalid)?;
    let (path, version) = raw.split_once('?').unwrap_or((&raw, ""));
    if !version.is_empty() && version != "versionId=null" {
        return Err(S3Error::new(S3ErrorCode::NoSuchVersion));
    }
    let decoded = percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| invalid())?
        .into_owned();
    let trimmed = decoded.strip_prefix('/').unwrap_or(&decoded);
    let (bucket, key) = trimmed.split_once('/').ok_or_else(invalid)?;
    if bucket.is_empty() || key.is_empty() {
        return Err(invalid());
    }
    Ok((bucket.to_string(), key.to_string()))
}

pub async fn handle_copy_object(req: S3Request, bucket: &str, key: &str) -> S3Result {
    let resource = format!("/{bucket}/{key}");
    let (src_bucket, src_key) = copy_source(&req.headers)?;
    let source = req
        .engine
        .head_object(&src_bucket, &src_key)
        .await
        .map_err(|e| engine_error(e, &format!("/{src_bucket}/{src_key}")))?;
    check_copy_source_conditions(&req.headers, &source)?;
    let replace = match header_str(&req.headers, "x-amz-metadata-directive").as_deref() {
        None | Some("COPY") => false,
        Some("REPLACE") => true,
        Some(_) => {
            return Err(S3Error::new(S3ErrorCode::InvalidArgument)
                .with_message("Unknown metadata directive."))
        }
    };
    if !replace && src_bucket == bucket && src_key == key {
        return Err(S3Error::new(S3ErrorCode::InvalidRequest).with_message(
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
        ));
    }
    let (content_type, headers, metadata) = if replace {
        (
            header_str(&req.headers, "content-type"),
            stored_headers(&req.headers),
            user_metadata(&req.headers)?,
        )
    } else {
        (
            source.content_type.clone(),
            source.headers.clone(),
            source.user_metadata.clone(),
        )
    };
    let size = source.size;
    let source_checksum = source.checksum.clone();
    let read = req
        .engine
        .open_object(
            source,
            ByteRange {
                start: 0,
                end: size,
            },
        )
        .await
        .map_err(|e| engine_error(e, &resource))?;
    let request = PutObjectRequest {
        bucket: bucket.to_string(),
        key: key.to_string(),
        length: size,
        content_type,
        headers,
        user_metadata: metadata,
        storage_class: storage_class(&req.headers)?,
        expected_md5: None,
        // Whole-object checksums stay valid for a byte-identical copy.
        checksum: source_checksum
            .filter(|c| c.kind == "FULL_OBJECT")
            .map(|c| Box::new(move || Some(c)) as ChecksumSource),
        condition: write_condition(&req.headers)?,
    };
    let outcome = req
        .engine
        .put_object(request, read.body)
        .await
        .map_err(|e| engine_error(e, &resource))?;
    let mut w = XmlWriter::new("CopyObjectResult");
    w.text("LastModified", &iso8601(outcome.version.mtime_ms))
        .text("ETag", &quote_etag(&outcome.version.etag));
    xml_response(w.finish("CopyObjectResult"))
}

fn check_copy_source_conditions(
    headers: &HeaderMap,
    source: &VersionRecord,
) -> Result<(), S3Error> {
    let mut mapped = HeaderMap::new();
    for (from, to) in [
        ("x-amz-copy-source-if-match", "if-match"),
        ("x-amz-copy-source-if-none-match", "if-none-match"),
        ("x-amz-copy-source-if-modified-since", "if-modified-since"),
        (
            "x-amz-copy-source-if-unmodified-since",
            "if-unmodified-since",
        ),
    ] {
        if let Some(v) = headers.get(from) {
            mapped.insert(to, v.clone());
        }
    }
    match evaluate_preconditions(&mapped, source) {
        Precondition::Proceed => Ok(()),
        _ => Err(S3Error::new(S3ErrorCode::PreconditionFailed)),
    }
}

/// Headers common to GET and HEAD of a version.
fn object_headers(headers: &mut HeaderMap, version: &VersionRecord) {
    put_header(headers, "etag", &quote_etag(&version.etag));
    put_header(headers, "last-modified", &http_date(version.mtime_ms));
    put_header(headers, "accept-ranges", "bytes");
    put_header(
        headers,
        "content-type",
        version
            .content_type
            .as_deref()
            .unwrap_or("binary/octet-stream"),
    );
    for (name, value) in &version.headers {
        put_header(headers, name, value);
    }
    for (name, value) in &version.user_metadata {
        put_header(headers, &format!("x-amz-meta-{name}"), value);
    }
    if version.storage_class != "STANDARD" {
        put_header(headers, "x-amz-storage-class", &version.storage_class);
    }
    if version.parts.len() > 1 {
        put_header(
            headers,
            "x-amz-mp-parts-count",
            &version.parts.len().to_string(),
        );
    }
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
        .map_err(|e| engine_error(e, &resource).with_extra("Key", key))?;
    match evaluate_preconditions(&req.headers, &version) {
        Precondition::Proceed => {}
        Precondition::Failed => {
            return Err(S3Error::new(S3ErrorCode::PreconditionFailed).with_resource(resource))
        }
        Precondition::NotModified => {
            let mut response = empty_response(StatusCode::NOT_MODIFIED)?;
            put_header(response.headers_mut(), "etag", &quote_etag(&version.etag));
            put_header(
                response.headers_mut(),
                "last-modified",
                &http_date(version.mtime_ms),
            );
            return Ok(response);
        }
    }
    let range = resolve_range(header_str(&req.headers, "range").as_deref(), version.size)
        .map_err(|e| e.with_resource(resource.clone()))?;
    let mut headers = HeaderMap::new();
    object_headers(&mut headers, &version);
    let checksum_mode = header_str(&req.headers, "x-amz-checksum-mode")
        .is_some_and(|m| m.eq_ignore_ascii_case("ENABLED"));
    if checksum_mode && range.is_none() {
        if let Some(checksum) = &version.checksum {
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
    let size = version.size;
    let (status, byte_range) = match range {
        Some(r) => {
            put_header(
                &mut headers,
                "content-range",
                &format!("bytes {}-{}/{}", r.start, r.end - 1, size),
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
            .open_object(version, byte_range)
            .await
            .map_err(|e| engine_error(e, &resource))?;
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

pub async fn handle_delete_object(req: S3Request, bucket: &str, key: &str) -> S3Result {
    req.engine
        .delete_object(bucket, key)
        .await
        .map_err(|e| engine_error(e, &format!("/{bucket}/{key}")))?;
    empty_response(StatusCode::NO_CONTENT)
}

pub async fn handle_delete_objects(req: S3Request, bucket: &str) -> S3Result {
    let expected_md5 = verify_content_md5(&req.headers)?;
    let engine = Arc::clone(&req.engine);
    let prepared = prepare_body(req.body, &req.headers, &req.auth)?;
    let body = read_small_body(prepared, MAX_DELETE_BODY).await?;
    if let Some(expected) = expected_md5 {
        use md5::Digest;
        let actual: [u8; 16] = md5::Md5::digest(&body).into();
        if actual != expected {
            return Err(S3Error::new(S3ErrorCode::BadDigest));
        }
    }
    let request: DeleteXml = parse(&body)?;
    if request.objects.is_empty() || request.objects.len() > MAX_DELETE_KEYS {
        return Err(S3Error::new(S3ErrorCode::MalformedXML));
    }
    engine
        .head_bucket(bucket)
        .await
        .map_err(|e| engine_error(e, &format!("/{bucket}")))?;
    let mut w = XmlWriter::new("DeleteResult");
    for object in &request.objects {
        match engine.delete_object(bucket, &object.key).await {
            Ok(()) => {
                if !request.quiet {
                    w.open("Deleted").text("Key", &object.key);
                    w.optional("VersionId", object.version_id.as_deref());
                    w.close("Deleted");
                }
            }
            Err(e) => {
                let error = engine_error(e, &format!("/{bucket}/{}", object.key));
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
