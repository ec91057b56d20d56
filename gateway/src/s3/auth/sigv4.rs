//! AWS Signature Version 4 for S3: the canonical request, the string to sign, the signing key,
//! verification of the `Authorization: AWS4-HMAC-SHA256 …` header, and the chunk and trailer
//! signatures of aws-chunked uploads.
//!
//! Follows "Signature Calculations for the Authorization Header" of the S3 API reference:
//! canonical URI = the path exactly as received (S3 does not double-encode; a normalised
//! re-encoding is tried as a fallback for clients that leave sub-delims unescaped); canonical
//! query = pairs decoded then re-encoded with AWS's unreserved set and sorted; header values
//! trimmed with inner whitespace squeezed. Every signed request must sign `host` and every
//! `x-amz-*` header it carries.

use std::time::SystemTime;

use hmac::{Hmac, Mac};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{header_str, parse_amz_date, AuthContext, PayloadMode, RawQuery, Request, SigningKey};
use crate::s3::context_keys::SigningScheme;
use crate::s3::error::{S3Error, S3ErrorCode};

/// SHA-256 of the empty string, hex.
pub const EMPTY_SHA256_HEX: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Characters SigV4 leaves unescaped in query names and values: `A-Z a-z 0-9 - _ . ~`.
const QUERY_ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// The same plus `/`, for the normalised path.
const PATH_ENCODE_SET: &AsciiSet = &QUERY_ENCODE_SET.remove(b'/');

/// Upper bound on `SignedHeaders` entries.
const MAX_SIGNED_HEADERS: usize = 64;

type HmacSha256 = Hmac<Sha256>;

pub(crate) fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return [0; 32],
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// `AKID/yyyymmdd/region/service/aws4_request`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CredentialScope {
    pub access_key: String,
    pub date: String,
    pub region: String,
    /// `s3`, or `sts` for the STS calls served on the S3 port.
    pub service: String,
}

impl CredentialScope {
    /// `date/region/service/aws4_request`.
    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

/// Services whose requests this endpoint verifies: S3, and STS on the same port (MinIO-style).
const SERVICES: &[&str] = &["s3", "sts"];

/// Parses a credential; `Err(message)` says what is wrong, the caller picks the error code.
pub(crate) fn parse_credential(credential: &str) -> Result<CredentialScope, String> {
    const EXPECTED: &str = "expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".";
    let mut parts = credential.rsplitn(5, '/');
    let (Some(terminator), Some(service), Some(region), Some(date), Some(access_key)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(format!("the Credential is mal-formed; {EXPECTED}"));
    };
    if access_key.is_empty() || region.is_empty() {
        return Err(format!("the Credential is mal-formed; {EXPECTED}"));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("incorrect date format \"{date}\". This date in the credential must be in the format \"yyyyMMdd\"."));
    }
    if !SERVICES.contains(&service) {
        return Err(format!(
            "incorrect service \"{service}\". This endpoint belongs to \"s3\"."
        ));
    }
    if terminator != "aws4_request" {
        return Err(format!(
            "incorrect terminal \"{terminator}\". This endpoint uses \"aws4_request\"."
        ));
    }
    Ok(CredentialScope {
        access_key: access_key.to_owned(),
        date: date.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
    })
}

/// `AuthorizationHeaderMalformed`-style refusal of a scope naming another service than the
/// request is for (an S3 request signed for `sts`, or the reverse).
pub(crate) fn check_service(request: &Request<'_>, scope: &CredentialScope) -> Result<(), String> {
    if scope.service == request.service {
        Ok(())
    } else {
        Err(format!(
            "incorrect service \"{}\". This endpoint belongs to \"{}\".",
            scope.service, request.service
        ))
    }
}

/// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), "s3"), "aws4_request")`.
pub(crate) fn derive_signing_key(secret: &str, date: &str, region: &str) -> [u8; 32] {
    derive_service_signing_key(secret, date, region, "s3")
}

/// The signing key of `service` (`s3`, `sts`).
pub(crate) fn derive_service_signing_key(
    secret: &str,
    date: &str,
    region: &str,
    service: &str,
) -> [u8; 32] {
    let k_date = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    hmac_sha256(&k_service, b"aws4_request")
}

/// Signature of one aws-chunked chunk, chained on the previous one.
pub(crate) fn chunk_signature(
    key: &SigningKey,
    timestamp: &str,
    scope: &str,
    previous: &[u8; 32],
    chunk_sha256: &[u8; 32],
) -> [u8; 32] {
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256-PAYLOAD\n{timestamp}\n{scope}\n{}\n{EMPTY_SHA256_HEX}\n{}",
        hex::encode(previous),
        hex::encode(chunk_sha256)
    );
    hmac_sha256(&key.0, string_to_sign.as_bytes())
}

/// Signature of the trailer chunk; `canonical_trailers` is `name:value\n` per trailer.
pub(crate) fn trailer_signature(
    key: &SigningKey,
    timestamp: &str,
    scope: &str,
    previous: &[u8; 32],
    canonical_trailers: &[u8],
) -> [u8; 32] {
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256-TRAILER\n{timestamp}\n{scope}\n{}\n{}",
        hex::encode(previous),
        sha256_hex(canonical_trailers)
    );
    hmac_sha256(&key.0, string_to_sign.as_bytes())
}

/// The parts of a SigV4 signature common to the header and the query forms.
pub(crate) struct SignedParts<'a> {
    pub scope: CredentialScope,
    /// ISO 8601 basic timestamp as signed.
    pub timestamp: String,
    pub signed_headers: Vec<&'a str>,
    pub signature: [u8; 32],
    /// AWS compares the signature as the lowercase hex string it computes: the same digits in
    /// upper case are a mismatch (SignatureDoesNotMatch), not an alternative spelling.
    pub signature_lowercase: bool,
    /// The last line of the canonical request.
    pub payload_hash: String,
    /// Presigned requests sign their query minus `X-Amz-Signature`.
    pub presigned: bool,
}

/// Checks the signature; returns the signing key on success.
pub(crate) fn verify(
    request: &Request<'_>,
    parts: &SignedParts<'_>,
) -> Result<SigningKey, S3Error> {
    let secret = request.secret_of(&parts.scope.access_key)?;
    // The cache is keyed by region; an STS key is cached under `region/sts`.
    let region_key = if parts.scope.service == "s3" {
        parts.scope.region.clone()
    } else {
        format!("{}/{}", parts.scope.region, parts.scope.service)
    };
    let key = SigningKey(request.keyring.signing_key(
        &parts.scope.access_key,
        &parts.scope.date,
        &region_key,
        || {
            derive_service_signing_key(
                secret,
                &parts.scope.date,
                &parts.scope.region,
                &parts.scope.service,
            )
        },
    ));
    let headers_block = canonical_headers(request, &parts.signed_headers)?;
    let query = canonical_query(request.query, parts.presigned);
    let scope = parts.scope.scope();
    let raw_path = match request.uri.path() {
        "" => "/",
        path => path,
    };
    let normalised = normalised_path(raw_path);
    let mut first_attempt = None;
    for path in std::iter::once(raw_path).chain(normalised.as_deref()) {
        let canonical_request = canonical_request(
            request.method.as_str(),
            path,
            &query,
            &headers_block,
            &parts.signed_headers.join(";"),
            &parts.payload_hash,
        );
        let string_to_sign = string_to_sign(&parts.timestamp, &scope, &canonical_request);
        let expected = hmac_sha256(&key.0, string_to_sign.as_bytes());
        if parts.signature_lowercase && bool::from(expected.ct_eq(&parts.signature)) {
            return Ok(key);
        }
        first_attempt.get_or_insert((canonical_request, string_to_sign));
    }
    let (canonical_request, string_to_sign) = first_attempt.unwrap_or_default();
    Err(S3Error::new(S3ErrorCode::SignatureDoesNotMatch)
        .with_extra("AWSAccessKeyId", parts.scope.access_key.clone())
        .with_extra("StringToSign", string_to_sign)
        .with_extra("SignatureProvided", hex::encode(parts.signature))
        .with_extra("CanonicalRequest", canonical_request))
}

/// The canonical request of SigV4: one definition for verifying and for signing.
fn canonical_request(
    method: &str,
    path: &str,
    query: &str,
    headers_block: &str,
    signed_headers: &str,
    payload_hash: &str,
) -> String {
    format!("{method}\n{path}\n{query}\n{headers_block}\n{signed_headers}\n{payload_hash}")
}

fn string_to_sign(timestamp: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256\n{timestamp}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// Signs a request as a client (`strata admin`, `strata bench`): returns the `x-amz-date`,
/// `x-amz-content-sha256` and `authorization` headers to send along with `host`. `target` is
/// the (path, query) pair, sent exactly as given (already percent-encoded); `payload_hash` is
/// the hex SHA-256 of the body, or `UNSIGNED-PAYLOAD`.
pub fn sign_request(
    method: &str,
    host: &str,
    target: (&str, &str),
    payload_hash: &str,
    credentials: (&str, &str),
    region: &str,
    now: SystemTime,
) -> Option<Vec<(&'static str, String)>> {
    sign_request_with(
        method,
        host,
        target,
        payload_hash,
        credentials,
        region,
        now,
        &[],
    )
}

/// [`sign_request`] that also signs `extra` headers (lowercase names, sent by the caller).
#[allow(clippy::too_many_arguments)]
pub fn sign_request_with(
    method: &str,
    host: &str,
    target: (&str, &str),
    payload_hash: &str,
    credentials: (&str, &str),
    region: &str,
    now: SystemTime,
    extra: &[(&str, &str)],
) -> Option<Vec<(&'static str, String)>> {
    let (path, query) = target;
    let (access_key, secret_key) = credentials;
    let timestamp = format_amz_date(now)?;
    let date = timestamp.get(..8)?.to_owned();
    let scope = CredentialScope {
        access_key: access_key.to_owned(),
        date,
        region: region.to_owned(),
        service: "s3".to_owned(),
    };
    let mut signed: Vec<(&str, &str)> = vec![
        ("host", host),
        ("x-amz-content-sha256", payload_hash),
        ("x-amz-date", timestamp.as_str()),
    ];
    signed.extend_from_slice(extra);
    signed.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let signed_headers = signed
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(";");
    let headers_block: String = signed
        .iter()
        .map(|(name, value)| format!("{name}:{}\n", value.trim()))
        .collect();
    let query = canonical_query(&RawQuery::parse(query), false);
    let canonical = canonical_request(
        method,
        path,
        &query,
        &headers_block,
        &signed_headers,
        payload_hash,
    );
    let key = derive_signing_key(secret_key, &scope.date, region);
    let to_sign = string_to_sign(&timestamp, &scope.scope(), &canonical);
    let signature = hex::encode(hmac_sha256(&key, to_sign.as_bytes()));
    Some(vec![
        ("x-amz-date", timestamp),
        ("x-amz-content-sha256", payload_hash.to_owned()),
        (
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential={access_key}/{}, SignedHeaders={signed_headers}, Signature={signature}",
                scope.scope()
            ),
        ),
    ])
}

/// `name:value\n` for each signed header (values of repeated headers joined with `,`), without
/// the final newline's blank line. A signed header absent from the request signs as empty.
fn canonical_headers(request: &Request<'_>, signed: &[&str]) -> Result<String, S3Error> {
    let mut block = String::new();
    for name in signed {
        block.push_str(name);
        block.push(':');
        if *name == "host" && request.headers.get(http::header::HOST).is_none() {
            block.push_str(request.host().unwrap_or(""));
        } else {
            let values: Vec<String> = request
                .headers
                .get_all(*name)
                .iter()
                .map(|value| {
                    String::from_utf8_lossy(value.as_bytes())
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect();
            block.push_str(&values.join(","));
        }
        block.push('\n');
    }
    Ok(block)
}

/// Sorted `name=value` pairs, each decoded then re-encoded with the unreserved set.
pub(crate) fn canonical_query(query: &RawQuery<'_>, presigned: bool) -> String {
    let mut pairs: Vec<(String, String)> = query
        .pairs
        .iter()
        .map(|(key, value, _)| (reencode(key), reencode(value)))
        .filter(|(key, _)| !(presigned && key == "X-Amz-Signature"))
        .collect();
    pairs.sort();
    let pieces: Vec<String> = pairs
        .into_iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    pieces.join("&")
}

fn reencode(text: &str) -> String {
    let bytes: Vec<u8> = percent_decode_str(text).collect();
    percent_encoding::percent_encode(&bytes, QUERY_ENCODE_SET).to_string()
}

/// The path re-encoded the way AWS SDKs encode it, if that differs from what was received.
fn normalised_path(raw: &str) -> Option<String> {
    let bytes: Vec<u8> = percent_decode_str(raw).collect();
    let decoded = String::from_utf8(bytes).ok()?;
    let encoded = utf8_percent_encode(&decoded, PATH_ENCODE_SET).to_string();
    (encoded != raw).then_some(encoded)
}

/// Parses `SignedHeaders` and checks that `host` and every `x-amz-*` header present are signed.
pub(crate) fn parse_signed_headers<'a>(
    request: &Request<'_>,
    list: &'a str,
    malformed: impl Fn(&str) -> S3Error,
) -> Result<Vec<&'a str>, S3Error> {
    let signed: Vec<&str> = list.split(';').map(str::trim).collect();
    if list.is_empty()
        || signed.len() > MAX_SIGNED_HEADERS
        || signed
            .iter()
            .any(|name| name.is_empty() || name.bytes().any(|b| b.is_ascii_uppercase()))
    {
        return Err(malformed("SignedHeaders is malformed."));
    }
    let mut unsigned: Vec<&str> = request
        .headers
        .keys()
        .map(http::HeaderName::as_str)
        .filter(|name| name.starts_with("x-amz-") && !signed.contains(name))
        .collect();
    if !signed.contains(&"host") {
        unsigned.insert(0, "host");
    }
    if !unsigned.is_empty() {
        return Err(S3Error::new(S3ErrorCode::AccessDenied)
            .with_message("There were headers present in the request which were not signed")
            .with_extra("HeadersNotSigned", unsigned.join(", ")));
    }
    Ok(signed)
}

/// Refuses scopes naming another region when a strict region is configured.
pub(crate) fn check_region(
    request: &Request<'_>,
    scope: &CredentialScope,
    code: S3ErrorCode,
) -> Result<(), S3Error> {
    match &request.cfg.strict_region {
        Some(expected) if *expected != scope.region => Err(S3Error::new(code)
            .with_message(format!(
                "The authorization header is malformed; the region '{}' is wrong; expecting '{expected}'",
                scope.region
            ))
            .with_extra("Region", expected.clone())),
        _ => Ok(()),
    }
}

/// Formats a time as an ISO 8601 basic timestamp.
pub(crate) fn format_amz_date(at: SystemTime) -> Option<String> {
    let seconds = at.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs();
    let datetime = time::OffsetDateTime::from_unix_timestamp(i64::try_from(seconds).ok()?).ok()?;
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    datetime.format(format).ok()
}

/// True when `text` has no upper-case letters (a SigV4 signature is sent in lower-case hex).
pub(crate) fn is_lowercase(text: &str) -> bool {
    !text.bytes().any(|b| b.is_ascii_uppercase())
}

pub(crate) fn parse_signature_hex(text: &str) -> Option<[u8; 32]> {
    let mut signature = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut signature).ok()?;
    Some(signature)
}

/// `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
pub(super) fn authenticate_header(
    request: &Request<'_>,
    value: &str,
) -> Result<AuthContext, S3Error> {
    let malformed = |detail: &str| {
        S3Error::new(S3ErrorCode::AuthorizationHeaderMalformed)
            .with_message(format!("The authorization header is malformed; {detail}"))
    };
    let rest = value.strip_prefix("AWS4-HMAC-SHA256").unwrap_or(value);
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for component in rest.split(',').take(16) {
        let Some((name, component_value)) = component.trim().split_once('=') else {
            return Err(malformed(
                "the Authorization header component is not of the form name=value.",
            ));
        };
        match name.trim() {
            "Credential" => credential = Some(component_value.trim()),
            "SignedHeaders" => signed_headers = Some(component_value.trim()),
            "Signature" => signature = Some(component_value.trim()),
            _ => {}
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(malformed(
            "a non-empty Credential, SignedHeaders and Signature are required.",
        ));
    };
    let scope = parse_credential(credential).map_err(|detail| malformed(&detail))?;
    check_service(request, &scope).map_err(|detail| malformed(&detail))?;
    check_region(request, &scope, S3ErrorCode::AuthorizationHeaderMalformed)?;
    // The key must exist before anything else is checked, as S3 does.
    request.secret_of(&scope.access_key)?;
    let signature_lowercase = is_lowercase(signature);
    let signature = parse_signature_hex(signature)
        .ok_or_else(|| malformed("the Signature is not 64 hexadecimal characters."))?;
    let signed_headers = parse_signed_headers(request, signed_headers, malformed)?;

    let (timestamp, at) = request_time(request)?;
    request.check_skew(at)?;
    if !timestamp.starts_with(&scope.date) {
        return Err(malformed(&format!(
            "Invalid credential date \"{}\". This date is not the same as X-Amz-Date: \"{}\".",
            scope.date,
            timestamp.get(..8).unwrap_or("")
        )));
    }

    let (payload_hash, mode) = payload_hash_and_mode(request)?;
    let parts = SignedParts {
        scope,
        timestamp,
        signed_headers,
        signature,
        signature_lowercase,
        payload_hash,
        presigned: false,
    };
    let key = verify(request, &parts)?;
    let payload = match mode {
        PayloadKind::Fixed(payload) => payload,
        PayloadKind::StreamingSigned { trailer } => {
            let scope = parts.scope.scope();
            let (seed_signature, signing_key, timestamp) = (parts.signature, key, parts.timestamp);
            if trailer {
                PayloadMode::StreamingSignedTrailer {
                    seed_signature,
                    signing_key,
                    scope,
                    timestamp,
                }
            } else {
                PayloadMode::StreamingSigned {
                    seed_signature,
                    signing_key,
                    scope,
                    timestamp,
                }
            }
        }
    };
    Ok(AuthContext {
        access_key: parts.scope.access_key,
        payload,
        scheme: SigningScheme::V4Header,
    })
}

/// The signed timestamp: `x-amz-date`, else `Date` (then reformatted as ISO 8601 basic).
fn request_time(request: &Request<'_>) -> Result<(String, SystemTime), S3Error> {
    let denied = || {
        S3Error::new(S3ErrorCode::AccessDenied)
            .with_message("AWS authentication requires a valid Date or x-amz-date header")
    };
    if let Some(amz_date) = header_str(request.headers, "x-amz-date")? {
        let at = parse_amz_date(amz_date.trim()).ok_or_else(denied)?;
        return Ok((amz_date.trim().to_owned(), at));
    }
    // As lenient as SigV2: botocore writes `Date` in the RFC 2822 form with `-0000`.
    let date = header_str(request.headers, "date")?.ok_or_else(denied)?;
    let at = super::sigv2::parse_http_date_lenient(date).ok_or_else(denied)?;
    let timestamp = format_amz_date(at).ok_or_else(denied)?;
    Ok((timestamp, at))
}

enum PayloadKind {
    Fixed(PayloadMode),
    StreamingSigned { trailer: bool },
}

/// Reads `x-amz-content-sha256`: the canonical request's last line and the payload mode.
fn payload_hash_and_mode(request: &Request<'_>) -> Result<(String, PayloadKind), S3Error> {
    let Some(value) = header_str(request.headers, "x-amz-content-sha256")? else {
        // S3 requires the header. Tolerate its absence only where the body is known empty.
        let has_body = request
            .headers
            .contains_key(http::header::TRANSFER_ENCODING)
            || header_str(request.headers, "content-length")?
                .is_some_and(|length| length.trim() != "0");
        if has_body {
            return Err(S3Error::new(S3ErrorCode::InvalidRequest)
                .with_message("Missing required header for this request: x-amz-content-sha256"));
        }
        let empty = parse_signature_hex(EMPTY_SHA256_HEX).unwrap_or_default();
        return Ok((
            EMPTY_SHA256_HEX.to_owned(),
            PayloadKind::Fixed(PayloadMode::Sha256Hex(empty)),
        ));
    };
    let value = value.trim();
    let kind = match value {
        "UNSIGNED-PAYLOAD" => PayloadKind::Fixed(PayloadMode::Unsigned),
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => {
            PayloadKind::Fixed(PayloadMode::StreamingUnsignedTrailer)
        }
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" => PayloadKind::StreamingSigned { trailer: false },
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" => {
            PayloadKind::StreamingSigned { trailer: true }
        }
        "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"
        | "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER" => {
            return Err(S3Error::new(S3ErrorCode::NotImplemented)
                .with_message(format!("x-amz-content-sha256 {value} is not supported.")));
        }
        hex_value => match parse_signature_hex(hex_value) {
            Some(hash) if hex_value.len() == 64 => PayloadKind::Fixed(PayloadMode::Sha256Hex(hash)),
            _ => {
                return Err(S3Error::new(S3ErrorCode::InvalidArgument)
                    .with_message(
                        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, \
                         STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER \
                         or a valid sha256 value.",
                    )
                    .with_extra("ArgumentName", "x-amz-content-sha256")
                    .with_extra("ArgumentValue", hex_value.chars().take(128).collect::<String>()));
            }
        },
    };
    Ok((value.to_owned(), kind))
}
