//! Conformance suite of `Catalog`: buckets, objects, conditional writes, multipart uploads,
//! intents and GC, run on the in-memory and the RocksDB backends; plus RocksDB reopen tests.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Barrier};

use common::*;
use metadata::{Catalog, DataLayout, IntentRecord, MetaError, PartLayout, WriteCondition};

conformance!(
    bucket_lifecycle,
    objects_commit_overwrite_delete,
    metadata_only_overwrite_keeps_shared_group,
    conditional_writes,
    racing_if_none_match_has_one_winner,
    multipart_parts_retries_and_complete,
    multipart_abort_and_races_with_removal,
    intents_and_gc_queue,
    system_values_and_sequence,
    stored_header_changes_in_place,
    users_keys_policies_and_the_access_generation,
);

fn user(name: &str) -> metadata::model::UserRecord {
    metadata::model::UserRecord {
        name: name.to_string(),
        canonical_id: format!("c-{name}"),
        created_ms: 1,
        policies: Vec::new(),
        access_keys: Vec::new(),
    }
}

fn key(access: &str, user: &str) -> metadata::model::AccessKeyRecord {
    metadata::model::AccessKeyRecord {
        access_key: access.to_string(),
        user: user.to_string(),
        sealed_secret: vec![1, 2, 3],
        active: true,
        created_ms: 2,
    }
}

fn users_keys_policies_and_the_access_generation(catalog: &Catalog) {
    let g0 = catalog.identity_generation().unwrap();
    catalog.create_user(&user("alice")).unwrap();
    assert_eq!(
        catalog.create_user(&user("alice")),
        Err(MetaError::UserExists)
    );
    assert_eq!(
        catalog.create_access_key(&key("AK1", "nobody")),
        Err(MetaError::NoSuchUser)
    );
    catalog.create_access_key(&key("AK1", "alice")).unwrap();
    catalog.create_access_key(&key("AK2", "alice")).unwrap();
    assert_eq!(
        catalog.create_access_key(&key("AK1", "alice")),
        Err(MetaError::AccessKeyExists)
    );
    let g1 = catalog.identity_generation().unwrap();
    assert!(g1 > g0);
    assert_eq!(
        catalog.get_user("alice").unwrap().unwrap().access_keys,
        vec!["AK1".to_string(), "AK2".to_string()]
    );
    assert!(!catalog.set_access_key_active("AK1", false).unwrap().active);
    assert!(!catalog.get_access_key("AK1").unwrap().unwrap().active);
    assert!(catalog.identity_generation().unwrap() > g1);
    let builtin = |name: &str| name == "readonly";
    assert_eq!(
        catalog.set_user_policies("alice", &["mine".to_string()], &builtin),
        Err(MetaError::NoSuchPolicy)
    );
    catalog
        .put_policy(&metadata::model::PolicyRecord {
            name: "mine".to_string(),
            document: "{}".to_string(),
            created_ms: 3,
        })
        .unwrap();
    let names = ["mine".to_string(), "readonly".to_string()];
    catalog
        .set_user_policies("alice", &names, &builtin)
        .unwrap();
    assert!(matches!(
        catalog.delete_policy("mine"),
        Err(MetaError::PolicyInUse(_, _))
    ));
    catalog.create_bucket("owned", "c-alice", "r", 4).unwrap();
    let before = catalog.identity_generation().unwrap();
    let updated = catalog
        .update_bucket_access("owned", &|access| {
            access.policy = Some("{\"Statement\":[]}".to_string());
            Ok(())
        })
        .unwrap();
    assert!(updated.access.unwrap().policy.is_some());
    assert!(catalog.identity_generation().unwrap() > before);
    let snapshot = catalog.load_identity().unwrap();
    assert_eq!(snapshot.generation, catalog.identity_generation().unwrap());
    assert_eq!(snapshot.users.len(), 1);
    assert_eq!(snapshot.users[0].policies, names.to_vec());
    assert_eq!(snapshot.keys.len(), 2);
    assert_eq!(snapshot.policies.len(), 1);
    assert_eq!(snapshot.buckets.len(), 1);
    catalog.delete_access_key("AK2").unwrap();
    assert_eq!(
        catalog.delete_access_key("AK2"),
        Err(MetaError::NoSuchAccessKey)
    );
    assert_eq!(
        catalog.get_user("alice").unwrap().unwrap().access_keys,
        vec!["AK1".to_string()]
    );
    catalog.delete_user("alice").unwrap();
    assert_eq!(catalog.get_access_key("AK1").unwrap(), None);
    catalog.delete_policy("mine").unwrap();
    let empty = catalog.load_identity().unwrap();
    assert!(empty.users.is_empty() && empty.keys.is_empty() && empty.policies.is_empty());
}

fn bucket_lifecycle(catalog: &Catalog) {
    let b1 = catalog
        .create_bucket("b1", "alice", "us-east-1", 5)
        .unwrap();
    assert_eq!(
        (b1.name.as_str(), b1.owner.as_str(), b1.created_ms),
        ("b1", "alice", 5)
    );
    assert_eq!(
        catalog.create_bucket("b1", "bob", "us-east-1", 6),
        Err(MetaError::BucketExists)
    );
    catalog
        .create_bucket("a0", "alice", "eu-west-1", 7)
        .unwrap();
    assert_eq!(catalog.get_bucket("b1").unwrap(), Some(b1.clone()));
    assert_eq!(catalog.get_bucket("zz").unwrap(), None);
    let names: Vec<_> = catalog
        .list_buckets()
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names, vec!["a0", "b1"]);

    put(catalog, &b1.id, "obj");
    assert_eq!(catalog.delete_bucket("b1"), Err(MetaError::BucketNotEmpty));
    catalog.delete_object(&b1.id, "obj", 0, 0).unwrap();

    // An upload in progress does not keep the bucket alive: it is aborted with it.
    let upload = start_upload(catalog, &b1.id, "big");
    catalog.put_part(&upload, part(1, 40, "p1"), &[]).unwrap();
    catalog.delete_bucket("b1").unwrap();
    assert_eq!(catalog.get_bucket("b1").unwrap(), None);
    drain(catalog);
    assert_eq!(catalog.delete_bucket("b1"), Err(MetaError::NoSuchBucket));
    assert_eq!(
        catalog
            .get_upload(&b1.id, "big", &upload.upload_id)
            .unwrap(),
        None
    );
    assert!(catalog.list_parts(&upload).unwrap().is_empty());
    assert_eq!(
        gc_groups(catalog, u64::MAX),
        vec![(group(40), "bucket deleted".to_string())]
    );

    // The old id is dead: nothing can be written under it any more.
    let late = catalog.commit_version(
        &b1.id,
        "late",
        inline_version("e", b"x"),
        WriteCondition::None,
        &[],
        None,
        0,
        0,
    );
    assert_eq!(late, Err(MetaError::NoSuchBucket));
    let (useq, upload_id) = catalog.new_upload_id().unwrap();
    let mut rec = upload.clone();
    (rec.useq, rec.upload_id) = (useq, upload_id);
    assert_eq!(catalog.create_upload(rec), Err(MetaError::NoSuchBucket));

    let again = catalog
        .create_bucket("b1", "alice", "us-east-1", 8)
        .unwrap();
    assert_ne!(again.id, b1.id, "bucket ids are never reused");
    assert!(catalog.get_object(&again.id, "obj").unwrap().is_none());
}

fn objects_commit_overwrite_delete(catalog: &Catalog) {
    let bid = catalog.create_bucket("objs", "o", "r", 0).unwrap().id;
    let intent = IntentRecord {
        owner: String::new(),
        created_ms: 1,
        layout: sharded(1, 1000),
    };
    catalog.put_intent(group(1), &intent).unwrap();
    assert_eq!(
        catalog
            .stale_intents(u64::MAX, &|_| false, 10)
            .unwrap()
            .len(),
        1
    );

    let replaced = catalog
        .commit_version(
            &bid,
            "k",
            sharded_version(1, "e1"),
            WriteCondition::None,
            &[group(1)],
            None,
            100,
            50,
        )
        .unwrap();
    assert_eq!(replaced, None);
    assert!(
        catalog
            .stale_intents(u64::MAX, &|_| false, 10)
            .unwrap()
            .is_empty(),
        "intent removed by commit"
    );
    let v1 = catalog.get_object(&bid, "k").unwrap().unwrap();
    assert!(v1.seq > 0, "seq assigned");
    assert_eq!(v1.version_id.len(), 32);
    assert_eq!(v1.etag, "e1");
    assert!(gc_groups(catalog, u64::MAX).is_empty());

    let replaced = catalog
        .commit_version(
            &bid,
            "k",
            sharded_version(2, "e2"),
            WriteCondition::None,
            &[],
            None,
            1000,
            500,
        )
        .unwrap();
    assert_eq!(replaced, Some(v1.clone()));
    let v2 = catalog.get_object(&bid, "k").unwrap().unwrap();
    assert_eq!(v2.etag, "e2");
    assert!(v2.seq > v1.seq);
    assert!(
        gc_groups(catalog, 1499).is_empty(),
        "GC waits for the delay"
    );
    assert_eq!(
        gc_groups(catalog, 1500),
        vec![(group(1), "replaced".to_string())]
    );
    let listed = catalog.list_objects(
        &bid,
        &metadata::ListQuery {
            max_keys: 10,
            ..Default::default()
        },
    );
    let listed = listed.unwrap();
    assert_eq!(listed.entries.len(), 1);
    assert_eq!(listed.entries[0].1, v2.head());

    assert_eq!(catalog.delete_object(&bid, "k", 2000, 0).unwrap(), Some(v2));
    assert_eq!(catalog.get_object(&bid, "k").unwrap(), None);
    assert_eq!(
        catalog.delete_object(&bid, "k", 2000, 0).unwrap(),
        None,
        "idempotent"
    );
    let gc = gc_groups(catalog, 2000);
    assert!(gc.contains(&(group(2), "deleted".to_string())), "{gc:?}");
    assert_eq!(gc.len(), 2);

    // Inline data has nothing to collect.
    put(catalog, &bid, "small");
    put(catalog, &bid, "small");
    catalog.delete_object(&bid, "small", 3000, 0).unwrap();
    assert_eq!(gc_groups(catalog, u64::MAX).len(), 2);
    // A write whose intent was collected as stale (its shards queued for deletion) must not
    // commit: the version would point at deleted data.
    catalog
        .put_intent(
            group(9),
            &IntentRecord {
                owner: String::new(),
                created_ms: 1,
                layout: sharded(9, 1000),
            },
        )
        .unwrap();
    catalog.remove_intent_to_gc(group(9), 4000).unwrap();
    let late = catalog.commit_version(
        &bid,
        "late",
        sharded_version(9, "e9"),
        WriteCondition::None,
        &[group(9)],
        None,
        0,
        0,
    );
    assert!(matches!(late, Err(MetaError::Db(_))), "{late:?}");
    assert_eq!(catalog.get_object(&bid, "late").unwrap(), None);
    // And the bucket is empty again.
    catalog.delete_bucket("objs").unwrap();
}

fn metadata_only_overwrite_keeps_shared_group(catalog: &Catalog) {
    let bid = catalog.create_bucket("copy", "o", "r", 0).unwrap().id;
    catalog
        .commit_version(
            &bid,
            "k",
            sharded_version(3, "e"),
            WriteCondition::None,
            &[],
            None,
            0,
            0,
        )
        .unwrap();
    let mut same_data = sharded_version(3, "e");
    same_data.user_metadata = vec![("new".to_string(), "meta".to_string())];
    let old = catalog
        .commit_version(&bid, "k", same_data, WriteCondition::None, &[], None, 0, 0)
        .unwrap()
        .unwrap();
    assert_eq!(old.user_metadata, vec![("k".to_string(), "v".to_string())]);
    assert!(
        gc_groups(catalog, u64::MAX).is_empty(),
        "a group still referenced is never collected"
    );
    let now = catalog.get_object(&bid, "k").unwrap().unwrap();
    assert_eq!(now.user_metadata[0].0, "new");
}

fn conditional_writes(catalog: &Catalog) {
    let bid = catalog.create_bucket("cond", "o", "r", 0).unwrap().id;
    let commit = |etag: &str, cond: WriteCondition| {
        catalog.commit_version(&bid, "k", inline_version(etag, b"d"), cond, &[], None, 0, 0)
    };
    assert_eq!(
        commit("x", WriteCondition::IfMatch("x".to_string())),
        Err(MetaError::PreconditionFailed)
    );
    assert_eq!(
        commit("x", WriteCondition::IfMatch("*".to_string())),
        Err(MetaError::PreconditionFailed)
    );
    commit("e1", WriteCondition::IfNoneMatchAny).unwrap();
    assert_eq!(
        commit("e2", WriteCondition::IfNoneMatchAny),
        Err(MetaError::PreconditionFailed)
    );
    assert_eq!(
        catalog.get_object(&bid, "k").unwrap().unwrap().etag,
        "e1",
        "failed write changed nothing"
    );
    assert_eq!(
        commit("e2", WriteCondition::IfMatch("other".to_string())),
        Err(MetaError::PreconditionFailed)
    );
    commit("e2", WriteCondition::IfMatch("e1".to_string())).unwrap();
    commit("e3", WriteCondition::IfMatch("\"e2\"".to_string())).unwrap();
    commit("e4", WriteCondition::IfMatch("*".to_string())).unwrap();
    assert_eq!(catalog.get_object(&bid, "k").unwrap().unwrap().etag, "e4");

    // Conditional deletes (DeleteObject with If-Match) check in the delete's transaction.
    let delete = |cond: WriteCondition| catalog.delete_object_if(&bid, "k", &cond, 0, 0);
    assert_eq!(
        delete(WriteCondition::IfMatch("e3".to_string())),
        Err(MetaError::PreconditionFailed)
    );
    assert_eq!(
        catalog.get_object(&bid, "k").unwrap().unwrap().etag,
        "e4",
        "failed delete changed nothing"
    );
    let removed = delete(WriteCondition::IfMatch("\"e4\"".to_string())).unwrap();
    assert_eq!(removed.map(|v| v.etag).as_deref(), Some("e4"));
    assert_eq!(catalog.get_object(&bid, "k").unwrap(), None);
    assert_eq!(
        delete(WriteCondition::IfMatch("*".to_string())),
        Err(MetaError::PreconditionFailed),
        "If-Match on a missing key"
    );
    assert_eq!(
        delete(WriteCondition::None),
        Ok(None),
        "unconditional: idempotent"
    );
}

fn racing_if_none_match_has_one_winner(catalog: &Catalog) {
    let bid = catalog.create_bucket("race", "o", "r", 0).unwrap().id;
    for round in 0..10 {
        let key = format!("key-{round}");
        let barrier = Arc::new(Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|thread| {
                let (catalog, barrier, key) = (catalog.clone(), barrier.clone(), key.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let version = inline_version(&format!("t{thread}"), b"d");
                    catalog.commit_version(
                        &bid,
                        &key,
                        version,
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
        let winners = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(winners, 1, "{results:?}");
        assert!(results
            .iter()
            .all(|r| r.is_ok() || *r == Err(MetaError::PreconditionFailed)));
    }
}

fn multipart_parts_retries_and_complete(catalog: &Catalog) {
    let bid = catalog.create_bucket("mp", "o", "r", 0).unwrap().id;
    let upload = start_upload(catalog, &bid, "big");
    let other = start_upload(catalog, &bid, "big");
    assert_ne!(upload.upload_id, other.upload_id);
    assert!(other.useq > upload.useq);
    assert_eq!(
        catalog.get_upload(&bid, "big", &upload.upload_id).unwrap(),
        Some(upload.clone())
    );
    assert_eq!(
        catalog
            .get_upload(&bid, "other-key", &upload.upload_id)
            .unwrap(),
        None
    );
    assert_eq!(catalog.get_upload(&bid, "big", "not-an-id").unwrap(), None);
    let mut forged = upload.upload_id.clone();
    let replacement = if &forged[20..24] == "0000" {
        "1111"
    } else {
        "0000"
    };
    forged.replace_range(20..24, replacement);
    assert_eq!(
        catalog.get_upload(&bid, "big", &forged).unwrap(),
        None,
        "random part checked"
    );

    // Part 2 first, then part 1 twice (a retry): every attempt is kept.
    catalog
        .put_intent(
            group(12),
            &IntentRecord {
                owner: String::new(),
                created_ms: 0,
                layout: sharded(12, 100),
            },
        )
        .unwrap();
    catalog
        .put_part(&upload, part(2, 12, "p2"), &[group(12)])
        .unwrap();
    assert!(catalog
        .stale_intents(u64::MAX, &|_| false, 10)
        .unwrap()
        .is_empty());
    catalog.put_part(&upload, part(1, 10, "p1"), &[]).unwrap();
    catalog.put_part(&upload, part(1, 11, "p1"), &[]).unwrap();
    let parts = catalog.list_parts(&upload).unwrap();
    let order: Vec<_> = parts
        .iter()
        .map(|p| (p.part_number, p.data.sharded().unwrap().group))
        .collect();
    assert_eq!(order, vec![(1, group(10)), (1, group(11)), (2, group(12))]);
    assert!(parts[0].attempt > 0 && parts[0].attempt < parts[1].attempt);
    assert!(catalog.list_parts(&other).unwrap().is_empty());

    // Complete with the second attempt of part 1: the first goes to GC.
    let layouts: Vec<PartLayout> = [&parts[1], &parts[2]]
        .iter()
        .map(|p| PartLayout {
            part_number: p.part_number,
            size: p.size,
            etag: p.etag.clone(),
            checksum: None,
            data: p.data.clone(),
        })
        .collect();
    let mut version = inline_version("multi-2", b"");
    version.parts = layouts;
    catalog
        .commit_version(
            &bid,
            "big",
            version.clone(),
            WriteCondition::None,
            &[],
            Some(&upload),
            50,
            10,
        )
        .unwrap();
    // The unused attempt is collected by the upload's cleanup job.
    assert!(gc_groups(catalog, 60).is_empty());
    assert_eq!(catalog.cleanup_jobs(10).unwrap(), 1);
    drain(catalog);
    assert_eq!(
        gc_groups(catalog, 60),
        vec![(group(10), "unused part".to_string())]
    );
    assert_eq!(
        catalog.get_upload(&bid, "big", &upload.upload_id).unwrap(),
        None
    );
    assert!(catalog.list_parts(&upload).unwrap().is_empty());
    let stored = catalog.get_object(&bid, "big").unwrap().unwrap();
    assert_eq!(stored.parts.len(), 2);
    assert!(matches!(&stored.parts[1].data, DataLayout::Sharded(l) if l.group == group(12)));

    // The upload is gone: retries of complete and late parts fail, the object is untouched.
    let retry = catalog.commit_version(
        &bid,
        "big",
        version,
        WriteCondition::None,
        &[],
        Some(&upload),
        70,
        0,
    );
    assert_eq!(retry, Err(MetaError::NoSuchUpload));
    assert_eq!(
        catalog.put_part(&upload, part(3, 13, "p3"), &[]),
        Err(MetaError::NoSuchUpload)
    );
    assert_eq!(
        catalog.get_object(&bid, "big").unwrap().unwrap().seq,
        stored.seq
    );
    // The other upload of the same key is unaffected.
    assert!(catalog
        .get_upload(&bid, "big", &other.upload_id)
        .unwrap()
        .is_some());

    // The completed upload is remembered while its version is the live one (a retried
    // CompleteMultipartUpload answers with it); never for another upload id.
    assert_eq!(
        catalog
            .completed_upload(&bid, "big", &upload.upload_id)
            .unwrap(),
        Some(stored.clone())
    );
    assert_eq!(
        catalog
            .completed_upload(&bid, "big", &other.upload_id)
            .unwrap(),
        None
    );
    // Replaced: forgotten.
    put(catalog, &bid, "big");
    assert_eq!(
        catalog
            .completed_upload(&bid, "big", &upload.upload_id)
            .unwrap(),
        None
    );
    // Completed again (the other upload), then deleted: forgotten too.
    catalog
        .commit_version(
            &bid,
            "big",
            inline_version("multi-1", b"x"),
            WriteCondition::None,
            &[],
            Some(&other),
            80,
            0,
        )
        .unwrap();
    assert!(catalog
        .completed_upload(&bid, "big", &other.upload_id)
        .unwrap()
        .is_some());
    catalog.delete_object(&bid, "big", 90, 0).unwrap();
    assert_eq!(
        catalog
            .completed_upload(&bid, "big", &other.upload_id)
            .unwrap(),
        None
    );
}

fn multipart_abort_and_races_with_removal(catalog: &Catalog) {
    let bid = catalog.create_bucket("abort", "o", "r", 0).unwrap().id;
    let upload = start_upload(catalog, &bid, "k");
    catalog.put_part(&upload, part(1, 20, "a"), &[]).unwrap();
    catalog.put_part(&upload, part(2, 21, "b"), &[]).unwrap();
    let mut inline_part = part(3, 0, "c");
    inline_part.data = DataLayout::Inline(vec![1, 2]);
    catalog.put_part(&upload, inline_part, &[]).unwrap();
    catalog.abort_upload(&upload, 100, 5).unwrap();
    drain(catalog);
    let mut gc = gc_groups(catalog, 105);
    gc.sort();
    assert_eq!(
        gc,
        vec![
            (group(20), "aborted".to_string()),
            (group(21), "aborted".to_string())
        ]
    );
    assert_eq!(
        catalog.abort_upload(&upload, 100, 5),
        Err(MetaError::NoSuchUpload)
    );
    assert!(catalog.list_parts(&upload).unwrap().is_empty());

    // Parts racing an abort: each put either lands before the abort (then it is collected) or
    // fails with NoSuchUpload; nothing is left behind.
    let upload = start_upload(catalog, &bid, "k2");
    let writer = {
        let (catalog, upload) = (catalog.clone(), upload.clone());
        std::thread::spawn(move || {
            (0..200u32)
                .map(|n| catalog.put_part(&upload, part(n + 1, 100, "x"), &[]))
                .filter(|r| r.is_ok())
                .count()
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(2));
    catalog.abort_upload(&upload, 0, 0).unwrap();
    let landed = writer.join().unwrap();
    drain(catalog);
    assert!(catalog.list_parts(&upload).unwrap().is_empty());
    let collected = gc_groups(catalog, 0).len();
    // Every landed part was queued (all share group 100, so they collapse into one GC row).
    assert_eq!(collected, usize::from(landed > 0));
}

fn intents_and_gc_queue(catalog: &Catalog) {
    for (n, created) in [(1u8, 100u64), (2, 200), (3, 300)] {
        catalog
            .put_intent(
                group(n),
                &IntentRecord {
                    owner: String::new(),
                    created_ms: created,
                    layout: sharded(n, 1),
                },
            )
            .unwrap();
    }
    let stale: Vec<_> = catalog
        .stale_intents(250, &|_| false, 10)
        .unwrap()
        .into_iter()
        .map(|(g, _)| g)
        .collect();
    assert_eq!(stale, vec![group(1), group(2)]);
    assert_eq!(catalog.stale_intents(250, &|_| false, 1).unwrap().len(), 1);
    assert!(
        catalog
            .stale_intents(100, &|_| false, 10)
            .unwrap()
            .is_empty(),
        "cut-off is exclusive"
    );

    catalog.remove_intent_to_gc(group(1), 500).unwrap();
    catalog.remove_intent_to_gc(group(1), 500).unwrap(); // idempotent
    assert_eq!(
        catalog
            .stale_intents(u64::MAX, &|_| false, 10)
            .unwrap()
            .len(),
        2
    );
    assert!(catalog.due_gc(499, 10).unwrap().is_empty());
    let due = catalog.due_gc(500, 10).unwrap();
    assert_eq!(due.len(), 1);
    let (key, item) = due[0].clone();
    assert_eq!(
        (item.layout.group, item.reason.as_str()),
        (group(1), "failed write")
    );

    catalog.retry_gc(&key, &item, 900).unwrap();
    assert!(
        catalog.due_gc(899, 10).unwrap().is_empty(),
        "moved, not copied"
    );
    let due = catalog.due_gc(900, 10).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].1, item);

    catalog.remove_intent_to_gc(group(2), 10).unwrap();
    let order: Vec<_> = catalog
        .due_gc(u64::MAX, 10)
        .unwrap()
        .into_iter()
        .map(|(_, i)| i.layout.group)
        .collect();
    assert_eq!(order, vec![group(2), group(1)], "oldest due first");
    assert_eq!(catalog.due_gc(u64::MAX, 1).unwrap().len(), 1);
    catalog.finish_gc(&due[0].0, &due[0].1).unwrap();
    catalog.finish_gc(&due[0].0, &due[0].1).unwrap(); // idempotent
    assert_eq!(
        gc_groups(catalog, u64::MAX),
        vec![(group(2), "failed write".to_string())]
    );
}

fn system_values_and_sequence(catalog: &Catalog) {
    assert_eq!(catalog.get_system("access-keys").unwrap(), None);
    catalog.put_system("access-keys", b"secret").unwrap();
    assert_eq!(
        catalog.get_system("access-keys").unwrap(),
        Some(b"secret".to_vec())
    );
    let seqs: Vec<u64> = (0..2500).map(|_| catalog.next_seq().unwrap()).collect();
    assert!(seqs[0] > 0);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    // Concurrent callers never get the same number.
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let catalog = catalog.clone();
            std::thread::spawn(move || {
                (0..500)
                    .map(|_| catalog.next_seq().unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 2000);
    assert!(all[0] > seqs[2499]);
}

#[test]
fn rocks_data_and_sequence_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (bid, upload, last_seq, version) = {
        let catalog = Catalog::open_rocks(dir.path(), true).unwrap();
        let bid = catalog.create_bucket("keep", "o", "r", 0).unwrap().id;
        catalog
            .commit_version(
                &bid,
                "a/b",
                sharded_version(7, "e"),
                WriteCondition::None,
                &[],
                None,
                0,
                0,
            )
            .unwrap();
        let upload = start_upload(&catalog, &bid, "mp");
        catalog.put_part(&upload, part(1, 8, "p"), &[]).unwrap();
        catalog.put_system("keys", b"k").unwrap();
        let last_seq = (0..1500).fold(0, |_, _| catalog.next_seq().unwrap());
        (
            bid,
            upload,
            last_seq,
            catalog.get_object(&bid, "a/b").unwrap().unwrap(),
        )
    };
    for _reopen in 0..2 {
        let catalog = Catalog::open_rocks(dir.path(), true).unwrap();
        assert_eq!(catalog.get_bucket("keep").unwrap().unwrap().id, bid);
        assert_eq!(
            catalog.get_object(&bid, "a/b").unwrap(),
            Some(version.clone())
        );
        assert_eq!(
            catalog.get_upload(&bid, "mp", &upload.upload_id).unwrap(),
            Some(upload.clone())
        );
        assert_eq!(catalog.list_parts(&upload).unwrap().len(), 1);
        assert_eq!(catalog.get_system("keys").unwrap(), Some(b"k".to_vec()));
        let next = catalog.next_seq().unwrap();
        assert!(next > last_seq, "{next} <= {last_seq}");
        let (useq, _) = catalog.new_upload_id().unwrap();
        assert!(useq > next);
    }
}

#[test]
fn new_over_an_existing_store_resumes_the_sequence() {
    let kv: Arc<dyn metadata::KvStore> = Arc::new(metadata::MemKvStore::new());
    let first = Catalog::new(kv.clone()).unwrap();
    let last = (0..10).fold(0, |_, _| first.next_seq().unwrap());
    let second = Catalog::new(kv).unwrap();
    assert!(second.next_seq().unwrap() > last);
}

fn stored_header_changes_in_place(catalog: &Catalog) {
    let bid = catalog
        .create_bucket("hdr", "alice", "us-east-1", 1)
        .unwrap()
        .id;
    assert_eq!(
        catalog
            .set_version_header(&bid, "missing", "x-tags", Some("a=1".into()))
            .unwrap(),
        None
    );
    put(catalog, &bid, "k");
    let before = catalog.get_object(&bid, "k").unwrap().unwrap();
    let after = catalog
        .set_version_header(&bid, "k", "x-tags", Some("a=1".into()))
        .unwrap()
        .unwrap();
    let again = catalog
        .set_version_header(&bid, "k", "x-tags", Some("b=2".into()))
        .unwrap()
        .unwrap();
    let read = catalog.get_object(&bid, "k").unwrap().unwrap();
    assert_eq!(read, again);
    assert_eq!(
        (read.seq, &read.etag, read.mtime_ms),
        (before.seq, &before.etag, before.mtime_ms),
        "same version, not a new one"
    );
    let tags: Vec<_> = read.headers.iter().filter(|(n, _)| n == "x-tags").collect();
    assert_eq!(tags, vec![&("x-tags".to_string(), "b=2".to_string())]);
    assert_ne!(after, again);
    let cleared = catalog
        .set_version_header(&bid, "k", "x-tags", None)
        .unwrap()
        .unwrap();
    assert!(cleared.headers.iter().all(|(n, _)| n != "x-tags"));
    assert_eq!(catalog.get_object(&bid, "k").unwrap().unwrap(), cleared);
    catalog.delete_object(&bid, "k", 0, 0).unwrap();
    catalog.delete_bucket("hdr").unwrap();
    assert_eq!(
        catalog.set_version_header(&bid, "k", "x-tags", None),
        Err(MetaError::NoSuchBucket)
    );
}
