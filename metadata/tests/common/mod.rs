//! Helpers shared by the catalog conformance tests: record builders, the two backends, and a
//! KvStore wrapper that counts scans.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use metadata::{
    kv::Row, Catalog, Check, DataLayout, KvStore, KvView, MemKvStore, MetaError, PartLayout,
    PartRecord, ShardedLayout, Table, UploadRecord, VersionRecord, WriteBatch,
};

/// Runs each named check (a `fn(&Catalog)`) on a fresh in-memory catalog, an in-memory catalog
/// that refuses commits over etcd's default limits (fast proof that every transaction fits), a
/// fresh RocksDB catalog in a temporary directory and a fresh catalog on a one-member etcd
/// cluster (running with etcd's default limits).
#[macro_export]
macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod in_memory {
            $( #[test] fn $check() { super::$check(&metadata::Catalog::in_memory()); } )*
        }
        mod etcd_limits_in_memory {
            $( #[test] fn $check() {
                let kv = metadata::MemKvStore::with_limits(metadata::Limits::ETCD_DEFAULT);
                let catalog = metadata::Catalog::new(std::sync::Arc::new(kv)).unwrap();
                super::$check(&catalog);
            } )*
        }
        mod rocks {
            $( #[test] fn $check() {
                let dir = tempfile::tempdir().unwrap();
                let catalog = metadata::Catalog::open_rocks(dir.path(), false).unwrap();
                super::$check(&catalog);
            } )*
        }
        mod etcd {
            $( #[test] fn $check() {
                let cluster = metadata::testing::EtcdCluster::start(1).unwrap();
                let kv = cluster.store("catalog/").unwrap();
                let catalog = metadata::Catalog::new(std::sync::Arc::new(kv)).unwrap();
                super::$check(&catalog);
            } )*
        }
    };
}

pub fn group(n: u8) -> [u8; 16] {
    let mut g = [0u8; 16];
    g[0] = 0x55;
    g[15] = n;
    g
}

pub fn sharded(n: u8, length: u64) -> ShardedLayout {
    ShardedLayout {
        group: group(n),
        data_shards: 4,
        parity_shards: 2,
        block_size: 1 << 20,
        length,
        nodes: vec![0, 1, 2, 3, 4, 5],
        missing: vec![],
    }
}

/// A single-part version stored in shard group `group(n)`; seq 0 lets the catalog assign one.
pub fn sharded_version(n: u8, etag: &str) -> VersionRecord {
    let mut v = inline_version(etag, b"");
    v.size = 1000;
    v.parts = vec![PartLayout {
        part_number: 1,
        size: 1000,
        etag: etag.to_string(),
        checksum: None,
        data: DataLayout::Sharded(sharded(n, 1000)),
    }];
    v
}

pub fn inline_version(etag: &str, data: &[u8]) -> VersionRecord {
    VersionRecord {
        seq: 0,
        version_id: String::new(),
        size: data.len() as u64,
        etag: etag.to_string(),
        mtime_ms: 1,
        storage_class: "STANDARD".to_string(),
        content_type: Some("application/octet-stream".to_string()),
        headers: vec![],
        user_metadata: vec![("k".to_string(), "v".to_string())],
        checksum: None,
        delete_marker: false,
        parts: vec![PartLayout {
            part_number: 1,
            size: data.len() as u64,
            etag: etag.to_string(),
            checksum: None,
            data: DataLayout::Inline(data.to_vec()),
        }],
        encryption: None,
        access: None,
    }
}

pub fn part(part_number: u32, n: u8, etag: &str) -> PartRecord {
    PartRecord {
        part_number,
        attempt: 0,
        size: 100,
        etag: etag.to_string(),
        mtime_ms: 2,
        checksum: None,
        data: DataLayout::Sharded(sharded(n, 100)),
    }
}

/// Creates an upload of `key` in bucket `bid` and returns its record.
pub fn start_upload(catalog: &Catalog, bid: &[u8; 16], key: &str) -> UploadRecord {
    let (useq, upload_id) = catalog.new_upload_id().unwrap();
    let rec = UploadRecord {
        upload_id,
        bucket_id: *bid,
        key: key.to_string(),
        initiated_ms: 10,
        useq,
        content_type: None,
        headers: vec![],
        user_metadata: vec![],
        storage_class: "STANDARD".to_string(),
        checksum_algorithm: None,
        checksum_type: None,
        encryption: None,
        access: None,
    };
    catalog.create_upload(rec.clone()).unwrap();
    rec
}

/// Commits an inline object with no condition.
pub fn put(catalog: &Catalog, bid: &[u8; 16], key: &str) {
    catalog
        .commit_version(
            bid,
            key,
            inline_version("e", key.as_bytes()),
            metadata::WriteCondition::None,
            &[],
            None,
            0,
            0,
        )
        .unwrap();
}

/// Most cleanup steps a test runs before it calls the cleanup stuck.
pub const MAX_CLEANUP_STEPS: usize = 100_000;

/// Runs every pending cleanup job to its end (what the background worker does); returns the
/// steps it took.
pub fn drain(catalog: &Catalog) -> usize {
    let steps = catalog.run_cleanup(MAX_CLEANUP_STEPS).unwrap();
    assert!(steps < MAX_CLEANUP_STEPS, "cleanup did not finish");
    assert_eq!(catalog.cleanup_jobs(1).unwrap(), 0);
    steps
}

/// Groups queued to GC (due by `now`), with their reasons.
pub fn gc_groups(catalog: &Catalog, now: u64) -> Vec<([u8; 16], String)> {
    catalog
        .due_gc(now, 10_000)
        .unwrap()
        .into_iter()
        .map(|(_, item)| (item.layout.group, item.reason))
        .collect()
}

/// A KvStore that counts `scan` calls and the rows they return.
pub struct CountingKv {
    pub inner: Arc<dyn KvStore>,
    pub scans: AtomicUsize,
    pub rows: AtomicUsize,
}

impl CountingKv {
    pub fn new(inner: Arc<dyn KvStore>) -> Arc<CountingKv> {
        Arc::new(CountingKv {
            inner,
            scans: AtomicUsize::new(0),
            rows: AtomicUsize::new(0),
        })
    }

    pub fn memory() -> Arc<CountingKv> {
        CountingKv::new(Arc::new(MemKvStore::new()))
    }

    pub fn reset(&self) {
        self.scans.store(0, Ordering::SeqCst);
        self.rows.store(0, Ordering::SeqCst);
    }

    pub fn counts(&self) -> (usize, usize) {
        (
            self.scans.load(Ordering::SeqCst),
            self.rows.load(Ordering::SeqCst),
        )
    }
}

impl KvStore for CountingKv {
    fn view(&self) -> Result<Box<dyn KvView + '_>, MetaError> {
        self.inner.view()
    }

    fn commit(&self, checks: Vec<Check>, batch: WriteBatch) -> Result<(), MetaError> {
        self.inner.commit(checks, batch)
    }

    fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<Row>, MetaError> {
        let rows = self.inner.scan(table, start, end, limit)?;
        self.scans.fetch_add(1, Ordering::SeqCst);
        self.rows.fetch_add(rows.len(), Ordering::SeqCst);
        Ok(rows)
    }
}
