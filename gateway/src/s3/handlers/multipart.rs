//! Multipart upload operations: Create, UploadPart, Complete, Abort, ListParts.
//!
//! Object checksums of multipart uploads: the type is fixed at Create (FULL_OBJECT always for
//! CRC64NVME, COMPOSITE by default otherwise); the engine combines the part checksums at
//! Complete (`crate::checksum`).

use http::{HeaderMap, StatusCode};

use super::acl::check_canned_acl;
use super::object::{
    checksum_slot, new_object_headers, put_checksum_headers, storage_class, write_condition,
};
use super::{empty_response, read_small_body, write_owner, xml_response, S3Request, S3Result};
use crate::checksum::{ChecksumAlgorithm, ChecksumType};
use crate::engine::{check_part_number, CompletedPart, CreateUploadRequest, StatedChecksum};
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::headers::{header_str, put_header, quote_etag, unquote_etag, user_metadata};
use crate::s3::payload::body::prepare_body;
use crate::s3::payload::checksum::verify_content_md5;
use crate::s3::sse;
use crate::s3::xml::{iso8601, parse, CompleteMultipartUploadXml, XmlWriter};

/// Largest CompleteMultipartUpload document we read (10,000 parts with checksums).
const MAX_COMPLETE_BODY: usize = 4 * 1024 * 1024;
/// Parts per ListParts page (S3's maximum).
const MAX_PARTS: usize = 1000;

pub async fn handle_create_multipart_upload(req: S3Request, bucket: &str, key: &str) -> S3Result {
    check_canned_acl(&req.headers)?;
    let algorithm = match header_str(&req.headers, "x-amz-checksum-algorithm") {
        None => None,
        Some(name) => Some(ChecksumAlgorithm::from_name(&name).ok_or_else(|| {
            S3Error::new(S3ErrorCode::InvalidArgument)
                .with_message(format!("Checksum algorithm {name} is not supported"))
        })?),
    };
    let checksum_type = match (header_str(&req.headers, "x-amz-checksum-type"), algorithm) {
        (Some(t), _) => Some(ChecksumType::from_name(&t).ok_or_else(|| {
            S3Error::new(S3ErrorCode::InvalidRequest)
                .with_message("Value for x-amz-checksum-type header is invalid.")
        })?),
        // CRC64NVME exists only as a full-object checksum in S3.
        (None, Some(ChecksumAlgorithm::Crc64Nvme)) => Some(ChecksumType::FullObject),
        (None, Some(_)) => Some(ChecksumType::Composite),
        (None, None) => None,
    };
    let request = CreateUploadRequest {
        content_type: header_str(&req.headers, "content-type"),
        headers: new_object_headers(&req.headers)?,
        user_metadata: user_metadata(&req.headers)?,
        storage_class: storage_class(&req.headers)?,
        checksum_algorithm: algorithm,
        checksum_type,
        encryption: sse::write_request(&req.headers, req.customer_keys_allowed)?,
    };
    let resolved = req.engine.bucket(bucket).await?;
    let upload = req.engine.create_upload(&resolved, key, request).await?;
    let mut w = XmlWriter::new("InitiateMultipartUploadResult");
    w.text("Bucket", bucket)
        .text("Key", key)
        .text("UploadId", upload.upload_id());
    let mut response = xml_response(w.finish("InitiateMultipartUploadResult"))?;
    if let Some(algorithm) = algorithm {
        put_header(
            response.headers_mut(),
            "x-amz-checksum-algorithm",
            algorithm.name(),
        );
    }
    if let Some(kind) = checksum_type {
        put_header(response.headers_mut(), "x-amz-checksum-type", kind.name());
    }
    sse::put_response_headers(response.headers_mut(), upload.encryption().as_ref());
    Ok(response)
}

pub async fn handle_upload_part(
    req: S3Request,
    bucket: &str,
    key: &str,
    upload_id: &str,
    part_number: u32,
) -> S3Result {
    let expected_md5 = verify_content_md5(&req.headers)?;
    let prepared = prepare_body(req.body, &req.headers, &req.auth)?;
    let length = prepared
        .content_length
        .ok_or_else(|| S3Error::new(S3ErrorCode::MissingContentLength))?;
    let checksum = checksum_slot(&prepared);
    let customer = sse::customer_key(&req.headers, sse::CUSTOMER, req.customer_keys_allowed)?;
    // Refused before the bucket is looked up, as the engine always did.
    check_part_number(part_number)?;
    let bucket = req.engine.bucket(bucket).await?;
    let part = req
        .engine
        .upload_part(
            &bucket,
            key,
            upload_id,
            part_number,
            length,
            expected_md5,
            checksum,
            customer.as_ref(),
            prepared.stream,
        )
        .await?;
    let mut response = empty_response(StatusCode::OK)?;
    put_header(response.headers_mut(), "etag", &quote_etag(&part.etag));
    if let Some(checksum) = &part.checksum {
        // s3transfer copies this header into the Complete request (S3-CLIENTS.md §2a).
        put_checksum_headers(response.headers_mut(), checksum);
        response.headers_mut().remove("x-amz-checksum-type");
    }
    sse::put_response_headers(response.headers_mut(), part.encryption.as_ref());
    Ok(response)
}

/// Removes the object-checksum headers of a CompleteMultipartUpload from `headers` and returns
/// what they state: the checksum of the whole object, FULL_OBJECT (`base64`) or COMPOSITE
/// (`base64-N`). It says nothing about the XML body, which is why it is taken out of the
/// headers before the body is read; the engine checks it against the parts.
fn take_stated_checksum(headers: &mut HeaderMap) -> Result<Option<StatedChecksum>, S3Error> {
    let mut stated = None;
    for algorithm in ChecksumAlgorithm::all() {
        let Some(value) = headers.remove(algorithm.header_name()) else {
            continue;
        };
        if stated.is_some() {
            return Err(S3Error::new(S3ErrorCode::InvalidRequest).with_message(
                "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
            ));
        }
        let invalid = || {
            S3Error::new(S3ErrorCode::InvalidRequest).with_message(format!(
                "Value for {} header is invalid.",
                algorithm.header_name()
            ))
        };
        let value = value.to_str().map_err(|_| invalid())?.trim().to_string();
        // `base64` or `base64-N` (N = number of parts).
        let digest = match value.rsplit_once('-') {
            Some((digest, count))
                if !count.is_empty() && count.bytes().all(|b| b.is_ascii_digit()) =>
            {
                digest
            }
            _ => value.as_str(),
        };
        if !algorithm.is_valid_base64(digest) {
            return Err(invalid());
        }
        stated = Some(StatedChecksum {
            algorithm: *algorithm,
            value,
            kind: None,
        });
    }
    let kind = match header_str(headers, "x-amz-checksum-type") {
        None => None,
        Some(kind) => Some(ChecksumType::from_name(&kind).ok_or_else(|| {
            S3Error::new(S3ErrorCode::InvalidRequest).with_message(format!(
                "Value for x-amz-checksum-type header is invalid: {}",
                kind.trim().to_ascii_uppercase()
            ))
        })?),
    };
    Ok(stated.map(|s| StatedChecksum { kind, ..s }))
}

pub async fn handle_complete_multipart_upload(
    req: S3Request,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> S3Result {
    let resource = format!("/{bucket}/{key}");
    let condition = write_condition(&req.headers)?;
    let engine = req.engine.clone();
    let mut body_headers = req.headers.clone();
    let stated = take_stated_checksum(&mut body_headers)?;
    let prepared = prepare_body(req.body, &body_headers, &req.auth)?;
    let body = read_small_body(prepared, MAX_COMPLETE_BODY).await?;
    let document: CompleteMultipartUploadXml = parse(&body)?;
    if document.parts.is_empty() {
        return Err(S3Error::new(S3ErrorCode::MalformedXML)
            .with_message("You must specify at least one part"));
    }
    let parts = document
        .parts
        .iter()
        .map(|p| CompletedPart {
            part_number: p.part_number,
            etag: unquote_etag(&p.etag),
        })
        .collect();
    let resolved = engine.bucket(bucket).await?;
    let object = engine
        .complete_upload(&resolved, key, upload_id, parts, condition, stated)
        .await?;
    let mut w = XmlWriter::new("CompleteMultipartUploadResult");
    w.text("Location", &resource)
        .text("Bucket", bucket)
        .text("Key", key)
        .text("ETag", &quote_etag(object.etag()));
    if let Some(checksum) = object.checksum() {
        w.text(
            &format!("Checksum{}", checksum.algorithm.name()),
            &checksum.value,
        )
        .text("ChecksumType", checksum.kind.name());
    }
    let mut response = xml_response(w.finish("CompleteMultipartUploadResult"))?;
    sse::put_response_headers(response.headers_mut(), object.encryption().as_ref());
    Ok(response)
}

pub async fn handle_abort_multipart_upload(
    req: S3Request,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> S3Result {
    let bucket = req.engine.bucket(bucket).await?;
    req.engine.abort_upload(&bucket, key, upload_id).await?;
    empty_response(StatusCode::NO_CONTENT)
}

pub async fn handle_list_parts(
    req: S3Request,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> S3Result {
    let invalid = |name: &str| {
        S3Error::new(S3ErrorCode::InvalidArgument).with_message(format!(
            "Provided {name} not an integer or within integer range"
        ))
    };
    let max_parts = match req.query.get("max-parts") {
        None => MAX_PARTS,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| invalid("max-parts"))?
            .min(MAX_PARTS),
    };
    let marker = match req.query.get("part-number-marker") {
        None | Some("") => 0,
        Some(v) => v
            .parse::<u32>()
            .map_err(|_| invalid("part-number-marker"))?,
    };
    let resolved = req.engine.bucket(bucket).await?;
    let upload = req.engine.get_upload(&resolved, key, upload_id).await?;
    let parts = req.engine.list_parts(&upload).await?;
    let remaining: Vec<_> = parts
        .into_iter()
        .filter(|p| p.part_number > marker)
        .collect();
    let truncated = remaining.len() > max_parts;
    let page = &remaining[..remaining.len().min(max_parts)];
    let mut w = XmlWriter::new("ListPartsResult");
    w.text("Bucket", bucket)
        .text("Key", key)
        .text("UploadId", upload_id)
        .text("PartNumberMarker", &marker.to_string());
    if let Some(last) = page.last() {
        w.text("NextPartNumberMarker", &last.part_number.to_string());
    }
    w.text("MaxParts", &max_parts.to_string())
        .text("IsTruncated", if truncated { "true" } else { "false" });
    let owner = super::bucket_owner(&req, bucket);
    super::write_principal(&mut w, "Initiator", &owner);
    write_owner(&mut w, &owner);
    w.text("StorageClass", upload.storage_class().name());
    if let Some(algorithm) = upload.checksum_algorithm() {
        w.text("ChecksumAlgorithm", algorithm.name());
    }
    if let Some(kind) = upload.checksum_type() {
        w.text("ChecksumType", kind.name());
    }
    for part in page {
        w.open("Part")
            .text("PartNumber", &part.part_number.to_string())
            .text("LastModified", &iso8601(part.mtime_ms))
            .text("ETag", &quote_etag(&part.etag))
            .text("Size", &part.size.to_string());
        if let Some(checksum) = &part.checksum {
            w.text(
                &format!("Checksum{}", checksum.algorithm.name()),
                &checksum.value,
            );
        }
        w.close("Part");
    }
    xml_response(w.finish("ListPartsResult"))
}
