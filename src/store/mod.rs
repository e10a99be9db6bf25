//! Storage behind small traits: PostgreSQL, Redis and the local on-disk spool.
//!
//! The writer actor only sees [`MarketStore`], so it can be tested against a fake and so that a
//! database outage is one error type ([`StoreError::is_retryable`]) that sends batches to the
//! [`spool::Spool`] instead of losing them.

pub mod analysis;
pub mod analysis_mongo;
pub mod analysis_pg;
pub mod documents;
pub mod documents_mongo;
pub mod documents_pg;
pub mod postgres;
pub mod prices;
pub mod redis;
pub mod redis_analysis;
pub mod retention;
pub mod retention_mongo;
pub mod retention_pg;
pub mod retention_redis;
pub mod spool;
pub mod spool_thread;

pub use postgres::{PgMarketStore, connect, connect_lazy, migrate};
pub use spool::{Spool, SpoolError, SpoolSegment};
pub use spool_thread::SpoolThread;

use crate::domain::{Candle, MarketBatch, SymbolInfo};

/// Where market data is persisted. Implementations must make `write_batch` atomic and idempotent:
/// the writer retries a failed batch and replays spooled batches, so the same batch may arrive
/// more than once and must never duplicate ticks or move a candle backwards.
#[async_trait::async_trait]
pub trait MarketStore: Send + Sync + 'static {
    /// Persist a batch atomically: ticks (deduplicated on (symbol, trade_id)) and candle upserts in
    /// ONE transaction.
    async fn write_batch(&self, batch: &MarketBatch) -> Result<WriteStats, StoreError>;
    /// Latest stored candle per interval for a symbol (for CandleBook::restore) and the resume
    /// trade id (max last_trade_id).
    async fn resume_state(&self, symbol: &str) -> Result<ResumeState, StoreError>;
    async fn upsert_symbols(&self, symbols: &[SymbolInfo]) -> Result<(), StoreError>;
    /// Make sure the tick partitions for `days` UTC days starting at `from_day` exist.
    async fn ensure_tick_partitions(
        &self,
        from_day: chrono::NaiveDate,
        days: u32,
    ) -> Result<(), StoreError>;
    async fn ping(&self) -> Result<(), StoreError>;
}

/// What one `write_batch` did, for metrics and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Ticks that were new.
    pub ticks_inserted: u64,
    /// Ticks already stored (replay, retry or overlapping batches) and therefore skipped.
    pub ticks_duplicate: u64,
    /// Candle rows inserted or updated. A candle state older than the stored one (smaller
    /// `last_trade_id`) is skipped and not counted.
    pub candles_upserted: u64,
}

/// What a restarting feed needs to continue exactly where the stored data ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResumeState {
    /// The most recent stored candle (by open time) of every interval that has one.
    pub latest_candles: Vec<Candle>,
    /// The highest trade id folded into a stored candle; the feed resumes after it. `None` when
    /// nothing with trades is stored for the symbol.
    pub last_trade_id: Option<u64>,
}

/// Errors of the market store. [`StoreError::is_retryable`] separates "the database is not
/// reachable right now" (keep the batch, spool it, retry later) from errors that retrying cannot
/// fix (bad data, unknown symbol, schema mismatch). No variant ever contains the database
/// password: URLs are redacted before they are put into an error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Connection refused or lost, pool exhausted, server shutting down, too many connections,
    /// serialization failure or deadlock: the same operation may succeed later.
    #[error("database unavailable while {context}: {source}")]
    Unavailable {
        context: String,
        #[source]
        source: sqlx::Error,
    },
    /// The database answered with an error that a retry will not fix.
    #[error("database error while {context}: {source}")]
    Database {
        context: String,
        #[source]
        source: sqlx::Error,
    },
    /// Market data for symbols missing from `trading.symbols`; upsert them first.
    #[error("unknown symbol(s) {symbols:?}: not in trading.symbols (upsert_symbols first)")]
    UnknownSymbols { symbols: Vec<String> },
    /// Data that cannot be stored exactly (too many decimal places, id or time out of range).
    #[error("invalid market data: {0}")]
    InvalidData(String),
    /// The database URL could not be parsed (the message never contains the URL itself).
    #[error("invalid database url: {0}")]
    InvalidUrl(String),
    #[error("migrating the database schema failed: {source}")]
    Migrate {
        #[source]
        source: sqlx::migrate::MigrateError,
    },
}

impl StoreError {
    /// True when the failure is about reaching the database, not about the request: the caller
    /// should keep the data (spool it) and try again later.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Unavailable { .. } => true,
            StoreError::Migrate {
                source: sqlx::migrate::MigrateError::Execute(e),
            } => is_retryable_sqlx(e),
            _ => false,
        }
    }

    /// Classifies a sqlx error as [`StoreError::Unavailable`] or [`StoreError::Database`].
    pub(crate) fn from_sqlx(context: impl Into<String>, source: sqlx::Error) -> Self {
        let context = context.into();
        if is_retryable_sqlx(&source) {
            StoreError::Unavailable { context, source }
        } else {
            StoreError::Database { context, source }
        }
    }
}

/// Connection-level failures and SQLSTATEs that mean "try again": class 08 (connection
/// exception), 53 (insufficient resources, e.g. too many connections), 57P0x (server shutting
/// down or starting), 40001/40P01 (serialization failure, deadlock), 55P03 (lock not available),
/// 25006 (read-only transaction: we reached a replica during a failover).
pub(crate) fn is_retryable_sqlx(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57P")
                || matches!(&*code, "40001" | "40P01" | "55P03" | "25006")
        }),
        _ => false,
    }
}
