//! Server-side copies: CopyObject and UploadPartCopy.
//!
//! Here the source is resolved and its `x-amz-copy-source-if-*` conditions checked before any
//! byte moves (S3: a true `if-match` wins over a false `if-unmodified-since`; a false
//! `if-none-match` wins over a true `if-modified-since`, both 412), then opened as a ranged read
//! and handed to the engine's copy operation ([`Engine::copy_object`], [`Engine::copy_part`]),
//! which streams it into the write path and keeps or computes the checksum: the bytes never
//! pass through this layer.

use http::HeaderMap;
use percent_encoding::percent_decode_str;

use super::acl::check_canned_acl;
use super::keep_alive::xml_with_keep_alive;
use super::object::{storage_class, write_condition};
use super::{S3Request, S3Result};
use crate::checksum::ChecksumAlgorithm;
use crate::engine::{ByteRange, CopyTarget, Engine, ObjectInfo, MAX_PART_SIZE};
use crate::s3::access::copy_source_permission;
use crate::s3::authorize::Access;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::headers::{
    evaluate_preconditions, header_str, quote_etag, stored_headers, user_metadata, Precondition,
};
use crate::s3::sse;
use crate::s3::tagging::{replace_stored_tags, request_tags};
use crate::s3::xml::{iso8601, XmlWriter};

/// A parsed `x-amz-copy-source`.
#[derive(Debug, PartialEq, Eq)]
pub struct CopySource {
    pub bucket: String,
    pub key: String,
}

/// Parses `x-amz-copy-source`: `[/]bucket/key[?versionId=…]`, URL-encoded. The `?` is found
/// before decoding, so an encoded `%3F` stays part of the key. Only the `null` version exists.
pub fn parse_copy_source(raw: &str) -> Result<CopySource, S3Error> {
    let invalid = || {
        S3Error::new(S3ErrorCode::InvalidArgument).with_message(
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
        )
    };
    let (path, query) = raw.split_once('?').unwrap_or((raw, ""));
    if !query.is_empty() {
        let version_id = query.strip_prefix("versionId=").ok_or_else(invalid)?;
        let version_id = percent_decode_str(version_id).decode_utf8_lossy();
        if super::object::classify_version_id(&version_id)? != super::object::VersionIdTarget::Null
        {
            return Err(S3Error::new(S3ErrorCode::NoSuchVersion));
        }
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
    if key.len() > crate::s3::endpoint::MAX_KEY_LEN {
        return Err(S3Error::new(S3ErrorCode::KeyTooLongError));
    }
    Ok(CopySource {
        bucket: bucket.to_string(),
        key: key.to_string(),
    })
}

/// Parses `x-amz-copy-source-range: bytes=first-last` against the source size.
pub fn parse_copy_range(value: &str, size: u64) -> Result<ByteRange, S3Error> {
    let malformed = || {
        S3Error::new(S3ErrorCode::InvalidArgument)
            .with_message(
                "The x-amz-copy-source-range value must be of the form bytes=first-last where \
                 first and last are the zero-based offsets of the first and last bytes to copy",
            )
            .with_extra("ArgumentName", "x-amz-copy-source-range")
            .with_extra("ArgumentValue", value.chars().take(128).collect::<String>())
    };
    let spec = value.trim().strip_prefix("bytes=").ok_or_else(malformed)?;
    let (first, last) = spec.split_once('-').ok_or_else(malformed)?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(first) || !digits(last) {
        return Err(malformed());
    }
    let first: u64 = first.parse().map_err(|_| malformed())?;
    let last: u64 = last.parse().map_err(|_| malformed())?;
    if first > last {
        return Err(malformed());
    }
    if last >= size {
        return Err(S3Error::new(S3ErrorCode::InvalidRange)
            .with_message(format!(
                "Range specified is not valid for source object of size: {size}"
            ))
            .with_extra("ActualObjectSize", size.to_string()));
    }
    Ok(ByteRange {
        start: first,
        end: last + 1,
    })
}

/// Resolves the source and checks its `x-amz-copy-source-if-*` conditions.
/// (Takes the parts of the request it needs: the body is not `Sync`, so `&S3Request` cannot
/// be held across an await in a `Send` future.)
async fn resolve_source(
    engine: &Engine,
    access: &Access,
    headers: &HeaderMap,
) -> Result<(CopySource, ObjectInfo), S3Error> {
    let raw = header_str(headers, "x-amz-copy-source").unwrap_or_default();
    let source = parse_copy_source(&raw)?;
    // A copy reads its source: the caller needs the read right there too (access.rs).
    let has_version = raw.split_once('?').is_some();
    access
        .require(
            &copy_source_permission(&source.bucket, &source.key, has_version),
            Some(&source.bucket),
        )
        .and_then(|()| {
            access.check_expected_owner(
                headers,
                "x-amz-source-expected-bucket-owner",
                &source.bucket,
            )
        })
        .map_err(|e| e.with_resource(format!("/{}/{}", source.bucket, source.key)))?;
    let version = engine
        .head_object(&source.bucket, &source.key)
        .await
        .map_err(|e| {
            S3Error::from(e)
                .with_resource(format!("/{}/{}", source.bucket, source.key))
                .with_extra("Key", source.key.clone())
        })?;
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
    match evaluate_preconditions(&mapped, &version) {
        Precondition::Proceed => Ok((source, version)),
        _ => Err(S3Error::new(S3ErrorCode::PreconditionFailed)),
    }
}

fn requested_algorithm(headers: &HeaderMap) -> Result<Option<ChecksumAlgorithm>, S3Error> {
    match header_str(headers, "x-amz-checksum-algorithm") {
        None => Ok(None),
        Some(name) => ChecksumAlgorithm::from_name(&name)
            .map(Some)
            .ok_or_else(|| {
                S3Error::new(S3ErrorCode::InvalidRequest)
                    .with_message(format!("Checksum algorithm {name} is not supported"))
            }),
    }
}

/// Parses a COPY/REPLACE directive header (`COPY` when absent).
fn replace_directive(headers: &HeaderMap, name: &str, what: &str) -> Result<bool, S3Error> {
    match header_str(headers, name).as_deref() {
        None | Some("COPY") => Ok(false),
        Some("REPLACE") => Ok(true),
        Some(_) => Err(S3Error::new(S3ErrorCode::InvalidArgument)
            .with_message(format!("Unknown {what} directive."))
            .with_extra("ArgumentName", name.to_string())),
    }
}

pub async fn handle_copy_object(req: S3Request, bucket: &str, key: &str) -> S3Result {
    let resource = format!("/{bucket}/{key}");
    check_canned_acl(&req.headers)?;
    let replace_metadata = replace_directive(&req.headers, "x-amz-metadata-directive", "metadata")?;
    let replace_tags = replace_directive(&req.headers, "x-amz-tagging-directive", "tagging")?;
    let algorithm = requested_algorithm(&req.headers)?;
    let condition = write_condition(&req.headers)?;
    let class = storage_class(&req.headers)?;
    let new_tags = request_tags(&req.headers)?;
    let encryption = sse::write_request(&req.headers, req.customer_keys_allowed)?;
    let source_key = sse::customer_key(
        &req.headers,
        sse::COPY_SOURCE_CUSTOMER,
        req.customer_keys_allowed,
    )?;
    let (source, version) = resolve_source(&req.engine, &req.access, &req.headers).await?;
    req.engine
        .check_read_key(&version, source_key.as_ref())
        .map_err(|e| {
            S3Error::from(e).with_resource(format!("/{}/{}", source.bucket, source.key))
        })?;
    let changes_encryption = encryption != crate::sse::SseRequest::None;
    if !replace_metadata && !changes_encryption && source.bucket == bucket && source.key == key {
        return Err(S3Error::new(S3ErrorCode::InvalidRequest).with_message(
            "This copy request is illegal because it is trying to copy an object to itself \
             without changing the object's metadata, storage class, website redirect location \
             or encryption attributes.",
        ));
    }
    let (content_type, mut headers, metadata) = if replace_metadata {
        (
            header_str(&req.headers, "content-type"),
            stored_headers(&req.headers),
            user_metadata(&req.headers)?,
        )
    } else {
        (
            version.content_type().map(str::to_string),
            version.headers().to_vec(),
            version.user_metadata().to_vec(),
        )
    };
    // The tag set follows its own directive: source tags unless REPLACE (then the request's).
    let source_tags = crate::s3::tagging::stored_tags(version.headers());
    let tags = if replace_tags {
        new_tags.unwrap_or_default()
    } else {
        source_tags
    };
    replace_stored_tags(&mut headers, &tags);
    let size = version.size();
    let destination = req.engine.bucket(bucket).await?;
    let expected = req.engine.expected_encryption(&destination, &encryption);
    let read = req
        .engine
        .open_object(
            version,
            ByteRange {
                start: 0,
                end: size,
            },
            source_key.as_ref(),
        )
        .await?;
    let target = CopyTarget {
        key: key.to_string(),
        content_type,
        headers,
        user_metadata: metadata,
        storage_class: class,
        checksum_algorithm: algorithm,
        condition,
        encryption,
    };
    let engine = req.engine.clone();
    let mut response = xml_with_keep_alive(req.request_id.clone(), async move {
        let object = engine
            .copy_object(&destination, read, target)
            .await
            .map_err(|e| S3Error::from(e).with_resource(&resource))?;
        let mut w = XmlWriter::new("CopyObjectResult");
        w.text("LastModified", &iso8601(object.mtime_ms()))
            .text("ETag", &quote_etag(object.etag()));
        if let Some(c) = object.checksum() {
            w.text("ChecksumType", c.kind.name())
                .text(&format!("Checksum{}", c.algorithm.name()), &c.value);
        }
        Ok(w.finish("CopyObjectResult"))
    })
    .await?;
    sse::put_response_headers(response.headers_mut(), expected.as_ref());
    Ok(response)
}

pub async fn handle_upload_part_copy(
    req: S3Request,
    bucket: &str,
    key: &str,
    upload_id: &str,
    part_number: u32,
) -> S3Result {
    let resource = format!("/{bucket}/{key}");
    let destination = req.engine.bucket(bucket).await?;
    let upload = req.engine.get_upload(&destination, key, upload_id).await?;
    let target_key = sse::customer_key(&req.headers, sse::CUSTOMER, req.customer_keys_allowed)?;
    let source_key = sse::customer_key(
        &req.headers,
        sse::COPY_SOURCE_CUSTOMER,
        req.customer_keys_allowed,
    )?;
    let (_, version) = resolve_source(&req.engine, &req.access, &req.headers).await?;
    req.engine.check_read_key(&version, source_key.as_ref())?;
    let range = match header_str(&req.headers, "x-amz-copy-source-range") {
        Some(value) => parse_copy_range(&value, version.size())?,
        None => ByteRange {
            start: 0,
            end: version.size(),
        },
    };
    let length = range.end - range.start;
    if length > MAX_PART_SIZE {
        return Err(S3Error::new(S3ErrorCode::InvalidRequest).with_message(
            "The specified copy source is larger than the maximum allowable size for a copy \
             source: 5368709120",
        ));
    }
    let read = req
        .engine
        .open_object(version, range, source_key.as_ref())
        .await?;
    let engine = req.engine.clone();
    let kind = upload.encryption();
    let mut response = xml_with_keep_alive(req.request_id.clone(), async move {
        let part = engine
            .copy_part(
                &destination,
                &upload,
                part_number,
                read,
                target_key.as_ref(),
            )
            .await
            .map_err(|e| S3Error::from(e).with_resource(&resource))?;
        let mut w = XmlWriter::new("CopyPartResult");
        w.text("LastModified", &iso8601(part.mtime_ms))
            .text("ETag", &quote_etag(&part.etag));
        if let Some(c) = &part.checksum {
            w.text(&format!("Checksum{}", c.algorithm.name()), &c.value);
        }
        Ok(w.finish("CopyPartResult"))
    })
    .await?;
    sse::put_response_headers(response.headers_mut(), kind.as_ref());
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_sources_decode_once_and_accept_only_the_null_version() {
        let parsed = parse_copy_source("/b/a%20b%3Fc%2Bd?versionId=null").unwrap();
        assert_eq!(
            parsed,
            CopySource {
                bucket: "b".into(),
                key: "a b?c+d".into()
            }
        );
        assert_eq!(parse_copy_source("b/k").unwrap().key, "k");
        assert_eq!(parse_copy_source("b/dir/k").unwrap().key, "dir/k");
        assert_eq!(
            parse_copy_source("b/k?versionId=abc").unwrap_err().code,
            S3ErrorCode::NoSuchVersion
        );
        for bad in ["b", "/b/", "b/k?foo=1", "%FF/k", ""] {
            assert_eq!(
                parse_copy_source(bad).unwrap_err().code,
                S3ErrorCode::InvalidArgument,
                "{bad}"
            );
        }
    }

    #[test]
    fn copy_ranges_are_strict() {
        let r = parse_copy_range("bytes=0-9", 10).unwrap();
        assert_eq!((r.start, r.end), (0, 10));
        let r = parse_copy_range("bytes=5-5", 10).unwrap();
        assert_eq!((r.start, r.end), (5, 6));
        for bad in [
            "bytes=5-",
            "bytes=-5",
            "bytes=3-2",
            "items=0-1",
            "bytes=a-b",
            "0-1",
            "bytes=0-1,2-3",
        ] {
            assert_eq!(
                parse_copy_range(bad, 10).unwrap_err().code,
                S3ErrorCode::InvalidArgument,
                "{bad}"
            );
        }
        assert_eq!(
            parse_copy_range("bytes=0-10", 10).unwrap_err().code,
            S3ErrorCode::InvalidRange
        );
        assert_eq!(
            parse_copy_range("bytes=0-0", 0).unwrap_err().code,
            S3ErrorCode::InvalidRange
        );
    }
}
