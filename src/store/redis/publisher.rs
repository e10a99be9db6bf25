//! The market's live side in Redis: latest prices, tick streams, candles and the leaderboard.
//! Two lanes, each on its own connection: the live one (latest prices, PUBLISH, candles,
//! leaderboard) as one MULTI/EXEC per update, so a reader never sees a candle's sorted-set member
//! removed but not yet re-added; and the streams (one XADD per trade, a closed-candle entry per
//! closed candle), most of the commands, which need no transaction. On one connection a PUBLISH
//! queued behind thousands of XADDs: with a thousand symbols that was most of tick-to-PUBLISH
//! (issue 11). Redis serves connections in turn, a read buffer at a time, so the live lane no
//! longer waits for the bulk.

use super::{RedisKeys, connection_manager};
use crate::config::RedisConfig;
use crate::domain::{Candle, SymbolInfo, Trade};
use redis::aio::ConnectionManager;
use std::fmt::Write as _;
use std::time::Duration;

/// `PUBLISH prices:{SYM}` payload: `{"price":50123.45,"timestamp":1705312800000}`. The price is
/// written as the exact decimal text (a JSON number), never through a float.
pub(crate) fn price_message(t: &Trade) -> String {
    format!(
        "{{\"price\":{},\"timestamp\":{}}}",
        t.price.normalize(),
        t.time_ms
    )
}

/// Sorted-set member and `candles:{SYM}:{interval}` payload. The seed's fields o,h,l,c,v,t plus
/// q (quote volume), n (trade count), T (close time) and x (closed).
pub(crate) fn candle_json(c: &Candle) -> String {
    let mut s = String::with_capacity(160);
    let _ = write!(
        s,
        "{{\"o\":{},\"h\":{},\"l\":{},\"c\":{},\"v\":{},\"q\":{},\"n\":{},\"t\":{},\"T\":{},\"x\":{}}}",
        c.open.normalize(),
        c.high.normalize(),
        c.low.normalize(),
        c.close.normalize(),
        c.volume.normalize(),
        c.quote_volume.normalize(),
        c.trade_count,
        c.open_time_ms,
        c.close_time_ms,
        c.closed
    );
    s
}

/// What one live pipeline carries.
#[derive(Default)]
pub struct MarketUpdate<'a> {
    /// The newest trade per symbol: `price:latest` and `PUBLISH prices`.
    pub latest: Vec<&'a Trade>,
    pub candles: Vec<&'a Candle>,
    /// Rolling 24 h quote volume per symbol (sorted-set scores are doubles by Redis's design).
    pub leaderboard: Vec<(String, f64)>,
}

impl MarketUpdate<'_> {
    pub fn is_empty(&self) -> bool {
        self.latest.is_empty() && self.candles.is_empty() && self.leaderboard.is_empty()
    }
}

/// Two Redis connections (the lanes, see the module comment) that reconnect by themselves, with
/// short timeouts: a dead Redis must cost the pipeline a second, not a minute. Clones share the
/// connections.
#[derive(Clone)]
pub struct RedisSink {
    live: ConnectionManager,
    streams: ConnectionManager,
    keys: RedisKeys,
    ticks_trim: StreamTrim,
    /// `stream:candles:{SYM}` retention; `None`: no stream.
    candles_stream: Option<Duration>,
    candles_keep: u64,
}

/// How a stream is trimmed as entries are added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamTrim {
    /// `MAXLEN ~ n`: about the newest n entries.
    MaxLen(u64),
    /// `MINID ~ now - age`: the entries added within `age` (entry ids are Redis's clock, ms).
    MaxAge(Duration),
}

impl StreamTrim {
    pub fn from_config(cfg: &RedisConfig) -> Self {
        if cfg.ticks_stream_retention_secs > 0 {
            StreamTrim::MaxAge(Duration::from_secs(cfg.ticks_stream_retention_secs))
        } else {
            StreamTrim::MaxLen(cfg.ticks_stream_maxlen)
        }
    }

    /// The XADD arguments that trim; `now_ms` is when the pipeline is built.
    fn push_args(self, cmd: &mut redis::Cmd, now_ms: i64) {
        match self {
            StreamTrim::MaxLen(n) => {
                cmd.arg("MAXLEN").arg("~").arg(n);
            }
            StreamTrim::MaxAge(age) => {
                let oldest = now_ms.saturating_sub(age.as_millis() as i64).max(0);
                cmd.arg("MINID").arg("~").arg(oldest);
            }
        }
    }
}

impl RedisSink {
    pub async fn connect(cfg: &RedisConfig, keys: RedisKeys) -> redis::RedisResult<Self> {
        let target = cfg.target();
        let live = connection_manager(&target).await?;
        let streams = connection_manager(&target).await?;
        Ok(RedisSink {
            live,
            streams,
            keys,
            ticks_trim: StreamTrim::from_config(cfg),
            candles_stream: (cfg.candles_stream_retention_secs > 0)
                .then(|| Duration::from_secs(cfg.candles_stream_retention_secs)),
            candles_keep: cfg.candles_keep,
        })
    }

    pub fn keys(&self) -> &RedisKeys {
        &self.keys
    }

    /// One PING on a clone of the connection, so the sink stays free for updates meanwhile:
    /// whether Redis answers again (health probe while updates are being dropped).
    pub fn ping(&self) -> impl Future<Output = redis::RedisResult<()>> + 'static {
        let mut conn = self.live.clone();
        async move { redis::cmd("PING").query_async(&mut conn).await }
    }

    /// Sends one live update as one MULTI/EXEC; returns the number of commands sent.
    pub(crate) async fn publish_live(&self, u: &MarketUpdate<'_>) -> redis::RedisResult<u64> {
        let (pipe, n) = self.live_pipeline(u);
        if n > 0 {
            pipe.query_async::<()>(&mut self.live.clone()).await?;
        }
        Ok(n)
    }

    /// Appends the trades and closed candles to their streams; returns the number of commands.
    pub(crate) async fn publish_streams(
        &self,
        trades: &[Trade],
        closed: &[Candle],
    ) -> redis::RedisResult<u64> {
        let (pipe, n) = self.streams_pipeline(trades, closed);
        if n > 0 {
            pipe.query_async::<()>(&mut self.streams.clone()).await?;
        }
        Ok(n)
    }

    fn live_pipeline(&self, u: &MarketUpdate<'_>) -> (redis::Pipeline, u64) {
        let mut p = redis::pipe();
        p.atomic();
        let mut n = 0u64;
        for t in &u.latest {
            p.cmd("SET")
                .arg(self.keys.latest_price(&t.symbol))
                .arg(t.price.normalize().to_string())
                .arg("EX")
                .arg(5)
                .ignore();
            p.cmd("PUBLISH")
                .arg(self.keys.prices_channel(&t.symbol))
                .arg(price_message(t))
                .ignore();
            n += 2;
        }
        for c in &u.candles {
            let key = self.keys.candles(&c.symbol, c.interval);
            let json = candle_json(c);
            // One member per open time: drop the previous state of this candle first.
            p.cmd("ZREMRANGEBYSCORE")
                .arg(&key)
                .arg(c.open_time_ms)
                .arg(c.open_time_ms)
                .ignore();
            p.cmd("ZADD")
                .arg(&key)
                .arg(c.open_time_ms)
                .arg(&json)
                .ignore();
            // Trim once per bucket, when it closes: updates of an open candle replace its one
            // member and cannot grow the set. With a thousand symbols this is a quarter of the
            // candle commands.
            if c.closed {
                p.cmd("ZREMRANGEBYRANK")
                    .arg(&key)
                    .arg(0)
                    .arg(-(self.candles_keep as i64) - 1)
                    .ignore();
                n += 1;
            }
            p.cmd("PUBLISH")
                .arg(self.keys.candles_channel(&c.symbol, c.interval))
                .arg(&json)
                .ignore();
            n += 3;
        }
        for (sym, score) in &u.leaderboard {
            p.cmd("ZADD")
                .arg(self.keys.leaderboard())
                .arg(*score)
                .arg(sym)
                .ignore();
            n += 1;
        }
        (p, n)
    }

    /// The streams: a tick entry per trade, and a candle entry per closed candle.
    fn streams_pipeline(&self, trades: &[Trade], closed: &[Candle]) -> (redis::Pipeline, u64) {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let mut p = redis::pipe();
        let mut n = 0u64;
        for t in trades {
            let mut cmd = redis::cmd("XADD");
            cmd.arg(self.keys.ticks(&t.symbol));
            self.ticks_trim.push_args(&mut cmd, now_ms);
            cmd.arg("*")
                .arg("price")
                .arg(t.price.to_string())
                .arg("quantity")
                .arg(t.qty.to_string())
                .arg("timestamp")
                .arg(t.time_ms)
                .arg("trade_id")
                .arg(t.trade_id)
                .arg("is_buyer_maker")
                .arg(if t.is_buyer_maker { 1 } else { 0 });
            p.add_command(cmd).ignore();
            n += 1;
        }
        if let Some(age) = self.candles_stream {
            for c in closed.iter().filter(|c| c.closed) {
                let mut cmd = redis::cmd("XADD");
                cmd.arg(self.keys.candles_stream(&c.symbol));
                StreamTrim::MaxAge(age).push_args(&mut cmd, now_ms);
                cmd.arg("*")
                    .arg("interval")
                    .arg(c.interval.as_str())
                    .arg("candle")
                    .arg(candle_json(c));
                p.add_command(cmd).ignore();
                n += 1;
            }
        }
        (p, n)
    }

    /// `cache:symbols:{SYM}` hashes, one hour TTL.
    pub(crate) async fn cache_symbols(&self, symbols: &[SymbolInfo]) -> redis::RedisResult<()> {
        let mut p = redis::pipe();
        for s in symbols {
            let key = self.keys.symbol_cache(&s.symbol);
            p.cmd("HSET")
                .arg(&key)
                .arg("base_asset")
                .arg(&s.base_asset)
                .arg("quote_asset")
                .arg(&s.quote_asset)
                .arg("exchange")
                .arg(&s.exchange)
                .arg("precision_price")
                .arg(s.precision_price)
                .arg("precision_qty")
                .arg(s.precision_qty)
                .arg("min_qty")
                .arg(s.min_qty.to_string())
                .arg("is_active")
                .arg(if s.is_active { 1 } else { 0 })
                .ignore();
            p.cmd("EXPIRE").arg(&key).arg(3600).ignore();
        }
        p.query_async::<()>(&mut self.live.clone()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Interval;
    use rust_decimal_macros_free::dec;

    mod rust_decimal_macros_free {
        pub fn dec(s: &str) -> rust_decimal::Decimal {
            s.parse().unwrap()
        }
    }

    #[test]
    fn payloads_keep_exact_decimals() {
        let t = Trade {
            symbol: "BTCUSDT".into(),
            trade_id: 7,
            price: dec("61234.56000000"),
            qty: dec("0.00100000"),
            time_ms: 1_723_161_601_437,
            is_buyer_maker: true,
        };
        assert_eq!(
            price_message(&t),
            r#"{"price":61234.56,"timestamp":1723161601437}"#
        );
        let keys = RedisKeys::new("t1:");
        assert_eq!(
            keys.candles("BTCUSDT", Interval::H4),
            "t1:price:candles:BTCUSDT:4h"
        );
        assert_eq!(keys.prices_channel("ETHUSDT"), "t1:prices:ETHUSDT");
    }
}
