//! Binance spot wire format: parsing and rendering of stream messages and REST payloads.
//!
//! Pure functions with no I/O, so the feed, the REST client and the replay peer all share one
//! definition of "what Binance sends" and it is unit-tested against real recorded messages.
//! Prices and quantities go string -> `Decimal` directly (never through `f64`): candles must be
//! exact to the last satoshi.

use super::venue::{
    Frame, GapRepair, IdKind, Keepalive, Market, Pair, Side, TradeId, Venue, VenueTrade, VenueWire,
};
pub use super::wire::{WireError, excerpt};
use super::wire::{check_notional, positive_decimal};
use crate::domain::{Symbol, SymbolInfo, Trade};
use rust_decimal::Decimal;
use serde::Deserialize;
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::str::FromStr;
use std::sync::Arc;

/// Binance allows at most this many streams on one connection.
pub const MAX_STREAMS_PER_CONNECTION: usize = 1024;

/// Scale Binance uses for every price and quantity string on the spot API.
pub(crate) const WIRE_SCALE: u32 = 8;

/// One decoded stream message, reduced to what tradepipe acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// A spot trade from a `<symbol>@trade` stream.
    Trade(Trade),
    /// Binance is about to close the connection (`serverShutdown`); reconnect proactively.
    ServerShutdown,
    /// Anything else that is well-formed: other streams (depth, bookTicker, ...) and replies to
    /// subscription requests such as `{"result":null,"id":1}`.
    Ignored,
}

/// The union of the fields of every shape we accept: the combined envelope (`stream`, `data`), the
/// WebSocket-API event wrapper (`event`), the raw event itself, and replies / errors. Unknown
/// fields (depth levels, bookTicker quotes) are skipped without allocating.
#[derive(Deserialize)]
struct WireMsg<'a> {
    #[serde(borrow, default)]
    stream: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<Box<WireMsg<'a>>>,
    #[serde(borrow, default)]
    event: Option<Box<WireMsg<'a>>>,
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
    #[serde(borrow, default, rename = "e")]
    event_type: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "s")]
    symbol: Option<Cow<'a, str>>,
    #[serde(default, rename = "t")]
    trade_id: Option<u64>,
    #[serde(borrow, default, rename = "p")]
    price: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "q")]
    qty: Option<Cow<'a, str>>,
    #[serde(default, rename = "T")]
    trade_time: Option<i64>,
    #[serde(default, rename = "m")]
    buyer_maker: Option<bool>,
}

/// Decodes one WebSocket text frame from a Binance spot market stream.
///
/// Accepts the combined envelope (`/stream?streams=...`), the raw form (`/ws/<stream>`) and the
/// `serverShutdown` event in any of its wrappings (raw, combined, or `{"event":{...}}`).
pub fn parse_stream_message(bytes: &[u8]) -> Result<StreamEvent, WireError> {
    let msg: WireMsg<'_> = serde_json::from_slice(bytes).map_err(|source| WireError::Json {
        source,
        excerpt: excerpt(bytes),
    })?;
    if msg.error.is_some() {
        return Err(WireError::Exchange {
            excerpt: excerpt(bytes),
        });
    }
    let inner: &WireMsg<'_> = match (&msg.data, &msg.event) {
        (Some(d), _) => d,
        (None, Some(e)) => e,
        (None, None) => &msg,
    };
    match inner.event_type.as_deref() {
        Some("trade") => trade_from_wire(inner, bytes).map(StreamEvent::Trade),
        Some("serverShutdown") => Ok(StreamEvent::ServerShutdown),
        // Ignoring something that arrived on a trade stream could silently lose a trade.
        _ if msg.stream.as_deref().is_some_and(|s| s.ends_with("@trade")) => {
            Err(WireError::BadValue {
                field: "e",
                reason: "a @trade stream message that is not a trade",
                excerpt: excerpt(bytes),
            })
        }
        _ => Ok(StreamEvent::Ignored),
    }
}

fn trade_from_wire(m: &WireMsg<'_>, raw: &[u8]) -> Result<Trade, WireError> {
    let missing = |field| WireError::MissingField {
        field,
        excerpt: excerpt(raw),
    };
    let symbol = m.symbol.as_deref().ok_or_else(|| missing("s"))?;
    let trade_id = m.trade_id.ok_or_else(|| missing("t"))?;
    let price = m.price.as_deref().ok_or_else(|| missing("p"))?;
    let qty = m.qty.as_deref().ok_or_else(|| missing("q"))?;
    let time_ms = m.trade_time.ok_or_else(|| missing("T"))?;
    let is_buyer_maker = m.buyer_maker.ok_or_else(|| missing("m"))?;
    Ok(Trade {
        symbol: checked_symbol(symbol, "s", raw)?,
        trade_id,
        price: positive_decimal("p", price, raw)?,
        qty: positive_decimal("q", qty, raw)?,
        time_ms,
        is_buyer_maker,
    })
    .and_then(|t| checked_notional(t, raw))
}

/// Rejects a trade whose notional (price × qty) could overflow the candles' sums. Found by
/// fuzzing the parser: it accepted a 28-digit price, and a few dozen such trades in one candle
/// overflow its quote volume, which panics.
fn checked_notional(t: Trade, raw: &[u8]) -> Result<Trade, WireError> {
    check_notional(t.price, t.qty, "q", raw).map(|()| t)
}

fn checked_symbol(s: &str, field: &'static str, raw: &[u8]) -> Result<Symbol, WireError> {
    if s.is_empty() || s.len() > 32 || !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(WireError::BadValue {
            field,
            reason: "symbol must be 1-32 ASCII letters or digits",
            excerpt: excerpt(raw),
        });
    }
    Ok(intern_symbol(s))
}

thread_local! {
    /// Every trade carries its symbol; interning means one `Arc` per symbol per thread instead of
    /// one allocation per trade on the hot path.
    static SYMBOLS: RefCell<HashMap<Box<str>, Symbol>> = RefCell::new(HashMap::new());
}

/// Upper-cases `s` and returns the shared `Arc<str>` for it.
pub fn intern_symbol(s: &str) -> Symbol {
    SYMBOLS.with(|cell| {
        let mut map = cell.borrow_mut();
        if let Some(sym) = map.get(s) {
            return sym.clone();
        }
        let upper = s.to_ascii_uppercase();
        if let Some(sym) = map.get(upper.as_str()) {
            return sym.clone();
        }
        if map.len() >= 8192 {
            map.clear(); // bounded: a hostile stream of made-up symbols cannot grow it forever
        }
        let sym: Symbol = Arc::from(upper.as_str());
        map.insert(Box::from(s), sym.clone());
        map.insert(upper.into_boxed_str(), sym.clone());
        sym
    })
}

/// Writes `d` the way Binance does: at least 8 decimals, more only if the value needs them (so no
/// digit is ever lost).
pub fn write_wire_decimal(out: &mut String, d: &Decimal) {
    let _ = write!(out, "{d}");
    // Padded by hand: rust_decimal's `{:.8}` renders into a 32-character buffer and panics when
    // the integer digits plus 8 decimals do not fit (found by fuzzing: a 28-digit price).
    if d.scale() < WIRE_SCALE {
        if d.scale() == 0 {
            out.push('.');
        }
        out.extend(std::iter::repeat_n('0', (WIRE_SCALE - d.scale()) as usize));
    }
}

/// Binance's stream name for a symbol's trades: lower-case symbol + `@trade`.
pub fn trade_stream_name(symbol: &str) -> String {
    let mut s = symbol.to_ascii_lowercase();
    s.push_str("@trade");
    s
}

/// Renders a trade exactly as Binance's `<symbol>@trade` stream sends it, wrapped in the combined
/// envelope when `combined`. `M` (best match, documented as "ignore") is always `true`.
pub fn trade_message_json(trade: &Trade, event_time_ms: i64, combined: bool) -> String {
    let mut out = String::with_capacity(200);
    if combined {
        out.push_str("{\"stream\":\"");
        for c in trade.symbol.chars() {
            out.push(c.to_ascii_lowercase());
        }
        out.push_str("@trade\",\"data\":");
    }
    let _ = write!(
        out,
        "{{\"e\":\"trade\",\"E\":{},\"s\":\"{}\",\"t\":{},\"p\":\"",
        event_time_ms, trade.symbol, trade.trade_id
    );
    write_wire_decimal(&mut out, &trade.price);
    out.push_str("\",\"q\":\"");
    write_wire_decimal(&mut out, &trade.qty);
    let _ = write!(
        out,
        "\",\"T\":{},\"m\":{},\"M\":true}}",
        trade.time_ms, trade.is_buyer_maker
    );
    if combined {
        out.push('}');
    }
    out
}

/// `{ws_base}/stream?streams=a@trade/b@trade`: the combined-stream URL for `streams`.
/// The `@` and `/` stay literal, as Binance documents the URL.
pub fn combined_stream_url(ws_base: &url::Url, streams: &[String]) -> url::Url {
    let mut url = ws_base.clone();
    let path = format!("{}/stream", ws_base.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_query(Some(&format!("streams={}", streams.join("/"))));
    url
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RestTrade<'a> {
    id: u64,
    #[serde(borrow)]
    price: Cow<'a, str>,
    #[serde(borrow)]
    qty: Cow<'a, str>,
    time: i64,
    is_buyer_maker: bool,
}

/// Parses a `GET /api/v3/historicalTrades` (or `/trades`) response. The payload carries no
/// symbol, so the caller says which one it asked for.
pub(crate) fn parse_historical_trades(symbol: &str, body: &[u8]) -> Result<Vec<Trade>, WireError> {
    if body.first() == Some(&b'{') {
        // Binance answers errors with {"code":-1121,"msg":"Invalid symbol."}
        return Err(WireError::Exchange {
            excerpt: excerpt(body),
        });
    }
    let rows: Vec<RestTrade<'_>> =
        serde_json::from_slice(body).map_err(|source| WireError::Json {
            source,
            excerpt: excerpt(body),
        })?;
    let symbol = checked_symbol(symbol, "symbol", body)?;
    rows.into_iter()
        .map(|r| {
            Ok(Trade {
                symbol: symbol.clone(),
                trade_id: r.id,
                price: positive_decimal("price", &r.price, body)?,
                qty: positive_decimal("qty", &r.qty, body)?,
                time_ms: r.time,
                is_buyer_maker: r.is_buyer_maker,
            })
            .and_then(|t| checked_notional(t, body))
        })
        .collect()
}

/// Appends one trade in the `historicalTrades` JSON object layout (quoteQty = price x qty, exact).
pub fn write_historical_trade_json(out: &mut String, t: &Trade) {
    let _ = write!(out, "{{\"id\":{},\"price\":\"", t.trade_id);
    write_wire_decimal(out, &t.price);
    out.push_str("\",\"qty\":\"");
    write_wire_decimal(out, &t.qty);
    out.push_str("\",\"quoteQty\":\"");
    write_wire_decimal(out, &t.quote_qty().normalize());
    let _ = write!(
        out,
        "\",\"time\":{},\"isBuyerMaker\":{},\"isBestMatch\":true}}",
        t.time_ms, t.is_buyer_maker
    );
}

#[derive(Deserialize)]
struct ExchangeInfo {
    symbols: Vec<ExSymbol>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExSymbol {
    symbol: String,
    status: String,
    base_asset: String,
    quote_asset: String,
    #[serde(default)]
    base_asset_precision: Option<i32>,
    #[serde(default)]
    quote_precision: Option<i32>,
    #[serde(default)]
    filters: Vec<ExFilter>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExFilter {
    filter_type: String,
    #[serde(default)]
    tick_size: Option<String>,
    #[serde(default)]
    step_size: Option<String>,
    #[serde(default)]
    min_qty: Option<String>,
}

/// Decimal places of a tick / step size such as `0.01000000` (-> 2). A zero size means "filter
/// disabled" on Binance, which gives no precision.
fn decimals_of(size: &str) -> Option<i32> {
    let d = Decimal::from_str(size).ok()?.normalize();
    if d <= Decimal::ZERO {
        return None;
    }
    i32::try_from(d.scale()).ok()
}

/// Parses a `GET /api/v3/exchangeInfo` response into tradepipe's symbol rows. Precision comes
/// from PRICE_FILTER.tickSize and LOT_SIZE.stepSize (falling back to the asset precisions when a
/// filter is absent or disabled), `min_qty` from LOT_SIZE.minQty.
pub(crate) fn parse_exchange_info(body: &[u8]) -> Result<Vec<SymbolInfo>, WireError> {
    let info: ExchangeInfo = serde_json::from_slice(body).map_err(|source| WireError::Json {
        source,
        excerpt: excerpt(body),
    })?;
    info.symbols
        .into_iter()
        .map(|s| {
            let filter = |kind: &str| s.filters.iter().find(|f| f.filter_type == kind);
            let price_filter = filter("PRICE_FILTER");
            let lot = filter("LOT_SIZE");
            let precision_price = price_filter
                .and_then(|f| f.tick_size.as_deref())
                .and_then(decimals_of)
                .or(s.quote_precision)
                .ok_or(WireError::BadValue {
                    field: "PRICE_FILTER.tickSize",
                    reason: "no usable price precision",
                    excerpt: s.symbol.chars().take(40).collect(),
                })?;
            let precision_qty = lot
                .and_then(|f| f.step_size.as_deref())
                .and_then(decimals_of)
                .or(s.base_asset_precision)
                .ok_or(WireError::BadValue {
                    field: "LOT_SIZE.stepSize",
                    reason: "no usable quantity precision",
                    excerpt: s.symbol.chars().take(40).collect(),
                })?;
            let min_qty = match lot.and_then(|f| f.min_qty.as_deref()) {
                Some(q) => Decimal::from_str(q).map_err(|_| WireError::BadDecimal {
                    field: "LOT_SIZE.minQty",
                    value: q.chars().take(40).collect(),
                    excerpt: s.symbol.chars().take(40).collect(),
                })?,
                None => Decimal::ZERO,
            };
            Ok(SymbolInfo {
                symbol: s.symbol.to_ascii_uppercase(),
                base_asset: s.base_asset,
                quote_asset: s.quote_asset,
                exchange: "binance".to_string(),
                precision_price,
                precision_qty,
                min_qty,
                is_active: s.status == "TRADING",
            })
        })
        .collect()
}

/// A Binance trade in the venue-neutral form: the taker sold when the buyer was the maker.
fn venue_trade(
    t: Trade,
    market: Market,
    historical: bool,
    raw: &[u8],
) -> Result<VenueTrade, WireError> {
    Ok(VenueTrade {
        venue: Venue::Binance,
        market,
        pair: BinanceWire.pair(market, &t.symbol)?,
        trade_id: Some(TradeId::Number(t.trade_id)),
        price: t.price,
        qty: t.qty,
        time_us: super::wire::millis_to_us(t.time_ms, "T", raw)?,
        taker_side: if t.is_buyer_maker {
            Side::Sell
        } else {
            Side::Buy
        },
        historical,
        symbol: t.symbol,
    })
}

/// Binance spot on the venue trait. The daemon's Binance feed keeps its own path
/// (`actors/exchange_feed.rs` with `parse_stream_message` and REST `historicalTrades`), whose
/// guarantees are unchanged; this impl shares that parser, so every venue can be driven the same
/// way (`tradepipe trades`, the replay peer, the feed step that moves Binance onto the trait).
pub struct BinanceWire;

impl VenueWire for BinanceWire {
    fn venue(&self) -> Venue {
        Venue::Binance
    }

    fn endpoint(&self, market: Market) -> Option<&'static str> {
        (market == Market::Spot).then_some("wss://stream.binance.com:9443")
    }

    fn endpoint_market(&self, _url: &str) -> Market {
        Market::Spot
    }

    /// Binance subscribes in the URL (`combined_stream_url`); the equivalent request frame is
    /// `SUBSCRIBE` with the stream names.
    fn subscribe_messages(&self, _market: Market, symbols: &[&str]) -> Vec<String> {
        let streams: Vec<String> = symbols.iter().map(|s| trade_stream_name(s)).collect();
        let params = serde_json::to_string(&streams).unwrap_or_else(|_| "[]".into());
        vec![format!(
            r#"{{"method":"SUBSCRIBE","params":{params},"id":1}}"#
        )]
    }

    fn parse_frame(
        &self,
        market: Market,
        frame: &[u8],
        out: &mut Vec<VenueTrade>,
    ) -> Result<Frame, WireError> {
        match parse_stream_message(frame)? {
            StreamEvent::Trade(t) => {
                out.push(venue_trade(t, market, false, frame)?);
                Ok(Frame::Trades)
            }
            StreamEvent::ServerShutdown => Ok(Frame::Reconnect),
            StreamEvent::Ignored => Ok(Frame::Other),
        }
    }

    fn parse_rest_trades(
        &self,
        market: Market,
        symbol: Option<&str>,
        body: &[u8],
        out: &mut Vec<VenueTrade>,
    ) -> Result<(), WireError> {
        let symbol = symbol.ok_or(WireError::MissingField {
            field: "symbol (the page does not name it)",
            excerpt: excerpt(body),
        })?;
        let page = parse_historical_trades(symbol, body)?
            .into_iter()
            .map(|t| venue_trade(t, market, true, body))
            .collect::<Result<Vec<_>, _>>()?;
        out.extend(page);
        Ok(())
    }

    fn keepalive(&self) -> Keepalive {
        // Binance pings every 20 s and the WebSocket layer answers; quiet symbols send nothing
        // else, so silence is judged by the feed's configured stall timeout, not here.
        Keepalive {
            client_ping: None,
            silence_limit: std::time::Duration::from_secs(60),
        }
    }

    fn id_kind(&self, _market: Market) -> IdKind {
        IdKind::Consecutive
    }

    fn gap_repair(&self, _market: Market) -> GapRepair {
        GapRepair::ById {
            rest: "GET /api/v3/historicalTrades?symbol={symbol}&fromId={id}",
        }
    }

    fn pair(&self, _market: Market, symbol: &str) -> Result<Pair, WireError> {
        super::venue::split_concatenated(symbol)
            .map(|(b, q)| super::venue::pair_of(b, q))
            .ok_or_else(|| super::venue::unsplittable(symbol))
    }

    fn max_symbols_per_connection(&self) -> usize {
        MAX_STREAMS_PER_CONNECTION
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::wire::{MAX_NOTIONAL, MAX_WIRE_VALUE};
    use std::io::{BufRead, BufReader};

    const DATA: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/market/hftbacktest_ws_spot"
    );

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn parses_combined_trade_keeping_scale() {
        let line = br#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161601438,"s":"BTCUSDT","t":3735693016,"p":"61685.99000000","q":"0.00017000","T":1723161601437,"m":true,"M":true}}"#;
        let StreamEvent::Trade(t) = parse_stream_message(line).unwrap() else {
            panic!("not a trade");
        };
        assert_eq!(&*t.symbol, "BTCUSDT");
        assert_eq!(t.trade_id, 3735693016);
        assert_eq!(t.price, dec("61685.99"));
        assert_eq!(t.price.scale(), 8);
        assert_eq!(t.qty.to_string(), "0.00017000");
        assert_eq!(t.time_ms, 1723161601437);
        assert!(t.is_buyer_maker);
        // Round trip: rendering gives back the identical bytes.
        assert_eq!(trade_message_json(&t, 1723161601438, true).as_bytes(), line);
    }

    #[test]
    fn parses_raw_trade_and_lowercase_symbol() {
        let raw = br#"{"e":"trade","E":5,"s":"ethusdt","t":7,"p":"2500.1","q":"1","T":4,"m":false,"M":true}"#;
        match parse_stream_message(raw).unwrap() {
            StreamEvent::Trade(t) => {
                assert_eq!(&*t.symbol, "ETHUSDT");
                assert!(!t.is_buyer_maker);
                // Scale below 8 is padded to Binance's 8 decimals on the way out.
                let json = trade_message_json(&t, 5, false);
                assert!(
                    json.contains(r#""p":"2500.10000000","q":"1.00000000""#),
                    "{json}"
                );
                assert!(json.starts_with(r#"{"e":"trade","E":5,"s":"ETHUSDT","t":7"#));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn server_shutdown_in_every_wrapping() {
        for m in [
            &br#"{"e":"serverShutdown","E":1770123456789}"#[..],
            br#"{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1}}"#,
            br#"{"event":{"e":"serverShutdown","E":1770123456789}}"#,
        ] {
            assert_eq!(
                parse_stream_message(m).unwrap(),
                StreamEvent::ServerShutdown
            );
        }
    }

    #[test]
    fn other_streams_and_replies_are_ignored() {
        for m in [
            &br#"{"result":null,"id":1}"#[..],
            br#"{"stream":"btcusdt@bookTicker","data":{"u":50093421613,"s":"BTCUSDT","b":"61685.99000000","B":"1.25869000","a":"61686.00000000","A":"2.44816000"}}"#,
            br#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[["1.0","0.0"]],"a":[]}}"#,
        ] {
            assert_eq!(parse_stream_message(m).unwrap(), StreamEvent::Ignored);
        }
    }

    #[test]
    fn malformed_inputs_are_errors_not_panics() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "malformed JSON"),
            (b"not json", "malformed JSON"),
            (b"[1,2]", "malformed JSON"),
            (b"\xff\xfe", "malformed JSON"),
            (
                br#"{"e":"trade","s":"BTCUSDT","t":1,"p":"1","q":"1","T":1}"#,
                "\"m\"",
            ),
            (
                br#"{"e":"trade","s":"BTCUSDT","p":"1","q":"1","T":1,"m":true}"#,
                "\"t\"",
            ),
            (
                br#"{"e":"trade","s":"BTCUSDT","t":1,"p":"1.2.3","q":"1","T":1,"m":true}"#,
                "not a decimal",
            ),
            (
                br#"{"e":"trade","s":"BTCUSDT","t":1,"p":1.5,"q":"1","T":1,"m":true}"#,
                "malformed JSON",
            ),
            (
                br#"{"e":"trade","s":"BTCUSDT","t":-1,"p":"1","q":"1","T":1,"m":true}"#,
                "malformed JSON",
            ),
            (
                br#"{"e":"trade","s":"BTCUSDT","t":1,"p":"-1","q":"1","T":1,"m":true}"#,
                "positive",
            ),
            (
                br#"{"e":"trade","s":"BTC USDT","t":1,"p":"1","q":"1","T":1,"m":true}"#,
                "symbol",
            ),
            (
                br#"{"error":{"code":2,"msg":"Invalid request"},"id":1}"#,
                "exchange reported",
            ),
        ];
        for (input, want) in cases {
            let err = parse_stream_message(input).unwrap_err().to_string();
            assert!(
                err.contains(want),
                "{:?}: {err}",
                String::from_utf8_lossy(input)
            );
        }
        // The excerpt is bounded.
        let long = format!("{{\"e\":\"trade\",\"pad\":\"{}\"}}", "x".repeat(10_000));
        assert!(
            parse_stream_message(long.as_bytes())
                .unwrap_err()
                .to_string()
                .len()
                < 400
        );
    }

    /// Every `@trade` line of a real recording parses, ids are consecutive, and rendering the
    /// parsed trade reproduces the recorded bytes exactly.
    #[test]
    fn real_recording_trades_parse_consecutively() {
        let file = std::fs::File::open(format!("{DATA}/btcusdt_20240809.gz")).unwrap();
        let reader = BufReader::new(flate2::read::GzDecoder::new(file));
        let (mut trades, mut ignored, mut prev) = (0, 0, None::<u64>);
        for line in reader.lines().take(20_000) {
            let line = line.unwrap();
            let (_, json) = line.split_once(' ').unwrap();
            match parse_stream_message(json.as_bytes()).unwrap() {
                StreamEvent::Trade(t) => {
                    if let Some(p) = prev {
                        assert_eq!(t.trade_id, p + 1);
                    }
                    prev = Some(t.trade_id);
                    trades += 1;
                    let e: i64 = json
                        .split("\"E\":")
                        .nth(1)
                        .unwrap()
                        .split(',')
                        .next()
                        .unwrap()
                        .parse()
                        .unwrap();
                    assert_eq!(trade_message_json(&t, e, true), json);
                }
                StreamEvent::Ignored => ignored += 1,
                StreamEvent::ServerShutdown => panic!("no shutdown in the recording"),
            }
        }
        assert!(trades > 2_000, "{trades}");
        assert!(ignored > 10_000, "{ignored}");
        assert_eq!(
            prev.map(|p| p >= 3735693016 + trades as u64 - 1),
            Some(true)
        );
    }

    #[test]
    fn the_venue_trait_passes_binance_trades_on_unchanged() {
        use crate::exchange::venue::{Frame, Market, Side, VenueWire};
        let line = br#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161601438,"s":"BTCUSDT","t":3735693016,"p":"61685.99000000","q":"0.00017000","T":1723161601437,"m":true,"M":true}}"#;
        let mut out = Vec::new();
        assert_eq!(
            BinanceWire
                .parse_frame(Market::Spot, line, &mut out)
                .unwrap(),
            Frame::Trades
        );
        let StreamEvent::Trade(direct) = parse_stream_message(line).unwrap() else {
            panic!("not a trade");
        };
        assert_eq!(out[0].to_trade(out[0].numeric_id().unwrap()), direct);
        assert_eq!(out[0].taker_side, Side::Sell);
        assert_eq!((&*out[0].pair.base, &*out[0].pair.quote), ("BTC", "USDT"));
        let shutdown = br#"{"e":"serverShutdown","E":1}"#;
        assert_eq!(
            BinanceWire
                .parse_frame(Market::Spot, shutdown, &mut out)
                .unwrap(),
            Frame::Reconnect
        );
    }

    #[test]
    fn combined_stream_urls() {
        let base = url::Url::parse("wss://stream.binance.com:9443").unwrap();
        let u = combined_stream_url(&base, &["btcusdt@trade".into(), "ethusdt@trade".into()]);
        assert_eq!(
            u.as_str(),
            "wss://stream.binance.com:9443/stream?streams=btcusdt@trade/ethusdt@trade"
        );
        let base = url::Url::parse("ws://127.0.0.1:9443/").unwrap();
        assert_eq!(
            combined_stream_url(&base, &["a@trade".into()]).as_str(),
            "ws://127.0.0.1:9443/stream?streams=a@trade"
        );
    }

    #[test]
    fn implausibly_large_prices_and_notionals_are_malformed() {
        assert_eq!(MAX_WIRE_VALUE, dec("1000000000000000"));
        assert_eq!(MAX_NOTIONAL, dec("1000000000000000000"));
        let msg = |p: &str, q: &str| {
            format!(
                r#"{{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"{p}","q":"{q}","T":1,"m":true,"M":true}}"#
            )
        };
        assert!(parse_stream_message(msg("61837.63", "9000").as_bytes()).is_ok());
        for (p, q) in [
            ("2650111111111111111111111111.01", "0.5"), // would overflow a candle's sums
            ("1000000000000001", "1"),
            ("900000000000000", "900000000000000"), // each allowed, the product not
        ] {
            assert!(
                matches!(
                    parse_stream_message(msg(p, q).as_bytes()),
                    Err(WireError::BadValue { .. })
                ),
                "{p} x {q}"
            );
        }
    }

    #[test]
    fn wire_decimals_pad_to_eight_places_whatever_the_magnitude() {
        let wire = |s: &str| {
            let mut out = String::new();
            write_wire_decimal(&mut out, &dec(s));
            out
        };
        assert_eq!(wire("61837.63"), "61837.63000000");
        assert_eq!(wire("5"), "5.00000000");
        assert_eq!(wire("0.000000001"), "0.000000001");
        assert_eq!(wire("-1.5"), "-1.50000000");
        // Used to panic inside rust_decimal's formatter (`{:.8}` overflows its buffer).
        let huge = dec("2650111111111111111111111111.01"); // rounded to fit 96 bits
        let mut out = String::new();
        write_wire_decimal(&mut out, &huge);
        assert_eq!(out, "2650111111111111111111111111.00000000");
        assert_eq!(dec(&out), huge);
        let max = Decimal::MAX.to_string();
        assert_eq!(wire(&max), format!("{max}.00000000"));
    }

    #[test]
    fn historical_trades_round_trip() {
        let body = br#"[{"id":3735683259,"price":"61837.63000000","qty":"0.02000000","quoteQty":"1236.75260000","time":1723161255342,"isBuyerMaker":true,"isBestMatch":true},
                        {"id":3735683260,"price":"61837.63000000","qty":"0.04800000","quoteQty":"2968.20624000","time":1723161255617,"isBuyerMaker":false,"isBestMatch":true}]"#;
        let trades = parse_historical_trades("btcusdt", body).unwrap();
        assert_eq!(trades.len(), 2);
        assert_eq!(&*trades[1].symbol, "BTCUSDT");
        assert_eq!(trades[1].trade_id, 3735683260);
        assert!(!trades[1].is_buyer_maker);
        let mut out = String::new();
        write_historical_trade_json(&mut out, &trades[0]);
        assert_eq!(
            out,
            r#"{"id":3735683259,"price":"61837.63000000","qty":"0.02000000","quoteQty":"1236.75260000","time":1723161255342,"isBuyerMaker":true,"isBestMatch":true}"#
        );
        assert!(
            parse_historical_trades("BTCUSDT", br#"{"code":-1121,"msg":"Invalid symbol."}"#)
                .is_err()
        );
        assert!(parse_historical_trades("BTCUSDT", br#"[{"id":1}]"#).is_err());
        assert!(
            parse_historical_trades("BTCUSDT", b"[]")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn exchange_info_precision_from_filters() {
        let body = br#"{"timezone":"UTC","serverTime":1723161600000,"rateLimits":[],"exchangeFilters":[],"symbols":[
          {"symbol":"BTCUSDT","status":"TRADING","baseAsset":"BTC","baseAssetPrecision":8,"quoteAsset":"USDT","quotePrecision":8,"quoteAssetPrecision":8,
           "orderTypes":["LIMIT","MARKET"],"icebergAllowed":true,"filters":[
             {"filterType":"PRICE_FILTER","minPrice":"0.01000000","maxPrice":"1000000.00000000","tickSize":"0.01000000"},
             {"filterType":"LOT_SIZE","minQty":"0.00001000","maxQty":"9000.00000000","stepSize":"0.00001000"},
             {"filterType":"NOTIONAL","minNotional":"5.00000000","applyMinToMarket":true}],
           "permissions":[],"permissionSets":[["SPOT"]]},
          {"symbol":"XYZBTC","status":"BREAK","baseAsset":"XYZ","baseAssetPrecision":8,"quoteAsset":"BTC","quotePrecision":8,
           "filters":[{"filterType":"PRICE_FILTER","minPrice":"0","maxPrice":"0","tickSize":"0.00000000"},
                      {"filterType":"LOT_SIZE","minQty":"1.00000000","maxQty":"90000000.00000000","stepSize":"1.00000000"}]}]}"#;
        let info = parse_exchange_info(body).unwrap();
        assert_eq!(info.len(), 2);
        let btc = &info[0];
        assert_eq!(
            (
                btc.symbol.as_str(),
                btc.base_asset.as_str(),
                btc.quote_asset.as_str()
            ),
            ("BTCUSDT", "BTC", "USDT")
        );
        assert_eq!((btc.precision_price, btc.precision_qty), (2, 5));
        assert_eq!(btc.min_qty, dec("0.00001"));
        assert!(btc.is_active);
        assert_eq!(btc.exchange, "binance");
        let xyz = &info[1];
        assert_eq!((xyz.precision_price, xyz.precision_qty), (8, 0));
        assert!(!xyz.is_active);
        assert!(parse_exchange_info(b"{}").is_err());
        assert!(parse_exchange_info(b"<html>").is_err());
    }
}
