//! Group commit: many callers' commits merged into one durable write by a single committer
//! thread, so that one fsync acknowledges a whole group instead of one request.
//!
//! How it works: a caller hands its [`Commit`] (checks and batch) to the committer's queue and
//! blocks on its own reply slot. The committer takes the first queued commit, then every
//! commit that queued up behind it (while the previous group was being synced), up to
//! [`MAX_GROUP_BATCHES`] commits or [`MAX_GROUP_OPS`] operations, and hands them in queue
//! order to one write function call, which decides each commit's fate (its checks are
//! validated against the state left by the commits before it in the group) and applies the
//! accepted ones in one atomic write.
//!
//! Invariants:
//! - a caller returns `Ok` only after the write that contains its batch returned `Ok` (with a
//!   syncing store: after the fsync), and gets its own refusal or that write's error otherwise;
//! - a group is applied by one write call, which the store makes atomic, so each batch in it is
//!   atomic too; commits are decided and applied in the order they were queued;
//! - dropping the committer stops the thread after it has answered every queued commit.

use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::kv::{Check, WriteBatch};
use crate::MetaError;

/// Most commits merged into one write.
pub const MAX_GROUP_BATCHES: usize = 1024;
/// Most operations merged into one write (a group is closed once it reaches this).
pub const MAX_GROUP_OPS: usize = 64 * 1024;

/// One caller's conditional write.
#[derive(Debug)]
pub struct Commit {
    pub checks: Vec<Check>,
    pub batch: WriteBatch,
}

struct Request {
    commit: Commit,
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
    /// Starts a committer thread named `name` that applies each group with `write`, which
    /// returns one result per commit (in order) and must apply the accepted ones atomically,
    /// in order, and durably.
    pub fn start<F>(name: &str, mut write: F) -> Result<GroupCommitter, MetaError>
    where
        F: FnMut(&[Commit]) -> Vec<Result<(), MetaError>> + Send + 'static,
    {
        let (queue, requests) = mpsc::channel::<Request>();
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                while let Ok(first) = requests.recv() {
                    let mut operations = first.commit.batch.ops.len();
                    let mut commits = vec![first.commit];
                    let mut replies = vec![first.reply];
                    while commits.len() < MAX_GROUP_BATCHES && operations < MAX_GROUP_OPS {
                        let Ok(next) = requests.try_recv() else { break };
                        operations += next.commit.batch.ops.len();
                        commits.push(next.commit);
                        replies.push(next.reply);
                    }
                    let results = write(&commits);
                    for (index, reply) in replies.into_iter().enumerate() {
                        let result = results.get(index).cloned().unwrap_or_else(|| {
                            Err(MetaError::Db("group commit lost a result".to_string()))
                        });
                        // A caller that gave up waiting is not an error of the others.
                        let _ = reply.send(result);
                    }
                }
            })
            .map_err(|e| MetaError::Db(format!("cannot start the group committer: {e}")))?;
        Ok(GroupCommitter {
            queue: Some(queue),
            thread: Some(thread),
        })
    }

    /// Queues `commit` and waits until the group holding it is decided and written.
    pub fn commit(&self, commit: Commit) -> Result<(), MetaError> {
        let stopped = || MetaError::Db("the metadata group committer has stopped".to_string());
        let (reply, answer) = mpsc::sync_channel(1);
        self.queue
            .as_ref()
            .ok_or_else(stopped)?
            .send(Request { commit, reply })
            .map_err(|_| stopped())?;
        answer.recv().map_err(|_| stopped())?
    }
}

impl Drop for GroupCommitter {
    fn drop(&mut self) {
        // Closing the queue ends the thread's loop once every queued commit is answered.
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
            GroupCommitter::start("test-committer", move |commits: &[Commit]| {
                writes_in.fetch_add(1, Ordering::SeqCst);
                // Slow "fsync", so that callers pile up behind it.
                std::thread::sleep(std::time::Duration::from_millis(2));
                if commits
                    .iter()
                    .flat_map(|c| &c.batch.ops)
                    .any(|op| matches!(op, crate::kv::Op::Put { key, .. } if key == b"poison"))
                {
                    let failed = Err(MetaError::Db("injected".to_string()));
                    return vec![failed; commits.len()];
                }
                let mut merged = WriteBatch::new();
                for commit in commits {
                    merged.ops.extend(commit.batch.ops.iter().cloned());
                }
                let result = store_in.write(merged);
                vec![result; commits.len()]
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
                        let checks = Vec::new();
                        committer.commit(Commit { checks, batch }).unwrap();
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
        let checks = Vec::new();
        assert!(committer
            .commit(Commit {
                checks,
                batch: poison
            })
            .is_err());
        assert!(store.get(Table::Gc, b"poison").unwrap().is_none());
        // The committer keeps serving after a failed group.
        let mut after = WriteBatch::new();
        after.put(Table::Gc, b"after".to_vec(), vec![0]);
        let checks = Vec::new();
        committer
            .commit(Commit {
                checks,
                batch: after,
            })
            .unwrap();
        assert!(store.get(Table::Gc, b"after").unwrap().is_some());
    }
}
