//! Losing the catalog (issue 14 item 5): a backup onto the shard stores, more writes and
//! deletes after it, the catalog directory deleted outright, `restore_catalog`, and every
//! surviving object reads back byte-exact — those written after the backup rebuilt from their
//! shards' back-references, those deleted after it reported, not resurrected.
//!
//! The gateway is assembled here as `strata server` assembles it (RocksDB catalog under
//! `DATA/meta`, one local shard store per `DATA/disk<i>`), so that it can be stopped and its
//! catalog deleted between steps without spawning processes.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{body_of, pattern, put_request};
use futures::StreamExt;
use md5::{Digest, Md5};
use metadata::{Catalog, RocksKvStore};
use storage::{LocalShardStore, ShardStore};
use strata_gateway::admin::restore::{restore_catalog, RestoreError};
use strata_gateway::config::{ServerArgs, ServerConfig, SettingArgs};
use strata_gateway::engine::cluster::{Cluster, NodeSpec};
use strata_gateway::engine::healing::backup::{BackupConfig, CatalogBackup, CATALOG_BACKUP_BUCKET};
use strata_gateway::engine::{
    ByteRange, CompletedPart, CreateUploadRequest, Engine, EngineError, Healer, StorageClass,
    WriteCondition,
};

/// A running gateway: engine, healer, backups, over `DATA/meta` and `DATA/disk<i>`.
struct Gateway {
    engine: Arc<Engine>,
    healer: Arc<Healer>,
    backup: Arc<CatalogBackup>,
    rocks: Arc<RocksKvStore>,
}

fn config(data: &Path) -> ServerConfig {
    let args = ServerArgs {
        data: Some(data.to_path_buf()),
        block_size: Some(64 * 1024),
        no_fsync: true,
        settings: SettingArgs {
            gc_delay_secs: Some(0),
            ..SettingArgs::default()
        },
        ..ServerArgs::default()
    };
    ServerConfig::load(&args).unwrap()
}

fn start(config: &ServerConfig, keep: usize) -> Gateway {
    let rocks = Arc::new(RocksKvStore::open(&config.data.join("meta"), false).unwrap());
    let catalog = Catalog::new(rocks.clone()).unwrap();
    let nodes = config
        .shard_dirs
        .iter()
        .enumerate()
        .map(|(i, dir)| NodeSpec {
            id: i as u32,
            address: dir.display().to_string(),
            zone: None,
            weight: 1.0,
            store: Arc::new(LocalShardStore::open(dir.clone(), format!("disk{i}"), false).unwrap())
                as Arc<dyn ShardStore>,
        })
        .collect();
    let engine = Engine::new(
        catalog,
        Arc::new(Cluster::new(nodes).unwrap()),
        strata_gateway::server::engine_config(config),
    )
    .unwrap();
    let backup = CatalogBackup::new(
        engine.clone(),
        rocks.clone(),
        BackupConfig {
            interval: Duration::ZERO,
            keep,
            scratch: config.data.join("backup-scratch"),
        },
    );
    Gateway {
        healer: Healer::new(engine.clone()),
        engine,
        backup,
        rocks,
    }
}

async fn put(engine: &Arc<Engine>, bucket: &str, key: &str, data: &[u8]) -> String {
    let bucket = engine.bucket(bucket).await.unwrap();
    let info = engine
        .put_object(&bucket, put_request(key, data.len()), body_of(data))
        .await
        .unwrap();
    info.etag().to_string()
}

/// A two-part multipart upload of `first ‖ second`; returns the object's ETag.
async fn put_multipart(
    engine: &Arc<Engine>,
    bucket: &str,
    key: &str,
    first: &[u8],
    second: &[u8],
) -> String {
    let bucket = engine.bucket(bucket).await.unwrap();
    let upload = engine
        .create_upload(
            &bucket,
            key,
            CreateUploadRequest {
                content_type: Some("video/mp4".into()),
                headers: vec![],
                user_metadata: vec![],
                storage_class: StorageClass::Standard,
                checksum_algorithm: None,
                checksum_type: None,
                encryption: Default::default(),
                access: None,
            },
        )
        .await
        .unwrap();
    let id = upload.upload_id().to_string();
    let mut completed = Vec::new();
    for (number, data) in [(1u32, first), (2, second)] {
        let part = engine
            .upload_part(
                &bucket,
                key,
                &id,
                number,
                data.len() as u64,
                None,
                None,
                None,
                body_of(data),
            )
            .await
            .unwrap();
        completed.push(CompletedPart {
            part_number: number,
            etag: part.etag.clone(),
        });
    }
    let info = engine
        .complete_upload(&bucket, key, &id, completed, WriteCondition::None, None)
        .await
        .unwrap();
    info.etag().to_string()
}

async fn read(
    engine: &Arc<Engine>,
    bucket: &str,
    key: &str,
) -> Result<(Vec<u8>, String), EngineError> {
    let version = engine.head_object(bucket, key).await?;
    let etag = version.etag().to_string();
    let range = ByteRange {
        start: 0,
        end: version.size(),
    };
    let mut body = engine.open_object(version, range, None).await?.body;
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        out.extend_from_slice(&chunk.map_err(EngineError::Body)?);
    }
    Ok((out, etag))
}

/// Deletes up to `count` shard files of the backup `key`, one per disk; returns how many.
async fn delete_backup_shards(config: &ServerConfig, key: &str, count: usize) -> usize {
    let mut deleted = 0;
    for (i, dir) in config.shard_dirs.iter().enumerate() {
        if deleted == count {
            break;
        }
        let store = LocalShardStore::open(dir.clone(), format!("disk{i}"), false).unwrap();
        for id in store.list(None, 100_000).await.unwrap() {
            let header = store.stat(id).await.unwrap().header;
            let reference = &header.back_reference;
            if reference.bucket == CATALOG_BACKUP_BUCKET && reference.key == key {
                store.delete(id).await.unwrap();
                deleted += 1;
                break;
            }
        }
    }
    deleted
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_catalog_comes_back_from_the_backup_and_the_shards() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let gateway = start(&config, 1);
    let engine = gateway.engine.clone();
    engine.create_bucket("photos", "owner").await.unwrap();

    // Before the backup.
    let small = pattern(100, 1);
    let big = pattern(200 * 1024, 2);
    let gone = pattern(100 * 1024, 3);
    let replaced = pattern(90 * 1024, 4);
    let (multi_1, multi_2) = (pattern(5 * 1024 * 1024, 5), pattern(100 * 1024, 6));
    put(&engine, "photos", "before/small.txt", &small).await;
    put(&engine, "photos", "before/big.bin", &big).await;
    put(&engine, "photos", "before/gone.bin", &gone).await;
    put(&engine, "photos", "before/replaced.bin", &replaced).await;
    let multi_etag = put_multipart(&engine, "photos", "before/multi.bin", &multi_1, &multi_2).await;

    // Two backups: only the newest is kept.
    let first = gateway.backup.run().await.unwrap();
    let second = gateway.backup.run().await.unwrap();
    assert_eq!(second.removed, vec![first.key.clone()]);
    assert_eq!(second.kept, 1);
    assert!(
        matches!(
            engine.bucket(CATALOG_BACKUP_BUCKET).await,
            Err(EngineError::NoSuchBucket)
        ),
        "the backup bucket is hidden from S3 requests"
    );
    assert!(matches!(
        engine.head_object(CATALOG_BACKUP_BUCKET, &second.key).await,
        Err(EngineError::NoSuchBucket)
    ));
    assert!(engine
        .list_buckets()
        .await
        .unwrap()
        .iter()
        .all(|b| b.name() != CATALOG_BACKUP_BUCKET));

    // After the backup: new objects (one in a new bucket), a multipart, a replacement, a delete.
    let new = pattern(300 * 1024, 7);
    let replacement = pattern(120 * 1024, 8);
    let (after_1, after_2) = (pattern(5 * 1024 * 1024, 9), pattern(50 * 1024, 10));
    let in_new_bucket = pattern(64 * 1024, 11);
    put(&engine, "photos", "after/new.bin", &new).await;
    put(&engine, "photos", "before/replaced.bin", &replacement).await;
    let after_multi_etag =
        put_multipart(&engine, "photos", "after/multi.bin", &after_1, &after_2).await;
    engine.create_bucket("fresh", "owner").await.unwrap();
    put(&engine, "fresh", "x.bin", &in_new_bucket).await;
    put(
        &engine,
        "photos",
        "after/tiny.txt",
        b"inline, lost with the catalog",
    )
    .await;
    let photos = engine.bucket("photos").await.unwrap();
    engine
        .delete_object(&photos, "before/gone.bin")
        .await
        .unwrap();
    // GC (delay 0) deletes the shards of the deleted and replaced data and of the old backup.
    for _ in 0..20 {
        if gateway.healer.gc_pass().await.unwrap() == 0 {
            break;
        }
    }

    // The gateway stops and its catalog directory is deleted outright.
    drop(photos);
    drop(engine);
    drop(gateway);
    std::fs::remove_dir_all(dir.path().join("meta")).unwrap();
    // Two disks lost the backup's shards too: it is read degraded.
    assert_eq!(delete_backup_shards(&config, &second.key, 2).await, 2);

    let summary = restore_catalog(&config, false).await.unwrap();
    assert_eq!(summary.backup.key, second.key);
    assert_eq!(summary.backup.shards_found, 4);
    let rebuilt: Vec<(String, String)> = summary
        .reconciled
        .rebuilt
        .iter()
        .map(|o| (o.bucket.clone(), o.key.clone()))
        .collect();
    for expected in [
        ("photos", "after/new.bin"),
        ("photos", "after/multi.bin"),
        ("photos", "before/replaced.bin"),
        ("fresh", "x.bin"),
    ] {
        assert!(
            rebuilt.contains(&(expected.0.to_string(), expected.1.to_string())),
            "{expected:?} not rebuilt: {rebuilt:?}"
        );
    }
    let removed: Vec<(&str, &str)> = summary
        .reconciled
        .removed
        .iter()
        .map(|o| (o.bucket.as_str(), o.key.as_str()))
        .collect();
    // The deleted object, and the first backup (listed in the second, deleted after it).
    assert_eq!(
        removed,
        vec![
            (CATALOG_BACKUP_BUCKET, first.key.as_str()),
            ("photos", "before/gone.bin")
        ],
        "{:#?}",
        summary.reconciled
    );
    assert_eq!(
        summary.reconciled.buckets_recreated,
        vec!["fresh".to_string()]
    );
    assert!(
        summary.reconciled.failures.is_empty(),
        "{:?}",
        summary.reconciled.failures
    );
    assert!(summary
        .reconciled
        .metadata_lost_for_rebuilt_objects
        .iter()
        .any(|m| m.contains("Content-Type")));

    // A second restore refuses to overwrite the restored catalog.
    assert!(matches!(
        restore_catalog(&config, false).await,
        Err(RestoreError::CatalogNotEmpty(_))
    ));

    // The gateway starts on the restored catalog: every surviving object reads back byte-exact.
    let gateway = start(&config, 1);
    let engine = gateway.engine.clone();
    let mut multi = multi_1.clone();
    multi.extend_from_slice(&multi_2);
    let mut after_multi = after_1.clone();
    after_multi.extend_from_slice(&after_2);
    for (bucket, key, data, etag) in [
        ("photos", "before/small.txt", &small, md5_hex(&small)),
        ("photos", "before/big.bin", &big, md5_hex(&big)),
        ("photos", "before/multi.bin", &multi, multi_etag),
        (
            "photos",
            "before/replaced.bin",
            &replacement,
            md5_hex(&replacement),
        ),
        ("photos", "after/new.bin", &new, md5_hex(&new)),
        ("photos", "after/multi.bin", &after_multi, after_multi_etag),
        ("fresh", "x.bin", &in_new_bucket, md5_hex(&in_new_bucket)),
    ] {
        let (read_back, read_etag) = read(&engine, bucket, key).await.unwrap();
        assert!(read_back == *data, "{bucket}/{key} differs");
        assert_eq!(read_etag, etag, "{bucket}/{key}");
    }
    assert!(matches!(
        read(&engine, "photos", "before/gone.bin").await,
        Err(EngineError::NoSuchKey)
    ));
    // Inline objects written after the backup lived only in the catalog (documented loss).
    assert!(matches!(
        read(&engine, "photos", "after/tiny.txt").await,
        Err(EngineError::NoSuchKey)
    ));
    // Backups go on after a restore.
    gateway.backup.run().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_short_of_shards_is_skipped_for_the_one_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let gateway = start(&config, 2);
    let engine = gateway.engine.clone();
    engine.create_bucket("b", "owner").await.unwrap();
    let first_data = pattern(100 * 1024, 1);
    put(&engine, "b", "first.bin", &first_data).await;
    let older = gateway.backup.run().await.unwrap();
    let second_data = pattern(100 * 1024, 2);
    put(&engine, "b", "second.bin", &second_data).await;
    let newer = gateway.backup.run().await.unwrap();
    assert!(newer.removed.is_empty());
    drop(engine);
    drop(gateway);
    std::fs::remove_dir_all(dir.path().join("meta")).unwrap();
    // Three of six shards gone: below k = 4, the newest backup cannot be read.
    assert_eq!(delete_backup_shards(&config, &newer.key, 3).await, 3);

    let summary = restore_catalog(&config, false).await.unwrap();
    assert_eq!(summary.backup.key, older.key);
    assert_eq!(summary.backups_skipped.len(), 1);
    assert_eq!(summary.backups_skipped[0].key, newer.key);
    assert!(summary.backups_skipped[0].reason.contains("3 of 6"));
    // What the newer backup held comes back from the shards instead.
    let rebuilt: Vec<&str> = summary
        .reconciled
        .rebuilt
        .iter()
        .filter(|o| o.bucket == "b")
        .map(|o| o.key.as_str())
        .collect();
    assert_eq!(rebuilt, vec!["second.bin"]);

    let gateway = start(&config, 2);
    for (key, data) in [("first.bin", &first_data), ("second.bin", &second_data)] {
        let (read_back, etag) = read(&gateway.engine, "b", key).await.unwrap();
        assert!(read_back == *data, "{key} differs");
        assert_eq!(etag, md5_hex(data));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_makes_backups_and_stops_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let gateway = start(&config, 2);
    let schedule = CatalogBackup::new(
        gateway.engine.clone(),
        gateway.rocks.clone(),
        BackupConfig {
            interval: Duration::from_millis(50),
            keep: 2,
            scratch: dir.path().join("backup-scratch"),
        },
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = schedule.spawn(|| true, stopped);
    common::wait_for("two scheduled backups", || {
        let schedule = schedule.clone();
        async move { schedule.status().succeeded >= 2 }
    })
    .await;
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .unwrap()
        .unwrap();
    let status = schedule.status();
    assert_eq!(status.failed, 0, "{:?}", status.last_error);
    assert!(status.last.unwrap().kept <= 2);
}
