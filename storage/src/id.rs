//! Shard identities: `ShardGroupId` (one per part, a UUIDv7) and `ShardId` (group + shard index).
//!
//! Invariants: the textual forms are canonical and parsed strictly — a group id is exactly 32
//! lowercase hex characters and a shard file name is `<group hex>.<index>` with the index in
//! decimal without leading zeros. Anything else is rejected, so a name taken from a path or a URL
//! can never smuggle `..`, `/` or a second spelling of the same shard.

use std::fmt;

use crate::error::StorageError;

/// Identifies a shard group: the k+m shard files of one part. Ordered by its bytes, which for
/// UUIDv7 ids is creation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardGroupId(pub [u8; 16]);

impl ShardGroupId {
    /// A fresh, time-ordered id (UUIDv7).
    pub fn new_v7() -> Self {
        ShardGroupId(uuid::Uuid::now_v7().into_bytes())
    }

    /// The raw 16 bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// 32 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses exactly 32 lowercase hex characters (uppercase is refused: one id, one spelling).
    pub fn from_hex(text: &str) -> Result<Self, StorageError> {
        let well_formed = text.len() == 32
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !well_formed {
            return Err(StorageError::InvalidArgument(format!(
                "shard group id must be 32 lowercase hex characters, got {:?}",
                truncate_for_message(text)
            )));
        }
        let mut bytes = [0u8; 16];
        hex::decode_to_slice(text, &mut bytes)
            .map_err(|err| StorageError::InvalidArgument(format!("shard group id: {err}")))?;
        Ok(ShardGroupId(bytes))
    }
}

impl fmt::Display for ShardGroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// One shard of a group: `index` < k are data shards, the rest parity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardId {
    pub group: ShardGroupId,
    pub index: u8,
}

impl ShardId {
    pub fn new(group: ShardGroupId, index: u8) -> Self {
        ShardId { group, index }
    }

    /// `"<32 hex>.<index>"`, e.g. `0190c3…e1.4`.
    pub fn file_name(&self) -> String {
        format!("{}.{}", self.group.to_hex(), self.index)
    }

    /// Strict inverse of [`ShardId::file_name`].
    pub fn parse_file_name(name: &str) -> Result<Self, StorageError> {
        let invalid = || {
            StorageError::InvalidArgument(format!(
                "not a shard file name: {:?}",
                truncate_for_message(name)
            ))
        };
        let (group_hex, index_text) = name.split_once('.').ok_or_else(invalid)?;
        let group = ShardGroupId::from_hex(group_hex).map_err(|_| invalid())?;
        let canonical_number = !index_text.is_empty()
            && index_text.len() <= 3
            && index_text.bytes().all(|b| b.is_ascii_digit())
            && (index_text == "0" || !index_text.starts_with('0'));
        if !canonical_number {
            return Err(invalid());
        }
        let index: u8 = index_text.parse().map_err(|_| invalid())?;
        Ok(ShardId { group, index })
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file_name())
    }
}

/// Keeps error messages short when the input is attacker-sized.
fn truncate_for_message(text: &str) -> String {
    text.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hex_round_trip_is_lowercase_and_strict() {
        let id = ShardGroupId::new_v7();
        let text = id.to_hex();
        assert_eq!(text.len(), 32);
        assert_eq!(text, text.to_lowercase());
        assert_eq!(ShardGroupId::from_hex(&text).unwrap(), id);
        for bad in [
            "",
            &text[..31],
            &format!("{text}0"),
            &text.to_uppercase(),
            "g0000000000000000000000000000000",
            "../00000000000000000000000000000",
        ] {
            if bad != text {
                assert!(ShardGroupId::from_hex(bad).is_err(), "accepted {bad:?}");
            }
        }
    }

    #[test]
    fn v7_ids_are_time_ordered_and_unique() {
        let first = ShardGroupId::new_v7();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = ShardGroupId::new_v7();
        assert!(first < second);
    }

    #[test]
    fn file_name_round_trip_and_rejects_noncanonical_forms() {
        let group = ShardGroupId([0xab; 16]);
        for index in [0u8, 7, 10, 255] {
            let id = ShardId::new(group, index);
            assert_eq!(ShardId::parse_file_name(&id.file_name()).unwrap(), id);
        }
        let hex = group.to_hex();
        assert_eq!(ShardId::new(group, 12).file_name(), format!("{hex}.12"));
        for bad in [
            hex.clone(),
            format!("{hex}."),
            format!("{hex}.01"),
            format!("{hex}.256"),
            format!("{hex}.-1"),
            format!("{hex}.+1"),
            format!("{hex}.1.tmp"),
            format!("{hex}.1 "),
            format!("{}.1", hex.to_uppercase()),
            "..".to_string(),
        ] {
            assert!(ShardId::parse_file_name(&bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn shard_ids_order_by_group_then_index() {
        let low = ShardGroupId([1; 16]);
        let high = ShardGroupId([2; 16]);
        assert!(ShardId::new(low, 9) < ShardId::new(high, 0));
        assert!(ShardId::new(low, 2) < ShardId::new(low, 10));
    }
}
