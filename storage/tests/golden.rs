//! Freezes shard file format v1: the encoder (and `LocalShardStore`'s writer) must produce
//! exactly `tests/golden/shard_v1.bin`, and the decoder must read it.
//! Regenerate only for a deliberate format change (with a new version number):
//! `STRATA_BLESS_GOLDEN=1 cargo test --release -p strata-storage --test golden`.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use storage::format::{self, CodecId, FrameChecksum};
use storage::{
    BackReference, ErasureCodec, Geometry, LocalShardStore, ShardGroupId, ShardHeader, ShardId,
    ShardStore,
};

const PART: &[u8] = b"STRATA01xyz"; // 11 bytes: a full 8-byte stripe and a 3-byte one
const INDEX: u8 = 2; // the parity shard, so the golden file also pins the Reed-Solomon math

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/shard_v1.bin")
}

fn golden_header() -> ShardHeader {
    let geometry = Geometry::new(2, 1, 8).unwrap();
    let group = ShardGroupId(core::array::from_fn(|i| i as u8));
    let reference = BackReference {
        bucket: "golden-bucket".into(),
        key: "dir/key \u{2603}".into(),
        version: "0000000000000001".into(),
        part_number: 2,
    };
    ShardHeader::new(
        &geometry,
        ShardId::new(group, INDEX),
        PART.len() as u64,
        reference,
    )
    .unwrap()
}

fn golden_frames() -> Vec<Vec<u8>> {
    let header = golden_header();
    let codec = ErasureCodec::new(header.geometry().unwrap()).unwrap();
    PART.chunks(8)
        .map(|stripe| codec.encode_stripe(stripe).unwrap()[INDEX as usize].clone())
        .collect()
}

fn encode_file() -> Vec<u8> {
    let mut file = golden_header().encode();
    for frame in golden_frames() {
        file.extend_from_slice(&format::frame_checksum(&frame).to_be_bytes());
        file.extend_from_slice(&frame);
    }
    file
}

#[test]
fn encoder_produces_the_golden_bytes() {
    let encoded = encode_file();
    if std::env::var_os("STRATA_BLESS_GOLDEN").is_some() {
        std::fs::write(golden_path(), &encoded).unwrap();
    }
    let golden = std::fs::read(golden_path()).unwrap();
    assert_eq!(
        &golden[..10],
        b"STRATASH\x00\x01",
        "magic and format version 1"
    );
    assert_eq!(encoded, golden, "shard format v1 changed");
}

#[test]
fn decoder_reads_the_golden_file() {
    let golden = std::fs::read(golden_path()).unwrap();
    let (header, header_len) = ShardHeader::decode(&golden).unwrap();
    assert_eq!(header, golden_header());
    assert_eq!(header.codec, CodecId::ReedSolomonGf8);
    assert_eq!(header.checksum, FrameChecksum::Xxh3_64);
    assert_eq!(header.back_reference.key, "dir/key \u{2603}");
    let geometry = header.geometry().unwrap();
    let part_len = header.part_length;
    assert_eq!(
        format::file_len(header_len as u64, &geometry, part_len),
        golden.len() as u64
    );
    for (stripe, expected) in golden_frames().iter().enumerate() {
        let start = format::frame_offset(header_len as u64, &geometry, part_len, stripe as u64);
        let len = format::frame_len(&geometry, part_len, stripe as u64);
        let frame = &golden[start as usize..(start + len) as usize];
        assert_eq!(format::verify_frame(frame), Some(expected.as_slice()));
    }
}

#[tokio::test]
async fn local_store_writes_and_reads_the_golden_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(LocalShardStore::open(dir.path().to_path_buf(), "g".into(), false).unwrap());
    let header = golden_header();
    let id = header.shard_id();
    let mut writer = store.create(id, header).await.unwrap();
    for frame in golden_frames() {
        writer.write_frame(Bytes::from(frame)).await.unwrap();
    }
    writer.commit().await.unwrap();
    let written = std::fs::read(store.shard_path(id)).unwrap();
    assert_eq!(written, std::fs::read(golden_path()).unwrap());

    // Reconstruct the part from the parity shard and data shard 0.
    let codec = ErasureCodec::new(Geometry::new(2, 1, 8).unwrap()).unwrap();
    let parity = store.read_frames(id, 0, 2).await.unwrap();
    let mut part = Vec::new();
    for (stripe, parity_frame) in parity.into_iter().enumerate() {
        let data = &PART[stripe * 8..PART.len().min(stripe * 8 + 8)];
        let shards = codec.encode_stripe(data).unwrap();
        let mut received = vec![
            Some(shards[0].clone()),
            None,
            parity_frame.map(|b| b.to_vec()),
        ];
        codec.reconstruct_data(&mut received).unwrap();
        part.extend(codec.join_data(&received, data.len()).unwrap());
    }
    assert_eq!(part, PART);
}
