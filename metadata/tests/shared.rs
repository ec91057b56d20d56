//! Several catalogs over one store — what several gateways sharing a catalog do: a racing
//! conditional write has exactly one winner across catalogs, sequence numbers never collide,
//! a bucket deleted through one is gone for the other, and a write into it through the other
//! fails instead of leaving orphan rows. Run on RocksDB (two catalogs on one database) and on
//! etcd (two catalogs with their own client connections to a three-member cluster).

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Barrier};

use common::inline_version;
use metadata::{Catalog, MetaError, WriteCondition};

fn rocks_pair() -> (tempfile::TempDir, Catalog, Catalog) {
    let dir = tempfile::tempdir().unwrap();
    let kv: Arc<dyn metadata::KvStore> =
        Arc::new(metadata::RocksKvStore::open(dir.path(), false).unwrap());
    let a = Catalog::new(Arc::clone(&kv)).unwrap();
    let b = Catalog::new(kv).unwrap();
    (dir, a, b)
}

fn etcd_pair(cluster: &metadata::testing::EtcdCluster) -> (Catalog, Catalog) {
    let a = Catalog::new(Arc::new(cluster.store("shared/").unwrap())).unwrap();
    let b = Catalog::new(Arc::new(cluster.store("shared/").unwrap())).unwrap();
    (a, b)
}

#[test]
fn rocks_catalogs_share_one_truth() {
    let (_dir, a, b) = rocks_pair();
    one_truth(&a, &b);
}

#[test]
fn etcd_catalogs_share_one_truth() {
    let cluster = metadata::testing::EtcdCluster::start(3).unwrap();
    let (a, b) = etcd_pair(&cluster);
    one_truth(&a, &b);
}

fn one_truth(a: &Catalog, b: &Catalog) {
    let bid = a.create_bucket("shared", "o", "r", 0).unwrap().id;
    assert_eq!(
        b.create_bucket("shared", "o", "r", 0),
        Err(MetaError::BucketExists)
    );
    // Read-after-write and list-after-write across catalogs.
    common::put(a, &bid, "written-by-a");
    assert!(b.get_object(&bid, "written-by-a").unwrap().is_some());
    let listed = b
        .list_objects(
            &bid,
            &metadata::ListQuery {
                max_keys: 10,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(listed.entries.len(), 1);

    // Racing If-None-Match writers, half through each catalog: one winner per key.
    for round in 0..5 {
        let key = format!("race-{round}");
        let barrier = Arc::new(Barrier::new(6));
        let handles: Vec<_> = (0..6)
            .map(|thread| {
                let catalog = if thread % 2 == 0 {
                    a.clone()
                } else {
                    b.clone()
                };
                let (barrier, key) = (barrier.clone(), key.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    catalog.commit_version(
                        &bid,
                        &key,
                        inline_version(&format!("t{thread}"), b"d"),
                        WriteCondition::IfNoneMatchAny,
                        &[],
                        None,
                        0,
                        0,
                    )
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "{results:?}"
        );
        assert!(results
            .iter()
            .all(|r| r.is_ok() || *r == Err(MetaError::PreconditionFailed)));
    }

    // Sequence numbers from both catalogs never collide.
    let mut seqs: Vec<u64> = (0..1500)
        .flat_map(|_| [a.next_seq().unwrap(), b.next_seq().unwrap()])
        .collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 3000);

    // A version written through one catalog after the other wrote a later-block seq still
    // sorts above it (the replaced version is the one GC gets).
    common::put(b, &bid, "k");
    for _ in 0..1200 {
        b.next_seq().unwrap();
    }
    common::put(b, &bid, "k");
    let newest = b.get_object(&bid, "k").unwrap().unwrap().seq;
    common::put(a, &bid, "k");
    assert!(a.get_object(&bid, "k").unwrap().unwrap().seq > newest);

    // A bucket emptied and deleted through one catalog is gone for the other.
    for key in [
        "written-by-a",
        "k",
        "race-0",
        "race-1",
        "race-2",
        "race-3",
        "race-4",
    ] {
        b.delete_object(&bid, key, 0, 0).unwrap();
    }
    a.delete_bucket("shared").unwrap();
    assert_eq!(b.get_bucket("shared").unwrap(), None);
    b.run_cleanup(1000).unwrap();
    assert_eq!(a.cleanup_jobs(1).unwrap(), 0);
    let late = b.commit_version(
        &bid,
        "late",
        inline_version("e", b"x"),
        WriteCondition::None,
        &[],
        None,
        0,
        0,
    );
    assert_eq!(late, Err(MetaError::NoSuchBucket));
}
