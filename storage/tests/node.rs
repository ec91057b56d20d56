//! The storage node and `HttpShardStore` over real HTTP on 127.0.0.1: the conformance suite,
//! authentication, strict ids, streamed uploads that fail half-way, and client timeouts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use common::{
    client_config, eventually, raw_exchange, raw_request, request_head, sealed, shard_file,
    signed_head, signed_put, TestNode, SECRET,
};
use storage::conformance::{self, frame_content, sample_geometry, sample_header, write_shard};
use storage::format;
use storage::signed_body;
use storage::{
    serve_node, HttpShardStore, NodeConfig, ScrubConfig, ShardGroupId, ShardId, ShardStore,
    StorageError,
};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_store_passes_the_conformance_suite() {
    let mut node = TestNode::start().await;
    let store = node.client();
    conformance::conformance(Arc::clone(&store)).await;
    eventually("no temporary file left behind", || node.tmp_files() == 0).await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_on_the_node_disk_comes_back_as_erasures_and_corrupt() {
    let mut node = TestNode::start().await;
    let store = node.client();
    let part_len = 3000;
    let id = ShardId::new(ShardGroupId::new_v7(), 2);
    write_shard(store.as_ref(), id, part_len).await;
    let path = storage::local::shard_path(&node.data, id);
    let header_len = store.stat(id).await.unwrap().header_len;
    let offset = format::frame_offset(header_len, &sample_geometry(), part_len, 1) + 20;
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[offset as usize] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let frames = store.read_frames(id, 0, 3).await.unwrap();
    assert_eq!(frames[0], Some(frame_content(id, part_len, 0)));
    assert_eq!(frames[1], None, "a corrupt frame is an erasure, not bytes");
    assert_eq!(frames[2], Some(frame_content(id, part_len, 2)));

    let cut = format::frame_offset(header_len, &sample_geometry(), part_len, 2) + 5;
    std::fs::write(&path, &bytes[..cut as usize]).unwrap();
    assert_eq!(store.read_frames(id, 1, 2).await.unwrap(), vec![None, None]);

    bytes[12] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        store.read_frames(id, 0, 1).await,
        Err(StorageError::Corrupt(_))
    ));
    assert!(matches!(
        store.stat(id).await,
        Err(StorageError::Corrupt(_))
    ));
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_stream_and_abandoned_ones_leave_nothing() {
    let mut node = TestNode::start().await;
    let store = node.client();
    let part_len = 40 * 1024; // 40 frames
    let id = ShardId::new(ShardGroupId::new_v7(), 1);

    // The node writes frames as they arrive: the temporary file exists before the commit.
    let mut writer = store.create(id, sample_header(id, part_len)).await.unwrap();
    for stripe in 0..5 {
        writer
            .write_frame(frame_content(id, part_len, stripe))
            .await
            .unwrap();
    }
    eventually("temporary file while streaming", || node.tmp_files() == 1).await;
    assert_eq!(store.stat(id).await, Err(StorageError::NotFound));
    writer.abort().await;
    eventually("abort removes the temporary file", || node.tmp_files() == 0).await;

    // Dropping a writer mid-upload is an abort too.
    let mut writer = store.create(id, sample_header(id, part_len)).await.unwrap();
    writer
        .write_frame(frame_content(id, part_len, 0))
        .await
        .unwrap();
    drop(writer);
    eventually("drop removes the temporary file", || node.tmp_files() == 0).await;
    assert_eq!(store.stat(id).await, Err(StorageError::NotFound));
    assert_eq!(node.shard_files(), 0);

    // Even with every frame sent, abort or drop instead of commit stores nothing.
    for drop_it in [false, true] {
        let mut writer = store.create(id, sample_header(id, 2000)).await.unwrap();
        for stripe in 0..2 {
            writer
                .write_frame(frame_content(id, 2000, stripe))
                .await
                .unwrap();
        }
        if drop_it {
            drop(writer);
        } else {
            writer.abort().await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        eventually("no temporary file", || node.tmp_files() == 0).await;
        assert_eq!(store.stat(id).await, Err(StorageError::NotFound));
        assert_eq!(node.shard_files(), 0);
    }

    // And the same shard still uploads fine afterwards.
    write_shard(store.as_ref(), id, part_len).await;
    assert_eq!(store.read_frames(id, 39, 1).await.unwrap().len(), 1);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_whose_connection_drops_mid_body_stores_nothing() {
    let mut node = TestNode::start().await;
    let id = ShardId::new(ShardGroupId::new_v7(), 0);
    let target = format!("/v1/shards/{}", id.file_name());
    let (head, file) = signed_put(&target, &shard_file(id, 64 * 1024));
    let mut stream = TcpStream::connect(node.addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&file[..file.len() / 2]).await.unwrap();
    eventually("the node started writing", || node.tmp_files() == 1).await;
    drop(stream);
    eventually("the node removed its temporary file", || {
        node.tmp_files() == 0
    })
    .await;
    assert_eq!(node.shard_files(), 0);
    assert_eq!(node.client().stat(id).await, Err(StorageError::NotFound));
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_or_mismatched_put_body_is_refused_and_stores_nothing() {
    let mut node = TestNode::start().await;
    let id = ShardId::new(ShardGroupId::new_v7(), 3);
    let part_len = 3000;
    let file = shard_file(id, part_len);
    let target = format!("/v1/shards/{}", id.file_name());
    let header_len = sample_header(id, part_len).encode().len() as u64;
    let put = |payload: Vec<u8>, target: String| {
        let (head, body) = signed_put(&target, &payload);
        async move { raw_request(node.addr, &head, &body).await }
    };

    let mut corrupt = file.clone();
    let offset = format::frame_offset(header_len, &sample_geometry(), part_len, 1) + 30;
    corrupt[offset as usize] ^= 1;
    let (status, message) = put(corrupt, target.clone()).await;
    assert_eq!(status, 400, "{message}");
    assert!(message.contains("checksum"), "{message}");

    let (status, _) = put(file[..file.len() - 1].to_vec(), target.clone()).await;
    assert_eq!(status, 400, "a body shorter than its header says");
    let mut long = file.clone();
    long.push(0);
    let (status, _) = put(long, target.clone()).await;
    assert_eq!(status, 400, "a body longer than its header says");
    let other = ShardId::new(id.group, 4);
    let (status, _) = put(file.clone(), format!("/v1/shards/{}", other.file_name())).await;
    assert_eq!(status, 400, "header of another shard");

    // Forged bodies under a properly signed head: a flipped byte, the final chunk cut off
    // (with a content-length to match, as a man in the middle would send), a body sealed for
    // another request.
    let wire_len = signed_body::sealed_len([file.len() as u64]) as usize;
    let (_, other_mac) = signed_head("PUT", &target, Some(SECRET), SystemTime::now(), None);
    for forgery in ["flipped", "truncated", "other request"] {
        let len = match forgery {
            "truncated" => wire_len - signed_body::CHUNK_OVERHEAD,
            _ => wire_len,
        };
        let (head, mac) = signed_head("PUT", &target, Some(SECRET), SystemTime::now(), Some(len));
        let mut body = match forgery {
            "other request" => sealed(SECRET, other_mac, &file),
            _ => sealed(SECRET, mac, &file),
        };
        match forgery {
            "flipped" => body[200] ^= 0x10,
            "truncated" => body.truncate(len),
            _ => {}
        }
        let (status, message) = raw_request(node.addr, &head, &body).await;
        assert_eq!(status, 400, "{forgery}: {message}");
        assert!(
            message.contains("authentication") || message.contains("final chunk"),
            "{forgery}: {message}"
        );
        assert_eq!(node.shard_files(), 0, "{forgery}");
    }
    eventually("no temporary file", || node.tmp_files() == 0).await;

    assert_eq!(node.tmp_files(), 0);
    assert_eq!(node.shard_files(), 0);
    let (status, _) = put(file, target).await;
    assert_eq!(status, 200, "the intact body is accepted");
    assert_eq!(node.shard_files(), 1);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_requests_are_refused_and_touch_nothing() {
    let mut node = TestNode::start().await;
    let id = ShardId::new(ShardGroupId::new_v7(), 0);

    // A client with the wrong secret gets an authentication error for every call.
    let intruder = node.client_with(b"not the cluster secret");
    let err = intruder.stat(id).await.unwrap_err();
    assert!(
        matches!(&err, StorageError::Unavailable(message) if message.contains("authentication")),
        "{err:?}"
    );
    assert!(intruder.ping().await.is_err());
    assert!(intruder.list(None, 10).await.is_err());
    let upload = async {
        let mut writer = intruder.create(id, sample_header(id, 10)).await?;
        writer.write_frame(frame_content(id, 10, 0)).await?;
        writer.commit().await
    };
    assert!(upload.await.is_err());
    assert!(intruder.delete(id).await.is_err());
    assert_eq!(node.tmp_files(), 0);
    assert_eq!(node.shard_files(), 0);

    // Raw requests: missing headers, stale or future dates, a bad signature.
    let target = format!("/v1/shards/{}", id.file_name());
    let body = shard_file(id, 10);
    let now = SystemTime::now();
    let hour = Duration::from_secs(3600);
    for (what, head) in [
        (
            "no auth",
            request_head("PUT", &target, None, now, Some(body.len())),
        ),
        (
            "stale",
            request_head("PUT", &target, Some(SECRET), now - hour, Some(body.len())),
        ),
        (
            "future",
            request_head("PUT", &target, Some(SECRET), now + hour, Some(body.len())),
        ),
        (
            "wrong secret",
            request_head("PUT", &target, Some(b"x"), now, Some(body.len())),
        ),
    ] {
        let (status, _) = raw_request(node.addr, &head, &body).await;
        assert_eq!(status, 401, "{what}");
    }
    // A request signed for one path cannot be replayed on another.
    let signed_for_health = request_head("GET", "/v1/health", Some(SECRET), now, None);
    let replayed = signed_for_health.replacen("/v1/health", "/v1/shards", 1);
    assert_eq!(raw_request(node.addr, &replayed, b"").await.0, 401);
    assert_eq!(node.tmp_files(), 0);
    assert_eq!(node.shard_files(), 0);

    // A version-1 request (old scheme, no nonce) is told which protocol the node speaks.
    let version_1 = request_head("GET", "/v1/health", Some(SECRET), now, None)
        .replace("STRATA2-HMAC-SHA256", "STRATA-HMAC-SHA256");
    let (status, message) = raw_request(node.addr, &version_1, b"").await;
    assert_eq!(status, 401);
    assert!(message.contains("wire protocol 1"), "{message}");

    // The right secret works on the same node; the answer is signed for this request only.
    let (signed_for_health, mac) = signed_head("GET", "/v1/health", Some(SECRET), now, None);
    let answer = raw_exchange(node.addr, &signed_for_health, b"").await;
    assert_eq!(answer.status, 200);
    assert!(answer.head.contains("x-strata-wire: 2"), "{}", answer.head);
    let text = String::from_utf8(answer.open(&mac).unwrap()).unwrap();
    assert!(text.starts_with("free_bytes="), "{text}");
    let (_, other_mac) = signed_head("GET", "/v1/health", Some(SECRET), now, None);
    assert!(answer.open(&other_mac).is_err(), "bound to its request");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrub_reports_travel_to_the_gateway_and_are_acknowledged() {
    let mut node = TestNode::start_with(ScrubConfig {
        enabled: true,
        bytes_per_sec: 0,
        file_pause: Duration::ZERO,
        pass_interval: Duration::from_millis(50),
    })
    .await;
    let store = node.client();
    let (good, bad) = (
        ShardId::new(ShardGroupId::new_v7(), 1),
        ShardId::new(ShardGroupId::new_v7(), 4),
    );
    write_shard(store.as_ref(), good, 3000).await;
    write_shard(store.as_ref(), bad, 3000).await;
    let path = storage::local::shard_path(&node.data, bad);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();

    let mut status = store.scrub_status().await.unwrap();
    for _ in 0..500 {
        if !status.reports.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        status = store.scrub_status().await.unwrap();
    }
    assert!(status.enabled);
    assert_eq!(status.reports.len(), 1, "{status:?}");
    let report = &status.reports[0];
    assert_eq!(report.shard_id().unwrap(), bad);
    assert!(report.quarantine.is_some());
    assert!(node.data.join("quarantine").is_dir());
    assert_eq!(store.stat(bad).await, Err(StorageError::NotFound));
    assert!(store.stat(good).await.is_ok());

    // Only the cluster secret may read or acknowledge reports; ids are parsed strictly.
    let intruder = node.client_with(b"not the cluster secret");
    assert!(intruder.scrub_status().await.is_err());
    assert!(intruder.ack_scrub_reports(u64::MAX).await.is_err());
    let now = SystemTime::now();
    let unsigned = request_head("GET", "/v1/scrub", None, now, None);
    assert_eq!(raw_request(node.addr, &unsigned, b"").await.0, 401);
    for target in [
        "/v1/scrub/reports?upto=-1",
        "/v1/scrub/reports?upto=01",
        "/v1/scrub/reports?upto=1&upto=2",
        "/v1/scrub/reports",
    ] {
        let head = request_head("DELETE", target, Some(SECRET), now, None);
        assert_eq!(raw_request(node.addr, &head, b"").await.0, 400, "{target}");
    }
    assert_eq!(store.scrub_status().await.unwrap().reports.len(), 1);

    store.ack_scrub_reports(report.id).await.unwrap();
    store.ack_scrub_reports(report.id).await.unwrap();
    let after = store.scrub_status().await.unwrap();
    assert!(after.reports.is_empty());
    assert!(after.total_corrupt_found >= 1);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_shard_ids_and_path_traversal_get_400() {
    let mut node = TestNode::start().await;
    // Something outside the data directory that a traversal would reach.
    std::fs::write(node.data.parent().unwrap().join("secret.txt"), b"x").unwrap();
    let group = ShardGroupId::new_v7().to_hex();
    for target in [
        "/v1/shards/..".to_string(),
        "/v1/shards/../secret.txt".to_string(),
        "/v1/shards/..%2fsecret.txt".to_string(),
        "/v1/shards/%2e%2e".to_string(),
        format!("/v1/shards/{}.1", group.to_uppercase()),
        format!("/v1/shards/{group}.01"),
        format!("/v1/shards/{group}.256"),
        format!("/v1/shards/{}.1", &group[..30]),
        format!("/v1/shards/{group}.1/../../x"),
        format!("/v1/shards/{group}.1/frames?first=0&count=x"),
        "/v1/shards?after=../x".to_string(),
    ] {
        for method in ["GET", "DELETE", "PUT"] {
            if target.contains('?') && method != "GET" {
                continue;
            }
            let head = request_head(method, &target, Some(SECRET), SystemTime::now(), Some(0));
            let (status, message) = raw_request(node.addr, &head, b"").await;
            assert_eq!(status, 400, "{method} {target}: {message}");
        }
    }
    assert!(node.data.parent().unwrap().join("secret.txt").exists());
    assert_eq!(node.tmp_files(), 0);
    assert_eq!(node.shard_files(), 0);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_node_fails_fast_and_ping_reports_latency() {
    let mut node = TestNode::start().await;
    let store = node.client_with(SECRET);
    let (health, latency) = store.ping().await.unwrap();
    assert!(health.total_bytes > 0 && health.free_bytes <= health.total_bytes);
    assert!(latency < Duration::from_secs(2));
    node.stop().await;

    let started = Instant::now();
    let err = store.stat(ShardId::new(ShardGroupId::new_v7(), 0)).await;
    assert!(err.is_err(), "{err:?}");
    assert!(
        started.elapsed() < client_config().connect_timeout + Duration::from_millis(500),
        "took {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    assert!(store.ping().await.is_err());
    let id = ShardId::new(ShardGroupId::new_v7(), 0);
    let upload = async {
        let mut writer = store.create(id, sample_header(id, 10)).await?;
        writer.write_frame(frame_content(id, 10, 0)).await?;
        writer.commit().await
    };
    assert!(upload.await.is_err());
    assert!(started.elapsed() < 2 * client_config().connect_timeout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_never_answers_times_out() {
    // Accepts connections (the kernel does) but never reads or answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let mut config = client_config();
    config.request_timeout = Duration::from_millis(500);
    config.idle_timeout = Duration::from_millis(500);
    let store = HttpShardStore::new(
        "silent".into(),
        format!("http://{addr}"),
        SECRET.to_vec(),
        config,
    )
    .unwrap();
    let id = ShardId::new(ShardGroupId::new_v7(), 0);

    let started = Instant::now();
    assert_eq!(store.stat(id).await, Err(StorageError::Timeout));
    assert_eq!(
        store.read_frames(id, 0, 1).await,
        Err(StorageError::Timeout)
    );
    assert_eq!(store.health().await, Err(StorageError::Timeout));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // An upload into a connection nobody reads fails once the socket buffers are full.
    let started = Instant::now();
    let part_len = 64 << 20;
    let header = storage::ShardHeader::new(
        &storage::Geometry::new(1, 0, 1 << 20).unwrap(),
        id,
        part_len,
        sample_header(id, 10).back_reference,
    )
    .unwrap();
    let upload = async {
        let mut writer = store.create(id, header).await?;
        let frame = Bytes::from(vec![7u8; 1 << 20]);
        for _ in 0..64 {
            writer.write_frame(frame.clone()).await?;
        }
        writer.commit().await
    };
    let outcome = upload.await;
    assert_eq!(outcome, Err(StorageError::Timeout));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    drop(silent);
}

#[tokio::test]
async fn bad_configs_are_refused() {
    let cfg = client_config();
    let new = |url: &str, secret: &[u8]| {
        HttpShardStore::new("n".into(), url.into(), secret.to_vec(), cfg)
    };
    assert!(new("http://127.0.0.1:1", SECRET).is_ok());
    assert!(new("http://127.0.0.1:1/", SECRET).is_ok());
    for url in [
        "https://127.0.0.1:1",
        "127.0.0.1:1",
        "http://127.0.0.1:1/x",
        "",
    ] {
        assert!(new(url, SECRET).is_err(), "{url}");
    }
    assert!(new("http://127.0.0.1:1", b"").is_err());

    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = NodeConfig::new(addr, dir.path().join("d"), Vec::new());
    assert!(matches!(
        serve_node(config, listener, async {}).await,
        Err(StorageError::InvalidArgument(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_concurrency_cap_holds_calls_until_a_slot_frees() {
    let mut node = TestNode::start().await;
    let mut config = client_config();
    config.max_concurrency = 1;
    config.request_timeout = Duration::from_millis(300);
    let store = HttpShardStore::new(
        "capped".into(),
        format!("http://{}", node.addr),
        SECRET.to_vec(),
        config,
    )
    .unwrap();
    let id = ShardId::new(ShardGroupId::new_v7(), 0);
    let writer = store.create(id, sample_header(id, 10)).await.unwrap();
    // The open writer holds the only slot: another call waits, then times out.
    let started = Instant::now();
    assert_eq!(store.stat(id).await, Err(StorageError::Timeout));
    assert!(started.elapsed() >= Duration::from_millis(250));
    let mut writer = writer;
    writer.write_frame(frame_content(id, 10, 0)).await.unwrap();
    writer.commit().await.unwrap();
    assert_eq!(store.stat(id).await.unwrap().header.part_length, 10);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_an_upload_in_flight_finish() {
    let mut node = TestNode::start().await;
    let store = node.client();
    let part_len = 8 * 1024;
    let id = ShardId::new(ShardGroupId::new_v7(), 2);
    let mut writer = store.create(id, sample_header(id, part_len)).await.unwrap();
    writer
        .write_frame(frame_content(id, part_len, 0))
        .await
        .unwrap();
    eventually("upload started on the node", || node.tmp_files() == 1).await;
    let _ = node.stop.take().unwrap().send(());
    let serving = node.task.take().unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!serving.is_finished(), "the node waits for the upload");
    for stripe in 1..8 {
        writer
            .write_frame(frame_content(id, part_len, stripe))
            .await
            .unwrap();
    }
    writer.commit().await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), serving)
        .await
        .expect("node stops once drained")
        .unwrap()
        .unwrap();
    assert_eq!(node.shard_files(), 1);
    // New connections are refused now.
    assert!(store.stat(id).await.is_err());
}
