//! Secret access keys at rest: sealed under the SSE master keyring, because SigV4 needs the
//! secret itself (it cannot be hashed).
//!
//! Format (version 1): `1 ‖ len(master key id) ‖ master key id ‖ nonce (12) ‖
//! AES-256-GCM(HKDF(master key, "strata identity secret v1"), nonce, aad, secret) ‖ tag (16)`,
//! with `aad = "strata-identity-v1" ‖ access key id`, so a sealed secret cannot be moved to
//! another access key. Invariant: a secret never appears in a log or an error message.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;

use crate::sse::keys::{KeyBytes, Keyring};

const VERSION: u8 = 1;
const AAD_LABEL: &[u8] = b"strata-identity-v1";
const KDF_INFO: &[u8] = b"strata identity secret v1";

/// Why a sealed secret could not be made or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("no master key to seal secrets with")]
    NoMasterKey,
    #[error("the master key {0} that sealed this secret is not in the keyring")]
    UnknownMasterKey(String),
    #[error("sealed secret is malformed or was tampered with")]
    Corrupt,
}

fn cipher(master: &KeyBytes) -> Aes256Gcm {
    let mut derived = [0u8; 32];
    // 32 bytes is always a valid HKDF-SHA256 output length.
    let _ = Hkdf::<Sha256>::new(None, master).expand(KDF_INFO, &mut derived);
    Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&derived))
}

fn aad(access_key: &str) -> Vec<u8> {
    [AAD_LABEL, access_key.as_bytes()].concat()
}

/// Seals `secret` of `access_key` under the keyring's active master key.
pub fn seal(keyring: &Keyring, access_key: &str, secret: &str) -> Result<Vec<u8>, SecretError> {
    seal_with_nonce(keyring, access_key, secret, rand::random())
}

fn seal_with_nonce(
    keyring: &Keyring,
    access_key: &str,
    secret: &str,
    nonce: [u8; 12],
) -> Result<Vec<u8>, SecretError> {
    let (id, master) = keyring.active().ok_or(SecretError::NoMasterKey)?;
    let id_len = u8::try_from(id.len()).map_err(|_| SecretError::NoMasterKey)?;
    let sealed = cipher(master)
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: secret.as_bytes(),
                aad: &aad(access_key),
            },
        )
        .map_err(|_| SecretError::Corrupt)?;
    let mut out = vec![VERSION, id_len];
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Opens a secret sealed by [`seal`] for `access_key`.
pub fn open(keyring: &Keyring, access_key: &str, sealed: &[u8]) -> Result<String, SecretError> {
    let (&version, rest) = sealed.split_first().ok_or(SecretError::Corrupt)?;
    let (&id_len, rest) = rest.split_first().ok_or(SecretError::Corrupt)?;
    if version != VERSION {
        return Err(SecretError::Corrupt);
    }
    let (id, rest) = rest
        .split_at_checked(usize::from(id_len))
        .ok_or(SecretError::Corrupt)?;
    let (nonce, body) = rest.split_at_checked(12).ok_or(SecretError::Corrupt)?;
    let id = std::str::from_utf8(id).map_err(|_| SecretError::Corrupt)?;
    let master = keyring
        .get(id)
        .ok_or_else(|| SecretError::UnknownMasterKey(id.to_string()))?;
    let plain = cipher(master)
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: body,
                aad: &aad(access_key),
            },
        )
        .map_err(|_| SecretError::Corrupt)?;
    String::from_utf8(plain).map_err(|_| SecretError::Corrupt)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ring() -> Keyring {
        let mut ring = Keyring::default();
        ring.push("k1", [7; 32]);
        ring
    }

    #[test]
    fn seal_open_and_binding_to_the_access_key() {
        let sealed = seal(&ring(), "AKID", "s3cr3t/+x").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"s3cr3t"));
        assert_eq!(open(&ring(), "AKID", &sealed).unwrap(), "s3cr3t/+x");
        assert_eq!(open(&ring(), "OTHER", &sealed), Err(SecretError::Corrupt));
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(open(&ring(), "AKID", &tampered), Err(SecretError::Corrupt));
        assert_eq!(
            open(&Keyring::default(), "AKID", &sealed),
            Err(SecretError::UnknownMasterKey("k1".to_string()))
        );
        assert_eq!(open(&ring(), "AKID", &[]), Err(SecretError::Corrupt));
        assert_eq!(open(&ring(), "AKID", &[1, 200]), Err(SecretError::Corrupt));
        // After a rotation the old key still opens what it sealed.
        let mut rotated = ring();
        rotated.push("k2", [9; 32]);
        assert_eq!(open(&rotated, "AKID", &sealed).unwrap(), "s3cr3t/+x");
    }

    #[test]
    fn sealed_format_is_frozen() {
        let sealed = seal_with_nonce(&ring(), "AKID", "abc", [1; 12]).unwrap();
        assert_eq!(
            hex::encode(&sealed[..16]),
            "0102 6b31 010101010101010101010101".replace(' ', "")
        );
        assert_eq!(sealed.len(), 2 + 2 + 12 + 3 + 16);
        assert_eq!(
            hex::encode(&sealed[16..]),
            "df3494987f3e2c39bac368c8a9cc04e8cb2adc"
        );
    }
}
