//! The storage node's wire and on-disk formats as they stand on main: the shard file header
//! (`storage::format`) and the node's answers (`storage::node::wire`: frames, stat, listing,
//! health, scrub status).
//!
//! Input: a control byte, then the bytes every decoder reads. Control bit 0 makes the target
//! rewrite the header's two xxh3 checksums to match before decoding, so mutations reach the
//! fields behind them; bits 1-7 are the frame count a frames answer must hold.
//! Properties: no panic; a decoded header is valid, re-encodes to the bytes it was read from,
//! and its frame layout arithmetic does not overflow; frames decode to exactly the count asked.
//! Signed bodies (wire protocol 2, `storage::signed_body`): arbitrary bytes never open (nor
//! panic); the input sealed in pieces cut where the control byte says opens to exactly the
//! input, and one flipped byte anywhere in the sealed body makes it fail.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use storage::format::{self, ShardHeader, FIXED_HEADER_LEN};
use storage::node::wire;
use storage::signed_body::{open_body, ChunkSigner, Tag};
use xxhash_rust::xxh3::xxh3_64;

/// Offset of the fixed part's checksum (the fixed header without it).
const FIXED_CHECKSUM_AT: usize = FIXED_HEADER_LEN - 8;

/// Makes both header checksums right, where the input is long enough to hold them.
fn fix_checksums(bytes: &mut [u8]) {
    if bytes.len() < FIXED_HEADER_LEN + 4 {
        return;
    }
    let fixed = xxh3_64(&bytes[..FIXED_CHECKSUM_AT]).to_be_bytes();
    bytes[FIXED_CHECKSUM_AT..FIXED_HEADER_LEN].copy_from_slice(&fixed);
    let mut len = [0u8; 4];
    len.copy_from_slice(&bytes[FIXED_HEADER_LEN..FIXED_HEADER_LEN + 4]);
    let body_end = FIXED_HEADER_LEN + 4 + u32::from_be_bytes(len) as usize;
    if body_end + 8 <= bytes.len() {
        let reference = xxh3_64(&bytes[FIXED_HEADER_LEN..body_end]).to_be_bytes();
        bytes[body_end..body_end + 8].copy_from_slice(&reference);
    }
}

fn check_header(input: &[u8]) {
    let Ok((header, len)) = ShardHeader::decode(input) else {
        return;
    };
    assert!(header.validate().is_ok());
    assert_eq!(
        header.encode(),
        input[..len],
        "header does not re-encode as read"
    );
    let geometry = header
        .geometry()
        .expect("a decoded header has a valid geometry");
    let part = header.part_length;
    let count = geometry.stripe_count(part);
    let file = format::file_len(len as u64, &geometry, part);
    for stripe in [0, 1, count.saturating_sub(1), count, u64::MAX] {
        let offset = format::frame_offset(len as u64, &geometry, part, stripe);
        let frame = format::frame_len(&geometry, part, stripe);
        assert!(offset.saturating_add(frame) <= file || offset == file);
        let _ = format::check_next_frame(header.shard_id(), &geometry, part, stripe, 0);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let mut bytes = rest.to_vec();
    if control & 1 == 1 {
        fix_checksums(&mut bytes);
    }
    check_header(&bytes);
    let _ = format::verify_frame(&bytes);

    let expected = u64::from(control >> 1);
    if let Ok(frames) = wire::decode_frames(Bytes::from(bytes.clone()), expected) {
        assert_eq!(frames.len() as u64, expected);
    }
    // A stat answer for the shard its own header names, and for another one.
    if let Some(encoded) = bytes.get(12..) {
        if let Ok((header, _)) = ShardHeader::decode(encoded) {
            let _ = wire::decode_stat(&bytes, header.shard_id());
        }
    }
    let _ = wire::decode_stat(
        &bytes,
        storage::ShardId::new(storage::ShardGroupId([0; 16]), 0),
    );
    let _ = wire::decode_list(&bytes);
    let _ = wire::decode_health(&bytes);
    let _ = wire::decode_scrub_status(&bytes);
    check_signed_body(control, &bytes);
});

const SECRET: &[u8] = b"fuzz cluster secret";
const SEED: Tag = [7; 32];

fn check_signed_body(control: u8, input: &[u8]) {
    // Arbitrary bytes: a forged body (no MAC can match without the secret).
    assert!(
        open_body(SECRET, SEED, input).is_err(),
        "unsealed bytes opened"
    );
    // The input sealed in pieces of `step` bytes (16 to 4,096) opens to itself.
    let step = (usize::from(control) + 1) * 16;
    let mut signer = ChunkSigner::new(SECRET, SEED).expect("non-empty secret");
    let mut sealed = Vec::new();
    for piece in input.chunks(step) {
        for wire_piece in signer.seal_piece(&Bytes::copy_from_slice(piece)) {
            sealed.extend_from_slice(&wire_piece);
        }
    }
    sealed.extend_from_slice(&signer.finish());
    assert_eq!(
        open_body(SECRET, SEED, &sealed).expect("a sealed body opens"),
        input
    );
    // One flipped bit anywhere is refused.
    if !sealed.is_empty() {
        let at = usize::from(control) * 7919 % sealed.len();
        sealed[at] ^= 1 << (control % 8);
        assert!(
            open_body(SECRET, SEED, &sealed).is_err(),
            "a flipped bit at {at} opened"
        );
    }
}
