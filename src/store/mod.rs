//! Storage behind small traits. The contract (traits, the plain types they exchange, the checks
//! every backend shares) is [`contract`], the one error type is [`StoreError`]; below them one
//! folder per backend, none importing another:
//!
//! - `postgres/`: market ticks and candles, price history, the JSONB document and analysis
//!   store, retention and the tick partitions (created one way, by attach, for writer and
//!   retention alike);
//! - `mongo/`: the document and analysis store and its retention;
//! - `redis/`: the live side (prices, candles, articles, predictions, statistics) and sessions;
//! - `spool`: the on-disk spool the market writer uses while PostgreSQL is away.
//!
//! The writer actor only sees [`MarketStore`], so it can be tested against a fake and so that a
//! database outage is one error ([`StoreError::is_retryable`]) that sends batches to the
//! [`Spool`] instead of losing them.

pub mod contract;
mod error;
pub mod mongo;
pub mod postgres;
pub mod redis;
pub mod spool;
pub mod spool_thread;

pub use contract::{
    AnalysisCounts, AnalysisStore, CandlePartition, DocumentStore, ExportedRow, FullDocumentStore,
    MarketMaintenance, MarketStore, PassLock, PriceHistory, Resolved, ResumeState, RowStore,
    RowTarget, RowVersion, SessionStore, StoreCounts, TickPartition, WriteStats,
};
pub use error::{BackendError, StoreError};
pub use postgres::{PgMarketStore, connect, connect_lazy, migrate};
pub use spool::{Spool, SpoolError, SpoolSegment};
pub use spool_thread::SpoolThread;

/// Opens the configured document store: PostgreSQL on the daemon's pool and read replicas
/// (the default), or
/// MongoDB at `cfg.mongodb_url` (the client connects lazily). Call [`DocumentStore::prepare`]
/// before use: it creates MongoDB's indexes and checks PostgreSQL's migration, and is where an
/// unreachable server first shows up.
pub async fn open_document_store(
    cfg: &crate::config::DocumentsConfig,
    pg: impl Into<postgres::ReadRouter>,
) -> Result<std::sync::Arc<dyn FullDocumentStore>, StoreError> {
    use crate::config::DocumentBackend;
    Ok(match cfg.backend {
        DocumentBackend::Postgres => std::sync::Arc::new(postgres::PgDocumentStore::new(pg)),
        DocumentBackend::Mongodb => std::sync::Arc::new(
            mongo::MongoDocumentStore::connect(cfg.mongodb_url.expose(), &cfg.mongodb_database)
                .await?,
        ),
    })
}
