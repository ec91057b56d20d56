//! Read leases: a GET in progress keeps the shard groups it reads alive.
//!
//! Opening an object takes a lease on every shard group of the version; the lease lives as
//! long as the response body (dropped when the body ends or the client goes away). GC skips a
//! due group while a lease on it is held, and tries it again shortly after, so a slow download
//! of a version that was overwritten or deleted still gets every byte, as in S3.
//!
//! Invariants: a lease older than `max_age` (`read_lease_secs`) no longer protects anything, so a
//! stuck reader cannot pin data forever; the table holds only live leases (each is removed
//! when it drops) and its lock is never held across an await. The gateway drives GC in
//! embedded and cluster mode alike, so leases kept in the gateway process cover both. Gateways
//! sharing a catalog also publish their held groups there every `lease / 4`
//! (`members::Membership::spawn`), and the leader's GC spares those of live gateways: a read
//! that began before its version was replaced has been published long before the replaced
//! groups fall due (`gc_delay_secs`, which must exceed `leader_lease_ms / 4`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// For each leased shard group: the id and start of every read holding it.
type LeaseTable = HashMap<[u8; 16], Vec<(u64, Instant)>>;

/// The leases held on shard groups by the reads in progress.
#[derive(Debug)]
pub struct ReadLeases {
    held: Mutex<LeaseTable>,
    next_id: AtomicU64,
    max_age: Duration,
}

/// One read's lease on the shard groups it reads; released when dropped.
#[derive(Debug)]
pub struct ReadLease {
    leases: Arc<ReadLeases>,
    id: u64,
    groups: Vec<[u8; 16]>,
}

impl ReadLeases {
    /// A table whose leases protect their groups for at most `max_age`.
    pub fn new(max_age: Duration) -> Arc<ReadLeases> {
        Arc::new(ReadLeases {
            held: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            max_age,
        })
    }

    fn table(&self) -> MutexGuard<'_, LeaseTable> {
        // Plain bookkeeping: a panic elsewhere cannot leave it half-updated.
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes a lease on `groups` (duplicates are fine).
    pub fn acquire(self: &Arc<Self>, mut groups: Vec<[u8; 16]>) -> ReadLease {
        groups.sort_unstable();
        groups.dedup();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut table = self.table();
        for group in &groups {
            table.entry(*group).or_default().push((id, now));
        }
        ReadLease {
            leases: Arc::clone(self),
            id,
            groups,
        }
    }

    /// Whether a read still holds `group` under a lease younger than `max_age`.
    pub fn is_held(&self, group: &[u8; 16]) -> bool {
        self.table().get(group).is_some_and(|readers| {
            readers
                .iter()
                .any(|(_, since)| since.elapsed() < self.max_age)
        })
    }

    /// Every group a read holds under a lease younger than `max_age`, sorted (what a gateway
    /// sharing its catalog publishes for the leader's GC).
    pub fn held_groups(&self) -> Vec<[u8; 16]> {
        let mut groups: Vec<[u8; 16]> = self
            .table()
            .iter()
            .filter(|(_, readers)| {
                readers
                    .iter()
                    .any(|(_, since)| since.elapsed() < self.max_age)
            })
            .map(|(group, _)| *group)
            .collect();
        groups.sort_unstable();
        groups
    }

    /// True when no read holds a lease.
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.table().is_empty()
    }
}

impl Drop for ReadLease {
    fn drop(&mut self) {
        let mut table = self.leases.table();
        for group in &self.groups {
            if let Some(readers) = table.get_mut(group) {
                readers.retain(|(id, _)| *id != self.id);
                if readers.is_empty() {
                    table.remove(group);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_protects_its_groups_until_dropped() {
        let leases = ReadLeases::new(Duration::from_secs(3600));
        let (a, b) = ([1u8; 16], [2u8; 16]);
        let first = leases.acquire(vec![a, b, a]);
        let second = leases.acquire(vec![a]);
        assert!(leases.is_held(&a) && leases.is_held(&b));
        let mut both = vec![a, b];
        both.sort_unstable();
        assert_eq!(leases.held_groups(), both);
        drop(first);
        assert!(leases.is_held(&a));
        assert!(!leases.is_held(&b));
        drop(second);
        assert!(!leases.is_held(&a));
        assert!(leases.is_empty());
    }

    #[test]
    fn an_expired_lease_protects_nothing() {
        let leases = ReadLeases::new(Duration::ZERO);
        let group = [7u8; 16];
        let lease = leases.acquire(vec![group]);
        assert!(!leases.is_held(&group));
        drop(lease);
        assert!(leases.is_empty());
    }
}
