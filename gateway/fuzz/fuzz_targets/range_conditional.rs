//! `Range` and the conditional headers of GET/HEAD (`s3::headers`).
//!
//! Input: object size (8 bytes, little-endian), modification time in ms (8 bytes), then text
//! lines: Range, If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since, ETag (an empty
//! line leaves that header out).
//! Properties: no panic; a resolved range satisfies start < end <= size; a refused one is
//! `InvalidRange` with a `bytes */size` Content-Range; without If-Match and If-None-Match the
//! ETag plays no part; an If-Match naming the object's ETag never fails the request.
#![no_main]

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use strata_gateway::s3::error::S3ErrorCode;
use strata_gateway::s3::headers::{evaluate_preconditions_for, resolve_range, Precondition};

const HEADERS: [&str; 4] = [
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
];

fuzz_target!(|data: &[u8]| {
    if data.len() < 16 {
        return;
    }
    let (numbers, text) = data.split_at(16);
    let size = u64::from_le_bytes(numbers[..8].try_into().unwrap_or_default());
    let mtime_ms = u64::from_le_bytes(numbers[8..].try_into().unwrap_or_default());
    let text = String::from_utf8_lossy(text);
    let mut lines = text.split('\n');
    let range = lines.next().filter(|line| !line.is_empty());
    // Small sizes too, where the edge cases are.
    for size in [size, size % 1024] {
        match resolve_range(range, size) {
            Ok(Some(resolved)) => assert!(
                resolved.start < resolved.end && resolved.end <= size,
                "range {range:?} of {size} bytes resolved to {}..{}",
                resolved.start,
                resolved.end
            ),
            Ok(None) => {}
            Err(error) => {
                assert_eq!(error.code, S3ErrorCode::InvalidRange);
                let expected = format!("bytes */{size}");
                assert!(error
                    .headers
                    .iter()
                    .any(|(name, value)| *name == "content-range" && *value == expected));
            }
        }
    }

    let mut headers = HeaderMap::new();
    for name in HEADERS {
        if let Some(line) = lines.next().filter(|line| !line.is_empty()) {
            if let Ok(value) = HeaderValue::from_str(line) {
                headers.insert(name, value);
            }
        }
    }
    let etag = lines.next().unwrap_or("d41d8cd98f00b204e9800998ecf8427e");
    let outcome = evaluate_preconditions_for(&headers, etag, mtime_ms);
    if !headers.contains_key("if-match") && !headers.contains_key("if-none-match") {
        assert_eq!(
            outcome,
            evaluate_preconditions_for(&headers, "another-etag", mtime_ms)
        );
    }
    // Stored ETags are hex MD5s or `md5-N`.
    if !etag.is_empty() && etag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        if let Ok(value) = HeaderValue::from_str(&format!("\"{etag}\"")) {
            headers.insert("if-match", value);
            assert_ne!(
                evaluate_preconditions_for(&headers, etag, mtime_ms),
                Precondition::Failed,
                "If-Match of the object's own ETag failed"
            );
        }
    }
});
