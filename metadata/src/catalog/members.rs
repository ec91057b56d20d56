//! Gateways sharing one catalog: their liveness rows and the lease of the one gateway that
//! runs background work (repair, GC, scans, scrub polling).
//!
//! Both are plain rows changed by transactions, so they work on every back end, and no clock
//! is compared between machines: a gateway renews its row by bumping a counter (`beat`), and
//! an observer calls a row expired only when it has seen the *same* value for a whole lease
//! on its own monotonic clock. The rules that make that safe are the caller's
//! (`gateway::engine::members`); this module gives the atomic steps:
//! - [`Catalog::beat_gateway`] writes a liveness row (blind: only its owner writes it);
//! - [`Catalog::publish_read_leases`] tells the leader's GC which shard groups long reads on
//!   this gateway still need;
//! - [`Catalog::swap_leader`] replaces the leader row only if it is still exactly the value
//!   the caller decided on (compare-and-swap in one transaction), so at most one of several
//!   gateways racing for an expired lease wins it.

use serde::{Deserialize, Serialize};

use super::Catalog;
use crate::keys;
use crate::kv::Table;
use crate::model;
use crate::MetaError;

/// A gateway's liveness row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayRecord {
    /// Random per process: a restarted gateway is a new member.
    pub id: String,
    /// Where it serves S3 (for operators; never dialled by other gateways).
    pub address: String,
    pub started_ms: u64,
    /// Bumped at every renewal; a value unchanged for a lease means the gateway is gone.
    pub beat: u64,
}

/// The shard groups one gateway's reads hold: (gateway id, groups).
pub type PublishedReads = (String, Vec<[u8; 16]>);

/// The background-work lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderRecord {
    /// Id of the gateway holding the lease.
    pub owner: String,
    /// Incremented at every change of owner.
    pub term: u64,
    /// Bumped at every renewal by the owner.
    pub beat: u64,
}

impl Catalog {
    /// Writes gateway `rec.id`'s liveness row.
    pub fn beat_gateway(&self, rec: &GatewayRecord) -> Result<(), MetaError> {
        let value = model::encode(rec)?;
        self.transact(|txn| {
            txn.put(
                Table::System,
                keys::system_gateway_key(&rec.id),
                value.clone(),
            );
            Ok(())
        })
    }

    /// Removes gateway `id`'s liveness row and published read leases (it stopped, or it
    /// expired).
    pub fn remove_gateway(&self, id: &str) -> Result<(), MetaError> {
        self.transact(|txn| {
            txn.delete(Table::System, keys::system_gateway_key(id));
            txn.delete(Table::System, keys::system_read_leases_key(id));
            Ok(())
        })
    }

    /// Publishes the shard groups that reads in progress on gateway `id` still need (empty:
    /// none), so that the leader's GC on another gateway spares them.
    pub fn publish_read_leases(&self, id: &str, groups: &[[u8; 16]]) -> Result<(), MetaError> {
        let value = model::encode(&groups.to_vec())?;
        self.transact(|txn| {
            let key = keys::system_read_leases_key(id);
            if groups.is_empty() {
                txn.delete(Table::System, key);
            } else {
                txn.put(Table::System, key, value.clone());
            }
            Ok(())
        })
    }

    /// Every gateway's published read leases.
    pub fn read_leases(&self) -> Result<Vec<PublishedReads>, MetaError> {
        let start = keys::SYSTEM_READ_LEASES_PREFIX;
        self.scan_all(Table::System, start, &keys::successor(start))?
            .into_iter()
            .map(|(key, value)| {
                let id = String::from_utf8_lossy(&key[start.len()..]).into_owned();
                Ok((id, model::decode(&value)?))
            })
            .collect()
    }

    /// Every gateway's liveness row.
    pub fn gateways(&self) -> Result<Vec<GatewayRecord>, MetaError> {
        let start = keys::SYSTEM_GATEWAY_PREFIX;
        self.scan_all(Table::System, start, &keys::successor(start))?
            .into_iter()
            .map(|(_, value)| model::decode(&value))
            .collect()
    }

    /// The background-work lease, if any gateway ever took it.
    pub fn leader(&self) -> Result<Option<LeaderRecord>, MetaError> {
        self.get_record(Table::System, keys::SYSTEM_LEADER_KEY)
    }

    /// Replaces the lease by `next` (`None`: removes it) if it is still `expected` (`None`:
    /// absent). Returns whether it did; `false` means another gateway changed it first.
    pub fn swap_leader(
        &self,
        expected: Option<&LeaderRecord>,
        next: Option<&LeaderRecord>,
    ) -> Result<bool, MetaError> {
        let next = next.map(model::encode).transpose()?;
        self.transact(|txn| {
            let current: Option<LeaderRecord> =
                txn.get_record(Table::System, keys::SYSTEM_LEADER_KEY)?;
            if current.as_ref() != expected {
                return Ok(false);
            }
            match &next {
                Some(value) => txn.put(Table::System, keys::SYSTEM_LEADER_KEY, value.clone()),
                None => txn.delete(Table::System, keys::SYSTEM_LEADER_KEY),
            }
            Ok(true)
        })
    }
}
