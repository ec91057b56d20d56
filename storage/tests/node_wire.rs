//! Wire protocol 2 against a man in the middle: a real node and `HttpShardStore` on 127.0.0.1
//! with a small TCP proxy between them that flips one byte of a shard upload or of a read
//! answer. The node must refuse the forged upload and store nothing; the client must refuse
//! the forged answer and return no byte of it; the untouched path keeps working. And the
//! optional TLS between them, with a throw-away CA made in the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use common::{client_at, client_config, eventually, TestNode, SECRET};
use storage::conformance::{frame_content, sample_header, write_shard};
use storage::node_tls;
use storage::{HttpShardStore, NodeTlsClient, ShardGroupId, ShardId, ShardStore, StorageError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Which way of the connection a tamper applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    ToNode,
    ToClient,
}

/// One byte flip armed on the proxy: the last byte of the first occurrence of `needle` in
/// `direction` is flipped, once.
#[derive(Clone, Debug)]
struct Tamper {
    direction: Direction,
    needle: Vec<u8>,
}

/// A TCP proxy to `target` that forwards both ways and applies the armed tamper once.
struct TamperingProxy {
    addr: SocketAddr,
    armed: Arc<Mutex<Option<Tamper>>>,
    flipped: Arc<Mutex<usize>>,
    task: JoinHandle<()>,
}

impl TamperingProxy {
    async fn start(target: SocketAddr) -> TamperingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let armed: Arc<Mutex<Option<Tamper>>> = Arc::new(Mutex::new(None));
        let flipped = Arc::new(Mutex::new(0usize));
        let (task_armed, task_flipped) = (Arc::clone(&armed), Arc::clone(&flipped));
        let task = tokio::spawn(async move {
            // Bounded by the test: the proxy is aborted when it is dropped.
            while let Ok((client, _)) = listener.accept().await {
                let Ok(node) = TcpStream::connect(target).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (node_read, node_write) = node.into_split();
                for (from, to, direction) in [
                    (client_read, node_write, Direction::ToNode),
                    (node_read, client_write, Direction::ToClient),
                ]
                .map(|(r, w, d)| (Box::new(r), Box::new(w), d))
                {
                    tokio::spawn(pump(
                        from,
                        to,
                        direction,
                        Arc::clone(&task_armed),
                        Arc::clone(&task_flipped),
                    ));
                }
            }
        });
        TamperingProxy {
            addr,
            armed,
            flipped,
            task,
        }
    }

    fn arm(&self, direction: Direction, needle: &[u8]) {
        *self.armed.lock().unwrap() = Some(Tamper {
            direction,
            needle: needle.to_vec(),
        });
    }

    fn flips(&self) -> usize {
        *self.flipped.lock().unwrap()
    }
}

impl Drop for TamperingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Forwards `from` to `to`, flipping a byte when the armed tamper matches this direction. A
/// needle split across two reads is found through the tail kept from the previous read.
async fn pump(
    mut from: Box<tokio::net::tcp::OwnedReadHalf>,
    mut to: Box<tokio::net::tcp::OwnedWriteHalf>,
    direction: Direction,
    armed: Arc<Mutex<Option<Tamper>>>,
    flipped: Arc<Mutex<usize>>,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        let chunk = &mut buffer[..read];
        let tamper = armed.lock().unwrap().clone();
        if let Some(tamper) = tamper.filter(|t| t.direction == direction) {
            let mut window = tail.clone();
            window.extend_from_slice(chunk);
            if let Some(start) = window
                .windows(tamper.needle.len())
                .position(|candidate| candidate == tamper.needle.as_slice())
            {
                let last = start + tamper.needle.len() - 1 - tail.len();
                chunk[last] ^= 0x01;
                *armed.lock().unwrap() = None;
                *flipped.lock().unwrap() += 1;
            }
            let keep = tamper.needle.len().saturating_sub(1).min(window.len());
            tail = window[window.len() - keep..].to_vec();
        }
        if to.write_all(chunk).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// Stored shards: a part of 3 frames of 1 KiB (the sample geometry's shard size).
const PART_LEN: u64 = 3000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_in_an_upload_is_refused_and_stores_nothing() {
    let mut node = TestNode::start().await;
    let proxy = TamperingProxy::start(node.addr).await;
    let store = client_at(proxy.addr, SECRET);

    // Untouched, the path through the proxy works.
    let good = ShardId::new(ShardGroupId::new_v7(), 1);
    write_shard(&store, good, PART_LEN).await;
    assert_eq!(node.shard_files(), 1);

    // A byte of frame 1's shard bytes is flipped on its way to the node.
    let forged = ShardId::new(ShardGroupId::new_v7(), 2);
    let frame = frame_content(forged, PART_LEN, 1);
    proxy.arm(Direction::ToNode, &frame[100..132]);
    let upload = async {
        let mut writer = store
            .create(forged, sample_header(forged, PART_LEN))
            .await?;
        for stripe in 0..3 {
            writer
                .write_frame(frame_content(forged, PART_LEN, stripe))
                .await?;
        }
        writer.commit().await
    };
    let outcome = upload.await;
    assert_eq!(proxy.flips(), 1, "the proxy found the frame");
    assert!(
        matches!(&outcome, Err(StorageError::Corrupt(message)) if message.contains("authentication")),
        "{outcome:?}"
    );
    eventually("no temporary file", || node.tmp_files() == 0).await;
    assert_eq!(node.shard_files(), 1, "only the untouched shard is stored");
    assert_eq!(store.stat(forged).await, Err(StorageError::NotFound));

    // The same shard uploads fine once the proxy stops tampering.
    write_shard(&store, forged, PART_LEN).await;
    assert_eq!(
        store.read_frames(forged, 1, 1).await.unwrap(),
        vec![Some(frame)]
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_in_an_answer_is_refused_never_returned() {
    let mut node = TestNode::start().await;
    let direct: Arc<dyn ShardStore> = node.client();
    let proxy = TamperingProxy::start(node.addr).await;
    let store = client_at(proxy.addr, SECRET);
    let id = ShardId::new(ShardGroupId::new_v7(), 0);
    write_shard(direct.as_ref(), id, PART_LEN).await;

    // Frame 2's bytes are flipped on their way back. The frame checksum would catch a naive
    // flip, so the flip lands where only the chain can catch it too: the whole answer is
    // refused, not just the frame.
    let frame = frame_content(id, PART_LEN, 2);
    proxy.arm(Direction::ToClient, &frame[10..42]);
    let answer = store.read_frames(id, 0, 3).await;
    assert_eq!(proxy.flips(), 1, "the proxy found the frame");
    assert!(
        matches!(&answer, Err(StorageError::Unavailable(message)) if message.contains("failed authentication")),
        "{answer:?}"
    );

    // A forged stat answer (its header bytes) is refused too.
    let header = sample_header(id, PART_LEN).encode();
    proxy.arm(Direction::ToClient, &header[20..40]);
    let stat = store.stat(id).await;
    assert_eq!(proxy.flips(), 2);
    assert!(
        matches!(&stat, Err(StorageError::Unavailable(message)) if message.contains("failed authentication")),
        "{stat:?}"
    );

    // Untouched, the same reads through the proxy return the stored bytes.
    let frames = store.read_frames(id, 0, 3).await.unwrap();
    assert_eq!(frames[2], Some(frame));
    assert_eq!(store.stat(id).await.unwrap().header.part_length, PART_LEN);
    node.stop().await;
}

/// A throw-away CA and a certificate for `localhost`/`127.0.0.1` signed by it, as PEM files.
struct TestPki {
    dir: tempfile::TempDir,
}

impl TestPki {
    fn new() -> TestPki {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let dir = tempfile::tempdir().unwrap();
        let issue_ca = |name: &str| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.distinguished_name.push(DnType::CommonName, name);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            let cert = params.self_signed(&key).unwrap();
            (cert, Issuer::new(params, key))
        };
        let (ca_cert, issuer) = issue_ca("Strata node test CA");
        let (other_ca, _) = issue_ca("Some other CA");
        let node_key = KeyPair::generate().unwrap();
        let mut node =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        node.distinguished_name
            .push(DnType::CommonName, "localhost");
        node.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let node_cert = node.signed_by(&node_key, &issuer).unwrap();
        for (name, pem) in [
            ("ca.pem", ca_cert.pem()),
            ("other-ca.pem", other_ca.pem()),
            ("node.pem", node_cert.pem()),
            ("node.key", node_key.serialize_pem()),
        ] {
            std::fs::write(dir.path().join(name), pem).unwrap();
        }
        TestPki { dir }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
}

fn tls_client(
    addr: SocketAddr,
    ca: Option<&std::path::Path>,
    server_name: Option<&str>,
) -> HttpShardStore {
    let tls = ca.map(|ca| NodeTlsClient::from_ca_file(ca, server_name.map(str::to_owned)).unwrap());
    HttpShardStore::with_tls(
        format!("node@{addr}"),
        format!("https://{addr}"),
        SECRET.to_vec(),
        client_config(),
        tls,
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_serving_tls_works_only_for_clients_trusting_its_ca() {
    let pki = TestPki::new();
    let server =
        node_tls::load_server_config(&pki.path("node.pem"), &pki.path("node.key")).unwrap();
    let mut node = TestNode::start_configured(|config| config.tls = Some(server)).await;

    // Trusting the CA: the conformance suite passes over HTTPS, by IP and by overridden name.
    let store: Arc<dyn ShardStore> =
        Arc::new(tls_client(node.addr, Some(&pki.path("ca.pem")), None));
    storage::conformance::conformance(Arc::clone(&store)).await;
    let by_name = tls_client(node.addr, Some(&pki.path("ca.pem")), Some("localhost"));
    assert!(by_name.ping().await.is_ok());

    // Another CA, or a name the certificate does not carry: refused, nothing stored.
    let id = ShardId::new(ShardGroupId::new_v7(), 0);
    let stored = node.shard_files();
    for (what, client) in [
        (
            "other CA",
            tls_client(node.addr, Some(&pki.path("other-ca.pem")), None),
        ),
        (
            "wrong name",
            tls_client(node.addr, Some(&pki.path("ca.pem")), Some("node9.example")),
        ),
    ] {
        let ping = client.ping().await;
        assert!(
            matches!(ping, Err(StorageError::Unavailable(_))),
            "{what}: {ping:?}"
        );
        let upload = async {
            let mut writer = client.create(id, sample_header(id, PART_LEN)).await?;
            writer.write_frame(frame_content(id, PART_LEN, 0)).await?;
            writer.commit().await
        };
        assert!(upload.await.is_err(), "{what}");
    }
    // No CA at all: an https address is refused when the client is built.
    let refused = HttpShardStore::with_tls(
        "n".into(),
        format!("https://{}", node.addr),
        SECRET.to_vec(),
        client_config(),
        None,
    );
    assert!(
        matches!(refused, Err(StorageError::InvalidArgument(message)) if message.contains("CA"))
    );
    // A plain-HTTP client cannot talk to a TLS node either.
    assert!(client_at(node.addr, SECRET).ping().await.is_err());
    assert_eq!(node.shard_files(), stored);
    assert_eq!(node.tmp_files(), 0);

    // Bad PEM setups are refused when loaded, naming the file.
    let err = node_tls::load_server_config(&pki.path("node.pem"), &pki.path("ca.pem")).unwrap_err();
    assert!(err.to_string().contains("ca.pem"), "{err}");
    let err = NodeTlsClient::from_ca_file(&pki.path("node.key"), None).unwrap_err();
    assert!(err.to_string().contains("node.key"), "{err}");
    node.stop().await;
}
