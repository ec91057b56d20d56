//! The write path (DESIGN §5): a body stream becomes either inline bytes or one erasure-coded
//! shard group written in parallel to k+m shard stores.
//!
//! Per stripe: the bytes go to the MD5 thread (the ETag), are encoded off the reactor, and shard
//! `i` is sent to writer task `i` through a bounded channel (backpressure). A writer that fails is
//! dropped; when fewer than `write_quorum` writers remain the write is cancelled. Writers only
//! commit (fsync + rename) after the whole body was read and verified, so a bad body leaves no
//! visible shard. The caller publishes the layout in one metadata batch and removes the intent.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::stream::{FuturesUnordered, StreamExt};
use md5::{Digest, Md5};
use metadata::model::{DataLayout, IntentRecord, ShardedLayout};
use storage::format::{BackReference, CodecId, FrameChecksum, ShardHeader};
use storage::id::{ShardGroupId, ShardId};
use storage::store::{ShardStore, StorageError};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::placement::place_group;
use super::{now_ms, BodyStream, Engine, EngineError};

/// What a finished data write produced; not yet visible to anyone.
pub(crate) struct WrittenData {
    pub layout: DataLayout,
    pub size: u64,
    pub md5: [u8; 16],
    /// The shard group whose intent row the publishing batch must remove.
    pub intent: Option<[u8; 16]>,
}

/// Where the data belongs, recorded in each shard's back-reference.
pub(crate) struct DataOwner {
    pub bucket: String,
    pub key: String,
    pub version: String,
    pub part_number: u32,
}

pub(super) enum WriterMessage {
    Frame(Bytes),
    Commit,
}

impl Engine {
    /// Reads exactly `length` bytes from `body` and stores them durably but invisibly.
    /// `expected_md5` (Content-MD5) is checked before anything is committed.
    pub(crate) async fn write_data(
        &self,
        mut body: BodyStream,
        length: u64,
        owner: DataOwner,
        expected_md5: Option<[u8; 16]>,
    ) -> Result<WrittenData, EngineError> {
        if length > super::MAX_PART_SIZE {
            return Err(EngineError::EntityTooLarge);
        }
        if length <= self.config.inline_threshold as u64 {
            // Inline data is durable in metadata alone, but a store that cannot reach its write
            // quorum refuses every write alike (clients see one consistent rule).
            if !self.ready() {
                return Err(EngineError::unavailable(
                    "nodes up for the write quorum",
                    self.config.write_quorum,
                    self.cluster.up_count(),
                ));
            }
            let mut data = Vec::with_capacity(length as usize);
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(EngineError::Body)?;
                if data.len() + chunk.len() > length as usize {
                    return Err(EngineError::IncompleteBody(
                        "body longer than declared".into(),
                    ));
                }
                data.extend_from_slice(&chunk);
            }
            if data.len() as u64 != length {
                return Err(EngineError::IncompleteBody(format!(
                    "got {} of {length} bytes",
                    data.len()
                )));
            }
            let md5: [u8; 16] = Md5::digest(&data).into();
            check_md5(expected_md5, &md5)?;
            return Ok(WrittenData {
                layout: DataLayout::Inline(data),
                size: length,
                md5,
                intent: None,
            });
        }
        self.write_sharded(body, length, owner, expected_md5).await
    }

    async fn write_sharded(
        &self,
        body: BodyStream,
        length: u64,
        owner: DataOwner,
        expected_md5: Option<[u8; 16]>,
    ) -> Result<WrittenData, EngineError> {
        let geometry = &self.config.geometry;
        let total = geometry.total_shards();
        let group = ShardGroupId::new_v7();
        let (nodes, down) = self.choose_nodes(&group.0, total)?;
        let layout = ShardedLayout {
            group: group.0,
            data_shards: geometry.data_shards as u8,
            parity_shards: geometry.parity_shards as u8,
            block_size: geometry.block_size as u32,
            length,
            nodes: nodes.clone(),
            missing: Vec::new(),
        };
        let intent = IntentRecord {
            created_ms: now_ms(),
            layout: layout.clone(),
            owner: self.members.id().to_string(),
        };
        self.meta(move |c| c.put_intent(group.0, &intent)).await?;

        let back_reference = BackReference {
            bucket: owner.bucket,
            key: owner.key,
            version: owner.version,
            part_number: owner.part_number,
        };
        let mut senders = Vec::with_capacity(total);
        let mut tasks = Vec::with_capacity(total);
        for (index, &node) in nodes.iter().enumerate() {
            let header = ShardHeader {
                codec: CodecId::ReedSolomonGf8,
                data_shards: geometry.data_shards as u8,
                parity_shards: geometry.parity_shards as u8,
                index: index as u8,
                block_size: geometry.block_size as u32,
                part_length: length,
                group,
                checksum: FrameChecksum::Xxh3_64,
                back_reference: back_reference.clone(),
            };
            let id = ShardId {
                group,
                index: index as u8,
            };
            if down.contains(&index) {
                // A node known to be down gets no writer: its shard is missing from the start.
                senders.push(None);
                tasks.push(None);
                continue;
            }
            let (tx, rx) = mpsc::channel(4);
            senders.push(Some(tx));
            let store = self.cluster.store(node).ok_or_else(|| {
                EngineError::invariant(format!("placement chose unknown node {node}"))
            })?;
            tasks.push(Some(tokio::spawn(run_shard_writer(
                store,
                id,
                header,
                rx,
                self.config.shard_timeout,
            ))));
        }

        let streamed = self.stream_stripes(body, length, &mut senders).await;
        let outcome = streamed.and_then(|md5| check_md5(expected_md5, &md5).map(|()| md5));
        let md5 = match outcome {
            Ok(md5) => md5,
            Err(e) => {
                // Dropping the senders without a Commit makes every writer abort by itself.
                drop(senders);
                self.abandon_intent(group.0).await;
                return Err(e);
            }
        };
        for slot in &mut senders {
            if let Some(tx) = slot.take() {
                // A writer stuck on a full channel must not hold up the others' commits.
                tokio::spawn(async move {
                    let _ = tx.send(WriterMessage::Commit).await;
                });
            }
        }
        let missing = self.await_commits(group, tasks).await;
        let committed = total - missing.len();
        if committed < self.config.write_quorum {
            self.abandon_intent(group.0).await;
            return Err(EngineError::unavailable(
                format!("shards written of {total}"),
                self.config.write_quorum,
                committed,
            ));
        }
        if !missing.is_empty() {
            debug!(group = %group.to_hex(), ?missing, "written below full redundancy");
        }
        let mut layout = layout;
        layout.missing = missing;
        Ok(WrittenData {
            layout: DataLayout::Sharded(layout),
            size: length,
            md5,
            intent: Some(group.0),
        })
    }

    /// Waits for the writers' commits. Once the write quorum has committed, stragglers get
    /// `hedge_after` more; a writer still busy then (a hung node) is counted missing and left to
    /// finish or time out on its own, so a slow node does not slow every write. Returns the
    /// indexes of the shards that are not durably written.
    async fn await_commits(
        &self,
        group: ShardGroupId,
        tasks: Vec<Option<tokio::task::JoinHandle<Result<(), EngineError>>>>,
    ) -> Vec<u8> {
        let mut done = vec![false; tasks.len()];
        let mut missing: Vec<u8> = Vec::new();
        let mut pending = FuturesUnordered::new();
        for (index, task) in tasks.into_iter().enumerate() {
            match task {
                Some(task) => pending.push(async move { (index, task.await) }),
                None => {
                    done[index] = true;
                    missing.push(index as u8);
                }
            }
        }
        let mut committed = 0usize;
        let grace = tokio::time::sleep(self.config.shard_timeout);
        tokio::pin!(grace);
        let mut grace_armed = false;
        loop {
            tokio::select! {
                next = pending.next() => {
                    let Some((index, joined)) = next else { break };
                    done[index] = true;
                    let result = joined
                        .map_err(|e| EngineError::internal("shard writer task", e))
                        .and_then(|r| r);
                    match result {
                        Ok(()) => committed += 1,
                        Err(e) => {
                            warn!(group = %group.to_hex(), index, error = %e, "shard write failed");
                            missing.push(index as u8);
                        }
                    }
                    if committed >= self.config.write_quorum && !grace_armed && !pending.is_empty() {
                        grace.as_mut().reset(tokio::time::Instant::now() + self.config.hedge_after);
                        grace_armed = true;
                    }
                }
                () = &mut grace, if grace_armed => break,
            }
        }
        for (index, finished) in done.iter().enumerate() {
            if !finished {
                warn!(group = %group.to_hex(), index, "shard write still pending after quorum: counted missing");
                missing.push(index as u8);
            }
        }
        missing.sort_unstable();
        missing
    }

    /// Places a group: nodes that are up first (rendezvous order); when fewer than k+m are up
    /// but at least the write quorum, the remaining shards go to down nodes and will simply be
    /// recorded missing (repair rebuilds them). Below the write quorum: Unavailable, nothing written.
    fn choose_nodes(
        &self,
        group: &[u8; 16],
        total: usize,
    ) -> Result<(Vec<u32>, Vec<usize>), EngineError> {
        let up = self.cluster.up_candidates();
        if up.len() < self.config.write_quorum {
            return Err(EngineError::unavailable(
                "nodes up for the write quorum",
                self.config.write_quorum,
                up.len(),
            ));
        }
        let from_up = up.len().min(total);
        let mut nodes = place_group(group, &up, from_up)
            .ok_or_else(|| EngineError::unavailable("nodes to place a group on", from_up, 0))?;
        if nodes.len() < total {
            let down: Vec<_> = self
                .cluster
                .all_candidates()
                .into_iter()
                .filter(|c| !nodes.contains(&c.id))
                .collect();
            let rest = place_group(group, &down, total - nodes.len()).ok_or_else(|| {
                EngineError::unavailable("nodes configured", total, nodes.len() + down.len())
            })?;
            nodes.extend(rest);
        }
        let down = (from_up..nodes.len()).collect();
        Ok((nodes, down))
    }

    /// Cuts the body into stripes, encodes them and feeds the writers. Returns the MD5 of the
    /// body once exactly `length` bytes have been read.
    async fn stream_stripes(
        &self,
        mut body: BodyStream,
        length: u64,
        senders: &mut [Option<mpsc::Sender<WriterMessage>>],
    ) -> Result<[u8; 16], EngineError> {
        let block_size = self.config.geometry.block_size;
        let (md5_tx, md5_rx) = std::sync::mpsc::sync_channel::<Bytes>(8);
        let md5_task = tokio::task::spawn_blocking(move || {
            let mut hasher = Md5::new();
            while let Ok(chunk) = md5_rx.recv() {
                hasher.update(&chunk);
            }
            <[u8; 16]>::from(hasher.finalize())
        });

        let mut buffer = BytesMut::with_capacity(block_size);
        let mut received: u64 = 0;
        let mut body_done = false;
        while !body_done || !buffer.is_empty() {
            while !body_done && buffer.len() < block_size {
                match body.next().await {
                    Some(Ok(chunk)) => {
                        received += chunk.len() as u64;
                        if received > length {
                            return Err(EngineError::IncompleteBody(
                                "body longer than declared".into(),
                            ));
                        }
                        buffer.extend_from_slice(&chunk);
                    }
                    Some(Err(e)) => return Err(EngineError::Body(e)),
                    None => body_done = true,
                }
            }
            if body_done && received != length {
                return Err(EngineError::IncompleteBody(format!(
                    "got {received} of {length} bytes"
                )));
            }
            let take = buffer.len().min(block_size);
            if take == 0 {
                break;
            }
            let stripe = buffer.split_to(take).freeze();
            let md5_feed = md5_tx.clone();
            let codec = self.codec.clone();
            let (fed, shards) = tokio::task::spawn_blocking(move || {
                // Feeding the MD5 thread may block briefly when it lags: fine off the reactor.
                let fed = md5_feed.send(stripe.clone()).is_ok();
                (fed, codec.encode_stripe(&stripe))
            })
            .await
            .map_err(|e| EngineError::internal("encode task", e))?;
            if !fed {
                return Err(EngineError::invariant("md5 thread stopped"));
            }
            let shards = shards.map_err(|e| EngineError::internal("encode", e))?;
            self.send_shards(shards, senders).await?;
        }
        drop(md5_tx);
        md5_task
            .await
            .map_err(|e| EngineError::internal("md5 task", e))
    }

    /// Sends shard `i` of one stripe to writer `i`. A writer whose channel stays full for longer
    /// than the straggler budget (a hung or very slow node) is dropped while enough others remain,
    /// so one bad node does not stall the stream; below the write quorum the write fails.
    async fn send_shards(
        &self,
        shards: Vec<Vec<u8>>,
        senders: &mut [Option<mpsc::Sender<WriterMessage>>],
    ) -> Result<(), EngineError> {
        let budget = (self.config.hedge_after * 4).max(std::time::Duration::from_secs(1));
        for (index, shard) in shards.into_iter().enumerate() {
            let alive = senders.iter().filter(|s| s.is_some()).count();
            let Some(slot) = senders.get_mut(index) else {
                break;
            };
            let Some(tx) = slot else { continue };
            let message = WriterMessage::Frame(Bytes::from(shard));
            let sent = if alive > self.config.write_quorum {
                match tx.send_timeout(message, budget).await {
                    Ok(()) => true,
                    Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                        warn!(index, "shard writer is not keeping up: dropped");
                        false
                    }
                    Err(mpsc::error::SendTimeoutError::Closed(_)) => false,
                }
            } else {
                tx.send(message).await.is_ok()
            };
            if !sent {
                *slot = None;
            }
        }
        let alive = senders.iter().filter(|s| s.is_some()).count();
        if alive < self.config.write_quorum {
            return Err(EngineError::unavailable(
                "shard writers left",
                self.config.write_quorum,
                alive,
            ));
        }
        Ok(())
    }

    /// A write that will never be published: its intent becomes garbage collection.
    pub(crate) async fn abandon_intent(&self, group: [u8; 16]) {
        let now = now_ms();
        if let Err(e) = self.meta(move |c| c.remove_intent_to_gc(group, now)).await {
            warn!(group = %hex::encode(group), error = %e, "could not queue abandoned write for GC");
        }
    }
}

fn check_md5(expected: Option<[u8; 16]>, actual: &[u8; 16]) -> Result<(), EngineError> {
    match expected {
        Some(expected) if &expected != actual => Err(EngineError::BadDigest),
        _ => Ok(()),
    }
}

/// One spawned task per shard: create, append frames, commit on `Commit`, abort if the channel
/// closes first. Every store call is bounded by `timeout`.
pub(super) async fn run_shard_writer(
    store: Arc<dyn ShardStore>,
    id: ShardId,
    header: ShardHeader,
    mut rx: mpsc::Receiver<WriterMessage>,
    timeout: std::time::Duration,
) -> Result<(), EngineError> {
    let failed =
        |what: &str, e: StorageError| EngineError::store(format!("{} {what}", store.name()), e);
    let mut writer = match tokio::time::timeout(timeout, store.create(id, header)).await {
        Ok(Ok(w)) => w,
        Ok(Err(e)) => return Err(failed("create", e)),
        Err(_) => return Err(failed("create", StorageError::Timeout)),
    };
    while let Some(message) = rx.recv().await {
        match message {
            WriterMessage::Frame(frame) => {
                let result = tokio::time::timeout(timeout, writer.write_frame(frame)).await;
                let error = match result {
                    Ok(Ok(())) => continue,
                    Ok(Err(e)) => e,
                    Err(_) => StorageError::Timeout,
                };
                writer.abort().await;
                return Err(failed("write", error));
            }
            WriterMessage::Commit => {
                return match tokio::time::timeout(timeout, writer.commit()).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(failed("commit", e)),
                    Err(_) => Err(failed("commit", StorageError::Timeout)),
                };
            }
        }
    }
    writer.abort().await;
    Err(EngineError::invariant("write cancelled"))
}
