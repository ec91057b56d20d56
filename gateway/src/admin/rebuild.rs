//! Step 2 of reconciling (`reconcile`): turning unreferenced shard groups into objects again.
//!
//! A key's candidates (newest first) are grouped into assemblies: each single PUT
//! (`version = "null"`) is one, each multipart upload id is one (part number → its newest group;
//! older retries are set aside). The newest assembly is rebuilt unless the key's live version in
//! the restored catalog is newer (and its data present): a single PUT from its one group, a
//! multipart object from parts 1..n (groups found, merged with the part rows the catalog still
//! lists for that upload). Sizes come from the shard headers; ETags are computed as S3 does: MD5
//! of the data, and for multipart the MD5 of the parts' binary MD5s followed by `-n`. The commit
//! consumes the rebuilt groups' intents and, when the upload is still listed, the upload.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use md5::{Digest, Md5};
use metadata::model::{DataLayout, PartLayout, ShardedLayout, UploadRecord, VersionRecord};
use metadata::{BucketId, Catalog, MetaError, WriteCondition};
use storage::format::ShardHeader;

use super::reconcile::{meta, LeftData, RebuiltObject, Reconciled};
use super::restore::{read_group, single_part_version, RestoreError, Survey};
use crate::engine::healing::backup::CATALOG_BACKUP_BUCKET;
use crate::engine::{now_ms, Engine, StorageClass, MIN_PART_SIZE, NULL_VERSION};

/// One unreferenced, readable shard group.
#[derive(Debug, Clone)]
pub(super) struct Candidate {
    pub(super) time_ms: u64,
    pub(super) group: [u8; 16],
    pub(super) header: ShardHeader,
}

/// What step 2 needs to rebuild objects.
pub(super) struct Rebuild<'a> {
    pub(super) engine: &'a Arc<Engine>,
    pub(super) catalog: &'a Catalog,
    pub(super) survey: &'a Survey,
    pub(super) intents: &'a BTreeSet<[u8; 16]>,
    pub(super) gc_delay_ms: u64,
    pub(super) owner: &'a str,
    pub(super) region: &'a str,
}

/// One object that could be rebuilt from a key's candidates: a single PUT, or the parts of one
/// upload (part number → newest group).
enum Assembly {
    Single(Candidate),
    Multipart {
        upload_id: String,
        time_ms: u64,
        parts: BTreeMap<u32, Candidate>,
        duplicates: Vec<Candidate>,
    },
}

impl Assembly {
    fn time_ms(&self) -> u64 {
        match self {
            Assembly::Single(candidate) => candidate.time_ms,
            Assembly::Multipart { time_ms, .. } => *time_ms,
        }
    }

    fn version(&self) -> String {
        match self {
            Assembly::Single(_) => NULL_VERSION.to_string(),
            Assembly::Multipart { upload_id, .. } => upload_id.clone(),
        }
    }

    fn groups(&self) -> Vec<String> {
        match self {
            Assembly::Single(candidate) => vec![hex::encode(candidate.group)],
            Assembly::Multipart {
                parts, duplicates, ..
            } => parts
                .values()
                .chain(duplicates)
                .map(|c| hex::encode(c.group))
                .collect(),
        }
    }
}

/// One upload's candidates: the newest group time, the newest group per part number, and the
/// older retries.
type UploadParts = (u64, BTreeMap<u32, Candidate>, Vec<Candidate>);

/// Groups a key's candidates (newest first) into assemblies, newest first.
fn assemble(candidates: Vec<Candidate>) -> Vec<Assembly> {
    let mut assemblies = Vec::new();
    let mut uploads: BTreeMap<String, UploadParts> = BTreeMap::new();
    for candidate in candidates {
        let reference = &candidate.header.back_reference;
        if reference.version == NULL_VERSION {
            assemblies.push(Assembly::Single(candidate));
            continue;
        }
        let entry = uploads.entry(reference.version.clone()).or_default();
        entry.0 = entry.0.max(candidate.time_ms);
        // Candidates come newest first: a second group for a part is an older retry.
        match entry.1.entry(reference.part_number) {
            std::collections::btree_map::Entry::Occupied(_) => entry.2.push(candidate),
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(candidate);
            }
        }
    }
    for (upload_id, (time_ms, parts, duplicates)) in uploads {
        assemblies.push(Assembly::Multipart {
            upload_id,
            time_ms,
            parts,
            duplicates,
        });
    }
    assemblies.sort_by_key(|a| std::cmp::Reverse(a.time_ms()));
    assemblies
}

impl Rebuild<'_> {
    /// Rebuilds the newest assembly of `key` if it is newer than the key's live version (or
    /// that version's data is gone: `live_is_dead`). Returns whether an object was rebuilt.
    pub(super) async fn key(
        &self,
        bucket: &str,
        key: &str,
        candidates: Vec<Candidate>,
        live_is_dead: bool,
        out: &mut Reconciled,
    ) -> Result<bool, RestoreError> {
        let mut assemblies = assemble(candidates).into_iter();
        let Some(newest) = assemblies.next() else {
            return Ok(false);
        };
        for older in assemblies {
            out.superseded.push(LeftData {
                bucket: bucket.to_string(),
                key: key.to_string(),
                version: older.version(),
                groups: older.groups(),
                reason: "a newer write of the same key was found on the nodes".to_string(),
            });
        }
        let record = self.bucket(bucket, out).await?;
        let bid = record.id;
        let lookup = key.to_string();
        let live = meta(self.catalog, move |c| c.get_object(&bid, &lookup)).await?;
        let newer_live = live.filter(|live| !live_is_dead && live.mtime_ms >= newest.time_ms());
        if let Some(live) = newer_live {
            out.superseded.push(LeftData {
                bucket: bucket.to_string(),
                key: key.to_string(),
                version: newest.version(),
                groups: newest.groups(),
                reason: format!(
                    "older than the key's version in the backup (written {} ms before it)",
                    live.mtime_ms - newest.time_ms()
                ),
            });
            return Ok(false);
        }
        match newest {
            Assembly::Single(candidate) => self.single(bucket, key, bid, candidate, out).await,
            Assembly::Multipart {
                upload_id,
                time_ms,
                parts,
                duplicates,
            } => {
                for duplicate in &duplicates {
                    out.superseded.push(LeftData {
                        bucket: bucket.to_string(),
                        key: key.to_string(),
                        version: upload_id.clone(),
                        groups: vec![hex::encode(duplicate.group)],
                        reason: format!(
                            "an older attempt at part {}",
                            duplicate.header.back_reference.part_number
                        ),
                    });
                }
                self.multipart(bucket, key, bid, &upload_id, time_ms, parts, out)
                    .await
            }
        }
    }

    /// The bucket `name`, recreated when the backup predates it.
    async fn bucket(
        &self,
        name: &str,
        out: &mut Reconciled,
    ) -> Result<metadata::BucketRecord, RestoreError> {
        let lookup = name.to_string();
        if let Some(record) = meta(self.catalog, move |c| c.get_bucket(&lookup)).await? {
            return Ok(record);
        }
        let (create, owner, region) = (
            name.to_string(),
            self.owner.to_string(),
            self.region.to_string(),
        );
        let record = meta(self.catalog, move |c| {
            c.create_bucket(&create, &owner, &region, now_ms())
        })
        .await?;
        if name != CATALOG_BACKUP_BUCKET {
            out.buckets_recreated.push(name.to_string());
        }
        Ok(record)
    }

    /// The layout of `candidate` where its shards are, and the MD5 of its data.
    async fn read(&self, candidate: &Candidate) -> Result<(ShardedLayout, [u8; 16]), RestoreError> {
        let found = self
            .survey
            .get(&candidate.group)
            .cloned()
            .unwrap_or_default();
        let layout = found.layout(&candidate.header);
        let mut hasher = Md5::new();
        read_group(self.engine, &layout, |chunk| hasher.update(chunk), None).await?;
        Ok((layout, hasher.finalize().into()))
    }

    async fn single(
        &self,
        bucket: &str,
        key: &str,
        bid: BucketId,
        candidate: Candidate,
        out: &mut Reconciled,
    ) -> Result<bool, RestoreError> {
        let (layout, md5) = self.read(&candidate).await?;
        let etag = hex::encode(md5);
        let size = layout.length;
        let version = single_part_version(
            &layout,
            etag.clone(),
            candidate.time_ms,
            StorageClass::Standard.name().to_string(),
        );
        let intents: Vec<[u8; 16]> = self
            .intents
            .get(&candidate.group)
            .copied()
            .into_iter()
            .collect();
        self.commit(bid, key, version, intents, None, &[layout])
            .await?;
        out.rebuilt.push(RebuiltObject {
            bucket: bucket.to_string(),
            key: key.to_string(),
            size,
            etag,
            parts: 1,
            mtime_ms: candidate.time_ms,
            upload_id: None,
            warnings: Vec::new(),
        });
        Ok(true)
    }

    #[allow(clippy::too_many_arguments)]
    async fn multipart(
        &self,
        bucket: &str,
        key: &str,
        bid: BucketId,
        upload_id: &str,
        time_ms: u64,
        found: BTreeMap<u32, Candidate>,
        out: &mut Reconciled,
    ) -> Result<bool, RestoreError> {
        let (lookup_key, lookup_id) = (key.to_string(), upload_id.to_string());
        let upload: Option<UploadRecord> = meta(self.catalog, move |c| {
            c.get_upload(&bid, &lookup_key, &lookup_id)
        })
        .await?;
        // Parts the restored catalog lists for the upload (uploaded before the backup): the
        // newest attempt of each part number.
        let mut listed: BTreeMap<u32, metadata::PartRecord> = BTreeMap::new();
        if let Some(upload) = upload.clone() {
            for part in meta(self.catalog, move |c| c.list_parts(&upload)).await? {
                let newer = listed
                    .get(&part.part_number)
                    .is_none_or(|held| held.mtime_ms <= part.mtime_ms);
                if newer {
                    listed.insert(part.part_number, part);
                }
            }
        }
        let numbers: BTreeSet<u32> = found.keys().chain(listed.keys()).copied().collect();
        let count = numbers.len();
        let contiguous = numbers
            .iter()
            .copied()
            .eq(1..=u32::try_from(count).unwrap_or(u32::MAX));
        if !contiguous {
            out.incomplete_uploads.push(LeftData {
                bucket: bucket.to_string(),
                key: key.to_string(),
                version: upload_id.to_string(),
                groups: found.values().map(|c| hex::encode(c.group)).collect(),
                reason: format!(
                    "parts {numbers:?} found: not 1..n, so the object cannot be assembled"
                ),
            });
            return Ok(false);
        }
        let mut parts = Vec::with_capacity(count);
        let mut md5s = Vec::with_capacity(count * 16);
        let mut layouts = Vec::new();
        let mut intents = Vec::new();
        for number in numbers {
            let shard_part = found.get(&number);
            let listed_part = listed.get(&number);
            let use_shards = match (shard_part, listed_part) {
                (Some(c), Some(p)) => c.time_ms > p.mtime_ms,
                (Some(_), None) => true,
                _ => false,
            };
            if let (true, Some(candidate)) = (use_shards, shard_part) {
                let (layout, md5) = self.read(candidate).await?;
                md5s.extend_from_slice(&md5);
                if self.intents.contains(&candidate.group) {
                    intents.push(candidate.group);
                }
                layouts.push(layout.clone());
                parts.push(PartLayout {
                    part_number: number,
                    size: layout.length,
                    etag: hex::encode(md5),
                    checksum: None,
                    data: DataLayout::Sharded(layout),
                });
            } else if let Some(part) = listed_part {
                let md5 = hex::decode(&part.etag).map_err(|e| {
                    MetaError::Corrupt(format!("part {number} ETag {:?}: {e}", part.etag))
                })?;
                md5s.extend_from_slice(&md5);
                parts.push(PartLayout {
                    part_number: number,
                    size: part.size,
                    etag: part.etag.clone(),
                    checksum: part.checksum.clone(),
                    data: part.data.clone(),
                });
            }
        }
        let etag = format!("{}-{count}", hex::encode(Md5::digest(&md5s)));
        let size = parts.iter().map(|p| p.size).sum();
        let mut warnings = Vec::new();
        if upload.is_some() {
            warnings.push(
                "the upload was in progress at backup time: its completion is not recorded on the shards, it is assumed"
                    .to_string(),
            );
        }
        if parts.last().is_some_and(|p| p.size >= MIN_PART_SIZE) {
            warnings.push(
                "the last part found is a full-size part: a final part of at most inline_threshold bytes would have lived only in the lost catalog; if there was one, this object lacks it"
                    .to_string(),
            );
        }
        let version = VersionRecord {
            seq: 0,
            version_id: NULL_VERSION.to_string(),
            size,
            etag: etag.clone(),
            mtime_ms: time_ms,
            storage_class: upload
                .as_ref()
                .map(|u| u.storage_class.clone())
                .unwrap_or_else(|| StorageClass::Standard.name().to_string()),
            content_type: upload.as_ref().and_then(|u| u.content_type.clone()),
            headers: upload
                .as_ref()
                .map(|u| u.headers.clone())
                .unwrap_or_default(),
            user_metadata: upload
                .as_ref()
                .map(|u| u.user_metadata.clone())
                .unwrap_or_default(),
            checksum: None,
            delete_marker: false,
            parts,
            // A multipart upload's data key survives in its upload row; a single PUT's wrapped
            // key lived only in the lost version row (its data stays unreadable).
            encryption: upload.as_ref().and_then(|u| u.encryption.clone()),
            access: upload.as_ref().and_then(|u| u.access.clone()),
        };
        self.commit(bid, key, version, intents, upload, &layouts)
            .await?;
        out.rebuilt.push(RebuiltObject {
            bucket: bucket.to_string(),
            key: key.to_string(),
            size,
            etag,
            parts: count,
            mtime_ms: time_ms,
            upload_id: Some(upload_id.to_string()),
            warnings,
        });
        Ok(true)
    }

    /// Publishes a rebuilt version (consuming its groups' intents and the upload, if any) and
    /// queues repair for every rebuilt group short of shards.
    async fn commit(
        &self,
        bid: BucketId,
        key: &str,
        version: VersionRecord,
        intents: Vec<[u8; 16]>,
        upload: Option<UploadRecord>,
        layouts: &[ShardedLayout],
    ) -> Result<(), RestoreError> {
        let (key, gc_delay_ms) = (key.to_string(), self.gc_delay_ms);
        meta(self.catalog, move |c| {
            c.commit_version(
                &bid,
                &key,
                version,
                WriteCondition::None,
                &intents,
                upload.as_ref(),
                now_ms(),
                gc_delay_ms,
            )
        })
        .await?;
        queue_missing_shards(self.catalog, layouts.iter()).await
    }
}

/// Queues a repair for every group of `layouts` short of shards.
pub(super) async fn queue_missing_shards<'a>(
    catalog: &Catalog,
    layouts: impl Iterator<Item = &'a ShardedLayout>,
) -> Result<(), RestoreError> {
    for layout in layouts.filter(|l| !l.missing.is_empty()) {
        let (group, missing) = (layout.group, layout.missing.clone());
        meta(catalog, move |c| {
            c.queue_repair(
                group,
                "shards missing at catalog restore",
                &missing,
                now_ms(),
            )
        })
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use storage::format::{BackReference, CodecId, FrameChecksum};
    use storage::id::ShardGroupId;

    use super::*;

    fn candidate(time_ms: u64, version: &str, part_number: u32) -> Candidate {
        let mut group = [0u8; 16];
        group[..8].copy_from_slice(&(time_ms << 16).to_be_bytes());
        group[15] = part_number as u8;
        Candidate {
            time_ms,
            group,
            header: ShardHeader {
                codec: CodecId::ReedSolomonGf8,
                data_shards: 4,
                parity_shards: 2,
                index: 0,
                block_size: 65536,
                part_length: 100_000,
                group: ShardGroupId(group),
                checksum: FrameChecksum::Xxh3_64,
                back_reference: BackReference {
                    bucket: "b".into(),
                    key: "k".into(),
                    version: version.into(),
                    part_number,
                },
            },
        }
    }

    #[test]
    fn a_keys_writes_become_assemblies_newest_first_with_older_part_retries_set_aside() {
        // Newest first, as `reconcile` sorts them.
        let candidates = vec![
            candidate(500, "null", 1),
            candidate(400, "upload-a", 2),
            candidate(300, "upload-a", 1),
            candidate(250, "upload-a", 2),
            candidate(100, "null", 1),
        ];
        let assemblies = assemble(candidates);
        let times: Vec<u64> = assemblies.iter().map(Assembly::time_ms).collect();
        assert_eq!(times, vec![500, 400, 100]);
        let Some(Assembly::Multipart {
            upload_id,
            parts,
            duplicates,
            ..
        }) = assemblies.get(1)
        else {
            panic!("the upload is the second newest write");
        };
        assert_eq!(upload_id, "upload-a");
        assert_eq!(parts.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(parts.get(&2).map(|c| c.time_ms), Some(400));
        assert_eq!(
            duplicates.iter().map(|c| c.time_ms).collect::<Vec<_>>(),
            vec![250]
        );
    }
}
