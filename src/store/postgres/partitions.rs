//! Daily tick partitions, created one way for everyone (the writer for the days a batch spans,
//! the market pipeline and retention ahead of time): without blocking the tick writer or the
//! readers of `trading.price_ticks`.
//!
//! `CREATE TABLE ... PARTITION OF` (what `trading.ensure_tick_partition()` in the migrations does)
//! takes ACCESS EXCLUSIVE on the parent: it queues behind every open reader of the table and
//! stalls every writer behind itself. Instead the table is built standalone, with a CHECK
//! matching the bounds so that ATTACH need not scan it, and attached, which takes only SHARE
//! UPDATE EXCLUSIVE on the parent: reads and inserts go on. One transaction per day, so nobody
//! sees the table before it is attached.

use super::pg_err;
use crate::store::StoreError;
use chrono::NaiveDate;
use sqlx::Row;
use sqlx::postgres::PgPool;

/// Upper bound for one call (ten years of days): each partition is a table, so a slip like
/// `u32::MAX` days must not create millions of them.
pub(crate) const MAX_PARTITION_DAYS: usize = 3_660;

/// How long the DDL may wait for its lock before giving up with a retryable error (55P03),
/// instead of queueing others behind it.
const LOCK_TIMEOUT: &str = "SET LOCAL lock_timeout = '5s'";

/// The partition name of a UTC day.
pub(crate) fn partition_name(day: NaiveDate) -> String {
    format!("price_ticks_{}", day.format("%Y%m%d"))
}

/// Makes sure the partitions of `days` exist, creating the missing ones by attach. Idempotent,
/// and safe when callers race (two daemons, or the writer and retention): whoever loses finds the
/// partition made by the other and is done.
pub async fn ensure_tick_partitions(pool: &PgPool, days: &[NaiveDate]) -> Result<(), StoreError> {
    if days.len() > MAX_PARTITION_DAYS {
        return Err(StoreError::Invalid(format!(
            "refusing to create {} daily tick partitions (at most {MAX_PARTITION_DAYS})",
            days.len()
        )));
    }
    for &day in days {
        if exists(pool, day).await? {
            continue;
        }
        let started = std::time::Instant::now();
        match create_by_attach(pool, day).await {
            Ok(()) => {
                tracing::info!(partition = %partition_name(day), took_ms = started.elapsed().as_millis() as u64, "tick partition created and attached");
            }
            // A racing creator made it first: that is the goal reached (checked, not assumed).
            Err(e) if lost_race(&e) && exists(pool, day).await? => {}
            Err(e) => {
                return Err(pg_err(
                    format!("creating tick partition {}", partition_name(day)),
                    e,
                ));
            }
        }
    }
    Ok(())
}

async fn exists(pool: &PgPool, day: NaiveDate) -> Result<bool, StoreError> {
    let name = partition_name(day);
    let found: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
        .bind(format!("trading.{name}"))
        .fetch_one(pool)
        .await
        .map_err(|e| pg_err(format!("looking for tick partition {name}"), e))?;
    Ok(found.is_some())
}

async fn create_by_attach(pool: &PgPool, day: NaiveDate) -> Result<(), sqlx::Error> {
    // The name is digits only; the bounds carry an explicit +00 so the session TimeZone cannot
    // shift them.
    let table = format!("trading.{}", partition_name(day));
    let (lo, hi) = (
        format!("{day} 00:00:00+00"),
        format!("{} 00:00:00+00", day + chrono::Days::new(1)),
    );
    let statements = [
        LOCK_TIMEOUT.to_string(),
        format!(
            "CREATE TABLE {table} (LIKE trading.price_ticks INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)"
        ),
        format!(
            "ALTER TABLE {table} ADD CONSTRAINT bounds CHECK (\"timestamp\" >= '{lo}' AND \"timestamp\" < '{hi}')"
        ),
        format!(
            "ALTER TABLE trading.price_ticks ATTACH PARTITION {table} FOR VALUES FROM ('{lo}') TO ('{hi}')"
        ),
        format!("ALTER TABLE {table} DROP CONSTRAINT bounds"),
    ];
    let mut tx = pool.begin().await?;
    for sql in &statements {
        sqlx::query(sql).execute(&mut *tx).await?;
    }
    tx.commit().await
}

/// The errors a concurrent creator of the same partition causes: the table exists
/// (duplicate_table; or, when both create at once, the table's row type collides in pg_type:
/// duplicate_object "type ... already exists", or a unique violation in the catalogs) or is
/// already a partition. (42710 was first seen in a clean-clone CI run of the racing test.)
fn lost_race(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db)
        if matches!(db.code().as_deref(), Some("42P07" | "42710" | "23505" | "42809")))
}

/// A table of schema `trading` named like a partition (daily ticks, monthly candles).
pub(crate) struct PartitionTable {
    pub name: String,
    pub attached: bool,
    /// A `DETACH ... CONCURRENTLY` was interrupted.
    pub detach_pending: bool,
}

/// The tables of schema `trading` whose name matches `pattern` (a compiled-in regex), attached
/// or not: an interrupted retention pass leaves detached ones, found by name like the others.
/// Ordered by name.
pub(crate) async fn partition_tables(
    pool: &PgPool,
    pattern: &'static str,
) -> Result<Vec<PartitionTable>, StoreError> {
    let rows = sqlx::query(
        "SELECT c.relname::text, i.inhrelid IS NOT NULL, coalesce(i.inhdetachpending, false)
         FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
         WHERE n.nspname = 'trading' AND c.relkind = 'r' AND c.relname ~ $1
         ORDER BY c.relname",
    )
    .bind(pattern)
    .fetch_all(pool)
    .await
    .map_err(|e| pg_err(format!("listing the partitions matching {pattern}"), e))?;
    Ok(rows
        .iter()
        .map(|row| PartitionTable {
            name: row.get(0),
            attached: row.get(1),
            detach_pending: row.get(2),
        })
        .collect())
}
