//! Scrubbing (DESIGN §4, §7): a background task per `LocalShardStore` re-reads every committed
//! shard file slowly and verifies its header, its length and every frame checksum with the
//! checks of `format` and `local` (no second implementation). A corrupt or unreadable file is
//! moved to `<store>/quarantine/` — never deleted: it is evidence — and recorded in the store's
//! durable [`ScrubLedger`], from which a gateway fetches the reports (`ShardStore::scrub_status`)
//! and acknowledges them (`ShardStore::ack_scrub_reports`) once it has queued the repair.
//!
//! Pace: at most `bytes_per_sec` of shard bytes read (0 = unlimited) plus `file_pause` after
//! each file; passes start `pass_interval` after the previous one completed (also across
//! restarts: the completion time is in the ledger). Only `shards/` is walked, in `ShardId` order
//! through the store's own paged `list`, so `tmp/` (shards being written) is never touched; a
//! shard deleted while it is checked is not an error. The task stops between two steps (at
//! most about 1 MiB of reading) when shutdown is signalled.

pub(crate) mod ledger;
pub(crate) mod report;
mod verify;

use std::time::{Duration, Instant};

use tokio::sync::watch;

pub use ledger::{ScrubLedger, LEDGER_FORMAT, MAX_REPORTS};
pub(crate) use report::now_ms;
pub use report::{ScrubReport, ScrubStatus};
use verify::{open_check, quarantine, Verdict};

use crate::error::StorageError;
use crate::id::ShardId;
use crate::local::LocalShardStore;
use crate::store::ShardStore;

/// Shards listed per page while walking the store.
const LIST_PAGE: usize = 256;
/// The pacer never lets a slow stretch turn into a burst longer than this.
const MAX_CATCH_UP: Duration = Duration::from_secs(1);

/// How a store is scrubbed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrubConfig {
    /// Off: no task runs (status still answers, showing `enabled: false`).
    pub enabled: bool,
    /// Most shard bytes read per second; 0 = as fast as the disk goes.
    pub bytes_per_sec: u64,
    /// Pause after each file (spares small-file-heavy disks the metadata churn).
    pub file_pause: Duration,
    /// Time from the end of one full pass to the start of the next.
    pub pass_interval: Duration,
}

impl Default for ScrubConfig {
    /// Gentle: 8 MiB/s (a 4 TiB disk in about six days), 5 ms between files, a new pass a day
    /// after the last one ended.
    fn default() -> Self {
        ScrubConfig {
            enabled: true,
            bytes_per_sec: 8 << 20,
            file_pause: Duration::from_millis(5),
            pass_interval: Duration::from_secs(24 * 3600),
        }
    }
}

/// Spreads reading over time: after `bytes` in total since `started`, the reader must not be
/// ahead of `bytes / rate` seconds.
#[derive(Debug)]
pub(crate) struct Pacer {
    rate: u64,
    started: Instant,
    bytes: u64,
}

impl Pacer {
    pub fn new(rate: u64, now: Instant) -> Self {
        Pacer {
            rate,
            started: now,
            bytes: 0,
        }
    }

    /// Accounts `bytes` more read at `now`; returns how long to wait before reading on.
    pub fn after_read(&mut self, bytes: u64, now: Instant) -> Duration {
        if self.rate == 0 {
            return Duration::ZERO;
        }
        self.bytes = self.bytes.saturating_add(bytes);
        let due = Duration::from_secs_f64(self.bytes as f64 / self.rate as f64);
        let elapsed = now.saturating_duration_since(self.started);
        if elapsed > due + MAX_CATCH_UP {
            // Far behind (slow disk, long pause): start afresh instead of bursting.
            self.started = now;
            self.bytes = 0;
            return Duration::ZERO;
        }
        due.saturating_sub(elapsed)
    }
}

/// Runs the scrubber of `store` until `shutdown` turns true. Returns at once (with the status
/// showing `enabled: false`) when the config disables scrubbing.
pub fn spawn_scrubber(
    store: LocalShardStore,
    config: ScrubConfig,
    shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    store
        .scrub_ledger()
        .set_config(config.enabled, config.bytes_per_sec);
    tokio::spawn(async move {
        if config.enabled {
            let mut scrubber = Scrubber {
                store,
                config,
                shutdown,
            };
            scrubber.run().await;
        }
    })
}

struct Scrubber {
    store: LocalShardStore,
    config: ScrubConfig,
    shutdown: watch::Receiver<bool>,
}

impl Scrubber {
    async fn run(&mut self) {
        let ledger = self.store.scrub_ledger().clone();
        // Resume the rhythm across restarts: the next pass is due `pass_interval` after the
        // last completed one.
        let mut wait = ledger
            .last_pass_completed_ms()
            .map(|last| {
                let due = last.saturating_add(
                    u64::try_from(self.config.pass_interval.as_millis()).unwrap_or(u64::MAX),
                );
                Duration::from_millis(due.saturating_sub(now_ms()))
            })
            .unwrap_or(Duration::ZERO);
        loop {
            if !self.sleep(wait).await {
                return;
            }
            let completed = self.pass().await;
            let recorder = ledger.clone();
            let recorded = tokio::task::spawn_blocking(move || recorder.end_pass(completed))
                .await
                .map_err(StorageError::from)
                .and_then(|recorded| recorded);
            if let Err(err) = recorded {
                tracing::warn!(store = %self.store.name(), error = %err, "cannot record the scrub pass");
            }
            if self.stopping() {
                return;
            }
            let status = ledger.status();
            tracing::info!(
                store = %self.store.name(),
                completed,
                files = status.last_pass_files_checked,
                bytes = status.last_pass_bytes_checked,
                corrupt = status.last_pass_corrupt_found,
                duration_ms = status.last_pass_duration_ms,
                "scrub pass ended"
            );
            wait = self.config.pass_interval;
        }
    }

    fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Sleeps `duration` unless shutdown comes first; false when stopping.
    async fn sleep(&mut self, duration: Duration) -> bool {
        if self.stopping() {
            return false;
        }
        if duration.is_zero() {
            return true;
        }
        tokio::select! {
            () = tokio::time::sleep(duration) => !self.stopping(),
            _ = self.shutdown.changed() => false,
        }
    }

    /// One walk over every committed shard; true when it got to the end.
    async fn pass(&mut self) -> bool {
        let ledger = self.store.scrub_ledger().clone();
        ledger.begin_pass();
        let mut pacer = Pacer::new(self.config.bytes_per_sec, Instant::now());
        let mut cursor = None;
        loop {
            let page = match self.store.list(cursor, LIST_PAGE).await {
                Ok(page) => page,
                Err(err) => {
                    tracing::warn!(store = %self.store.name(), error = %err, "scrub cannot list shards: pass abandoned");
                    return false;
                }
            };
            let Some(last) = page.last().copied() else {
                return true;
            };
            for id in page {
                if !self.check_shard(id, &mut pacer).await {
                    return false;
                }
                if !self.sleep(self.config.file_pause).await {
                    return false;
                }
            }
            cursor = Some(last);
        }
    }

    /// Checks one shard file step by step; false when stopping.
    async fn check_shard(&mut self, id: ShardId, pacer: &mut Pacer) -> bool {
        let ledger = self.store.scrub_ledger().clone();
        let path = self.store.shard_path(id);
        let opened = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || open_check(&path, id)).await
        };
        let (verdict, identity) = match opened {
            Err(join) => (Verdict::Retry(join.to_string()), None),
            Ok(Err((verdict, identity))) => (verdict, identity),
            Ok(Ok(mut check)) => {
                let identity = Some(check.identity());
                let verdict = loop {
                    if check.done() {
                        break Verdict::Healthy;
                    }
                    let stepped = tokio::task::spawn_blocking(move || {
                        let outcome = check.step();
                        (check, outcome)
                    })
                    .await;
                    let outcome = match stepped {
                        Err(join) => break Verdict::Retry(join.to_string()),
                        Ok((returned, outcome)) => {
                            check = returned;
                            outcome
                        }
                    };
                    match outcome {
                        Ok(bytes) => {
                            ledger.add_bytes(bytes);
                            let wait = pacer.after_read(bytes, Instant::now());
                            if !self.sleep(wait).await {
                                return false;
                            }
                        }
                        Err(verdict) => break verdict,
                    }
                };
                (verdict, identity)
            }
        };
        match verdict {
            Verdict::Healthy => ledger.add_file(),
            Verdict::Vanished => {}
            Verdict::Retry(reason) => {
                ledger.add_error();
                tracing::warn!(store = %self.store.name(), shard = %id, %reason, "scrub could not check a shard: retried next pass");
            }
            Verdict::Corrupt(reason) => {
                ledger.add_file();
                self.quarantine_and_report(id, identity, reason).await;
            }
        }
        true
    }

    async fn quarantine_and_report(
        &self,
        id: ShardId,
        identity: Option<verify::Identity>,
        reason: String,
    ) {
        let root = self.store.root().to_path_buf();
        let path = self.store.shard_path(id);
        let fsync = self.store.fsyncs();
        let moved = tokio::task::spawn_blocking(move || quarantine(&root, &path, identity, fsync))
            .await
            .map_err(StorageError::from)
            .and_then(|moved| moved);
        let quarantined = match moved {
            Ok(Some(name)) => Some(name),
            // Deleted or rewritten since it was read: the bad bytes are gone, nothing to report.
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(store = %self.store.name(), shard = %id, error = %err, "cannot quarantine a corrupt shard: reporting it in place");
                None
            }
        };
        tracing::warn!(store = %self.store.name(), shard = %id, %reason, quarantine = ?quarantined, "scrub found a corrupt shard");
        let ledger = self.store.scrub_ledger().clone();
        let recorded = tokio::task::spawn_blocking(move || {
            ledger.add_report(id.file_name(), reason, quarantined)
        })
        .await
        .map_err(StorageError::from)
        .and_then(|recorded| recorded);
        match recorded {
            Ok(Some(_)) => {}
            Ok(None) => {
                tracing::warn!(store = %self.store.name(), shard = %id, "scrub report list is full: finding counted, not listed")
            }
            Err(err) => {
                tracing::error!(store = %self.store.name(), shard = %id, error = %err, "cannot record a scrub report")
            }
        }
    }
}

#[cfg(test)]
mod tests;
