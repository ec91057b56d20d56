//! Test support shared by this crate's tests and the gateway's: a real etcd cluster of child
//! processes on free loopback ports, in a temporary directory, stopped on drop.
//!
//! The binary is `$STRATA_ETCD_BIN` or `etcd` on `PATH` (Debian's `etcd-server`, installed by
//! `make deps`). Every wait is bounded.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::etcd::{EtcdConfig, EtcdKvStore};
use crate::kv::Limits;
use crate::MetaError;

/// What one transaction may carry on test members, and what `store` tells the catalog:
/// etcd's own defaults (`--max-txn-ops 128`, `--max-request-bytes 1.5 MiB`). Members run with
/// those defaults (no flag raises them), so every catalog transaction the tests make is proven
/// to fit a stock etcd.
pub const TEST_LIMITS: Limits = Limits::ETCD_DEFAULT;

/// The etcd binary tests start.
pub fn etcd_binary() -> PathBuf {
    std::env::var_os("STRATA_ETCD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("etcd"))
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

/// A local etcd cluster for tests.
pub struct EtcdCluster {
    dir: tempfile::TempDir,
    members: Vec<Member>,
}

impl EtcdCluster {
    /// Starts `size` members and waits (bounded) until the cluster answers.
    pub fn start(size: usize) -> Result<EtcdCluster, MetaError> {
        let io = |e: std::io::Error| MetaError::Db(format!("etcd test cluster: {e}"));
        let dir = tempfile::tempdir().map_err(io)?;
        let mut members = Vec::new();
        for index in 0..size {
            members.push(Member {
                name: format!("m{index}"),
                client_port: free_port().map_err(io)?,
                peer_port: free_port().map_err(io)?,
                child: None,
            });
        }
        let mut cluster = EtcdCluster { dir, members };
        for index in 0..size {
            cluster.spawn(index, "new")?;
        }
        cluster.wait_ready()?;
        Ok(cluster)
    }

    fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn spawn(&mut self, index: usize, state: &str) -> Result<(), MetaError> {
        let initial_cluster = self.initial_cluster();
        let data = self.dir.path().join(format!("m{index}"));
        let log_path = self.dir.path().join(format!("m{index}.log"));
        let member = self
            .members
            .get_mut(index)
            .ok_or_else(|| MetaError::Db(format!("no member {index}")))?;
        let log = std::fs::File::create(&log_path)
            .map_err(|e| MetaError::Db(format!("etcd log {}: {e}", log_path.display())))?;
        let client_url = format!("http://127.0.0.1:{}", member.client_port);
        let peer_url = format!("http://127.0.0.1:{}", member.peer_port);
        let child = Command::new(etcd_binary())
            .arg("--name")
            .arg(&member.name)
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &initial_cluster])
            .args(["--initial-cluster-state", state])
            .args(["--initial-cluster-token", "strata-test"])
            // Fast elections keep fault tests short.
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| {
                MetaError::Db(format!(
                    "cannot start {} (install etcd-server: make deps): {e}",
                    etcd_binary().display()
                ))
            })?;
        member.child = Some(child);
        Ok(())
    }

    /// Client URLs of every member.
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("http://127.0.0.1:{}", m.client_port))
            .collect()
    }

    /// A store on this cluster under its own key prefix.
    pub fn store(&self, prefix: &str) -> Result<EtcdKvStore, MetaError> {
        let mut config = EtcdConfig::new(self.endpoints());
        config.prefix = prefix.as_bytes().to_vec();
        config.limits = TEST_LIMITS;
        EtcdKvStore::connect(config)
    }

    fn wait_ready(&self) -> Result<(), MetaError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut config = EtcdConfig::new(self.endpoints());
            config.timeout = Duration::from_secs(2);
            match EtcdKvStore::connect(config) {
                Ok(store) => {
                    if crate::kv::KvStore::get(&store, crate::kv::Table::System, b"ready").is_ok() {
                        return Ok(());
                    }
                }
                Err(e) if Instant::now() > deadline => {
                    return Err(MetaError::Db(format!("etcd cluster not ready: {e}")))
                }
                Err(_) => {}
            }
            if Instant::now() > deadline {
                return Err(MetaError::Db("etcd cluster not ready".to_string()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills member `index` with SIGKILL.
    pub fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.members.get_mut(index).and_then(|m| m.child.take()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Restarts a killed member with its data.
    pub fn restart(&mut self, index: usize) -> Result<(), MetaError> {
        self.spawn(index, "existing")
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for index in 0..self.members.len() {
            self.kill(index);
        }
    }
}
