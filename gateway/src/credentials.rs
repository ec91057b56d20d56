//! The embedded server's access key pair: generated on first start, kept in
//! `DATA/credentials.toml` (mode 0600), overridable with `STRATA_ACCESS_KEY`/`STRATA_SECRET_KEY`.

use std::io::Write;
use std::path::Path;

use rand::Rng;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
}

const FILE_NAME: &str = "credentials.toml";

fn random_string(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

impl Credentials {
    pub fn generate() -> Credentials {
        const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        const SECRET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        Credentials {
            access_key: format!("STRATA{}", random_string(UPPER, 14)),
            secret_key: random_string(SECRET, 40),
        }
    }

    /// The pair stored in `data_dir` (no environment override, nothing created): what
    /// `strata admin --data DIR` signs with.
    pub fn read(data_dir: &Path) -> std::io::Result<Credentials> {
        let path = data_dir.join(FILE_NAME);
        let text = std::fs::read_to_string(&path)?;
        toml::from_str(&text).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })
    }

    /// The `STRATA_ACCESS_KEY`/`STRATA_SECRET_KEY` override, when both are set.
    pub(crate) fn from_environment() -> Option<Credentials> {
        let access = std::env::var("STRATA_ACCESS_KEY")
            .ok()
            .filter(|s| !s.is_empty());
        let secret = std::env::var("STRATA_SECRET_KEY")
            .ok()
            .filter(|s| !s.is_empty());
        Some(Credentials {
            access_key: access?,
            secret_key: secret?,
        })
    }

    /// The pair a server started on `data_dir` in this environment uses, without creating
    /// one: the environment override, else the stored pair (the same order as
    /// [`Credentials::load_or_create`]). `strata admin --data DIR` signs with it, so it works
    /// when the server's keys came from the environment and no file was written.
    pub fn effective(data_dir: &Path) -> std::io::Result<Credentials> {
        match Credentials::from_environment() {
            Some(credentials) => Ok(credentials),
            None => Credentials::read(data_dir),
        }
    }

    /// Environment override, else the stored pair, else a new pair that is stored durably.
    pub fn load_or_create(data_dir: &Path) -> std::io::Result<Credentials> {
        if let Some(credentials) = Credentials::from_environment() {
            return Ok(credentials);
        }
        let path = data_dir.join(FILE_NAME);
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let credentials = Credentials::generate();
                let text = toml::to_string(&credentials)
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                let tmp = data_dir.join(format!("{FILE_NAME}.tmp"));
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create(true).truncate(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                let mut file = options.open(&tmp)?;
                file.write_all(text.as_bytes())?;
                file.sync_all()?;
                std::fs::rename(&tmp, &path)?;
                std::fs::File::open(data_dir)?.sync_all()?;
                Ok(credentials)
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_persist_across_loads() {
        let dir = tempfile::tempdir().unwrap();
        if std::env::var("STRATA_ACCESS_KEY").is_ok() {
            return; // an override is set in this environment: persistence is not exercised
        }
        let first = Credentials::load_or_create(dir.path()).unwrap();
        let second = Credentials::load_or_create(dir.path()).unwrap();
        assert_eq!(first, second);
        assert_eq!(first.access_key.len(), 20);
        assert_eq!(first.secret_key.len(), 40);
    }
}
