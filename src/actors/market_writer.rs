//! MarketWriterActor: persists ticks and candles to PostgreSQL in batches, one transaction per
//! batch. Flushes on size or age. If PostgreSQL is unavailable it keeps the data in memory up to
//! a bound, then spills to the on-disk spool, retries, and replays the spool once the database
//! answers again: nothing is dropped. Spool files are written on the spool's own thread
//! ([`SpoolThread`]), never on this actor's: a slow disk holds back the spill, not the mailbox.

use super::{HandlerTimer, MailboxDepth, count_restart};
use crate::config::WriterConfig;
use crate::domain::{Candle, Interval, MarketBatch, Symbol};
use crate::store::spool_thread::{Answer, SpoolThread};
use crate::store::{MarketStore, SpoolError, SpoolSegment, StoreError, WriteStats};
use crate::telemetry::Health;
use crate::telemetry::progress::Progress;
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
/// newest state of each needs writing. A symbol's open candles also wait until they are due:
/// its 1m candle `writer.open_candle_write_ms` after it was last taken, its longer ones
/// `writer.open_candle_long_write_ms` after they were. Ticks and closed candles never wait.
#[derive(Default)]
struct Pending {
    /// `writer.open_candle_write_ms` (1m) and `open_candle_long_write_ms` (5m and longer).
    open_every: Duration,
    open_long_every: Duration,
    batch: MarketBatch,
    candles: HashMap<(Symbol, Interval, i64), Candle>,
    /// When the oldest tick or candle that is not held back arrived.
    since: Option<Instant>,
    /// When each symbol's open candles were last taken for writing: [1m, longer intervals].
    /// Keyed by symbol alone so the per-candle lookup on the hot path clones nothing.
    open_taken: HashMap<Symbol, [Option<Instant>; 2]>,
    /// When the earliest held-back open candle becomes due.
    open_due: Option<Instant>,
}

impl Pending {
    fn new(cfg: &WriterConfig) -> Pending {
        Pending {
            open_every: Duration::from_millis(cfg.open_candle_write_ms),
            open_long_every: Duration::from_millis(
                cfg.open_candle_long_write_ms.max(cfg.open_candle_write_ms),
            ),
            ..Pending::default()
        }
    }

    fn add(&mut self, b: MarketBatch) {
        if self.since.is_none() && (!b.ticks.is_empty() || b.candles.iter().any(|c| c.closed)) {
            self.since = Some(Instant::now());
        }
        for c in b.candles.iter().filter(|c| !c.closed) {
            // A symbol never written is due at once; the others a full interval after their
            // last write.
            let long = c.interval != Interval::M1;
            let at = match self
                .open_taken
                .get(&c.symbol)
                .and_then(|t| t[usize::from(long)])
            {
                Some(t) => t + self.every(long),
                None => Instant::now(),
            };
            if self.open_due.is_none_or(|d| at < d) {
                self.open_due = Some(at);
            }
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

    /// Everything held, open candles included (shutdown, spilling, retries).
    fn take(&mut self) -> MarketBatch {
        let mut b = std::mem::take(&mut self.batch);
        b.candles = self.candles.drain().map(|(_, c)| c).collect();
        // Oldest first keeps the on-disk spool and logs in a natural order.
        b.candles.sort_by_key(|a| (a.open_time_ms, a.interval));
        self.since = None;
        self.open_due = None;
        b
    }

    /// For a flush: every tick and closed candle, and the open candles that are due (a symbol's
    /// 5m-and-longer intervals together, so they stay at one trade id). The open
    /// candles of the other symbols stay for a later flush; newer states replace them meanwhile.
    fn take_due(&mut self, now: Instant) -> MarketBatch {
        if self.open_every.is_zero() {
            return self.take();
        }
        let mut b = std::mem::take(&mut self.batch);
        // Per symbol, [1m, longer]: whether that class is due this time (decided once).
        let mut due: HashMap<Symbol, [Option<bool>; 2]> = HashMap::new();
        let mut held = HashMap::new();
        let mut open_due: Option<Instant> = None;
        let (short, long) = (self.open_every, self.open_long_every);
        for (key, c) in std::mem::take(&mut self.candles) {
            let class = usize::from(c.interval != Interval::M1);
            let every = if class == 1 { long } else { short };
            let last = self.open_taken.get(&c.symbol).and_then(|t| t[class]);
            let decided = match due.get_mut(&c.symbol) {
                Some(d) => d,
                None => due.entry(c.symbol.clone()).or_default(),
            };
            let symbol_due = *decided[class]
                .get_or_insert_with(|| last.is_none_or(|t| now.duration_since(t) >= every));
            if c.closed || symbol_due {
                b.candles.push(c);
            } else {
                let at = last.map_or(now, |t| t + every);
                open_due = Some(open_due.map_or(at, |d| d.min(at)));
                held.insert(key, c);
            }
        }
        for (symbol, classes) in due {
            let taken = self.open_taken.entry(symbol).or_default();
            for (slot, was_due) in taken.iter_mut().zip(classes) {
                if was_due == Some(true) {
                    *slot = Some(now);
                }
            }
        }
        self.candles = held;
        self.open_due = open_due;
        self.since = None;
        b.candles.sort_by_key(|a| (a.open_time_ms, a.interval));
        b
    }

    fn every(&self, long: bool) -> Duration {
        if long {
            self.open_long_every
        } else {
            self.open_every
        }
    }

    /// Whether a flush has anything to take at `now`: ticks or candles older than `age`, or a
    /// held-back open candle that became due.
    fn due(&self, now: Instant, age: Duration) -> bool {
        self.since.is_some_and(|s| now.duration_since(s) >= age)
            || self.open_due.is_some_and(|d| now >= d)
    }
}

pub struct MarketWriterActor {
    store: Arc<dyn MarketStore>,
    spool: SpoolThread,
    cfg: WriterConfig,
    pending: Pending,
    db_up: bool,
    /// A spool segment is being read, replayed or removed: no second drain meanwhile.
    draining: bool,
    next_attempt: Instant,
    depth: MailboxDepth,
    capacity: usize,
    health: Arc<Health>,
    progress: Arc<Progress>,
}

impl MarketWriterActor {
    pub fn new(
        store: Arc<dyn MarketStore>,
        spool: SpoolThread,
        cfg: WriterConfig,
        depth: MailboxDepth,
        capacity: usize,
        health: Arc<Health>,
        progress: Arc<Progress>,
    ) -> Self {
        MarketWriterActor {
            store,
            spool,
            pending: Pending::new(&cfg),
            cfg,
            db_up: true,
            draining: false,
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
        let batch = self.pending.take_due(Instant::now());
        let store = self.store.clone();
        async move {
            let started = Instant::now();
            let res = store.write_batch(&batch).await;
            (batch, res, started.elapsed())
        }
        .into_actor(self)
        .map(|(batch, res, took), act, ctx| {
            let rejected = act.after_write(batch, res, took);
            act.settle(rejected, ctx);
        })
    }

    /// Replays the oldest spool segment. Order across segments and live data does not matter for
    /// correctness: ticks are deduplicated by trade id and a candle state never overwrites a
    /// newer one (its last_trade_id guards the upsert). The segment is read and removed on the
    /// spool thread while this actor goes on taking messages; only the database writes hold it,
    /// as a live flush does.
    fn drain_spool_segment(&mut self, ctx: &mut Context<Self>) {
        self.draining = true;
        let spool = self.spool.clone();
        ctx.spawn(async move { spool.oldest().await }.into_actor(self).map(
            |res, act, ctx| match res {
                Ok(Some(segment)) => ctx.wait(act.replay_segment(segment)),
                Ok(None) => act.draining = false,
                Err(e) => {
                    act.draining = false;
                    metrics::counter!("tradepipe_writer_errors_total", "kind" => "spool_read")
                        .increment(1);
                    tracing::error!(error = %e, "reading the spool failed; will retry");
                }
            },
        ));
    }

    fn replay_segment(
        &mut self,
        segment: SpoolSegment,
    ) -> impl ActorFuture<Self, Output = ()> + use<> {
        let store = self.store.clone();
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
        .map(|(segment, stats, result), act, ctx| match result {
            Ok(()) => {
                act.record(&stats);
                let spool = act.spool.clone();
                ctx.spawn(
                    async move { spool.remove(segment).await }
                        .into_actor(act)
                        .map(move |res, act, _| {
                            act.draining = false;
                            match res {
                                Ok(()) => tracing::info!(
                                    ticks = stats.ticks_inserted,
                                    left = act.spool.depth_batches(),
                                    "replayed a spool segment"
                                ),
                                Err(e) => tracing::error!(
                                    error = %e,
                                    "removing a replayed spool segment failed"
                                ),
                            }
                            act.gauges();
                        }),
                );
            }
            Err(e) => {
                act.draining = false;
                act.mark_down(&e);
            }
        })
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

    /// Accounts for a finished write. A retryable failure puts the batch back in memory in front
    /// of anything newer; a batch the database refused is returned for the caller to keep.
    fn after_write(
        &mut self,
        batch: MarketBatch,
        res: Result<WriteStats, StoreError>,
        took: Duration,
    ) -> Option<Rejected> {
        let rejected = match res {
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
                None
            }
            Err(e) if e.is_retryable() => {
                self.mark_down(&e);
                // Put it back in front of anything newer.
                let newer = std::mem::replace(&mut self.pending, Pending::new(&self.cfg));
                self.pending.open_taken = newer.open_taken.clone();
                self.pending.add(batch);
                self.pending.add(newer.take_owned());
                None
            }
            Err(e) => {
                // Not the database's availability but the data (or schema): retrying cannot help.
                // Keep the batch on disk for an operator instead of dropping it.
                metrics::counter!("tradepipe_writer_errors_total", "kind" => "rejected")
                    .increment(1);
                tracing::error!(error = %e, ticks = batch.ticks.len(), "PostgreSQL rejected a batch; keeping it in the spool's rejected/ folder");
                Some(Rejected {
                    batch,
                    error: e.to_string(),
                })
            }
        };
        self.gauges();
        rejected
    }

    /// After a write on the data path: keep what was rejected, spill what exceeds the bound.
    fn settle(&mut self, rejected: Option<Rejected>, ctx: &mut Context<Self>) {
        if let Some(Rejected { batch, error }) = rejected {
            let spool = self.spool.clone();
            self.on_spool(
                ctx,
                async move { spool.queue_keep_rejected(batch, error).await },
                |_, res| kept(res),
            );
        }
        if !self.db_up && self.pending.ticks() >= self.cfg.max_buffered_ticks {
            self.spill(ctx);
        }
    }

    /// Queues work for the spool thread. The actor waits for a place in the queue (only while
    /// the disk is behind: back-pressure) so that work is queued in the order it was asked for,
    /// then takes messages again while the disk works; `done` gets the answer.
    fn on_spool<T: 'static>(
        &mut self,
        ctx: &mut Context<Self>,
        queue: impl Future<Output = Result<Answer<T>, SpoolError>> + 'static,
        done: impl FnOnce(&mut Self, Result<T, SpoolError>) + 'static,
    ) {
        ctx.wait(queue.into_actor(self).map(|queued, act, ctx| match queued {
            Ok(answer) => {
                ctx.spawn(
                    answer
                        .get()
                        .into_actor(act)
                        .map(|res, act, _| done(act, res)),
                );
            }
            Err(e) => done(act, Err(e)),
        }));
    }

    /// Moves everything in memory to the spool; it is back in memory if the disk fails too.
    fn spill(&mut self, ctx: &mut Context<Self>) {
        let batch = self.pending.take();
        if batch.is_empty() {
            return;
        }
        let batch = Arc::new(batch);
        let (spool, b) = (self.spool.clone(), batch.clone());
        self.on_spool(
            ctx,
            async move { spool.queue_append(b).await },
            |act, res| act.spilled(batch, res),
        );
    }

    fn spilled(&mut self, batch: Arc<MarketBatch>, res: Result<(), SpoolError>) {
        match res {
            Ok(()) => tracing::info!(
                ticks = batch.ticks.len(),
                spool_batches = self.spool.depth_batches(),
                "spilled to the on-disk spool"
            ),
            Err(e) => {
                // The disk failed too: keep the data in memory (the mailbox bound still holds the
                // producers back) and try again later.
                tracing::error!(error = %e, "spooling to disk failed; keeping the batch in memory");
                self.pending.add(Arc::unwrap_or_clone(batch));
            }
        }
        self.gauges();
    }

    /// For shutdown: keeps `rejected`, spools what is still in memory, and resolves once that and
    /// everything queued on the spool before is durable. It queues directly (not through
    /// `on_spool`), so nothing can slip in between.
    fn spool_the_rest(
        &mut self,
        rejected: Option<Rejected>,
    ) -> impl ActorFuture<Self, Output = ()> + use<> {
        let spool = self.spool.clone();
        let batch = (!self.pending.is_empty()).then(|| Arc::new(self.pending.take()));
        let b = batch.clone();
        async move {
            if let Some(Rejected { batch, error }) = rejected {
                match spool.queue_keep_rejected(batch, error).await {
                    Ok(answer) => kept(answer.get().await),
                    Err(e) => kept(Err(e)),
                }
            }
            match b {
                Some(b) => match spool.queue_append(b).await {
                    Ok(answer) => answer.get().await,
                    Err(e) => Err(e),
                },
                None => spool.barrier().await,
            }
        }
        .into_actor(self)
        .map(|res, act, _| match batch {
            Some(batch) => act.spilled(batch, res),
            None => {
                if let Err(e) = res {
                    tracing::error!(error = %e, "waiting for the spool failed");
                }
            }
        })
    }
}

/// A batch PostgreSQL refused, with its reason.
struct Rejected {
    batch: MarketBatch,
    error: String,
}

fn kept(res: Result<std::path::PathBuf, SpoolError>) {
    match res {
        Ok(path) => tracing::warn!(file = %path.display(), "rejected batch kept on disk"),
        Err(e) => tracing::error!(error = %e, "could not keep the rejected batch on disk"),
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
            let due = act.pending.due(
                Instant::now(),
                Duration::from_millis(act.cfg.flush_interval_ms),
            );
            if !act.pending.is_empty() && (due || !act.db_up) {
                let f = act.flush();
                ctx.wait(f);
            } else if act.db_up && !act.spool.is_empty() {
                if !act.draining {
                    act.drain_spool_segment(ctx);
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
        // A drain in progress was abandoned with the old context; its segment is still spooled.
        self.draining = false;
        count_restart(ACTOR);
    }
}

impl Handler<Persist> for MarketWriterActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, msg: Persist, ctx: &mut Context<Self>) -> Self::Result {
        let _timer = HandlerTimer::start(ACTOR);
        self.depth.taken(msg.0.ticks.len() + msg.0.candles.len());
        self.pending.add(msg.0);
        if self.db_up && self.pending.ticks() >= self.cfg.batch_max_ticks {
            return AtomicResponse::new(Box::pin(self.flush()));
        }
        if !self.db_up && self.pending.ticks() >= self.cfg.max_buffered_ticks {
            self.spill(ctx);
        }
        self.gauges();
        AtomicResponse::new(Box::pin(async {}.into_actor(self)))
    }
}

impl Handler<FlushAll> for MarketWriterActor {
    type Result = AtomicResponse<Self, ()>;

    /// Writes what is in memory (or spools it when the database is down) and answers once it is
    /// stored or durable in the spool, together with every spill queued before.
    fn handle(&mut self, _msg: FlushAll, _ctx: &mut Context<Self>) -> Self::Result {
        let batch = (self.db_up && !self.pending.is_empty()).then(|| self.pending.take());
        let store = self.store.clone();
        AtomicResponse::new(Box::pin(
            async move {
                let batch = batch?;
                let started = Instant::now();
                let res = store.write_batch(&batch).await;
                Some((batch, res, started.elapsed()))
            }
            .into_actor(self)
            .then(|written, act, _| {
                let rejected =
                    written.and_then(|(batch, res, took)| act.after_write(batch, res, took));
                act.spool_the_rest(rejected)
            }),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Trade;

    fn candle(sym: &str, interval: Interval, open: i64, last_id: u64, closed: bool) -> Candle {
        let mut c = Candle::empty(
            sym.into(),
            interval,
            open,
            rust_decimal::Decimal::ONE,
            closed,
        );
        c.trade_count = 1;
        c.first_trade_id = Some(last_id);
        c.last_trade_id = Some(last_id);
        c.closed = closed;
        c
    }

    fn tick(sym: &str, id: u64) -> Trade {
        Trade {
            symbol: sym.into(),
            trade_id: id,
            price: rust_decimal::Decimal::ONE,
            qty: rust_decimal::Decimal::ONE,
            time_ms: 0,
            is_buyer_maker: false,
        }
    }

    fn pending(every_ms: u64) -> Pending {
        Pending::new(&WriterConfig {
            open_candle_write_ms: every_ms,
            open_candle_long_write_ms: every_ms,
            ..WriterConfig::default()
        })
    }

    fn ids(b: &MarketBatch) -> Vec<(String, Interval, Option<u64>, bool)> {
        let mut v: Vec<_> = b
            .candles
            .iter()
            .map(|c| (c.symbol.to_string(), c.interval, c.last_trade_id, c.closed))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn open_candles_wait_for_their_symbol_closed_ones_and_ticks_never_wait() {
        let every = Duration::from_millis(1000);
        let mut p = pending(1000);
        let t0 = Instant::now();
        p.add(MarketBatch {
            ticks: vec![tick("A", 1)],
            candles: vec![
                candle("A", Interval::M1, 0, 1, false),
                candle("A", Interval::H1, 0, 1, false),
            ],
        });
        // Never written: due at once, both intervals together.
        let b = p.take_due(t0);
        assert_eq!((b.ticks.len(), b.candles.len()), (1, 2));

        // Newer states within the interval: held (only the newest kept), the closed one goes.
        p.add(MarketBatch {
            ticks: vec![tick("A", 2)],
            candles: vec![
                candle("A", Interval::M1, 0, 2, false),
                candle("A", Interval::H1, 0, 2, false),
            ],
        });
        p.add(MarketBatch {
            ticks: vec![tick("A", 3)],
            candles: vec![
                candle("A", Interval::M1, 0, 3, true),
                candle("A", Interval::M1, 60_000, 3, false),
                candle("A", Interval::H1, 0, 3, false),
            ],
        });
        let b = p.take_due(t0 + Duration::from_millis(200));
        assert_eq!(b.ticks.len(), 2);
        assert_eq!(ids(&b), vec![("A".into(), Interval::M1, Some(3), true)]);
        assert!(!p.is_empty(), "the open candles are still held");
        assert!(!p.due(t0 + Duration::from_millis(999), Duration::from_millis(200)));
        assert!(p.due(t0 + every, Duration::from_millis(200)));

        // Due: the newest state of each held candle, at one trade id.
        let b = p.take_due(t0 + every);
        assert_eq!(
            ids(&b),
            vec![
                ("A".into(), Interval::M1, Some(3), false),
                ("A".into(), Interval::H1, Some(3), false),
            ]
        );
        assert!(p.is_empty());
    }

    #[test]
    fn a_new_symbol_is_due_at_once_and_take_gives_everything() {
        let mut p = pending(1000);
        let t0 = Instant::now();
        p.add(MarketBatch {
            ticks: vec![],
            candles: vec![candle("A", Interval::M1, 0, 1, false)],
        });
        p.take_due(t0);
        p.add(MarketBatch {
            ticks: vec![],
            candles: vec![
                candle("A", Interval::M1, 0, 2, false),
                candle("B", Interval::M1, 0, 7, false),
            ],
        });
        // B was never written: due now; A waits.
        assert!(p.due(Instant::now(), Duration::from_secs(3600)));
        let b = p.take_due(t0 + Duration::from_millis(10));
        assert_eq!(ids(&b), vec![("B".into(), Interval::M1, Some(7), false)]);
        // Shutdown and spills take what is held too.
        let b = p.take();
        assert_eq!(ids(&b), vec![("A".into(), Interval::M1, Some(2), false)]);
        assert!(p.is_empty() && !p.due(Instant::now() + Duration::from_secs(9), Duration::ZERO));
    }

    #[test]
    fn longer_intervals_wait_longer_and_go_together() {
        let mut p = Pending::new(&WriterConfig {
            open_candle_write_ms: 1000,
            open_candle_long_write_ms: 10_000,
            ..WriterConfig::default()
        });
        let t0 = Instant::now();
        let states = |id| MarketBatch {
            ticks: vec![tick("A", id)],
            candles: vec![
                candle("A", Interval::M1, 0, id, false),
                candle("A", Interval::H1, 0, id, false),
                candle("A", Interval::D1, 0, id, false),
            ],
        };
        p.add(states(1));
        assert_eq!(p.take_due(t0).candles.len(), 3, "never written: all due");
        p.add(states(2));
        let b = p.take_due(t0 + Duration::from_secs(1));
        assert_eq!(ids(&b), vec![("A".into(), Interval::M1, Some(2), false)]);
        p.add(states(3));
        let b = p.take_due(t0 + Duration::from_secs(10));
        assert_eq!(
            ids(&b),
            vec![
                ("A".into(), Interval::M1, Some(3), false),
                ("A".into(), Interval::H1, Some(3), false),
                ("A".into(), Interval::D1, Some(3), false),
            ]
        );
    }

    #[test]
    fn zero_writes_open_candles_every_time() {
        let mut p = pending(0);
        let t0 = Instant::now();
        for id in 1..=3 {
            p.add(MarketBatch {
                ticks: vec![tick("A", id)],
                candles: vec![candle("A", Interval::M1, 0, id, false)],
            });
            let b = p.take_due(t0);
            assert_eq!(ids(&b), vec![("A".into(), Interval::M1, Some(id), false)]);
        }
    }
}
