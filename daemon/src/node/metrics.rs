//! Prometheus metrics (text exposition format, `prometheus-client`) and the
//! small HTTP endpoint that serves them with `/healthz` and `/readyz`.
//!
//! Families (all prefixed `shieldx_`): consensus height, view, view changes,
//! round latency (request admitted to committed, seconds), Byzantine faults
//! detected (evidence), slashing events, alerts per severity, detection
//! true/false positives per severity (for labelled events; a sensor labels an
//! event with the `x-shieldx-label: malicious|benign` header), ingest latency
//! (API call to committed reply), peers connected, and rejected inputs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_stream::StreamExt as _;

/// A severity label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SeverityLabel {
    /// low, medium, high, critical.
    pub severity: String,
}

/// A kind label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// What kind.
    pub kind: String,
}

/// Every metric the node exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Last executed height.
    pub height: Gauge,
    /// Current view.
    pub view: Gauge,
    /// Views entered after the first.
    pub view_changes: Counter,
    /// Request admitted -> committed, seconds.
    pub round_latency: Histogram,
    /// API call -> committed reply, seconds.
    pub ingest_latency: Histogram,
    /// Evidence of Byzantine behaviour found.
    pub byzantine_faults: Counter,
    /// Slashing events committed.
    pub slashings: Counter,
    /// Alerts committed, per severity.
    pub alerts: Family<SeverityLabel, Counter>,
    /// Alerts on events labelled malicious, per severity.
    pub true_positives: Family<SeverityLabel, Counter>,
    /// Alerts on events labelled benign, per severity.
    pub false_positives: Family<SeverityLabel, Counter>,
    /// Requests committed.
    pub requests_committed: Counter,
    /// Peers with a live outbound stream.
    pub peers_connected: Gauge,
    /// Inputs the replica or the API refused, per reason.
    pub rejected: Family<KindLabel, Counter>,
    /// Seconds the core loop spent working (its saturation: near one
    /// second per second, the node is bound by its single core loop).
    pub core_loop_busy: Counter<f64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every family.
    pub fn new() -> Metrics {
        let mut metrics = Metrics {
            registry: Registry::with_prefix("shieldx"),
            height: Gauge::default(),
            view: Gauge::default(),
            view_changes: Counter::default(),
            round_latency: Histogram::new(exponential_buckets(0.000_5, 2.0, 16)),
            ingest_latency: Histogram::new(exponential_buckets(0.000_5, 2.0, 16)),
            byzantine_faults: Counter::default(),
            slashings: Counter::default(),
            alerts: Family::default(),
            true_positives: Family::default(),
            false_positives: Family::default(),
            requests_committed: Counter::default(),
            peers_connected: Gauge::default(),
            rejected: Family::default(),
            core_loop_busy: Counter::default(),
        };
        metrics.registry.register(
            "consensus_height",
            "Last executed consensus height",
            metrics.height.clone(),
        );
        metrics
            .registry
            .register("consensus_view", "Current PBFT view", metrics.view.clone());
        metrics.registry.register(
            "consensus_view_changes",
            "Views entered after view 0",
            metrics.view_changes.clone(),
        );
        metrics.registry.register(
            "consensus_round_latency_seconds",
            "Time from a request's admission to its commit at this node",
            metrics.round_latency.clone(),
        );
        metrics.registry.register(
            "ingest_latency_seconds",
            "Time from an API submission to its committed reply",
            metrics.ingest_latency.clone(),
        );
        metrics.registry.register(
            "byzantine_faults_detected",
            "Evidence of equivocation found",
            metrics.byzantine_faults.clone(),
        );
        metrics.registry.register(
            "slashing_events",
            "Slashing events committed",
            metrics.slashings.clone(),
        );
        metrics.registry.register(
            "alerts",
            "Alerts committed by severity",
            metrics.alerts.clone(),
        );
        metrics.registry.register(
            "detection_true_positives",
            "Alerts on events labelled malicious, by severity",
            metrics.true_positives.clone(),
        );
        metrics.registry.register(
            "detection_false_positives",
            "Alerts on events labelled benign, by severity",
            metrics.false_positives.clone(),
        );
        metrics.registry.register(
            "requests_committed",
            "Client requests committed",
            metrics.requests_committed.clone(),
        );
        metrics.registry.register(
            "peers_connected",
            "Peers with a live outbound stream",
            metrics.peers_connected.clone(),
        );
        metrics.registry.register(
            "core_loop_busy_seconds",
            "Seconds the core loop spent handling inputs and timers and writing their outputs",
            metrics.core_loop_busy.clone(),
        );
        metrics.registry.register(
            "rejected_inputs",
            "Inputs refused, by reason",
            metrics.rejected.clone(),
        );
        metrics
    }

    /// The exposition text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Serves `/metrics`, `/healthz` (the process runs) and `/readyz` (the node
/// has caught up and knows a primary) over HTTP/1.0 until `shutdown`.
pub async fn serve_task(
    mut incoming: super::host::Incoming,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), super::NodeError> {
    loop {
        let accepted = tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
            accepted = incoming.next() => accepted,
        };
        let Some(Ok(mut stream)) = accepted else {
            continue;
        };
        let metrics = metrics.clone();
        let ready = ready.clone();
        tokio::spawn(tracing::Instrument::in_current_span(async move {
            // Read the request head (it may arrive in several segments).
            let mut buffer = [0u8; 2048];
            let mut n = 0;
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
            while n < buffer.len() && !buffer[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                match tokio::time::timeout_at(deadline, stream.read(&mut buffer[n..])).await {
                    Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                    Ok(Ok(read)) => n += read,
                }
            }
            let request = String::from_utf8_lossy(&buffer[..n]);
            let path = request.split_whitespace().nth(1).unwrap_or("");
            let (status, content_type, body) = match path {
                "/metrics" => (
                    "200 OK",
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    metrics.encode(),
                ),
                "/healthz" => ("200 OK", "text/plain", "ok\n".to_string()),
                "/readyz" if ready.load(Ordering::Relaxed) => {
                    ("200 OK", "text/plain", "ready\n".to_string())
                }
                "/readyz" => (
                    "503 Service Unavailable",
                    "text/plain",
                    "not ready\n".to_string(),
                ),
                _ => ("404 Not Found", "text/plain", "not found\n".to_string()),
            };
            let response = format!(
                "HTTP/1.0 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        }));
    }
}
