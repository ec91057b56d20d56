//! Repair (healing, DESIGN §7): the background worker that drains the durable repair queue,
//! the hooks that feed it (scrub reports, lost and returning nodes; read failures come through
//! `signals`) and the status behind `/_strata/admin/repair` and `/_strata/admin/gc`.
//!
//! Invariants: a group is repaired by at most one task at a time (`in_flight`); a queue item
//! leaves the queue only in the batch that publishes its repair, or once the group is known to
//! be healthy or gone — any failure moves it to a later due time with exponential backoff, so
//! work survives crashes and restarts; repair I/O is paced by one shared byte budget, which
//! shrinks to `repair_busy_bytes_per_sec` while clients are being served, so repair yields to
//! foreground traffic without ever stopping. The rebuild itself lives in `rebuild`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use metadata::catalog::repair_backoff_ms;
use metadata::model::RepairItem;
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::{GroupClaim, Healer};
use crate::engine::signals::lock;
use crate::engine::{now_ms, EngineError};

/// A byte-rate limiter shared by every repair task: each call books its bytes on a virtual
/// timeline and sleeps until its slot. While foreground traffic runs, the rate is the busy
/// rate and no burst is banked; otherwise at most one second of burst is banked.
pub(super) struct Pacer {
    bytes_per_sec: u64,
    busy_bytes_per_sec: u64,
    next_free: Mutex<Instant>,
}

impl Pacer {
    pub(super) fn new(bytes_per_sec: u64, busy_bytes_per_sec: u64) -> Pacer {
        Pacer {
            bytes_per_sec,
            busy_bytes_per_sec,
            next_free: Mutex::new(Instant::now()),
        }
    }

    /// The byte rate in force (0: unlimited).
    pub(super) fn rate(&self, busy: bool) -> u64 {
        match (busy, self.busy_bytes_per_sec, self.bytes_per_sec) {
            (false, _, rate) | (true, 0, rate) => rate,
            (true, busy, 0) => busy,
            (true, busy, rate) => busy.min(rate),
        }
    }

    pub(super) async fn pace(&self, bytes: u64, busy: bool) {
        let rate = self.rate(busy);
        if rate == 0 || bytes == 0 {
            return;
        }
        let burst = if busy {
            Duration::ZERO
        } else {
            Duration::from_secs(1)
        };
        let wait = {
            let mut next = lock(&self.next_free);
            let now = Instant::now();
            let earliest = now.checked_sub(burst).unwrap_or(now);
            let start = (*next).max(earliest);
            *next = start + Duration::from_secs_f64(bytes as f64 / rate as f64);
            next.saturating_duration_since(now).saturating_sub(burst)
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// `GET /_strata/admin/repair`. Field names are a stable contract (snake_case).
#[derive(Debug, Clone, Serialize)]
pub struct RepairStatus {
    /// Shard groups waiting in the durable repair queue (counted up to 1,000,000): every
    /// degraded group the gateway knows of.
    pub queue_length: u64,
    /// Groups being rebuilt right now.
    pub in_flight: u64,
    pub groups_repaired: u64,
    pub shards_rebuilt: u64,
    pub bytes_rebuilt: u64,
    /// Shard bytes read from good shards to rebuild.
    pub bytes_read: u64,
    /// Attempts that failed and were rescheduled with backoff.
    pub failed_attempts: u64,
    /// Queued groups that no longer existed (object overwritten or deleted meanwhile).
    pub groups_discarded: u64,
    /// Queued groups that turned out to be complete.
    pub groups_found_healthy: u64,
    /// Bad shards reported by reads and by scrubbing.
    pub shards_reported: u64,
    /// Shards found missing by node scans (wiped or replaced disks).
    pub missing_shards_found: u64,
    /// Nodes down for longer than `node_lost_after_secs`, whose shards are rebuilt elsewhere.
    pub nodes_lost: Vec<u32>,
    pub last_repair_ms: u64,
    pub bytes_per_sec_limit: u64,
    /// The budget while clients are being served (`repair_busy_bytes_per_sec`, at most
    /// `bytes_per_sec_limit`; 0: unlimited).
    pub busy_bytes_per_sec_limit: u64,
    /// Whether a client request started within the last second (repair runs at the busy rate).
    pub foreground_busy: bool,
}

/// `GET /_strata/admin/gc`. Field names are a stable contract (snake_case).
#[derive(Debug, Clone, Serialize)]
pub struct GcStatus {
    /// Shard groups (or single replaced shards) waiting for deletion (counted up to 1,000,000).
    pub queue_length: u64,
    /// Catalog cleanup jobs pending (completed or aborted uploads whose part rows are still
    /// being removed, retired many-part versions, deleted buckets): they queue more GC items.
    pub cleanup_jobs: u64,
    pub groups_collected: u64,
    pub shards_deleted: u64,
    /// Shard bytes (frames) of the collected groups.
    pub bytes_collected: u64,
    pub failed_deletes: u64,
    pub stale_intents_collected: u64,
    pub expired_uploads_aborted: u64,
    pub orphans_removed: u64,
    pub orphan_bytes_removed: u64,
    pub node_scans: u64,
    pub last_scan_ms: u64,
    pub gc_delay_secs: u64,
}

/// What one repair attempt found or did.
pub(crate) enum Attempt {
    /// Nothing to rebuild; the item ends.
    Healthy,
    /// No live layout holds the group any more; the item ends.
    Gone,
    /// The swap published rebuilt shards and ended the item.
    Repaired,
    /// Try again later (after backoff), with these extra shard indexes reported.
    Retry { handled: Vec<u8>, extra: Vec<u8> },
}

const QUEUE_COUNT_LIMIT: usize = 1_000_000;

impl Healer {
    /// Queues a repair for shard `index` of `group` (the scrubber's hook: call it for a shard
    /// whose file failed verification or was quarantined). Idempotent: a group already queued
    /// only gains the index.
    pub async fn report_bad_shard(
        &self,
        group: [u8; 16],
        index: u8,
        reason: &str,
    ) -> Result<(), EngineError> {
        self.engine
            .signals
            .shards_reported
            .fetch_add(1, Ordering::Relaxed);
        let reason = reason.to_string();
        let now = now_ms();
        self.engine
            .meta(move |c| c.queue_repair(group, &reason, &[index], now))
            .await?;
        Ok(())
    }

    /// Whether node `id` has been down for longer than the lost-node grace period.
    pub(crate) fn node_lost(&self, id: u32) -> bool {
        let grace = self.engine.config.healing.node_lost_after.as_millis() as u64;
        self.engine
            .cluster
            .down_since_ms(id)
            .is_some_and(|since| now_ms().saturating_sub(since) >= grace)
    }

    /// Runs the repair worker until `shutdown` flips to true. In-flight repairs are aborted on
    /// shutdown; their intents are collected by the next gateway process.
    pub fn spawn_repair(
        self: &Arc<Self>,
        mut shutdown: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let healer = self.clone();
        tokio::spawn(async move {
            let mut tasks: JoinSet<()> = JoinSet::new();
            loop {
                // A finished repair frees a slot: start the next due item at once rather than
                // after the poll interval (with it, a backlog drained at parallelism/interval
                // groups per second, far below `repair_bytes_per_sec`).
                tokio::select! {
                    _ = tokio::time::sleep(healer.engine.config.healing.repair_interval) => {}
                    Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                    _ = shutdown.changed() => {}
                }
                if *shutdown.borrow() {
                    break;
                }
                while tasks.try_join_next().is_some() {}
                if !healer.engine.members.is_leader() {
                    // Another gateway repairs; repairs this one started before it lost the
                    // lease finish (each commits by a transaction that checks the layout).
                    continue;
                }
                healer.watch_nodes(&mut tasks);
                if let Err(e) = healer.start_due_repairs(&mut tasks).await {
                    warn!(error = %e, "repair pass failed");
                }
            }
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        })
    }

    /// Runs due repairs until none is due (items that fail move to a later due time);
    /// returns how many attempts ran. For tests and one-shot use; the worker does the same
    /// continuously.
    pub async fn repair_pass(self: &Arc<Self>) -> Result<usize, EngineError> {
        let mut attempts = 0;
        for _ in 0..10_000 {
            let mut tasks: JoinSet<()> = JoinSet::new();
            let started = self.start_due_repairs(&mut tasks).await?;
            while tasks.join_next().await.is_some() {}
            if started == 0 {
                break;
            }
            attempts += started;
        }
        Ok(attempts)
    }

    /// Starts due items up to the parallelism limit, skipping groups already in flight.
    async fn start_due_repairs(
        self: &Arc<Self>,
        tasks: &mut JoinSet<()>,
    ) -> Result<usize, EngineError> {
        let parallelism = self.engine.config.healing.repair_parallelism.max(1);
        let free = parallelism.saturating_sub(tasks.len());
        if free == 0 {
            return Ok(0);
        }
        let now = now_ms();
        let due = self
            .engine
            .meta(move |c| c.due_repairs(now, parallelism * 4))
            .await?;
        let mut started = 0;
        for (key, item) in due {
            if started == free {
                break;
            }
            if !lock(&self.state.in_flight).insert(item.group) {
                continue;
            }
            started += 1;
            let healer = self.clone();
            tasks.spawn(async move {
                // The claim was taken above; this guard releases it however the task ends.
                let _claim = GroupClaim {
                    state: &healer.state,
                    group: item.group,
                };
                healer.run_repair_item(key, item).await;
            });
        }
        Ok(started)
    }

    /// One attempt at one queue item, and its bookkeeping.
    async fn run_repair_item(&self, key: Vec<u8>, item: RepairItem) {
        let group = item.group;
        let outcome = self.repair_group(&key, &item).await;
        let counters = &self.state.counters;
        let now = now_ms();
        let result = match outcome {
            Ok(Attempt::Repaired) => Ok(()),
            Ok(Attempt::Healthy) => {
                counters
                    .groups_found_healthy
                    .fetch_add(1, Ordering::Relaxed);
                let handled = item.shards.clone();
                self.engine
                    .meta(move |c| c.finish_repair(&key, &handled, now))
                    .await
            }
            Ok(Attempt::Gone) => {
                counters.groups_discarded.fetch_add(1, Ordering::Relaxed);
                info!(group = %hex::encode(group), reason = %item.reason, "repair dropped: the group is no longer referenced");
                let handled = item.shards.clone();
                self.engine
                    .meta(move |c| c.finish_repair(&key, &handled, now))
                    .await
            }
            Ok(Attempt::Retry { handled, extra }) => {
                let due = now + repair_backoff_ms(item.attempts);
                self.engine
                    .meta(move |c| c.retry_repair(&key, &handled, &extra, due))
                    .await
            }
            Err(e) => {
                counters.repair_failures.fetch_add(1, Ordering::Relaxed);
                // A group that cannot be repaired yet (no free node, too few shards readable)
                // retries with backoff; only its first attempts are worth a warning each.
                if item.attempts < 3 {
                    warn!(group = %hex::encode(group), reason = %item.reason, attempts = item.attempts, error = %e, "repair attempt failed: will retry");
                } else {
                    debug!(group = %hex::encode(group), reason = %item.reason, attempts = item.attempts, error = %e, "repair attempt failed again: will retry");
                }
                let due = now + repair_backoff_ms(item.attempts);
                self.engine
                    .meta(move |c| c.retry_repair(&key, &[], &[], due))
                    .await
            }
        };
        if let Err(e) = result {
            warn!(group = %hex::encode(group), error = %e, "could not update the repair queue");
        }
    }

    /// Node states → repair work: a node down past the grace period has every group it holds
    /// queued (once per outage); a node that comes back after being down is audited against
    /// the placement index (a wiped or replaced disk comes back empty).
    fn watch_nodes(self: &Arc<Self>, tasks: &mut JoinSet<()>) {
        for node in self.engine.cluster.node_ids() {
            if self.engine.cluster.is_up(node) {
                lock(&self.state.lost_nodes).remove(&node);
                let returns = self.engine.cluster.returns(node);
                let previous = lock(&self.state.audited_returns).insert(node, returns);
                if previous.unwrap_or(0) < returns {
                    let healer = self.clone();
                    tasks.spawn(async move {
                        info!(
                            node,
                            "node is back: checking its shards against the placement index"
                        );
                        if let Err(e) = healer.scan_node(node, false).await {
                            warn!(node, error = %e, "audit of a returning node failed");
                            // Audited again at the next tick.
                            lock(&healer.state.audited_returns).insert(node, previous.unwrap_or(0));
                        }
                    });
                }
                continue;
            }
            if self.node_lost(node) && lock(&self.state.lost_nodes).insert(node) {
                let healer = self.clone();
                tasks.spawn(async move {
                    match healer.queue_node_groups(node).await {
                        Ok(count) => {
                            warn!(
                                node,
                                groups = count,
                                "node lost: its shards will be rebuilt on other nodes"
                            )
                        }
                        Err(e) => {
                            warn!(node, error = %e, "could not queue the groups of a lost node");
                            lock(&healer.state.lost_nodes).remove(&node);
                        }
                    }
                });
            }
        }
    }

    /// Queues a repair for every group with a shard on `node` (a placement prefix scan).
    pub(crate) async fn queue_node_groups(&self, node: u32) -> Result<u64, EngineError> {
        let mut after = None;
        let mut count = 0u64;
        loop {
            let page = self
                .engine
                .meta(move |c| c.placements_on_node(node, after, 1000))
                .await?;
            let Some((last, _)) = page.last() else { break };
            after = Some(*last);
            let full = page.len() == 1000;
            count += page.len() as u64;
            let now = now_ms();
            self.engine
                .meta(move |c| {
                    for (group, placement) in &page {
                        c.queue_repair(*group, "node lost", &[placement.index], now)?;
                    }
                    Ok(())
                })
                .await?;
            if !full {
                break;
            }
        }
        Ok(count)
    }

    /// Repair counters and queue length.
    pub async fn repair_status(&self) -> Result<RepairStatus, EngineError> {
        let queue = self
            .engine
            .meta(|c| c.repair_queue_len(QUEUE_COUNT_LIMIT))
            .await?;
        let c = &self.state.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut nodes_lost: Vec<u32> = lock(&self.state.lost_nodes).iter().copied().collect();
        nodes_lost.sort_unstable();
        Ok(RepairStatus {
            queue_length: queue as u64,
            in_flight: lock(&self.state.in_flight).len() as u64,
            groups_repaired: get(&c.groups_repaired),
            shards_rebuilt: get(&c.shards_rebuilt),
            bytes_rebuilt: get(&c.bytes_rebuilt),
            bytes_read: get(&c.bytes_read),
            failed_attempts: get(&c.repair_failures),
            groups_discarded: get(&c.groups_discarded),
            groups_found_healthy: get(&c.groups_found_healthy),
            shards_reported: get(&self.engine.signals.shards_reported),
            missing_shards_found: get(&c.missing_shards_found),
            nodes_lost,
            last_repair_ms: get(&c.last_repair_ms),
            bytes_per_sec_limit: self.engine.config.healing.repair_bytes_per_sec,
            busy_bytes_per_sec_limit: self.state.pacer.rate(true),
            foreground_busy: self.engine.signals.foreground_busy(),
        })
    }

    /// GC counters and queue length.
    pub async fn gc_status(&self) -> Result<GcStatus, EngineError> {
        let queue = self
            .engine
            .meta(|c| c.gc_queue_len(QUEUE_COUNT_LIMIT))
            .await?;
        let cleanup = self
            .engine
            .meta(|c| c.cleanup_jobs(QUEUE_COUNT_LIMIT))
            .await?;
        let c = &self.state.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Ok(GcStatus {
            queue_length: queue as u64,
            cleanup_jobs: cleanup as u64,
            groups_collected: get(&c.gc_groups_collected),
            shards_deleted: get(&c.gc_shards_deleted),
            bytes_collected: get(&c.gc_bytes_collected),
            failed_deletes: get(&c.gc_failures),
            stale_intents_collected: get(&c.stale_intents_collected),
            expired_uploads_aborted: get(&c.expired_uploads_aborted),
            orphans_removed: get(&c.orphans_removed),
            orphan_bytes_removed: get(&c.orphan_bytes_removed),
            node_scans: get(&c.node_scans),
            last_scan_ms: get(&c.last_scan_ms),
            gc_delay_secs: self.engine.config.gc_delay.as_secs(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pacer_holds_the_byte_rate_after_one_second_of_burst() {
        let pacer = Pacer::new(1_000_000, 0);
        let start = Instant::now();
        // One second of budget (1 MB) is free; the 300 KB beyond it take 0.3 s.
        for _ in 0..13 {
            pacer.pace(100_000, false).await;
        }
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(280) && elapsed <= Duration::from_secs(3),
            "{elapsed:?}"
        );
        let unlimited = Pacer::new(0, 0);
        let start = Instant::now();
        unlimited.pace(u64::MAX, true).await;
        assert!(start.elapsed() < Duration::from_millis(50));
    }

    #[tokio::test]
    async fn pacer_slows_to_the_busy_rate_without_a_burst_while_clients_are_served() {
        let pacer = Pacer::new(10_000_000, 1_000_000);
        assert_eq!(pacer.rate(false), 10_000_000);
        assert_eq!(pacer.rate(true), 1_000_000);
        let start = Instant::now();
        // No banked burst while busy: 300 KB at 1 MB/s take 0.3 s (at the idle rate, 0.03 s).
        for _ in 0..3 {
            pacer.pace(100_000, true).await;
        }
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(180) && elapsed <= Duration::from_secs(3),
            "{elapsed:?}"
        );
        // The busy rate never exceeds the idle one, and 0 keeps the idle rate.
        assert_eq!(Pacer::new(1_000, 5_000).rate(true), 1_000);
        assert_eq!(Pacer::new(1_000, 0).rate(true), 1_000);
        assert_eq!(Pacer::new(0, 7).rate(true), 7);
    }
}
