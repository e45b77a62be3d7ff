//! What operators scrape at `/metrics` (OpenMetrics text through `prometheus-client`): request
//! latency per transport, signal and status; plugin call time per plugin; group-commit time and
//! size; records received; queue depths; and the plugin registry's state. Written by ingest,
//! auth, the pipeline and storage; rendered by the server.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Seconds, from 0.5 ms to about 16 s.
fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Requests per group commit, from 1 to 256.
fn group_sizes() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 9))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub transport: &'static str,
    pub signal: &'static str,
    pub status: u16,
}

/// A listening port: `http` (OTLP/HTTP and the API) or `grpc`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PortLabels {
    pub port: &'static str,
}

/// Why the host closed a connection (see `ingest::conn`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClosedLabels {
    pub port: &'static str,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabels {
    pub plugin: String,
    pub version: String,
}

impl PluginLabels {
    /// Plugin-provided text, bounded and reduced to characters safe in a label value.
    pub fn new(plugin: &str, version: &str) -> Self {
        let clean = |text: &str| {
            text.chars()
                .take(64)
                .map(|c| if c.is_ascii_alphanumeric() || "._-+@".contains(c) { c } else { '_' })
                .collect()
        };
        PluginLabels { plugin: clean(plugin), version: clean(version) }
    }
}

/// What the storage writer reports.
#[derive(Clone)]
pub struct StorageMetrics {
    pub commit_seconds: Histogram,
    pub commit_batches: Histogram,
    pub writer_queue: Gauge,
    /// Traces a write updated from their stored state and what it added.
    pub traces_updated: Counter,
    /// Traces a write merged whole from all their fragments (new, joined, replayed, or what
    /// the state cannot tell).
    pub traces_merged: Counter,
}

impl Default for StorageMetrics {
    fn default() -> Self {
        StorageMetrics {
            commit_seconds: seconds(),
            commit_batches: group_sizes(),
            writer_queue: Gauge::default(),
            traces_updated: Counter::default(),
            traces_merged: Counter::default(),
        }
    }
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every metric of the host, registered once.
pub struct Metrics {
    registry: Registry,
    pub accepted: Counter,
    pub rejected_client: Counter,
    pub rejected_auth: Counter,
    pub rejected_overload: Counter,
    pub batches_done: Counter,
    pub batches_failed: Counter,
    pub batches_unclaimed: Counter,
    pub records: Counter,
    pub request_seconds: Histograms<RequestLabels>,
    pub plugin_call_seconds: Histograms<PluginLabels>,
    pub plugin_failures: Family<PluginLabels, Counter>,
    pub plugin_put_aside: Family<PluginLabels, Gauge>,
    pub in_flight: Gauge,
    pub queued: Gauge,
    pub connections_open: Family<PortLabels, Gauge>,
    pub connections_closed: Family<ClosedLabels, Counter>,
    pub decoded_bytes_in_flight: Gauge,
    pub budget_alerts_undelivered: Gauge,
    pub budget_alert_failures: Counter,
    pub storage: StorageMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("antenna");
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let c = Counter::default();
            registry.register(name, help, c.clone());
            c
        };
        let accepted =
            counter(&mut registry, "requests_accepted", "Export requests stored and normalized (answered OK).");
        let rejected_client = counter(&mut registry, "requests_rejected_client", "Export requests refused with a 4xx.");
        let rejected_auth = counter(&mut registry, "auth_failures", "Failed authentications.");
        let rejected_overload =
            counter(&mut registry, "requests_overload", "Requests refused with 429/503 under overload.");
        let batches_done = counter(&mut registry, "batches_done", "Batches normalized.");
        let batches_failed =
            counter(&mut registry, "batches_failed", "Batches that failed to normalize (kept for replay).");
        let batches_unclaimed = counter(&mut registry, "batches_unclaimed", "Batches no plugin claimed (kept).");
        let records = counter(
            &mut registry,
            "records_received",
            "Spans, log records and metric points accepted (rate: records/s).",
        );
        let request_seconds: Histograms<RequestLabels> = Family::new_with_constructor(seconds);
        registry.register(
            "request_duration_seconds",
            "Time to answer an export request, per transport, signal and status.",
            request_seconds.clone(),
        );
        let plugin_call_seconds: Histograms<PluginLabels> = Family::new_with_constructor(seconds);
        registry.register(
            "plugin_call_duration_seconds",
            "Time of one plugin call, per plugin.",
            plugin_call_seconds.clone(),
        );
        let plugin_failures = Family::<PluginLabels, Counter>::default();
        registry.register("plugin_failures", "Plugin calls that failed, per plugin.", plugin_failures.clone());
        let plugin_put_aside = Family::<PluginLabels, Gauge>::default();
        registry.register(
            "plugin_put_aside",
            "1 while the circuit breaker has put a plugin aside.",
            plugin_put_aside.clone(),
        );
        let in_flight = Gauge::default();
        registry.register("batches_in_flight", "Export requests being processed.", in_flight.clone());
        let queued = Gauge::default();
        registry.register("batches_queued", "Export requests waiting for a slot.", queued.clone());
        let connections_open = Family::<PortLabels, Gauge>::default();
        registry.register("connections_open", "Open connections, per port.", connections_open.clone());
        let connections_closed = Family::<ClosedLabels, Counter>::default();
        registry.register(
            "connections_closed",
            "Connections the host closed, per port and reason (per_address, no_first_bytes, \
             unauthenticated, idle, max_age).",
            connections_closed.clone(),
        );
        let decoded_bytes_in_flight = Gauge::default();
        registry.register(
            "decoded_bytes_in_flight",
            "Bytes of decoded export requests admitted and not yet answered (their estimate).",
            decoded_bytes_in_flight.clone(),
        );
        let budget_alerts_undelivered = Gauge::default();
        registry.register(
            "budget_alerts_undelivered",
            "Budget alerts recorded that no webhook has taken yet (retried with backoff).",
            budget_alerts_undelivered.clone(),
        );
        let budget_alert_failures =
            counter(&mut registry, "budget_alert_failures", "Failed attempts to post a budget alert.");
        let storage = StorageMetrics::default();
        registry.register("commit_duration_seconds", "Time of one group commit.", storage.commit_seconds.clone());
        registry.register("commit_batches", "Batches written by one group commit.", storage.commit_batches.clone());
        registry.register("writer_queue", "Batches waiting for the storage writer.", storage.writer_queue.clone());
        registry.register(
            "traces_updated",
            "Traces a write updated from their stored state and what it added.",
            storage.traces_updated.clone(),
        );
        registry.register(
            "traces_merged",
            "Traces a write merged whole from all their fragments (new, joined, replayed, or undecidable from the state).",
            storage.traces_merged.clone(),
        );
        Metrics {
            registry,
            accepted,
            rejected_client,
            rejected_auth,
            rejected_overload,
            batches_done,
            batches_failed,
            batches_unclaimed,
            records,
            request_seconds,
            plugin_call_seconds,
            plugin_failures,
            plugin_put_aside,
            in_flight,
            queued,
            connections_open,
            connections_closed,
            decoded_bytes_in_flight,
            budget_alerts_undelivered,
            budget_alert_failures,
            storage,
        }
    }
}

impl Metrics {
    /// The OpenMetrics text of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_bounded_labels() {
        let metrics = Metrics::default();
        metrics.batches_failed.inc();
        metrics
            .request_seconds
            .get_or_create(&RequestLabels { transport: "http", signal: "logs", status: 200 })
            .observe(0.002);
        metrics.plugin_call_seconds.get_or_create(&PluginLabels::new("evil\"\n{x}", "1.0")).observe(0.001);
        let text = metrics.render();
        assert!(text.contains("antenna_batches_failed_total 1"), "{text}");
        assert!(text.contains("antenna_request_duration_seconds_bucket{"), "{text}");
        assert!(text.contains("plugin=\"evil___x_\""), "{text}");
        assert!(text.trim_end().ends_with("# EOF"), "{text}");
    }
}
