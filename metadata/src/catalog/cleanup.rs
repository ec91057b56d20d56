//! Cleanup jobs: removing a number of rows that grows with the data (the part rows of a
//! completed or aborted upload, the GC items of a replaced or deleted many-part version, the
//! leftover rows of a deleted bucket) in bounded steps, so that no transaction outgrows the
//! store's limits (etcd: 128 operations, 1.5 MiB).
//!
//! The visible decision (CompleteMultipartUpload, AbortMultipartUpload, DeleteObject,
//! DeleteBucket) is one small transaction that also writes a [`CleanupJob`] row under
//! `system` `i/cleanup/…`:
//!
//! | job | row key |
//! |---|---|
//! | bucket | `i/cleanup/b/ ‖ bid` |
//! | upload | `i/cleanup/u/ ‖ useq` |
//! | version | `i/cleanup/v/ ‖ versions row key` |
//!
//! [`Catalog::cleanup_step`] then runs one transaction on the first job: it reads the job row
//! (checked) and rewrites or removes it, handling at most [`step_items`] rows, so two workers
//! never run one job at once, a crash between steps loses nothing (the next step resumes from
//! the rows that are left or from the job's cursor), and a repeated step is harmless.
//!
//! What readers see at every intermediate state:
//! - part rows of a finished upload whose job has not removed them yet are not live: their
//!   upload row is gone, and placement rows owned by a part resolve through the
//!   completed-upload record to the version (see `repair::load_owner`), never to the part row;
//! - a version row waiting for its `Version` job is not live (the head no longer names it);
//!   its placement rows stay until GC has deleted each shard, so the orphan scan keeps them;
//! - a deleted bucket's leftover rows are unreachable (its id row is gone; a re-created bucket
//!   gets a new id).

use std::collections::HashSet;

use super::{queue_gc, referenced_groups, Catalog, MAX_PAGES};
use crate::keys;
use crate::kv::{Limits, Table};
use crate::model::{self, BucketId, CleanupJob, PartRecord, UploadRecord, VersionRecord};
use crate::txn::Txn;
use crate::MetaError;

/// `system` key prefix of every cleanup job.
const JOB_PREFIX: &[u8] = b"i/cleanup/";
/// Most sharded layouts a replaced or deleted version may have for the replacing transaction
/// to queue their GC itself; a version with more leaves a [`CleanupJob::Version`]. Small
/// objects (one layout) keep a single transaction per write.
pub(super) const INLINE_GC_LAYOUTS: usize = 16;
/// Most rows one step handles on a store without operation limits (RocksDB, memory).
const STEP_ROWS: usize = 1000;
/// Operations a step keeps in reserve for its own checks and the job row.
const STEP_RESERVE: usize = 8;
/// Stages of a [`CleanupJob::Bucket`].
const STAGE_VERSIONS: u8 = 0;
const STAGE_COMPLETED: u8 = 1;
const STAGE_UPLOADS: u8 = 2;

/// `system` row key of the job removing the part rows of upload `useq`.
pub(super) fn upload_job_key(useq: u64) -> Vec<u8> {
    let mut out = b"i/cleanup/u/".to_vec();
    out.extend_from_slice(&useq.to_be_bytes());
    out
}

/// `system` row key of the job retiring the `versions` row `version_row`.
pub(super) fn version_job_key(version_row: &[u8]) -> Vec<u8> {
    let mut out = b"i/cleanup/v/".to_vec();
    out.extend_from_slice(version_row);
    out
}

/// `system` row key of the job removing the leftover rows of deleted bucket `bid`.
pub(super) fn bucket_job_key(bid: &BucketId) -> Vec<u8> {
    let mut out = b"i/cleanup/b/".to_vec();
    out.extend_from_slice(bid);
    out
}

/// Rows one step may handle when each costs `per_item` operations: what fits `limits` beside
/// the step's own reserve, at least 1, at most [`STEP_ROWS`].
fn step_items(limits: Limits, per_item: usize) -> usize {
    (limits.max_ops.saturating_sub(STEP_RESERVE) / per_item.max(1)).clamp(1, STEP_ROWS)
}

/// Retires the `versions` row of `old` (seq `seq` of `key`), no longer the live version: queues
/// its shard groups that `kept` does not hold to GC, due `due_ms` — in this transaction when it
/// has at most [`INLINE_GC_LAYOUTS`] of them (and removes the row), otherwise through a
/// [`CleanupJob::Version`] that keeps the row until the job is done.
#[allow(clippy::too_many_arguments)]
pub(super) fn retire_version(
    txn: &mut Txn<'_>,
    bucket: &BucketId,
    key: &str,
    old: Option<&VersionRecord>,
    seq: u64,
    kept: &HashSet<[u8; 16]>,
    due_ms: u64,
    reason: &str,
) -> Result<(), MetaError> {
    let row = keys::version_key(bucket, key.as_bytes(), seq);
    let layouts: Vec<_> = old
        .map(|v| v.parts.iter().filter_map(|p| p.data.sharded()).collect())
        .unwrap_or_default();
    if layouts.len() <= INLINE_GC_LAYOUTS {
        txn.delete(Table::Versions, row);
        for layout in layouts {
            if !kept.contains(&layout.group) {
                queue_gc(txn, layout, due_ms, reason)?;
            }
        }
        return Ok(());
    }
    let job = CleanupJob::Version {
        bucket: *bucket,
        key: key.to_string(),
        seq,
        kept: layouts
            .iter()
            .map(|l| l.group)
            .filter(|g| kept.contains(g))
            .collect(),
        next: 0,
        due_ms,
        reason: reason.to_string(),
    };
    txn.put_record(Table::System, version_job_key(&row), &job)
}

impl Catalog {
    /// Number of pending cleanup jobs, counting at most `limit`.
    pub fn cleanup_jobs(&self, limit: usize) -> Result<usize, MetaError> {
        let end = keys::successor(JOB_PREFIX);
        Ok(self
            .kv()
            .scan(Table::System, JOB_PREFIX, &end, limit)?
            .len())
    }

    /// Runs one bounded step of the first pending cleanup job (one transaction within the
    /// store's limits); `Ok(false)` when no job is pending. Idempotent and resumable: any
    /// number of workers may call it, at any time, and stop between any two calls.
    pub fn cleanup_step(&self) -> Result<bool, MetaError> {
        let end = keys::successor(JOB_PREFIX);
        let Some((job_key, _)) = self
            .kv()
            .scan(Table::System, JOB_PREFIX, &end, 1)?
            .into_iter()
            .next()
        else {
            return Ok(false);
        };
        self.transact(|txn| step(txn, &job_key))?;
        Ok(true)
    }

    /// Runs [`Catalog::cleanup_step`] until no job is pending or `max_steps` steps ran;
    /// returns the steps run.
    pub fn run_cleanup(&self, max_steps: usize) -> Result<usize, MetaError> {
        for done in 0..max_steps.min(MAX_PAGES) {
            if !self.cleanup_step()? {
                return Ok(done);
            }
        }
        Ok(max_steps.min(MAX_PAGES))
    }
}

/// One step of the job at `job_key` (nothing if another worker finished it).
fn step(txn: &mut Txn<'_>, job_key: &[u8]) -> Result<(), MetaError> {
    let Some(job) = txn.get_record::<CleanupJob>(Table::System, job_key)? else {
        return Ok(());
    };
    match job {
        CleanupJob::Upload {
            bucket,
            ref key,
            useq,
            version,
            due_ms,
            ref reason,
        } => {
            let n = step_items(txn.limits(), 2);
            // The groups the version holds (a replaced version waiting for its own job still
            // holds them: that job collects them). A version already gone had its groups
            // queued when it went: queueing them again is harmless (GC keeps live shards).
            let held: HashSet<[u8; 16]> = match version {
                Some(seq) => txn
                    .get_record::<VersionRecord>(
                        Table::Versions,
                        &keys::version_key(&bucket, key.as_bytes(), seq),
                    )?
                    .map(|v| referenced_groups(&v).into_iter().collect())
                    .unwrap_or_default(),
                None => HashSet::new(),
            };
            let prefix = keys::parts_prefix(useq);
            let rows = txn.scan(Table::Parts, &prefix, &keys::successor(&prefix), n)?;
            for (row_key, value) in &rows {
                let part: PartRecord = model::decode(value)?;
                if let Some(layout) = part.data.sharded() {
                    if !held.contains(&layout.group) {
                        queue_gc(txn, layout, due_ms, reason)?;
                    }
                }
                txn.delete(Table::Parts, row_key.clone());
            }
            finish_or_keep(txn, job_key, &job, rows.len() < n)
        }
        CleanupJob::Version {
            bucket,
            ref key,
            seq,
            ref kept,
            next,
            due_ms,
            ref reason,
        } => {
            let row = keys::version_key(&bucket, key.as_bytes(), seq);
            let Some(version) = txn.get_record::<VersionRecord>(Table::Versions, &row)? else {
                txn.delete(Table::System, job_key.to_vec());
                return Ok(());
            };
            let layouts: Vec<_> = version
                .parts
                .iter()
                .filter_map(|p| p.data.sharded())
                .collect();
            let start = usize::try_from(next)
                .unwrap_or(usize::MAX)
                .min(layouts.len());
            let end = start
                .saturating_add(step_items(txn.limits(), 1))
                .min(layouts.len());
            for layout in layouts.get(start..end).unwrap_or_default() {
                if !kept.contains(&layout.group) {
                    queue_gc(txn, layout, due_ms, reason)?;
                }
            }
            if end >= layouts.len() {
                txn.delete(Table::Versions, row);
                txn.delete(Table::System, job_key.to_vec());
                return Ok(());
            }
            let mut job = job.clone();
            if let CleanupJob::Version { next, .. } = &mut job {
                *next = u32::try_from(end)
                    .map_err(|_| MetaError::Corrupt("version part count".to_string()))?;
            }
            txn.put_record(Table::System, job_key.to_vec(), &job)
        }
        CleanupJob::Bucket {
            bucket,
            stage,
            ref after,
            due_ms,
        } => bucket_step(txn, job_key, &job, bucket, stage, after, due_ms),
    }
}

/// Removes the job row when `done`, else rewrites it unchanged (so a concurrent step on the
/// same job conflicts on it).
fn finish_or_keep(
    txn: &mut Txn<'_>,
    job_key: &[u8],
    job: &CleanupJob,
    done: bool,
) -> Result<(), MetaError> {
    if done {
        txn.delete(Table::System, job_key.to_vec());
        Ok(())
    } else {
        txn.put_record(Table::System, job_key.to_vec(), job)
    }
}

/// One step of a [`CleanupJob::Bucket`].
fn bucket_step(
    txn: &mut Txn<'_>,
    job_key: &[u8],
    job: &CleanupJob,
    bucket: BucketId,
    stage: u8,
    after: &[u8],
    due_ms: u64,
) -> Result<(), MetaError> {
    let bucket_end = keys::successor(&bucket);
    let (next_stage, next_after) = match stage {
        STAGE_VERSIONS => {
            let n = step_items(txn.limits(), 2);
            let start = if after.is_empty() {
                bucket.to_vec()
            } else {
                keys::next_key(after)
            };
            let rows = txn.scan(Table::Versions, &start, &bucket_end, n)?;
            for (row_key, _) in &rows {
                // A row with a pending version job is that job's to remove.
                if txn.get(Table::System, &version_job_key(row_key))?.is_none() {
                    txn.delete(Table::Versions, row_key.clone());
                }
            }
            match rows.last() {
                Some((last, _)) if rows.len() >= n => (STAGE_VERSIONS, last.clone()),
                _ => (STAGE_COMPLETED, Vec::new()),
            }
        }
        STAGE_COMPLETED => {
            let n = step_items(txn.limits(), 1);
            let prefix = keys::system_completed_upload_prefix(&bucket);
            let rows = txn.scan(Table::System, &prefix, &keys::successor(&prefix), n)?;
            for (row_key, _) in &rows {
                txn.delete(Table::System, row_key.clone());
            }
            if rows.len() >= n {
                (STAGE_COMPLETED, Vec::new())
            } else {
                (STAGE_UPLOADS, Vec::new())
            }
        }
        STAGE_UPLOADS => {
            let n = step_items(txn.limits(), 2);
            let rows = txn.scan(Table::Uploads, &bucket, &bucket_end, n)?;
            for (row_key, value) in &rows {
                let upload: UploadRecord = model::decode(value)?;
                txn.delete(Table::Uploads, row_key.clone());
                let abort = CleanupJob::Upload {
                    bucket,
                    key: upload.key,
                    useq: upload.useq,
                    version: None,
                    due_ms,
                    reason: "bucket deleted".to_string(),
                };
                txn.put_record(Table::System, upload_job_key(upload.useq), &abort)?;
            }
            if rows.len() < n {
                txn.delete(Table::System, job_key.to_vec());
                return Ok(());
            }
            (STAGE_UPLOADS, Vec::new())
        }
        other => {
            return Err(MetaError::Corrupt(format!(
                "bucket cleanup job stage {other}"
            )))
        }
    };
    if next_stage == stage && next_after.as_slice() == after {
        // Progress is in the rows removed; rewrite the job so concurrent steps conflict.
        return finish_or_keep(txn, job_key, job, false);
    }
    let next = CleanupJob::Bucket {
        bucket,
        stage: next_stage,
        after: next_after,
        due_ms,
    };
    txn.put_record(Table::System, job_key.to_vec(), &next)
}
