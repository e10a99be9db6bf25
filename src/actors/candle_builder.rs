//! CandleBuilderActor: folds trades (in exchange order) into the candles of every interval and
//! hands each batch on twice: ticks + candle states to the PostgreSQL writer (atomically stored
//! together) and the same to the Redis publisher (live updates). It knows its two sinks only as
//! bounded recipients of those messages, not as actor types.

use super::market_writer::Persist;
use super::redis_publisher::PublishBatch;
use super::{BoundedRecipient, HandlerTimer, MailboxDepth, count_restart};
use crate::domain::{Candle, CandleBook, MarketBatch, Symbol, Trade};
use actix::prelude::*;
use rust_decimal::prelude::ToPrimitive;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ACTOR: &str = "candle_builder";

/// Trades read off one socket in one go, in exchange order per symbol.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct TradeBatch {
    pub trades: Vec<Trade>,
    /// When the first of these trades was read off the socket (for tick-to-publish latency).
    pub received_at: Instant,
    /// The socket held nothing more after this batch: the feed is caught up with the exchange.
    /// Only then may the clock close candles; while we lag, trades that already happened are
    /// still unread in our buffers and would land in a closed candle.
    pub caught_up: bool,
}

/// The last trade id folded in, per symbol: where a (re)connecting feed resumes.
#[derive(Message)]
#[rtype(result = "HashMap<String, u64>")]
pub(crate) struct LastTradeIds;

/// Whether the feed is connected and caught up. Only then may the clock close candles that got
/// no new trade: while disconnected, trades of the current interval may still arrive by backfill.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct SetInSync(pub bool);

/// Answered once every message sent before it was handled and passed on (shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Drain;

pub(crate) struct CandleBuilderActor {
    folder: Folder,
    writer: BoundedRecipient<Persist>,
    publisher: BoundedRecipient<PublishBatch>,
    depth: MailboxDepth,
    capacity: usize,
    close_check: Duration,
}

/// The builder's state without the actor plumbing, driven with explicit instants so that the
/// interleavings of backfill, live trades and the close timer can be tested deterministically.
pub(crate) struct Folder {
    books: HashMap<Symbol, CandleBook>,
    in_sync: bool,
    caught_up: bool,
    close_grace_ms: i64,
    /// Per symbol, the newest trade time folded and when: that symbol's view of the exchange's
    /// clock. Closing by this clock (not the host's) keeps replays of old data correct.
    ///
    /// Per symbol, not one clock for all: the feed catches symbols up one after the other (REST
    /// backfill after a restart or reconnect, then the stream's backlog), so another symbol's
    /// newest trade says nothing about which trades of this one are still unread. With one
    /// shared clock, a symbol backfilled last moved the clock past a minute whose trades of an
    /// earlier-backfilled symbol were still in the socket; the timer closed that minute and
    /// those trades were folded into the next one.
    clocks: HashMap<Symbol, (i64, Instant)>,
    /// Since when the feed has been in sync and caught up without a break; `None` while it lags.
    /// Time spent lagging does not advance the clock: while we lag, the exchange's trades of
    /// that time are still unread, so "trade time + host time since we saw it" would run ahead
    /// of what we have (a slow backfill of another symbol would close this one's minute).
    synced_since: Option<Instant>,
}

impl Folder {
    pub fn new(books: Vec<CandleBook>, close_grace: Duration) -> Self {
        Folder {
            books: books.into_iter().map(|b| (b.symbol().clone(), b)).collect(),
            in_sync: false,
            caught_up: false,
            close_grace_ms: close_grace.as_millis() as i64,
            clocks: HashMap::new(),
            synced_since: None,
        }
    }

    fn update_sync(&mut self, now: Instant) {
        if self.in_sync && self.caught_up {
            self.synced_since.get_or_insert(now);
        } else {
            self.synced_since = None;
        }
    }

    pub(crate) fn set_in_sync(&mut self, in_sync: bool, now: Instant) {
        self.in_sync = in_sync;
        self.update_sync(now);
    }

    /// Folds one batch read at `now`: the ticks that were new and every candle they touched or
    /// closed.
    pub fn fold(&mut self, trades: Vec<Trade>, caught_up: bool, now: Instant) -> MarketBatch {
        self.caught_up = caught_up;
        self.update_sync(now);
        let mut ticks = Vec::with_capacity(trades.len());
        let mut candles = Vec::new();
        // Symbols in first-seen order, and where each one's newest tick is in `ticks`.
        let mut touched: Vec<Symbol> = Vec::new();
        let mut newest: HashMap<Symbol, usize> = HashMap::new();
        for trade in trades {
            let Some(book) = self.books.get_mut(&*trade.symbol) else {
                metrics::counter!("tradepipe_trades_unknown_symbol_total").increment(1);
                tracing::warn!(symbol = %trade.symbol, trade_id = trade.trade_id, "trade for an unconfigured symbol skipped");
                continue;
            };
            let late_before = book.late_trades;
            if book.apply(&trade, &mut candles) {
                if book.late_trades > late_before {
                    metrics::counter!("tradepipe_trades_late_total", "symbol" => trade.symbol.to_string()).increment(1);
                    tracing::warn!(symbol = %trade.symbol, trade_id = trade.trade_id, trade_time_ms = trade.time_ms, "trade stamped before the open minute folded into it: its closed candle was closed too early");
                }
                // A map, not `touched.contains`: with a thousand symbols in a batch the linear
                // scan per trade was a fifth of the daemon's time.
                match newest.get_mut(&trade.symbol) {
                    Some(at) => *at = ticks.len(),
                    None => {
                        newest.insert(trade.symbol.clone(), ticks.len());
                        touched.push(trade.symbol.clone());
                    }
                }
                match self.clocks.get_mut(&trade.symbol) {
                    Some(c) if trade.time_ms < c.0 => {}
                    Some(c) => *c = (trade.time_ms, now),
                    None => {
                        self.clocks
                            .insert(trade.symbol.clone(), (trade.time_ms, now));
                    }
                }
                ticks.push(trade);
            } else {
                metrics::counter!("tradepipe_trades_duplicate_total", "symbol" => trade.symbol.to_string()).increment(1);
            }
        }
        count_closed(&candles);
        for sym in &touched {
            if let Some(book) = self.books.get(sym) {
                book.open_candles(&mut candles);
            }
        }
        // For dashboards only: the exact decimal goes to PostgreSQL and Redis.
        for sym in &touched {
            if let Some(t) = newest.get(sym).and_then(|&i| ticks.get(i)) {
                metrics::gauge!("tradepipe_last_trade_price", "symbol" => sym.to_string())
                    .set(t.price.to_f64().unwrap_or(f64::NAN));
            }
        }
        if let Some(t) = self.clocks.values().map(|c| c.0).max() {
            let lag = chrono::Utc::now().timestamp_millis() - t;
            metrics::gauge!("tradepipe_feed_lag_seconds").set(lag as f64 / 1000.0);
        }
        MarketBatch { ticks, candles }
    }

    /// The close timer at `now`: closes what the exchange clock says has ended, if it may.
    pub(crate) fn close_elapsed(&mut self, now: Instant) -> Vec<Candle> {
        let mut closed = Vec::new();
        for (symbol, book) in self.books.iter_mut() {
            let Some(exchange_now) =
                exchange_now_ms(self.synced_since, self.clocks.get(symbol), now)
            else {
                continue;
            };
            // A trade stamped just before a close can still be on the wire.
            book.close_elapsed(exchange_now - self.close_grace_ms, &mut closed);
        }
        count_closed(&closed);
        closed
    }

    pub(crate) fn last_trade_ids(&self) -> HashMap<String, u64> {
        self.books
            .iter()
            .filter_map(|(s, b)| b.resume_after().map(|id| (s.to_string(), id)))
            .collect()
    }
}

impl CandleBuilderActor {
    pub fn new(
        books: Vec<CandleBook>,
        writer: BoundedRecipient<Persist>,
        publisher: BoundedRecipient<PublishBatch>,
        depth: MailboxDepth,
        capacity: usize,
        close_check: Duration,
        close_grace: Duration,
    ) -> Self {
        CandleBuilderActor {
            folder: Folder::new(books, close_grace),
            writer,
            publisher,
            depth,
            capacity,
            close_check,
        }
    }

    /// Sends one batch on to both consumers. The writer gets it first: PostgreSQL is the record.
    fn forward(
        &self,
        batch: MarketBatch,
        received_at: Instant,
    ) -> impl Future<Output = ()> + 'static {
        let writer = self.writer.clone();
        let publisher = self.publisher.clone();
        async move {
            let publish = PublishBatch {
                trades: batch.ticks.clone(),
                candles: batch.candles.clone(),
                received_at,
            };
            let weight = batch.ticks.len() + batch.candles.len();
            // Live updates first: they are the latency-sensitive path. Both waits are bounded.
            if let Err(e) = publisher.push(publish, weight).await {
                tracing::warn!(error = %e, "redis publisher unavailable");
            }
            if let Err(e) = writer.push(Persist(batch), weight).await {
                tracing::error!(error = %e, "market writer unavailable; batch not persisted");
            }
        }
    }
}

impl Actor for CandleBuilderActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.capacity);
        ctx.run_interval(self.close_check, |act, ctx| {
            let closed = act.folder.close_elapsed(Instant::now());
            if !closed.is_empty() {
                let batch = MarketBatch {
                    ticks: Vec::new(),
                    candles: closed,
                };
                // wait: no trade batch may overtake these closes on their way out.
                ctx.wait(act.forward(batch, Instant::now()).into_actor(act));
            }
        });
    }
}

impl Supervised for CandleBuilderActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        // The books live in the actor struct and survive the restart: nothing folded is lost.
        count_restart(ACTOR);
    }
}

/// A symbol's exchange time at `now` from its clock (newest trade time, when seen), counting host
/// time only since the feed was last in sync and caught up; `None` while it lags.
fn exchange_now_ms(
    synced_since: Option<Instant>,
    clock: Option<&(i64, Instant)>,
    now: Instant,
) -> Option<i64> {
    let synced = synced_since?;
    let &(t, seen) = clock?;
    Some(t + now.saturating_duration_since(seen.max(synced)).as_millis() as i64)
}

fn count_closed(closed: &[Candle]) {
    for c in closed {
        metrics::counter!("tradepipe_candles_closed_total", "interval" => c.interval.as_str())
            .increment(1);
    }
}

impl Handler<TradeBatch> for CandleBuilderActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, msg: TradeBatch, _ctx: &mut Context<Self>) -> Self::Result {
        let _timer = HandlerTimer::start(ACTOR);
        self.depth.taken(msg.trades.len());
        let batch = self.folder.fold(msg.trades, msg.caught_up, Instant::now());
        if batch.is_empty() {
            return AtomicResponse::new(Box::pin(async {}.into_actor(self)));
        }
        AtomicResponse::new(Box::pin(
            self.forward(batch, msg.received_at).into_actor(self),
        ))
    }
}

impl Handler<LastTradeIds> for CandleBuilderActor {
    type Result = MessageResult<LastTradeIds>;

    fn handle(&mut self, _msg: LastTradeIds, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.folder.last_trade_ids())
    }
}

impl Handler<SetInSync> for CandleBuilderActor {
    type Result = ();

    fn handle(&mut self, msg: SetInSync, _ctx: &mut Context<Self>) {
        self.folder.set_in_sync(msg.0, Instant::now());
    }
}

impl Handler<Drain> for CandleBuilderActor {
    type Result = ();

    fn handle(&mut self, _msg: Drain, _ctx: &mut Context<Self>) {}
}

/// Shared, cheap to clone: the configured symbols as the builder keys them.
pub fn symbol_of(name: &str) -> Symbol {
    Arc::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::tests::until;
    use crate::domain::Interval;
    use rust_decimal::Decimal;

    /// Thursday 2024-08-08 23:59:00 UTC, a minute boundary.
    const M: i64 = 1_723_161_540_000;
    const SEC: i64 = 1_000;

    fn tr(sym: &str, id: u64, time_ms: i64) -> Trade {
        Trade {
            symbol: symbol_of(sym),
            trade_id: id,
            price: Decimal::from(100 + id),
            qty: Decimal::ONE,
            time_ms,
            is_buyer_maker: false,
        }
    }

    fn folder() -> Folder {
        Folder::new(
            vec![
                CandleBook::new(symbol_of("BTCUSDT")),
                CandleBook::new(symbol_of("ETHUSDT")),
            ],
            Duration::from_secs(2),
        )
    }

    fn closed_1m(candles: &[Candle], sym: &str, open: i64) -> Vec<Candle> {
        candles
            .iter()
            .filter(|c| {
                c.closed
                    && c.interval == Interval::M1
                    && &*c.symbol == sym
                    && c.open_time_ms == open
            })
            .cloned()
            .collect()
    }

    /// One event at a host time in ms after the start: a batch of one trade (symbol, id, seconds
    /// after M, caught up), the feed declaring itself in sync, or a tick of the close timer.
    enum Step {
        Fold(&'static str, u64, i64, bool, u64),
        InSync(u64),
        Timer(u64),
    }

    /// Plays `steps` and returns the 1m candles of BTC's minute M that were emitted closed.
    fn btc_minute_m_closed(steps: &[Step]) -> Vec<Candle> {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut f = folder();
        let mut out = Vec::new();
        for step in steps {
            match *step {
                Step::Fold(sym, id, secs, caught_up, ms) => {
                    let batch = f.fold(vec![tr(sym, id, M + secs * SEC)], caught_up, at(ms));
                    out.extend(batch.candles);
                }
                Step::InSync(ms) => f.set_in_sync(true, at(ms)),
                Step::Timer(ms) => out.extend(f.close_elapsed(at(ms))),
            }
        }
        closed_1m(&out, "BTCUSDT", M)
    }

    /// After a restart the feed backfills the symbols one after the other over REST, then reads
    /// the live stream from where it was when it connected. The symbol backfilled first (BTC,
    /// up to 23:59:50) is behind the one backfilled last (ETH, up to 00:00:30): BTC's trades in
    /// between are still in the socket. The close timer must not close BTC's 23:59 candle on
    /// ETH's clock, or BTC's 23:59:55 trade lands in the 00:00 candle.
    #[test]
    fn one_symbols_clock_does_not_close_another_symbols_candle() {
        let m = btc_minute_m_closed(&[
            Step::Fold("BTCUSDT", 1, 50, false, 0),
            Step::Fold("ETHUSDT", 1, 90, false, 400),
            Step::InSync(400),
            // The first live batch happens to drain the socket.
            Step::Fold("BTCUSDT", 2, 51, true, 450),
            Step::Timer(900),
            Step::Fold("BTCUSDT", 3, 55, true, 950),
            Step::Fold("BTCUSDT", 4, 61, true, 1_000),
        ]);
        assert_eq!(m.len(), 1, "BTC 23:59 closed once: {m:?}");
        assert_eq!(
            (m[0].trade_count, m[0].first_trade_id, m[0].last_trade_id),
            (3, Some(1), Some(3)),
            "BTC 23:59 holds every trade stamped in it"
        );
    }

    /// While the feed lags (a slow REST backfill of another symbol, or not connected), host time
    /// passing says nothing about how far the exchange got in trades we have not read yet: the
    /// clock must not run on the time spent lagging.
    #[test]
    fn time_spent_lagging_does_not_advance_the_clock() {
        let m = btc_minute_m_closed(&[
            Step::Fold("BTCUSDT", 1, 50, false, 0),
            // Backfilling ETH (nothing of ETH newer than BTC) takes 15 s.
            Step::Fold("ETHUSDT", 1, 10, false, 15_000),
            Step::InSync(15_000),
            Step::Fold("ETHUSDT", 2, 11, true, 15_010),
            Step::Timer(15_500),
            Step::Fold("BTCUSDT", 2, 58, true, 15_600),
            Step::Fold("BTCUSDT", 3, 60, true, 15_700),
        ]);
        assert_eq!(m.len(), 1, "BTC 23:59 closed once: {m:?}");
        assert_eq!(m[0].trade_count, 2, "BTC 23:59 holds ids 1 and 2: {m:?}");
    }

    /// The timer still closes an idle symbol's candle once the exchange clock has passed it.
    #[test]
    fn an_idle_symbol_is_closed_by_the_clock_when_in_sync() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut f = folder();
        f.set_in_sync(true, at(0));
        f.fold(vec![tr("BTCUSDT", 1, M + 50 * SEC)], true, at(0));
        assert!(
            f.close_elapsed(at(11_000)).is_empty(),
            "23:59:59 + grace not yet passed"
        );
        let closed = f.close_elapsed(at(12_100));
        assert_eq!(closed_1m(&closed, "BTCUSDT", M).len(), 1, "{closed:?}");
        // Not while lagging.
        let mut f = folder();
        f.set_in_sync(true, at(0));
        f.fold(vec![tr("BTCUSDT", 1, M + 50 * SEC)], false, at(0));
        assert!(f.close_elapsed(at(60_000)).is_empty());
    }

    /// A sink stub: lets a message in only when its gate gives a permit (then returns the
    /// message's weight to its mailbox bound, as the real sinks do), and records the trade ids of
    /// each message it took.
    struct Sink {
        depth: MailboxDepth,
        gate: Arc<tokio::sync::Semaphore>,
        got: Arc<std::sync::Mutex<Vec<Vec<u64>>>>,
    }

    impl Actor for Sink {
        type Context = Context<Self>;
    }

    impl Sink {
        fn take(&self, ticks: &[Trade], candles: usize) -> AtomicResponse<Self, ()> {
            let (depth, gate, got) = (self.depth.clone(), self.gate.clone(), self.got.clone());
            let (ids, weight) = (
                ticks.iter().map(|t| t.trade_id).collect(),
                ticks.len() + candles,
            );
            AtomicResponse::new(Box::pin(
                async move {
                    if let Ok(permit) = gate.acquire().await {
                        permit.forget();
                    }
                    depth.taken(weight);
                    got.lock().unwrap().push(ids);
                }
                .into_actor(self),
            ))
        }
    }

    impl Handler<Persist> for Sink {
        type Result = AtomicResponse<Self, ()>;
        fn handle(&mut self, msg: Persist, _: &mut Context<Self>) -> Self::Result {
            self.take(&msg.0.ticks, msg.0.candles.len())
        }
    }

    impl Handler<PublishBatch> for Sink {
        type Result = AtomicResponse<Self, ()>;
        fn handle(&mut self, msg: PublishBatch, _: &mut Context<Self>) -> Self::Result {
            self.take(&msg.trades, msg.candles.len())
        }
    }

    type Got = Arc<std::sync::Mutex<Vec<Vec<u64>>>>;

    /// A sink whose mailbox bound is `capacity` trades and whose gate starts with `open` permits.
    fn sink<M>(
        capacity: usize,
        open: usize,
    ) -> (BoundedRecipient<M>, Arc<tokio::sync::Semaphore>, Got)
    where
        Sink: Handler<M>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        let depth = MailboxDepth::new("test_sink", capacity);
        let gate = Arc::new(tokio::sync::Semaphore::new(open));
        let got = Got::default();
        let addr = Sink {
            depth: depth.clone(),
            gate: gate.clone(),
            got: got.clone(),
        }
        .start();
        (BoundedRecipient::new(addr.recipient(), depth), gate, got)
    }

    fn builder(
        writer: BoundedRecipient<Persist>,
        publisher: BoundedRecipient<PublishBatch>,
    ) -> super::super::Mailbox<CandleBuilderActor> {
        let depth = MailboxDepth::new("test_builder", 1_000);
        let books = vec![
            CandleBook::new(symbol_of("BTCUSDT")),
            CandleBook::new(symbol_of("ETHUSDT")),
        ];
        let actor = CandleBuilderActor::new(
            books,
            writer,
            publisher,
            depth.clone(),
            1_000,
            Duration::from_secs(3_600),
            Duration::from_secs(2),
        );
        super::super::Mailbox::new(actor.start(), depth)
    }

    fn batch(trades: Vec<Trade>) -> TradeBatch {
        TradeBatch {
            trades,
            received_at: Instant::now(),
            caught_up: true,
        }
    }

    #[actix_rt::test]
    async fn each_batch_goes_to_both_sinks_in_order() {
        let (w, _, written) = sink::<Persist>(1_000, 1_000);
        let (p, _, published) = sink::<PublishBatch>(1_000, 1_000);
        let b = builder(w, p);
        let two = vec![tr("BTCUSDT", 1, M), tr("BTCUSDT", 2, M + SEC)];
        b.push(batch(two), 2).await.unwrap();
        b.push(batch(vec![tr("ETHUSDT", 7, M)]), 1).await.unwrap();
        // A duplicate folds into nothing and is not sent on.
        b.push(batch(vec![tr("ETHUSDT", 7, M)]), 1).await.unwrap();
        b.ask(Drain).await.unwrap();
        let want = vec![vec![1, 2], vec![7]];
        until("both sinks", || {
            written.lock().unwrap().len() == 2 && published.lock().unwrap().len() == 2
        })
        .await;
        assert_eq!(*written.lock().unwrap(), want);
        assert_eq!(*published.lock().unwrap(), want);
    }

    #[actix_rt::test]
    async fn the_builder_waits_while_a_sink_is_full() {
        let (w, _, written) = sink::<Persist>(1_000, 1_000);
        // Room for one message of any weight, and the publisher takes none for now.
        let (p, gate, published) = sink::<PublishBatch>(1, 0);
        let b = builder(w, p);
        for id in 1..=3 {
            b.push(batch(vec![tr("BTCUSDT", id, M)]), 1).await.unwrap();
        }
        until("the first batch written", || {
            written.lock().unwrap().len() == 1
        })
        .await;
        let drained = tokio::time::timeout(Duration::from_millis(200), b.ask(Drain)).await;
        assert!(drained.is_err(), "the builder went on past a full sink");
        assert_eq!(
            written.lock().unwrap().len(),
            1,
            "held back with the publisher"
        );
        assert!(published.lock().unwrap().is_empty());

        gate.add_permits(1_000);
        b.ask(Drain).await.unwrap();
        until("every batch through", || {
            written.lock().unwrap().len() == 3 && published.lock().unwrap().len() == 3
        })
        .await;
        assert_eq!(*published.lock().unwrap(), vec![vec![1], vec![2], vec![3]]);
    }
}
