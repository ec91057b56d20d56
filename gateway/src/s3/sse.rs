//! The S3 headers of server-side encryption: parsed here into the engine's typed
//! [`SseRequest`] / [`CustomerKey`], answered here from the engine's [`SseKind`], and the
//! engine's [`SseError`]s mapped to the S3 errors AWS gives.
//!
//! Rules (as AWS): `x-amz-server-side-encryption` is `AES256`, `aws:kms` or `aws:kms:dsse`;
//! `-aws-kms-key-id` only with `aws:kms*`; SSE-C needs all three customer headers, algorithm
//! `AES256`, a base64 256-bit key whose MD5 matches, and a TLS connection (unless the server
//! allows SSE-C over HTTP); SSE-C and `x-amz-server-side-encryption` exclude each other.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use http::HeaderMap;
use md5::{Digest, Md5};

use super::error::{S3Error, S3ErrorCode};
use super::headers::{header_str, put_header};
use crate::sse::{CustomerKey, SseError, SseKind, SseRequest};

pub const SSE: &str = "x-amz-server-side-encryption";
const KMS_KEY_ID: &str = "x-amz-server-side-encryption-aws-kms-key-id";
const CONTEXT: &str = "x-amz-server-side-encryption-context";
/// Prefix of the SSE-C headers of the object a request writes or reads.
pub const CUSTOMER: &str = "x-amz-server-side-encryption-customer-";
/// Prefix of the SSE-C headers of a copy source.
pub const COPY_SOURCE_CUSTOMER: &str = "x-amz-copy-source-server-side-encryption-customer-";

fn invalid(message: &str) -> S3Error {
    S3Error::new(S3ErrorCode::InvalidArgument).with_message(message)
}

/// The encryption a write (PutObject, CreateMultipartUpload, CopyObject's target, POST) asks
/// for. `customer_allowed`: the connection may carry SSE-C keys.
pub fn write_request(headers: &HeaderMap, customer_allowed: bool) -> Result<SseRequest, S3Error> {
    let customer = customer_key(headers, CUSTOMER, customer_allowed)?;
    let sse = header_str(headers, SSE);
    let key_id = header_str(headers, KMS_KEY_ID);
    match (sse.as_deref(), customer) {
        (Some(_), Some(_)) => Err(invalid(
            "Server Side Encryption with Customer provided key is incompatible with the encryption method specified",
        )),
        (None, Some(customer)) => Ok(SseRequest::Customer(customer)),
        (Some("AES256"), None) if key_id.is_none() => Ok(SseRequest::S3),
        (Some("aws:kms" | "aws:kms:dsse"), None) => Ok(SseRequest::Kms { key_id }),
        (Some("AES256"), None) => Err(invalid(
            "Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms",
        )),
        (Some(_), None) => Err(invalid("The encryption method specified is not supported")
            .with_extra("ArgumentName", SSE)),
        (None, None) if key_id.is_some() || headers.contains_key(CONTEXT) => Err(invalid(
            "Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms",
        )),
        (None, None) => Ok(SseRequest::None),
    }
}

/// The SSE-C key under `prefix` (`CUSTOMER` or `COPY_SOURCE_CUSTOMER`), if the request has one.
pub fn customer_key(
    headers: &HeaderMap,
    prefix: &str,
    customer_allowed: bool,
) -> Result<Option<CustomerKey>, S3Error> {
    let algorithm = header_str(headers, &format!("{prefix}algorithm"));
    let key = header_str(headers, &format!("{prefix}key"));
    let md5 = header_str(headers, &format!("{prefix}key-md5"));
    if algorithm.is_none() && key.is_none() && md5.is_none() {
        return Ok(None);
    }
    if !customer_allowed {
        return Err(S3Error::new(S3ErrorCode::InvalidRequest).with_message(
            "Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection.",
        ));
    }
    let algorithm = algorithm.ok_or_else(|| {
        invalid("Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm.")
    })?;
    if algorithm != "AES256" {
        return Err(invalid("The encryption algorithm specified is not valid.")
            .with_extra("ArgumentName", "x-amz-server-side-encryption")
            .with_extra("ArgumentValue", &algorithm));
    }
    let key = key.ok_or_else(|| {
        invalid("Requests specifying Server Side Encryption with Customer provided keys must provide an appropriate secret key.")
    })?;
    let md5 = md5.ok_or_else(|| {
        invalid("Requests specifying Server Side Encryption with Customer provided keys must provide the client calculated MD5 of the secret key.")
    })?;
    let raw = BASE64
        .decode(key.trim())
        .ok()
        .and_then(|raw| <[u8; 32]>::try_from(raw).ok())
        .ok_or_else(|| invalid("The secret key was invalid for the specified algorithm."))?;
    let computed = BASE64.encode(Md5::digest(raw));
    if computed != md5.trim() {
        return Err(invalid(
            "The calculated MD5 hash of the key did not match the hash that was provided.",
        ));
    }
    Ok(Some(CustomerKey {
        key: raw,
        md5: computed,
    }))
}

/// Adds the response headers that describe an object's (or upload's) encryption.
pub fn put_response_headers(headers: &mut HeaderMap, kind: Option<&SseKind>) {
    match kind {
        None => {}
        Some(SseKind::S3) => put_header(headers, SSE, "AES256"),
        Some(SseKind::Kms { key_id }) => {
            put_header(headers, SSE, "aws:kms");
            put_header(headers, KMS_KEY_ID, key_id);
        }
        Some(SseKind::Customer { key_md5 }) => {
            put_header(headers, &format!("{CUSTOMER}algorithm"), "AES256");
            put_header(headers, &format!("{CUSTOMER}key-md5"), key_md5);
        }
    }
}

/// The S3 error of an encryption failure.
pub fn s3_error(error: SseError) -> S3Error {
    match error {
        SseError::CustomerKeyMissing => S3Error::new(S3ErrorCode::InvalidRequest).with_message(
            "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.",
        ),
        SseError::CustomerKeyWrong => S3Error::new(S3ErrorCode::AccessDenied).with_message(
            "Requests specifying Server Side Encryption with Customer provided keys must provide the correct secret key.",
        ),
        SseError::CustomerKeyUnexpected => S3Error::new(S3ErrorCode::InvalidRequest)
            .with_message("The encryption parameters are not applicable to this object."),
        SseError::KmsNotConfigured => S3Error::new(S3ErrorCode::NotImplemented).with_message(
            "Server side encryption specified but KMS is not configured",
        ),
        SseError::KmsKeyNotFound(id) => S3Error::new(S3ErrorCode::KmsNotFoundException)
            .with_message(format!("Invalid keyId {id}")),
        SseError::NoMasterKey => S3Error::new(S3ErrorCode::NotImplemented)
            .with_message("Server side encryption specified but no master key is configured"),
        error @ (SseError::Corrupt(_)
        | SseError::KeyFile(_)
        | SseError::Unwrap
        | SseError::UnknownMasterKey(_)) => {
            S3Error::new(S3ErrorCode::InternalError).with_source(error)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        h
    }

    fn customer_headers(key: &[u8; 32]) -> Vec<(String, String)> {
        vec![
            (format!("{CUSTOMER}algorithm"), "AES256".into()),
            (format!("{CUSTOMER}key"), BASE64.encode(key)),
            (
                format!("{CUSTOMER}key-md5"),
                BASE64.encode(Md5::digest(key)),
            ),
        ]
    }

    #[test]
    fn write_requests_parse() {
        assert_eq!(
            write_request(&headers(&[]), false).unwrap(),
            SseRequest::None
        );
        assert_eq!(
            write_request(&headers(&[(SSE, "AES256")]), false).unwrap(),
            SseRequest::S3
        );
        assert_eq!(
            write_request(&headers(&[(SSE, "aws:kms"), (KMS_KEY_ID, "k")]), false).unwrap(),
            SseRequest::Kms {
                key_id: Some("k".into())
            }
        );
        let code = |h: &[(&str, &str)]| write_request(&headers(h), true).unwrap_err().code;
        assert_eq!(code(&[(SSE, "DES")]), S3ErrorCode::InvalidArgument);
        assert_eq!(code(&[(KMS_KEY_ID, "k")]), S3ErrorCode::InvalidArgument);
        assert_eq!(
            code(&[(SSE, "AES256"), (KMS_KEY_ID, "k")]),
            S3ErrorCode::InvalidArgument
        );
    }

    #[test]
    fn customer_keys_are_checked() {
        let owned = customer_headers(&[5u8; 32]);
        let pairs: Vec<(&str, &str)> = owned
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let parsed = write_request(&headers(&pairs), true).unwrap();
        assert!(matches!(parsed, SseRequest::Customer(ref c) if c.key == [5u8; 32]));
        // Over plain HTTP without the setting: 400 InvalidRequest.
        assert_eq!(
            write_request(&headers(&pairs), false).unwrap_err().code,
            S3ErrorCode::InvalidRequest
        );
        // Wrong MD5, missing key, bad algorithm, short key: 400 InvalidArgument.
        let mut wrong_md5 = pairs.clone();
        wrong_md5[2].1 = "AAAAAAAAAAAAAAAAAAAAAA==";
        let short = BASE64.encode([1u8; 16]);
        let mut short_key = pairs.clone();
        short_key[1].1 = short.as_str();
        let mut bad_algorithm = pairs.clone();
        bad_algorithm[0].1 = "AES128";
        for case in [
            wrong_md5,
            pairs[..1].to_vec(),
            vec![pairs[0], pairs[1]],
            bad_algorithm,
            short_key,
            pairs[1..].to_vec(),
        ] {
            assert_eq!(
                write_request(&headers(&case), true).unwrap_err().code,
                S3ErrorCode::InvalidArgument,
                "{case:?}"
            );
        }
        let mut both = pairs.clone();
        both.push((SSE, "AES256"));
        assert_eq!(
            write_request(&headers(&both), true).unwrap_err().code,
            S3ErrorCode::InvalidArgument
        );
    }
}
