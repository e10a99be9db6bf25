//! CandleBuilderActor: folds trades (in exchange order) into the candles of every interval and
//! hands each batch on twice: ticks + candle states to the PostgreSQL writer (atomically stored
//! together) and the same to the Redis publisher (live updates).

use super::market_writer::{MarketWriterActor, Persist};
use super::redis_publisher::{PublishBatch, RedisPublisherActor};
use super::{HandlerTimer, Mailbox, MailboxDepth, count_restart};
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
pub struct TradeBatch {
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
pub struct LastTradeIds;

/// Whether the feed is connected and caught up. Only then may the clock close candles that got
/// no new trade: while disconnected, trades of the current interval may still arrive by backfill.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetInSync(pub bool);

/// Answered once every message sent before it was handled and passed on (shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Drain;

pub struct CandleBuilderActor {
    books: HashMap<Symbol, CandleBook>,
    writer: Mailbox<MarketWriterActor>,
    publisher: Mailbox<RedisPublisherActor>,
    depth: MailboxDepth,
    capacity: usize,
    close_check: Duration,
    in_sync: bool,
    caught_up: bool,
    close_grace_ms: i64,
    /// Newest exchange trade time seen and when: the exchange's clock, as far as we know it.
    /// Closing by this clock (not the host's) keeps replays of old data correct.
    clock: Option<(i64, Instant)>,
}

impl CandleBuilderActor {
    pub fn new(
        books: Vec<CandleBook>,
        writer: Mailbox<MarketWriterActor>,
        publisher: Mailbox<RedisPublisherActor>,
        depth: MailboxDepth,
        capacity: usize,
        close_check: Duration,
        close_grace: Duration,
    ) -> Self {
        CandleBuilderActor {
            books: books.into_iter().map(|b| (b.symbol().clone(), b)).collect(),
            writer,
            publisher,
            depth,
            capacity,
            close_check,
            in_sync: false,
            caught_up: false,
            close_grace_ms: close_grace.as_millis() as i64,
            clock: None,
        }
    }

    fn exchange_now_ms(&self) -> Option<i64> {
        self.clock
            .map(|(t, at)| t + at.elapsed().as_millis() as i64)
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
            if !act.in_sync || !act.caught_up {
                return;
            }
            let Some(now) = act.exchange_now_ms() else {
                return;
            };
            // A trade stamped just before a close can still be on the wire.
            let now = now - act.close_grace_ms;
            let mut closed = Vec::new();
            for book in act.books.values_mut() {
                book.close_elapsed(now, &mut closed);
            }
            if !closed.is_empty() {
                count_closed(&closed);
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
        self.caught_up = msg.caught_up;
        let mut ticks = Vec::with_capacity(msg.trades.len());
        let mut candles = Vec::new();
        let mut touched: Vec<Symbol> = Vec::new();
        for trade in msg.trades {
            let Some(book) = self.books.get_mut(&*trade.symbol) else {
                metrics::counter!("tradepipe_trades_unknown_symbol_total").increment(1);
                tracing::warn!(symbol = %trade.symbol, trade_id = trade.trade_id, "trade for an unconfigured symbol skipped");
                continue;
            };
            if book.apply(&trade, &mut candles) {
                if touched.last() != Some(&trade.symbol) && !touched.contains(&trade.symbol) {
                    touched.push(trade.symbol.clone());
                }
                if self.clock.is_none_or(|(t, _)| trade.time_ms >= t) {
                    self.clock = Some((trade.time_ms, Instant::now()));
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
            if let Some(t) = ticks.iter().rev().find(|t| &t.symbol == sym) {
                metrics::gauge!("tradepipe_last_trade_price", "symbol" => sym.to_string())
                    .set(t.price.to_f64().unwrap_or(f64::NAN));
            }
        }
        if let Some((t, _)) = self.clock {
            let lag = chrono::Utc::now().timestamp_millis() - t;
            metrics::gauge!("tradepipe_feed_lag_seconds").set(lag as f64 / 1000.0);
        }
        let batch = MarketBatch { ticks, candles };
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
        MessageResult(
            self.books
                .iter()
                .filter_map(|(s, b)| b.last_trade_id().map(|id| (s.to_string(), id)))
                .collect(),
        )
    }
}

impl Handler<SetInSync> for CandleBuilderActor {
    type Result = ();

    fn handle(&mut self, msg: SetInSync, _ctx: &mut Context<Self>) {
        self.in_sync = msg.0;
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
