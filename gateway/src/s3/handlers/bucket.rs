//! Bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation,
//! GetBucketVersioning.

use http::StatusCode;

use super::{
    empty_response, read_request_document, write_owner, xml_response, S3Request, S3Result,
};
use crate::engine::EngineError;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::headers::header_str;
use crate::s3::xml::{iso8601, parse_document, CreateBucketConfigurationXml, XmlWriter};

/// S3's bucket naming rules (general purpose buckets): 3–63 characters of lowercase letters,
/// digits, `.` and `-`, starting and ending with a letter or digit, no `..`, not an IPv4 address.
pub fn validate_bucket_name(name: &str) -> Result<(), S3Error> {
    let bytes = name.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let valid = (3..=63).contains(&bytes.len())
        && bytes.iter().all(|b| alnum(b) || *b == b'.' || *b == b'-')
        && bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum)
        && !name.contains("..")
        && !name.contains(".-")
        && !name.contains("-.")
        && name.parse::<std::net::Ipv4Addr>().is_err()
        && !name.starts_with("xn--")
        && !name.ends_with("-s3alias");
    if valid {
        Ok(())
    } else {
        Err(S3Error::new(S3ErrorCode::InvalidBucketName).with_extra("BucketName", name))
    }
}

/// Most buckets one ListBuckets page may hold (`max-buckets` range, as in S3).
const MAX_BUCKETS: usize = 10_000;
/// Tag of ListBuckets continuation tokens (opaque to clients: tag + last name, base64url).
const BUCKET_TOKEN_TAG: &str = "b1:";

/// ListBuckets with S3's paging and filters: `max-buckets` (1–10000), `continuation-token`
/// (from a previous page), `prefix` and `bucket-region`. Without `max-buckets` every bucket is
/// listed on one page, as S3 does for such requests.
pub async fn handle_list_buckets(req: S3Request) -> S3Result {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    let invalid = |name: &str, message: &str| {
        S3Error::new(S3ErrorCode::InvalidArgument)
            .with_message(message.to_string())
            .with_extra("ArgumentName", name)
    };
    let max_buckets = match req.query.get("max-buckets") {
        None => None,
        Some(v) => Some(
            v.trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_BUCKETS).contains(n))
                .ok_or_else(|| {
                    invalid(
                        "max-buckets",
                        "Argument max-buckets must be an integer between 1 and 10000",
                    )
                })?,
        ),
    };
    let after = match req.query.get("continuation-token") {
        None | Some("") => None,
        Some(token) => {
            let decoded = URL_SAFE_NO_PAD
                .decode(token.trim_end_matches('='))
                .ok()
                .and_then(|raw| String::from_utf8(raw).ok())
                .and_then(|text| text.strip_prefix(BUCKET_TOKEN_TAG).map(str::to_string));
            Some(decoded.ok_or_else(|| {
                invalid(
                    "continuation-token",
                    "The continuation token provided is incorrect",
                )
            })?)
        }
    };
    let prefix = req.query.get("prefix").unwrap_or("").to_string();
    let region = req
        .query
        .get("bucket-region")
        .filter(|r| !r.is_empty())
        .map(str::to_string);
    let buckets = req
        .engine
        .list_buckets()
        .await
        .map_err(|e| S3Error::from(e).with_resource("/"))?;
    // A caller sees the buckets they own or may list (authorize.rs), root every bucket.
    let mut selected = buckets.iter().filter(|b| {
        req.access.lists_bucket(b.name())
            && b.name().starts_with(&prefix)
            && after.as_ref().is_none_or(|after| b.name() > after.as_str())
            && region.as_ref().is_none_or(|region| b.region() == region)
    });
    let page: Vec<_> = selected
        .by_ref()
        .take(max_buckets.unwrap_or(usize::MAX))
        .collect();
    let truncated = selected.next().is_some();
    let mut w = XmlWriter::new("ListAllMyBucketsResult");
    write_owner(&mut w, &super::caller_owner(&req));
    w.open("Buckets");
    for bucket in &page {
        w.open("Bucket")
            .text("Name", bucket.name())
            .text("CreationDate", &iso8601(bucket.created_ms()))
            .text("BucketRegion", bucket.region())
            .close("Bucket");
    }
    w.close("Buckets");
    if truncated {
        if let Some(last) = page.last() {
            w.text(
                "ContinuationToken",
                &URL_SAFE_NO_PAD.encode(format!("{BUCKET_TOKEN_TAG}{}", last.name())),
            );
        }
    }
    if req.query.has("prefix") {
        w.text("Prefix", &prefix);
    }
    xml_response(w.finish("ListAllMyBucketsResult"))
}

/// Largest CreateBucketConfiguration body read (the document is a few hundred bytes).
const MAX_CREATE_BUCKET_BODY: usize = 64 * 1024;

pub async fn handle_create_bucket(req: S3Request, bucket: &str) -> S3Result {
    validate_bucket_name(bucket)?;
    let (ownership, acl) = super::acl::bucket_access_for_create(&req.access, &req.headers)?;
    // Object Lock does not exist here yet: making a plain bucket would silently drop the
    // retention the client asked for, so refuse it (boto3 `ObjectLockEnabledForBucket=True`).
    if header_str(&req.headers, "x-amz-bucket-object-lock-enabled")
        .is_some_and(|v| !v.trim().eq_ignore_ascii_case("false"))
    {
        return Err(S3Error::new(S3ErrorCode::NotImplemented)
            .with_message("Object Lock is not implemented by this server")
            .with_resource(format!("/{bucket}")));
    }
    let engine = req.engine.clone();
    // Most CreateBuckets carry no body at all: nothing to read (or to log as a request body).
    let declares_body = req.headers.contains_key(http::header::TRANSFER_ENCODING)
        || header_str(&req.headers, "content-length").is_some_and(|length| length.trim() != "0");
    let document = if declares_body {
        read_request_document(req.body, &req.headers, &req.auth, MAX_CREATE_BUCKET_BODY).await?
    } else {
        bytes::Bytes::new()
    };
    if !document.iter().all(u8::is_ascii_whitespace) {
        // Any body must be a well-formed CreateBucketConfiguration (S3 answers MalformedXML).
        let configuration: CreateBucketConfigurationXml =
            parse_document(&document, "CreateBucketConfiguration")?;
        // Buckets live in the server's region whatever the client names (clients name theirs).
        tracing::debug!(
            location_constraint = ?configuration.location_constraint,
            "CreateBucketConfiguration"
        );
    }
    let owner = req.access.owner().0;
    let req_is_root = req.access.caller().is_root();
    let identity = req.identity.clone();
    match engine.create_bucket(bucket, &owner).await {
        Ok(_) if ownership.is_none() && acl.is_none() => {}
        Ok(_) => {
            // The settings asked for at creation (a second small commit).
            let stored_acl = acl.map(|acl| acl.encode());
            identity
                .update_bucket_access(bucket, move |access| {
                    access.ownership = ownership.map(|o| o.as_str().to_string());
                    access.acl = stored_acl.clone();
                    Ok(())
                })
                .await
                .map_err(super::policy::identity_error)?;
        }
        Err(EngineError::BucketExists) => {
            let existing = engine.bucket(bucket).await?;
            // The root key acts for every owner (it may do anything to any bucket).
            let code = if existing.owner() != owner && !req_is_root {
                S3ErrorCode::BucketAlreadyExists
            } else if existing.region() == "us-east-1" {
                // Legacy us-east-1 behaviour: re-creating a bucket you own succeeds (aws-cli
                // `mb` scripts and s3-tests rely on it); every other region answers 409.
                return create_bucket_response(bucket);
            } else {
                S3ErrorCode::BucketAlreadyOwnedByYou
            };
            return Err(S3Error::new(code)
                .with_resource(format!("/{bucket}"))
                .with_extra("BucketName", bucket));
        }
        Err(e) => {
            return Err(S3Error::from(e)
                .with_resource(format!("/{bucket}"))
                .with_extra("BucketName", bucket))
        }
    }
    create_bucket_response(bucket)
}

fn create_bucket_response(bucket: &str) -> S3Result {
    let mut response = empty_response(StatusCode::OK)?;
    if let Ok(location) = http::HeaderValue::from_str(&format!("/{bucket}")) {
        response
            .headers_mut()
            .insert(http::header::LOCATION, location);
    }
    Ok(response)
}

pub async fn handle_head_bucket(req: S3Request, bucket: &str) -> S3Result {
    let record = req.engine.bucket(bucket).await?;
    let mut response = empty_response(StatusCode::OK)?;
    if let Ok(region) = http::HeaderValue::from_str(record.region()) {
        response.headers_mut().insert("x-amz-bucket-region", region);
    }
    Ok(response)
}

pub async fn handle_delete_bucket(req: S3Request, bucket: &str) -> S3Result {
    req.engine
        .delete_bucket(bucket)
        .await
        .map_err(|e| S3Error::from(e).with_extra("BucketName", bucket))?;
    empty_response(StatusCode::NO_CONTENT)
}

pub async fn handle_get_bucket_location(req: S3Request, bucket: &str) -> S3Result {
    let record = req.engine.bucket(bucket).await?;
    // us-east-1 is the empty constraint, as in S3.
    let region = if record.region() == "us-east-1" {
        ""
    } else {
        record.region()
    };
    let doc = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"{}\">{}</LocationConstraint>",
        crate::s3::xml::S3_NAMESPACE,
        region
    );
    xml_response(doc)
}

pub async fn handle_get_bucket_versioning(req: S3Request, bucket: &str) -> S3Result {
    req.engine.bucket(bucket).await?;
    // Unversioned: S3 returns an empty configuration.
    xml_response(XmlWriter::new("VersioningConfiguration").finish("VersioningConfiguration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_s3_rules() {
        for ok in ["abc", "my-bucket.1", "a".repeat(63).as_str(), "1bucket"] {
            assert!(validate_bucket_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "ABC",
            "a_b",
            "-ab",
            "ab-",
            "a..b",
            "192.168.1.1",
            &"a".repeat(64),
            "xn--ab",
            "a.-b",
        ] {
            assert!(validate_bucket_name(bad).is_err(), "{bad}");
        }
    }
}
