//! The condition keys a request brings to policy evaluation (`aws:SourceIp`,
//! `aws:SecureTransport`, `s3:prefix`, `s3:x-amz-acl`, `s3:RequestObjectTag/<key>`, …), read
//! from the request line, its headers, the connection and the authenticated principal.
//!
//! Invariants: a key is present only when the request carries it (policies distinguish an
//! absent key from an empty one: `Null`, `…IfExists`, negated operators); header values that
//! are not UTF-8 are left out rather than guessed; nothing here reads the body — keys that
//! need it (`s3:LocationConstraint`) or the stored object (`s3:ExistingObjectTag/<key>`) are
//! added by the caller that has them.

use std::net::IpAddr;
use std::time::SystemTime;

use http::HeaderMap;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::policy::{ContextKeys, Principal};
use super::tagging;

/// How a request was signed, for `s3:signatureversion` and `s3:authType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningScheme {
    V4Header,
    V4Query,
    V2Header,
    V2Query,
    /// A browser POST upload's signed policy.
    PostPolicy,
    /// No signature: the anonymous principal.
    Unsigned,
}

/// Where the request came from.
#[derive(Debug, Clone, Copy)]
pub struct Connection {
    pub peer: IpAddr,
    /// Whether the request arrived over TLS.
    pub secure: bool,
}

/// Headers whose value becomes the `s3:` key of the same name.
const HEADER_KEYS: &[(&str, &str)] = &[
    ("x-amz-acl", "s3:x-amz-acl"),
    ("x-amz-content-sha256", "s3:x-amz-content-sha256"),
    ("x-amz-copy-source", "s3:x-amz-copy-source"),
    ("x-amz-grant-full-control", "s3:x-amz-grant-full-control"),
    ("x-amz-grant-read", "s3:x-amz-grant-read"),
    ("x-amz-grant-read-acp", "s3:x-amz-grant-read-acp"),
    ("x-amz-grant-write", "s3:x-amz-grant-write"),
    ("x-amz-grant-write-acp", "s3:x-amz-grant-write-acp"),
    ("x-amz-metadata-directive", "s3:x-amz-metadata-directive"),
    (
        "x-amz-server-side-encryption",
        "s3:x-amz-server-side-encryption",
    ),
    (
        "x-amz-server-side-encryption-aws-kms-key-id",
        "s3:x-amz-server-side-encryption-aws-kms-key-id",
    ),
    (
        "x-amz-server-side-encryption-customer-algorithm",
        "s3:x-amz-server-side-encryption-customer-algorithm",
    ),
    ("x-amz-storage-class", "s3:x-amz-storage-class"),
    (
        "x-amz-website-redirect-location",
        "s3:x-amz-website-redirect-location",
    ),
    ("x-amz-object-lock-mode", "s3:object-lock-mode"),
    (
        "x-amz-object-lock-retain-until-date",
        "s3:object-lock-retain-until-date",
    ),
    ("x-amz-object-lock-legal-hold", "s3:object-lock-legal-hold"),
    ("if-match", "s3:if-match"),
    ("if-none-match", "s3:if-none-match"),
    ("user-agent", "aws:UserAgent"),
    ("referer", "aws:Referer"),
];

/// Query parameters whose value becomes a key.
const QUERY_KEYS: &[(&str, &str)] = &[
    ("prefix", "s3:prefix"),
    ("delimiter", "s3:delimiter"),
    ("max-keys", "s3:max-keys"),
    ("versionId", "s3:VersionId"),
];

/// Builds the context keys of one request. `query` is the decoded query as name/value pairs.
pub fn request_keys(
    headers: &HeaderMap,
    query: &[(String, String)],
    connection: Connection,
    scheme: SigningScheme,
    principal: &Principal,
    now: SystemTime,
) -> ContextKeys {
    let mut keys = ContextKeys::new();
    let at = OffsetDateTime::from(now);
    if let Ok(text) = at.format(&Rfc3339) {
        keys.insert("aws:CurrentTime", text);
    }
    keys.insert("aws:EpochTime", at.unix_timestamp().to_string());
    keys.insert("aws:SourceIp", connection.peer.to_string());
    keys.insert("aws:SecureTransport", connection.secure.to_string());
    for (header, key) in HEADER_KEYS {
        if let Some(value) = headers.get(*header).and_then(|v| v.to_str().ok()) {
            keys.insert(key, value);
        }
    }
    for (name, key) in QUERY_KEYS {
        if let Some((_, value)) = query.iter().find(|(n, _)| n == name) {
            keys.insert(key, value.clone());
        }
    }
    let (version, auth_type) = match scheme {
        SigningScheme::V4Header => (Some("AWS4-HMAC-SHA256"), Some("REST-HEADER")),
        SigningScheme::V4Query => (Some("AWS4-HMAC-SHA256"), Some("REST-QUERY-STRING")),
        SigningScheme::V2Header => (Some("AWS"), Some("REST-HEADER")),
        SigningScheme::V2Query => (Some("AWS"), Some("REST-QUERY-STRING")),
        SigningScheme::PostPolicy => (None, Some("POST")),
        SigningScheme::Unsigned => (None, None),
    };
    if let Some(version) = version {
        keys.insert("s3:signatureversion", version);
    }
    if let Some(auth_type) = auth_type {
        keys.insert("s3:authType", auth_type);
    }
    // A malformed x-amz-tagging header is refused by the handler; here it just adds nothing.
    if let Ok(Some(tags)) = tagging::request_tags(headers) {
        let mut names = Vec::with_capacity(tags.len());
        for (name, value) in tags {
            keys.insert(&format!("s3:RequestObjectTag/{name}"), value);
            names.push(name);
        }
        keys.insert_many("s3:RequestObjectTagKeys", names);
    }
    match principal {
        Principal::Anonymous => keys.insert("aws:PrincipalType", "Anonymous"),
        Principal::User { arn, account, .. } => {
            keys.insert("aws:PrincipalType", "User");
            keys.insert("aws:PrincipalArn", arn.clone());
            keys.insert("aws:PrincipalAccount", account.clone());
            if let Some(name) = arn.rsplit_once(":user/").map(|(_, name)| name) {
                keys.insert("aws:username", name);
                keys.insert("aws:userid", name);
            }
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use http::HeaderValue;

    use super::*;

    fn connection(secure: bool) -> Connection {
        Connection {
            peer: IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)),
            secure,
        }
    }

    #[test]
    fn keys_come_from_the_connection_headers_query_and_principal() {
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-acl", HeaderValue::from_static("public-read"));
        headers.insert(
            "x-amz-tagging",
            HeaderValue::from_static("team=blue&env=prod"),
        );
        headers.insert("user-agent", HeaderValue::from_static("aws-cli/2.15"));
        headers.insert(
            "x-amz-object-lock-mode",
            HeaderValue::from_static("GOVERNANCE"),
        );
        let query = vec![
            ("prefix".to_string(), "home/alice/".to_string()),
            ("max-keys".to_string(), "50".to_string()),
        ];
        let alice = Principal::User {
            arn: "arn:aws:iam::000000000000:user/alice".into(),
            account: "000000000000".into(),
            canonical_id: "c".into(),
        };
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_644_800);
        let keys = request_keys(
            &headers,
            &query,
            connection(true),
            SigningScheme::V4Query,
            &alice,
            now,
        );
        let one = |key: &str| keys.single(key).map(str::to_string);
        assert_eq!(one("aws:SourceIp").as_deref(), Some("10.1.2.3"));
        assert_eq!(one("aws:SecureTransport").as_deref(), Some("true"));
        assert_eq!(one("aws:EpochTime").as_deref(), Some("1796644800"));
        assert_eq!(
            one("aws:CurrentTime").as_deref(),
            Some("2026-12-07T12:00:00Z")
        );
        assert_eq!(one("s3:x-amz-acl").as_deref(), Some("public-read"));
        assert_eq!(one("s3:object-lock-mode").as_deref(), Some("GOVERNANCE"));
        assert_eq!(one("s3:prefix").as_deref(), Some("home/alice/"));
        assert_eq!(one("s3:max-keys").as_deref(), Some("50"));
        assert_eq!(one("s3:delimiter"), None);
        assert_eq!(
            one("s3:signatureversion").as_deref(),
            Some("AWS4-HMAC-SHA256")
        );
        assert_eq!(one("s3:authType").as_deref(), Some("REST-QUERY-STRING"));
        assert_eq!(one("s3:RequestObjectTag/team").as_deref(), Some("blue"));
        assert_eq!(
            keys.get("s3:RequestObjectTagKeys").map(<[String]>::len),
            Some(2)
        );
        assert_eq!(one("aws:username").as_deref(), Some("alice"));
        assert_eq!(one("aws:UserAgent").as_deref(), Some("aws-cli/2.15"));
    }

    #[test]
    fn anonymous_plain_requests_carry_no_signature_keys() {
        let keys = request_keys(
            &HeaderMap::new(),
            &[],
            connection(false),
            SigningScheme::Unsigned,
            &Principal::Anonymous,
            SystemTime::now(),
        );
        assert_eq!(keys.single("aws:SecureTransport"), Some("false"));
        assert_eq!(keys.single("s3:signatureversion"), None);
        assert_eq!(keys.single("aws:username"), None);
        assert_eq!(keys.single("aws:PrincipalType"), Some("Anonymous"));
    }
}
