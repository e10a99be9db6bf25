//! Logs (tracing: text on a terminal, JSON for journald), Prometheus metrics, and the small HTTP
//! listener that serves `/metrics`, `/healthz` and `/readyz`.

use crate::config::{LogConfig, LogFormat};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use tracing_subscriber::EnvFilter;

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

/// Installs the Prometheus recorder once per process and returns its handle (tests and several
/// pipelines in one process share it).
pub fn metrics_handle() -> Result<PrometheusHandle, TelemetryError> {
    if let Some(h) = PROMETHEUS.get() {
        return Ok(h.clone());
    }
    // Histograms (aggregatable across instances) for everything but tick-to-publish latency,
    // which is a summary: its p50/p99 are what the latency target is stated in.
    let seconds = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    let mut builder = PrometheusBuilder::new();
    for name in [
        "tradepipe_actor_handler_seconds",
        "tradepipe_writer_flush_seconds",
        "tradepipe_redis_pipeline_seconds",
    ] {
        builder = builder
            .set_buckets_for_metric(Matcher::Full(name.into()), &seconds)
            .map_err(|e| TelemetryError::Metrics(e.to_string()))?;
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
        .set_buckets_for_metric(
            Matcher::Full("tradepipe_writer_batch_ticks".into()),
            &[
                1.0, 10.0, 100.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 50000.0,
            ],
        )
        .map_err(|e| TelemetryError::Metrics(e.to_string()))?
        .install_recorder()
        .map_err(|e| TelemetryError::Metrics(e.to_string()))?;
    let _ = PROMETHEUS.set(handle.clone());
    describe_metrics();
    Ok(PROMETHEUS.get().cloned().unwrap_or(handle))
}

/// Readiness inputs, set by the components that know: the writer (PostgreSQL), the publisher
/// (Redis) and the feed (connected). `/readyz` answers 200 only when all are true.
#[derive(Debug, Default)]
pub struct Health {
    pub postgres: AtomicBool,
    pub redis: AtomicBool,
    pub feed: AtomicBool,
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
        (ok, format!("postgres={pg} redis={redis} feed={feed}\n"))
    }
}

#[derive(Clone)]
struct HttpState {
    metrics: PrometheusHandle,
    health: Arc<Health>,
}

/// Binds the listener now (so a port conflict fails at start) and returns the serving future.
pub async fn serve_http(
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

/// Help texts for the metrics, so `/metrics` documents itself (docs/metrics.md has the catalogue).
fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "tradepipe_trades_received_total",
        "Trades received from the exchange (live and backfilled), per symbol."
    );
    describe_counter!(
        "tradepipe_trades_duplicate_total",
        "Trades dropped because their id was already processed, per symbol."
    );
    describe_counter!(
        "tradepipe_feed_messages_malformed_total",
        "WebSocket messages that could not be parsed (logged and skipped)."
    );
    describe_counter!(
        "tradepipe_feed_gaps_total",
        "Trade-id gaps detected, per symbol."
    );
    describe_counter!(
        "tradepipe_feed_backfilled_trades_total",
        "Trades fetched over REST to fill gaps, per symbol."
    );
    describe_counter!(
        "tradepipe_feed_gap_trades_unfilled_total",
        "Trades in gaps that could not be backfilled, per symbol."
    );
    describe_counter!(
        "tradepipe_feed_reconnects_total",
        "WebSocket reconnects, by reason."
    );
    describe_gauge!(
        "tradepipe_feed_connected",
        "1 while the feed connection is up, per connection."
    );
    describe_gauge!(
        "tradepipe_feed_lag_seconds",
        Unit::Seconds,
        "Wall clock minus the newest trade's exchange time."
    );
    describe_counter!(
        "tradepipe_actor_messages_total",
        "Messages handled, per actor."
    );
    describe_histogram!(
        "tradepipe_actor_handler_seconds",
        Unit::Seconds,
        "Handler time per message, per actor."
    );
    describe_gauge!(
        "tradepipe_actor_mailbox_depth",
        "Messages sent to an actor and not yet handled."
    );
    describe_counter!(
        "tradepipe_actor_restarts_total",
        "Supervisor restarts, per actor."
    );
    describe_counter!(
        "tradepipe_candles_closed_total",
        "Candles closed, per interval."
    );
    describe_counter!(
        "tradepipe_writer_rows_written_total",
        "Rows written to PostgreSQL, per table."
    );
    describe_histogram!(
        "tradepipe_writer_batch_ticks",
        "Ticks per PostgreSQL transaction."
    );
    describe_histogram!(
        "tradepipe_writer_flush_seconds",
        Unit::Seconds,
        "Time to write one batch to PostgreSQL."
    );
    describe_gauge!(
        "tradepipe_writer_buffered_ticks",
        "Ticks held in memory waiting for PostgreSQL."
    );
    describe_gauge!(
        "tradepipe_spool_batches",
        "Batches waiting in the on-disk spool."
    );
    describe_gauge!(
        "tradepipe_spool_bytes",
        Unit::Bytes,
        "Bytes waiting in the on-disk spool."
    );
    describe_counter!(
        "tradepipe_writer_errors_total",
        "Failed PostgreSQL writes, by kind."
    );
    describe_counter!(
        "tradepipe_redis_commands_total",
        "Commands sent to Redis in pipelines."
    );
    describe_counter!(
        "tradepipe_redis_unpublished_total",
        "Updates not published because Redis was unavailable, by kind."
    );
    describe_histogram!(
        "tradepipe_redis_pipeline_seconds",
        Unit::Seconds,
        "Round trip of one Redis pipeline."
    );
    describe_histogram!(
        "tradepipe_tick_to_publish_seconds",
        Unit::Seconds,
        "From reading a trade off the socket to Redis acknowledging its PUBLISH."
    );
}
