//! Background-work settings checked into the engine's and the scrubber's own types: repair,
//! GC and scans ([`HealingConfig`]) and scrubbing ([`ScrubConfig`], shared with the
//! storage-node flags).

use std::time::Duration;

use storage::scrub::ScrubConfig;

use super::table::Settings;
use super::{invalid, ConfigError};
use crate::engine::HealingConfig;

/// Builds and validates a scrub configuration (shared by the TOML file and the storage-node
/// flags). `bytes_per_sec` 0 means unlimited; otherwise at least 64 KiB/s.
pub fn scrub_config(
    enabled: bool,
    bytes_per_sec: Option<u64>,
    file_pause_ms: Option<u64>,
    interval_secs: Option<u64>,
) -> Result<ScrubConfig, ConfigError> {
    let defaults = ScrubConfig::default();
    let bytes_per_sec = bytes_per_sec.unwrap_or(defaults.bytes_per_sec);
    if bytes_per_sec != 0 && bytes_per_sec < 64 * 1024 {
        return Err(invalid(
            "scrub_bytes_per_sec",
            "must be 0 (unlimited) or at least 65536",
        ));
    }
    let file_pause = match file_pause_ms {
        Some(ms) if ms > 60_000 => {
            return Err(invalid("scrub_file_pause_ms", "must be at most 60000"))
        }
        Some(ms) => Duration::from_millis(ms),
        None => defaults.file_pause,
    };
    let pass_interval = match interval_secs {
        Some(secs) if secs > 366 * 24 * 3600 => {
            return Err(invalid("scrub_interval_secs", "must be at most a year"))
        }
        Some(secs) => Duration::from_secs(secs),
        None => defaults.pass_interval,
    };
    Ok(ScrubConfig {
        enabled,
        bytes_per_sec,
        file_pause,
        pass_interval,
    })
}

/// Repair and GC settings from the resolved table, checked.
pub(crate) fn healing_config(s: &Settings) -> Result<HealingConfig, ConfigError> {
    if !(1..=64).contains(&s.repair_parallelism) {
        return Err(invalid("repair_parallelism", "must be between 1 and 64"));
    }
    if !(50..=60_000).contains(&s.repair_interval_ms) {
        return Err(invalid(
            "repair_interval_ms",
            "must be between 50 and 60000",
        ));
    }
    at_least(
        "node_lost_after_secs",
        s.node_lost_after_secs,
        1,
        "must be at least 1",
    )?;
    at_least(
        "stale_intent_secs",
        s.stale_intent_secs,
        60,
        "must be at least 60 (a slow upload must not lose its shards)",
    )?;
    at_least(
        "upload_expiry_secs",
        s.upload_expiry_secs,
        1,
        "must be at least 1",
    )?;
    at_least(
        "scan_interval_secs",
        s.scan_interval_secs,
        1,
        "must be at least 1",
    )?;
    at_least(
        "read_lease_secs",
        s.read_lease_secs,
        1,
        "must be at least 1",
    )?;
    at_least(
        "catalog_history_secs",
        s.catalog_history_secs,
        10,
        "must be at least 10 (a catalog transaction must outlive its reads)",
    )?;
    if s.catalog_backups_kept == 0 {
        return Err(invalid(
            "catalog_backups_kept",
            "must be at least 1 (set catalog_backup_interval_secs = 0 to turn backups off)",
        ));
    }
    Ok(HealingConfig {
        repair_bytes_per_sec: s.repair_bytes_per_sec,
        repair_busy_bytes_per_sec: s.repair_busy_bytes_per_sec,
        repair_parallelism: s.repair_parallelism,
        repair_interval: Duration::from_millis(s.repair_interval_ms),
        node_lost_after: Duration::from_secs(s.node_lost_after_secs),
        stale_intent_after: Duration::from_secs(s.stale_intent_secs),
        upload_expiry: Duration::from_secs(s.upload_expiry_secs),
        scan_interval: Duration::from_secs(s.scan_interval_secs),
        read_lease_max: Duration::from_secs(s.read_lease_secs),
        catalog_backup_interval: Duration::from_secs(s.catalog_backup_interval_secs),
        catalog_backups_kept: s.catalog_backups_kept,
        catalog_history: Duration::from_secs(s.catalog_history_secs),
    })
}

fn at_least(field: &'static str, value: u64, min: u64, message: &str) -> Result<(), ConfigError> {
    if value < min {
        return Err(invalid(field, message));
    }
    Ok(())
}
