//! PostgreSQL side of the data lifecycle: bounded exports and deletes on ordinary tables, and the
//! tick partitions. Every statement is short and runs on its own (autocommit): the live pipeline
//! never waits behind retention for more than one batch's row locks, and those rows are old ones
//! it does not write.

use super::pg_err;
use crate::store::{
    CandlePartition, ExportedRow, MarketMaintenance, PassLock, Resolved, RowStore, RowTarget,
    RowVersion, StoreError, TickPartition,
};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::postgres::PgPool;
use sqlx::{Executor, Row};

/// `pg_try_advisory_lock` key of the retention pass ("tradepip" in ASCII).
const PASS_LOCK_KEY: i64 = 0x7472_6164_6570_6970;

/// How long a DDL statement of a pass may wait for a lock before giving up (and retrying next
/// pass) instead of queueing the live writers behind it.
const DDL_LOCK_TIMEOUT: &str = "SET lock_timeout = '5s'";

#[derive(Clone, Debug)]
pub struct PgRetentionStore {
    pool: PgPool,
}

impl PgRetentionStore {
    pub fn new(pool: PgPool) -> Self {
        PgRetentionStore { pool }
    }
}

/// Identifiers come from compiled-in targets or the catalog, never from input; quoting still
/// keeps a mixed-case or keyword column name intact.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn qualified(table: &str) -> String {
    table.split('.').map(ident).collect::<Vec<_>>().join(".")
}

/// The table a policy's rows are read from: the target, or a partition detached from it.
fn source(r: &Resolved) -> String {
    qualified(r.source.as_deref().unwrap_or(r.target.table))
}

/// Matches row `t` against the unnested keys `k(key, version, time)` of archived row versions.
fn key_match(r: &Resolved) -> String {
    let time = r
        .key_time
        .as_deref()
        .map(|c| format!(" AND t.{} = k.time", ident(c)))
        .unwrap_or_default();
    format!(
        "t.{} = k.key::{} AND t.xmin = k.version::xid{time}",
        ident(&r.key_column),
        r.key_type
    )
}

fn filter(r: &Resolved) -> String {
    r.target
        .filter
        .map(|f| format!(" AND ({f})"))
        .unwrap_or_default()
}

#[async_trait::async_trait]
impl RowStore for PgRetentionStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn resolve(&self, target: &RowTarget) -> Result<Option<Resolved>, StoreError> {
        let ctx = || format!("inspecting {}", target.table);
        let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
            .bind(target.table)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| pg_err(ctx(), e))?;
        if exists.is_none() {
            return Ok(None);
        }
        let columns = sqlx::query(
            "SELECT attname::text, attgenerated <> '' AS generated
             FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped",
        )
        .bind(target.table)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| pg_err(ctx(), e))?;
        let names: Vec<String> = columns.iter().map(|c| c.get::<String, _>(0)).collect();
        let generated = columns
            .iter()
            .filter(|c| c.get::<bool, _>(1))
            .map(|c| c.get::<String, _>(0))
            .collect();
        let Some(time) = target
            .time_columns
            .iter()
            .find(|c| names.iter().any(|n| n == *c))
        else {
            return Err(StoreError::Unsupported(format!(
                "{} has none of the time columns {:?}",
                target.table, target.time_columns
            )));
        };
        let time_expr = match target.time_fallback {
            Some(f) if names.iter().any(|n| n == f) => {
                format!("coalesce(t.{}, t.{})", ident(time), ident(f))
            }
            _ => format!("t.{}", ident(time)),
        };
        let pk = sqlx::query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod)
             FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
             WHERE i.indrelid = $1::regclass AND i.indisprimary",
        )
        .bind(target.table)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| pg_err(ctx(), e))?;
        // One key column; or, on a partitioned table, one key column and the time column (a
        // key there must contain the partition key: trading.price_candles, migration 0007).
        let (key, key_time) = match pk.as_slice() {
            [key] => (key, None),
            [a, b] if b.get::<String, _>(0) == *time => (a, Some(time.to_string())),
            [a, b] if a.get::<String, _>(0) == *time => (b, Some(time.to_string())),
            _ => {
                return Err(StoreError::Unsupported(format!(
                    "{} needs a primary key of one column (or one column and its time column) for retention (has {} key columns)",
                    target.table,
                    pk.len()
                )));
            }
        };
        Ok(Some(Resolved {
            target: target.clone(),
            time_expr,
            key_column: key.get(0),
            key_type: key.get(1),
            generated,
            key_time,
            source: None,
        }))
    }

    async fn count_before(&self, r: &Resolved, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let sql = format!(
            "SELECT count(*) FROM {} t WHERE {} < $1{}",
            source(r),
            r.time_expr,
            filter(r)
        );
        let n: i64 = sqlx::query_scalar(&sql)
            .bind(before)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| pg_err(format!("counting {}", r.target.table), e))?;
        Ok(n.max(0) as u64)
    }

    async fn days_before(
        &self,
        r: &Resolved,
        before: DateTime<Utc>,
    ) -> Result<Vec<NaiveDate>, StoreError> {
        let sql = format!(
            "SELECT DISTINCT ({} AT TIME ZONE 'UTC')::date FROM {} t WHERE {} < $1{} ORDER BY 1",
            r.time_expr,
            source(r),
            r.time_expr,
            filter(r),
        );
        sqlx::query_scalar(&sql)
            .bind(before)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| pg_err(format!("listing the old days of {}", r.target.table), e))
    }

    async fn export(
        &self,
        r: &Resolved,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        after: Option<&ExportedRow>,
        limit: usize,
    ) -> Result<Vec<ExportedRow>, StoreError> {
        let key = format!("t.{}", ident(&r.key_column));
        let keyset = format!(
            " AND ($3::timestamptz IS NULL OR ({}, {key}) > ($3, $4::text::{}))",
            r.time_expr, r.key_type
        );
        // to_jsonb keeps numerics exact (their decimal text) and times as ISO 8601; generated
        // columns are derived and left out. xmin identifies the row version archived.
        let sql = format!(
            "SELECT {key}::text, t.xmin::text, {t}, (to_jsonb(t) - $5::text[])::text
             FROM {} t WHERE {t} >= $1 AND {t} < $2{}{keyset}
             ORDER BY {t}, {key} LIMIT $6",
            source(r),
            filter(r),
            t = r.time_expr,
        );
        let rows = sqlx::query(&sql)
            .bind(from)
            .bind(to)
            .bind(after.map(|a| a.time))
            .bind(after.map(|a| a.id.key.as_str()))
            .bind(&r.generated)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| pg_err(format!("exporting {}", r.target.table), e))?;
        Ok(rows
            .into_iter()
            .map(|row| ExportedRow {
                id: RowVersion {
                    key: row.get(0),
                    version: row.get(1),
                    time: row.get(2),
                },
                time: row.get(2),
                json: row.get(3),
            })
            .collect())
    }

    async fn delete_versions(&self, r: &Resolved, rows: &[RowVersion]) -> Result<u64, StoreError> {
        let sql = format!(
            "DELETE FROM {} t USING unnest($1::text[], $2::text[], $3::timestamptz[]) AS k(key, version, time)
             WHERE {}",
            qualified(r.target.table),
            key_match(r)
        );
        let keys: Vec<&str> = rows.iter().map(|v| v.key.as_str()).collect();
        let versions: Vec<&str> = rows.iter().map(|v| v.version.as_str()).collect();
        let times: Vec<DateTime<Utc>> = rows.iter().map(|v| v.time).collect();
        let done = sqlx::query(&sql)
            .bind(&keys)
            .bind(&versions)
            .bind(&times)
            .execute(&self.pool)
            .await
            .map_err(|e| pg_err(format!("deleting from {}", r.target.table), e))?;
        Ok(done.rows_affected())
    }

    async fn delete_before(
        &self,
        r: &Resolved,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<u64, StoreError> {
        // The whole key: on a partitioned table the key column alone is not unique.
        let key = std::iter::once(&r.key_column)
            .chain(r.key_time.as_ref())
            .map(|c| ident(c))
            .collect::<Vec<_>>();
        let (d_key, t_key) = (
            key.iter()
                .map(|c| format!("d.{c}"))
                .collect::<Vec<_>>()
                .join(", "),
            key.iter()
                .map(|c| format!("t.{c}"))
                .collect::<Vec<_>>()
                .join(", "),
        );
        let sql = format!(
            "DELETE FROM {table} d WHERE ({d_key}) IN (
                 SELECT {t_key} FROM {table} t WHERE {} < $1{} LIMIT $2)",
            r.time_expr,
            filter(r),
            table = qualified(r.target.table),
        );
        let done = sqlx::query(&sql)
            .bind(before)
            .bind(limit as i64)
            .execute(&self.pool)
            .await
            .map_err(|e| pg_err(format!("deleting from {}", r.target.table), e))?;
        Ok(done.rows_affected())
    }

    async fn estimated_rows(&self, r: &Resolved) -> Result<u64, StoreError> {
        let n: f32 = sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE oid = $1::regclass")
            .bind(r.target.table)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| pg_err(format!("estimating {}", r.target.table), e))?;
        // -1 means "never analysed"; treat it as unknown (0), which makes the pass ANALYZE.
        Ok(if n > 0.0 { n as u64 } else { 0 })
    }

    async fn analyze(&self, r: &Resolved) -> Result<(), StoreError> {
        self.pool
            .execute(format!("ANALYZE {}", qualified(r.target.table)).as_str())
            .await
            .map(|_| ())
            .map_err(|e| pg_err(format!("analysing {}", r.target.table), e))
    }
}

/// One statement by the simple query protocol (what `... CONCURRENTLY` needs: no transaction
/// block, no prepared statement). Boxed: sqlx's raw-SQL future is not `Send` for every lifetime
/// the async-trait future would need.
fn raw(
    conn: &mut sqlx::pool::PoolConnection<sqlx::Postgres>,
    sql: String,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), sqlx::Error>> + Send + '_>> {
    Box::pin(async move {
        let c: &mut sqlx::PgConnection = conn;
        c.execute(sqlx::raw_sql(&sql)).await.map(|_| ())
    })
}

#[async_trait::async_trait]
impl MarketMaintenance for PgRetentionStore {
    async fn tick_partitions(&self) -> Result<Vec<TickPartition>, StoreError> {
        let rows =
            super::partitions::partition_tables(&self.pool, "^price_ticks_[0-9]{8}$").await?;
        let mut out = Vec::new();
        for row in rows {
            let Ok(day) = NaiveDate::parse_from_str(&row.name["price_ticks_".len()..], "%Y%m%d")
            else {
                tracing::warn!(partition = %row.name, "tick partition with an unexpected name; left alone");
                continue;
            };
            out.push(TickPartition {
                name: row.name,
                day,
                attached: row.attached,
                detach_pending: row.detach_pending,
            });
        }
        Ok(out)
    }

    async fn partition_rows(&self, p: &TickPartition) -> Result<u64, StoreError> {
        let n: i64 =
            sqlx::query_scalar(&format!("SELECT count(*) FROM trading.{}", ident(&p.name)))
                .fetch_one(&self.pool)
                .await
                .map_err(|e| pg_err(format!("counting {}", p.name), e))?;
        Ok(n.max(0) as u64)
    }

    /// `DETACH ... CONCURRENTLY` takes only SHARE UPDATE EXCLUSIVE on `price_ticks`, which does
    /// not conflict with the writer's inserts, then waits for the transactions already using the
    /// table; after it the partition is an ordinary table nobody writes to, and DROP locks only
    /// that. (A plain DETACH or DROP would take ACCESS EXCLUSIVE on the parent and stall the tick
    /// writer.) It cannot run in a transaction block, hence raw statements on one connection.
    async fn drop_tick_partition(&self, p: &TickPartition) -> Result<(), StoreError> {
        let ctx = || format!("dropping tick partition {}", p.name);
        let mut conn = self.pool.acquire().await.map_err(|e| pg_err(ctx(), e))?;
        // The name matched ^price_ticks_[0-9]{8}$ (tick_partitions): no quoting needed.
        let table = format!("trading.{}", p.name);
        let mut statements = vec![DDL_LOCK_TIMEOUT.to_string()];
        if p.detach_pending {
            statements.push(format!(
                "ALTER TABLE trading.price_ticks DETACH PARTITION {table} FINALIZE"
            ));
        } else if p.attached {
            statements.push(format!(
                "ALTER TABLE trading.price_ticks DETACH PARTITION {table} CONCURRENTLY"
            ));
        }
        statements.push(format!("DROP TABLE IF EXISTS {table}"));
        let mut result = Ok(());
        for sql in &statements {
            let started = std::time::Instant::now();
            if let Err(e) = raw(&mut conn, sql.clone()).await {
                result = Err(pg_err(ctx(), e));
                break;
            }
            tracing::info!(statement = %sql, took_ms = started.elapsed().as_millis() as u64, "tick partition DDL");
        }
        // The connection goes back to the pool: leave it as we found it.
        let _ = raw(&mut conn, "RESET lock_timeout".into()).await;
        result
    }

    async fn ensure_tick_partitions(&self, from: NaiveDate, days: u32) -> Result<(), StoreError> {
        let days: Vec<NaiveDate> = from.iter_days().take(days as usize).collect();
        super::ensure_tick_partitions(&self.pool, &days).await
    }

    async fn candle_partitions(&self) -> Result<Vec<CandlePartition>, StoreError> {
        super::candle_partitions::list(&self.pool).await
    }

    async fn detach_candle_partition(&self, p: &CandlePartition) -> Result<(), StoreError> {
        super::candle_partitions::detach(&self.pool, p).await
    }

    async fn drop_candle_partition(
        &self,
        p: &CandlePartition,
        expected_rows: u64,
    ) -> Result<(), StoreError> {
        super::candle_partitions::drop_detached(&self.pool, p, expected_rows).await
    }

    async fn ensure_candle_partitions(
        &self,
        from: NaiveDate,
        months: u32,
    ) -> Result<u32, StoreError> {
        super::candle_partitions::ensure_ahead(&self.pool, from, months).await
    }

    async fn refresh_symbol_summary(&self) -> Result<(), StoreError> {
        super::execute(
            &self.pool,
            "REFRESH MATERIALIZED VIEW CONCURRENTLY trading.symbol_summary",
            "refreshing trading.symbol_summary",
        )
        .await
    }

    async fn try_lock_pass(&self) -> Result<Option<Box<dyn PassLock>>, StoreError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| pg_err("taking the retention lock", e))?;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(PASS_LOCK_KEY)
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| pg_err("taking the retention lock", e))?;
        Ok(got.then(|| Box::new(PgPassLock { conn: Some(conn) }) as Box<dyn PassLock>))
    }
}

/// The pass lock: a session-level advisory lock on a connection of its own.
struct PgPassLock {
    conn: Option<sqlx::pool::PoolConnection<sqlx::Postgres>>,
}

#[async_trait::async_trait]
impl PassLock for PgPassLock {
    /// Unlocks and gives the connection back to the pool.
    async fn release(mut self: Box<Self>) {
        if let Some(mut c) = self.conn.take() {
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(PASS_LOCK_KEY)
                .execute(&mut *c)
                .await;
        }
    }
}

impl Drop for PgPassLock {
    fn drop(&mut self) {
        // Not released explicitly (a panic, a cancelled future): close the connection, which
        // releases the session-level advisory lock with it.
        if let Some(c) = self.conn.take() {
            drop(c.detach());
        }
    }
}
