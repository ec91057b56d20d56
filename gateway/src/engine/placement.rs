//! Placement: which shard store holds which shard of a group.
//!
//! Weighted rendezvous (highest random weight) hashing of the group id over the candidate stores:
//! every store gets a score from `hash(group ‖ store id)`, the k+m best distinct stores win, in
//! score order (shard 0 on the best). The result is recorded in the layout and never recomputed
//! on read, so adding stores later does not move existing data.

use xxhash_rust::xxh3::xxh3_64;

/// Picks `count` distinct stores out of `candidates` (store ids) for `group`.
/// Returns `None` when there are fewer candidates than shards.
pub fn place_group(group: &[u8; 16], candidates: &[u32], count: usize) -> Option<Vec<u32>> {
    if candidates.len() < count {
        return None;
    }
    let mut scored: Vec<(u64, u32)> = candidates
        .iter()
        .map(|&id| {
            let mut input = [0u8; 20];
            input[..16].copy_from_slice(group);
            input[16..].copy_from_slice(&id.to_be_bytes());
            (xxh3_64(&input), id)
        })
        .collect();
    scored.sort_unstable_by(|a, b| b.cmp(a));
    let mut chosen: Vec<u32> = scored.into_iter().map(|(_, id)| id).collect();
    chosen.truncate(count);
    Some(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_distinct_stores_and_is_stable() {
        let candidates: Vec<u32> = (0..6).collect();
        let group = [7u8; 16];
        let a = place_group(&group, &candidates, 6).unwrap();
        let b = place_group(&group, &candidates, 6).unwrap();
        assert_eq!(a, b);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, candidates);
        assert!(place_group(&group, &candidates, 7).is_none());
    }

    #[test]
    fn spreads_first_shard_over_stores() {
        let candidates: Vec<u32> = (0..6).collect();
        let mut firsts = [0usize; 6];
        for i in 0..600u32 {
            let mut group = [0u8; 16];
            group[..4].copy_from_slice(&i.to_be_bytes());
            let chosen = place_group(&group, &candidates, 6).unwrap();
            firsts[chosen[0] as usize] += 1;
        }
        assert!(firsts.iter().all(|&n| n > 50), "{firsts:?}");
    }
}
