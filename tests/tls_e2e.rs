//! TLS to every engine the market pipeline uses (issue 16): the real daemon replays the real
//! trades into PostgreSQL over `sslmode=verify-full` (this machine's server, `ssl = on` with its
//! self-signed certificate for `localhost`) and publishes to a `redis-server` that listens on TLS
//! only, with a certificate from a CA the test makes. Every trade lands exactly once, the candles
//! reach Redis, and every PostgreSQL session the daemon opened is encrypted. A Redis CA that did
//! not sign the server's certificate fails at once, saying so.

use redis::AsyncCommands;
use sqlx::PgPool;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tradepipe::config::{RedisTarget, RedisTls, Secret};
use tradepipe_testkit::support::*;
use tradepipe_testkit::tls::{TestCa, TlsRedis};

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tp-tls-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn tls_target(url: &str, ca: &std::path::Path) -> RedisTarget {
    RedisTarget::new(
        Secret(url.to_string()),
        RedisTls {
            ca_file: Some(ca.to_path_buf()),
            ..RedisTls::default()
        },
    )
}

#[sqlx::test(migrations = false)]
async fn the_market_pipeline_runs_over_verify_full_postgres_and_tls_redis(pool: PgPool) {
    let (pg_ssl, pg_cert): (String, String) =
        sqlx::query_as("SELECT current_setting('ssl'), current_setting('ssl_cert_file')")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(pg_ssl, "on", "this test needs PostgreSQL with ssl = on");
    let ca = TestCa::make(&temp_dir("e2e"), "e2e");
    let redis = TlsRedis::start(&ca);

    let trades = demo_trades();
    let (_replay, port) = start_replay(&["--max"]);
    let mut env = DaemonEnv::new(&pool, port, "tls");
    // The same database, by the certificate's name, verified against the server's certificate.
    let (base, db) = env.db_url.rsplit_once('/').unwrap();
    let port_pg = base.rsplit_once(':').map(|(_, p)| p).unwrap_or("5432");
    let tls_db_url = format!(
        "postgres://postgres@localhost:{port_pg}/{db}?sslmode=verify-full&sslrootcert={pg_cert}"
    );
    env.extra_env.extend([
        ("TRADEPIPE_DATABASE_URL".to_string(), tls_db_url),
        ("TRADEPIPE_REDIS_URL".to_string(), redis.url()),
        (
            "TRADEPIPE__REDIS__TLS__CA_FILE".to_string(),
            ca.ca_cert.display().to_string(),
        ),
    ]);
    let mut daemon = env.start(&[]);
    wait_for_ticks(&pool, trades.len() as i64, Duration::from_secs(180)).await;
    // The daemon's own sessions (application_name "tradepipe"), seen while it runs.
    let (sessions, encrypted): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE s.ssl)
         FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
         WHERE a.datname = current_database() AND a.application_name = 'tradepipe'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let metrics = env.metrics();
    assert!(daemon.terminate(Duration::from_secs(30)).success());
    assert!(sessions >= 1, "no daemon session seen");
    assert_eq!(encrypted, sessions, "a daemon session is not encrypted");
    assert_exact(&pool, &trades).await;
    assert_eq!(
        metric_value(&metrics, "tradepipe_redis_up"),
        1.0,
        "the Redis probe reached the TLS server"
    );

    // Redis got the candles, over TLS (the server has no plain port).
    let client = tls_target(&redis.url(), &ca.ca_cert).client().unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{}price:candles:BTCUSDT:1m", env.redis_prefix);
    let members: i64 = con.zcard(&key).await.unwrap();
    let minutes = reference_candles(&trades)
        .keys()
        .filter(|(s, i, _)| s == "BTCUSDT" && i == "1m")
        .count() as i64;
    assert_eq!(members, minutes, "one 1m candle per minute reached Redis");
    let _ = std::fs::remove_dir_all(&ca.dir);
}

#[tokio::test]
async fn a_redis_ca_that_did_not_sign_the_server_fails_at_once_and_says_why() {
    let ca = TestCa::make(&temp_dir("right"), "right");
    let other = TestCa::make(&temp_dir("other"), "other");
    let redis = TlsRedis::start(&ca);

    let right = tls_target(&redis.url(), &ca.ca_cert).client().unwrap();
    let mut con = right.get_multiplexed_async_connection().await.unwrap();
    let pong: String = redis::cmd("PING").query_async(&mut con).await.unwrap();
    assert_eq!(pong, "PONG");

    let wrong = tls_target(&redis.url(), &other.ca_cert).client().unwrap();
    let started = Instant::now();
    let err = match wrong.get_multiplexed_async_connection().await {
        Ok(_) => panic!("a certificate the CA did not sign was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(err.to_lowercase().contains("certificate"), "{err}");

    // Plain redis:// to a TLS-only port does not pass for a connection either.
    let plain = RedisTarget::from_url(&format!("redis://localhost:{}/0", redis.port))
        .client()
        .unwrap();
    let plain_ok = tokio::time::timeout(Duration::from_secs(5), async {
        let mut c = plain.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut c).await
    })
    .await;
    assert!(
        !matches!(plain_ok, Ok(Ok(_))),
        "plain text reached a TLS-only server"
    );
    for dir in [&ca.dir, &other.dir] {
        let _ = std::fs::remove_dir_all(dir);
    }
}
