//! The healer's counters: repair, GC, node scans and scrub hand-overs, monotonic since the
//! gateway started. Read by the admin status calls and by the metrics endpoint
//! (`crate::metrics`) at scrape time. Plain atomics: the engine knows nothing of Prometheus,
//! and a counter only ever grows (relaxed ordering is enough for statistics). Shards reported
//! bad by reads are counted where they are reported (`engine::signals`).

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of background work since the process started.
#[derive(Debug, Default)]
pub struct Counters {
    pub groups_repaired: AtomicU64,
    pub shards_rebuilt: AtomicU64,
    pub bytes_rebuilt: AtomicU64,
    pub bytes_read: AtomicU64,
    pub repair_failures: AtomicU64,
    pub groups_discarded: AtomicU64,
    pub groups_found_healthy: AtomicU64,
    pub last_repair_ms: AtomicU64,
    pub gc_groups_collected: AtomicU64,
    pub gc_shards_deleted: AtomicU64,
    pub gc_bytes_collected: AtomicU64,
    pub gc_failures: AtomicU64,
    pub stale_intents_collected: AtomicU64,
    pub expired_uploads_aborted: AtomicU64,
    pub orphans_removed: AtomicU64,
    pub orphan_bytes_removed: AtomicU64,
    pub missing_shards_found: AtomicU64,
    pub node_scans: AtomicU64,
    pub last_scan_ms: AtomicU64,
    /// Corrupt shards reported by scrubbers and handed to `Healer::on_corrupt_shard`.
    pub scrub_corrupt_shards: AtomicU64,
    /// Scrub reports dropped because they named no valid shard.
    pub scrub_bad_reports: AtomicU64,
}

/// A consistent-enough copy of the scrub counters of [`Counters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    pub scrub_corrupt_shards: u64,
    pub scrub_bad_reports: u64,
}

impl Counters {
    pub fn snapshot(&self) -> CounterSnapshot {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        CounterSnapshot {
            scrub_corrupt_shards: read(&self.scrub_corrupt_shards),
            scrub_bad_reports: read(&self.scrub_bad_reports),
        }
    }
}
