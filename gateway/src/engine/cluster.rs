//! The set of shard stores ("nodes") the engine writes to, and their health.
//!
//! A node is a shard store with a stable id (recorded in every layout), an optional zone and a
//! placement weight. The health checker pings every node on an interval; a node is marked down
//! after [`FAILURES_TO_DOWN`] consecutive failed pings and up again after one good ping.
//! Placement only considers nodes that are up; reads use the recorded layout whatever the state,
//! because a node marked down may still answer (and a read falls back to parity anyway).
//! Every node's store is wrapped in an `ObservedStore`, which counts its failed calls for the
//! metrics.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use storage::store::ShardStore;
use tokio::sync::watch;
use tracing::{info, warn};

use super::observed::{ObservedStore, StoreErrors};
use super::placement::Candidate;
use super::{now_ms, EngineError};

/// Consecutive failed pings before a node is considered down.
pub const FAILURES_TO_DOWN: u32 = 2;

/// How a node is configured.
pub struct NodeSpec {
    pub id: u32,
    /// Where it lives, for status output (a directory or `host:port`).
    pub address: String,
    pub zone: Option<String>,
    pub weight: f64,
    pub store: Arc<dyn ShardStore>,
}

struct Node {
    /// `spec.store` is wrapped in an `ObservedStore` counting into `errors`.
    spec: NodeSpec,
    errors: Arc<StoreErrors>,
    up: AtomicBool,
    failures: AtomicU32,
    latency_us: AtomicU64,
    free_bytes: AtomicU64,
    total_bytes: AtomicU64,
    checked_ms: AtomicU64,
    /// When the node was last marked down (0 while it is up).
    down_since_ms: AtomicU64,
    /// How many times the node came back up after being marked down, or answered as a new
    /// instance (restarted between two health checks).
    returns: AtomicU64,
    /// The store instance of the last health answer (0: none yet, or not reported).
    instance: AtomicU64,
}

/// One node's state as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    pub id: u32,
    pub name: String,
    pub address: String,
    pub zone: Option<String>,
    pub weight: f64,
    pub state: &'static str,
    pub consecutive_failures: u32,
    pub latency_ms: f64,
    pub free_bytes: u64,
    pub total_bytes: u64,
    pub last_check_ms: u64,
}

/// Failed store calls of one node: `(operation, count)` for each of `observed::OPERATIONS`.
#[derive(Debug, Clone)]
pub struct NodeErrors {
    pub id: u32,
    pub name: String,
    pub by_operation: Vec<(&'static str, u64)>,
}

/// The engine's nodes.
pub struct Cluster {
    nodes: Vec<Node>,
}

impl Cluster {
    /// Fails on duplicate ids or non-positive weights.
    pub fn new(specs: Vec<NodeSpec>) -> Result<Cluster, EngineError> {
        let mut ids: Vec<u32> = specs.iter().map(|s| s.id).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err(EngineError::invariant("two nodes share an id"));
        }
        if let Some(bad) = specs
            .iter()
            .find(|s| !(s.weight > 0.0 && s.weight.is_finite()))
        {
            return Err(EngineError::invariant(format!(
                "node {} has weight {}: must be positive",
                bad.id, bad.weight
            )));
        }
        let nodes = specs
            .into_iter()
            .map(|mut spec| {
                let errors = Arc::new(StoreErrors::default());
                spec.store = Arc::new(ObservedStore::new(spec.store, Arc::clone(&errors)));
                (spec, errors)
            })
            .map(|(spec, errors)| Node {
                spec,
                errors,
                up: AtomicBool::new(true),
                failures: AtomicU32::new(0),
                latency_us: AtomicU64::new(0),
                free_bytes: AtomicU64::new(0),
                total_bytes: AtomicU64::new(0),
                checked_ms: AtomicU64::new(0),
                down_since_ms: AtomicU64::new(0),
                returns: AtomicU64::new(0),
                instance: AtomicU64::new(0),
            })
            .collect();
        Ok(Cluster { nodes })
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The store of node `id`, if it exists.
    pub fn store(&self, id: u32) -> Option<Arc<dyn ShardStore>> {
        self.nodes
            .iter()
            .find(|n| n.spec.id == id)
            .map(|n| n.spec.store.clone())
    }

    /// Every node's id, address and store, in configuration order.
    pub fn nodes(&self) -> Vec<(u32, String, Arc<dyn ShardStore>)> {
        self.nodes
            .iter()
            .map(|n| (n.spec.id, n.spec.address.clone(), n.spec.store.clone()))
            .collect()
    }

    /// Failed store calls per node and operation.
    pub fn error_counts(&self) -> Vec<NodeErrors> {
        self.nodes
            .iter()
            .map(|n| NodeErrors {
                id: n.spec.id,
                name: n.spec.store.name().to_string(),
                by_operation: n.errors.snapshot(),
            })
            .collect()
    }

    /// Whether node `id` is currently considered up (unknown ids are not).
    pub fn is_up(&self, id: u32) -> bool {
        self.nodes
            .iter()
            .find(|n| n.spec.id == id)
            .is_some_and(|n| n.up.load(Ordering::Relaxed))
    }

    /// Every node id, in configuration order.
    pub fn node_ids(&self) -> Vec<u32> {
        self.nodes.iter().map(|n| n.spec.id).collect()
    }

    /// Since when node `id` has been down (ms since the epoch); `None` while up or unknown.
    pub fn down_since_ms(&self, id: u32) -> Option<u64> {
        let node = self.nodes.iter().find(|n| n.spec.id == id)?;
        if node.up.load(Ordering::Relaxed) {
            return None;
        }
        Some(node.down_since_ms.load(Ordering::Relaxed))
    }

    /// How many times node `id` came back up after the health checker marked it down, or
    /// answered as a new instance of its store (0 for unknown ids). Repair audits a node each
    /// time this grows, however short the outage was.
    pub fn returns(&self, id: u32) -> u64 {
        self.nodes
            .iter()
            .find(|n| n.spec.id == id)
            .map_or(0, |n| n.returns.load(Ordering::Relaxed))
    }

    /// Nodes placement may use now.
    pub fn up_candidates(&self) -> Vec<Candidate> {
        self.nodes
            .iter()
            .filter(|n| n.up.load(Ordering::Relaxed))
            .map(|n| Candidate {
                id: n.spec.id,
                weight: n.spec.weight,
                zone: n.spec.zone.clone(),
            })
            .collect()
    }

    /// Every node, up or down.
    pub fn all_candidates(&self) -> Vec<Candidate> {
        self.nodes
            .iter()
            .map(|n| Candidate {
                id: n.spec.id,
                weight: n.spec.weight,
                zone: n.spec.zone.clone(),
            })
            .collect()
    }

    pub fn up_count(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| n.up.load(Ordering::Relaxed))
            .count()
    }

    /// Pings every node once, in parallel, each bounded by `timeout`.
    pub async fn check_all(&self, timeout: Duration) {
        let pings = self.nodes.iter().map(|node| async move {
            let started = Instant::now();
            let result = tokio::time::timeout(timeout, node.spec.store.health()).await;
            (node, started.elapsed(), result)
        });
        for (node, elapsed, result) in futures::future::join_all(pings).await {
            node.checked_ms.store(now_ms(), Ordering::Relaxed);
            match result {
                Ok(Ok(health)) => {
                    node.latency_us
                        .store(elapsed.as_micros() as u64, Ordering::Relaxed);
                    node.free_bytes.store(health.free_bytes, Ordering::Relaxed);
                    node.total_bytes
                        .store(health.total_bytes, Ordering::Relaxed);
                    node.failures.store(0, Ordering::Relaxed);
                    let previous = node.instance.swap(health.instance, Ordering::Relaxed);
                    if !node.up.swap(true, Ordering::Relaxed) {
                        node.down_since_ms.store(0, Ordering::Relaxed);
                        node.returns.fetch_add(1, Ordering::Relaxed);
                        info!(
                            node = node.spec.id,
                            name = node.spec.store.name(),
                            "node is up again"
                        );
                    } else if previous != 0 && health.instance != 0 && previous != health.instance {
                        node.returns.fetch_add(1, Ordering::Relaxed);
                        info!(
                            node = node.spec.id,
                            name = node.spec.store.name(),
                            "node restarted between health checks"
                        );
                    }
                }
                failed => {
                    let failures = node.failures.fetch_add(1, Ordering::Relaxed) + 1;
                    if failures >= FAILURES_TO_DOWN && node.up.swap(false, Ordering::Relaxed) {
                        node.down_since_ms.store(now_ms(), Ordering::Relaxed);
                        let reason = match failed {
                            Ok(Err(e)) => e.to_string(),
                            _ => "ping timed out".to_string(),
                        };
                        warn!(node = node.spec.id, name = node.spec.store.name(), %reason, "node is down");
                    }
                }
            }
        }
    }

    /// Runs the health checker until `shutdown` flips to true.
    pub fn spawn_health_checker(
        self: &Arc<Self>,
        interval: Duration,
        timeout: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let cluster = self.clone();
        tokio::spawn(async move {
            loop {
                cluster.check_all(timeout).await;
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

    pub fn status(&self) -> Vec<NodeStatus> {
        self.nodes
            .iter()
            .map(|n| NodeStatus {
                id: n.spec.id,
                name: n.spec.store.name().to_string(),
                address: n.spec.address.clone(),
                zone: n.spec.zone.clone(),
                weight: n.spec.weight,
                state: if n.up.load(Ordering::Relaxed) {
                    "up"
                } else {
                    "down"
                },
                consecutive_failures: n.failures.load(Ordering::Relaxed),
                latency_ms: n.latency_us.load(Ordering::Relaxed) as f64 / 1000.0,
                free_bytes: n.free_bytes.load(Ordering::Relaxed),
                total_bytes: n.total_bytes.load(Ordering::Relaxed),
                last_check_ms: n.checked_ms.load(Ordering::Relaxed),
            })
            .collect()
    }
}
