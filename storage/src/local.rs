//! `LocalShardStore`: shards as files in one directory (one disk).
//!
//! Layout: `<dir>/shards/<first 2 hex of group>/<group hex>.<index>` for committed shards and
//! `<dir>/tmp/<file name>.<random>.tmp` for shards being written.
//!
//! Invariants: a shard file under `shards/` is always complete — it is written in `tmp/`,
//! fsynced (when `fsync` is on), renamed into place and its directory fsynced, so a crash leaves
//! either the old state or the whole new file; stale `tmp/` files are removed at `open`. All
//! blocking file I/O runs in `tokio::task::spawn_blocking`. If the directory disappears under a
//! running store, reads answer `NotFound`, writes fail, and a later `create` recreates it.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::codec::Geometry;
use crate::error::StorageError;
use crate::format::{self, ShardHeader};
use crate::id::ShardId;
use crate::scrub::ledger::ScrubLedger;
use crate::scrub::report::ScrubStatus;
use crate::store::{ShardStat, ShardStore, ShardWriter, StoreHealth};

/// Most frames one `read_frames` call may ask for (bounds the answer's size).
pub const MAX_FRAMES_PER_READ: u64 = 1 << 16;
const WRITE_BUFFER_BYTES: usize = 1 << 20;

/// A shard store backed by one local directory.
#[derive(Clone, Debug)]
pub struct LocalShardStore {
    root: PathBuf,
    name: String,
    fsync: bool,
    /// The scrubber's durable bookkeeping, shared by every clone (`crate::scrub`).
    scrub: Arc<ScrubLedger>,
    /// Random per `open` (never 0): reported by `health`, so a restart is visible.
    instance: u64,
}

impl LocalShardStore {
    /// Opens (creating if needed) the store in `dir` and removes stale temporary files.
    /// Synchronous: call it at startup, or from `spawn_blocking`.
    pub fn open(dir: PathBuf, name: String, fsync: bool) -> Result<Self, StorageError> {
        ensure_dir(&dir, fsync)?;
        let scrub = Arc::new(ScrubLedger::open(&dir, fsync)?);
        let store = LocalShardStore {
            root: dir,
            name,
            fsync,
            scrub,
            instance: uuid::Uuid::new_v4().as_u64_pair().0.max(1),
        };
        ensure_dir(&store.shards_dir(), fsync)?;
        ensure_dir(&store.tmp_dir(), fsync)?;
        let mut removed = 0usize;
        for entry in fs::read_dir(store.tmp_dir())? {
            let path = entry?.path();
            if path.is_file() && fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
        if removed > 0 {
            tracing::info!(store = %store.name, removed, "removed stale temporary shard files");
        }
        Ok(store)
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the committed shard `id` lives.
    pub fn shard_path(&self, id: ShardId) -> PathBuf {
        shard_path(&self.root, id)
    }

    /// Whether shard files and directories are fsynced.
    pub fn fsyncs(&self) -> bool {
        self.fsync
    }

    /// The scrubber's ledger of this store (progress, reports).
    pub fn scrub_ledger(&self) -> &Arc<ScrubLedger> {
        &self.scrub
    }

    fn shards_dir(&self) -> PathBuf {
        self.root.join("shards")
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }
}

/// Where the committed shard `id` lives in a store rooted at `root`.
pub fn shard_path(root: &Path, id: ShardId) -> PathBuf {
    let hex = id.group.to_hex();
    let prefix = hex.get(..2).unwrap_or("00");
    root.join("shards").join(prefix).join(id.file_name())
}

#[async_trait]
impl ShardStore for LocalShardStore {
    fn name(&self) -> &str {
        &self.name
    }

    async fn create(
        &self,
        id: ShardId,
        header: ShardHeader,
    ) -> Result<Box<dyn ShardWriter>, StorageError> {
        let geometry = header.check_for(id)?;
        let stripe_count = geometry.stripe_count(header.part_length);
        let tmp_path = self.tmp_dir().join(format!(
            "{}.{}.tmp",
            id.file_name(),
            uuid::Uuid::new_v4().simple()
        ));
        let (root, tmp_dir, fsync) = (self.root.clone(), self.tmp_dir(), self.fsync);
        let path = tmp_path.clone();
        let encoded = header.encode();
        let capacity = WRITE_BUFFER_BYTES
            .min(geometry.shard_len_full() + 8)
            .max(4096);
        let file = tokio::task::spawn_blocking(move || -> Result<_, StorageError> {
            // Recreates the directories if they were removed while running.
            ensure_dir(&root, fsync)?;
            ensure_dir(&tmp_dir, fsync)?;
            let mut file = BufWriter::with_capacity(capacity, File::create_new(&path)?);
            file.write_all(&encoded)?;
            Ok(file)
        })
        .await??;
        Ok(Box::new(LocalShardWriter {
            id,
            file: Some(file),
            tmp_path,
            final_path: self.shard_path(id),
            root: self.root.clone(),
            fsync: self.fsync,
            geometry,
            part_length: header.part_length,
            stripe_count,
            next_stripe: 0,
            finished: false,
        }))
    }

    async fn read_frames(
        &self,
        id: ShardId,
        first_stripe: u64,
        count: u64,
    ) -> Result<Vec<Option<Bytes>>, StorageError> {
        if count > MAX_FRAMES_PER_READ {
            return Err(StorageError::InvalidArgument(format!(
                "at most {MAX_FRAMES_PER_READ} frames per read, asked for {count}"
            )));
        }
        let path = self.shard_path(id);
        let (frames, bad) = tokio::task::spawn_blocking(move || {
            read_frames_blocking(&path, id, first_stripe, count)
        })
        .await??;
        for stripe in bad {
            tracing::warn!(store = %self.name, shard = %id, stripe, "frame failed its checksum or is truncated");
        }
        Ok(frames)
    }

    async fn stat(&self, id: ShardId) -> Result<ShardStat, StorageError> {
        let path = self.shard_path(id);
        tokio::task::spawn_blocking(move || {
            let mut file = File::open(&path)?;
            let (header, header_len) = format::read_header(&mut file, id)?;
            let file_len = file.metadata()?.len();
            Ok(ShardStat {
                header,
                header_len,
                file_len,
            })
        })
        .await?
    }

    async fn delete(&self, id: ShardId) -> Result<(), StorageError> {
        let path = self.shard_path(id);
        tokio::task::spawn_blocking(move || match fs::remove_file(&path) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(StorageError::from(err)),
            _ => Ok(()),
        })
        .await?
    }

    async fn list(
        &self,
        after: Option<ShardId>,
        limit: usize,
    ) -> Result<Vec<ShardId>, StorageError> {
        let shards_dir = self.shards_dir();
        tokio::task::spawn_blocking(move || list_blocking(&shards_dir, after, limit)).await?
    }

    async fn health(&self) -> Result<StoreHealth, StorageError> {
        let root = self.root.clone();
        let instance = self.instance;
        tokio::task::spawn_blocking(move || match rustix::fs::statvfs(&root) {
            Ok(stats) => Ok(StoreHealth {
                free_bytes: stats.f_bavail.saturating_mul(stats.f_frsize),
                total_bytes: stats.f_blocks.saturating_mul(stats.f_frsize),
                instance,
            }),
            Err(errno) if errno == rustix::io::Errno::NOENT => Err(StorageError::Unavailable(
                format!("data directory {} is missing", root.display()),
            )),
            Err(errno) => Err(StorageError::from(io::Error::from(errno))),
        })
        .await?
    }

    async fn scrub_status(&self) -> Result<ScrubStatus, StorageError> {
        Ok(self.scrub.status())
    }

    async fn ack_scrub_reports(&self, up_to: u64) -> Result<(), StorageError> {
        let ledger = Arc::clone(&self.scrub);
        tokio::task::spawn_blocking(move || ledger.acknowledge(up_to).map(drop)).await?
    }
}

/// Returns the frames and the stripes that were bad (for logging on the async side).
#[allow(clippy::type_complexity)]
fn read_frames_blocking(
    path: &Path,
    id: ShardId,
    first_stripe: u64,
    count: u64,
) -> Result<(Vec<Option<Bytes>>, Vec<u64>), StorageError> {
    let mut file = File::open(path)?;
    let (header, header_len) = format::read_header(&mut file, id)?;
    let geometry = header.geometry()?;
    let part_len = header.part_length;
    let stripe_count = geometry.stripe_count(part_len);
    let end_stripe = first_stripe
        .checked_add(count)
        .filter(|end| *end <= stripe_count)
        .ok_or_else(|| {
            StorageError::InvalidArgument(format!(
                "frames {first_stripe}+{count} past the {stripe_count} stripes of {id}"
            ))
        })?;
    let start = format::frame_offset(header_len, &geometry, part_len, first_stripe);
    let end = format::frame_offset(header_len, &geometry, part_len, end_stripe);
    file.seek(SeekFrom::Start(start))?;
    // Sized up front: `read_to_end` into an empty Vec grows it by doubling, copying a 1 MiB
    // range several times over and faulting in fresh pages at each step.
    let span = end.saturating_sub(start);
    let mut range = Vec::with_capacity(usize::try_from(span).unwrap_or(0));
    file.take(span).read_to_end(&mut range)?;
    let range = Bytes::from(range);

    let mut frames = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    let mut bad = Vec::new();
    let mut position = 0usize;
    for stripe in first_stripe..end_stripe {
        let len = usize::try_from(format::frame_len(&geometry, part_len, stripe)).unwrap_or(0);
        let frame_end = position.saturating_add(len);
        let verified = range
            .get(position..frame_end)
            .and_then(format::verify_frame)
            .map(|shard| range.slice_ref(shard));
        if verified.is_none() {
            bad.push(stripe);
        }
        frames.push(verified);
        position = frame_end;
    }
    Ok((frames, bad))
}

fn list_blocking(
    shards_dir: &Path,
    after: Option<ShardId>,
    limit: usize,
) -> Result<Vec<ShardId>, StorageError> {
    let mut found = Vec::new();
    if limit == 0 {
        return Ok(found);
    }
    let entries = match fs::read_dir(shards_dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(found),
        Err(err) => return Err(err.into()),
    };
    let after_prefix = after.map(|id| id.group.to_hex().get(..2).unwrap_or("").to_string());
    let mut prefixes: Vec<String> = entries
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| {
            name.len() == 2
                && name
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
        .filter(|name| after_prefix.as_ref().is_none_or(|after| name >= after))
        .collect();
    prefixes.sort();
    for prefix in prefixes {
        let entries = match fs::read_dir(shards_dir.join(&prefix)) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err.into()),
        };
        let mut ids: Vec<ShardId> = entries
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| name.starts_with(prefix.as_str()))
            .filter_map(|name| ShardId::parse_file_name(&name).ok())
            .filter(|id| after.is_none_or(|after| *id > after))
            .collect();
        ids.sort();
        found.extend(ids);
        if found.len() >= limit {
            found.truncate(limit);
            break;
        }
    }
    Ok(found)
}

/// Creates `dir` if missing; when `fsync` is on, makes the new entry durable in its parent.
fn ensure_dir(dir: &Path, fsync: bool) -> Result<(), StorageError> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        if !parent.as_os_str().is_empty() && !parent.is_dir() {
            fs::create_dir_all(parent)?;
        }
    }
    match fs::create_dir(dir) {
        Err(err) if err.kind() != io::ErrorKind::AlreadyExists => return Err(err.into()),
        _ => {}
    }
    if let (true, Some(parent)) = (fsync, dir.parent()) {
        if !parent.as_os_str().is_empty() {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

fn vanished(tmp_path: &Path) -> StorageError {
    StorageError::Io(format!(
        "temporary file {} vanished (data directory removed?)",
        tmp_path.display()
    ))
}

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// Writes one shard into `tmp/`; `commit` moves it into `shards/`.
struct LocalShardWriter {
    id: ShardId,
    /// `None` once a write failed (the writer is then unusable) or after commit/abort.
    file: Option<BufWriter<File>>,
    tmp_path: PathBuf,
    final_path: PathBuf,
    root: PathBuf,
    fsync: bool,
    geometry: Geometry,
    part_length: u64,
    stripe_count: u64,
    next_stripe: u64,
    /// Committed or aborted: nothing left for `Drop` to clean.
    finished: bool,
}

impl LocalShardWriter {
    fn take_file(&mut self) -> Result<BufWriter<File>, StorageError> {
        self.file.take().ok_or_else(|| {
            StorageError::Io(format!(
                "writer of shard {} is unusable after an earlier failure",
                self.id
            ))
        })
    }

    /// Closes the file without flushing and removes the temporary file, off the reactor.
    fn discard(&mut self) -> Option<tokio::task::JoinHandle<()>> {
        self.finished = true;
        let file = self.file.take();
        let path = self.tmp_path.clone();
        let work = move || {
            // into_parts drops the buffered bytes instead of writing them.
            drop(file.map(BufWriter::into_parts));
            let _ = fs::remove_file(&path);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => Some(runtime.spawn_blocking(work)),
            Err(_) => {
                work();
                None
            }
        }
    }
}

#[async_trait]
impl ShardWriter for LocalShardWriter {
    async fn write_frame(&mut self, shard_bytes: Bytes) -> Result<(), StorageError> {
        format::check_next_frame(
            self.id,
            &self.geometry,
            self.part_length,
            self.next_stripe,
            shard_bytes.len(),
        )?;
        let mut file = self.take_file()?;
        let file = tokio::task::spawn_blocking(move || -> Result<_, StorageError> {
            let checksum = format::frame_checksum(&shard_bytes);
            file.write_all(&checksum.to_be_bytes())?;
            file.write_all(&shard_bytes)?;
            Ok(file)
        })
        .await??;
        self.file = Some(file);
        self.next_stripe += 1;
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<(), StorageError> {
        if self.next_stripe != self.stripe_count {
            return Err(StorageError::InvalidArgument(format!(
                "shard {} has {} of its {} frames",
                self.id, self.next_stripe, self.stripe_count
            )));
        }
        let file = self.take_file()?;
        let (tmp_path, final_path) = (self.tmp_path.clone(), self.final_path.clone());
        let (root, fsync) = (self.root.clone(), self.fsync);
        tokio::task::spawn_blocking(move || -> Result<(), StorageError> {
            let file = file
                .into_inner()
                .map_err(|err| StorageError::from(err.into_error()))?;
            if fsync {
                file.sync_all()?;
            }
            drop(file);
            let parent = final_path
                .parent()
                .ok_or_else(|| StorageError::Io("shard path has no parent".into()))?;
            if !tmp_path.is_file() {
                // Checked before recreating directories: a store whose directory was deleted
                // must not resurrect it just to fail the rename.
                return Err(vanished(&tmp_path));
            }
            ensure_dir(&root, fsync)?;
            ensure_dir(&root.join("shards"), fsync)?;
            ensure_dir(parent, fsync)?;
            fs::rename(&tmp_path, &final_path).map_err(|err| match err.kind() {
                io::ErrorKind::NotFound => vanished(&tmp_path),
                _ => StorageError::from(err),
            })?;
            if fsync {
                sync_dir(parent)?;
            }
            Ok(())
        })
        .await??;
        self.finished = true;
        Ok(())
    }

    async fn abort(mut self: Box<Self>) {
        if let Some(task) = self.discard() {
            let _ = task.await;
        }
    }
}

impl Drop for LocalShardWriter {
    fn drop(&mut self) {
        if !self.finished {
            drop(self.discard());
        }
    }
}
