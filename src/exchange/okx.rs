//! OKX v5 public trades: the WebSocket `trades` / `trades-all` channels and the REST
//! `history-trades` page that fills gaps by id.
//!
//! Quirks handled (`data/market/multiexchange/okx`):
//! - `tradeId` is a numeric string, consecutive per instrument (spot, futures, swaps, options).
//! - `side` is the taker's; `ts` is epoch ms as a string; `sz` is base for spot and contracts for
//!   futures, swaps and options (the market says which).
//! - One endpoint serves every instrument type; the type is read from the instrument id's shape
//!   (`BTC-USDT` spot, `BTC-USD-220527` future, `UNI-USD-SWAP` swap, `BTC-USD-210924-66000-C`
//!   option).
//! - The first push after subscribing is the instrument's latest trade, from before it; repeated
//!   subscriptions (the recording sends three cumulative subscribe frames) are acknowledged
//!   again but do not repeat trades. Dedup by id covers both.
//! - Since 2023 the `trades` channel may merge the fills of one taker order into one message
//!   with `count`; tradepipe subscribes to `trades-all` (business endpoint), which sends every
//!   trade, so the ids stay consecutive.
//! - Keep-alive is the text `ping`, answered by the text `pong` (not JSON).

use super::venue::{
    Frame, GapRepair, IdKind, Keepalive, Market, Pair, Side, TradeId, Venue, VenueTrade, VenueWire,
    append_in_id_order, checked_venue_symbol, pair_of, unsplittable,
};
use super::wire::{WireError, check_notional, excerpt, from_json, millis_to_us, positive_decimal};
use serde::Deserialize;
use std::borrow::Cow;
use std::time::Duration;

pub struct OkxWire;

/// `trades-all` is served on the business endpoint (the recordings use `trades` on public).
const WS_URL: &str = "wss://ws.okx.com:8443/ws/v5/business";

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    event: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    arg: Option<Arg<'a>>,
    #[serde(borrow, default)]
    data: Option<Vec<WireTrade<'a>>>,
    /// REST: "0" is success.
    #[serde(borrow, default)]
    code: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Arg<'a> {
    #[serde(borrow)]
    channel: Cow<'a, str>,
}

/// A trade as both the WebSocket and REST send it. Other channels' `data` rows have other
/// fields, so every field is optional here and required only on trade channels.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireTrade<'a> {
    #[serde(borrow, default)]
    inst_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    trade_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    px: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    sz: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    side: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    ts: Option<Cow<'a, str>>,
}

/// The market an instrument id names, by its shape.
fn market_of(inst_id: &str) -> Option<Market> {
    let parts: Vec<&str> = inst_id.split('-').collect();
    match parts[..] {
        [_, _] => Some(Market::Spot),
        [_, _, "SWAP"] => Some(Market::Swap),
        [_, _, date] if date.len() == 6 && date.bytes().all(|b| b.is_ascii_digit()) => {
            Some(Market::Future)
        }
        [_, _, _, _, "C" | "P"] => Some(Market::Option),
        _ => None,
    }
}

fn trade(t: &WireTrade<'_>, raw: &[u8]) -> Result<VenueTrade, WireError> {
    let missing = |field| WireError::MissingField {
        field,
        excerpt: excerpt(raw),
    };
    let inst_id = t.inst_id.as_deref().ok_or_else(|| missing("instId"))?;
    let symbol = checked_venue_symbol(inst_id, "instId", raw)?;
    let market = market_of(&symbol).ok_or_else(|| unsplittable(&symbol))?;
    let pair = OkxWire.pair(market, &symbol)?;
    let id_text = t.trade_id.as_deref().ok_or_else(|| missing("tradeId"))?;
    let trade_id = id_text.parse::<u64>().map_err(|_| WireError::BadValue {
        field: "tradeId",
        reason: "not a numeric string",
        excerpt: excerpt(raw),
    })?;
    let price = positive_decimal("px", t.px.as_deref().ok_or_else(|| missing("px"))?, raw)?;
    let qty = positive_decimal("sz", t.sz.as_deref().ok_or_else(|| missing("sz"))?, raw)?;
    check_notional(price, qty, "sz", raw)?;
    let ts = t.ts.as_deref().ok_or_else(|| missing("ts"))?;
    let ms = ts.parse::<i64>().map_err(|_| WireError::BadValue {
        field: "ts",
        reason: "not epoch milliseconds",
        excerpt: excerpt(raw),
    })?;
    let taker_side = match t.side.as_deref() {
        Some("buy") => Side::Buy,
        Some("sell") => Side::Sell,
        _ => {
            return Err(WireError::BadValue {
                field: "side",
                reason: "not buy or sell",
                excerpt: excerpt(raw),
            });
        }
    };
    Ok(VenueTrade {
        venue: Venue::Okx,
        market,
        symbol,
        pair,
        trade_id: Some(TradeId::Number(trade_id)),
        price,
        qty,
        time_us: millis_to_us(ms, "ts", raw)?,
        taker_side,
        historical: false,
    })
}

/// Every row or none; oldest first (REST pages come newest first).
fn trades(rows: &[WireTrade<'_>], raw: &[u8], out: &mut Vec<VenueTrade>) -> Result<(), WireError> {
    let parsed = rows
        .iter()
        .map(|t| trade(t, raw))
        .collect::<Result<Vec<_>, _>>()?;
    append_in_id_order(parsed, out);
    Ok(())
}

impl VenueWire for OkxWire {
    fn venue(&self) -> Venue {
        Venue::Okx
    }

    fn endpoint(&self, _market: Market) -> Option<&'static str> {
        Some(WS_URL)
    }

    fn endpoint_market(&self, _url: &str) -> Market {
        // One endpoint for all; each trade's market comes from its instrument id.
        Market::Spot
    }

    fn subscribe_messages(&self, _market: Market, symbols: &[&str]) -> Vec<String> {
        let args: Vec<String> = symbols
            .iter()
            .map(|s| {
                let id = serde_json::to_string(s).unwrap_or_default();
                format!(r#"{{"channel":"trades-all","instId":{id}}}"#)
            })
            .collect();
        vec![format!(
            r#"{{"op":"subscribe","args":[{}]}}"#,
            args.join(",")
        )]
    }

    fn parse_frame(
        &self,
        _market: Market,
        frame: &[u8],
        out: &mut Vec<VenueTrade>,
    ) -> Result<Frame, WireError> {
        if frame == b"pong" {
            return Ok(Frame::Heartbeat);
        }
        let m: Message<'_> = from_json(frame)?;
        match m.event.as_deref() {
            Some("subscribe" | "unsubscribe" | "channel-conn-count") => return Ok(Frame::Control),
            Some("error") => {
                return Err(WireError::Exchange {
                    excerpt: excerpt(frame),
                });
            }
            // "The connection will soon be closed for a service upgrade" (code 64008).
            Some("notice") => return Ok(Frame::Reconnect),
            Some(_) => return Ok(Frame::Control),
            None => {}
        }
        let channel = m.arg.as_ref().map(|a| a.channel.as_ref());
        if !matches!(channel, Some("trades" | "trades-all")) {
            return Ok(Frame::Other);
        }
        trades(m.data.as_deref().unwrap_or_default(), frame, out)?;
        Ok(Frame::Trades)
    }

    /// A `GET /api/v5/market/history-trades` (or `trades`) page.
    fn parse_rest_trades(
        &self,
        _market: Market,
        _symbol: Option<&str>,
        body: &[u8],
        out: &mut Vec<VenueTrade>,
    ) -> Result<(), WireError> {
        let m: Message<'_> = from_json(body)?;
        if m.code.as_deref() != Some("0") {
            return Err(WireError::Exchange {
                excerpt: excerpt(body),
            });
        }
        trades(m.data.as_deref().unwrap_or_default(), body, out)
    }

    fn keepalive(&self) -> Keepalive {
        // OKX closes a connection after 30 s without traffic; a ping every 25 s keeps a quiet one
        // open and its pong proves the other direction.
        Keepalive {
            client_ping: Some(("ping", Duration::from_secs(25))),
            silence_limit: Duration::from_secs(35),
        }
    }

    fn id_kind(&self, _market: Market) -> IdKind {
        IdKind::Consecutive
    }

    fn gap_repair(&self, _market: Market) -> GapRepair {
        GapRepair::ById {
            rest: "GET https://www.okx.com/api/v5/market/history-trades?instId={symbol}&type=1&before={id}",
        }
    }

    fn pair(&self, _market: Market, symbol: &str) -> Result<Pair, WireError> {
        let mut parts = symbol.split('-');
        match (parts.next(), parts.next()) {
            (Some(base), Some(quote)) if !base.is_empty() && !quote.is_empty() => {
                Ok(pair_of(base, quote))
            }
            _ => Err(unsplittable(symbol)),
        }
    }

    fn max_symbols_per_connection(&self) -> usize {
        // A subscribe request is limited to 64 kB; 100 instruments stay far below.
        100
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(frame: &str) -> Result<(Frame, Vec<VenueTrade>), WireError> {
        let mut out = Vec::new();
        let f = OkxWire.parse_frame(Market::Spot, frame.as_bytes(), &mut out)?;
        Ok((f, out))
    }

    #[test]
    fn spot_future_swap_and_option_trades() {
        let cases = [
            ("BTC-USDT", Market::Spot, "USDT"),
            ("BTC-USD-220527", Market::Future, "USD"),
            ("UNI-USD-SWAP", Market::Swap, "USD"),
            ("BTC-USD-210924-66000-C", Market::Option, "USD"),
        ];
        for (inst, market, quote) in cases {
            let frame = format!(
                r#"{{"arg":{{"channel":"trades","instId":"{inst}"}},"data":[{{"instId":"{inst}","tradeId":"338476307","px":"30236","sz":"0.0002","side":"buy","ts":"1652459224818"}}]}}"#
            );
            let (f, t) = parse(&frame).unwrap();
            assert_eq!(f, Frame::Trades);
            assert_eq!(t[0].market, market, "{inst}");
            assert_eq!(&*t[0].pair.quote, quote);
            assert_eq!(&*t[0].pair.base, inst.split('-').next().unwrap());
            assert_eq!(t[0].time_ms(), 1652459224818);
            assert_eq!(t[0].taker_side, Side::Buy);
            assert_eq!(t[0].trade_id, Some(TradeId::Number(338476307)));
        }
    }

    #[test]
    fn control_frames_and_pong() {
        assert_eq!(parse("pong").unwrap().0, Frame::Heartbeat);
        assert_eq!(
            parse(r#"{"event":"subscribe","arg":{"channel":"trades","instId":"BTC-USDT"}}"#)
                .unwrap()
                .0,
            Frame::Control
        );
        assert_eq!(parse(r#"{"event":"notice","code":"64008","msg":"The connection will soon be closed for a service upgrade."}"#).unwrap().0, Frame::Reconnect);
        assert!(parse(r#"{"event":"error","code":"60012","msg":"Invalid request"}"#).is_err());
        assert_eq!(parse(r#"{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"instType":"SPOT","last":"1"}]}"#).unwrap().0, Frame::Other);
    }

    #[test]
    fn malformed_trades_are_errors() {
        for bad in [
            r#"{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","tradeId":"x","px":"1","sz":"1","side":"buy","ts":"1652459224818"}]}"#,
            r#"{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","tradeId":"1","px":"1","sz":"1","side":"buy","ts":"165245922481"}]}"#,
            r#"{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","tradeId":"1","px":"1","sz":"1","side":"long","ts":"1652459224818"}]}"#,
            r#"{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC","tradeId":"1","px":"1","sz":"1","side":"buy","ts":"1652459224818"}]}"#,
            r#"{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","tradeId":"1","sz":"1","side":"buy","ts":"1652459224818"}]}"#,
            "ping?",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rest_page_oldest_first() {
        let body = br#"{"code":"0","msg":"","data":[{"instId":"BTC-USDT","side":"sell","sz":"0.1","px":"30000","tradeId":"12","ts":"1652459224900"},{"instId":"BTC-USDT","side":"buy","sz":"0.2","px":"30001","tradeId":"11","ts":"1652459224800"}]}"#;
        let mut out = Vec::new();
        OkxWire
            .parse_rest_trades(Market::Spot, None, body, &mut out)
            .unwrap();
        assert_eq!(
            out.iter()
                .map(|t| t.numeric_id().unwrap())
                .collect::<Vec<_>>(),
            [11, 12]
        );
        assert!(
            OkxWire
                .parse_rest_trades(
                    Market::Spot,
                    None,
                    br#"{"code":"51001","msg":"Instrument ID does not exist","data":[]}"#,
                    &mut out
                )
                .is_err()
        );
    }

    #[test]
    fn subscribes_to_every_trade() {
        assert_eq!(
            OkxWire.subscribe_messages(Market::Spot, &["BTC-USDT"]),
            [r#"{"op":"subscribe","args":[{"channel":"trades-all","instId":"BTC-USDT"}]}"#]
        );
    }
}
