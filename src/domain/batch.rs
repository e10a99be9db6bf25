//! The unit the market writer persists atomically.

use super::{Candle, Trade};
use serde::{Deserialize, Serialize};

/// Trades in exchange order together with the candle states they produced. Writing the ticks and
/// the candles of a batch in one transaction is what makes a restart exact: the stored candles
/// always fold in precisely the stored ticks, and each candle's `last_trade_id` says where to
/// resume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketBatch {
    pub ticks: Vec<Trade>,
    /// Latest state of every candle the ticks touched (and of candles that closed).
    pub candles: Vec<Candle>,
}

impl MarketBatch {
    pub fn is_empty(&self) -> bool {
        self.ticks.is_empty() && self.candles.is_empty()
    }
}
