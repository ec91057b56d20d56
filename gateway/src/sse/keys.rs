//! Key handling of encryption at rest: the master keyring (SSE-S3), the local key-file KMS
//! (SSE-KMS), customer keys (SSE-C), and the wrapping of per-object data keys.
//!
//! A data key is 32 random bytes, made per object (per upload for multipart) and stored only
//! wrapped: `nonce (12) ‖ AES-256-GCM(kek, nonce, aad, data key) ‖ tag (16)` = 60 bytes, where
//! `aad = "strata-sse-v1" ‖ scheme byte ‖ key id`, so a wrapped key cannot be moved to another
//! scheme or key id. The key-encryption key (kek) is a named master key (SSE-S3), a named KMS
//! key (SSE-KMS), or for SSE-C `HKDF-SHA256(customer key, salt, "strata sse-c kek")`; SSE-C
//! also stores `HMAC-SHA256(HKDF(customer key, salt, "strata sse-c check"), "check")` to tell a
//! wrong key (403) from corruption. The customer key itself is never stored.
//!
//! Key files: one key per line, `<id> <base64 of 32 bytes>`; `#` starts a comment. For the
//! master keyring the LAST line is the active key (rotation appends a line; older keys stay for
//! unwrapping until `strata admin sse rewrap` has moved every data key to the active one).

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::SseError;

/// Scheme bytes of the wrapping AAD (also the stored scheme).
pub const SCHEME_S3: u8 = 1;
pub const SCHEME_C: u8 = 2;
pub const SCHEME_KMS: u8 = 3;

const WRAP_AAD: &[u8] = b"strata-sse-v1";
/// Bytes of a wrapped data key.
pub const WRAPPED_LEN: usize = 12 + 32 + 16;

/// A 256-bit key.
pub type KeyBytes = [u8; 32];

/// Named 256-bit keys read from a key file (or the environment).
#[derive(Clone, Default)]
pub struct Keyring {
    /// In file order; the last one is the active key.
    keys: Vec<(String, KeyBytes)>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("Keyring").field("ids", &ids).finish()
    }
}

impl Keyring {
    /// Parses key-file text.
    pub fn parse(text: &str) -> Result<Self, SseError> {
        let mut keys: Vec<(String, KeyBytes)> = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            let (Some(id), Some(encoded), None) = (words.next(), words.next(), words.next()) else {
                return Err(SseError::KeyFile(format!(
                    "line {}: expected `<id> <base64 key>`",
                    number + 1
                )));
            };
            let key = decode_key(encoded)
                .map_err(|e| SseError::KeyFile(format!("line {}: {e}", number + 1)))?;
            if keys.iter().any(|(other, _)| other == id) {
                return Err(SseError::KeyFile(format!(
                    "line {}: duplicate key id {id}",
                    number + 1
                )));
            }
            keys.push((id.to_string(), key));
        }
        Ok(Keyring { keys })
    }

    /// Reads a key file.
    pub fn load(path: &Path) -> Result<Self, SseError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SseError::KeyFile(format!("{}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| SseError::KeyFile(format!("{}: {e}", path.display())))
    }

    /// Adds a key (the environment's) as the active one.
    pub fn push(&mut self, id: &str, key: KeyBytes) {
        self.keys.retain(|(other, _)| other != id);
        self.keys.push((id.to_string(), key));
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The active key's id and bytes.
    pub fn active(&self) -> Option<(&str, &KeyBytes)> {
        self.keys.last().map(|(id, key)| (id.as_str(), key))
    }

    pub fn get(&self, id: &str) -> Option<&KeyBytes> {
        self.keys.iter().find(|(k, _)| k == id).map(|(_, key)| key)
    }

    pub fn ids(&self) -> Vec<String> {
        self.keys.iter().map(|(id, _)| id.clone()).collect()
    }
}

/// Decodes a base64 256-bit key.
pub fn decode_key(encoded: &str) -> Result<KeyBytes, String> {
    let raw = BASE64
        .decode(encoded.trim())
        .map_err(|_| "key is not valid base64".to_string())?;
    raw.try_into()
        .map_err(|raw: Vec<u8>| format!("key is {} bytes, expected 32", raw.len()))
}

/// Creates `path` with one fresh random key named `id` (mode 0600) if it does not exist.
/// Returns whether it was created.
pub fn ensure_key_file(path: &Path, id: &str) -> Result<bool, SseError> {
    use std::io::Write;
    if path.exists() {
        return Ok(false);
    }
    let key: KeyBytes = rand::random();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| SseError::KeyFile(format!("{}: {e}", path.display())))?;
    writeln!(
        file,
        "# Strata SSE-S3 master keys: `<id> <base64 32 bytes>`, the last line is active.\n{id} {}",
        BASE64.encode(key)
    )
    .and_then(|()| file.sync_all())
    .map_err(|e| SseError::KeyFile(format!("{}: {e}", path.display())))?;
    Ok(true)
}

/// Appends a fresh random key named `id` to a key file (it becomes the active key).
pub fn append_new_key(path: &Path, id: &str) -> Result<(), SseError> {
    use std::io::Write;
    let ring = Keyring::load(path)?;
    if ring.get(id).is_some() {
        return Err(SseError::KeyFile(format!("key id {id} already exists")));
    }
    let key: KeyBytes = rand::random();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| SseError::KeyFile(format!("{}: {e}", path.display())))?;
    writeln!(file, "{id} {}", BASE64.encode(key))
        .and_then(|()| file.sync_all())
        .map_err(|e| SseError::KeyFile(format!("{}: {e}", path.display())))
}

/// A fresh random data key.
pub fn new_data_key() -> KeyBytes {
    rand::random()
}

fn aad(scheme: u8, key_id: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(WRAP_AAD.len() + 1 + key_id.len());
    aad.extend_from_slice(WRAP_AAD);
    aad.push(scheme);
    aad.extend_from_slice(key_id.as_bytes());
    aad
}

/// Wraps `data_key` under `kek`.
pub fn wrap(kek: &KeyBytes, scheme: u8, key_id: &str, data_key: &KeyBytes) -> Vec<u8> {
    let nonce: [u8; 12] = rand::random();
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(kek));
    let aad = aad(scheme, key_id);
    let mut out = nonce.to_vec();
    // Encrypting 32 bytes under a valid key cannot fail (the only error is a too-long input).
    if let Ok(sealed) = cipher.encrypt(
        Nonce::from_slice(&nonce),
        Payload {
            msg: data_key,
            aad: &aad,
        },
    ) {
        out.extend_from_slice(&sealed);
    }
    out
}

/// Unwraps a data key; a wrong kek or altered bytes are [`SseError::Unwrap`].
pub fn unwrap(
    kek: &KeyBytes,
    scheme: u8,
    key_id: &str,
    wrapped: &[u8],
) -> Result<KeyBytes, SseError> {
    if wrapped.len() != WRAPPED_LEN {
        return Err(SseError::Unwrap);
    }
    let (nonce, sealed) = wrapped.split_at(12);
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(kek));
    let aad = aad(scheme, key_id);
    let plain = cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: &aad,
            },
        )
        .map_err(|_| SseError::Unwrap)?;
    plain.try_into().map_err(|_| SseError::Unwrap)
}

/// What SSE-C derives from a customer key and a salt.
pub struct CustomerDerived {
    pub kek: KeyBytes,
    pub check: Vec<u8>,
}

/// Derives the SSE-C key-encryption key and check value.
pub fn derive_customer(customer_key: &KeyBytes, salt: &[u8]) -> CustomerDerived {
    let hk = hkdf::Hkdf::<Sha256>::new(Some(salt), customer_key);
    let mut kek = [0u8; 32];
    let mut check_key = [0u8; 32];
    // 32-byte outputs are far below HKDF-SHA256's limit of 255 * 32 bytes.
    let _ = hk.expand(b"strata sse-c kek", &mut kek);
    let _ = hk.expand(b"strata sse-c check", &mut check_key);
    let check = match <Hmac<Sha256> as Mac>::new_from_slice(&check_key) {
        Ok(mut mac) => {
            mac.update(b"check");
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    };
    CustomerDerived { kek, check }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keyring_parses_and_last_key_is_active() {
        let a = BASE64.encode([1u8; 32]);
        let b = BASE64.encode([2u8; 32]);
        let ring = Keyring::parse(&format!("# comment\nold {a}\n\nnew {b} # rotated\n")).unwrap();
        assert_eq!(ring.active().unwrap().0, "new");
        assert_eq!(ring.get("old").unwrap(), &[1u8; 32]);
        assert!(Keyring::parse(&format!("x {a}\nx {b}")).is_err());
        assert!(Keyring::parse("x notbase64!").is_err());
        assert!(Keyring::parse(&format!("x {}", BASE64.encode([1u8; 16]))).is_err());
        assert!(Keyring::parse(&format!("x {a} extra")).is_err());
    }

    #[test]
    fn wrap_unwrap_and_wrong_keys() {
        let kek = [5u8; 32];
        let data = [6u8; 32];
        let wrapped = wrap(&kek, SCHEME_S3, "k1", &data);
        assert_eq!(wrapped.len(), WRAPPED_LEN);
        assert_eq!(unwrap(&kek, SCHEME_S3, "k1", &wrapped).unwrap(), data);
        assert!(unwrap(&[7u8; 32], SCHEME_S3, "k1", &wrapped).is_err());
        assert!(unwrap(&kek, SCHEME_S3, "k2", &wrapped).is_err());
        assert!(unwrap(&kek, SCHEME_C, "k1", &wrapped).is_err());
        let mut bad = wrapped.clone();
        bad[20] ^= 1;
        assert!(unwrap(&kek, SCHEME_S3, "k1", &bad).is_err());
        assert!(unwrap(&kek, SCHEME_S3, "k1", &wrapped[1..]).is_err());
    }

    #[test]
    fn customer_derivation_depends_on_key_and_salt() {
        let one = derive_customer(&[1u8; 32], b"salt-salt-salt-1");
        let again = derive_customer(&[1u8; 32], b"salt-salt-salt-1");
        let other_key = derive_customer(&[2u8; 32], b"salt-salt-salt-1");
        let other_salt = derive_customer(&[1u8; 32], b"salt-salt-salt-2");
        assert_eq!(one.kek, again.kek);
        assert_eq!(one.check, again.check);
        assert_ne!(one.check, other_key.check);
        assert_ne!(one.kek, other_salt.kek);
        assert_ne!(one.kek, [1u8; 32]);
    }

    #[test]
    fn key_file_is_created_private_and_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sse.keys");
        assert!(ensure_key_file(&path, "k1").unwrap());
        assert!(!ensure_key_file(&path, "k1").unwrap());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        append_new_key(&path, "k2").unwrap();
        let ring = Keyring::load(&path).unwrap();
        assert_eq!(ring.ids(), vec!["k1", "k2"]);
        assert_eq!(ring.active().unwrap().0, "k2");
        assert!(append_new_key(&path, "k2").is_err());
    }
}
