//! Wiring: the only place that knows the whole shape. `run_daemon` starts the HTTP listener and
//! the pipelines, waits for SIGINT/SIGTERM, then shuts down in data-flow order so every buffer
//! is flushed before the process exits.

pub mod analysis;
pub mod market;
pub mod news;
mod operations;
mod resources;
pub mod retention;

pub use resources::Resources;

use crate::config::Config;
use crate::telemetry::progress::Progress;
use crate::telemetry::{self, Health};
use anyhow::Context as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub progress: bool,
    pub exit_after_trades: Option<u64>,
}

/// `tradepipe migrate`: create the database if it does not exist, apply pending migrations.
pub async fn migrate(cfg: &Config) -> anyhow::Result<()> {
    let pool = resources::connect_and_migrate(cfg).await?;
    pool.close().await;
    tracing::info!(database = %cfg.database.url, "migrations applied");
    Ok(())
}

/// `tradepipe run`.
pub fn run_daemon(cfg: Config, opts: RunOptions) -> anyhow::Result<ExitCode> {
    let system = actix::System::new();
    let result = system.block_on(daemon(cfg, opts));
    actix::System::current().stop();
    result
}

async fn daemon(cfg: Config, opts: RunOptions) -> anyhow::Result<ExitCode> {
    let metrics = telemetry::metrics_handle()?;
    let health = Arc::new(Health::default());
    let http = telemetry::serve_http(cfg.http.addr, metrics, health.clone()).await?;
    actix_rt::spawn(http);
    tracing::info!(addr = %cfg.http.addr, "serving /metrics /healthz /readyz");

    // One PostgreSQL pool and one Redis connection for every pipeline (see `resources`).
    let resources = Resources::open(&cfg)
        .await
        .context("connecting to PostgreSQL")?;
    let _ = health.replicas.set(resources.reads.clone());
    let progress = Arc::new(Progress::default());
    let market = market::MarketPipeline::start(&cfg, &resources, health.clone(), progress.clone())
        .await
        .context("starting the market data pipeline")?;
    tracing::info!(symbols = ?cfg.market.symbols, "market data pipeline running");
    let news = news::NewsPipeline::start(&cfg, &resources, None)
        .await
        .context("starting the news pipeline")?;
    let news_store = news.as_ref().map(|n| n.store.clone());
    let analysis = match &news_store {
        Some(store) => Some(
            analysis::AnalysisPipeline::start(&cfg, &resources, store.clone())
                .await
                .context("starting the analysis pipeline")?,
        ),
        None => None,
    };
    let retention = retention::RetentionPipeline::start(&cfg, &resources)
        .await
        .context("starting retention")?;
    // READY=1 goes out here: every pipeline is up.
    let notifier = Arc::new(crate::systemd::Notifier::from_env());
    let watchdog = operations::start(&cfg, &market, news.as_ref(), notifier.clone());

    let reason = wait_for_shutdown(&progress, &opts, news_store.as_deref(), &notifier).await?;
    tracing::info!(reason, "shutting down: stopping intake, draining, flushing");
    notifier.stopping(&format!("shutting down ({reason}): draining and flushing"));
    watchdog.stop();
    let deadline = Duration::from_secs(cfg.shutdown.deadline_secs);
    let started = Instant::now();
    let flushed = tokio::time::timeout(deadline, async {
        if let Some(r) = &retention {
            r.shutdown().await;
        }
        if let Some(n) = &news {
            n.shutdown().await;
        }
        if let Some(a) = &analysis {
            a.shutdown().await;
        }
        market.shutdown().await;
    })
    .await;
    resources.close().await;
    market.stop_arbiters();
    if opts.progress {
        print_progress(&progress, started, 0, true);
    }
    match flushed {
        Ok(()) => {
            tracing::info!(
                took_ms = started.elapsed().as_millis() as u64,
                "shutdown complete; every buffer flushed"
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(_) => {
            tracing::error!(
                deadline_s = deadline.as_secs(),
                "shutdown deadline passed before every buffer was flushed"
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Waits for SIGINT/SIGTERM (or the `--exit-after-trades` goal), printing the progress line and
/// sending it to systemd as STATUS=.
async fn wait_for_shutdown(
    progress: &Progress,
    opts: &RunOptions,
    news: Option<&dyn crate::store::FullDocumentStore>,
    notifier: &crate::systemd::Notifier,
) -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let started = Instant::now();
    let mut last_print = Instant::now();
    let mut last_written = 0u64;
    let (mut last_status, mut status_written) = (Instant::now(), 0u64);
    loop {
        tokio::select! {
            _ = term.recv() => return Ok("SIGTERM"),
            _ = int.recv() => return Ok("SIGINT"),
            _ = tick.tick() => {
                let written = progress.ticks_written.load(Ordering::Relaxed);
                if opts.exit_after_trades.is_some_and(|n| written >= n) {
                    return Ok("--exit-after-trades reached");
                }
                if notifier.enabled() && last_status.elapsed() >= STATUS_EVERY {
                    let rate = (written - status_written) as f64 / last_status.elapsed().as_secs_f64();
                    notifier.status(&summary(progress, rate as u64));
                    (last_status, status_written) = (Instant::now(), written);
                }
                if opts.progress && last_print.elapsed() >= Duration::from_secs(2) {
                    let rate = (written - last_written) as f64 / last_print.elapsed().as_secs_f64();
                    print_progress(progress, started, rate as u64, false);
                    if let Some(store) = news
                        && let Ok(c) = store.counts().await {
                            eprintln!(
                                "       news: raw pages pending {} / done {} / failed {}, articles {}",
                                c.raw_pending + c.raw_processing, c.raw_completed, c.raw_failed, c.articles
                            );
                        }
                    if let Some(store) = news
                        && let Ok(c) = store.analysis_counts().await {
                            eprintln!(
                                "   analysis: articles pending {} / analysed {} / failed {}, predictions {} (scored {})",
                                c.pending + c.processing, c.completed, c.failed, c.predictions, c.predictions_scored
                            );
                        }
                    last_print = Instant::now();
                    last_written = written;
                }
            }
        }
    }
}

/// How often systemd's STATUS= is refreshed (`systemctl status` shows the latest).
const STATUS_EVERY: Duration = Duration::from_secs(5);

/// The progress line without its padding, for STATUS=.
fn summary(p: &Progress, rate: u64) -> String {
    format!(
        "trades written {} ({rate}/s), candle upserts {}, newest trade lag {}",
        p.ticks_written.load(Ordering::Relaxed),
        p.candles_written.load(Ordering::Relaxed),
        newest_trade_lag(p)
    )
}

fn newest_trade_lag(p: &Progress) -> String {
    let newest = p.newest_trade_ms.load(Ordering::Relaxed);
    if newest > 0 {
        format!(
            "{:.1}s",
            (chrono::Utc::now().timestamp_millis() - newest) as f64 / 1000.0
        )
    } else {
        "-".into()
    }
}

fn print_progress(p: &Progress, started: Instant, rate: u64, last: bool) {
    if last {
        let span =
            p.last_write_ms.load(Ordering::Relaxed) - p.first_write_ms.load(Ordering::Relaxed);
        let n = p.ticks_written.load(Ordering::Relaxed);
        if span > 0 {
            eprintln!(
                "sustained: {n} trades written in {:.3}s between the first and the last write = {:.0} trades/s",
                span as f64 / 1000.0,
                n as f64 * 1000.0 / span as f64
            );
        }
    }
    let lag = newest_trade_lag(p);
    eprintln!(
        "{} [{:>6.1}s] trades written {:>9} ({rate:>7}/s)  candle upserts {:>7}  newest trade lag {lag}",
        if last { "done" } else { "    " },
        started.elapsed().as_secs_f64(),
        p.ticks_written.load(Ordering::Relaxed),
        p.candles_written.load(Ordering::Relaxed),
    );
}
