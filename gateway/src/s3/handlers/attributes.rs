//! GetObjectAttributes: ETag, Checksum, ObjectParts, StorageClass and ObjectSize of an object
//! without reading its data, selected by the `x-amz-object-attributes` header.
//!
//! As in S3, the ETag here is unquoted, `ObjectParts` is only present for objects made by a
//! multipart upload (paged with `x-amz-max-parts` / `x-amz-part-number-marker`), and part
//! checksums are listed when the parts carry them.

use super::{internal, S3Request, S3Result};
use crate::engine::ObjectInfo;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::headers::{header_str, http_date, put_header};
use crate::s3::xml::XmlWriter;

/// Attribute names S3 accepts.
const ATTRIBUTES: &[&str] = &[
    "ETag",
    "Checksum",
    "ObjectParts",
    "StorageClass",
    "ObjectSize",
];
/// Largest ObjectParts page.
const MAX_PARTS: usize = 1000;

fn requested_attributes(req: &S3Request) -> Result<Vec<String>, S3Error> {
    let missing = || {
        S3Error::new(S3ErrorCode::InvalidArgument).with_message(
            "The x-amz-object-attributes header specifying the attributes to be retrieved is \
             either missing or empty",
        )
    };
    let mut wanted = Vec::new();
    for value in req.headers.get_all("x-amz-object-attributes") {
        let text = value.to_str().map_err(|_| missing())?;
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if !ATTRIBUTES.contains(&name) {
                return Err(S3Error::new(S3ErrorCode::InvalidArgument)
                    .with_message("Invalid attribute name specified.")
                    .with_extra("ArgumentName", "x-amz-object-attributes")
                    .with_extra("ArgumentValue", name.to_string()));
            }
            wanted.push(name.to_string());
        }
    }
    if wanted.is_empty() {
        return Err(missing());
    }
    Ok(wanted)
}

fn header_number(req: &S3Request, name: &'static str, default: usize) -> Result<usize, S3Error> {
    match header_str(&req.headers, name) {
        None => Ok(default),
        Some(v) => v.trim().parse::<usize>().map_err(|_| {
            S3Error::new(S3ErrorCode::InvalidArgument)
                .with_message(format!(
                    "Provided {name} not an integer or within integer range"
                ))
                .with_extra("ArgumentName", name)
        }),
    }
}

fn write_parts(w: &mut XmlWriter, version: &ObjectInfo, max: usize, marker: usize) {
    let remaining: Vec<_> = version
        .parts()
        .filter(|p| p.part_number as usize > marker)
        .collect();
    let page = remaining.get(..remaining.len().min(max)).unwrap_or(&[]);
    w.open("ObjectParts")
        .text("PartsCount", &version.parts_count().to_string())
        .text("PartNumberMarker", &marker.to_string());
    if let Some(last) = page.last() {
        w.text("NextPartNumberMarker", &last.part_number.to_string());
    }
    w.text("MaxParts", &max.to_string()).text(
        "IsTruncated",
        if remaining.len() > page.len() {
            "true"
        } else {
            "false"
        },
    );
    for part in page {
        w.open("Part")
            .text("PartNumber", &part.part_number.to_string())
            .text("Size", &part.size.to_string());
        if let Some(c) = &part.checksum {
            w.text(&format!("Checksum{}", c.algorithm.name()), &c.value);
        }
        w.close("Part");
    }
    w.close("ObjectParts");
}

pub async fn handle_get_object_attributes(req: S3Request, bucket: &str, key: &str) -> S3Result {
    let wanted = requested_attributes(&req)?;
    let max = header_number(&req, "x-amz-max-parts", MAX_PARTS)?.min(MAX_PARTS);
    let marker = header_number(&req, "x-amz-part-number-marker", 0)?;
    // `versionId` was checked in dispatch (`object::version_id_gate`).
    let version = req
        .engine
        .head_object(bucket, key)
        .await
        .map_err(|e| S3Error::from(e).with_extra("Key", key))?;
    let has = |name: &str| wanted.iter().any(|w| w == name);
    let mut w = XmlWriter::new("GetObjectAttributesResponse");
    if has("ETag") {
        w.text("ETag", version.etag());
    }
    if has("Checksum") {
        if let Some(c) = version.checksum() {
            w.open("Checksum")
                .text(&format!("Checksum{}", c.algorithm.name()), &c.value)
                .text("ChecksumType", c.kind.name())
                .close("Checksum");
        }
    }
    if has("ObjectParts") && version.is_multipart() {
        write_parts(&mut w, &version, max, marker);
    }
    if has("StorageClass") {
        w.text("StorageClass", version.storage_class().name());
    }
    if has("ObjectSize") {
        w.text("ObjectSize", &version.size().to_string());
    }
    let mut response = http::Response::builder()
        .status(http::StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "application/xml")
        .body(axum::body::Body::from(
            w.finish("GetObjectAttributesResponse"),
        ))
        .map_err(|e| internal(&e))?;
    put_header(
        response.headers_mut(),
        "last-modified",
        &http_date(version.mtime_ms()),
    );
    Ok(response)
}
