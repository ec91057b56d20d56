//! Prometheus metrics at `GET /_strata/metrics` (DESIGN §9, §10), in the OpenMetrics text
//! format, through the `prometheus-client` crate.
//!
//! Two kinds of values:
//! - recorded as they happen by the S3 layer: requests by operation and status class, their
//!   latency (time to response headers), bytes received and sent (`observe_request`,
//!   [`CountingBody`]);
//! - read at scrape time from the engine (`render`): node up/down, free space and failed calls
//!   per node and operation, scrub progress and findings per store, GC queue length and work
//!   done, corrupt shards handed to repair. Counters of this kind mirror a monotonic source: they
//!   only move forward, so a store whose own counter restarted (a storage node's in-memory
//!   pass counters) shows no progress until it passes the old value.
//!
//! Repair and GC queue lengths and work counters are mirrored from `Healer::repair_status()`
//! and `Healer::gc_status()` (the same numbers `/_strata/admin/repair` and `/gc` show).
//!
//! Access (see `config::MetricsAccess`): by default a request signed with the server's keys or a
//! configured bearer token; `metrics_public = true` opens it like MinIO's `public` auth type.
//!
//! Invariants: label values are bounded sets (S3 operation names, status classes, configured
//! nodes, a fixed list of store operations), so cardinality cannot grow with traffic; scrapes
//! are serialised, so mirrored counters are never advanced twice for one change.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::config::MetricsAccess;
use crate::engine::{GcStatus, Healer, RepairStatus};

/// The content type of the answer.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(String, String)>;
type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms … ~33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_string(), (*value).to_string()))
        .collect()
}

/// Advances `counter` to `value` (never backwards).
fn mirror(counter: &Counter, value: u64) {
    let current = counter.get();
    if value > current {
        counter.inc_by(value - current);
    }
}

fn set_gauge(gauge: &Gauge, value: u64) {
    gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
}

/// Every metric the gateway exports.
pub struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    request_seconds: HistogramFamily,
    received_bytes: Counter,
    sent_bytes: Counter,
    node_up: Family<Labels, Gauge>,
    node_free_bytes: Family<Labels, Gauge>,
    node_errors: Family<Labels, Counter>,
    scrub_reachable: Family<Labels, Gauge>,
    scrub_running: Family<Labels, Gauge>,
    scrub_pass_bytes: Family<Labels, Gauge>,
    scrub_pass_files: Family<Labels, Gauge>,
    scrub_passes: Family<Labels, Counter>,
    scrub_files: Family<Labels, Counter>,
    scrub_bytes: Family<Labels, Counter>,
    scrub_corrupt: Family<Labels, Counter>,
    scrub_pending_reports: Family<Labels, Gauge>,
    scrub_last_pass_end: Family<Labels, Gauge>,
    scrub_last_pass_duration: Family<Labels, Gauge>,
    scrub_shards_handed: Counter,
    healing: HealingMetrics,
    scrape_lock: tokio::sync::Mutex<()>,
    access: MetricsAccess,
}

impl Metrics {
    /// Who may scrape.
    pub fn access(&self) -> &MetricsAccess {
        &self.access
    }

    pub fn new(access: MetricsAccess) -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("strata");
        let requests = Family::<Labels, Counter>::default();
        registry.register(
            "s3_requests",
            "S3 requests by operation and status class",
            requests.clone(),
        );
        let request_seconds: HistogramFamily =
            Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "s3_request_duration_seconds",
            "Time from request to response headers, by operation",
            request_seconds.clone(),
        );
        let received_bytes = Counter::default();
        registry.register(
            "s3_received_bytes",
            "Request body bytes received",
            received_bytes.clone(),
        );
        let sent_bytes = Counter::default();
        registry.register(
            "s3_sent_bytes",
            "Response body bytes sent",
            sent_bytes.clone(),
        );
        let family_gauge = |registry: &mut Registry, name: &str, help: &str| {
            let family = Family::<Labels, Gauge>::default();
            registry.register(name, help, family.clone());
            family
        };
        let family_counter = |registry: &mut Registry, name: &str, help: &str| {
            let family = Family::<Labels, Counter>::default();
            registry.register(name, help, family.clone());
            family
        };
        let node_up = family_gauge(
            &mut registry,
            "node_up",
            "1 when the health checker sees the shard store up, 0 when down",
        );
        let node_free_bytes = family_gauge(
            &mut registry,
            "node_free_bytes",
            "Free bytes on the shard store's filesystem at the last health check",
        );
        let node_errors = family_counter(
            &mut registry,
            "node_errors",
            "Failed shard store calls by node and operation",
        );
        let scrub_reachable = family_gauge(
            &mut registry,
            "scrub_store_reachable",
            "1 when the store answered the last scrub poll",
        );
        let scrub_running = family_gauge(
            &mut registry,
            "scrub_running",
            "1 while a scrub pass is in progress on the store",
        );
        let scrub_pass_bytes = family_gauge(
            &mut registry,
            "scrub_pass_bytes",
            "Bytes verified so far in the running scrub pass",
        );
        let scrub_pass_files = family_gauge(
            &mut registry,
            "scrub_pass_files",
            "Shard files verified so far in the running scrub pass",
        );
        let scrub_passes =
            family_counter(&mut registry, "scrub_passes", "Completed full scrub passes");
        let scrub_files = family_counter(
            &mut registry,
            "scrub_files_checked",
            "Shard files verified by the scrubber",
        );
        let scrub_bytes = family_counter(
            &mut registry,
            "scrub_bytes_checked",
            "Bytes verified by the scrubber",
        );
        let scrub_corrupt = family_counter(
            &mut registry,
            "scrub_corrupt_shards",
            "Corrupt shard files found and quarantined by the scrubber",
        );
        let scrub_pending_reports = family_gauge(
            &mut registry,
            "scrub_pending_reports",
            "Scrub findings the store holds that the gateway has not acknowledged",
        );
        let scrub_last_pass_end = family_gauge(
            &mut registry,
            "scrub_last_pass_end_timestamp_seconds",
            "When the last full scrub pass ended (Unix seconds; 0 = never)",
        );
        let scrub_last_pass_duration = family_gauge(
            &mut registry,
            "scrub_last_pass_duration_seconds",
            "How long the last full scrub pass took",
        );
        let scrub_shards_handed = Counter::default();
        registry.register(
            "scrub_shards_handed_to_repair",
            "Corrupt shards from scrub reports handed to repair by this gateway",
            scrub_shards_handed.clone(),
        );
        let healing = HealingMetrics::register(&mut registry);
        Arc::new(Metrics {
            registry,
            requests,
            request_seconds,
            received_bytes,
            sent_bytes,
            node_up,
            node_free_bytes,
            node_errors,
            scrub_reachable,
            scrub_running,
            scrub_pass_bytes,
            scrub_pass_files,
            scrub_passes,
            scrub_files,
            scrub_bytes,
            scrub_corrupt,
            scrub_pending_reports,
            scrub_last_pass_end,
            scrub_last_pass_duration,
            scrub_shards_handed,
            healing,
            scrape_lock: tokio::sync::Mutex::new(()),
            access,
        })
    }

    /// Records one S3 request: `operation` is the endpoint's name, `status` the HTTP status.
    pub fn observe_request(&self, operation: &str, status: u16, elapsed: Duration) {
        let class = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.requests
            .get_or_create(&labels(&[("operation", operation), ("status", class)]))
            .inc();
        self.request_seconds
            .get_or_create(&labels(&[("operation", operation)]))
            .observe(elapsed.as_secs_f64());
    }

    /// The counter of request body bytes, for [`CountingBody`].
    pub fn received_bytes(&self) -> Counter {
        self.received_bytes.clone()
    }

    /// The counter of response body bytes, for [`CountingBody`].
    pub fn sent_bytes(&self) -> Counter {
        self.sent_bytes.clone()
    }

    /// Refreshes the scrape-time values from `healer` (and its engine) and encodes everything.
    pub async fn render(&self, healer: &Healer) -> Result<String, std::fmt::Error> {
        let _scrape = self.scrape_lock.lock().await;
        self.refresh(healer).await;
        let mut text = String::new();
        encode(&mut text, &self.registry)?;
        Ok(text)
    }

    async fn refresh(&self, healer: &Healer) {
        let engine = healer.engine();
        for node in engine.cluster().status() {
            let id = node.id.to_string();
            let node_labels = labels(&[("node", &id), ("name", &node.name)]);
            self.node_up
                .get_or_create(&node_labels)
                .set(i64::from(node.state == "up"));
            set_gauge(
                &self.node_free_bytes.get_or_create(&node_labels),
                node.free_bytes,
            );
        }
        for node in engine.cluster().error_counts() {
            let id = node.id.to_string();
            for (operation, count) in node.by_operation {
                let error_labels = labels(&[
                    ("node", &id),
                    ("name", &node.name),
                    ("operation", operation),
                ]);
                mirror(&self.node_errors.get_or_create(&error_labels), count);
            }
        }
        self.refresh_scrub(healer);
        self.refresh_healing(healer).await;
    }

    fn refresh_scrub(&self, healer: &Healer) {
        for view in healer.scrub_views() {
            let id = view.node.to_string();
            let store = labels(&[("node", &id), ("name", &view.name)]);
            self.scrub_reachable
                .get_or_create(&store)
                .set(i64::from(view.reachable));
            set_gauge(
                &self.scrub_pending_reports.get_or_create(&store),
                view.pending_reports as u64,
            );
            let Some(status) = view.status else {
                continue;
            };
            self.scrub_running
                .get_or_create(&store)
                .set(i64::from(status.running));
            set_gauge(
                &self.scrub_pass_bytes.get_or_create(&store),
                status.pass_bytes_checked,
            );
            set_gauge(
                &self.scrub_pass_files.get_or_create(&store),
                status.pass_files_checked,
            );
            mirror(
                &self.scrub_passes.get_or_create(&store),
                status.passes_completed,
            );
            mirror(
                &self.scrub_files.get_or_create(&store),
                status.total_files_checked,
            );
            mirror(
                &self.scrub_bytes.get_or_create(&store),
                status.total_bytes_checked,
            );
            mirror(
                &self.scrub_corrupt.get_or_create(&store),
                status.total_corrupt_found,
            );
            set_gauge(
                &self.scrub_last_pass_end.get_or_create(&store),
                status.last_pass_completed_ms.unwrap_or(0) / 1000,
            );
            set_gauge(
                &self.scrub_last_pass_duration.get_or_create(&store),
                status.last_pass_duration_ms.unwrap_or(0) / 1000,
            );
        }
        mirror(
            &self.scrub_shards_handed,
            healer.counters().snapshot().scrub_corrupt_shards,
        );
    }

    async fn refresh_healing(&self, healer: &Healer) {
        let (repair, gc) = match (healer.repair_status().await, healer.gc_status().await) {
            (Ok(repair), Ok(gc)) => (repair, gc),
            (Err(err), _) | (_, Err(err)) => {
                tracing::warn!(error = %err, "metrics: cannot read the repair and GC status");
                return;
            }
        };
        let healing = &self.healing;
        set_gauge(&healing.repair_queue_items, repair.queue_length);
        set_gauge(&healing.repair_in_flight, repair.in_flight);
        set_gauge(&healing.nodes_lost, repair.nodes_lost.len() as u64);
        set_gauge(&healing.gc_queue_items, gc.queue_length);
        for (counter, read) in &healing.counters {
            mirror(counter, read(&repair, &gc));
        }
    }
}

/// Repair and GC, mirrored at scrape time from `Healer::repair_status` and `Healer::gc_status`.
struct HealingMetrics {
    repair_queue_items: Gauge,
    repair_in_flight: Gauge,
    nodes_lost: Gauge,
    gc_queue_items: Gauge,
    counters: Vec<(Counter, HealingReader)>,
}

type HealingReader = fn(&RepairStatus, &GcStatus) -> u64;

/// The monotonic repair and GC counters: name, help, and where the value comes from.
const HEALING_COUNTERS: &[(&str, &str, HealingReader)] = &[
    (
        "repair_groups_repaired",
        "Shard groups whose rebuilt shards were published",
        |r, _| r.groups_repaired,
    ),
    (
        "repair_shards_rebuilt",
        "Shards rebuilt from parity and written",
        |r, _| r.shards_rebuilt,
    ),
    (
        "repair_bytes_rebuilt",
        "Shard bytes written by repair",
        |r, _| r.bytes_rebuilt,
    ),
    ("repair_bytes_read", "Shard bytes read by repair", |r, _| {
        r.bytes_read
    }),
    (
        "repair_failed_attempts",
        "Repair attempts that failed and were retried later",
        |r, _| r.failed_attempts,
    ),
    (
        "repair_shards_reported",
        "Bad shards reported to repair (reads, scrub)",
        |r, _| r.shards_reported,
    ),
    (
        "repair_missing_shards_found",
        "Missing shards found by node scans",
        |r, _| r.missing_shards_found,
    ),
    (
        "gc_groups_collected",
        "Shard groups whose shards GC deleted",
        |_, g| g.groups_collected,
    ),
    ("gc_shards_deleted", "Shard files deleted by GC", |_, g| {
        g.shards_deleted
    }),
    (
        "gc_bytes_collected",
        "Shard bytes (frames) deleted by GC",
        |_, g| g.bytes_collected,
    ),
    (
        "gc_failed_deletes",
        "GC items put back for a retry after a failed delete",
        |_, g| g.failed_deletes,
    ),
    (
        "gc_stale_intents_collected",
        "Interrupted writes turned into GC work",
        |_, g| g.stale_intents_collected,
    ),
    (
        "gc_expired_uploads_aborted",
        "Multipart uploads aborted by expiry",
        |_, g| g.expired_uploads_aborted,
    ),
    (
        "gc_orphans_removed",
        "Orphaned shard files removed by node scans",
        |_, g| g.orphans_removed,
    ),
    (
        "gc_orphan_bytes_removed",
        "Bytes of orphaned shard files removed",
        |_, g| g.orphan_bytes_removed,
    ),
];

impl HealingMetrics {
    fn register(registry: &mut Registry) -> HealingMetrics {
        let mut gauge = |name: &str, help: &str| {
            let gauge = Gauge::default();
            registry.register(name, help, gauge.clone());
            gauge
        };
        let repair_queue_items = gauge(
            "repair_queue_items",
            "Shard groups waiting in the repair queue (counted up to 1000000)",
        );
        let repair_in_flight = gauge("repair_in_flight", "Shard groups being rebuilt now");
        let nodes_lost = gauge(
            "repair_nodes_lost",
            "Nodes down longer than node_lost_after_secs (their shards are rebuilt elsewhere)",
        );
        let gc_queue_items = gauge(
            "gc_queue_items",
            "Shard groups waiting in the GC queue (counted up to 1000000)",
        );
        let counters = HEALING_COUNTERS
            .iter()
            .map(|(name, help, read)| {
                let counter = Counter::default();
                registry.register(*name, *help, counter.clone());
                (counter, *read)
            })
            .collect();
        HealingMetrics {
            repair_queue_items,
            repair_in_flight,
            nodes_lost,
            gc_queue_items,
            counters,
        }
    }
}

/// A body that adds the length of every data frame it passes to a counter (request bodies as
/// the handler reads them, response bodies as they are sent). Length hints pass through, so
/// `content-length` is unchanged.
pub struct CountingBody<B> {
    inner: B,
    counter: Counter,
}

impl<B> CountingBody<B> {
    pub fn new(inner: B, counter: Counter) -> Self {
        CountingBody { inner, counter }
    }
}

impl<B> Body for CountingBody<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.counter.inc_by(data.len() as u64);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
