//! PostgreSQL: the market tables (ticks, candles, symbols), the price history the predictor
//! reads, the JSONB document and analysis store, retention, the tick partitions, and the routing
//! of lag-tolerant reads to read replicas (`replicas`). This file
//! holds what they share: the pool, the migrations, and how a sqlx error becomes a
//! [`StoreError`] (with [`Call`], the shell every document call repeats).

mod analysis;
mod candle_partitions;
mod documents;
mod market;
mod partitions;
mod prices;
mod replicas;
mod retention;

pub use documents::PgDocumentStore;
pub use market::PgMarketStore;
pub use partitions::ensure_tick_partitions;
pub use prices::PgPriceHistory;
pub use replicas::{ReadRouter, ReplicaState, ReplicaStatus};
pub use retention::PgRetentionStore;

use crate::redact::redact_url;
use crate::store::StoreError;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

/// The embedded schema (`migrations/`). Embedded so the binary can bring any database up to date
/// without shipping SQL files next to it.
pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Applies the pending migrations. Idempotent: applied migrations are recorded (with checksums) in
/// `_sqlx_migrations` and skipped, and sqlx holds an advisory lock so two starting instances do
/// not race.
pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    MIGRATOR
        .run(pool)
        .await
        .map_err(|source| StoreError::Migrate {
            retryable: matches!(&source, sqlx::migrate::MigrateError::Execute(e) if is_retryable(e)),
            source,
        })
}

/// Opens a pool and makes one connection now, so a wrong URL or password fails at start-up. A
/// database that is down gives a retryable error; see [`connect_lazy`] to start without one.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, StoreError> {
    let options = parse_url(url)?;
    pool_options(max_connections)
        .connect_with(options)
        .await
        .map_err(|e| pg_err(format!("connecting to {}", redact_url(url)), e))
}

/// Like [`connect`] but connects on first use: lets the daemon start (and spool) while
/// PostgreSQL is down. Only the URL is checked here.
pub fn connect_lazy(url: &str, max_connections: u32) -> Result<PgPool, StoreError> {
    Ok(pool_options(max_connections).connect_lazy_with(parse_url(url)?))
}

fn pool_options(max_connections: u32) -> PgPoolOptions {
    // A short acquire timeout: when the database is gone the writer should learn it quickly and
    // spool, not hang for sqlx's default 30 s.
    PgPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(Duration::from_secs(5))
}

fn parse_url(url: &str) -> Result<PgConnectOptions, StoreError> {
    PgConnectOptions::from_str(url)
        .map(|o| o.application_name("tradepipe"))
        .map_err(|e| StoreError::InvalidUrl(format!("{} ({e})", redact_url(url))))
}

/// Connection-level failures and SQLSTATEs that mean "try again": class 08 (connection
/// exception), 53 (insufficient resources, e.g. too many connections), 57P0x (server shutting
/// down or starting), 40001/40P01 (serialization failure, deadlock), 55P03 (lock not available),
/// 25006 (read-only transaction: we reached a replica during a failover).
pub(crate) fn is_retryable(e: &sqlx::Error) -> bool {
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

/// Classifies a sqlx error: connection, pool and server-availability failures are
/// [`StoreError::Unavailable`] (retry later), data and constraint errors (SQLSTATE classes 22
/// and 23) [`StoreError::Rejected`], anything else [`StoreError::Backend`]. sqlx errors from a
/// pool never carry the connection URL, so no password can end up in the message.
pub(crate) fn pg_err(context: impl Into<String>, e: sqlx::Error) -> StoreError {
    let rejected = matches!(&e, sqlx::Error::Database(db)
        if db.code().is_some_and(|c| c.starts_with("22") || c.starts_with("23")));
    if rejected {
        return StoreError::Rejected {
            context: context.into(),
            source: e.into(),
        };
    }
    let retryable = is_retryable(&e);
    StoreError::from_driver(context, e, retryable)
}

/// Runs one statement that returns nothing the caller needs (a ping, a refresh).
async fn execute(pool: &PgPool, sql: &str, context: &str) -> Result<(), StoreError> {
    sqlx::query(sql)
        .execute(pool)
        .await
        .map(drop)
        .map_err(|e| pg_err(context, e))
}

/// Ids are UUIDs in PostgreSQL. Text that is not one cannot name a stored row; checking here
/// turns it into "not found" instead of an SQL cast error.
fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The shell of a call about one stored row: its id checked (not a UUID: not found, without a
/// round trip), one context for every error of the call, and not-found said the same way.
struct Call<'a> {
    what: &'static str,
    id: &'a str,
    context: String,
}

impl<'a> Call<'a> {
    /// A call on the row `id` of kind `what`; `doing` says what the call does, for errors.
    /// Fails with [`StoreError::NotFound`] when `id` cannot name a row.
    fn on(what: &'static str, id: &'a str, doing: &str) -> Result<Self, StoreError> {
        if !is_uuid(id) {
            return Err(StoreError::not_found(what, id));
        }
        Ok(Call {
            what,
            id,
            context: format!("{doing} {what} {id}"),
        })
    }

    /// Like [`Call::on`] for a read, where an id that cannot name a row finds nothing: `None`.
    fn read(what: &'static str, id: &'a str) -> Option<Self> {
        Call::on(what, id, "reading").ok()
    }

    /// Maps a sqlx error of this call.
    fn err(&self) -> impl Fn(sqlx::Error) -> StoreError + '_ {
        |e| pg_err(&self.context, e)
    }

    fn not_found(&self) -> StoreError {
        StoreError::not_found(self.what, self.id)
    }

    /// The row, or not found.
    fn found<T>(&self, row: Option<T>) -> Result<T, StoreError> {
        row.ok_or_else(|| self.not_found())
    }
}
