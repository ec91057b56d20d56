//! `strata bench ceilings`: what this machine can do without Strata, measured in the same run
//! as the benchmarks so that each benchmark figure is read as a ratio of its ceiling.
//!
//! Probes: sequential writes with fsync to the data disk (files written like shards: 1 MiB
//! writes, fsync, then the directory), by one writer and by k+m writers at once (a PUT writes
//! its k+m shard files in parallel, which a virtio or SSD disk absorbs faster than one
//! stream), fsync'd 4 KiB appends (a WAL's rate), a plain hyper
//! server and client over loopback (64 MiB GETs and 4 KiB GETs), and single-core MD5, SHA-256,
//! CRC32C and xxh3 rates. Invariants: every probe is bounded in time and size; the scratch
//! files are removed; hashing probes run on one blocking thread (one core).

use std::convert::Infallible;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::Serialize;

/// Flags of `strata bench ceilings`.
#[derive(Debug, Args, Clone)]
pub struct CeilingArgs {
    /// Directory on the data disk for the write probe (scratch files are removed).
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Bytes written by the disk probe, MiB.
    #[arg(long, default_value_t = 512)]
    pub disk_mib: u64,
    /// Parallel writers of the second disk probe (k+m of a 4+2 PUT), each writing 16 MiB
    /// files (the shards of 64 MiB objects).
    #[arg(long, default_value_t = 6)]
    pub disk_writers: usize,
    /// Seconds each loopback and hashing probe runs.
    #[arg(long, default_value_t = 2.0)]
    pub seconds: f64,
    /// Concurrent connections of the large-body loopback probe.
    #[arg(long, default_value_t = 4)]
    pub large_concurrency: usize,
    /// Concurrent connections of the 4 KiB loopback probe.
    #[arg(long, default_value_t = 32)]
    pub small_concurrency: usize,
    /// Print JSON on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The measured ceilings.
#[derive(Debug, Clone, Serialize)]
pub struct Ceilings {
    /// Sequential write of 64 MiB files, 1 MiB writes, fsync per file, MiB/s.
    pub disk_fsync_write_mib_s: f64,
    /// `disk_writers` writers at once, 16 MiB files, 1 MiB writes, fsync per file, MiB/s.
    pub disk_parallel_fsync_write_mib_s: f64,
    pub disk_writers: usize,
    /// 4 KiB appends each followed by fdatasync, per second.
    pub fsync_appends_per_s: f64,
    /// Plain hyper, 64 MiB GET bodies over loopback, MiB/s.
    pub loopback_large_get_mib_s: f64,
    /// Plain hyper, 4 KiB GETs over loopback, requests/s.
    pub loopback_small_get_per_s: f64,
    pub md5_mib_s: f64,
    pub sha256_mib_s: f64,
    pub crc32c_mib_s: f64,
    pub xxh3_mib_s: f64,
}

const MIB: f64 = 1024.0 * 1024.0;
const LARGE_BODY: usize = 64 << 20;
const SMALL_BODY: usize = 4096;

pub async fn run(args: CeilingArgs) -> Result<(), String> {
    let seconds = Duration::from_secs_f64(args.seconds.clamp(0.1, 60.0));
    let dir = args.dir.clone();
    let disk_mib = args.disk_mib.clamp(64, 16 * 1024);
    let writers = args.disk_writers.clamp(1, 64);
    let (disk, parallel, appends) = tokio::task::spawn_blocking(move || {
        let disk = disk_write_rate(&dir, disk_mib, 1, 64)?;
        let parallel = disk_write_rate(&dir, disk_mib, writers, 16)?;
        let appends = fsync_append_rate(&dir, seconds)?;
        Ok::<_, String>((disk, parallel, appends))
    })
    .await
    .map_err(|e| e.to_string())??;
    let large = loopback_rate(LARGE_BODY, args.large_concurrency.max(1), seconds).await?;
    let small = loopback_rate(SMALL_BODY, args.small_concurrency.max(1), seconds).await?;
    let hashes = tokio::task::spawn_blocking(move || hash_rates(seconds))
        .await
        .map_err(|e| e.to_string())?;
    let ceilings = Ceilings {
        disk_fsync_write_mib_s: disk,
        disk_parallel_fsync_write_mib_s: parallel,
        disk_writers: writers,
        fsync_appends_per_s: appends,
        loopback_large_get_mib_s: large.0 / MIB,
        loopback_small_get_per_s: small.1,
        md5_mib_s: hashes[0],
        sha256_mib_s: hashes[1],
        crc32c_mib_s: hashes[2],
        xxh3_mib_s: hashes[3],
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&ceilings).map_err(|e| e.to_string())?
        );
    } else {
        println!("disk, sequential write + fsync   {disk:>10.1} MiB/s");
        println!("disk, {writers} writers + fsync each   {parallel:>10.1} MiB/s");
        println!("disk, 4 KiB append + fdatasync   {appends:>10.0} /s");
        println!(
            "loopback hyper, 64 MiB GET c={:<3} {:>10.1} MiB/s",
            args.large_concurrency, ceilings.loopback_large_get_mib_s
        );
        println!(
            "loopback hyper, 4 KiB GET c={:<4} {:>10.0} /s",
            args.small_concurrency, ceilings.loopback_small_get_per_s
        );
        println!(
            "MD5, one core                    {:>10.1} MiB/s",
            ceilings.md5_mib_s
        );
        println!(
            "SHA-256, one core                {:>10.1} MiB/s",
            ceilings.sha256_mib_s
        );
        println!(
            "CRC32C, one core                 {:>10.1} MiB/s",
            ceilings.crc32c_mib_s
        );
        println!(
            "xxh3, one core                   {:>10.1} MiB/s",
            ceilings.xxh3_mib_s
        );
    }
    Ok(())
}

/// A scratch directory under `dir`, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(dir: &Path) -> Result<Scratch, String> {
        let path = dir.join(format!(".strata-ceiling-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Scratch(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `total_mib` MiB as `file_mib` MiB files (1 MiB writes, fsync per file, then the
/// directory), split over `writers` threads writing at once; MiB/s of all of them together.
fn disk_write_rate(
    dir: &Path,
    total_mib: u64,
    writers: usize,
    file_mib: u64,
) -> Result<f64, String> {
    let scratch = Scratch::new(dir)?;
    let mut block = vec![0u8; 1 << 20];
    rand::Rng::fill(&mut rand::rng(), block.as_mut_slice());
    let files_per_writer = total_mib.div_ceil(file_mib * writers as u64).max(1);
    let started = Instant::now();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..writers)
            .map(|writer| {
                let (block, root) = (&block, &scratch.0);
                scope.spawn(move || -> Result<(), String> {
                    for file_index in 0..files_per_writer {
                        let path = root.join(format!("w{writer}f{file_index}"));
                        let mut file = std::fs::File::create(&path).map_err(|e| e.to_string())?;
                        for _ in 0..file_mib {
                            file.write_all(block).map_err(|e| e.to_string())?;
                        }
                        file.sync_all().map_err(|e| e.to_string())?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles.into_iter().try_for_each(|handle| {
            handle
                .join()
                .map_err(|_| "disk writer panicked".to_string())?
        })
    })?;
    std::fs::File::open(&scratch.0)
        .and_then(|d| d.sync_all())
        .map_err(|e| e.to_string())?;
    let written = files_per_writer * file_mib * writers as u64;
    Ok(written as f64 / started.elapsed().as_secs_f64())
}

/// 4 KiB appends with fdatasync after each, for `seconds` (at most 100,000).
fn fsync_append_rate(dir: &Path, seconds: Duration) -> Result<f64, String> {
    let scratch = Scratch::new(dir)?;
    let mut file = std::fs::File::create(scratch.0.join("wal")).map_err(|e| e.to_string())?;
    let block = [7u8; 4096];
    let started = Instant::now();
    let mut count = 0u64;
    while started.elapsed() < seconds && count < 100_000 {
        file.write_all(&block).map_err(|e| e.to_string())?;
        file.sync_data().map_err(|e| e.to_string())?;
        count += 1;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// A plain hyper server answering every GET with `body_len` bytes, and `concurrency` clients
/// downloading for `seconds`. Returns (bytes/s, requests/s).
async fn loopback_rate(
    body_len: usize,
    concurrency: usize,
    seconds: Duration,
) -> Result<(f64, f64), String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let body = Bytes::from(vec![42u8; body_len]);
    let server = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let _ = stream.set_nodelay(true);
            let body = body.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_request: Request<Incoming>| {
                    let body = body.clone();
                    async move { Ok::<_, Infallible>(Response::new(Full::new(body))) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(concurrency)
        .build(connector);
    let bytes = Arc::new(AtomicU64::new(0));
    let requests = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + seconds;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (client, bytes, requests) = (client.clone(), Arc::clone(&bytes), Arc::clone(&requests));
        let uri = format!("http://{address}/");
        workers.spawn(async move {
            while Instant::now() < deadline {
                let request = Request::get(uri.as_str())
                    .body(Empty::new())
                    .map_err(|e| e.to_string())?;
                let response = client.request(request).await.map_err(|e| e.to_string())?;
                let mut body = response.into_body();
                while let Some(frame) = body.frame().await {
                    let frame = frame.map_err(|e| e.to_string())?;
                    if let Ok(data) = frame.into_data() {
                        bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                    }
                }
                requests.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<(), String>(())
        });
    }
    let mut result = Ok(());
    while let Some(joined) = workers.join_next().await {
        if let Ok(Err(e)) | Err(e) = joined.map_err(|e| e.to_string()) {
            result = Err(format!("loopback probe: {e}"));
        }
    }
    server.abort();
    result?;
    let elapsed = started.elapsed().as_secs_f64();
    Ok((
        bytes.load(Ordering::Relaxed) as f64 / elapsed,
        requests.load(Ordering::Relaxed) as f64 / elapsed,
    ))
}

/// MiB/s of MD5, SHA-256, CRC32C and xxh3 over a 1 MiB buffer (in cache, like a stripe), each
/// for `seconds`.
fn hash_rates(seconds: Duration) -> [f64; 4] {
    use md5::Digest as _;
    let mut buffer = vec![0u8; 1 << 20];
    rand::Rng::fill(&mut rand::rng(), buffer.as_mut_slice());
    let rate = |f: &dyn Fn(&[u8]) -> u64| {
        let started = Instant::now();
        let mut rounds = 0u64;
        let mut sink = 0u64;
        while started.elapsed() < seconds && rounds < 1_000_000 {
            sink = sink.wrapping_add(f(&buffer));
            rounds += 1;
        }
        std::hint::black_box(sink);
        rounds as f64 / started.elapsed().as_secs_f64()
    };
    [
        rate(&|b| u64::from(md5::Md5::digest(b)[0])),
        rate(&|b| u64::from(sha2::Sha256::digest(b)[0])),
        rate(&|b| crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, b)),
        rate(&|b| xxhash_rust::xxh3::xxh3_64(b)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_probe_writes_what_it_claims_in_parallel_and_cleans_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        // 64 MiB over 3 writers of 16 MiB files (2 files each), then one writer of 64 MiB files.
        let rate = disk_write_rate(dir.path(), 64, 3, 16).expect("probe");
        assert!(rate.is_finite() && rate > 0.0, "{rate}");
        let single = disk_write_rate(dir.path(), 64, 1, 64).expect("probe");
        assert!(single.is_finite() && single > 0.0, "{single}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("read_dir").collect();
        assert!(left.is_empty(), "scratch files left behind: {left:?}");
    }
}
