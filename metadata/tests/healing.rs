//! Catalog conformance of the healing tables (placement index, repair queue, layout swap),
//! run on the in-memory store and on RocksDB.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use metadata::catalog::{repair_backoff_ms, SwapOutcome};
use metadata::{Catalog, IntentRecord, LayoutOwner, WriteCondition, NO_NODE};

conformance!(
    commit_writes_placement_and_queues_missing_shards,
    repair_queue_dedupes_merges_and_backs_off,
    finish_keeps_reports_that_arrived_meanwhile,
    swap_moves_a_shard_in_one_batch,
    swap_after_overwrite_changes_nothing,
    gc_removes_only_the_placement_rows_of_deleted_shards,
    parts_are_owned_by_the_upload_until_complete,
    expired_uploads_are_found_by_age,
);

fn bucket(catalog: &Catalog) -> [u8; 16] {
    catalog.create_bucket("b", "o", "r", 1).unwrap().id
}

fn commit(catalog: &Catalog, bid: &[u8; 16], key: &str, n: u8, missing: Vec<u8>) -> u64 {
    let mut version = sharded_version(n, "e");
    if let metadata::DataLayout::Sharded(layout) = &mut version.parts[0].data {
        layout.missing = missing;
    }
    catalog
        .put_intent(
            group(n),
            &IntentRecord {
                owner: String::new(),
                created_ms: 1,
                layout: sharded(n, 1000),
            },
        )
        .unwrap();
    catalog
        .commit_version(
            bid,
            key,
            version,
            WriteCondition::None,
            &[group(n)],
            None,
            100,
            0,
        )
        .unwrap();
    catalog.get_object(bid, key).unwrap().unwrap().seq
}

fn placed_nodes(catalog: &Catalog, n: u8) -> Vec<(u32, u8)> {
    (0..10)
        .filter_map(|node| Some((node, catalog.placement(node, &group(n)).unwrap()?.index)))
        .collect()
}

fn commit_writes_placement_and_queues_missing_shards(catalog: &Catalog) {
    let bid = bucket(catalog);
    let seq = commit(catalog, &bid, "k", 1, vec![]);
    assert_eq!(
        placed_nodes(catalog, 1),
        vec![(0, 0), (1, 1), (2, 2), (3, 3), (4, 4), (5, 5)]
    );
    let row = catalog.placement(3, &group(1)).unwrap().unwrap();
    assert_eq!(
        row.owner,
        LayoutOwner::Version {
            bucket: bid,
            key: "k".into(),
            seq
        }
    );
    assert!(catalog.due_repairs(u64::MAX, 10).unwrap().is_empty());
    commit(catalog, &bid, "j", 2, vec![5]);
    // The missing shard has no placement row, and the group is queued, due at commit time.
    assert_eq!(placed_nodes(catalog, 2).len(), 5);
    assert!(catalog.placement(5, &group(2)).unwrap().is_none());
    assert!(catalog.due_repairs(99, 10).unwrap().is_empty());
    let due = catalog.due_repairs(100, 10).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].1.group, group(2));
    assert_eq!(due[0].1.shards, vec![5]);
    assert_eq!(due[0].1.reason, "missing at write");
    let nodes: Vec<u32> = (0..6).collect();
    let (owner, layout) = catalog
        .find_group_layout(&group(2), &nodes)
        .unwrap()
        .unwrap();
    assert!(matches!(owner, LayoutOwner::Version { .. }));
    assert_eq!(layout.missing, vec![5]);
    assert!(catalog
        .find_group_layout(&group(9), &nodes)
        .unwrap()
        .is_none());
}

fn repair_queue_dedupes_merges_and_backs_off(catalog: &Catalog) {
    assert!(catalog
        .queue_repair(group(1), "read failure", &[2], 500)
        .unwrap());
    assert!(!catalog
        .queue_repair(group(1), "scrub", &[4, 2], 900)
        .unwrap());
    assert_eq!(catalog.repair_queue_len(100).unwrap(), 1);
    let due = catalog.due_repairs(500, 10).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].1.shards, vec![2, 4]);
    assert_eq!(due[0].1.reason, "read failure");
    // An earlier report pulls the item forward.
    catalog
        .queue_repair(group(1), "node lost", &[], 200)
        .unwrap();
    let due = catalog.due_repairs(200, 10).unwrap();
    assert_eq!(due.len(), 1);
    let key = due[0].0.clone();
    // A failed attempt: later due time, one more attempt, reports kept.
    catalog
        .retry_repair(&key, &[], &[1], 200 + repair_backoff_ms(0))
        .unwrap();
    assert!(catalog
        .due_repairs(200 + repair_backoff_ms(0) - 1, 10)
        .unwrap()
        .is_empty());
    let due = catalog.due_repairs(200 + repair_backoff_ms(0), 10).unwrap();
    assert_eq!(due[0].1.attempts, 1);
    assert_eq!(due[0].1.shards, vec![1, 2, 4]);
    catalog.retry_repair(&key, &[], &[], 1).unwrap(); // the old key is gone: no-op
    assert_eq!(catalog.repair_queue_len(100).unwrap(), 1);
    assert!(repair_backoff_ms(1) > repair_backoff_ms(0));
    assert_eq!(repair_backoff_ms(40), repair_backoff_ms(60));
}

fn finish_keeps_reports_that_arrived_meanwhile(catalog: &Catalog) {
    catalog
        .queue_repair(group(1), "read failure", &[2], 10)
        .unwrap();
    let (key, item) = catalog.due_repairs(10, 10).unwrap().remove(0);
    // While the repair of shard 2 runs, scrub reports shard 3.
    catalog.queue_repair(group(1), "scrub", &[3], 50).unwrap();
    catalog.finish_repair(&key, &item.shards, 20).unwrap();
    let due = catalog.due_repairs(20, 10).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].1.shards, vec![3]);
    catalog.finish_repair(&due[0].0, &[3], 30).unwrap();
    assert_eq!(catalog.repair_queue_len(100).unwrap(), 0);
    // With the index row gone, the group can be queued again.
    assert!(catalog.queue_repair(group(1), "x", &[], 40).unwrap());
}

fn swap_moves_a_shard_in_one_batch(catalog: &Catalog) {
    let bid = bucket(catalog);
    let seq = commit(catalog, &bid, "k", 1, vec![5]);
    let (key, _) = catalog.due_repairs(u64::MAX, 10).unwrap().remove(0);
    let owner = LayoutOwner::Version {
        bucket: bid,
        key: "k".into(),
        seq,
    };
    let mut partial = sharded(1, 1000);
    partial.nodes = vec![NO_NODE, NO_NODE, NO_NODE, NO_NODE, NO_NODE, 7];
    catalog
        .put_intent(
            group(1),
            &IntentRecord {
                owner: String::new(),
                created_ms: 5,
                layout: partial,
            },
        )
        .unwrap();
    // Shard 5 moves from node 5 (down) to node 7; shard 2 is rewritten in place on node 2.
    let outcome = catalog
        .swap_repaired(
            &owner,
            group(1),
            &[(5, 7), (2, 2)],
            true,
            Some(&key),
            &[5, 2],
            1000,
            60,
        )
        .unwrap();
    let SwapOutcome::Swapped(layout) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(layout.nodes, vec![0, 1, 2, 3, 4, 7]);
    assert!(layout.missing.is_empty());
    let stored = catalog.get_object(&bid, "k").unwrap().unwrap();
    assert_eq!(stored.parts[0].data.sharded().unwrap(), &layout);
    assert_eq!(catalog.placement(7, &group(1)).unwrap().unwrap().index, 5);
    assert_eq!(catalog.repair_queue_len(10).unwrap(), 0);
    assert!(catalog
        .stale_intents(u64::MAX, &|_| false, 10)
        .unwrap()
        .is_empty());
    // The replaced shard on node 5 is collected after the delay, alone.
    assert!(catalog.due_gc(1059, 10).unwrap().is_empty());
    let gc = catalog.due_gc(1060, 10).unwrap();
    assert_eq!(gc.len(), 1);
    assert_eq!(
        gc[0].1.layout.nodes,
        vec![NO_NODE, NO_NODE, NO_NODE, NO_NODE, NO_NODE, 5]
    );
    // A swap whose repair intent was collected meanwhile publishes nothing.
    let err = catalog
        .swap_repaired(&owner, group(1), &[(1, 8)], true, None, &[], 1000, 60)
        .unwrap_err();
    assert!(matches!(err, metadata::MetaError::Db(_)), "{err:?}");
    assert!(catalog.placement(8, &group(1)).unwrap().is_none());
    // A target that holds another shard of the group (waiting for GC) is refused.
    let outcome = catalog
        .swap_repaired(&owner, group(1), &[(1, 7)], false, None, &[], 1000, 60)
        .unwrap();
    assert_eq!(outcome, SwapOutcome::Conflict);
}

fn swap_after_overwrite_changes_nothing(catalog: &Catalog) {
    let bid = bucket(catalog);
    let seq = commit(catalog, &bid, "k", 1, vec![5]);
    commit(catalog, &bid, "k", 2, vec![]);
    let owner = LayoutOwner::Version {
        bucket: bid,
        key: "k".into(),
        seq,
    };
    let outcome = catalog
        .swap_repaired(&owner, group(1), &[(5, 7)], false, None, &[], 1000, 0)
        .unwrap();
    assert_eq!(outcome, SwapOutcome::Gone);
    assert!(catalog.placement(7, &group(1)).unwrap().is_none());
    // The replaced group is still found through placement rows, but no layout holds it.
    let nodes: Vec<u32> = (0..8).collect();
    assert!(catalog
        .find_group_layout(&group(1), &nodes)
        .unwrap()
        .is_none());
}

fn gc_removes_only_the_placement_rows_of_deleted_shards(catalog: &Catalog) {
    let bid = bucket(catalog);
    commit(catalog, &bid, "k", 1, vec![]);
    catalog.delete_object(&bid, "k", 10, 0).unwrap();
    // Placement stays while the shards wait for GC (the orphan scan must not race GC).
    assert_eq!(placed_nodes(catalog, 1).len(), 6);
    let (key, item) = catalog.due_gc(10, 10).unwrap().remove(0);
    catalog.finish_gc(&key, &item).unwrap();
    assert!(placed_nodes(catalog, 1).is_empty());
    for node in 0..6 {
        assert!(!catalog.shard_referenced(node, &group(1)).unwrap());
    }
    catalog
        .put_intent(
            group(3),
            &IntentRecord {
                owner: String::new(),
                created_ms: 1,
                layout: sharded(3, 10),
            },
        )
        .unwrap();
    assert!(catalog.shard_referenced(4, &group(3)).unwrap());
}

fn parts_are_owned_by_the_upload_until_complete(catalog: &Catalog) {
    let bid = bucket(catalog);
    let upload = start_upload(catalog, &bid, "mp");
    let mut first = part(1, 1, "p1");
    if let metadata::DataLayout::Sharded(layout) = &mut first.data {
        layout.missing = vec![0];
    }
    catalog
        .put_intent(
            group(1),
            &IntentRecord {
                owner: String::new(),
                created_ms: 1,
                layout: sharded(1, 100),
            },
        )
        .unwrap();
    catalog.put_part(&upload, first, &[group(1)]).unwrap();
    catalog.put_part(&upload, part(1, 2, "retry"), &[]).unwrap();
    let row = catalog.placement(1, &group(1)).unwrap().unwrap();
    assert!(matches!(
        row.owner,
        LayoutOwner::Part { part_number: 1, .. }
    ));
    assert_eq!(
        catalog.due_repairs(u64::MAX, 10).unwrap()[0].1.shards,
        vec![0]
    );
    let parts = catalog.list_parts(&upload).unwrap();
    let chosen = parts.iter().find(|p| p.etag == "p1").unwrap().clone();
    let mut version = sharded_version(1, "mp");
    version.parts[0].data = chosen.data.clone();
    catalog
        .commit_version(
            &bid,
            "mp",
            version,
            WriteCondition::None,
            &[],
            Some(&upload),
            50,
            0,
        )
        .unwrap();
    // Complete does not rewrite the attempt's placement rows: they resolve through the
    // completed-upload record to the version, before and after the part rows are removed.
    let row = catalog.placement(1, &group(1)).unwrap().unwrap();
    assert!(matches!(row.owner, LayoutOwner::Part { .. }), "{row:?}");
    let resolved = |catalog: &Catalog| {
        let (owner, layout) = catalog
            .find_group_layout(&group(1), &[0, 1, 2])
            .unwrap()
            .unwrap();
        assert!(
            matches!(&owner, LayoutOwner::Version { key, .. } if key == "mp"),
            "{owner:?}"
        );
        assert_eq!(layout.missing, vec![0]);
        assert!(catalog.shard_is_live(1, &group(1), 1).unwrap());
        assert!(!catalog.shard_is_live(1, &group(2), 1).unwrap());
    };
    resolved(catalog);
    drain(catalog);
    resolved(catalog);
    // The superseded attempt goes to GC.
    assert_eq!(
        gc_groups(catalog, 50),
        vec![(group(2), "unused part".to_string())]
    );
    // A repair of the kept group swaps the version's layout (the resolved owner).
    let (owner, _) = catalog.find_group_layout(&group(1), &[1]).unwrap().unwrap();
    let swapped = catalog
        .swap_repaired(&owner, group(1), &[(0, 0)], false, None, &[], 60, 0)
        .unwrap();
    assert!(matches!(swapped, SwapOutcome::Swapped(ref l) if l.missing.is_empty()));
    let live = catalog.get_object(&bid, "mp").unwrap().unwrap();
    assert!(
        matches!(&live.parts[0].data, metadata::DataLayout::Sharded(l) if l.missing.is_empty())
    );
    // Replaced: the attempt's placement rows resolve to nothing any more.
    catalog
        .commit_version(
            &bid,
            "mp",
            inline_version("small", b"x"),
            WriteCondition::None,
            &[],
            None,
            70,
            0,
        )
        .unwrap();
    assert!(!catalog.shard_is_live(1, &group(1), 1).unwrap());
    assert!(catalog
        .find_group_layout(&group(1), &[0, 1, 2])
        .unwrap()
        .is_none());
}

fn expired_uploads_are_found_by_age(catalog: &Catalog) {
    let bid = bucket(catalog);
    let old = start_upload(catalog, &bid, "a"); // initiated_ms 10
    let (found, next) = catalog.expired_uploads(11, None, 10).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].upload_id, old.upload_id);
    assert!(next.is_none());
    assert!(catalog.expired_uploads(10, None, 10).unwrap().0.is_empty());
    start_upload(catalog, &bid, "b");
    let (page, next) = catalog.expired_uploads(11, None, 1).unwrap();
    assert_eq!(page.len(), 1);
    let (rest, _) = catalog.expired_uploads(11, next, 1).unwrap();
    assert_eq!(rest.len(), 1);
    assert_ne!(page[0].upload_id, rest[0].upload_id);
}
