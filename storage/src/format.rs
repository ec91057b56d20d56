//! The on-disk shard file format, version 1 (DESIGN §4). Frozen by `tests/golden.rs`.
//!
//! ```text
//! fixed header (51 bytes, integers big-endian)
//!   magic "STRATASH" (8) | format version u16 = 1 | codec u8 | k u8 | m u8 | index u8
//!   | block size u32 | part length u64 | group id (16) | frame checksum algorithm u8
//!   | xxh3-64 of all the bytes above (u64)
//! back-reference
//!   body length u32 | bucket len u8, bytes | key len u16, bytes | version len u8, bytes
//!   | part number u32 | xxh3-64 of the length prefix and the body (u64)
//! frames, one per stripe, in stripe order
//!   xxh3-64 of the shard bytes (u64) | shard bytes (Geometry::shard_len of that stripe)
//! ```
//!
//! Invariants: `decode` never panics and never trusts a length before checking it against the
//! input and the bounds below; a header that decodes is geometrically valid (the codec can be
//! built from it). Frame offsets depend only on the header, so a range read seeks directly.

use std::fs::File;
use std::io::Read;

use xxhash_rust::xxh3::xxh3_64;

use crate::codec::Geometry;
use crate::error::StorageError;
use crate::id::{ShardGroupId, ShardId};

pub const MAGIC: &[u8; 8] = b"STRATASH";
pub const FORMAT_VERSION: u16 = 1;
/// Length of the fixed header, checksum included.
pub const FIXED_HEADER_LEN: usize = 51;
/// Bytes of checksum in front of every frame.
pub const FRAME_CHECKSUM_LEN: u64 = 8;
pub const MAX_BUCKET_LEN: usize = 63;
pub const MAX_KEY_LEN: usize = 1024;
pub const MAX_VERSION_LEN: usize = 128;
/// Largest possible back-reference body.
const MAX_BACK_REFERENCE_BODY: usize =
    1 + MAX_BUCKET_LEN + 2 + MAX_KEY_LEN + 1 + MAX_VERSION_LEN + 4;
/// Largest possible encoded header: read this many bytes to be sure to hold any header.
pub const MAX_HEADER_LEN: usize = FIXED_HEADER_LEN + 4 + MAX_BACK_REFERENCE_BODY + 8;

/// Erasure code of the shard group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CodecId {
    /// Systematic Reed-Solomon over GF(2^8) (`reed-solomon-erasure`'s galois_8).
    ReedSolomonGf8 = 1,
}

/// Checksum of each frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameChecksum {
    Xxh3_64 = 1,
}

/// Which object part this shard belongs to, so metadata can be rebuilt from the shards alone.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BackReference {
    pub bucket: String,
    pub key: String,
    pub version: String,
    pub part_number: u32,
}

impl BackReference {
    /// Checks the length bounds (bucket <= 63, key <= 1024, version <= 128 bytes).
    pub fn validate(&self) -> Result<(), StorageError> {
        for (what, value, max) in [
            ("bucket", &self.bucket, MAX_BUCKET_LEN),
            ("key", &self.key, MAX_KEY_LEN),
            ("version", &self.version, MAX_VERSION_LEN),
        ] {
            if value.len() > max {
                return Err(StorageError::InvalidArgument(format!(
                    "back-reference {what} is {} bytes, limit {max}",
                    value.len()
                )));
            }
        }
        Ok(())
    }
}

/// Everything before the first frame of a shard file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardHeader {
    pub codec: CodecId,
    pub data_shards: u8,
    pub parity_shards: u8,
    pub index: u8,
    pub block_size: u32,
    pub part_length: u64,
    pub group: ShardGroupId,
    pub checksum: FrameChecksum,
    pub back_reference: BackReference,
}

impl ShardHeader {
    /// The header of shard `id` of a part of `part_length` bytes coded with `geometry`.
    pub fn new(
        geometry: &Geometry,
        id: ShardId,
        part_length: u64,
        back_reference: BackReference,
    ) -> Result<ShardHeader, StorageError> {
        let narrow = |what: &str, value: usize| {
            StorageError::InvalidArgument(format!("{what} {value} does not fit the shard header"))
        };
        let header = ShardHeader {
            codec: CodecId::ReedSolomonGf8,
            data_shards: u8::try_from(geometry.data_shards)
                .map_err(|_| narrow("k", geometry.data_shards))?,
            parity_shards: u8::try_from(geometry.parity_shards)
                .map_err(|_| narrow("m", geometry.parity_shards))?,
            index: id.index,
            block_size: u32::try_from(geometry.block_size)
                .map_err(|_| narrow("block size", geometry.block_size))?,
            part_length,
            group: id.group,
            checksum: FrameChecksum::Xxh3_64,
            back_reference,
        };
        header.validate()?;
        Ok(header)
    }

    pub fn shard_id(&self) -> ShardId {
        ShardId::new(self.group, self.index)
    }

    /// The validated geometry (fails if k, m or block size are out of range).
    pub fn geometry(&self) -> Result<Geometry, StorageError> {
        Geometry::new(
            usize::from(self.data_shards),
            usize::from(self.parity_shards),
            self.block_size as usize,
        )
    }

    /// Number of frames the file holds.
    pub fn stripe_count(&self) -> Result<u64, StorageError> {
        Ok(self.geometry()?.stripe_count(self.part_length))
    }

    /// Geometry valid, index < k+m, back-reference within bounds.
    pub fn validate(&self) -> Result<(), StorageError> {
        let geometry = self.geometry()?;
        if usize::from(self.index) >= geometry.total_shards() {
            return Err(StorageError::InvalidArgument(format!(
                "shard index {} out of range for {}+{}",
                self.index, self.data_shards, self.parity_shards
            )));
        }
        self.back_reference.validate()
    }

    /// What every `ShardStore::create` checks first: the header describes shard `id` and is
    /// valid. Returns its geometry.
    pub fn check_for(&self, id: ShardId) -> Result<Geometry, StorageError> {
        if self.shard_id() != id {
            return Err(StorageError::InvalidArgument(format!(
                "header describes shard {}, not {id}",
                self.shard_id()
            )));
        }
        self.validate()?;
        self.geometry()
    }

    /// Serialises the header. Call [`ShardHeader::validate`] first: an out-of-bounds
    /// back-reference is encoded in a form that `decode` rejects (never a panic).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FIXED_HEADER_LEN + 64);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        out.push(self.codec as u8);
        out.push(self.data_shards);
        out.push(self.parity_shards);
        out.push(self.index);
        out.extend_from_slice(&self.block_size.to_be_bytes());
        out.extend_from_slice(&self.part_length.to_be_bytes());
        out.extend_from_slice(self.group.as_bytes());
        out.push(self.checksum as u8);
        let fixed_checksum = xxh3_64(&out);
        out.extend_from_slice(&fixed_checksum.to_be_bytes());

        let reference = &self.back_reference;
        let mut body = Vec::with_capacity(MAX_BACK_REFERENCE_BODY);
        put_string_u8(&mut body, &reference.bucket);
        let key = reference.key.as_bytes();
        let key_len = u16::try_from(key.len()).unwrap_or(u16::MAX);
        body.extend_from_slice(&key_len.to_be_bytes());
        body.extend_from_slice(key.get(..usize::from(key_len)).unwrap_or(key));
        put_string_u8(&mut body, &reference.version);
        body.extend_from_slice(&reference.part_number.to_be_bytes());
        let reference_start = out.len();
        let body_len = u32::try_from(body.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&body_len.to_be_bytes());
        out.extend_from_slice(&body);
        let reference_checksum = xxh3_64(out.get(reference_start..).unwrap_or_default());
        out.extend_from_slice(&reference_checksum.to_be_bytes());
        out
    }

    /// Parses and verifies a header from the start of `input`; returns it and the number of
    /// bytes it occupies (the offset of the first frame). Truncated or damaged input is
    /// `Corrupt`, never a panic.
    pub fn decode(input: &[u8]) -> Result<(ShardHeader, usize), StorageError> {
        let mut reader = Reader { input, position: 0 };
        if reader.take(MAGIC.len())? != MAGIC {
            return Err(corrupt("bad magic: not a Strata shard file"));
        }
        let version = reader.u16()?;
        if version != FORMAT_VERSION {
            return Err(corrupt(&format!(
                "unsupported shard format version {version}"
            )));
        }
        let codec = match reader.u8()? {
            1 => CodecId::ReedSolomonGf8,
            other => return Err(corrupt(&format!("unknown codec {other}"))),
        };
        let data_shards = reader.u8()?;
        let parity_shards = reader.u8()?;
        let index = reader.u8()?;
        let block_size = reader.u32()?;
        let part_length = reader.u64()?;
        let mut group = [0u8; 16];
        group.copy_from_slice(reader.take(16)?);
        let checksum = match reader.u8()? {
            1 => FrameChecksum::Xxh3_64,
            other => return Err(corrupt(&format!("unknown frame checksum {other}"))),
        };
        let covered = input.get(..reader.position).unwrap_or_default();
        if reader.u64()? != xxh3_64(covered) {
            return Err(corrupt("header checksum mismatch"));
        }

        let reference_start = reader.position;
        let body_len = reader.u32()? as usize;
        if body_len > MAX_BACK_REFERENCE_BODY {
            return Err(corrupt("back-reference too long"));
        }
        let body = reader.take(body_len)?;
        let covered = input
            .get(reference_start..reader.position)
            .unwrap_or_default();
        if reader.u64()? != xxh3_64(covered) {
            return Err(corrupt("back-reference checksum mismatch"));
        }
        let mut body_reader = Reader {
            input: body,
            position: 0,
        };
        let bucket_len = usize::from(body_reader.u8()?);
        let bucket = body_reader.string(bucket_len)?;
        let key_len = usize::from(body_reader.u16()?);
        let key = body_reader.string(key_len)?;
        let version_len = usize::from(body_reader.u8()?);
        let version = body_reader.string(version_len)?;
        let part_number = body_reader.u32()?;
        if body_reader.position != body.len() {
            return Err(corrupt("trailing bytes in back-reference"));
        }

        let header = ShardHeader {
            codec,
            data_shards,
            parity_shards,
            index,
            block_size,
            part_length,
            group: ShardGroupId(group),
            checksum,
            back_reference: BackReference {
                bucket,
                key,
                version,
                part_number,
            },
        };
        header
            .validate()
            .map_err(|err| corrupt(&format!("invalid header: {err}")))?;
        Ok((header, reader.position))
    }
}

/// Offset of the frame of `stripe` in a shard file whose header is `header_len` bytes.
/// Past the last stripe it is the file length.
pub fn frame_offset(header_len: u64, geometry: &Geometry, part_len: u64, stripe: u64) -> u64 {
    let count = geometry.stripe_count(part_len);
    if stripe >= count {
        return file_len(header_len, geometry, part_len);
    }
    let full_frame = FRAME_CHECKSUM_LEN.saturating_add(geometry.shard_len_full() as u64);
    header_len.saturating_add(stripe.saturating_mul(full_frame))
}

/// Checks that a writer's next frame (`stripe`, `len` bytes) fits the shard: within its stripe
/// count and exactly the shard length of that stripe. One rule for every `ShardWriter`.
pub fn check_next_frame(
    id: ShardId,
    geometry: &Geometry,
    part_len: u64,
    stripe: u64,
    len: usize,
) -> Result<(), StorageError> {
    let stripe_count = geometry.stripe_count(part_len);
    if stripe >= stripe_count {
        return Err(StorageError::InvalidArgument(format!(
            "shard {id} already has its {stripe_count} frames"
        )));
    }
    let expected = geometry.shard_len(part_len, stripe);
    if len != expected {
        return Err(StorageError::InvalidArgument(format!(
            "frame {stripe} of shard {id} must be {expected} bytes, got {len}"
        )));
    }
    Ok(())
}

/// Length of the frame of `stripe` (checksum + shard bytes); 0 past the last stripe.
pub fn frame_len(geometry: &Geometry, part_len: u64, stripe: u64) -> u64 {
    if stripe >= geometry.stripe_count(part_len) {
        return 0;
    }
    FRAME_CHECKSUM_LEN.saturating_add(geometry.shard_len(part_len, stripe) as u64)
}

/// Total length of a complete shard file.
pub fn file_len(header_len: u64, geometry: &Geometry, part_len: u64) -> u64 {
    let count = geometry.stripe_count(part_len);
    if count == 0 {
        return header_len;
    }
    let last = count - 1;
    let full_frame = FRAME_CHECKSUM_LEN.saturating_add(geometry.shard_len_full() as u64);
    header_len
        .saturating_add(last.saturating_mul(full_frame))
        .saturating_add(frame_len(geometry, part_len, last))
}

/// The checksum stored in front of a frame's shard bytes.
pub fn frame_checksum(shard_bytes: &[u8]) -> u64 {
    xxh3_64(shard_bytes)
}

/// Splits one frame into its shard bytes if the checksum matches; `None` if the frame is
/// short or damaged (an erasure).
pub fn verify_frame(frame: &[u8]) -> Option<&[u8]> {
    let (stored, shard) = frame.split_first_chunk::<8>()?;
    (u64::from_be_bytes(*stored) == frame_checksum(shard)).then_some(shard)
}

fn corrupt(message: &str) -> StorageError {
    StorageError::Corrupt(message.to_string())
}

fn put_string_u8(out: &mut Vec<u8>, value: &str) {
    let bytes = value.as_bytes();
    let len = u8::try_from(bytes.len()).unwrap_or(u8::MAX);
    out.push(len);
    out.extend_from_slice(bytes.get(..usize::from(len)).unwrap_or(bytes));
}

/// Bounds-checked big-endian reader over untrusted bytes.
struct Reader<'a> {
    input: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], StorageError> {
        let end = self
            .position
            .checked_add(len)
            .ok_or_else(|| corrupt("length overflow"))?;
        let bytes = self
            .input
            .get(self.position..end)
            .ok_or_else(|| corrupt("truncated shard header"))?;
        self.position = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], StorageError> {
        let mut bytes = [0u8; N];
        bytes.copy_from_slice(self.take(N)?);
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, StorageError> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    fn u16(&mut self) -> Result<u16, StorageError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, StorageError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, StorageError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn string(&mut self, len: usize) -> Result<String, StorageError> {
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| corrupt("back-reference is not UTF-8"))
    }
}

/// Reads and verifies the header of an open shard file; it must describe `id` (the local store
/// and the scrubber check files with this one function).
pub(crate) fn read_header(
    file: &mut File,
    id: ShardId,
) -> Result<(ShardHeader, u64), StorageError> {
    let mut prefix = Vec::with_capacity(MAX_HEADER_LEN);
    Read::by_ref(file)
        .take(MAX_HEADER_LEN as u64)
        .read_to_end(&mut prefix)?;
    let (header, header_len) = ShardHeader::decode(&prefix)?;
    if header.shard_id() != id {
        return Err(StorageError::Corrupt(format!(
            "file of shard {id} holds the header of {}",
            header.shard_id()
        )));
    }
    Ok((header, header_len as u64))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::{Rng, RngCore, SeedableRng};

    fn sample_header() -> ShardHeader {
        let geometry = Geometry::new(4, 2, 1 << 20).unwrap();
        let id = ShardId::new(ShardGroupId([0x42; 16]), 5);
        let reference = BackReference {
            bucket: "photos".into(),
            key: "2024/cat ü.jpg".into(),
            version: "v1".into(),
            part_number: 3,
        };
        ShardHeader::new(&geometry, id, 5_000_000, reference).unwrap()
    }

    #[test]
    fn header_round_trip() {
        let header = sample_header();
        let mut bytes = header.encode();
        let encoded_len = bytes.len();
        bytes.extend_from_slice(b"frame bytes follow");
        let (decoded, consumed) = ShardHeader::decode(&bytes).unwrap();
        assert_eq!(decoded, header);
        assert_eq!(consumed, encoded_len);
        assert_eq!(
            decoded.shard_id(),
            ShardId::new(ShardGroupId([0x42; 16]), 5)
        );
    }

    #[test]
    fn back_reference_bounds() {
        let mut header = sample_header();
        header.back_reference.bucket = "b".repeat(MAX_BUCKET_LEN);
        header.back_reference.key = "k".repeat(MAX_KEY_LEN);
        header.back_reference.version = "v".repeat(MAX_VERSION_LEN);
        let bytes = header.encode();
        assert_eq!(bytes.len(), MAX_HEADER_LEN);
        assert_eq!(ShardHeader::decode(&bytes).unwrap().0, header);
        for field in 0..3 {
            let mut long = header.clone();
            match field {
                0 => long.back_reference.bucket.push('b'),
                1 => long.back_reference.key = "k".repeat(70_000),
                _ => long.back_reference.version.push('v'),
            }
            assert!(long.validate().is_err());
            // Encoding an invalid header must not panic, and must not decode.
            assert!(ShardHeader::decode(&long.encode()).is_err());
        }
    }

    #[test]
    fn invalid_geometry_in_header_is_rejected() {
        let mut header = sample_header();
        header.index = 6;
        assert!(header.validate().is_err());
        assert!(ShardHeader::decode(&header.encode()).is_err());
        header.index = 0;
        header.data_shards = 0;
        assert!(ShardHeader::decode(&header.encode()).is_err());
    }

    #[test]
    fn every_flipped_or_truncated_byte_is_detected() {
        let bytes = sample_header().encode();
        for cut in 0..bytes.len() {
            assert!(
                ShardHeader::decode(&bytes[..cut]).is_err(),
                "truncated at {cut}"
            );
        }
        for position in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[position] ^= 0x01;
            assert!(ShardHeader::decode(&damaged).is_err(), "flip at {position}");
        }
    }

    #[test]
    fn random_garbage_never_panics() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(99);
        let valid = sample_header().encode();
        for round in 0..20_000 {
            let mut input = if round % 2 == 0 {
                let mut v = vec![0u8; rng.random_range(0..2 * MAX_HEADER_LEN)];
                rng.fill_bytes(&mut v);
                v
            } else {
                valid.clone()
            };
            if round % 4 == 0 && input.len() >= MAGIC.len() {
                input[..MAGIC.len()].copy_from_slice(MAGIC);
            }
            for _ in 0..rng.random_range(0..4) {
                if !input.is_empty() {
                    let i = rng.random_range(0..input.len());
                    input[i] = rng.random();
                }
            }
            let cut = rng.random_range(0..=input.len());
            let _ = ShardHeader::decode(&input[..cut]);
        }
    }

    #[test]
    fn frame_layout_is_computable() {
        let geometry = Geometry::new(4, 2, 1024).unwrap();
        let header_len = 100;
        let part_len = 2 * 1024 + 10; // two full stripes and one of 10 bytes
        assert_eq!(frame_offset(header_len, &geometry, part_len, 0), 100);
        assert_eq!(frame_offset(header_len, &geometry, part_len, 1), 100 + 264);
        assert_eq!(
            frame_offset(header_len, &geometry, part_len, 2),
            100 + 2 * 264
        );
        assert_eq!(frame_len(&geometry, part_len, 2), 8 + 3);
        assert_eq!(frame_len(&geometry, part_len, 3), 0);
        assert_eq!(
            file_len(header_len, &geometry, part_len),
            100 + 2 * 264 + 11
        );
        assert_eq!(
            frame_offset(header_len, &geometry, part_len, 3),
            file_len(header_len, &geometry, part_len)
        );
        assert_eq!(file_len(header_len, &geometry, 0), header_len);
        // Hostile values saturate instead of overflowing.
        let huge = Geometry::new(1, 0, 1).unwrap();
        let _ = file_len(u64::MAX, &huge, u64::MAX);
        let _ = frame_offset(u64::MAX, &huge, u64::MAX, u64::MAX - 1);
    }

    #[test]
    fn frames_verify_and_detect_damage() {
        let shard = b"some shard bytes";
        let mut frame = frame_checksum(shard).to_be_bytes().to_vec();
        frame.extend_from_slice(shard);
        assert_eq!(verify_frame(&frame), Some(&shard[..]));
        let mut damaged = frame.clone();
        damaged[10] ^= 0x80;
        assert_eq!(verify_frame(&damaged), None);
        assert_eq!(verify_frame(&frame[..frame.len() - 1]), None);
        assert_eq!(verify_frame(&frame[..5]), None);
    }
}
