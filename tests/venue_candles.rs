//! Candles per venue: the project's own candle fold (`CandleBook`) over the trades the Bybit
//! client passes on from the recorded v5 session, against Bybit's own `kline.1` messages in the
//! same recording (`data/market/multiexchange/bybit/SOURCES.md`).
//!
//! What the recording allows (it runs 21:26:59.68 .. 21:27:42 UTC): no minute is both covered
//! from start to end and closed by a `confirm: true` kline. So two checks, each exact:
//! - 21:27, the one minute whose every trade from its start is recorded: for each of the six
//!   series (linear BTC/ETH/SOL/DOGE, spot BTC/ETH), the last kline update in the recording
//!   equals the fold of the recorded trades up to that update's timestamp. Close, volume and
//!   turnover (quote volume) must be equal as they are; Bybit opens a minute at the previous
//!   minute's close (which then also bounds high and low), where the book opens at the first
//!   trade, so open/high/low are compared under that convention.
//! - 21:26, closed (`confirm: true`): for the series whose trades reach into that minute (linear
//!   BTCUSDT), the closed kline equals its previous update plus the fold of the recorded trades
//!   after that update.

use rust_decimal::Decimal;
use serde_json::Value;
use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::str::FromStr;
use tradepipe::domain::{Candle, CandleBook, Interval, Symbol};
use tradepipe::exchange::recording::recorded_trades;
use tradepipe::exchange::venue::{Market, Venue, VenueTrade};

const MINUTE_26: i64 = 1_786_310_760_000; // 2026-08-09 21:26 UTC
const MINUTE_27: i64 = MINUTE_26 + 60_000;

fn recording() -> PathBuf {
    let p = std::env::var_os("TRADEPIPE_MARKET_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/data/market"
            ))
        })
        .join("multiexchange/bybit/BYBIT.v3.jsonl.gz");
    assert!(p.exists(), "{} is missing", p.display());
    p
}

#[derive(Debug, Clone)]
struct Kline {
    start: i64,
    timestamp: i64,
    confirm: bool,
    open: Decimal,
    high: Decimal,
    low: Decimal,
    close: Decimal,
    volume: Decimal,
    turnover: Decimal,
}

/// Every `kline.1` update per (market, symbol), in recording order, read with a plain JSON walk.
fn klines() -> HashMap<(Market, String), Vec<Kline>> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(recording()).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let mut addr: HashMap<String, String> = HashMap::new();
    let mut out: HashMap<(Market, String), Vec<Kline>> = HashMap::new();
    for line in text.lines().skip(1) {
        let ev: Value = serde_json::from_str(line).unwrap();
        let conn = ev["conn"].as_str().unwrap_or_default().to_string();
        if ev["t"] == "connect" {
            addr.insert(conn.clone(), ev["addr"].as_str().unwrap().to_string());
        }
        if ev["t"] != "recv" {
            continue;
        }
        let m: Value = serde_json::from_str(ev["data"].as_str().unwrap()).unwrap();
        let Some(symbol) = m["topic"].as_str().and_then(|t| t.strip_prefix("kline.1.")) else {
            continue;
        };
        let market = if addr[&conn].ends_with("/linear") {
            Market::Linear
        } else {
            Market::Spot
        };
        let d = |v: &Value| Decimal::from_str(v.as_str().unwrap()).unwrap();
        for k in m["data"].as_array().unwrap() {
            out.entry((market, symbol.to_string()))
                .or_default()
                .push(Kline {
                    start: k["start"].as_i64().unwrap(),
                    timestamp: k["timestamp"].as_i64().unwrap(),
                    confirm: k["confirm"].as_bool().unwrap(),
                    open: d(&k["open"]),
                    high: d(&k["high"]),
                    low: d(&k["low"]),
                    close: d(&k["close"]),
                    volume: d(&k["volume"]),
                    turnover: d(&k["turnover"]),
                });
        }
    }
    out
}

/// The client's trades per (market, symbol), in the order it passed them on.
fn trades() -> HashMap<(Market, String), Vec<VenueTrade>> {
    let r = recorded_trades(Venue::Bybit, &[recording()]).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let mut out: HashMap<(Market, String), Vec<VenueTrade>> = HashMap::new();
    for t in r.trades {
        out.entry((t.market, t.symbol.to_string()))
            .or_default()
            .push(t);
    }
    out
}

/// The 1m candle the project's book builds from `trades` with time in [from, through].
fn fold(trades: &[VenueTrade], from: i64, through: i64) -> Option<Candle> {
    let mut book = CandleBook::new(Symbol::from("S"));
    let mut closed = Vec::new();
    // Linear ids are UUIDs: the book is ordered by arrival, as the feed will (see venue.rs).
    for (n, t) in trades.iter().enumerate() {
        if (from..=through).contains(&t.time_ms()) {
            book.apply(&t.to_trade(n as u64 + 1), &mut closed);
        }
    }
    book.current(Interval::M1).filter(|c| c.trade_count > 0)
}

#[test]
fn bybit_last_kline_of_the_covered_minute_equals_the_fold_of_its_trades() {
    let klines = klines();
    let trades = trades();
    let mut checked = 0;
    for (key, series) in &klines {
        let closed_26 = series
            .iter()
            .find(|k| k.start == MINUTE_26 && k.confirm)
            .unwrap();
        let last = series.iter().rfind(|k| k.start == MINUTE_27).unwrap();
        let c = fold(&trades[key], MINUTE_27, last.timestamp)
            .unwrap_or_else(|| panic!("{key:?}: no trade in 21:27"));
        assert_eq!(c.open_time_ms, MINUTE_27);
        assert_eq!(c.close, last.close, "{key:?}");
        assert_eq!(c.volume, last.volume, "{key:?}");
        assert_eq!(c.quote_volume, last.turnover, "{key:?}");
        // Bybit's convention: the minute opens at the previous close, which bounds high and low.
        assert_eq!(last.open, closed_26.close, "{key:?}");
        assert_eq!(last.high, c.high.max(closed_26.close), "{key:?}");
        assert_eq!(last.low, c.low.min(closed_26.close), "{key:?}");
        checked += 1;
    }
    assert_eq!(checked, 6, "linear BTC/ETH/SOL/DOGE and spot BTC/ETH");
}

#[test]
fn bybit_closed_kline_equals_its_last_update_plus_the_recorded_trades() {
    let klines = klines();
    let trades = trades();
    let mut checked = Vec::new();
    for (key, series) in &klines {
        let in_26: Vec<&VenueTrade> = trades[key]
            .iter()
            .filter(|t| (MINUTE_26..MINUTE_27).contains(&t.time_ms()))
            .collect();
        if in_26.is_empty() {
            continue; // the recording holds none of this series' 21:26 trades
        }
        let closed = series
            .iter()
            .find(|k| k.start == MINUTE_26 && k.confirm)
            .unwrap();
        let before = series
            .iter()
            .rfind(|k| k.start == MINUTE_26 && !k.confirm && k.timestamp < in_26[0].time_ms())
            .unwrap_or_else(|| panic!("{key:?}: no update before the recorded trades"));
        let c = fold(&trades[key], before.timestamp + 1, MINUTE_27 - 1).unwrap();
        assert_eq!(closed.open, before.open, "{key:?}");
        assert_eq!(closed.close, c.close, "{key:?}");
        assert_eq!(closed.high, before.high.max(c.high), "{key:?}");
        assert_eq!(closed.low, before.low.min(c.low), "{key:?}");
        assert_eq!(closed.volume, before.volume + c.volume, "{key:?}");
        assert_eq!(closed.turnover, before.turnover + c.quote_volume, "{key:?}");
        checked.push(key.clone());
    }
    assert_eq!(checked, [(Market::Linear, "BTCUSDT".to_string())]);
}
