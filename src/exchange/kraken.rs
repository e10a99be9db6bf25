//! Kraken spot trades: the WebSocket v2 `trade` channel (what tradepipe subscribes to), WS v1
//! trade arrays (what the 2021 recordings hold), and the REST `Trades` page that fills gaps by
//! time.
//!
//! Quirks handled (`data/market/multiexchange/kraken`):
//! - v1 frames are arrays `[channelID, [[price, volume, time, side, ordertype, misc], ...],
//!   "trade", "XMR/USD"]` with NO trade id: dedup compares whole trades and counts them per
//!   connection (two identical trades on one connection are two trades; the same trade on two
//!   connections is one), see `dedup.rs`. v2 and REST carry a consecutive `trade_id`.
//! - v1 times are epoch seconds as text with µs, REST times JSON numbers with 100 ns digits,
//!   v2 times RFC 3339: all read from the text, never through `f64`.
//! - v2 prices and quantities are JSON numbers: read from their literal text, exactly.
//! - Pairs use Kraken's asset names (`XBT/USD`, REST `XBTUSDT`, legacy `XXBTZUSD`); the
//!   normalized pair says BTC/USD. `side` is the taker's (`b`/`s`, `buy`/`sell`).
//! - `{"event":"heartbeat"}` (v1) and `{"channel":"heartbeat"}` (v2) arrive every second.
//!
//! Gap repair is by time: REST pages from `since` (ns); the ids (v2, REST) show holes and drop
//! what was already passed on. A v1 connection cannot see a hole (no ids).

use super::venue::{
    Frame, GapRepair, IdKind, Keepalive, Market, Pair, Side, TradeId, Venue, VenueTrade, VenueWire,
    append_in_id_order, checked_venue_symbol, pair_of, split_concatenated, unsplittable,
};
use super::wire::{
    WireError, check_notional, epoch_seconds_to_us, excerpt, from_json, positive_decimal,
    positive_json_number, rfc3339_to_us,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;

pub struct KrakenWire;

const WS_URL: &str = "wss://ws.kraken.com/v2";

/// Kraken's names for assets that everyone else names differently.
fn common_asset(asset: &str) -> &str {
    match asset {
        "XBT" => "BTC",
        "XDG" => "DOGE",
        other => other,
    }
}

/// The 4-letter asset codes of Kraken's oldest pairs (`XXBTZUSD`): X for crypto, Z for fiat.
const LEGACY_ASSETS: &[&str] = &[
    "XXBT", "XETH", "XLTC", "XXRP", "XXLM", "XXMR", "XZEC", "XETC", "XREP", "XMLN", "XXDG", "ZUSD",
    "ZEUR", "ZGBP", "ZCAD", "ZJPY", "ZAUD", "ZCHF",
];

/// v1 and v2 objects: events, channel messages, method replies.
#[derive(Deserialize)]
struct Message<'a> {
    /// v1: heartbeat, systemStatus, subscriptionStatus, pong.
    #[serde(borrow, default)]
    event: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    status: Option<Cow<'a, str>>,
    /// v2: trade, heartbeat, status, book, ticker, ...
    #[serde(borrow, default)]
    channel: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(default)]
    data: Option<Vec<V2Trade<'a>>>,
    /// v2 replies: subscribe, pong, ...
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(default)]
    success: Option<bool>,
}

#[derive(Deserialize)]
struct V2Trade<'a> {
    #[serde(borrow, default)]
    symbol: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    side: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    price: Option<&'a RawValue>,
    #[serde(borrow, default)]
    qty: Option<&'a RawValue>,
    #[serde(default)]
    trade_id: Option<u64>,
    #[serde(borrow, default)]
    timestamp: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RestPage<'a> {
    #[serde(borrow, default)]
    error: Vec<Cow<'a, str>>,
    #[serde(borrow, default)]
    result: Option<HashMap<Cow<'a, str>, &'a RawValue>>,
}

fn taker_side(s: &str, raw: &[u8]) -> Result<Side, WireError> {
    match s {
        "b" | "buy" => Ok(Side::Buy),
        "s" | "sell" => Ok(Side::Sell),
        _ => Err(WireError::BadValue {
            field: "side",
            reason: "not b/s or buy/sell",
            excerpt: excerpt(raw),
        }),
    }
}

struct Fields {
    symbol: crate::domain::Symbol,
    pair: Pair,
    trade_id: Option<u64>,
    price: rust_decimal::Decimal,
    qty: rust_decimal::Decimal,
    time_us: i64,
    side: Side,
    historical: bool,
}

fn trade(f: Fields, raw: &[u8]) -> Result<VenueTrade, WireError> {
    check_notional(f.price, f.qty, "volume", raw)?;
    Ok(VenueTrade {
        venue: Venue::Kraken,
        market: Market::Spot,
        symbol: f.symbol,
        pair: f.pair,
        trade_id: f.trade_id.map(TradeId::Number),
        price: f.price,
        qty: f.qty,
        time_us: f.time_us,
        taker_side: f.side,
        historical: f.historical,
    })
}

/// A v1 array frame; only `trade` arrays carry trades.
fn parse_v1_array(frame: &[u8], out: &mut Vec<VenueTrade>) -> Result<Frame, WireError> {
    let parts: Vec<&RawValue> = from_json(frame)?;
    let name_at = |i: usize| -> Option<String> {
        parts
            .get(i)
            .and_then(|v| serde_json::from_str::<String>(v.get()).ok())
    };
    let n = parts.len();
    let (Some(channel), Some(pair_name)) = (
        n.checked_sub(2).and_then(name_at),
        n.checked_sub(1).and_then(name_at),
    ) else {
        return Err(WireError::BadValue {
            field: "channelName",
            reason: "a v1 array without channel name and pair",
            excerpt: excerpt(frame),
        });
    };
    if channel != "trade" {
        return Ok(Frame::Other);
    }
    let rows: Vec<Vec<Cow<'_, str>>> = match parts.get(1) {
        Some(v) if n == 4 => from_json(v.get().as_bytes())?,
        _ => {
            return Err(WireError::BadValue {
                field: "trade",
                reason: "a v1 trade frame must have 4 elements",
                excerpt: excerpt(frame),
            });
        }
    };
    let symbol = checked_venue_symbol(&pair_name, "pair", frame)?;
    let pair = KrakenWire.pair(Market::Spot, &symbol)?;
    let mut parsed = Vec::with_capacity(rows.len());
    for row in &rows {
        let [price, volume, time, side, ..] = &row[..] else {
            return Err(WireError::BadValue {
                field: "trade",
                reason: "a v1 trade row needs price, volume, time and side",
                excerpt: excerpt(frame),
            });
        };
        let f = Fields {
            symbol: symbol.clone(),
            pair: pair.clone(),
            trade_id: None,
            price: positive_decimal("price", price, frame)?,
            qty: positive_decimal("volume", volume, frame)?,
            time_us: epoch_seconds_to_us(time, "time", frame)?,
            side: taker_side(side, frame)?,
            historical: false,
        };
        parsed.push(trade(f, frame)?);
    }
    out.append(&mut parsed);
    Ok(Frame::Trades)
}

fn parse_v2_trades(
    m: &Message<'_>,
    frame: &[u8],
    out: &mut Vec<VenueTrade>,
) -> Result<(), WireError> {
    let missing = |field| WireError::MissingField {
        field,
        excerpt: excerpt(frame),
    };
    let historical = m.kind.as_deref() == Some("snapshot");
    let mut parsed = Vec::new();
    for t in m.data.as_deref().unwrap_or_default() {
        let symbol = checked_venue_symbol(
            t.symbol.as_deref().ok_or_else(|| missing("symbol"))?,
            "symbol",
            frame,
        )?;
        let pair = KrakenWire.pair(Market::Spot, &symbol)?;
        let price = t.price.ok_or_else(|| missing("price"))?.get();
        let qty = t.qty.ok_or_else(|| missing("qty"))?.get();
        let f = Fields {
            symbol,
            pair,
            trade_id: Some(t.trade_id.ok_or_else(|| missing("trade_id"))?),
            price: positive_json_number("price", price, frame)?,
            qty: positive_json_number("qty", qty, frame)?,
            time_us: rfc3339_to_us(
                t.timestamp.as_deref().ok_or_else(|| missing("timestamp"))?,
                "timestamp",
                frame,
            )?,
            side: taker_side(t.side.as_deref().ok_or_else(|| missing("side"))?, frame)?,
            historical,
        };
        parsed.push(trade(f, frame)?);
    }
    append_in_id_order(parsed, out);
    Ok(())
}

impl VenueWire for KrakenWire {
    fn venue(&self) -> Venue {
        Venue::Kraken
    }

    fn endpoint(&self, market: Market) -> Option<&'static str> {
        (market == Market::Spot).then_some(WS_URL)
    }

    fn endpoint_market(&self, _url: &str) -> Market {
        Market::Spot
    }

    /// WS v2, with the channel's snapshot (its last 50 trades): after a reconnect it overlaps
    /// what was passed on (dropped by id) and may close a short gap without REST.
    fn subscribe_messages(&self, _market: Market, symbols: &[&str]) -> Vec<String> {
        let syms = serde_json::to_string(symbols).unwrap_or_else(|_| "[]".into());
        vec![format!(
            r#"{{"method":"subscribe","params":{{"channel":"trade","symbol":{syms},"snapshot":true}}}}"#
        )]
    }

    fn parse_frame(
        &self,
        _market: Market,
        frame: &[u8],
        out: &mut Vec<VenueTrade>,
    ) -> Result<Frame, WireError> {
        if frame.first() == Some(&b'[') {
            return parse_v1_array(frame, out);
        }
        let m: Message<'_> = from_json(frame)?;
        if let Some(event) = m.event.as_deref() {
            return match event {
                "heartbeat" | "pong" => Ok(Frame::Heartbeat),
                "subscriptionStatus" if m.status.as_deref() == Some("error") => {
                    Err(WireError::Exchange {
                        excerpt: excerpt(frame),
                    })
                }
                // "maintenance" / "cancel_only": Kraken is about to stop the feed.
                "systemStatus" if m.status.as_deref().is_some_and(|s| s != "online") => {
                    Ok(Frame::Reconnect)
                }
                _ => Ok(Frame::Control),
            };
        }
        if let Some(method) = m.method.as_deref() {
            return match (method, m.success) {
                (_, Some(false)) => Err(WireError::Exchange {
                    excerpt: excerpt(frame),
                }),
                ("pong", _) => Ok(Frame::Heartbeat),
                _ => Ok(Frame::Control),
            };
        }
        match m.channel.as_deref() {
            Some("trade") => {
                parse_v2_trades(&m, frame, out)?;
                Ok(Frame::Trades)
            }
            Some("heartbeat") => Ok(Frame::Heartbeat),
            Some("status") => Ok(Frame::Control),
            _ => Ok(Frame::Other),
        }
    }

    /// A `GET /0/public/Trades?pair=..&since=..` page: `{"error":[],"result":{"<PAIR>":[[price,
    /// volume, time, side, ordertype, misc, trade_id], ...], "last":"<ns cursor>"}}`.
    fn parse_rest_trades(
        &self,
        _market: Market,
        _symbol: Option<&str>,
        body: &[u8],
        out: &mut Vec<VenueTrade>,
    ) -> Result<(), WireError> {
        let page: RestPage<'_> = from_json(body)?;
        let result = match page.result {
            Some(r) if page.error.is_empty() => r,
            _ => {
                return Err(WireError::Exchange {
                    excerpt: excerpt(body),
                });
            }
        };
        let mut parsed = Vec::new();
        for (pair_name, rows) in result.iter().filter(|(k, _)| k.as_ref() != "last") {
            let symbol = checked_venue_symbol(pair_name, "result", body)?;
            let pair = self.pair(Market::Spot, &symbol)?;
            let rows: Vec<Vec<&RawValue>> = from_json(rows.get().as_bytes())?;
            for row in &rows {
                let [price, volume, time, side, _, _, id, ..] = &row[..] else {
                    return Err(WireError::BadValue {
                        field: "result",
                        reason: "a trade row needs 7 elements",
                        excerpt: excerpt(body),
                    });
                };
                let text = |v: &RawValue| from_json::<Cow<'_, str>>(v.get().as_bytes());
                let f = Fields {
                    symbol: symbol.clone(),
                    pair: pair.clone(),
                    trade_id: Some(from_json::<u64>(id.get().as_bytes())?),
                    price: positive_decimal("price", &text(price)?, body)?,
                    qty: positive_decimal("volume", &text(volume)?, body)?,
                    time_us: epoch_seconds_to_us(time.get(), "time", body)?,
                    side: taker_side(&text(side)?, body)?,
                    historical: true,
                };
                parsed.push(trade(f, body)?);
            }
        }
        append_in_id_order(parsed, out);
        Ok(())
    }

    fn keepalive(&self) -> Keepalive {
        // Heartbeats every second while subscribed.
        Keepalive {
            client_ping: None,
            silence_limit: Duration::from_secs(10),
        }
    }

    fn id_kind(&self, _market: Market) -> IdKind {
        // v2, which tradepipe subscribes to; v1 frames (recordings) carry no id.
        IdKind::Consecutive
    }

    fn gap_repair(&self, _market: Market) -> GapRepair {
        GapRepair::ByTime {
            rest: "GET https://api.kraken.com/0/public/Trades?pair={symbol}&since={last_time_ns}",
        }
    }

    fn pair(&self, _market: Market, symbol: &str) -> Result<Pair, WireError> {
        let (base, quote) = if let Some((b, q)) = symbol.split_once('/') {
            (b, q)
        } else if symbol.len() == 8
            && LEGACY_ASSETS.contains(&&symbol[..4])
            && LEGACY_ASSETS.contains(&&symbol[4..])
        {
            (&symbol[1..4], &symbol[5..])
        } else {
            split_concatenated(symbol).ok_or_else(|| unsplittable(symbol))?
        };
        if base.is_empty() || quote.is_empty() {
            return Err(unsplittable(symbol));
        }
        Ok(pair_of(common_asset(base), common_asset(quote)))
    }

    fn max_symbols_per_connection(&self) -> usize {
        100
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(frame: &str) -> Result<(Frame, Vec<VenueTrade>), WireError> {
        let mut out = Vec::new();
        let f = KrakenWire.parse_frame(Market::Spot, frame.as_bytes(), &mut out)?;
        Ok((f, out))
    }

    #[test]
    fn v1_trades_have_no_id_and_exact_microseconds() {
        let (f, t) = parse(r#"[993,[["354.04000000","0.28245396","1618678150.826417","s","m",""],["353.81000000","1.71754604","1618678150.827816","s","m",""]],"trade","XMR/USD"]"#).unwrap();
        assert_eq!(f, Frame::Trades);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].trade_id, None);
        assert_eq!(t[0].time_us, 1_618_678_150_826_417);
        assert_eq!(t[1].time_ms(), 1_618_678_150_827);
        assert_eq!(t[0].price.to_string(), "354.04000000");
        assert_eq!(t[0].taker_side, Side::Sell);
        assert_eq!(&*t[0].symbol, "XMR/USD");
    }

    #[test]
    fn v2_trades_read_json_numbers_exactly() {
        let (_, t) = parse(r#"{"channel":"trade","type":"update","data":[{"symbol":"XBT/USD","side":"buy","price":65114.3,"qty":0.00000001,"ord_type":"market","trade_id":4665907,"timestamp":"2023-09-25T07:49:37.708706Z"},{"symbol":"XBT/USD","side":"sell","price":1e-5,"qty":40.0,"ord_type":"limit","trade_id":4665906,"timestamp":"2023-09-25T07:49:37.708706Z"}]}"#).unwrap();
        assert_eq!(
            t.iter()
                .map(|t| t.numeric_id().unwrap())
                .collect::<Vec<_>>(),
            [4665906, 4665907]
        );
        assert_eq!(t[0].price.to_string(), "0.00001");
        assert_eq!(t[0].qty.to_string(), "40.0");
        assert_eq!(t[1].qty.to_string(), "0.00000001");
        assert_eq!((&*t[1].pair.base, &*t[1].pair.quote), ("BTC", "USD"));
        assert!(!t[0].historical);
        let (_, t) = parse(r#"{"channel":"trade","type":"snapshot","data":[{"symbol":"BTC/USD","side":"buy","price":1,"qty":1,"trade_id":1,"timestamp":"2023-09-25T07:49:37Z"}]}"#).unwrap();
        assert!(t[0].historical);
    }

    #[test]
    fn events_heartbeats_and_other_channels() {
        assert_eq!(
            parse(r#"{"event":"heartbeat"}"#).unwrap().0,
            Frame::Heartbeat
        );
        assert_eq!(
            parse(r#"{"channel":"heartbeat"}"#).unwrap().0,
            Frame::Heartbeat
        );
        assert_eq!(
            parse(r#"{"method":"pong","req_id":1}"#).unwrap().0,
            Frame::Heartbeat
        );
        assert_eq!(
            parse(
                r#"{"connectionID":1,"event":"systemStatus","status":"online","version":"1.8.3"}"#
            )
            .unwrap()
            .0,
            Frame::Control
        );
        assert_eq!(
            parse(r#"{"event":"systemStatus","status":"maintenance"}"#)
                .unwrap()
                .0,
            Frame::Reconnect
        );
        assert!(parse(r#"{"event":"subscriptionStatus","status":"error","errorMessage":"Currency pair not supported"}"#).is_err());
        assert!(parse(r#"{"method":"subscribe","success":false,"error":"bad"}"#).is_err());
        assert_eq!(
            parse(r#"[1665,{"a":["1","1","1"]},"ticker","XBT/USD"]"#)
                .unwrap()
                .0,
            Frame::Other
        );
        assert_eq!(
            parse(r#"[1665,{"as":[]},{"bs":[]},"book-1000","XBT/USD"]"#)
                .unwrap()
                .0,
            Frame::Other
        );
    }

    #[test]
    fn malformed_frames_are_errors() {
        for bad in [
            r#"[993,[["354.04","0.28","1618678150.826417","x","m",""]],"trade","XMR/USD"]"#,
            r#"[993,[["354.04","0.28","1618678150.826417"]],"trade","XMR/USD"]"#,
            r#"[993,[["354.04","0.28","16186781508","s","m",""]],"trade","XMR/USD"]"#,
            r#"[993,[["abc","0.28","1618678150.8","s","m",""]],"trade","XMR/USD"]"#,
            r#"[993,[["1","1","1618678150.8","s","m",""]],"trade","XMRUSD?"]"#,
            r#"[993]"#,
            r#"{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"buy","price":"1","qty":1,"trade_id":1,"timestamp":"2023-09-25T07:49:37Z"}]}"#,
            r#"{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"buy","price":1,"qty":1,"timestamp":"2023-09-25T07:49:37Z"}]}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pairs_in_every_spelling() {
        let p = |s| {
            KrakenWire
                .pair(Market::Spot, s)
                .map(|p| format!("{}/{}", p.base, p.quote))
                .ok()
        };
        assert_eq!(p("XBT/USD").as_deref(), Some("BTC/USD"));
        assert_eq!(p("XDG/EUR").as_deref(), Some("DOGE/EUR"));
        assert_eq!(p("SC/EUR").as_deref(), Some("SC/EUR"));
        assert_eq!(p("XBTUSDT").as_deref(), Some("BTC/USDT"));
        assert_eq!(p("XXBTZUSD").as_deref(), Some("BTC/USD"));
        assert_eq!(p("XETHZEUR").as_deref(), Some("ETH/EUR"));
        assert_eq!(p("/USD"), None);
        assert_eq!(p("NOPE"), None);
    }

    #[test]
    fn rest_page_errors() {
        let mut out = Vec::new();
        assert!(
            KrakenWire
                .parse_rest_trades(
                    Market::Spot,
                    None,
                    br#"{"error":["EQuery:Unknown asset pair"]}"#,
                    &mut out
                )
                .is_err()
        );
        assert!(KrakenWire.parse_rest_trades(Market::Spot, None, br#"{"error":[],"result":{"XBTUSDT":[["1","1",1762795433.9,"b","l",""]],"last":"1"}}"#, &mut out).is_err());
        KrakenWire.parse_rest_trades(Market::Spot, None, br#"{"error":[],"result":{"XBTUSDT":[["105433.60000","0.00027625",1762795433.9717445,"b","l","",10218208]],"last":"1762795433971744500"}}"#, &mut out).unwrap();
        assert_eq!(out[0].time_us, 1_762_795_433_971_744);
        assert_eq!(out[0].numeric_id(), Some(10218208));
        assert_eq!(&*out[0].symbol, "XBTUSDT");
    }
}
