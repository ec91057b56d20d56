//! Cluster roles: the gateway's HTTP shard stores and the `strata storage-node` process.

use std::sync::Arc;

use storage::http_store::{HttpShardStore, HttpStoreConfig};
use storage::store::ShardStore;

use crate::config::ClusterSettings;
use crate::engine::cluster::NodeSpec;

/// One `HttpShardStore` per configured storage node.
pub fn http_nodes(cluster: &ClusterSettings) -> Result<Vec<NodeSpec>, String> {
    let mut nodes = Vec::new();
    let http = HttpStoreConfig {
        connect_timeout: cluster.connect_timeout,
        request_timeout: cluster.request_timeout,
        idle_timeout: cluster.idle_timeout,
        max_concurrency: cluster.node_concurrency,
    };
    for node in &cluster.nodes {
        // `host:port` is plain HTTP; a node serving TLS is listed as `https://host:port`.
        let base_url =
            if node.address.starts_with("https://") || node.address.starts_with("http://") {
                node.address.clone()
            } else {
                format!("http://{}", node.address)
            };
        let store = HttpShardStore::with_tls(
            format!("node{}@{}", node.id, node.address),
            base_url,
            cluster.secret.clone(),
            http,
            cluster.node_tls.clone(),
        )
        .map_err(|e| format!("node {} ({}): {e}", node.id, node.address))?;
        nodes.push(NodeSpec {
            id: node.id,
            address: node.address.clone(),
            zone: node.zone.clone(),
            weight: node.weight.unwrap_or(1.0),
            store: Arc::new(store) as Arc<dyn ShardStore>,
        });
    }
    Ok(nodes)
}

/// `strata storage-node`: serves one directory's shards until SIGINT/SIGTERM.
pub async fn run_storage_node(config: storage::node::NodeConfig) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    println!(
        "Strata storage node on {scheme}://{local}, data in {}",
        config.data.display()
    );
    storage::node::serve_node(config, listener, crate::shutdown::shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}
