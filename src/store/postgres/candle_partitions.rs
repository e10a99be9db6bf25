//! Monthly candle partitions (`trading.price_candles_YYYYMM`, migration 0007): created ahead by
//! retention and on demand by the market writer for every month a batch writes into, listed,
//! detached and dropped by retention.
//!
//! Creation is `trading.ensure_candle_partition()`, one implementation for the daemon and for
//! operators: a standalone table with a CHECK on its bounds, the month's rows moved out of the
//! DEFAULT partition, then ATTACH, which takes SHARE UPDATE EXCLUSIVE on the parent (inserts and
//! reads go on) and ACCESS EXCLUSIVE on the default partition, which only readers that cannot
//! prune it wait for. Each call runs in its own transaction under a lock_timeout, so it never
//! queues others behind it for longer than that.

use super::pg_err;
use crate::store::{CandlePartition, StoreError};
use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use sqlx::postgres::PgPool;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Upper bound for one call (ten years of months): each partition is a table.
pub(crate) const MAX_PARTITION_MONTHS: u32 = 120;

/// How long creating a month may wait for its locks when retention creates months ahead.
const AHEAD_LOCK_TIMEOUT_MS: u64 = 5_000;

/// The writer waits less: a month it could not create costs nothing but a later move (its
/// candles go to the DEFAULT partition meanwhile), while its batch waits on every millisecond.
const WRITER_LOCK_TIMEOUT_MS: u64 = 500;

/// After a failed creation the writer tries that month again only after this long, instead of
/// waiting out the lock timeout on every batch.
const WRITER_RETRY_AFTER: Duration = Duration::from_secs(60);

/// How long a plain DETACH may wait for ACCESS EXCLUSIVE on `trading.price_candles`. Short: while
/// it waits, the writer's next upsert queues behind it. A pass that gives up retries next time.
const DETACH_LOCK_TIMEOUT: &str = "SET LOCAL lock_timeout = '1s'";

/// The first day of the UTC month `t` falls in.
pub(crate) fn month_of(t: DateTime<Utc>) -> NaiveDate {
    first_of_month(t.date_naive())
}

fn first_of_month(d: NaiveDate) -> NaiveDate {
    d.with_day(1).unwrap_or(d)
}

/// The partition name of a month.
pub(crate) fn partition_name(month: NaiveDate) -> String {
    format!("price_candles_{}", month.format("%Y%m"))
}

/// The months `from`, `from` + 1, ... (`count` of them), as their first days.
pub(crate) fn months_from(from: NaiveDate, count: u32) -> Vec<NaiveDate> {
    let first = first_of_month(from);
    (0..count)
        .filter_map(|i| first.checked_add_months(Months::new(i)))
        .collect()
}

/// Makes sure the partitions of `months` exist; returns how many it created. Idempotent, and
/// safe when callers race (two daemons, the writer and retention).
pub(crate) async fn ensure(
    pool: &PgPool,
    months: &[NaiveDate],
    lock_timeout_ms: u64,
) -> Result<u32, StoreError> {
    let mut created = 0;
    for &month in months {
        let month = first_of_month(month);
        if exists(pool, month).await? {
            continue;
        }
        let started = Instant::now();
        match create(pool, month, lock_timeout_ms).await {
            Ok(true) => {
                created += 1;
                tracing::info!(partition = %partition_name(month), took_ms = started.elapsed().as_millis() as u64, "candle partition created and attached");
            }
            Ok(false) => {}
            // A racing creator made it first: that is the goal reached (checked, not assumed).
            Err(e) if lost_race(&e) && exists(pool, month).await? => {}
            Err(e) => {
                return Err(pg_err(
                    format!("creating candle partition {}", partition_name(month)),
                    e,
                ));
            }
        }
    }
    Ok(created)
}

/// Creates `count` months from the one `from` falls in (retention: ahead of time).
pub(crate) async fn ensure_ahead(
    pool: &PgPool,
    from: NaiveDate,
    count: u32,
) -> Result<u32, StoreError> {
    if count > MAX_PARTITION_MONTHS {
        return Err(StoreError::Invalid(format!(
            "refusing to create {count} monthly candle partitions (at most {MAX_PARTITION_MONTHS})"
        )));
    }
    ensure(pool, &months_from(from, count), AHEAD_LOCK_TIMEOUT_MS).await
}

async fn exists(pool: &PgPool, month: NaiveDate) -> Result<bool, StoreError> {
    let name = partition_name(month);
    let found: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
        .bind(format!("trading.{name}"))
        .fetch_one(pool)
        .await
        .map_err(|e| pg_err(format!("looking for candle partition {name}"), e))?;
    Ok(found.is_some())
}

async fn create(
    pool: &PgPool,
    month: NaiveDate,
    lock_timeout_ms: u64,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // SET LOCAL takes no bind parameters; the value is a number we made.
    sqlx::query(&format!("SET LOCAL lock_timeout = {lock_timeout_ms}"))
        .execute(&mut *tx)
        .await?;
    let created: bool = sqlx::query_scalar("SELECT trading.ensure_candle_partition($1)")
        .bind(month)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(created)
}

/// What a concurrent creator of the same month causes (see `partitions::lost_race`).
fn lost_race(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db)
        if matches!(db.code().as_deref(), Some("42P07" | "42710" | "23505" | "42809")))
}

/// Every month partition, attached or left detached by an interrupted pass (found by name),
/// oldest first. The DEFAULT partition is not one.
pub(crate) async fn list(pool: &PgPool) -> Result<Vec<CandlePartition>, StoreError> {
    let rows = super::partitions::partition_tables(pool, "^price_candles_[0-9]{6}$").await?;
    let mut out = Vec::new();
    for row in rows {
        let digits = &row.name["price_candles_".len()..];
        let Ok(month) = NaiveDate::parse_from_str(&format!("{digits}01"), "%Y%m%d") else {
            tracing::warn!(partition = %row.name, "candle partition with an unexpected name; left alone");
            continue;
        };
        out.push(CandlePartition {
            name: row.name,
            month,
            attached: row.attached,
        });
    }
    Ok(out)
}

/// Detaches one month. Not CONCURRENTLY: PostgreSQL refuses that while a DEFAULT partition
/// exists. A plain DETACH takes ACCESS EXCLUSIVE on `trading.price_candles` for a catalog change
/// (milliseconds once granted); the short lock_timeout bounds how long the writer can queue
/// behind it while it waits. After it the month's rows are in an ordinary table nobody writes to
/// (the daemon writes through the parent: a candle for that month now goes to the default).
pub(crate) async fn detach(pool: &PgPool, p: &CandlePartition) -> Result<(), StoreError> {
    let ctx = || format!("detaching candle partition {}", p.name);
    let started = Instant::now();
    let mut tx = pool.begin().await.map_err(|e| pg_err(ctx(), e))?;
    // The name matched ^price_candles_[0-9]{6}$ (list): no quoting needed.
    for sql in [
        DETACH_LOCK_TIMEOUT.to_string(),
        format!(
            "ALTER TABLE trading.price_candles DETACH PARTITION trading.{}",
            p.name
        ),
    ] {
        sqlx::query(&sql)
            .execute(&mut *tx)
            .await
            .map_err(|e| pg_err(ctx(), e))?;
    }
    tx.commit().await.map_err(|e| pg_err(ctx(), e))?;
    tracing::info!(partition = %p.name, took_ms = started.elapsed().as_millis() as u64, "candle partition detached");
    Ok(())
}

/// Drops a detached month if it holds exactly `expected` rows (those the caller archived or
/// counted), in one transaction that locks the table first, so the count is the content
/// dropped. Refuses an attached partition.
pub(crate) async fn drop_detached(
    pool: &PgPool,
    p: &CandlePartition,
    expected: u64,
) -> Result<(), StoreError> {
    let ctx = || format!("dropping candle partition {}", p.name);
    let table = format!("trading.{}", p.name);
    let started = Instant::now();
    let mut tx = pool.begin().await.map_err(|e| pg_err(ctx(), e))?;
    let attached: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = $1::regclass)",
    )
    .bind(&table)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| pg_err(ctx(), e))?;
    if attached {
        return Err(StoreError::Invalid(format!(
            "{table} is attached; detach it before dropping"
        )));
    }
    sqlx::query(&format!("LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
        .execute(&mut *tx)
        .await
        .map_err(|e| pg_err(ctx(), e))?;
    let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| pg_err(ctx(), e))?;
    if rows.max(0) as u64 != expected {
        return Err(StoreError::Invalid(format!(
            "{table} holds {rows} rows, {expected} were archived or counted; kept for the next pass"
        )));
    }
    sqlx::query(&format!("DROP TABLE {table}"))
        .execute(&mut *tx)
        .await
        .map_err(|e| pg_err(ctx(), e))?;
    tx.commit().await.map_err(|e| pg_err(ctx(), e))?;
    tracing::info!(partition = %p.name, rows, took_ms = started.elapsed().as_millis() as u64, "candle partition dropped");
    Ok(())
}

/// The market writer's view of the months: which exist (so the hot path asks the catalog once
/// per month, not per batch) and which it failed to create lately.
#[derive(Default)]
pub(crate) struct WriterMonths {
    known: Mutex<HashSet<NaiveDate>>,
    failed: Mutex<HashMap<NaiveDate, Instant>>,
}

/// Forget the cached months beyond this many (a long replay touches one per month).
const KNOWN_MAX: usize = 1024;

impl WriterMonths {
    /// Creates the partitions of the months `open_times` fall in, outside the batch transaction.
    /// Never fails the batch: a month that cannot be created now (a lock held too long, a
    /// database hiccup) leaves its candles in the DEFAULT partition, from where creating the
    /// month later moves them. Logged, retried after [`WRITER_RETRY_AFTER`].
    pub(crate) async fn ensure(&self, pool: &PgPool, open_times: &[DateTime<Utc>]) {
        let months: BTreeSet<NaiveDate> = open_times.iter().map(|t| month_of(*t)).collect();
        let missing: Vec<NaiveDate> = {
            let known = lock(&self.known);
            let failed = lock(&self.failed);
            months
                .into_iter()
                .filter(|m| !known.contains(m))
                .filter(|m| {
                    failed
                        .get(m)
                        .is_none_or(|at| at.elapsed() >= WRITER_RETRY_AFTER)
                })
                .collect()
        };
        for month in missing {
            match ensure(pool, &[month], WRITER_LOCK_TIMEOUT_MS).await {
                Ok(_) => {
                    lock(&self.failed).remove(&month);
                    let mut known = lock(&self.known);
                    if known.len() >= KNOWN_MAX {
                        known.clear();
                    }
                    known.insert(month);
                }
                Err(e) => {
                    tracing::warn!(partition = %partition_name(month), error = %e, "candle partition not created; this month's candles go to the default partition until it is");
                    lock(&self.failed).insert(month, Instant::now());
                }
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Only caches: a panic elsewhere while holding one cannot corrupt anything.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_step_across_year_ends_from_any_day() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert_eq!(
            months_from(d(2024, 11, 30), 3),
            vec![d(2024, 11, 1), d(2024, 12, 1), d(2025, 1, 1)]
        );
        assert_eq!(partition_name(d(2025, 1, 1)), "price_candles_202501");
        let t = DateTime::parse_from_rfc3339("2024-02-29T23:59:59.999Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(month_of(t), d(2024, 2, 1));
    }
}
