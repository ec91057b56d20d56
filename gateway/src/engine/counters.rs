//! `EngineCounters`: monotonic counters of the engine's background work, read by the metrics
//! endpoint (`crate::metrics`) at scrape time. Plain atomics: the engine knows nothing of
//! Prometheus, and a counter only ever grows (relaxed ordering is enough for statistics).

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of GC and scrub work since the process started.
#[derive(Debug, Default)]
pub struct EngineCounters {
    /// Shard groups whose every shard was deleted by GC.
    pub gc_groups_collected: AtomicU64,
    /// Shard bytes (frames, without headers) of the shards GC deleted.
    pub gc_bytes_collected: AtomicU64,
    /// GC items put back for a later retry (a delete failed or a store was unreachable).
    pub gc_retries: AtomicU64,
    /// Corrupt shards reported by scrubbers and handed to `Engine::on_corrupt_shard`.
    pub scrub_corrupt_shards: AtomicU64,
    /// Scrub reports dropped because they named no valid shard.
    pub scrub_bad_reports: AtomicU64,
}

/// A consistent-enough copy of [`EngineCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    pub gc_groups_collected: u64,
    pub gc_bytes_collected: u64,
    pub gc_retries: u64,
    pub scrub_corrupt_shards: u64,
    pub scrub_bad_reports: u64,
}

impl EngineCounters {
    pub fn snapshot(&self) -> CounterSnapshot {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        CounterSnapshot {
            gc_groups_collected: read(&self.gc_groups_collected),
            gc_bytes_collected: read(&self.gc_bytes_collected),
            gc_retries: read(&self.gc_retries),
            scrub_corrupt_shards: read(&self.scrub_corrupt_shards),
            scrub_bad_reports: read(&self.scrub_bad_reports),
        }
    }
}
