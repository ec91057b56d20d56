//! `StorageError`: the one error type of the storage crate.
//!
//! Invariant: every variant is cheap to clone (I/O errors are kept as their message), so a
//! single failure can be fanned out to every waiter of a shard operation.

use std::io;

/// Errors returned by the codec, the shard format and every `ShardStore`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The shard (or the store's directory) does not exist.
    #[error("shard not found")]
    NotFound,
    /// Bytes on disk or on the wire failed validation (bad magic, checksum, length…).
    #[error("corrupt shard data: {0}")]
    Corrupt(String),
    /// The caller asked for something impossible (bad geometry, wrong frame length…).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// No space left on the device.
    #[error("disk full")]
    DiskFull,
    /// The filesystem refuses writes (read-only mount or permission denied).
    #[error("store is read-only")]
    ReadOnly,
    /// Any other I/O failure, with its message.
    #[error("i/o error: {0}")]
    Io(String),
    /// The operation did not finish in time.
    #[error("operation timed out")]
    Timeout,
    /// The store cannot serve right now (node down, not enough shards, injected fault…).
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl From<io::Error> for StorageError {
    fn from(err: io::Error) -> Self {
        match err.kind() {
            io::ErrorKind::NotFound => StorageError::NotFound,
            io::ErrorKind::StorageFull => StorageError::DiskFull,
            io::ErrorKind::ReadOnlyFilesystem | io::ErrorKind::PermissionDenied => {
                StorageError::ReadOnly
            }
            io::ErrorKind::TimedOut => StorageError::Timeout,
            _ => StorageError::Io(err.to_string()),
        }
    }
}

impl From<tokio::task::JoinError> for StorageError {
    fn from(err: tokio::task::JoinError) -> Self {
        StorageError::Io(format!("blocking task failed: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_kinds_map_to_specific_variants() {
        let map = |kind| StorageError::from(io::Error::new(kind, "x"));
        assert_eq!(map(io::ErrorKind::NotFound), StorageError::NotFound);
        assert_eq!(map(io::ErrorKind::StorageFull), StorageError::DiskFull);
        assert_eq!(
            map(io::ErrorKind::ReadOnlyFilesystem),
            StorageError::ReadOnly
        );
        assert_eq!(map(io::ErrorKind::PermissionDenied), StorageError::ReadOnly);
        assert!(matches!(map(io::ErrorKind::Other), StorageError::Io(_)));
    }
}
