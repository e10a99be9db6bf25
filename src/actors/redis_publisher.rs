//! RedisPublisherActor: live prices, tick streams, candles and the volume leaderboard on Redis.
//! Open-candle updates are throttled per candle; closed candles go out once.
//!
//! Two lanes, each on its own connection and each with one pipeline in flight at a time (that
//! keeps every key's states in order): the live lane (latest price, PUBLISH, candles,
//! leaderboard) and the streams lane (an XADD per trade, closed candles). What arrives while a
//! lane's pipeline is in flight waits in that lane's outbox and goes out as ONE pipeline when it
//! is acknowledged: the live lane sends the newest price per symbol and each candle's newest state
//! once. Waiting batch after batch behind one pipeline each, and PUBLISH behind thousands of
//! XADDs, is what made tick-to-PUBLISH reach a second at a thousand symbols (issue 11). The
//! streams outbox holds its batches' mailbox permits until they leave, so mailbox and outboxes
//! together stay within the mailbox's bound (the live outbox holds one entry per key at most),
//! and a slow Redis still holds the candle builder back. If Redis is away, the PostgreSQL path is never slowed: updates are counted as unpublished and dropped (pub/sub
//! is at-most-once by nature) and the connection is retried on a timer: a PING every
//! `retry_interval_ms` while Redis is marked down, so readiness comes back with Redis even when
//! no update is flowing (a quiet market, a finished replay).

use super::{HandlerTimer, MailboxDepth, count_restart};
use crate::config::RedisConfig;
use crate::domain::{Candle, Interval, Symbol, SymbolInfo, Trade};
use crate::store::redis::{MarketUpdate, RedisKeys, RedisSink};
use crate::telemetry::Health;
use actix::prelude::*;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ACTOR: &str = "redis_publisher";
const DAY_MS: i64 = 86_400_000;

#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct PublishBatch {
    pub trades: Vec<Trade>,
    pub candles: Vec<Candle>,
    pub received_at: Instant,
}

/// Reference data for `cache:symbols:{SYM}`; re-sent every half hour so the 1 h TTL never lapses.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct CacheSymbols(pub Vec<SymbolInfo>);

/// Publish every throttled candle update still held back (shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct FlushPublisher;

/// Rolling 24 h quote volume from 1m candles, kept as a running sum.
#[derive(Default)]
struct Rolling24h {
    minutes: BTreeMap<i64, Decimal>,
    sum: Decimal,
}

impl Rolling24h {
    fn update(&mut self, minute_open: i64, quote_volume: Decimal) {
        let old = self
            .minutes
            .insert(minute_open, quote_volume)
            .unwrap_or_default();
        self.sum += quote_volume - old;
        let newest = self
            .minutes
            .keys()
            .next_back()
            .copied()
            .unwrap_or(minute_open);
        while let Some((&first, _)) = self.minutes.first_key_value() {
            if first > newest - DAY_MS {
                break;
            }
            if let Some(v) = self.minutes.remove(&first) {
                self.sum -= v;
            }
        }
    }
}

struct Throttled {
    last_sent: Option<Instant>,
    held: Option<Candle>,
}

/// The live lane's waiting work: per symbol its newest trade, the candle states (one per candle
/// once sent, see `newest_states`), and when each batch was read off the socket.
#[derive(Default)]
struct LiveOutbox {
    latest: HashMap<Symbol, Trade>,
    candles: Vec<Candle>,
    received: Vec<Instant>,
}

impl LiveOutbox {
    fn is_empty(&self) -> bool {
        self.latest.is_empty() && self.candles.is_empty()
    }
}

/// The streams lane's waiting work.
#[derive(Default)]
struct StreamsOutbox {
    trades: Vec<Trade>,
    closed: Vec<Candle>,
    /// Mailbox permits to return when these leave (see `MailboxDepth::taken_keeping_permits`).
    permits: usize,
}

impl StreamsOutbox {
    fn is_empty(&self) -> bool {
        self.trades.is_empty() && self.closed.is_empty()
    }
}

pub(crate) struct RedisPublisherActor {
    cfg: RedisConfig,
    keys: RedisKeys,
    sink: Option<RedisSink>,
    connecting: bool,
    /// A lane's pipeline is in flight; the next waits in its outbox.
    live_in_flight: bool,
    live: LiveOutbox,
    streams_in_flight: bool,
    streams: StreamsOutbox,
    /// `FlushPublisher` callers, answered once nothing is held, queued or in flight.
    flush_waiters: Vec<tokio::sync::oneshot::Sender<()>>,
    /// A health probe (PING) is in flight.
    probing: bool,
    down_until: Option<Instant>,
    throttle: HashMap<(Symbol, Interval), Throttled>,
    volume: HashMap<Symbol, Rolling24h>,
    /// Symbols whose 24 h volume changed since the leaderboard last went out, and when it may
    /// go out next: once a second, not with every batch (a thousand symbols made that one ZADD
    /// per symbol per batch, tens of thousands a second, for a 24-hour figure).
    board_dirty: HashSet<Symbol>,
    next_board: Instant,
    symbols: Vec<SymbolInfo>,
    depth: MailboxDepth,
    capacity: usize,
    health: Arc<Health>,
}

impl RedisPublisherActor {
    pub fn new(
        cfg: RedisConfig,
        depth: MailboxDepth,
        capacity: usize,
        health: Arc<Health>,
    ) -> Self {
        let keys = RedisKeys::new(cfg.key_prefix.clone());
        RedisPublisherActor {
            cfg,
            keys,
            sink: None,
            connecting: false,
            live_in_flight: false,
            live: LiveOutbox::default(),
            streams_in_flight: false,
            streams: StreamsOutbox::default(),
            flush_waiters: Vec::new(),
            probing: false,
            down_until: None,
            throttle: HashMap::new(),
            volume: HashMap::new(),
            board_dirty: HashSet::new(),
            next_board: Instant::now(),
            symbols: Vec::new(),
            depth,
            capacity,
            health,
        }
    }

    fn available(&self) -> bool {
        self.sink.is_some() && self.down_until.is_none_or(|t| Instant::now() >= t)
    }

    /// Connects in the background; `first` holds the mailbox until the attempt ends (at most
    /// the connection timeout), so the batches of a fast start are not dropped while a TLS
    /// handshake is still going on: a closed candle dropped then would be missing for good.
    fn connect(&mut self, ctx: &mut Context<Self>) {
        self.connect_with(ctx, false);
    }

    fn connect_with(&mut self, ctx: &mut Context<Self>, first: bool) {
        if self.connecting || self.sink.is_some() {
            return;
        }
        self.connecting = true;
        let cfg = self.cfg.clone();
        let keys = self.keys.clone();
        let attempt = async move { RedisSink::connect(&cfg, keys).await }
                .into_actor(self)
                .map(|res, act, ctx| {
                    act.connecting = false;
                    match res {
                        Ok(sink) => {
                            tracing::info!(redis = %act.cfg.url, "connected to Redis");
                            act.sink = Some(sink);
                            act.down_until = None;
                            Health::set(&act.health.redis, true);
                            if !act.symbols.is_empty() {
                                ctx.notify(CacheSymbols(act.symbols.clone()));
                            }
                        }
                        Err(e) => {
                            tracing::warn!(redis = %act.cfg.url, error = %e, "Redis unavailable; will retry");
                            act.mark_down();
                        }
                    }
                });
        if first {
            ctx.wait(attempt);
        } else {
            ctx.spawn(attempt);
        }
    }

    /// While Redis is marked down and its retry time has come, PINGs it (or connects, when
    /// there is no connection yet): a success is what makes the daemon ready again when no
    /// update would otherwise try.
    fn probe(&mut self, ctx: &mut Context<Self>) {
        let Some(until) = self.down_until else {
            return;
        };
        if self.probing || self.connecting || Instant::now() < until {
            return;
        }
        let Some(sink) = &self.sink else {
            self.connect(ctx);
            return;
        };
        self.probing = true;
        ctx.spawn(sink.ping().into_actor(self).map(|res, act, _ctx| {
            act.probing = false;
            match res {
                Ok(()) => {
                    tracing::info!(redis = %act.cfg.url, "Redis answers again");
                    act.down_until = None;
                    Health::set(&act.health.redis, true);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "Redis still unavailable");
                    act.mark_down();
                }
            }
        }));
    }

    fn mark_down(&mut self) {
        Health::set(&self.health.redis, false);
        self.down_until = Some(Instant::now() + Duration::from_millis(self.cfg.retry_interval_ms));
    }

    /// Which candle states go out now: closed ones always (once), open ones at most once per
    /// throttle period per candle; a held-back state goes out on the timer.
    fn select_candles(&mut self, candles: Vec<Candle>, now: Instant) -> Vec<Candle> {
        let mut out = Vec::new();
        for c in candles {
            let period = throttle_period(&self.cfg, c.interval);
            if c.interval == Interval::M1 {
                self.volume
                    .entry(c.symbol.clone())
                    .or_default()
                    .update(c.open_time_ms, c.quote_volume);
                if !self.board_dirty.contains(&c.symbol) {
                    self.board_dirty.insert(c.symbol.clone());
                }
            }
            let slot = self
                .throttle
                .entry((c.symbol.clone(), c.interval))
                .or_insert(Throttled {
                    last_sent: None,
                    held: None,
                });
            if c.closed {
                if slot
                    .held
                    .as_ref()
                    .is_some_and(|h| h.open_time_ms <= c.open_time_ms)
                {
                    slot.held = None;
                }
                out.push(c);
            } else if slot
                .last_sent
                .is_none_or(|t| now.duration_since(t) >= period)
            {
                slot.last_sent = Some(now);
                slot.held = None;
                out.push(c);
            } else {
                slot.held = Some(c);
            }
        }
        out
    }

    fn take_held(&mut self, now: Instant, all: bool) -> Vec<Candle> {
        let mut out = Vec::new();
        for ((_, interval), slot) in self.throttle.iter_mut() {
            let period = throttle_period(&self.cfg, *interval);
            let due = all
                || slot
                    .last_sent
                    .is_none_or(|t| now.duration_since(t) >= period);
            if due && let Some(c) = slot.held.take() {
                slot.last_sent = Some(now);
                out.push(c);
            }
        }
        out
    }

    /// The changed symbols' 24 h volumes, when a second has passed since the last ones.
    fn leaderboard(&mut self, now: Instant) -> Vec<(String, f64)> {
        if now < self.next_board || self.board_dirty.is_empty() {
            return Vec::new();
        }
        self.next_board = now + LEADERBOARD_EVERY;
        let volume = &self.volume;
        self.board_dirty
            .drain()
            .filter_map(|s| {
                volume
                    .get(&s)
                    .map(|r| (s.to_string(), r.sum.to_f64().unwrap_or(0.0)))
            })
            .collect()
    }

    /// Sends what waits in each lane whose pipeline is not in flight (a completion calls this
    /// again); counts it as unpublished when Redis is away. Answers flush waiters once nothing
    /// is left in either lane.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        let up = self.available();
        if !up && self.sink.is_none() && (!self.live.is_empty() || !self.streams.is_empty()) {
            self.connect(ctx);
        }
        if !self.live_in_flight && !self.live.is_empty() {
            let out = std::mem::take(&mut self.live);
            match self.sink.clone().filter(|_| up) {
                Some(sink) => self.send_live(ctx, sink, out),
                None => count_unpublished(0, out.candles.len()),
            }
        }
        if !self.streams_in_flight && !self.streams.is_empty() {
            let out = std::mem::take(&mut self.streams);
            self.depth.release(out.permits);
            match self.sink.clone().filter(|_| up) {
                Some(sink) => self.send_streams(ctx, sink, out),
                None => count_unpublished(out.trades.len(), 0),
            }
        }
        let idle = !self.live_in_flight
            && !self.streams_in_flight
            && self.live.is_empty()
            && self.streams.is_empty();
        if idle {
            for w in self.flush_waiters.drain(..) {
                let _ = w.send(());
            }
        }
    }

    fn send_live(&mut self, ctx: &mut Context<Self>, sink: RedisSink, out: LiveOutbox) {
        let candles = newest_states(out.candles);
        let latest: Vec<Trade> = out.latest.into_values().collect();
        let board = self.leaderboard(Instant::now());
        let received = out.received;
        self.live_in_flight = true;
        let send = async move {
            let started = Instant::now();
            let update = MarketUpdate {
                latest: latest.iter().collect(),
                candles: candles.iter().collect(),
                leaderboard: board,
            };
            let res = sink.publish_live(&update).await;
            (res, started.elapsed(), candles.len())
        };
        ctx.spawn(
            send.into_actor(self)
                .map(move |(res, took, n_candles), act, ctx| {
                    act.live_in_flight = false;
                    let acknowledged = Instant::now();
                    match res {
                        Ok(commands) => {
                            metrics::counter!("tradepipe_redis_commands_total").increment(commands);
                            metrics::histogram!("tradepipe_redis_pipeline_seconds")
                                .record(took.as_secs_f64());
                            for r in &received {
                                metrics::histogram!("tradepipe_tick_to_publish_seconds").record(
                                    acknowledged.saturating_duration_since(*r).as_secs_f64(),
                                );
                            }
                            Health::set(&act.health.redis, true);
                        }
                        Err(e) => act.failed(&e, 0, n_candles),
                    }
                    act.pump(ctx);
                }),
        );
    }

    fn send_streams(&mut self, ctx: &mut Context<Self>, sink: RedisSink, out: StreamsOutbox) {
        self.streams_in_flight = true;
        let send = async move {
            let started = Instant::now();
            let res = sink.publish_streams(&out.trades, &out.closed).await;
            (res, started.elapsed(), out.trades.len())
        };
        ctx.spawn(
            send.into_actor(self)
                .map(move |(res, took, n_trades), act, ctx| {
                    act.streams_in_flight = false;
                    match res {
                        Ok(commands) => {
                            metrics::counter!("tradepipe_redis_commands_total").increment(commands);
                            metrics::histogram!("tradepipe_redis_pipeline_seconds")
                                .record(took.as_secs_f64());
                        }
                        Err(e) => act.failed(&e, n_trades, 0),
                    }
                    act.pump(ctx);
                }),
        );
    }

    /// A pipeline failed: what it carried is counted as unpublished, and Redis is marked down
    /// (the connection manager reconnects by itself; we keep it, but back off).
    fn failed(&mut self, e: &redis::RedisError, trades: usize, candles: usize) {
        tracing::warn!(error = %e, "Redis pipeline failed; updates dropped and counted");
        count_unpublished(trades, candles);
        self.mark_down();
    }

    /// Takes a batch into the lanes' outboxes and sends what is due.
    fn enqueue(
        &mut self,
        ctx: &mut Context<Self>,
        trades: Vec<Trade>,
        candles: Vec<Candle>,
        received_at: Option<Instant>,
        permits: usize,
    ) {
        for t in newest_per_symbol(&trades) {
            self.live.latest.insert(t.symbol.clone(), t.clone());
        }
        self.streams
            .closed
            .extend(candles.iter().filter(|c| c.closed).cloned());
        self.live.candles.extend(candles);
        self.live.received.extend(received_at);
        self.streams.trades.extend(trades);
        self.streams.permits += permits;
        self.pump(ctx);
    }
}

fn count_unpublished(trades: usize, candles: usize) {
    metrics::counter!("tradepipe_redis_unpublished_total", "kind" => "tick")
        .increment(trades as u64);
    metrics::counter!("tradepipe_redis_unpublished_total", "kind" => "candle")
        .increment(candles as u64);
}

/// Each symbol's newest trade (the last in the list): by set, not by scanning the list per
/// trade, which with a thousand symbols per batch cost more than the rest of a send.
fn newest_per_symbol(trades: &[Trade]) -> Vec<&Trade> {
    let mut seen: HashSet<&Symbol> = HashSet::new();
    trades
        .iter()
        .rev()
        .filter(|t| seen.insert(&t.symbol))
        .collect()
}

/// One state per candle (symbol, interval, open time): the newest, at the place of the first,
/// so a candle that closed and the one that opened after it still go out in that order.
fn newest_states(candles: Vec<Candle>) -> Vec<Candle> {
    let mut at: HashMap<(Symbol, Interval, i64), usize> = HashMap::with_capacity(candles.len());
    let mut out: Vec<Candle> = Vec::with_capacity(candles.len());
    for c in candles {
        match at.entry((c.symbol.clone(), c.interval, c.open_time_ms)) {
            std::collections::hash_map::Entry::Occupied(e) => out[*e.get()] = c,
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(out.len());
                out.push(c);
            }
        }
    }
    out
}

/// How often `leaderboard:volume:24h` is updated (for the symbols whose volume changed).
const LEADERBOARD_EVERY: Duration = Duration::from_secs(1);

/// How often an open candle of `interval` may go out.
fn throttle_period(cfg: &RedisConfig, interval: Interval) -> Duration {
    let ms = if interval == Interval::M1 {
        cfg.candle_throttle_ms
    } else {
        cfg.candle_throttle_long_ms.max(cfg.candle_throttle_ms)
    };
    Duration::from_millis(ms)
}

impl Actor for RedisPublisherActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.capacity);
        self.connect_with(ctx, true);
        let period = Duration::from_millis(self.cfg.candle_throttle_ms.max(10));
        ctx.run_interval(period, |act, ctx| {
            let held = act.take_held(Instant::now(), false);
            if !held.is_empty() {
                act.enqueue(ctx, Vec::new(), held, None, 0);
            }
        });
        let retry = Duration::from_millis(self.cfg.retry_interval_ms.max(10));
        ctx.run_interval(retry, |act, ctx| act.probe(ctx));
        ctx.run_interval(Duration::from_secs(1800), |act, ctx| {
            if !act.symbols.is_empty() {
                ctx.notify(CacheSymbols(act.symbols.clone()));
            }
        });
    }
}

impl Supervised for RedisPublisherActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.sink = None;
        self.connecting = false;
        // The pipelines in flight died with the old context; the outboxes are kept and go out.
        self.live_in_flight = false;
        self.streams_in_flight = false;
        count_restart(ACTOR);
    }
}

impl Handler<PublishBatch> for RedisPublisherActor {
    type Result = ();

    fn handle(&mut self, msg: PublishBatch, ctx: &mut Context<Self>) {
        let _timer = HandlerTimer::start(ACTOR);
        let permits = self
            .depth
            .taken_keeping_permits(msg.trades.len() + msg.candles.len());
        let candles = self.select_candles(msg.candles, Instant::now());
        self.enqueue(ctx, msg.trades, candles, Some(msg.received_at), permits);
    }
}

impl Handler<CacheSymbols> for RedisPublisherActor {
    type Result = ();

    fn handle(&mut self, msg: CacheSymbols, ctx: &mut Context<Self>) {
        self.symbols = msg.0;
        let Some(sink) = self.sink.clone() else {
            return;
        };
        let symbols = self.symbols.clone();
        ctx.spawn(
            async move { sink.cache_symbols(&symbols).await }
                .into_actor(self)
                .map(|res, act, _| {
                    if let Err(e) = res {
                        tracing::warn!(error = %e, "caching symbols in Redis failed");
                        act.mark_down();
                    }
                }),
        );
    }
}

impl Handler<FlushPublisher> for RedisPublisherActor {
    type Result = ResponseFuture<()>;

    /// Answers once every held-back candle and everything queued before this message has been
    /// sent (or counted as unpublished).
    fn handle(&mut self, _msg: FlushPublisher, ctx: &mut Context<Self>) -> Self::Result {
        let held = self.take_held(Instant::now(), true);
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.flush_waiters.push(tx);
        self.enqueue(ctx, Vec::new(), held, None, 0);
        Box::pin(async move {
            // An Err means the actor stopped: nothing more will be sent either way.
            let _ = rx.await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolling_volume_forgets_minutes_older_than_a_day() {
        let mut r = Rolling24h::default();
        r.update(0, Decimal::new(5, 0));
        r.update(60_000, Decimal::new(7, 0));
        r.update(60_000, Decimal::new(8, 0)); // the open minute grew: replaces, not adds
        assert_eq!(r.sum, Decimal::new(13, 0));
        r.update(DAY_MS, Decimal::new(1, 0)); // minute 0 is now exactly a day old: out
        assert_eq!(r.sum, Decimal::new(9, 0));
    }

    #[test]
    fn the_leaderboard_goes_out_once_a_second_with_the_changed_symbols() {
        let mut p = RedisPublisherActor::new(
            RedisConfig::default(),
            MailboxDepth::new("test", 8),
            8,
            Arc::new(Health::default()),
        );
        let minute = |sym: &str, qv: i64| {
            let mut c = Candle::empty(sym.into(), Interval::M1, 0, Decimal::ONE, false);
            c.quote_volume = Decimal::new(qv, 0);
            c
        };
        let t0 = Instant::now();
        p.select_candles(vec![minute("A", 5), minute("B", 7)], t0);
        let mut board = p.leaderboard(t0);
        board.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(board, vec![("A".into(), 5.0), ("B".into(), 7.0)]);
        p.select_candles(vec![minute("A", 9)], t0 + Duration::from_millis(100));
        assert!(p.leaderboard(t0 + Duration::from_millis(500)).is_empty());
        assert_eq!(
            p.leaderboard(t0 + Duration::from_secs(1)),
            vec![("A".into(), 9.0)]
        );
        assert!(
            p.leaderboard(t0 + Duration::from_secs(5)).is_empty(),
            "nothing changed"
        );
    }

    #[test]
    fn a_coalesced_update_carries_each_candles_newest_state_once_in_first_seen_order() {
        let state = |sym: &str, open_ms: i64, close: i64, closed: bool| {
            let mut c = Candle::empty(sym.into(), Interval::M1, open_ms, Decimal::ONE, closed);
            c.close = Decimal::new(close, 0);
            c
        };
        let out = newest_states(vec![
            state("A", 0, 1, false),
            state("B", 0, 5, false),
            state("A", 0, 2, true),       // A's minute closed...
            state("A", 60_000, 3, false), // ...and the next one opened
            state("B", 0, 6, false),
        ]);
        let got: Vec<_> = out
            .iter()
            .map(|c| (c.symbol.to_string(), c.open_time_ms, c.close, c.closed))
            .collect();
        assert_eq!(
            got,
            vec![
                ("A".into(), 0, Decimal::new(2, 0), true),
                ("B".into(), 0, Decimal::new(6, 0), false),
                ("A".into(), 60_000, Decimal::new(3, 0), false),
            ]
        );
    }

    #[test]
    fn the_newest_trade_per_symbol_is_the_last_one_seen() {
        let trade = |sym: &str, id: u64| Trade {
            symbol: sym.into(),
            trade_id: id,
            price: Decimal::new(id as i64, 0),
            qty: Decimal::ONE,
            time_ms: id as i64,
            is_buyer_maker: false,
        };
        let trades = vec![trade("A", 1), trade("B", 2), trade("A", 3), trade("C", 4)];
        let mut ids: Vec<u64> = newest_per_symbol(&trades)
            .iter()
            .map(|t| t.trade_id)
            .collect();
        ids.sort();
        assert_eq!(ids, vec![2, 3, 4]);
    }

    #[test]
    fn long_candles_go_out_less_often_than_minutes_and_closed_ones_at_once() {
        let cfg = RedisConfig {
            candle_throttle_ms: 250,
            candle_throttle_long_ms: 2000,
            ..RedisConfig::default()
        };
        let mut p = RedisPublisherActor::new(
            cfg,
            MailboxDepth::new("test", 8),
            8,
            Arc::new(Health::default()),
        );
        let open = |iv, n: i64| {
            let mut c = Candle::empty("A".into(), iv, 0, Decimal::new(n, 0), false);
            c.close = Decimal::new(n, 0);
            c
        };
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let sent = |v: Vec<Candle>| v.iter().map(|c| c.interval).collect::<Vec<_>>();
        assert_eq!(
            sent(p.select_candles(vec![open(Interval::M1, 1), open(Interval::H1, 1)], t0)),
            vec![Interval::M1, Interval::H1]
        );
        // 300 ms on: the minute goes again, the hour is held.
        assert_eq!(
            sent(p.select_candles(vec![open(Interval::M1, 2), open(Interval::H1, 2)], ms(300))),
            vec![Interval::M1]
        );
        assert!(p.take_held(ms(600), false).is_empty());
        // Its period over, the held hour goes out with its newest state.
        let held = p.take_held(ms(2000), false);
        assert_eq!(sent(held.clone()), vec![Interval::H1]);
        assert_eq!(held[0].close, Decimal::new(2, 0));
        // A closed candle never waits.
        let mut closed = open(Interval::H1, 3);
        closed.closed = true;
        assert_eq!(
            sent(p.select_candles(vec![closed], ms(2100))),
            vec![Interval::H1]
        );
    }
}
