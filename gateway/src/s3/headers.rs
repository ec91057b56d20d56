//! Request and response header rules shared by the object handlers: which headers an object
//! keeps, user metadata, `Range`, conditional requests and HTTP dates.

use http::header::{HeaderMap, HeaderName, HeaderValue};

use super::error::{S3Error, S3ErrorCode};
use crate::engine::{ByteRange, ObjectInfo};

/// Standard headers stored with an object and returned verbatim on GET/HEAD.
pub const STORED_HEADERS: &[&str] = &[
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
];

/// S3's limit on the total size of user metadata (names + values).
const MAX_USER_METADATA: usize = 2048;

/// A header's value as text (lossy for non-UTF-8 bytes), if present.
pub fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// The stored standard headers of a request; `aws-chunked` is a transfer detail, not content.
pub fn stored_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for name in STORED_HEADERS {
        let Some(value) = header_str(headers, name) else {
            continue;
        };
        if *name == "content-encoding" {
            let kept: Vec<&str> = value
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("aws-chunked"))
                .collect();
            if !kept.is_empty() {
                out.push((name.to_string(), kept.join(", ")));
            }
            continue;
        }
        out.push((name.to_string(), value));
    }
    out
}

/// `x-amz-meta-*` headers (name without the prefix, lowercase), size-checked like S3.
///
/// Values are stored as text: RFC 2047 encoded-words (`=?UTF-8?B?…?=`, `=?UTF-8?Q?…?=`) are
/// decoded, as S3 does before storing; raw bytes are UTF-8, else ISO-8859-1 (what Python's
/// http.client sends for a `str` header). [`user_metadata_value`] encodes them back.
pub fn user_metadata(headers: &HeaderMap) -> Result<Vec<(String, String)>, S3Error> {
    let mut out = Vec::new();
    let mut total = 0;
    for (name, value) in headers {
        if let Some(short) = name.as_str().strip_prefix("x-amz-meta-") {
            let text = match std::str::from_utf8(value.as_bytes()) {
                Ok(text) => text.to_string(),
                Err(_) => value.as_bytes().iter().map(|&b| char::from(b)).collect(),
            };
            let value = decode_rfc2047(&text).unwrap_or(text);
            total += short.len() + value.len();
            out.push((short.to_string(), value));
        }
    }
    if total > MAX_USER_METADATA {
        return Err(S3Error::new(S3ErrorCode::MetadataTooLarge));
    }
    out.sort();
    Ok(out)
}

/// A stored user-metadata value as S3 returns it: printable ASCII verbatim, anything else
/// RFC 2047-encoded (`=?UTF-8?B?<base64>?=`), so that SDKs see the form AWS sends.
pub fn user_metadata_value(value: &str) -> String {
    if value
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) || b == b'\t')
    {
        value.to_string()
    } else {
        use base64::Engine as _;
        format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(value.as_bytes())
        )
    }
}

/// Decodes a value made only of RFC 2047 encoded-words (`=?charset?B|Q?text?=`, separated by
/// whitespace, charsets UTF-8 and US-ASCII); `None` when it is not such a value or does not
/// decode, and then it is kept verbatim.
fn decode_rfc2047(value: &str) -> Option<String> {
    use base64::Engine as _;
    let words: Vec<&str> = value.split_whitespace().collect();
    if words.is_empty() || words.len() > 64 {
        return None;
    }
    let mut out = Vec::new();
    for word in words {
        let inner = word.strip_prefix("=?")?.strip_suffix("?=")?;
        let mut pieces = inner.splitn(3, '?');
        let (charset, encoding, text) = (pieces.next()?, pieces.next()?, pieces.next()?);
        if !charset.eq_ignore_ascii_case("utf-8") && !charset.eq_ignore_ascii_case("us-ascii") {
            return None;
        }
        if encoding.eq_ignore_ascii_case("b") {
            out.extend(
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .ok()?,
            );
        } else if encoding.eq_ignore_ascii_case("q") {
            let bytes = text.as_bytes();
            let mut i = 0;
            while let Some(&b) = bytes.get(i) {
                match b {
                    b'_' => out.push(b' '),
                    b'=' => {
                        let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                        out.push(u8::from_str_radix(hex, 16).ok()?);
                        i += 2;
                    }
                    other => out.push(other),
                }
                i += 1;
            }
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

/// Adds a header, skipping values that cannot be carried in HTTP.
pub fn put_header(headers: &mut HeaderMap, name: &str, value: &str) {
    if let (Ok(name), Ok(value)) = (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        headers.insert(name, value);
    }
}

/// `"etag"` as S3 sends it.
pub fn quote_etag(etag: &str) -> String {
    format!("\"{etag}\"")
}

/// An ETag from a request without quotes (clients send both forms).
pub fn unquote_etag(etag: &str) -> String {
    etag.trim().trim_matches('"').to_string()
}

/// RFC 7231 date for `Last-Modified`.
pub fn http_date(ms: u64) -> String {
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
}

fn parse_http_date(value: &str) -> Option<u64> {
    httpdate::parse_http_date(value.trim())
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

/// Resolves a `Range` header against an object size. `Ok(None)`: serve the whole object
/// (no header, or one S3 ignores: another unit, several ranges, or `a-b` with b < a).
pub fn resolve_range(header: Option<&str>, size: u64) -> Result<Option<ByteRange>, S3Error> {
    let Some(spec) = header.map(str::trim) else {
        return Ok(None);
    };
    let Some(spec) = spec.strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (first, last) = (first.trim(), last.trim());
    let unsatisfiable = || {
        S3Error::new(S3ErrorCode::InvalidRange)
            .with_extra("ActualObjectSize", size.to_string())
            .with_header("content-range", format!("bytes */{size}"))
    };
    if first.is_empty() {
        let Ok(suffix) = last.parse::<u64>() else {
            return Ok(None);
        };
        if suffix == 0 || size == 0 {
            return Err(unsatisfiable());
        }
        let start = size.saturating_sub(suffix);
        return Ok(Some(ByteRange { start, end: size }));
    }
    let Ok(start) = first.parse::<u64>() else {
        return Ok(None);
    };
    let end = if last.is_empty() {
        size
    } else {
        match last.parse::<u64>() {
            Ok(l) if l >= start => l.saturating_add(1).min(size),
            _ => return Ok(None),
        }
    };
    if start >= size {
        return Err(unsatisfiable());
    }
    Ok(Some(ByteRange { start, end }))
}

/// Outcome of the GET/HEAD preconditions.
#[derive(Debug, PartialEq, Eq)]
pub enum Precondition {
    Proceed,
    NotModified,
    Failed,
}

fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',')
        .map(unquote_etag)
        .any(|candidate| candidate == "*" || candidate == etag)
}

/// Evaluates If-Match, If-Unmodified-Since, If-None-Match and If-Modified-Since in S3's order:
/// a true If-Match overrides a false If-Unmodified-Since, and a present If-None-Match makes
/// If-Modified-Since irrelevant.
pub fn evaluate_preconditions(headers: &HeaderMap, version: &ObjectInfo) -> Precondition {
    evaluate_preconditions_for(headers, version.etag(), version.mtime_ms())
}

/// [`evaluate_preconditions`] against an object's unquoted ETag and modification time.
pub fn evaluate_preconditions_for(headers: &HeaderMap, etag: &str, mtime_ms: u64) -> Precondition {
    let mtime = mtime_ms / 1000;
    let if_match = header_str(headers, "if-match");
    if let Some(list) = &if_match {
        if !etag_matches(list, etag) {
            return Precondition::Failed;
        }
    } else if let Some(since) =
        header_str(headers, "if-unmodified-since").and_then(|d| parse_http_date(&d))
    {
        if mtime > since {
            return Precondition::Failed;
        }
    }
    let if_none_match = header_str(headers, "if-none-match");
    if let Some(list) = &if_none_match {
        if etag_matches(list, etag) {
            return Precondition::NotModified;
        }
    } else if let Some(since) =
        header_str(headers, "if-modified-since").and_then(|d| parse_http_date(&d))
    {
        if mtime <= since {
            return Precondition::NotModified;
        }
    }
    Precondition::Proceed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_metadata_is_rfc2047_decoded_and_encoded() {
        assert_eq!(
            decode_rfc2047("=?UTF-8?B?Y2Fmw6k=?=").as_deref(),
            Some("café")
        );
        assert_eq!(
            decode_rfc2047("=?utf-8?q?caf=C3=A9_au_lait?=").as_deref(),
            Some("café au lait")
        );
        assert_eq!(
            decode_rfc2047("=?UTF-8?B?Y2Fm?= =?UTF-8?B?w6k=?=").as_deref(),
            Some("café")
        );
        assert_eq!(decode_rfc2047("plain"), None);
        assert_eq!(decode_rfc2047("=?KOI8-R?B?AA==?="), None);
        assert_eq!(decode_rfc2047("=?UTF-8?Q?bad=Z?="), None);
        assert_eq!(user_metadata_value("café"), "=?UTF-8?B?Y2Fmw6k=?=");
        assert_eq!(user_metadata_value("plain text"), "plain text");
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-amz-meta-a",
            HeaderValue::from_static("=?UTF-8?B?Y2Fmw6k=?="),
        );
        headers.insert("x-amz-meta-b", HeaderValue::from_bytes(b"caf\xe9").unwrap());
        headers.insert(
            "x-amz-meta-c",
            HeaderValue::from_bytes("café".as_bytes()).unwrap(),
        );
        let stored = user_metadata(&headers).unwrap();
        assert!(stored.iter().all(|(_, v)| v == "café"), "{stored:?}");
    }

    fn range(h: &str, size: u64) -> Result<Option<(u64, u64)>, S3ErrorCode> {
        resolve_range(Some(h), size)
            .map(|r| r.map(|r| (r.start, r.end)))
            .map_err(|e| e.code)
    }

    #[test]
    fn ranges_follow_s3() {
        assert_eq!(range("bytes=0-0", 10), Ok(Some((0, 1))));
        assert_eq!(range("bytes=5-", 10), Ok(Some((5, 10))));
        assert_eq!(range("bytes=-7", 10), Ok(Some((3, 10))));
        assert_eq!(range("bytes=-70", 10), Ok(Some((0, 10))));
        assert_eq!(range("bytes=2-100", 10), Ok(Some((2, 10))));
        assert_eq!(range("bytes=10-", 10), Err(S3ErrorCode::InvalidRange));
        assert_eq!(range("bytes=0-0", 0), Err(S3ErrorCode::InvalidRange));
        assert_eq!(range("bytes=-0", 10), Err(S3ErrorCode::InvalidRange));
        assert_eq!(range("bytes=5-2", 10), Ok(None));
        assert_eq!(range("items=0-1", 10), Ok(None));
        assert_eq!(range("bytes=0-1,3-4", 10), Ok(None));
        assert_eq!(range("bytes=x-1", 10), Ok(None));
    }

    #[test]
    fn content_encoding_drops_aws_chunked() {
        let mut h = HeaderMap::new();
        h.insert(
            "content-encoding",
            HeaderValue::from_static("gzip,aws-chunked"),
        );
        assert_eq!(
            stored_headers(&h),
            vec![("content-encoding".to_string(), "gzip".to_string())]
        );
        h.insert("content-encoding", HeaderValue::from_static("aws-chunked"));
        assert!(stored_headers(&h).is_empty());
    }
}
