//! The gateway's side of scrubbing (DESIGN §7): a background task collects, from every shard
//! store (storage node or local directory), its scrub progress and the corrupt shards its
//! scrubber found, hands each corrupt shard to [`Healer::on_corrupt_shard`] and then
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

use super::Healer;
use crate::engine::{now_ms, EngineError};

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

/// Scrub bookkeeping held by the healer.
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

impl Healer {
    /// A shard found corrupt by a store's scrubber (it is already in that store's quarantine,
    /// so it reads as missing). This is the one place scrub findings enter repair: an error
    /// means the finding was not queued, so it is not acknowledged and comes back next poll.
    pub async fn on_corrupt_shard(
        &self,
        node: u32,
        shard: ShardId,
        reason: &str,
    ) -> Result<(), EngineError> {
        warn!(node, group = %shard.group, index = shard.index, %reason, "scrub found a corrupt shard: queueing repair");
        self.report_bad_shard(shard.group.0, shard.index, &format!("scrub: {reason}"))
            .await?;
        self.state
            .counters
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
        let nodes = self.engine.cluster.nodes();
        let polls = nodes
            .into_iter()
            .map(|(node, address, store)| self.poll_store(node, address, store));
        futures::future::join_all(polls).await.into_iter().sum()
    }

    async fn poll_store(&self, node: u32, address: String, store: Arc<dyn ShardStore>) -> usize {
        let timeout = self.engine.config.shard_timeout;
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
                    self.state
                        .counters
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
        let healer = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                if healer.engine.members.is_leader() {
                    healer.poll_scrub().await;
                }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Mutex as StdMutex;

    use async_trait::async_trait;
    use bytes::Bytes;
    use metadata::catalog::Catalog;
    use storage::codec::Geometry;
    use storage::format::ShardHeader;
    use storage::id::ShardGroupId;
    use storage::scrub::ScrubReport;
    use storage::store::{ShardStat, ShardWriter, StoreHealth};
    use storage::{FaultyShardStore, LocalShardStore, StorageError};

    use super::*;
    use crate::engine::cluster::{Cluster, NodeSpec};
    use crate::engine::{Engine, EngineConfig};

    /// A store whose scrubber "found" fixed reports; records acknowledgements.
    struct ReportingStore {
        reports: Vec<ScrubReport>,
        acked: StdMutex<Vec<u64>>,
    }

    fn unavailable<T>() -> Result<T, StorageError> {
        Err(StorageError::Unavailable("test double".into()))
    }

    #[async_trait]
    impl ShardStore for ReportingStore {
        fn name(&self) -> &str {
            "reporting"
        }
        async fn create(
            &self,
            _id: ShardId,
            _header: ShardHeader,
        ) -> Result<Box<dyn ShardWriter>, StorageError> {
            unavailable()
        }
        async fn read_frames(
            &self,
            _id: ShardId,
            _first: u64,
            _count: u64,
        ) -> Result<Vec<Option<Bytes>>, StorageError> {
            unavailable()
        }
        async fn stat(&self, _id: ShardId) -> Result<ShardStat, StorageError> {
            unavailable()
        }
        async fn delete(&self, _id: ShardId) -> Result<(), StorageError> {
            unavailable()
        }
        async fn list(
            &self,
            _after: Option<ShardId>,
            _limit: usize,
        ) -> Result<Vec<ShardId>, StorageError> {
            unavailable()
        }
        async fn health(&self) -> Result<StoreHealth, StorageError> {
            Ok(StoreHealth {
                free_bytes: 1,
                total_bytes: 1,
                instance: 1,
            })
        }
        async fn scrub_status(&self) -> Result<ScrubStatus, StorageError> {
            let acked = self
                .acked
                .lock()
                .unwrap()
                .iter()
                .copied()
                .max()
                .unwrap_or(0);
            Ok(ScrubStatus {
                enabled: true,
                total_corrupt_found: self.reports.len() as u64,
                reports: self
                    .reports
                    .iter()
                    .filter(|report| report.id > acked)
                    .cloned()
                    .collect(),
                ..ScrubStatus::default()
            })
        }
        async fn ack_scrub_reports(&self, up_to: u64) -> Result<(), StorageError> {
            self.acked.lock().unwrap().push(up_to);
            Ok(())
        }
    }

    fn report(id: u64, shard: String) -> ScrubReport {
        ScrubReport {
            id,
            shard,
            found_ms: 1,
            reason: "frame 0 failed its checksum".into(),
            quarantine: None,
        }
    }

    #[tokio::test]
    async fn reports_are_handed_over_then_acknowledged_and_bad_ones_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let bad_shard = ShardId::new(ShardGroupId::new_v7(), 3);
        let reporting = Arc::new(ReportingStore {
            reports: vec![
                report(4, bad_shard.file_name()),
                report(7, "../../etc/passwd".into()),
                report(9, ShardId::new(ShardGroupId::new_v7(), 0).file_name()),
            ],
            acked: StdMutex::new(Vec::new()),
        });
        let mut nodes = vec![NodeSpec {
            id: 0,
            address: "fake".into(),
            zone: None,
            weight: 1.0,
            store: reporting.clone() as Arc<dyn ShardStore>,
        }];
        let mut failing = None;
        for i in 1..6u32 {
            let local =
                LocalShardStore::open(dir.path().join(format!("d{i}")), format!("d{i}"), false)
                    .unwrap();
            let faulty = Arc::new(FaultyShardStore::new(Arc::new(local)));
            if i == 1 {
                failing = Some(faulty.clone());
            }
            nodes.push(NodeSpec {
                id: i,
                address: format!("d{i}"),
                zone: None,
                weight: 1.0,
                store: faulty as Arc<dyn ShardStore>,
            });
        }
        failing.unwrap().set_fail(true);
        let engine = Engine::new(
            Catalog::in_memory(),
            Arc::new(Cluster::new(nodes).unwrap()),
            EngineConfig {
                geometry: Geometry::new(4, 2, 4096).unwrap(),
                inline_threshold: 4096,
                write_quorum: 5,
                gc_delay: Duration::ZERO,
                shard_timeout: Duration::from_secs(2),
                hedge_after: Duration::from_millis(100),
                region: "us-east-1".into(),
                healing: Default::default(),
                sse: Default::default(),
            },
        )
        .unwrap();
        let healer = Healer::new(engine);

        assert_eq!(healer.poll_scrub().await, 2);
        assert_eq!(*reporting.acked.lock().unwrap(), vec![9]);
        let counters = healer.counters().snapshot();
        assert_eq!(counters.scrub_corrupt_shards, 2);
        assert_eq!(counters.scrub_bad_reports, 1);
        let views = healer.scrub_views();
        assert_eq!(views.len(), 6);
        let fake = &views[0];
        assert!(fake.reachable);
        assert_eq!(fake.pending_reports, 0);
        assert!(fake.status.as_ref().unwrap().reports.is_empty());
        assert!(!views[1].reachable);
        assert!(views[1].error.as_ref().unwrap().contains("injected fault"));
        assert!(views[2].reachable);

        // Acknowledged reports do not come back: a second poll hands nothing over.
        assert_eq!(healer.poll_scrub().await, 0);
        assert_eq!(healer.counters().snapshot().scrub_corrupt_shards, 2);
    }
}
