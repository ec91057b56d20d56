//! Checking one shard file, in bounded steps, and moving a bad one to `quarantine/`.
//!
//! The checks are the store's own: the header through `format::read_header` (magic, version,
//! header and back-reference checksums, id matching the file name), the length through
//! `format::file_len`, every frame through `format::verify_frame`. Each step is synchronous
//! file I/O for `spawn_blocking` and reads about [`STEP_BYTES`], so the caller can pace and
//! stop between steps.
//!
//! Invariants: only proven damage (a failed check, a short or long file, or an EIO from the
//! disk) makes a file `Corrupt`; any other I/O error is `Retry` (counted, tried next pass),
//! because quarantining healthy shards on a transient error could take a group below k.
//! `quarantine` moves a file only if it is still the very file that was checked (same device
//! and inode): a shard rewritten by repair meanwhile is left alone, and one deleted meanwhile
//! is simply gone (`Vanished`), never an error.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::codec::Geometry;
use crate::error::StorageError;
use crate::format;
use crate::format::read_header;
use crate::id::ShardId;

/// Bytes of frames verified per step (at least one frame).
pub(crate) const STEP_BYTES: u64 = 1 << 20;
/// Linux EIO: the medium could not be read.
const EIO: i32 = 5;

/// The outcome of checking one file, or of one of its steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Fully verified.
    Healthy,
    /// Damaged beyond doubt; the reason names what failed.
    Corrupt(String),
    /// The file is gone (deleted while scrubbed): nothing to do.
    Vanished,
    /// Could not be checked now (transient I/O error); try again next pass.
    Retry(String),
}

/// Device and inode of a file: tells the file that was checked from one written later.
pub(crate) type Identity = (u64, u64);

/// A file being checked: where it is, what the header says and how far the check got.
pub(crate) struct FileCheck {
    file: File,
    device: u64,
    inode: u64,
    geometry: Geometry,
    part_length: u64,
    stripe_count: u64,
    next_stripe: u64,
    header_len: u64,
}

/// Opens `path`, checks the header and the file length. `Ok(check)` continues with
/// [`FileCheck::step`]; `Err` is the final verdict with the identity of the file that was
/// opened, when it got that far.
pub(crate) fn open_check(
    path: &Path,
    id: ShardId,
) -> Result<FileCheck, (Verdict, Option<Identity>)> {
    let mut file = File::open(path).map_err(|err| (io_verdict(&err, "open"), None))?;
    let metadata = file
        .metadata()
        .map_err(|err| (io_verdict(&err, "stat"), None))?;
    let identity = Some((metadata.dev(), metadata.ino()));
    let (header, header_len) = match read_header(&mut file, id) {
        Ok(found) => found,
        Err(StorageError::Corrupt(reason)) => return Err((Verdict::Corrupt(reason), identity)),
        Err(StorageError::NotFound) => return Err((Verdict::Vanished, identity)),
        Err(other) => return Err((Verdict::Retry(other.to_string()), identity)),
    };
    let geometry = header.geometry().map_err(|err| {
        (
            Verdict::Corrupt(format!("header geometry: {err}")),
            identity,
        )
    })?;
    let expected = format::file_len(header_len, &geometry, header.part_length);
    if metadata.len() != expected {
        return Err((
            Verdict::Corrupt(format!(
                "file is {} bytes, its header describes {expected}",
                metadata.len()
            )),
            identity,
        ));
    }
    Ok(FileCheck {
        file,
        device: metadata.dev(),
        inode: metadata.ino(),
        stripe_count: geometry.stripe_count(header.part_length),
        geometry,
        part_length: header.part_length,
        next_stripe: 0,
        header_len,
    })
}

impl FileCheck {
    /// True once every frame was verified.
    pub fn done(&self) -> bool {
        self.next_stripe >= self.stripe_count
    }

    /// Verifies the next frames, about `STEP_BYTES` of them. Returns the bytes read, or the
    /// final verdict if a frame failed or the file could not be read.
    pub fn step(&mut self) -> Result<u64, Verdict> {
        let first = self.next_stripe;
        let start = format::frame_offset(self.header_len, &self.geometry, self.part_length, first);
        let mut end_stripe = first;
        let mut span = 0u64;
        while end_stripe < self.stripe_count && (span == 0 || span < STEP_BYTES) {
            span = span.saturating_add(format::frame_len(
                &self.geometry,
                self.part_length,
                end_stripe,
            ));
            end_stripe += 1;
        }
        self.file
            .seek(SeekFrom::Start(start))
            .map_err(|err| io_verdict(&err, "seek"))?;
        let mut buffer = Vec::with_capacity(usize::try_from(span).unwrap_or(0));
        Read::by_ref(&mut self.file)
            .take(span)
            .read_to_end(&mut buffer)
            .map_err(|err| io_verdict(&err, "read"))?;
        let mut position = 0usize;
        for stripe in first..end_stripe {
            let len = usize::try_from(format::frame_len(&self.geometry, self.part_length, stripe))
                .unwrap_or(usize::MAX);
            let frame_end = position.saturating_add(len);
            let verified = buffer
                .get(position..frame_end)
                .and_then(format::verify_frame)
                .is_some();
            if !verified {
                return Err(Verdict::Corrupt(format!(
                    "frame {stripe} failed its checksum or is truncated"
                )));
            }
            position = frame_end;
        }
        self.next_stripe = end_stripe;
        Ok(buffer.len() as u64)
    }
}

/// Moves the checked file to `<root>/quarantine/<name>.<ms>` if it is still the file that was
/// checked. Returns the quarantine file name, `Ok(None)` if the shard vanished or was replaced
/// meanwhile (nothing to report).
pub(crate) fn quarantine(
    root: &Path,
    path: &Path,
    identity: Option<Identity>,
    fsync: bool,
) -> Result<Option<String>, StorageError> {
    let current = match fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    if identity.is_some_and(|(device, inode)| current.dev() != device || current.ino() != inode) {
        return Ok(None);
    }
    let name = path
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or_else(|| StorageError::Io("shard path has no file name".into()))?;
    let dir = root.join("quarantine");
    fs::create_dir_all(&dir)?;
    let target_name = format!("{name}.{}", super::report::now_ms());
    match fs::rename(path, dir.join(&target_name)) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err.into()),
    }
    if fsync {
        File::open(&dir)?.sync_all()?;
        if let Some(parent) = path.parent() {
            File::open(parent)?.sync_all()?;
        }
    }
    Ok(Some(target_name))
}

impl FileCheck {
    /// Device and inode of the file that was opened.
    pub fn identity(&self) -> Identity {
        (self.device, self.inode)
    }
}

/// NotFound → vanished; EIO and short reads → corrupt; anything else → retry later.
fn io_verdict(err: &io::Error, what: &str) -> Verdict {
    match err.kind() {
        io::ErrorKind::NotFound => Verdict::Vanished,
        io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData => {
            Verdict::Corrupt(format!("unreadable ({what}): {err}"))
        }
        _ if err.raw_os_error() == Some(EIO) => {
            Verdict::Corrupt(format!("unreadable ({what}): {err}"))
        }
        _ => Verdict::Retry(format!("{what}: {err}")),
    }
}
