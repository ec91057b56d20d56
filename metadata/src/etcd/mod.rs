//! [`EtcdKvStore`]: the [`KvStore`] on an etcd v3 cluster, for catalogs shared by several
//! gateways. A view's first read is linearizable; its later reads are made at the revision it
//! pinned. Commits and point reads of concurrent callers share etcd round trips
//! ([`batch`]: group commit with nested transactions, grouped reads).
//!
//! Mapping: row `key` of table `t` is the etcd key `prefix ‖ t.tag() ‖ '/' ‖ key`, so each
//! table is one contiguous etcd range and bytewise order is kept. A view pins the revision of
//! its first read and makes every later read at that revision (a consistent snapshot). A row's
//! stamp is its `mod_revision`; a scan's stamp is the view's revision. A commit is one etcd
//! `Txn`: a [`Check::Row`] becomes a compare on the key's `mod_revision` (or `version == 0`
//! for "absent"), a [`Check::Range`] a compare `mod_revision < revision + 1` over the range
//! (it catches rows created or changed since the view, not deletions — the kv contract allows
//! that), and the batch becomes the success branch. A failed compare is
//! [`MetaError::Conflict`]; a read at a compacted revision is a conflict too (the transaction
//! runs again on a fresh view).
//!
//! Invariants: every call has a timeout; an unreachable cluster or one without quorum is
//! [`MetaError::Unavailable`] and nothing is applied; a transaction names each key once (etcd
//! refuses duplicates: the last operation on a key wins, as in every back end); commits are
//! refused before sending when they exceed the configured [`Limits`] (etcd's defaults unless
//! the cluster is configured otherwise). Calls are synchronous: the client runs on a small
//! runtime of its own, so the catalog may be called from any thread, async or not.

mod batch;

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;
use std::time::Instant;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, GetResponse, KvClient, Txn, TxnOp,
};
use tokio::sync::oneshot;

use batch::{Batcher, Commit, Footprint, PointRead, ReadAnswer, Request};

use crate::kv::{
    check_limits, Check, Found, KvStore, KvView, Limits, Op, Row, Stamp, Table, WriteBatch,
};
use crate::MetaError;

/// How a catalog reaches its etcd cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdConfig {
    /// Client URLs (`http://host:port`), any members of one cluster.
    pub endpoints: Vec<String>,
    /// Prefix of every key Strata writes (several stores may share one cluster).
    pub prefix: Vec<u8>,
    /// Timeout of every call.
    pub timeout: Duration,
    /// etcd authentication (user, password), if the cluster has auth enabled.
    pub user: Option<(String, String)>,
    /// What one transaction may carry: the cluster's `--max-txn-ops` and
    /// `--max-request-bytes`.
    pub limits: Limits,
    /// TLS to the members (`https://` endpoints), if the cluster serves it.
    pub tls: Option<EtcdTls>,
    /// etcd requests this store keeps on the wire at once (at least 1); what arrives
    /// meanwhile waits and leaves grouped with the next one ([`batch`]).
    pub in_flight: usize,
}

/// TLS settings of the connection to etcd (PEM contents, not paths).
#[derive(Clone, PartialEq, Eq)]
pub struct EtcdTls {
    /// CA certificates that sign the members' certificates.
    pub ca: Vec<u8>,
    /// A client certificate and its key, when the members require client certificates.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for EtcdTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdTls")
            .field("client_certificate", &self.identity.is_some())
            .finish_non_exhaustive()
    }
}

impl EtcdConfig {
    /// A configuration with etcd's default limits, a 5 s timeout and the prefix `strata/`.
    pub fn new(endpoints: Vec<String>) -> EtcdConfig {
        EtcdConfig {
            endpoints,
            prefix: b"strata/".to_vec(),
            timeout: Duration::from_secs(5),
            user: None,
            limits: Limits::ETCD_DEFAULT,
            tls: None,
            in_flight: batch::IN_FLIGHT,
        }
    }
}

/// A catalog store on etcd.
pub struct EtcdKvStore {
    // Dropped in this order: the dispatcher's handle and the client's before the runtime
    // they run on.
    batcher: Batcher,
    client: Client,
    runtime: ClientRuntime,
    config: EtcdConfig,
    history: Mutex<History>,
}

/// What [`KvStore::compact_history`] remembers between calls.
#[derive(Debug, Default)]
struct History {
    /// The cluster's revision as sampled at each call, oldest first.
    samples: VecDeque<(Instant, i64)>,
    /// The revision this store last compacted to.
    compacted: i64,
}

impl std::fmt::Debug for EtcdKvStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdKvStore")
            .field("endpoints", &self.config.endpoints)
            .finish_non_exhaustive()
    }
}

/// Attempts after the first for a read, or for a commit that was never sent.
const RETRIES: u32 = 5;
/// Pause between those attempts.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// Whether `e` says the request could not be sent at all (no connection).
fn never_sent(e: &etcd_client::Error) -> bool {
    let text = e.to_string();
    text.contains("tcp connect error") || text.contains("Connection refused")
}

/// Maps a client error: a refused compare never gets here (it is a normal answer).
fn etcd_error(e: &etcd_client::Error) -> MetaError {
    let text = e.to_string();
    if text.contains("compacted") {
        return MetaError::Conflict;
    }
    if text.contains("too large") || text.contains("too many operations") {
        return MetaError::TooLarge { ops: 0, bytes: 0 };
    }
    MetaError::Unavailable(format!("etcd: {text}"))
}

impl EtcdKvStore {
    /// Connects to the cluster (failing with `Unavailable` if no endpoint answers in time).
    pub fn connect(config: EtcdConfig) -> Result<EtcdKvStore, MetaError> {
        let runtime = ClientRuntime(Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("strata-etcd")
                .enable_all()
                .build()
                .map_err(|e| MetaError::Db(format!("cannot start the etcd client runtime: {e}")))?,
        ));
        let mut options = ConnectOptions::new()
            .with_connect_timeout(config.timeout)
            .with_timeout(config.timeout)
            .with_keep_alive(Duration::from_secs(10), config.timeout);
        if let Some((user, password)) = &config.user {
            options = options.with_user(user.clone(), password.clone());
        }
        if let Some(tls) = &config.tls {
            let mut settings = etcd_client::TlsOptions::new()
                .ca_certificate(etcd_client::Certificate::from_pem(&tls.ca));
            if let Some((cert, key)) = &tls.identity {
                settings = settings.identity(etcd_client::Identity::from_pem(cert, key));
            }
            options = options.with_tls(settings);
        }
        let endpoints = config.endpoints.clone();
        let timeout = config.timeout;
        let client = block_on(runtime.get()?, timeout, async move {
            let mut client = Client::connect(endpoints, Some(options))
                .await
                .map_err(|e| etcd_error(&e))?;
            // Connecting is lazy: one read proves a member answers.
            client.status().await.map_err(|e| etcd_error(&e))?;
            Ok(client)
        })?;
        let batcher = Batcher::start(
            runtime.get()?,
            client.kv_client(),
            config.limits,
            config.timeout,
            config.in_flight,
        );
        Ok(EtcdKvStore {
            batcher,
            client,
            runtime,
            config,
            history: Mutex::new(History::default()),
        })
    }

    fn table_prefix(&self, table: Table) -> Vec<u8> {
        let mut out = self.config.prefix.clone();
        out.push(table.tag());
        out.push(b'/');
        out
    }

    fn etcd_key(&self, table: Table, key: &[u8]) -> Vec<u8> {
        let mut out = self.table_prefix(table);
        out.extend_from_slice(key);
        out
    }

    /// The etcd end of a table range: `end` inside the table, or the table's end.
    fn etcd_end(&self, table: Table, end: &[u8]) -> Vec<u8> {
        if end.is_empty() {
            let mut out = self.config.prefix.clone();
            out.push(table.tag());
            out.push(b'/' + 1);
            out
        } else {
            self.etcd_key(table, end)
        }
    }

    fn run<T: Send + 'static>(
        &self,
        future: impl Future<Output = Result<T, MetaError>> + Send + 'static,
    ) -> Result<T, MetaError> {
        block_on(self.runtime.get()?, self.config.timeout, future)
    }

    /// One range read at `revision` (0: latest); returns the rows (keys without the table
    /// prefix), their mod revisions and the revision read at.
    fn range(
        &self,
        table: Table,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
        revision: i64,
    ) -> Result<(Vec<(Row, i64)>, i64), MetaError> {
        let prefix_len = self.table_prefix(table).len();
        let key = self.etcd_key(table, start);
        let mut options = GetOptions::new().with_revision(revision);
        if let Some(end) = end {
            let end = self.etcd_end(table, end);
            options = options.with_range(end);
            if limit != usize::MAX {
                options = options.with_limit(i64::try_from(limit).unwrap_or(i64::MAX));
            }
        }
        let mut client = self.client.kv_client();
        self.run(async move {
            let response = get_with_retries(&mut client, key, options, revision > 0).await?;
            let revision = response.header().map_or(0, |h| h.revision());
            let rows = response
                .kvs()
                .iter()
                .map(|kv| {
                    let key = kv.key().get(prefix_len..).unwrap_or_default().to_vec();
                    ((key, kv.value().to_vec()), kv.mod_revision())
                })
                .collect();
            Ok((rows, revision))
        })
    }

    /// Keys of one table at `revision` (0: the latest), through the dispatcher: they travel
    /// in one read group, which they may share with other callers' reads.
    fn points(&self, keys: &[(Table, &[u8])], revision: i64) -> Result<Vec<ReadAnswer>, MetaError> {
        let mut reads = Vec::with_capacity(keys.len());
        let mut answers = Vec::with_capacity(keys.len());
        for (table, key) in keys {
            let (reply, answer) = oneshot::channel();
            reads.push(PointRead {
                key: self.etcd_key(*table, key),
                revision,
                reply,
            });
            answers.push(answer);
        }
        self.batcher.submit(Request::Reads(reads))?;
        self.run(async move {
            let mut out = Vec::with_capacity(answers.len());
            for answer in answers {
                out.push(answered(answer).await?);
            }
            Ok(out)
        })
    }
}

/// Waits for the dispatcher's answer.
async fn answered<T>(answer: oneshot::Receiver<Result<T, MetaError>>) -> Result<T, MetaError> {
    answer
        .await
        .map_err(|_| MetaError::Db("the etcd dispatcher dropped a request".to_string()))?
}

/// A range read, made again on failure within the call's timeout (a read is idempotent; the
/// client's balancer routes the next attempt to another member). `pinned`: the read is at a
/// revision an earlier linearizable read returned, so it needs no ReadIndex round through
/// the leader: the state at a revision never changes, and any member that has applied it
/// answers correctly (serializable). One that has not says "future revision": the read is
/// made again linearizably.
async fn get_with_retries(
    client: &mut KvClient,
    key: Vec<u8>,
    options: GetOptions,
    pinned: bool,
) -> Result<GetResponse, MetaError> {
    let linearizable = options.clone();
    let mut options = if pinned {
        options.with_serializable()
    } else {
        options
    };
    let mut attempt = 0;
    loop {
        match client.get(key.clone(), Some(options.clone())).await {
            Ok(response) => return Ok(response),
            Err(e) if attempt < RETRIES && e.to_string().contains("future revision") => {
                attempt += 1;
                options = linearizable.clone();
            }
            Err(e) if attempt < RETRIES => {
                attempt += 1;
                tracing::debug!(error = %e, attempt, "etcd read failed, retrying");
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            Err(e) => return Err(etcd_error(&e)),
        }
    }
}

/// The client's own runtime. Dropped without waiting for its threads, so a store may be
/// dropped anywhere, inside an async context too (a plain `Runtime` panics there).
struct ClientRuntime(Option<tokio::runtime::Runtime>);

impl ClientRuntime {
    fn get(&self) -> Result<&tokio::runtime::Runtime, MetaError> {
        self.0
            .as_ref()
            .ok_or_else(|| MetaError::Db("the etcd client runtime is gone".to_string()))
    }
}

impl Drop for ClientRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Runs `future` on `runtime` and waits for it from any thread, with a timeout.
fn block_on<T: Send + 'static>(
    runtime: &tokio::runtime::Runtime,
    timeout: Duration,
    future: impl Future<Output = Result<T, MetaError>> + Send + 'static,
) -> Result<T, MetaError> {
    let task = runtime.spawn(async move {
        match tokio::time::timeout(timeout, future).await {
            Ok(result) => result,
            Err(_) => Err(MetaError::Unavailable(format!(
                "etcd did not answer within {timeout:?}"
            ))),
        }
    });
    futures::executor::block_on(task)
        .map_err(|e| MetaError::Db(format!("etcd client task failed: {e}")))?
}

/// A view pinned at the revision of its first read.
struct EtcdView<'a> {
    store: &'a EtcdKvStore,
    revision: Cell<i64>,
}

impl EtcdView<'_> {
    fn pin(&self, read_at: i64) {
        if self.revision.get() == 0 {
            self.revision.set(read_at);
        }
    }
}

impl KvView for EtcdView<'_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<(Vec<u8>, Stamp)>, MetaError> {
        Ok(self.get_many(&[(table, key)])?.pop().flatten())
    }

    fn get_many(&self, keys: &[(Table, &[u8])]) -> Result<Vec<Found>, MetaError> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(batch::READS_PER_GROUP) {
            let mut answers = self.store.points(chunk, self.revision.get())?;
            if let Some(first) = answers.first() {
                self.pin(first.revision);
            }
            // Reads at the latest revision share one when their group succeeded; if it failed
            // and they were made one by one, those answered at another revision are read
            // again at the pinned one, so the view stays one snapshot.
            let pinned = self.revision.get();
            for (answer, (table, key)) in answers.iter_mut().zip(chunk) {
                if answer.revision != pinned {
                    if let Some(again) = self.store.points(&[(*table, key)], pinned)?.pop() {
                        *answer = again;
                    }
                }
            }
            found.extend(answers.into_iter().map(|answer| {
                answer.found.map(|kv| {
                    let stamp = Stamp(u64::try_from(kv.mod_revision()).unwrap_or(0));
                    (kv.value().to_vec(), stamp)
                })
            }));
        }
        Ok(found)
    }

    fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<(Vec<Row>, Stamp), MetaError> {
        if limit == 0 || (!end.is_empty() && start >= end) {
            // Nothing to read, but the stamp must still pin a revision to compare against.
            if self.revision.get() == 0 {
                let (_, revision) = self.store.range(table, start, None, 1, 0)?;
                self.pin(revision);
            }
            let stamp = Stamp(u64::try_from(self.revision.get()).unwrap_or(0));
            return Ok((Vec::new(), stamp));
        }
        let (rows, revision) =
            self.store
                .range(table, start, Some(end), limit, self.revision.get())?;
        self.pin(revision);
        let stamp = Stamp(u64::try_from(self.revision.get()).unwrap_or(0));
        Ok((rows.into_iter().map(|(row, _)| row).collect(), stamp))
    }
}

impl KvStore for EtcdKvStore {
    fn view(&self) -> Result<Box<dyn KvView + '_>, MetaError> {
        Ok(Box::new(EtcdView {
            store: self,
            revision: Cell::new(0),
        }))
    }

    fn commit(&self, checks: Vec<Check>, batch: WriteBatch) -> Result<(), MetaError> {
        // etcd refuses a key named twice in one transaction: keep each key's last operation.
        let mut last: HashMap<(Table, &[u8]), usize> = HashMap::new();
        for (index, op) in batch.ops.iter().enumerate() {
            last.insert((op.table(), op.key()), index);
        }
        let mut deduplicated = WriteBatch::new();
        for (index, op) in batch.ops.iter().enumerate() {
            if last.get(&(op.table(), op.key())) == Some(&index) {
                deduplicated.ops.push(op.clone());
            }
        }
        check_limits(self.config.limits, &checks, &deduplicated)?;
        let mut footprint = Footprint::default();
        let mut bytes = 0;
        let compares: Vec<Compare> = checks
            .iter()
            .map(|check| match check {
                Check::Row { table, key, seen } => {
                    let key = self.etcd_key(*table, key);
                    bytes += key.len();
                    footprint.reads.push(key.clone());
                    match seen {
                        Some(Stamp(revision)) => Compare::mod_revision(
                            key,
                            CompareOp::Equal,
                            i64::try_from(*revision).unwrap_or(i64::MAX),
                        ),
                        None => Compare::version(key, CompareOp::Equal, 0),
                    }
                }
                Check::Range {
                    table,
                    start,
                    end,
                    seen: Stamp(revision),
                } => {
                    let (start, end) = (self.etcd_key(*table, start), self.etcd_end(*table, end));
                    bytes += start.len() + end.len();
                    footprint.ranges.push((start.clone(), end.clone()));
                    Compare::mod_revision(
                        start,
                        CompareOp::Less,
                        i64::try_from(*revision).unwrap_or(i64::MAX - 1) + 1,
                    )
                    .with_range(end)
                }
            })
            .collect();
        let ops: Vec<TxnOp> = deduplicated
            .ops
            .iter()
            .map(|op| {
                let key = self.etcd_key(op.table(), op.key());
                bytes += key.len();
                footprint.writes.push(key.clone());
                match op {
                    Op::Put { value, .. } => {
                        bytes += value.len();
                        TxnOp::put(key, value.clone(), None)
                    }
                    Op::Delete { .. } => TxnOp::delete(key, None),
                }
            })
            .collect();
        let width = compares.len().max(ops.len());
        let (reply, answer) = oneshot::channel();
        self.batcher.submit(Request::Commit(Commit {
            txn: Txn::new().when(compares).and_then(ops),
            footprint,
            bytes,
            width,
            reply,
        }))?;
        if self.run(answered(answer))? {
            Ok(())
        } else {
            Err(MetaError::Conflict)
        }
    }

    fn limits(&self) -> Limits {
        self.config.limits
    }

    /// Samples the cluster's revision at each call and compacts to the newest sample taken at
    /// least `keep` ago: etcd then keeps no version of a row replaced before it (its
    /// database stops growing with every overwrite; the space quota is not reached by
    /// history). Another gateway or an operator compacting further is fine.
    fn compact_history(&self, keep: Duration) -> Result<Option<u64>, MetaError> {
        let (_, current) = self.range(Table::System, b"", None, 1, 0)?;
        let now = Instant::now();
        let (target, mut compacted) = {
            let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
            history.samples.push_back((now, current));
            let mut target = None;
            while let Some(&(at, revision)) = history.samples.front() {
                if now.duration_since(at) < keep {
                    break;
                }
                target = Some(revision);
                history.samples.pop_front();
            }
            (
                target.filter(|&revision| revision > history.compacted),
                history.compacted,
            )
        };
        if let Some(revision) = target {
            let mut client = self.client.kv_client();
            let answer = self.run(async move {
                client
                    .compact(revision, None)
                    .await
                    .map_err(|e| etcd_error(&e))
            });
            match answer {
                // "required revision has been compacted": compacted further already.
                Ok(_) | Err(MetaError::Conflict) => {}
                Err(e) => return Err(e),
            }
            tracing::debug!(revision, "etcd history compacted");
            let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
            history.compacted = history.compacted.max(revision);
            compacted = history.compacted;
        }
        Ok(Some(u64::try_from(compacted).unwrap_or(0)))
    }
}
