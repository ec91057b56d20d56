//! Group commit and grouped reads for the etcd store: many callers' requests share one etcd
//! round trip.
//!
//! A single dispatcher task takes every commit and point read. It keeps at most
//! `in_flight` requests on the wire (default [`IN_FLIGHT`]) and forms a group whenever a slot is free, so a lone
//! request leaves at once and waits for nobody; under load, what queued while the slots were
//! busy leaves together.
//!
//! - **Commit groups.** One outer `Txn` without compares whose success branch holds each
//!   caller's own `Txn` (its compares, its writes) nested. etcd evaluates the compares of every
//!   nested transaction against the state before the outer one and then applies the branches
//!   that hold, so each member succeeds or fails exactly as it would alone *if* no member
//!   writes a key another member reads or writes ([`GroupFootprint::admits`]); members that
//!   would overlap wait for a later group. The group is serializable: its members touch
//!   disjoint keys. Sizes follow etcd's own check (`checkTxnRequest`): a nested transaction
//!   may carry at most `max_ops` minus the number of members, and the whole request stays
//!   under `max_bytes`. A group of one is sent as it is.
//! - **Read groups.** Up to [`READS_PER_GROUP`] point reads in one read-only `Txn` (one
//!   linearizable ReadIndex round for all of them), each at its own revision (a view's pinned
//!   revision, or the latest). The reads of one request (a view's `get_many`) are never
//!   split between groups. If the group fails (a compacted revision, say), each read is
//!   made again alone, so one bad read does not fail the others.
//!
//! A request whose caller has given up (timed out) before it leaves is dropped, never sent.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{GetOptions, KeyValue, KvClient, Txn, TxnOp, TxnOpResponse, TxnResponse};
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::{etcd_error, get_with_retries, never_sent, RETRIES, RETRY_PAUSE};
use crate::kv::Limits;
use crate::MetaError;

/// etcd requests of one store on the wire at once, by default. One, as RocksDB's committer
/// thread: on the bench machine (etcd's three members sharing 2 cores with the gateways)
/// 1 gave the most 4 KiB PUTs/s and the lowest p99, 2 about as many, 4 and 8 fewer
/// (BENCHMARKS.md); a group waits at most one round trip.
pub(super) const IN_FLIGHT: usize = 1;
/// Most point reads in one read group.
pub(super) const READS_PER_GROUP: usize = 32;
/// Bytes a nested transaction adds to a request beyond its keys and values (framing).
const MEMBER_OVERHEAD: usize = 64;
/// Queued commits looked at when forming one group.
const LOOK_AHEAD: usize = 512;

/// The etcd keys one commit compares and writes.
#[derive(Debug, Clone, Default)]
pub(super) struct Footprint {
    /// Keys compared one by one.
    pub reads: Vec<Vec<u8>>,
    /// Ranges `[start, end)` compared.
    pub ranges: Vec<(Vec<u8>, Vec<u8>)>,
    /// Keys put or deleted.
    pub writes: Vec<Vec<u8>>,
}

/// The union of a group's footprints.
#[derive(Debug, Default)]
pub(super) struct GroupFootprint {
    reads: BTreeSet<Vec<u8>>,
    ranges: Vec<(Vec<u8>, Vec<u8>)>,
    writes: BTreeSet<Vec<u8>>,
}

impl GroupFootprint {
    /// Whether a commit of footprint `f` may join: it writes nothing the group reads or
    /// writes, and reads nothing the group writes.
    pub(super) fn admits(&self, f: &Footprint) -> bool {
        let in_group_ranges = |key: &Vec<u8>| {
            self.ranges
                .iter()
                .any(|(start, end)| key >= start && key < end)
        };
        let writes_in = |start: &Vec<u8>, end: &Vec<u8>| {
            start < end
                && self
                    .writes
                    .range(start.clone()..end.clone())
                    .next()
                    .is_some()
        };
        f.writes.iter().all(|key| {
            !self.reads.contains(key) && !self.writes.contains(key) && !in_group_ranges(key)
        }) && f.reads.iter().all(|key| !self.writes.contains(key))
            && f.ranges.iter().all(|(start, end)| !writes_in(start, end))
    }

    fn add(&mut self, f: &Footprint) {
        self.reads.extend(f.reads.iter().cloned());
        self.writes.extend(f.writes.iter().cloned());
        self.ranges.extend(f.ranges.iter().cloned());
    }
}

/// One caller's commit.
pub(super) struct Commit {
    /// The caller's transaction: its compares and, as the success branch, its writes.
    pub txn: Txn,
    pub footprint: Footprint,
    /// Bytes of keys and values.
    pub bytes: usize,
    /// `max(compares, operations)`: what etcd counts against `--max-txn-ops`.
    pub width: usize,
    /// Whether the compares held (and the writes were applied).
    pub reply: oneshot::Sender<Result<bool, MetaError>>,
}

/// What a point read found, and the revision it read at.
#[derive(Debug)]
pub(super) struct ReadAnswer {
    pub found: Option<KeyValue>,
    pub revision: i64,
}

/// One caller's read of one key at `revision` (0: the latest, linearizable).
pub(super) struct PointRead {
    pub key: Vec<u8>,
    pub revision: i64,
    pub reply: oneshot::Sender<Result<ReadAnswer, MetaError>>,
}

/// A request to the dispatcher.
pub(super) enum Request {
    Commit(Commit),
    /// Point reads that travel in one group (at most [`READS_PER_GROUP`]): one view's reads
    /// at the latest revision must all be answered at the same one.
    Reads(Vec<PointRead>),
}

/// The handle on the dispatcher task; dropping it ends the task once its queue is empty.
pub(super) struct Batcher {
    requests: mpsc::UnboundedSender<Request>,
}

impl Batcher {
    pub(super) fn start(
        runtime: &tokio::runtime::Runtime,
        client: KvClient,
        limits: Limits,
        timeout: Duration,
        in_flight: usize,
    ) -> Batcher {
        let (requests, queue) = mpsc::unbounded_channel();
        runtime.spawn(dispatch(queue, client, limits, timeout, in_flight.max(1)));
        Batcher { requests }
    }

    pub(super) fn submit(&self, request: Request) -> Result<(), MetaError> {
        self.requests
            .send(request)
            .map_err(|_| MetaError::Db("the etcd dispatcher has stopped".to_string()))
    }
}

/// Requests waiting for a free slot.
#[derive(Default)]
pub(super) struct Queue {
    commits: VecDeque<Commit>,
    reads: VecDeque<Vec<PointRead>>,
    /// Which kind went last, so neither starves the other.
    reads_last: bool,
}

/// A group ready to send.
pub(super) enum Group {
    Commits(Vec<Commit>),
    Reads(Vec<PointRead>),
}

impl Queue {
    fn push(&mut self, request: Request) {
        match request {
            Request::Commit(commit) => self.commits.push_back(commit),
            Request::Reads(reads) => self.reads.push_back(reads),
        }
    }

    fn is_empty(&self) -> bool {
        self.commits.is_empty() && self.reads.is_empty()
    }

    /// The next group to send, alternating between reads and commits when both wait.
    pub(super) fn next_group(&mut self, limits: Limits) -> Option<Group> {
        self.drop_abandoned();
        let reads_next = !self.reads.is_empty() && (self.commits.is_empty() || !self.reads_last);
        if reads_next {
            self.reads_last = true;
            let mut group: Vec<PointRead> = Vec::new();
            while let Some(unit) = self.reads.front() {
                if !group.is_empty() && group.len() + unit.len() > READS_PER_GROUP {
                    break;
                }
                group.extend(self.reads.pop_front().unwrap_or_default());
            }
            return Some(Group::Reads(group));
        }
        self.reads_last = false;
        let group = self.commit_group(limits);
        (!group.is_empty()).then_some(Group::Commits(group))
    }

    /// Requests whose callers gave up are never sent.
    fn drop_abandoned(&mut self) {
        self.commits.retain(|c| !c.reply.is_closed());
        for unit in &mut self.reads {
            unit.retain(|r| !r.reply.is_closed());
        }
        self.reads.retain(|unit| !unit.is_empty());
    }

    /// The oldest commit and every later one (within [`LOOK_AHEAD`]) that fits beside the
    /// members taken before it; the others keep their order for the next group.
    fn commit_group(&mut self, limits: Limits) -> Vec<Commit> {
        let mut group: Vec<Commit> = Vec::new();
        let mut footprint = GroupFootprint::default();
        let (mut widest, mut bytes) = (0usize, 0usize);
        let mut skipped = VecDeque::new();
        let mut looked = 0;
        while looked < LOOK_AHEAD {
            let Some(commit) = self.commits.pop_front() else {
                break;
            };
            looked += 1;
            let members = group.len() + 1;
            let wider = widest.max(commit.width);
            let more_bytes = bytes + commit.bytes + MEMBER_OVERHEAD;
            let fits = group.is_empty()
                || (footprint.admits(&commit.footprint)
                    && wider.saturating_add(members) <= limits.max_ops
                    && more_bytes <= limits.max_bytes);
            if fits {
                footprint.add(&commit.footprint);
                (widest, bytes) = (wider, more_bytes);
                group.push(commit);
            } else {
                skipped.push_back(commit);
            }
        }
        while let Some(commit) = skipped.pop_back() {
            self.commits.push_front(commit);
        }
        group
    }
}

/// The dispatcher: takes requests, and whenever one of `in_flight` slots is free sends the
/// next group in a task of its own.
async fn dispatch(
    mut requests: mpsc::UnboundedReceiver<Request>,
    client: KvClient,
    limits: Limits,
    timeout: Duration,
    in_flight: usize,
) {
    let slots = Arc::new(Semaphore::new(in_flight));
    let mut queue = Queue::default();
    loop {
        if queue.is_empty() {
            match requests.recv().await {
                Some(request) => queue.push(request),
                None => return,
            }
        }
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        // What arrived while the slots were busy joins this group.
        while let Ok(request) = requests.try_recv() {
            queue.push(request);
        }
        let Some(group) = queue.next_group(limits) else {
            continue;
        };
        let client = client.clone();
        tokio::spawn(async move {
            match group {
                Group::Commits(commits) => send_commits(client, commits, timeout).await,
                Group::Reads(reads) => send_reads(client, reads, timeout).await,
            }
            drop(slot);
        });
    }
}

/// Sends one transaction, again if the connection was refused (it never left), within
/// `timeout`.
async fn send_txn(
    client: &mut KvClient,
    txn: Txn,
    timeout: Duration,
) -> Result<TxnResponse, etcd_client::Error> {
    let attempts = async {
        let mut attempt = 0;
        loop {
            match client.txn(txn.clone()).await {
                Err(e) if attempt < RETRIES && never_sent(&e) => {
                    attempt += 1;
                    tracing::debug!(error = %e, attempt, "etcd commit not sent, retrying");
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                answer => return answer,
            }
        }
    };
    tokio::time::timeout(timeout, attempts)
        .await
        .unwrap_or_else(|_| {
            Err(etcd_client::Error::InvalidArgs(format!(
                "etcd did not answer within {timeout:?}"
            )))
        })
}

/// Whether etcd refused a request as a whole before applying any of it.
fn refused_whole(e: &etcd_client::Error) -> bool {
    let text = e.to_string();
    text.contains("too many operations")
        || text.contains("too large")
        || text.contains("duplicate key")
}

/// One commit sent as it is, not nested.
async fn send_alone(client: &mut KvClient, commit: Commit, timeout: Duration) {
    let answer = send_txn(client, commit.txn, timeout).await;
    // A caller that gave up no longer listens.
    let _ = commit
        .reply
        .send(answer.map(|r| r.succeeded()).map_err(|e| etcd_error(&e)));
}

async fn send_commits(mut client: KvClient, commits: Vec<Commit>, timeout: Duration) {
    if commits.len() == 1 {
        for commit in commits {
            send_alone(&mut client, commit, timeout).await;
        }
        return;
    }
    let nested: Vec<TxnOp> = commits.iter().map(|c| TxnOp::txn(c.txn.clone())).collect();
    match send_txn(&mut client, Txn::new().and_then(nested), timeout).await {
        Ok(response) => {
            let mut answers = response.op_responses().into_iter();
            for commit in commits {
                let answer = match answers.next() {
                    Some(TxnOpResponse::Txn(member)) => Ok(member.succeeded()),
                    _ => Err(MetaError::Db(
                        "etcd answered a group commit without its members' results".to_string(),
                    )),
                };
                let _ = commit.reply.send(answer);
            }
        }
        // Nothing of the group was applied: each member alone gets its own answer.
        Err(e) if refused_whole(&e) => {
            tracing::warn!(error = %e, members = commits.len(), "etcd refused a group commit; sending its members one by one");
            for commit in commits {
                send_alone(&mut client, commit, timeout).await;
            }
        }
        Err(e) => {
            for commit in commits {
                let _ = commit.reply.send(Err(etcd_error(&e)));
            }
        }
    }
}

/// One key read alone: serializable at a pinned revision (no round through the leader; a
/// member that has not applied it yet says "future revision" and the read is made again
/// linearizably), linearizable at the latest.
pub(super) async fn read_point(
    client: &mut KvClient,
    key: Vec<u8>,
    revision: i64,
) -> Result<ReadAnswer, MetaError> {
    let options = GetOptions::new().with_revision(revision);
    let response = get_with_retries(client, key.clone(), options, revision > 0).await?;
    let latest = response.header().map_or(0, |h| h.revision());
    Ok(ReadAnswer {
        found: response.kvs().iter().find(|kv| kv.key() == key).cloned(),
        revision: if revision > 0 { revision } else { latest },
    })
}

async fn send_reads(mut client: KvClient, reads: Vec<PointRead>, timeout: Duration) {
    let alone = |mut client: KvClient, read: PointRead| async move {
        let answer = tokio::time::timeout(
            timeout,
            read_point(&mut client, read.key.clone(), read.revision),
        )
        .await
        .unwrap_or_else(|_| {
            Err(MetaError::Unavailable(format!(
                "etcd did not answer within {timeout:?}"
            )))
        });
        let _ = read.reply.send(answer);
    };
    if reads.len() == 1 {
        for read in reads {
            alone(client.clone(), read).await;
        }
        return;
    }
    let ops: Vec<TxnOp> = reads
        .iter()
        .map(|r| {
            TxnOp::get(
                r.key.clone(),
                Some(GetOptions::new().with_revision(r.revision)),
            )
        })
        .collect();
    let answer = tokio::time::timeout(timeout, client.txn(Txn::new().and_then(ops))).await;
    match answer {
        Ok(Ok(response)) => {
            let latest = response.header().map_or(0, |h| h.revision());
            let mut answers = response.op_responses().into_iter();
            for read in reads {
                let answer = match answers.next() {
                    Some(TxnOpResponse::Get(got)) => Ok(ReadAnswer {
                        found: got.kvs().iter().find(|kv| kv.key() == read.key).cloned(),
                        revision: if read.revision > 0 {
                            read.revision
                        } else {
                            latest
                        },
                    }),
                    _ => Err(MetaError::Db(
                        "etcd answered a read group without its members' results".to_string(),
                    )),
                };
                let _ = read.reply.send(answer);
            }
        }
        // One bad read (a compacted revision) or a lost member fails the whole group: each
        // read is made again alone, with the retries of a single read.
        failed => {
            if let Ok(Err(e)) = &failed {
                tracing::debug!(error = %e, reads = reads.len(), "etcd read group failed; reading one by one");
            }
            futures::future::join_all(reads.into_iter().map(|read| alone(client.clone(), read)))
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn footprint(reads: &[&str], ranges: &[(&str, &str)], writes: &[&str]) -> Footprint {
        let keys = |keys: &[&str]| keys.iter().map(|k| k.as_bytes().to_vec()).collect();
        Footprint {
            reads: keys(reads),
            ranges: ranges
                .iter()
                .map(|(s, e)| (s.as_bytes().to_vec(), e.as_bytes().to_vec()))
                .collect(),
            writes: keys(writes),
        }
    }

    fn group(members: &[Footprint]) -> GroupFootprint {
        let mut group = GroupFootprint::default();
        for member in members {
            group.add(member);
        }
        group
    }

    #[test]
    fn disjoint_commits_share_a_group() {
        let g = group(&[footprint(&["a"], &[], &["a", "b"])]);
        assert!(g.admits(&footprint(&["c"], &[], &["c", "d"])));
        // Reading what another member only reads is fine.
        let g = group(&[footprint(&["x"], &[], &["a"])]);
        assert!(g.admits(&footprint(&["x"], &[], &["b"])));
    }

    #[test]
    fn overlapping_commits_wait_for_another_group() {
        let g = group(&[footprint(&["a"], &[], &["b"])]);
        // Writes what a member reads / writes.
        assert!(!g.admits(&footprint(&[], &[], &["a"])));
        assert!(!g.admits(&footprint(&[], &[], &["b"])));
        // Reads what a member writes (the write-skew case).
        assert!(!g.admits(&footprint(&["b"], &[], &["a2"])));
        // A range over a member's write, and a write inside a member's range.
        assert!(!g.admits(&footprint(&[], &[("a", "c")], &["z"])));
        let g = group(&[footprint(&[], &[("m", "p")], &["z"])]);
        assert!(!g.admits(&footprint(&[], &[], &["n"])));
        assert!(g.admits(&footprint(&[], &[], &["p"])));
        // An empty or inverted range holds no key.
        assert!(g.admits(&footprint(&[], &[("q", "q"), ("zz", "a")], &["y"])));
    }

    fn commit(
        reads: &[&str],
        writes: &[&str],
        width: usize,
        bytes: usize,
    ) -> (Commit, oneshot::Receiver<Result<bool, MetaError>>) {
        let (reply, answer) = oneshot::channel();
        let commit = Commit {
            txn: Txn::new(),
            footprint: footprint(reads, &[], writes),
            bytes,
            width,
            reply,
        };
        (commit, answer)
    }

    fn queued(commits: Vec<Commit>) -> Queue {
        let mut queue = Queue::default();
        for commit in commits {
            queue.push(Request::Commit(commit));
        }
        queue
    }

    fn commits(group: Option<Group>) -> Vec<Vec<u8>> {
        match group {
            Some(Group::Commits(members)) => members
                .into_iter()
                .map(|c| c.footprint.writes[0].clone())
                .collect(),
            _ => panic!("expected a commit group"),
        }
    }

    #[test]
    fn groups_skip_conflicts_and_keep_order() {
        let (a, _ra) = commit(&["k"], &["a"], 2, 10);
        let (b, _rb) = commit(&["a"], &["b"], 2, 10); // reads a: waits
        let (c, _rc) = commit(&[], &["c"], 2, 10);
        let (d, _rd) = commit(&[], &["d"], 2, 10);
        let mut queue = queued(vec![a, b, c, d]);
        let limits = Limits::ETCD_DEFAULT;
        assert_eq!(
            commits(queue.next_group(limits)),
            [b"a".to_vec(), b"c".to_vec(), b"d".to_vec()]
        );
        assert_eq!(commits(queue.next_group(limits)), [b"b".to_vec()]);
        assert!(queue.next_group(limits).is_none());
    }

    #[test]
    fn groups_respect_etcd_limits() {
        // Width: the widest member plus the number of members stays within max_ops.
        let limits = Limits {
            max_ops: 10,
            max_bytes: 1 << 20,
        };
        let mut members = Vec::new();
        let mut answers = Vec::new();
        for i in 0..6 {
            let (c, r) = commit(&[], &[&format!("w{i}")], 5, 10);
            members.push(c);
            answers.push(r);
        }
        let mut queue = queued(members);
        assert_eq!(commits(queue.next_group(limits)).len(), 5);
        assert_eq!(commits(queue.next_group(limits)).len(), 1);
        // Bytes: each member adds its bytes and its framing.
        let limits = Limits {
            max_ops: 128,
            max_bytes: 3 * (100 + MEMBER_OVERHEAD),
        };
        let mut members = Vec::new();
        for i in 0..7 {
            let (c, r) = commit(&[], &[&format!("b{i}")], 1, 100);
            members.push(c);
            answers.push(r);
        }
        let mut queue = queued(members);
        assert_eq!(commits(queue.next_group(limits)).len(), 3);
        assert_eq!(commits(queue.next_group(limits)).len(), 3);
        assert_eq!(commits(queue.next_group(limits)).len(), 1);
    }

    #[test]
    fn abandoned_requests_are_not_sent_and_reads_alternate() {
        let (a, ra) = commit(&[], &["a"], 1, 1);
        let (b, _rb) = commit(&[], &["b"], 1, 1);
        drop(ra); // a's caller gave up
        let mut queue = queued(vec![a, b]);
        let mut readers = Vec::new();
        // Units of 8, 20, 8 and 1 reads: a unit is never split, so the first group holds 28.
        for (unit, size) in [8, 20, 8, 1].into_iter().enumerate() {
            let mut reads = Vec::new();
            for i in 0..size {
                let (reply, answer) = oneshot::channel();
                readers.push(answer);
                reads.push(PointRead {
                    key: format!("r{unit}-{i}").into_bytes(),
                    revision: 0,
                    reply,
                });
            }
            queue.push(Request::Reads(reads));
        }
        let limits = Limits::ETCD_DEFAULT;
        match queue.next_group(limits) {
            Some(Group::Reads(reads)) => assert_eq!(reads.len(), 28),
            _ => panic!("reads first"),
        }
        assert_eq!(commits(queue.next_group(limits)), [b"b".to_vec()]);
        match queue.next_group(limits) {
            Some(Group::Reads(reads)) => assert_eq!(reads.len(), 9),
            _ => panic!("the last reads"),
        }
        assert!(queue.next_group(limits).is_none());
    }
}
