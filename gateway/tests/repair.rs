//! Repair and GC over real local shard directories (wrapped in fault injectors) and a real
//! RocksDB catalog: write-time misses, corrupt frames found by reads, wiped disks, lost nodes,
//! and GC of replaced, deleted, aborted, expired and orphaned data.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{
    body_of, bucket_b, disk, harness_with, pattern, put, read_all, record_of, shard_files,
    wait_for, CatalogKind, Harness, BLOCK,
};
use metadata::{IntentRecord, ShardedLayout};
use storage::format::{BackReference, CodecId, FrameChecksum, ShardHeader};
use storage::{Geometry, LocalShardStore, ShardGroupId, ShardId, ShardStore};
use strata_gateway::engine::{CreateUploadRequest, EngineError, HealingConfig, StorageClass};

/// Six (or `nodes`) disks over a RocksDB catalog, healing tuned by the test.
fn harness(nodes: u32, healing: HealingConfig) -> Harness {
    harness_with(nodes, CatalogKind::Rocks, false, healing)
}

fn fast_healing() -> HealingConfig {
    HealingConfig {
        repair_bytes_per_sec: 0,
        repair_busy_bytes_per_sec: 0,
        repair_parallelism: 2,
        repair_interval: Duration::from_millis(50),
        node_lost_after: Duration::from_millis(300),
        stale_intent_after: Duration::from_secs(3600),
        upload_expiry: Duration::from_secs(3600),
        scan_interval: Duration::from_secs(3600),
        read_lease_max: Duration::from_secs(3600),
        ..HealingConfig::default()
    }
}

async fn layout_of(h: &Harness, key: &str) -> ShardedLayout {
    let version = record_of(h, key);
    version.parts[0].data.sharded().unwrap().clone()
}

/// Every frame of every shard of `layout` verifies on its node.
async fn assert_group_whole(h: &Harness, layout: &ShardedLayout) {
    assert!(layout.missing.is_empty(), "{layout:?}");
    let geometry = Geometry::new(4, 2, BLOCK).unwrap();
    let stripes = geometry.stripe_count(layout.length);
    for (index, &node) in layout.nodes.iter().enumerate() {
        let id = ShardId::new(ShardGroupId(layout.group), index as u8);
        let frames = h.locals[node as usize]
            .read_frames(id, 0, stripes)
            .await
            .unwrap_or_else(|e| panic!("shard {id} on node {node}: {e}"));
        assert!(
            frames.iter().all(Option::is_some),
            "shard {id} on node {node} has bad frames"
        );
    }
}

/// Fails `count` nodes other than those in `keep`, returning them.
fn fail_others(h: &Harness, keep: &[u32], count: usize) -> Vec<u32> {
    let chosen: Vec<u32> = (0..h.faults.len() as u32)
        .filter(|n| !keep.contains(n))
        .take(count)
        .collect();
    for &n in &chosen {
        h.faults[n as usize].set_fail(true);
    }
    chosen
}

/// Uploads `count` objects `k0`, `k1`, … of `first + i * step` bytes; returns keys and bodies.
async fn put_objects(
    h: &Harness,
    count: usize,
    first: usize,
    step: usize,
) -> Vec<(String, Vec<u8>)> {
    let objects: Vec<(String, Vec<u8>)> = (0..count)
        .map(|i| (format!("k{i}"), pattern(first + i * step, i as u8)))
        .collect();
    for (key, data) in &objects {
        put(&h.engine, key, data).await;
    }
    objects
}

/// Gives node `n` an empty disk, as a replaced one would be.
fn replace_disk(h: &Harness, n: u32) {
    std::fs::remove_dir_all(disk(h.dir.path(), n)).unwrap();
    std::fs::create_dir_all(disk(h.dir.path(), n)).unwrap();
}

/// Waits until the running repair worker refilled what a replaced disk lost, stops it, then
/// checks every object still reads back with two more nodes failed.
async fn expect_refilled(
    h: &Harness,
    node: u32,
    before: usize,
    objects: &[(String, Vec<u8>)],
    stop: tokio::sync::watch::Sender<bool>,
    worker: tokio::task::JoinHandle<()>,
) {
    wait_for("the replaced disk to be refilled", || async {
        refilled(h, before).await
    })
    .await;
    stop.send(true).unwrap();
    worker.await.unwrap();
    fail_others(h, &[node], 2);
    for (key, data) in objects {
        assert_eq!(&read_all(&h.engine, key).await.unwrap(), data, "{key}");
    }
}

/// Every shard file that existed before a wipe is back and no repair is queued or running. At
/// least `before` files: a PUT may have recorded a lagging shard write missing, and its
/// write-time repair adds a file of its own.
async fn refilled(h: &Harness, before: usize) -> bool {
    let status = h.healer.repair_status().await.unwrap();
    status.queue_length == 0 && status.in_flight == 0 && shard_files(h.dir.path()) >= before
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_missing_at_write_are_rebuilt_and_survive_m_more_failures() {
    let h = harness(6, fast_healing());
    h.engine.create_bucket("b", "owner").await.unwrap();
    h.faults[5].set_fail(true);
    let objects: Vec<(String, Vec<u8>)> = (0..4)
        .map(|i| (format!("k{i}"), pattern(50_000 + i * 40_000, i as u8)))
        .collect();
    for (key, data) in &objects {
        put(&h.engine, key, data).await;
        assert!(!layout_of(&h, key).await.missing.is_empty());
    }
    assert_eq!(h.healer.repair_status().await.unwrap().queue_length, 4);
    // Node 5 still fails: the attempt fails and is rescheduled, nothing is lost.
    h.healer.repair_pass().await.unwrap();
    let status = h.healer.repair_status().await.unwrap();
    assert_eq!(status.queue_length, 4);
    assert_eq!(status.groups_repaired, 0);

    h.faults[5].clear();
    wait_for("all repairs", || async {
        h.healer.repair_pass().await.unwrap();
        h.healer.repair_status().await.unwrap().queue_length == 0
    })
    .await;
    let status = h.healer.repair_status().await.unwrap();
    assert_eq!(status.groups_repaired, 4);
    assert_eq!(status.shards_rebuilt, 4);
    assert!(status.bytes_rebuilt > 0);
    for (key, _) in &objects {
        let layout = layout_of(&h, key).await;
        assert_group_whole(&h, &layout).await;
        assert!(h.catalog.placement(5, &layout.group).unwrap().is_some());
    }
    fail_others(&h, &[5], 2);
    for (key, data) in &objects {
        assert_eq!(&read_all(&h.engine, key).await.unwrap(), data, "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_frames_found_by_a_read_are_repaired() {
    let h = harness(6, fast_healing());
    h.engine.create_bucket("b", "owner").await.unwrap();
    let data = pattern(200_000, 7);
    put(&h.engine, "k", &data).await;
    let layout = layout_of(&h, "k").await;
    // Flip bytes inside a frame of data shard 1 (a checksum failure, not a missing file).
    let node = layout.nodes[1];
    let path = h.locals[node as usize].shard_path(ShardId::new(ShardGroupId(layout.group), 1));
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() - 5000;
    for b in &mut bytes[at..at + 16] {
        *b ^= 0x5A;
    }
    std::fs::write(&path, &bytes).unwrap();

    assert_eq!(read_all(&h.engine, "k").await.unwrap(), data);
    wait_for("the read to queue a repair", || async {
        h.healer.repair_status().await.unwrap().queue_length == 1
    })
    .await;
    assert_eq!(h.healer.repair_status().await.unwrap().shards_reported, 1);
    h.healer.repair_pass().await.unwrap();
    let status = h.healer.repair_status().await.unwrap();
    assert_eq!((status.groups_repaired, status.queue_length), (1, 0));
    let repaired = layout_of(&h, "k").await;
    assert_eq!(repaired.nodes, layout.nodes, "repaired in place");
    assert_group_whole(&h, &repaired).await;
    fail_others(&h, &[node], 2);
    assert_eq!(read_all(&h.engine, "k").await.unwrap(), data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrub_reports_are_idempotent_and_healthy_groups_end_quietly() {
    let h = harness(6, fast_healing());
    h.engine.create_bucket("b", "owner").await.unwrap();
    let data = pattern(80_000, 3);
    put(&h.engine, "k", &data).await;
    let layout = layout_of(&h, "k").await;
    // The scrubber quarantined shard 4's file and reports it (twice).
    let node = layout.nodes[4];
    let id = ShardId::new(ShardGroupId(layout.group), 4);
    std::fs::remove_file(h.locals[node as usize].shard_path(id)).unwrap();
    h.healer
        .report_bad_shard(layout.group, 4, "scrub")
        .await
        .unwrap();
    h.healer
        .report_bad_shard(layout.group, 4, "scrub")
        .await
        .unwrap();
    assert_eq!(h.healer.repair_status().await.unwrap().queue_length, 1);
    h.healer.repair_pass().await.unwrap();
    assert_group_whole(&h, &layout_of(&h, "k").await).await;
    // A report about a group that is whole (or gone) ends without rebuilding anything.
    h.healer
        .report_bad_shard([9; 16], 0, "scrub")
        .await
        .unwrap();
    h.healer.repair_pass().await.unwrap();
    let status = h.healer.repair_status().await.unwrap();
    assert_eq!(status.queue_length, 0);
    assert_eq!(status.groups_repaired, 1);
    assert_eq!(status.groups_discarded, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_disk_is_found_by_its_scan_and_refilled() {
    let h = harness(6, fast_healing());
    h.engine.create_bucket("b", "owner").await.unwrap();
    let objects = put_objects(&h, 5, 30_000, 10_000).await;
    let before = shard_files(h.dir.path());
    std::fs::remove_dir_all(disk(h.dir.path(), 2)).unwrap();
    let scan = h.healer.scan_node(2, true).await.unwrap();
    assert_eq!(scan.missing, 5);
    assert_eq!(scan.orphans_removed, 0);
    h.healer.repair_pass().await.unwrap();
    assert_eq!(shard_files(h.dir.path()), before);
    assert_eq!(h.healer.scan_node(2, true).await.unwrap().missing, 0);
    fail_others(&h, &[2], 2);
    for (key, data) in &objects {
        assert_eq!(&read_all(&h.engine, key).await.unwrap(), data, "{key}");
    }
}

/// A node whose disk is wiped while it is down, and which is back before the repair worker
/// ever saw it down (its outage fell between two worker ticks), is still audited and refilled:
/// the health checker counts the return.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_back_between_worker_ticks_is_audited_and_refilled() {
    let mut healing = fast_healing();
    healing.repair_interval = Duration::from_secs(1);
    let h = harness(6, healing);
    h.engine.create_bucket("b", "owner").await.unwrap();
    let objects = put_objects(&h, 5, 30_000, 10_000).await;
    let before = shard_files(h.dir.path());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = h.healer.spawn_repair(stopped);
    // The worker looks at node states once a second (from its start): the outage below takes a
    // few milliseconds, 0.3 s after its first look and long before its second.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    h.faults[2].set_fail(true);
    for _ in 0..3 {
        h.engine.cluster().check_all(Duration::from_secs(1)).await;
    }
    assert!(!h.engine.cluster().is_up(2));
    replace_disk(&h, 2);
    h.faults[2].clear();
    h.engine.cluster().check_all(Duration::from_secs(1)).await;
    assert!(h.engine.cluster().is_up(2));
    assert_eq!(h.engine.cluster().returns(2), 1);
    expect_refilled(&h, 2, before, &objects, stop, worker).await;
}

/// A node restarted on an empty disk between two health checks (never marked down) answers as
/// a new store instance: that too is a return, so it is audited and refilled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarted_between_health_checks_is_audited_and_refilled() {
    let h = harness(6, fast_healing());
    h.engine.create_bucket("b", "owner").await.unwrap();
    let objects = put_objects(&h, 5, 30_000, 10_000).await;
    let before = shard_files(h.dir.path());
    h.engine.cluster().check_all(Duration::from_secs(1)).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = h.healer.spawn_repair(stopped);
    replace_disk(&h, 2);
    h.faults[2].restart();
    h.engine.cluster().check_all(Duration::from_secs(1)).await;
    assert!(h.engine.cluster().is_up(2));
    assert_eq!(h.engine.cluster().returns(2), 1);
    expect_refilled(&h, 2, before, &objects, stop, worker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_node_is_rebuilt_on_the_other_nodes() {
    let h = harness(8, fast_healing());
    h.engine.create_bucket("b", "owner").await.unwrap();
    let objects = put_objects(&h, 8, 40_000, 5_000).await;
    let mut on_lost = 0;
    for (key, _) in &objects {
        on_lost += usize::from(layout_of(&h, key).await.nodes.contains(&3));
    }
    assert!(on_lost > 0);
    h.faults[3].set_fail(true);
    for _ in 0..3 {
        h.engine.cluster().check_all(Duration::from_secs(1)).await;
    }
    assert!(!h.engine.cluster().is_up(3));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = h.healer.spawn_repair(stopped);
    // Done when no layout names node 3 and nothing is queued or running. (Counting repaired
    // groups instead is timing-dependent: a PUT whose sixth shard write lagged past the
    // straggler grace recorded it missing, and that write-time repair counts too.)
    let keys: Vec<&String> = objects.iter().map(|(key, _)| key).collect();
    wait_for("the lost node's groups to move", || async {
        let status = h.healer.repair_status().await.unwrap();
        if status.queue_length != 0 || status.in_flight != 0 {
            return false;
        }
        for key in &keys {
            if layout_of(&h, key).await.nodes.contains(&3) {
                return false;
            }
        }
        status.groups_repaired as usize >= on_lost
    })
    .await;
    stop.send(true).unwrap();
    worker.await.unwrap();
    assert_eq!(h.healer.repair_status().await.unwrap().nodes_lost, vec![3]);
    for (key, _) in &objects {
        let layout = layout_of(&h, key).await;
        assert!(!layout.nodes.contains(&3), "{layout:?}");
        assert_group_whole(&h, &layout).await;
    }
    // m more failures on top of the lost node: still every byte.
    fail_others(&h, &[3], 2);
    for (key, data) in &objects {
        assert_eq!(&read_all(&h.engine, key).await.unwrap(), data, "{key}");
    }
    // When the node comes back, GC removes the shards it held.
    for fault in &h.faults {
        fault.clear();
    }
    h.healer.gc_pass().await.unwrap();
    assert_eq!(shard_files(&disk(h.dir.path(), 3)), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_leaves_only_what_live_objects_need() {
    let mut healing = fast_healing();
    healing.upload_expiry = Duration::from_millis(200);
    let h = harness(6, healing);
    h.engine.create_bucket("b", "owner").await.unwrap();
    for i in 0..12u8 {
        put(&h.engine, &format!("k{i}"), &pattern(20_000, i)).await;
    }
    for i in 0..6u8 {
        put(&h.engine, &format!("k{i}"), &pattern(30_000, i + 100)).await;
    }
    for i in 6..9u8 {
        h.engine
            .delete_object(&bucket_b(&h.engine).await, &format!("k{i}"))
            .await
            .unwrap();
    }
    // An upload that is aborted and one that expires, each with a stored part.
    let new_upload = || CreateUploadRequest {
        content_type: None,
        headers: vec![],
        user_metadata: vec![],
        storage_class: StorageClass::Standard,
        checksum_algorithm: None,
        checksum_type: None,
        encryption: Default::default(),
        access: None,
    };
    for (key, abort) in [("aborted", true), ("expired", false)] {
        let upload = h
            .engine
            .create_upload(&bucket_b(&h.engine).await, key, new_upload())
            .await
            .unwrap();
        let part = pattern(10_000, 9);
        h.engine
            .upload_part(
                &bucket_b(&h.engine).await,
                key,
                upload.upload_id(),
                1,
                part.len() as u64,
                None,
                None,
                None,
                body_of(&part),
            )
            .await
            .unwrap();
        if abort {
            h.engine
                .abort_upload(&bucket_b(&h.engine).await, key, upload.upload_id())
                .await
                .unwrap();
        }
    }
    // A crashed write of an earlier process: intent and shards, never committed.
    let crashed = ShardGroupId::new_v7();
    let layout = ShardedLayout {
        group: crashed.0,
        data_shards: 4,
        parity_shards: 2,
        block_size: BLOCK as u32,
        length: 5000,
        nodes: vec![0, 1, 2, 3, 4, 5],
        missing: vec![],
    };
    h.catalog
        .put_intent(
            crashed.0,
            &IntentRecord {
                owner: String::new(),
                created_ms: 1,
                layout,
            },
        )
        .unwrap();
    write_raw_shard(&h.locals[0], crashed, 0).await;
    // An orphan nothing knows about (e.g. a straggler of a write that was abandoned).
    let orphan = ShardGroupId::new_v7();
    write_raw_shard(&h.locals[4], orphan, 2).await;
    tokio::time::sleep(Duration::from_millis(250)).await;

    h.healer.maintenance_pass().await.unwrap();
    for _ in 0..3 {
        h.healer.gc_pass().await.unwrap();
    }
    let live = 12 - 3;
    assert_eq!(shard_files(h.dir.path()), live * 6);
    let placed: usize = (0..6)
        .map(|n| h.catalog.placements_on_node(n, None, 1000).unwrap().len())
        .sum();
    assert_eq!(placed, live * 6);
    let gc = h.healer.gc_status().await.unwrap();
    assert_eq!(gc.queue_length, 0);
    assert_eq!(
        gc.cleanup_jobs, 0,
        "the GC passes ran the aborts' cleanup jobs"
    );
    assert_eq!(gc.orphans_removed, 1);
    assert_eq!(gc.stale_intents_collected, 1);
    assert_eq!(gc.expired_uploads_aborted, 1);
    assert!(gc.bytes_collected > 0);
    for i in 0..12u8 {
        let key = format!("k{i}");
        let want = match i {
            0..=5 => Some(pattern(30_000, i + 100)),
            6..=8 => None,
            _ => Some(pattern(20_000, i)),
        };
        match want {
            Some(data) => assert_eq!(read_all(&h.engine, &key).await.unwrap(), data),
            None => assert!(matches!(
                read_all(&h.engine, &key).await,
                Err(EngineError::NoSuchKey)
            )),
        }
    }
    h.engine.delete_bucket("b").await.unwrap_err();
    for i in (0..6).chain(9..12) {
        h.engine
            .delete_object(&bucket_b(&h.engine).await, &format!("k{i}"))
            .await
            .unwrap();
    }
    h.healer.gc_pass().await.unwrap();
    h.engine.delete_bucket("b").await.unwrap();
    assert_eq!(
        shard_files(h.dir.path()),
        0,
        "an empty, deleted bucket leaves no shard"
    );
}

async fn write_raw_shard(store: &LocalShardStore, group: ShardGroupId, index: u8) {
    let geometry = Geometry::new(4, 2, BLOCK).unwrap();
    let header = ShardHeader {
        codec: CodecId::ReedSolomonGf8,
        data_shards: 4,
        parity_shards: 2,
        index,
        block_size: BLOCK as u32,
        part_length: 5000,
        group,
        checksum: FrameChecksum::Xxh3_64,
        back_reference: BackReference {
            bucket: "b".into(),
            key: "crashed".into(),
            version: "null".into(),
            part_number: 1,
        },
    };
    let mut writer = store
        .create(ShardId::new(group, index), header)
        .await
        .unwrap();
    writer
        .write_frame(Bytes::from(vec![7u8; geometry.shard_len(5000, 0)]))
        .await
        .unwrap();
    writer.commit().await.unwrap();
}
