//! End to end: the real daemon binary against the real replay peer (Binance's wire format), the
//! real PostgreSQL and Redis, with the real Binance spot trades of `data/demo`. Each test gets a
//! fresh database (`#[sqlx::test]`) and its own Redis key prefix.

use redis::AsyncCommands;
use sqlx::PgPool;
use std::time::Duration;
use tradepipe_testkit::support::*;

const WAIT: Duration = Duration::from_secs(180);

#[sqlx::test(migrations = false)]
async fn replay_lands_every_trade_once_with_exact_candles(pool: PgPool) {
    let trades = demo_trades();
    let (_replay, port) = start_replay(&["--max"]);
    let env = DaemonEnv::new(&pool, port, "exact");
    let mut daemon = env.start(&[]);
    wait_for_ticks(&pool, trades.len() as i64, WAIT).await;
    let metrics = env.metrics();
    assert!(
        daemon.terminate(Duration::from_secs(30)).success(),
        "SIGTERM exits 0"
    );
    assert_exact(&pool, &trades).await;

    // Metrics were exported while it ran, with the trades counted per symbol.
    assert!(
        metrics.contains("tradepipe_trades_received_total{symbol=\"BTCUSDT\"}"),
        "{metrics}"
    );

    // Redis: one sorted-set member per 1m open time, equal to the reference candle.
    let client = redis::Client::open(env.redis_url()).expect("redis url");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let key = format!("{}price:candles:BTCUSDT:1m", env.redis_prefix);
    let members: Vec<(String, f64)> = con.zrange_withscores(&key, 0, -1).await.expect("zrange");
    let reference = reference_candles(&trades);
    let expected_1m: Vec<_> = reference
        .iter()
        .filter(|((s, i, _), _)| s == "BTCUSDT" && i == "1m")
        .collect();
    assert_eq!(members.len(), expected_1m.len(), "one member per minute");
    for ((member, score), ((_, _, open), want)) in members.iter().zip(expected_1m) {
        assert_eq!(*score as i64, *open);
        let v: serde_json::Value = serde_json::from_str(member).expect("candle json");
        assert_eq!(
            v["c"].to_string(),
            want.close.normalize().to_string(),
            "close of {open}"
        );
        assert_eq!(
            v["v"].to_string(),
            want.volume.normalize().to_string(),
            "volume of {open}"
        );
        assert_eq!(v["n"].as_i64(), Some(want.trade_count), "count of {open}");
    }
    let stream_len: i64 = con
        .xlen(format!("{}price:ticks:BTCUSDT", env.redis_prefix))
        .await
        .expect("xlen");
    assert!(
        (1000..1200).contains(&stream_len),
        "ticks stream trimmed near 1000, got {stream_len}"
    );
    env.delete_redis_keys().await;
}

#[sqlx::test(migrations = false)]
async fn dropped_connections_are_backfilled_exactly(pool: PgPool) {
    let trades = demo_trades();
    // Every 3000 messages the peer closes the connection, and 100 trades "happen" before the
    // client is back: they only exist on REST.
    let (_replay, port) = start_replay(&["--max", "--drop-every", "3000", "--drop-skip", "100"]);
    let env = DaemonEnv::new(&pool, port, "drops");
    let mut daemon = env.start(&[]);
    wait_for_ticks(&pool, trades.len() as i64, WAIT).await;
    let metrics = env.metrics();
    assert!(daemon.terminate(Duration::from_secs(30)).success());
    assert_exact(&pool, &trades).await;
    assert!(
        metrics.contains("tradepipe_feed_backfilled_trades_total"),
        "backfill happened:\n{metrics}"
    );
}

#[sqlx::test(migrations = false)]
async fn kill_9_mid_run_then_restart_is_exact(pool: PgPool) {
    let trades = demo_trades();
    // Paced (60x: the 11-minute tape in about 11 s) so the kill lands mid-interval and trades
    // keep happening while the daemon is dead.
    let (_replay, port) = start_replay(&["--speed", "60"]);
    let env = DaemonEnv::new(&pool, port, "kill9");
    let mut daemon = env.start(&[]);
    wait_for_ticks(&pool, 6000, WAIT).await;
    daemon.kill9();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut daemon = env.start(&[]);
    wait_for_ticks(&pool, trades.len() as i64, WAIT).await;
    assert!(daemon.terminate(Duration::from_secs(30)).success());
    assert_exact(&pool, &trades).await;
}

#[sqlx::test(migrations = false)]
async fn postgres_outage_mid_run_loses_nothing(pool: PgPool) {
    let trades = demo_trades();
    let proxy = FaultProxy::start("127.0.0.1:5432").await;
    let (_replay, port) = start_replay(&["--speed", "60"]);
    let mut env = DaemonEnv::new(&pool, port, "pgdown");
    // The daemon reaches PostgreSQL only through the proxy; a small memory bound forces the spool.
    env.db_url = env.db_url.replace(":5432/", &format!(":{}/", proxy.port));
    env.extra_env.push((
        "TRADEPIPE__WRITER__MAX_BUFFERED_TICKS".into(),
        "5000".into(),
    ));
    // Transactions smaller than that bound (the configuration refuses the reverse).
    env.extra_env
        .push(("TRADEPIPE__WRITER__BATCH_MAX_TICKS".into(), "2000".into()));
    let mut daemon = env.start(&[]);
    wait_for_ticks(&pool, 3000, WAIT).await;
    proxy.set_down(true);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let during = env.metrics();
    proxy.set_down(false);
    wait_for_ticks(&pool, trades.len() as i64, WAIT).await;
    // The proxy runs on this test's runtime: a blocking wait would freeze the daemon's path to
    // PostgreSQL for its final write (the open candles it still holds).
    assert!(
        daemon
            .terminate_async(Duration::from_secs(30))
            .await
            .success()
    );
    assert_exact(&pool, &trades).await;
    assert!(
        during.contains("tradepipe_writer_errors_total{kind=\"unavailable\"}"),
        "the outage was noticed:\n{during}"
    );
}

#[sqlx::test(migrations = false)]
async fn redis_outage_keeps_persisting_and_counts_unpublished(pool: PgPool) {
    let trades = demo_trades();
    let proxy = FaultProxy::start("127.0.0.1:6379").await;
    let (_replay, port) = start_replay(&["--speed", "60"]);
    let mut env = DaemonEnv::new(&pool, port, "redisdown");
    env.extra_env.push((
        "TRADEPIPE_REDIS_URL".into(),
        format!("redis://127.0.0.1:{}", proxy.port),
    ));
    let mut daemon = env.start(&[]);
    wait_for_ticks(&pool, 3000, WAIT).await;
    proxy.set_down(true);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let during = env.metrics();
    proxy.set_down(false);
    wait_for_ticks(&pool, trades.len() as i64, WAIT).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = env.metrics();
    assert!(
        daemon
            .terminate_async(Duration::from_secs(30))
            .await
            .success()
    );
    assert_exact(&pool, &trades).await;
    assert!(
        during.contains("tradepipe_redis_unpublished_total"),
        "unpublished updates counted:\n{during}"
    );
    // Publishing resumed: the latest price key was written after the outage.
    let client = redis::Client::open(env.redis_url()).expect("redis url");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let members: i64 = con
        .zcard(format!("{}price:candles:BTCUSDT:1m", env.redis_prefix))
        .await
        .expect("zcard");
    assert!(
        members > 0,
        "candles published after Redis came back; metrics:\n{after}"
    );
}
