//! One exchange trade, exactly as the exchange reported it.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// An exchange symbol such as `BTCUSDT`, upper case. Shared (`Arc`) because every trade carries one
/// and cloning a `String` per trade would cost more than folding the trade into its candles.
pub type Symbol = Arc<str>;

/// A single spot trade. Binance trade ids are consecutive per symbol, which is what lets the feed
/// detect gaps and the stores deduplicate; times are UTC milliseconds since the epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trade {
    pub symbol: Symbol,
    pub trade_id: u64,
    pub price: Decimal,
    pub qty: Decimal,
    /// Trade time (`T` on the wire), UTC milliseconds.
    pub time_ms: i64,
    pub is_buyer_maker: bool,
}

impl Trade {
    /// price x qty, exact: this is what Binance sums into a kline's quote volume.
    pub fn quote_qty(&self) -> Decimal {
        self.price * self.qty
    }
}
