//! Reconciling a catalog restored from a backup with the shards on the nodes (the last step
//! of `restore-catalog`, see `restore`).
//!
//! 1. Every live version in the catalog is checked against the survey. A sharded part with at
//!    least k shards where its layout says is fine; one whose shards moved (a repair after the
//!    backup) gets its layout rewritten from where they are; one with fewer than k shards
//!    anywhere is gone — deleted or overwritten after the backup, or lost — and its version is
//!    removed and reported (`removed`), never silently dropped, unless step 2 rebuilds a newer
//!    write of the same key (an overwrite after the backup), which replaces it.
//! 2. (`rebuild`) Every shard group with at least k shards that no catalog row references (no
//!    placement row on any node holding it) was written after the backup. Its back-reference
//!    (bucket, key, version, part) says what it was: a single PUT (`version = "null"`) becomes
//!    a version of that key; multipart parts (`version` = upload id) are assembled when parts 1..n are all
//!    there (parts the catalog still lists for that upload included), else reported. The
//!    newest candidate per key wins (shard group ids are UUIDv7: their time orders writes);
//!    one older than the key's live version in the catalog is left to the orphan scan. Each
//!    rebuilt object gets its size from the shard headers and its ETag computed as S3 does
//!    (MD5 of the data; for multipart, MD5 of the parts' MD5s and `-n`), and is reported
//!    (`rebuilt`) with the metadata that could not be recovered ([`LOST_METADATA`]).
//!
//! Intents in the restored catalog whose group is rebuilt are consumed by the same commit (else
//! the gateway would collect a finished write as stale); the others are collected by the gateway
//! as usual. Groups with fewer than k shards that nothing references are counted
//! (`fragments`) and left to the orphan scan.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use metadata::model::{DataLayout, ShardedLayout, NO_NODE};
use metadata::{BucketId, Catalog, MetaError, WriteCondition};
use serde::Serialize;

use super::rebuild::{queue_missing_shards, Candidate, Rebuild};
use super::restore::{GroupSurvey, RestoreError, Survey};
use crate::config::ServerConfig;
use crate::engine::healing::backup::CATALOG_BACKUP_BUCKET;
use crate::engine::{now_ms, Engine};

/// What an object rebuilt from its shards does not get back (it lived only in the catalog).
pub const LOST_METADATA: &[&str] = &[
    "Content-Type (served as binary/octet-stream)",
    "user metadata (x-amz-meta-*)",
    "stored headers (Content-Encoding, Content-Disposition, Content-Language, Cache-Control, Expires)",
    "object tags",
    "checksums (x-amz-checksum-*), whole-object and per part",
    "Last-Modified: set to the time the data was written (from the shard group id), not the commit time",
];

/// What the restore cannot tell from the shards at all.
pub const NOT_RECOVERABLE: &[&str] = &[
    "objects and parts of at most inline_threshold bytes written after the backup lived only in the catalog: they are lost and not listed here",
    "objects deleted after the backup whose shards GC had not removed yet (within gc_delay) come back as of the backup",
    "buckets created after the backup are recreated (with the restoring credentials as owner) only if an object of theirs is rebuilt; empty ones are lost",
    "multipart uploads still in progress after the backup, with every part uploaded after it, are assembled as objects if parts 1..n are all present",
];

/// An object rebuilt from its shards' back-references.
#[derive(Debug, Clone, Serialize)]
pub struct RebuiltObject {
    pub bucket: String,
    pub key: String,
    pub size: u64,
    pub etag: String,
    pub parts: usize,
    pub mtime_ms: u64,
    /// The multipart upload it was assembled from.
    pub upload_id: Option<String>,
    pub warnings: Vec<String>,
}

/// A version of the restored catalog whose data is gone from the nodes.
#[derive(Debug, Clone, Serialize)]
pub struct RemovedObject {
    pub bucket: String,
    pub key: String,
    pub size: u64,
    pub etag: String,
    pub mtime_ms: u64,
    pub reason: String,
}

/// Data on the nodes that was not turned into an object, and why.
#[derive(Debug, Clone, Serialize)]
pub struct LeftData {
    pub bucket: String,
    pub key: String,
    /// Upload id for multipart data, "null" for a single PUT.
    pub version: String,
    pub groups: Vec<String>,
    pub reason: String,
}

/// A version whose layout was rewritten because its shards moved.
#[derive(Debug, Clone, Serialize)]
pub struct RelocatedObject {
    pub bucket: String,
    pub key: String,
}

/// The outcome of reconciling.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Reconciled {
    /// Versions restored from the backup with their data present (unchanged).
    pub versions_kept: usize,
    pub rebuilt: Vec<RebuiltObject>,
    pub removed: Vec<RemovedObject>,
    pub relocated: Vec<RelocatedObject>,
    /// Candidates older than the key's live version, or than a newer candidate.
    pub superseded: Vec<LeftData>,
    /// Multipart data whose parts 1..n are not all there.
    pub incomplete_uploads: Vec<LeftData>,
    pub buckets_recreated: Vec<String>,
    /// Unreferenced groups with fewer than k shards (left to the orphan scan).
    pub fragments: usize,
    /// Groups whose header could not be read on any node.
    pub unreadable_groups: usize,
    /// Objects that could not be rebuilt or removed, with the error.
    pub failures: Vec<String>,
    pub metadata_lost_for_rebuilt_objects: Vec<String>,
    pub not_recoverable: Vec<String>,
}

/// Runs `f` on the catalog off the reactor.
pub(super) async fn meta<T, F>(catalog: &Catalog, f: F) -> Result<T, RestoreError>
where
    T: Send + 'static,
    F: FnOnce(&Catalog) -> Result<T, MetaError> + Send + 'static,
{
    let catalog = catalog.clone();
    tokio::task::spawn_blocking(move || f(&catalog))
        .await
        .map_err(|e| crate::engine::EngineError::internal("catalog task", e))?
        .map_err(RestoreError::from)
}

/// Milliseconds encoded in a UUIDv7 shard group id: when its write started.
fn group_time_ms(group: &[u8; 16]) -> u64 {
    let mut bytes = [0u8; 8];
    bytes[2..].copy_from_slice(&group[..6]);
    u64::from_be_bytes(bytes)
}

/// Reconciles `catalog` (just restored) with `survey` (see the module documentation).
pub async fn reconcile(
    engine: &Arc<Engine>,
    catalog: &Catalog,
    survey: &Survey,
    config: &ServerConfig,
    owner: &str,
) -> Result<Reconciled, RestoreError> {
    let mut out = Reconciled {
        metadata_lost_for_rebuilt_objects: LOST_METADATA.iter().map(|s| s.to_string()).collect(),
        not_recoverable: NOT_RECOVERABLE.iter().map(|s| s.to_string()).collect(),
        ..Reconciled::default()
    };
    let gc_delay_ms = config.gc_delay.as_millis() as u64;
    let candidates = unreferenced_groups(catalog, survey, &mut out).await?;
    let mut dead = check_versions(catalog, survey, &candidates, gc_delay_ms, &mut out).await?;
    let intents: BTreeSet<[u8; 16]> = meta(catalog, |c| {
        c.stale_intents(u64::MAX, &|_| true, 10_000_000)
    })
    .await?
    .into_iter()
    .map(|(group, _)| group)
    .collect();
    let rebuild = Rebuild {
        engine,
        catalog,
        survey,
        intents: &intents,
        gc_delay_ms,
        owner,
        region: &config.region,
    };
    for ((bucket, key), mut found) in candidates {
        found.sort_by_key(|c| std::cmp::Reverse(c.time_ms));
        let pending = dead.remove(&(bucket.clone(), key.clone()));
        let rebuilt = match rebuild
            .key(&bucket, &key, found, pending.is_some(), &mut out)
            .await
        {
            Ok(rebuilt) => rebuilt,
            Err(e) => {
                out.failures.push(format!("{bucket}/{key}: {e}"));
                false
            }
        };
        match pending {
            Some(_) if rebuilt => {
                if let Some(object) = out.rebuilt.last_mut() {
                    object.warnings.push(
                        "replaces the version in the backup, whose data is gone (overwritten after the backup)"
                            .to_string(),
                    );
                }
            }
            Some(removed) => remove_dead(catalog, removed, gc_delay_ms, &mut out).await?,
            None => {}
        }
    }
    Ok(out)
}

/// A version of the backup whose data is gone, to be removed unless a newer write of its key
/// is rebuilt from the shards.
struct DeadVersion {
    bid: BucketId,
    report: RemovedObject,
}

/// Removes a dead version (its remaining shards go to GC) and reports it.
async fn remove_dead(
    catalog: &Catalog,
    dead: DeadVersion,
    gc_delay_ms: u64,
    out: &mut Reconciled,
) -> Result<(), RestoreError> {
    let (bid, key) = (dead.bid, dead.report.key.clone());
    meta(catalog, move |c| {
        c.delete_object(&bid, &key, now_ms(), gc_delay_ms)
    })
    .await?;
    out.removed.push(dead.report);
    Ok(())
}

/// Step 1: every live version against the survey. Dead versions of keys without candidates are
/// removed now; those of keys with candidates are returned, to be removed only if no candidate
/// replaces them.
async fn check_versions(
    catalog: &Catalog,
    survey: &Survey,
    candidates: &BTreeMap<(String, String), Vec<Candidate>>,
    gc_delay_ms: u64,
    out: &mut Reconciled,
) -> Result<BTreeMap<(String, String), DeadVersion>, RestoreError> {
    let mut pending = BTreeMap::new();
    for bucket in meta(catalog, |c| c.list_buckets()).await? {
        let bid = bucket.id;
        let keys = meta(catalog, move |c| c.keys_under(&bid, "")).await?;
        for key in keys {
            let lookup = key.clone();
            let Some(version) = meta(catalog, move |c| c.get_object(&bid, &lookup)).await? else {
                continue;
            };
            let mut relocated = version.clone();
            let mut moved = false;
            let mut gone = None;
            for part in &mut relocated.parts {
                let DataLayout::Sharded(layout) = &mut part.data else {
                    continue;
                };
                let found = survey.get(&layout.group);
                if found.is_some_and(|found| {
                    shards_in_place(layout, found) >= usize::from(layout.data_shards)
                }) {
                    continue;
                }
                match found {
                    Some(found) if found.distinct_indexes() >= usize::from(layout.data_shards) => {
                        if let Some(header) = &found.header {
                            *layout = found.layout(header);
                            moved = true;
                            continue;
                        }
                        gone = Some(part.part_number);
                    }
                    _ => gone = Some(part.part_number),
                }
                break;
            }
            if let Some(part_number) = gone {
                let what = if bucket.name == CATALOG_BACKUP_BUCKET {
                    "catalog backup"
                } else {
                    "object"
                };
                let dead = DeadVersion {
                    bid,
                    report: RemovedObject {
                        bucket: bucket.name.clone(),
                        key: key.clone(),
                        size: version.size,
                        etag: version.etag.clone(),
                        mtime_ms: version.mtime_ms,
                        reason: format!(
                            "{what} in the backup whose data (part {part_number}) has fewer than k shards on the nodes: deleted or overwritten after the backup, or lost"
                        ),
                    },
                };
                let name = (bucket.name.clone(), key);
                if candidates.contains_key(&name) {
                    pending.insert(name, dead);
                } else {
                    remove_dead(catalog, dead, gc_delay_ms, out).await?;
                }
            } else if moved {
                let (commit_key, record) = (key.clone(), relocated.clone());
                meta(catalog, move |c| {
                    c.commit_version(
                        &bid,
                        &commit_key,
                        record,
                        WriteCondition::None,
                        &[],
                        None,
                        now_ms(),
                        gc_delay_ms,
                    )
                })
                .await?;
                queue_missing_shards(
                    catalog,
                    relocated.parts.iter().filter_map(|p| p.data.sharded()),
                )
                .await?;
                out.relocated.push(RelocatedObject {
                    bucket: bucket.name.clone(),
                    key,
                });
            } else {
                out.versions_kept += 1;
            }
        }
    }
    Ok(pending)
}

/// Shards of `layout` present where the layout says.
fn shards_in_place(layout: &ShardedLayout, found: &GroupSurvey) -> usize {
    layout
        .nodes
        .iter()
        .enumerate()
        .filter(|(index, node)| {
            let Ok(index) = u8::try_from(*index) else {
                return false;
            };
            let node = **node;
            node != NO_NODE && !layout.missing.contains(&index) && found.has(index, node)
        })
        .count()
}

/// Step 2's input: unreferenced groups with at least k shards, by (bucket, key).
async fn unreferenced_groups(
    catalog: &Catalog,
    survey: &Survey,
    out: &mut Reconciled,
) -> Result<BTreeMap<(String, String), Vec<Candidate>>, RestoreError> {
    let located: Vec<([u8; 16], Vec<u32>)> = survey
        .iter()
        .map(|(group, found)| (*group, found.shards.iter().map(|(_, node)| *node).collect()))
        .collect();
    let unreferenced: Vec<[u8; 16]> = meta(catalog, move |c| {
        let mut unreferenced = Vec::new();
        for (group, nodes) in located {
            let mut referenced = false;
            for node in nodes {
                if c.placement(node, &group)?.is_some() {
                    referenced = true;
                    break;
                }
            }
            if !referenced {
                unreferenced.push(group);
            }
        }
        Ok(unreferenced)
    })
    .await?;
    let mut candidates: BTreeMap<(String, String), Vec<Candidate>> = BTreeMap::new();
    for group in unreferenced {
        let Some(found) = survey.get(&group) else {
            continue;
        };
        let Some(header) = &found.header else {
            out.unreadable_groups += 1;
            continue;
        };
        if found.distinct_indexes() < usize::from(header.data_shards) {
            out.fragments += 1;
            continue;
        }
        let reference = &header.back_reference;
        candidates
            .entry((reference.bucket.clone(), reference.key.clone()))
            .or_default()
            .push(Candidate {
                time_ms: group_time_ms(&group),
                group,
                header: header.clone(),
            });
    }
    Ok(candidates)
}

/// The reconciliation as readable lines.
pub fn render(reconciled: &Reconciled) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Versions restored from the backup with their data present: {}",
        reconciled.versions_kept
    );
    let (backups, objects): (Vec<&RebuiltObject>, Vec<&RebuiltObject>) = reconciled
        .rebuilt
        .iter()
        .partition(|o| o.bucket == CATALOG_BACKUP_BUCKET);
    if !backups.is_empty() {
        let _ = writeln!(
            out,
            "Catalog backups made after the restored one, registered again: {}",
            backups.len()
        );
    }
    let _ = writeln!(
        out,
        "Objects rebuilt from shards written after the backup: {}",
        objects.len()
    );
    let objects_empty = objects.is_empty();
    for object in objects {
        let _ = writeln!(
            out,
            "  {}/{} ({} bytes, ETag {}, {} part(s))",
            object.bucket, object.key, object.size, object.etag, object.parts
        );
        for warning in &object.warnings {
            let _ = writeln!(out, "    warning: {warning}");
        }
    }
    let _ = writeln!(
        out,
        "Versions removed because their data is gone: {}",
        reconciled.removed.len()
    );
    for object in &reconciled.removed {
        let _ = writeln!(out, "  {}/{}: {}", object.bucket, object.key, object.reason);
    }
    for (title, list) in [
        (
            "Data left to the orphan scan (superseded)",
            &reconciled.superseded,
        ),
        (
            "Incomplete multipart data (not assembled)",
            &reconciled.incomplete_uploads,
        ),
    ] {
        if !list.is_empty() {
            let _ = writeln!(out, "{title}: {}", list.len());
            for left in list {
                let _ = writeln!(
                    out,
                    "  {}/{} ({}): {}",
                    left.bucket, left.key, left.version, left.reason
                );
            }
        }
    }
    for object in &reconciled.relocated {
        let _ = writeln!(
            out,
            "Layout rewritten (shards moved after the backup): {}/{}",
            object.bucket, object.key
        );
    }
    for bucket in &reconciled.buckets_recreated {
        let _ = writeln!(out, "Bucket recreated (created after the backup): {bucket}");
    }
    if reconciled.fragments > 0 || reconciled.unreadable_groups > 0 {
        let _ = writeln!(
            out,
            "Unreferenced shard groups left to the orphan scan: {} with fewer than k shards, {} without a readable header",
            reconciled.fragments, reconciled.unreadable_groups
        );
    }
    for failure in &reconciled.failures {
        let _ = writeln!(out, "FAILED: {failure}");
    }
    if !objects_empty {
        let _ = writeln!(out, "Rebuilt objects do not get back:");
        for lost in &reconciled.metadata_lost_for_rebuilt_objects {
            let _ = writeln!(out, "  - {lost}");
        }
    }
    let _ = writeln!(out, "Never recoverable from the shards:");
    for note in &reconciled.not_recoverable {
        let _ = writeln!(out, "  - {note}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_v7_group_ids_tell_when_their_write_started() {
        let group = uuid::Uuid::now_v7().into_bytes();
        let now = now_ms();
        assert!(group_time_ms(&group) <= now && now - group_time_ms(&group) < 60_000);
    }
}
