//! Engine integration tests: the real write and read pipelines over real local shard
//! directories (wrapped in fault injectors) and the catalog, without HTTP.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{
    body_of, bucket_b, harness_with, pattern, put_request, read_range, record_of, shard_files,
    CatalogKind, Harness, BLOCK,
};
use metadata::model::DataLayout;
use strata_gateway::engine::{
    ByteRange, CompletedPart, CreateUploadRequest, EngineError, StorageClass, WriteCondition,
};

/// Six disks (fsync on) over an in-memory catalog, default healing.
fn harness() -> Harness {
    harness_with(6, CatalogKind::Memory, true, Default::default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_round_trip_at_stripe_boundaries_and_ranges() {
    let h = harness();
    h.engine.create_bucket("b", "owner").await.unwrap();
    for (n, len) in [
        0,
        1,
        4096,
        4097,
        BLOCK - 1,
        BLOCK,
        BLOCK + 1,
        3 * BLOCK + 7,
        4 * BLOCK * 3,
    ]
    .into_iter()
    .enumerate()
    {
        let data = pattern(len, n as u8);
        let key = format!("obj-{len}");
        let out = h
            .engine
            .put_object(
                &bucket_b(&h.engine).await,
                put_request(&key, len),
                body_of(&data),
            )
            .await
            .unwrap();
        use md5::Digest;
        assert_eq!(out.etag(), hex::encode(md5::Md5::digest(&data)));
        assert_eq!(
            read_range(&h.engine, &key, None).await.unwrap(),
            data,
            "len {len}"
        );
        if len > 10 {
            for (s, e) in [
                (0, 1),
                (len as u64 / 3, len as u64 / 2 + 1),
                (len as u64 - 5, len as u64),
            ] {
                let got = read_range(&h.engine, &key, Some(ByteRange { start: s, end: e }))
                    .await
                    .unwrap();
                assert_eq!(
                    got,
                    &data[s as usize..e as usize],
                    "len {len} range {s}-{e}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_survive_m_failed_or_corrupt_stores() {
    let h = harness();
    h.engine.create_bucket("b", "owner").await.unwrap();
    let data = pattern(5 * BLOCK + 123, 9);
    h.engine
        .put_object(
            &bucket_b(&h.engine).await,
            put_request("k", data.len()),
            body_of(&data),
        )
        .await
        .unwrap();
    for (a, b) in [(0, 1), (2, 5), (4, 5), (1, 3)] {
        h.faults[a].set_fail(true);
        h.faults[b].set_corrupt_reads(true);
        assert_eq!(
            read_range(&h.engine, "k", None).await.unwrap(),
            data,
            "stores {a},{b} bad"
        );
        h.faults[a].clear();
        h.faults[b].clear();
    }
    // A hung data store (the shard timeout here is 2 s, the whole read gets 1.5 s): the read is
    // hedged with parity instead of waiting for it.
    let version = record_of(&h, "k");
    let first_data_node = match &version.parts[0].data {
        DataLayout::Sharded(layout) => layout.nodes[0] as usize,
        other => panic!("expected shards, got {other:?}"),
    };
    h.faults[first_data_node].set_hang(true);
    let hedged = tokio::time::timeout(
        Duration::from_millis(1500),
        read_range(&h.engine, "k", None),
    )
    .await;
    assert_eq!(
        hedged.expect("read waited for the hung store").unwrap(),
        data
    );
    h.faults[first_data_node].clear();
    // Three bad stores: the data cannot be rebuilt and the read fails instead of lying.
    for i in 0..3 {
        h.faults[i].set_fail(true);
    }
    assert!(read_range(&h.engine, "k", None).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_need_quorum_and_failed_writes_stay_invisible() {
    let h = harness();
    h.engine.create_bucket("b", "owner").await.unwrap();
    let data = pattern(2 * BLOCK + 5, 3);
    // One store down: quorum 5 of 6 still met, the shard is recorded missing.
    h.faults[0].set_fail(true);
    h.engine
        .put_object(
            &bucket_b(&h.engine).await,
            put_request("one-down", data.len()),
            body_of(&data),
        )
        .await
        .unwrap();
    match &record_of(&h, "one-down").parts[0].data {
        DataLayout::Sharded(layout) => assert_eq!(layout.missing.len(), 1),
        other => panic!("expected shards, got {other:?}"),
    }
    assert_eq!(read_range(&h.engine, "one-down", None).await.unwrap(), data);
    // Two down: below quorum → Unavailable and nothing visible.
    h.faults[1].set_fail(true);
    let err = h
        .engine
        .put_object(
            &bucket_b(&h.engine).await,
            put_request("two-down", data.len()),
            body_of(&data),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Unavailable { .. }), "{err}");
    assert!(matches!(
        h.engine.head_object("b", "two-down").await,
        Err(EngineError::NoSuchKey)
    ));
    h.faults[0].clear();
    h.faults[1].clear();
    // A hung store is cut off by the shard timeout; the write still reaches quorum.
    h.faults[2].set_hang(true);
    h.engine
        .put_object(
            &bucket_b(&h.engine).await,
            put_request("one-hung", data.len()),
            body_of(&data),
        )
        .await
        .unwrap();
    h.faults[2].clear();
    assert_eq!(read_range(&h.engine, "one-hung", None).await.unwrap(), data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_commit_nothing_and_gc_reclaims_everything() {
    let h = harness();
    h.engine.create_bucket("b", "owner").await.unwrap();
    let data = pattern(3 * BLOCK, 1);
    // Body that fails half way.
    let half: Vec<Result<Bytes, strata_gateway::engine::BodyError>> = vec![
        Ok(Bytes::copy_from_slice(&data[..BLOCK + 100])),
        Err("client went away".into()),
    ];
    let err = h
        .engine
        .put_object(
            &bucket_b(&h.engine).await,
            put_request("broken", data.len()),
            Box::pin(futures::stream::iter(half)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Body(_)), "{err}");
    // Short body.
    let err = h
        .engine
        .put_object(
            &bucket_b(&h.engine).await,
            put_request("short", data.len() + 1),
            body_of(&data),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::IncompleteBody(_)), "{err}");
    // Wrong Content-MD5.
    let mut request = put_request("md5", data.len());
    request.expected_md5 = Some([0u8; 16]);
    assert!(matches!(
        h.engine
            .put_object(&bucket_b(&h.engine).await, request, body_of(&data))
            .await,
        Err(EngineError::BadDigest)
    ));
    for key in ["broken", "short", "md5"] {
        assert!(matches!(
            h.engine.head_object("b", key).await,
            Err(EngineError::NoSuchKey)
        ));
    }
    // Overwrite then delete: after GC no shard file is left anywhere.
    h.engine
        .put_object(
            &bucket_b(&h.engine).await,
            put_request("k", data.len()),
            body_of(&data),
        )
        .await
        .unwrap();
    h.engine
        .put_object(
            &bucket_b(&h.engine).await,
            put_request("k", data.len()),
            body_of(&data),
        )
        .await
        .unwrap();
    assert_eq!(shard_files(h.dir.path()), 12);
    h.healer.gc_pass().await.unwrap();
    assert_eq!(shard_files(h.dir.path()), 6);
    h.engine
        .delete_object(&bucket_b(&h.engine).await, "k")
        .await
        .unwrap();
    h.healer.gc_pass().await.unwrap();
    assert_eq!(shard_files(h.dir.path()), 0);
    h.engine.delete_bucket("b").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_puts_race_with_exactly_one_winner() {
    let h = harness();
    h.engine.create_bucket("b", "owner").await.unwrap();
    let data = pattern(BLOCK * 2, 5);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let engine = h.engine.clone();
        let data = data.clone();
        tasks.push(tokio::spawn(async move {
            let mut request = put_request("race", data.len());
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
            Err(EngineError::PreconditionFailed) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(wins, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_upload_checks_parts_and_reads_back() {
    let h = harness();
    h.engine.create_bucket("b", "owner").await.unwrap();
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
    let upload = h
        .engine
        .create_upload(&bucket_b(&h.engine).await, "mp", new_upload())
        .await
        .unwrap();
    let p1 = pattern(5 * 1024 * 1024, 1);
    let p2 = pattern(1000, 2);
    let e1 = h
        .engine
        .upload_part(
            &bucket_b(&h.engine).await,
            "mp",
            upload.upload_id(),
            1,
            p1.len() as u64,
            None,
            None,
            None,
            body_of(&p1),
        )
        .await
        .unwrap()
        .etag;
    // A retry of part 2 with other bytes: the Complete names the second attempt.
    h.engine
        .upload_part(
            &bucket_b(&h.engine).await,
            "mp",
            upload.upload_id(),
            2,
            5,
            None,
            None,
            None,
            body_of(b"aaaaa"),
        )
        .await
        .unwrap();
    let e2 = h
        .engine
        .upload_part(
            &bucket_b(&h.engine).await,
            "mp",
            upload.upload_id(),
            2,
            p2.len() as u64,
            None,
            None,
            None,
            body_of(&p2),
        )
        .await
        .unwrap()
        .etag;
    let parts = h.engine.list_parts(&upload).await.unwrap();
    assert_eq!(parts.len(), 2);
    let order = vec![
        CompletedPart {
            part_number: 2,
            etag: e2.clone(),
        },
        CompletedPart {
            part_number: 1,
            etag: e1.clone(),
        },
    ];
    let err = h
        .engine
        .complete_upload(
            &bucket_b(&h.engine).await,
            "mp",
            upload.upload_id(),
            order,
            WriteCondition::None,
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::InvalidPartOrder));
    let wrong = vec![CompletedPart {
        part_number: 1,
        etag: "00".repeat(16),
    }];
    let err = h
        .engine
        .complete_upload(
            &bucket_b(&h.engine).await,
            "mp",
            upload.upload_id(),
            wrong,
            WriteCondition::None,
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::InvalidPart(_)));
    let good = vec![
        CompletedPart {
            part_number: 1,
            etag: e1,
        },
        CompletedPart {
            part_number: 2,
            etag: e2,
        },
    ];
    let out = h
        .engine
        .complete_upload(
            &bucket_b(&h.engine).await,
            "mp",
            upload.upload_id(),
            good,
            WriteCondition::None,
            None,
        )
        .await
        .unwrap();
    assert!(out.etag().ends_with("-2"));
    let mut expected = p1.clone();
    expected.extend_from_slice(&p2);
    assert_eq!(read_range(&h.engine, "mp", None).await.unwrap(), expected);
    let s = p1.len() as u64 - 10;
    let got = read_range(
        &h.engine,
        "mp",
        Some(ByteRange {
            start: s,
            end: s + 20,
        }),
    )
    .await
    .unwrap();
    assert_eq!(got, &expected[s as usize..s as usize + 20]);
    assert!(matches!(
        h.engine
            .get_upload(&bucket_b(&h.engine).await, "mp", upload.upload_id())
            .await,
        Err(EngineError::NoSuchUpload)
    ));
    // Small first part → EntityTooSmall.
    let upload = h
        .engine
        .create_upload(&bucket_b(&h.engine).await, "small", new_upload())
        .await
        .unwrap();
    let a = h
        .engine
        .upload_part(
            &bucket_b(&h.engine).await,
            "small",
            upload.upload_id(),
            1,
            5,
            None,
            None,
            None,
            body_of(b"12345"),
        )
        .await
        .unwrap()
        .etag;
    let b = h
        .engine
        .upload_part(
            &bucket_b(&h.engine).await,
            "small",
            upload.upload_id(),
            2,
            5,
            None,
            None,
            None,
            body_of(b"12345"),
        )
        .await
        .unwrap()
        .etag;
    let parts = vec![
        CompletedPart {
            part_number: 1,
            etag: a,
        },
        CompletedPart {
            part_number: 2,
            etag: b,
        },
    ];
    let err = h
        .engine
        .complete_upload(
            &bucket_b(&h.engine).await,
            "small",
            upload.upload_id(),
            parts,
            WriteCondition::None,
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::EntityTooSmall(1)));
}

#[test]
fn protocol_layer_never_touches_storage_or_metadata() {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            if entry.path().is_dir() {
                walk(&entry.path(), out);
            } else {
                out.push(entry.path());
            }
        }
    }
    let mut files = Vec::new();
    walk(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/s3"),
        &mut files,
    );
    assert!(files.len() > 5);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for forbidden in ["storage::", "metadata::", "rocksdb"] {
            assert!(
                !text.contains(forbidden),
                "{} mentions {forbidden}",
                file.display()
            );
        }
    }
}
