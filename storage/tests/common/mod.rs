//! What the storage-node integration tests share: a node serving a temporary directory on
//! 127.0.0.1, its client, raw signed HTTP/1.1 requests (wire protocol 2) and small waits.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use storage::cluster_auth::{self, RequestTarget};
use storage::conformance::{frame_content, sample_geometry, sample_header};
use storage::format;
use storage::signed_body::{self, Tag};
use storage::{
    serve_node, HttpShardStore, HttpStoreConfig, NodeConfig, ScrubConfig, ShardId, ShardStore,
    StorageError,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const SECRET: &[u8] = b"test cluster secret";

pub fn client_config() -> HttpStoreConfig {
    HttpStoreConfig {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(5),
        max_concurrency: 8,
    }
}

/// A node serving a temporary directory, stopped when dropped.
pub struct TestNode {
    pub addr: SocketAddr,
    pub data: PathBuf,
    pub stop: Option<oneshot::Sender<()>>,
    pub task: Option<JoinHandle<Result<(), StorageError>>>,
    _dir: tempfile::TempDir,
}

impl TestNode {
    pub async fn start() -> TestNode {
        Self::start_with(ScrubConfig::default()).await
    }

    pub async fn start_with(scrub: ScrubConfig) -> TestNode {
        Self::start_configured(|config| config.scrub = scrub).await
    }

    /// A node whose config `adjust` may change (TLS, scrub) before it starts.
    pub async fn start_configured(adjust: impl FnOnce(&mut NodeConfig)) -> TestNode {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("disk");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut config = NodeConfig::new(addr, data.clone(), SECRET.to_vec());
        config.fsync = false;
        adjust(&mut config);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_node(config, listener, async move {
            let _ = stopped.await;
        }));
        // The data directory exists once the node is serving.
        for _ in 0..200 {
            if data.join("tmp").is_dir() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        TestNode {
            addr,
            data,
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
        }
    }

    pub fn client_with(&self, secret: &[u8]) -> HttpShardStore {
        client_at(self.addr, secret)
    }

    pub fn client(&self) -> Arc<dyn ShardStore> {
        Arc::new(self.client_with(SECRET))
    }

    /// Shuts the node down and waits for `serve_node` to return.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let result = tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("serve_node returns after shutdown");
            result.unwrap().unwrap();
        }
    }

    pub fn tmp_files(&self) -> usize {
        std::fs::read_dir(self.data.join("tmp"))
            .map(|dir| dir.count())
            .unwrap_or(0)
    }

    pub fn shard_files(&self) -> usize {
        count_files(&self.data.join("shards"))
    }
}

/// A plain-HTTP client of the node (or proxy) at `addr`.
pub fn client_at(addr: SocketAddr, secret: &[u8]) -> HttpShardStore {
    HttpShardStore::new(
        format!("node@{addr}"),
        format!("http://{addr}"),
        secret.to_vec(),
        client_config(),
    )
    .unwrap()
}

pub fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|entry| {
            let path = entry.unwrap().path();
            if path.is_dir() {
                count_files(&path)
            } else {
                1
            }
        })
        .sum()
}

/// Polls `condition` for up to 5 s.
pub async fn eventually(what: &str, condition: impl Fn() -> bool) {
    for _ in 0..500 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// The bytes of a complete shard file for `id` (the payload of a PUT body).
pub fn shard_file(id: ShardId, part_len: u64) -> Vec<u8> {
    let mut bytes = sample_header(id, part_len).encode();
    for stripe in 0..sample_geometry().stripe_count(part_len) {
        let frame = frame_content(id, part_len, stripe);
        bytes.extend_from_slice(&format::frame_checksum(&frame).to_be_bytes());
        bytes.extend_from_slice(&frame);
    }
    bytes
}

/// `payload` sealed as a whole body chain seeded by `seed`, final chunk included.
pub fn sealed(secret: &[u8], seed: Tag, payload: &[u8]) -> Vec<u8> {
    signed_body::seal_body(secret, seed, [Bytes::copy_from_slice(payload)])
        .unwrap()
        .concat()
}

/// Request head for `method target`, signed with `secret` at `when` unless `secret` is None,
/// and the request MAC (zeros when unsigned).
pub fn signed_head(
    method: &str,
    target: &str,
    secret: Option<&[u8]>,
    when: SystemTime,
    content_length: Option<usize>,
) -> (String, Tag) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut head = format!("{method} {target} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n");
    let mut mac = [0u8; 32];
    if let Some(secret) = secret {
        let signed = cluster_auth::sign(
            secret,
            &RequestTarget {
                method,
                path,
                query,
            },
            when,
        )
        .unwrap();
        head.push_str(&format!(
            "x-strata-date: {}\r\nx-strata-nonce: {}\r\nauthorization: {}\r\n",
            signed.date, signed.nonce, signed.authorization
        ));
        mac = signed.mac;
    }
    if let Some(len) = content_length {
        head.push_str(&format!("content-length: {len}\r\n"));
    }
    head.push_str("\r\n");
    (head, mac)
}

/// [`signed_head`] without the MAC.
pub fn request_head(
    method: &str,
    target: &str,
    secret: Option<&[u8]>,
    when: SystemTime,
    content_length: Option<usize>,
) -> String {
    signed_head(method, target, secret, when, content_length).0
}

/// A raw answer: status, head text and body bytes.
pub struct RawAnswer {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl RawAnswer {
    /// The answer's payload once its chain verified against the request MAC.
    pub fn open(&self, request_mac: &Tag) -> Result<Vec<u8>, signed_body::BodyAuthError> {
        let kind = self
            .head
            .lines()
            .find_map(|line| line.strip_prefix("x-strata-error: "))
            .unwrap_or("");
        let seed = cluster_auth::answer_seed(SECRET, request_mac, self.status, kind).unwrap();
        signed_body::open_body(SECRET, seed, &self.body)
    }
}

/// Sends a raw HTTP/1.1 request and returns the whole answer.
pub async fn raw_exchange(addr: SocketAddr, head: &str, body: &[u8]) -> RawAnswer {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("node answers")
        .unwrap();
    let split = answer
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    let head = String::from_utf8_lossy(&answer[..split]).to_string();
    let status = head
        .get(9..12)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {head:?}"));
    RawAnswer {
        status,
        head,
        body: answer[split + 4..].to_vec(),
    }
}

/// Sends a raw HTTP/1.1 request and returns the status code and the body as text (lossy: a
/// signed body's framing shows as noise around the message).
pub async fn raw_request(addr: SocketAddr, head: &str, body: &[u8]) -> (u16, String) {
    let answer = raw_exchange(addr, head, body).await;
    (
        answer.status,
        String::from_utf8_lossy(&answer.body).to_string(),
    )
}

/// A signed PUT of `payload` to `target`: the head (with the sealed body's length) and the
/// body sealed under the request's MAC, in chunks of at most 4 KiB (as a streaming sender
/// would: the node can verify and write the first chunks before the rest arrives).
pub fn signed_put(target: &str, payload: &[u8]) -> (String, Vec<u8>) {
    let pieces: Vec<Bytes> = payload.chunks(4096).map(Bytes::copy_from_slice).collect();
    let wire_len = signed_body::sealed_len(pieces.iter().map(|p| p.len() as u64)) as usize;
    let (head, mac) = signed_head(
        "PUT",
        target,
        Some(SECRET),
        SystemTime::now(),
        Some(wire_len),
    );
    let body = signed_body::seal_body(SECRET, mac, pieces)
        .unwrap()
        .concat();
    (head, body)
}
