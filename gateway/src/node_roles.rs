//! Cluster roles (pending the storage-node service).
use crate::config::ClusterSettings;
use crate::engine::cluster::NodeSpec;
pub fn http_nodes(_cluster: &ClusterSettings) -> Result<Vec<NodeSpec>, String> {
    Err("cluster mode is not available in this build".into())
}
