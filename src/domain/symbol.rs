//! What the platform knows about a tradable pair (the `trading.symbols` row).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A trading pair's reference data, from Binance's `exchangeInfo` when it is reachable, else from
/// configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SymbolInfo {
    /// Upper case, e.g. `BTCUSDT`.
    pub symbol: String,
    pub base_asset: String,
    pub quote_asset: String,
    pub exchange: String,
    /// Decimal places of the price tick (0.01 -> 2).
    pub precision_price: i32,
    /// Decimal places of the quantity step (0.00001 -> 5).
    pub precision_qty: i32,
    pub min_qty: Decimal,
    pub is_active: bool,
}
