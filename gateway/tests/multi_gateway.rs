//! Two gateways' engines over one etcd catalog (a real etcd member on a free loopback port) and
//! the same six shard stores: what one writes the other reads and lists at once, a conditional
//! write raced from both has one winner, ids never collide, background work has one leader,
//! and a dead gateway's write intents are collected while a live one's are not.
//!
//! The process-level version (gateway processes, a 3-member etcd cluster, kill -9) is the
//! client suite's `test_multi_gateway.py`.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use metadata::model::{IntentRecord, ShardedLayout};
use metadata::testing::EtcdCluster;
use metadata::Catalog;
use storage::{Geometry, LocalShardStore, ShardStore};
use strata_gateway::engine::cluster::{Cluster, NodeSpec};
use strata_gateway::engine::members::Membership;
use strata_gateway::engine::{
    CreateUploadRequest, Engine, EngineConfig, EngineError, Healer, HealingConfig, ListQuery,
    StorageClass, WriteCondition,
};

const LEASE: Duration = Duration::from_millis(600);

struct Gateway {
    engine: Arc<Engine>,
    healer: Arc<Healer>,
    catalog: Catalog,
    members: Arc<Membership>,
}

/// A gateway's engine on its own connection to the shared catalog, over `stores`.
fn gateway(etcd: &EtcdCluster, stores: &[Arc<dyn ShardStore>]) -> Gateway {
    let catalog = Catalog::new(Arc::new(etcd.store("strata-test/").unwrap())).unwrap();
    let specs = stores
        .iter()
        .enumerate()
        .map(|(i, store)| NodeSpec {
            id: i as u32,
            address: format!("disk{i}"),
            zone: None,
            weight: 1.0,
            store: store.clone(),
        })
        .collect();
    let members = Membership::shared("127.0.0.1:0".into(), LEASE);
    members.tick(&catalog).unwrap();
    let engine = Engine::with_members(
        catalog.clone(),
        Arc::new(Cluster::new(specs).unwrap()),
        EngineConfig {
            geometry: Geometry::new(4, 2, BLOCK).unwrap(),
            inline_threshold: 1024,
            write_quorum: 5,
            gc_delay: Duration::ZERO,
            shard_timeout: Duration::from_secs(5),
            hedge_after: Duration::from_millis(100),
            region: "us-east-1".into(),
            healing: HealingConfig::default(),
            sse: Default::default(),
        },
        members.clone(),
    )
    .unwrap();
    Gateway {
        healer: Healer::new(engine.clone()),
        engine,
        catalog,
        members,
    }
}

fn two_gateways() -> (EtcdCluster, tempfile::TempDir, Gateway, Gateway) {
    let etcd = EtcdCluster::start(1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let stores: Vec<Arc<dyn ShardStore>> = (0..6)
        .map(|i| {
            Arc::new(LocalShardStore::open(disk(dir.path(), i), format!("disk{i}"), false).unwrap())
                as Arc<dyn ShardStore>
        })
        .collect();
    let a = gateway(&etcd, &stores);
    let b = gateway(&etcd, &stores);
    (etcd, dir, a, b)
}

async fn tick(g: &Gateway) {
    let (members, catalog) = (g.members.clone(), g.catalog.clone());
    tokio::task::spawn_blocking(move || members.tick(&catalog))
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_one_gateway_writes_the_other_reads_and_lists_at_once() {
    let (_etcd, _dir, a, b) = two_gateways();
    a.engine.create_bucket("b", "owner").await.unwrap();
    assert!(matches!(
        b.engine.create_bucket("b", "owner").await,
        Err(EngineError::BucketExists)
    ));
    for i in 0..6u8 {
        let (writer, reader) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let key = format!("k{i}");
        // Alternate inline and sharded objects.
        let data = pattern(if i % 3 == 0 { 700 } else { BLOCK * 3 + 11 }, i);
        put(&writer.engine, &key, &data).await;
        assert_eq!(read_all(&reader.engine, &key).await.unwrap(), data);
        let listing = reader
            .engine
            .list_objects(
                &bucket_b(&reader.engine).await,
                ListQuery {
                    prefix: String::new(),
                    delimiter: None,
                    start_after: None,
                    max_keys: 1000,
                },
            )
            .await
            .unwrap();
        assert_eq!(listing.entries.len(), usize::from(i) + 1);
        assert!(listing.entries.iter().any(|e| e.key == key));
    }
    // Overwrite on one, read the new bytes on the other; delete on one, gone on the other.
    let newer = pattern(BLOCK + 5, 99);
    put(&b.engine, "k0", &newer).await;
    assert_eq!(read_all(&a.engine, "k0").await.unwrap(), newer);
    a.engine
        .delete_object(&bucket_b(&a.engine).await, "k0")
        .await
        .unwrap();
    assert!(matches!(
        read_all(&b.engine, "k0").await,
        Err(EngineError::NoSuchKey)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conditional_write_raced_from_two_gateways_has_one_winner_and_ids_never_collide() {
    let (_etcd, _dir, a, b) = two_gateways();
    a.engine.create_bucket("b", "owner").await.unwrap();
    for round in 0..5u8 {
        let key = format!("race{round}");
        let mut tasks = Vec::new();
        for (n, g) in [&a, &b, &a, &b].into_iter().enumerate() {
            let engine = g.engine.clone();
            let key = key.clone();
            let data = pattern(BLOCK * 2, n as u8);
            tasks.push(tokio::spawn(async move {
                let mut request = put_request(&key, data.len());
                request.condition = WriteCondition::IfNoneMatchAny;
                engine
                    .put_object(&bucket_b(&engine).await, request, body_of(&data))
                    .await
            }));
        }
        let mut wins = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => wins += 1,
                Err(EngineError::PreconditionFailed | EngineError::ConditionalConflict) => {}
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert_eq!(wins, 1, "round {round}");
    }
    // Upload ids (and the sequence numbers in them) from both gateways never collide.
    let mut ids = HashSet::new();
    for n in 0..40 {
        let g = if n % 2 == 0 { &a } else { &b };
        let upload = g
            .engine
            .create_upload(
                &bucket_b(&g.engine).await,
                "mp",
                CreateUploadRequest {
                    content_type: None,
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
        assert!(ids.insert(upload.upload_id().to_string()));
    }
}

fn layout(group: u8) -> ShardedLayout {
    ShardedLayout {
        group: [group; 16],
        data_shards: 4,
        parity_shards: 2,
        block_size: BLOCK as u32,
        length: 10,
        nodes: vec![0, 1, 2, 3, 4, 5],
        missing: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_and_a_dead_gateways_intents_are_collected_after_its_lease() {
    let (_etcd, _dir, a, b) = two_gateways();
    tick(&a).await;
    tick(&b).await;
    assert!(
        a.members.is_leader() ^ b.members.is_leader(),
        "exactly one gateway leads background work"
    );
    let (leader, follower) = if a.members.is_leader() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    // An intent of the live follower, one of a gateway never seen alive, one of format 1.
    let now = strata_gateway::engine::now_ms();
    for (group, owner) in [(1u8, follower.members.id()), (2, "gw-gone"), (3, "")] {
        let intent = IntentRecord {
            created_ms: now,
            layout: layout(group),
            owner: owner.to_string(),
        };
        leader.catalog.put_intent([group; 16], &intent).unwrap();
    }
    leader.healer.gc_pass().await.unwrap();
    let left: Vec<u8> = leader
        .catalog
        .stale_intents(u64::MAX, &|_| false, 10)
        .unwrap()
        .into_iter()
        .map(|(g, _)| g[0])
        .collect();
    assert_eq!(left, vec![1], "only the live gateway's intent stays");

    // The follower dies (stops renewing). The leader keeps renewing; once the follower's row
    // has not changed for a whole lease, its intent is collected.
    let started = Instant::now();
    let mut collected = false;
    while started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(LEASE / 4).await;
        tick(leader).await;
        leader.healer.gc_pass().await.unwrap();
        if leader
            .catalog
            .stale_intents(u64::MAX, &|_| false, 10)
            .unwrap()
            .is_empty()
        {
            collected = true;
            break;
        }
    }
    assert!(collected, "the dead gateway's intent was collected");
    assert!(leader.members.is_leader());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_follower_takes_the_lease_when_the_leader_stops() {
    let (_etcd, _dir, a, b) = two_gateways();
    tick(&a).await;
    tick(&b).await;
    let (leader, follower) = if a.members.is_leader() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    assert!(!follower.members.is_leader());
    assert!(!follower.healer.engine().members().is_leader());
    let stopped = Instant::now();
    let mut took = false;
    while stopped.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(LEASE / 4).await;
        tick(follower).await;
        if follower.members.is_leader() {
            took = true;
            break;
        }
    }
    assert!(took, "the follower took over");
    assert!(
        !leader.members.is_leader(),
        "the stopped leader lapsed first"
    );
    assert_eq!(
        follower.members.leader_id().as_deref(),
        Some(follower.members.id())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_read_on_one_gateway_keeps_replaced_data_from_the_leaders_gc() {
    use futures::StreamExt;
    let (_etcd, dir, a, b) = two_gateways();
    tick(&a).await;
    tick(&b).await;
    let (leader, reader) = if a.members.is_leader() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    leader.engine.create_bucket("b", "owner").await.unwrap();
    let old = pattern(BLOCK * 8 + 3, 1);
    put(&leader.engine, "k", &old).await;
    let files = shard_files(dir.path());
    // The reader opens the old version and holds it (a slow download).
    let version = reader.engine.head_object("b", "k").await.unwrap();
    let size = version.size();
    let mut body = reader
        .engine
        .open_object(
            version,
            strata_gateway::engine::ByteRange {
                start: 0,
                end: size,
            },
            None,
        )
        .await
        .unwrap()
        .body;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let membership = reader.engine.spawn_membership(stop_rx);
    // Overwritten through the leader: the old groups are due for GC at once (gc_delay 0).
    put(&leader.engine, "k", &pattern(100, 2)).await;
    tokio::time::sleep(LEASE).await; // the reader has published its lease by now
    tick(leader).await;
    leader.healer.gc_pass().await.unwrap();
    assert!(
        shard_files(dir.path()) >= files,
        "the leased old shards are still there"
    );
    let mut got = Vec::new();
    while let Some(chunk) = body.next().await {
        got.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(got, old, "the slow read got every byte of the old version");
    drop(body);
    // Once the read ended and that was published, the leader collects the old shards.
    let mut collected = false;
    for _ in 0..40 {
        tokio::time::sleep(LEASE / 4).await;
        tick(leader).await;
        leader.healer.gc_pass().await.unwrap();
        if shard_files(dir.path()) < files {
            collected = true;
            break;
        }
    }
    assert!(
        collected,
        "the old version's shards were collected after the read ended"
    );
    let _ = stop_tx.send(true);
    membership.await.unwrap();
}
