//! The gateway's side of scrubbing (DESIGN §7): a background task collects, from every shard
//! store (storage node or local directory), its scrub progress and the corrupt shards its
//! scrubber found, hands each corrupt shard to [`Engine::on_corrupt_shard`] and then
//! acknowledges the reports it handed over, so the store can forget them.
//!
//! Invariants: a report is acknowledged only after `on_corrupt_shard` accepted it, and only up
//! to the first one it did not (ids increase, so nothing is skipped; a report handed over twice
//! after a crash between the two steps is harmless: repair is idempotent); shard names from a
//! store are parsed strictly (an unparsable one is logged, counted and acknowledged, it can
//! never be repaired); every store call is bounded by the shard timeout; the last view of every
//! store is kept for `/_strata/admin/scrub` and the metrics, with the error if it did not answer.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use storage::id::ShardId;
use storage::scrub::ScrubStatus;
use storage::store::ShardStore;
use tokio::sync::watch;
use tracing::{info, warn};

use super::{now_ms, Engine, EngineError};

/// The last scrub status seen from one store.
#[derive(Debug, Clone, Serialize)]
pub struct StoreScrubView {
    pub node: u32,
    pub name: String,
    pub address: String,
    /// Whether the last poll got an answer.
    pub reachable: bool,
    /// Why it did not, if it did not.
    pub error: Option<String>,
    /// When the store was last asked (ms since the Unix epoch; 0 = never).
    pub polled_ms: u64,
    /// Reports still waiting on the store after the last poll.
    pub pending_reports: usize,
    /// Progress and totals (its `reports` list is left empty here: see `pending_reports`).
    pub status: Option<ScrubStatus>,
}

/// Scrub bookkeeping held by the engine.
#[derive(Debug, Default)]
pub(crate) struct ScrubMonitor {
    views: Mutex<Vec<StoreScrubView>>,
}

impl ScrubMonitor {
    fn store_view(&self, view: StoreScrubView) {
        let mut views = self
            .views
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match views.iter_mut().find(|known| known.node == view.node) {
            Some(known) => *known = view,
            None => {
                views.push(view);
                views.sort_by_key(|known| known.node);
            }
        }
    }

    fn views(&self) -> Vec<StoreScrubView> {
        self.views
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

impl Engine {
    /// A shard found corrupt by a store's scrubber (it is already in that store's quarantine,
    /// so it reads as missing). This is the one place scrub findings enter repair.
    ///
    /// MERGE POINT: until the repair queue exists this logs and counts; with it, this calls
    /// `self.report_bad_shard(group, index, reason)` and returns its error, so an unqueued
    /// finding is not acknowledged and comes back on the next poll.
    pub async fn on_corrupt_shard(
        &self,
        node: u32,
        shard: ShardId,
        reason: &str,
    ) -> Result<(), EngineError> {
        warn!(node, group = %shard.group, index = shard.index, %reason, "scrub found a corrupt shard: queueing repair");
        self.report_bad_shard(shard.group.0, shard.index, &format!("scrub: {reason}"))
            .await?;
        self.counters
            .scrub_corrupt_shards
            .fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The last scrub view of every store, in node order.
    pub fn scrub_views(&self) -> Vec<StoreScrubView> {
        self.scrub.views()
    }

    /// Polls every store once: records its progress, hands its reports over, acknowledges
    /// them. Returns how many corrupt shards were handed over.
    pub async fn poll_scrub(&self) -> usize {
        let nodes = self.cluster.nodes();
        let polls = nodes
            .into_iter()
            .map(|(node, address, store)| self.poll_store(node, address, store));
        futures::future::join_all(polls).await.into_iter().sum()
    }

    async fn poll_store(&self, node: u32, address: String, store: Arc<dyn ShardStore>) -> usize {
        let timeout = self.config.shard_timeout;
        let mut view = StoreScrubView {
            node,
            name: store.name().to_string(),
            address,
            reachable: false,
            error: None,
            polled_ms: now_ms(),
            pending_reports: 0,
            status: None,
        };
        let status = match tokio::time::timeout(timeout, store.scrub_status()).await {
            Ok(Ok(status)) => status,
            Ok(Err(err)) => {
                view.error = Some(err.to_string());
                self.scrub.store_view(view);
                return 0;
            }
            Err(_) => {
                view.error = Some("scrub status timed out".into());
                self.scrub.store_view(view);
                return 0;
            }
        };
        view.reachable = true;
        let mut reports = status.reports.clone();
        reports.sort_by_key(|report| report.id);
        let mut handled_up_to = None;
        let mut handed = 0;
        for report in &reports {
            match report.shard_id() {
                Ok(shard) => {
                    let reason = format!("scrub on {}: {}", store.name(), report.reason);
                    if let Err(err) = self.on_corrupt_shard(node, shard, &reason).await {
                        warn!(node, shard = %shard, error = %err, "could not queue the repair of a scrubbed shard: retried next poll");
                        break;
                    }
                    handed += 1;
                }
                Err(err) => {
                    warn!(node, report = report.id, error = %err, "scrub report names no valid shard: dropped");
                    self.counters
                        .scrub_bad_reports
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
            handled_up_to = Some(report.id);
        }
        let mut pending = reports.len();
        if let Some(up_to) = handled_up_to {
            match tokio::time::timeout(timeout, store.ack_scrub_reports(up_to)).await {
                Ok(Ok(())) => {
                    pending = reports.iter().filter(|report| report.id > up_to).count();
                }
                Ok(Err(err)) => {
                    warn!(node, error = %err, "could not acknowledge scrub reports: they come again")
                }
                Err(_) => warn!(
                    node,
                    "acknowledging scrub reports timed out: they come again"
                ),
            }
        }
        if handed > 0 {
            info!(
                node,
                store = store.name(),
                shards = handed,
                "scrub findings handed to repair"
            );
        }
        view.pending_reports = pending;
        view.status = Some(ScrubStatus {
            reports: Vec::new(),
            ..status
        });
        self.scrub.store_view(view);
        handed
    }

    /// Polls the stores every `interval` until `shutdown` flips to true.
    pub fn spawn_scrub_poller(
        self: &Arc<Self>,
        interval: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let engine = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                engine.poll_scrub().await;
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = shutdown.changed() => {}
                }
                if *shutdown.borrow() {
                    break;
                }
            }
        })
    }
}
