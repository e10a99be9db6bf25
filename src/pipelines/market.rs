//! The market data pipeline:
//!
//! ```text
//! ExchangeFeedActor (1 per <=1024 streams) --TradeBatch--> CandleBuilderActor --Persist--> MarketWriterActor --> PostgreSQL (+ spool)
//!                                                                     \--PublishBatch--> RedisPublisherActor --> Redis
//! ```
//! Feeds and the builder share one arbiter (thread); the writer and the publisher each have
//! their own, so JSON parsing, COPY encoding and Redis pipelines use both cores. Every actor runs
//! under a `Supervisor`; every mailbox is bounded.

use super::resources::Resources;
use crate::actors::candle_builder::{CandleBuilderActor, Drain};
use crate::actors::exchange_feed::{ExchangeFeedActor, StopIntake};
use crate::actors::market_writer::{FlushAll, MarketWriterActor};
use crate::actors::redis_publisher::{CacheSymbols, FlushPublisher, RedisPublisherActor};
use crate::actors::{Mailbox, MailboxDepth};
use crate::config::Config;
use crate::domain::{CandleBook, SymbolInfo};
use crate::store::spool::Spool;
use crate::store::spool_thread::SpoolThread;
use crate::store::{self, MarketStore, PgMarketStore};
use crate::telemetry::Health;
use crate::telemetry::progress::Progress;
use actix::{Arbiter, Supervisor};
use anyhow::Context as _;
use rust_decimal::Decimal;
use std::sync::Arc;
use std::time::Duration;

pub(crate) struct MarketPipeline {
    feeds: Vec<Mailbox<ExchangeFeedActor>>,
    builder: Mailbox<CandleBuilderActor>,
    writer: Mailbox<MarketWriterActor>,
    publisher: Mailbox<RedisPublisherActor>,
    arbiters: Vec<Arbiter>,
}

/// Reference data for symbols that exchangeInfo could not give: split off a known quote asset.
pub(crate) fn symbol_info_from_config(symbol: &str) -> SymbolInfo {
    const QUOTES: [&str; 10] = [
        "FDUSD", "USDT", "USDC", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "TRY",
    ];
    let (base, quote) = QUOTES
        .iter()
        .find(|q| symbol.len() > q.len() && symbol.ends_with(*q))
        .map(|q| (&symbol[..symbol.len() - q.len()], *q))
        .unwrap_or((symbol, ""));
    SymbolInfo {
        symbol: symbol.to_string(),
        base_asset: base.to_string(),
        quote_asset: quote.to_string(),
        exchange: "binance".into(),
        precision_price: 8,
        precision_qty: 8,
        min_qty: Decimal::ZERO,
        is_active: true,
    }
}

impl MarketPipeline {
    pub async fn start(
        cfg: &Config,
        resources: &Resources,
        health: Arc<Health>,
        progress: Arc<Progress>,
    ) -> anyhow::Result<MarketPipeline> {
        let pool = resources.pg.clone();
        let store = PgMarketStore::new(pool.clone());

        // Symbols: from the exchange when it answers, else from configuration.
        let symbols = cfg.market.symbols.clone();
        let infos = match crate::actors::exchange_feed::binance_rest(&cfg.binance) {
            Ok(rest) => {
                match tokio::time::timeout(Duration::from_secs(10), rest.exchange_info(&symbols))
                    .await
                {
                    Ok(Ok(found)) if !found.is_empty() => found,
                    Ok(Ok(_)) => Vec::new(),
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "exchangeInfo failed; symbols from configuration");
                        Vec::new()
                    }
                    Err(_) => {
                        tracing::warn!("exchangeInfo timed out; symbols from configuration");
                        Vec::new()
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "no REST client; symbols from configuration");
                Vec::new()
            }
        };
        let infos: Vec<SymbolInfo> = symbols
            .iter()
            .map(|s| {
                infos
                    .iter()
                    .find(|i| &i.symbol == s)
                    .cloned()
                    .unwrap_or_else(|| symbol_info_from_config(s))
            })
            .collect();
        store
            .upsert_symbols(&infos)
            .await
            .context("upserting trading.symbols")?;
        let today = chrono::Utc::now().date_naive();
        store
            .ensure_tick_partitions(today, 3)
            .await
            .context("creating tick partitions")?;

        // Resume: each symbol's open candles as stored, so a restart mid-interval continues them.
        let mut books = Vec::with_capacity(symbols.len());
        for s in &symbols {
            let state = store
                .resume_state(s)
                .await
                .with_context(|| format!("loading the resume state of {s}"))?;
            if let Some(id) = state.last_trade_id {
                tracing::info!(symbol = %s, last_trade_id = id, "resuming after the last stored trade");
            }
            books.push(CandleBook::restore(
                Arc::from(s.as_str()),
                state.latest_candles,
            ));
        }

        let spool = Spool::open(&cfg.writer.spool_dir)
            .with_context(|| format!("opening the spool in {}", cfg.writer.spool_dir.display()))?;
        if !spool.is_empty() {
            tracing::warn!(
                batches = spool.depth_batches(),
                "spool holds batches from an earlier run; they will be written first"
            );
        }
        let spool = SpoolThread::start(spool).context("starting the spool thread")?;

        let feed_arbiter = Arbiter::new();
        let pg_arbiter = Arbiter::new();
        let redis_arbiter = Arbiter::new();

        let depth = MailboxDepth::new("redis_publisher", cfg.mailbox.redis_publisher);
        let (rcfg, cap, h) = (
            cfg.redis.clone(),
            cfg.mailbox.redis_publisher,
            health.clone(),
        );
        let d = depth.clone();
        let publisher = Mailbox::new(
            Supervisor::start_in_arbiter(&redis_arbiter.handle(), move |_| {
                RedisPublisherActor::new(rcfg, d, cap, h)
            }),
            depth,
        );

        let depth = MailboxDepth::new("market_writer", cfg.mailbox.market_writer);
        let (wcfg, cap, h, p) = (
            cfg.writer.clone(),
            cfg.mailbox.market_writer,
            health.clone(),
            progress.clone(),
        );
        let (url, max) = (
            cfg.database.url.expose().to_string(),
            cfg.database.max_connections,
        );
        let d = depth.clone();
        // The writer's pool is created lazily on the writer's own thread, so its sockets belong
        // to that thread's runtime.
        let writer_store =
            store::postgres::connect_lazy(&url, max).context("configuring the writer's pool")?;
        let writer = Mailbox::new(
            Supervisor::start_in_arbiter(&pg_arbiter.handle(), move |ctx| {
                ctx.set_mailbox_capacity(cap);
                let store: Arc<dyn MarketStore> = Arc::new(PgMarketStore::new(writer_store));
                MarketWriterActor::new(store, spool, wcfg, d, cap, h, p)
            }),
            depth,
        );
        Health::set(&health.postgres, true);

        let depth = MailboxDepth::new("candle_builder", cfg.mailbox.candle_builder);
        let (w, pb, d) = (writer.recipient(), publisher.recipient(), depth.clone());
        let cap = cfg.mailbox.candle_builder;
        let close_check = Duration::from_millis(cfg.market.close_check_ms);
        let close_grace = Duration::from_millis(cfg.market.close_grace_ms);
        let builder = Mailbox::new(
            Supervisor::start_in_arbiter(&feed_arbiter.handle(), move |ctx| {
                ctx.set_mailbox_capacity(cap);
                CandleBuilderActor::new(books, w, pb, d, cap, close_check, close_grace)
            }),
            depth,
        );

        let bcfg = Arc::new(cfg.binance.clone());
        let mut feeds = Vec::new();
        for (i, group) in symbols
            .chunks(cfg.binance.max_streams_per_connection)
            .enumerate()
        {
            let (group, bcfg, b, h) = (
                group.to_vec(),
                bcfg.clone(),
                builder.clone(),
                health.clone(),
            );
            let addr = Supervisor::start_in_arbiter(&feed_arbiter.handle(), move |_| {
                ExchangeFeedActor::new(i, group, bcfg, b, h)
            });
            feeds.push(Mailbox::new(addr, MailboxDepth::new("exchange_feed", 1)));
        }

        if publisher.ask(CacheSymbols(infos)).await.is_err() {
            tracing::warn!("redis publisher not running; symbol cache not written");
        }
        Ok(MarketPipeline {
            feeds,
            builder,
            writer,
            publisher,
            arbiters: vec![feed_arbiter, pg_arbiter, redis_arbiter],
        })
    }

    /// Stop intake, then drain stage by stage in data-flow order: each `ask` is answered only
    /// after everything sent before it was handled.
    pub async fn shutdown(&self) {
        for f in &self.feeds {
            let _ = f.ask(StopIntake).await;
        }
        let _ = self.builder.ask(Drain).await;
        let _ = self.writer.ask(FlushAll).await;
        let _ = self.publisher.ask(FlushPublisher).await;
    }

    /// What the liveness check watches: the mailboxes that carry data, and the actor threads.
    pub(crate) fn liveness_inputs(&self) -> crate::systemd::LivenessInputs {
        let stages: Vec<Box<dyn crate::systemd::Stage>> = vec![
            Box::new(self.builder.depth().clone()),
            Box::new(self.writer.depth().clone()),
            Box::new(self.publisher.depth().clone()),
        ];
        // In the order `start` creates them.
        let names = [
            "feed_and_candle_builder",
            "market_writer",
            "redis_publisher",
        ];
        let arbiters = names
            .into_iter()
            .zip(&self.arbiters)
            .map(|(n, a)| (n, a.handle()))
            .collect();
        (stages, arbiters)
    }

    pub(crate) fn stop_arbiters(&self) {
        for a in &self.arbiters {
            a.stop();
        }
    }
}
