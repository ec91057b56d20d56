//! The `ShardStore` conformance suite: one behaviour contract, run on every implementation
//! (`LocalShardStore` with fsync on and off, `FaultyShardStore` without faults, and later the
//! HTTP client against a storage node). Compiled for tests and with the `testing` feature.
//!
//! `conformance` uses only the trait. `conformance_on_disk` additionally damages and deletes
//! files, so it needs the directory of the `LocalShardStore` that ultimately holds the shards.
//! Both expect a store that is empty when they start.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::codec::Geometry;
use crate::error::StorageError;
use crate::format::{self, BackReference, ShardHeader};
use crate::id::{ShardGroupId, ShardId};
use crate::local::shard_path;
use crate::store::ShardStore;

/// Geometry of every shard the suite writes: 4+2, 1 KiB stripes (256-byte full shards).
pub fn sample_geometry() -> Geometry {
    Geometry::new(4, 2, 1024).expect("valid geometry")
}

/// A valid header for shard `id` (index < 6) of a part of `part_len` bytes.
pub fn sample_header(id: ShardId, part_len: u64) -> ShardHeader {
    let reference = BackReference {
        bucket: "conformance".into(),
        key: format!("objects/{}", id.group),
        version: "v1".into(),
        part_number: 1,
    };
    ShardHeader::new(&sample_geometry(), id, part_len, reference).expect("valid header")
}

/// Deterministic content of frame `stripe` of shard `id`.
pub fn frame_content(id: ShardId, part_len: u64, stripe: u64) -> Bytes {
    let len = sample_geometry().shard_len(part_len, stripe);
    let seed = id.group.0[15] as u64 ^ (u64::from(id.index) << 8) ^ (stripe << 16);
    (0..len)
        .map(|i| (seed.wrapping_mul(31).wrapping_add(i as u64 * 7) % 251) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// Writes and commits shard `id` with `frame_content`.
pub async fn write_shard(store: &dyn ShardStore, id: ShardId, part_len: u64) {
    let mut writer = store.create(id, sample_header(id, part_len)).await.unwrap();
    for stripe in 0..sample_geometry().stripe_count(part_len) {
        let frame = frame_content(id, part_len, stripe);
        writer.write_frame(frame).await.unwrap();
    }
    writer.commit().await.unwrap();
}

fn expected_frames(id: ShardId, part_len: u64, range: std::ops::Range<u64>) -> Vec<Option<Bytes>> {
    range
        .map(|stripe| Some(frame_content(id, part_len, stripe)))
        .collect()
}

/// The trait-level contract.
pub async fn conformance(store: Arc<dyn ShardStore>) {
    let store = store.as_ref();
    assert!(!store.name().is_empty());

    // Write, read back (whole and ranges), stat.
    let part_len = 2 * 1024 + 950; // stripes of 1024, 1024, 950 → shards 256, 256, 238
    let id = ShardId::new(ShardGroupId::new_v7(), 4);
    write_shard(store, id, part_len).await;
    let frames = store.read_frames(id, 0, 3).await.unwrap();
    assert_eq!(frames, expected_frames(id, part_len, 0..3));
    assert_eq!(frames[2].as_ref().unwrap().len(), 238);
    assert_eq!(
        store.read_frames(id, 1, 2).await.unwrap(),
        expected_frames(id, part_len, 1..3)
    );
    assert_eq!(store.read_frames(id, 3, 0).await.unwrap(), vec![]);
    assert!(matches!(
        store.read_frames(id, 2, 2).await,
        Err(StorageError::InvalidArgument(_))
    ));
    assert!(store.read_frames(id, u64::MAX, 2).await.is_err());
    let stat = store.stat(id).await.unwrap();
    assert_eq!(stat.header, sample_header(id, part_len));
    assert_eq!(
        stat.file_len,
        format::file_len(stat.header_len, &sample_geometry(), part_len)
    );

    // A 10-byte part writes one tiny frame per shard; an empty part has no frames.
    let tiny = ShardId::new(ShardGroupId::new_v7(), 0);
    write_shard(store, tiny, 10).await;
    let frames = store.read_frames(tiny, 0, 1).await.unwrap();
    assert_eq!(frames[0].as_ref().unwrap().len(), 3);
    let empty = ShardId::new(ShardGroupId::new_v7(), 5);
    write_shard(store, empty, 0).await;
    assert_eq!(store.read_frames(empty, 0, 0).await.unwrap(), vec![]);
    assert_eq!(store.stat(empty).await.unwrap().header.part_length, 0);

    // Uncommitted shards are invisible; commit checks the frame count and lengths.
    let pending = ShardId::new(ShardGroupId::new_v7(), 1);
    let mut writer = store
        .create(pending, sample_header(pending, 3000))
        .await
        .unwrap();
    writer
        .write_frame(frame_content(pending, 3000, 0))
        .await
        .unwrap();
    assert!(writer
        .write_frame(Bytes::from_static(b"short"))
        .await
        .is_err());
    assert_eq!(
        store.read_frames(pending, 0, 1).await,
        Err(StorageError::NotFound)
    );
    assert_eq!(store.stat(pending).await, Err(StorageError::NotFound));
    assert!(!store.list(None, 1000).await.unwrap().contains(&pending));
    assert!(writer.commit().await.is_err(), "commit with missing frames");
    assert_eq!(store.stat(pending).await, Err(StorageError::NotFound));

    // Too many frames, and a header that names another shard, are refused.
    let mut writer = store
        .create(pending, sample_header(pending, 10))
        .await
        .unwrap();
    writer
        .write_frame(frame_content(pending, 10, 0))
        .await
        .unwrap();
    assert!(writer
        .write_frame(frame_content(pending, 10, 0))
        .await
        .is_err());
    writer.abort().await;
    let other = ShardId::new(pending.group, 2);
    assert!(matches!(
        store.create(other, sample_header(pending, 10)).await,
        Err(StorageError::InvalidArgument(_))
    ));

    // Abort and drop-without-commit leave nothing visible.
    let aborted = ShardId::new(ShardGroupId::new_v7(), 0);
    let mut writer = store
        .create(aborted, sample_header(aborted, 10))
        .await
        .unwrap();
    writer
        .write_frame(frame_content(aborted, 10, 0))
        .await
        .unwrap();
    writer.abort().await;
    assert_eq!(store.stat(aborted).await, Err(StorageError::NotFound));
    let dropped = ShardId::new(ShardGroupId::new_v7(), 0);
    drop(
        store
            .create(dropped, sample_header(dropped, 10))
            .await
            .unwrap(),
    );
    assert_eq!(store.stat(dropped).await, Err(StorageError::NotFound));

    // Rewriting a shard replaces it atomically.
    write_shard(store, tiny, 2000).await;
    assert_eq!(store.stat(tiny).await.unwrap().header.part_length, 2000);
    assert_eq!(
        store.read_frames(tiny, 0, 2).await.unwrap(),
        expected_frames(tiny, 2000, 0..2)
    );

    // Listing: ShardId order, paged strictly after the cursor.
    let mut committed = vec![id, tiny, empty];
    for index in [3u8, 0, 5] {
        let extra = ShardId::new(ShardGroupId::new_v7(), index);
        write_shard(store, extra, 5).await;
        committed.push(extra);
    }
    let sibling = ShardId::new(id.group, 0);
    write_shard(store, sibling, 5).await;
    committed.push(sibling);
    committed.sort();
    assert_eq!(store.list(None, 1000).await.unwrap(), committed);
    let mut paged = Vec::new();
    let mut cursor = None;
    for _ in 0..committed.len() + 1 {
        let page = store.list(cursor, 2).await.unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last().copied() else {
            break;
        };
        paged.extend(page);
        cursor = Some(last);
    }
    assert_eq!(paged, committed);
    assert_eq!(
        store.list(committed.last().copied(), 10).await.unwrap(),
        vec![]
    );
    assert_eq!(store.list(None, 0).await.unwrap(), vec![]);

    // Delete is idempotent.
    store.delete(id).await.unwrap();
    assert_eq!(
        store.read_frames(id, 0, 1).await,
        Err(StorageError::NotFound)
    );
    store.delete(id).await.unwrap();
    store
        .delete(ShardId::new(ShardGroupId::new_v7(), 0))
        .await
        .unwrap();
    assert!(!store.list(None, 1000).await.unwrap().contains(&id));
    assert_eq!(store.read_frames(sibling, 0, 1).await.unwrap().len(), 1);

    let health = store.health().await.unwrap();
    assert!(health.total_bytes > 0 && health.free_bytes <= health.total_bytes);
}

/// Damage and deletion on disk. `root` is the directory of the `LocalShardStore` holding the
/// shards of `store`.
pub async fn conformance_on_disk(store: Arc<dyn ShardStore>, root: &Path) {
    let store = store.as_ref();
    let tmp = root.join("tmp");
    let tmp_files = || std::fs::read_dir(&tmp).map(|dir| dir.count()).unwrap_or(0);

    // Abort (and drop) leave nothing in tmp/.
    let aborted = ShardId::new(ShardGroupId::new_v7(), 0);
    let mut writer = store
        .create(aborted, sample_header(aborted, 3000))
        .await
        .unwrap();
    writer
        .write_frame(frame_content(aborted, 3000, 0))
        .await
        .unwrap();
    assert_eq!(tmp_files(), 1, "an open writer has one temporary file");
    writer.abort().await;
    assert_eq!(tmp_files(), 0, "abort removes the temporary file");
    drop(
        store
            .create(aborted, sample_header(aborted, 3000))
            .await
            .unwrap(),
    );
    let mut cleaned = false;
    for _ in 0..200 {
        if tmp_files() == 0 {
            cleaned = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(cleaned, "a dropped writer removes its temporary file");

    // One flipped byte in frame 1 → that frame is an erasure, the others are intact.
    let part_len = 3000;
    let id = ShardId::new(ShardGroupId::new_v7(), 2);
    write_shard(store, id, part_len).await;
    assert_eq!(tmp_files(), 0, "commit moves the file out of tmp/");
    let path = shard_path(root, id);
    let header_len = store.stat(id).await.unwrap().header_len;
    let offset = format::frame_offset(header_len, &sample_geometry(), part_len, 1) + 20;
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[offset as usize] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let frames = store.read_frames(id, 0, 3).await.unwrap();
    assert_eq!(frames[0], Some(frame_content(id, part_len, 0)));
    assert_eq!(frames[1], None);
    assert_eq!(frames[2], Some(frame_content(id, part_len, 2)));

    // A truncated file → the trailing frames are erasures.
    let cut = format::frame_offset(header_len, &sample_geometry(), part_len, 2) + 5;
    std::fs::write(&path, &bytes[..cut as usize]).unwrap();
    let frames = store.read_frames(id, 0, 3).await.unwrap();
    assert_eq!(frames[0], Some(frame_content(id, part_len, 0)));
    assert_eq!(frames[1..], [None, None]);

    // A damaged header is Corrupt.
    let mut damaged = bytes.clone();
    damaged[12] ^= 0xff;
    std::fs::write(&path, &damaged).unwrap();
    assert!(matches!(
        store.read_frames(id, 0, 1).await,
        Err(StorageError::Corrupt(_))
    ));
    assert!(matches!(
        store.stat(id).await,
        Err(StorageError::Corrupt(_))
    ));

    // The whole directory deleted under a running store: reads say NotFound, an open writer
    // fails to commit, and the store recovers by recreating its directories.
    let survivor = ShardId::new(ShardGroupId::new_v7(), 1);
    write_shard(store, survivor, 10).await;
    let mut open_writer = store
        .create(aborted, sample_header(aborted, 10))
        .await
        .unwrap();
    open_writer
        .write_frame(frame_content(aborted, 10, 0))
        .await
        .unwrap();
    std::fs::remove_dir_all(root).unwrap();
    assert_eq!(
        store.read_frames(survivor, 0, 1).await,
        Err(StorageError::NotFound)
    );
    assert_eq!(store.stat(survivor).await, Err(StorageError::NotFound));
    assert_eq!(store.list(None, 10).await.unwrap(), vec![]);
    store.delete(survivor).await.unwrap();
    assert!(open_writer.commit().await.is_err());
    assert_eq!(store.stat(aborted).await, Err(StorageError::NotFound));
    assert!(store.health().await.is_err());
    let reborn = ShardId::new(ShardGroupId::new_v7(), 3);
    write_shard(store, reborn, 1500).await;
    assert_eq!(
        store.read_frames(reborn, 0, 2).await.unwrap(),
        expected_frames(reborn, 1500, 0..2)
    );
    assert_eq!(store.list(None, 10).await.unwrap(), vec![reborn]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faulty::FaultyShardStore;
    use crate::local::LocalShardStore;

    async fn run_on_local(fsync: bool) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("disk");
        let store = Arc::new(LocalShardStore::open(root.clone(), "disk".into(), fsync).unwrap());
        conformance(store).await;
        let root2 = dir.path().join("disk2");
        let store = Arc::new(LocalShardStore::open(root2.clone(), "disk2".into(), fsync).unwrap());
        conformance_on_disk(store, &root2).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn local_store_with_fsync() {
        run_on_local(true).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn local_store_without_fsync() {
        run_on_local(false).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn faulty_store_without_faults() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("disk");
        let local = LocalShardStore::open(root.clone(), "disk".into(), true).unwrap();
        let faulty: Arc<dyn ShardStore> = Arc::new(FaultyShardStore::new(Arc::new(local)));
        conformance(Arc::clone(&faulty)).await;
        let root2 = dir.path().join("disk2");
        let local = LocalShardStore::open(root2.clone(), "disk2".into(), true).unwrap();
        conformance_on_disk(Arc::new(FaultyShardStore::new(Arc::new(local))), &root2).await;
    }

    #[tokio::test]
    async fn open_removes_stale_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("disk");
        let store = LocalShardStore::open(root.clone(), "disk".into(), false).unwrap();
        let id = ShardId::new(ShardGroupId::new_v7(), 0);
        let writer = store.create(id, sample_header(id, 10)).await.unwrap();
        std::mem::forget(writer); // a crash: no abort, no drop
        assert_eq!(std::fs::read_dir(root.join("tmp")).unwrap().count(), 1);
        let _reopened = LocalShardStore::open(root.clone(), "disk".into(), false).unwrap();
        assert_eq!(std::fs::read_dir(root.join("tmp")).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn strays_in_the_shard_tree_are_not_listed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("disk");
        let store = LocalShardStore::open(root.clone(), "disk".into(), false).unwrap();
        let id = ShardId::new(ShardGroupId([0x5a; 16]), 1);
        write_shard(&store, id, 10).await;
        let prefix = root.join("shards").join("5a");
        std::fs::write(prefix.join("notes.txt"), b"x").unwrap();
        std::fs::write(prefix.join(format!("{}.01", id.group)), b"x").unwrap();
        let misplaced = ShardId::new(ShardGroupId([0x77; 16]), 0);
        std::fs::write(prefix.join(misplaced.file_name()), b"x").unwrap();
        std::fs::create_dir(root.join("shards").join("zz")).unwrap();
        assert_eq!(store.list(None, 10).await.unwrap(), vec![id]);
        assert_eq!(store.read_frames(id, 0, 1).await.unwrap().len(), 1);
        assert!(store.read_frames(id, 0, u64::MAX).await.is_err());
    }
}
