//! Request authentication: decides which of the four S3 signing schemes a request uses (SigV4
//! `Authorization` header, SigV4 presigned query, SigV2 header, SigV2 presigned query), verifies
//! it against the [`Keyring`], and tells the body layer how the payload itself is protected
//! ([`PayloadMode`]).
//!
//! Invariants: the path is used exactly as received (clients percent-encode it and S3 does not
//! encode it twice); signatures are compared in constant time; anonymous requests are refused;
//! a request carrying two authentication mechanisms is refused; nothing here reads the body.

mod keyring;
mod post;
mod presign;
mod sigv2;
mod sigv4;

use std::fmt;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, Method, Uri};

use crate::s3::context_keys::SigningScheme;
use crate::s3::error::{S3Error, S3ErrorCode};

pub use keyring::{AuthConfig, Keyring};
pub use post::{verify_post_signature, PostSignature};
#[cfg(test)]
pub(crate) use sigv4::derive_signing_key;
pub(crate) use sigv4::{chunk_signature, trailer_signature};
pub use sigv4::{sign_request, sign_request_with, EMPTY_SHA256_HEX};

/// Who sent the request and how its payload must be verified.
#[derive(Debug, Clone)]
pub struct AuthContext {
    /// The access key that signed; empty for an unsigned (anonymous) request.
    pub access_key: String,
    pub payload: PayloadMode,
    /// How the request was signed (`s3:signatureversion`, `s3:authType`).
    pub scheme: SigningScheme,
}

impl AuthContext {
    /// The context of an unsigned request: the anonymous principal, payload not signed.
    pub fn anonymous() -> Self {
        Self {
            access_key: String::new(),
            payload: PayloadMode::Unsigned,
            scheme: SigningScheme::Unsigned,
        }
    }
}

/// True when a request carries no signature at all (no `Authorization` header, no SigV4 or
/// SigV2 query parameters): it is evaluated as the anonymous principal.
pub fn is_unsigned(uri: &Uri, headers: &HeaderMap) -> bool {
    if headers.contains_key(http::header::AUTHORIZATION) {
        return false;
    }
    let params = RawQuery::parse(uri.query().unwrap_or(""));
    ![
        "X-Amz-Algorithm",
        "X-Amz-Signature",
        "X-Amz-Credential",
        "AWSAccessKeyId",
        "Signature",
    ]
    .iter()
    .any(|name| params.get(name).is_some())
}

/// The STS session token a request carries (`X-Amz-Security-Token` header or query
/// parameter), if any.
pub fn security_token(uri: &Uri, headers: &HeaderMap) -> Option<String> {
    if let Some(value) = headers.get("x-amz-security-token") {
        return value.to_str().ok().map(str::to_owned);
    }
    let params = RawQuery::parse(uri.query().unwrap_or(""));
    params
        .get("X-Amz-Security-Token")
        .or_else(|| params.get("x-amz-security-token"))
}

/// How the request payload is protected, from `x-amz-content-sha256` (and the scheme).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadMode {
    /// Not signed: `UNSIGNED-PAYLOAD`, presigned URLs, SigV2.
    Unsigned,
    /// The SHA-256 of the whole body, as signed.
    Sha256Hex([u8; 32]),
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`: aws-chunked with a signature per chunk.
    StreamingSigned {
        seed_signature: [u8; 32],
        signing_key: SigningKey,
        scope: String,
        timestamp: String,
    },
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`: as above plus a signed trailer.
    StreamingSignedTrailer {
        seed_signature: [u8; 32],
        signing_key: SigningKey,
        scope: String,
        timestamp: String,
    },
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: aws-chunked without signatures, trailer unsigned.
    StreamingUnsignedTrailer,
}

impl PayloadMode {
    /// True for the three aws-chunked modes.
    pub fn is_streaming(&self) -> bool {
        matches!(
            self,
            Self::StreamingSigned { .. }
                | Self::StreamingSignedTrailer { .. }
                | Self::StreamingUnsignedTrailer
        )
    }

    /// The payload mode as named in `x-amz-content-sha256` (`"sha256"` for a hex digest).
    pub fn wire_name(&self) -> &'static str {
        match self {
            Self::Unsigned => "UNSIGNED-PAYLOAD",
            Self::Sha256Hex(_) => "sha256",
            Self::StreamingSigned { .. } => "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
            Self::StreamingSignedTrailer { .. } => "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
            Self::StreamingUnsignedTrailer => "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        }
    }
}

/// A derived SigV4 signing key; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey(pub [u8; 32]);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

/// Verifies the request's signature. See the module docs for the accepted schemes.
pub fn authenticate(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    keyring: &Keyring,
    cfg: &AuthConfig,
    now: SystemTime,
) -> Result<AuthContext, S3Error> {
    authenticate_service(method, uri, headers, keyring, cfg, now, "s3")
}

/// [`authenticate`] for a request to `service` (`s3`, or `sts` for the STS calls): a SigV4
/// scope must name that service.
pub fn authenticate_service(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    keyring: &Keyring,
    cfg: &AuthConfig,
    now: SystemTime,
    service: &'static str,
) -> Result<AuthContext, S3Error> {
    let query = uri.query().unwrap_or("");
    let params = RawQuery::parse(query);
    let authorization = header_str(headers, "authorization")?;
    let v4_query = params.get("X-Amz-Algorithm").is_some()
        || params.get("X-Amz-Signature").is_some()
        || params.get("X-Amz-Credential").is_some();
    let v2_query = params.get("AWSAccessKeyId").is_some() || params.get("Signature").is_some();
    let request = Request {
        method,
        uri,
        headers,
        query: &params,
        keyring,
        cfg,
        now,
        service,
    };
    match (authorization, v4_query, v2_query) {
        (Some(_), true, _) | (Some(_), _, true) | (None, true, true) => {
            Err(S3Error::new(S3ErrorCode::InvalidArgument)
                .with_message(
                    "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, \
                     Signature query string parameter or the Authorization header should be specified",
                )
                .with_extra("ArgumentName", "Authorization"))
        }
        (Some(value), false, false) => {
            if value.starts_with("AWS4-HMAC-SHA256 ") {
                sigv4::authenticate_header(&request, value).map(scheme(SigningScheme::V4Header))
            } else if let Some(rest) = value.strip_prefix("AWS ") {
                sigv2::authenticate_header(&request, rest).map(scheme(SigningScheme::V2Header))
            } else if value.starts_with("AWS4-ECDSA-P256-SHA256") {
                Err(S3Error::new(S3ErrorCode::NotImplemented)
                    .with_message("SigV4a (AWS4-ECDSA-P256-SHA256) is not supported."))
            } else {
                Err(S3Error::new(S3ErrorCode::InvalidArgument)
                    .with_message("Unsupported Authorization Type")
                    .with_extra("ArgumentName", "Authorization")
                    .with_extra("ArgumentValue", value.chars().take(64).collect::<String>()))
            }
        }
        (None, true, false) => {
            presign::authenticate_query(&request).map(scheme(SigningScheme::V4Query))
        }
        (None, false, true) => {
            sigv2::authenticate_query(&request).map(scheme(SigningScheme::V2Query))
        }
        (None, false, false) => Err(S3Error::new(S3ErrorCode::AccessDenied)),
    }
}

/// Records which scheme verified a request.
fn scheme(scheme: SigningScheme) -> impl FnOnce(AuthContext) -> AuthContext {
    move |context| AuthContext { scheme, ..context }
}

/// Everything a scheme needs to verify one request.
pub(crate) struct Request<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    pub query: &'a RawQuery<'a>,
    pub keyring: &'a Keyring,
    pub cfg: &'a AuthConfig,
    pub now: SystemTime,
    /// The service SigV4 scopes must name (`s3`, `sts`).
    pub service: &'static str,
}

impl Request<'_> {
    fn secret_of(&self, access_key: &str) -> Result<&str, S3Error> {
        self.keyring
            .secret(access_key)
            .ok_or_else(|| S3Error::new(S3ErrorCode::InvalidAccessKeyId))
    }

    /// The `Host` header, else the URI authority (HTTP/2).
    fn host(&self) -> Option<&str> {
        match self.headers.get(http::header::HOST) {
            Some(value) => value.to_str().ok(),
            None => self.uri.authority().map(|authority| authority.as_str()),
        }
    }

    /// `RequestTimeTooSkewed` unless `at` is within `max_skew` of now.
    fn check_skew(&self, at: SystemTime) -> Result<(), S3Error> {
        let skew = match self.now.duration_since(at) {
            Ok(behind) => behind,
            Err(ahead) => ahead.duration(),
        };
        if skew > self.cfg.max_skew {
            return Err(S3Error::new(S3ErrorCode::RequestTimeTooSkewed)
                .with_extra("RequestTime", httpdate::fmt_http_date(at))
                .with_extra("ServerTime", httpdate::fmt_http_date(self.now))
                .with_extra(
                    "MaxAllowedSkewMilliseconds",
                    self.cfg.max_skew.as_millis().to_string(),
                ));
        }
        Ok(())
    }
}

/// The raw query split into `(key, value, had_equals)` pieces, still percent-encoded, in
/// request order. A piece without `=` has an empty value; empty pieces (`a&&b`) are skipped.
pub(crate) struct RawQuery<'a> {
    pub pairs: Vec<(&'a str, &'a str, bool)>,
}

/// Upper bound on query pieces looked at; S3 requests carry a handful.
const MAX_QUERY_PIECES: usize = 1000;

impl<'a> RawQuery<'a> {
    pub fn parse(query: &'a str) -> Self {
        let pairs = query
            .split('&')
            .filter(|piece| !piece.is_empty())
            .take(MAX_QUERY_PIECES)
            .map(|piece| match piece.split_once('=') {
                Some((key, value)) => (key, value, true),
                None => (piece, "", false),
            })
            .collect();
        Self { pairs }
    }

    /// The decoded value of the first parameter whose decoded name is `name`.
    pub fn get(&self, name: &str) -> Option<String> {
        self.pairs
            .iter()
            .find(|(key, _, _)| decode(key) == name)
            .map(|(_, value, _)| decode(value))
    }
}

/// Percent-decodes (no `+` → space: S3 signers encode spaces as `%20`), lossy on bad UTF-8.
pub(crate) fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// A header as text; a present but non-ASCII value is an `InvalidArgument`.
pub(crate) fn header_str<'h>(
    headers: &'h HeaderMap,
    name: &str,
) -> Result<Option<&'h str>, S3Error> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => value.to_str().map(Some).map_err(|_| {
            S3Error::new(S3ErrorCode::InvalidArgument)
                .with_message(format!("Header {name} is not valid text"))
        }),
    }
}

/// Parses an ISO 8601 basic timestamp (`20130524T000000Z`).
pub(crate) fn parse_amz_date(text: &str) -> Option<SystemTime> {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let parsed = time::PrimitiveDateTime::parse(text, format).ok()?;
    let seconds = u64::try_from(parsed.assume_utc().unix_timestamp()).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
