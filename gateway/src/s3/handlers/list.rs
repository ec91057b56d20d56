//! Listings: ListObjects (V1), ListObjectsV2, ListObjectVersions and ListMultipartUploads.
//!
//! Buckets are unversioned, so ListObjectVersions lists each live object once as its `null`
//! version (IsLatest, no delete markers); its key-marker/version-id-marker paging maps onto the
//! same catalog scan as V1's marker.
//!
//! Paging is delegated to the catalog (prefix, delimiter, seek past common prefixes). V2
//! continuation tokens are opaque to clients: a version tag plus the last returned key, base64url
//! encoded, and parsed without trusting them (a bad token is `InvalidArgument`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::{
    bucket_owner, write_owner, write_principal, xml_response, OwnerView, S3Request, S3Result,
};
use crate::engine::{ListQuery, ObjectListing, UploadListQuery, NULL_VERSION};
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::headers::quote_etag;
use crate::s3::xml::{iso8601, XmlWriter};

/// Keys per page when the client does not ask for fewer (S3's maximum too).
const MAX_KEYS: usize = 1000;
const TOKEN_TAG: &str = "v1:";

/// `encoding-type=url`: everything but unreserved characters and `/` is percent-encoded
/// (so `+` survives clients that decode with unquote_plus).
const URL_ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

struct Encoder {
    url: bool,
}

impl Encoder {
    fn from(req: &S3Request) -> Result<Encoder, S3Error> {
        match req.query.get("encoding-type") {
            None => Ok(Encoder { url: false }),
            Some(e) if e.eq_ignore_ascii_case("url") => Ok(Encoder { url: true }),
            Some(_) => Err(S3Error::new(S3ErrorCode::InvalidArgument)
                .with_message("Invalid Encoding Method specified in Request")),
        }
    }

    fn apply(&self, value: &str) -> String {
        if self.url {
            utf8_percent_encode(value, URL_ENCODE_SET).to_string()
        } else {
            value.to_string()
        }
    }
}

fn max_keys(req: &S3Request, name: &str) -> Result<usize, S3Error> {
    match req.query.get(name) {
        None => Ok(MAX_KEYS),
        Some(v) => v
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(|n| (n as usize).min(MAX_KEYS))
            .ok_or_else(|| {
                S3Error::new(S3ErrorCode::InvalidArgument).with_message(format!(
                    "Provided {name} not an integer or within integer range"
                ))
            }),
    }
}

fn delimiter(req: &S3Request) -> Option<String> {
    req.query
        .get("delimiter")
        .filter(|d| !d.is_empty())
        .map(str::to_string)
}

/// The V2 continuation token that resumes a listing after `key`.
pub fn encode_token(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{TOKEN_TAG}{key}"))
}

/// The key a V2 continuation token resumes after; `InvalidArgument` for anything
/// [`encode_token`] did not make.
pub fn decode_token(token: &str) -> Result<String, S3Error> {
    let invalid = || {
        S3Error::new(S3ErrorCode::InvalidArgument)
            .with_message("The continuation token provided is incorrect")
            .with_extra("ArgumentName", "continuation-token")
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    text.strip_prefix(TOKEN_TAG)
        .map(str::to_string)
        .ok_or_else(invalid)
}

fn write_entries(
    w: &mut XmlWriter,
    page: &ObjectListing,
    enc: &Encoder,
    owner: Option<&OwnerView>,
) {
    for head in &page.entries {
        w.open("Contents")
            .text("Key", &enc.apply(&head.key))
            .text("LastModified", &iso8601(head.mtime_ms))
            .text("ETag", &quote_etag(&head.etag))
            .text("Size", &head.size.to_string());
        if let Some(owner) = owner {
            write_owner(w, owner);
        }
        w.text("StorageClass", head.storage_class.name())
            .close("Contents");
    }
    for prefix in &page.common_prefixes {
        w.open("CommonPrefixes")
            .text("Prefix", &enc.apply(prefix))
            .close("CommonPrefixes");
    }
}

pub async fn handle_list_objects_v2(req: S3Request, bucket: &str) -> S3Result {
    let enc = Encoder::from(&req)?;
    let max = max_keys(&req, "max-keys")?;
    let prefix = req.query.get("prefix").unwrap_or("").to_string();
    let delim = delimiter(&req);
    // An empty `continuation-token=` is the first page, as in S3 (some SDK paginators send it).
    let token = req.query.get("continuation-token").map(str::to_string);
    let start_after = req.query.get("start-after").map(str::to_string);
    let resume = match &token {
        Some(t) if !t.is_empty() => Some(decode_token(t)?),
        _ => start_after.clone().filter(|s| !s.is_empty()),
    };
    let query = ListQuery {
        prefix: prefix.clone(),
        delimiter: delim.clone(),
        start_after: resume,
        max_keys: max,
    };
    let resolved = req.engine.bucket(bucket).await?;
    let page = req.engine.list_objects(&resolved, query).await?;
    let fetch_owner = req.query.get("fetch-owner") == Some("true");
    let mut w = XmlWriter::new("ListBucketResult");
    w.text("Name", bucket)
        .text("Prefix", &enc.apply(&prefix))
        .optional(
            "Delimiter",
            delim.as_deref().map(|d| enc.apply(d)).as_deref(),
        )
        .text("MaxKeys", &max.to_string())
        .text(
            "KeyCount",
            &(page.entries.len() + page.common_prefixes.len()).to_string(),
        )
        .text(
            "IsTruncated",
            if page.is_truncated { "true" } else { "false" },
        )
        .optional("EncodingType", enc.url.then_some("url"))
        .optional("ContinuationToken", token.as_deref())
        .optional(
            "StartAfter",
            start_after.as_deref().map(|s| enc.apply(s)).as_deref(),
        );
    if page.is_truncated {
        if let Some(next) = &page.next_marker {
            w.text("NextContinuationToken", &encode_token(next));
        }
    }
    let owner = fetch_owner.then(|| bucket_owner(&req, bucket));
    write_entries(&mut w, &page, &enc, owner.as_ref());
    xml_response(w.finish("ListBucketResult"))
}

pub async fn handle_list_objects_v1(req: S3Request, bucket: &str) -> S3Result {
    let enc = Encoder::from(&req)?;
    let max = max_keys(&req, "max-keys")?;
    let prefix = req.query.get("prefix").unwrap_or("").to_string();
    let delim = delimiter(&req);
    let marker = req.query.get("marker").unwrap_or("").to_string();
    let query = ListQuery {
        prefix: prefix.clone(),
        delimiter: delim.clone(),
        start_after: Some(marker.clone()).filter(|m| !m.is_empty()),
        max_keys: max,
    };
    let resolved = req.engine.bucket(bucket).await?;
    let page = req.engine.list_objects(&resolved, query).await?;
    // V1 encodes Delimiter, Marker, NextMarker, Key and CommonPrefixes but not the top-level
    // Prefix (botocore 1.44 decodes exactly those: handlers.decode_list_object), unlike V2,
    // versions and uploads, whose Prefix is encoded.
    let mut w = XmlWriter::new("ListBucketResult");
    w.text("Name", bucket)
        .text("Prefix", &prefix)
        .text("Marker", &enc.apply(&marker))
        .text("MaxKeys", &max.to_string())
        .optional(
            "Delimiter",
            delim.as_deref().map(|d| enc.apply(d)).as_deref(),
        )
        .text(
            "IsTruncated",
            if page.is_truncated { "true" } else { "false" },
        )
        .optional("EncodingType", enc.url.then_some("url"));
    if page.is_truncated {
        if let Some(next) = &page.next_marker {
            w.text("NextMarker", &enc.apply(next));
        }
    }
    let owner = bucket_owner(&req, bucket);
    write_entries(&mut w, &page, &enc, Some(&owner));
    xml_response(w.finish("ListBucketResult"))
}

pub async fn handle_list_object_versions(req: S3Request, bucket: &str) -> S3Result {
    let enc = Encoder::from(&req)?;
    let owner = bucket_owner(&req, bucket);
    let max = max_keys(&req, "max-keys")?;
    let prefix = req.query.get("prefix").unwrap_or("").to_string();
    let delim = delimiter(&req);
    let key_marker = req.query.get("key-marker").unwrap_or("").to_string();
    let version_marker = req.query.get("version-id-marker").unwrap_or("").to_string();
    if !version_marker.is_empty() {
        if key_marker.is_empty() {
            return Err(S3Error::new(S3ErrorCode::InvalidArgument)
                .with_message("A version-id marker cannot be specified without a key marker.")
                .with_extra("ArgumentName", "version-id-marker"));
        }
        if version_marker != NULL_VERSION {
            return Err(S3Error::new(S3ErrorCode::InvalidArgument)
                .with_message("Invalid version id specified")
                .with_extra("ArgumentName", "version-id-marker")
                .with_extra("ArgumentValue", version_marker.clone()));
        }
    }
    // Each key has one version, so "after key-marker's null version" and "after key-marker"
    // are the same position.
    let query = ListQuery {
        prefix: prefix.clone(),
        delimiter: delim.clone(),
        start_after: Some(key_marker.clone()).filter(|m| !m.is_empty()),
        max_keys: max,
    };
    let resolved = req.engine.bucket(bucket).await?;
    let page = req.engine.list_objects(&resolved, query).await?;
    let mut w = XmlWriter::new("ListVersionsResult");
    w.text("Name", bucket)
        .text("Prefix", &enc.apply(&prefix))
        .text("KeyMarker", &enc.apply(&key_marker))
        .text("VersionIdMarker", &version_marker);
    if page.is_truncated {
        if let Some(next) = &page.next_marker {
            w.text("NextKeyMarker", &enc.apply(next));
            if page.entries.last().is_some_and(|head| &head.key == next) {
                w.text("NextVersionIdMarker", NULL_VERSION);
            }
        }
    }
    w.text("MaxKeys", &max.to_string())
        .optional(
            "Delimiter",
            delim.as_deref().map(|d| enc.apply(d)).as_deref(),
        )
        .text(
            "IsTruncated",
            if page.is_truncated { "true" } else { "false" },
        )
        .optional("EncodingType", enc.url.then_some("url"));
    for head in &page.entries {
        w.open("Version")
            .text("Key", &enc.apply(&head.key))
            .text("VersionId", NULL_VERSION)
            .text("IsLatest", "true")
            .text("LastModified", &iso8601(head.mtime_ms))
            .text("ETag", &quote_etag(&head.etag))
            .text("Size", &head.size.to_string())
            .text("StorageClass", head.storage_class.name());
        write_owner(&mut w, &owner);
        w.close("Version");
    }
    for prefix in &page.common_prefixes {
        w.open("CommonPrefixes")
            .text("Prefix", &enc.apply(prefix))
            .close("CommonPrefixes");
    }
    xml_response(w.finish("ListVersionsResult"))
}

pub async fn handle_list_multipart_uploads(req: S3Request, bucket: &str) -> S3Result {
    let enc = Encoder::from(&req)?;
    let owner = bucket_owner(&req, bucket);
    let max = max_keys(&req, "max-uploads")?;
    let prefix = req.query.get("prefix").unwrap_or("").to_string();
    let delim = delimiter(&req);
    let key_marker = req
        .query
        .get("key-marker")
        .filter(|m| !m.is_empty())
        .map(str::to_string);
    let upload_id_marker = req
        .query
        .get("upload-id-marker")
        .filter(|m| !m.is_empty())
        .map(str::to_string);
    let query = UploadListQuery {
        prefix: prefix.clone(),
        delimiter: delim.clone(),
        key_marker: key_marker.clone(),
        upload_id_marker: upload_id_marker.clone(),
        max_uploads: max,
    };
    let resolved = req.engine.bucket(bucket).await?;
    let page = req.engine.list_uploads(&resolved, query).await?;
    let mut w = XmlWriter::new("ListMultipartUploadsResult");
    w.text("Bucket", bucket)
        .text("KeyMarker", &enc.apply(key_marker.as_deref().unwrap_or("")))
        .text("UploadIdMarker", upload_id_marker.as_deref().unwrap_or(""))
        .text(
            "NextKeyMarker",
            &enc.apply(page.next_key_marker.as_deref().unwrap_or("")),
        )
        .text(
            "NextUploadIdMarker",
            page.next_upload_id_marker.as_deref().unwrap_or(""),
        )
        .text("Prefix", &enc.apply(&prefix))
        .optional(
            "Delimiter",
            delim.as_deref().map(|d| enc.apply(d)).as_deref(),
        )
        .text("MaxUploads", &max.to_string())
        .text(
            "IsTruncated",
            if page.is_truncated { "true" } else { "false" },
        )
        .optional("EncodingType", enc.url.then_some("url"));
    for upload in &page.uploads {
        w.open("Upload")
            .text("Key", &enc.apply(upload.key()))
            .text("UploadId", upload.upload_id());
        write_principal(&mut w, "Initiator", &owner);
        write_owner(&mut w, &owner);
        w.text("StorageClass", upload.storage_class().name())
            .text("Initiated", &iso8601(upload.initiated_ms()));
        if let Some(algorithm) = upload.checksum_algorithm() {
            w.text("ChecksumAlgorithm", algorithm.name());
        }
        w.close("Upload");
    }
    for prefix in &page.common_prefixes {
        w.open("CommonPrefixes")
            .text("Prefix", &enc.apply(prefix))
            .close("CommonPrefixes");
    }
    xml_response(w.finish("ListMultipartUploadsResult"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_garbage_is_rejected() {
        for key in ["", "a/b", "ключ 日本 +%&"] {
            assert_eq!(decode_token(&encode_token(key)).unwrap(), key);
        }
        assert!(decode_token("!!!").is_err());
        assert!(decode_token(&URL_SAFE_NO_PAD.encode("v9:x")).is_err());
    }

    #[test]
    fn url_encoding_keeps_slashes_and_escapes_plus() {
        let enc = Encoder { url: true };
        assert_eq!(enc.apply("a b/c+d"), "a%20b/c%2Bd");
    }
}
