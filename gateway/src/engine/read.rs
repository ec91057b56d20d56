//! The read path (DESIGN §6): a byte range of a version becomes a stream of verified bytes.
//!
//! The range is mapped to parts, then stripes. For each batch of stripes the k data shards are
//! read in parallel (spawned, each call bounded by the shard timeout); frames that are missing,
//! short or fail their checksum are erasures, and only then is parity read and the batch's
//! broken stripes rebuilt off the reactor, in one blocking call. A shard proven absent or
//! corrupt is not asked again for the later batches of the same read: they go to parity at
//! once. Healthy data frames are handed out without copying. The next batch is read while the
//! current one is sent, and the producer task stays at most that far ahead of the client
//! (bounded channel). If a stripe cannot be rebuilt, the stream's last item is an error, so the
//! HTTP layer aborts the connection instead of ending a 200 early. An object stored inline is
//! one chunk, with no producer task.

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use metadata::model::{DataLayout, ShardedLayout, VersionRecord};
use storage::codec::{ErasureCodec, Geometry};
use storage::id::{ShardGroupId, ShardId};
use storage::store::StorageError;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::{now_ms, BodyError, BodyStream, Engine, EngineError};
use crate::sse::keys::KeyBytes;

/// A half-open byte range `[start, end)` of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

/// How many bytes of stripes one batch of shard reads covers.
const BATCH_BYTES: usize = 4 * 1024 * 1024;

type FrameColumn = Vec<Option<Bytes>>;
/// A stripe short of a data frame: its position in the batch, its data length and the shards
/// read (`None`: erasure), to be rebuilt.
type BrokenStripe = (usize, usize, Vec<Option<Vec<u8>>>);
/// A finished shard read: its index, its frames (`None` when the read failed) and whether the
/// failure proves the shard bad (absent or corrupt, as opposed to slow or unreachable).
type ColumnRead = (usize, Option<FrameColumn>, bool);

impl Engine {
    /// Streams `range` of `version`. The first chunk is produced before this returns, so a
    /// version whose data cannot be read at all fails here (→ 503), not mid-body.
    pub(crate) async fn read_version(
        self: &Arc<Self>,
        version: &VersionRecord,
        range: ByteRange,
    ) -> Result<BodyStream, EngineError> {
        self.read_version_with(version, range, None).await
    }

    /// [`Engine::read_version`] of a version encrypted with `data_key` (plaintext range).
    pub(crate) async fn read_version_with(
        self: &Arc<Self>,
        version: &VersionRecord,
        range: ByteRange,
        data_key: Option<KeyBytes>,
    ) -> Result<BodyStream, EngineError> {
        if let [part] = version.parts.as_slice() {
            if let DataLayout::Inline(bytes) = &part.data {
                let chunk = match &data_key {
                    Some(key) => super::sse::open_inline(bytes, part.size, range, key)?,
                    None => inline_slice(bytes, range)?,
                };
                return Ok(Box::pin(futures::stream::once(async move { Ok(chunk) })));
            }
        }
        let (tx, mut rx) = mpsc::channel::<Result<Bytes, BodyError>>(8);
        let engine = self.clone();
        let parts = version.parts.clone();
        // GC leaves these groups alone while the producer still reads them (it waits on the
        // client through the bounded channel, and ends when the client goes away).
        let groups = parts
            .iter()
            .filter_map(|part| part.data.sharded().map(|layout| layout.group))
            .collect();
        let lease = self.leases.acquire(groups);
        tokio::spawn(async move {
            let _lease = lease;
            if let Err(e) = engine.produce_range(&parts, range, data_key, &tx).await {
                warn!(error = %e, "read failed");
                let _ = tx.send(Err(Box::new(e) as BodyError)).await;
            }
        });
        let first = rx.recv().await;
        let first = match first {
            Some(Ok(chunk)) => Some(chunk),
            Some(Err(e)) => {
                return Err(match e.downcast::<EngineError>() {
                    Ok(e) => *e,
                    Err(e) => EngineError::internal("read task", e),
                })
            }
            None => None,
        };
        let rest = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        let head = futures::stream::iter(first.map(Ok));
        Ok(Box::pin(futures::StreamExt::chain(head, rest)))
    }

    async fn produce_range(
        &self,
        parts: &[metadata::model::PartLayout],
        range: ByteRange,
        data_key: Option<KeyBytes>,
        tx: &mpsc::Sender<Result<Bytes, BodyError>>,
    ) -> Result<(), EngineError> {
        let mut part_start = 0u64;
        for part in parts {
            let part_end = part_start + part.size;
            let lo = range.start.max(part_start);
            let hi = range.end.min(part_end);
            if lo < hi {
                let local = ByteRange {
                    start: lo - part_start,
                    end: hi - part_start,
                };
                let sent = match (&data_key, &part.data) {
                    (Some(key), _) => self.produce_encrypted(part, local, key, tx).await?,
                    (None, DataLayout::Inline(bytes)) => {
                        tx.send(Ok(inline_slice(bytes, local)?)).await.is_ok()
                    }
                    (None, DataLayout::Sharded(layout)) => {
                        self.produce_sharded(layout, local, tx).await?
                    }
                };
                if !sent {
                    return Ok(());
                }
            }
            part_start = part_end;
            if part_start >= range.end {
                break;
            }
        }
        Ok(())
    }

    /// Streams `range` (part-relative) of one shard group. Returns false when the client left.
    pub(super) async fn produce_sharded(
        &self,
        layout: &ShardedLayout,
        range: ByteRange,
        tx: &mpsc::Sender<Result<Bytes, BodyError>>,
    ) -> Result<bool, EngineError> {
        let geometry = Geometry::new(
            layout.data_shards as usize,
            layout.parity_shards as usize,
            layout.block_size as usize,
        )
        .map_err(|e| EngineError::internal("layout geometry", e))?;
        let codec = if geometry == self.config.geometry {
            self.codec.clone()
        } else {
            ErasureCodec::new(geometry).map_err(|e| EngineError::internal("codec", e))?
        };
        let block = geometry.block_size as u64;
        let first_stripe = range.start / block;
        let last_stripe = (range.end - 1) / block;
        let batch = (BATCH_BYTES / geometry.block_size).max(1) as u64;
        let known_bad = std::sync::Mutex::new(Vec::<usize>::new());
        let read_batch = |stripe: u64| {
            let count = batch.min(last_stripe - stripe + 1);
            let known_bad = &known_bad;
            let (geometry, codec) = (&geometry, &codec);
            async move {
                self.read_stripes(layout, geometry, codec, stripe, count, known_bad)
                    .await
            }
        };
        let send = |stripe: u64, stripes: Vec<Vec<Bytes>>| async move {
            for (offset, pieces) in stripes.into_iter().enumerate() {
                let stripe_start = (stripe + offset as u64) * block;
                for piece in clip_pieces(pieces, stripe_start, range) {
                    if tx.send(Ok(piece)).await.is_err() {
                        return false;
                    }
                }
            }
            true
        };
        let mut stripe = first_stripe;
        let mut current = read_batch(stripe).await?;
        loop {
            let next = stripe + current.len() as u64;
            if next > last_stripe {
                return Ok(send(stripe, current).await);
            }
            // The next batch's shard reads overlap sending this one.
            let (sent, upcoming) = tokio::join!(send(stripe, current), read_batch(next));
            if !sent {
                return Ok(false);
            }
            current = upcoming?;
            stripe = next;
        }
    }

    /// Reads `count` stripes from `first`, returning each stripe's data as pieces in order.
    async fn read_stripes(
        &self,
        layout: &ShardedLayout,
        geometry: &Geometry,
        codec: &ErasureCodec,
        first: u64,
        count: u64,
        known_bad: &std::sync::Mutex<Vec<usize>>,
    ) -> Result<Vec<Vec<Bytes>>, EngineError> {
        let k = geometry.data_shards;
        let total = geometry.total_shards();
        let skip = known_bad
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let (columns, bad) = self
            .read_hedged(layout, geometry, first, count, &skip)
            .await;
        if !bad.is_empty() {
            let mut known = known_bad
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for &index in &bad {
                if !known.contains(&usize::from(index)) {
                    known.push(usize::from(index));
                }
            }
            drop(known);
            self.report_read_failure(layout.group, bad);
        }
        let complete = |columns: &[Option<FrameColumn>], s: usize| {
            (0..k).all(
                |i| matches!(columns.get(i), Some(Some(c)) if matches!(c.get(s), Some(Some(_)))),
            )
        };
        let mut stripes: Vec<Option<Vec<Bytes>>> = Vec::with_capacity(count as usize);
        let mut broken: Vec<BrokenStripe> = Vec::new();
        for s in 0..count as usize {
            let stripe_index = first + s as u64;
            let data_len = geometry.stripe_data_len(layout.length, stripe_index);
            let frame = |i: usize| -> Option<Bytes> { columns.get(i)?.as_ref()?.get(s)?.clone() };
            if complete(&columns, s) {
                let pieces = (0..k).filter_map(frame).collect();
                stripes.push(Some(truncate_pieces(pieces, data_len)));
                continue;
            }
            let shards: Vec<Option<Vec<u8>>> =
                (0..total).map(|i| frame(i).map(|b| b.to_vec())).collect();
            let available = shards.iter().filter(|s| s.is_some()).count();
            if available < k {
                return Err(EngineError::unavailable(
                    format!(
                        "readable shards of stripe {stripe_index} of group {}",
                        hex::encode(layout.group)
                    ),
                    k,
                    available,
                ));
            }
            stripes.push(None);
            broken.push((s, data_len, shards));
        }
        if !broken.is_empty() {
            let codec = codec.clone();
            let rebuilt = tokio::task::spawn_blocking(move || {
                broken
                    .into_iter()
                    .map(|(s, data_len, mut shards)| {
                        codec.reconstruct_data(&mut shards)?;
                        Ok((s, codec.join_data(&shards, data_len)?))
                    })
                    .collect::<Result<Vec<_>, StorageError>>()
            })
            .await
            .map_err(|e| EngineError::internal("reconstruct task", e))?
            .map_err(|e| EngineError::internal("reconstruct", e))?;
            for (s, joined) in rebuilt {
                if let Some(slot) = stripes.get_mut(s) {
                    *slot = Some(vec![Bytes::from(joined)]);
                }
            }
        }
        // Every broken stripe was rebuilt above; a gap would be a short body, so never skip one.
        stripes
            .into_iter()
            .map(|stripe| stripe.ok_or_else(|| EngineError::invariant("a stripe was not rebuilt")))
            .collect()
    }

    /// Reads frame columns: the k data shards first, in parallel. Parity is requested as soon
    /// as a data read fails or comes back with erasures, or when the data reads have not all
    /// answered within the hedge delay (a slow node). Returns once every stripe has k usable
    /// frames, or every read has answered; reads still running then are aborted. Also returns
    /// the shard indexes found bad (absent, corrupt header, failed or short frames): repair work.
    async fn read_hedged(
        &self,
        layout: &ShardedLayout,
        geometry: &Geometry,
        first: u64,
        count: u64,
        skip: &[usize],
    ) -> (Vec<Option<FrameColumn>>, Vec<u8>) {
        let mut bad: Vec<u8> = Vec::new();
        let k = geometry.data_shards;
        let total = geometry.total_shards();
        let mut columns: Vec<Option<FrameColumn>> = vec![None; total];
        let mut pending = FuturesUnordered::new();
        let mut handles = Vec::new();
        // Shards on nodes known to be down are asked last, only if nothing else suffices.
        let node_up = |index: usize| {
            layout
                .nodes
                .get(index)
                .is_some_and(|&node| self.cluster.is_up(node))
        };
        // So are shards this read already found absent or corrupt.
        let mut deferred: Vec<usize> = (0..total)
            .filter(|&i| !node_up(i) || skip.contains(&i))
            .collect();
        for index in (0..k).filter(|i| !deferred.contains(i)) {
            if let Some(handle) = self.spawn_column_read(layout, index, first, count) {
                handles.push(handle.abort_handle());
                pending.push(handle);
            }
        }
        let mut parity_started = false;
        let hedge = tokio::time::sleep(self.config.hedge_after);
        tokio::pin!(hedge);
        let mut need_parity = pending.len() < k;
        loop {
            if need_parity && !parity_started {
                parity_started = true;
                for index in (k..total).filter(|i| !deferred.contains(i)) {
                    if let Some(handle) = self.spawn_column_read(layout, index, first, count) {
                        handles.push(handle.abort_handle());
                        pending.push(handle);
                    }
                }
            }
            if enough_frames(&columns, k, count) {
                break;
            }
            tokio::select! {
                next = pending.next() => {
                    let Some(joined) = next else {
                        if !parity_started {
                            need_parity = true;
                            continue;
                        }
                        if deferred.is_empty() {
                            break;
                        }
                        // Last resort: the nodes marked down may answer after all.
                        for index in std::mem::take(&mut deferred) {
                            if let Some(handle) = self.spawn_column_read(layout, index, first, count) {
                                handles.push(handle.abort_handle());
                                pending.push(handle);
                            }
                        }
                        continue;
                    };
                    let Ok((index, column, proven_bad)) = joined else { continue };
                    let column = column.map(|frames| {
                        frames
                            .into_iter()
                            .enumerate()
                            .map(|(s, frame)| {
                                let want = geometry.shard_len(layout.length, first + s as u64);
                                frame.filter(|f| f.len() == want)
                            })
                            .collect::<FrameColumn>()
                    });
                    let erasures = column.as_ref().is_none_or(|c| c.iter().any(Option::is_none));
                    if erasures && index < k {
                        need_parity = true;
                    }
                    let bad_frames = column.as_ref().is_some_and(|c| c.iter().any(Option::is_none));
                    if proven_bad || bad_frames {
                        if let Ok(index) = u8::try_from(index) {
                            bad.push(index);
                        }
                    }
                    if let Some(slot) = columns.get_mut(index) {
                        *slot = column;
                    }
                }
                () = &mut hedge, if !parity_started => {
                    debug!(group = %hex::encode(layout.group), "hedging a slow read with parity");
                    need_parity = true;
                }
            }
        }
        for handle in handles {
            handle.abort();
        }
        (columns, bad)
    }

    /// Starts reading one shard's frames; `None` when the layout has no usable node for it.
    fn spawn_column_read(
        &self,
        layout: &ShardedLayout,
        index: usize,
        first: u64,
        count: u64,
    ) -> Option<tokio::task::JoinHandle<ColumnRead>> {
        if layout.missing.contains(&(index as u8)) {
            return None;
        }
        let store = layout
            .nodes
            .get(index)
            .and_then(|&node| self.cluster.store(node))?;
        let group = ShardGroupId(layout.group);
        let id = ShardId {
            group,
            index: index as u8,
        };
        let timeout = self.config.shard_timeout;
        Some(tokio::spawn(async move {
            let result = tokio::time::timeout(timeout, store.read_frames(id, first, count)).await;
            let (column, proven_bad) = match result {
                Ok(Ok(frames)) => (Some(frames), false),
                Ok(Err(e)) => {
                    warn!(group = %group.to_hex(), index, store = store.name(), error = %e, "shard read failed");
                    let proven = matches!(e, StorageError::NotFound | StorageError::Corrupt(_));
                    (None, proven)
                }
                Err(_) => {
                    warn!(group = %group.to_hex(), index, store = store.name(), "shard read timed out");
                    (None, false)
                }
            };
            (index, column, proven_bad)
        }))
    }
}

/// `range` of an object or part stored inline in its metadata record.
fn inline_slice(bytes: &[u8], range: ByteRange) -> Result<Bytes, EngineError> {
    bytes
        .get(range.start as usize..range.end as usize)
        .map(Bytes::copy_from_slice)
        .ok_or_else(|| EngineError::invariant("inline data too short"))
}

/// True when every stripe of the batch has at least k usable frames.
fn enough_frames(columns: &[Option<FrameColumn>], k: usize, count: u64) -> bool {
    (0..count as usize).all(|s| {
        columns
            .iter()
            .filter(|c| matches!(c, Some(c) if matches!(c.get(s), Some(Some(_)))))
            .count()
            >= k
    })
}

/// Drops the zero padding after `len` bytes from a stripe's data pieces.
fn truncate_pieces(pieces: Vec<Bytes>, len: usize) -> Vec<Bytes> {
    let mut left = len;
    let mut out = Vec::with_capacity(pieces.len());
    for piece in pieces {
        if left == 0 {
            break;
        }
        let take = piece.len().min(left);
        out.push(piece.slice(..take));
        left -= take;
    }
    out
}

/// Keeps the part of a stripe's pieces (starting at `stripe_start`) that lies inside `range`.
fn clip_pieces(pieces: Vec<Bytes>, stripe_start: u64, range: ByteRange) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut offset = stripe_start;
    for piece in pieces {
        let piece_end = offset + piece.len() as u64;
        let lo = range.start.max(offset);
        let hi = range.end.min(piece_end);
        if lo < hi {
            out.push(piece.slice((lo - offset) as usize..(hi - offset) as usize));
        }
        offset = piece_end;
    }
    out
}

impl Engine {
    /// A read found shards of `group` bad (error while the node was up, checksum failure,
    /// short frame): queue them for the healer without holding up the read. Deduplicated in
    /// memory (`signals`).
    pub(crate) fn report_read_failure(&self, group: [u8; 16], indexes: Vec<u8>) {
        let fresh = self.signals.fresh_reports(group, indexes);
        if fresh.is_empty() {
            return;
        }
        let catalog = self.catalog.clone();
        let now = now_ms();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = catalog.queue_repair(group, "read failure", &fresh, now) {
                warn!(group = %hex::encode(group), error = %e, "could not queue a repair");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_and_truncation_keep_exact_bytes() {
        let pieces = vec![Bytes::from_static(b"abcd"), Bytes::from_static(b"ef\0\0")];
        let data = truncate_pieces(pieces, 6);
        assert_eq!(data.concat(), b"abcdef");
        let clipped = clip_pieces(data, 10, ByteRange { start: 13, end: 15 });
        assert_eq!(clipped.concat(), b"de");
    }
}
