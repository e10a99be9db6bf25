//! Bybit v5 public trades: the WebSocket `publicTrade.{symbol}` topic on the spot, linear and
//! inverse endpoints, and the REST `recent-trade` page.
//!
//! Quirks handled (`data/market/multiexchange/bybit`):
//! - One endpoint per category, and the same symbol on several (`BTCUSDT` is spot and a linear
//!   perpetual): the market comes from the connection, and a trade's identity includes it.
//! - Trade ids (`i`): a UUID on linear and inverse; a numeric string on spot, increasing but not
//!   consecutive (9 recorded ETHUSDT trades span 45 ids). So no gap shows in the ids on any
//!   category, and REST only returns the most recent trades (1000 linear/inverse, 60 spot):
//!   after a reconnect those are fetched and deduplicated; a longer outage loses trades, and a
//!   trade lost inside a connection goes unnoticed. Said plainly in [`GapRepair::RecentOnly`].
//! - `type` is always `snapshot` (each message holds new trades, oldest first); there is no
//!   backfill on subscribe.
//! - `S` is the taker's side; `T` epoch ms; `p`, `v` strings.
//! - Keep-alive: the client sends `{"op":"ping"}` every 20 s.
//! - The legacy v2 feed (`trade.{symbol}` topics, 2021 recordings) is refused as unsupported
//!   rather than ignored, so a wrong recording cannot pass as one without trades.

use super::venue::{
    Frame, GapRepair, IdKind, Keepalive, Market, Pair, Side, TradeId, Venue, VenueTrade, VenueWire,
    checked_venue_symbol, pair_of, split_concatenated, unsplittable,
};
use super::wire::{WireError, check_notional, excerpt, from_json, millis_to_us, positive_decimal};
use serde::Deserialize;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

pub struct BybitWire;

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    topic: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    op: Option<Cow<'a, str>>,
    #[serde(default)]
    success: Option<bool>,
    #[serde(borrow, default)]
    ret_msg: Option<Cow<'a, str>>,
    /// Trade rows on `publicTrade` topics; other topics' `data` is skipped by the parser.
    #[serde(default)]
    data: Option<&'a serde_json::value::RawValue>,
}

#[derive(Deserialize)]
struct WireTrade<'a> {
    #[serde(rename = "T")]
    time: i64,
    #[serde(borrow, rename = "s")]
    symbol: Cow<'a, str>,
    #[serde(borrow, rename = "S")]
    side: Cow<'a, str>,
    #[serde(borrow, rename = "v")]
    qty: Cow<'a, str>,
    #[serde(borrow, rename = "p")]
    price: Cow<'a, str>,
    #[serde(borrow, rename = "i")]
    id: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RestPage<'a> {
    ret_code: i64,
    #[serde(borrow)]
    result: Option<RestResult<'a>>,
}

#[derive(Deserialize)]
struct RestResult<'a> {
    #[serde(borrow)]
    list: Vec<RestTrade<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RestTrade<'a> {
    #[serde(borrow)]
    exec_id: Cow<'a, str>,
    #[serde(borrow)]
    symbol: Cow<'a, str>,
    #[serde(borrow)]
    price: Cow<'a, str>,
    #[serde(borrow)]
    size: Cow<'a, str>,
    #[serde(borrow)]
    side: Cow<'a, str>,
    #[serde(borrow)]
    time: Cow<'a, str>,
}

struct Fields<'s> {
    symbol: &'s str,
    id: &'s str,
    price: &'s str,
    qty: &'s str,
    side: &'s str,
    time_ms: i64,
}

fn trade(market: Market, f: Fields<'_>, raw: &[u8]) -> Result<VenueTrade, WireError> {
    let symbol = checked_venue_symbol(f.symbol, "s", raw)?;
    let pair = BybitWire.pair(market, &symbol)?;
    let price = positive_decimal("p", f.price, raw)?;
    let qty = positive_decimal("v", f.qty, raw)?;
    check_notional(price, qty, "v", raw)?;
    if f.id.is_empty() || f.id.len() > 64 {
        return Err(WireError::BadValue {
            field: "i",
            reason: "trade id must be 1-64 characters",
            excerpt: excerpt(raw),
        });
    }
    // Spot ids are numbers (kept as such: they order trades); linear/inverse ids are UUIDs.
    let trade_id = match f.id.parse::<u64>() {
        Ok(n) => TradeId::Number(n),
        Err(_) => TradeId::Text(Arc::from(f.id)),
    };
    let taker_side = match f.side {
        "Buy" => Side::Buy,
        "Sell" => Side::Sell,
        _ => {
            return Err(WireError::BadValue {
                field: "S",
                reason: "not Buy or Sell",
                excerpt: excerpt(raw),
            });
        }
    };
    Ok(VenueTrade {
        venue: Venue::Bybit,
        market,
        symbol,
        pair,
        trade_id: Some(trade_id),
        price,
        qty,
        time_us: millis_to_us(f.time_ms, "T", raw)?,
        taker_side,
        historical: false,
    })
}

impl VenueWire for BybitWire {
    fn venue(&self) -> Venue {
        Venue::Bybit
    }

    fn endpoint(&self, market: Market) -> Option<&'static str> {
        match market {
            Market::Spot => Some("wss://stream.bybit.com/v5/public/spot"),
            Market::Linear => Some("wss://stream.bybit.com/v5/public/linear"),
            Market::Inverse => Some("wss://stream.bybit.com/v5/public/inverse"),
            _ => None,
        }
    }

    fn endpoint_market(&self, url: &str) -> Market {
        let path = url.split('?').next().unwrap_or(url).trim_end_matches('/');
        if path.ends_with("/linear") {
            Market::Linear
        } else if path.ends_with("/inverse") {
            Market::Inverse
        } else if path.ends_with("/option") {
            Market::Option
        } else {
            Market::Spot
        }
    }

    /// At most 10 topics per request (Bybit's limit on spot).
    fn subscribe_messages(&self, _market: Market, symbols: &[&str]) -> Vec<String> {
        symbols
            .chunks(10)
            .map(|chunk| {
                let topics: Vec<String> =
                    chunk.iter().map(|s| format!("publicTrade.{s}")).collect();
                let args = serde_json::to_string(&topics).unwrap_or_else(|_| "[]".into());
                format!(r#"{{"op":"subscribe","args":{args}}}"#)
            })
            .collect()
    }

    fn parse_frame(
        &self,
        market: Market,
        frame: &[u8],
        out: &mut Vec<VenueTrade>,
    ) -> Result<Frame, WireError> {
        let m: Message<'_> = from_json(frame)?;
        if let Some(topic) = m.topic.as_deref() {
            if topic.starts_with("publicTrade.") {
                let data = m.data.ok_or(WireError::MissingField {
                    field: "data",
                    excerpt: excerpt(frame),
                })?;
                let rows: Vec<WireTrade<'_>> = from_json(data.get().as_bytes())?;
                let mut parsed = Vec::with_capacity(rows.len());
                for r in &rows {
                    let fields = Fields {
                        symbol: &r.symbol,
                        id: &r.id,
                        price: &r.price,
                        qty: &r.qty,
                        side: &r.side,
                        time_ms: r.time,
                    };
                    parsed.push(trade(market, fields, frame)?);
                }
                out.append(&mut parsed);
                return Ok(Frame::Trades);
            }
            if topic.starts_with("trade.") {
                return Err(WireError::Unsupported {
                    reason: "Bybit's retired v2 feed (trade.{symbol}); tradepipe speaks v5",
                    excerpt: excerpt(frame),
                });
            }
            return Ok(Frame::Other);
        }
        match (m.op.as_deref(), m.success) {
            (_, Some(false)) => Err(WireError::Exchange {
                excerpt: excerpt(frame),
            }),
            // Linear answers a ping with op "ping", ret_msg "pong"; spot with op "pong".
            (Some("pong"), _) | (Some("ping"), _) => Ok(Frame::Heartbeat),
            _ if m.ret_msg.as_deref() == Some("pong") => Ok(Frame::Heartbeat),
            (Some(_), _) => Ok(Frame::Control),
            (None, _) => Ok(Frame::Other),
        }
    }

    /// A `GET /v5/market/recent-trade` page (newest first on the wire).
    fn parse_rest_trades(
        &self,
        market: Market,
        _symbol: Option<&str>,
        body: &[u8],
        out: &mut Vec<VenueTrade>,
    ) -> Result<(), WireError> {
        let page: RestPage<'_> = from_json(body)?;
        let Some(result) = page.result.filter(|_| page.ret_code == 0) else {
            return Err(WireError::Exchange {
                excerpt: excerpt(body),
            });
        };
        let mut parsed = Vec::with_capacity(result.list.len());
        for r in result.list.iter().rev() {
            let time_ms = r.time.parse::<i64>().map_err(|_| WireError::BadValue {
                field: "time",
                reason: "not epoch milliseconds",
                excerpt: excerpt(body),
            })?;
            let fields = Fields {
                symbol: &r.symbol,
                id: &r.exec_id,
                price: &r.price,
                qty: &r.size,
                side: &r.side,
                time_ms,
            };
            let mut t = trade(market, fields, body)?;
            t.historical = true;
            parsed.push(t);
        }
        out.append(&mut parsed);
        Ok(())
    }

    fn keepalive(&self) -> Keepalive {
        Keepalive {
            client_ping: Some((r#"{"op":"ping"}"#, Duration::from_secs(20))),
            silence_limit: Duration::from_secs(30),
        }
    }

    fn id_kind(&self, market: Market) -> IdKind {
        match market {
            Market::Spot => IdKind::Increasing,
            _ => IdKind::Opaque,
        }
    }

    fn gap_repair(&self, market: Market) -> GapRepair {
        GapRepair::RecentOnly {
            rest: "GET https://api.bybit.com/v5/market/recent-trade?category={market}&symbol={symbol}&limit=1000",
            max: if market == Market::Spot { 60 } else { 1000 },
        }
    }

    fn pair(&self, _market: Market, symbol: &str) -> Result<Pair, WireError> {
        // Dated futures carry a suffix (`BTCUSDT-26DEC25`, `BTC-26DEC25` for USDC ones).
        let (head, dated) = match symbol.split_once('-') {
            Some((h, _)) => (h, true),
            None => (symbol, false),
        };
        if let Some(base) = head.strip_suffix("PERP").filter(|b| !b.is_empty()) {
            return Ok(pair_of(base, "USDC")); // USDC perpetuals: BTCPERP
        }
        match split_concatenated(head) {
            Some((base, quote)) => Ok(pair_of(base, quote)),
            None if dated && !head.is_empty() => Ok(pair_of(head, "USDC")),
            None => Err(unsplittable(symbol)),
        }
    }

    fn max_symbols_per_connection(&self) -> usize {
        // Bybit documents no hard cap; its own guidance keeps a connection's topics modest.
        100
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(market: Market, frame: &str) -> Result<(Frame, Vec<VenueTrade>), WireError> {
        let mut out = Vec::new();
        let f = BybitWire.parse_frame(market, frame.as_bytes(), &mut out)?;
        Ok((f, out))
    }

    #[test]
    fn linear_uuid_and_spot_numeric_ids() {
        let linear = r#"{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1786310819681,"data":[{"T":1786310819680,"s":"BTCUSDT","S":"Sell","v":"0.004","p":"65114.20","L":"MinusTick","i":"a9188a0a-82bc-50de-be60-03eedbe3cdd7","BT":false,"RPI":false,"seq":753843954913}]}"#;
        let (_, t) = parse(Market::Linear, linear).unwrap();
        assert_eq!(t[0].market, Market::Linear);
        assert_eq!(
            t[0].trade_id,
            Some(TradeId::Text(Arc::from(
                "a9188a0a-82bc-50de-be60-03eedbe3cdd7"
            )))
        );
        assert_eq!(t[0].numeric_id(), None);
        assert_eq!(t[0].price.to_string(), "65114.20");
        assert_eq!(t[0].taker_side, Side::Sell);
        let spot = r#"{"topic":"publicTrade.BTCUSDT","ts":1786310822606,"type":"snapshot","data":[{"i":"2290000001189048101","T":1786310822605,"p":"65140.5","v":"0.002705","S":"Buy","seq":112488547164,"s":"BTCUSDT","BT":false,"RPI":false}]}"#;
        let (_, t) = parse(Market::Spot, spot).unwrap();
        assert_eq!(t[0].market, Market::Spot);
        assert_eq!(t[0].numeric_id(), Some(2290000001189048101));
        assert_eq!(t[0].time_ms(), 1786310822605);
    }

    #[test]
    fn the_endpoint_says_the_market() {
        assert_eq!(
            BybitWire.endpoint_market("wss://stream.bybit.com/v5/public/linear"),
            Market::Linear
        );
        assert_eq!(
            BybitWire.endpoint_market("wss://stream.bybit.com/v5/public/spot"),
            Market::Spot
        );
        assert_eq!(
            BybitWire.endpoint_market("ws://127.0.0.1:9/v5/public/inverse/"),
            Market::Inverse
        );
        for m in [Market::Spot, Market::Linear, Market::Inverse] {
            assert_eq!(BybitWire.endpoint_market(BybitWire.endpoint(m).unwrap()), m);
        }
    }

    #[test]
    fn pongs_acks_other_topics_and_legacy_v2() {
        assert_eq!(
            parse(
                Market::Linear,
                r#"{"success":true,"ret_msg":"pong","conn_id":"x","op":"ping"}"#
            )
            .unwrap()
            .0,
            Frame::Heartbeat
        );
        assert_eq!(
            parse(
                Market::Spot,
                r#"{"req_id":"1","op":"pong","args":["1675418560633"],"conn_id":"x"}"#
            )
            .unwrap()
            .0,
            Frame::Heartbeat
        );
        assert_eq!(
            parse(
                Market::Spot,
                r#"{"success":true,"ret_msg":"subscribe","conn_id":"x","op":"subscribe"}"#
            )
            .unwrap()
            .0,
            Frame::Control
        );
        assert!(
            parse(
                Market::Spot,
                r#"{"success":false,"ret_msg":"error:handler not found","op":"subscribe"}"#
            )
            .is_err()
        );
        assert_eq!(
            parse(
                Market::Linear,
                r#"{"topic":"kline.1.BTCUSDT","data":[{"start":1}]}"#
            )
            .unwrap()
            .0,
            Frame::Other
        );
        let v2 = r#"{"topic":"trade.BTCUSD","data":[{"trade_time_ms":1618677786000,"symbol":"BTCUSD","side":"Buy","size":1,"price":61000,"trade_id":"x"}]}"#;
        assert!(matches!(
            parse(Market::Linear, v2),
            Err(WireError::Unsupported { .. })
        ));
    }

    #[test]
    fn symbols_split_into_base_and_quote() {
        let p = |s| {
            BybitWire
                .pair(Market::Linear, s)
                .map(|p| format!("{}/{}", p.base, p.quote))
                .ok()
        };
        assert_eq!(p("SOLUSDT").as_deref(), Some("SOL/USDT"));
        assert_eq!(p("DOGEUSDT").as_deref(), Some("DOGE/USDT"));
        assert_eq!(p("BTCPERP").as_deref(), Some("BTC/USDC"));
        assert_eq!(p("BTCUSDT-26DEC25").as_deref(), Some("BTC/USDT"));
        assert_eq!(p("BTC-26DEC25").as_deref(), Some("BTC/USDC"));
        assert_eq!(p("BTCXYZ"), None);
    }

    #[test]
    fn malformed_trades_are_errors() {
        for bad in [
            r#"{"topic":"publicTrade.BTCUSDT","data":[{"T":1786310819680,"s":"BTCUSDT","S":"Hold","v":"0.004","p":"1","i":"a"}]}"#,
            r#"{"topic":"publicTrade.BTCUSDT","data":[{"T":1786310819680,"s":"BTCUSDT","S":"Buy","v":"0","p":"1","i":"a"}]}"#,
            r#"{"topic":"publicTrade.BTCUSDT","data":[{"T":1786310819680,"s":"BTCUSDT","S":"Buy","v":"1","p":"1","i":""}]}"#,
            r#"{"topic":"publicTrade.BTCUSDT","data":[{"T":"1786310819680","s":"BTCUSDT","S":"Buy","v":"1","p":"1","i":"a"}]}"#,
            r#"{"topic":"publicTrade.BTCUSDT"}"#,
        ] {
            assert!(parse(Market::Linear, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rest_recent_trades_oldest_first() {
        let body = br#"{"retCode":0,"retMsg":"OK","result":{"category":"spot","list":[{"execId":"2100000000007764264","symbol":"BTCUSDT","price":"16618.49","size":"0.00012","side":"Buy","time":"1672052955758","isBlockTrade":false},{"execId":"2100000000007764263","symbol":"BTCUSDT","price":"16618.48","size":"0.1","side":"Sell","time":"1672052955700","isBlockTrade":false}]},"time":1672053054358}"#;
        let mut out = Vec::new();
        BybitWire
            .parse_rest_trades(Market::Spot, None, body, &mut out)
            .unwrap();
        assert_eq!(
            out.iter()
                .map(|t| t.numeric_id().unwrap())
                .collect::<Vec<_>>(),
            [2100000000007764263, 2100000000007764264]
        );
        assert!(
            BybitWire
                .parse_rest_trades(
                    Market::Spot,
                    None,
                    br#"{"retCode":10001,"retMsg":"params error","result":{}}"#,
                    &mut out
                )
                .is_err()
        );
    }

    #[test]
    fn subscribe_in_requests_of_ten() {
        let syms: Vec<String> = (0..12).map(|i| format!("S{i}USDT")).collect();
        let refs: Vec<&str> = syms.iter().map(String::as_str).collect();
        let msgs = BybitWire.subscribe_messages(Market::Spot, &refs);
        assert_eq!(msgs.len(), 2);
        assert!(
            msgs[1].ends_with(r#""args":["publicTrade.S10USDT","publicTrade.S11USDT"]}"#),
            "{}",
            msgs[1]
        );
    }
}
