//! `ScrubLedger`: the durable memory of one store's scrubber — totals, the last completed pass
//! and the list of corrupt shards found but not yet acknowledged by a gateway — plus the
//! in-memory progress of the pass that is running.
//!
//! File: `<store>/scrub/ledger.json`, `{"format":1, …}` (frozen by a golden test). It is
//! rewritten whole (tmp file, fsync when the store fsyncs, rename, fsync of the directory) after
//! every new report, every acknowledgement and every completed pass; the running pass's
//! counters are not persisted (a restart starts a new pass). A ledger that does not parse is set
//! aside as `ledger.json.bad-<ms>` and a fresh one started: scrub bookkeeping never stops a
//! store from opening. If the store's directory was removed while running, nothing is written
//! (the directory is not resurrected); the state stays in memory.
//!
//! Invariants: report ids increase strictly and are never reused (the next id is persisted);
//! the report list holds at most [`MAX_REPORTS`] entries, oldest first — when it is full a new
//! finding is counted in `reports_dropped` instead (its file is still quarantined, so the
//! evidence is kept and the shard reads as missing, which read-time repair also catches);
//! writers of the file are serialised so an older state never overwrites a newer one.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::report::{now_ms, ScrubReport, ScrubStatus};
use crate::error::StorageError;

/// Most unacknowledged reports a store keeps.
pub const MAX_REPORTS: usize = 1000;
/// Version tag of the ledger file and of the status answer on the wire.
pub const LEDGER_FORMAT: u32 = 1;
const LEDGER_FILE: &str = "ledger.json";

/// What survives a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LedgerFile {
    pub format: u32,
    pub next_report_id: u64,
    pub passes_completed: u64,
    pub last_pass_completed_ms: Option<u64>,
    pub last_pass_duration_ms: Option<u64>,
    pub last_pass_files_checked: u64,
    pub last_pass_bytes_checked: u64,
    pub last_pass_corrupt_found: u64,
    pub total_files_checked: u64,
    pub total_bytes_checked: u64,
    pub total_corrupt_found: u64,
    pub reports_dropped: u64,
    pub reports: Vec<ScrubReport>,
}

/// Progress of the running pass (memory only).
#[derive(Debug, Clone, Default)]
struct CurrentPass {
    started_ms: u64,
    files_checked: u64,
    bytes_checked: u64,
    corrupt_found: u64,
    errors: u64,
}

#[derive(Debug, Default)]
struct State {
    file: LedgerFile,
    current: Option<CurrentPass>,
    enabled: bool,
    bytes_per_sec: u64,
}

/// Shared between a `LocalShardStore` (which answers status and acknowledgements) and its
/// scrubber task (which records progress and findings).
#[derive(Debug)]
pub struct ScrubLedger {
    dir: PathBuf,
    fsync: bool,
    state: Mutex<State>,
    /// Held across "serialise + write" so files are written in state order.
    persist: Mutex<()>,
}

impl ScrubLedger {
    /// Loads `<root>/scrub/ledger.json` (or starts empty). Synchronous, like `LocalShardStore::open`.
    pub fn open(root: &Path, fsync: bool) -> Result<ScrubLedger, StorageError> {
        let dir = root.join("scrub");
        fs::create_dir_all(&dir)?;
        let path = dir.join(LEDGER_FILE);
        let file = match fs::read(&path) {
            Ok(bytes) => match decode_ledger(&bytes) {
                Ok(file) => file,
                Err(err) => {
                    let aside = dir.join(format!("{LEDGER_FILE}.bad-{}", now_ms()));
                    tracing::warn!(path = %path.display(), error = %err, aside = %aside.display(), "scrub ledger does not parse: starting a new one");
                    let _ = fs::rename(&path, &aside);
                    fresh_file()
                }
            },
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => fresh_file(),
            Err(err) => return Err(err.into()),
        };
        Ok(ScrubLedger {
            dir,
            fsync,
            state: Mutex::new(State {
                file,
                ..State::default()
            }),
            persist: Mutex::new(()),
        })
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        // A poisoned lock only means another thread panicked mid-update of plain counters.
        let mut guard = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }

    /// Records how the scrubber is configured (shown in the status).
    pub(crate) fn set_config(&self, enabled: bool, bytes_per_sec: u64) {
        self.with_state(|state| {
            state.enabled = enabled;
            state.bytes_per_sec = bytes_per_sec;
        });
    }

    /// Everything a status answer shows, reports included (oldest first).
    pub fn status(&self) -> ScrubStatus {
        self.with_state(|state| {
            let current = state.current.clone();
            let file = &state.file;
            ScrubStatus {
                enabled: state.enabled,
                bytes_per_sec: state.bytes_per_sec,
                running: current.is_some(),
                pass_started_ms: current.as_ref().map(|pass| pass.started_ms),
                pass_files_checked: current.as_ref().map_or(0, |pass| pass.files_checked),
                pass_bytes_checked: current.as_ref().map_or(0, |pass| pass.bytes_checked),
                pass_corrupt_found: current.as_ref().map_or(0, |pass| pass.corrupt_found),
                pass_errors: current.as_ref().map_or(0, |pass| pass.errors),
                passes_completed: file.passes_completed,
                last_pass_completed_ms: file.last_pass_completed_ms,
                last_pass_duration_ms: file.last_pass_duration_ms,
                last_pass_files_checked: file.last_pass_files_checked,
                last_pass_bytes_checked: file.last_pass_bytes_checked,
                last_pass_corrupt_found: file.last_pass_corrupt_found,
                total_files_checked: file
                    .total_files_checked
                    .saturating_add(current.as_ref().map_or(0, |pass| pass.files_checked)),
                total_bytes_checked: file
                    .total_bytes_checked
                    .saturating_add(current.as_ref().map_or(0, |pass| pass.bytes_checked)),
                total_corrupt_found: file.total_corrupt_found,
                reports_dropped: file.reports_dropped,
                reports: file.reports.clone(),
            }
        })
    }

    /// When the last full pass ended, if one ever did.
    pub(crate) fn last_pass_completed_ms(&self) -> Option<u64> {
        self.with_state(|state| state.file.last_pass_completed_ms)
    }

    pub(crate) fn begin_pass(&self) {
        self.with_state(|state| {
            state.current = Some(CurrentPass {
                started_ms: now_ms(),
                ..CurrentPass::default()
            });
        });
    }

    /// Bytes verified in the running pass.
    pub(crate) fn add_bytes(&self, bytes: u64) {
        self.with_state(|state| {
            if let Some(pass) = state.current.as_mut() {
                pass.bytes_checked = pass.bytes_checked.saturating_add(bytes);
            }
        });
    }

    /// One more file finished (healthy or not) in the running pass.
    pub(crate) fn add_file(&self) {
        self.with_state(|state| {
            if let Some(pass) = state.current.as_mut() {
                pass.files_checked = pass.files_checked.saturating_add(1);
            }
        });
    }

    /// A file could not be checked this time (a transient I/O error): retried next pass.
    pub(crate) fn add_error(&self) {
        self.with_state(|state| {
            if let Some(pass) = state.current.as_mut() {
                pass.errors = pass.errors.saturating_add(1);
            }
        });
    }

    /// Ends the running pass. `completed` is false when it was interrupted (shutdown, listing
    /// failure): its counters still go to the totals, but it is not a full pass.
    pub(crate) fn end_pass(&self, completed: bool) -> Result<(), StorageError> {
        let ended = self.with_state(|state| {
            let pass = state.current.take()?;
            let file = &mut state.file;
            file.total_files_checked = file.total_files_checked.saturating_add(pass.files_checked);
            file.total_bytes_checked = file.total_bytes_checked.saturating_add(pass.bytes_checked);
            if completed {
                let now = now_ms();
                file.passes_completed = file.passes_completed.saturating_add(1);
                file.last_pass_completed_ms = Some(now);
                file.last_pass_duration_ms = Some(now.saturating_sub(pass.started_ms));
                file.last_pass_files_checked = pass.files_checked;
                file.last_pass_bytes_checked = pass.bytes_checked;
                file.last_pass_corrupt_found = pass.corrupt_found;
            }
            Some(())
        });
        match ended {
            Some(()) => self.persist(),
            None => Ok(()),
        }
    }

    /// Records a corrupt shard and makes the record durable. Returns the report id, or `None`
    /// when the list was full (counted in `reports_dropped`).
    pub(crate) fn add_report(
        &self,
        shard: String,
        reason: String,
        quarantine: Option<String>,
    ) -> Result<Option<u64>, StorageError> {
        let id = self.with_state(|state| {
            if let Some(pass) = state.current.as_mut() {
                pass.corrupt_found = pass.corrupt_found.saturating_add(1);
            }
            let file = &mut state.file;
            file.total_corrupt_found = file.total_corrupt_found.saturating_add(1);
            if file.reports.len() >= MAX_REPORTS {
                file.reports_dropped = file.reports_dropped.saturating_add(1);
                return None;
            }
            let id = file.next_report_id.max(1);
            file.next_report_id = id.saturating_add(1);
            file.reports.push(ScrubReport {
                id,
                shard,
                found_ms: now_ms(),
                reason,
                quarantine,
            });
            Some(id)
        });
        self.persist()?;
        Ok(id)
    }

    /// Forgets every report whose id is at most `up_to` (idempotent). Returns how many went.
    pub fn acknowledge(&self, up_to: u64) -> Result<usize, StorageError> {
        let removed = self.with_state(|state| {
            let before = state.file.reports.len();
            state.file.reports.retain(|report| report.id > up_to);
            before - state.file.reports.len()
        });
        if removed > 0 {
            self.persist()?;
        }
        Ok(removed)
    }

    /// Writes the current state: tmp file, fsync, rename, fsync of the directory.
    fn persist(&self) -> Result<(), StorageError> {
        let _writer = self
            .persist
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let bytes = self.with_state(|state| encode_ledger(&state.file))?;
        // Never resurrect a store directory that was removed under a running store.
        let root_exists = self.dir.parent().is_some_and(Path::is_dir);
        if !root_exists {
            return Err(StorageError::NotFound);
        }
        if !self.dir.is_dir() {
            fs::create_dir(&self.dir)?;
        }
        let tmp = self.dir.join(format!("{LEDGER_FILE}.tmp"));
        let mut file = File::create(&tmp)?;
        file.write_all(&bytes)?;
        if self.fsync {
            file.sync_all()?;
        }
        drop(file);
        fs::rename(&tmp, self.dir.join(LEDGER_FILE))?;
        if self.fsync {
            File::open(&self.dir)?.sync_all()?;
        }
        Ok(())
    }
}

fn fresh_file() -> LedgerFile {
    LedgerFile {
        format: LEDGER_FORMAT,
        next_report_id: 1,
        ..LedgerFile::default()
    }
}

pub(crate) fn encode_ledger(file: &LedgerFile) -> Result<Vec<u8>, StorageError> {
    let mut file = file.clone();
    file.format = LEDGER_FORMAT;
    serde_json::to_vec(&file)
        .map_err(|err| StorageError::Io(format!("cannot encode the scrub ledger: {err}")))
}

pub(crate) fn decode_ledger(bytes: &[u8]) -> Result<LedgerFile, StorageError> {
    let file: LedgerFile = serde_json::from_slice(bytes)
        .map_err(|err| StorageError::Corrupt(format!("scrub ledger: {err}")))?;
    if file.format != LEDGER_FORMAT {
        return Err(StorageError::Corrupt(format!(
            "scrub ledger format {} (this build reads {LEDGER_FORMAT})",
            file.format
        )));
    }
    if file.reports.len() > MAX_REPORTS {
        return Err(StorageError::Corrupt(
            "scrub ledger holds too many reports".into(),
        ));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Freezes the ledger file, format 1.
    #[test]
    fn ledger_file_is_frozen() {
        let file = LedgerFile {
            format: 1,
            next_report_id: 3,
            passes_completed: 2,
            last_pass_completed_ms: Some(1_700_000_000_000),
            last_pass_duration_ms: Some(5000),
            last_pass_files_checked: 10,
            last_pass_bytes_checked: 4096,
            last_pass_corrupt_found: 1,
            total_files_checked: 20,
            total_bytes_checked: 8192,
            total_corrupt_found: 2,
            reports_dropped: 0,
            reports: vec![ScrubReport {
                id: 2,
                shard: "0123456789abcdef0123456789abcdef.4".into(),
                found_ms: 1_700_000_000_001,
                reason: "frame 3 failed its checksum".into(),
                quarantine: Some("0123456789abcdef0123456789abcdef.4.1700000000001".into()),
            }],
        };
        let golden = concat!(
            r#"{"format":1,"next_report_id":3,"passes_completed":2,"#,
            r#""last_pass_completed_ms":1700000000000,"last_pass_duration_ms":5000,"#,
            r#""last_pass_files_checked":10,"last_pass_bytes_checked":4096,"#,
            r#""last_pass_corrupt_found":1,"total_files_checked":20,"total_bytes_checked":8192,"#,
            r#""total_corrupt_found":2,"reports_dropped":0,"reports":[{"id":2,"#,
            r#""shard":"0123456789abcdef0123456789abcdef.4","found_ms":1700000000001,"#,
            r#""reason":"frame 3 failed its checksum","#,
            r#""quarantine":"0123456789abcdef0123456789abcdef.4.1700000000001"}]}"#
        );
        assert_eq!(
            String::from_utf8(encode_ledger(&file).unwrap()).unwrap(),
            golden
        );
        assert_eq!(decode_ledger(golden.as_bytes()).unwrap(), file);
        assert!(decode_ledger(golden.replace("\"format\":1", "\"format\":2").as_bytes()).is_err());
        assert!(decode_ledger(b"{").is_err());
    }

    #[test]
    fn reports_are_durable_bounded_and_acknowledged_by_id() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = ScrubLedger::open(dir.path(), false).unwrap();
        let first = ledger.add_report("a.1".into(), "bad".into(), None).unwrap();
        let second = ledger.add_report("b.2".into(), "bad".into(), None).unwrap();
        assert_eq!((first, second), (Some(1), Some(2)));
        drop(ledger);

        let ledger = ScrubLedger::open(dir.path(), false).unwrap();
        assert_eq!(ledger.status().reports.len(), 2, "reports survive a reopen");
        assert_eq!(ledger.acknowledge(1).unwrap(), 1);
        assert_eq!(
            ledger.acknowledge(1).unwrap(),
            0,
            "acknowledging is idempotent"
        );
        let third = ledger.add_report("c.3".into(), "bad".into(), None).unwrap();
        assert_eq!(third, Some(3), "ids are never reused");
        assert_eq!(ledger.acknowledge(u64::MAX).unwrap(), 2);

        for i in 0..MAX_REPORTS + 5 {
            ledger
                .add_report(format!("x.{i}"), "bad".into(), None)
                .unwrap();
        }
        let status = ledger.status();
        assert_eq!(status.reports.len(), MAX_REPORTS);
        assert_eq!(status.reports_dropped, 5);
        assert_eq!(status.total_corrupt_found, 3 + MAX_REPORTS as u64 + 5);
    }

    #[test]
    fn a_damaged_ledger_is_set_aside_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("scrub")).unwrap();
        fs::write(dir.path().join("scrub").join(LEDGER_FILE), b"not json").unwrap();
        let ledger = ScrubLedger::open(dir.path(), false).unwrap();
        assert!(ledger.status().reports.is_empty());
        let aside = fs::read_dir(dir.path().join("scrub"))
            .unwrap()
            .filter(|entry| {
                entry
                    .as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".bad-")
            })
            .count();
        assert_eq!(aside, 1);
    }
}
