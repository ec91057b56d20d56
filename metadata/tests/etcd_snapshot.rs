//! Backup and restore of a catalog on etcd, the documented way (metadata/README.md, "Backing up
//! the catalog"): `etcdctl snapshot save` while the catalog is in use, the cluster lost,
//! `etcdctl snapshot restore` into a fresh data directory, etcd started on it — and the catalog
//! holds exactly what it held at the snapshot, and takes new transactions.
//!
//! The binaries are `$STRATA_ETCD_BIN`/`etcd` and `$STRATA_ETCDCTL_BIN`/`etcdctl` (Debian's
//! `etcd-server` and `etcd-client`, installed by `make deps`). Every wait is bounded.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use metadata::testing::{etcd_binary, free_port, EtcdCluster};
use metadata::{Catalog, EtcdConfig, EtcdKvStore};

fn etcdctl() -> PathBuf {
    std::env::var_os("STRATA_ETCDCTL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("etcdctl"))
}

/// Runs etcdctl (API v3) with `args`; panics with its output if it fails.
fn run_etcdctl(args: &[&str]) {
    let output = Command::new(etcdctl())
        .env("ETCDCTL_API", "3")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run etcdctl (install etcd-client: make deps): {e}"));
    assert!(
        output.status.success(),
        "etcdctl {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A one-member etcd started on a restored data directory; killed on drop.
struct RestoredMember {
    child: Child,
    endpoint: String,
}

impl Drop for RestoredMember {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Restores `snapshot` into `data` for a member `name` at `peer_port`, and starts it.
fn restore_and_start(snapshot: &Path, data: &Path, log: &Path) -> RestoredMember {
    let (client_port, peer_port) = (free_port().unwrap(), free_port().unwrap());
    let peer_url = format!("http://127.0.0.1:{peer_port}");
    let client_url = format!("http://127.0.0.1:{client_port}");
    let initial_cluster = format!("restored={peer_url}");
    run_etcdctl(&[
        "snapshot",
        "restore",
        snapshot.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--name",
        "restored",
        "--initial-cluster",
        &initial_cluster,
        "--initial-advertise-peer-urls",
        &peer_url,
        "--initial-cluster-token",
        "strata-restored",
    ]);
    let child = Command::new(etcd_binary())
        .args(["--name", "restored", "--data-dir", data.to_str().unwrap()])
        .args(["--listen-client-urls", &client_url])
        .args(["--advertise-client-urls", &client_url])
        .args(["--listen-peer-urls", &peer_url])
        .args(["--initial-advertise-peer-urls", &peer_url])
        .args(["--initial-cluster", &initial_cluster])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    RestoredMember {
        child,
        endpoint: client_url,
    }
}

/// A catalog on `endpoint` under the prefix `strata/`, once etcd answers (at most 30 s).
fn connect(endpoint: &str) -> Catalog {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut config = EtcdConfig::new(vec![endpoint.to_string()]);
        config.timeout = Duration::from_secs(2);
        if let Ok(store) = EtcdKvStore::connect(config) {
            if let Ok(catalog) = Catalog::new(Arc::new(store)) {
                if catalog.list_buckets().is_ok() {
                    return catalog;
                }
            }
        }
        assert!(Instant::now() < deadline, "restored etcd did not answer");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_etcd_snapshot_restores_the_catalog_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = dir.path().join("catalog.snapshot.db");
    let mut cluster = EtcdCluster::start(1).unwrap();
    let endpoint = cluster.endpoints().remove(0);
    let catalog = Catalog::new(Arc::new(cluster.store("strata/").unwrap())).unwrap();
    for name in ["alpha", "beta"] {
        catalog
            .create_bucket(name, "owner", "us-east-1", 1)
            .unwrap();
    }
    catalog.put_system("setting", b"before").unwrap();
    let seq_before = catalog.next_seq().unwrap();

    run_etcdctl(&[
        "--endpoints",
        &endpoint,
        "snapshot",
        "save",
        snapshot.to_str().unwrap(),
    ]);

    // After the snapshot: changes the restore must not show.
    catalog
        .create_bucket("gamma", "owner", "us-east-1", 2)
        .unwrap();
    catalog.delete_bucket("alpha").unwrap();
    catalog.put_system("setting", b"after").unwrap();

    // The whole cluster is lost.
    drop(catalog);
    cluster.kill(0);
    drop(cluster);

    let member = restore_and_start(
        &snapshot,
        &dir.path().join("restored"),
        &dir.path().join("restored.log"),
    );
    let restored = connect(&member.endpoint);
    let names: Vec<String> = restored
        .list_buckets()
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names, vec!["alpha".to_string(), "beta".to_string()]);
    assert_eq!(
        restored.get_system("setting").unwrap().as_deref(),
        Some(&b"before"[..])
    );
    // The restored catalog takes transactions, and never hands out a sequence number twice.
    restored
        .create_bucket("delta", "owner", "us-east-1", 3)
        .unwrap();
    restored.delete_bucket("beta").unwrap();
    assert!(restored.next_seq().unwrap() > seq_before);
    let names: Vec<String> = restored
        .list_buckets()
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names, vec!["alpha".to_string(), "delta".to_string()]);
}
