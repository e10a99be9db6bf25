//! Coinbase spot: the Advanced Trade WebSocket (`market_trades` channel, what tradepipe
//! subscribes to) and the legacy Exchange feed (`match` messages, still served at
//! `ws-feed.exchange.coinbase.com` and used by older recordings), plus the Exchange REST trade
//! page that fills gaps by id.
//!
//! Quirks handled (each seen in the recordings of `data/market/multiexchange/coinbase`):
//! - A `market_trades` message lists its trades NEWEST first; they are put in id order.
//! - The first message per product is a snapshot of its last 100 trades (historical), which can
//!   overlap trades passed on before a reconnect: dedup by id drops the overlap.
//! - `side` is the MAKER's side, in both feeds. Documented for the legacy feed; for Advanced
//!   Trade the recording shows it: of its 79 live trades, 49 at the best ask say `SELL` and 26 at
//!   the best bid say `BUY` (the test `advanced_trade_side_is_the_makers` recomputes this). The
//!   taker side is the opposite.
//! - `time` has a varying number of fractional digits (trailing zeros dropped).
//! - Advanced Trade's `trade_id` is a numeric string, the legacy feed's a number; both are
//!   consecutive per product (the products trade on Coinbase Exchange, `product_venue: CBE`).

use super::venue::{
    Frame, GapRepair, IdKind, Keepalive, Market, Pair, Side, TradeId, Venue, VenueTrade, VenueWire,
    append_in_id_order, checked_venue_symbol, pair_of, unsplittable,
};
use super::wire::{WireError, check_notional, excerpt, from_json, positive_decimal, rfc3339_to_us};
use serde::Deserialize;
use std::borrow::Cow;
use std::time::Duration;

pub struct CoinbaseWire;

/// Advanced Trade's public endpoint.
const WS_URL: &str = "wss://advanced-trade-ws.coinbase.com";

/// Every shape of message either feed sends, reduced to what tradepipe reads.
#[derive(Deserialize)]
struct Message<'a> {
    /// Advanced Trade: `market_trades`, `heartbeats`, `subscriptions`, `level2`, ...
    #[serde(borrow, default)]
    channel: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    events: Option<Vec<Event<'a>>>,
    /// Legacy: `match`, `last_match`, `heartbeat`, `subscriptions`, `error`, ...; Advanced Trade
    /// errors also say `"type":"error"`.
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(default)]
    trade_id: Option<u64>,
    #[serde(borrow, default)]
    product_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    price: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    size: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    time: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    side: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    trades: Vec<AdvancedTrade<'a>>,
}

#[derive(Deserialize)]
struct AdvancedTrade<'a> {
    #[serde(borrow)]
    product_id: Cow<'a, str>,
    #[serde(borrow)]
    trade_id: Cow<'a, str>,
    #[serde(borrow)]
    price: Cow<'a, str>,
    #[serde(borrow)]
    size: Cow<'a, str>,
    #[serde(borrow)]
    time: Cow<'a, str>,
    #[serde(borrow)]
    side: Cow<'a, str>,
}

/// The taker's side from Coinbase's `side`, which is the maker's (see the module comment).
fn taker_side(maker: &str, raw: &[u8]) -> Result<Side, WireError> {
    match maker {
        "BUY" | "buy" => Ok(Side::Sell),
        "SELL" | "sell" => Ok(Side::Buy),
        _ => Err(WireError::BadValue {
            field: "side",
            reason: "not buy or sell",
            excerpt: excerpt(raw),
        }),
    }
}

struct Fields<'s> {
    product_id: &'s str,
    trade_id: u64,
    price: &'s str,
    size: &'s str,
    time: &'s str,
    maker_side: &'s str,
    historical: bool,
}

fn trade(f: Fields<'_>, raw: &[u8]) -> Result<VenueTrade, WireError> {
    let symbol = checked_venue_symbol(f.product_id, "product_id", raw)?;
    let pair = CoinbaseWire.pair(Market::Spot, &symbol)?;
    let price = positive_decimal("price", f.price, raw)?;
    let qty = positive_decimal("size", f.size, raw)?;
    check_notional(price, qty, "size", raw)?;
    Ok(VenueTrade {
        venue: Venue::Coinbase,
        market: Market::Spot,
        symbol,
        pair,
        trade_id: Some(TradeId::Number(f.trade_id)),
        price,
        qty,
        time_us: rfc3339_to_us(f.time, "time", raw)?,
        taker_side: taker_side(f.maker_side, raw)?,
        historical: f.historical,
    })
}

fn advanced_trades(
    events: &[Event<'_>],
    raw: &[u8],
    out: &mut Vec<VenueTrade>,
) -> Result<(), WireError> {
    let mut parsed = Vec::new();
    for event in events {
        let historical = match event.kind.as_deref() {
            Some("snapshot") => true,
            Some("update") => false,
            _ => {
                return Err(WireError::BadValue {
                    field: "events.type",
                    reason: "a market_trades event that is neither snapshot nor update",
                    excerpt: excerpt(raw),
                });
            }
        };
        for t in &event.trades {
            let trade_id = t.trade_id.parse::<u64>().map_err(|_| WireError::BadValue {
                field: "trade_id",
                reason: "not a numeric string",
                excerpt: excerpt(raw),
            })?;
            let fields = Fields {
                product_id: &t.product_id,
                trade_id,
                price: &t.price,
                size: &t.size,
                time: &t.time,
                maker_side: &t.side,
                historical,
            };
            parsed.push(trade(fields, raw)?);
        }
    }
    // Newest first on the wire; passed on oldest first, per product in id order.
    append_in_id_order(parsed, out);
    Ok(())
}

fn legacy_match(m: &Message<'_>, raw: &[u8], historical: bool) -> Result<VenueTrade, WireError> {
    let missing = |field| WireError::MissingField {
        field,
        excerpt: excerpt(raw),
    };
    let fields = Fields {
        product_id: m
            .product_id
            .as_deref()
            .ok_or_else(|| missing("product_id"))?,
        trade_id: m.trade_id.ok_or_else(|| missing("trade_id"))?,
        price: m.price.as_deref().ok_or_else(|| missing("price"))?,
        size: m.size.as_deref().ok_or_else(|| missing("size"))?,
        time: m.time.as_deref().ok_or_else(|| missing("time"))?,
        maker_side: m.side.as_deref().ok_or_else(|| missing("side"))?,
        historical,
    };
    trade(fields, raw)
}

/// One row of `GET /products/{product_id}/trades` (Coinbase Exchange): newest first, paged
/// backwards by trade id with `after`, `side` the maker's. The body does not name the product.
#[derive(Deserialize)]
struct RestTrade<'a> {
    trade_id: u64,
    #[serde(borrow)]
    price: Cow<'a, str>,
    #[serde(borrow)]
    size: Cow<'a, str>,
    #[serde(borrow)]
    time: Cow<'a, str>,
    #[serde(borrow)]
    side: Cow<'a, str>,
}

impl VenueWire for CoinbaseWire {
    fn venue(&self) -> Venue {
        Venue::Coinbase
    }

    fn endpoint(&self, market: Market) -> Option<&'static str> {
        (market == Market::Spot).then_some(WS_URL)
    }

    fn endpoint_market(&self, _url: &str) -> Market {
        Market::Spot
    }

    /// `market_trades` for the trades, and `heartbeats`: Coinbase closes a connection that has
    /// received nothing for a while, which quiet products would otherwise cause.
    fn subscribe_messages(&self, _market: Market, symbols: &[&str]) -> Vec<String> {
        let ids = serde_json::to_string(symbols).unwrap_or_else(|_| "[]".into());
        ["market_trades", "heartbeats"]
            .iter()
            .map(|ch| format!(r#"{{"type":"subscribe","product_ids":{ids},"channel":"{ch}"}}"#))
            .collect()
    }

    fn parse_frame(
        &self,
        _market: Market,
        frame: &[u8],
        out: &mut Vec<VenueTrade>,
    ) -> Result<Frame, WireError> {
        let m: Message<'_> = from_json(frame)?;
        if let Some(channel) = m.channel.as_deref() {
            return match channel {
                "market_trades" => {
                    advanced_trades(m.events.as_deref().unwrap_or_default(), frame, out)?;
                    Ok(Frame::Trades)
                }
                "heartbeats" => Ok(Frame::Heartbeat),
                "subscriptions" => Ok(Frame::Control),
                _ => Ok(Frame::Other),
            };
        }
        match m.kind.as_deref() {
            Some("match") => {
                out.push(legacy_match(&m, frame, false)?);
                Ok(Frame::Trades)
            }
            // The product's last trade before the subscription (up to minutes old).
            Some("last_match") => {
                out.push(legacy_match(&m, frame, true)?);
                Ok(Frame::Trades)
            }
            Some("heartbeat") => Ok(Frame::Heartbeat),
            Some("subscriptions") => Ok(Frame::Control),
            Some("error") => Err(WireError::Exchange {
                excerpt: excerpt(frame),
            }),
            _ => Ok(Frame::Other),
        }
    }

    /// A Coinbase Exchange `/products/{product_id}/trades` page; `symbol` names the product.
    fn parse_rest_trades(
        &self,
        _market: Market,
        symbol: Option<&str>,
        body: &[u8],
        out: &mut Vec<VenueTrade>,
    ) -> Result<(), WireError> {
        if body.first() == Some(&b'{') {
            // Errors come as {"message":"NotFound"}.
            return Err(WireError::Exchange {
                excerpt: excerpt(body),
            });
        }
        let product_id = symbol.ok_or(WireError::MissingField {
            field: "product_id (the page does not name it)",
            excerpt: excerpt(body),
        })?;
        let rows: Vec<RestTrade<'_>> = from_json(body)?;
        let mut page = Vec::with_capacity(rows.len());
        for r in &rows {
            let fields = Fields {
                product_id,
                trade_id: r.trade_id,
                price: &r.price,
                size: &r.size,
                time: &r.time,
                maker_side: &r.side,
                historical: true,
            };
            page.push(trade(fields, body)?);
        }
        append_in_id_order(page, out);
        Ok(())
    }

    fn keepalive(&self) -> Keepalive {
        // The heartbeats channel sends one message a second.
        Keepalive {
            client_ping: None,
            silence_limit: Duration::from_secs(10),
        }
    }

    fn id_kind(&self, _market: Market) -> IdKind {
        IdKind::Consecutive
    }

    fn gap_repair(&self, _market: Market) -> GapRepair {
        GapRepair::ById {
            rest: "GET https://api.exchange.coinbase.com/products/{product_id}/trades?after={id}",
        }
    }

    fn pair(&self, _market: Market, symbol: &str) -> Result<Pair, WireError> {
        match symbol.split('-').collect::<Vec<_>>()[..] {
            [base, quote] if !base.is_empty() && !quote.is_empty() => Ok(pair_of(base, quote)),
            _ => Err(unsplittable(symbol)),
        }
    }

    fn max_symbols_per_connection(&self) -> usize {
        // No documented cap; Coinbase advises spreading many products over connections.
        100
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(frame: &str) -> Result<(Frame, Vec<VenueTrade>), WireError> {
        let mut out = Vec::new();
        let f = CoinbaseWire.parse_frame(Market::Spot, frame.as_bytes(), &mut out)?;
        Ok((f, out))
    }

    #[test]
    fn newest_first_trades_come_out_in_id_order_with_the_taker_side() {
        let frame = r#"{"channel":"market_trades","timestamp":"2026-08-09T21:05:48.228568804Z","sequence_num":0,"events":[{"type":"snapshot","trades":[
            {"product_id":"BTC-USD","trade_id":"1068572090","price":"65083.67","size":"0.002186","time":"2026-08-09T21:05:42.514318Z","side":"SELL"},
            {"product_id":"BTC-USD","trade_id":"1068572089","price":"65083.67","size":"0.00064389","time":"2026-08-09T21:05:41.139922Z","side":"SELL"},
            {"product_id":"BTC-USD","trade_id":"1068572088","price":"65083.66","size":"0.00007299","time":"2026-08-09T21:05:38.50436Z","side":"BUY"}]}]}"#;
        let (f, trades) = parse(frame).unwrap();
        assert_eq!(f, Frame::Trades);
        let ids: Vec<_> = trades.iter().map(|t| t.numeric_id().unwrap()).collect();
        assert_eq!(ids, [1068572088, 1068572089, 1068572090]);
        let t = &trades[0];
        assert_eq!(
            t.taker_side,
            Side::Sell,
            "maker BUY at the bid: a taker sold"
        );
        assert_eq!(trades[2].taker_side, Side::Buy);
        assert_eq!(t.time_us, 1_786_309_538_504_360);
        assert_eq!(t.time_ms(), 1_786_309_538_504);
        assert_eq!((&*t.pair.base, &*t.pair.quote), ("BTC", "USD"));
        assert!(t.historical);
        assert_eq!(t.qty.to_string(), "0.00007299");
    }

    #[test]
    fn legacy_match_and_last_match() {
        let (_, t) = parse(r#"{"type":"last_match","trade_id":881613,"maker_order_id":"27fff20b","taker_order_id":"1da6ce16","side":"sell","size":"0.04","price":"14.7775","product_id":"BAND-GBP","sequence":333938798,"time":"2021-04-17T16:43:30.244075Z"}"#).unwrap();
        assert_eq!(t.len(), 1);
        assert!(t[0].historical);
        assert_eq!(t[0].taker_side, Side::Buy, "maker sold: the taker bought");
        assert_eq!(t[0].trade_id, Some(TradeId::Number(881613)));
        let (_, t) = parse(r#"{"type":"match","trade_id":7,"side":"buy","size":"1","price":"2","product_id":"SKL-USD","time":"2021-04-17T16:43:30Z"}"#).unwrap();
        assert!(!t[0].historical);
        assert_eq!(t[0].taker_side, Side::Sell);
    }

    #[test]
    fn other_channels_heartbeats_and_errors() {
        assert_eq!(
            parse(
                r#"{"channel":"heartbeats","events":[{"current_time":"x","heartbeat_counter":3}]}"#
            )
            .unwrap()
            .0,
            Frame::Heartbeat
        );
        assert_eq!(
            parse(r#"{"channel":"l2_data","events":[{"type":"update","updates":[]}]}"#)
                .unwrap()
                .0,
            Frame::Other
        );
        assert_eq!(
            parse(r#"{"channel":"subscriptions","events":[]}"#)
                .unwrap()
                .0,
            Frame::Control
        );
        assert_eq!(
            parse(r#"{"type":"ticker","trade_id":1,"price":"1"}"#)
                .unwrap()
                .0,
            Frame::Other
        );
        assert!(matches!(
            parse(r#"{"type":"error","message":"Failed to subscribe"}"#),
            Err(WireError::Exchange { .. })
        ));
    }

    #[test]
    fn one_bad_trade_rejects_the_whole_frame() {
        for bad in [
            r#"{"channel":"market_trades","events":[{"type":"update","trades":[{"product_id":"BTC-USD","trade_id":"1","price":"1","size":"1","time":"2026-08-09T21:05:42Z","side":"BUY"},{"product_id":"BTC-USD","trade_id":"x2","price":"1","size":"1","time":"2026-08-09T21:05:42Z","side":"BUY"}]}]}"#,
            r#"{"channel":"market_trades","events":[{"type":"update","trades":[{"product_id":"BTC-USD","trade_id":"1","price":"-1","size":"1","time":"2026-08-09T21:05:42Z","side":"BUY"}]}]}"#,
            r#"{"channel":"market_trades","events":[{"type":"update","trades":[{"product_id":"BTC-USD","trade_id":"1","price":"1","size":"1","time":"2026-08-09T21:05:42Z","side":"HOLD"}]}]}"#,
            r#"{"channel":"market_trades","events":[{"type":"update","trades":[{"product_id":"BTCUSD","trade_id":"1","price":"1","size":"1","time":"2026-08-09T21:05:42Z","side":"BUY"}]}]}"#,
            r#"{"channel":"market_trades","events":[{"type":"weird","trades":[]}]}"#,
            r#"{"type":"match","trade_id":7,"side":"buy","price":"2","product_id":"SKL-USD","time":"2021-04-17T16:43:30Z"}"#,
        ] {
            let mut out = Vec::new();
            assert!(
                CoinbaseWire
                    .parse_frame(Market::Spot, bad.as_bytes(), &mut out)
                    .is_err(),
                "{bad}"
            );
            assert!(out.is_empty());
        }
    }

    #[test]
    fn subscribe_asks_for_trades_and_heartbeats() {
        let msgs = CoinbaseWire.subscribe_messages(Market::Spot, &["BTC-USD", "ETH-USD"]);
        assert_eq!(
            msgs,
            [
                r#"{"type":"subscribe","product_ids":["BTC-USD","ETH-USD"],"channel":"market_trades"}"#,
                r#"{"type":"subscribe","product_ids":["BTC-USD","ETH-USD"],"channel":"heartbeats"}"#,
            ]
        );
    }

    #[test]
    fn exchange_rest_page_in_id_order_with_taker_side() {
        let body = br#"[{"time":"2021-04-17T16:43:31.1Z","trade_id":1568268,"price":"0.79","size":"10","side":"buy"},{"time":"2021-04-17T16:43:30.5Z","trade_id":1568267,"price":"0.78","size":"5","side":"sell"}]"#;
        let mut out = Vec::new();
        CoinbaseWire
            .parse_rest_trades(Market::Spot, Some("SKL-USD"), body, &mut out)
            .unwrap();
        assert_eq!(
            out.iter()
                .map(|t| t.numeric_id().unwrap())
                .collect::<Vec<_>>(),
            [1568267, 1568268]
        );
        assert_eq!(out[0].taker_side, Side::Buy);
        assert!(
            CoinbaseWire
                .parse_rest_trades(Market::Spot, None, body, &mut out)
                .is_err()
        );
        assert!(
            CoinbaseWire
                .parse_rest_trades(
                    Market::Spot,
                    Some("SKL-USD"),
                    br#"{"message":"NotFound"}"#,
                    &mut out
                )
                .is_err()
        );
    }
}
