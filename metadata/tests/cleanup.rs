//! Transactions sized to etcd's default limits (128 operations, 1.5 MiB) whatever the data:
//! 10,000-part completes and aborts (racing UploadPart), a many-part version deleted, a bucket
//! deleted after many objects were, and cleanup jobs interrupted then resumed by a new catalog
//! over the same store. Run on memory (unbounded and with etcd's limits), RocksDB and etcd
//! (members run with etcd's defaults).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::*;
use metadata::{
    Catalog, DataLayout, KvStore, Limits, MemKvStore, MetaError, PartLayout, PartRecord,
    ShardedLayout, StoredChecksum, Table, UploadRecord, VersionRecord, WriteCondition,
};

conformance!(delete_bucket_after_deleting_many_objects);

/// Runs each named check (a `fn(&Catalog, parts)`) with 10,000 parts on RocksDB and on etcd
/// (etcd's default limits), and with 1,000 parts (still far over 128 operations) on a memory
/// store that refuses commits over etcd's limits: the memory store copies a table on every
/// commit a live view shares, which makes 10,000 parts slow there.
macro_rules! many_parts {
    ($($check:ident),* $(,)?) => {
        mod etcd_limits_in_memory {
            $( #[test] fn $check() {
                let kv = metadata::MemKvStore::with_limits(metadata::Limits::ETCD_DEFAULT);
                let catalog = metadata::Catalog::new(std::sync::Arc::new(kv)).unwrap();
                super::$check(&catalog, 1_000);
            } )*
        }
        mod rocks {
            $( #[test] fn $check() {
                let dir = tempfile::tempdir().unwrap();
                let catalog = metadata::Catalog::open_rocks(dir.path(), false).unwrap();
                super::$check(&catalog, super::PARTS);
            } )*
        }
        mod etcd {
            $( #[test] fn $check() {
                let cluster = metadata::testing::EtcdCluster::start(1).unwrap();
                let kv = cluster.store("catalog/").unwrap();
                let catalog = metadata::Catalog::new(std::sync::Arc::new(kv)).unwrap();
                super::$check(&catalog, super::PARTS);
            } )*
        }
    };
}

mod many {
    use super::*;
    many_parts!(
        complete_and_delete_many_parts,
        abort_many_parts_racing_upload_part,
    );
}

/// Parts of the big uploads.
const PARTS: u32 = 10_000;
/// Threads uploading parts.
const WRITERS: u32 = 4;

/// A distinct shard group per `n` (bytes 1..5 hold `n`, so it never equals `common::group`).
fn big_group(n: u32) -> [u8; 16] {
    let mut g = [0u8; 16];
    g[0] = 0xB1;
    g[1..5].copy_from_slice(&n.to_be_bytes());
    g
}

fn big_layout(n: u32) -> ShardedLayout {
    ShardedLayout {
        group: big_group(n),
        data_shards: 4,
        parity_shards: 2,
        block_size: 1 << 20,
        length: 5 << 20,
        nodes: vec![0, 1, 2, 3, 4, 5],
        missing: vec![],
    }
}

/// A part as the gateway records it: hex MD5 ETag, a CRC32C checksum, 5 MiB of shards.
fn big_part(part_number: u32, n: u32) -> PartRecord {
    PartRecord {
        part_number,
        attempt: 0,
        size: 5 << 20,
        etag: format!("{:032x}", u128::from(n) * 0x9E37_79B9_7F4A_7C15),
        mtime_ms: 2,
        checksum: Some(StoredChecksum {
            algorithm: "CRC32C".to_string(),
            value: "yZRlqg==".to_string(),
            kind: "FULL_OBJECT".to_string(),
        }),
        data: DataLayout::Sharded(big_layout(n)),
    }
}

/// Uploads parts `1..=parts` (group `n` = part number) with `WRITERS` threads.
fn upload_parts(catalog: &Catalog, upload: &UploadRecord, parts: u32) {
    let threads: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (catalog, upload) = (catalog.clone(), upload.clone());
            std::thread::spawn(move || {
                for part_number in (1..=parts).filter(|p| p % WRITERS == w) {
                    catalog
                        .put_part(&upload, big_part(part_number, part_number), &[])
                        .unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

/// Every GC row's group (due by `now`), checking that no group is queued twice.
fn gc_set(catalog: &Catalog, now: u64) -> BTreeSet<[u8; 16]> {
    let rows = catalog.due_gc(now, 1_000_000).unwrap();
    let set: BTreeSet<_> = rows.iter().map(|(_, item)| item.layout.group).collect();
    assert_eq!(set.len(), rows.len(), "a group queued twice");
    set
}

fn complete_and_delete_many_parts(catalog: &Catalog, parts: u32) {
    let bid = catalog.create_bucket("big", "o", "r", 0).unwrap().id;
    let upload = start_upload(catalog, &bid, "obj");
    upload_parts(catalog, &upload, parts);
    // Retries of the first 50 parts (groups parts+1..): never completed, so collected.
    for part_number in 1..=50 {
        catalog
            .put_part(&upload, big_part(part_number, parts + part_number), &[])
            .unwrap();
    }
    let attempts = catalog.list_parts(&upload).unwrap();
    assert_eq!(attempts.len(), parts as usize + 50);
    let mut version = inline_version("big", b"");
    version.parts = attempts
        .iter()
        .filter(|p| p.data.sharded().unwrap().group == big_group(p.part_number))
        .map(|p| PartLayout {
            part_number: p.part_number,
            size: p.size,
            etag: p.etag.clone(),
            checksum: p.checksum.clone(),
            data: p.data.clone(),
        })
        .collect();
    assert_eq!(version.parts.len(), parts as usize);
    catalog
        .commit_version(
            &bid,
            "obj",
            version,
            WriteCondition::None,
            &[],
            Some(&upload),
            100,
            0,
        )
        .unwrap();
    let live = catalog.get_object(&bid, "obj").unwrap().unwrap();
    assert_eq!(live.parts.len(), parts as usize);
    assert_eq!(
        catalog
            .completed_upload(&bid, "obj", &upload.upload_id)
            .unwrap()
            .map(|v| v.seq),
        Some(live.seq)
    );
    // Before and after the part rows go, a kept group resolves to the version and an unused
    // attempt to nothing.
    let check_owners = || {
        let (owner, _) = catalog
            .find_group_layout(&big_group(7), &[0])
            .unwrap()
            .unwrap();
        assert!(matches!(owner, metadata::LayoutOwner::Version { seq, .. } if seq == live.seq));
        assert!(catalog.shard_is_live(3, &big_group(7), 3).unwrap());
        assert!(!catalog.shard_is_live(3, &big_group(parts + 7), 3).unwrap());
        assert!(catalog.shard_referenced(3, &big_group(parts + 7)).unwrap());
    };
    check_owners();
    assert!(gc_set(catalog, 100).is_empty());
    let steps = drain(catalog);
    assert!(steps >= 1);
    check_owners();
    assert!(catalog.list_parts(&upload).unwrap().is_empty());
    let unused: BTreeSet<_> = (1..=50).map(|n| big_group(parts + n)).collect();
    assert_eq!(gc_set(catalog, 100), unused);

    // Deleting the many-part version: one small transaction, then bounded steps.
    let removed = catalog.delete_object(&bid, "obj", 200, 0).unwrap().unwrap();
    assert_eq!(removed.seq, live.seq);
    assert!(catalog.get_object(&bid, "obj").unwrap().is_none());
    assert!(!catalog.shard_is_live(3, &big_group(7), 3).unwrap());
    assert_eq!(catalog.cleanup_jobs(10).unwrap(), 1);
    drain(catalog);
    let mut all: BTreeSet<_> = (1..=parts).map(big_group).collect();
    all.extend(unused);
    assert_eq!(gc_set(catalog, 200), all);
    catalog.delete_bucket("big").unwrap();
    drain(catalog);
}

fn abort_many_parts_racing_upload_part(catalog: &Catalog, parts: u32) {
    let bid = catalog.create_bucket("abort", "o", "r", 0).unwrap().id;
    let upload = start_upload(catalog, &bid, "obj");
    upload_parts(catalog, &upload, parts);
    // More parts race the abort: each lands before it (and is collected) or fails.
    let racer = {
        let (catalog, upload) = (catalog.clone(), upload.clone());
        std::thread::spawn(move || {
            let mut landed = BTreeSet::new();
            for n in 1..=200u32 {
                match catalog.put_part(&upload, big_part(n, parts + n), &[]) {
                    Ok(()) => {
                        landed.insert(big_group(parts + n));
                    }
                    Err(MetaError::NoSuchUpload) => break,
                    Err(e) => panic!("{e}"),
                }
            }
            landed
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(5));
    catalog.abort_upload(&upload, 300, 0).unwrap();
    let landed = racer.join().unwrap();
    assert_eq!(
        catalog.abort_upload(&upload, 300, 0),
        Err(MetaError::NoSuchUpload)
    );
    assert_eq!(
        catalog.put_part(&upload, big_part(1, 1), &[]),
        Err(MetaError::NoSuchUpload)
    );
    assert!(!catalog.shard_is_live(0, &big_group(1), 0).unwrap());
    drain(catalog);
    assert!(catalog.list_parts(&upload).unwrap().is_empty());
    let mut expected: BTreeSet<_> = (1..=parts).map(big_group).collect();
    expected.extend(landed);
    assert_eq!(gc_set(catalog, 300), expected);
}

fn delete_bucket_after_deleting_many_objects(catalog: &Catalog) {
    let bid = catalog.create_bucket("many", "o", "r", 0).unwrap().id;
    const OBJECTS: usize = 400;
    for i in 0..OBJECTS {
        put(catalog, &bid, &format!("k{i}"));
    }
    // Delete markers leave version rows behind; plain deletes do not.
    for i in 0..OBJECTS {
        let key = format!("k{i}");
        if i % 2 == 0 {
            let mut marker = inline_version("", b"");
            marker.delete_marker = true;
            marker.parts.clear();
            catalog
                .commit_version(&bid, &key, marker, WriteCondition::None, &[], None, 0, 0)
                .unwrap();
        } else {
            catalog.delete_object(&bid, &key, 0, 0).unwrap();
        }
    }
    // Uploads in progress (each with a part) and completed uploads whose objects are gone.
    let mut parts = BTreeSet::new();
    for i in 0..150u32 {
        let upload = start_upload(catalog, &bid, &format!("u{i}"));
        catalog
            .put_part(&upload, big_part(1, 20_000 + i), &[])
            .unwrap();
        parts.insert(big_group(20_000 + i));
    }
    catalog.delete_bucket("many").unwrap();
    assert_eq!(catalog.get_bucket("many").unwrap(), None);
    assert_eq!(
        catalog.commit_version(
            &bid,
            "late",
            inline_version("e", b"x"),
            WriteCondition::None,
            &[],
            None,
            0,
            0
        ),
        Err(MetaError::NoSuchBucket)
    );
    drain(catalog);
    assert_eq!(gc_set(catalog, u64::MAX), parts);
    let again = catalog.create_bucket("many", "o", "r", 1).unwrap();
    assert!(catalog.get_object(&again.id, "k0").unwrap().is_none());
}

/// A store with a deleted bucket, an aborted upload and a deleted many-part version, each
/// leaving a cleanup job; returns the groups every job together must queue to GC.
fn leave_jobs(catalog: &Catalog) -> BTreeSet<[u8; 16]> {
    let bid = catalog.create_bucket("crash", "o", "r", 0).unwrap().id;
    let mut expected = BTreeSet::new();
    // An aborted upload of 400 parts.
    let upload = start_upload(catalog, &bid, "aborted");
    for n in 1..=400 {
        catalog.put_part(&upload, big_part(n, n), &[]).unwrap();
        expected.insert(big_group(n));
    }
    catalog.abort_upload(&upload, 0, 0).unwrap();
    // A 300-part version, completed and deleted before its upload's job ran.
    let upload = start_upload(catalog, &bid, "v");
    for n in 1..=300 {
        catalog
            .put_part(&upload, big_part(n, 1000 + n), &[])
            .unwrap();
        expected.insert(big_group(1000 + n));
    }
    let mut version = inline_version("v", b"");
    version.parts = catalog
        .list_parts(&upload)
        .unwrap()
        .into_iter()
        .map(|part| PartLayout {
            part_number: part.part_number,
            size: part.size,
            etag: part.etag,
            checksum: None,
            data: part.data,
        })
        .collect();
    catalog
        .commit_version(
            &bid,
            "v",
            version,
            WriteCondition::None,
            &[],
            Some(&upload),
            0,
            0,
        )
        .unwrap();
    catalog.delete_object(&bid, "v", 0, 0).unwrap();
    // A deleted bucket with 200 delete markers and 30 uploads.
    let other = catalog.create_bucket("gone", "o", "r", 0).unwrap().id;
    for i in 0..200 {
        let mut marker = inline_version("", b"");
        marker.delete_marker = true;
        marker.parts.clear();
        catalog
            .commit_version(
                &other,
                &format!("m{i}"),
                marker,
                WriteCondition::None,
                &[],
                None,
                0,
                0,
            )
            .unwrap();
    }
    for i in 0..30u32 {
        let upload = start_upload(catalog, &other, &format!("u{i}"));
        catalog
            .put_part(&upload, big_part(1, 5000 + i), &[])
            .unwrap();
        expected.insert(big_group(5000 + i));
    }
    catalog.delete_bucket("gone").unwrap();
    expected
}

/// Rows of `table` left in `kv`.
fn rows(kv: &dyn KvStore, table: Table) -> usize {
    kv.scan(table, b"", b"", 1_000_000).unwrap().len()
}

/// Cleanup interrupted after every few steps (a crash loses at most the step in flight, which
/// committed nothing) and resumed by a fresh catalog over the same store, with two workers
/// racing part of the time: every job ends, each group is queued to GC exactly once, and no
/// part, upload or version row is left.
fn interrupted_cleanup_resumes(kv: Arc<dyn KvStore>) {
    let expected = leave_jobs(&Catalog::new(Arc::clone(&kv)).unwrap());
    let first = Catalog::new(Arc::clone(&kv)).unwrap();
    // Bucket, two uploads, one version.
    assert_eq!(first.cleanup_jobs(10).unwrap(), 4);
    for round in 0..10_000 {
        // "Restart": a new catalog each round, sometimes two racing.
        let a = Catalog::new(Arc::clone(&kv)).unwrap();
        if round % 3 == 0 {
            let b = Catalog::new(Arc::clone(&kv)).unwrap();
            let racer = std::thread::spawn(move || b.run_cleanup(2).unwrap());
            a.run_cleanup(2).unwrap();
            racer.join().unwrap();
        } else {
            a.run_cleanup(3).unwrap();
        }
        if a.cleanup_jobs(1).unwrap() == 0 {
            break;
        }
    }
    assert_eq!(first.cleanup_jobs(1).unwrap(), 0);
    assert_eq!(gc_set(&first, u64::MAX), expected);
    for table in [Table::Parts, Table::Uploads, Table::Versions] {
        assert_eq!(rows(kv.as_ref(), table), 0, "{} rows left", table.name());
    }
}

#[test]
fn interrupted_cleanup_resumes_in_memory_with_etcd_limits() {
    interrupted_cleanup_resumes(Arc::new(MemKvStore::with_limits(Limits::ETCD_DEFAULT)));
}

#[test]
fn interrupted_cleanup_resumes_on_rocks_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let expected = {
        let kv = metadata::RocksKvStore::open(dir.path(), false).unwrap();
        let catalog = Catalog::new(Arc::new(kv)).unwrap();
        let expected = leave_jobs(&catalog);
        catalog.cleanup_step().unwrap();
        catalog.cleanup_step().unwrap();
        expected
    };
    // Reopened: the jobs resume where the steps left them.
    let kv: Arc<dyn KvStore> = Arc::new(metadata::RocksKvStore::open(dir.path(), false).unwrap());
    let catalog = Catalog::new(Arc::clone(&kv)).unwrap();
    assert!(catalog.cleanup_jobs(10).unwrap() > 0);
    drain(&catalog);
    assert_eq!(gc_set(&catalog, u64::MAX), expected);
    for table in [Table::Parts, Table::Uploads, Table::Versions] {
        assert_eq!(rows(kv.as_ref(), table), 0, "{} rows left", table.name());
    }
}

#[test]
fn interrupted_cleanup_resumes_on_etcd() {
    let cluster = metadata::testing::EtcdCluster::start(1).unwrap();
    interrupted_cleanup_resumes(Arc::new(cluster.store("crash/").unwrap()));
}

/// A version record of 10,000 parts as the gateway writes them (hex MD5 ETags, CRC32C
/// checksums, 4+2 shards) fits one etcd request with room to spare.
#[test]
fn a_10000_part_version_fits_one_etcd_request() {
    let mut version: VersionRecord = inline_version("e-10000", b"");
    version.parts = (1..=PARTS)
        .map(|n| {
            let part = big_part(n, n);
            PartLayout {
                part_number: n,
                size: part.size,
                etag: part.etag,
                checksum: part.checksum,
                data: part.data,
            }
        })
        .collect();
    let bytes = metadata::model::encode(&version).unwrap().len();
    println!("10,000-part version record: {bytes} bytes");
    assert!(
        bytes < Limits::ETCD_DEFAULT.max_bytes * 3 / 4,
        "{bytes} bytes"
    );
}
