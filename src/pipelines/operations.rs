//! What operators watch once the pipelines run: the metric catalogue's series registered at zero,
//! the PostgreSQL/Redis/process probes, the liveness watchdog, and READY=1 to systemd.

use crate::config::Config;
use crate::telemetry;
use std::sync::Arc;

/// What operators watch once the pipelines run: every known metric series registered at zero, the
/// PostgreSQL/Redis/process probes, the liveness watchdog, and READY=1 to systemd.
pub(super) fn start(
    cfg: &Config,
    market: &super::market::MarketPipeline,
    news: Option<&super::news::NewsPipeline>,
    notifier: Arc<crate::systemd::Notifier>,
) -> Watchdog {
    let sources = news.map(|n| n.sources.clone()).unwrap_or_default();
    telemetry::catalogue::register_known(&telemetry::catalogue::KnownLabels {
        symbols: cfg.market.symbols.clone(),
        sources: sources.clone(),
        connections: cfg
            .market
            .symbols
            .len()
            .div_ceil(cfg.binance.max_streams_per_connection.max(1)),
    });
    actix_rt::spawn(telemetry::probes::run(
        cfg.database.url.expose().to_string(),
        cfg.redis.target(),
    ));
    if let Some(n) = news {
        actix_rt::spawn(telemetry::probes::run_news_counts(n.store.clone()));
    }
    notifier.ready(&format!(
        "running: {} symbols, {} news sources",
        cfg.market.symbols.len(),
        sources.len()
    ));
    // READY=1 first: systemd starts counting WatchdogSec from it.
    let (stages, arbiters) = market.liveness_inputs();
    Watchdog(actix_rt::spawn(crate::systemd::run_watchdog(
        stages,
        arbiters,
        notifier.clone(),
    )))
}

/// The liveness watchdog task: stopped once shutdown begins, when stopping actor threads are
/// expected and systemd no longer expects pings.
pub(super) struct Watchdog(actix_rt::task::JoinHandle<()>);

impl Watchdog {
    pub(super) fn stop(&self) {
        self.0.abort();
    }
}
