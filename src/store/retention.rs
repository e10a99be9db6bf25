//! What the data lifecycle needs from the stores, nothing more: rows of a table older than a
//! cutoff (counted, exported as JSON lines, deleted by exact row version or in bounded batches),
//! tick partitions (listed, dropped, created ahead) and session TTLs. The policy logic lives in
//! `crate::lifecycle` and only sees these traits.

use chrono::{DateTime, NaiveDate, Utc};

#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error("database error while {context}: {source}")]
    Database {
        context: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("document store error while {context}: {message}")]
    Documents { context: String, message: String },
    #[error("redis error while {context}: {source}")]
    Redis {
        context: String,
        #[source]
        source: redis::RedisError,
    },
    #[error("archive {path}: {source}")]
    Archive {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("archive manifest {path}: {message}")]
    Manifest { path: String, message: String },
    #[error("{0}")]
    Unsupported(String),
}

impl RetentionError {
    pub(crate) fn db(context: impl Into<String>, source: sqlx::Error) -> Self {
        RetentionError::Database {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        RetentionError::Archive {
            path: path.display().to_string(),
            source,
        }
    }
}

/// A table (PostgreSQL) or collection (MongoDB) a row policy applies to. Everything here is
/// compiled in, never configuration or external input, so it may be spelled into SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowTarget {
    /// `schema.table`; the MongoDB collection is the part after the dot.
    pub table: &'static str,
    /// Candidate time columns, first existing one wins (a table added by another pipeline may
    /// name it either way).
    pub time_columns: &'static [&'static str],
    /// Fallback when the time column is NULL (articles without a published date).
    pub time_fallback: Option<&'static str>,
    /// Extra SQL condition selecting the policy's rows within the table.
    pub filter: Option<&'static str>,
}

impl RowTarget {
    pub fn collection(&self) -> &'static str {
        self.table.rsplit('.').next().unwrap_or(self.table)
    }
}

/// A target as found in the database: `None` from [`RowStore::resolve`] means it does not exist.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub target: RowTarget,
    /// The SQL expression (or MongoDB field) holding each row's time.
    pub time_expr: String,
    /// Primary-key column and its SQL type (PostgreSQL), `_id` on MongoDB.
    pub key_column: String,
    pub key_type: String,
    /// Generated columns, left out of archives (they are derived, and cannot be inserted back).
    pub generated: Vec<String>,
}

/// Identifies one archived row version: its key and PostgreSQL's `xmin`. A row updated after it
/// was archived has a new `xmin` and is therefore not deleted (its new version was not archived).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RowVersion {
    pub key: String,
    pub version: String,
}

/// A row exported for archiving: its identity, its time and its JSON text (one archive line).
#[derive(Debug, Clone)]
pub struct ExportedRow {
    pub id: RowVersion,
    pub time: DateTime<Utc>,
    pub json: String,
}

#[async_trait::async_trait]
pub trait RowStore: Send + Sync + 'static {
    /// Which backend this is, for logs.
    fn backend(&self) -> &'static str;
    /// Why the store expires this target by itself (a TTL index), if it does.
    fn managed_by_ttl(&self, _target: &RowTarget) -> Option<String> {
        None
    }
    async fn resolve(&self, target: &RowTarget) -> Result<Option<Resolved>, RetentionError>;
    async fn count_before(
        &self,
        r: &Resolved,
        before: DateTime<Utc>,
    ) -> Result<u64, RetentionError>;
    /// The UTC days that have rows older than `before`, oldest first (one statement: the
    /// archive loop then reads day by day through the time index).
    async fn days_before(
        &self,
        r: &Resolved,
        before: DateTime<Utc>,
    ) -> Result<Vec<NaiveDate>, RetentionError>;
    /// Rows with time in `[from, to)` ordered by (time, key), at most `limit`, starting after
    /// `after` (keyset pagination: each page is one short statement, no open cursor).
    async fn export(
        &self,
        r: &Resolved,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        after: Option<&ExportedRow>,
        limit: usize,
    ) -> Result<Vec<ExportedRow>, RetentionError>;
    /// Deletes exactly these row versions (one short statement); returns how many went.
    async fn delete_versions(
        &self,
        r: &Resolved,
        rows: &[RowVersion],
    ) -> Result<u64, RetentionError>;
    /// Deletes at most `limit` rows older than `before` (one short statement).
    async fn delete_before(
        &self,
        r: &Resolved,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<u64, RetentionError>;
    /// The planner's row estimate, to decide on ANALYZE.
    async fn estimated_rows(&self, r: &Resolved) -> Result<u64, RetentionError>;
    async fn analyze(&self, r: &Resolved) -> Result<(), RetentionError>;
}

/// A daily tick partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TickPartition {
    pub name: String,
    pub day: NaiveDate,
    /// False for a table left detached by an interrupted pass (still to be dropped).
    pub attached: bool,
    /// A `DETACH ... CONCURRENTLY` was interrupted: it must be finalized before the drop.
    pub detach_pending: bool,
}

/// PostgreSQL-only maintenance of the market tables.
#[async_trait::async_trait]
pub trait MarketMaintenance: Send + Sync + 'static {
    async fn tick_partitions(&self) -> Result<Vec<TickPartition>, RetentionError>;
    async fn partition_rows(&self, p: &TickPartition) -> Result<u64, RetentionError>;
    /// Detaches (without blocking writers) and drops one partition.
    async fn drop_tick_partition(&self, p: &TickPartition) -> Result<(), RetentionError>;
    async fn ensure_tick_partitions(
        &self,
        from: NaiveDate,
        days: u32,
    ) -> Result<(), RetentionError>;
    async fn refresh_symbol_summary(&self) -> Result<(), RetentionError>;
    /// Held for the whole pass so two daemons never run retention at once; false when taken.
    async fn try_lock_pass(&self) -> Result<Option<PassLock>, RetentionError>;
}

/// The cross-instance pass lock; released when dropped (its connection goes back to the pool
/// after an explicit unlock, or is closed).
pub struct PassLock {
    pub(crate) conn: Option<sqlx::pool::PoolConnection<sqlx::Postgres>>,
}

impl PassLock {
    pub async fn release(mut self) {
        if let Some(mut c) = self.conn.take() {
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(super::retention_pg::PASS_LOCK_KEY)
                .execute(&mut *c)
                .await;
        }
    }
}

impl Drop for PassLock {
    fn drop(&mut self) {
        // Not released explicitly (a panic, a cancelled future): close the connection, which
        // releases the session-level advisory lock with it.
        if let Some(c) = self.conn.take() {
            drop(c.detach());
        }
    }
}

/// Sessions expire by Redis TTL: whatever session key lacks one gets it.
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Keys matching the session pattern that have no TTL; with `apply`, each gets `ttl_secs`.
    async fn expire_sessions(&self, ttl_secs: u64, apply: bool) -> Result<u64, RetentionError>;
}
