//! Read replicas against a real PostgreSQL streaming replica: `scripts/pg-replica` makes a hot
//! standby of the local primary (`pg_basebackup -R`, its own port) and scripts/test exports its
//! server URL as `TRADEPIPE_TEST_REPLICA_URL` and runs these tests, which are ignored otherwise.
//!
//! - lag-tolerant reads go to the standby (it answers `pg_is_in_recovery()`; with its replay
//!   paused the price history shows the standby's older candle), the lag is measured and
//!   exported, and a standby further behind than the maximum is skipped for the primary;
//! - a stopped standby: reads fall back to the primary at once, the check finds it down, and it is
//!   used again once it is back;
//! - the real daemon reads from the standby (its session is on the standby), and keeps
//!   predicting and storing every trade exactly while the standby is stopped and started again.
//!
//! Each `#[sqlx::test]` database is created on the primary, so each test first waits until the
//! standby has replayed it. The tests stop or pause the one standby, so they take turns.

use rust_decimal::Decimal;
use sqlx::PgPool;
use std::process::Command;
use std::str::FromStr;
use std::time::{Duration, Instant};
use tradepipe::config::{DatabaseConfig, Secret};
use tradepipe::store::PriceHistory;
use tradepipe::store::postgres::{PgPriceHistory, ReadRouter, ReplicaState};
use tradepipe_testkit::news_server::NewsServerConfig;
use tradepipe_testkit::support::*;

const NEEDS: &str = "needs a streaming replica (scripts/test makes one)";

/// One test at a time pauses, stops or watches the standby.
static STANDBY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The standby's server URL, without a database (`postgres://postgres@127.0.0.1:55433`).
fn replica_server() -> String {
    let url = std::env::var("TRADEPIPE_TEST_REPLICA_URL").unwrap_or_else(|_| panic!("{NEEDS}"));
    url.trim_end_matches('/').to_string()
}

fn database_of(pool: &PgPool) -> String {
    pool.connect_options()
        .get_database()
        .expect("test database")
        .to_string()
}

/// The primary's URL for the test database.
fn primary_url(pool: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let server = &base[..base.rfind('/').expect("DATABASE_URL names a database")];
    format!("{server}/{}", database_of(pool))
}

async fn on_standby(db: &str) -> Option<PgPool> {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(2))
        .connect(&format!("{}/{db}", replica_server()))
        .await
        .ok()
}

/// Waits until the standby has the test database and `table` in it.
async fn wait_replicated(db: &str, table: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(p) = on_standby(db).await {
            let found: Option<bool> = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
                .bind(table)
                .fetch_one(&p)
                .await
                .ok();
            p.close().await;
            if found == Some(true) {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the standby did not replay {db}.{table} within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn replica_script(action: &str) {
    let status = Command::new(repo_root().join("scripts/pg-replica"))
        .arg(action)
        .status()
        .expect("run scripts/pg-replica");
    assert!(status.success(), "scripts/pg-replica {action}: {status}");
}

/// Starts the standby again however the test ends.
struct RestartOnDrop;
impl Drop for RestartOnDrop {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("scripts/pg-replica"))
            .arg("start")
            .status();
    }
}

/// Resumes the standby's replay however the test ends.
struct ResumeOnDrop;
impl Drop for ResumeOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                &format!("{}/postgres", replica_server()),
                "-qtAc",
                "SELECT pg_wal_replay_resume()",
            ])
            .status();
    }
}

fn database_config(pool: &PgPool, read_url: String, max_lag_ms: u64) -> DatabaseConfig {
    DatabaseConfig {
        url: Secret(primary_url(pool)),
        read_urls: vec![Secret(read_url)],
        replica_max_lag_ms: max_lag_ms,
        replica_check_interval_ms: 100,
        ..DatabaseConfig::default()
    }
}

async fn answered_by_standby(router: &ReadRouter) -> bool {
    router
        .read(|pool| async move {
            sqlx::query_scalar::<_, bool>("SELECT pg_is_in_recovery()")
                .fetch_one(&pool)
                .await
        })
        .await
        .expect("a read")
}

/// Checks until the replica is in `want` (bounded).
async fn wait_state(router: &ReadRouter, want: ReplicaState, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        router.check_now().await;
        let now = router.status()[0].state;
        if now == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "replica {now:?}, not {want:?}, after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn insert_closed_minute(pool: &PgPool, minute: i64, close: &str) {
    sqlx::query(
        "INSERT INTO trading.price_candles
            (symbol_id, interval, open_time, close_time, open, high, low, close, volume,
             quote_volume, trade_count, is_closed)
         VALUES ('BTCUSDT', '1m', to_timestamp($1 * 60), to_timestamp($1 * 60 + 59.999),
                 $2::numeric, $2::numeric, $2::numeric, $2::numeric, 1, $2::numeric, 1, true)",
    )
    .bind(minute as f64)
    .bind(close)
    .execute(pool)
    .await
    .expect("insert a candle");
}

fn series(metrics: &str, name: &str) -> Vec<String> {
    metrics
        .lines()
        .filter(|l| l.starts_with(name))
        .map(str::to_string)
        .collect()
}

/// Waits until the standby has replayed everything the primary had written when called.
async fn wait_caught_up(primary: &PgPool, standby: &PgPool) {
    let target: i64 = sqlx::query_scalar("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::int8")
        .fetch_one(primary)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let replayed: i64 =
            sqlx::query_scalar("SELECT (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::int8")
                .fetch_one(standby)
                .await
                .unwrap();
        if replayed >= target {
            return;
        }
        assert!(Instant::now() < deadline, "the standby did not catch up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[sqlx::test(migrations = "./migrations")]
#[ignore = "needs a streaming replica (scripts/test makes one)"]
async fn lag_tolerant_reads_go_to_the_replica_until_it_falls_behind(pool: PgPool) {
    let _turn = STANDBY.lock().await;
    let metrics = tradepipe::telemetry::metrics_handle().expect("recorder");
    sqlx::query(
        "INSERT INTO trading.symbols (id, base_asset, quote_asset) VALUES ('BTCUSDT', 'BTC', 'USDT')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let t0 = 28_000_000; // a minute in 2023
    insert_closed_minute(&pool, t0, "100.5").await;
    let db = database_of(&pool);
    wait_replicated(&db, "trading.price_candles").await;

    // The read URL names only the standby's server: user, database and TLS come from the
    // primary's. `patient` tolerates a minute of lag, `strict` 1.5 s.
    let patient = ReadRouter::connect(
        pool.clone(),
        &database_config(&pool, replica_server(), 60_000),
    )
    .unwrap();
    let strict = ReadRouter::connect(
        pool.clone(),
        &database_config(&pool, replica_server(), 1500),
    )
    .unwrap();
    assert_eq!(patient.status()[0].state, ReplicaState::Unchecked);
    assert!(
        !answered_by_standby(&patient).await,
        "before a check: the primary"
    );
    wait_state(&patient, ReplicaState::Usable, Duration::from_secs(20)).await;
    wait_state(&strict, ReplicaState::Usable, Duration::from_secs(20)).await;
    assert!(
        answered_by_standby(&patient).await,
        "a usable replica answers"
    );
    let prices = PgPriceHistory::new(patient.clone());
    let close = |v: &str| Some(Decimal::from_str(v).unwrap());
    assert_eq!(
        prices.latest_close("BTCUSDT").await.unwrap().map(|c| c.1),
        close("100.5")
    );

    // Replay paused: the standby keeps its older candle and falls behind in time.
    let standby = on_standby(&db).await.expect("the standby");
    patient.check_now().await;
    strict.check_now().await;
    // So that the routers have sampled a position the paused standby has passed.
    wait_caught_up(&pool, &standby).await;
    let _resume = ResumeOnDrop;
    sqlx::query("SELECT pg_wal_replay_pause()")
        .execute(&standby)
        .await
        .unwrap();
    insert_closed_minute(&pool, t0 + 1, "101.25").await;
    patient.check_now().await;
    assert_eq!(patient.status()[0].state, ReplicaState::Usable);
    assert_eq!(
        prices.latest_close("BTCUSDT").await.unwrap().map(|c| c.1),
        close("100.5"),
        "read on the paused standby, which lacks the new candle"
    );
    wait_state(&strict, ReplicaState::Behind, Duration::from_secs(20)).await;
    let behind = strict.status()[0].lag.expect("lag measured");
    assert!(behind > Duration::from_millis(1500), "{behind:?}");
    assert!(
        !answered_by_standby(&strict).await,
        "a replica behind is skipped"
    );
    assert_eq!(
        PgPriceHistory::new(strict.clone())
            .latest_close("BTCUSDT")
            .await
            .unwrap()
            .map(|c| c.1),
        close("101.25"),
        "the primary's newest candle"
    );
    let text = metrics.render();
    let usable = series(&text, "tradepipe_postgres_replica_usable");
    assert!(usable.iter().any(|l| l.ends_with(" 0")), "{usable:?}");
    let lag = series(&text, "tradepipe_postgres_replica_lag_seconds");
    assert!(!lag.is_empty(), "lag exported: {text}");

    // Replay resumed: caught up, in use again.
    sqlx::query("SELECT pg_wal_replay_resume()")
        .execute(&standby)
        .await
        .unwrap();
    wait_state(&strict, ReplicaState::Usable, Duration::from_secs(20)).await;
    assert!(answered_by_standby(&strict).await);
    assert!(strict.status()[0].lag.expect("lag") <= Duration::from_millis(1500));
    let deadline = Instant::now() + Duration::from_secs(20);
    while prices.latest_close("BTCUSDT").await.unwrap().map(|c| c.1) != close("101.25") {
        assert!(
            Instant::now() < deadline,
            "the standby never replayed the new candle"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = metrics.render();
    let replica_reads = metric_value(&text, "tradepipe_postgres_reads_total{target=\"replica\"}");
    assert!(replica_reads >= 4.0, "{text}");
}

#[sqlx::test(migrations = "./migrations")]
#[ignore = "needs a streaming replica (scripts/test makes one)"]
async fn a_stopped_replica_is_skipped_and_used_again_once_back(pool: PgPool) {
    let _turn = STANDBY.lock().await;
    let db = database_of(&pool);
    wait_replicated(&db, "trading.price_candles").await;
    let cfg = database_config(&pool, format!("{}/{db}", replica_server()), 5000);
    let router = ReadRouter::connect(pool.clone(), &cfg).unwrap();
    wait_state(&router, ReplicaState::Usable, Duration::from_secs(20)).await;
    assert!(answered_by_standby(&router).await);

    let _restart = RestartOnDrop;
    replica_script("stop");
    // Before any check: the failed read marks it down and is answered by the primary.
    assert!(!answered_by_standby(&router).await);
    assert_eq!(router.status()[0].state, ReplicaState::Down);
    wait_state(&router, ReplicaState::Down, Duration::from_secs(10)).await;
    for _ in 0..3 {
        assert!(!answered_by_standby(&router).await, "the primary answers");
    }

    replica_script("start");
    wait_state(&router, ReplicaState::Usable, Duration::from_secs(60)).await;
    assert!(answered_by_standby(&router).await);
    // A replica URL pointing at a primary is not a standby: never used.
    let wrong = database_config(&pool, primary_url(&pool), 5000);
    let router = ReadRouter::connect(pool.clone(), &wrong).unwrap();
    wait_state(&router, ReplicaState::Down, Duration::from_secs(10)).await;
}

/// Waits until `ok(metrics)` holds, returning the metrics (bounded).
fn wait_metrics(env: &DaemonEnv, what: &str, within: Duration, ok: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + within;
    loop {
        let m = env.metrics();
        if ok(&m) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn readyz_body(env: &DaemonEnv) -> String {
    Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "2",
            &format!("http://127.0.0.1:{}/readyz", env.http_port),
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

async fn predictions(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM content.trend_predictions")
        .fetch_one(pool)
        .await
        .unwrap_or(0) // before the daemon migrated
}

const USABLE: &str = "tradepipe_postgres_replica_usable{replica=\"127.0.0.1:55433\"}";
const REPLICA_READS: &str = "tradepipe_postgres_reads_total{target=\"replica\"}";
const PRIMARY_READS: &str = "tradepipe_postgres_reads_total{target=\"primary\"}";

#[sqlx::test(migrations = false)]
#[ignore = "needs a streaming replica (scripts/test makes one)"]
async fn the_daemon_reads_from_the_replica_and_keeps_working_while_it_is_stopped(pool: PgPool) {
    let _turn = STANDBY.lock().await;
    assert!(
        replica_server().ends_with(":55433"),
        "the metric label below assumes the standby scripts/pg-replica makes"
    );
    let server = tradepipe_testkit::news_server::start(NewsServerConfig {
        pages_dir: std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/news/pages"),
        listen: "127.0.0.1:0".parse().unwrap(),
        sources: 1,
        oversized_bytes: 6 * 1024 * 1024,
    })
    .await
    .expect("news server");
    let sources_file = quick_sources_file(&server, "read-replica");
    // The 11 recorded minutes at 12x: a 1m candle closes every 5 s.
    let (_replay, port) = start_replay(&["--speed", "12"]);
    let mut env = DaemonEnv::new(&pool, port, "read-replica");
    env.extra_env.extend([
        (
            "TRADEPIPE_SOURCES_FILE".to_string(),
            sources_file.display().to_string(),
        ),
        // The server only: the test database and the user come from the primary's URL.
        ("TRADEPIPE_DATABASE_READ_URLS".into(), replica_server()),
        (
            "TRADEPIPE__DATABASE__REPLICA_CHECK_INTERVAL_MS".into(),
            "200".into(),
        ),
        (
            "TRADEPIPE__ANALYSIS__PREDICTION_INTERVAL_SECS".into(),
            "1".into(),
        ),
        ("TRADEPIPE__ANALYSIS__HORIZONS".into(), "[\"2m\"]".into()),
    ]);
    let mut daemon = env.start(&[]);

    // Reads on the standby: counted there, and the daemon's session is on it.
    wait_metrics(
        &env,
        "reads on the replica",
        Duration::from_secs(120),
        |m| metric_value(m, USABLE) == 1.0 && metric_value(m, REPLICA_READS) > 0.0,
    );
    let db = database_of(&pool);
    let standby = on_standby(&db).await.expect("the standby");
    let sessions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = $1 AND application_name = 'tradepipe' AND pid <> pg_backend_pid()",
    )
    .bind(&db)
    .fetch_one(&standby)
    .await
    .unwrap();
    standby.close().await;
    assert!(sessions >= 1, "no daemon session on the standby");
    assert!(
        readyz_body(&env).contains("replicas=1/1"),
        "{}",
        readyz_body(&env)
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while predictions(&pool).await == 0 {
        assert!(
            Instant::now() < deadline,
            "no prediction from replica reads"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // The standby stops: reads go to the primary, predictions go on, /readyz stays 200.
    let _restart = RestartOnDrop;
    replica_script("stop");
    let m = env.metrics();
    let (replica_reads, primary_reads) = (
        metric_value(&m, REPLICA_READS),
        metric_value(&m, PRIMARY_READS),
    );
    let made = predictions(&pool).await;
    wait_metrics(
        &env,
        "the replica out of use",
        Duration::from_secs(20),
        |m| metric_value(m, USABLE) == 0.0 && metric_value(m, PRIMARY_READS) > primary_reads,
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while predictions(&pool).await <= made {
        assert!(
            Instant::now() < deadline,
            "no prediction while the replica was stopped"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(env.http_status("/readyz"), 200);
    assert!(
        readyz_body(&env).contains("replicas=0/1"),
        "{}",
        readyz_body(&env)
    );
    assert_eq!(
        metric_value(&env.metrics(), REPLICA_READS),
        replica_reads,
        "no read answered by a stopped replica"
    );

    // Back: in use again.
    replica_script("start");
    wait_metrics(
        &env,
        "the replica back in use",
        Duration::from_secs(60),
        |m| metric_value(m, USABLE) == 1.0 && metric_value(m, REPLICA_READS) > replica_reads,
    );

    // The market path never noticed: every trade once, every candle exact.
    let trades = demo_trades();
    wait_for_ticks(&pool, trades.len() as i64, Duration::from_secs(180)).await;
    assert!(daemon.terminate(Duration::from_secs(60)).success());
    assert_exact(&pool, &trades).await;
}
