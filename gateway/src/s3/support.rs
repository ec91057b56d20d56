//! What Strata does with each S3 sub-resource, request header and query parameter: the one
//! list the router ([`super::endpoint`]) and the header check ([`check_request_headers`]) work
//! from, and from which the table in `docs/s3-support.md` is generated (a unit test fails when
//! the document and this list disagree; `tests/s3-compat/test_unsupported.py` sends every row
//! of the document to a live server and checks the documented answer).
//!
//! Nothing S3 defines is silently ignored: a sub-resource is routed to its operation, or
//! answered 501 `NotImplemented`, or (a known sub-resource with a method that has no operation
//! on it) 405 `MethodNotAllowed` — never passed on to another operation.

use http::{HeaderMap, Method};

use super::error::{S3Error, S3ErrorCode};
use super::headers::header_str;

/// Where a sub-resource applies: `/{bucket}?name` or `/{bucket}/{key}?name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Bucket,
    Object,
}

impl Scope {
    fn name(self) -> &'static str {
        match self {
            Scope::Bucket => "bucket",
            Scope::Object => "object",
        }
    }
}

/// Whether Strata implements an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    Implemented,
    /// Answered 501 `NotImplemented`, before the body is read; nothing changes.
    NotImplemented,
}

/// One S3 operation selected by a query keyword (`?acl`, `?uploads`, …).
#[derive(Debug, Clone, Copy)]
pub struct SubResource {
    pub scope: Scope,
    pub method: &'static str,
    pub param: &'static str,
    pub operation: &'static str,
    pub support: Support,
}

const fn row(
    scope: Scope,
    method: &'static str,
    param: &'static str,
    operation: &'static str,
    support: Support,
) -> SubResource {
    SubResource {
        scope,
        method,
        param,
        operation,
        support,
    }
}

use Scope::{Bucket as B, Object as O};
use Support::{Implemented as YES, NotImplemented as NO};

/// Every S3 operation that a query keyword selects, in routing priority (the first row whose
/// scope, method and keyword match the request wins).
pub const SUBRESOURCES: &[SubResource] = &[
    // Bucket operations Strata implements.
    row(B, "GET", "location", "GetBucketLocation", YES),
    row(B, "GET", "versioning", "GetBucketVersioning", YES),
    row(B, "PUT", "versioning", "PutBucketVersioning", NO),
    row(B, "GET", "uploads", "ListMultipartUploads", YES),
    row(B, "POST", "delete", "DeleteObjects", YES),
    row(B, "GET", "versions", "ListObjectVersions", YES),
    row(B, "GET", "acl", "GetBucketAcl", YES),
    row(B, "PUT", "acl", "PutBucketAcl", YES),
    row(B, "GET", "policy", "GetBucketPolicy", YES),
    row(B, "PUT", "policy", "PutBucketPolicy", YES),
    row(B, "DELETE", "policy", "DeleteBucketPolicy", YES),
    row(B, "GET", "policyStatus", "GetBucketPolicyStatus", YES),
    // Bucket operations Strata does not implement.
    row(
        B,
        "GET",
        "accelerate",
        "GetBucketAccelerateConfiguration",
        NO,
    ),
    row(
        B,
        "PUT",
        "accelerate",
        "PutBucketAccelerateConfiguration",
        NO,
    ),
    row(B, "GET", "analytics", "GetBucketAnalyticsConfiguration", NO),
    row(B, "PUT", "analytics", "PutBucketAnalyticsConfiguration", NO),
    row(
        B,
        "DELETE",
        "analytics",
        "DeleteBucketAnalyticsConfiguration",
        NO,
    ),
    row(B, "GET", "cors", "GetBucketCors", NO),
    row(B, "PUT", "cors", "PutBucketCors", NO),
    row(B, "DELETE", "cors", "DeleteBucketCors", NO),
    row(B, "GET", "encryption", "GetBucketEncryption", YES),
    row(B, "PUT", "encryption", "PutBucketEncryption", YES),
    row(B, "DELETE", "encryption", "DeleteBucketEncryption", YES),
    row(
        B,
        "GET",
        "intelligent-tiering",
        "GetBucketIntelligentTieringConfiguration",
        NO,
    ),
    row(
        B,
        "PUT",
        "intelligent-tiering",
        "PutBucketIntelligentTieringConfiguration",
        NO,
    ),
    row(
        B,
        "DELETE",
        "intelligent-tiering",
        "DeleteBucketIntelligentTieringConfiguration",
        NO,
    ),
    row(B, "GET", "inventory", "GetBucketInventoryConfiguration", NO),
    row(B, "PUT", "inventory", "PutBucketInventoryConfiguration", NO),
    row(
        B,
        "DELETE",
        "inventory",
        "DeleteBucketInventoryConfiguration",
        NO,
    ),
    row(B, "GET", "lifecycle", "GetBucketLifecycleConfiguration", NO),
    row(B, "PUT", "lifecycle", "PutBucketLifecycleConfiguration", NO),
    row(B, "DELETE", "lifecycle", "DeleteBucketLifecycle", NO),
    row(B, "GET", "logging", "GetBucketLogging", NO),
    row(B, "PUT", "logging", "PutBucketLogging", NO),
    row(
        B,
        "GET",
        "metadataConfiguration",
        "GetBucketMetadataConfiguration",
        NO,
    ),
    row(
        B,
        "POST",
        "metadataConfiguration",
        "CreateBucketMetadataConfiguration",
        NO,
    ),
    row(
        B,
        "DELETE",
        "metadataConfiguration",
        "DeleteBucketMetadataConfiguration",
        NO,
    ),
    row(
        B,
        "PUT",
        "metadataInventoryTable",
        "UpdateBucketMetadataInventoryTableConfiguration",
        NO,
    ),
    row(
        B,
        "PUT",
        "metadataJournalTable",
        "UpdateBucketMetadataJournalTableConfiguration",
        NO,
    ),
    row(
        B,
        "GET",
        "metadataTable",
        "GetBucketMetadataTableConfiguration",
        NO,
    ),
    row(
        B,
        "POST",
        "metadataTable",
        "CreateBucketMetadataTableConfiguration",
        NO,
    ),
    row(
        B,
        "DELETE",
        "metadataTable",
        "DeleteBucketMetadataTableConfiguration",
        NO,
    ),
    row(B, "GET", "metrics", "GetBucketMetricsConfiguration", NO),
    row(B, "PUT", "metrics", "PutBucketMetricsConfiguration", NO),
    row(
        B,
        "DELETE",
        "metrics",
        "DeleteBucketMetricsConfiguration",
        NO,
    ),
    row(
        B,
        "GET",
        "notification",
        "GetBucketNotificationConfiguration",
        NO,
    ),
    row(
        B,
        "PUT",
        "notification",
        "PutBucketNotificationConfiguration",
        NO,
    ),
    row(B, "GET", "object-lock", "GetObjectLockConfiguration", NO),
    row(B, "PUT", "object-lock", "PutObjectLockConfiguration", NO),
    row(
        B,
        "GET",
        "ownershipControls",
        "GetBucketOwnershipControls",
        NO,
    ),
    row(
        B,
        "PUT",
        "ownershipControls",
        "PutBucketOwnershipControls",
        NO,
    ),
    row(
        B,
        "DELETE",
        "ownershipControls",
        "DeleteBucketOwnershipControls",
        NO,
    ),
    row(B, "GET", "publicAccessBlock", "GetPublicAccessBlock", NO),
    row(B, "PUT", "publicAccessBlock", "PutPublicAccessBlock", NO),
    row(
        B,
        "DELETE",
        "publicAccessBlock",
        "DeletePublicAccessBlock",
        NO,
    ),
    row(B, "GET", "replication", "GetBucketReplication", NO),
    row(B, "PUT", "replication", "PutBucketReplication", NO),
    row(B, "DELETE", "replication", "DeleteBucketReplication", NO),
    row(B, "GET", "requestPayment", "GetBucketRequestPayment", NO),
    row(B, "PUT", "requestPayment", "PutBucketRequestPayment", NO),
    row(B, "GET", "session", "CreateSession", NO),
    row(B, "GET", "tagging", "GetBucketTagging", NO),
    row(B, "PUT", "tagging", "PutBucketTagging", NO),
    row(B, "DELETE", "tagging", "DeleteBucketTagging", NO),
    row(B, "GET", "website", "GetBucketWebsite", NO),
    row(B, "PUT", "website", "PutBucketWebsite", NO),
    row(B, "DELETE", "website", "DeleteBucketWebsite", NO),
    row(B, "GET", "abac", "GetBucketAbac", NO),
    row(B, "PUT", "abac", "PutBucketAbac", NO),
    // Object operations Strata implements.
    row(O, "GET", "tagging", "GetObjectTagging", YES),
    row(O, "PUT", "tagging", "PutObjectTagging", YES),
    row(O, "DELETE", "tagging", "DeleteObjectTagging", YES),
    row(O, "GET", "acl", "GetObjectAcl", YES),
    row(O, "PUT", "acl", "PutObjectAcl", YES),
    row(O, "GET", "attributes", "GetObjectAttributes", YES),
    row(O, "POST", "uploads", "CreateMultipartUpload", YES),
    row(O, "PUT", "uploadId", "UploadPart", YES),
    row(O, "POST", "uploadId", "CompleteMultipartUpload", YES),
    row(O, "DELETE", "uploadId", "AbortMultipartUpload", YES),
    row(O, "GET", "uploadId", "ListParts", YES),
    // Object operations Strata does not implement.
    row(O, "GET", "legal-hold", "GetObjectLegalHold", NO),
    row(O, "PUT", "legal-hold", "PutObjectLegalHold", NO),
    row(O, "GET", "retention", "GetObjectRetention", NO),
    row(O, "PUT", "retention", "PutObjectRetention", NO),
    row(O, "POST", "restore", "RestoreObject", NO),
    row(O, "POST", "select", "SelectObjectContent", NO),
    row(O, "GET", "torrent", "GetObjectTorrent", NO),
    row(O, "PUT", "renameObject", "RenameObject", NO),
];

/// True for a query keyword that names an S3 sub-resource (at any scope, with any method).
pub fn is_subresource(param: &str) -> bool {
    SUBRESOURCES.iter().any(|r| r.param == param)
}

/// How a request with sub-resource keywords is routed. `None`: it has none (a plain bucket or
/// object operation). `Some(Ok(row))`: the operation of `row`. `Some(Err)`: a keyword is there
/// but no operation of this scope takes it with this method (405 `MethodNotAllowed`).
pub fn route_subresource(
    scope: Scope,
    method: &Method,
    has: impl Fn(&str) -> bool,
) -> Option<Result<&'static SubResource, S3Error>> {
    if let Some(row) = SUBRESOURCES
        .iter()
        .find(|r| r.scope == scope && r.method == method.as_str() && has(r.param))
    {
        return Some(Ok(row));
    }
    let present = SUBRESOURCES.iter().find(|r| has(r.param))?;
    Some(Err(S3Error::new(S3ErrorCode::MethodNotAllowed)
        .with_message(format!(
            "The specified method is not allowed against this resource ({method} with ?{} on a {})",
            present.param,
            scope.name()
        ))))
}

/// What Strata does with a request header S3 defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderRule {
    /// Honoured as S3 does.
    Honoured,
    /// Accepted; the feature it belongs to does not exist here, and S3 itself accepts the
    /// header on a resource without that feature (an acknowledgement).
    Accepted,
    /// The request is refused with this error, before anything is read or changed.
    Refused(S3ErrorCode),
    /// Refused with this error unless its value is one of the listed (case-insensitive).
    RefusedUnless(S3ErrorCode, &'static [&'static str]),
}

/// One request header (or family: a name ending in `*` is a prefix) and its rule.
#[derive(Debug, Clone, Copy)]
pub struct HeaderSupport {
    pub name: &'static str,
    pub rule: HeaderRule,
    pub note: &'static str,
}

const fn header(name: &'static str, rule: HeaderRule, note: &'static str) -> HeaderSupport {
    HeaderSupport { name, rule, note }
}

use HeaderRule::{Accepted, Honoured, Refused, RefusedUnless};
const NI: S3ErrorCode = S3ErrorCode::NotImplemented;
const IR: S3ErrorCode = S3ErrorCode::InvalidRequest;

/// The S3 request headers, with what Strata does with each. Rows with a `Refused` rule are
/// enforced by [`check_request_headers`] on every S3 request; the others document the
/// handlers.
pub const HEADERS: &[HeaderSupport] = &[
    header("authorization", Honoured, "SigV4 and SigV2 (also presigned query parameters)"),
    header("x-amz-date", Honoured, "signature time, checked against `max_clock_skew`"),
    header("x-amz-content-sha256", Honoured, "payload hash, `UNSIGNED-PAYLOAD` and every aws-chunked mode"),
    header("x-amz-decoded-content-length", Honoured, "length of an aws-chunked body"),
    header("x-amz-trailer", Honoured, "checksum trailers of aws-chunked bodies"),
    header("content-md5", Honoured, "verified; 400 BadDigest on mismatch"),
    header("x-amz-checksum-*", Honoured, "CRC32, CRC32C, CRC64NVME, SHA1, SHA256: verified and stored"),
    header("x-amz-sdk-checksum-algorithm", Honoured, "names the trailer's algorithm"),
    header("x-amz-checksum-mode", Honoured, "GET/HEAD return the stored checksum"),
    header("x-amz-meta-*", Honoured, "user metadata, 2 KiB in total"),
    header("cache-control, content-disposition, content-encoding, content-language, expires, content-type", Honoured, "stored and returned"),
    header("x-amz-storage-class", Honoured, "STANDARD only; others 400 InvalidStorageClass"),
    header("x-amz-tagging", Honoured, "object tags on PUT, copy, multipart"),
    header("x-amz-acl", Honoured, "owner-only canned ACLs; others 400 AccessControlListNotSupported"),
    header("x-amz-grant-*", Refused(S3ErrorCode::AccessControlListNotSupported), "ACLs are disabled (bucket owner enforced)"),
    header("x-amz-copy-source, x-amz-copy-source-range, x-amz-copy-source-if-*", Honoured, "CopyObject, UploadPartCopy"),
    header("x-amz-metadata-directive, x-amz-tagging-directive", Honoured, "CopyObject"),
    header("range, if-match, if-none-match, if-modified-since, if-unmodified-since", Honoured, "GET/HEAD; If-Match/If-None-Match: * on PUT and Complete; If-Match on DeleteObject"),
    header("x-amz-object-attributes, x-amz-max-parts, x-amz-part-number-marker", Honoured, "GetObjectAttributes"),
    header("x-amz-bucket-object-lock-enabled", Honoured, "CreateBucket: `true` is 501 NotImplemented"),
    header("x-amz-request-payer", Accepted, "no bucket is requester-pays; AWS accepts it there too"),
    header("x-amz-expected-bucket-owner, x-amz-source-expected-bucket-owner", Honoured, "the account id (000000000000) or the owner's canonical id; anything else 403 AccessDenied"),
    header("x-amz-server-side-encryption", Honoured, "`AES256` (SSE-S3); `aws:kms`, `aws:kms:dsse` with a configured key-file KMS, else 501 NotImplemented"),
    header("x-amz-server-side-encryption-aws-kms-key-id", Honoured, "a key of the configured KMS key file; unknown: 400 KMS.NotFoundException"),
    header("x-amz-server-side-encryption-customer-*", Honoured, "SSE-C (AES256, key and key MD5); over HTTPS only unless `sse_c_allow_http`"),
    header("x-amz-copy-source-server-side-encryption-customer-*", Honoured, "SSE-C key of a copy source"),
    header("x-amz-object-lock-mode", Refused(IR), "no bucket has Object Lock (AWS: \"Bucket is missing Object Lock Configuration\")"),
    header("x-amz-object-lock-retain-until-date", Refused(IR), "as above"),
    header("x-amz-object-lock-legal-hold", Refused(IR), "as above"),
    header("x-amz-bypass-governance-retention", Refused(NI), "no Object Lock"),
    header("x-amz-website-redirect-location", Refused(NI), "no website hosting"),
    header("x-amz-mfa", Refused(NI), "no MFA delete"),
    header("x-amz-write-offset-bytes", Refused(NI), "no appends (directory buckets only on AWS)"),
    header("x-amz-if-match-last-modified-time", Refused(NI), "directory buckets only on AWS"),
    header("x-amz-if-match-size", Refused(NI), "directory buckets only on AWS"),
    header("x-amz-if-match-initiated-time", Refused(NI), "directory buckets only on AWS"),
    header("x-amz-object-ownership", RefusedUnless(NI, &["BucketOwnerEnforced"]), "CreateBucket: ACLs are disabled, as with AWS's default"),
];

/// Refuses a request carrying a header whose feature Strata lacks, with the documented error.
/// Called once in dispatch, after authentication and routing, before any handler.
pub fn check_request_headers(headers: &HeaderMap) -> Result<(), S3Error> {
    for rule in HEADERS {
        let (code, allowed): (S3ErrorCode, &[&str]) = match rule.rule {
            Refused(code) => (code, &[]),
            RefusedUnless(code, allowed) => (code, allowed),
            Honoured | Accepted => continue,
        };
        let present = match rule.name.strip_suffix('*') {
            Some(prefix) => headers
                .keys()
                .find(|name| name.as_str().starts_with(prefix))
                .map(|name| name.as_str().to_string()),
            None => headers
                .contains_key(rule.name)
                .then(|| rule.name.to_string()),
        };
        let Some(name) = present else { continue };
        let value = header_str(headers, &name).unwrap_or_default();
        if allowed.iter().any(|a| a.eq_ignore_ascii_case(value.trim())) {
            continue;
        }
        let error = S3Error::new(code);
        return Err(match code {
            S3ErrorCode::InvalidRequest => {
                error.with_message("Bucket is missing Object Lock Configuration")
            }
            S3ErrorCode::NotImplemented => error.with_message(format!(
                "The {name} header implies functionality that is not implemented"
            )),
            _ => error,
        });
    }
    Ok(())
}

/// Query parameters that are not sub-resources but change what an operation does.
pub const QUERY_PARAMS: &[(&str, &str)] = &[
    ("versionId", "GET/HEAD/DELETE object, tagging, ACL, attributes: `null` is the object (buckets are unversioned); another well-formed id is 404 NoSuchVersion (DeleteObject: 204, nothing deleted); a malformed one 400 InvalidArgument"),
    ("partNumber", "GET/HEAD object: that part (400 InvalidArgument if out of range, 416 InvalidPartNumber if absent); UploadPart(Copy)"),
    ("response-content-type, response-content-language, response-expires, response-cache-control, response-content-disposition, response-content-encoding", "GetObject response header overrides"),
    ("list-type, prefix, delimiter, marker, max-keys, continuation-token, start-after, fetch-owner, encoding-type", "ListObjects V1/V2"),
    ("key-marker, upload-id-marker, version-id-marker, max-uploads, max-parts, part-number-marker", "ListMultipartUploads, ListParts, ListObjectVersions"),
    ("X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders, X-Amz-Signature, AWSAccessKeyId, Signature, Expires", "presigned URLs (SigV4, SigV2)"),
    ("x-id", "sent by newer SDKs to name the operation; ignored, as by AWS"),
];

fn escape_cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// The Markdown of the support tables, as `docs/s3-support.md` carries it between its
/// `<!-- BEGIN GENERATED -->` and `<!-- END GENERATED -->` markers.
pub fn markdown_tables() -> String {
    let mut out = String::new();
    out.push_str("### Sub-resources\n\n");
    out.push_str("| Scope | Method | Query | Operation | Strata |\n");
    out.push_str("|---|---|---|---|---|\n");
    for r in SUBRESOURCES {
        let what = match r.support {
            Support::Implemented => "implemented",
            Support::NotImplemented => "501 NotImplemented",
        };
        out.push_str(&format!(
            "| {} | {} | `{}` | {} | {} |\n",
            r.scope.name(),
            r.method,
            r.param,
            r.operation,
            what
        ));
    }
    out.push_str(
        "\nAny other method with one of these keywords, or a keyword on the other scope, is \
         405 MethodNotAllowed: a sub-resource never falls through to another operation.\n",
    );
    out.push_str("\n### Request headers\n\n");
    out.push_str("| Header | Strata | Note |\n|---|---|---|\n");
    for h in HEADERS {
        let what = match h.rule {
            Honoured => "honoured".to_string(),
            Accepted => "accepted, no effect".to_string(),
            Refused(code) => format!("{} {}", code.status().as_u16(), code.as_str()),
            RefusedUnless(code, allowed) => format!(
                "{} {} unless {}",
                code.status().as_u16(),
                code.as_str(),
                allowed.join(", ")
            ),
        };
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            escape_cell(h.name),
            what,
            escape_cell(h.note)
        ));
    }
    out.push_str("\n### Other query parameters\n\n");
    out.push_str("| Query | Strata |\n|---|---|\n");
    for (name, what) in QUERY_PARAMS {
        out.push_str(&format!(
            "| `{}` | {} |\n",
            escape_cell(name),
            escape_cell(what)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::endpoint::{parse_endpoint, Endpoint, Query};

    const DOC: &str = include_str!("../../../docs/s3-support.md");

    #[test]
    fn the_document_carries_the_generated_tables() {
        let begin = "<!-- BEGIN GENERATED -->\n";
        let end = "<!-- END GENERATED -->";
        let start = DOC.find(begin).expect("begin marker") + begin.len();
        let stop = DOC.find(end).expect("end marker");
        let expected = markdown_tables();
        assert!(
            DOC[start..stop] == expected,
            "docs/s3-support.md is out of date; put this between its markers:\n{expected}"
        );
    }

    fn route(method: &str, scope: Scope, query: &str) -> Result<Endpoint, S3ErrorCode> {
        let path = match scope {
            Scope::Bucket => "/b",
            Scope::Object => "/b/k",
        };
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        parse_endpoint(&method, path, &Query::parse(Some(query)), false).map_err(|e| e.code)
    }

    #[test]
    fn every_row_routes_to_its_operation_or_to_not_implemented() {
        for r in SUBRESOURCES {
            let query = match r.param {
                "uploadId" => "uploadId=u&partNumber=1".to_string(),
                p => p.to_string(),
            };
            let endpoint = route(r.method, r.scope, &query).unwrap();
            match r.support {
                Support::Implemented => assert_eq!(endpoint.name(), r.operation, "{r:?}"),
                Support::NotImplemented => assert_eq!(
                    endpoint,
                    Endpoint::NotImplemented {
                        operation: r.operation
                    },
                    "{r:?}"
                ),
            }
        }
    }

    #[test]
    fn no_keyword_falls_through_to_another_operation() {
        let methods = ["GET", "PUT", "POST", "DELETE", "HEAD"];
        for scope in [Scope::Bucket, Scope::Object] {
            for param in SUBRESOURCES.iter().map(|r| r.param) {
                for method in methods {
                    let documented = SUBRESOURCES
                        .iter()
                        .any(|r| r.scope == scope && r.method == method && r.param == param);
                    let outcome = route(method, scope, param);
                    if documented {
                        continue;
                    }
                    assert_eq!(
                        outcome,
                        Err(S3ErrorCode::MethodNotAllowed),
                        "{method} {scope:?} ?{param}"
                    );
                }
            }
        }
        // The two of the issue.
        assert_eq!(
            route("PUT", Scope::Bucket, "session"),
            Err(S3ErrorCode::MethodNotAllowed)
        );
        assert_eq!(
            route("GET", Scope::Bucket, "metadataTable").unwrap(),
            Endpoint::NotImplemented {
                operation: "GetBucketMetadataTableConfiguration"
            }
        );
    }

    #[test]
    fn refused_headers_are_refused_and_others_pass() {
        let with = |name: &'static str, value: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(name, value.parse().unwrap());
            check_request_headers(&h).map_err(|e| e.code)
        };
        assert_eq!(with("x-amz-server-side-encryption", "AES256"), Ok(()));
        assert_eq!(
            with("x-amz-server-side-encryption-customer-key-md5", "x"),
            Ok(())
        );
        assert_eq!(
            with("x-amz-object-lock-mode", "GOVERNANCE"),
            Err(S3ErrorCode::InvalidRequest)
        );
        assert_eq!(
            with("x-amz-object-ownership", "ObjectWriter"),
            Err(S3ErrorCode::NotImplemented)
        );
        assert_eq!(
            with("x-amz-object-ownership", "bucketownerenforced"),
            Ok(())
        );
        assert_eq!(with("x-amz-request-payer", "requester"), Ok(()));
        assert_eq!(with("x-amz-meta-a", "b"), Ok(()));
        assert_eq!(
            check_request_headers(&HeaderMap::new()).map_err(|e| e.code),
            Ok(())
        );
    }
}
