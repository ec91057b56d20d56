//! What the request path tells background work, without depending on it: that a client request
//! started (repair slows to its busy budget for the next second) and that a read found bad
//! shards (deduplicated here, then queued in the catalog for the healer). The healer reads
//! these; the request path only writes them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

/// Reports of the same shard within this window are one report (a degraded object read in a
/// loop must not turn every GET into a metadata write).
const REPORT_DEDUPE: Duration = Duration::from_secs(30);
/// Bound on the in-memory report dedupe table.
const REPORT_TABLE_MAX: usize = 10_000;
/// Foreground traffic counts as ongoing for this long after a request started (a large GET
/// streams its body long after its handler returned).
pub(crate) const BUSY_WINDOW: Duration = Duration::from_secs(1);

/// Request-path signals for the healer.
pub(crate) struct HealingSignals {
    /// Bad shards reported by reads and by scrubbing (monotonic).
    pub shards_reported: AtomicU64,
    recent_reports: Mutex<HashMap<([u8; 16], u8), Instant>>,
    /// Milliseconds since `epoch` at which the last foreground request started (0: none yet).
    last_foreground_ms: AtomicU64,
    epoch: std::time::Instant,
}

/// Locks a mutex over plain collections; a panic elsewhere cannot break them, so poisoning is
/// ignored.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Default for HealingSignals {
    fn default() -> Self {
        HealingSignals {
            shards_reported: AtomicU64::new(0),
            recent_reports: Mutex::new(HashMap::new()),
            last_foreground_ms: AtomicU64::new(0),
            epoch: std::time::Instant::now(),
        }
    }
}

impl HealingSignals {
    /// Records that a client request started (one relaxed store: cheap on every request).
    pub fn note_foreground(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last_foreground_ms.store(ms.max(1), Ordering::Relaxed);
    }

    /// Whether a client request started within the last `BUSY_WINDOW`.
    pub fn foreground_busy(&self) -> bool {
        let last = self.last_foreground_ms.load(Ordering::Relaxed);
        last != 0
            && (self.epoch.elapsed().as_millis() as u64).saturating_sub(last)
                < BUSY_WINDOW.as_millis() as u64
    }

    /// The shards of `indexes` not reported for `group` within the dedupe window (now they
    /// are), counted as reported.
    pub fn fresh_reports(&self, group: [u8; 16], indexes: Vec<u8>) -> Vec<u8> {
        let fresh: Vec<u8> = {
            let mut recent = lock(&self.recent_reports);
            let now = Instant::now();
            if recent.len() > REPORT_TABLE_MAX {
                recent.retain(|_, at| now.duration_since(*at) < REPORT_DEDUPE);
            }
            indexes
                .into_iter()
                .filter(|&i| match recent.get(&(group, i)) {
                    Some(at) if now.duration_since(*at) < REPORT_DEDUPE => false,
                    _ => {
                        recent.insert((group, i), now);
                        true
                    }
                })
                .collect()
        };
        self.shards_reported
            .fetch_add(fresh.len() as u64, Ordering::Relaxed);
        fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreground_is_busy_for_a_second_after_a_request() {
        let signals = HealingSignals::default();
        assert!(!signals.foreground_busy());
        signals.note_foreground();
        assert!(signals.foreground_busy());
        signals.last_foreground_ms.store(1, Ordering::Relaxed);
        std::thread::sleep(BUSY_WINDOW + Duration::from_millis(20));
        assert!(!signals.foreground_busy());
    }

    #[test]
    fn a_shard_is_reported_once_per_window() {
        let signals = HealingSignals::default();
        assert_eq!(signals.fresh_reports([1; 16], vec![0, 2]), vec![0, 2]);
        assert_eq!(signals.fresh_reports([1; 16], vec![2, 3]), vec![3]);
        assert_eq!(signals.shards_reported.load(Ordering::Relaxed), 3);
    }
}
