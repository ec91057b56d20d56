//! The `KvStore` contract, run on every back end: consistent views, atomic conditional
//! commits, conflicts detected on rows and ranges, and read-modify-write transactions that
//! lose no update under concurrency.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use metadata::kv::{Check, KvStore, Table, WriteBatch};
use metadata::txn;
use metadata::{Limits, MemKvStore, MetaError, RocksKvStore};

macro_rules! kv_conformance {
    ($($check:ident),* $(,)?) => {
        mod in_memory {
            $( #[test] fn $check() { super::$check(std::sync::Arc::new(metadata::MemKvStore::new())); } )*
        }
        mod rocks {
            $( #[test] fn $check() {
                let dir = tempfile::tempdir().unwrap();
                let kv = metadata::RocksKvStore::open(dir.path(), false).unwrap();
                super::$check(std::sync::Arc::new(kv));
            } )*
        }
        mod etcd {
            $( #[test] fn $check() {
                let cluster = metadata::testing::EtcdCluster::start(1).unwrap();
                let kv = cluster.store(concat!("t/", stringify!($check), "/")).unwrap();
                super::$check(std::sync::Arc::new(kv));
            } )*
        }
    };
}

kv_conformance!(
    batches_scans_and_bounds,
    views_are_snapshots,
    row_checks_detect_changes_and_creations,
    range_checks_detect_insertions,
    failed_commit_applies_nothing,
    concurrent_increments_lose_nothing,
    racing_creators_have_one_winner,
    write_skew_is_refused,
    get_many_reads_one_snapshot,
    prefetched_rows_are_checked,
);

fn put(kv: &dyn KvStore, table: Table, key: &[u8], value: &[u8]) {
    let mut batch = WriteBatch::new();
    batch.put(table, key.to_vec(), value.to_vec());
    kv.write(batch).unwrap();
}

fn batches_scans_and_bounds(kv: Arc<dyn KvStore>) {
    let mut batch = WriteBatch::new();
    for k in [b"b".as_slice(), b"a", b"c", b"d", b"e"] {
        batch.put(Table::Objects, k.to_vec(), k.to_vec());
    }
    batch.delete(Table::Objects, b"e".to_vec());
    batch.put(Table::Versions, b"a".to_vec(), b"other table".to_vec());
    kv.write(batch).unwrap();
    let keys = |rows: Vec<(Vec<u8>, Vec<u8>)>| rows.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    assert_eq!(
        keys(kv.scan(Table::Objects, b"a", b"c", 10).unwrap()),
        vec![b"a".to_vec(), b"b".to_vec()]
    );
    assert_eq!(kv.scan(Table::Objects, b"", b"", 10).unwrap().len(), 4);
    assert_eq!(
        keys(kv.scan(Table::Objects, b"b", b"", 2).unwrap()),
        vec![b"b".to_vec(), b"c".to_vec()]
    );
    assert!(kv.scan(Table::Objects, b"c", b"a", 10).unwrap().is_empty());
    assert!(kv.scan(Table::Objects, b"a", b"z", 0).unwrap().is_empty());
    assert_eq!(kv.get(Table::Objects, b"e").unwrap(), None);
    assert_eq!(
        kv.get(Table::Versions, b"a").unwrap(),
        Some(b"other table".to_vec())
    );
    assert_eq!(kv.scan(Table::Versions, b"", b"", 10).unwrap().len(), 1);
    // Keys with 0x00 and 0xFF bytes keep bytewise order.
    put(kv.as_ref(), Table::Gc, &[0xFF, 0x00], b"1");
    put(kv.as_ref(), Table::Gc, &[0x00, 0xFF], b"2");
    put(kv.as_ref(), Table::Gc, &[0xFF], b"3");
    assert_eq!(
        keys(kv.scan(Table::Gc, b"", b"", 10).unwrap()),
        vec![vec![0x00, 0xFF], vec![0xFF], vec![0xFF, 0x00]]
    );
}

fn views_are_snapshots(kv: Arc<dyn KvStore>) {
    put(kv.as_ref(), Table::Objects, b"k", b"old");
    let view = kv.view().unwrap();
    // A view is pinned no later than its first read (etcd pins the revision that read saw).
    assert_eq!(
        view.get(Table::Objects, b"k").unwrap().map(|(v, _)| v),
        Some(b"old".to_vec())
    );
    put(kv.as_ref(), Table::Objects, b"k", b"new");
    put(kv.as_ref(), Table::Objects, b"k2", b"added");
    assert_eq!(
        view.get(Table::Objects, b"k").unwrap().map(|(v, _)| v),
        Some(b"old".to_vec())
    );
    assert_eq!(view.scan(Table::Objects, b"", b"", 10).unwrap().0.len(), 1);
    drop(view);
    assert_eq!(kv.get(Table::Objects, b"k").unwrap(), Some(b"new".to_vec()));
}

fn row_checks_detect_changes_and_creations(kv: Arc<dyn KvStore>) {
    put(kv.as_ref(), Table::Objects, b"k", b"v1");
    let seen = kv
        .view()
        .unwrap()
        .get(Table::Objects, b"k")
        .unwrap()
        .map(|(_, s)| s);
    let absent = kv
        .view()
        .unwrap()
        .get(Table::Objects, b"new")
        .unwrap()
        .map(|(_, s)| s);
    assert!(seen.is_some());
    assert!(absent.is_none());
    let check = |key: &[u8], seen| Check::Row {
        table: Table::Objects,
        key: key.to_vec(),
        seen,
    };
    let mut batch = WriteBatch::new();
    batch.put(Table::Objects, b"x".to_vec(), b"1".to_vec());
    // Unchanged: both checks hold.
    kv.commit(
        vec![check(b"k", seen), check(b"new", absent)],
        batch.clone(),
    )
    .unwrap();
    // Changed row.
    put(kv.as_ref(), Table::Objects, b"k", b"v2");
    assert_eq!(
        kv.commit(vec![check(b"k", seen)], batch.clone()),
        Err(MetaError::Conflict)
    );
    // Created row.
    put(kv.as_ref(), Table::Objects, b"new", b"here");
    assert_eq!(
        kv.commit(vec![check(b"new", absent)], batch.clone()),
        Err(MetaError::Conflict)
    );
    // Deleted row.
    let now = kv
        .view()
        .unwrap()
        .get(Table::Objects, b"k")
        .unwrap()
        .map(|(_, s)| s);
    let mut delete = WriteBatch::new();
    delete.delete(Table::Objects, b"k".to_vec());
    kv.write(delete).unwrap();
    assert_eq!(
        kv.commit(vec![check(b"k", now)], batch),
        Err(MetaError::Conflict)
    );
}

fn range_checks_detect_insertions(kv: Arc<dyn KvStore>) {
    put(kv.as_ref(), Table::Parts, b"p1", b"1");
    put(kv.as_ref(), Table::Parts, b"p3", b"3");
    let (rows, seen) = kv
        .view()
        .unwrap()
        .scan(Table::Parts, b"p", b"q", 10)
        .unwrap();
    assert_eq!(rows.len(), 2);
    let range = Check::Range {
        table: Table::Parts,
        start: b"p".to_vec(),
        end: b"q".to_vec(),
        seen,
    };
    let mut batch = WriteBatch::new();
    batch.put(Table::Gc, b"done".to_vec(), b"1".to_vec());
    // A row outside the range, or in another table, does not matter.
    put(kv.as_ref(), Table::Parts, b"q0", b"outside");
    put(kv.as_ref(), Table::Uploads, b"p2", b"other table");
    kv.commit(vec![range.clone()], batch.clone()).unwrap();
    // A row inserted inside it does.
    put(kv.as_ref(), Table::Parts, b"p2", b"2");
    assert_eq!(kv.commit(vec![range], batch), Err(MetaError::Conflict));
}

fn failed_commit_applies_nothing(kv: Arc<dyn KvStore>) {
    let check = Check::Row {
        table: Table::System,
        key: b"flag".to_vec(),
        seen: None,
    };
    put(kv.as_ref(), Table::System, b"flag", b"set");
    let mut batch = WriteBatch::new();
    batch.put(Table::Objects, b"a".to_vec(), b"1".to_vec());
    batch.delete(Table::System, b"flag".to_vec());
    assert_eq!(kv.commit(vec![check], batch), Err(MetaError::Conflict));
    assert_eq!(kv.get(Table::Objects, b"a").unwrap(), None);
    assert_eq!(
        kv.get(Table::System, b"flag").unwrap(),
        Some(b"set".to_vec())
    );
}

fn counter(kv: &dyn KvStore, key: &[u8]) -> u64 {
    kv.get(Table::System, key)
        .unwrap()
        .map(|v| u64::from_be_bytes(v.try_into().unwrap()))
        .unwrap_or(0)
}

fn concurrent_increments_lose_nothing(kv: Arc<dyn KvStore>) {
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let kv = Arc::clone(&kv);
            std::thread::spawn(move || {
                for i in 0..40 {
                    txn::run(kv.as_ref(), |txn| {
                        let shared = txn
                            .get(Table::System, b"shared")?
                            .map(|v| u64::from_be_bytes(v.try_into().unwrap()))
                            .unwrap_or(0);
                        txn.put(
                            Table::System,
                            b"shared".to_vec(),
                            (shared + 1).to_be_bytes().to_vec(),
                        );
                        // A second row in the same transaction: both or neither.
                        txn.put(
                            Table::Objects,
                            format!("{t}-{i}"),
                            shared.to_be_bytes().to_vec(),
                        );
                        Ok(())
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(counter(kv.as_ref(), b"shared"), 240);
    let rows = kv.scan(Table::Objects, b"", b"", 1000).unwrap();
    assert_eq!(rows.len(), 240);
    // Every increment saw a distinct value: serializable, not merely atomic.
    let mut seen: Vec<Vec<u8>> = rows.into_iter().map(|(_, v)| v).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 240);
}

fn racing_creators_have_one_winner(kv: Arc<dyn KvStore>) {
    for round in 0..5u8 {
        let key = vec![b'r', round];
        let threads: Vec<_> = (0..6u8)
            .map(|t| {
                let (kv, key) = (Arc::clone(&kv), key.clone());
                std::thread::spawn(move || {
                    txn::run(kv.as_ref(), |txn| {
                        if txn.get(Table::Buckets, &key)?.is_some() {
                            return Ok(false);
                        }
                        txn.put(Table::Buckets, key.clone(), vec![t]);
                        Ok(true)
                    })
                    .unwrap()
                })
            })
            .collect();
        let winners = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|&won| won)
            .count();
        assert_eq!(winners, 1, "round {round}");
    }
}

/// Write skew: each writer reads two rows and, only if both are still set, clears one of them
/// (half clear the first, half the second). Serializable transactions leave exactly one writer
/// clearing a row per round; a back end that applied two commits whose reads overlap the
/// other's writes (as a careless group commit would) clears both.
fn write_skew_is_refused(kv: Arc<dyn KvStore>) {
    for round in 0..6u8 {
        let (a, b) = (vec![b'a', round], vec![b'b', round]);
        let mut batch = WriteBatch::new();
        batch.put(Table::System, a.clone(), b"1".to_vec());
        batch.put(Table::System, b.clone(), b"1".to_vec());
        kv.write(batch).unwrap();
        let start = Arc::new(std::sync::Barrier::new(8));
        let writers: Vec<_> = (0..8u8)
            .map(|w| {
                let (kv, a, b, start) = (Arc::clone(&kv), a.clone(), b.clone(), Arc::clone(&start));
                std::thread::spawn(move || {
                    start.wait();
                    txn::run(kv.as_ref(), |txn| {
                        let both = txn.get(Table::System, &a)?.as_deref() == Some(b"1".as_slice())
                            && txn.get(Table::System, &b)?.as_deref() == Some(b"1".as_slice());
                        if both {
                            let target = if w % 2 == 0 { a.clone() } else { b.clone() };
                            txn.put(Table::System, target, b"0".to_vec());
                        }
                        Ok(both)
                    })
                    .unwrap()
                })
            })
            .collect();
        let cleared = writers
            .into_iter()
            .map(|w| w.join().unwrap())
            .filter(|&cleared| cleared)
            .count();
        assert_eq!(cleared, 1, "round {round}: writers that cleared a row");
        let set = [&a, &b]
            .iter()
            .filter(|key| kv.get(Table::System, key).unwrap().as_deref() == Some(b"1".as_slice()))
            .count();
        assert_eq!(set, 1, "round {round}: rows still set");
    }
}

fn get_many_reads_one_snapshot(kv: Arc<dyn KvStore>) {
    put(kv.as_ref(), Table::Objects, b"m1", b"one");
    put(kv.as_ref(), Table::System, b"m2", b"two");
    let keys = [
        (Table::Objects, b"m1".as_slice()),
        (Table::System, b"m2".as_slice()),
        (Table::Objects, b"m3".as_slice()),
    ];
    let view = kv.view().unwrap();
    let first = view.get_many(&keys).unwrap();
    let values: Vec<Option<Vec<u8>>> = first
        .iter()
        .map(|f| f.as_ref().map(|(v, _)| v.clone()))
        .collect();
    assert_eq!(values, [Some(b"one".to_vec()), Some(b"two".to_vec()), None]);
    // The same answers (stamps too) as one get each.
    for ((table, key), found) in keys.iter().zip(&first) {
        assert_eq!(&view.get(*table, key).unwrap(), found);
    }
    put(kv.as_ref(), Table::Objects, b"m1", b"changed");
    put(kv.as_ref(), Table::Objects, b"m3", b"created");
    assert_eq!(
        view.get_many(&keys).unwrap(),
        first,
        "the view is a snapshot"
    );
    let fresh = kv.view().unwrap().get_many(&keys).unwrap();
    assert_eq!(
        fresh[0].as_ref().map(|(v, _)| v.as_slice()),
        Some(b"changed".as_slice())
    );
    assert_eq!(
        fresh[2].as_ref().map(|(v, _)| v.as_slice()),
        Some(b"created".as_slice())
    );
    // More keys than one etcd read group carries.
    let many: Vec<Vec<u8>> = (0..70u8).map(|i| vec![b'g', i]).collect();
    let mut batch = WriteBatch::new();
    for key in many.iter().step_by(2) {
        batch.put(Table::Gc, key.clone(), key.clone());
    }
    kv.write(batch).unwrap();
    let wanted: Vec<(Table, &[u8])> = many.iter().map(|k| (Table::Gc, k.as_slice())).collect();
    let found = kv.view().unwrap().get_many(&wanted).unwrap();
    assert_eq!(found.len(), 70);
    for (i, found) in found.iter().enumerate() {
        let expected = (i % 2 == 0).then(|| many[i].clone());
        assert_eq!(found.as_ref().map(|(v, _)| v.clone()), expected, "key {i}");
    }
}

/// A row read ahead by `prefetch` is checked like any read: changed after the prefetch, the
/// commit conflicts and the transaction runs again on the new value.
fn prefetched_rows_are_checked(kv: Arc<dyn KvStore>) {
    put(kv.as_ref(), Table::Objects, b"pa", b"1");
    let attempts = std::sync::atomic::AtomicU32::new(0);
    let seen = txn::run(kv.as_ref(), |txn| {
        txn.prefetch(&[(Table::Objects, b"pa"), (Table::Objects, b"pb")])?;
        if attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            put(kv.as_ref(), Table::Objects, b"pa", b"2");
        }
        let a = txn.get(Table::Objects, b"pa")?.unwrap();
        assert_eq!(txn.get(Table::Objects, b"pb")?, None);
        txn.put(Table::Objects, b"pb".to_vec(), a.clone());
        Ok(a)
    })
    .unwrap();
    assert_eq!(seen, b"2");
    assert_eq!(attempts.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(kv.get(Table::Objects, b"pb").unwrap(), Some(b"2".to_vec()));
}

#[test]
fn limited_store_refuses_oversized_commits() {
    let kv = MemKvStore::with_limits(Limits {
        max_ops: 3,
        max_bytes: 100,
    });
    let mut small = WriteBatch::new();
    small.put(Table::Objects, b"a".to_vec(), vec![0; 10]);
    kv.write(small).unwrap();
    let mut many = WriteBatch::new();
    for i in 0..4u8 {
        many.put(Table::Objects, vec![i], vec![]);
    }
    assert!(matches!(kv.write(many), Err(MetaError::TooLarge { .. })));
    let mut big = WriteBatch::new();
    big.put(Table::Objects, b"b".to_vec(), vec![0; 200]);
    assert!(matches!(kv.write(big), Err(MetaError::TooLarge { .. })));
    assert_eq!(kv.scan(Table::Objects, b"", b"", 10).unwrap().len(), 1);
}

/// Three members, one killed: commits go on (quorum 2 of 3); two killed: the store answers
/// `Unavailable` in bounded time; a member back: commits go on by themselves.
#[test]
fn etcd_quorum_loss_is_unavailable_and_recovers() {
    let mut cluster = metadata::testing::EtcdCluster::start(3).unwrap();
    let mut config = metadata::EtcdConfig::new(cluster.endpoints());
    config.timeout = std::time::Duration::from_secs(2);
    let kv = metadata::EtcdKvStore::connect(config).unwrap();
    put(&kv, Table::Objects, b"before", b"1");
    cluster.kill(0);
    // The first requests after a member dies may time out while the client stops using its
    // connection: retried (bounded), as the gateway's client retries a 503.
    write_within(&kv, b"one-down", std::time::Duration::from_secs(30));
    cluster.kill(1);
    let mut batch = WriteBatch::new();
    batch.put(Table::Objects, b"no-quorum".to_vec(), b"1".to_vec());
    let started = std::time::Instant::now();
    let refused = kv.write(batch);
    assert!(
        matches!(refused, Err(MetaError::Unavailable(_))),
        "{refused:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    cluster.restart(1).unwrap();
    write_within(&kv, b"recovered", std::time::Duration::from_secs(30));
    assert_eq!(
        kv.get(Table::Objects, b"before").unwrap(),
        Some(b"1".to_vec())
    );
    assert_eq!(
        kv.get(Table::Objects, b"one-down").unwrap(),
        Some(b"1".to_vec())
    );
}

/// Writes `key` until it succeeds, failing the test after `within`.
fn write_within(kv: &dyn KvStore, key: &[u8], within: std::time::Duration) {
    let deadline = std::time::Instant::now() + within;
    loop {
        let mut batch = WriteBatch::new();
        batch.put(Table::Objects, key.to_vec(), b"1".to_vec());
        match kv.write(batch) {
            Ok(()) => return,
            Err(e) if std::time::Instant::now() > deadline => {
                panic!("no write within {within:?}: {e}")
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(200)),
        }
    }
}

#[test]
fn rocks_commits_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let kv = RocksKvStore::open(dir.path(), true).unwrap();
        put(&kv, Table::Objects, b"k", b"v");
    }
    let kv = RocksKvStore::open(dir.path(), true).unwrap();
    assert_eq!(kv.get(Table::Objects, b"k").unwrap(), Some(b"v".to_vec()));
}

/// An etcd cluster with authentication on: a store given the user and password works, one
/// without them is refused (the gateway's `etcd_user`/`etcd_password` reach etcd).
#[test]
fn etcd_authentication_is_passed_through() {
    let cluster = metadata::testing::EtcdCluster::start(1).unwrap();
    let endpoints = cluster.endpoints();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut admin = etcd_client::Client::connect(endpoints.clone(), None)
            .await
            .unwrap();
        admin.user_add("root", "root-pw", None).await.unwrap();
        admin.user_grant_role("root", "root").await.unwrap();
        admin.user_add("strata", "s3cret-pw", None).await.unwrap();
        admin.role_add("strata-rw").await.unwrap();
        admin
            .role_grant_permission(
                "strata-rw",
                etcd_client::Permission::read_write("strata/").with_prefix(),
            )
            .await
            .unwrap();
        admin.user_grant_role("strata", "strata-rw").await.unwrap();
        admin.auth_enable().await.unwrap();
    });
    let mut config = metadata::EtcdConfig::new(endpoints);
    config.timeout = std::time::Duration::from_secs(2);
    let anonymous = metadata::EtcdKvStore::connect(config.clone())
        .and_then(|kv| kv.get(Table::Objects, b"k").map(|_| kv));
    assert!(anonymous.is_err(), "a store without credentials is refused");
    config.user = Some(("strata".to_string(), "wrong".to_string()));
    let wrong = metadata::EtcdKvStore::connect(config.clone())
        .and_then(|kv| kv.get(Table::Objects, b"k").map(|_| kv));
    assert!(wrong.is_err(), "a wrong password is refused");
    config.user = Some(("strata".to_string(), "s3cret-pw".to_string()));
    let kv = metadata::EtcdKvStore::connect(config).unwrap();
    put(&kv, Table::Objects, b"k", b"v");
    assert_eq!(kv.get(Table::Objects, b"k").unwrap(), Some(b"v".to_vec()));
}

/// History compaction on etcd: every revision before the compaction point is gone (a read
/// there is refused by etcd), the current state is intact, a view pinned before it reads
/// `Conflict` and its transaction runs again; nothing is compacted while every sample is
/// younger than `keep`. The local back ends keep no history.
#[test]
fn etcd_history_is_compacted() {
    let cluster = metadata::testing::EtcdCluster::start(1).unwrap();
    let kv = cluster.store("compact/").unwrap();
    put(&kv, Table::Objects, b"k", b"0");
    let old = kv.view().unwrap();
    assert_eq!(old.get(Table::Objects, b"k").unwrap().unwrap().0, b"0");
    for i in 1..=20u8 {
        put(&kv, Table::Objects, b"k", &[b'0' + i % 10]);
    }
    let hour = std::time::Duration::from_secs(3600);
    let before = kv.compact_history(hour).unwrap().unwrap();
    assert_eq!(before, 0, "no sample is an hour old: nothing compacted");
    let compacted = kv
        .compact_history(std::time::Duration::ZERO)
        .unwrap()
        .unwrap();
    assert!(
        compacted > 20,
        "compacted to the current revision, got {compacted}"
    );
    // The history before it is gone in etcd itself.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let refused = runtime.block_on(async {
        let mut client = etcd_client::Client::connect(cluster.endpoints(), None)
            .await
            .unwrap();
        client
            .get(
                "compact/ok",
                Some(etcd_client::GetOptions::new().with_revision(2)),
            )
            .await
    });
    assert!(
        refused.unwrap_err().to_string().contains("compacted"),
        "a read before the compaction point is refused"
    );
    // A view pinned before: a conflict, never stale data.
    assert!(matches!(
        old.get(Table::Objects, b"other"),
        Err(MetaError::Conflict)
    ));
    drop(old);
    assert_eq!(kv.get(Table::Objects, b"k").unwrap(), Some(b"0".to_vec()));
    let value = txn::run(&kv, |txn| {
        let value = txn.get(Table::Objects, b"k")?.unwrap();
        txn.put(Table::Objects, b"k2".to_vec(), value.clone());
        Ok(value)
    })
    .unwrap();
    assert_eq!(value, b"0");
    // Compacting again (the same point, or one further on) is fine; the local stores keep
    // no history.
    let again = kv
        .compact_history(std::time::Duration::ZERO)
        .unwrap()
        .unwrap();
    assert!(again > compacted, "the commit above moved the revision on");
    assert_eq!(
        kv.compact_history(std::time::Duration::ZERO).unwrap(),
        Some(again)
    );
    assert_eq!(MemKvStore::new().compact_history(hour).unwrap(), None);
}
