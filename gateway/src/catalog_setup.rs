//! Opening the catalog a gateway serves from, and — when several gateways share it (etcd) —
//! agreeing with the others on what makes the cluster: erasure coding, write quorum, inline
//! threshold, the storage-node registry and the admin credentials.
//!
//! The first gateway to start writes these into the catalog (`put_system_if_absent`, so of
//! several starting at once exactly one wins); every later one compares its own configuration
//! and refuses to start on a difference, naming the field. A gateway whose configuration lists
//! no nodes takes the catalog's registry. The cluster secret is never stored in the catalog
//! (anyone who can read etcd would otherwise hold the storage nodes' key).

use serde::{Deserialize, Serialize};

use crate::config::{check_nodes, CatalogConfig, NodeEntry, ServerConfig};
use crate::credentials::Credentials;
use metadata::catalog::Catalog;

/// `system` value name of the cluster's shape.
const CLUSTER_RECORD: &str = "cluster";
/// `system` value name of the admin key pair.
const CREDENTIALS_RECORD: &str = "admin-credentials";

/// What every gateway of a cluster must agree on (JSON in the catalog, readable with etcdctl).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ClusterRecord {
    data_shards: usize,
    parity_shards: usize,
    block_size: usize,
    write_quorum: usize,
    inline_threshold: usize,
    nodes: Vec<NodeRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct NodeRecord {
    id: u32,
    address: String,
    zone: Option<String>,
    weight: Option<f64>,
}

impl ClusterRecord {
    fn of(config: &ServerConfig) -> ClusterRecord {
        let mut nodes: Vec<NodeRecord> = config
            .cluster
            .as_ref()
            .map(|c| c.nodes.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|n| NodeRecord {
                id: n.id,
                address: n.address.clone(),
                zone: n.zone.clone(),
                weight: n.weight,
            })
            .collect();
        nodes.sort_by_key(|n| n.id);
        let g = &config.geometry;
        ClusterRecord {
            data_shards: g.data_shards,
            parity_shards: g.parity_shards,
            block_size: g.block_size,
            write_quorum: config.write_quorum,
            inline_threshold: config.inline_threshold,
            nodes,
        }
    }

    /// The first field of `self` (this gateway) that differs from `stored`, as a message.
    fn disagreement(&self, stored: &ClusterRecord) -> Option<String> {
        let scalar = |field: &str, mine: usize, theirs: usize| {
            (mine != theirs).then(|| {
                format!(
                    "`{field}` is {mine} in this gateway's configuration but {theirs} in the \
                     cluster's shared catalog (set by the first gateway)"
                )
            })
        };
        scalar("data_shards", self.data_shards, stored.data_shards)
            .or_else(|| scalar("parity_shards", self.parity_shards, stored.parity_shards))
            .or_else(|| scalar("block_size", self.block_size, stored.block_size))
            .or_else(|| scalar("write_quorum", self.write_quorum, stored.write_quorum))
            .or_else(|| {
                scalar(
                    "inline_threshold",
                    self.inline_threshold,
                    stored.inline_threshold,
                )
            })
            .or_else(|| {
                if self.nodes.is_empty() || self.nodes == stored.nodes {
                    return None;
                }
                let describe = |nodes: &[NodeRecord]| {
                    nodes
                        .iter()
                        .map(|n| format!("{}={}", n.id, n.address))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                Some(format!(
                    "`nodes` are [{}] in this gateway's configuration but [{}] in the cluster's \
                     shared catalog (leave `nodes` out to use the catalog's)",
                    describe(&self.nodes),
                    describe(&stored.nodes)
                ))
            })
    }
}

/// Opens the configured catalog (blocking: call it off the reactor).
pub fn open_catalog(config: &ServerConfig) -> Result<Catalog, String> {
    open_catalog_and_store(config).map(|(catalog, _)| catalog)
}

/// [`open_catalog`], plus the RocksDB store itself when the catalog is local (catalog backups
/// checkpoint it). (Blocking.)
pub fn open_catalog_and_store(
    config: &ServerConfig,
) -> Result<(Catalog, Option<std::sync::Arc<metadata::RocksKvStore>>), String> {
    match &config.catalog {
        CatalogConfig::Rocks => {
            let dir = config.data.join("meta");
            let opened =
                |e: metadata::MetaError| format!("cannot open metadata at {}: {e}", dir.display());
            let store = std::sync::Arc::new(
                metadata::RocksKvStore::open(&dir, config.fsync).map_err(opened)?,
            );
            let catalog = Catalog::new(store.clone()).map_err(opened)?;
            Ok((catalog, Some(store)))
        }
        CatalogConfig::Etcd(etcd) => {
            let store = metadata::EtcdKvStore::connect(etcd.as_ref().clone()).map_err(|e| {
                format!(
                    "cannot reach the etcd catalog at {}: {e}",
                    etcd.endpoints.join(",")
                )
            })?;
            Catalog::new(std::sync::Arc::new(store))
                .map(|catalog| (catalog, None))
                .map_err(|e| format!("cannot open the etcd catalog: {e}"))
        }
    }
}

/// With a shared catalog: records this gateway's cluster shape if it is the first, else checks
/// it against the recorded one and fills in the node list when the configuration has none.
/// (Blocking: call it off the reactor.)
pub fn agree_on_cluster(catalog: &Catalog, config: &mut ServerConfig) -> Result<(), String> {
    if !matches!(config.catalog, CatalogConfig::Etcd(_)) {
        return Ok(());
    }
    let mine = ClusterRecord::of(config);
    let stored = if mine.nodes.is_empty() {
        catalog
            .get_system(CLUSTER_RECORD)
            .map_err(|e| format!("cannot read the cluster record: {e}"))?
            .ok_or_else(|| {
                "invalid `nodes`: none configured, and the shared catalog has no node registry \
                 yet (the first gateway of a cluster must list the storage nodes)"
                    .to_string()
            })?
    } else {
        let value = serde_json::to_vec(&mine).map_err(|e| e.to_string())?;
        catalog
            .put_system_if_absent(CLUSTER_RECORD, &value)
            .map_err(|e| format!("cannot record the cluster's shape: {e}"))?
    };
    let stored: ClusterRecord = serde_json::from_slice(&stored)
        .map_err(|e| format!("the shared catalog's cluster record is unreadable: {e}"))?;
    if let Some(message) = mine.disagreement(&stored) {
        return Err(format!(
            "refusing to start: {message}; every gateway of a cluster must agree"
        ));
    }
    if let Some(cluster) = config.cluster.as_mut() {
        if cluster.nodes.is_empty() {
            cluster.nodes = stored
                .nodes
                .iter()
                .map(|n| NodeEntry {
                    id: n.id,
                    address: n.address.clone(),
                    zone: n.zone.clone(),
                    weight: n.weight,
                })
                .collect();
            check_nodes(&cluster.nodes, config.geometry.total_shards())
                .map_err(|e| format!("the shared catalog's node registry: {e}"))?;
        }
    }
    Ok(())
}

/// The admin key pair: from the data directory for a catalog of one's own, else the shared
/// catalog's (the first gateway stores the pair from `STRATA_ACCESS_KEY`/`STRATA_SECRET_KEY`
/// or a generated one; a later gateway given other keys in its environment refuses to start).
/// (Blocking: call it off the reactor.)
pub fn admin_credentials(catalog: &Catalog, config: &ServerConfig) -> Result<Credentials, String> {
    if !matches!(config.catalog, CatalogConfig::Etcd(_)) {
        return Credentials::load_or_create(&config.data)
            .map_err(|e| format!("cannot load or create credentials: {e}"));
    }
    let from_env = Credentials::from_environment();
    let proposal = from_env.clone().unwrap_or_else(Credentials::generate);
    let value = serde_json::to_vec(&proposal).map_err(|e| e.to_string())?;
    let stored = catalog
        .put_system_if_absent(CREDENTIALS_RECORD, &value)
        .map_err(|e| format!("cannot record the admin credentials: {e}"))?;
    let stored: Credentials = serde_json::from_slice(&stored)
        .map_err(|e| format!("the shared catalog's admin credentials are unreadable: {e}"))?;
    if let Some(env) = from_env {
        if env != stored {
            return Err(
                "refusing to start: `STRATA_ACCESS_KEY`/`STRATA_SECRET_KEY` differ from the \
                 admin key pair in the cluster's shared catalog (set by the first gateway)"
                    .to_string(),
            );
        }
    }
    Ok(stored)
}

/// `system` row of the SSE-S3 master keys generated for gateways sharing an etcd catalog
/// without a configured key file (key-file text).
const SSE_MASTER_RECORD: &str = "sse-master-keys";

/// The keys of encryption at rest: the configured master key file, else (RocksDB catalog) the
/// data directory's `sse-master.keys`, created with one random key on first start (mode
/// 0600, like the credentials), else (shared etcd catalog) one generated keyring stored in the
/// catalog so that every gateway has the same; `STRATA_SSE_MASTER_KEY` (base64 of 32 bytes)
/// is added as the active key `env`. The KMS key file, if configured, must exist.
pub fn sse_keys(catalog: &Catalog, config: &ServerConfig) -> Result<crate::sse::SseKeys, String> {
    use crate::sse::keys::{decode_key, ensure_key_file, Keyring};
    let mut master = match (&config.sse.master_key_file, &config.catalog) {
        (Some(path), _) => Keyring::load(path).map_err(|e| e.to_string())?,
        (None, CatalogConfig::Rocks) => {
            let path = config.data.join(crate::sse::DEFAULT_KEY_FILE);
            ensure_key_file(&path, "default").map_err(|e| e.to_string())?;
            Keyring::load(&path).map_err(|e| e.to_string())?
        }
        (None, CatalogConfig::Etcd(_)) => {
            let key: [u8; 32] = rand::random();
            let proposal = format!(
                "default {}\n",
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key)
            );
            let stored = catalog
                .put_system_if_absent(SSE_MASTER_RECORD, proposal.as_bytes())
                .map_err(|e| format!("cannot record the SSE master key: {e}"))?;
            let text = String::from_utf8(stored)
                .map_err(|_| "the shared catalog's SSE master keys are unreadable".to_string())?;
            Keyring::parse(&text).map_err(|e| e.to_string())?
        }
    };
    if let Ok(value) = std::env::var(crate::sse::MASTER_KEY_ENV) {
        if !value.trim().is_empty() {
            let key =
                decode_key(&value).map_err(|e| format!("{}: {e}", crate::sse::MASTER_KEY_ENV))?;
            master.push("env", key);
        }
    }
    let kms = match &config.sse.kms_key_file {
        Some(path) => Some(Keyring::load(path).map_err(|e| e.to_string())?),
        None => None,
    };
    Ok(crate::sse::SseKeys { master, kms })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn record(k: usize, quorum: usize, nodes: &[(u32, &str)]) -> ClusterRecord {
        ClusterRecord {
            data_shards: k,
            parity_shards: 2,
            block_size: 1 << 20,
            write_quorum: quorum,
            inline_threshold: 4096,
            nodes: nodes
                .iter()
                .map(|&(id, address)| NodeRecord {
                    id,
                    address: address.to_string(),
                    zone: None,
                    weight: None,
                })
                .collect(),
        }
    }

    #[test]
    fn a_disagreement_names_the_field() {
        let stored = record(4, 5, &[(0, "a:1"), (1, "b:1")]);
        assert_eq!(
            record(4, 5, &[(0, "a:1"), (1, "b:1")]).disagreement(&stored),
            None
        );
        assert_eq!(
            record(4, 5, &[]).disagreement(&stored),
            None,
            "no nodes: use the catalog's"
        );
        let quorum = record(4, 6, &[]).disagreement(&stored).unwrap();
        assert!(quorum.starts_with("`write_quorum` is 6"), "{quorum}");
        let k = record(3, 6, &[]).disagreement(&stored).unwrap();
        assert!(k.starts_with("`data_shards` is 3"), "{k}");
        let nodes = record(4, 5, &[(0, "a:1"), (1, "c:1")])
            .disagreement(&stored)
            .unwrap();
        assert!(nodes.starts_with("`nodes` are [0=a:1, 1=c:1]"), "{nodes}");
    }
}
