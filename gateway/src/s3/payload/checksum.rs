//! `Content-MD5` and the protocol side of S3 "flexible checksums": parsing client-supplied
//! digests into S3 errors. The arithmetic (algorithms, hashers, combining) is
//! [`crate::checksum`], shared with the engine.
//!
//! Invariant: a malformed client digest is an error, never silently ignored.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use md5::{Digest as _, Md5};

use crate::checksum::ChecksumAlgorithm;
use crate::s3::error::{S3Error, S3ErrorCode};

/// Checks that `value` is base64 of a digest of the right length for `algorithm`.
pub fn validate_checksum_value(algorithm: ChecksumAlgorithm, value: &str) -> Result<(), S3Error> {
    if algorithm.is_valid_base64(value) {
        return Ok(());
    }
    Err(
        S3Error::new(S3ErrorCode::InvalidRequest).with_message(format!(
            "Value for {} header is invalid.",
            algorithm.header_name()
        )),
    )
}

/// Parses `Content-MD5` if present. A value that is not base64 of 16 bytes → `InvalidDigest`.
pub fn verify_content_md5(headers: &http::HeaderMap) -> Result<Option<[u8; 16]>, S3Error> {
    let Some(value) = headers.get("content-md5") else {
        return Ok(None);
    };
    let invalid = || S3Error::new(S3ErrorCode::InvalidDigest);
    let text = value.to_str().map_err(|_| invalid())?;
    let raw = BASE64.decode(text.trim()).map_err(|_| invalid())?;
    let digest: [u8; 16] = raw.try_into().map_err(|_| invalid())?;
    Ok(Some(digest))
}

/// Compares a received body's MD5 with the `Content-MD5` the client sent → `BadDigest`.
pub fn check_content_md5(expected: Option<[u8; 16]>, actual: &[u8; 16]) -> Result<(), S3Error> {
    match expected {
        Some(expected)
            if !bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], &actual[..])) =>
        {
            Err(S3Error::new(S3ErrorCode::BadDigest)
                .with_message("The Content-MD5 you specified did not match what we received.")
                .with_extra("ExpectedDigest", BASE64.encode(expected))
                .with_extra("CalculatedDigest", BASE64.encode(actual)))
        }
        _ => Ok(()),
    }
}

/// MD5 of a whole buffer (small XML bodies; large bodies are hashed by the engine).
pub fn md5_of(data: &[u8]) -> [u8; 16] {
    Md5::digest(data).into()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn validates_base64_length() {
        assert!(validate_checksum_value(ChecksumAlgorithm::Crc32, "HCkcow==").is_ok());
        assert!(validate_checksum_value(ChecksumAlgorithm::Crc32, "rosUhgp5mIg=").is_err());
        assert!(validate_checksum_value(ChecksumAlgorithm::Crc32, "not base64!").is_err());
    }

    #[test]
    fn content_md5_parsing_and_check() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(verify_content_md5(&headers).unwrap(), None);
        headers.insert("content-md5", "XrY7u+Ae7tCTyyK7j1rNww==".parse().unwrap());
        let expected = verify_content_md5(&headers).unwrap();
        assert_eq!(expected, Some(md5_of(b"hello world")));
        assert!(check_content_md5(expected, &md5_of(b"hello world")).is_ok());
        let err = check_content_md5(expected, &md5_of(b"hello")).unwrap_err();
        assert_eq!(err.code, S3ErrorCode::BadDigest);
        headers.insert("content-md5", "AAAA".parse().unwrap());
        assert_eq!(
            verify_content_md5(&headers).unwrap_err().code,
            S3ErrorCode::InvalidDigest
        );
        headers.insert("content-md5", "%%%".parse().unwrap());
        assert_eq!(
            verify_content_md5(&headers).unwrap_err().code,
            S3ErrorCode::InvalidDigest
        );
    }
}
