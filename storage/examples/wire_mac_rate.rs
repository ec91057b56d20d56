//! Micro-benchmark of wire protocol 2's body authentication (`storage::signed_body`): how fast
//! one core seals and verifies shard bytes, per chunk size. Not a test: it prints rates.
//!
//! `cargo run --release --locked -p strata-storage --example wire_mac_rate`

use std::time::Instant;

use bytes::Bytes;
use storage::signed_body::{ChunkDecoder, ChunkSigner, Decoded};

const TOTAL: usize = 512 << 20;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = b"a cluster secret of some length".to_vec();
    let seed = [3u8; 32];
    for chunk in [64 << 10, 256 << 10, 1 << 20] {
        let piece = Bytes::from(vec![0x5au8; chunk]);
        let rounds = TOTAL / chunk;

        let mut signer = ChunkSigner::new(&secret, seed)?;
        let started = Instant::now();
        let mut wire = Vec::new();
        for _ in 0..rounds {
            wire = signer.seal_piece(&piece);
        }
        let seal_secs = started.elapsed().as_secs_f64();

        // Verify the same number of chunks (each a valid chain step of its own decoder).
        let sealed_once: Vec<u8> = wire.concat();
        let mut fresh = ChunkSigner::new(&secret, seed)?;
        let first: Vec<u8> = fresh.seal_piece(&piece).concat();
        let started = Instant::now();
        for _ in 0..rounds {
            let mut decoder = ChunkDecoder::new(&secret, seed)?;
            match decoder.decode(&first)? {
                Decoded::Chunk { .. } => {}
                other => return Err(format!("unexpected {other:?}").into()),
            }
        }
        let open_secs = started.elapsed().as_secs_f64();
        let mib = (rounds * chunk) as f64 / f64::from(1 << 20);
        println!(
            "chunk {:>5} KiB: seal {:>6.0} MiB/s, verify {:>6.0} MiB/s ({} bytes of overhead per chunk)",
            chunk >> 10,
            mib / seal_secs,
            mib / open_secs,
            sealed_once.len() - chunk,
        );
    }
    Ok(())
}
