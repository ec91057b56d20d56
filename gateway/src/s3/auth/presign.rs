//! SigV4 presigned URLs ("Authenticating Requests: Using Query Parameters"): the `X-Amz-*`
//! query parameters, expiry, and the signature over the query minus `X-Amz-Signature`.
//!
//! Invariants: `X-Amz-Expires` is within 1..=`max_presign_expiry` (else
//! `AuthorizationQueryParametersError`); an expired URL is `AccessDenied` "Request has expired";
//! the payload is `UNSIGNED-PAYLOAD` unless the client sent (and signed) `x-amz-content-sha256`.

use std::time::Duration;

use super::sigv4::{
    check_region, check_service, is_lowercase, parse_credential, parse_signature_hex,
    parse_signed_headers, verify, SignedParts,
};
use super::{header_str, parse_amz_date, AuthContext, PayloadMode, Request};
use crate::s3::context_keys::SigningScheme;
use crate::s3::error::{S3Error, S3ErrorCode};

fn query_error(message: impl Into<String>) -> S3Error {
    S3Error::new(S3ErrorCode::AuthorizationQueryParametersError).with_message(message)
}

pub(super) fn authenticate_query(request: &Request<'_>) -> Result<AuthContext, S3Error> {
    let query = request.query;
    let (
        Some(algorithm),
        Some(credential),
        Some(date),
        Some(expires),
        Some(signed_headers),
        Some(signature),
    ) = (
        query.get("X-Amz-Algorithm"),
        query.get("X-Amz-Credential"),
        query.get("X-Amz-Date"),
        query.get("X-Amz-Expires"),
        query.get("X-Amz-SignedHeaders"),
        query.get("X-Amz-Signature"),
    )
    else {
        return Err(query_error(
            "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, \
             X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.",
        ));
    };
    if algorithm != "AWS4-HMAC-SHA256" {
        return Err(query_error(
            "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"",
        ));
    }
    let scope = parse_credential(&credential)
        .and_then(|scope| check_service(request, &scope).map(|()| scope))
        .map_err(|detail| {
            query_error(format!(
                "Error parsing the X-Amz-Credential parameter; {detail}"
            ))
        })?;
    check_region(
        request,
        &scope,
        S3ErrorCode::AuthorizationQueryParametersError,
    )?;
    request.secret_of(&scope.access_key)?;

    let signed_at = parse_amz_date(&date).ok_or_else(|| {
        query_error("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
    })?;
    if !date.starts_with(&scope.date) {
        return Err(query_error(format!(
            "Invalid credential date \"{}\". This date is not the same as X-Amz-Date: \"{}\".",
            scope.date,
            date.get(..8).unwrap_or("")
        )));
    }
    let expires_seconds: i64 = expires
        .parse()
        .map_err(|_| query_error("X-Amz-Expires should be a number"))?;
    if expires_seconds < 0 {
        return Err(query_error("X-Amz-Expires must be non-negative"));
    }
    let max = request.cfg.max_presign_expiry.as_secs();
    let expires_seconds = u64::try_from(expires_seconds).unwrap_or(0);
    if expires_seconds == 0 || expires_seconds > max {
        return Err(query_error(format!(
            "X-Amz-Expires must be less than a week (in seconds) that is {max}"
        )));
    }
    if request.now + request.cfg.max_skew < signed_at {
        return Err(
            S3Error::new(S3ErrorCode::AccessDenied).with_message("Request is not valid yet")
        );
    }
    let expires_at = signed_at + Duration::from_secs(expires_seconds);
    if request.now > expires_at {
        return Err(S3Error::new(S3ErrorCode::AccessDenied)
            .with_message("Request has expired")
            .with_extra("X-Amz-Expires", expires_seconds.to_string())
            .with_extra("Expires", httpdate::fmt_http_date(expires_at))
            .with_extra("ServerTime", httpdate::fmt_http_date(request.now)));
    }

    let signature_lowercase = is_lowercase(&signature);
    let signature = parse_signature_hex(&signature)
        .ok_or_else(|| query_error("X-Amz-Signature must be 64 hexadecimal characters"))?;
    let signed_headers = parse_signed_headers(request, &signed_headers, |m: &str| query_error(m))?;
    // botocore signs the header's value when the request carries one, else UNSIGNED-PAYLOAD.
    let (payload_hash, payload) = match header_str(request.headers, "x-amz-content-sha256")? {
        Some(value) => match (value.trim(), parse_signature_hex(value)) {
            (value, Some(hash)) if value.len() == 64 => {
                (value.to_owned(), PayloadMode::Sha256Hex(hash))
            }
            (value @ "STREAMING-UNSIGNED-PAYLOAD-TRAILER", _) => {
                (value.to_owned(), PayloadMode::StreamingUnsignedTrailer)
            }
            (value, _) if value.starts_with("STREAMING-") => {
                return Err(
                    S3Error::new(S3ErrorCode::NotImplemented).with_message(format!(
                        "x-amz-content-sha256 {value} is not supported with presigned URLs."
                    )),
                );
            }
            (value, _) => (value.to_owned(), PayloadMode::Unsigned),
        },
        None => ("UNSIGNED-PAYLOAD".to_owned(), PayloadMode::Unsigned),
    };
    let parts = SignedParts {
        scope,
        timestamp: date,
        signed_headers,
        signature,
        signature_lowercase,
        payload_hash,
        presigned: true,
    };
    verify(request, &parts)?;
    Ok(AuthContext {
        access_key: parts.scope.access_key,
        payload,
        scheme: SigningScheme::V4Query,
    })
}
