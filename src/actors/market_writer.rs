//! MarketWriterActor: persists ticks and candles to PostgreSQL in batches, one transaction per
//! batch. Flushes on size or age. If PostgreSQL is unavailable it keeps the data in memory up to
//! a bound, then spills to the on-disk spool, retries, and replays the spool once the database
//! answers again: nothing is dropped.

use super::{HandlerTimer, MailboxDepth, count_restart};
use crate::config::WriterConfig;
use crate::domain::{Candle, Interval, MarketBatch, Symbol};
use crate::telemetry::progress::Progress;
use crate::store::spool::Spool;
use crate::store::{MarketStore, StoreError, WriteStats};
use crate::telemetry::Health;
use actix::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ACTOR: &str = "market_writer";

/// Ticks in exchange order and the candle states they produced.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Persist(pub MarketBatch);

/// Write (or, with the database down, spool) everything held in memory; answered when done.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FlushAll;

/// What waits in memory for the next transaction. Candles are keyed by their bucket: only the
/// newest state of each needs writing.
#[derive(Default)]
struct Pending {
    batch: MarketBatch,
    candles: HashMap<(Symbol, Interval, i64), Candle>,
    since: Option<Instant>,
}

impl Pending {
    fn add(&mut self, b: MarketBatch) {
        if self.since.is_none() && !b.is_empty() {
            self.since = Some(Instant::now());
        }
        self.batch.ticks.extend(b.ticks);
        for c in b.candles {
            self.candles
                .insert((c.symbol.clone(), c.interval, c.open_time_ms), c);
        }
    }

    fn ticks(&self) -> usize {
        self.batch.ticks.len()
    }

    fn is_empty(&self) -> bool {
        self.batch.ticks.is_empty() && self.candles.is_empty()
    }

    fn take(&mut self) -> MarketBatch {
        let mut b = std::mem::take(&mut self.batch);
        b.candles = self.candles.drain().map(|(_, c)| c).collect();
        // Oldest first keeps the on-disk spool and logs in a natural order.
        b.candles.sort_by_key(|a| (a.open_time_ms, a.interval));
        self.since = None;
        b
    }
}

pub struct MarketWriterActor {
    store: Arc<dyn MarketStore>,
    spool: Spool,
    cfg: WriterConfig,
    pending: Pending,
    db_up: bool,
    next_attempt: Instant,
    depth: MailboxDepth,
    capacity: usize,
    health: Arc<Health>,
    progress: Arc<Progress>,
}

impl MarketWriterActor {
    pub fn new(
        store: Arc<dyn MarketStore>,
        spool: Spool,
        cfg: WriterConfig,
        depth: MailboxDepth,
        capacity: usize,
        health: Arc<Health>,
        progress: Arc<Progress>,
    ) -> Self {
        MarketWriterActor {
            store,
            spool,
            cfg,
            pending: Pending::default(),
            db_up: true,
            next_attempt: Instant::now(),
            depth,
            capacity,
            health,
            progress,
        }
    }

    fn gauges(&self) {
        metrics::gauge!("tradepipe_writer_buffered_ticks").set(self.pending.ticks() as f64);
        metrics::gauge!("tradepipe_spool_batches").set(self.spool.depth_batches() as f64);
        metrics::gauge!("tradepipe_spool_bytes").set(self.spool.depth_bytes() as f64);
    }

    /// Writes what is pending as one transaction; the actor handles nothing else meanwhile, so
    /// the bounded mailbox in front of it fills and the producers wait.
    fn flush(&mut self) -> impl ActorFuture<Self, Output = ()> + 'static {
        let batch = self.pending.take();
        let store = self.store.clone();
        async move {
            let started = Instant::now();
            let res = store.write_batch(&batch).await;
            (batch, res, started.elapsed())
        }
        .into_actor(self)
        .map(|(batch, res, took), act, _ctx| act.after_write(batch, res, took, false))
    }

    /// Replays the oldest spool segment. Order across segments and live data does not matter for
    /// correctness: ticks are deduplicated by trade id and a candle state never overwrites a
    /// newer one (its last_trade_id guards the upsert).
    fn drain_spool_segment(&mut self) -> Option<impl ActorFuture<Self, Output = ()> + 'static> {
        let segment = match self.spool.oldest() {
            Ok(Some(seg)) => seg,
            Ok(None) => return None,
            Err(e) => {
                metrics::counter!("tradepipe_writer_errors_total", "kind" => "spool_read")
                    .increment(1);
                tracing::error!(error = %e, "reading the spool failed; will retry");
                return None;
            }
        };
        let store = self.store.clone();
        Some(
            async move {
                let mut result = Ok(());
                let mut stats = WriteStats::default();
                for b in &segment.batches {
                    match store.write_batch(b).await {
                        Ok(s) => {
                            stats.ticks_inserted += s.ticks_inserted;
                            stats.ticks_duplicate += s.ticks_duplicate;
                            stats.candles_upserted += s.candles_upserted;
                        }
                        Err(e) => {
                            result = Err(e);
                            break;
                        }
                    }
                }
                (segment, stats, result)
            }
            .into_actor(self)
            .map(|(segment, stats, result), act, _ctx| match result {
                Ok(()) => {
                    act.record(&stats);
                    if let Err(e) = act.spool.remove(segment) {
                        tracing::error!(error = %e, "removing a replayed spool segment failed");
                    }
                    tracing::info!(
                        ticks = stats.ticks_inserted,
                        left = act.spool.depth_batches(),
                        "replayed a spool segment"
                    );
                    act.gauges();
                }
                Err(e) => act.mark_down(&e),
            }),
        )
    }

    fn record(&self, s: &WriteStats) {
        metrics::counter!("tradepipe_writer_rows_written_total", "table" => "price_ticks")
            .increment(s.ticks_inserted);
        metrics::counter!("tradepipe_writer_rows_written_total", "table" => "price_candles")
            .increment(s.candles_upserted);
        self.progress.record_written(s);
    }

    fn mark_down(&mut self, e: &StoreError) {
        if self.db_up {
            tracing::warn!(error = %e, "PostgreSQL unavailable; buffering, then spooling to disk");
        }
        self.db_up = false;
        Health::set(&self.health.postgres, false);
        self.next_attempt = Instant::now() + Duration::from_millis(self.cfg.retry_interval_ms);
        metrics::counter!("tradepipe_writer_errors_total", "kind" => "unavailable").increment(1);
    }

    fn after_write(
        &mut self,
        batch: MarketBatch,
        res: Result<WriteStats, StoreError>,
        took: Duration,
        shutting_down: bool,
    ) {
        match res {
            Ok(stats) => {
                metrics::histogram!("tradepipe_writer_flush_seconds").record(took.as_secs_f64());
                metrics::histogram!("tradepipe_writer_batch_ticks")
                    .record(batch.ticks.len() as f64);
                self.record(&stats);
                if let Some(newest) = batch.ticks.iter().map(|t| t.time_ms).max() {
                    self.progress
                        .newest_trade_ms
                        .fetch_max(newest, std::sync::atomic::Ordering::Relaxed);
                }
                if !self.db_up {
                    tracing::info!("PostgreSQL is back; writing again");
                }
                self.db_up = true;
                Health::set(&self.health.postgres, true);
            }
            Err(e) if e.is_retryable() => {
                self.mark_down(&e);
                // Put it back in front of anything newer.
                let newer = std::mem::take(&mut self.pending);
                self.pending.add(batch);
                self.pending.add(newer.take_owned());
                if shutting_down || self.pending.ticks() >= self.cfg.max_buffered_ticks {
                    self.spill();
                }
            }
            Err(e) => {
                // Not the database's availability but the data (or schema): retrying cannot help.
                // Keep the batch on disk for an operator instead of dropping it.
                metrics::counter!("tradepipe_writer_errors_total", "kind" => "rejected")
                    .increment(1);
                tracing::error!(error = %e, ticks = batch.ticks.len(), "PostgreSQL rejected a batch; keeping it in the spool's rejected/ folder");
                if let Err(se) = keep_rejected(&self.cfg.spool_dir, &batch, &e.to_string()) {
                    tracing::error!(error = %se, "could not keep the rejected batch on disk");
                }
            }
        }
        self.gauges();
    }

    fn spill(&mut self) {
        let batch = self.pending.take();
        if batch.is_empty() {
            return;
        }
        match self.spool.append(&batch) {
            Ok(()) => tracing::info!(
                ticks = batch.ticks.len(),
                spool_batches = self.spool.depth_batches(),
                "spilled to the on-disk spool"
            ),
            Err(e) => {
                // The disk failed too: keep the data in memory (the mailbox bound still holds the
                // producers back) and try again later.
                tracing::error!(error = %e, "spooling to disk failed; keeping the batch in memory");
                self.pending.add(batch);
            }
        }
    }
}

impl Pending {
    fn take_owned(mut self) -> MarketBatch {
        self.take()
    }
}

impl Actor for MarketWriterActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.capacity);
        let tick = Duration::from_millis((self.cfg.flush_interval_ms / 2).max(10));
        ctx.run_interval(tick, |act, ctx| {
            if !act.db_up && Instant::now() < act.next_attempt {
                return;
            }
            let due = act
                .pending
                .since
                .is_some_and(|s| s.elapsed() >= Duration::from_millis(act.cfg.flush_interval_ms));
            if !act.pending.is_empty() && (due || !act.db_up) {
                let f = act.flush();
                ctx.wait(f);
            } else if act.db_up && !act.spool.is_empty() {
                if let Some(f) = act.drain_spool_segment() {
                    ctx.wait(f);
                }
            } else if !act.db_up {
                // Nothing pending, but the database was down: probe it so readiness recovers.
                let store = act.store.clone();
                ctx.wait(
                    async move { store.ping().await }.into_actor(act).map(
                        |res, act, _| match res {
                            Ok(()) => {
                                act.db_up = true;
                                Health::set(&act.health.postgres, true);
                            }
                            Err(e) => act.mark_down(&e),
                        },
                    ),
                );
            }
        });
        self.gauges();
    }
}

impl Supervised for MarketWriterActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        count_restart(ACTOR);
    }
}

impl Handler<Persist> for MarketWriterActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, msg: Persist, _ctx: &mut Context<Self>) -> Self::Result {
        let _timer = HandlerTimer::start(ACTOR);
        self.depth.taken(msg.0.ticks.len() + msg.0.candles.len());
        self.pending.add(msg.0);
        if self.db_up && self.pending.ticks() >= self.cfg.batch_max_ticks {
            return AtomicResponse::new(Box::pin(self.flush()));
        }
        if !self.db_up && self.pending.ticks() >= self.cfg.max_buffered_ticks {
            self.spill();
        }
        self.gauges();
        AtomicResponse::new(Box::pin(async {}.into_actor(self)))
    }
}

impl Handler<FlushAll> for MarketWriterActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _msg: FlushAll, _ctx: &mut Context<Self>) -> Self::Result {
        if self.pending.is_empty() {
            return AtomicResponse::new(Box::pin(async {}.into_actor(self)));
        }
        if !self.db_up {
            self.spill();
            return AtomicResponse::new(Box::pin(async {}.into_actor(self)));
        }
        let batch = self.pending.take();
        let store = self.store.clone();
        AtomicResponse::new(Box::pin(
            async move {
                let started = Instant::now();
                let res = store.write_batch(&batch).await;
                (batch, res, started.elapsed())
            }
            .into_actor(self)
            .map(|(batch, res, took), act, _| act.after_write(batch, res, took, true)),
        ))
    }
}

/// Writes a batch PostgreSQL refused to `{spool_dir}/rejected/<time>.json` with the error, so an
/// operator can inspect and replay it; it is never silently dropped.
fn keep_rejected(
    spool_dir: &std::path::Path,
    batch: &MarketBatch,
    error: &str,
) -> std::io::Result<()> {
    let dir = spool_dir.join("rejected");
    std::fs::create_dir_all(&dir)?;
    let name = format!("{}.json", chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ"));
    let body = serde_json::json!({ "error": error, "batch": batch });
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(
        &tmp,
        serde_json::to_vec(&body).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(tmp, dir.join(name))
}
