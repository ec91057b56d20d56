//! What a scrubber reports: [`ScrubReport`] (one corrupt shard) and [`ScrubStatus`] (a store's
//! progress and pending reports, as `ShardStore::scrub_status` answers). A leaf of the crate's
//! graph: the trait in `store`, the local store and the ledger all name these types, and none
//! of them needs the scrubber itself.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::StorageError;
use crate::id::ShardId;

/// One corrupt shard found by the scrubber, until a gateway acknowledges it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrubReport {
    /// Strictly increasing per store; acknowledge with `ack_scrub_reports(up_to)`.
    pub id: u64,
    /// The shard file name `<group hex>.<index>` (parse with [`ScrubReport::shard_id`]).
    pub shard: String,
    /// When it was found (ms since the Unix epoch).
    pub found_ms: u64,
    /// What failed.
    pub reason: String,
    /// File name under `quarantine/`, if the file could be moved there.
    pub quarantine: Option<String>,
}

impl ScrubReport {
    /// The shard, parsed strictly (a report from the wire is untrusted input).
    pub fn shard_id(&self) -> Result<ShardId, StorageError> {
        ShardId::parse_file_name(&self.shard)
    }
}

/// A store's scrub progress and pending reports (`GET /v1/scrub` on a storage node).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrubStatus {
    pub enabled: bool,
    pub bytes_per_sec: u64,
    /// A pass is in progress.
    pub running: bool,
    pub pass_started_ms: Option<u64>,
    pub pass_files_checked: u64,
    pub pass_bytes_checked: u64,
    pub pass_corrupt_found: u64,
    /// Files that could not be checked in this pass (transient errors; retried next pass).
    pub pass_errors: u64,
    pub passes_completed: u64,
    pub last_pass_completed_ms: Option<u64>,
    pub last_pass_duration_ms: Option<u64>,
    pub last_pass_files_checked: u64,
    pub last_pass_bytes_checked: u64,
    pub last_pass_corrupt_found: u64,
    pub total_files_checked: u64,
    pub total_bytes_checked: u64,
    pub total_corrupt_found: u64,
    /// Findings not listed because the report list was full.
    pub reports_dropped: u64,
    /// Unacknowledged findings, oldest first (at most `scrub::MAX_REPORTS`).
    pub reports: Vec<ScrubReport>,
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
