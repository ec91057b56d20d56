//! The access keys the gateway accepts and the knobs of request authentication.
//!
//! Invariants: a secret never appears in `Debug` output; the SigV4 signing-key cache is keyed by
//! (access key, date, region) and lives inside the keyring, so rebuilding the keyring after a key
//! change also drops every derived key; the cache is bounded.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Derived SigV4 keys kept before the cache is emptied (one per key, day and region in use).
const SIGNING_KEY_CACHE_CAPACITY: usize = 1024;

/// Derived signing keys by (access key, yyyymmdd, region).
type SigningKeyCache = Mutex<HashMap<(String, String, String), [u8; 32]>>;

/// Access key id → secret access key.
#[derive(Clone)]
pub struct Keyring {
    secrets: Arc<HashMap<String, String>>,
    signing_keys: Arc<SigningKeyCache>,
}

impl Keyring {
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Self {
            secrets: Arc::new(pairs.into_iter().collect()),
            signing_keys: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub fn secret(&self, access: &str) -> Option<&str> {
        self.secrets.get(access).map(String::as_str)
    }

    /// The SigV4 signing key of `access` for `date` (yyyymmdd) and `region`, computed by
    /// `derive` on a cache miss.
    pub(crate) fn signing_key(
        &self,
        access: &str,
        date: &str,
        region: &str,
        derive: impl FnOnce() -> [u8; 32],
    ) -> [u8; 32] {
        let cache_key = (access.to_owned(), date.to_owned(), region.to_owned());
        if let Ok(cache) = self.signing_keys.lock() {
            if let Some(key) = cache.get(&cache_key) {
                return *key;
            }
        }
        let key = derive();
        if let Ok(mut cache) = self.signing_keys.lock() {
            if cache.len() >= SIGNING_KEY_CACHE_CAPACITY {
                cache.clear();
            }
            cache.insert(cache_key, key);
        }
        key
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut keys: Vec<&str> = self.secrets.keys().map(String::as_str).collect();
        keys.sort_unstable();
        f.debug_struct("Keyring")
            .field("access_keys", &keys)
            .finish_non_exhaustive()
    }
}

/// How strictly requests are authenticated.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// When set, SigV4 scopes naming another region are refused with
    /// `AuthorizationHeaderMalformed` carrying `<Region>` (clients re-sign for it).
    pub strict_region: Option<String>,
    /// Largest accepted difference between the request time and ours (AWS: 15 minutes).
    pub max_skew: Duration,
    /// Largest accepted `X-Amz-Expires` / SigV2 `Expires` distance (AWS: 7 days).
    pub max_presign_expiry: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            strict_region: None,
            max_skew: Duration::from_secs(15 * 60),
            max_presign_expiry: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_cache() {
        let keyring = Keyring::new(vec![("AK".into(), "SECRET".into())]);
        assert_eq!(keyring.secret("AK"), Some("SECRET"));
        assert_eq!(keyring.secret("nope"), None);
        assert!(!format!("{keyring:?}").contains("SECRET"));
        let first = keyring.signing_key("AK", "20130524", "us-east-1", || [7; 32]);
        // A cache hit must not call the derivation again.
        let second = keyring.signing_key("AK", "20130524", "us-east-1", || [9; 32]);
        assert_eq!(first, second);
        let other_day = keyring.signing_key("AK", "20130525", "us-east-1", || [9; 32]);
        assert_eq!(other_day, [9; 32]);
    }
}
