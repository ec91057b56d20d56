//! Placement: which node holds which shard of a group.
//!
//! Weighted rendezvous (highest random weight) hashing of the group id over the candidate nodes:
//! node `i` scores `weight_i / -ln(u_i)` with `u_i` uniform in (0, 1) from `hash(group ‖ id)`, so
//! a node's share of shards is proportional to its weight and removing a node only moves the
//! shards it held. When nodes carry zones, the choice walks the score order in rounds, taking at
//! most one node per zone per round, so a group spreads over as many zones as exist. The result
//! is recorded in the layout and never recomputed on read.

use xxhash_rust::xxh3::xxh3_64;

/// A node placement may choose.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub id: u32,
    pub weight: f64,
    pub zone: Option<String>,
}

fn score(group: &[u8; 16], candidate: &Candidate) -> f64 {
    let mut input = [0u8; 20];
    input[..16].copy_from_slice(group);
    input[16..].copy_from_slice(&candidate.id.to_be_bytes());
    // 53 random bits → u in (0, 1), never 0 or 1.
    let bits = xxh3_64(&input) >> 11;
    let u = (bits as f64 + 0.5) / (1u64 << 53) as f64;
    candidate.weight.max(f64::MIN_POSITIVE) / -u.ln()
}

/// Picks `count` distinct nodes for `group`, best first (shard 0 on the first).
/// Returns `None` when there are fewer candidates than shards.
pub fn place_group(group: &[u8; 16], candidates: &[Candidate], count: usize) -> Option<Vec<u32>> {
    if candidates.len() < count {
        return None;
    }
    let mut ranked: Vec<(f64, &Candidate)> =
        candidates.iter().map(|c| (score(group, c), c)).collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.id.cmp(&b.1.id)));
    let mut chosen: Vec<u32> = Vec::with_capacity(count);
    let mut taken = vec![false; ranked.len()];
    while chosen.len() < count {
        let mut zones_this_round: Vec<&str> = Vec::new();
        let before = chosen.len();
        for (i, (_, candidate)) in ranked.iter().enumerate() {
            if chosen.len() == count {
                break;
            }
            if taken[i] {
                continue;
            }
            if let Some(zone) = candidate.zone.as_deref() {
                if zones_this_round.contains(&zone) {
                    continue;
                }
                zones_this_round.push(zone);
            }
            taken[i] = true;
            chosen.push(candidate.id);
        }
        if chosen.len() == before {
            return None;
        }
    }
    Some(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(n: u32) -> Vec<Candidate> {
        (0..n)
            .map(|id| Candidate {
                id,
                weight: 1.0,
                zone: None,
            })
            .collect()
    }

    #[test]
    fn picks_distinct_nodes_and_is_stable() {
        let candidates = nodes(6);
        let group = [7u8; 16];
        let a = place_group(&group, &candidates, 6).unwrap();
        assert_eq!(a, place_group(&group, &candidates, 6).unwrap());
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..6).collect::<Vec<_>>());
        assert!(place_group(&group, &candidates, 7).is_none());
    }

    #[test]
    fn load_follows_weight() {
        let mut candidates = nodes(8);
        candidates[0].weight = 3.0;
        let mut counts = [0usize; 8];
        for i in 0..4000u32 {
            let mut group = [0u8; 16];
            group[..4].copy_from_slice(&i.to_be_bytes());
            for id in place_group(&group, &candidates, 1).unwrap() {
                counts[id as usize] += 1;
            }
        }
        // Weight 3 of a total 10: about 1,200 of 4,000; the others about 400 each.
        assert!((1000..1400).contains(&counts[0]), "{counts:?}");
        assert!(
            counts[1..].iter().all(|&c| (280..520).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn removing_a_node_moves_only_its_shards() {
        let all = nodes(8);
        let without: Vec<Candidate> = all.iter().filter(|c| c.id != 3).cloned().collect();
        for i in 0..500u32 {
            let mut group = [0u8; 16];
            group[..4].copy_from_slice(&i.to_be_bytes());
            let before = place_group(&group, &all, 1).unwrap();
            let after = place_group(&group, &without, 1).unwrap();
            if before[0] != 3 {
                assert_eq!(before, after);
            }
        }
    }

    #[test]
    fn spreads_over_zones() {
        let candidates: Vec<Candidate> = (0..9)
            .map(|id| Candidate {
                id,
                weight: 1.0,
                zone: Some(format!("z{}", id % 3)),
            })
            .collect();
        for i in 0..200u32 {
            let mut group = [0u8; 16];
            group[..4].copy_from_slice(&i.to_be_bytes());
            let chosen = place_group(&group, &candidates, 6).unwrap();
            let mut per_zone = [0usize; 3];
            for id in &chosen {
                per_zone[(*id % 3) as usize] += 1;
            }
            assert_eq!(per_zone, [2, 2, 2], "{chosen:?}");
        }
    }
}
