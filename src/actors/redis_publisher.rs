//! RedisPublisherActor: live prices, tick streams, candles and the volume leaderboard on Redis.
//! Open-candle updates are throttled per candle; closed candles go out once. If Redis is away,
//! the PostgreSQL path is never slowed: updates are counted as unpublished and dropped (pub/sub
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

pub(crate) struct RedisPublisherActor {
    cfg: RedisConfig,
    keys: RedisKeys,
    sink: Option<RedisSink>,
    connecting: bool,
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
        let target = self.cfg.target();
        let keys = self.keys.clone();
        let (maxlen, keep) = (self.cfg.ticks_stream_maxlen, self.cfg.candles_keep);
        let attempt =
            async move { RedisSink::connect(&target, keys, maxlen, keep).await }
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

    /// Sends trades and candles as one pipeline, or counts them as unpublished.
    fn send(
        &mut self,
        ctx: &mut Context<Self>,
        trades: Vec<Trade>,
        candles: Vec<Candle>,
        received_at: Option<Instant>,
    ) -> Option<Pin<Box<dyn ActorFuture<Self, Output = ()>>>> {
        if trades.is_empty() && candles.is_empty() {
            return None;
        }
        if !self.available() {
            metrics::counter!("tradepipe_redis_unpublished_total", "kind" => "tick")
                .increment(trades.len() as u64);
            metrics::counter!("tradepipe_redis_unpublished_total", "kind" => "candle")
                .increment(candles.len() as u64);
            if self.sink.is_none() {
                self.connect(ctx);
            }
            return None;
        }
        let mut sink = self.sink.take()?;
        // Each symbol's newest trade: by set, not by scanning the list per trade, which with a
        // thousand symbols per batch cost more than the rest of `send`.
        let mut seen: HashSet<&Symbol> = HashSet::new();
        let mut newest: Vec<usize> = Vec::new();
        for (i, t) in trades.iter().enumerate().rev() {
            if seen.insert(&t.symbol) {
                newest.push(i);
            }
        }
        let board = self.leaderboard(Instant::now());
        Some(Box::pin(
            async move {
                let started = Instant::now();
                let latest: Vec<&Trade> = newest.iter().filter_map(|&i| trades.get(i)).collect();
                let update = MarketUpdate {
                    trades: &trades,
                    latest,
                    candles: candles.iter().collect(),
                    leaderboard: board,
                };
                let res = sink.publish(&update).await;
                let took = started.elapsed();
                (sink, res, took, trades.len(), candles.len())
            }
            .into_actor(self)
            .map(move |(sink, res, took, n_trades, n_candles), act, _ctx| match res {
                Ok(commands) => {
                    act.sink = Some(sink);
                    metrics::counter!("tradepipe_redis_commands_total").increment(commands);
                    metrics::histogram!("tradepipe_redis_pipeline_seconds").record(took.as_secs_f64());
                    if let Some(r) = received_at {
                        metrics::histogram!("tradepipe_tick_to_publish_seconds").record(r.elapsed().as_secs_f64());
                    }
                    Health::set(&act.health.redis, true);
                }
                Err(e) => {
                    // The connection manager reconnects by itself; keep it, but back off.
                    act.sink = Some(sink);
                    tracing::warn!(error = %e, "Redis pipeline failed; updates dropped and counted");
                    metrics::counter!("tradepipe_redis_unpublished_total", "kind" => "tick").increment(n_trades as u64);
                    metrics::counter!("tradepipe_redis_unpublished_total", "kind" => "candle").increment(n_candles as u64);
                    act.mark_down();
                }
            }),
        ))
    }
}

use std::pin::Pin;

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
            if let Some(f) = act.send(ctx, Vec::new(), held, None) {
                ctx.wait(f);
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
        count_restart(ACTOR);
    }
}

impl Handler<PublishBatch> for RedisPublisherActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, msg: PublishBatch, ctx: &mut Context<Self>) -> Self::Result {
        let _timer = HandlerTimer::start(ACTOR);
        self.depth.taken(msg.trades.len() + msg.candles.len());
        let candles = self.select_candles(msg.candles, Instant::now());
        match self.send(ctx, msg.trades, candles, Some(msg.received_at)) {
            Some(f) => AtomicResponse::new(f),
            None => AtomicResponse::new(Box::pin(async {}.into_actor(self))),
        }
    }
}

impl Handler<CacheSymbols> for RedisPublisherActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, msg: CacheSymbols, _ctx: &mut Context<Self>) -> Self::Result {
        self.symbols = msg.0;
        let Some(mut sink) = self.sink.take() else {
            return AtomicResponse::new(Box::pin(async {}.into_actor(self)));
        };
        let symbols = self.symbols.clone();
        AtomicResponse::new(Box::pin(
            async move {
                let res = sink.cache_symbols(&symbols).await;
                (sink, res)
            }
            .into_actor(self)
            .map(|(sink, res), act, _| {
                act.sink = Some(sink);
                if let Err(e) = res {
                    tracing::warn!(error = %e, "caching symbols in Redis failed");
                    act.mark_down();
                }
            }),
        ))
    }
}

impl Handler<FlushPublisher> for RedisPublisherActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _msg: FlushPublisher, ctx: &mut Context<Self>) -> Self::Result {
        let held = self.take_held(Instant::now(), true);
        match self.send(ctx, Vec::new(), held, None) {
            Some(f) => AtomicResponse::new(f),
            None => AtomicResponse::new(Box::pin(async {}.into_actor(self))),
        }
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
