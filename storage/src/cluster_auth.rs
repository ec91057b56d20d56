//! Cluster authentication between the gateway and the storage nodes: an HMAC-SHA256 under a
//! shared cluster secret, computed by `HttpShardStore` and checked by the node on every request.
//!
//! ```text
//! x-strata-date: <unix seconds>
//! authorization: STRATA-HMAC-SHA256 <64 lowercase hex>
//! MAC = HMAC-SHA256(secret, method "\n" path "\n" query "\n" date)
//! ```
//! `path` and `query` are the request target exactly as sent (no decoding, no normalisation),
//! `query` is empty when there is none.
//!
//! Invariants: the comparison is constant-time (`Mac::verify_slice`); a date further than
//! `max_skew` from the verifier's clock is refused, which bounds how long a captured request can
//! be replayed; header values are length-checked before they are parsed; an empty secret is
//! refused on both sides.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Header carrying the signing time in Unix seconds.
pub const DATE_HEADER: &str = "x-strata-date";
/// Scheme word in front of the hex MAC in the `authorization` header.
pub const AUTH_SCHEME: &str = "STRATA-HMAC-SHA256";
/// Default tolerance between the signer's and the verifier's clocks.
pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(5 * 60);

/// Longest `x-strata-date` value accepted (a u64 has 20 digits).
const MAX_DATE_LEN: usize = 20;
/// Length of a SHA-256 MAC in hex.
const MAC_HEX_LEN: usize = 64;

type HmacSha256 = Hmac<Sha256>;

/// Why a request was not authenticated. Each maps to HTTP 401 on the node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing {0} header")]
    Missing(&'static str),
    #[error("malformed {0} header")]
    Malformed(&'static str),
    #[error("request date is outside the allowed clock skew")]
    StaleDate,
    #[error("signature does not match")]
    BadSignature,
    #[error("the cluster secret is empty")]
    EmptySecret,
}

/// What the MAC covers besides the date: the request line, as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestTarget<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// The raw query string, empty when there is none.
    pub query: &'a str,
}

/// The two header values that authenticate one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// Value of [`DATE_HEADER`].
    pub date: String,
    /// Value of the `authorization` header.
    pub authorization: String,
}

fn mac_over(
    secret: &[u8],
    target: &RequestTarget<'_>,
    date: &str,
) -> Result<HmacSha256, AuthError> {
    if secret.is_empty() {
        return Err(AuthError::EmptySecret);
    }
    let mut mac = HmacSha256::new_from_slice(secret).map_err(|_| AuthError::EmptySecret)?;
    for (position, part) in [target.method, target.path, target.query, date]
        .into_iter()
        .enumerate()
    {
        if position > 0 {
            mac.update(b"\n");
        }
        mac.update(part.as_bytes());
    }
    Ok(mac)
}

/// Signs a request made at `now`.
pub fn sign(
    secret: &[u8],
    target: &RequestTarget<'_>,
    now: SystemTime,
) -> Result<SignedHeaders, AuthError> {
    let seconds = now
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0);
    let date = seconds.to_string();
    let mac = mac_over(secret, target, &date)?;
    let signature = hex::encode(mac.finalize().into_bytes());
    Ok(SignedHeaders {
        date,
        authorization: format!("{AUTH_SCHEME} {signature}"),
    })
}

/// Checks the date and the MAC of a request received at `now`. `date` and `authorization` are
/// the raw header values, `None` when absent.
pub fn verify(
    secret: &[u8],
    target: &RequestTarget<'_>,
    date: Option<&[u8]>,
    authorization: Option<&[u8]>,
    now: SystemTime,
    max_skew: Duration,
) -> Result<(), AuthError> {
    let date = date.ok_or(AuthError::Missing(DATE_HEADER))?;
    let authorization = authorization.ok_or(AuthError::Missing("authorization"))?;
    let date = std::str::from_utf8(date)
        .ok()
        .filter(|text| {
            !text.is_empty()
                && text.len() <= MAX_DATE_LEN
                && text.bytes().all(|b| b.is_ascii_digit())
        })
        .ok_or(AuthError::Malformed(DATE_HEADER))?;
    let signed_at: u64 = date
        .parse()
        .map_err(|_| AuthError::Malformed(DATE_HEADER))?;
    let signature = std::str::from_utf8(authorization)
        .ok()
        .and_then(|text| text.strip_prefix(AUTH_SCHEME))
        .and_then(|rest| rest.strip_prefix(' '))
        .filter(|hex_mac| hex_mac.len() == MAC_HEX_LEN)
        .and_then(|hex_mac| hex::decode(hex_mac).ok())
        .ok_or(AuthError::Malformed("authorization"))?;

    let now_seconds = now
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0);
    if now_seconds.abs_diff(signed_at) > max_skew.as_secs() {
        return Err(AuthError::StaleDate);
    }
    mac_over(secret, target, date)?
        .verify_slice(&signature)
        .map_err(|_| AuthError::BadSignature)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const SECRET: &[u8] = b"cluster secret";

    fn target<'a>(method: &'a str, path: &'a str, query: &'a str) -> RequestTarget<'a> {
        RequestTarget {
            method,
            path,
            query,
        }
    }

    fn check(
        headers: &SignedHeaders,
        method: &str,
        path: &str,
        query: &str,
        now: SystemTime,
    ) -> Result<(), AuthError> {
        verify(
            SECRET,
            &target(method, path, query),
            Some(headers.date.as_bytes()),
            Some(headers.authorization.as_bytes()),
            now,
            DEFAULT_MAX_SKEW,
        )
    }

    #[test]
    fn a_signed_request_verifies_and_any_change_breaks_it() {
        let now = SystemTime::now();
        let headers = sign(
            SECRET,
            &target("GET", "/v1/shards/ab.1/frames", "first=0&count=2"),
            now,
        )
        .unwrap();
        assert!(headers.authorization.starts_with("STRATA-HMAC-SHA256 "));
        assert_eq!(
            check(
                &headers,
                "GET",
                "/v1/shards/ab.1/frames",
                "first=0&count=2",
                now
            ),
            Ok(())
        );
        for (method, path, query) in [
            ("PUT", "/v1/shards/ab.1/frames", "first=0&count=2"),
            ("GET", "/v1/shards/ab.2/frames", "first=0&count=2"),
            ("GET", "/v1/shards/ab.1/frames", "first=0&count=3"),
            ("GET", "/v1/shards/ab.1/frames", ""),
        ] {
            assert_eq!(
                check(&headers, method, path, query, now),
                Err(AuthError::BadSignature)
            );
        }
        let other_secret = sign(b"another", &target("GET", "/p", ""), now).unwrap();
        assert_eq!(
            check(&other_secret, "GET", "/p", "", now),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn dates_outside_the_skew_are_refused() {
        let now = SystemTime::now();
        let signed = sign(SECRET, &target("GET", "/v1/health", ""), now).unwrap();
        let later = now + DEFAULT_MAX_SKEW + Duration::from_secs(2);
        let earlier = now - DEFAULT_MAX_SKEW - Duration::from_secs(2);
        assert_eq!(
            check(&signed, "GET", "/v1/health", "", later),
            Err(AuthError::StaleDate)
        );
        assert_eq!(
            check(&signed, "GET", "/v1/health", "", earlier),
            Err(AuthError::StaleDate)
        );
        let within = now + DEFAULT_MAX_SKEW - Duration::from_secs(2);
        assert_eq!(check(&signed, "GET", "/v1/health", "", within), Ok(()));
    }

    #[test]
    fn missing_or_malformed_headers_are_refused() {
        let now = SystemTime::now();
        let signed = sign(SECRET, &target("GET", "/v1/health", ""), now).unwrap();
        let run = |date: Option<&str>, auth: Option<&str>| {
            verify(
                SECRET,
                &target("GET", "/v1/health", ""),
                date.map(str::as_bytes),
                auth.map(str::as_bytes),
                now,
                DEFAULT_MAX_SKEW,
            )
        };
        assert_eq!(
            run(None, Some(&signed.authorization)),
            Err(AuthError::Missing(DATE_HEADER))
        );
        assert_eq!(
            run(Some(&signed.date), None),
            Err(AuthError::Missing("authorization"))
        );
        for bad_date in ["", "-1", "12a", "123456789012345678901", " 1"] {
            assert_eq!(
                run(Some(bad_date), Some(&signed.authorization)),
                Err(AuthError::Malformed(DATE_HEADER)),
                "{bad_date:?}"
            );
        }
        let hex_mac = signed
            .authorization
            .trim_start_matches("STRATA-HMAC-SHA256 ");
        for bad_auth in [
            hex_mac.to_string(),
            format!("OTHER {hex_mac}"),
            format!("STRATA-HMAC-SHA256  {hex_mac}"),
            format!("STRATA-HMAC-SHA256 {}", &hex_mac[..63]),
            format!("STRATA-HMAC-SHA256 {}zz", &hex_mac[..62]),
        ] {
            assert_eq!(
                run(Some(&signed.date), Some(&bad_auth)),
                Err(AuthError::Malformed("authorization")),
                "{bad_auth:?}"
            );
        }
        assert_eq!(
            sign(b"", &target("GET", "/", ""), now),
            Err(AuthError::EmptySecret)
        );
    }
}
