//! Logs (tracing: text on a terminal, JSON for journald), Prometheus metrics, and the small HTTP
//! listener that serves `/metrics`, `/healthz` and `/readyz`.

use crate::config::{LogConfig, LogFormat};
use crate::store::postgres::{ReadRouter, ReplicaState};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tracing_subscriber::EnvFilter;

pub mod catalogue; // every exported metric: name, type, labels, help, buckets
pub mod probes; // PostgreSQL/Redis pings and process memory, for /metrics
pub mod progress; // trades and candles written so far: the progress line, --exit-after-trades

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("log filter {0:?}: {1}")]
    Filter(String, String),
    #[error("installing the log subscriber: {0}")]
    Subscriber(String),
    #[error("installing the metrics recorder: {0}")]
    Metrics(String),
    #[error("binding the HTTP listener on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Installs the global tracing subscriber. `RUST_LOG` wins over `log.level` when set.
pub fn init_logging(cfg: &LogConfig) -> Result<(), TelemetryError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => {
            EnvFilter::try_new(&v).map_err(|e| TelemetryError::Filter(v, e.to_string()))?
        }
        _ => EnvFilter::try_new(&cfg.level)
            .map_err(|e| TelemetryError::Filter(cfg.level.clone(), e.to_string()))?,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let res = match cfg.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    res.map_err(|e| TelemetryError::Subscriber(e.to_string()))
}

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// How often the recorder's upkeep runs. `install_recorder` (unlike the exporter's own listener)
/// leaves upkeep to the caller; without it histogram samples pile up between scrapes, and
/// without scrapes they grow for ever.
pub(crate) const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Installs the Prometheus recorder once per process and returns its handle (tests and several
/// pipelines in one process share it).
pub fn metrics_handle() -> Result<PrometheusHandle, TelemetryError> {
    if let Some(h) = PROMETHEUS.get() {
        return Ok(h.clone());
    }
    // Buckets from the catalogue: histograms (aggregatable across instances) for everything but
    // tick-to-publish latency, which is a summary: its p50/p99 are what the latency target is
    // stated in.
    let mut builder = PrometheusBuilder::new();
    for m in catalogue::CATALOGUE {
        if let catalogue::Kind::Histogram(buckets) = m.kind {
            builder = builder
                .set_buckets_for_metric(Matcher::Full(m.name.into()), buckets)
                .map_err(|e| TelemetryError::Metrics(e.to_string()))?;
        }
    }
    // A retention pass takes seconds to minutes.
    builder = builder
        .set_buckets_for_metric(
            Matcher::Full("tradepipe_retention_pass_seconds".into()),
            &[
                0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0,
            ],
        )
        .map_err(|e| TelemetryError::Metrics(e.to_string()))?;
    let handle = builder
        .install_recorder()
        .map_err(|e| TelemetryError::Metrics(e.to_string()))?;
    let _ = PROMETHEUS.set(handle.clone());
    spawn_upkeep(handle.clone(), UPKEEP_INTERVAL)?;
    catalogue::describe_all();
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    metrics::gauge!("process_start_time_seconds").set(started);
    Ok(PROMETHEUS.get().cloned().unwrap_or(handle))
}

/// Runs [`PrometheusHandle::run_upkeep`] every `every` on a plain thread: the recorder is
/// process-global and outlives any one runtime (tests and subcommands start several), so the
/// thread lives as long as the process and does not hold its exit.
fn spawn_upkeep(handle: PrometheusHandle, every: Duration) -> Result<(), TelemetryError> {
    std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(every);
                handle.run_upkeep();
                metrics::counter!("tradepipe_metrics_upkeep_total").increment(1);
            }
        })
        .map(|_| ())
        .map_err(|e| TelemetryError::Metrics(format!("starting the upkeep thread: {e}")))
}

/// Readiness inputs, set by the components that know: the writer (PostgreSQL), the publisher
/// (Redis) and the feed (connected). `/readyz` answers 200 only when all are true. The read
/// replicas, when configured, are shown (`replicas=usable/configured`) but do not count: without
/// one, reads go to the primary.
#[derive(Debug, Default)]
pub struct Health {
    pub postgres: AtomicBool,
    pub redis: AtomicBool,
    pub feed: AtomicBool,
    pub replicas: OnceLock<ReadRouter>,
}

impl Health {
    pub fn set(flag: &AtomicBool, value: bool) {
        flag.store(value, Ordering::Relaxed);
    }

    fn report(&self) -> (bool, String) {
        let pg = self.postgres.load(Ordering::Relaxed);
        let redis = self.redis.load(Ordering::Relaxed);
        let feed = self.feed.load(Ordering::Relaxed);
        let ok = pg && redis && feed;
        let replicas = match self.replicas.get().map(|r| r.status()) {
            Some(all) if !all.is_empty() => {
                let usable = all.iter().filter(|r| r.state == ReplicaState::Usable);
                format!(" replicas={}/{}", usable.count(), all.len())
            }
            _ => String::new(),
        };
        (
            ok,
            format!("postgres={pg} redis={redis} feed={feed}{replicas}\n"),
        )
    }
}

#[derive(Clone)]
struct HttpState {
    metrics: PrometheusHandle,
    health: Arc<Health>,
}

/// Binds the listener now (so a port conflict fails at start) and returns the serving future.
pub(crate) async fn serve_http(
    addr: SocketAddr,
    metrics: PrometheusHandle,
    health: Arc<Health>,
) -> Result<impl Future<Output = ()>, TelemetryError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| TelemetryError::Bind { addr, source })?;
    let app = Router::new()
        .route(
            "/metrics",
            get(|State(s): State<HttpState>| async move { s.metrics.render() }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(|State(s): State<HttpState>| async move {
                let (ok, body) = s.health.report();
                let code = if ok {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                (code, body)
            }),
        )
        .with_state(HttpState { metrics, health });
    Ok(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "HTTP listener stopped");
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upkeep_runs(handle: &PrometheusHandle) -> Option<u64> {
        handle.render().lines().find_map(|l| {
            l.strip_prefix("tradepipe_metrics_upkeep_total ")
                .and_then(|v| v.trim().parse().ok())
        })
    }

    /// Issue 10, defect 2: nobody scrapes, yet upkeep runs (it drains histogram samples).
    #[test]
    fn upkeep_runs_without_a_scrape() {
        let handle = metrics_handle().expect("recorder installed");
        let h = metrics::histogram!("tradepipe_writer_flush_seconds");
        for i in 0..10_000 {
            h.record(f64::from(i) * 1e-6);
        }
        let deadline = std::time::Instant::now() + UPKEEP_INTERVAL * 3;
        while upkeep_runs(&handle).unwrap_or(0) < 1 {
            assert!(
                std::time::Instant::now() < deadline,
                "no upkeep within {:?} of the recorder's installation",
                UPKEEP_INTERVAL * 3
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
