//! Catalog backups (RocksDB mode): a consistent online copy of the catalog, stored on the
//! storage nodes erasure-coded like any object, so that a gateway whose catalog directory is
//! lost can be restored from the nodes alone (`admin::restore`).
//!
//! One backup: a RocksDB checkpoint (hard links plus a copy of the live files, taken while the
//! gateway serves) is packed into one tar stream (`catalog/…`) in a scratch directory, hashed
//! (SHA-256), then written through the ordinary object write path into the reserved bucket
//! [`CATALOG_BACKUP_BUCKET`] under the key `backup/<ms, 20 digits>/<length>/<sha256 hex>`.
//! Every shard header carries that bucket and key in its back-reference, so the newest complete
//! backup — and the manifest it needs (time, length, checksum) — can be found by listing the
//! nodes' shards, without any catalog. The last `keep` backups are kept; older ones are deleted
//! like objects (their shards go to GC).
//!
//! Invariants: at most one backup runs at a time per gateway; the scratch directory of a backup
//! is removed whatever the outcome; a backup is visible (and counts towards `keep`) only once
//! its data is durable on the write quorum, like any object. The reserved bucket's name starts
//! with a dot, which no S3 bucket name may, and the engine hides it from every S3 request
//! ([`Engine::bucket`], [`Engine::list_buckets`]).
//!
//! Only the background leader should make scheduled backups: [`CatalogBackup::spawn`] asks its
//! `is_leader` hook before each one (single-gateway deployments pass `|| true`).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use metadata::model::BucketRecord;
use metadata::{MetaError, RocksKvStore};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::engine::objects::PutObjectRequest;
use crate::engine::view::StorageClass;
use crate::engine::{now_ms, BodyError, BodyStream, Engine, EngineError, WriteCondition};

/// The reserved bucket holding catalog backups (a leading dot: never a valid S3 bucket name).
pub const CATALOG_BACKUP_BUCKET: &str = ".strata-catalog";
/// Key prefix of every backup in [`CATALOG_BACKUP_BUCKET`].
pub const BACKUP_KEY_PREFIX: &str = "backup/";
/// Top directory inside every backup archive.
pub const ARCHIVE_ROOT: &str = "catalog";
/// Bytes read from the packed archive per body chunk.
const CHUNK_BYTES: usize = 1 << 20;

/// What a backup's key says about it: the manifest a restore checks the decoded bytes against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupManifest {
    /// When the checkpoint was taken (ms since the epoch).
    pub time_ms: u64,
    /// Length of the packed archive in bytes.
    pub length: u64,
    /// SHA-256 of the packed archive, lowercase hex.
    pub sha256: String,
}

impl BackupManifest {
    /// The object key that records this manifest.
    pub fn key(&self) -> String {
        format!(
            "{BACKUP_KEY_PREFIX}{:020}/{}/{}",
            self.time_ms, self.length, self.sha256
        )
    }

    /// Parses a key made by [`BackupManifest::key`]; `None` for anything else.
    pub fn parse_key(key: &str) -> Option<BackupManifest> {
        let rest = key.strip_prefix(BACKUP_KEY_PREFIX)?;
        let mut fields = rest.split('/');
        let time = fields.next()?;
        let length = fields.next()?;
        let sha256 = fields.next()?;
        if fields.next().is_some()
            || time.len() != 20
            || sha256.len() != 64
            || !sha256
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return None;
        }
        Some(BackupManifest {
            time_ms: time.parse().ok()?,
            length: length.parse().ok()?,
            sha256: sha256.to_string(),
        })
    }
}

/// One finished backup, as the admin API reports it.
#[derive(Debug, Clone, Serialize)]
pub struct BackupInfo {
    pub bucket: String,
    pub key: String,
    #[serde(flatten)]
    pub manifest: BackupManifest,
    /// Older backups deleted because more than `keep` existed.
    pub removed: Vec<String>,
    /// Backups kept after this one (this one included).
    pub kept: usize,
}

/// Why a backup failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("catalog checkpoint: {0}")]
    Checkpoint(#[source] MetaError),
    #[error("packing the checkpoint in {path}: {source}")]
    Pack {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the packed catalog is {length} bytes, not more than inline_threshold: it would be kept \
         in the catalog itself"
    )]
    TooSmall { length: u64 },
    #[error("storing the backup: {0}")]
    Engine(#[from] EngineError),
}

/// Tunables of scheduled backups.
#[derive(Debug, Clone)]
pub struct BackupConfig {
    /// Time between scheduled backups; zero turns the schedule off (the admin trigger works).
    pub interval: Duration,
    /// Backups kept; older ones are deleted after each successful backup (at least 1).
    pub keep: usize,
    /// Scratch directory for the checkpoint and the archive (on the catalog's filesystem, so
    /// the checkpoint can hard-link).
    pub scratch: PathBuf,
}

/// Outcome counters of this gateway's backups, for the admin API.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BackupStatus {
    pub succeeded: u64,
    pub failed: u64,
    pub last: Option<BackupInfo>,
    pub last_error: Option<String>,
}

/// Makes catalog backups of a RocksDB catalog onto the storage nodes.
pub struct CatalogBackup {
    engine: Arc<Engine>,
    store: Arc<RocksKvStore>,
    config: BackupConfig,
    /// Held for the whole of one backup: backups never overlap.
    running: tokio::sync::Mutex<()>,
    status: Mutex<BackupStatus>,
}

impl CatalogBackup {
    /// Backups of `store` (the engine's catalog store) through `engine`.
    pub fn new(engine: Arc<Engine>, store: Arc<RocksKvStore>, config: BackupConfig) -> Arc<Self> {
        Arc::new(CatalogBackup {
            engine,
            store,
            config,
            running: tokio::sync::Mutex::new(()),
            status: Mutex::new(BackupStatus::default()),
        })
    }

    /// Counters and the last backup made by this gateway.
    pub fn status(&self) -> BackupStatus {
        super::lock(&self.status).clone()
    }

    /// Runs the schedule: one backup every `interval` while `is_leader()` says this gateway
    /// does background work (the leadership hook), until `shutdown` turns true. A zero interval
    /// returns a task that ends at once.
    pub fn spawn(
        self: &Arc<Self>,
        is_leader: impl Fn() -> bool + Send + 'static,
        mut shutdown: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let interval = this.config.interval;
            if interval.is_zero() {
                return;
            }
            loop {
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    _ = shutdown.wait_for(|stop| *stop) => return,
                }
                if !is_leader() {
                    continue;
                }
                // Errors are logged and counted by `run`; the next attempt is the next tick.
                let _ = this.run().await;
            }
        })
    }

    /// Makes one backup now (the admin trigger and the schedule), then deletes the backups
    /// beyond `keep`.
    pub async fn run(&self) -> Result<BackupInfo, BackupError> {
        let _running = self.running.lock().await;
        let result = self.backup().await;
        let mut status = super::lock(&self.status);
        match &result {
            Ok(info) => {
                info!(key = %info.key, bytes = info.manifest.length, removed = info.removed.len(), "catalog backup stored");
                status.succeeded += 1;
                status.last = Some(info.clone());
            }
            Err(e) => {
                warn!(error = %e, "catalog backup failed");
                status.failed += 1;
                status.last_error = Some(e.to_string());
            }
        }
        result
    }

    async fn backup(&self) -> Result<BackupInfo, BackupError> {
        let time_ms = now_ms();
        let scratch = self.config.scratch.join(format!("{time_ms}"));
        let packed = {
            let store = self.store.clone();
            let scratch = scratch.clone();
            tokio::task::spawn_blocking(move || checkpoint_and_pack(&store, &scratch))
                .await
                .map_err(|e| EngineError::internal("backup task", e))?
        };
        let stored = match packed {
            Ok((archive, length, sha256)) => {
                let manifest = BackupManifest {
                    time_ms,
                    length,
                    sha256,
                };
                self.store_archive(&archive, &manifest)
                    .await
                    .map(|()| manifest)
            }
            Err(e) => Err(e),
        };
        let cleanup = scratch.clone();
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(cleanup)).await;
        let manifest = stored?;
        let (removed, kept) = self.remove_old_backups().await?;
        Ok(BackupInfo {
            bucket: CATALOG_BACKUP_BUCKET.to_string(),
            key: manifest.key(),
            manifest,
            removed,
            kept,
        })
    }

    /// Writes the archive at `path` as the object that `manifest` names.
    async fn store_archive(
        &self,
        path: &Path,
        manifest: &BackupManifest,
    ) -> Result<(), BackupError> {
        if manifest.length <= self.engine.config.inline_threshold as u64 {
            return Err(BackupError::TooSmall {
                length: manifest.length,
            });
        }
        let bucket = self.backup_bucket().await?;
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|source| BackupError::Pack {
                path: path.to_path_buf(),
                source,
            })?;
        let request = PutObjectRequest {
            key: manifest.key(),
            length: manifest.length,
            content_type: Some("application/x-tar".to_string()),
            headers: Vec::new(),
            user_metadata: Vec::new(),
            storage_class: StorageClass::Standard,
            expected_md5: None,
            checksum: None,
            condition: WriteCondition::None,
            // Read back offline by `restore-catalog`, without the gateway's keys.
            encryption: crate::sse::SseRequest::None,
            access: None,
        };
        self.engine
            .store_object(&bucket, request, None, file_body(file))
            .await?;
        Ok(())
    }

    /// The reserved bucket's record, created on first use.
    async fn backup_bucket(&self) -> Result<BucketRecord, EngineError> {
        let region = self.engine.config.region.clone();
        self.engine
            .meta(move |catalog| {
                if let Some(record) = catalog.get_bucket(CATALOG_BACKUP_BUCKET)? {
                    return Ok(record);
                }
                match catalog.create_bucket(CATALOG_BACKUP_BUCKET, "strata", &region, now_ms()) {
                    Err(MetaError::BucketExists) => catalog
                        .get_bucket(CATALOG_BACKUP_BUCKET)?
                        .ok_or(MetaError::NoSuchBucket),
                    other => other,
                }
            })
            .await
    }

    /// Deletes every backup but the newest `keep`; returns the deleted keys and how many remain.
    async fn remove_old_backups(&self) -> Result<(Vec<String>, usize), EngineError> {
        let bucket = self.backup_bucket().await?;
        let bid = bucket.id;
        let keys = self
            .engine
            .meta(move |catalog| backup_keys(catalog, &bid))
            .await?;
        let keep = self.config.keep.max(1);
        let excess = keys.len().saturating_sub(keep);
        let removed: Vec<String> = keys.iter().take(excess).cloned().collect();
        let gc_delay = self.engine.config.gc_delay.as_millis() as u64;
        for key in &removed {
            let key = key.clone();
            self.engine
                .meta(move |catalog| catalog.delete_object(&bid, &key, now_ms(), gc_delay))
                .await?;
        }
        Ok((removed, keys.len() - excess))
    }
}

/// Every backup key of the reserved bucket `bid`, oldest first (keys sort by time).
pub fn backup_keys(
    catalog: &metadata::Catalog,
    bid: &metadata::BucketId,
) -> Result<Vec<String>, MetaError> {
    catalog.keys_under(bid, BACKUP_KEY_PREFIX)
}

/// Checkpoints `store` into `scratch/checkpoint` and packs it into `scratch/catalog.tar`;
/// returns the archive's path, length and SHA-256 (hex). Blocking.
fn checkpoint_and_pack(
    store: &RocksKvStore,
    scratch: &Path,
) -> Result<(PathBuf, u64, String), BackupError> {
    let pack_error = |source| BackupError::Pack {
        path: scratch.to_path_buf(),
        source,
    };
    if scratch.exists() {
        std::fs::remove_dir_all(scratch).map_err(pack_error)?;
    }
    std::fs::create_dir_all(scratch).map_err(pack_error)?;
    let checkpoint = scratch.join("checkpoint");
    store
        .checkpoint(&checkpoint)
        .map_err(BackupError::Checkpoint)?;
    let archive = scratch.join("catalog.tar");
    let file = std::fs::File::create(&archive).map_err(pack_error)?;
    let mut builder = tar::Builder::new(HashingWriter {
        inner: BufWriter::new(file),
        hasher: Sha256::new(),
        length: 0,
    });
    builder.follow_symlinks(false);
    builder
        .append_dir_all(ARCHIVE_ROOT, &checkpoint)
        .map_err(pack_error)?;
    let mut writer = builder.into_inner().map_err(pack_error)?;
    writer.flush().map_err(pack_error)?;
    Ok((
        archive,
        writer.length,
        hex::encode(writer.hasher.finalize()),
    ))
}

/// A writer that counts and hashes what passes through it.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    length: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        let done = buf.get(..written).unwrap_or_default();
        self.hasher.update(done);
        self.length += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A body stream of a file's bytes, in chunks of `CHUNK_BYTES`.
fn file_body(file: tokio::fs::File) -> BodyStream {
    Box::pin(futures::stream::unfold(Some(file), |state| async move {
        let mut file = state?;
        let mut buffer = vec![0u8; CHUNK_BYTES];
        match file.read(&mut buffer).await {
            Ok(0) => None,
            Ok(read) => {
                buffer.truncate(read);
                Some((Ok(Bytes::from(buffer)), Some(file)))
            }
            Err(e) => Some((Err(Box::new(e) as BodyError), None)),
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_keys_round_trip_and_strangers_are_refused() {
        let manifest = BackupManifest {
            time_ms: 1_765_000_000_123,
            length: 81_920,
            sha256: "ab".repeat(32),
        };
        let key = manifest.key();
        assert_eq!(
            key,
            format!("backup/00000001765000000123/81920/{}", "ab".repeat(32))
        );
        assert_eq!(BackupManifest::parse_key(&key), Some(manifest));
        for stranger in [
            "backup/1/2/3",
            "other/00000001765000000123/81920/".to_string().as_str(),
            &format!("backup/00000001765000000123/x/{}", "ab".repeat(32)),
            &format!("backup/00000001765000000123/1/{}", "AB".repeat(32)),
            &format!("backup/00000001765000000123/1/{}/extra", "ab".repeat(32)),
        ] {
            assert_eq!(BackupManifest::parse_key(stranger), None, "{stranger}");
        }
    }
}
