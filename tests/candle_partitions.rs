//! Monthly candle partitions (migration 0007) against a real PostgreSQL: the migration on a
//! database with candles in it keeps every row and every constraint; a candle of any time finds
//! a partition, by plain SQL or through the writer; retention archives and drops a month past
//! every candle policy and deletes only the expired rows of the others; a month whose archive
//! failed is finished by the next pass without losing a row.
//! Set DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/postgres).

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use std::borrow::Cow;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use tradepipe::config::RetentionConfig;
use tradepipe::domain::{Candle, Interval, MarketBatch};
use tradepipe::lifecycle::archive::Archive;
use tradepipe::lifecycle::{Lifecycle, PassReport, PolicyReport};
use tradepipe::store::postgres::PgRetentionStore;
use tradepipe::store::{MarketMaintenance, MarketStore, PgMarketStore};

/// The repository's migrations up to and including `version`.
async fn migrations_up_to(version: i64) -> Migrator {
    let all = Migrator::new(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/migrations"
    )))
    .await
    .unwrap();
    Migrator {
        migrations: Cow::Owned(
            all.migrations
                .iter()
                .filter(|m| m.version <= version)
                .cloned()
                .collect(),
        ),
        ..Migrator::DEFAULT
    }
}

async fn scalar<T>(pool: &PgPool, sql: &str) -> T
where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
{
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

/// The SQLSTATE an INSERT fails with (None: it succeeded).
async fn insert_error(pool: &PgPool, values: &str) -> Option<String> {
    let sql = format!(
        "INSERT INTO trading.price_candles (symbol_id, interval, open_time, close_time, open,
             high, low, close, volume, quote_volume, trade_count, first_trade_id, last_trade_id)
         VALUES {values}"
    );
    match sqlx::query(&sql).execute(pool).await {
        Ok(_) => None,
        Err(sqlx::Error::Database(e)) => e.code().map(|c| c.to_string()),
        Err(e) => panic!("{e}"),
    }
}

/// Every candle as the archive would hold it (`to_jsonb` of the whole row, id included).
async fn all_rows(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT to_jsonb(t)::text FROM trading.price_candles t ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn partition_of(pool: &PgPool, condition: &str) -> Vec<String> {
    sqlx::query_scalar(&format!(
        "SELECT tableoid::regclass::text FROM trading.price_candles WHERE {condition} ORDER BY id"
    ))
    .fetch_all(pool)
    .await
    .unwrap()
}

const SYMBOLS: &str = "INSERT INTO trading.symbols (id, base_asset, quote_asset)
    VALUES ('BTCUSDT', 'BTC', 'USDT'), ('ETHUSDT', 'ETH', 'USDT')";

#[sqlx::test(migrations = false)]
async fn migration_keeps_every_candle_and_every_constraint(pool: PgPool) {
    migrations_up_to(6).await.run(&pool).await.unwrap();
    assert_eq!(
        scalar::<String>(
            &pool,
            "SELECT relkind::text FROM pg_class WHERE oid = 'trading.price_candles'::regclass"
        )
        .await,
        "r"
    );
    // Four months of 1m/1h/1d candles with exact decimals (8 and 16 places), candles without
    // trades (NULL ids), one in 1999 and one in the current month.
    sqlx::raw_sql(&format!(
        "{SYMBOLS};
         INSERT INTO trading.price_candles (symbol_id, interval, open_time, close_time, open, high,
             low, close, volume, quote_volume, trade_count, first_trade_id, last_trade_id, is_closed)
         SELECT s, iv, t, t + step - interval '1 millisecond', 60123.45000001, 60200.1, 60000.00000001,
                60100.5, 1.23456789, 74123.4567890123456789, n, CASE WHEN n % 5 = 0 THEN NULL ELSE n * 10 END,
                CASE WHEN n % 5 = 0 THEN NULL ELSE n * 10 + 6 END, n % 7 <> 0
         FROM unnest(ARRAY['BTCUSDT', 'ETHUSDT']) s,
              (VALUES ('1m', interval '1 minute', interval '3 hours'),
                      ('1h', interval '1 hour', interval '5 hours'),
                      ('1d', interval '1 day', interval '1 day')) v(iv, step, every),
              LATERAL generate_series('2024-01-15T00:00:00Z'::timestamptz, '2024-05-10T00:00:00Z', every)
                  WITH ORDINALITY g(t, n);
         INSERT INTO trading.price_candles (symbol_id, interval, open_time, close_time, open, high,
             low, close, volume, quote_volume, is_closed)
         VALUES ('BTCUSDT', '1d', '1999-12-31T00:00:00Z', '1999-12-31T23:59:59.999Z', 1, 1, 1, 1, 0, 0, true),
                ('ETHUSDT', '1m', date_trunc('minute', now()), date_trunc('minute', now()) + interval '59.999 seconds',
                 2.5, 2.5, 2.5, 2.5, 0, 0, false);
         REFRESH MATERIALIZED VIEW trading.symbol_summary;"
    ))
    .execute(&pool)
    .await
    .unwrap();
    let before = all_rows(&pool).await;
    assert!(before.len() > 2000, "{} rows", before.len());
    let summary_sql = "SELECT to_jsonb(s)::text FROM trading.symbol_summary s ORDER BY symbol_id";
    let summary: Vec<String> = sqlx::query_scalar(summary_sql)
        .fetch_all(&pool)
        .await
        .unwrap();
    let max_id: i64 = scalar(&pool, "SELECT max(id) FROM trading.price_candles").await;

    migrations_up_to(7).await.run(&pool).await.unwrap();

    assert_eq!(
        scalar::<String>(
            &pool,
            "SELECT relkind::text FROM pg_class WHERE oid = 'trading.price_candles'::regclass"
        )
        .await,
        "p"
    );
    // Every row, every column (id, created_at and updated_at included), exactly as it was.
    assert_eq!(all_rows(&pool).await, before);
    let summary_after: Vec<String> = sqlx::query_scalar(summary_sql)
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(summary_after, summary);
    // Each row in the partition of its UTC month; the default partition empty.
    assert_eq!(
        scalar::<i64>(
            &pool,
            "SELECT count(*) FROM trading.price_candles
             WHERE tableoid <> format('trading.price_candles_%s',
                                      to_char(open_time AT TIME ZONE 'UTC', 'YYYYMM'))::regclass"
        )
        .await,
        0
    );
    let months: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'trading.price_candles'::regclass ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for m in [
        "price_candles_199912",
        "price_candles_202401",
        "price_candles_202405",
        "price_candles_default",
    ] {
        assert!(months.iter().any(|x| x == m), "{m} missing from {months:?}");
    }

    // The constraints still refuse what they refused, in a month partition and in the default
    // one (1980 has no partition).
    for (month, at) in [
        ("2024-02", "2024-02-03T04:05:00Z"),
        ("1980", "1980-01-01T00:00:00Z"),
    ] {
        let v = |sym: &str, iv: &str, close: &str, ohlc: &str, ids: &str| {
            format!(
                "('{sym}', '{iv}', '{at}', {close}, {ohlc}, 1, 1, 1, {ids})",
                close = close.replace("AT", at)
            )
        };
        let good_close = "'AT'::timestamptz + interval '59.999 seconds'";
        let good = v("BTCUSDT", "1m", good_close, "2, 3, 1, 2", "1, 5");
        assert_eq!(insert_error(&pool, &good).await, None, "{month}");
        for (what, values, code) in [
            ("the same candle twice", good.clone(), "23505"),
            (
                "an unknown symbol",
                v("NOPEUSDT", "1h", good_close, "2, 3, 1, 2", "1, 5"),
                "23503",
            ),
            (
                "an unknown interval",
                v("ETHUSDT", "2m", good_close, "2, 3, 1, 2", "1, 5"),
                "23514",
            ),
            (
                "high below low",
                v("ETHUSDT", "1m", good_close, "2, 1, 3, 2", "1, 5"),
                "23514",
            ),
            (
                "close before open",
                v("ETHUSDT", "1m", "'AT'::timestamptz", "2, 3, 1, 2", "1, 5"),
                "23514",
            ),
            (
                "one trade id without the other",
                v("ETHUSDT", "1m", good_close, "2, 3, 1, 2", "1, NULL"),
                "23514",
            ),
        ] {
            assert_eq!(
                insert_error(&pool, &values).await.as_deref(),
                Some(code),
                "{month}: {what} was not refused"
            );
        }
    }
    // The id sequence goes on where it was.
    let next: i64 = scalar(
        &pool,
        "SELECT min(id) FROM trading.price_candles WHERE open_time = '1980-01-01T00:00:00Z'",
    )
    .await;
    assert!(next > max_id, "new id {next} not past {max_id}");
}

/// A closed candle without trades (the symbol is in trading.symbols from [`SYMBOLS`]).
fn empty_candle(sym: &str, interval: Interval, at: DateTime<Utc>) -> Candle {
    let price = Decimal::from_str("61000.12345678").unwrap();
    Candle::empty(
        Arc::from(sym),
        interval,
        interval.open_time(at.timestamp_millis()),
        price,
        true,
    )
}

#[sqlx::test(migrations = "./migrations")]
async fn a_candle_of_any_time_finds_its_partition(pool: PgPool) {
    sqlx::raw_sql(SYMBOLS).execute(&pool).await.unwrap();
    // An operator's INSERT as the seed's DDL has it, for months that have no partition.
    for at in [
        "1970-01-01T00:00:00Z",
        "2024-02-29T23:59:00Z",
        "2199-12-31T23:00:00Z",
    ] {
        let values = format!(
            "('BTCUSDT', '1m', '{at}', '{at}'::timestamptz + interval '59.999 seconds',
              1.5, 2, 1, 1.75, 3.12345678, 4.1234567890123456, 3, 10, 12)"
        );
        assert_eq!(insert_error(&pool, &values).await, None, "{at}");
    }
    assert_eq!(
        partition_of(&pool, "true").await,
        vec!["trading.price_candles_default"; 3]
    );
    let feb_before = all_rows(&pool).await;

    // Creating the month moves its rows out of the default partition, unchanged.
    let created: bool = scalar(
        &pool,
        "SELECT trading.ensure_candle_partition('2024-02-10')",
    )
    .await;
    assert!(created);
    let again: bool = scalar(
        &pool,
        "SELECT trading.ensure_candle_partition('2024-02-01')",
    )
    .await;
    assert!(!again);
    assert_eq!(
        partition_of(&pool, "true").await,
        vec![
            "trading.price_candles_default",
            "trading.price_candles_202402",
            "trading.price_candles_default"
        ]
    );
    assert_eq!(all_rows(&pool).await, feb_before);
    // The next candle of that month goes straight to it.
    let values = "('ETHUSDT', '1h', '2024-02-01T00:00:00Z', '2024-02-01T00:59:59.999Z', 1, 1, 1, 1, 0, 0, 0, NULL, NULL)";
    assert_eq!(insert_error(&pool, values).await, None);
    assert_eq!(
        partition_of(&pool, "symbol_id = 'ETHUSDT'").await,
        vec!["trading.price_candles_202402"]
    );

    // Retention's "ahead": the months from 2199-11, moving 2199-12's row out of the default.
    let maintenance = PgRetentionStore::new(pool.clone());
    let from = NaiveDate::from_ymd_opt(2199, 11, 17).unwrap();
    assert_eq!(
        maintenance.ensure_candle_partitions(from, 3).await.unwrap(),
        3
    );
    assert_eq!(
        maintenance.ensure_candle_partitions(from, 3).await.unwrap(),
        0
    );
    assert_eq!(
        partition_of(&pool, "open_time > '2100-01-01'").await,
        vec!["trading.price_candles_219912"]
    );
    assert!(
        scalar::<Option<String>>(
            &pool,
            "SELECT to_regclass('trading.price_candles_220001')::text"
        )
        .await
        .is_some()
    );

    // The writer creates the month of a historical backfill before writing into it.
    let store = PgMarketStore::new(pool.clone());
    let at = Utc.with_ymd_and_hms(2019, 5, 5, 12, 0, 0).unwrap();
    let batch = MarketBatch {
        ticks: Vec::new(),
        candles: vec![
            empty_candle("BTCUSDT", Interval::M1, at),
            empty_candle("BTCUSDT", Interval::W1, at),
        ],
    };
    assert_eq!(store.write_batch(&batch).await.unwrap().candles_upserted, 2);
    // The week of 2019-05-05 opens Monday 2019-04-29: its own month.
    let mut parts = partition_of(
        &pool,
        "open_time < '2020-01-01' AND open_time > '2000-01-01'",
    )
    .await;
    parts.sort();
    assert_eq!(
        parts,
        vec![
            "trading.price_candles_201904",
            "trading.price_candles_201905"
        ]
    );
}

/// A writer racing another creator of the same month (an operator, a second daemon): its own
/// creation times out on the other's lock, its candle is routed to the DEFAULT partition, and
/// when the month is attached PostgreSQL refuses the row there; the writer writes it again and
/// it lands in the month. Nothing is lost or left in the default.
#[sqlx::test(migrations = "./migrations")]
async fn a_candle_written_while_its_month_is_being_attached_lands_in_it(pool: PgPool) {
    sqlx::raw_sql(SYMBOLS).execute(&pool).await.unwrap();
    let mut other = pool.begin().await.unwrap();
    let created: bool = sqlx::query_scalar("SELECT trading.ensure_candle_partition('2018-03-01')")
        .fetch_one(&mut *other)
        .await
        .unwrap();
    assert!(created);
    let commit = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        other.commit().await.unwrap();
    });
    let store = PgMarketStore::new(pool.clone());
    let at = Utc.with_ymd_and_hms(2018, 3, 10, 8, 30, 0).unwrap();
    let batch = MarketBatch {
        ticks: Vec::new(),
        candles: vec![empty_candle("ETHUSDT", Interval::M1, at)],
    };
    assert_eq!(store.write_batch(&batch).await.unwrap().candles_upserted, 1);
    commit.await.unwrap();
    assert_eq!(
        partition_of(&pool, "true").await,
        vec!["trading.price_candles_201803"]
    );
}

// ---------------------------------------------------------------------------------------------
// Retention by month

/// Mid-morning, so that the day-granular cutoffs differ from the exact ones.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
}

fn archive_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tp-months-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// 1m candles a year, 5m+ candles 540 days (so that two years of data show both), archived.
fn lifecycle(pool: &PgPool, dir: &Path) -> Lifecycle {
    let mut cfg = RetentionConfig {
        archive_dir: dir.to_path_buf(),
        batch_size: 500,
        ..RetentionConfig::default()
    };
    cfg.candles_5m_plus.max_age_hours = 540 * 24;
    tradepipe_testkit::support::pg_lifecycle(pool, cfg)
}

/// Two years of 1m (every 6 h) and 1h (every 8 h) candles of two symbols in monthly partitions
/// (created as the writer would), and one 1m candle of 1990 in the default partition.
async fn seed(pool: &PgPool) {
    sqlx::raw_sql(SYMBOLS).execute(pool).await.unwrap();
    let maintenance = PgRetentionStore::new(pool.clone());
    let first = NaiveDate::from_ymd_opt(2024, 11, 1).unwrap();
    maintenance
        .ensure_candle_partitions(first, 25)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO trading.price_candles
             (symbol_id, interval, open_time, close_time, open, high, low, close, volume,
              quote_volume, trade_count, first_trade_id, last_trade_id, is_closed)
         SELECT s, iv, t, t + step - interval '1 millisecond', 60123.45000000, 60200.1, 60000.00000001,
                60100.5, 1.23456789, 74123.4567890123456789, 7, n * 10, n * 10 + 6, true
         FROM unnest(ARRAY['BTCUSDT', 'ETHUSDT']) s,
              (VALUES ('1m', interval '1 minute', interval '6 hours'),
                      ('1h', interval '1 hour', interval '8 hours')) v(iv, step, every),
              LATERAL generate_series(date_trunc('day', $1::timestamptz) - interval '730 days',
                                      $1::timestamptz, every) WITH ORDINALITY g(t, n)",
    )
    .bind(now())
    .execute(pool)
    .await
    .unwrap();
    let old = "('BTCUSDT', '1m', '1990-01-01T00:00:00Z', '1990-01-01T00:00:59.999Z', 1, 1, 1, 1, 0, 0, 0, NULL, NULL)";
    assert_eq!(insert_error(pool, old).await, None);
    assert_eq!(
        partition_of(pool, "open_time < '2000-01-01'").await,
        vec!["trading.price_candles_default"]
    );
}

const CUT_1M: &str = "'2025-11-25T00:00:00Z'";
/// start of the day 540 days before now(): also where whole months stop being dropped.
const CUT_5M: &str = "'2025-06-03T00:00:00Z'";

async fn rows_json(pool: &PgPool, cond: &str) -> HashSet<String> {
    let sql = format!("SELECT to_jsonb(t)::text FROM trading.price_candles t WHERE {cond}");
    let rows: Vec<String> = sqlx::query_scalar(&sql).fetch_all(pool).await.unwrap();
    rows.into_iter().collect()
}

fn archived_exactly_once(dir: &Path, policy: &str, expected: &HashSet<String>) {
    let a = tradepipe_testkit::support::archived_lines(dir, policy);
    assert_eq!(
        a.keys().cloned().collect::<HashSet<_>>(),
        *expected,
        "{policy}"
    );
    assert!(
        a.values().all(|n| *n == 1),
        "{policy}: a row archived twice"
    );
}

fn report<'a>(r: &'a PassReport, policy: &str) -> &'a PolicyReport {
    r.policies.iter().find(|p| p.policy == policy).unwrap()
}

async fn month_tables(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT relname::text FROM pg_class
         WHERE relnamespace = 'trading'::regnamespace AND relkind = 'r'
           AND relname ~ '^price_candles_[0-9]{6}$' ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

fn months(from: (i32, u32), to: (i32, u32)) -> Vec<String> {
    let mut out = Vec::new();
    let (mut y, mut m) = from;
    while (y, m) <= to {
        out.push(format!("price_candles_{y}{m:02}"));
        (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    }
    out
}

#[sqlx::test(migrations = "./migrations")]
async fn retention_drops_months_past_every_policy_and_deletes_only_expired_rows_elsewhere(
    pool: PgPool,
) {
    seed(&pool).await;
    let expired_1m = rows_json(&pool, &format!("interval = '1m' AND open_time < {CUT_1M}")).await;
    let expired_5m = rows_json(&pool, &format!("interval <> '1m' AND open_time < {CUT_5M}")).await;
    let total: i64 = scalar(&pool, "SELECT count(*) FROM trading.price_candles").await;
    // Months wholly before 2025-06-03 go whole (2024-11 .. 2025-05); June 2025 is only partly
    // past the 5m+ age, and June .. November 2025 are past the 1m age but hold 1h candles kept
    // for 540 days: their 1m rows go row by row.
    let in_dropped_months = rows_json(
        &pool,
        "open_time < '2025-06-01T00:00:00Z' AND open_time > '2000-01-01'",
    )
    .await;
    assert!(expired_1m.len() > 1000 && expired_5m.len() > 500 && !in_dropped_months.is_empty());
    let dir = archive_dir("drop");
    let lc = lifecycle(&pool, &dir);

    let dry = lc.run_pass(now(), true).await.unwrap();
    assert_eq!(report(&dry, "candle_months").partitions_dropped, 7, "{dry}");
    assert_eq!(
        report(&dry, "candles_1m").rows_archived,
        expired_1m.len() as u64,
        "{dry}"
    );
    assert_eq!(
        scalar::<i64>(&pool, "SELECT count(*) FROM trading.price_candles").await,
        total
    );
    assert!(!dir.exists(), "a dry run wrote archives");

    let r = lc.run_pass(now(), false).await.unwrap();
    assert_eq!(r.failures(), 0, "{r}");
    assert_eq!(report(&r, "candle_months").partitions_dropped, 7, "{r}");
    let tables = month_tables(&pool).await;
    assert!(
        tables.starts_with(&months((2025, 6), (2026, 11))),
        "{tables:?}"
    );
    assert!(
        !tables.iter().any(|t| t.as_str() < "price_candles_202506"),
        "{tables:?}"
    );

    // Archived first, each row once, under its own policy; exactly the expired rows gone.
    archived_exactly_once(&dir, "candles_1m", &expired_1m);
    archived_exactly_once(&dir, "candles_5m_plus", &expired_5m);
    assert_eq!(
        report(&r, "candles_1m").rows_archived,
        expired_1m.len() as u64
    );
    assert_eq!(
        report(&r, "candles_1m").rows_removed,
        expired_1m.len() as u64
    );
    assert_eq!(
        report(&r, "candles_5m_plus").rows_removed,
        expired_5m.len() as u64
    );
    assert_eq!(
        scalar::<i64>(&pool, "SELECT count(*) FROM trading.price_candles").await,
        total - expired_1m.len() as i64 - expired_5m.len() as i64
    );
    // What stays: every 1h candle from 2025-06-03 on, in the partitions that stayed.
    assert_eq!(
        scalar::<i64>(
            &pool,
            &format!("SELECT count(*) FROM trading.price_candles WHERE open_time < {CUT_5M}")
        )
        .await,
        0
    );
    assert!(
        scalar::<i64>(
            &pool,
            "SELECT count(*) FROM trading.price_candles
             WHERE interval = '1h' AND open_time >= '2025-06-03' AND open_time < '2025-07-01'"
        )
        .await
            > 0
    );
    // One file per policy and UTC day.
    let m = Archive::new(&dir).manifest("candles_1m").unwrap();
    let days: HashSet<_> = m.files.iter().map(|f| f.day).collect();
    assert_eq!(days.len(), m.files.len());

    // A second pass changes nothing.
    let r2 = lc.run_pass(now(), false).await.unwrap();
    assert_eq!(r2.failures(), 0, "{r2}");
    for p in &r2.policies {
        assert_eq!(
            (p.rows_archived, p.rows_removed, p.partitions_dropped),
            (0, 0, 0),
            "{r2}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_month_whose_archive_failed_is_finished_by_the_next_pass(pool: PgPool) {
    seed(&pool).await;
    let expired_1m = rows_json(&pool, &format!("interval = '1m' AND open_time < {CUT_1M}")).await;
    let expired_5m = rows_json(&pool, &format!("interval <> '1m' AND open_time < {CUT_5M}")).await;
    let dir = archive_dir("interrupted");
    // The 2025 archive directory of the 1m policy cannot be created (a file is in its way):
    // 2024's months go, the first month of 2025 fails after its detach.
    std::fs::create_dir_all(dir.join("candles_1m")).unwrap();
    std::fs::write(dir.join("candles_1m").join("2025"), b"in the way").unwrap();
    let lc = lifecycle(&pool, &dir);
    let r = lc.run_pass(now(), false).await.unwrap();
    assert!(report(&r, "candles_1m").error.is_some(), "{r}");
    assert_eq!(report(&r, "candle_months").partitions_dropped, 2, "{r}");
    // January 2025 is detached, not dropped: its rows are all there.
    assert_eq!(
        scalar::<i64>(&pool, "SELECT count(*) FROM trading.price_candles_202501").await,
        2 * (31 * 4 + 31 * 3)
    );
    let tables = month_tables(&pool).await;
    assert_eq!(tables[0], "price_candles_202501", "{tables:?}");

    std::fs::remove_file(dir.join("candles_1m").join("2025")).unwrap();
    let r2 = lc.run_pass(now(), false).await.unwrap();
    assert_eq!(r2.failures(), 0, "{r2}");
    assert_eq!(report(&r2, "candle_months").partitions_dropped, 5, "{r2}");
    archived_exactly_once(&dir, "candles_1m", &expired_1m);
    archived_exactly_once(&dir, "candles_5m_plus", &expired_5m);
    assert_eq!(month_tables(&pool).await[0], "price_candles_202506");
    let _ = std::fs::remove_dir_all(&dir);
}
