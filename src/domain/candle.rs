//! OHLCV candles built from trades, equal field by field to Binance's own klines.
//! (Stub: the aggregation engine is being written; see `CandleBook`.)

use super::{Interval, Symbol, Trade};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// One candle of one symbol and interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candle {
    pub symbol: Symbol,
    pub interval: Interval,
    /// UTC ms, aligned per `Interval::open_time`.
    pub open_time_ms: i64,
    /// open + interval - 1 ms.
    pub close_time_ms: i64,
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub close: Decimal,
    pub volume: Decimal,
    pub quote_volume: Decimal,
    pub trade_count: u64,
    /// First and last trade id folded in; `None` for an interval without trades.
    pub first_trade_id: Option<u64>,
    pub last_trade_id: Option<u64>,
    /// True once the interval has ended (a later trade or the clock passed its close time).
    pub closed: bool,
}

/// All open candles (every interval) of one symbol.
#[derive(Debug, Clone)]
pub struct CandleBook {
    symbol: Symbol,
}

impl CandleBook {
    pub fn new(symbol: Symbol) -> Self {
        CandleBook { symbol }
    }

    pub fn symbol(&self) -> &Symbol {
        &self.symbol
    }

    /// Folds one trade; pushes onto `closed` every candle this trade closed. Returns false (and
    /// changes nothing) for a trade whose id was already folded in.
    pub fn apply(&mut self, _trade: &Trade, _closed: &mut Vec<Candle>) -> bool {
        false
    }
}
