//! Group commit: many callers' [`WriteBatch`]es merged into one durable write by a single
//! committer thread, so that one fsync acknowledges a whole group instead of one request.
//!
//! How it works: a caller hands its batch to the committer's queue and blocks on its own reply
//! slot. The committer takes the first queued batch, then every batch that queued up behind it
//! (while the previous group was being synced), up to [`MAX_GROUP_BATCHES`] batches or
//! [`MAX_GROUP_OPS`] operations, and applies them in queue order with one write function call.
//!
//! Invariants:
//! - a caller returns `Ok` only after the write that contains its batch returned `Ok` (with a
//!   syncing store: after the fsync), and gets that write's error otherwise;
//! - a group is applied by one write call, which the store makes atomic, so each batch in it is
//!   atomic too; a batch's operations stay contiguous and in order, and batches are applied in
//!   the order they were queued (later operations on a key win);
//! - nothing about locking changes: callers keep holding their per-key locks while they wait,
//!   so a read-modify-write sees the durable result of the previous one on that key;
//! - dropping the committer stops the thread after it has answered every queued batch.

use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::kv::WriteBatch;
use crate::MetaError;

/// Most batches merged into one write.
pub const MAX_GROUP_BATCHES: usize = 1024;
/// Most operations merged into one write (a group is closed once it reaches this).
pub const MAX_GROUP_OPS: usize = 64 * 1024;

struct Request {
    batch: WriteBatch,
    reply: mpsc::SyncSender<Result<(), MetaError>>,
}

/// The committer thread and its queue.
pub struct GroupCommitter {
    queue: Option<mpsc::Sender<Request>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for GroupCommitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommitter").finish_non_exhaustive()
    }
}

impl GroupCommitter {
    /// Starts a committer thread named `name` that applies each group with `write` (which must
    /// apply all the batches it is given atomically, in order, and durably).
    pub fn start<F>(name: &str, mut write: F) -> Result<GroupCommitter, MetaError>
    where
        F: FnMut(&[WriteBatch]) -> Result<(), MetaError> + Send + 'static,
    {
        let (queue, requests) = mpsc::channel::<Request>();
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                while let Ok(first) = requests.recv() {
                    let mut operations = first.batch.ops.len();
                    let mut batches = vec![first.batch];
                    let mut replies = vec![first.reply];
                    while batches.len() < MAX_GROUP_BATCHES && operations < MAX_GROUP_OPS {
                        let Ok(next) = requests.try_recv() else { break };
                        operations += next.batch.ops.len();
                        batches.push(next.batch);
                        replies.push(next.reply);
                    }
                    let result = write(&batches);
                    for reply in replies {
                        // A caller that gave up waiting is not an error of the others.
                        let _ = reply.send(result.clone());
                    }
                }
            })
            .map_err(|e| MetaError::Db(format!("cannot start the group committer: {e}")))?;
        Ok(GroupCommitter {
            queue: Some(queue),
            thread: Some(thread),
        })
    }

    /// Queues `batch` and waits until the group holding it is written.
    pub fn commit(&self, batch: WriteBatch) -> Result<(), MetaError> {
        let stopped = || MetaError::Db("the metadata group committer has stopped".to_string());
        let (reply, answer) = mpsc::sync_channel(1);
        self.queue
            .as_ref()
            .ok_or_else(stopped)?
            .send(Request { batch, reply })
            .map_err(|_| stopped())?;
        answer.recv().map_err(|_| stopped())?
    }
}

impl Drop for GroupCommitter {
    fn drop(&mut self) {
        // Closing the queue ends the thread's loop once every queued batch is answered.
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::kv::{KvStore, MemKvStore, Table};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Concurrent callers are merged into fewer writes, every batch lands, and a failing
    /// write fails exactly the callers of its group.
    #[test]
    fn concurrent_batches_are_grouped_and_all_applied() {
        let store = Arc::new(MemKvStore::new());
        let writes = Arc::new(AtomicUsize::new(0));
        let (store_in, writes_in) = (Arc::clone(&store), Arc::clone(&writes));
        let committer = Arc::new(
            GroupCommitter::start("test-committer", move |batches: &[WriteBatch]| {
                writes_in.fetch_add(1, Ordering::SeqCst);
                // Slow "fsync", so that callers pile up behind it.
                std::thread::sleep(std::time::Duration::from_millis(2));
                if batches
                    .iter()
                    .flat_map(|b| &b.ops)
                    .any(|op| matches!(op, crate::kv::Op::Put { key, .. } if key == b"poison"))
                {
                    return Err(MetaError::Db("injected".to_string()));
                }
                let mut merged = WriteBatch::new();
                for batch in batches {
                    merged.ops.extend(batch.ops.iter().cloned());
                }
                store_in.write(merged)
            })
            .unwrap(),
        );
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let committer = Arc::clone(&committer);
                std::thread::spawn(move || {
                    for i in 0..50 {
                        let mut batch = WriteBatch::new();
                        batch.put(Table::Objects, format!("{t}-{i}"), vec![1]);
                        batch.put(Table::Versions, format!("{t}-{i}"), vec![2]);
                        committer.commit(batch).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(
            store.scan(Table::Objects, b"", b"", 1000).unwrap().len(),
            400
        );
        assert_eq!(
            store.scan(Table::Versions, b"", b"", 1000).unwrap().len(),
            400
        );
        let groups = writes.load(Ordering::SeqCst);
        assert!(
            groups < 400,
            "400 batches took {groups} writes: nothing was grouped"
        );

        let mut poison = WriteBatch::new();
        poison.put(Table::Gc, b"poison".to_vec(), vec![0]);
        assert!(committer.commit(poison).is_err());
        assert!(store.get(Table::Gc, b"poison").unwrap().is_none());
        // The committer keeps serving after a failed group.
        let mut after = WriteBatch::new();
        after.put(Table::Gc, b"after".to_vec(), vec![0]);
        committer.commit(after).unwrap();
        assert!(store.get(Table::Gc, b"after").unwrap().is_some());
    }
}
