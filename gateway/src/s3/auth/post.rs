//! Signatures of browser-based POST uploads: the form's base64 `policy` string is what is
//! signed, with SigV4 (`x-amz-algorithm`, `x-amz-credential`, `x-amz-date`, `x-amz-signature`:
//! hex HMAC-SHA256 under the day's signing key) or SigV2 (`AWSAccessKeyId`, `signature`: base64
//! HMAC-SHA1 under the secret). Comparisons are constant-time. What the policy *says* is checked
//! elsewhere (`s3::post_policy`); this module only answers "who signed this policy".

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use subtle::ConstantTimeEq;

use super::sigv2::hmac_sha1;
use super::sigv4::{derive_signing_key, hmac_sha256, parse_credential};
use super::{parse_amz_date, AuthConfig, Keyring};
use crate::s3::error::{S3Error, S3ErrorCode};

/// The signature fields of a POST form (values as sent; names matched case-insensitively by
/// the caller).
#[derive(Debug, Default)]
pub struct PostSignature<'a> {
    pub policy: &'a str,
    pub algorithm: Option<&'a str>,
    pub credential: Option<&'a str>,
    pub date: Option<&'a str>,
    pub v4_signature: Option<&'a str>,
    pub access_key_id: Option<&'a str>,
    pub v2_signature: Option<&'a str>,
}

fn invalid(message: &str) -> S3Error {
    S3Error::new(S3ErrorCode::InvalidArgument).with_message(message.to_string())
}

/// Verifies the policy signature; returns the access key that signed it.
pub fn verify_post_signature(
    form: &PostSignature<'_>,
    keyring: &Keyring,
    cfg: &AuthConfig,
) -> Result<String, S3Error> {
    if let Some(algorithm) = form.algorithm {
        if algorithm != "AWS4-HMAC-SHA256" {
            return Err(invalid(
                "Invalid according to Policy: x-amz-algorithm must be AWS4-HMAC-SHA256",
            ));
        }
        let credential = form
            .credential
            .ok_or_else(|| invalid("Bucket POST must contain a field named 'x-amz-credential'."))?;
        let date = form
            .date
            .ok_or_else(|| invalid("Bucket POST must contain a field named 'x-amz-date'."))?;
        let signature = form
            .v4_signature
            .ok_or_else(|| invalid("Bucket POST must contain a field named 'x-amz-signature'."))?;
        let scope = parse_credential(credential)
            .and_then(|scope| match scope.service.as_str() {
                "s3" => Ok(scope),
                other => Err(format!(
                    "incorrect service \"{other}\". This endpoint belongs to \"s3\"."
                )),
            })
            .map_err(|m| {
                S3Error::new(S3ErrorCode::AuthorizationQueryParametersError).with_message(m)
            })?;
        if parse_amz_date(date).is_none() || !date.starts_with(&scope.date) {
            return Err(invalid("Invalid x-amz-date in the form."));
        }
        if let Some(region) = &cfg.strict_region {
            if &scope.region != region {
                return Err(S3Error::new(S3ErrorCode::AuthorizationHeaderMalformed)
                    .with_extra("Region", region.clone()));
            }
        }
        let secret = keyring
            .secret(&scope.access_key)
            .ok_or_else(|| S3Error::new(S3ErrorCode::InvalidAccessKeyId))?;
        let key = keyring.signing_key(&scope.access_key, &scope.date, &scope.region, || {
            derive_signing_key(secret, &scope.date, &scope.region)
        });
        let expected = hex::encode(hmac_sha256(&key, form.policy.as_bytes()));
        if !bool::from(
            expected
                .as_bytes()
                .ct_eq(signature.trim().to_ascii_lowercase().as_bytes()),
        ) {
            return Err(S3Error::new(S3ErrorCode::SignatureDoesNotMatch));
        }
        return Ok(scope.access_key);
    }
    let access_key = form
        .access_key_id
        .ok_or_else(|| invalid("Bucket POST must contain a field named 'AWSAccessKeyId'."))?;
    let signature = form
        .v2_signature
        .ok_or_else(|| invalid("Bucket POST must contain a field named 'signature'."))?;
    let secret = keyring
        .secret(access_key)
        .ok_or_else(|| S3Error::new(S3ErrorCode::InvalidAccessKeyId))?;
    let expected = BASE64.encode(hmac_sha1(secret.as_bytes(), form.policy.as_bytes()));
    if !bool::from(expected.as_bytes().ct_eq(signature.trim().as_bytes())) {
        return Err(S3Error::new(S3ErrorCode::SignatureDoesNotMatch));
    }
    Ok(access_key.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn setup() -> (Keyring, AuthConfig) {
        let keyring = Keyring::new(vec![("AKID".into(), "secret".into())]);
        let cfg = AuthConfig {
            strict_region: None,
            max_skew: Duration::from_secs(900),
            max_presign_expiry: Duration::from_secs(7 * 86400),
        };
        (keyring, cfg)
    }

    #[test]
    fn v4_policy_signatures_verify_and_tampering_fails() {
        let (keyring, cfg) = setup();
        let policy = "eyJleHBpcmF0aW9uIjoiMjAzMC0wMS0wMVQwMDowMDowMFoifQ==";
        let key = derive_signing_key("secret", "20260101", "us-east-1");
        let signature = hex::encode(hmac_sha256(&key, policy.as_bytes()));
        let mut form = PostSignature {
            policy,
            algorithm: Some("AWS4-HMAC-SHA256"),
            credential: Some("AKID/20260101/us-east-1/s3/aws4_request"),
            date: Some("20260101T000000Z"),
            v4_signature: Some(&signature),
            ..Default::default()
        };
        assert_eq!(
            verify_post_signature(&form, &keyring, &cfg).unwrap(),
            "AKID"
        );
        form.policy = "eyJ4IjoxfQ==";
        assert_eq!(
            verify_post_signature(&form, &keyring, &cfg)
                .unwrap_err()
                .code,
            S3ErrorCode::SignatureDoesNotMatch
        );
        form.policy = policy;
        form.credential = Some("NOPE/20260101/us-east-1/s3/aws4_request");
        assert_eq!(
            verify_post_signature(&form, &keyring, &cfg)
                .unwrap_err()
                .code,
            S3ErrorCode::InvalidAccessKeyId
        );
        form.credential = Some("AKID/20260101/us-east-1/s3/aws4_request");
        form.date = Some("20250101T000000Z");
        assert_eq!(
            verify_post_signature(&form, &keyring, &cfg)
                .unwrap_err()
                .code,
            S3ErrorCode::InvalidArgument
        );
    }

    #[test]
    fn v2_policy_signatures_verify() {
        let (keyring, cfg) = setup();
        let policy = "eyJ4IjoxfQ==";
        let signature = BASE64.encode(hmac_sha1(b"secret", policy.as_bytes()));
        let mut form = PostSignature {
            policy,
            access_key_id: Some("AKID"),
            v2_signature: Some(&signature),
            ..Default::default()
        };
        assert_eq!(
            verify_post_signature(&form, &keyring, &cfg).unwrap(),
            "AKID"
        );
        form.v2_signature = Some("AAAA");
        assert_eq!(
            verify_post_signature(&form, &keyring, &cfg)
                .unwrap_err()
                .code,
            S3ErrorCode::SignatureDoesNotMatch
        );
        form.v2_signature = None;
        assert_eq!(
            verify_post_signature(&form, &keyring, &cfg)
                .unwrap_err()
                .code,
            S3ErrorCode::InvalidArgument
        );
    }
}
