//! [`PriceHistory`] on PostgreSQL: closes of the stored 1m candles. PostgreSQL is where candles
//! live, whatever the document store.
//!
//! Only CLOSED candles are used: the close of a closed 1m candle is the last trade price at the
//! candle's end, exactly; an open candle's close can still move. A candle "ends" at
//! `open_time + 1 minute`.

use super::pg_err;
use crate::store::{PriceHistory, StoreError};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::PgPool;

#[derive(Clone, Debug)]
pub struct PgPriceHistory {
    pool: PgPool,
}

impl PgPriceHistory {
    pub fn new(pool: PgPool) -> Self {
        PgPriceHistory { pool }
    }
}

#[async_trait::async_trait]
impl PriceHistory for PgPriceHistory {
    async fn latest_close(
        &self,
        symbol: &str,
    ) -> Result<Option<(DateTime<Utc>, Decimal)>, StoreError> {
        self.close_at(symbol, DateTime::<Utc>::MAX_UTC).await
    }

    async fn close_at(
        &self,
        symbol: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<(DateTime<Utc>, Decimal)>, StoreError> {
        sqlx::query_as(
            "SELECT open_time + interval '1 minute', close FROM trading.price_candles
             WHERE symbol_id = $1 AND interval = '1m' AND is_closed
               AND open_time <= $2::timestamptz - interval '1 minute'
             ORDER BY open_time DESC LIMIT 1",
        )
        .bind(symbol)
        .bind(at.min(DateTime::from_timestamp(253_402_300_799, 0).unwrap_or(at)))
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| pg_err(format!("reading the close of {symbol} at {at}"), e))
    }

    async fn minute_closes(
        &self,
        symbol: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Decimal>, StoreError> {
        sqlx::query_scalar(
            "SELECT close FROM trading.price_candles
             WHERE symbol_id = $1 AND interval = '1m' AND is_closed
               AND open_time > $2::timestamptz - interval '1 minute'
               AND open_time <= $3::timestamptz - interval '1 minute'
             ORDER BY open_time",
        )
        .bind(symbol)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| pg_err(format!("reading 1m closes of {symbol}"), e))
    }
}
