//! Healing (DESIGN §7): everything the gateway does in the background to keep data whole and
//! storage clean, owned by one [`Healer`] that holds the request-path [`Engine`]:
//! - `repair`: the worker that drains the durable repair queue, lost and returning nodes, and
//!   the repair and GC status calls;
//! - `rebuild`: rebuilding the missing shards of one group onto healthy nodes;
//! - `gc`: deleting replaced, deleted, aborted and stale data after `gc_delay`;
//! - `scan`: comparing a node's shard list with the placement index (orphans, lost shards) and
//!   aborting expired multipart uploads;
//! - `scrub`: polling the stores' scrubbers and turning their reports into repairs;
//! - `counters`: the counters of all of the above;
//! - `backup`: catalog backups onto the storage nodes (RocksDB mode).
//!
//! The request path never calls in here. It leaves signals the healer reads
//! (`engine::signals`: foreground traffic, bad shards found by reads) and durable work in the
//! catalog (repair and GC queues, intents). A group is worked on by at most one of repair, GC
//! and the scan at a time ([`GroupClaim`]).

pub mod backup;
pub mod counters;
mod gc;
mod rebuild;
mod repair;
mod scan;
pub mod scrub;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

pub use counters::{CounterSnapshot, Counters};
pub use repair::{GcStatus, RepairStatus};
pub use scan::NodeScan;

use super::signals::lock;
use super::Engine;

/// The owner of background work over one engine.
pub struct Healer {
    engine: Arc<Engine>,
    state: HealingState,
    scrub: scrub::ScrubMonitor,
}

impl Healer {
    /// A healer over `engine`, with the repair budget of the engine's healing settings. Start
    /// its workers with `spawn_repair`, `spawn_gc` and `spawn_scrub_poller`.
    pub fn new(engine: Arc<Engine>) -> Arc<Healer> {
        let healing = &engine.config.healing;
        let state = HealingState::new(
            healing.repair_bytes_per_sec,
            healing.repair_busy_bytes_per_sec,
        );
        Arc::new(Healer {
            engine,
            state,
            scrub: scrub::ScrubMonitor::default(),
        })
    }

    /// The engine this healer works for.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Counters of background work, for the metrics endpoint and the admin API.
    pub fn counters(&self) -> &Counters {
        &self.state.counters
    }

    /// Waits until `bytes` more repair I/O fits the byte budget (the busy budget while clients
    /// are being served).
    async fn pace(&self, bytes: u64) {
        let busy = self.engine.signals.foreground_busy();
        self.state.pacer.pace(bytes, busy).await;
    }
}

/// In-memory state of healing (the durable part is the catalog's queues).
pub(crate) struct HealingState {
    pub counters: Counters,
    in_flight: Mutex<HashSet<[u8; 16]>>,
    /// Nodes whose loss was already turned into repair work (until they come back).
    lost_nodes: Mutex<HashSet<u32>>,
    /// Per node, the count of returns (`Cluster::returns`) already audited: a node that came
    /// back since is audited, even if it was down for less than one worker tick.
    audited_returns: Mutex<HashMap<u32, u64>>,
    pacer: repair::Pacer,
}

/// Exclusive claim on a shard group for repair, GC or the orphan scan within this process (the
/// only process that owns the catalog): none of them races another on the same shard files.
/// Released on drop.
pub(crate) struct GroupClaim<'a> {
    state: &'a HealingState,
    group: [u8; 16],
}

impl Drop for GroupClaim<'_> {
    fn drop(&mut self) {
        lock(&self.state.in_flight).remove(&self.group);
    }
}

impl HealingState {
    fn new(bytes_per_sec: u64, busy_bytes_per_sec: u64) -> HealingState {
        HealingState {
            counters: Counters::default(),
            in_flight: Mutex::new(HashSet::new()),
            lost_nodes: Mutex::new(HashSet::new()),
            audited_returns: Mutex::new(HashMap::new()),
            pacer: repair::Pacer::new(bytes_per_sec, busy_bytes_per_sec),
        }
    }

    /// Claims `group`; `None` when repair, GC or a scan already works on it.
    pub fn claim(&self, group: [u8; 16]) -> Option<GroupClaim<'_>> {
        if !lock(&self.in_flight).insert(group) {
            return None;
        }
        Some(GroupClaim { state: self, group })
    }
}
