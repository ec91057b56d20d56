//! Row-key encoding: the only place that knows how catalog keys are laid out (DESIGN §3).
//!
//! | table | key |
//! |---|---|
//! | buckets | bucket name (UTF-8 bytes) |
//! | objects | `bid ‖ object key bytes` — unescaped: the bucket id has a fixed length and the object key is the rest of the row key, so bytewise row order is object-key order |
//! | versions | `bid ‖ esc(key) ‖ !seq` (newest first) |
//! | uploads | `bid ‖ esc(key) ‖ useq` |
//! | parts | `useq ‖ part_number ‖ attempt` |
//! | intents | `group` |
//! | gc, repair | `due_ms ‖ group` |
//! | placement | `node ‖ group` (node id big-endian u32) |
//! | system | `"u/" ‖ name` for caller values, `"i/…"` for the catalog's own rows (`"i/repair/" ‖ group` → the group's `repair` row key, so a group is queued at most once) |
//!
//! Invariants: integers are big-endian so byte order is numeric order; [`escape_key`] is
//! order-preserving even when a suffix follows it (`a < b` ⇒ `esc(a)‖x < esc(b)‖y`), because
//! 0x00 is escaped as 0x00 0xFF and the terminator 0x00 0x01 sorts below every escaped byte.
//! Keys never depend on serde.

use crate::model::BucketId;

/// Length of a bucket id in row keys.
pub const BUCKET_ID_LEN: usize = 16;
/// Length of a shard group id in row keys.
pub const GROUP_LEN: usize = 16;

/// Appends the escaped body of `key` (no terminator): 0x00 → 0x00 0xFF, other bytes verbatim.
/// The body of a prefix is a byte prefix of the escaped form of every key that has that prefix.
pub fn escape_body_into(out: &mut Vec<u8>, key: &[u8]) {
    for &b in key {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
}

/// Appends `esc(key)`: the escaped body followed by the terminator 0x00 0x01.
pub fn escape_key_into(out: &mut Vec<u8>, key: &[u8]) {
    escape_body_into(out, key);
    out.extend_from_slice(&[0x00, 0x01]);
}

/// `esc(key)` as a new vector.
pub fn escape_key(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 2);
    escape_key_into(&mut out, key);
    out
}

/// Decodes an escaped key at the start of `bytes`; returns the key and the bytes after its
/// terminator, or `None` if `bytes` is not a well-formed escaped key.
pub fn unescape_key(bytes: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    let mut key = Vec::new();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b != 0 {
            key.push(b);
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(0xFF) => {
                key.push(0);
                i += 2;
            }
            Some(0x01) => return Some((key, bytes.get(i + 2..).unwrap_or_default())),
            _ => return None,
        }
    }
    None
}

/// The smallest byte string greater than every string that starts with `prefix`, or an empty
/// vector (meaning "unbounded") when there is none (`prefix` empty or all 0xFF).
pub fn successor(prefix: &[u8]) -> Vec<u8> {
    let mut out = prefix.to_vec();
    while let Some(last) = out.pop() {
        if last < 0xFF {
            out.push(last + 1);
            return out;
        }
    }
    out
}

/// The smallest byte string strictly greater than `key` itself (`key ‖ 0x00`).
pub fn next_key(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 1);
    out.extend_from_slice(key);
    out.push(0);
    out
}

/// Reads a big-endian u64 at `bytes[at..at + 8]`.
pub fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let raw: [u8; 8] = bytes.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_be_bytes(raw))
}

/// `objects` row key of `key` in bucket `bid`.
pub fn object_key(bid: &BucketId, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(BUCKET_ID_LEN + key.len());
    out.extend_from_slice(bid);
    out.extend_from_slice(key);
    out
}

/// The object key of an `objects` row key (bytes after the bucket id).
pub fn object_key_suffix(row_key: &[u8]) -> Option<&[u8]> {
    row_key.get(BUCKET_ID_LEN..)
}

/// `versions` row key prefix shared by every version of `key`.
pub fn version_prefix(bid: &BucketId, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(BUCKET_ID_LEN + key.len() + 10);
    out.extend_from_slice(bid);
    escape_key_into(&mut out, key);
    out
}

/// `versions` row key: `bid ‖ esc(key) ‖ !seq`, so newer versions sort first.
pub fn version_key(bid: &BucketId, key: &[u8], seq: u64) -> Vec<u8> {
    let mut out = version_prefix(bid, key);
    out.extend_from_slice(&(!seq).to_be_bytes());
    out
}

/// `uploads` row key prefix of every upload of `key`.
pub fn upload_key_prefix(bid: &BucketId, key: &[u8]) -> Vec<u8> {
    version_prefix(bid, key)
}

/// `uploads` row key prefix covering every key that starts with `prefix`.
pub fn upload_prefix_range_start(bid: &BucketId, prefix: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(BUCKET_ID_LEN + prefix.len() + 2);
    out.extend_from_slice(bid);
    escape_body_into(&mut out, prefix);
    out
}

/// `uploads` row key: `bid ‖ esc(key) ‖ useq`.
pub fn upload_key(bid: &BucketId, key: &[u8], useq: u64) -> Vec<u8> {
    let mut out = upload_key_prefix(bid, key);
    out.extend_from_slice(&useq.to_be_bytes());
    out
}

/// `parts` row key prefix of every part of upload `useq`.
pub fn parts_prefix(useq: u64) -> Vec<u8> {
    useq.to_be_bytes().to_vec()
}

/// `parts` row key: `useq ‖ part_number ‖ attempt`.
pub fn part_key(useq: u64, part_number: u32, attempt: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(20);
    out.extend_from_slice(&useq.to_be_bytes());
    out.extend_from_slice(&part_number.to_be_bytes());
    out.extend_from_slice(&attempt.to_be_bytes());
    out
}

/// `gc` (and `repair`) row key: `due_ms ‖ group`.
pub fn due_key(due_ms: u64, group: &[u8; GROUP_LEN]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + GROUP_LEN);
    out.extend_from_slice(&due_ms.to_be_bytes());
    out.extend_from_slice(group);
    out
}

/// `placement` row key: `node ‖ group`, so every group on a node is one prefix scan.
pub fn placement_key(node: u32, group: &[u8; GROUP_LEN]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + GROUP_LEN);
    out.extend_from_slice(&node.to_be_bytes());
    out.extend_from_slice(group);
    out
}

/// The group of a `placement` row key, if well formed.
pub fn placement_group(row_key: &[u8]) -> Option<[u8; GROUP_LEN]> {
    row_key.get(4..)?.try_into().ok()
}

/// The group of a `gc`/`repair` row key, if well formed.
pub fn due_key_group(row_key: &[u8]) -> Option<[u8; GROUP_LEN]> {
    row_key.get(8..)?.try_into().ok()
}

/// `system` row key of the repair-queue index of `group` (value: its `repair` row key).
pub fn system_repair_index_key(group: &[u8; GROUP_LEN]) -> Vec<u8> {
    let mut out = b"i/repair/".to_vec();
    out.extend_from_slice(group);
    out
}

/// `system` row key of a caller-owned value.
pub fn system_user_key(name: &str) -> Vec<u8> {
    let mut out = b"u/".to_vec();
    out.extend_from_slice(name.as_bytes());
    out
}

/// `system` row key prefix of the completed-upload records of bucket `bid`.
pub fn system_completed_upload_prefix(bid: &BucketId) -> Vec<u8> {
    let mut out = b"i/completed-upload/".to_vec();
    out.extend_from_slice(bid);
    out
}

/// `system` row key of the completed-upload record of `key` in bucket `bid` (one per key).
pub fn system_completed_upload_key(bid: &BucketId, key: &[u8]) -> Vec<u8> {
    let mut out = system_completed_upload_prefix(bid);
    out.extend_from_slice(key);
    out
}

/// `system` row key prefix of the gateways' liveness rows.
pub const SYSTEM_GATEWAY_PREFIX: &[u8] = b"i/gateway/";

/// `system` row key of gateway `id`'s liveness row.
pub fn system_gateway_key(id: &str) -> Vec<u8> {
    let mut out = SYSTEM_GATEWAY_PREFIX.to_vec();
    out.extend_from_slice(id.as_bytes());
    out
}

/// `system` row key prefix of the gateways' published read leases.
pub const SYSTEM_READ_LEASES_PREFIX: &[u8] = b"i/read-leases/";

/// `system` row key of the read leases gateway `id` published.
pub fn system_read_leases_key(id: &str) -> Vec<u8> {
    let mut out = SYSTEM_READ_LEASES_PREFIX.to_vec();
    out.extend_from_slice(id.as_bytes());
    out
}

/// `system` row key of the background-work leader lease.
pub const SYSTEM_LEADER_KEY: &[u8] = b"i/leader";

/// `system` row key holding the catalog's creation time.
pub const SYSTEM_BIRTH_KEY: &[u8] = b"i/born-ms";

/// `system` row key holding the sequence high-water mark.
pub const SYSTEM_SEQ_KEY: &[u8] = b"i/seq-high-water";

/// `system` row key of the bucket-id index (bid → bucket name).
pub fn system_bucket_id_key(bid: &BucketId) -> Vec<u8> {
    let mut out = b"i/bucket-id/".to_vec();
    out.extend_from_slice(bid);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand::Rng;

    fn random_key(rng: &mut impl Rng) -> Vec<u8> {
        let len = rng.random_range(0..6);
        // Bias towards the interesting bytes 0x00, 0x01 and 0xFF.
        (0..len)
            .map(|_| match rng.random_range(0..4) {
                0 => 0x00,
                1 => 0xFF,
                2 => 0x01,
                _ => rng.random(),
            })
            .collect()
    }

    #[test]
    fn escape_preserves_order_even_with_suffixes() {
        let mut rng = rand::rng();
        for _ in 0..20_000 {
            let a = random_key(&mut rng);
            let b = random_key(&mut rng);
            let (ea, eb) = (escape_key(&a), escape_key(&b));
            assert_eq!(a.cmp(&b), ea.cmp(&eb), "{a:?} vs {b:?}");
            let mut sa = ea.clone();
            sa.extend_from_slice(&[0xFF, 0xFF]);
            let mut sb = eb.clone();
            sb.extend_from_slice(&[0x00]);
            if a != b {
                assert_eq!(a.cmp(&b), sa.cmp(&sb), "suffix broke order: {a:?} vs {b:?}");
            }
            let (back, rest) = unescape_key(&sa).unwrap();
            assert_eq!(back, a);
            assert_eq!(rest, &[0xFF, 0xFF]);
        }
    }

    #[test]
    fn escaped_prefix_body_is_a_byte_prefix_iff_key_prefix() {
        let mut rng = rand::rng();
        for _ in 0..20_000 {
            let key = random_key(&mut rng);
            let prefix = random_key(&mut rng);
            let mut body = Vec::new();
            escape_body_into(&mut body, &prefix);
            assert_eq!(
                key.starts_with(&prefix),
                escape_key(&key).starts_with(&body)
            );
        }
    }

    #[test]
    fn unescape_rejects_malformed_input() {
        assert_eq!(unescape_key(b"abc"), None);
        assert_eq!(unescape_key(&[b'a', 0x00]), None);
        assert_eq!(unescape_key(&[b'a', 0x00, 0x07]), None);
        assert_eq!(unescape_key(&[0x00, 0x01]), Some((vec![], &[][..])));
    }

    #[test]
    fn successor_bounds_every_extension() {
        assert_eq!(successor(b"a/"), b"a0".to_vec());
        assert_eq!(successor(&[0x01, 0xFF, 0xFF]), vec![0x02]);
        assert_eq!(successor(&[0xFF, 0xFF]), Vec::<u8>::new());
        assert_eq!(successor(b""), Vec::<u8>::new());
        let mut rng = rand::rng();
        for _ in 0..20_000 {
            let prefix = random_key(&mut rng);
            let other = random_key(&mut rng);
            let succ = successor(&prefix);
            let mut extended = prefix.clone();
            extended.extend_from_slice(&other);
            if succ.is_empty() {
                assert!(prefix.iter().all(|&b| b == 0xFF));
                continue;
            }
            assert!(extended < succ, "{extended:?} !< {succ:?}");
            // Smallest such string: anything in [prefix, succ) starts with prefix.
            if other >= prefix && other < succ {
                assert!(
                    other.starts_with(&prefix),
                    "{other:?} in range of {prefix:?}"
                );
            }
        }
    }

    #[test]
    fn integers_sort_numerically_and_versions_newest_first() {
        let bid = [7u8; 16];
        assert!(version_key(&bid, b"k", 10) < version_key(&bid, b"k", 9));
        assert!(part_key(1, 2, 300) < part_key(1, 10, 0));
        assert!(due_key(255, &[0xFF; 16]) < due_key(256, &[0; 16]));
        assert_eq!(read_u64(&due_key(42, &[1; 16]), 0), Some(42));
        assert_eq!(due_key_group(&due_key(42, &[1; 16])), Some([1; 16]));
        assert!(placement_key(1, &[0xFF; 16]) < placement_key(2, &[0; 16]));
        assert_eq!(placement_group(&placement_key(7, &[3; 16])), Some([3; 16]));
        assert_eq!(placement_group(&[0; 5]), None);
        assert_eq!(read_u64(&[1, 2, 3], 0), None);
        assert_eq!(read_u64(&[0; 8], usize::MAX), None);
    }
}
