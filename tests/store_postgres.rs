//! PostgreSQL market store against a real database. Each `#[sqlx::test]` gets a fresh database
//! with the migrations applied; set DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/postgres).

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::{PgPool, Row};
use std::str::FromStr;
use std::sync::Arc;
use tradepipe::domain::{Candle, Interval, MarketBatch, SymbolInfo, Trade};
use tradepipe::store::postgres::PgRetentionStore;
use tradepipe::store::{MarketMaintenance, MarketStore, PgMarketStore, StoreError};

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn symbol(name: &str) -> SymbolInfo {
    SymbolInfo {
        symbol: name.to_string(),
        base_asset: name.trim_end_matches("USDT").to_string(),
        quote_asset: "USDT".to_string(),
        exchange: "binance".to_string(),
        precision_price: 2,
        precision_qty: 5,
        min_qty: d("0.00001"),
        is_active: true,
    }
}

/// 2024-08-09T00:00:00Z
const T0: i64 = 1_723_161_600_000;

fn trade(sym: &str, id: u64, time_ms: i64) -> Trade {
    Trade {
        symbol: Arc::from(sym),
        trade_id: id,
        price: d("60123.45000000") + Decimal::new(id as i64 % 100, 8),
        qty: d("0.00012345"),
        time_ms,
        is_buyer_maker: id.is_multiple_of(2),
    }
}

/// A candle folding `trades` (consecutive ids) in; empty -> a no-trade candle at `price`.
fn candle(sym: &str, interval: Interval, open_ms: i64, trades: &[Trade], closed: bool) -> Candle {
    let open_time_ms = interval.open_time(open_ms);
    let mut c = Candle {
        symbol: Arc::from(sym),
        interval,
        open_time_ms,
        close_time_ms: interval.close_time(open_time_ms),
        open: d("60000.00000000"),
        high: d("60000.00000000"),
        low: d("60000.00000000"),
        close: d("60000.00000000"),
        volume: Decimal::ZERO,
        quote_volume: Decimal::ZERO,
        trade_count: 0,
        first_trade_id: None,
        last_trade_id: None,
        closed,
    };
    for (i, t) in trades.iter().enumerate() {
        if i == 0 {
            c.open = t.price;
            c.high = t.price;
            c.low = t.price;
            c.first_trade_id = Some(t.trade_id);
        }
        c.high = c.high.max(t.price);
        c.low = c.low.min(t.price);
        c.close = t.price;
        c.volume += t.qty;
        c.quote_volume += t.quote_qty();
        c.trade_count += 1;
        c.last_trade_id = Some(t.trade_id);
    }
    c
}

async fn store_with(pool: &PgPool, symbols: &[&str]) -> PgMarketStore {
    let store = PgMarketStore::new(pool.clone());
    let infos: Vec<SymbolInfo> = symbols.iter().map(|s| symbol(s)).collect();
    store.upsert_symbols(&infos).await.unwrap();
    store
}

async fn stored_ticks(pool: &PgPool, sym: &str) -> Vec<Trade> {
    sqlx::query(
        "SELECT symbol_id, trade_id, price, quantity, timestamp, is_buyer_maker \
         FROM trading.price_ticks WHERE symbol_id = $1 ORDER BY trade_id",
    )
    .bind(sym)
    .fetch_all(pool)
    .await
    .unwrap()
    .iter()
    .map(|r| Trade {
        symbol: Arc::from(r.get::<String, _>("symbol_id")),
        trade_id: r.get::<i64, _>("trade_id") as u64,
        price: r.get("price"),
        qty: r.get("quantity"),
        time_ms: r.get::<DateTime<Utc>, _>("timestamp").timestamp_millis(),
        is_buyer_maker: r.get("is_buyer_maker"),
    })
    .collect()
}

#[sqlx::test(migrations = "./migrations")]
async fn migrations_apply_twice(pool: PgPool) {
    tradepipe::store::migrate(&pool).await.unwrap();
    tradepipe::store::migrate(&pool).await.unwrap();
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE (n.nspname, c.relname) IN (('auth','users'), ('auth','user_preferences'), \
           ('auth','watchlists'), ('trading','symbols'), ('trading','price_candles'), \
           ('trading','price_ticks'), ('content','articles'), ('trading','symbol_summary'), \
           ('trading','idx_candles_covering'), ('trading','idx_candles_time'))",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(tables, 10);
    let brin: String = sqlx::query_scalar(
        "SELECT am.amname::text FROM pg_class c JOIN pg_am am ON am.oid = c.relam \
         WHERE c.oid = 'trading.idx_candles_time'::regclass",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(brin, "brin");
}

#[sqlx::test(migrations = "./migrations")]
async fn batch_round_trips_exactly(pool: PgPool) {
    // A session time zone far from UTC must not shift anything.
    let mut opts = (*pool.connect_options()).clone();
    opts = opts.options([("timezone", "Pacific/Kiritimati")]);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .connect_with(opts)
        .await
        .unwrap();
    let store = store_with(&pool, &["BTCUSDT"]).await;
    // Trades across a UTC day boundary (two partitions), with 8 decimal places.
    let ticks: Vec<Trade> = (0..10)
        .map(|i| trade("BTCUSDT", 1_000 + i, T0 - 5 + i as i64))
        .collect();
    let m1 = candle("BTCUSDT", Interval::M1, T0, &ticks[5..], false);
    let h1 = candle("BTCUSDT", Interval::H1, T0, &ticks[5..], false);
    let empty = candle("BTCUSDT", Interval::M5, T0 + 3_600_000, &[], true);
    assert_eq!(m1.quote_volume.scale(), 16);
    let batch = MarketBatch {
        ticks: ticks.clone(),
        candles: vec![m1.clone(), h1.clone(), empty.clone()],
    };
    let stats = store.write_batch(&batch).await.unwrap();
    assert_eq!(stats.ticks_inserted, 10);
    assert_eq!(stats.ticks_duplicate, 0);
    assert_eq!(stats.candles_upserted, 3);

    assert_eq!(stored_ticks(&pool, "BTCUSDT").await, ticks);
    let resume = store.resume_state("BTCUSDT").await.unwrap();
    assert_eq!(
        resume.latest_candles,
        vec![m1.clone(), empty.clone(), h1.clone()]
    );
    // Exact to the last digit, not just numerically equal.
    assert_eq!(
        resume.latest_candles[0].quote_volume.to_string(),
        m1.quote_volume.to_string()
    );
    assert_eq!(resume.last_trade_id, Some(1_009));
    let open: DateTime<Utc> =
        sqlx::query_scalar("SELECT open_time FROM trading.price_candles WHERE interval = '1m'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(open.to_rfc3339(), "2024-08-09T00:00:00+00:00");
}

#[sqlx::test(migrations = "./migrations")]
async fn same_batch_twice_keeps_one_tick_per_trade(pool: PgPool) {
    let store = store_with(&pool, &["BTCUSDT", "ETHUSDT"]).await;
    let mut ticks: Vec<Trade> = (0..100)
        .map(|i| trade("BTCUSDT", i, T0 + i as i64))
        .collect();
    ticks.extend((0..50).map(|i| trade("ETHUSDT", i, T0 + i as i64)));
    // A trade repeated inside the batch, and a candle state repeated with a newer one.
    ticks.push(trade("BTCUSDT", 7, T0 + 7));
    let older = candle("BTCUSDT", Interval::M1, T0, &ticks[..10], false);
    let newer = candle("BTCUSDT", Interval::M1, T0, &ticks[..100], false);
    let batch = MarketBatch {
        ticks,
        candles: vec![newer.clone(), older],
    };
    let first = store.write_batch(&batch).await.unwrap();
    assert_eq!((first.ticks_inserted, first.ticks_duplicate), (150, 1));
    assert_eq!(first.candles_upserted, 1);
    let second = store.write_batch(&batch).await.unwrap();
    assert_eq!((second.ticks_inserted, second.ticks_duplicate), (0, 151));
    let counts: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT symbol_id::text, count(*), count(DISTINCT trade_id) FROM trading.price_ticks \
         GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        counts,
        vec![("BTCUSDT".into(), 100, 100), ("ETHUSDT".into(), 50, 50)]
    );
    let resume = store.resume_state("BTCUSDT").await.unwrap();
    assert_eq!(resume.latest_candles, vec![newer]);
}

#[sqlx::test(migrations = "./migrations")]
async fn older_candle_state_never_overwrites_newer(pool: PgPool) {
    let store = store_with(&pool, &["BTCUSDT"]).await;
    let ticks: Vec<Trade> = (0..20)
        .map(|i| trade("BTCUSDT", i, T0 + i as i64))
        .collect();
    let early = candle("BTCUSDT", Interval::M1, T0, &ticks[..5], false);
    let late = candle("BTCUSDT", Interval::M1, T0, &ticks, false);
    let mut late_closed = late.clone();
    late_closed.closed = true;

    let only_candles = |c: &Candle| MarketBatch {
        ticks: vec![],
        candles: vec![c.clone()],
    };
    assert_eq!(
        store
            .write_batch(&only_candles(&late))
            .await
            .unwrap()
            .candles_upserted,
        1
    );
    // An older state (a replayed spool batch) is ignored...
    assert_eq!(
        store
            .write_batch(&only_candles(&early))
            .await
            .unwrap()
            .candles_upserted,
        0
    );
    // ...the same trades may close the candle, but never reopen it.
    assert_eq!(
        store
            .write_batch(&only_candles(&late_closed))
            .await
            .unwrap()
            .candles_upserted,
        1
    );
    assert_eq!(
        store
            .write_batch(&only_candles(&late))
            .await
            .unwrap()
            .candles_upserted,
        0
    );
    // An empty (no-trade) state never replaces one with trades.
    let mut empty = candle("BTCUSDT", Interval::M1, T0, &[], false);
    (empty.open, empty.high, empty.low, empty.close) = (d("1"), d("1"), d("1"), d("1"));
    assert_eq!(
        store
            .write_batch(&only_candles(&empty))
            .await
            .unwrap()
            .candles_upserted,
        0
    );
    let resume = store.resume_state("BTCUSDT").await.unwrap();
    assert_eq!(resume.latest_candles, vec![late_closed]);
}

#[sqlx::test(migrations = "./migrations")]
async fn resume_state_is_latest_candle_per_interval_and_the_lowest_trade_id_they_reach(
    pool: PgPool,
) {
    let store = store_with(&pool, &["BTCUSDT", "ETHUSDT"]).await;
    let ticks: Vec<Trade> = (0..6)
        .map(|i| trade("BTCUSDT", 500 + i, T0 + i as i64 * 60_000))
        .collect();
    let mut candles: Vec<Candle> = ticks
        .iter()
        .map(|t| {
            candle(
                "BTCUSDT",
                Interval::M1,
                t.time_ms,
                std::slice::from_ref(t),
                true,
            )
        })
        .collect();
    // The newest 1m candle has no trades: the resume id must come from the one before.
    let quiet = candle("BTCUSDT", Interval::M1, T0 + 6 * 60_000, &[], false);
    candles.push(quiet.clone());
    let m5a = candle("BTCUSDT", Interval::M5, T0, &ticks[..5], true);
    let m5b = candle("BTCUSDT", Interval::M5, T0 + 300_000, &ticks[5..], false);
    let w1 = candle("BTCUSDT", Interval::W1, T0, &ticks, false);
    // An open candle written earlier than the others (open candles are written less often):
    // the feed must resume after its last trade so that 1h gets 503..505 again.
    let h1 = candle("BTCUSDT", Interval::H1, T0, &ticks[..3], false);
    candles.extend([m5a, m5b.clone(), h1.clone(), w1.clone()]);
    store
        .write_batch(&MarketBatch { ticks, candles })
        .await
        .unwrap();
    store
        .write_batch(&MarketBatch {
            ticks: vec![trade("ETHUSDT", 9_999, T0)],
            candles: vec![],
        })
        .await
        .unwrap();

    let resume = store.resume_state("BTCUSDT").await.unwrap();
    assert_eq!(resume.latest_candles, vec![quiet, m5b, h1, w1]);
    assert_eq!(resume.last_trade_id, Some(502));
    // Ticks without candles do not count, and an unknown symbol is simply empty.
    let eth = store.resume_state("ETHUSDT").await.unwrap();
    assert_eq!((eth.latest_candles.len(), eth.last_trade_id), (0, None));
    let none = store.resume_state("NOPEUSDT").await.unwrap();
    assert_eq!((none.latest_candles.len(), none.last_trade_id), (0, None));
}

async fn partitions(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT inhrelid::regclass::text FROM pg_inherits \
         WHERE inhparent = 'trading.price_ticks'::regclass ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = "./migrations")]
async fn partitions_are_created_on_demand_for_old_days(pool: PgPool) {
    let store = store_with(&pool, &["BTCUSDT"]).await;
    // 2017-08-17T04:00:00Z, the first days of Binance, and the next day.
    let old = 1_502_942_400_000;
    let batch = MarketBatch {
        ticks: vec![
            trade("BTCUSDT", 1, old),
            trade("BTCUSDT", 2, old + 86_400_000),
        ],
        candles: vec![],
    };
    assert_eq!(store.write_batch(&batch).await.unwrap().ticks_inserted, 2);
    assert_eq!(
        partitions(&pool).await,
        vec![
            "trading.price_ticks_20170817",
            "trading.price_ticks_20170818"
        ]
    );

    let from = NaiveDate::from_ymd_opt(2030, 12, 30).unwrap();
    store.ensure_tick_partitions(from, 3).await.unwrap();
    store.ensure_tick_partitions(from, 3).await.unwrap();
    let all = partitions(&pool).await;
    assert_eq!(all.len(), 5);
    assert!(all.contains(&"trading.price_ticks_20310101".to_string()));
    // The SQL function is idempotent on its own too.
    let created: Vec<bool> = sqlx::query_scalar(
        "SELECT trading.ensure_tick_partition(d) FROM UNNEST(ARRAY['2017-08-17'::date, '2017-08-19']) d",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(created, vec![false, true]);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_dropped_partition_is_recreated(pool: PgPool) {
    let store = store_with(&pool, &["BTCUSDT"]).await;
    let batch = |id| MarketBatch {
        ticks: vec![trade("BTCUSDT", id, T0)],
        candles: vec![],
    };
    store.write_batch(&batch(1)).await.unwrap();
    // Retention drops the day behind the store's back; its cache still says it exists.
    sqlx::query("DROP TABLE trading.price_ticks_20240809")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        store.write_batch(&batch(2)).await.unwrap().ticks_inserted,
        1
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn unknown_symbols_are_a_clear_error(pool: PgPool) {
    let store = store_with(&pool, &["BTCUSDT"]).await;
    let ticks = MarketBatch {
        ticks: vec![trade("BTCUSDT", 1, T0), trade("NOPEUSDT", 1, T0)],
        candles: vec![],
    };
    let candles = MarketBatch {
        ticks: vec![],
        candles: vec![candle("ZZZUSDT", Interval::M1, T0, &[], false)],
    };
    for (batch, name) in [(ticks, "NOPEUSDT"), (candles, "ZZZUSDT")] {
        match store.write_batch(&batch).await {
            Err(e @ StoreError::UnknownSymbols { .. }) => {
                assert!(!e.is_retryable());
                assert!(e.to_string().contains(name), "{e}");
            }
            other => panic!("expected UnknownSymbols, got {other:?}"),
        }
    }
    // Nothing of the failed batches was written (one transaction).
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM trading.price_ticks")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 0);
}

#[sqlx::test(migrations = "./migrations")]
async fn inexact_values_are_rejected_before_rounding(pool: PgPool) {
    let store = store_with(&pool, &["BTCUSDT"]).await;
    let mut t = trade("BTCUSDT", 1, T0);
    t.price = d("1.000000001");
    let err = store
        .write_batch(&MarketBatch {
            ticks: vec![t],
            candles: vec![],
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    let mut t = trade("BTCUSDT", u64::MAX, T0);
    t.price = d("1.00000000000000"); // trailing zeros are fine, the id is not
    let err = store
        .write_batch(&MarketBatch {
            ticks: vec![t],
            candles: vec![],
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("BIGINT"), "{err}");
}

#[sqlx::test(migrations = "./migrations")]
async fn symbols_upsert_updates_changed_rows(pool: PgPool) {
    let store = store_with(&pool, &["BTCUSDT"]).await;
    let mut info = symbol("BTCUSDT");
    info.is_active = false;
    info.min_qty = d("0.001");
    store.upsert_symbols(&[info]).await.unwrap();
    let (active, min_qty, touched): (bool, Decimal, bool) = sqlx::query_as(
        "SELECT is_active, min_qty, updated_at > created_at FROM trading.symbols WHERE id = 'BTCUSDT'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((active, min_qty, touched), (false, d("0.001"), true));
}

#[sqlx::test(migrations = "./migrations")]
async fn symbol_summary_refreshes_concurrently(pool: PgPool) {
    let store = store_with(&pool, &["BTCUSDT"]).await;
    let ticks: Vec<Trade> = (0..3).map(|i| trade("BTCUSDT", i, T0 + i as i64)).collect();
    let m1 = candle("BTCUSDT", Interval::M1, T0, &ticks, false);
    let h1 = candle("BTCUSDT", Interval::H1, T0, &ticks, false);
    store
        .write_batch(&MarketBatch {
            ticks,
            candles: vec![m1.clone(), h1],
        })
        .await
        .unwrap();
    // Refreshed by retention's maintenance, the only caller in the daemon.
    let maintenance = PgRetentionStore::new(pool.clone());
    maintenance.refresh_symbol_summary().await.unwrap();
    maintenance.refresh_symbol_summary().await.unwrap();
    let (count, last_price): (i64, Decimal) = sqlx::query_as(
        "SELECT candle_count, last_price FROM trading.symbol_summary WHERE symbol_id = 'BTCUSDT'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((count, last_price), (2, m1.close));
}

#[tokio::test]
async fn unreachable_database_is_retryable_and_hides_the_password() {
    let url = "postgres://app:hunter2secret@127.0.0.1:1/db";
    let err = tradepipe::store::connect(url, 1).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("hunter2secret"), "{shown}");
    let err = tradepipe::store::connect("postgres://app:hunter2secret@h:notaport/db", 1)
        .await
        .unwrap_err();
    assert!(!err.is_retryable());
    assert!(
        !format!("{err} {err:?}").contains("hunter2secret"),
        "{err:?}"
    );

    // A lazy pool starts without a database; the first use reports it unavailable.
    let pool = tradepipe::store::connect_lazy(url, 1).unwrap();
    let err = PgMarketStore::new(pool).ping().await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
}

/// Throughput of `write_batch` for ticks:
/// `cargo test --release --test store_postgres -- --ignored --nocapture tick_throughput`
#[sqlx::test(migrations = "./migrations")]
#[ignore = "benchmark: run with --ignored"]
async fn tick_throughput(pool: PgPool) {
    let store = store_with(&pool, &["BTCUSDT"]).await;
    let total: u64 = std::env::var("TICKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500_000);
    let per_batch: u64 = 5_000;
    if std::env::var("NO_TICK_FK").is_ok() {
        sqlx::query("ALTER TABLE trading.price_ticks DROP CONSTRAINT fk_symbol")
            .execute(&pool)
            .await
            .unwrap();
    }
    // 50 trades per second across the day boundary, as a busy symbol.
    let batches: Vec<MarketBatch> = (0..total / per_batch)
        .map(|b| MarketBatch {
            ticks: (0..per_batch)
                .map(|i| {
                    let id = b * per_batch + i;
                    trade("BTCUSDT", id, T0 + id as i64 * 20)
                })
                .collect(),
            candles: vec![],
        })
        .collect();
    let start = std::time::Instant::now();
    let mut inserted = 0;
    for batch in &batches {
        inserted += store.write_batch(batch).await.unwrap().ticks_inserted;
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(inserted, total);
    println!(
        "{total} ticks in batches of {per_batch}: {secs:.2} s, {:.0} ticks/s (fk: {})",
        total as f64 / secs,
        std::env::var("NO_TICK_FK").is_err()
    );
}

/// The writer creates a missing day's tick partition by attach, which takes only SHARE UPDATE
/// EXCLUSIVE on `trading.price_ticks`: a reader holding a transaction open on the ticks does not
/// hold it up. (`CREATE TABLE ... PARTITION OF` needs ACCESS EXCLUSIVE on the parent: it would
/// queue behind the reader, and the write would fail on the 1 s lock timeout.)
#[sqlx::test(migrations = "./migrations")]
async fn writer_creates_a_partition_while_the_ticks_are_read(pool: PgPool) {
    let options = (*pool.connect_options())
        .clone()
        .options([("lock_timeout", "1s")]);
    let writer_pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .unwrap();
    let store = store_with(&writer_pool, &["BTCUSDT"]).await;

    let mut reader = pool.begin().await.unwrap();
    let _: i64 = sqlx::query_scalar("SELECT count(*) FROM trading.price_ticks")
        .fetch_one(&mut *reader)
        .await
        .unwrap();

    // A day no partition exists for yet.
    let day = NaiveDate::from_ymd_opt(2031, 3, 4).unwrap();
    let ms = day
        .and_hms_opt(12, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis();
    let written = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        store.write_batch(&MarketBatch {
            ticks: vec![trade("BTCUSDT", 1, ms)],
            candles: vec![],
        }),
    )
    .await
    .expect("the write finishes");
    assert_eq!(written.unwrap().ticks_inserted, 1);

    let attached: bool = sqlx::query_scalar(
        "SELECT relispartition FROM pg_class WHERE oid = 'trading.price_ticks_20310304'::regclass",
    )
    .fetch_one(&mut *reader)
    .await
    .unwrap();
    assert!(
        attached,
        "the day's table is attached to trading.price_ticks"
    );
    reader.commit().await.unwrap();
    assert_eq!(stored_ticks(&pool, "BTCUSDT").await.len(), 1);
}

/// Two creators of the same days (the writer and retention, or two daemons) both succeed, and
/// each day ends up as one attached partition.
#[sqlx::test(migrations = "./migrations")]
async fn racing_partition_creators_both_succeed(pool: PgPool) {
    let from = NaiveDate::from_ymd_opt(2032, 5, 1).unwrap();
    let days: Vec<NaiveDate> = from.iter_days().take(5).collect();
    let (a, b) = tokio::join!(
        tradepipe::store::postgres::ensure_tick_partitions(&pool, &days),
        tradepipe::store::postgres::ensure_tick_partitions(&pool, &days),
    );
    a.unwrap();
    b.unwrap();
    let attached: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'trading.price_ticks'::regclass
           AND inhrelid::regclass::text LIKE 'trading.price_ticks_203205%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(attached, 5);
}
