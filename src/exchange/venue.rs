//! The venue abstraction: what the feed, gap handling, the replay peer and `tradepipe trades`
//! need to know about one exchange's public trade stream, behind one trait ([`VenueWire`]),
//! implemented once per venue (`binance.rs`, `coinbase.rs`, `okx.rs`, `bybit.rs`, `kraken.rs`).
//!
//! Everything here is pure (no I/O): a frame goes in, trades come out. The connection, the
//! timers and the REST calls belong to whoever holds the socket, which asks the venue what to
//! send (subscribe, ping), how long silence may last, and what it can do about a gap.
//!
//! # Trade ids across venues
//!
//! The candle pipeline's [`Trade`] carries a `u64` id that must increase per symbol: it is how
//! the books drop replays and how a restart resumes. Venues differ ([`IdKind`]):
//! - Binance, Coinbase, OKX, Kraken WS v2 and Kraken REST: numeric, consecutive per symbol. Used
//!   as is, and a hole in them is a gap the venue can fill ([`GapRepair`]).
//! - Bybit spot: numeric and increasing, but not consecutive (9 trades of one recorded symbol span
//!   45 ids), so a hole is not a gap and cannot be detected from the ids.
//! - Bybit linear (and inverse): a UUID. It identifies a trade (dedup works), but has no order.
//! - Kraken WS v1: no id at all.
//!
//! So [`VenueTrade::trade_id`] is an `Option<TradeId>` (number or text), dedup keys on it when
//! present and on the whole trade otherwise ([`super::dedup`]), and [`VenueTrade::to_trade`]
//! takes the `u64` the candle pipeline will order by: the venue's own for numeric ids, a
//! per-symbol arrival counter kept by the feed for the others (the feed step must persist that
//! counter with the candles, as it persists the last id today).

use super::wire::WireError;
use crate::domain::{Symbol, Trade};
use rust_decimal::Decimal;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// The exchanges tradepipe speaks. The name is the one stored as `trading.symbols.exchange`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Venue {
    Binance,
    Coinbase,
    Okx,
    Bybit,
    Kraken,
}

impl Venue {
    pub const ALL: [Venue; 5] = [
        Venue::Binance,
        Venue::Coinbase,
        Venue::Okx,
        Venue::Bybit,
        Venue::Kraken,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Venue::Binance => "binance",
            Venue::Coinbase => "coinbase",
            Venue::Okx => "okx",
            Venue::Bybit => "bybit",
            Venue::Kraken => "kraken",
        }
    }

    /// The venue's wire format.
    pub fn wire(self) -> &'static dyn VenueWire {
        match self {
            Venue::Binance => &super::binance::BinanceWire,
            Venue::Coinbase => &super::coinbase::CoinbaseWire,
            Venue::Okx => &super::okx::OkxWire,
            Venue::Bybit => &super::bybit::BybitWire,
            Venue::Kraken => &super::kraken::KrakenWire,
        }
    }
}

impl fmt::Display for Venue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown exchange {0:?} (known: binance, coinbase, okx, bybit, kraken)")]
pub struct UnknownVenue(String);

impl FromStr for Venue {
    type Err = UnknownVenue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        Venue::ALL
            .into_iter()
            .find(|v| v.name() == lower)
            // OKX was OKEx until 2022; old recordings and configurations use that name.
            .or((lower == "okex").then_some(Venue::Okx))
            .ok_or_else(|| UnknownVenue(s.chars().take(40).collect()))
    }
}

/// What kind of instrument a symbol is on its venue. The same name can exist twice (Bybit's
/// `BTCUSDT` is both a spot pair and a linear perpetual), so a symbol is only unique together
/// with its market.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Market {
    Spot,
    /// Perpetuals and futures margined and settled in the quote asset (Bybit `linear`).
    Linear,
    /// Margined in the base asset (Bybit `inverse`).
    Inverse,
    /// Dated futures (OKX `FUTURES`).
    Future,
    /// Perpetual swaps (OKX `SWAP`).
    Swap,
    Option,
}

impl Market {
    pub fn name(self) -> &'static str {
        match self {
            Market::Spot => "spot",
            Market::Linear => "linear",
            Market::Inverse => "inverse",
            Market::Future => "future",
            Market::Swap => "swap",
            Market::Option => "option",
        }
    }
}

/// The side of the taker (the order that crossed the book). Venues differ in which side they
/// report; every parser converts to this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }

    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

/// A venue's trade id: a number where the venue numbers its trades, else its text (a UUID).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TradeId {
    Number(u64),
    Text(Arc<str>),
}

impl fmt::Display for TradeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TradeId::Number(n) => write!(f, "{n}"),
            TradeId::Text(s) => f.write_str(s),
        }
    }
}

/// Base and quote asset of a symbol, normalized across venues (`XBT/USD` on Kraken and `BTC-USD`
/// on Coinbase are both BTC/USD).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pair {
    pub base: Symbol,
    pub quote: Symbol,
}

/// One trade as a venue reported it, converted to exact values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VenueTrade {
    pub venue: Venue,
    pub market: Market,
    /// The venue's own spelling (`BTC-USD`, `XBT/USD`, `BTCUSDT`).
    pub symbol: Symbol,
    pub pair: Pair,
    /// `None` where the venue sends none (Kraken WS v1).
    pub trade_id: Option<TradeId>,
    pub price: Decimal,
    /// Base-asset quantity for spot and linear markets; contracts where the venue counts in
    /// contracts (OKX futures and swaps, inverse markets).
    pub qty: Decimal,
    /// Trade time, UTC microseconds (Coinbase and Kraken report µs; the rest ms, scaled).
    pub time_us: i64,
    pub taker_side: Side,
    /// Happened before the subscription: a snapshot's trades (Coinbase) or `last_match`. The feed
    /// may use them to close a gap, and the dedup drops the part it has already passed on.
    pub historical: bool,
}

impl VenueTrade {
    /// Trade time in UTC milliseconds (truncated), the unit of candles.
    pub fn time_ms(&self) -> i64 {
        self.time_us.div_euclid(1000)
    }

    /// The venue's id when it is a number.
    pub fn numeric_id(&self) -> Option<u64> {
        match self.trade_id {
            Some(TradeId::Number(n)) => Some(n),
            _ => None,
        }
    }

    /// The trade as the candle pipeline takes it, ordered by `order_id`: the venue's numeric id
    /// where it has one ([`Self::numeric_id`]), else the feed's per-symbol arrival counter (see
    /// the module comment).
    pub fn to_trade(&self, order_id: u64) -> Trade {
        Trade {
            symbol: self.symbol.clone(),
            trade_id: order_id,
            price: self.price,
            qty: self.qty,
            time_ms: self.time_ms(),
            is_buyer_maker: self.taker_side == Side::Sell,
        }
    }
}

/// What one frame was, besides the trades it carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// A trade message (its trades were appended, possibly none).
    Trades,
    /// Keep-alive traffic: a heartbeat or the answer to our ping.
    Heartbeat,
    /// Subscription acknowledgements, system status.
    Control,
    /// Another channel (book, ticker, candles) or a message tradepipe does not act on.
    Other,
    /// The venue announced it is closing the connection: reconnect now.
    Reconnect,
}

/// How numbered a venue's trades are (see the module comment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// Numeric, consecutive per symbol: a hole is a gap.
    Consecutive,
    /// Numeric and increasing, with holes that are not gaps.
    Increasing,
    /// A unique text (UUID), unordered.
    Opaque,
    /// No id.
    Absent,
}

/// What the venue allows when trades were missed (a hole, a reconnect, a restart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapRepair {
    /// Ids are consecutive, so every hole is seen; REST returns trades by id, so every hole can
    /// be filled exactly (up to the configured backfill bound).
    ById { rest: &'static str },
    /// Ids are consecutive (every hole is seen), but REST pages by time: the feed asks from the
    /// last passed trade's time and drops what it already has by id.
    ByTime { rest: &'static str },
    /// Only the most recent `max` trades can be fetched and the ids do not show a hole: after a
    /// reconnect the feed fetches them and drops what it has; an outage with more than `max`
    /// trades loses the rest, and a trade lost inside a connection goes unnoticed.
    RecentOnly { rest: &'static str, max: u32 },
}

/// Keeping a connection alive and noticing that it died.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// A text message the client must send every so often (else the venue closes the
    /// connection); `None` where the server pings and the WebSocket layer answers.
    pub client_ping: Option<(&'static str, Duration)>,
    /// Longest silence (no frame at all) of a healthy connection: heartbeats or pongs arrive
    /// more often. Longer means the connection is dead; reconnect.
    pub silence_limit: Duration,
}

/// One venue's wire format. Implementations are unit structs (no state): per-connection state
/// (dedup, ordering, the arrival counter) belongs to the caller ([`super::session`]).
pub trait VenueWire: Sync {
    fn venue(&self) -> Venue;

    /// The public WebSocket endpoint for a market, `None` where tradepipe does not support it.
    fn endpoint(&self, market: Market) -> Option<&'static str>;

    /// The market an endpoint URL serves (Bybit has one endpoint per category; OKX one for all,
    /// and its parser reads the market from each instrument id).
    fn endpoint_market(&self, url: &str) -> Market;

    /// The frames to send after connecting, to receive every trade of `symbols` (the venue's own
    /// spelling) on `market`. Split as the venue limits the size of one request.
    fn subscribe_messages(&self, market: Market, symbols: &[&str]) -> Vec<String>;

    /// Decodes one text frame received on a connection to `market`'s endpoint, appending its
    /// trades to `out` in the venue's trade order (oldest first, even where the venue sends
    /// newest first). On error nothing is appended.
    fn parse_frame(
        &self,
        market: Market,
        frame: &[u8],
        out: &mut Vec<VenueTrade>,
    ) -> Result<Frame, WireError>;

    /// Decodes a page of the venue's REST trade history (the gap-repair source), appending its
    /// trades oldest first. `symbol` is the one asked for, for venues whose page does not name
    /// it. Venues whose REST parser is not built yet say so with [`WireError::Unsupported`].
    fn parse_rest_trades(
        &self,
        _market: Market,
        _symbol: Option<&str>,
        body: &[u8],
        _out: &mut Vec<VenueTrade>,
    ) -> Result<(), WireError> {
        Err(WireError::Unsupported {
            reason: "REST trade pages of this venue are not parsed yet",
            excerpt: super::wire::excerpt(body),
        })
    }

    fn keepalive(&self) -> Keepalive;

    /// How trade ids are numbered on `market` (decides how a gap is seen).
    fn id_kind(&self, market: Market) -> IdKind;

    /// What can be done about missed trades on `market`.
    fn gap_repair(&self, market: Market) -> GapRepair;

    /// The venue symbol's base and quote, normalized.
    fn pair(&self, market: Market, symbol: &str) -> Result<Pair, WireError>;

    /// Most symbols one connection may carry.
    fn max_symbols_per_connection(&self) -> usize;
}

/// Quote assets a concatenated symbol (`BTCUSDT`) may end in, longest first so `USDT` wins over
/// `USD`. Venues that separate base and quote (`BTC-USD`, `XBT/USD`) do not need this.
const QUOTES: &[&str] = &[
    "FDUSD", "USDT", "USDC", "USDE", "TUSD", "BUSD", "EURI", "USD", "EUR", "GBP", "JPY", "TRY",
    "BRL", "AUD", "DAI", "BTC", "ETH", "BNB", "XBT", "SOL",
];

/// Splits `BTCUSDT` into BTC/USDT by the known quote assets; `None` when no known quote ends it
/// or nothing would be left for the base.
pub(crate) fn split_concatenated(symbol: &str) -> Option<(&str, &str)> {
    QUOTES.iter().find_map(|q| {
        let base = symbol.strip_suffix(q)?;
        (!base.is_empty()).then_some((base, *q))
    })
}

/// A venue symbol, checked: 1-40 ASCII letters, digits and `-/_.:`. Anything else cannot come
/// from a real venue and must not reach storage keys or Redis channels.
pub(crate) fn checked_venue_symbol(
    s: &str,
    field: &'static str,
    raw: &[u8],
) -> Result<Symbol, WireError> {
    let ok = !s.is_empty()
        && s.len() <= 40
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-/_.:".contains(&b));
    if !ok {
        return Err(WireError::BadValue {
            field,
            reason: "symbol must be 1-40 ASCII letters, digits or -/_.:",
            excerpt: super::wire::excerpt(raw),
        });
    }
    Ok(super::binance::intern_symbol(s))
}

/// A [`Pair`] from two asset names, interned (every trade carries one).
pub(crate) fn pair_of(base: &str, quote: &str) -> Pair {
    Pair {
        base: super::binance::intern_symbol(base),
        quote: super::binance::intern_symbol(quote),
    }
}

/// Appends `parsed` to `out` in the venue's trade order: per symbol, ascending id (for venues
/// whose messages or REST pages list trades newest first). Stable, so id-less trades keep their
/// wire order.
pub(crate) fn append_in_id_order(mut parsed: Vec<VenueTrade>, out: &mut Vec<VenueTrade>) {
    parsed.sort_by(|a, b| (&a.symbol, &a.trade_id).cmp(&(&b.symbol, &b.trade_id)));
    out.append(&mut parsed);
}

/// The error for a symbol whose base and quote cannot be told apart.
pub(crate) fn unsplittable(symbol: &str) -> WireError {
    WireError::BadValue {
        field: "symbol",
        reason: "cannot tell base and quote apart",
        excerpt: symbol.chars().take(40).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn venue_names_round_trip_and_okex_is_okx() {
        for v in Venue::ALL {
            assert_eq!(v.name().parse::<Venue>().unwrap(), v);
            assert_eq!(v.wire().venue(), v);
        }
        assert_eq!("OKEX".parse::<Venue>().unwrap(), Venue::Okx);
        assert!("ftx".parse::<Venue>().is_err());
    }

    #[test]
    fn concatenated_symbols_split_by_the_longest_quote() {
        assert_eq!(split_concatenated("BTCUSDT"), Some(("BTC", "USDT")));
        assert_eq!(split_concatenated("ETHBTC"), Some(("ETH", "BTC")));
        assert_eq!(split_concatenated("BTCUSD"), Some(("BTC", "USD")));
        assert_eq!(split_concatenated("XBTUSDT"), Some(("XBT", "USDT")));
        assert_eq!(split_concatenated("USDT"), None);
        assert_eq!(split_concatenated("BTCXYZ"), None);
    }

    #[test]
    fn to_trade_maps_taker_side_to_buyer_maker() {
        let t = VenueTrade {
            venue: Venue::Bybit,
            market: Market::Linear,
            symbol: Symbol::from("BTCUSDT"),
            pair: pair_of("BTC", "USDT"),
            trade_id: Some(TradeId::Text(Arc::from(
                "a9188a0a-82bc-50de-be60-03eedbe3cdd7",
            ))),
            price: Decimal::new(6511420, 2),
            qty: Decimal::new(4, 3),
            time_us: 1_786_310_819_680_999,
            taker_side: Side::Sell,
            historical: false,
        };
        assert_eq!(t.numeric_id(), None);
        let d = t.to_trade(7);
        assert_eq!(
            (d.trade_id, d.time_ms, d.is_buyer_maker),
            (7, 1_786_310_819_680, true)
        );
        assert_eq!(d.quote_qty(), Decimal::new(2604568, 4));
    }
}
