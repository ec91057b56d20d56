//! Checksum arithmetic shared by the protocol layer and the engine: the algorithms S3 clients
//! can ask for (`x-amz-checksum-<alg>`), incremental hashers producing the base64 value S3
//! sends, the checksum types (FULL_OBJECT, COMPOSITE) and how part checksums combine into an
//! object's. It knows no HTTP and no stored record: `s3::payload` parses client digests with it,
//! the engine combines and computes object checksums with it.
//!
//! Invariants: CRC values are big-endian before base64 (as AWS and botocore encode them);
//! algorithm and type names are matched case-insensitively and always printed upper-case.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use crc_fast::{CrcAlgorithm, Digest as CrcDigest};
use sha1::Sha1;
use sha2::{Digest as _, Sha256};

/// A checksum algorithm S3 clients can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumAlgorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl ChecksumAlgorithm {
    /// Parses `"CRC32"`, `"crc64nvme"` … (case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::all()
            .iter()
            .copied()
            .find(|algorithm| algorithm.name().eq_ignore_ascii_case(name.trim()))
    }

    /// The name as S3 writes it (`ChecksumAlgorithm` XML values, `x-amz-sdk-checksum-algorithm`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Crc32 => "CRC32",
            Self::Crc32c => "CRC32C",
            Self::Crc64Nvme => "CRC64NVME",
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
        }
    }

    /// The header (and trailer) that carries the value, lower-case.
    pub fn header_name(&self) -> &'static str {
        match self {
            Self::Crc32 => "x-amz-checksum-crc32",
            Self::Crc32c => "x-amz-checksum-crc32c",
            Self::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Self::Sha1 => "x-amz-checksum-sha1",
            Self::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// The algorithm whose header (or trailer) name this is (case-insensitive).
    pub fn from_header_name(name: &str) -> Option<Self> {
        Self::all()
            .iter()
            .copied()
            .find(|algorithm| algorithm.header_name().eq_ignore_ascii_case(name.trim()))
    }

    /// Length of the raw (decoded) digest in bytes.
    pub fn digest_len(&self) -> usize {
        match self {
            Self::Crc32 | Self::Crc32c => 4,
            Self::Crc64Nvme => 8,
            Self::Sha1 => 20,
            Self::Sha256 => 32,
        }
    }

    pub fn hasher(&self) -> ChecksumHasher {
        let state = match self {
            Self::Crc32 => HasherState::Crc32(CrcDigest::new(CrcAlgorithm::Crc32IsoHdlc)),
            Self::Crc32c => HasherState::Crc32(CrcDigest::new(CrcAlgorithm::Crc32Iscsi)),
            Self::Crc64Nvme => HasherState::Crc64(CrcDigest::new(CrcAlgorithm::Crc64Nvme)),
            Self::Sha1 => HasherState::Sha1(Sha1::new()),
            Self::Sha256 => HasherState::Sha256(Sha256::new()),
        };
        ChecksumHasher { state }
    }

    pub fn all() -> &'static [Self] {
        &[
            Self::Crc32,
            Self::Crc32c,
            Self::Crc64Nvme,
            Self::Sha1,
            Self::Sha256,
        ]
    }

    /// True when `value` is base64 of a digest of the right length for this algorithm.
    pub fn is_valid_base64(&self, value: &str) -> bool {
        BASE64
            .decode(value.trim())
            .is_ok_and(|raw| raw.len() == self.digest_len())
    }

    /// The FULL_OBJECT checksum of a multipart object from its parts' checksums (base64) and
    /// lengths, in part order: the CRC of the concatenated data, without reading it again.
    /// `None` for SHA algorithms (they cannot be combined) or a malformed part value.
    pub fn combine_full_object(&self, parts: &[(&str, u64)]) -> Option<String> {
        let crc = match self {
            Self::Crc32 => CrcAlgorithm::Crc32IsoHdlc,
            Self::Crc32c => CrcAlgorithm::Crc32Iscsi,
            Self::Crc64Nvme => CrcAlgorithm::Crc64Nvme,
            Self::Sha1 | Self::Sha256 => return None,
        };
        let mut combined: Option<u64> = None;
        for (value, length) in parts {
            let raw = BASE64.decode(value.trim()).ok()?;
            if raw.len() != self.digest_len() {
                return None;
            }
            let part = raw
                .iter()
                .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte));
            combined = Some(match combined {
                None => part,
                Some(previous) => crc_fast::checksum_combine(crc, previous, part, *length),
            });
        }
        let value = combined?;
        Some(match self {
            Self::Crc64Nvme => BASE64.encode(value.to_be_bytes()),
            _ => BASE64.encode(((value & 0xFFFF_FFFF) as u32).to_be_bytes()),
        })
    }
}

/// Incremental hasher for one [`ChecksumAlgorithm`].
#[derive(Clone)]
pub struct ChecksumHasher {
    state: HasherState,
}

#[derive(Clone)]
enum HasherState {
    Crc32(CrcDigest),
    Crc64(CrcDigest),
    Sha1(Sha1),
    Sha256(Sha256),
}

impl ChecksumHasher {
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            HasherState::Crc32(digest) | HasherState::Crc64(digest) => digest.update(data),
            HasherState::Sha1(digest) => digest.update(data),
            HasherState::Sha256(digest) => digest.update(data),
        }
    }

    /// The raw digest (CRCs big-endian).
    pub fn finish_raw(self) -> Vec<u8> {
        match self.state {
            // A CRC-32 digest fits in the low 32 bits of the u64 crc-fast returns.
            HasherState::Crc32(digest) => ((digest.finalize() & 0xFFFF_FFFF) as u32)
                .to_be_bytes()
                .to_vec(),
            HasherState::Crc64(digest) => digest.finalize().to_be_bytes().to_vec(),
            HasherState::Sha1(digest) => digest.finalize().to_vec(),
            HasherState::Sha256(digest) => digest.finalize().to_vec(),
        }
    }

    /// The value as S3 sends it in `x-amz-checksum-<alg>`.
    pub fn finish_base64(self) -> String {
        BASE64.encode(self.finish_raw())
    }
}

impl ChecksumAlgorithm {
    /// The COMPOSITE checksum of a multipart object: the checksum of the concatenated raw part
    /// checksums, suffixed `-N`. `None` for a malformed part value.
    pub fn combine_composite(&self, parts: &[(&str, u64)]) -> Option<String> {
        let mut hasher = self.hasher();
        for (value, _) in parts {
            hasher.update(&BASE64.decode(value.trim()).ok()?);
        }
        Some(format!("{}-{}", hasher.finish_base64(), parts.len()))
    }
}

/// How an object checksum relates to the data (`x-amz-checksum-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumType {
    /// The checksum of the whole object's bytes.
    FullObject,
    /// The checksum of the parts' checksums (multipart uploads), `value-N`.
    Composite,
}

impl ChecksumType {
    /// The name as S3 writes it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::FullObject => "FULL_OBJECT",
            Self::Composite => "COMPOSITE",
        }
    }

    /// Parses `"FULL_OBJECT"` / `"COMPOSITE"` (case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::FullObject, Self::Composite]
            .into_iter()
            .find(|kind| kind.name().eq_ignore_ascii_case(name.trim()))
    }
}

/// An object's or part's checksum: algorithm, base64 value and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    pub algorithm: ChecksumAlgorithm,
    pub value: String,
    pub kind: ChecksumType,
}

impl Checksum {
    /// The object checksum of `parts` (checksum and length, in part order) of an upload that
    /// asked for `algorithm` with `kind`: `None` unless every part carries a checksum of that
    /// algorithm. FULL_OBJECT CRCs combine without rereading data (SHA-based ones cannot be
    /// FULL_OBJECT); otherwise the COMPOSITE checksum.
    pub fn of_parts(
        algorithm: ChecksumAlgorithm,
        kind: Option<ChecksumType>,
        parts: &[(Option<&Checksum>, u64)],
    ) -> Option<Checksum> {
        let mut values = Vec::with_capacity(parts.len());
        for (checksum, size) in parts {
            let checksum = (*checksum)?;
            if checksum.algorithm != algorithm {
                return None;
            }
            values.push((checksum.value.as_str(), *size));
        }
        if kind == Some(ChecksumType::FullObject) {
            return Some(Checksum {
                algorithm,
                value: algorithm.combine_full_object(&values)?,
                kind: ChecksumType::FullObject,
            });
        }
        Some(Checksum {
            algorithm,
            value: algorithm.combine_composite(&values)?,
            kind: ChecksumType::Composite,
        })
    }
}

/// Where a streaming body leaves the checksum it verified, once it has ended: the protocol
/// layer fills it, the engine reads it after the whole body was written (no callback).
pub type ChecksumSlot = std::sync::Arc<std::sync::OnceLock<(ChecksumAlgorithm, String)>>;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn checksum(algorithm: ChecksumAlgorithm, data: &[u8]) -> String {
        let mut hasher = algorithm.hasher();
        // Feed in two pieces to exercise incremental hashing.
        let (left, right) = data.split_at(data.len() / 2);
        hasher.update(left);
        hasher.update(right);
        hasher.finish_base64()
    }

    #[test]
    fn known_vectors() {
        // CRC32("Hello World!") = 0x1C291CA3, CRC32C("Hello World!") = 0xFE6CF1DC.
        assert_eq!(
            checksum(ChecksumAlgorithm::Crc32, b"Hello World!"),
            "HCkcow=="
        );
        assert_eq!(
            checksum(ChecksumAlgorithm::Crc32c, b"Hello World!"),
            "/mzx3A=="
        );
        // CRC32 / CRC32C check values of "123456789": 0xCBF43926, 0xE3069283.
        assert_eq!(checksum(ChecksumAlgorithm::Crc32, b"123456789"), "y/Q5Jg==");
        assert_eq!(
            checksum(ChecksumAlgorithm::Crc32c, b"123456789"),
            "4waSgw=="
        );
        // CRC-64/NVME check value of "123456789": 0xAE8B14860A799888.
        assert_eq!(
            checksum(ChecksumAlgorithm::Crc64Nvme, b"123456789"),
            "rosUhgp5mIg="
        );
        assert_eq!(checksum(ChecksumAlgorithm::Crc32, b""), "AAAAAA==");
        assert_eq!(
            checksum(ChecksumAlgorithm::Sha1, b"abc"),
            "qZk+NkcGgWq6PiVxeFDCbJzQ2J0="
        );
        assert_eq!(
            checksum(ChecksumAlgorithm::Sha256, b""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        // The AWS trailer example: CRC32C of 66560 'a' bytes.
        assert_eq!(
            checksum(ChecksumAlgorithm::Crc32c, &[b'a'; 66560]),
            "sOO8/Q=="
        );
    }

    #[test]
    fn full_object_crc_combination() {
        let data = b"The quick brown fox jumps over the lazy dog, twice over.";
        let (first, second) = data.split_at(20);
        for algorithm in [
            ChecksumAlgorithm::Crc32,
            ChecksumAlgorithm::Crc32c,
            ChecksumAlgorithm::Crc64Nvme,
        ] {
            let parts = [
                (checksum(algorithm, first), first.len() as u64),
                (checksum(algorithm, second), second.len() as u64),
            ];
            let parts: Vec<(&str, u64)> = parts
                .iter()
                .map(|(value, len)| (value.as_str(), *len))
                .collect();
            assert_eq!(
                algorithm.combine_full_object(&parts),
                Some(checksum(algorithm, data)),
                "{algorithm:?}"
            );
        }
        assert_eq!(
            ChecksumAlgorithm::Sha256.combine_full_object(&[("AAAA", 1)]),
            None
        );
        assert_eq!(
            ChecksumAlgorithm::Crc32.combine_full_object(&[("bad!", 1)]),
            None
        );
        assert_eq!(ChecksumAlgorithm::Crc32.combine_full_object(&[]), None);
    }

    #[test]
    fn names_round_trip() {
        for algorithm in ChecksumAlgorithm::all() {
            assert_eq!(
                ChecksumAlgorithm::from_name(algorithm.name()),
                Some(*algorithm)
            );
            assert_eq!(
                ChecksumAlgorithm::from_name(&algorithm.name().to_lowercase()),
                Some(*algorithm)
            );
            assert_eq!(
                ChecksumAlgorithm::from_header_name(algorithm.header_name()),
                Some(*algorithm)
            );
        }
        assert_eq!(ChecksumAlgorithm::from_name("MD4"), None);
        assert_eq!(
            ChecksumAlgorithm::from_header_name("x-amz-checksum-mode"),
            None
        );
    }

    #[test]
    fn validates_base64_length() {
        assert!(ChecksumAlgorithm::Crc32.is_valid_base64("HCkcow=="));
        assert!(!ChecksumAlgorithm::Crc32.is_valid_base64("rosUhgp5mIg="));
        assert!(!ChecksumAlgorithm::Crc32.is_valid_base64("not base64!"));
    }

    #[test]
    fn checksum_types_and_composites() {
        for kind in [ChecksumType::FullObject, ChecksumType::Composite] {
            assert_eq!(ChecksumType::from_name(kind.name()), Some(kind));
        }
        assert_eq!(
            ChecksumType::from_name("full_object"),
            Some(ChecksumType::FullObject)
        );
        assert_eq!(ChecksumType::from_name("PARTIAL"), None);
        // COMPOSITE: the checksum of the concatenated raw part checksums, suffixed -N.
        let parts = [
            checksum(ChecksumAlgorithm::Crc32, b"Hello "),
            checksum(ChecksumAlgorithm::Crc32, b"World!"),
        ];
        let mut raw = Vec::new();
        for part in &parts {
            raw.extend(BASE64.decode(part).unwrap());
        }
        let expected = format!("{}-2", checksum(ChecksumAlgorithm::Crc32, &raw));
        let parts: Vec<(&str, u64)> = parts.iter().map(|p| (p.as_str(), 6)).collect();
        assert_eq!(
            ChecksumAlgorithm::Crc32.combine_composite(&parts),
            Some(expected)
        );
        assert_eq!(
            ChecksumAlgorithm::Crc32.combine_composite(&[("%%", 1)]),
            None
        );
    }
}
