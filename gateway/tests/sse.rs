//! Encryption at rest through the engine, on real shard directories: SSE-S3 objects (sharded,
//! inline, multipart) read back whole and in ranges; nothing of the plaintext is in the shard
//! files or in the catalog record; master-key rotation: a new key becomes active, the old one
//! still unwraps, a rewrap moves every data key to the new key, and after removing the old key
//! everything still reads. SSE-C: the right key reads, a wrong or missing key does not.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::*;
use storage::ShardStore;
use strata_gateway::engine::cluster::{Cluster, NodeSpec};
use strata_gateway::engine::{
    ByteRange, CompletedPart, CreateUploadRequest, Engine, EngineError, HealingConfig,
    StorageClass, WriteCondition,
};
use strata_gateway::sse::keys::Keyring;
use strata_gateway::sse::{CustomerKey, SseError, SseKeys, SseRequest};

/// An engine over the harness's catalog and disks with the master keys `ids` (key `i` is
/// `[i + 1; 32]`, the last one active).
fn engine_with(h: &Harness, ids: &[(&str, u8)]) -> Arc<Engine> {
    let mut master = Keyring::default();
    for (id, byte) in ids {
        master.push(id, [*byte; 32]);
    }
    let specs = h
        .locals
        .iter()
        .enumerate()
        .map(|(i, local)| NodeSpec {
            id: i as u32,
            address: format!("disk{i}"),
            zone: None,
            weight: 1.0,
            store: Arc::new(local.clone()) as Arc<dyn ShardStore>,
        })
        .collect();
    Engine::new(
        h.catalog.clone(),
        Arc::new(Cluster::new(specs).unwrap()),
        engine_config(HealingConfig::default(), SseKeys { master, kms: None }),
    )
    .unwrap()
}

async fn put_encrypted(engine: &Arc<Engine>, key: &str, data: &[u8], sse: SseRequest) {
    let mut request = put_request(key, data.len());
    request.encryption = sse;
    engine
        .put_object(&bucket_b(engine).await, request, body_of(data))
        .await
        .unwrap();
}

/// True when any aligned 32-byte block of `needle` occurs anywhere in `haystack`.
fn leaks(haystack: &[u8], needle: &[u8]) -> bool {
    let blocks: std::collections::HashSet<&[u8]> =
        needle.chunks(32).filter(|w| w.len() == 32).collect();
    haystack.windows(32).any(|h| blocks.contains(h))
}

fn all_shard_bytes(h: &Harness) -> Vec<u8> {
    fn walk(p: &std::path::Path, out: &mut Vec<u8>) {
        for entry in std::fs::read_dir(p).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.extend_from_slice(&bytes);
            }
        }
    }
    let mut out = Vec::new();
    walk(h.dir.path(), &mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_s3_roundtrip_ranges_no_plaintext_and_rotation() {
    let h = harness_with(6, CatalogKind::Memory, false, HealingConfig::default());
    h.engine.create_bucket("b", "owner").await.unwrap();
    let old = engine_with(&h, &[("k1", 1)]);
    let big = pattern(300_000, 7);
    let small = pattern(1000, 9);
    put_encrypted(&old, "big", &big, SseRequest::S3).await;
    put_encrypted(&old, "small", &small, SseRequest::S3).await;
    put(&old, "plain", b"not encrypted").await;

    // Plaintext sizes and MD5 ETags, as AWS gives for SSE-S3.
    let head = old.head_object("b", "big").await.unwrap();
    assert_eq!(head.size(), big.len() as u64);
    assert_eq!(head.etag(), hex::encode(md5_of(&big)));
    assert!(head.encryption().is_some());
    assert!(old
        .head_object("b", "plain")
        .await
        .unwrap()
        .encryption()
        .is_none());
    assert_eq!(read_all(&old, "big").await.unwrap(), big);
    assert_eq!(read_all(&old, "small").await.unwrap(), small);
    for (a, b) in [
        (0, 1),
        (65_535, 65_537),
        (1000, 200_000),
        (299_990, 300_000),
    ] {
        let got = read_range(&old, "big", Some(ByteRange { start: a, end: b }))
            .await
            .unwrap();
        assert_eq!(got, &big[a as usize..b as usize], "range {a}..{b}");
    }
    let got = read_range(&old, "small", Some(ByteRange { start: 10, end: 20 }))
        .await
        .unwrap();
    assert_eq!(got, &small[10..20]);

    // Nothing of the plaintext on disk or in the inline record.
    assert!(!leaks(&all_shard_bytes(&h), &big));
    let record = record_of(&h, "small");
    let encoded = metadata::model::encode(&record).unwrap();
    assert!(record.encryption.is_some());
    assert!(!leaks(&encoded, &small));

    // Rotation: k2 becomes active; k1 still unwraps until the rewrap.
    let rotated = engine_with(&h, &[("k1", 1), ("k2", 2)]);
    assert_eq!(read_all(&rotated, "big").await.unwrap(), big);
    let report = rotated.rewrap_data_keys().await.unwrap();
    assert_eq!(report.active_key, "k2");
    assert_eq!(report.rewrapped, 2);
    assert_eq!(report.failed, 0);
    assert_eq!(rotated.rewrap_data_keys().await.unwrap().rewrapped, 0);
    assert_eq!(record_of(&h, "big").encryption.unwrap().key_id, "k2");
    // Without k1 everything still reads; with only k1 nothing does.
    let new_only = engine_with(&h, &[("k2", 2)]);
    assert_eq!(read_all(&new_only, "big").await.unwrap(), big);
    assert_eq!(read_all(&new_only, "small").await.unwrap(), small);
    let old_only = engine_with(&h, &[("k1", 1)]);
    assert!(matches!(
        read_all(&old_only, "big").await,
        Err(EngineError::Sse(SseError::UnknownMasterKey(_)))
    ));
}

fn md5_of(data: &[u8]) -> [u8; 16] {
    use md5::Digest;
    md5::Md5::digest(data).into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_c_and_multipart() {
    let h = harness_with(6, CatalogKind::Memory, false, HealingConfig::default());
    h.engine.create_bucket("b", "owner").await.unwrap();
    let engine = engine_with(&h, &[("k1", 1)]);
    let customer = CustomerKey {
        key: [42u8; 32],
        md5: "md5".into(),
    };
    let data = pattern(100_000, 3);
    put_encrypted(&engine, "c", &data, SseRequest::Customer(customer.clone())).await;
    let version = engine.head_object("b", "c").await.unwrap();
    assert_ne!(version.etag(), hex::encode(md5_of(&data)));
    let whole = ByteRange {
        start: 0,
        end: data.len() as u64,
    };
    assert!(matches!(
        engine.open_object(version.clone(), whole, None).await,
        Err(EngineError::Sse(SseError::CustomerKeyMissing))
    ));
    let wrong = CustomerKey {
        key: [43u8; 32],
        md5: "x".into(),
    };
    assert!(matches!(
        engine
            .open_object(version.clone(), whole, Some(&wrong))
            .await,
        Err(EngineError::Sse(SseError::CustomerKeyWrong))
    ));
    let mut body = engine
        .open_object(version, whole, Some(&customer))
        .await
        .unwrap()
        .body;
    let mut out = Vec::new();
    while let Some(chunk) = futures::StreamExt::next(&mut body).await {
        out.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(out, data);

    // Multipart SSE-S3: parts sealed with the upload's key, ranges across the part boundary.
    let bucket = bucket_b(&engine).await;
    let upload = engine
        .create_upload(
            &bucket,
            "mp",
            CreateUploadRequest {
                content_type: None,
                headers: vec![],
                user_metadata: vec![],
                storage_class: StorageClass::Standard,
                checksum_algorithm: None,
                checksum_type: None,
                encryption: SseRequest::S3,
                access: None,
            },
        )
        .await
        .unwrap();
    let p1 = pattern(5 * 1024 * 1024, 1);
    let p2 = pattern(70_000, 2);
    let mut parts = Vec::new();
    for (number, part) in [(1u32, &p1), (2, &p2)] {
        let info = engine
            .upload_part(
                &bucket,
                "mp",
                upload.upload_id(),
                number,
                part.len() as u64,
                None,
                None,
                None,
                body_of(part),
            )
            .await
            .unwrap();
        assert_eq!(info.etag, hex::encode(md5_of(part)));
        parts.push(CompletedPart {
            part_number: number,
            etag: info.etag,
        });
    }
    engine
        .complete_upload(
            &bucket,
            "mp",
            upload.upload_id(),
            parts,
            WriteCondition::None,
            None,
        )
        .await
        .unwrap();
    let mut all = p1.clone();
    all.extend_from_slice(&p2);
    assert_eq!(read_all(&engine, "mp").await.unwrap(), all);
    let (a, b) = (p1.len() as u64 - 10, p1.len() as u64 + 70_000);
    let got = read_range(&engine, "mp", Some(ByteRange { start: a, end: b }))
        .await
        .unwrap();
    assert_eq!(got, &all[a as usize..b as usize]);
    assert!(!leaks(&all_shard_bytes(&h), &p2));
}
