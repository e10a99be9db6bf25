//! [`PriceHistory`] on PostgreSQL: closes of the stored 1m candles. PostgreSQL is where candles
//! live, whatever the document store.
//!
//! Only CLOSED candles are used: the close of a closed 1m candle is the last trade price at the
//! candle's end, exactly; an open candle's close can still move. A candle "ends" at
//! `open_time + 1 minute`.
//!
//! Every read here tolerates lag (a closed candle never changes; one the replica does not have
//! yet is read on the next round), so all go through the [`ReadRouter`] to a read replica when
//! one is configured.

use super::{ReadRouter, pg_err};
use crate::store::{PriceHistory, StoreError};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

#[derive(Clone, Debug)]
pub struct PgPriceHistory {
    reads: ReadRouter,
}

impl PgPriceHistory {
    /// On a pool (the primary) or a [`ReadRouter`] with replicas.
    pub fn new(reads: impl Into<ReadRouter>) -> Self {
        PgPriceHistory {
            reads: reads.into(),
        }
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
        let until = at.min(DateTime::from_timestamp(253_402_300_799, 0).unwrap_or(at));
        self.reads
            .read(|pool| async move {
                sqlx::query_as(
                    "SELECT open_time + interval '1 minute', close FROM trading.price_candles
                     WHERE symbol_id = $1 AND interval = '1m' AND is_closed
                       AND open_time <= $2::timestamptz - interval '1 minute'
                     ORDER BY open_time DESC LIMIT 1",
                )
                .bind(symbol)
                .bind(until)
                .fetch_optional(&pool)
                .await
            })
            .await
            .map_err(|e| pg_err(format!("reading the close of {symbol} at {at}"), e))
    }

    async fn minute_closes(
        &self,
        symbol: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Decimal>, StoreError> {
        self.reads
            .read(|pool| async move {
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
                .fetch_all(&pool)
                .await
            })
            .await
            .map_err(|e| pg_err(format!("reading 1m closes of {symbol}"), e))
    }
}
