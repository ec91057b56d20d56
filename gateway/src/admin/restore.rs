//! `strata admin restore-catalog --config FILE [--force]`: rebuilds a lost RocksDB catalog from
//! the storage nodes, offline (the gateway must be stopped: this process opens the catalog
//! directory itself).
//!
//! Steps: (1) list every node's shards and read one header per shard group (the survey; every
//! node must answer, or nothing is changed — a node that is merely unreachable must not make
//! its objects look deleted); (2) pick the newest backup in the reserved bucket
//! ([`CATALOG_BACKUP_BUCKET`]) that has at least k shards, decode it (a degraded read is fine)
//! and check its length and SHA-256 against the manifest in its key, falling back to older
//! backups; (3) unpack it into `DATA/meta` — refusing a non-empty directory unless `--force`,
//! which moves the old one aside, never deletes it; (4) reconcile the restored catalog with the
//! survey (`reconcile`): data written after the backup comes back from the shards'
//! back-references, versions whose data is gone are removed, and both are reported.
//!
//! The summary (`RestoreSummary`) says what could not be recovered: see `reconcile` and the
//! README section "Losing the catalog".

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use metadata::model::{DataLayout, PartLayout, ShardedLayout, VersionRecord, NO_NODE};
use metadata::{Catalog, MetaError};
use serde::Serialize;
use sha2::{Digest, Sha256};
use storage::format::ShardHeader;
use storage::id::ShardId;
use storage::store::ShardStore;
use tokio::io::AsyncWriteExt;

use super::reconcile::{reconcile, Reconciled};
use crate::config::{CatalogConfig, ServerArgs, ServerConfig};
use crate::engine::cluster::Cluster;
use crate::engine::healing::backup::{BackupManifest, ARCHIVE_ROOT, CATALOG_BACKUP_BUCKET};
use crate::engine::{ByteRange, Engine, EngineError, NULL_VERSION};

/// Shard ids asked per `list` call.
const LIST_PAGE: usize = 1000;
/// Upper bound on `list` pages per node (bounds the loop: 10^9 shards).
const MAX_LIST_PAGES: usize = 1_000_000;
/// Shard headers read at the same time.
const STAT_PARALLELISM: usize = 16;

/// Why a restore stopped. Nothing is changed on disk before the backup has been verified.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("configuration: {0}")]
    Config(String),
    #[error(
        "catalog directory {0} is not empty: stop the gateway, and pass --force to move it aside"
    )]
    CatalogNotEmpty(PathBuf),
    #[error("storage node {node} cannot be surveyed: {message} (every node must answer, so that no object is mistaken for deleted)")]
    NodeUnreachable { node: String, message: String },
    #[error("no usable catalog backup on the storage nodes{}", if .0.is_empty() { String::new() } else { format!(" (tried: {})", .0.join("; ")) })]
    NoBackup(Vec<String>),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("catalog: {0}")]
    Meta(#[from] MetaError),
    #[error("engine: {0}")]
    Engine(#[from] EngineError),
}

impl RestoreError {
    fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        RestoreError::Io {
            what: what.into(),
            source,
        }
    }
}

/// What one shard group looks like on the nodes.
#[derive(Debug, Default, Clone)]
pub struct GroupSurvey {
    /// `(index, node)` of every shard file found (a shard may sit on two nodes after a repair).
    pub shards: Vec<(u8, u32)>,
    /// The header of one of them (`None`: no header could be read).
    pub header: Option<ShardHeader>,
}

impl GroupSurvey {
    /// Distinct shard indexes present.
    pub fn distinct_indexes(&self) -> usize {
        let mut indexes: Vec<u8> = self.shards.iter().map(|(index, _)| *index).collect();
        indexes.sort_unstable();
        indexes.dedup();
        indexes.len()
    }

    /// Whether shard `index` is on `node`.
    pub fn has(&self, index: u8, node: u32) -> bool {
        self.shards.contains(&(index, node))
    }

    /// A layout reading the group from where its shards are now (`length` from the header).
    pub fn layout(&self, header: &ShardHeader) -> ShardedLayout {
        let total = usize::from(header.data_shards) + usize::from(header.parity_shards);
        let mut nodes = vec![NO_NODE; total];
        for &(index, node) in &self.shards {
            if let Some(slot) = nodes.get_mut(usize::from(index)) {
                if *slot == NO_NODE {
                    *slot = node;
                }
            }
        }
        let missing = (0..total)
            .filter(|&i| nodes.get(i) == Some(&NO_NODE))
            .filter_map(|i| u8::try_from(i).ok())
            .collect();
        ShardedLayout {
            group: header.group.0,
            data_shards: header.data_shards,
            parity_shards: header.parity_shards,
            block_size: header.block_size,
            length: header.part_length,
            nodes,
            missing,
        }
    }
}

/// Every shard group found on the nodes, by group id.
pub type Survey = BTreeMap<[u8; 16], GroupSurvey>;

/// The backup a restore used.
#[derive(Debug, Clone, Serialize)]
pub struct RestoredBackup {
    pub key: String,
    #[serde(flatten)]
    pub manifest: BackupManifest,
    /// Shards of it found (a degraded read when fewer than k+m).
    pub shards_found: usize,
    pub shards_total: usize,
}

/// A backup that was not used, and why.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedBackup {
    pub key: String,
    pub reason: String,
}

/// Everything a restore did and could not do.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreSummary {
    pub catalog_dir: PathBuf,
    /// Where the non-empty catalog directory that `--force` replaced was moved.
    pub previous_catalog_moved_to: Option<PathBuf>,
    pub backup: RestoredBackup,
    pub backups_skipped: Vec<SkippedBackup>,
    pub nodes: usize,
    pub shards_seen: usize,
    pub groups_seen: usize,
    #[serde(flatten)]
    pub reconciled: Reconciled,
}

/// Runs the command; returns the process exit code.
pub fn run(config: Option<&Path>, data: Option<&Path>, force: bool, json: bool) -> i32 {
    let args = match (config, data) {
        (Some(path), _) => ServerArgs {
            config: Some(path.to_path_buf()),
            ..ServerArgs::default()
        },
        (None, Some(data)) => ServerArgs {
            data: Some(data.to_path_buf()),
            ..ServerArgs::default()
        },
        (None, None) => {
            eprintln!(
                "strata admin restore-catalog: --config FILE (the gateway's configuration) or --data DIR (an embedded server's data directory) is required"
            );
            return 2;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("strata admin restore-catalog: cannot start the runtime: {e}");
            return 1;
        }
    };
    let result = runtime.block_on(async {
        let config = match &args.config {
            Some(path) => load_config(path)?,
            None => ServerConfig::load(&args).map_err(|e| RestoreError::Config(e.to_string()))?,
        };
        restore_catalog(&config, force).await
    });
    match result {
        Ok(summary) => {
            if json {
                match serde_json::to_string_pretty(&summary) {
                    Ok(text) => println!("{text}"),
                    Err(e) => {
                        eprintln!("strata admin restore-catalog: {e}");
                        return 1;
                    }
                }
            } else {
                print!("{}", render_summary(&summary));
            }
            0
        }
        Err(e) => {
            eprintln!("strata admin restore-catalog: {e}");
            1
        }
    }
}

/// The gateway's configuration from its file: cluster mode when it lists `[[nodes]]`, else the
/// embedded server's.
pub fn load_config(path: &Path) -> Result<ServerConfig, RestoreError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| RestoreError::io(format!("reading {}", path.display()), e))?;
    let table: toml::Table = toml::from_str(&text)
        .map_err(|e| RestoreError::Config(format!("{}: {e}", path.display())))?;
    let args = ServerArgs {
        config: Some(path.to_path_buf()),
        ..ServerArgs::default()
    };
    let loaded = if table.contains_key("nodes") {
        ServerConfig::load_gateway(&args)
    } else {
        ServerConfig::load(&args)
    };
    loaded.map_err(|e| RestoreError::Config(e.to_string()))
}

/// Restores `DATA/meta` of `config` from the newest usable backup on the nodes, then
/// reconciles it with the shards (see the module documentation).
pub async fn restore_catalog(
    config: &ServerConfig,
    force: bool,
) -> Result<RestoreSummary, RestoreError> {
    if !matches!(config.catalog, CatalogConfig::Rocks) {
        return Err(RestoreError::Config(
            "restore-catalog restores a RocksDB catalog; an etcd catalog is restored with `etcdctl snapshot restore` (metadata/README.md)".to_string(),
        ));
    }
    let meta_dir = config.data.join("meta");
    let occupied = directory_in_use(&meta_dir)?;
    if occupied && !force {
        return Err(RestoreError::CatalogNotEmpty(meta_dir));
    }
    let (nodes, _) = crate::server::build_nodes(config).map_err(RestoreError::Config)?;
    let cluster = Arc::new(Cluster::new(nodes)?);
    let survey = survey(&cluster, config.shard_timeout).await?;
    let shards_seen = survey.values().map(|g| g.shards.len()).sum();
    let engine_config = crate::server::engine_config(config);

    // The backup is read through an engine over an empty catalog: reads need none.
    let reader = Engine::new(Catalog::in_memory(), cluster.clone(), engine_config.clone())?;
    std::fs::create_dir_all(&config.data)
        .map_err(|e| RestoreError::io(format!("creating {}", config.data.display()), e))?;
    let (backup, archive, skipped) = fetch_newest_backup(&reader, &survey, &config.data).await?;
    drop(reader);

    let moved_to = if occupied {
        let aside = config
            .data
            .join(format!("meta.replaced-{}", crate::engine::now_ms()));
        std::fs::rename(&meta_dir, &aside)
            .map_err(|e| RestoreError::io(format!("moving {} aside", meta_dir.display()), e))?;
        Some(aside)
    } else {
        if meta_dir.exists() {
            std::fs::remove_dir(&meta_dir).map_err(|e| {
                RestoreError::io(format!("removing empty {}", meta_dir.display()), e)
            })?;
        }
        None
    };
    let unpacked = {
        let (archive, data, meta_dir) = (archive.clone(), config.data.clone(), meta_dir.clone());
        tokio::task::spawn_blocking(move || unpack(&archive, &data, &meta_dir))
            .await
            .map_err(|e| EngineError::internal("unpack task", e))?
    };
    let _ = std::fs::remove_file(&archive);
    unpacked?;

    let catalog = {
        let (meta_dir, fsync) = (meta_dir.clone(), config.fsync);
        tokio::task::spawn_blocking(move || Catalog::open_rocks(&meta_dir, fsync))
            .await
            .map_err(|e| EngineError::internal("catalog open task", e))??
    };
    let engine = Engine::new(catalog.clone(), cluster.clone(), engine_config)?;
    let owner = crate::credentials::Credentials::effective(&config.data)
        .map(|c| c.access_key)
        .unwrap_or_else(|_| "strata".to_string());
    let reconciled = reconcile(&engine, &catalog, &survey, config, &owner).await?;
    Ok(RestoreSummary {
        catalog_dir: meta_dir,
        previous_catalog_moved_to: moved_to,
        backup,
        backups_skipped: skipped,
        nodes: cluster.len(),
        shards_seen,
        groups_seen: survey.len(),
        reconciled,
    })
}

/// True when `dir` exists and holds anything.
fn directory_in_use(dir: &Path) -> Result<bool, RestoreError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_some()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(RestoreError::io(format!("reading {}", dir.display()), e)),
    }
}

/// Lists every node's shards and reads one header per group.
pub async fn survey(
    cluster: &Cluster,
    timeout: std::time::Duration,
) -> Result<Survey, RestoreError> {
    let mut survey = Survey::new();
    for (node, address, store) in cluster.nodes() {
        let unreachable = |message: String| RestoreError::NodeUnreachable {
            node: format!("{node} ({address})"),
            message,
        };
        let mut after: Option<ShardId> = None;
        for _ in 0..MAX_LIST_PAGES {
            let page = tokio::time::timeout(timeout, store.list(after, LIST_PAGE))
                .await
                .map_err(|_| unreachable("list timed out".to_string()))?
                .map_err(|e| unreachable(e.to_string()))?;
            for id in &page {
                survey
                    .entry(id.group.0)
                    .or_default()
                    .shards
                    .push((id.index, node));
            }
            if page.len() < LIST_PAGE {
                break;
            }
            after = page.last().copied();
        }
    }
    let stores: BTreeMap<u32, Arc<dyn ShardStore>> = cluster
        .nodes()
        .into_iter()
        .map(|(id, _, store)| (id, store))
        .collect();
    let headers: Vec<([u8; 16], Option<ShardHeader>)> =
        futures::stream::iter(survey.iter().map(|(group, found)| {
            let candidates: Vec<(ShardId, Arc<dyn ShardStore>)> = found
                .shards
                .iter()
                .filter_map(|&(index, node)| {
                    let id = ShardId::new(storage::id::ShardGroupId(*group), index);
                    stores.get(&node).map(|store| (id, store.clone()))
                })
                .collect();
            let group = *group;
            async move {
                for (id, store) in candidates {
                    if let Ok(Ok(stat)) = tokio::time::timeout(timeout, store.stat(id)).await {
                        return (group, Some(stat.header));
                    }
                }
                (group, None)
            }
        }))
        .buffer_unordered(STAT_PARALLELISM)
        .collect()
        .await;
    for (group, header) in headers {
        if let Some(found) = survey.get_mut(&group) {
            found.header = header;
        }
    }
    Ok(survey)
}

/// Backups on the nodes, newest first, with the group holding each.
fn backups_in(survey: &Survey) -> Vec<(BackupManifest, String, &GroupSurvey, &ShardHeader)> {
    let mut backups: Vec<_> = survey
        .values()
        .filter_map(|found| {
            let header = found.header.as_ref()?;
            let reference = &header.back_reference;
            if reference.bucket != CATALOG_BACKUP_BUCKET || reference.version != NULL_VERSION {
                return None;
            }
            let manifest = BackupManifest::parse_key(&reference.key)?;
            Some((manifest, reference.key.clone(), found, header))
        })
        .collect();
    backups.sort_by_key(|b| std::cmp::Reverse(b.0.time_ms));
    backups
}

/// Downloads the newest backup that decodes and matches its manifest into a file under
/// `data`; returns it, its path and the newer backups that were skipped.
async fn fetch_newest_backup(
    engine: &Arc<Engine>,
    survey: &Survey,
    data: &Path,
) -> Result<(RestoredBackup, PathBuf, Vec<SkippedBackup>), RestoreError> {
    let mut skipped = Vec::new();
    for (manifest, key, found, header) in backups_in(survey) {
        let total = usize::from(header.data_shards) + usize::from(header.parity_shards);
        let present = found.distinct_indexes();
        if present < usize::from(header.data_shards) {
            skipped.push(SkippedBackup {
                key,
                reason: format!("only {present} of {total} shards left"),
            });
            continue;
        }
        if header.part_length != manifest.length {
            skipped.push(SkippedBackup {
                key,
                reason: format!(
                    "shards hold {} bytes, the manifest says {}",
                    header.part_length, manifest.length
                ),
            });
            continue;
        }
        let path = data.join(format!("catalog-restore-{}.tar", manifest.time_ms));
        match download(engine, &found.layout(header), &path).await {
            Ok((length, sha256)) if length == manifest.length && sha256 == manifest.sha256 => {
                return Ok((
                    RestoredBackup {
                        key,
                        manifest,
                        shards_found: present,
                        shards_total: total,
                    },
                    path,
                    skipped,
                ));
            }
            Ok((length, sha256)) => skipped.push(SkippedBackup {
                key,
                reason: format!("decoded {length} bytes with SHA-256 {sha256}: does not match"),
            }),
            Err(e) => skipped.push(SkippedBackup {
                key,
                reason: format!("cannot be read: {e}"),
            }),
        }
        let _ = tokio::fs::remove_file(&path).await;
    }
    let tried = skipped
        .iter()
        .map(|s| format!("{}: {}", s.key, s.reason))
        .collect();
    Err(RestoreError::NoBackup(tried))
}

/// Streams the shard group `layout` into a new file at `path`; returns its length and SHA-256.
async fn download(
    engine: &Arc<Engine>,
    layout: &ShardedLayout,
    path: &Path,
) -> Result<(u64, String), RestoreError> {
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| RestoreError::io(format!("creating {}", path.display()), e))?;
    let mut hasher = Sha256::new();
    let length = read_group(
        engine,
        layout,
        |chunk| {
            hasher.update(chunk);
        },
        Some(&mut file),
    )
    .await?;
    file.flush()
        .await
        .map_err(|e| RestoreError::io(format!("writing {}", path.display()), e))?;
    Ok((length, hex::encode(hasher.finalize())))
}

/// A version of one sharded part, `layout`, with no metadata but its ETag and time.
pub fn single_part_version(
    layout: &ShardedLayout,
    etag: String,
    mtime_ms: u64,
    storage_class: String,
) -> VersionRecord {
    VersionRecord {
        seq: 0,
        version_id: NULL_VERSION.to_string(),
        size: layout.length,
        etag: etag.clone(),
        mtime_ms,
        storage_class,
        content_type: None,
        headers: Vec::new(),
        user_metadata: Vec::new(),
        checksum: None,
        delete_marker: false,
        parts: vec![PartLayout {
            part_number: 1,
            size: layout.length,
            etag,
            checksum: None,
            data: DataLayout::Sharded(layout.clone()),
        }],
        encryption: None,
        access: None,
    }
}

/// Reads the whole shard group `layout` (degraded reads included), handing every chunk to
/// `inspect` and appending it to `file` when given; returns the number of bytes.
pub async fn read_group(
    engine: &Arc<Engine>,
    layout: &ShardedLayout,
    mut inspect: impl FnMut(&[u8]),
    mut file: Option<&mut tokio::fs::File>,
) -> Result<u64, RestoreError> {
    if layout.length == 0 {
        return Ok(0);
    }
    let version = single_part_version(layout, String::new(), 0, String::new());
    let range = ByteRange {
        start: 0,
        end: layout.length,
    };
    let mut body = engine.read_version(&version, range).await?;
    let mut length = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| EngineError::internal("reading a shard group", e))?;
        inspect(&chunk);
        if let Some(file) = file.as_mut() {
            file.write_all(&chunk)
                .await
                .map_err(|e| RestoreError::io("writing the backup archive", e))?;
        }
        length += chunk.len() as u64;
    }
    if length != layout.length {
        return Err(EngineError::invariant(format!(
            "read {length} of {} bytes of a shard group",
            layout.length
        ))
        .into());
    }
    Ok(length)
}

/// Unpacks `archive` (entries under `catalog/`) into a scratch directory under `data`, fsyncs
/// it, and renames its `catalog` directory to `meta_dir`. Blocking.
fn unpack(archive: &Path, data: &Path, meta_dir: &Path) -> Result<(), RestoreError> {
    let scratch = data.join(format!("meta.restoring-{}", crate::engine::now_ms()));
    let file = std::fs::File::open(archive)
        .map_err(|e| RestoreError::io(format!("opening {}", archive.display()), e))?;
    // `unpack` refuses entries that would land outside `scratch` (`..`, absolute paths).
    tar::Archive::new(std::io::BufReader::new(file))
        .unpack(&scratch)
        .map_err(|e| RestoreError::io(format!("unpacking {}", archive.display()), e))?;
    let unpacked = scratch.join(ARCHIVE_ROOT);
    let entries = std::fs::read_dir(&unpacked)
        .map_err(|e| RestoreError::io(format!("reading {}", unpacked.display()), e))?;
    for entry in entries {
        let path = entry
            .map_err(|e| RestoreError::io(format!("reading {}", unpacked.display()), e))?
            .path();
        if path.is_file() {
            std::fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(|e| RestoreError::io(format!("syncing {}", path.display()), e))?;
        }
    }
    std::fs::rename(&unpacked, meta_dir).map_err(|e| {
        RestoreError::io(format!("moving the catalog to {}", meta_dir.display()), e)
    })?;
    std::fs::File::open(data)
        .and_then(|d| d.sync_all())
        .map_err(|e| RestoreError::io(format!("syncing {}", data.display()), e))?;
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

/// The summary as readable lines.
pub fn render_summary(summary: &RestoreSummary) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let backup = &summary.backup;
    let _ = writeln!(
        out,
        "Restored the catalog into {} from backup {} ({} bytes, SHA-256 {}, {} of {} shards found).",
        summary.catalog_dir.display(),
        backup.key,
        backup.manifest.length,
        backup.manifest.sha256,
        backup.shards_found,
        backup.shards_total
    );
    if let Some(moved) = &summary.previous_catalog_moved_to {
        let _ = writeln!(
            out,
            "The previous catalog directory was moved to {}.",
            moved.display()
        );
    }
    for skipped in &summary.backups_skipped {
        let _ = writeln!(
            out,
            "Skipped newer backup {}: {}",
            skipped.key, skipped.reason
        );
    }
    let _ = writeln!(
        out,
        "Surveyed {} nodes: {} shards in {} shard groups.",
        summary.nodes, summary.shards_seen, summary.groups_seen
    );
    out.push_str(&super::reconcile::render(&summary.reconciled));
    out
}
