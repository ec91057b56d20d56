//! Cluster authentication between the gateway and the storage nodes, wire protocol version 2:
//! an HMAC-SHA256 under a shared cluster secret, computed by `HttpShardStore` and checked by the
//! node on every request, and the seeds that bind both bodies to it (`crate::signed_body`).
//!
//! ```text
//! x-strata-date: <unix seconds>
//! x-strata-nonce: <32 lowercase hex: 16 fresh random bytes>
//! authorization: STRATA2-HMAC-SHA256 <64 lowercase hex>
//! MAC = HMAC-SHA256(secret, "STRATA-WIRE-2" \n method \n path \n query \n date \n nonce)
//! request body seed = MAC
//! answer body seed  = HMAC-SHA256(secret, "SWA2" | MAC | status u16 BE | kind length u8 | kind)
//! ```
//! `path` and `query` are the request target exactly as sent (no decoding, no normalisation),
//! `query` is empty when there is none; `kind` is the answer's `x-strata-error` word, empty on
//! success. Every answer carries `x-strata-wire: 2`.
//!
//! Mixed versions are refused, clearly: a version-1 gateway's `STRATA-HMAC-SHA256` header gets
//! 401 "wire protocol 1" from a version-2 node, and a version-1 node answers a version-2 gateway
//! 401 without `x-strata-wire`, which the gateway reports as "node speaks an older wire
//! protocol". Upgrade nodes and gateways together.
//!
//! Invariants: the comparison is constant-time (`Mac::verify_slice`); a date further than
//! `max_skew` from the verifier's clock is refused, which bounds how long a captured request can
//! be replayed; the nonce makes every request's MAC, and so every body chain seeded from it,
//! unique, so an answer recorded for one request never verifies for another; header values are
//! length-checked before they are parsed; an empty secret is refused on both sides.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::signed_body::Tag;

/// Header carrying the signing time in Unix seconds.
pub const DATE_HEADER: &str = "x-strata-date";
/// Header carrying the request's random nonce (32 lowercase hex).
pub const NONCE_HEADER: &str = "x-strata-nonce";
/// Answer header naming the wire protocol version the node speaks.
pub const WIRE_VERSION_HEADER: &str = "x-strata-wire";
/// The wire protocol version of this build.
pub const WIRE_VERSION: &str = "2";
/// Scheme word in front of the hex MAC in the `authorization` header.
pub const AUTH_SCHEME: &str = "STRATA2-HMAC-SHA256";
/// Scheme word of wire protocol 1, recognised only to refuse it with a clear reason.
const OLD_AUTH_SCHEME: &str = "STRATA-HMAC-SHA256 ";
/// Default tolerance between the signer's and the verifier's clocks.
pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(5 * 60);

/// Label in front of the request MAC's input.
const REQUEST_LABEL: &[u8] = b"STRATA-WIRE-2";
/// Label in front of an answer seed's input.
const ANSWER_LABEL: &[u8; 4] = b"SWA2";
/// Longest `x-strata-date` value accepted (a u64 has 20 digits).
const MAX_DATE_LEN: usize = 20;
/// Length of the nonce in hex.
const NONCE_HEX_LEN: usize = 32;
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
    #[error(
        "the request speaks wire protocol 1; this node speaks {WIRE_VERSION}: upgrade the gateway"
    )]
    OldProtocol,
}

/// What the MAC covers besides the date and nonce: the request line, as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestTarget<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// The raw query string, empty when there is none.
    pub query: &'a str,
}

/// The header values that authenticate one request, and its MAC (the body chains' seed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// Value of [`DATE_HEADER`].
    pub date: String,
    /// Value of [`NONCE_HEADER`].
    pub nonce: String,
    /// Value of the `authorization` header.
    pub authorization: String,
    /// The request MAC: seed of the request body's chain and input of the answer's seed.
    pub mac: Tag,
}

fn keyed(secret: &[u8]) -> Result<HmacSha256, AuthError> {
    if secret.is_empty() {
        return Err(AuthError::EmptySecret);
    }
    HmacSha256::new_from_slice(secret).map_err(|_| AuthError::EmptySecret)
}

fn mac_over(
    secret: &[u8],
    target: &RequestTarget<'_>,
    date: &str,
    nonce: &str,
) -> Result<HmacSha256, AuthError> {
    let mut mac = keyed(secret)?;
    mac.update(REQUEST_LABEL);
    for part in [target.method, target.path, target.query, date, nonce] {
        mac.update(b"\n");
        mac.update(part.as_bytes());
    }
    Ok(mac)
}

/// Signs a request made at `now` with a fresh random nonce.
pub fn sign(
    secret: &[u8],
    target: &RequestTarget<'_>,
    now: SystemTime,
) -> Result<SignedHeaders, AuthError> {
    sign_with_nonce(
        secret,
        target,
        now,
        &uuid::Uuid::new_v4().simple().to_string(),
    )
}

/// Signs with a given nonce (tests and golden vectors; real requests use [`sign`]).
pub fn sign_with_nonce(
    secret: &[u8],
    target: &RequestTarget<'_>,
    now: SystemTime,
    nonce: &str,
) -> Result<SignedHeaders, AuthError> {
    let seconds = now
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0);
    let date = seconds.to_string();
    let mac: Tag = mac_over(secret, target, &date, nonce)?
        .finalize()
        .into_bytes()
        .into();
    Ok(SignedHeaders {
        date,
        nonce: nonce.to_string(),
        authorization: format!("{AUTH_SCHEME} {}", hex::encode(mac)),
        mac,
    })
}

/// The raw authentication header values of a request, `None` when absent.
#[derive(Debug, Clone, Copy, Default)]
pub struct PresentedHeaders<'a> {
    pub date: Option<&'a [u8]>,
    pub nonce: Option<&'a [u8]>,
    pub authorization: Option<&'a [u8]>,
}

/// Checks the date, nonce and MAC of a request received at `now`; returns the request MAC.
pub fn verify(
    secret: &[u8],
    target: &RequestTarget<'_>,
    presented: PresentedHeaders<'_>,
    now: SystemTime,
    max_skew: Duration,
) -> Result<Tag, AuthError> {
    let authorization = presented
        .authorization
        .ok_or(AuthError::Missing("authorization"))?;
    if authorization.starts_with(OLD_AUTH_SCHEME.as_bytes()) {
        return Err(AuthError::OldProtocol);
    }
    let date = presented.date.ok_or(AuthError::Missing(DATE_HEADER))?;
    let nonce = presented.nonce.ok_or(AuthError::Missing(NONCE_HEADER))?;
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
    let nonce = std::str::from_utf8(nonce)
        .ok()
        .filter(|text| {
            text.len() == NONCE_HEX_LEN
                && text
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
        .ok_or(AuthError::Malformed(NONCE_HEADER))?;
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
    mac_over(secret, target, date, nonce)?
        .verify_slice(&signature)
        .map_err(|_| AuthError::BadSignature)?;
    let mut mac = [0u8; 32];
    mac.copy_from_slice(&signature);
    Ok(mac)
}

/// The seed of an answer body's chain: binds the answer to the request it answers (through the
/// request MAC and so its nonce), to its status and to its error kind word.
pub fn answer_seed(
    secret: &[u8],
    request_mac: &Tag,
    status: u16,
    kind: &str,
) -> Result<Tag, AuthError> {
    let kind_len = u8::try_from(kind.len()).map_err(|_| AuthError::Malformed("x-strata-error"))?;
    let mut mac = keyed(secret)?;
    mac.update(ANSWER_LABEL);
    mac.update(request_mac);
    mac.update(&status.to_be_bytes());
    mac.update(&[kind_len]);
    mac.update(kind.as_bytes());
    Ok(mac.finalize().into_bytes().into())
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

    fn presented(headers: &SignedHeaders) -> PresentedHeaders<'_> {
        PresentedHeaders {
            date: Some(headers.date.as_bytes()),
            nonce: Some(headers.nonce.as_bytes()),
            authorization: Some(headers.authorization.as_bytes()),
        }
    }

    fn check(
        headers: &SignedHeaders,
        method: &str,
        path: &str,
        query: &str,
        now: SystemTime,
    ) -> Result<Tag, AuthError> {
        verify(
            SECRET,
            &target(method, path, query),
            presented(headers),
            now,
            DEFAULT_MAX_SKEW,
        )
    }

    /// Freezes the request MAC and the answer seed of wire protocol 2 (checked against Python's
    /// `hmac` over the inputs in the module doc).
    #[test]
    fn the_request_mac_and_answer_seed_are_frozen() {
        let when = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let signed = sign_with_nonce(
            SECRET,
            &target("GET", "/v1/shards/ab.1/frames", "first=0&count=2"),
            when,
            "00112233445566778899aabbccddeeff",
        )
        .unwrap();
        assert_eq!(signed.date, "1700000000");
        assert_eq!(
            signed.authorization,
            "STRATA2-HMAC-SHA256 ca7c1b2d237ea0db9b96fcd80e5794a6a1c1ed7df61187469892879696f74596"
        );
        assert_eq!(
            hex::encode(answer_seed(SECRET, &signed.mac, 404, "not-found").unwrap()),
            "4c4b1db05341fd77e255674d4a362d9ef4aa9dfce4a492d5e57cb32546089c69"
        );
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
        assert!(headers.authorization.starts_with("STRATA2-HMAC-SHA256 "));
        assert_eq!(
            check(
                &headers,
                "GET",
                "/v1/shards/ab.1/frames",
                "first=0&count=2",
                now
            ),
            Ok(headers.mac)
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
        // Another nonce under the same MAC fails; two signings never share a nonce or a MAC.
        let again = sign(SECRET, &target("GET", "/p", ""), now).unwrap();
        let mut swapped = again.clone();
        swapped.nonce = headers.nonce.clone();
        assert_eq!(
            check(&swapped, "GET", "/p", "", now),
            Err(AuthError::BadSignature)
        );
        let twice = sign(SECRET, &target("GET", "/p", ""), now).unwrap();
        assert_ne!(again.nonce, twice.nonce);
        assert_ne!(again.mac, twice.mac);
        // Answer seeds differ by request, status and kind.
        let seed = |mac: &Tag, status, kind| answer_seed(SECRET, mac, status, kind).unwrap();
        assert_ne!(seed(&again.mac, 200, ""), seed(&twice.mac, 200, ""));
        assert_ne!(seed(&again.mac, 200, ""), seed(&again.mac, 404, ""));
        assert_ne!(
            seed(&again.mac, 404, ""),
            seed(&again.mac, 404, "not-found")
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
        assert!(check(&signed, "GET", "/v1/health", "", within).is_ok());
    }

    #[test]
    fn missing_or_malformed_headers_and_version_1_are_refused() {
        let now = SystemTime::now();
        let signed = sign(SECRET, &target("GET", "/v1/health", ""), now).unwrap();
        let run = |date: Option<&str>, nonce: Option<&str>, auth: Option<&str>| {
            verify(
                SECRET,
                &target("GET", "/v1/health", ""),
                PresentedHeaders {
                    date: date.map(str::as_bytes),
                    nonce: nonce.map(str::as_bytes),
                    authorization: auth.map(str::as_bytes),
                },
                now,
                DEFAULT_MAX_SKEW,
            )
        };
        let (date, nonce, auth) = (
            Some(signed.date.as_str()),
            Some(signed.nonce.as_str()),
            Some(signed.authorization.as_str()),
        );
        assert_eq!(run(None, nonce, auth), Err(AuthError::Missing(DATE_HEADER)));
        assert_eq!(run(date, None, auth), Err(AuthError::Missing(NONCE_HEADER)));
        assert_eq!(
            run(date, nonce, None),
            Err(AuthError::Missing("authorization"))
        );
        for bad_date in ["", "-1", "12a", "123456789012345678901", " 1"] {
            assert_eq!(
                run(Some(bad_date), nonce, auth),
                Err(AuthError::Malformed(DATE_HEADER)),
                "{bad_date:?}"
            );
        }
        let upper = signed.nonce.to_uppercase();
        let short = &signed.nonce[..31];
        for bad_nonce in [
            "",
            short,
            upper.as_str(),
            "zz112233445566778899aabbccddeeff",
        ] {
            assert_eq!(
                run(date, Some(bad_nonce), auth),
                Err(AuthError::Malformed(NONCE_HEADER)),
                "{bad_nonce:?}"
            );
        }
        let hex_mac = signed
            .authorization
            .trim_start_matches("STRATA2-HMAC-SHA256 ");
        for bad_auth in [
            hex_mac.to_string(),
            format!("OTHER {hex_mac}"),
            format!("STRATA2-HMAC-SHA256  {hex_mac}"),
            format!("STRATA2-HMAC-SHA256 {}", &hex_mac[..63]),
            format!("STRATA2-HMAC-SHA256 {}zz", &hex_mac[..62]),
        ] {
            assert_eq!(
                run(date, nonce, Some(&bad_auth)),
                Err(AuthError::Malformed("authorization")),
                "{bad_auth:?}"
            );
        }
        // A version-1 gateway (no nonce, the old scheme) is told why.
        let version_1 = format!("STRATA-HMAC-SHA256 {hex_mac}");
        assert_eq!(
            run(date, None, Some(&version_1)),
            Err(AuthError::OldProtocol)
        );
        assert_eq!(
            sign(b"", &target("GET", "/", ""), now),
            Err(AuthError::EmptySecret)
        );
    }
}
