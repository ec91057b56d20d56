//! Which gateways are alive, and which one leads background work (DESIGN §7, "Several
//! gateways").
//!
//! Every gateway sharing a catalog renews a liveness row and takes part in one lease: the
//! holder of the lease (the *leader*) alone runs repair, GC, node scans and scrub polling, so
//! that work runs once across the cluster, and a write intent whose owner is known dead is
//! collected at once instead of after `stale_intent_secs`.
//!
//! No clocks are compared between machines. Rows carry counters, not times; an observer calls
//! a row expired only after it has seen the same value for a whole `lease` on its own monotonic
//! clock. The leader renews every `lease / 4` and counts itself leader only until
//! `lease * 3 / 4` after it *started* its last successful renewal. An observer first sees a
//! renewal after it was committed, and takes over at least `lease` after that, so the old
//! leader has stopped before the new one starts (clock *rates* must agree within 25 %, which
//! every real clock does). A gateway that cannot reach the catalog cannot renew, so it stops
//! leading within `lease * 3 / 4`.
//!
//! The embedded server and a gateway on its own RocksDB catalog are the only process using
//! their catalog (RocksDB locks it): [`Membership::exclusive`] leads at once, and every owner
//! but itself is dead (an intent of an earlier process is collected at the first GC pass).
//!
//! Invariants: `is_leader` is true on at most one gateway at a time (under the rate bound
//! above); an owner is reported dead only if its row is absent from a read made after the
//! intent was read, or unchanged for a whole lease; the loop's catalog calls run off the
//! reactor and a failure only delays renewal (leadership then lapses by itself).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use metadata::catalog::{Catalog, GatewayRecord, LeaderRecord};
use tokio::sync::watch;
use tracing::{info, warn};

use super::now_ms;
use super::signals::lock;

/// This gateway's part in the membership of a catalog.
pub struct Membership {
    id: String,
    address: String,
    started_ms: u64,
    lease: Duration,
    /// The only process on its catalog: always the leader, every other owner is dead.
    exclusive: bool,
    state: Mutex<MemberState>,
}

#[derive(Default)]
struct MemberState {
    beat: u64,
    /// Leading until then (monotonic); `None`: not leading.
    leader_until: Option<Instant>,
    /// The lease row as this gateway last wrote it while leading.
    held: Option<LeaderRecord>,
    /// The lease row as last read, and since when it has read exactly that value.
    seen_leader: Option<(Option<LeaderRecord>, Instant)>,
    /// Per gateway id: its last read beat and since when it has read exactly that beat.
    seen_gateways: HashMap<String, (u64, Instant)>,
    /// The read leases last published (written again only when they change).
    published_reads: Vec<[u8; 16]>,
    /// When a round last reached the catalog.
    last_reached: Option<Instant>,
}

/// The shard groups reads in progress on this gateway hold (sorted).
pub type HeldGroups = Box<dyn Fn() -> Vec<[u8; 16]> + Send + Sync>;

/// What the admin API shows about one gateway.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MemberView {
    pub id: String,
    pub address: String,
    pub started_ms: u64,
    pub alive: bool,
}

/// A fresh random id: a restarted gateway is a new member.
fn new_id() -> String {
    format!("gw-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

impl Membership {
    /// A process alone on its catalog (embedded server, gateway on RocksDB).
    pub fn exclusive() -> Arc<Membership> {
        Arc::new(Membership {
            id: new_id(),
            address: String::new(),
            started_ms: now_ms(),
            lease: Duration::from_secs(1),
            exclusive: true,
            state: Mutex::new(MemberState::default()),
        })
    }

    /// A gateway sharing its catalog with others, serving S3 at `address`, whose rows expire
    /// after `lease` without renewal.
    pub fn shared(address: String, lease: Duration) -> Arc<Membership> {
        Arc::new(Membership {
            id: new_id(),
            address,
            started_ms: now_ms(),
            lease: lease.max(Duration::from_millis(400)),
            exclusive: false,
            state: Mutex::new(MemberState::default()),
        })
    }

    /// This gateway's id (the owner written into its intents).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether this gateway shares its catalog with others.
    pub fn is_shared(&self) -> bool {
        !self.exclusive
    }

    /// Whether this gateway may run background work right now.
    pub fn is_leader(&self) -> bool {
        if self.exclusive {
            return true;
        }
        lock(&self.state)
            .leader_until
            .is_some_and(|until| Instant::now() < until)
    }

    /// Whether the catalog answered this gateway's membership rounds within the last lease
    /// (always, for a catalog of its own): without it every request would answer 503, so
    /// `/_strata/health/ready` says not ready and load balancers send traffic elsewhere.
    pub fn catalog_reachable(&self) -> bool {
        self.exclusive
            || lock(&self.state)
                .last_reached
                .is_some_and(|at| at.elapsed() < self.lease)
    }

    /// The lease holder as last read (this gateway's id when it leads).
    pub fn leader_id(&self) -> Option<String> {
        if self.exclusive {
            return Some(self.id.clone());
        }
        let state = lock(&self.state);
        state
            .seen_leader
            .as_ref()
            .and_then(|(record, _)| record.as_ref())
            .map(|r| r.owner.clone())
    }

    /// Whether gateway `owner` is known to be gone, judged from the liveness rows read by the
    /// last [`Membership::refresh`] (call it *after* reading the intents it judges).
    pub fn owner_dead(&self, owner: &str) -> bool {
        if owner == self.id {
            return false;
        }
        if self.exclusive || owner.is_empty() {
            return true;
        }
        let state = lock(&self.state);
        match state.seen_gateways.get(owner) {
            None => true,
            Some((_, since)) => since.elapsed() >= self.lease,
        }
    }

    /// Every gateway with a liveness row, as last read.
    pub fn members(&self, rows: &[GatewayRecord]) -> Vec<MemberView> {
        rows.iter()
            .map(|row| MemberView {
                id: row.id.clone(),
                address: row.address.clone(),
                started_ms: row.started_ms,
                alive: !self.owner_dead(&row.id),
            })
            .collect()
    }

    /// Reads every liveness row and updates what this gateway has seen of each; returns them.
    /// The leader removes rows expired for two leases (their intents are then collected as
    /// owned by nobody alive).
    pub fn refresh(&self, catalog: &Catalog) -> Result<Vec<GatewayRecord>, metadata::MetaError> {
        if self.exclusive {
            return Ok(Vec::new());
        }
        let rows = catalog.gateways()?;
        let now = Instant::now();
        let mut expired = Vec::new();
        {
            let mut state = lock(&self.state);
            let mut seen = HashMap::with_capacity(rows.len());
            for row in &rows {
                let since = match state.seen_gateways.get(&row.id) {
                    Some(&(beat, since)) if beat == row.beat => since,
                    _ => now,
                };
                if row.id != self.id && now.duration_since(since) >= self.lease * 2 {
                    expired.push(row.id.clone());
                }
                seen.insert(row.id.clone(), (row.beat, since));
            }
            state.seen_gateways = seen;
        }
        if self.is_leader() {
            for id in expired {
                info!(gateway = %id, "removing the liveness row of a gateway that stopped renewing it");
                catalog.remove_gateway(&id)?;
            }
        }
        Ok(rows)
    }

    /// One round: renew this gateway's liveness row, read the others', then renew, take or
    /// watch the lease.
    pub fn tick(&self, catalog: &Catalog) -> Result<(), metadata::MetaError> {
        if self.exclusive {
            return Ok(());
        }
        let beat = {
            let mut state = lock(&self.state);
            state.beat += 1;
            state.beat
        };
        catalog.beat_gateway(&GatewayRecord {
            id: self.id.clone(),
            address: self.address.clone(),
            started_ms: self.started_ms,
            beat,
        })?;
        self.refresh(catalog)?;
        self.lease_round(catalog)?;
        lock(&self.state).last_reached = Some(Instant::now());
        Ok(())
    }

    fn lease_round(&self, catalog: &Catalog) -> Result<(), metadata::MetaError> {
        let current = catalog.leader()?;
        let now = Instant::now();
        let (held, expired) = {
            let mut state = lock(&self.state);
            let since = match &state.seen_leader {
                Some((seen, since)) if *seen == current => *since,
                _ => now,
            };
            state.seen_leader = Some((current.clone(), since));
            let expired = current.is_none() || now.duration_since(since) >= self.lease;
            (state.held.clone(), expired)
        };
        let mine = held.is_some() && held == current;
        if !mine && !expired {
            // Someone else holds a live lease (or took ours).
            let mut state = lock(&self.state);
            if state.held.take().is_some() {
                warn!(gateway = %self.id, "lost the background-work lease");
            }
            state.leader_until = None;
            return Ok(());
        }
        let next = match (&current, mine) {
            (Some(record), true) => LeaderRecord {
                beat: record.beat + 1,
                ..record.clone()
            },
            (record, _) => LeaderRecord {
                owner: self.id.clone(),
                term: record.as_ref().map_or(1, |r| r.term + 1),
                beat: 0,
            },
        };
        let started = Instant::now();
        let won = catalog.swap_leader(current.as_ref(), Some(&next))?;
        let mut state = lock(&self.state);
        if won {
            if !mine {
                info!(gateway = %self.id, term = next.term, "this gateway now leads background work");
            }
            state.leader_until = Some(started + self.lease * 3 / 4);
            state.seen_leader = Some((Some(next.clone()), Instant::now()));
            state.held = Some(next);
        } else {
            state.leader_until = None;
            state.held = None;
        }
        Ok(())
    }

    /// Publishes the groups this gateway's reads hold, if they changed since last time.
    pub fn publish_reads(
        &self,
        catalog: &Catalog,
        groups: Vec<[u8; 16]>,
    ) -> Result<(), metadata::MetaError> {
        if self.exclusive || lock(&self.state).published_reads == groups {
            return Ok(());
        }
        catalog.publish_read_leases(&self.id, &groups)?;
        lock(&self.state).published_reads = groups;
        Ok(())
    }

    /// The groups that reads on *other* live gateways hold (their published leases).
    pub fn remote_reads(
        &self,
        catalog: &Catalog,
    ) -> Result<std::collections::HashSet<[u8; 16]>, metadata::MetaError> {
        if self.exclusive {
            return Ok(Default::default());
        }
        Ok(catalog
            .read_leases()?
            .into_iter()
            .filter(|(owner, _)| owner != &self.id && !self.owner_dead(owner))
            .flat_map(|(_, groups)| groups)
            .collect())
    }

    /// Stops leading and removes this gateway's rows (after in-flight requests have drained),
    /// so another gateway takes the lease at once.
    pub fn leave(&self, catalog: &Catalog) -> Result<(), metadata::MetaError> {
        if self.exclusive {
            return Ok(());
        }
        let held = {
            let mut state = lock(&self.state);
            state.leader_until = None;
            state.held.take()
        };
        if let Some(record) = held {
            catalog.swap_leader(Some(&record), None)?;
        }
        catalog.remove_gateway(&self.id)
    }

    /// Renews and watches every `lease / 4`, publishing the groups `held` names, until
    /// `shutdown`; then leaves.
    pub fn spawn(
        self: &Arc<Self>,
        catalog: Catalog,
        held: HeldGroups,
        mut shutdown: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let members = self.clone();
        let held = Arc::new(held);
        tokio::spawn(async move {
            if members.exclusive {
                let _ = shutdown.wait_for(|stop| *stop).await;
                return;
            }
            let period = members.lease / 4;
            loop {
                let (m, c, h) = (members.clone(), catalog.clone(), held.clone());
                let round = move || {
                    m.tick(&c)?;
                    m.publish_reads(&c, h())
                };
                match tokio::task::spawn_blocking(round).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => warn!(error = %e, "cannot renew this gateway's membership"),
                    Err(e) => warn!(error = %e, "membership task failed"),
                }
                tokio::select! {
                    _ = tokio::time::sleep(period) => {}
                    _ = shutdown.changed() => {}
                }
                if *shutdown.borrow() {
                    break;
                }
            }
            let (m, c) = (members.clone(), catalog.clone());
            match tokio::task::spawn_blocking(move || m.leave(&c)).await {
                Ok(Ok(())) => info!("left the cluster's membership"),
                Ok(Err(e)) => warn!(error = %e, "cannot remove this gateway's membership rows"),
                Err(e) => warn!(error = %e, "membership task failed"),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn shared(catalog: &Catalog, lease_ms: u64) -> Arc<Membership> {
        let m = Membership::shared("127.0.0.1:1".into(), Duration::from_millis(lease_ms));
        m.tick(catalog).unwrap();
        m
    }

    #[test]
    fn one_leader_and_takeover_only_after_a_whole_lease() {
        let catalog = Catalog::in_memory();
        let a = shared(&catalog, 400);
        let b = shared(&catalog, 400);
        assert!(a.is_leader(), "the first gateway takes a free lease");
        assert!(a.catalog_reachable() && b.catalog_reachable());
        assert!(!b.is_leader());
        assert_eq!(b.leader_id().as_deref(), Some(a.id()));
        // While a renews, b never takes over.
        for _ in 0..6 {
            std::thread::sleep(Duration::from_millis(100));
            a.tick(&catalog).unwrap();
            b.tick(&catalog).unwrap();
            assert!(a.is_leader() && !b.is_leader());
        }
        assert!(!b.owner_dead(a.id()));
        // a stops renewing: its leadership lapses by itself, then b takes over.
        let stopped = Instant::now();
        let mut took = None;
        for _ in 0..40 {
            std::thread::sleep(Duration::from_millis(50));
            b.tick(&catalog).unwrap();
            if b.is_leader() {
                took = Some(stopped.elapsed());
                break;
            }
        }
        assert!(took.is_some(), "b takes the lease within the test's bound");
        assert!(
            !a.is_leader(),
            "a stopped counting itself leader before b took over"
        );
        // a's liveness row expired too: its intents are now collectable.
        std::thread::sleep(Duration::from_millis(450));
        b.tick(&catalog).unwrap();
        assert!(b.owner_dead(a.id()));
        assert!(!b.owner_dead(b.id()));
        assert!(
            b.owner_dead(""),
            "an intent without owner belongs to nobody alive"
        );
    }

    #[test]
    fn leaving_hands_the_lease_over_at_once() {
        let catalog = Catalog::in_memory();
        let a = shared(&catalog, 60_000);
        let b = shared(&catalog, 60_000);
        assert!(a.is_leader());
        a.leave(&catalog).unwrap();
        b.tick(&catalog).unwrap();
        assert!(b.is_leader());
        assert!(b.owner_dead(a.id()), "a removed its liveness row");
    }

    #[test]
    fn an_unknown_owner_is_dead_and_exclusive_owns_everything() {
        let catalog = Catalog::in_memory();
        let a = shared(&catalog, 60_000);
        assert!(a.owner_dead("gw-never-seen"));
        let solo = Membership::exclusive();
        assert!(solo.is_leader());
        assert!(solo.owner_dead("gw-earlier-process"));
        assert!(!solo.owner_dead(solo.id()));
    }
}
