//! The operations of `strata bench` and the phases of a run: prepare (upload the objects a
//! benchmark reads), measure (workers issue operations until the deadline or the count), report,
//! clean up.
//!
//! Invariants: object bodies are slices of one random pool (no per-request allocation or
//! hashing beyond xxh3 of what is sent), so the client stays cheap; every object the run
//! stored has its size and xxh3 recorded, and every GET compares against them; in `mixed`, a
//! worker owns an object slot exclusively while it operates on it, so a GET never races a PUT
//! or DELETE of the same key and verification cannot report false mismatches; every loop ends
//! at the deadline, the count, or (delete) when the prepared objects are used up.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use rand::{Rng, SeedableRng};

use super::client::{self, canonical_query, object_path, ClientConfig, RequestError, S3Client};
use super::stats::{self, OpKind, Recorder, RunContext};
use super::{parse_duration, parse_size, parse_size_range, LoadArgs};

/// Extra random bytes beyond the largest object, so objects start at different offsets.
const POOL_SLACK: u64 = 1 << 20;
/// Keys per ListObjectsV2 page.
const LIST_PAGE: usize = 1000;
/// Bound on pages of one listing.
const MAX_LIST_PAGES: usize = 1_000_000;
/// Bound on parts of one multipart upload (S3's limit).
const MAX_PARTS: u64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Benchmark {
    Put,
    Get,
    Mixed,
    List,
    Delete,
    Multipart,
}

impl Benchmark {
    fn name(self) -> &'static str {
        match self {
            Benchmark::Put => "put",
            Benchmark::Get => "get",
            Benchmark::Mixed => "mixed",
            Benchmark::List => "list",
            Benchmark::Delete => "delete",
            Benchmark::Multipart => "multipart",
        }
    }

    /// Whether objects are uploaded before the measured phase.
    fn prepares(self) -> bool {
        matches!(
            self,
            Benchmark::Get | Benchmark::Mixed | Benchmark::List | Benchmark::Delete
        )
    }
}

/// Size and checksum of a stored object, as this run uploaded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stored {
    size: u64,
    hash: u64,
}

/// What a successful operation did.
struct Outcome {
    kind: OpKind,
    bytes: u64,
    items: u64,
    verified: bool,
}

/// State shared by the workers of one run.
struct Shared {
    client: S3Client,
    bucket: String,
    key_prefix: String,
    sizes: (u64, u64),
    part_size: u64,
    prefixes: usize,
    /// List with delimiter `/` (keys under prefixes, unless --flat).
    delimiter: bool,
    pool: Bytes,
    mix: Vec<(OpKind, u32)>,
    /// Prepared objects, one slot per key index `0..slots.len()`.
    slots: Vec<tokio::sync::Mutex<Option<Stored>>>,
    /// Key indexes of new objects (put, multipart) start after the slots.
    next_key: AtomicU64,
    /// Keys created outside the slots, for cleanup.
    created: std::sync::Mutex<Vec<u64>>,
    /// Next slot a delete (or the preparation) takes.
    next_slot: AtomicU64,
    started_ops: AtomicU64,
    count_limit: Option<u64>,
    progress_ops: AtomicU64,
    progress_bytes: AtomicU64,
    progress_errors: AtomicU64,
}

impl Shared {
    fn key(&self, index: u64) -> String {
        if self.prefixes > 0 {
            let prefix = index % self.prefixes as u64;
            format!("{}p{prefix:04}/{index:010}", self.key_prefix)
        } else {
            format!("{}{index:010}", self.key_prefix)
        }
    }

    /// The body of object `index` at `size`: a slice of the pool starting at an offset
    /// derived from the index.
    fn body(&self, index: u64, size: u64) -> Bytes {
        let offset = index.wrapping_mul(7919) % POOL_SLACK;
        let start = usize::try_from(offset).unwrap_or(0);
        let end = usize::try_from(offset + size).unwrap_or(usize::MAX);
        if end > self.pool.len() {
            return self.pool.clone();
        }
        self.pool.slice(start..end)
    }

    fn pick_size(&self) -> u64 {
        let (low, high) = self.sizes;
        if low == high {
            low
        } else {
            rand::rng().random_range(low..=high)
        }
    }

    fn pick_mixed_op(&self) -> OpKind {
        let total: u32 = self.mix.iter().map(|(_, w)| w).sum();
        let mut draw = rand::rng().random_range(0..total.max(1));
        for (kind, weight) in &self.mix {
            if draw < *weight {
                return *kind;
            }
            draw -= weight;
        }
        OpKind::Get
    }

    async fn put(&self, index: u64, size: u64) -> Result<Stored, RequestError> {
        let body = self.body(index, size);
        let hash = xxhash_rust::xxh3::xxh3_64(&body);
        let path = object_path(&self.bucket, &self.key(index));
        self.client.call(Method::PUT, &path, "", body).await?;
        Ok(Stored { size, hash })
    }

    async fn get(&self, index: u64, stored: Stored) -> Result<u64, RequestError> {
        let path = object_path(&self.bucket, &self.key(index));
        let response = self
            .client
            .send(Method::GET, &path, "", Bytes::new())
            .await?;
        let (length, hash) = client::drain_and_hash(response, self.client.timeout()).await?;
        if length != stored.size {
            return Err(RequestError::Verify("size"));
        }
        if hash != stored.hash {
            return Err(RequestError::Verify("checksum"));
        }
        Ok(length)
    }

    async fn stat(&self, index: u64, stored: Stored) -> Result<(), RequestError> {
        let path = object_path(&self.bucket, &self.key(index));
        let (headers, _) = self
            .client
            .call(Method::HEAD, &path, "", Bytes::new())
            .await?;
        let length = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if length != Some(stored.size) {
            return Err(RequestError::Verify("HEAD size"));
        }
        Ok(())
    }

    async fn delete(&self, index: u64) -> Result<(), RequestError> {
        let path = object_path(&self.bucket, &self.key(index));
        self.client
            .call(Method::DELETE, &path, "", Bytes::new())
            .await
            .map(|_| ())
    }

    /// Lists every key of the run (with delimiter `/` when keys sit under prefixes) and
    /// checks the count. Returns the items listed.
    async fn list(&self) -> Result<u64, RequestError> {
        let path = format!("/{}", self.bucket);
        let mut token: Option<String> = None;
        let mut items = 0u64;
        let max_keys = LIST_PAGE.to_string();
        for _ in 0..MAX_LIST_PAGES {
            let mut pairs = vec![
                ("list-type", "2"),
                ("prefix", self.key_prefix.as_str()),
                ("max-keys", max_keys.as_str()),
            ];
            if self.delimiter {
                pairs.push(("delimiter", "/"));
            }
            if let Some(token) = &token {
                pairs.push(("continuation-token", token.as_str()));
            }
            let query = canonical_query(&pairs);
            let (_, xml) = self
                .client
                .call(Method::GET, &path, &query, Bytes::new())
                .await?;
            let keys = client::xml_values(&xml, "Key", LIST_PAGE * 2).len();
            let prefixes = xml.matches("<CommonPrefixes>").count();
            items += (keys + prefixes) as u64;
            if client::xml_value(&xml, "IsTruncated").as_deref() != Some("true") {
                let expected = if self.delimiter {
                    self.prefixes.min(self.slots.len()) as u64
                } else {
                    self.slots.len() as u64
                };
                if items != expected {
                    return Err(RequestError::Verify("listing count"));
                }
                return Ok(items);
            }
            token = Some(
                client::xml_value(&xml, "NextContinuationToken")
                    .ok_or(RequestError::Protocol("truncated listing without a token"))?,
            );
        }
        Err(RequestError::Protocol("listing never ended"))
    }

    /// One multipart upload of `size` bytes in `part_size` parts.
    async fn multipart(&self, index: u64, size: u64) -> Result<(), RequestError> {
        let path = object_path(&self.bucket, &self.key(index));
        let (_, xml) = self
            .client
            .call(Method::POST, &path, "uploads=", Bytes::new())
            .await?;
        let upload_id =
            client::xml_value(&xml, "UploadId").ok_or(RequestError::Protocol("no UploadId"))?;
        let body = self.body(index, size);
        let part_size = self.part_size.max(1);
        let parts = size.div_ceil(part_size).clamp(1, MAX_PARTS);
        let mut complete = String::from("<CompleteMultipartUpload>");
        for number in 1..=parts {
            let start = (number - 1) * part_size;
            let end = if number == parts {
                size
            } else {
                (start + part_size).min(size)
            };
            let (Ok(start), Ok(end)) = (usize::try_from(start), usize::try_from(end)) else {
                return Err(RequestError::Protocol("part offset"));
            };
            let number_text = number.to_string();
            let query = canonical_query(&[
                ("partNumber", number_text.as_str()),
                ("uploadId", upload_id.as_str()),
            ]);
            let (headers, _) = self
                .client
                .call(Method::PUT, &path, &query, body.slice(start..end))
                .await?;
            let etag = headers
                .get(http::header::ETAG)
                .and_then(|v| v.to_str().ok())
                .ok_or(RequestError::Protocol("part without ETag"))?;
            complete.push_str(&format!(
                "<Part><PartNumber>{number}</PartNumber><ETag>{etag}</ETag></Part>"
            ));
        }
        complete.push_str("</CompleteMultipartUpload>");
        let query = canonical_query(&[("uploadId", upload_id.as_str())]);
        let (_, answer) = self
            .client
            .call(Method::POST, &path, &query, Bytes::from(complete))
            .await?;
        // Complete may answer 200 with an error document (S3 does, after a long assembly).
        if let Some(code) = client::xml_value(&answer, "Code") {
            return Err(RequestError::Status { status: 200, code });
        }
        Ok(())
    }

    /// One operation of the measured phase; `Ok(None)` means "nothing left to do".
    async fn operate(&self, bench: Benchmark) -> Result<Option<Outcome>, RequestError> {
        let done = |kind, bytes, items, verified| {
            Ok(Some(Outcome {
                kind,
                bytes,
                items,
                verified,
            }))
        };
        match bench {
            Benchmark::Put | Benchmark::Multipart => {
                let index = self.next_key.fetch_add(1, Ordering::Relaxed);
                let size = self.pick_size();
                let kind = if bench == Benchmark::Put {
                    self.put(index, size).await?;
                    OpKind::Put
                } else {
                    self.multipart(index, size).await?;
                    OpKind::Multipart
                };
                self.remember(index);
                done(kind, size, 0, false)
            }
            Benchmark::Get => {
                let index = rand::rng().random_range(0..self.slots.len() as u64);
                let stored = self.slot_state(index).await;
                let Some(stored) = stored else {
                    return Err(RequestError::Protocol("object missing"));
                };
                let bytes = self.get(index, stored).await?;
                done(OpKind::Get, bytes, 0, true)
            }
            Benchmark::List => {
                let items = self.list().await?;
                done(OpKind::List, 0, items, false)
            }
            Benchmark::Delete => {
                let index = self.next_slot.fetch_add(1, Ordering::Relaxed);
                let Some(slot) = self.slots.get(usize::try_from(index).unwrap_or(usize::MAX))
                else {
                    return Ok(None);
                };
                let mut state = slot.lock().await;
                self.delete(index).await?;
                *state = None;
                done(OpKind::Delete, 0, 0, false)
            }
            Benchmark::Mixed => self.operate_mixed().await.map(Some),
        }
    }

    async fn operate_mixed(&self) -> Result<Outcome, RequestError> {
        let count = self.slots.len() as u64;
        let mut claimed = None;
        for _ in 0..count.saturating_mul(2).max(1) {
            let index = rand::rng().random_range(0..count);
            if let Some(guard) = self
                .slots
                .get(usize::try_from(index).unwrap_or(usize::MAX))
                .and_then(|slot| slot.try_lock().ok())
            {
                claimed = Some((index, guard));
                break;
            }
        }
        let (index, mut state) = match claimed {
            Some(found) => found,
            None => {
                let index = rand::rng().random_range(0..count);
                let slot = self
                    .slots
                    .get(usize::try_from(index).unwrap_or(usize::MAX))
                    .ok_or(RequestError::Protocol("slot"))?;
                (index, slot.lock().await)
            }
        };
        let mut kind = self.pick_mixed_op();
        if state.is_none() {
            kind = OpKind::Put;
        }
        let outcome = |kind, bytes, verified| Outcome {
            kind,
            bytes,
            items: 0,
            verified,
        };
        match (kind, *state) {
            (OpKind::Get, Some(stored)) => {
                let bytes = self.get(index, stored).await?;
                Ok(outcome(OpKind::Get, bytes, true))
            }
            (OpKind::Stat, Some(stored)) => {
                self.stat(index, stored).await?;
                Ok(outcome(OpKind::Stat, 0, false))
            }
            (OpKind::Delete, Some(_)) => {
                self.delete(index).await?;
                *state = None;
                Ok(outcome(OpKind::Delete, 0, false))
            }
            _ => {
                let size = self.pick_size();
                // A failed overwrite leaves the object in an unknown state: forget it.
                *state = None;
                let stored = self.put(index, size).await?;
                *state = Some(stored);
                Ok(outcome(OpKind::Put, size, false))
            }
        }
    }

    async fn slot_state(&self, index: u64) -> Option<Stored> {
        let slot = self.slots.get(usize::try_from(index).ok()?)?;
        *slot.lock().await
    }

    fn remember(&self, index: u64) {
        self.created
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(index);
    }
}

/// Parses `get=45,stat=30,put=15,delete=10`.
fn parse_mix(text: &str) -> Result<Vec<(OpKind, u32)>, String> {
    let mut mix = Vec::new();
    for item in text.split(',').filter(|s| !s.trim().is_empty()) {
        let (name, weight) = item
            .split_once('=')
            .ok_or_else(|| format!("--mix {item:?}: expected op=weight"))?;
        let kind = match name.trim() {
            "get" => OpKind::Get,
            "stat" | "head" => OpKind::Stat,
            "put" => OpKind::Put,
            "delete" => OpKind::Delete,
            other => return Err(format!("--mix: unknown operation {other:?}")),
        };
        let weight: u32 = weight
            .trim()
            .parse()
            .map_err(|_| format!("--mix {item:?}: weight must be a whole number"))?;
        mix.push((kind, weight));
    }
    if mix.iter().map(|(_, w)| u64::from(*w)).sum::<u64>() == 0 {
        return Err("--mix: the weights add up to 0".to_string());
    }
    Ok(mix)
}

/// Runs one benchmark end to end; `Ok(true)` when no operation failed.
pub async fn run(bench: Benchmark, args: LoadArgs) -> Result<bool, String> {
    let sizes = parse_size_range(&args.size)?;
    let duration = parse_duration(&args.duration)?;
    let part_size = parse_size(&args.part_size)?;
    let mix = parse_mix(&args.mix)?;
    if args.concurrency == 0 || args.concurrency > 10_000 {
        return Err("--concurrency must be between 1 and 10000".to_string());
    }
    let objects = args.objects.unwrap_or(match bench {
        Benchmark::List | Benchmark::Delete => 1000,
        _ => (args.concurrency * 4).max(16),
    });
    if bench.prepares() && objects == 0 {
        return Err("--objects must be at least 1".to_string());
    }
    let pool_len = usize::try_from(sizes.1 + POOL_SLACK)
        .map_err(|_| "object size too large for this machine".to_string())?;
    if args.existing && (sizes.0 != sizes.1 || !matches!(bench, Benchmark::Get | Benchmark::List)) {
        return Err("--existing needs get or list and a fixed --size".to_string());
    }
    if args.existing && args.seed.is_none() && bench == Benchmark::Get {
        return Err("get --existing needs the --seed the objects were uploaded with".to_string());
    }
    let mut pool = vec![0u8; pool_len];
    match args.seed {
        Some(seed) => rand::rngs::StdRng::seed_from_u64(seed).fill(pool.as_mut_slice()),
        None => rand::rng().fill(pool.as_mut_slice()),
    }
    let key_prefix = args
        .key_prefix
        .clone()
        .unwrap_or_else(|| format!("bench-{:08x}/", rand::rng().random::<u32>()));
    let client = S3Client::new(ClientConfig {
        endpoint: args.endpoint.clone(),
        access_key: args.access_key.clone(),
        secret_key: args.secret_key.clone(),
        region: args.region.clone(),
        timeout: Duration::from_secs(args.timeout_secs.max(1)),
        pool_size: args.concurrency,
        sse_s3: args.sse_s3,
    })?;
    let slot_count = if bench.prepares() { objects } else { 0 };
    let shared = Arc::new(Shared {
        client,
        bucket: args.bucket.clone(),
        key_prefix,
        sizes,
        part_size,
        prefixes: args.prefixes,
        delimiter: args.prefixes > 0 && !args.flat,
        pool: Bytes::from(pool),
        mix,
        slots: (0..slot_count)
            .map(|_| tokio::sync::Mutex::new(None))
            .collect(),
        next_key: AtomicU64::new(slot_count as u64),
        created: std::sync::Mutex::new(Vec::new()),
        next_slot: AtomicU64::new(0),
        started_ops: AtomicU64::new(0),
        count_limit: args.count,
        progress_ops: AtomicU64::new(0),
        progress_bytes: AtomicU64::new(0),
        progress_errors: AtomicU64::new(0),
    });

    let created_bucket = shared
        .client
        .ensure_bucket(&shared.bucket)
        .await
        .map_err(|e| format!("cannot create bucket {}: {}", shared.bucket, e.kind()))?;
    let mut outcome = Ok(true);
    if args.existing {
        for (index, slot) in shared.slots.iter().enumerate() {
            let size = sizes.0;
            let hash = xxhash_rust::xxh3::xxh3_64(&shared.body(index as u64, size));
            *slot.lock().await = Some(Stored { size, hash });
        }
    } else if bench.prepares() {
        if !args.quiet {
            eprintln!("preparing {slot_count} objects of {} …", args.size);
        }
        outcome = prepare(&shared, args.concurrency).await.map(|()| true);
    }
    if outcome.is_ok() {
        outcome = measure(&shared, bench, &args, duration, objects).await;
    }
    if !args.keep {
        cleanup(&shared, args.concurrency, created_bucket).await;
    }
    outcome
}

/// Uploads every slot's object; any failure aborts the run.
async fn prepare(shared: &Arc<Shared>, concurrency: usize) -> Result<(), String> {
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let shared = Arc::clone(shared);
        workers.spawn(async move {
            loop {
                let index = shared.next_slot.fetch_add(1, Ordering::Relaxed);
                let Some(slot) = shared
                    .slots
                    .get(usize::try_from(index).unwrap_or(usize::MAX))
                else {
                    return Ok(());
                };
                let size = shared.pick_size();
                let stored = shared
                    .put(index, size)
                    .await
                    .map_err(|e| format!("preparing object {}: {}", shared.key(index), e.kind()))?;
                *slot.lock().await = Some(stored);
            }
        });
    }
    let mut result = Ok(());
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(e),
            Err(e) => result = Err(format!("a preparing worker failed: {e}")),
        }
    }
    shared.next_slot.store(0, Ordering::Relaxed);
    result
}

/// The measured phase: workers until the deadline or the count, then the report.
async fn measure(
    shared: &Arc<Shared>,
    bench: Benchmark,
    args: &LoadArgs,
    duration: Duration,
    objects: usize,
) -> Result<bool, String> {
    let cpu_before = stats::process_cpu_seconds().unwrap_or(0.0);
    let started = Instant::now();
    let deadline = started + duration;
    let progress = (!args.quiet).then(|| tokio::spawn(progress_line(Arc::clone(shared), bench)));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let shared = Arc::clone(shared);
        workers.spawn(async move { work(&shared, bench, deadline).await });
    }
    let mut recorder = Recorder::default();
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok(worker) => recorder.merge(worker),
            Err(e) => recorder.failure(format!("worker panicked: {e}")),
        }
    }
    let elapsed = started.elapsed();
    let cpu = stats::process_cpu_seconds().unwrap_or(0.0) - cpu_before;
    if let Some(progress) = progress {
        progress.abort();
        eprintln!();
    }
    let mut report = recorder.report(
        elapsed,
        RunContext {
            benchmark: bench.name().to_string(),
            endpoint: args.endpoint.clone(),
            bucket: args.bucket.clone(),
            concurrency: args.concurrency,
            size: args.size.clone(),
            objects,
        },
    );
    report.client_cpu_s = cpu;
    report.client_cpu_share = cpu / elapsed.as_secs_f64().max(1e-9);
    if args.json {
        eprint!("{}", report.table());
        let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        println!("{json}");
    } else {
        print!("{}", report.table());
    }
    Ok(report.error_count == 0)
}

/// One worker of the measured phase.
async fn work(shared: &Shared, bench: Benchmark, deadline: Instant) -> Recorder {
    let mut recorder = Recorder::default();
    while Instant::now() < deadline {
        if let Some(limit) = shared.count_limit {
            if shared.started_ops.fetch_add(1, Ordering::Relaxed) >= limit {
                break;
            }
        }
        let started = Instant::now();
        let remaining = deadline.saturating_duration_since(started) + shared.client.timeout();
        let result = match tokio::time::timeout(remaining, shared.operate(bench)).await {
            Ok(result) => result,
            Err(_) => Err(RequestError::Timeout),
        };
        match result {
            Ok(None) => break,
            Ok(Some(outcome)) => {
                recorder.success(
                    outcome.kind,
                    started.elapsed(),
                    outcome.bytes,
                    outcome.items,
                );
                if outcome.verified {
                    recorder.verified += 1;
                }
                shared.progress_ops.fetch_add(1, Ordering::Relaxed);
                shared
                    .progress_bytes
                    .fetch_add(outcome.bytes, Ordering::Relaxed);
            }
            Err(error) => {
                recorder.failure(error.kind());
                shared.progress_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    recorder
}

/// Prints operations, MiB/s and errors once a second.
async fn progress_line(shared: Arc<Shared>, bench: Benchmark) {
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    let (mut last_ops, mut last_bytes) = (0u64, 0u64);
    loop {
        ticker.tick().await;
        let ops = shared.progress_ops.load(Ordering::Relaxed);
        let bytes = shared.progress_bytes.load(Ordering::Relaxed);
        let errors = shared.progress_errors.load(Ordering::Relaxed);
        eprintln!(
            "{} {:>5.1}s  {ops} ops ({} /s)  {:.1} MiB/s  {errors} errors",
            bench.name(),
            started.elapsed().as_secs_f64(),
            ops - last_ops,
            (bytes - last_bytes) as f64 / 1048576.0
        );
        (last_ops, last_bytes) = (ops, bytes);
    }
}

/// Deletes every object the run created, then the bucket if the run created it.
async fn cleanup(shared: &Arc<Shared>, concurrency: usize, created_bucket: bool) {
    let mut indexes: Vec<u64> = shared
        .created
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    for (index, slot) in shared.slots.iter().enumerate() {
        if slot.lock().await.is_some() {
            indexes.push(index as u64);
        }
    }
    let queue = Arc::new(std::sync::Mutex::new(indexes));
    let failures = Arc::new(AtomicU64::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.min(64) {
        let (shared, queue, failures) = (
            Arc::clone(shared),
            Arc::clone(&queue),
            Arc::clone(&failures),
        );
        workers.spawn(async move {
            loop {
                let next = queue
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .pop();
                let Some(index) = next else { return };
                if shared.delete(index).await.is_err() {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    while workers.join_next().await.is_some() {}
    let failed = failures.load(Ordering::Relaxed);
    if failed > 0 {
        eprintln!("cleanup: {failed} objects could not be deleted");
    }
    if created_bucket {
        let path = format!("/{}", shared.bucket);
        if let Err(e) = shared
            .client
            .call(Method::DELETE, &path, "", Bytes::new())
            .await
        {
            eprintln!(
                "cleanup: bucket {} not deleted: {}",
                shared.bucket,
                e.kind()
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn mixes_parse_and_reject_nonsense() {
        assert_eq!(
            parse_mix("get=3,head=1").unwrap(),
            vec![(OpKind::Get, 3), (OpKind::Stat, 1)]
        );
        assert!(parse_mix("get=0").is_err());
        assert!(parse_mix("list=1").is_err());
        assert!(parse_mix("get").is_err());
    }
}
