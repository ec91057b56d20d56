//! The stored form of an encrypted part (format "STSE" version 1), and the mapping of plaintext
//! ranges onto it.
//!
//! ```text
//! part     = header ‖ package_0 ‖ … ‖ package_{n-1}
//! header   = "STSE" ‖ version (0x01) ‖ 3 zero bytes ‖ nonce prefix (8 random bytes)   (16 bytes)
//! package  = AES-256-GCM(data key, nonce_i, aad = header, plaintext_i) ‖ tag (16 bytes)
//! nonce_i  = nonce prefix ‖ be32(i | 0x8000_0000 if i is the last package)
//! ```
//!
//! Every package holds [`PACKAGE_SIZE`] bytes of plaintext except the last, which holds the rest
//! (1 ..= PACKAGE_SIZE bytes, or 0 for an empty part, which still has one package: its tag).
//! `n = max(1, ceil(len / PACKAGE_SIZE))`, so the stored length follows from the plaintext length
//! alone ([`sealed_len`]). Invariants: a nonce is never reused under one data key (the 64-bit
//! prefix is random per part attempt; the index is below 2^31 since a part is at most 5 GiB);
//! reordering, dropping or truncating packages fails authentication (the index and the last
//! flag are in the nonce; the reader knows `n` from the catalog's plaintext size); the header
//! is authenticated as associated data of every package. Parts are independent: a range read
//! reads the header and the packages that cover the range, nothing else.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};

use super::SseError;

/// Plaintext bytes per package.
pub const PACKAGE_SIZE: u64 = 64 * 1024;
/// GCM tag bytes after each package.
pub const TAG_SIZE: u64 = 16;
/// Stored bytes of a full package.
pub const SEALED_PACKAGE: u64 = PACKAGE_SIZE + TAG_SIZE;
/// Bytes of the part header.
pub const HEADER_SIZE: u64 = 16;
const MAGIC: &[u8; 4] = b"STSE";
const VERSION: u8 = 1;
const LAST_FLAG: u32 = 0x8000_0000;

/// Number of packages of a part of `len` plaintext bytes.
pub fn package_count(len: u64) -> u64 {
    len.div_ceil(PACKAGE_SIZE).max(1)
}

/// Stored length of a part of `len` plaintext bytes.
pub fn sealed_len(len: u64) -> u64 {
    HEADER_SIZE + len + package_count(len) * TAG_SIZE
}

/// Where the packages covering a plaintext range lie in a part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackageSpan {
    /// First package index.
    pub first: u64,
    /// Number of packages.
    pub count: u64,
    /// Stored byte range `[start, end)` of those packages.
    pub sealed_start: u64,
    pub sealed_end: u64,
    /// Offset of the range's first plaintext byte within the first package's plaintext.
    pub skip: u64,
}

/// The packages that cover plaintext `[start, end)` of a part of `len` bytes (`start < end <= len`).
pub fn span(len: u64, start: u64, end: u64) -> Result<PackageSpan, SseError> {
    if start >= end || end > len {
        return Err(SseError::Corrupt(format!(
            "range {start}..{end} outside a part of {len} bytes"
        )));
    }
    let first = start / PACKAGE_SIZE;
    let last = (end - 1) / PACKAGE_SIZE;
    let last_plain_end = ((last + 1) * PACKAGE_SIZE).min(len);
    Ok(PackageSpan {
        first,
        count: last - first + 1,
        sealed_start: HEADER_SIZE + first * SEALED_PACKAGE,
        sealed_end: HEADER_SIZE
            + last * SEALED_PACKAGE
            + (last_plain_end - last * PACKAGE_SIZE)
            + TAG_SIZE,
        skip: start - first * PACKAGE_SIZE,
    })
}

/// A part header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header(pub [u8; HEADER_SIZE as usize]);

impl Header {
    /// A header with a fresh random nonce prefix.
    pub fn random() -> Self {
        let prefix: [u8; 8] = rand::random();
        Self::with_prefix(prefix)
    }

    pub fn with_prefix(prefix: [u8; 8]) -> Self {
        let mut bytes = [0u8; HEADER_SIZE as usize];
        bytes[..4].copy_from_slice(MAGIC);
        bytes[4] = VERSION;
        bytes[8..].copy_from_slice(&prefix);
        Header(bytes)
    }

    /// Checks magic and version of stored header bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, SseError> {
        let raw: [u8; HEADER_SIZE as usize] = bytes
            .get(..HEADER_SIZE as usize)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| SseError::Corrupt("short encryption header".into()))?;
        if &raw[..4] != MAGIC {
            return Err(SseError::Corrupt("bad encryption header magic".into()));
        }
        if raw[4] != VERSION || raw[5..8] != [0, 0, 0] {
            return Err(SseError::Corrupt(format!(
                "unknown encryption format version {}",
                raw[4]
            )));
        }
        Ok(Header(raw))
    }

    fn nonce(&self, index: u64, last: bool) -> Result<[u8; 12], SseError> {
        let index = u32::try_from(index)
            .ok()
            .filter(|i| i & LAST_FLAG == 0)
            .ok_or_else(|| SseError::Corrupt(format!("package index {index} too large")))?;
        let mut nonce = [0u8; 12];
        nonce[..8].copy_from_slice(&self.0[8..]);
        let tagged = if last { index | LAST_FLAG } else { index };
        nonce[8..].copy_from_slice(&tagged.to_be_bytes());
        Ok(nonce)
    }
}

/// Encrypts and decrypts the packages of one part.
#[derive(Clone)]
pub struct PartCipher {
    cipher: Aes256Gcm,
    header: Header,
    /// Total packages of the part.
    packages: u64,
}

impl PartCipher {
    /// For the part of `len` plaintext bytes that `header` starts, under `data_key`.
    pub fn new(data_key: &[u8; 32], header: Header, len: u64) -> Self {
        PartCipher {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(data_key)),
            header,
            packages: package_count(len),
        }
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Seals package `index` (its full plaintext) into `out`.
    pub fn seal(&self, index: u64, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), SseError> {
        let nonce = self.header.nonce(index, index + 1 == self.packages)?;
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &self.header.0,
                },
            )
            .map_err(|_| SseError::Corrupt("encryption failed".into()))?;
        out.extend_from_slice(&sealed);
        Ok(())
    }

    /// Opens consecutive sealed packages from `first` (the exact stored bytes of whole
    /// packages) and appends their plaintext to `out`.
    pub fn open(&self, first: u64, sealed: &[u8], out: &mut Vec<u8>) -> Result<(), SseError> {
        for (index, package) in (first..).zip(sealed.chunks(SEALED_PACKAGE as usize)) {
            if index >= self.packages {
                return Err(SseError::Corrupt("more packages than the part has".into()));
            }
            let nonce = self.header.nonce(index, index + 1 == self.packages)?;
            let plain = self
                .cipher
                .decrypt(
                    Nonce::from_slice(&nonce),
                    Payload {
                        msg: package,
                        aad: &self.header.0,
                    },
                )
                .map_err(|_| SseError::Corrupt(format!("package {index} fails authentication")))?;
            out.extend_from_slice(&plain);
        }
        Ok(())
    }

    /// Seals a whole part in memory: header and every package (inline data, tests).
    pub fn seal_all(&self, plaintext: &[u8]) -> Result<Vec<u8>, SseError> {
        let mut out = Vec::with_capacity(sealed_len(plaintext.len() as u64) as usize);
        out.extend_from_slice(&self.header.0);
        if plaintext.is_empty() {
            self.seal(0, &[], &mut out)?;
        }
        for (index, chunk) in plaintext.chunks(PACKAGE_SIZE as usize).enumerate() {
            self.seal(index as u64, chunk, &mut out)?;
        }
        Ok(out)
    }
}

/// Decrypts plaintext `[start, end)` of a part of `len` bytes stored whole in `sealed`
/// (inline data).
pub fn open_range(
    data_key: &[u8; 32],
    sealed: &[u8],
    len: u64,
    start: u64,
    end: u64,
) -> Result<Vec<u8>, SseError> {
    if start >= end {
        return Ok(Vec::new());
    }
    if sealed.len() as u64 != sealed_len(len) {
        return Err(SseError::Corrupt(format!(
            "stored part is {} bytes, expected {}",
            sealed.len(),
            sealed_len(len)
        )));
    }
    let header = Header::parse(sealed)?;
    let cipher = PartCipher::new(data_key, header, len);
    let span = span(len, start, end)?;
    let packages = sealed
        .get(span.sealed_start as usize..span.sealed_end as usize)
        .ok_or_else(|| SseError::Corrupt("short stored part".into()))?;
    let mut plain = Vec::new();
    cipher.open(span.first, packages, &mut plain)?;
    let from = span.skip as usize;
    let to = from + (end - start) as usize;
    plain
        .get(from..to)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| SseError::Corrupt("short plaintext".into()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + i / 251) as u8).collect()
    }

    /// Frozen bytes of a small part (checked against Python `cryptography`'s AESGCM with the
    /// same key, nonce and AAD); if this fails the stored format changed: bump the version.
    #[test]
    fn golden_part_bytes() {
        let key = [7u8; 32];
        let cipher = PartCipher::new(&key, Header::with_prefix([1, 2, 3, 4, 5, 6, 7, 8]), 5);
        let sealed = cipher.seal_all(b"hello").unwrap();
        assert_eq!(sealed.len() as u64, sealed_len(5));
        assert_eq!(
            hex::encode(&sealed),
            "53545345010000000102030405060708e882fc26943149fdfc33fcd65565dd7c68bd86c810"
        );
        assert_eq!(open_range(&key, &sealed, 5, 0, 5).unwrap(), b"hello");
    }

    #[test]
    fn sizes_and_spans() {
        assert_eq!(sealed_len(0), 32);
        assert_eq!(sealed_len(1), 33);
        assert_eq!(sealed_len(PACKAGE_SIZE), 16 + PACKAGE_SIZE + 16);
        assert_eq!(sealed_len(PACKAGE_SIZE + 1), 16 + PACKAGE_SIZE + 1 + 32);
        let len = 3 * PACKAGE_SIZE + 10;
        let s = span(len, PACKAGE_SIZE + 5, 3 * PACKAGE_SIZE + 2).unwrap();
        assert_eq!((s.first, s.count, s.skip), (1, 3, 5));
        assert_eq!(s.sealed_start, 16 + SEALED_PACKAGE);
        assert_eq!(s.sealed_end, 16 + 3 * SEALED_PACKAGE + 10 + 16);
        assert_eq!(s.sealed_end, sealed_len(len));
        assert!(span(len, 5, 5).is_err());
        assert!(span(len, 0, len + 1).is_err());
    }

    #[test]
    fn every_range_roundtrips() {
        let key = [9u8; 32];
        for len in [0usize, 1, 100, 65_536, 65_537, 200_000] {
            let plain = pattern(len);
            let sealed = PartCipher::new(&key, Header::random(), len as u64)
                .seal_all(&plain)
                .unwrap();
            assert_eq!(sealed.len() as u64, sealed_len(len as u64));
            let cuts = [
                0,
                1,
                len / 3,
                65_535,
                65_536,
                65_537,
                len.saturating_sub(1),
                len,
            ];
            for &a in &cuts {
                for &b in &cuts {
                    if a < b && b <= len {
                        let got = open_range(&key, &sealed, len as u64, a as u64, b as u64);
                        assert_eq!(got.unwrap(), &plain[a..b], "len {len} range {a}..{b}");
                    }
                }
            }
        }
    }

    #[test]
    fn tamper_truncation_and_wrong_key_are_detected() {
        let key = [3u8; 32];
        let len = 2 * PACKAGE_SIZE as usize + 7;
        let plain = pattern(len);
        let sealed = PartCipher::new(&key, Header::random(), len as u64)
            .seal_all(&plain)
            .unwrap();
        let n = len as u64;
        // One flipped bit anywhere.
        for at in [0usize, 5, 20, 70_000, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[at] ^= 1;
            assert!(open_range(&key, &bad, n, 0, n).is_err(), "flip at {at}");
        }
        // Wrong key.
        assert!(open_range(&[4u8; 32], &sealed, n, 0, n).is_err());
        // Truncated after a whole package: claiming the shorter length fails (last flag).
        let cut = (HEADER_SIZE + SEALED_PACKAGE) as usize;
        assert!(open_range(&key, &sealed[..cut], PACKAGE_SIZE, 0, PACKAGE_SIZE).is_err());
        // Packages swapped.
        let mut swapped = sealed.clone();
        let (a, b) = (16usize, 16 + SEALED_PACKAGE as usize);
        let first: Vec<u8> = swapped[a..b].to_vec();
        let second: Vec<u8> = swapped[b..b + SEALED_PACKAGE as usize].to_vec();
        swapped[a..b].copy_from_slice(&second);
        swapped[b..b + SEALED_PACKAGE as usize].copy_from_slice(&first);
        assert!(open_range(&key, &swapped, n, 0, 10).is_err());
        // Bad magic / version.
        assert!(Header::parse(b"XTSE\x01\0\0\0abcdefgh").is_err());
        assert!(Header::parse(b"STSE\x02\0\0\0abcdefgh").is_err());
    }
}
