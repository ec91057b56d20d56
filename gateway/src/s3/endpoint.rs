//! Request routing: (method, path, query keywords) → one [`Endpoint`].
//!
//! Path style `/{bucket}` and `/{bucket}/{key}`; a virtual-hosted request
//! (`{bucket}.{domain}`, see [`virtual_host_bucket`]) is turned into that form first by the
//! service. The key is the rest of the path,
//! percent-decoded once (S3 clients encode every byte outside the unreserved set, and `+` in a
//! path is a literal plus). Sub-resources are recognised by query keyword, as S3 does, so
//! `?uploads`, `?uploadId=…`, `?location`, `?delete` pick the operation, from the one list in
//! [`super::support::SUBRESOURCES`]. Anything recognised but not implemented maps to
//! [`Endpoint::NotImplemented`] with the operation's name (→ 501); a keyword with a method no
//! operation takes it with is 405, never another operation.

use http::Method;
use percent_encoding::percent_decode_str;

use super::error::{S3Error, S3ErrorCode};
use super::support::{route_subresource, Scope, Support};

/// Longest key S3 accepts, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    ListBuckets,
    CreateBucket {
        bucket: String,
    },
    HeadBucket {
        bucket: String,
    },
    DeleteBucket {
        bucket: String,
    },
    GetBucketLocation {
        bucket: String,
    },
    GetBucketVersioning {
        bucket: String,
    },
    GetBucketEncryption {
        bucket: String,
    },
    PutBucketEncryption {
        bucket: String,
    },
    DeleteBucketEncryption {
        bucket: String,
    },
    ListObjectsV1 {
        bucket: String,
    },
    ListObjectsV2 {
        bucket: String,
    },
    ListMultipartUploads {
        bucket: String,
    },
    ListObjectVersions {
        bucket: String,
    },
    GetBucketAcl {
        bucket: String,
    },
    PutBucketAcl {
        bucket: String,
    },
    GetBucketPolicy {
        bucket: String,
    },
    PutBucketPolicy {
        bucket: String,
    },
    DeleteBucketPolicy {
        bucket: String,
    },
    GetBucketPolicyStatus {
        bucket: String,
    },
    /// Browser-based upload: `POST /{bucket}` with a multipart/form-data body.
    PostObject {
        bucket: String,
    },
    DeleteObjects {
        bucket: String,
    },
    PutObject {
        bucket: String,
        key: String,
    },
    CopyObject {
        bucket: String,
        key: String,
    },
    GetObject {
        bucket: String,
        key: String,
    },
    HeadObject {
        bucket: String,
        key: String,
    },
    DeleteObject {
        bucket: String,
        key: String,
    },
    GetObjectTagging {
        bucket: String,
        key: String,
    },
    PutObjectTagging {
        bucket: String,
        key: String,
    },
    DeleteObjectTagging {
        bucket: String,
        key: String,
    },
    GetObjectAcl {
        bucket: String,
        key: String,
    },
    PutObjectAcl {
        bucket: String,
        key: String,
    },
    GetObjectAttributes {
        bucket: String,
        key: String,
    },
    CreateMultipartUpload {
        bucket: String,
        key: String,
    },
    UploadPart {
        bucket: String,
        key: String,
        upload_id: String,
        part_number: u32,
    },
    UploadPartCopy {
        bucket: String,
        key: String,
        upload_id: String,
        part_number: u32,
    },
    CompleteMultipartUpload {
        bucket: String,
        key: String,
        upload_id: String,
    },
    AbortMultipartUpload {
        bucket: String,
        key: String,
        upload_id: String,
    },
    ListParts {
        bucket: String,
        key: String,
        upload_id: String,
    },
    NotImplemented {
        operation: &'static str,
    },
}

impl Endpoint {
    /// The operation's name for logs and metrics: the variant name (`GetObject`, `PutObject`,
    /// `ListObjectsV1` …; a bounded set). Unimplemented operations are all `NotImplemented`.
    pub fn name(&self) -> &'static str {
        use Endpoint as E;
        match self {
            E::ListBuckets => "ListBuckets",
            E::CreateBucket { .. } => "CreateBucket",
            E::HeadBucket { .. } => "HeadBucket",
            E::DeleteBucket { .. } => "DeleteBucket",
            E::GetBucketLocation { .. } => "GetBucketLocation",
            E::GetBucketVersioning { .. } => "GetBucketVersioning",
            E::GetBucketEncryption { .. } => "GetBucketEncryption",
            E::PutBucketEncryption { .. } => "PutBucketEncryption",
            E::DeleteBucketEncryption { .. } => "DeleteBucketEncryption",
            E::ListObjectsV1 { .. } => "ListObjectsV1",
            E::ListObjectsV2 { .. } => "ListObjectsV2",
            E::ListMultipartUploads { .. } => "ListMultipartUploads",
            E::ListObjectVersions { .. } => "ListObjectVersions",
            E::GetBucketAcl { .. } => "GetBucketAcl",
            E::PutBucketAcl { .. } => "PutBucketAcl",
            E::GetBucketPolicy { .. } => "GetBucketPolicy",
            E::PutBucketPolicy { .. } => "PutBucketPolicy",
            E::DeleteBucketPolicy { .. } => "DeleteBucketPolicy",
            E::GetBucketPolicyStatus { .. } => "GetBucketPolicyStatus",
            E::PostObject { .. } => "PostObject",
            E::DeleteObjects { .. } => "DeleteObjects",
            E::PutObject { .. } => "PutObject",
            E::CopyObject { .. } => "CopyObject",
            E::GetObject { .. } => "GetObject",
            E::HeadObject { .. } => "HeadObject",
            E::DeleteObject { .. } => "DeleteObject",
            E::GetObjectTagging { .. } => "GetObjectTagging",
            E::PutObjectTagging { .. } => "PutObjectTagging",
            E::DeleteObjectTagging { .. } => "DeleteObjectTagging",
            E::GetObjectAcl { .. } => "GetObjectAcl",
            E::PutObjectAcl { .. } => "PutObjectAcl",
            E::GetObjectAttributes { .. } => "GetObjectAttributes",
            E::CreateMultipartUpload { .. } => "CreateMultipartUpload",
            E::UploadPart { .. } => "UploadPart",
            E::UploadPartCopy { .. } => "UploadPartCopy",
            E::CompleteMultipartUpload { .. } => "CompleteMultipartUpload",
            E::AbortMultipartUpload { .. } => "AbortMultipartUpload",
            E::ListParts { .. } => "ListParts",
            E::NotImplemented { .. } => "NotImplemented",
        }
    }

    /// The bucket the request addresses, if any.
    pub fn bucket(&self) -> Option<&str> {
        use Endpoint as E;
        match self {
            E::ListBuckets | E::NotImplemented { .. } => None,
            E::CreateBucket { bucket }
            | E::HeadBucket { bucket }
            | E::DeleteBucket { bucket }
            | E::GetBucketLocation { bucket }
            | E::GetBucketVersioning { bucket }
            | E::GetBucketEncryption { bucket }
            | E::PutBucketEncryption { bucket }
            | E::DeleteBucketEncryption { bucket }
            | E::ListObjectsV1 { bucket }
            | E::ListObjectsV2 { bucket }
            | E::ListMultipartUploads { bucket }
            | E::ListObjectVersions { bucket }
            | E::GetBucketAcl { bucket }
            | E::PutBucketAcl { bucket }
            | E::GetBucketPolicy { bucket }
            | E::PutBucketPolicy { bucket }
            | E::DeleteBucketPolicy { bucket }
            | E::GetBucketPolicyStatus { bucket }
            | E::PostObject { bucket }
            | E::DeleteObjects { bucket } => Some(bucket),
            E::PutObject { bucket, .. }
            | E::CopyObject { bucket, .. }
            | E::GetObject { bucket, .. }
            | E::HeadObject { bucket, .. }
            | E::DeleteObject { bucket, .. }
            | E::GetObjectTagging { bucket, .. }
            | E::PutObjectTagging { bucket, .. }
            | E::DeleteObjectTagging { bucket, .. }
            | E::GetObjectAcl { bucket, .. }
            | E::PutObjectAcl { bucket, .. }
            | E::GetObjectAttributes { bucket, .. }
            | E::CreateMultipartUpload { bucket, .. }
            | E::UploadPart { bucket, .. }
            | E::UploadPartCopy { bucket, .. }
            | E::CompleteMultipartUpload { bucket, .. }
            | E::AbortMultipartUpload { bucket, .. }
            | E::ListParts { bucket, .. } => Some(bucket),
        }
    }

    /// The object key the request addresses, if any.
    pub fn key(&self) -> Option<&str> {
        use Endpoint as E;
        match self {
            E::PutObject { key, .. }
            | E::CopyObject { key, .. }
            | E::GetObject { key, .. }
            | E::HeadObject { key, .. }
            | E::DeleteObject { key, .. }
            | E::GetObjectTagging { key, .. }
            | E::PutObjectTagging { key, .. }
            | E::DeleteObjectTagging { key, .. }
            | E::GetObjectAcl { key, .. }
            | E::PutObjectAcl { key, .. }
            | E::GetObjectAttributes { key, .. }
            | E::CreateMultipartUpload { key, .. }
            | E::UploadPart { key, .. }
            | E::UploadPartCopy { key, .. }
            | E::CompleteMultipartUpload { key, .. }
            | E::AbortMultipartUpload { key, .. }
            | E::ListParts { key, .. } => Some(key),
            _ => None,
        }
    }

    /// The `<Resource>` of an error answer: `/{bucket}/{key}`, `/{bucket}`, or none.
    pub fn resource(&self) -> Option<String> {
        match (self.bucket(), self.key()) {
            (Some(bucket), Some(key)) => Some(format!("/{bucket}/{key}")),
            (Some(bucket), None) => Some(format!("/{bucket}")),
            _ => None,
        }
    }
}

/// Decoded query parameters in request order (keys without `=` have an empty value).
#[derive(Debug, Default, Clone)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let pairs = raw
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (decode_query_component(k), decode_query_component(v))
            })
            .collect();
        Query(pairs)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    /// Every decoded name/value pair, in request order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

fn decode_query_component(s: &str) -> String {
    let plus_as_space = s.replace('+', " ");
    percent_decode_str(&plus_as_space)
        .decode_utf8_lossy()
        .into_owned()
}

/// The bucket a virtual-hosted request names: `Host` is `{bucket}.{domain}[:port]` for one of
/// the configured `domains` (compared case-insensitively). `None` for path-style requests (the
/// Host is a domain itself, an IP address, or unrelated).
pub fn virtual_host_bucket(host: Option<&str>, domains: &[String]) -> Option<String> {
    let host = host?.trim().trim_end_matches('.');
    let name = match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let name = name.to_ascii_lowercase();
    domains.iter().find_map(|domain| {
        let domain = domain.trim_matches('.').to_ascii_lowercase();
        let bucket = name.strip_suffix(&domain)?.strip_suffix('.')?;
        (!bucket.is_empty()).then(|| bucket.to_string())
    })
}

/// Parses the route. `copy_source` tells a PUT with `x-amz-copy-source` from a plain PUT.
pub fn parse_endpoint(
    method: &Method,
    raw_path: &str,
    query: &Query,
    copy_source: bool,
) -> Result<Endpoint, S3Error> {
    let path = raw_path.strip_prefix('/').unwrap_or(raw_path);
    let (raw_bucket, raw_key) = match path.split_once('/') {
        Some((b, k)) => (b, Some(k)),
        None => (path, None),
    };
    if raw_bucket.is_empty() {
        return match *method {
            Method::GET => Ok(Endpoint::ListBuckets),
            _ => Err(S3Error::new(S3ErrorCode::MethodNotAllowed)),
        };
    }
    let bucket = percent_decode_str(raw_bucket)
        .decode_utf8()
        .map_err(|_| S3Error::new(S3ErrorCode::InvalidBucketName))?
        .into_owned();
    match raw_key.filter(|k| !k.is_empty()) {
        None => parse_bucket_endpoint(method, bucket, query),
        Some(raw_key) => {
            let key = percent_decode_str(raw_key)
                .decode_utf8()
                .map_err(|_| {
                    S3Error::new(S3ErrorCode::InvalidArgument)
                        .with_message("Object key is not valid UTF-8")
                })?
                .into_owned();
            if key.len() > MAX_KEY_LEN {
                return Err(S3Error::new(S3ErrorCode::KeyTooLongError));
            }
            parse_object_endpoint(method, bucket, key, query, copy_source)
        }
    }
}

fn parse_bucket_endpoint(
    method: &Method,
    bucket: String,
    query: &Query,
) -> Result<Endpoint, S3Error> {
    if let Some(routed) = route_subresource(Scope::Bucket, method, |p| query.has(p)) {
        let row = routed?;
        if row.support == Support::NotImplemented {
            return Ok(Endpoint::NotImplemented {
                operation: row.operation,
            });
        }
        return match row.operation {
            "GetBucketLocation" => Ok(Endpoint::GetBucketLocation { bucket }),
            "GetBucketVersioning" => Ok(Endpoint::GetBucketVersioning { bucket }),
            "GetBucketEncryption" => Ok(Endpoint::GetBucketEncryption { bucket }),
            "PutBucketEncryption" => Ok(Endpoint::PutBucketEncryption { bucket }),
            "DeleteBucketEncryption" => Ok(Endpoint::DeleteBucketEncryption { bucket }),
            "ListMultipartUploads" => Ok(Endpoint::ListMultipartUploads { bucket }),
            "DeleteObjects" => Ok(Endpoint::DeleteObjects { bucket }),
            "ListObjectVersions" => Ok(Endpoint::ListObjectVersions { bucket }),
            "GetBucketAcl" => Ok(Endpoint::GetBucketAcl { bucket }),
            "PutBucketAcl" => Ok(Endpoint::PutBucketAcl { bucket }),
            "GetBucketPolicy" => Ok(Endpoint::GetBucketPolicy { bucket }),
            "PutBucketPolicy" => Ok(Endpoint::PutBucketPolicy { bucket }),
            "DeleteBucketPolicy" => Ok(Endpoint::DeleteBucketPolicy { bucket }),
            "GetBucketPolicyStatus" => Ok(Endpoint::GetBucketPolicyStatus { bucket }),
            other => Err(unrouted(other)),
        };
    }
    match *method {
        Method::PUT => Ok(Endpoint::CreateBucket { bucket }),
        Method::HEAD => Ok(Endpoint::HeadBucket { bucket }),
        Method::DELETE => Ok(Endpoint::DeleteBucket { bucket }),
        Method::GET if query.get("list-type") == Some("2") => {
            Ok(Endpoint::ListObjectsV2 { bucket })
        }
        Method::GET => Ok(Endpoint::ListObjectsV1 { bucket }),
        Method::POST => Ok(Endpoint::PostObject { bucket }),
        _ => Err(S3Error::new(S3ErrorCode::MethodNotAllowed)),
    }
}

/// An implemented row of [`super::support::SUBRESOURCES`] that the router has no arm for: a
/// programming error (the support table's unit test catches it), answered 500.
fn unrouted(operation: &str) -> S3Error {
    tracing::error!(operation, "sub-resource row without a route");
    S3Error::new(S3ErrorCode::InternalError)
}

fn parse_object_endpoint(
    method: &Method,
    bucket: String,
    key: String,
    query: &Query,
    copy_source: bool,
) -> Result<Endpoint, S3Error> {
    let Some(routed) = route_subresource(Scope::Object, method, |p| query.has(p)) else {
        return match *method {
            Method::PUT if copy_source => Ok(Endpoint::CopyObject { bucket, key }),
            Method::PUT => Ok(Endpoint::PutObject { bucket, key }),
            Method::GET => Ok(Endpoint::GetObject { bucket, key }),
            Method::HEAD => Ok(Endpoint::HeadObject { bucket, key }),
            Method::DELETE => Ok(Endpoint::DeleteObject { bucket, key }),
            _ => Err(S3Error::new(S3ErrorCode::MethodNotAllowed)),
        };
    };
    let row = routed?;
    if row.support == Support::NotImplemented {
        return Ok(Endpoint::NotImplemented {
            operation: row.operation,
        });
    }
    let upload_id = || query.get("uploadId").unwrap_or_default().to_string();
    match row.operation {
        "GetObjectTagging" => Ok(Endpoint::GetObjectTagging { bucket, key }),
        "PutObjectTagging" => Ok(Endpoint::PutObjectTagging { bucket, key }),
        "DeleteObjectTagging" => Ok(Endpoint::DeleteObjectTagging { bucket, key }),
        "GetObjectAcl" => Ok(Endpoint::GetObjectAcl { bucket, key }),
        "PutObjectAcl" => Ok(Endpoint::PutObjectAcl { bucket, key }),
        "GetObjectAttributes" => Ok(Endpoint::GetObjectAttributes { bucket, key }),
        "CreateMultipartUpload" => Ok(Endpoint::CreateMultipartUpload { bucket, key }),
        "UploadPart" => {
            let part_number = query
                .get("partNumber")
                .and_then(|n| n.parse::<u32>().ok())
                .ok_or_else(|| {
                    S3Error::new(S3ErrorCode::InvalidArgument).with_message(
                        "Part number must be an integer between 1 and 10000, inclusive",
                    )
                })?;
            let upload_id = upload_id();
            if copy_source {
                return Ok(Endpoint::UploadPartCopy {
                    bucket,
                    key,
                    upload_id,
                    part_number,
                });
            }
            Ok(Endpoint::UploadPart {
                bucket,
                key,
                upload_id,
                part_number,
            })
        }
        "CompleteMultipartUpload" => Ok(Endpoint::CompleteMultipartUpload {
            bucket,
            key,
            upload_id: upload_id(),
        }),
        "AbortMultipartUpload" => Ok(Endpoint::AbortMultipartUpload {
            bucket,
            key,
            upload_id: upload_id(),
        }),
        "ListParts" => Ok(Endpoint::ListParts {
            bucket,
            key,
            upload_id: upload_id(),
        }),
        other => Err(unrouted(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: Method, path: &str, query: &str) -> Endpoint {
        parse_endpoint(&method, path, &Query::parse(Some(query)), false).unwrap()
    }

    #[test]
    fn routes_by_method_path_and_keyword() {
        assert_eq!(route(Method::GET, "/", ""), Endpoint::ListBuckets);
        assert_eq!(
            route(Method::GET, "/b", "list-type=2&prefix=a"),
            Endpoint::ListObjectsV2 { bucket: "b".into() }
        );
        assert_eq!(
            route(Method::GET, "/b/", "location"),
            Endpoint::GetBucketLocation { bucket: "b".into() }
        );
        assert_eq!(
            route(Method::PUT, "/b/a%20b/c%2Bd+e", ""),
            Endpoint::PutObject {
                bucket: "b".into(),
                key: "a b/c+d+e".into()
            }
        );
        assert_eq!(
            route(Method::PUT, "/b/k", "partNumber=3&uploadId=xyz"),
            Endpoint::UploadPart {
                bucket: "b".into(),
                key: "k".into(),
                upload_id: "xyz".into(),
                part_number: 3
            }
        );
        assert_eq!(
            route(Method::GET, "/b/k", "tagging"),
            Endpoint::GetObjectTagging {
                bucket: "b".into(),
                key: "k".into()
            }
        );
        assert_eq!(
            route(Method::GET, "/b", "versions&prefix=a"),
            Endpoint::ListObjectVersions { bucket: "b".into() }
        );
        assert_eq!(
            route(Method::PUT, "/b", "acl"),
            Endpoint::PutBucketAcl { bucket: "b".into() }
        );
        assert_eq!(
            route(Method::POST, "/b", ""),
            Endpoint::PostObject { bucket: "b".into() }
        );
        assert_eq!(
            parse_endpoint(
                &Method::PUT,
                "/b/k",
                &Query::parse(Some("partNumber=2&uploadId=u")),
                true
            )
            .unwrap(),
            Endpoint::UploadPartCopy {
                bucket: "b".into(),
                key: "k".into(),
                upload_id: "u".into(),
                part_number: 2
            }
        );
    }

    #[test]
    fn virtual_hosts_name_their_bucket_under_a_configured_domain() {
        let domains = vec!["s3.localhost".to_string(), "S3.Example.COM.".to_string()];
        let bucket = |host: &str| virtual_host_bucket(Some(host), &domains);
        assert_eq!(
            bucket("photos.s3.localhost:9000").as_deref(),
            Some("photos")
        );
        assert_eq!(
            bucket("my.dotted.bucket.s3.localhost").as_deref(),
            Some("my.dotted.bucket")
        );
        assert_eq!(bucket("Logs.s3.example.com").as_deref(), Some("logs"));
        assert_eq!(bucket("s3.localhost:9000"), None);
        assert_eq!(bucket("xs3.localhost"), None);
        assert_eq!(bucket("127.0.0.1:9000"), None);
        assert_eq!(bucket("[::1]:9000"), None);
        assert_eq!(virtual_host_bucket(None, &domains), None);
        assert_eq!(virtual_host_bucket(Some("a.s3.localhost"), &[]), None);
    }

    #[test]
    fn rejects_overlong_keys_and_bad_part_numbers() {
        let long = format!("/b/{}", "k".repeat(1025));
        let err = parse_endpoint(&Method::GET, &long, &Query::default(), false).unwrap_err();
        assert_eq!(err.code, S3ErrorCode::KeyTooLongError);
        let err = parse_endpoint(
            &Method::PUT,
            "/b/k",
            &Query::parse(Some("partNumber=x&uploadId=u")),
            false,
        )
        .unwrap_err();
        assert_eq!(err.code, S3ErrorCode::InvalidArgument);
    }
}
