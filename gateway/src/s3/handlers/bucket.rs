//! Bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation,
//! GetBucketVersioning.

use http::StatusCode;

use super::{empty_response, write_owner, xml_response, S3Request, S3Result};
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::xml::{iso8601, XmlWriter};

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

pub async fn handle_list_buckets(req: S3Request) -> S3Result {
    let buckets = req
        .engine
        .list_buckets()
        .await
        .map_err(|e| S3Error::from(e).with_resource("/"))?;
    let mut w = XmlWriter::new("ListAllMyBucketsResult");
    write_owner(&mut w, &req.auth.access_key);
    w.open("Buckets");
    for bucket in &buckets {
        w.open("Bucket")
            .text("Name", bucket.name())
            .text("CreationDate", &iso8601(bucket.created_ms()))
            .close("Bucket");
    }
    w.close("Buckets");
    xml_response(w.finish("ListAllMyBucketsResult"))
}

pub async fn handle_create_bucket(req: S3Request, bucket: &str) -> S3Result {
    validate_bucket_name(bucket)?;
    super::acl::check_canned_acl(&req.headers)?;
    req.engine
        .create_bucket(bucket, &req.auth.access_key)
        .await
        .map_err(|e| S3Error::from(e).with_extra("BucketName", bucket))?;
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
