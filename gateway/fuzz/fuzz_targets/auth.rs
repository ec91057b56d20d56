//! Request authentication: SigV4 `Authorization` headers, SigV4 presigned queries, SigV2
//! headers and SigV2 presigned queries, all through `s3::auth::authenticate`.
//!
//! Input (text, lines split on `\n`, a trailing `\r` dropped):
//! `<now, unix seconds>` / `<METHOD> <request-target>` / `<name>: <value>` per header.
//! An unparsable first line means 2013-05-24T00:00:00Z (the date of AWS's examples).
//! Properties: no panic; a request signed by `sign_request` (the gateway's own client signer)
//! from the same method, target, host and payload hash always authenticates.
#![no_main]

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use libfuzzer_sys::fuzz_target;
use strata_gateway::s3::auth::{authenticate, sign_request, AuthConfig, Keyring};

const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const EXAMPLE_NOW: u64 = 1_369_353_600;
/// Parameters that make a query presigned; the signed round trip leaves such queries out.
const QUERY_AUTH: &[&str] = &[
    "X-Amz-Algorithm",
    "X-Amz-Signature",
    "X-Amz-Credential",
    "AWSAccessKeyId",
    "Signature",
];

fuzz_target!(|data: &[u8]| {
    let mut lines = data
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    let now_seconds = lines
        .next()
        .and_then(|line| std::str::from_utf8(line).ok())
        .and_then(|text| text.trim().parse::<u32>().ok())
        .map_or(EXAMPLE_NOW, u64::from);
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(now_seconds);
    let Some(request_line) = lines.next() else {
        return;
    };
    let (method_bytes, target_bytes) = match request_line.iter().position(|&b| b == b' ') {
        Some(at) => (&request_line[..at], &request_line[at + 1..]),
        None => (request_line, &b"/"[..]),
    };
    let Ok(method) = Method::from_bytes(method_bytes) else {
        return;
    };
    let Ok(uri) = Uri::try_from(target_bytes) else {
        return;
    };
    let mut headers = HeaderMap::new();
    for line in lines.take(64) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = HeaderName::from_bytes(line[..colon].trim_ascii());
        let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii());
        if let (Ok(name), Ok(value)) = (name, value) {
            headers.append(name, value);
        }
    }
    let keyring = Keyring::new(vec![(ACCESS_KEY.to_owned(), SECRET_KEY.to_owned())]);
    let strict = AuthConfig {
        strict_region: Some("us-east-1".to_owned()),
        ..AuthConfig::default()
    };
    for cfg in [AuthConfig::default(), strict] {
        let _ = authenticate(&method, &uri, &headers, &keyring, &cfg, now);
    }
    signed_round_trip(&method, target_bytes, &headers, &keyring, now);
});

/// Signs the request again with the client signer and checks that it authenticates.
fn signed_round_trip(
    method: &Method,
    target: &[u8],
    headers: &HeaderMap,
    keyring: &Keyring,
    now: SystemTime,
) {
    let Ok(target) = std::str::from_utf8(target) else {
        return;
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if !path.starts_with('/') {
        return;
    }
    let presigned = query.split('&').any(|piece| {
        let name = piece.split_once('=').map_or(piece, |(name, _)| name);
        let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
        QUERY_AUTH.contains(&name.as_ref())
    });
    if presigned {
        return;
    }
    let host = headers
        .get(http::header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("s3.example.com");
    if host.is_empty() || host.bytes().any(|b| b.is_ascii_whitespace()) {
        return;
    }
    let payload_hash = headers
        .get("x-amz-content-sha256")
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| {
            *value == "UNSIGNED-PAYLOAD"
                || (value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()))
        })
        .unwrap_or("UNSIGNED-PAYLOAD");
    let Some(signed) = sign_request(
        method.as_str(),
        host,
        (path, query),
        payload_hash,
        (ACCESS_KEY, SECRET_KEY),
        "us-east-1",
        now,
    ) else {
        return;
    };
    let Ok(uri) = Uri::try_from(target) else {
        return;
    };
    if uri.path() != path || uri.query().unwrap_or("") != query {
        return;
    }
    let mut request_headers = HeaderMap::new();
    let Ok(host_value) = HeaderValue::from_str(host) else {
        return;
    };
    request_headers.insert(http::header::HOST, host_value);
    for (name, value) in signed {
        let Ok(value) = HeaderValue::from_str(&value) else {
            return;
        };
        request_headers.insert(name, value);
    }
    let result = authenticate(
        method,
        &uri,
        &request_headers,
        keyring,
        &AuthConfig::default(),
        now,
    );
    match result {
        Ok(context) => assert_eq!(context.access_key, ACCESS_KEY),
        Err(error) => panic!(
            "a request signed by sign_request does not authenticate: {:?} {} (host {host:?}, target {target:?}, payload {payload_hash:?})",
            error.code, error.message
        ),
    }
}
