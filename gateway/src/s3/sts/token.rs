//! Stateless session tokens: temporary credentials minted by `AssumeRole` travel inside the
//! session token itself (`X-Amz-Security-Token`), sealed with a key every gateway derives from
//! the same master secret, so any gateway verifies a session without a catalog lookup.
//!
//! Token format, version 1 (frozen by the golden test):
//! `base64url-no-pad( 0x01 ‖ len(key id) ‖ key id ‖ nonce (12) ‖ AES-256-GCM(claims) ‖ tag (16) )`
//! where the claims are `serde_json` of [`SessionClaims`] (short field names, unknown fields
//! refused, so a new claim needs a new version), and the AAD is `0x01 ‖ len(key id) ‖ key id`.
//! The token key is `HKDF-SHA256(ikm = master secret, no salt, info = "strata sts session token
//! v1")`, so the same master may also serve other purposes without key reuse.
//!
//! Invariants: a token opens only under the key whose id it names, only if unmodified, and only
//! before its expiry; every refusal but expiry is the same `InvalidClientTokenId`, so a caller
//! learns nothing about why a forged token failed. Keys rotate by adding a new active key and
//! keeping the old ones until their tokens have expired (at most [`super::MAX_DURATION`]).
//! Secret keys, token keys and session tokens never appear in `Debug` output.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::StsError;

/// The version byte that opens every token.
pub const TOKEN_FORMAT_VERSION: u8 = 1;
/// Longest token `open` reads: a 2048-character policy of escaped characters stays below it.
pub const MAX_TOKEN_CHARS: usize = 16 * 1024;

const KEY_LABEL: &[u8] = b"strata sts session token v1";
const NONCE_LEN: usize = 12;
const ACCESS_KEY_PREFIX: &str = "ASIA";
const ACCESS_KEY_RANDOM_CHARS: usize = 16;
const SECRET_KEY_CHARS: usize = 40;
const ACCESS_KEY_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const SECRET_KEY_ALPHABET: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+";

/// What a session token carries: the temporary credentials, who they act for, and the limits.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionClaims {
    /// The long-term access key that called `AssumeRole`; the session acts with its rights.
    #[serde(rename = "p")]
    pub parent_access_key: String,
    /// The temporary access key (`ASIA…`) requests are signed with.
    #[serde(rename = "a")]
    pub access_key: String,
    /// The temporary secret key: the token is the only place it is kept.
    #[serde(rename = "s")]
    pub secret_key: String,
    /// Seconds since the Unix epoch at which the session ends.
    #[serde(rename = "e")]
    pub expires_unix: u64,
    /// The `Policy` of `AssumeRole`, which narrows the parent's rights.
    #[serde(rename = "sp", default, skip_serializing_if = "Option::is_none")]
    pub session_policy: Option<String>,
    #[serde(rename = "sn", default, skip_serializing_if = "Option::is_none")]
    pub session_name: Option<String>,
}

impl SessionClaims {
    /// Whether the session has ended at `now` (the expiry second itself is past).
    pub fn is_expired(&self, now: SystemTime) -> bool {
        unix_seconds(now) >= self.expires_unix
    }

    /// When the session ends.
    pub fn expiration(&self) -> SystemTime {
        UNIX_EPOCH
            .checked_add(Duration::from_secs(self.expires_unix))
            .unwrap_or(UNIX_EPOCH)
    }
}

impl fmt::Debug for SessionClaims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionClaims")
            .field("parent_access_key", &self.parent_access_key)
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("expires_unix", &self.expires_unix)
            .field("session_policy", &self.session_policy)
            .field("session_name", &self.session_name)
            .finish()
    }
}

/// The credentials `AssumeRole` hands out.
#[derive(Clone, PartialEq, Eq)]
pub struct TemporaryCredentials {
    pub access_key: String,
    pub secret_key: String,
    pub session_token: String,
    pub expiration: SystemTime,
}

impl fmt::Debug for TemporaryCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemporaryCredentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("session_token", &"<redacted>")
            .field("expiration", &self.expiration)
            .finish()
    }
}

/// New claims for a session of `duration` from `now`: a fresh `ASIA` access key (16 random
/// upper-case letters and digits, as AWS's temporary keys look) and a 40-character secret.
pub fn mint(
    parent_access_key: &str,
    duration: Duration,
    session_policy: Option<String>,
    session_name: Option<String>,
    now: SystemTime,
) -> SessionClaims {
    let mut rng = rand::rng();
    let mut random_text = |alphabet: &[u8], length: usize| -> String {
        (0..length)
            .filter_map(|_| alphabet.get(rng.random_range(0..alphabet.len())))
            .map(|&byte| char::from(byte))
            .collect()
    };
    let access_key = format!(
        "{ACCESS_KEY_PREFIX}{}",
        random_text(ACCESS_KEY_ALPHABET, ACCESS_KEY_RANDOM_CHARS)
    );
    let secret_key = random_text(SECRET_KEY_ALPHABET, SECRET_KEY_CHARS);
    SessionClaims {
        parent_access_key: parent_access_key.to_string(),
        access_key,
        secret_key,
        expires_unix: unix_seconds(now).saturating_add(duration.as_secs()),
        session_policy,
        session_name,
    }
}

/// One token-sealing key and the id tokens name it by.
#[derive(Clone)]
pub struct TokenKey {
    id: String,
    key: [u8; 32],
}

impl TokenKey {
    /// The token key of a 32-byte master secret known as `master_id`.
    pub fn derive(master: &[u8; 32], master_id: &str) -> TokenKey {
        let hkdf = hkdf::Hkdf::<Sha256>::new(None, master);
        let mut key = [0u8; 32];
        // 32 bytes are far below HKDF-SHA256's output limit of 255 * 32 bytes.
        let _ = hkdf.expand(KEY_LABEL, &mut key);
        TokenKey {
            id: master_id.to_string(),
            key,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.key))
    }
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKey").field("id", &self.id).finish()
    }
}

/// Why a set of token keys cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenKeyError {
    #[error("a session token key id must not be empty")]
    EmptyId,
    #[error("session token key id {0:?} is longer than 255 bytes")]
    IdTooLong(String),
    #[error("session token key id {0:?} appears twice")]
    DuplicateId(String),
}

/// The token keys of a gateway: one active key seals, every key opens.
#[derive(Clone)]
pub struct TokenKeys {
    /// The active key first, then the retired ones.
    keys: Vec<TokenKey>,
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(TokenKey::id).collect();
        f.debug_struct("TokenKeys")
            .field("active", &self.active_id())
            .field("ids", &ids)
            .finish()
    }
}

impl TokenKeys {
    /// `active` seals new tokens; `retired` keys still open the tokens they sealed.
    pub fn new(
        active: TokenKey,
        retired: impl IntoIterator<Item = TokenKey>,
    ) -> Result<TokenKeys, TokenKeyError> {
        let mut keys = vec![active];
        keys.extend(retired);
        for (index, key) in keys.iter().enumerate() {
            if key.id.is_empty() {
                return Err(TokenKeyError::EmptyId);
            }
            if key.id.len() > usize::from(u8::MAX) {
                return Err(TokenKeyError::IdTooLong(key.id.clone()));
            }
            if keys.iter().skip(index + 1).any(|other| other.id == key.id) {
                return Err(TokenKeyError::DuplicateId(key.id.clone()));
            }
        }
        Ok(TokenKeys { keys })
    }

    /// The id of the key that seals new tokens.
    pub fn active_id(&self) -> &str {
        self.keys.first().map(TokenKey::id).unwrap_or("")
    }

    /// Seals `claims` into a session token under the active key with a random nonce.
    pub fn seal(&self, claims: &SessionClaims) -> Result<String, StsError> {
        self.seal_with_nonce(claims, rand::random())
    }

    /// Seals `claims` and returns the credentials `AssumeRole` answers with.
    pub fn issue(&self, claims: &SessionClaims) -> Result<TemporaryCredentials, StsError> {
        Ok(TemporaryCredentials {
            access_key: claims.access_key.clone(),
            secret_key: claims.secret_key.clone(),
            session_token: self.seal(claims)?,
            expiration: claims.expiration(),
        })
    }

    /// [`TokenKeys::seal`] with a chosen nonce; only the golden test chooses one.
    fn seal_with_nonce(
        &self,
        claims: &SessionClaims,
        nonce: [u8; NONCE_LEN],
    ) -> Result<String, StsError> {
        let key = self.keys.first().ok_or_else(StsError::internal_failure)?;
        let id_len = u8::try_from(key.id.len()).map_err(|_| StsError::internal_failure())?;
        let plain = serde_json::to_vec(claims).map_err(|_| StsError::internal_failure())?;
        let mut token = Vec::with_capacity(2 + key.id.len() + NONCE_LEN + plain.len() + 16);
        token.push(TOKEN_FORMAT_VERSION);
        token.push(id_len);
        token.extend_from_slice(key.id.as_bytes());
        let sealed = key
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: &token,
                },
            )
            .map_err(|_| StsError::internal_failure())?;
        token.extend_from_slice(&nonce);
        token.extend_from_slice(&sealed);
        Ok(URL_SAFE_NO_PAD.encode(token))
    }

    /// The claims of a session token, if it is one of ours, intact and not expired at `now`.
    pub fn open(&self, token: &str, now: SystemTime) -> Result<SessionClaims, StsError> {
        let claims = self
            .decrypt(token)
            .ok_or_else(StsError::invalid_client_token_id)?;
        if claims.is_expired(now) {
            return Err(StsError::expired_token());
        }
        Ok(claims)
    }

    /// Every way a token can fail to open is `None`: the caller answers them all alike.
    fn decrypt(&self, token: &str) -> Option<SessionClaims> {
        if token.len() > MAX_TOKEN_CHARS {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        let (&version, rest) = bytes.split_first()?;
        if version != TOKEN_FORMAT_VERSION {
            return None;
        }
        let (&id_len, rest) = rest.split_first()?;
        let (id, rest) = rest.split_at_checked(usize::from(id_len))?;
        let key = self.keys.iter().find(|key| key.id.as_bytes() == id)?;
        let (nonce, sealed) = rest.split_at_checked(NONCE_LEN)?;
        let aad = bytes.get(..2 + usize::from(id_len))?;
        let plain = key
            .cipher()
            .decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad })
            .ok()?;
        serde_json::from_slice(&plain).ok()
    }
}

fn unix_seconds(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map(|since| since.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MASTER: [u8; 32] = [0x42; 32];
    /// 2026-12-07T23:00:00Z.
    const NOW_UNIX: u64 = 1_796_684_400;

    fn at(unix: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(unix)
    }

    fn keys(master: &[u8; 32], id: &str) -> TokenKeys {
        TokenKeys::new(TokenKey::derive(master, id), []).unwrap()
    }

    fn sample_claims() -> SessionClaims {
        SessionClaims {
            parent_access_key: "AKIAPARENT".to_string(),
            access_key: "ASIAAAAAAAAAAAAAAAAA".to_string(),
            secret_key: "secret/key+0123456789012345678901234567".to_string(),
            expires_unix: NOW_UNIX + 3600,
            session_policy: Some(r#"{"Version":"2012-10-17","Statement":[]}"#.to_string()),
            session_name: Some("session-1".to_string()),
        }
    }

    /// A token sealed by the version-1 code with `MASTER`, key id "k1" and nonce 0..12. If this
    /// test fails, tokens already handed out would no longer open: change the version instead.
    const GOLDEN_TOKEN: &str = "AQJrMQABAgMEBQYHCAkKC-S_yAobHf1s49LJTZOl63FWlgTnamEqOSPc8CJa-wkvi56_W4k\
        VXTTHJ1VcR5O7ewy1nl7yy3DZxDN9c0gre8iu6jyUnuHqRtg6yry8R-BvhCUu0HCmhUMwM2FrMxOk3CRbCk5Ipjxa4r\
        FhzGRO4D9VtxxJAZ0P3Z62jn7eDayMC81P_xsGkMv6uv92lFR5kkm81MNblBO_IrK8Ar3grYPkUN9pigvsbnN_FEw60aX\
        ZBLhKVLtjopMiRT7zX-Hbvg";

    #[test]
    fn golden_token_layout_is_frozen() {
        let keys = keys(&MASTER, "k1");
        let nonce: [u8; 12] = std::array::from_fn(|i| i as u8);
        let sealed = keys.seal_with_nonce(&sample_claims(), nonce).unwrap();
        assert_eq!(sealed, GOLDEN_TOKEN);
        let bytes = URL_SAFE_NO_PAD.decode(GOLDEN_TOKEN).unwrap();
        assert_eq!(&bytes[..4], &[TOKEN_FORMAT_VERSION, 2, b'k', b'1']);
        assert_eq!(&bytes[4..16], &nonce);
        // The sealed plaintext is the claims' JSON with the short field names.
        let plain = TokenKey::derive(&MASTER, "k1")
            .cipher()
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &bytes[16..],
                    aad: &bytes[..4],
                },
            )
            .unwrap();
        assert_eq!(
            String::from_utf8(plain).unwrap(),
            r#"{"p":"AKIAPARENT","a":"ASIAAAAAAAAAAAAAAAAA","#.to_string()
                + r#""s":"secret/key+0123456789012345678901234567","e":1796688000,"#
                + r#""sp":"{\"Version\":\"2012-10-17\",\"Statement\":[]}","sn":"session-1"}"#
        );
        assert_eq!(
            keys.open(GOLDEN_TOKEN, at(NOW_UNIX)).unwrap(),
            sample_claims()
        );
    }

    #[test]
    fn sealed_claims_open_until_expiry() {
        let keys = keys(&MASTER, "k1");
        let token = keys.seal(&sample_claims()).unwrap();
        assert_eq!(keys.open(&token, at(NOW_UNIX)).unwrap(), sample_claims());
        assert_eq!(
            keys.open(&token, at(NOW_UNIX + 3599)).unwrap(),
            sample_claims()
        );
        let expired = keys.open(&token, at(NOW_UNIX + 3600)).unwrap_err();
        assert_eq!(expired, StsError::expired_token());
        // Two seals of the same claims differ (random nonce).
        assert_ne!(token, keys.seal(&sample_claims()).unwrap());
    }

    #[test]
    fn any_flipped_byte_is_invalid_client_token_id() {
        let keys = keys(&MASTER, "k1");
        let bytes = URL_SAFE_NO_PAD
            .decode(keys.seal(&sample_claims()).unwrap())
            .unwrap();
        // Version, key id length, key id, nonce, ciphertext and tag.
        for position in [0, 1, 2, 5, 20, bytes.len() / 2, bytes.len() - 1] {
            let mut tampered = bytes.clone();
            tampered[position] ^= 0x01;
            let error = keys
                .open(&URL_SAFE_NO_PAD.encode(&tampered), at(NOW_UNIX))
                .unwrap_err();
            assert_eq!(
                error,
                StsError::invalid_client_token_id(),
                "byte {position}"
            );
        }
        let truncated = URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() - 1]);
        assert!(keys.open(&truncated, at(NOW_UNIX)).is_err());
    }

    #[test]
    fn garbage_is_invalid_client_token_id() {
        let keys = keys(&MASTER, "k1");
        let too_long = "A".repeat(MAX_TOKEN_CHARS + 1);
        for token in ["", "!!not base64!!", "AQJrMQ", too_long.as_str()] {
            let error = keys.open(token, at(NOW_UNIX)).unwrap_err();
            assert_eq!(error.code, "InvalidClientTokenId", "{token:.20}");
            assert_eq!(error.status, http::StatusCode::FORBIDDEN);
        }
    }

    #[test]
    fn another_master_or_key_id_does_not_open() {
        let token = keys(&MASTER, "k1").seal(&sample_claims()).unwrap();
        let other_master = keys(&[0x43; 32], "k1");
        let other_id = keys(&MASTER, "k2");
        for keys in [other_master, other_id] {
            let error = keys.open(&token, at(NOW_UNIX)).unwrap_err();
            assert_eq!(error, StsError::invalid_client_token_id());
        }
    }

    #[test]
    fn retired_keys_still_open_after_rotation() {
        let old = TokenKey::derive(&MASTER, "k1");
        let new = TokenKey::derive(&[0x43; 32], "k2");
        let token = TokenKeys::new(old.clone(), [])
            .unwrap()
            .seal(&sample_claims())
            .unwrap();
        let rotated = TokenKeys::new(new, [old]).unwrap();
        assert_eq!(rotated.active_id(), "k2");
        assert_eq!(rotated.open(&token, at(NOW_UNIX)).unwrap(), sample_claims());
        let fresh = rotated.seal(&sample_claims()).unwrap();
        let bytes = URL_SAFE_NO_PAD.decode(fresh).unwrap();
        assert_eq!(&bytes[1..4], &[2, b'k', b'2']);
    }

    #[test]
    fn key_ids_must_fit_the_format() {
        let key = |id: &str| TokenKey::derive(&MASTER, id);
        assert_eq!(
            TokenKeys::new(key(""), []).unwrap_err(),
            TokenKeyError::EmptyId
        );
        let long = "i".repeat(256);
        assert_eq!(
            TokenKeys::new(key("a"), [key(&long)]).unwrap_err(),
            TokenKeyError::IdTooLong(long)
        );
        assert_eq!(
            TokenKeys::new(key("a"), [key("b"), key("a")]).unwrap_err(),
            TokenKeyError::DuplicateId("a".to_string())
        );
        assert!(TokenKeys::new(key(&"i".repeat(255)), []).is_ok());
    }

    #[test]
    fn token_with_largest_policy_stays_small() {
        let mut claims = sample_claims();
        claims.session_policy = Some(format!(r#"{{"Sid":"{}"}}"#, "x".repeat(2038)));
        let token = keys(&MASTER, "k1").seal(&claims).unwrap();
        assert!(token.len() < 3 * 1024, "{} chars", token.len());
    }

    #[test]
    fn mint_makes_aws_shaped_keys_and_expiry() {
        let claims = mint(
            "AKIAPARENT",
            Duration::from_secs(900),
            None,
            Some("s1".to_string()),
            at(NOW_UNIX),
        );
        assert_eq!(claims.parent_access_key, "AKIAPARENT");
        assert_eq!(claims.access_key.len(), 20);
        assert!(claims.access_key.starts_with("ASIA"));
        assert!(claims.access_key[4..]
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
        assert_eq!(claims.secret_key.len(), 40);
        assert!(claims
            .secret_key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'/' || b == b'+'));
        assert_eq!(claims.expires_unix, NOW_UNIX + 900);
        assert_eq!(claims.expiration(), at(NOW_UNIX + 900));
        let other = mint(
            "AKIAPARENT",
            Duration::from_secs(900),
            None,
            None,
            at(NOW_UNIX),
        );
        assert_ne!(claims.access_key, other.access_key);
        assert_ne!(claims.secret_key, other.secret_key);
    }

    #[test]
    fn issued_credentials_carry_a_token_that_opens_to_the_claims() {
        let keys = keys(&MASTER, "k1");
        let claims = mint(
            "AKIAPARENT",
            Duration::from_secs(3600),
            None,
            None,
            at(NOW_UNIX),
        );
        let creds = keys.issue(&claims).unwrap();
        assert_eq!(creds.access_key, claims.access_key);
        assert_eq!(creds.secret_key, claims.secret_key);
        assert_eq!(creds.expiration, at(NOW_UNIX + 3600));
        assert_eq!(
            keys.open(&creds.session_token, at(NOW_UNIX)).unwrap(),
            claims
        );
    }

    #[test]
    fn debug_output_hides_secrets() {
        let claims = sample_claims();
        let keys = keys(&MASTER, "k1");
        let creds = keys.issue(&claims).unwrap();
        let printed = format!("{claims:?} {creds:?} {keys:?}");
        assert!(!printed.contains(&claims.secret_key));
        assert!(!printed.contains(&creds.session_token));
        assert!(printed.contains("ASIAAAAAAAAAAAAAAAAA"));
        let key_bytes = format!("{:?}", TokenKey::derive(&MASTER, "k1").key);
        assert!(!printed.contains(&key_bytes));
        assert_eq!(
            format!("{keys:?}"),
            r#"TokenKeys { active: "k1", ids: ["k1"] }"#
        );
    }
}
