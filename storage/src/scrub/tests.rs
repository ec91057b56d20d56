//! Scrubber tests on real directories: damaged files are quarantined and reported, healthy ones
//! and files being written are left alone, the pace is honoured.
#![allow(clippy::unwrap_used)]

use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use super::verify::{open_check, quarantine, Verdict};
use super::*;
use crate::conformance::write_shard;
use crate::id::ShardGroupId;

fn fast() -> ScrubConfig {
    ScrubConfig {
        enabled: true,
        bytes_per_sec: 0,
        file_pause: Duration::ZERO,
        pass_interval: Duration::from_secs(3600),
    }
}

fn open_store(root: &Path) -> LocalShardStore {
    LocalShardStore::open(root.to_path_buf(), "scrub-test".into(), false).unwrap()
}

/// Runs the scrubber until it completed `passes` passes (bounded), then stops it.
async fn scrub(store: &LocalShardStore, config: ScrubConfig, passes: u64) -> ScrubStatus {
    let (stop, stopped) = watch::channel(false);
    let task = spawn_scrubber(store.clone(), config, stopped);
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.scrub_ledger().status().passes_completed < passes {
        assert!(Instant::now() < deadline, "scrub pass did not complete");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("scrubber stops on shutdown")
        .unwrap();
    store.scrub_status().await.unwrap()
}

fn flip_byte(path: &Path, from_end: bool, offset: u64) {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let position = if from_end {
        file.metadata().unwrap().len() - 1 - offset
    } else {
        offset
    };
    file.seek(SeekFrom::Start(position)).unwrap();
    let mut byte = [0u8];
    std::io::Read::read_exact(&mut file, &mut byte).unwrap();
    file.seek(SeekFrom::Start(position)).unwrap();
    file.write_all(&[byte[0] ^ 0x5a]).unwrap();
}

fn quarantined(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(root.join("quarantine"))
        .map(|dir| {
            dir.map(|entry| entry.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn damaged_files_are_quarantined_and_reported_healthy_ones_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let part_len = 5 * 1024 + 77; // 6 stripes of the 4+2 / 1 KiB sample geometry
    let ids: Vec<ShardId> = (0..8)
        .map(|i| ShardId::new(ShardGroupId::new_v7(), i % 6))
        .collect();
    for id in &ids {
        write_shard(&store, *id, part_len).await;
    }
    let (frame, header, truncated, longer) = (ids[1], ids[3], ids[5], ids[6]);
    flip_byte(&store.shard_path(frame), true, 3);
    flip_byte(&store.shard_path(header), false, 12);
    let file = OpenOptions::new()
        .write(true)
        .open(store.shard_path(truncated))
        .unwrap();
    file.set_len(file.metadata().unwrap().len() - 5).unwrap();
    OpenOptions::new()
        .append(true)
        .open(store.shard_path(longer))
        .unwrap()
        .write_all(b"junk")
        .unwrap();
    // A shard being written: tmp/ must never be read, moved or reported.
    let in_flight = dir.path().join("tmp").join("half-written.tmp");
    fs::write(&in_flight, b"not a shard yet").unwrap();
    let healthy: Vec<(ShardId, Vec<u8>)> = [ids[0], ids[2], ids[4], ids[7]]
        .iter()
        .map(|id| (*id, fs::read(store.shard_path(*id)).unwrap()))
        .collect();

    let status = scrub(&store, fast(), 1).await;

    let mut reported: Vec<ShardId> = status
        .reports
        .iter()
        .map(|report| report.shard_id().unwrap())
        .collect();
    reported.sort();
    let mut damaged = vec![frame, header, truncated, longer];
    damaged.sort();
    assert_eq!(reported, damaged);
    assert_eq!(status.last_pass_corrupt_found, 4);
    assert_eq!(status.last_pass_files_checked, 8);
    assert_eq!(status.total_corrupt_found, 4);
    assert!(status.last_pass_bytes_checked > 0);
    assert!(status.last_pass_completed_ms.is_some());
    assert!(!status.running);
    let reasons: Vec<&str> = status.reports.iter().map(|r| r.reason.as_str()).collect();
    assert!(
        reasons.iter().any(|r| r.contains("checksum")),
        "{reasons:?}"
    );
    // Evidence kept: every damaged file is in quarantine/, none is left in shards/.
    assert_eq!(quarantined(dir.path()).len(), 4);
    for report in &status.reports {
        let name = report.quarantine.as_ref().unwrap();
        assert!(name.starts_with(&report.shard), "{name}");
        assert!(dir.path().join("quarantine").join(name).is_file());
        let id = report.shard_id().unwrap();
        assert!(!store.shard_path(id).exists());
        assert_eq!(store.stat(id).await, Err(StorageError::NotFound));
    }
    for (id, bytes) in &healthy {
        assert_eq!(&fs::read(store.shard_path(*id)).unwrap(), bytes);
    }
    assert_eq!(fs::read(&in_flight).unwrap(), b"not a shard yet");
    assert_eq!(store.list(None, 100).await.unwrap().len(), 4);

    // Reports survive a restart of the store until acknowledged; ids are strictly increasing.
    let ids_before: Vec<u64> = status.reports.iter().map(|r| r.id).collect();
    assert!(ids_before.windows(2).all(|pair| pair[0] < pair[1]));
    drop(store);
    let store = open_store(dir.path());
    let reopened = store.scrub_status().await.unwrap();
    assert_eq!(reopened.reports, status.reports);
    assert_eq!(reopened.passes_completed, 1);
    store.ack_scrub_reports(ids_before[1]).await.unwrap();
    let left: Vec<u64> = store
        .scrub_status()
        .await
        .unwrap()
        .reports
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(left, ids_before[2..].to_vec());

    // A second pass finds nothing new: the healthy files stay healthy.
    let again = scrub(
        &store,
        ScrubConfig {
            pass_interval: Duration::ZERO,
            ..fast()
        },
        2,
    )
    .await;
    assert_eq!(again.last_pass_corrupt_found, 0);
    assert_eq!(again.last_pass_files_checked, 4);
}

#[tokio::test]
async fn the_pace_limits_the_read_rate() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    for i in 0..6 {
        write_shard(&store, ShardId::new(ShardGroupId::new_v7(), i), 64 * 1024).await;
    }
    let rate = 256 * 1024;
    let started = Instant::now();
    let status = scrub(
        &store,
        ScrubConfig {
            bytes_per_sec: rate,
            ..fast()
        },
        1,
    )
    .await;
    let bytes = status.last_pass_bytes_checked;
    assert!(bytes > 90_000, "read {bytes} bytes");
    // A lower bound only: reading `bytes` at `rate` cannot take less (a slow machine is fine).
    let floor = Duration::from_secs_f64(bytes as f64 / rate as f64 * 0.9);
    assert!(
        started.elapsed() >= floor,
        "{:?} < {floor:?}",
        started.elapsed()
    );
    assert!(
        u128::from(status.last_pass_duration_ms.unwrap()) >= floor.as_millis(),
        "{status:?}"
    );
}

#[test]
fn pacer_spreads_reads_and_never_bursts_after_a_stall() {
    let start = Instant::now();
    let mut pacer = Pacer::new(1000, start);
    assert_eq!(pacer.after_read(500, start), Duration::from_millis(500));
    assert_eq!(
        pacer.after_read(500, start + Duration::from_millis(600)),
        Duration::from_millis(400)
    );
    // Far behind schedule: no catch-up burst, the budget starts afresh.
    let late = start + Duration::from_secs(10);
    assert_eq!(pacer.after_read(100, late), Duration::ZERO);
    assert_eq!(pacer.after_read(1000, late), Duration::from_secs(1));
    let mut unlimited = Pacer::new(0, start);
    assert_eq!(unlimited.after_read(u64::MAX, start), Duration::ZERO);
}

#[tokio::test]
async fn vanished_or_rewritten_files_are_not_reported() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let id = ShardId::new(ShardGroupId::new_v7(), 2);
    write_shard(&store, id, 3000).await;
    let path = store.shard_path(id);
    let check = open_check(&path, id)
        .map_err(|(verdict, _)| verdict)
        .unwrap();
    let identity = check.identity();

    // Rewritten since it was checked (repair put a new file there): left alone.
    store.delete(id).await.unwrap();
    write_shard(&store, id, 3000).await;
    let moved = quarantine(dir.path(), &path, Some(identity), false).unwrap();
    assert_eq!(moved, None);
    assert!(path.is_file());

    // Deleted while checked: nothing to do, not an error.
    store.delete(id).await.unwrap();
    assert_eq!(
        quarantine(dir.path(), &path, Some(identity), false).unwrap(),
        None
    );
    assert!(matches!(
        open_check(&path, id),
        Err((Verdict::Vanished, None))
    ));
    assert!(quarantined(dir.path()).is_empty());
}

#[tokio::test]
async fn a_disabled_scrubber_reads_nothing_but_answers_status() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let id = ShardId::new(ShardGroupId::new_v7(), 0);
    write_shard(&store, id, 3000).await;
    flip_byte(&store.shard_path(id), true, 0);
    let (_stop, stopped) = watch::channel(false);
    let config = ScrubConfig {
        enabled: false,
        ..fast()
    };
    spawn_scrubber(store.clone(), config, stopped)
        .await
        .unwrap();
    let status = store.scrub_status().await.unwrap();
    assert!(!status.enabled);
    assert_eq!(status.total_files_checked, 0);
    assert!(store.shard_path(id).is_file());
}
