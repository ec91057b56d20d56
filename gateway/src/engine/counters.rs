//! `EngineCounters`: monotonic counters of the gateway's scrub work, read by the metrics
//! endpoint (`crate::metrics`) at scrape time. Plain atomics: the engine knows nothing of
//! Prometheus, and a counter only ever grows (relaxed ordering is enough for statistics).

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of scrub work since the process started (repair and GC count in
/// `repair::HealingState`).
#[derive(Debug, Default)]
pub struct EngineCounters {
    /// Corrupt shards reported by scrubbers and handed to `Engine::on_corrupt_shard`.
    pub scrub_corrupt_shards: AtomicU64,
    /// Scrub reports dropped because they named no valid shard.
    pub scrub_bad_reports: AtomicU64,
}

/// A consistent-enough copy of [`EngineCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    pub scrub_corrupt_shards: u64,
    pub scrub_bad_reports: u64,
}

impl EngineCounters {
    pub fn snapshot(&self) -> CounterSnapshot {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        CounterSnapshot {
            scrub_corrupt_shards: read(&self.scrub_corrupt_shards),
            scrub_bad_reports: read(&self.scrub_bad_reports),
        }
    }
}
