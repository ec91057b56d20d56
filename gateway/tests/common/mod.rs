//! The shared harness of the engine integration tests (`engine.rs`, `repair.rs`): an engine over
//! six (or `nodes`) real local shard directories, each wrapped in a fault injector, with an
//! in-memory or RocksDB catalog; deterministic test data; and the put/read helpers every test
//! uses. Each test file includes it with `mod common;` and uses what it needs.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use metadata::model::VersionRecord;
use metadata::Catalog;
use storage::{FaultyShardStore, Geometry, LocalShardStore, ShardStore};
use strata_gateway::engine::cluster::{Cluster, NodeSpec};
use strata_gateway::engine::{
    BodyError, BodyStream, BucketInfo, ByteRange, Engine, EngineConfig, EngineError, Healer,
    HealingConfig, PutObjectRequest, StorageClass, WriteCondition,
};
use strata_gateway::sse::SseKeys;

/// Erasure block size of every harness (small, so a few KiB span several stripes).
pub const BLOCK: usize = 16 * 1024;

/// Which catalog a harness runs on.
pub enum CatalogKind {
    /// In memory (fast; nothing survives the harness).
    Memory,
    /// RocksDB under `<dir>/meta`, without fsync.
    Rocks,
}

pub struct Harness {
    pub engine: Arc<Engine>,
    /// Background work over `engine` (no worker runs unless a test spawns one).
    pub healer: Arc<Healer>,
    pub catalog: Catalog,
    /// One fault injector per node, in node order.
    pub faults: Vec<Arc<FaultyShardStore>>,
    /// The local store under each fault injector, in node order.
    pub locals: Vec<LocalShardStore>,
    pub dir: tempfile::TempDir,
}

/// An engine over `nodes` disks `<dir>/disk<i>` (4+2 geometry, write quorum 5).
pub fn harness_with(
    nodes: u32,
    catalog: CatalogKind,
    fsync: bool,
    healing: HealingConfig,
) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let catalog = match catalog {
        CatalogKind::Memory => Catalog::in_memory(),
        CatalogKind::Rocks => Catalog::open_rocks(&dir.path().join("meta"), false).unwrap(),
    };
    let mut faults = Vec::new();
    let mut locals = Vec::new();
    let mut specs = Vec::new();
    for i in 0..nodes {
        let local = LocalShardStore::open(disk(dir.path(), i), format!("disk{i}"), fsync).unwrap();
        locals.push(local.clone());
        let faulty = Arc::new(FaultyShardStore::new(Arc::new(local)));
        faults.push(faulty.clone());
        specs.push(NodeSpec {
            id: i,
            address: format!("disk{i}"),
            zone: None,
            weight: 1.0,
            store: faulty as Arc<dyn ShardStore>,
        });
    }
    let engine = Engine::new(
        catalog.clone(),
        Arc::new(Cluster::new(specs).unwrap()),
        engine_config(healing, SseKeys::default()),
    )
    .unwrap();
    Harness {
        healer: Healer::new(engine.clone()),
        engine,
        catalog,
        faults,
        locals,
        dir,
    }
}

/// The engine settings of every harness: 4+2 in [`BLOCK`] stripes, 4 KiB inline, W = 5, no GC
/// delay, short timeouts.
pub fn engine_config(healing: HealingConfig, sse: SseKeys) -> EngineConfig {
    EngineConfig {
        geometry: Geometry::new(4, 2, BLOCK).unwrap(),
        inline_threshold: 4096,
        write_quorum: 5,
        gc_delay: Duration::ZERO,
        shard_timeout: Duration::from_secs(2),
        hedge_after: Duration::from_millis(100),
        region: "us-east-1".into(),
        healing,
        sse,
    }
}

/// The directory of disk `i` under a harness root.
pub fn disk(root: &Path, i: u32) -> PathBuf {
    root.join(format!("disk{i}"))
}

/// `len` bytes that differ by `seed` and repeat no short period.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}

/// `data` as a request body of 7000-byte chunks (not aligned to anything).
pub fn body_of(data: &[u8]) -> BodyStream {
    let chunks: Vec<Result<Bytes, BodyError>> = data
        .chunks(7000)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures::stream::iter(chunks))
}

/// A plain PUT of `len` bytes to `b/<key>`.
pub fn put_request(key: &str, len: usize) -> PutObjectRequest {
    PutObjectRequest {
        key: key.into(),
        length: len as u64,
        content_type: None,
        headers: vec![],
        user_metadata: vec![],
        storage_class: StorageClass::Standard,
        expected_md5: None,
        checksum: None,
        condition: WriteCondition::None,
        encryption: Default::default(),
        access: None,
    }
}

/// Bucket `b`, resolved (every test works in it).
pub async fn bucket_b(engine: &Arc<Engine>) -> BucketInfo {
    engine.bucket("b").await.unwrap()
}

/// The stored record of `b/<key>`, read from the catalog: what the engine's views hide (data
/// layouts) but repair and placement tests look at.
pub fn record_of(h: &Harness, key: &str) -> VersionRecord {
    let bucket = h.catalog.get_bucket("b").unwrap().unwrap();
    h.catalog.get_object(&bucket.id, key).unwrap().unwrap()
}

/// Stores `data` at `b/<key>`; panics on failure.
pub async fn put(engine: &Arc<Engine>, key: &str, data: &[u8]) {
    engine
        .put_object(
            &bucket_b(engine).await,
            put_request(key, data.len()),
            body_of(data),
        )
        .await
        .unwrap();
}

/// The whole of `b/<key>`.
pub async fn read_all(engine: &Arc<Engine>, key: &str) -> Result<Vec<u8>, EngineError> {
    read_range(engine, key, None).await
}

/// `range` of `b/<key>` (the whole object when `None`).
pub async fn read_range(
    engine: &Arc<Engine>,
    key: &str,
    range: Option<ByteRange>,
) -> Result<Vec<u8>, EngineError> {
    let version = engine.head_object("b", key).await?;
    let range = range.unwrap_or(ByteRange {
        start: 0,
        end: version.size(),
    });
    let mut body = engine.open_object(version, range, None).await?.body;
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        out.extend_from_slice(&chunk.map_err(EngineError::Body)?);
    }
    Ok(out)
}

/// Committed shard files below `root` (everything under a `shards/` directory).
pub fn shard_files(root: &Path) -> usize {
    fn walk(p: &Path) -> usize {
        let Ok(entries) = std::fs::read_dir(p) else {
            return 0;
        };
        entries
            .flatten()
            .map(|e| {
                if e.path().is_dir() {
                    walk(&e.path())
                } else {
                    usize::from(e.path().to_string_lossy().contains("/shards/"))
                }
            })
            .sum()
    }
    walk(root)
}

/// Polls `check` until it holds: at most 200 times, 50 ms apart, then panics naming `what`.
pub async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}
