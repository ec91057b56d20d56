//! Erasure coding: stripe geometry and the systematic Reed-Solomon codec (GF(2^8)).
//!
//! A part of `part_len` bytes is cut into stripes of `block_size` bytes (the last one shorter);
//! each stripe is cut into k equal data shards of `ceil(stripe_len / k)` bytes (the last one
//! zero-padded) plus m parity shards of the same length. Shards 0..k are the data itself.
//!
//! Invariants: a `Geometry` is validated before any codec exists (k = 0 is an error, never a
//! panic), and every shard of one stripe has the same length. The codec is synchronous CPU work:
//! callers on the async runtime must run `encode_stripe`/`reconstruct_data` inside
//! `tokio::task::spawn_blocking` (or a dedicated pool) so the reactor never stalls.

use std::sync::Arc;

use reed_solomon_erasure::galois_8;

use crate::error::StorageError;

/// Largest supported stripe: bounds the memory of one stripe in flight.
pub const MAX_BLOCK_SIZE: usize = 64 * 1024 * 1024;
/// Largest k+m: shard indexes are a `u8` and GF(2^8) has 256 elements.
pub const MAX_TOTAL_SHARDS: usize = 255;

/// The shape of an erasure-coded part. Only constructible through [`Geometry::new`] checks
/// (fields are public for reading; build new ones with `new`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Geometry {
    pub data_shards: usize,
    pub parity_shards: usize,
    pub block_size: usize,
}

impl Geometry {
    /// Validates 1 <= k, k + m <= 255, k <= block_size <= 64 MiB.
    pub fn new(
        data_shards: usize,
        parity_shards: usize,
        block_size: usize,
    ) -> Result<Geometry, StorageError> {
        if data_shards == 0 {
            return Err(StorageError::InvalidArgument(
                "erasure geometry needs at least one data shard".into(),
            ));
        }
        match data_shards.checked_add(parity_shards) {
            Some(total) if total <= MAX_TOTAL_SHARDS => {}
            _ => {
                return Err(StorageError::InvalidArgument(format!(
                "erasure geometry {data_shards}+{parity_shards} exceeds {MAX_TOTAL_SHARDS} shards"
            )))
            }
        }
        if block_size < data_shards || block_size > MAX_BLOCK_SIZE {
            return Err(StorageError::InvalidArgument(format!(
                "block size {block_size} must be between k={data_shards} and {MAX_BLOCK_SIZE} bytes"
            )));
        }
        Ok(Geometry {
            data_shards,
            parity_shards,
            block_size,
        })
    }

    /// k + m.
    pub fn total_shards(&self) -> usize {
        self.data_shards + self.parity_shards
    }

    /// Shard length of a full stripe: ceil(block_size / k).
    pub fn shard_len_full(&self) -> usize {
        self.block_size.div_ceil(self.data_shards.max(1))
    }

    /// Number of stripes of a part (0 for an empty part).
    pub fn stripe_count(&self, part_len: u64) -> u64 {
        part_len.div_ceil(self.block_size.max(1) as u64)
    }

    /// Data bytes in `stripe`: `block_size` except for the last stripe; 0 past the end.
    pub fn stripe_data_len(&self, part_len: u64, stripe: u64) -> usize {
        let block = self.block_size as u64;
        let start = stripe.saturating_mul(block);
        if start >= part_len {
            return 0;
        }
        // Bounded by block_size (<= 64 MiB), so the cast is lossless.
        (part_len - start).min(block) as usize
    }

    /// Length of every shard of `stripe`: ceil(stripe_data_len / k). A short last stripe gets
    /// short shards.
    pub fn shard_len(&self, part_len: u64, stripe: u64) -> usize {
        self.stripe_data_len(part_len, stripe)
            .div_ceil(self.data_shards.max(1))
    }
}

/// Reed-Solomon codec for one geometry. Cheap to clone (the matrices are shared).
#[derive(Clone, Debug)]
pub struct ErasureCodec {
    geometry: Geometry,
    /// `None` when m = 0: no parity, nothing to encode or reconstruct.
    reed_solomon: Option<Arc<galois_8::ReedSolomon>>,
}

impl ErasureCodec {
    /// Builds the codec (re-validating the geometry, since its fields are public).
    pub fn new(geometry: Geometry) -> Result<ErasureCodec, StorageError> {
        let geometry = Geometry::new(
            geometry.data_shards,
            geometry.parity_shards,
            geometry.block_size,
        )?;
        let reed_solomon = if geometry.parity_shards == 0 {
            None
        } else {
            let codec = galois_8::ReedSolomon::new(geometry.data_shards, geometry.parity_shards)
                .map_err(|err| StorageError::InvalidArgument(format!("reed-solomon: {err:?}")))?;
            Some(Arc::new(codec))
        };
        Ok(ErasureCodec {
            geometry,
            reed_solomon,
        })
    }

    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// Encodes one stripe (`data.len() <= block_size`) into k+m shards of ceil(len/k) bytes each;
    /// shards 0..k hold the data (the last ones zero-padded), k..k+m the parity.
    /// CPU-bound: call from `spawn_blocking`.
    pub fn encode_stripe(&self, data: &[u8]) -> Result<Vec<Vec<u8>>, StorageError> {
        let geometry = &self.geometry;
        if data.len() > geometry.block_size {
            return Err(StorageError::InvalidArgument(format!(
                "stripe of {} bytes exceeds block size {}",
                data.len(),
                geometry.block_size
            )));
        }
        let shard_len = data.len().div_ceil(geometry.data_shards);
        let mut shards: Vec<Vec<u8>> = Vec::with_capacity(geometry.total_shards());
        let mut rest = data;
        for _ in 0..geometry.data_shards {
            let (head, tail) = rest.split_at(shard_len.min(rest.len()));
            let mut shard = Vec::with_capacity(shard_len);
            shard.extend_from_slice(head);
            shard.resize(shard_len, 0);
            shards.push(shard);
            rest = tail;
        }
        shards.resize(geometry.total_shards(), vec![0u8; shard_len]);
        if let (Some(reed_solomon), true) = (&self.reed_solomon, shard_len > 0) {
            reed_solomon
                .encode(&mut shards)
                .map_err(|err| StorageError::InvalidArgument(format!("reed-solomon: {err:?}")))?;
        }
        Ok(shards)
    }

    /// Fills in the missing data shards of one stripe. `shards` must have k+m entries, all
    /// present ones of equal length, and at least k present; otherwise
    /// `Unavailable` (too few) or `InvalidArgument` (shape). Parity shards are not rebuilt.
    /// CPU-bound: call from `spawn_blocking`.
    pub fn reconstruct_data(&self, shards: &mut [Option<Vec<u8>>]) -> Result<(), StorageError> {
        let geometry = &self.geometry;
        if shards.len() != geometry.total_shards() {
            return Err(StorageError::InvalidArgument(format!(
                "expected {} shards, got {}",
                geometry.total_shards(),
                shards.len()
            )));
        }
        let mut present_len = None;
        let mut present = 0usize;
        for shard in shards.iter().flatten() {
            present += 1;
            match present_len {
                None => present_len = Some(shard.len()),
                Some(len) if len != shard.len() => {
                    return Err(StorageError::InvalidArgument(
                        "shards of one stripe differ in length".into(),
                    ))
                }
                Some(_) => {}
            }
        }
        if present < geometry.data_shards {
            return Err(StorageError::Unavailable(format!(
                "only {present} of {} shards present, need {}",
                geometry.total_shards(),
                geometry.data_shards
            )));
        }
        let data_complete = shards
            .iter()
            .take(geometry.data_shards)
            .all(Option::is_some);
        if data_complete {
            return Ok(());
        }
        match (&self.reed_solomon, present_len) {
            (_, Some(0)) => {
                // An empty stripe: every missing shard is empty too.
                for shard in shards.iter_mut().take(geometry.data_shards) {
                    shard.get_or_insert_with(Vec::new);
                }
                Ok(())
            }
            (Some(reed_solomon), _) => reed_solomon
                .reconstruct_data(shards)
                .map_err(|err| StorageError::Corrupt(format!("reed-solomon: {err:?}"))),
            // m = 0 and a data shard missing: unreachable given the count above, but no panic.
            (None, _) => Err(StorageError::Unavailable(
                "a data shard is missing and there is no parity".into(),
            )),
        }
    }

    /// Concatenates data shards 0..k and drops the padding: returns the stripe's
    /// `stripe_data_len` bytes. Fails if a data shard is missing or the shards are too short.
    pub fn join_data(
        &self,
        shards: &[Option<Vec<u8>>],
        stripe_data_len: usize,
    ) -> Result<Vec<u8>, StorageError> {
        let mut data = Vec::with_capacity(stripe_data_len);
        for index in 0..self.geometry.data_shards {
            let shard = shards.get(index).and_then(Option::as_ref).ok_or_else(|| {
                StorageError::Unavailable(format!("data shard {index} missing; reconstruct first"))
            })?;
            let wanted = stripe_data_len.saturating_sub(data.len()).min(shard.len());
            data.extend_from_slice(shard.get(..wanted).unwrap_or_default());
        }
        if data.len() != stripe_data_len {
            return Err(StorageError::InvalidArgument(format!(
                "data shards hold {} bytes, stripe needs {stripe_data_len}",
                data.len()
            )));
        }
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::{Rng, RngCore, SeedableRng};

    #[test]
    fn geometry_validation() {
        assert!(Geometry::new(0, 2, 1024).is_err());
        assert!(Geometry::new(200, 56, 1024).is_err());
        assert!(Geometry::new(usize::MAX, 1, 1024).is_err());
        assert!(Geometry::new(4, 2, 0).is_err());
        assert!(Geometry::new(4, 2, 3).is_err());
        assert!(Geometry::new(4, 2, MAX_BLOCK_SIZE + 1).is_err());
        assert!(Geometry::new(200, 55, 1024).is_ok());
        assert!(Geometry::new(1, 0, 1).is_ok());
        assert!(ErasureCodec::new(Geometry::new(200, 55, 1024).unwrap()).is_ok());
        let forged = Geometry {
            data_shards: 0,
            parity_shards: 1,
            block_size: 8,
        };
        assert!(ErasureCodec::new(forged).is_err());
    }

    #[test]
    fn stripe_arithmetic() {
        let g = Geometry::new(4, 2, 1024).unwrap();
        assert_eq!(g.total_shards(), 6);
        assert_eq!(g.shard_len_full(), 256);
        assert_eq!(g.stripe_count(0), 0);
        assert_eq!(g.stripe_count(1), 1);
        assert_eq!(g.stripe_count(1024), 1);
        assert_eq!(g.stripe_count(1025), 2);
        assert_eq!(g.stripe_data_len(3000, 0), 1024);
        assert_eq!(g.stripe_data_len(3000, 2), 952);
        assert_eq!(g.stripe_data_len(3000, 3), 0);
        assert_eq!(g.shard_len(10, 0), 3);
        assert_eq!(g.shard_len(3000, 2), 238);
        assert_eq!(g.shard_len(u64::MAX, u64::MAX), 0);
        let odd = Geometry::new(3, 2, 1000).unwrap();
        assert_eq!(odd.shard_len_full(), 334);
    }

    fn round_trip(k: usize, m: usize, block_size: usize, rng: &mut impl RngCore) {
        let geometry = Geometry::new(k, m, block_size).unwrap();
        let codec = ErasureCodec::new(geometry).unwrap();
        let lengths = [0, 1, block_size - 1, block_size, 3 * block_size + 7];
        for part_len in lengths {
            let mut part = vec![0u8; part_len];
            rng.fill_bytes(&mut part);
            let mut rebuilt = Vec::new();
            for stripe in 0..geometry.stripe_count(part_len as u64) {
                let start = stripe as usize * block_size;
                let len = geometry.stripe_data_len(part_len as u64, stripe);
                let data = &part[start..start + len];
                let shards = codec.encode_stripe(data).unwrap();
                assert_eq!(shards.len(), k + m);
                let shard_len = geometry.shard_len(part_len as u64, stripe);
                assert!(shards.iter().all(|s| s.len() == shard_len));
                // Systematic: the data shards are the data.
                assert_eq!(&shards[..k].concat()[..len], data);
                // Lose every possible set of m shards (sampled when there are many).
                let mut losses: Vec<Vec<usize>> = Vec::new();
                for _ in 0..16 {
                    let mut lost: Vec<usize> = (0..k + m).collect();
                    for i in 0..lost.len() {
                        let j = rng.random_range(i..lost.len());
                        lost.swap(i, j);
                    }
                    lost.truncate(m);
                    losses.push(lost);
                }
                losses.push((0..m).collect()); // only data shards (when m <= k)
                losses.push((k..k + m).collect()); // only parity
                for lost in losses {
                    let mut received: Vec<Option<Vec<u8>>> =
                        shards.iter().cloned().map(Some).collect();
                    for &index in &lost {
                        received[index] = None;
                    }
                    codec.reconstruct_data(&mut received).unwrap();
                    assert_eq!(
                        codec.join_data(&received, len).unwrap(),
                        data,
                        "lost {lost:?}"
                    );
                }
                rebuilt.extend_from_slice(data);
            }
            assert_eq!(rebuilt, part);
        }
    }

    #[test]
    fn encode_reconstruct_round_trips() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        round_trip(4, 2, 1024, &mut rng);
        round_trip(1, 0, 64, &mut rng);
        round_trip(3, 2, 1000, &mut rng);
        round_trip(10, 4, 4096, &mut rng);
    }

    #[test]
    fn too_many_losses_is_unavailable_not_garbage() {
        let codec = ErasureCodec::new(Geometry::new(4, 2, 64).unwrap()).unwrap();
        let shards = codec.encode_stripe(&[5u8; 64]).unwrap();
        let mut received: Vec<Option<Vec<u8>>> = shards.into_iter().map(Some).collect();
        received[0] = None;
        received[2] = None;
        received[5] = None;
        assert!(matches!(
            codec.reconstruct_data(&mut received),
            Err(StorageError::Unavailable(_))
        ));
        assert!(codec.join_data(&received, 64).is_err());
        let mut wrong_count = vec![Some(vec![1u8; 16]); 5];
        assert!(codec.reconstruct_data(&mut wrong_count).is_err());
        let mut uneven = vec![Some(vec![1u8; 16]); 6];
        uneven[3] = Some(vec![1u8; 15]);
        assert!(codec.reconstruct_data(&mut uneven).is_err());
    }

    #[test]
    fn oversized_stripe_is_rejected() {
        let codec = ErasureCodec::new(Geometry::new(2, 1, 8).unwrap()).unwrap();
        assert!(codec.encode_stripe(&[0u8; 9]).is_err());
    }

    #[test]
    fn without_parity_a_missing_data_shard_is_unavailable() {
        let codec = ErasureCodec::new(Geometry::new(2, 0, 8).unwrap()).unwrap();
        let shards = codec.encode_stripe(b"abcdefg").unwrap();
        assert_eq!(shards, vec![b"abcd".to_vec(), b"efg\0".to_vec()]);
        let mut received = vec![Some(shards[0].clone()), None];
        assert!(codec.reconstruct_data(&mut received).is_err());
    }
}
