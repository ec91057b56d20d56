//! The S3 client of `strata bench`: SigV4-signed requests over a pooled hyper HTTP/1.1 client.
//!
//! It signs with the gateway's own client signer (`s3::auth::sign_request`, which `strata admin`
//! uses too) so there is one SigV4 implementation in the tree, and it
//! sends `UNSIGNED-PAYLOAD`, as SDKs do over HTTPS: the client never hashes a body to sign it,
//! so the load generator stays cheap. Invariants: every request carries `host`,
//! `x-amz-content-sha256` and `x-amz-date`, all signed; the canonical query is built here
//! already sorted and encoded, so what is signed is exactly what is sent.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::s3::auth::sign_request_with;

/// SigV4's unreserved set: `A-Z a-z 0-9 - _ . ~` stay, everything else is escaped.
const QUERY_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// The same plus `/`, for object keys in paths.
const PATH_SET: &AsciiSet = &QUERY_SET.remove(b'/');

/// Upper bound on a non-data response body the client reads (XML answers).
const MAX_XML_BODY: usize = 16 * 1024 * 1024;

/// Why a request failed, as counted in the "errors by kind" table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// The server answered with an error status; `code` is the S3 `<Code>` when present.
    Status {
        status: u16,
        code: String,
    },
    /// Connect, send or receive failed.
    Transport(String),
    Timeout,
    /// A GET returned other bytes than were stored.
    Verify(&'static str),
    /// A response the client could not make sense of (e.g. no UploadId).
    Protocol(&'static str),
}

impl RequestError {
    /// The label errors are grouped under.
    pub fn kind(&self) -> String {
        match self {
            RequestError::Status { status, code } if code.is_empty() => format!("HTTP {status}"),
            RequestError::Status { status, code } => format!("HTTP {status} {code}"),
            RequestError::Transport(kind) => format!("transport: {kind}"),
            RequestError::Timeout => "timeout".to_string(),
            RequestError::Verify(what) => format!("verify: {what}"),
            RequestError::Protocol(what) => format!("protocol: {what}"),
        }
    }
}

/// Where to send requests and as whom.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `http://host:port` (HTTPS is not supported by the bench client); several,
    /// comma-separated, are used in turn, one request each (gateways sharing a catalog).
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
    pub timeout: Duration,
    /// Connections kept open per host (the concurrency is a good value).
    pub pool_size: usize,
    /// Ask for SSE-S3 (`x-amz-server-side-encryption: AES256`) on every PUT and POST.
    pub sse_s3: bool,
}

/// A signing S3 client. Cheap to share behind an `Arc`.
pub struct S3Client {
    http: Client<HttpConnector, Full<Bytes>>,
    /// `host:port` of each endpoint, as sent in `Host` and signed.
    authorities: Vec<String>,
    /// The endpoint of the next request (round robin).
    next: std::sync::atomic::AtomicUsize,
    config: ClientConfig,
}

impl std::fmt::Debug for S3Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Client")
            .field("authorities", &self.authorities)
            .finish_non_exhaustive()
    }
}

/// Parses `http://host:port[/]` into `host:port`.
pub fn parse_endpoint(endpoint: &str) -> Result<String, String> {
    if endpoint.starts_with("https://") {
        return Err("https endpoints are not supported by strata bench (use http://)".to_string());
    }
    let rest = endpoint.strip_prefix("http://").unwrap_or(endpoint);
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains('/') {
        return Err(format!(
            "endpoint {endpoint:?} must be http://host:port without a path"
        ));
    }
    authority
        .parse::<http::uri::Authority>()
        .map_err(|e| format!("endpoint {endpoint:?}: {e}"))?;
    Ok(authority.to_string())
}

/// `/bucket/key`, the key percent-encoded as SDKs do.
pub fn object_path(bucket: &str, key: &str) -> String {
    format!("/{bucket}/{}", utf8_percent_encode(key, PATH_SET))
}

/// A canonical (sorted, encoded) query string from raw pairs.
pub fn canonical_query(pairs: &[(&str, &str)]) -> String {
    let mut encoded: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| {
            (
                utf8_percent_encode(k, QUERY_SET).to_string(),
                utf8_percent_encode(v, QUERY_SET).to_string(),
            )
        })
        .collect();
    encoded.sort();
    encoded
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

impl S3Client {
    pub fn new(config: ClientConfig) -> Result<S3Client, String> {
        let authorities = config
            .endpoint
            .split(',')
            .map(|e| parse_endpoint(e.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(config.pool_size.max(1))
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(S3Client {
            http,
            authorities,
            next: std::sync::atomic::AtomicUsize::new(0),
            config,
        })
    }

    /// The `Authorization` header value and `x-amz-date` for a request signed now (the
    /// payload is sent as `UNSIGNED-PAYLOAD`, so the client never hashes bodies).
    pub fn sign(
        &self,
        authority: &str,
        method: &Method,
        path: &str,
        query: &str,
        now: SystemTime,
        extra: &[(&str, &str)],
    ) -> Result<(String, String), RequestError> {
        let headers = sign_request_with(
            method.as_str(),
            authority,
            (path, query),
            "UNSIGNED-PAYLOAD",
            (&self.config.access_key, &self.config.secret_key),
            &self.config.region,
            now,
            extra,
        )
        .ok_or(RequestError::Protocol("clock"))?;
        let (mut authorization, mut timestamp) = (String::new(), String::new());
        for (name, value) in headers {
            match name {
                "authorization" => authorization = value,
                "x-amz-date" => timestamp = value,
                _ => {}
            }
        }
        Ok((authorization, timestamp))
    }

    /// Sends one signed request and returns the response head with its unread body. Error
    /// statuses become `Err(Status)` with the S3 code read from the body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &str,
        body: Bytes,
    ) -> Result<Response<Incoming>, RequestError> {
        let turn = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let authority = self
            .authorities
            .get(turn % self.authorities.len().max(1))
            .ok_or(RequestError::Protocol("no endpoint"))?;
        let sse = self.config.sse_s3 && (method == Method::PUT || method == Method::POST);
        let extra: &[(&str, &str)] = if sse {
            &[("x-amz-server-side-encryption", "AES256")]
        } else {
            &[]
        };
        let (authorization, timestamp) =
            self.sign(authority, &method, path, query, SystemTime::now(), extra)?;
        let uri = if query.is_empty() {
            format!("http://{authority}{path}")
        } else {
            format!("http://{authority}{path}?{query}")
        };
        let mut request = Request::builder();
        if sse {
            request = request.header("x-amz-server-side-encryption", "AES256");
        }
        let request = request
            .method(method)
            .uri(uri)
            .header(http::header::HOST, authority)
            .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
            .header("x-amz-date", timestamp)
            .header(http::header::AUTHORIZATION, authorization)
            .header(http::header::CONTENT_LENGTH, body.len())
            .body(Full::new(body))
            .map_err(|_| RequestError::Protocol("request"))?;
        let response = tokio::time::timeout(self.config.timeout, self.http.request(request))
            .await
            .map_err(|_| RequestError::Timeout)?
            .map_err(|e| RequestError::Transport(transport_kind(&e)))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let body = self.read_small(response).await.unwrap_or_default();
        Err(RequestError::Status {
            status: status.as_u16(),
            code: xml_value(&body, "Code").unwrap_or_default(),
        })
    }

    /// Sends a request and reads its (small, XML) answer whole.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &str,
        body: Bytes,
    ) -> Result<(http::HeaderMap, String), RequestError> {
        let response = self.send(method, path, query, body).await?;
        let headers = response.headers().clone();
        let text = self.read_small(response).await?;
        Ok((headers, text))
    }

    /// Reads a response body of at most [`MAX_XML_BODY`] bytes as text.
    async fn read_small(&self, response: Response<Incoming>) -> Result<String, RequestError> {
        let limited = http_body_util::Limited::new(response.into_body(), MAX_XML_BODY);
        let collected = tokio::time::timeout(self.config.timeout, limited.collect())
            .await
            .map_err(|_| RequestError::Timeout)?
            .map_err(|_| RequestError::Transport("body".to_string()))?;
        Ok(String::from_utf8_lossy(&collected.to_bytes()).into_owned())
    }

    /// Creates `bucket`; one that already exists and is ours is fine. Returns whether it was
    /// created by this call.
    pub async fn ensure_bucket(&self, bucket: &str) -> Result<bool, RequestError> {
        match self
            .call(Method::PUT, &format!("/{bucket}"), "", Bytes::new())
            .await
        {
            Ok(_) => Ok(true),
            Err(RequestError::Status { code, .. }) if code == "BucketAlreadyOwnedByYou" => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    pub fn timeout(&self) -> Duration {
        self.config.timeout
    }
}

/// The status of a failed response as a kind label (for tests).
pub fn is_not_found(error: &RequestError) -> bool {
    matches!(error, RequestError::Status { status, .. } if *status == StatusCode::NOT_FOUND.as_u16())
}

fn transport_kind(error: &hyper_util::client::legacy::Error) -> String {
    if error.is_connect() {
        "connect".to_string()
    } else {
        use std::error::Error as _;
        match error.source() {
            Some(source) => source.to_string(),
            None => "request".to_string(),
        }
    }
}

/// The text of the first `<name>…</name>` element in `xml`.
pub fn xml_value(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml.get(start..)?.find(&close)? + start;
    xml.get(start..end).map(str::to_string)
}

/// Every `<name>…</name>` text in `xml`, in order (bounded by `limit`).
pub fn xml_values<'a>(xml: &'a str, name: &str, limit: usize) -> Vec<&'a str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let mut found = Vec::new();
    let mut rest = xml;
    while found.len() < limit {
        let Some(start) = rest.find(&open).map(|i| i + open.len()) else {
            break;
        };
        let Some(len) = rest.get(start..).and_then(|r| r.find(&close)) else {
            break;
        };
        if let Some(text) = rest.get(start..start + len) {
            found.push(text);
        }
        rest = rest.get(start + len + close.len()..).unwrap_or_default();
    }
    found
}

/// Reads a data body to its end, returning (bytes, xxh3-64 of them).
pub async fn drain_and_hash(
    response: Response<Incoming>,
    timeout: Duration,
) -> Result<(u64, u64), RequestError> {
    let mut body = response.into_body();
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut length = 0u64;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .map_err(|_| RequestError::Timeout)?;
        match frame {
            None => break,
            Some(Err(_)) => return Err(RequestError::Transport("body".to_string())),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    length += data.len() as u64;
                    hasher.update(&data);
                }
            }
        }
    }
    Ok((length, hasher.digest()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::s3::auth::{authenticate, AuthConfig, Keyring};
    use http::{HeaderMap, HeaderValue, Uri};

    fn client() -> S3Client {
        S3Client::new(ClientConfig {
            endpoint: "http://127.0.0.1:9000".to_string(),
            access_key: "BENCHKEY".to_string(),
            secret_key: "bench-secret".to_string(),
            region: "us-east-1".to_string(),
            timeout: Duration::from_secs(5),
            pool_size: 1,
            sse_s3: false,
        })
        .unwrap()
    }

    /// The client's signature must verify with the gateway's own verifier.
    #[test]
    fn bench_signatures_verify_with_the_gateway_verifier() {
        let client = client();
        let keyring = Keyring::new(vec![("BENCHKEY".to_string(), "bench-secret".to_string())]);
        let now = SystemTime::now();
        let path = object_path("bucket", "dir/key with space+plus");
        let query = canonical_query(&[("uploadId", "a/b=c"), ("partNumber", "3")]);
        let (authorization, timestamp) = client
            .sign("127.0.0.1:9000", &Method::PUT, &path, &query, now, &[])
            .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("127.0.0.1:9000"));
        headers.insert(
            "x-amz-content-sha256",
            HeaderValue::from_static("UNSIGNED-PAYLOAD"),
        );
        headers.insert("x-amz-date", HeaderValue::from_str(&timestamp).unwrap());
        headers.insert(
            "authorization",
            HeaderValue::from_str(&authorization).unwrap(),
        );
        let uri: Uri = format!("{path}?{query}").parse().unwrap();
        let context = authenticate(
            &Method::PUT,
            &uri,
            &headers,
            &keyring,
            &AuthConfig::default(),
            now,
        )
        .unwrap();
        assert_eq!(context.access_key, "BENCHKEY");
        // A different method must not verify with the same signature.
        assert!(authenticate(
            &Method::GET,
            &uri,
            &headers,
            &keyring,
            &AuthConfig::default(),
            now
        )
        .is_err());
    }

    #[test]
    fn endpoints_and_xml_are_parsed_strictly() {
        assert_eq!(
            parse_endpoint("http://127.0.0.1:9000/").unwrap(),
            "127.0.0.1:9000"
        );
        assert!(parse_endpoint("https://x:1").is_err());
        assert!(parse_endpoint("http://x:1/path").is_err());
        assert!(parse_endpoint("").is_err());
        let xml = "<a><Key>k1</Key><Key>k2</Key><UploadId>u</UploadId><Key>trunc";
        assert_eq!(xml_values(xml, "Key", 10), vec!["k1", "k2"]);
        assert_eq!(xml_value(xml, "UploadId").as_deref(), Some("u"));
        assert_eq!(xml_value(xml, "Missing"), None);
    }
}
