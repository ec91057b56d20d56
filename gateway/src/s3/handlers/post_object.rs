//! PostObject: browser-based uploads (`POST /{bucket}` with a multipart/form-data body), as
//! boto3's `generate_presigned_post` and HTML forms produce them.
//!
//! The form is parsed as a stream (multer). Fields before `file` are read with a size cap each
//! and a cap on their number; when `file` arrives, the policy signature (V4 or V2) and every
//! policy condition are checked before a byte of the file is accepted. Fields after `file`
//! are ignored, as S3 does. The engine needs an object's exact length before it writes, which
//! a form does not declare, so the file is spooled: in memory up to [`MEMORY_SPOOL`], then in
//! an anonymous temporary file, never beyond the policy's `content-length-range` maximum or
//! S3's 5 GiB object limit.

use std::time::SystemTime;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::acl::check_canned_acl;
use super::object::storage_class;
use super::{empty_response, internal, S3Result};
use crate::checksum::{ChecksumAlgorithm, ChecksumHasher, ChecksumSlot};
use crate::engine::{BodyError, BodyStream, PutObjectRequest, WriteCondition, MAX_PART_SIZE};
use crate::s3::auth::{verify_post_signature, PostSignature};
use crate::s3::authorize::Caller;
use crate::s3::context_keys::SigningScheme;
use crate::s3::endpoint::MAX_KEY_LEN;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::headers::{quote_etag, stored_headers, user_metadata};
use crate::s3::payload::checksum::validate_checksum_value;
use crate::s3::post_policy::parse_policy;
use crate::s3::state::S3Service;
use crate::s3::tagging::{parse_tagging_xml, replace_stored_tags};
use crate::s3::xml::XmlWriter;

/// Largest single form field before the file.
const MAX_FIELD_BYTES: usize = 20 * 1024;
/// Most form fields before the file.
const MAX_FIELDS: usize = 64;
/// File bytes kept in memory before spooling to a temporary file.
const MEMORY_SPOOL: usize = 8 * 1024 * 1024;
/// Read size when streaming a spooled file back.
const SPOOL_READ: usize = 1024 * 1024;

/// Path characters left literal in the `Location` URL.
const LOCATION_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// True for a POST whose body is a form: routed to PostObject before header authentication.
pub fn is_form_upload(method: &Method, headers: &HeaderMap) -> bool {
    *method == Method::POST
        && headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("multipart/form-data")
            })
}

fn malformed(message: &str) -> S3Error {
    S3Error::new(S3ErrorCode::MalformedPOSTRequest).with_message(message.to_string())
}

fn form_error(e: multer::Error) -> S3Error {
    malformed(&format!(
        "The body of your POST request is not well-formed multipart/form-data: {e}"
    ))
}

/// The file, held until its length is known.
enum Spool {
    Memory(Vec<Bytes>),
    File(tokio::fs::File),
}

/// Reads the file field into a spool, enforcing `max` bytes.
async fn spool_file(
    field: &mut multer::Field<'static>,
    max: u64,
    mut hasher: Option<&mut ChecksumHasher>,
) -> Result<(Spool, u64), S3Error> {
    let mut spool = Spool::Memory(Vec::new());
    let mut size: u64 = 0;
    while let Some(chunk) = field.chunk().await.map_err(form_error)? {
        if let Some(hasher) = hasher.as_deref_mut() {
            hasher.update(&chunk);
        }
        size += chunk.len() as u64;
        if size > max {
            return Err(S3Error::new(S3ErrorCode::EntityTooLarge)
                .with_message("Your proposed upload exceeds the maximum allowed size")
                .with_extra("MaxSizeAllowed", max.to_string()));
        }
        spool = match spool {
            Spool::Memory(mut chunks) if size <= MEMORY_SPOOL as u64 => {
                chunks.push(chunk);
                Spool::Memory(chunks)
            }
            Spool::Memory(chunks) => {
                let file = tempfile::tempfile().map_err(|e| internal(&e))?;
                let mut file = tokio::fs::File::from_std(file);
                for c in chunks.iter().chain(std::iter::once(&chunk)) {
                    file.write_all(c).await.map_err(|e| internal(&e))?;
                }
                Spool::File(file)
            }
            Spool::File(mut file) => {
                file.write_all(&chunk).await.map_err(|e| internal(&e))?;
                Spool::File(file)
            }
        };
    }
    Ok((spool, size))
}

/// The spooled bytes as a body stream.
async fn spool_stream(spool: Spool) -> Result<BodyStream, S3Error> {
    match spool {
        Spool::Memory(chunks) => Ok(Box::pin(futures::stream::iter(
            chunks.into_iter().map(Ok::<Bytes, BodyError>),
        ))),
        Spool::File(mut file) => {
            file.flush().await.map_err(|e| internal(&e))?;
            file.rewind().await.map_err(|e| internal(&e))?;
            Ok(Box::pin(futures::stream::unfold(
                file,
                |mut file| async move {
                    let mut buffer = vec![0u8; SPOOL_READ];
                    match file.read(&mut buffer).await {
                        Ok(0) => None,
                        Ok(n) => {
                            buffer.truncate(n);
                            Some((Ok(Bytes::from(buffer)), file))
                        }
                        Err(e) => Some((Err(Box::new(e) as BodyError), file)),
                    }
                },
            )))
        }
    }
}

/// Form fields (lowercase names) as request-like headers, for the shared header rules.
fn fields_as_headers(fields: &[(String, String)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in fields {
        let header = if name == "acl" {
            "x-amz-acl"
        } else {
            name.as_str()
        };
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(header.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(n, v);
        }
    }
    headers
}

/// The signature fields of a form (lowercase names), as the policy check reads them.
pub fn post_signature<'a>(policy: &'a str, fields: &'a [(String, String)]) -> PostSignature<'a> {
    PostSignature {
        policy,
        algorithm: field(fields, "x-amz-algorithm"),
        credential: field(fields, "x-amz-credential"),
        date: field(fields, "x-amz-date"),
        v4_signature: field(fields, "x-amz-signature"),
        access_key_id: field(fields, "awsaccesskeyid"),
        v2_signature: field(fields, "signature"),
    }
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Reads the form up to its `file` part: the fields before it (lowercase names, each at most
/// [`MAX_FIELD_BYTES`] of UTF-8, at most [`MAX_FIELDS`] of them) and the file part itself,
/// `None` when the form has none.
pub async fn read_form_fields(
    form: &mut multer::Multipart<'static>,
) -> Result<(Vec<(String, String)>, Option<multer::Field<'static>>), S3Error> {
    let mut fields: Vec<(String, String)> = Vec::new();
    while let Some(mut part) = form.next_field().await.map_err(form_error)? {
        let name = part.name().unwrap_or("").to_ascii_lowercase();
        if name == "file" {
            return Ok((fields, Some(part)));
        }
        if fields.len() >= MAX_FIELDS {
            return Err(malformed("Too many form fields before the file."));
        }
        let mut value = Vec::new();
        while let Some(chunk) = part.chunk().await.map_err(form_error)? {
            if value.len() + chunk.len() > MAX_FIELD_BYTES {
                return Err(S3Error::new(S3ErrorCode::MaxMessageLengthExceeded)
                    .with_message(format!("The form field {name} is too large.")));
            }
            value.extend_from_slice(&chunk);
        }
        let value = String::from_utf8(value)
            .map_err(|_| malformed(&format!("The form field {name} is not valid UTF-8.")))?;
        fields.push((name, value));
    }
    Ok((fields, None))
}

pub async fn handle_post_object(
    service: &S3Service,
    parts: http::request::Parts,
    body: Body,
    bucket: &str,
) -> S3Result {
    let content_type = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let boundary = multer::parse_boundary(content_type).map_err(form_error)?;
    let mut form = multer::Multipart::new(body.into_data_stream(), boundary);
    let (fields, file) = read_form_fields(&mut form).await?;
    let mut file =
        file.ok_or_else(|| S3Error::new(S3ErrorCode::IncorrectNumberOfFilesInPostRequest))?;
    let raw_key = field(&fields, "key").ok_or_else(|| {
        S3Error::new(S3ErrorCode::InvalidArgument)
            .with_message("Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields.")
            .with_extra("ArgumentName", "key")
    })?;
    // A form without a policy is unsigned: the anonymous caller, allowed only where a bucket
    // policy lets everyone write.
    let directory = service
        .identity
        .current()
        .await
        .map_err(|e| S3Error::new(S3ErrorCode::ServiceUnavailable).with_source(e))?;
    let filename = file.file_name().unwrap_or("").to_string();
    // `${filename}` is replaced before the policy sees the key, so a `starts-with $key`
    // condition constrains the key that will actually be written (as S3 does).
    let key = raw_key.replace("${filename}", &filename);
    let (caller, scheme, length_range) = match field(&fields, "policy") {
        None => (Caller::anonymous(), SigningScheme::Unsigned, None),
        Some(policy_text) => {
            let access_key = verify_post_signature(
                &post_signature(policy_text, &fields),
                &directory.keyring,
                &service.auth,
            )?;
            let policy = parse_policy(policy_text)?;
            let checked: Vec<(String, String)> = fields
                .iter()
                .map(|(name, value)| match name.as_str() {
                    "key" => (name.clone(), key.clone()),
                    _ => (name.clone(), value.clone()),
                })
                .collect();
            policy.check(SystemTime::now(), &checked, bucket)?;
            let user = directory
                .user_of_key(&access_key)
                .ok_or_else(|| S3Error::new(S3ErrorCode::InvalidAccessKeyId))?;
            let caller = Caller {
                user: Some(user),
                session_policy: None,
                access_key,
            };
            (
                caller,
                SigningScheme::PostPolicy,
                policy.content_length_range(),
            )
        }
    };
    let query = crate::s3::endpoint::Query::parse(None);
    let access = service.access(&parts, &query, scheme, caller, directory);
    let form_headers = fields_as_headers(&fields);
    let traits = crate::s3::authorize::request_traits(&form_headers, &[]);
    // The form's key is known only now: the deferred `s3:PutObject` check (access.rs).
    access.require_endpoint(
        &crate::s3::endpoint::Endpoint::PutObject {
            bucket: bucket.to_string(),
            key: key.clone(),
        },
        traits,
    )?;
    // An `x-amz-checksum-<algorithm>` field is the expected checksum of the file.
    let mut stated_checksum = None;
    for algorithm in ChecksumAlgorithm::all() {
        if let Some(value) = field(&fields, algorithm.header_name()) {
            if stated_checksum.is_some() {
                return Err(S3Error::new(S3ErrorCode::InvalidRequest).with_message(
                    "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
                ));
            }
            validate_checksum_value(*algorithm, value)?;
            stated_checksum = Some((*algorithm, value.trim().to_string()));
        }
    }
    if key.is_empty() {
        return Err(S3Error::new(S3ErrorCode::InvalidArgument)
            .with_message("User key must have a length greater than 0.")
            .with_extra("ArgumentName", "key"));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(S3Error::new(S3ErrorCode::KeyTooLongError));
    }
    let as_headers = form_headers;
    check_canned_acl(&as_headers)?;
    // Form fields naming a feature Strata lacks (SSE, Object Lock …) are refused like headers.
    crate::s3::support::check_request_headers(&as_headers)?;
    // SSE fields of the form (x-amz-server-side-encryption, the customer-key trio) are
    // honoured like the same headers on PutObject, customer keys only over TLS.
    let customer_keys_allowed = service.sse_c_allow_http
        || parts
            .extensions
            .get::<crate::s3::state::OverTls>()
            .is_some();
    let encryption = crate::s3::sse::write_request(&as_headers, customer_keys_allowed)?;
    let class = storage_class(&as_headers)?;
    let metadata = user_metadata(&as_headers)?;
    let mut headers = stored_headers(&as_headers);
    if let Some(tagging) = field(&fields, "tagging") {
        replace_stored_tags(&mut headers, &parse_tagging_xml(tagging.as_bytes())?);
    }
    // A missing bucket is known before the file is spooled.
    let resolved = service.engine.bucket(bucket).await?;
    let (min, max) = length_range.unwrap_or((0, MAX_PART_SIZE));
    let mut hasher = stated_checksum
        .as_ref()
        .map(|(algorithm, _)| algorithm.hasher());
    let (spool, size) = spool_file(&mut file, max.min(MAX_PART_SIZE), hasher.as_mut()).await?;
    drop(file);
    let checksum = match (stated_checksum, hasher) {
        (Some((algorithm, expected)), Some(hasher)) => {
            let actual = hasher.finish_base64();
            if actual != expected {
                return Err(S3Error::new(S3ErrorCode::BadDigest).with_message(format!(
                    "The {} you specified did not match the calculated checksum.",
                    algorithm.name()
                )));
            }
            // Verified already: the engine finds it in the slot once the body is written.
            let slot = ChecksumSlot::default();
            let _ = slot.set((algorithm, actual));
            Some(slot)
        }
        _ => None,
    };
    if size < min {
        return Err(S3Error::new(S3ErrorCode::EntityTooSmall)
            .with_message("Your proposed upload is smaller than the minimum allowed size")
            .with_extra("MinSizeAllowed", min.to_string())
            .with_extra("ProposedSize", size.to_string()));
    }
    let request = PutObjectRequest {
        key: key.clone(),
        length: size,
        content_type: field(&fields, "content-type").map(str::to_string),
        headers,
        user_metadata: metadata,
        storage_class: class,
        expected_md5: None,
        checksum,
        condition: WriteCondition::None,
        encryption,
    };
    let object = service
        .engine
        .put_object(&resolved, request, spool_stream(spool).await?)
        .await
        .map_err(|e| S3Error::from(e).with_resource(format!("/{bucket}/{key}")))?;
    let etag = quote_etag(object.etag());
    let location = object_url(&parts, bucket, &key);
    let mut response = post_response(&fields, bucket, &key, &etag, &location)?;
    crate::s3::sse::put_response_headers(response.headers_mut(), object.encryption().as_ref());
    Ok(response)
}

/// `http://host/bucket/key` of the new object (path style, as S3's Location).
fn object_url(parts: &http::request::Parts, bucket: &str, key: &str) -> String {
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!(
        "http://{host}/{}/{}",
        utf8_percent_encode(bucket, LOCATION_SET),
        utf8_percent_encode(key, LOCATION_SET)
    )
}

/// The success answer the form asked for: a 303 redirect, or 200/201/204 (default 204).
fn post_response(
    fields: &[(String, String)],
    bucket: &str,
    key: &str,
    etag: &str,
    location: &str,
) -> S3Result {
    let redirect = field(fields, "success_action_redirect")
        .or_else(|| field(fields, "redirect"))
        .filter(|r| r.starts_with("http://") || r.starts_with("https://"));
    let mut response = if let Some(target) = redirect {
        let encode = |v: &str| utf8_percent_encode(v, NON_ALPHANUMERIC).to_string();
        let separator = if target.contains('?') { '&' } else { '?' };
        let url = format!(
            "{target}{separator}bucket={}&key={}&etag={}",
            encode(bucket),
            encode(key),
            encode(etag)
        );
        let mut response = empty_response(StatusCode::SEE_OTHER)?;
        if let Ok(value) = HeaderValue::from_str(&url) {
            response.headers_mut().insert(http::header::LOCATION, value);
        }
        return finish(response, etag);
    } else {
        match field(fields, "success_action_status") {
            Some("200") => empty_response(StatusCode::OK)?,
            Some("201") => {
                let mut w = XmlWriter::new("PostResponse");
                w.text("Location", location)
                    .text("Bucket", bucket)
                    .text("Key", key)
                    .text("ETag", etag);
                let mut response = http::Response::builder()
                    .status(StatusCode::CREATED)
                    .header(http::header::CONTENT_TYPE, "application/xml")
                    .body(Body::from(w.finish("PostResponse")))
                    .map_err(|e| internal(&e))?;
                if let Ok(value) = HeaderValue::from_str(location) {
                    response.headers_mut().insert(http::header::LOCATION, value);
                }
                response
            }
            _ => empty_response(StatusCode::NO_CONTENT)?,
        }
    };
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(http::header::LOCATION, value);
    }
    finish(response, etag)
}

fn finish(mut response: http::Response<Body>, etag: &str) -> S3Result {
    if let Ok(value) = HeaderValue::from_str(etag) {
        response.headers_mut().insert(http::header::ETAG, value);
    }
    Ok(response)
}
