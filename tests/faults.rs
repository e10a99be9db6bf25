//! The fault suite (issue 6, docs/RELIABILITY.md): the real daemon binary against the replay
//! peer, the local news server, the real PostgreSQL and Redis, with one fault injected per test.
//! After each fault the same promises are checked: no panic in the daemon's log, no trade or
//! article lost or stored twice, memory bounded (peak RSS), and the daemon ready again.
//!
//! Outages are made with a TCP proxy in front of the real servers (other tests share them), the
//! exchange's misbehaviour with the replay peer's fault flags, the web's with the news server's
//! `--fault-pages`. Each test prints what it measured (`FAULT ...` lines) for the table in
//! docs/RELIABILITY.md.

use sqlx::{PgPool, Row};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tradepipe_testkit::news_server::{DEEP_SENTINEL, EntryKind, FaultPages, NewsServerConfig};
use tradepipe_testkit::support::*;

const WAIT: Duration = Duration::from_secs(240);
/// Generous: the debug daemon runs this workload in well under 100 MiB.
const MAX_RSS_KIB: u64 = 300 * 1024;
/// The outage length.
const OUTAGE: Duration = Duration::from_secs(30);

fn logged_env(pool: &PgPool, port: u16, tag: &str) -> DaemonEnv {
    let mut env = DaemonEnv::new(pool, port, tag);
    let log =
        std::env::temp_dir().join(format!("tradepipe-fault-{tag}-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    env.log_file = Some(log);
    env
}

/// Waits (bounded) until `/readyz` answers 200, i.e. PostgreSQL, Redis and the feed are all up.
async fn wait_ready(env: &DaemonEnv) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if env.http_status("/readyz") == 200 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "daemon not ready again: /readyz = {}",
            env.http_status("/readyz")
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The checks every fault ends with, on a still-running daemon: healthy, ready, memory bounded,
/// nothing panicked. Returns the peak RSS in KiB.
async fn assert_recovered(env: &DaemonEnv, daemon: &Proc, fault: &str) -> u64 {
    assert_eq!(env.http_status("/healthz"), 200, "{fault}: /healthz");
    wait_ready(env).await;
    let peak = daemon.peak_rss_kib().expect("daemon alive: VmHWM");
    assert!(
        peak < MAX_RSS_KIB,
        "{fault}: peak RSS {peak} KiB over {MAX_RSS_KIB} KiB"
    );
    assert_no_panic(env, fault);
    peak
}

fn assert_no_panic(env: &DaemonEnv, fault: &str) {
    let log = env.log();
    assert!(!log.is_empty(), "{fault}: the daemon's log was captured");
    if let Some(line) = log.lines().find(|l| l.contains("panicked")) {
        panic!("{fault}: the daemon panicked: {line}");
    }
}

/// Stops the daemon (SIGTERM, exit 0), then checks every trade is stored once with exact candles.
async fn stop_and_assert_exact(pool: &PgPool, env: &DaemonEnv, daemon: &mut Proc, fault: &str) {
    // Async: the fault proxies run on this runtime and must carry the daemon's final writes.
    assert!(
        daemon
            .terminate_async(Duration::from_secs(60))
            .await
            .success(),
        "{fault}: SIGTERM exits 0"
    );
    assert_no_panic(env, fault);
    assert_exact(pool, &demo_trades()).await;
}

async fn report(pool: &PgPool, fault: &str, peak_kib: u64, recovery: Option<Duration>) {
    let (trades, stored) = (demo_trades().len(), tick_count(pool).await);
    eprintln!(
        "FAULT {fault}: trades expected {trades}, stored {stored} (each once), peak RSS {:.1} MiB{}",
        peak_kib as f64 / 1024.0,
        recovery.map_or(String::new(), |d| format!(
            ", recovered (all stored, ready) {:.1} s after the fault ended",
            d.as_secs_f64()
        ))
    );
}

#[sqlx::test(migrations = false)]
async fn postgres_unreachable_30s_loses_nothing(pool: PgPool) {
    let trades = demo_trades();
    let proxy = FaultProxy::start("127.0.0.1:5432").await;
    // 30x: the 11-minute tape takes about 22 s, so trades keep arriving through the outage.
    let (_replay, port) = start_replay(&["--speed", "30"]);
    let mut env = logged_env(&pool, port, "pg30");
    env.db_url = env.db_url.replace(":5432/", &format!(":{}/", proxy.port));
    // A small memory bound so the outage goes through the disk spool too.
    env.extra_env.extend([
        (
            "TRADEPIPE__WRITER__MAX_BUFFERED_TICKS".into(),
            "5000".into(),
        ),
        ("TRADEPIPE__WRITER__BATCH_MAX_TICKS".into(), "2000".into()),
    ]);
    let mut daemon = env.start(&[]);
    wait_for_ticks(&pool, 3000, WAIT).await;
    proxy.set_down(true);
    let cut_at = tick_count(&pool).await;
    tokio::time::sleep(OUTAGE).await;
    let during = env.metrics();
    let ready_during = env.http_status("/readyz");
    proxy.set_down(false);
    let back = Instant::now();
    wait_for_ticks(&pool, trades.len() as i64, WAIT).await;
    let recovery = back.elapsed();
    let peak = assert_recovered(&env, &daemon, "postgres down 30 s").await;
    stop_and_assert_exact(&pool, &env, &mut daemon, "postgres down 30 s").await;
    assert!(
        metric_value(
            &during,
            "tradepipe_writer_errors_total{kind=\"unavailable\"}"
        ) > 0.0,
        "the outage was noticed:\n{during}"
    );
    assert_eq!(ready_during, 503, "not ready while PostgreSQL is away");
    eprintln!(
        "FAULT postgres down 30 s: cut after {cut_at} ticks stored; spool batches at the end of the outage {}",
        metric_sum(&during, "tradepipe_spool_batches")
    );
    report(&pool, "postgres down 30 s", peak, Some(recovery)).await;
}

#[sqlx::test(migrations = false)]
async fn redis_unreachable_30s_keeps_persisting_and_is_ready_again_without_traffic(pool: PgPool) {
    let trades = demo_trades();
    let proxy = FaultProxy::start("127.0.0.1:6379").await;
    let (_replay, port) = start_replay(&["--speed", "30"]);
    let mut env = logged_env(&pool, port, "redis30");
    env.redis_via(proxy.port);
    let mut daemon = env.start(&[]);
    wait_for_ticks(&pool, 3000, WAIT).await;
    proxy.set_down(true);
    let cut = Instant::now();
    // Persistence does not wait for Redis: every trade is stored while it is away. The outage
    // lasts 30 s, or until the whole tape is stored if that takes longer, so no update is left
    // to flow once Redis is back.
    wait_for_ticks(&pool, trades.len() as i64, WAIT).await;
    let outage = cut.elapsed().max(OUTAGE);
    tokio::time::sleep(OUTAGE.saturating_sub(cut.elapsed())).await;
    let during = env.metrics();
    let ready_during = env.http_status("/readyz");
    proxy.set_down(false);
    let back = Instant::now();
    let peak = assert_recovered(&env, &daemon, "redis down 30 s").await;
    let recovery = back.elapsed();
    stop_and_assert_exact(&pool, &env, &mut daemon, "redis down 30 s").await;
    assert!(
        metric_sum(&during, "tradepipe_redis_unpublished_total") > 0.0,
        "unpublished updates counted:\n{during}"
    );
    assert_eq!(ready_during, 503, "not ready while Redis is away");
    // The tape ended during the outage, so no update could mark Redis healthy again: readiness
    // came back from the publisher's own probe (it stayed 503 forever before). Publishing
    // resuming with traffic is market_e2e's redis_outage_keeps_persisting_and_counts_unpublished.
    eprintln!(
        "FAULT redis down 30 s: outage {:.1} s, every trade stored during it; unpublished {}",
        outage.as_secs_f64(),
        metric_sum(&during, "tradepipe_redis_unpublished_total")
    );
    report(&pool, "redis down 30 s", peak, Some(recovery)).await;
}

#[sqlx::test(migrations = false)]
async fn kill_9_with_feed_drops_recovers_exactly(pool: PgPool) {
    let trades = demo_trades();
    // The feed drops every 3000 messages (100 trades missed each time) AND the daemon is killed
    // (-9) mid-run: both kinds of hole are filled from REST and the stored state.
    let (_replay, port) = start_replay(&["--speed", "60", "--drop-every", "3000"]);
    let env = logged_env(&pool, port, "kill9drops");
    let mut daemon = env.start(&[]);
    wait_for_ticks(&pool, 8000, WAIT).await;
    let peak_before = daemon.peak_rss_kib().unwrap_or(0);
    daemon.kill9();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let restarted = Instant::now();
    let mut daemon = env.start(&[]);
    wait_for_ticks(&pool, trades.len() as i64, WAIT).await;
    let recovery = restarted.elapsed();
    let peak = assert_recovered(&env, &daemon, "kill -9 + feed drops").await;
    let metrics = env.metrics();
    stop_and_assert_exact(&pool, &env, &mut daemon, "kill -9 + feed drops").await;
    assert!(
        metric_sum(&metrics, "tradepipe_feed_backfilled_trades_total") > 0.0,
        "drops were backfilled:\n{metrics}"
    );
    report(
        &pool,
        "kill -9 + feed drops",
        peak.max(peak_before),
        Some(recovery),
    )
    .await;
}

#[sqlx::test(migrations = false)]
async fn stalled_websocket_is_detected_and_backfilled(pool: PgPool) {
    let trades = demo_trades();
    // After 20,000 messages the peer goes silent (no data, no pings) with the socket open.
    let (_replay, port) = start_replay(&["--max", "--stall-after", "20000"]);
    let mut env = logged_env(&pool, port, "stall");
    env.extra_env
        .push(("TRADEPIPE__BINANCE__STALL_TIMEOUT_SECS".into(), "2".into()));
    let mut daemon = env.start(&[]);
    let started = Instant::now();
    wait_for_ticks(&pool, trades.len() as i64, WAIT).await;
    let took = started.elapsed();
    let peak = assert_recovered(&env, &daemon, "stalled websocket").await;
    let metrics = env.metrics();
    stop_and_assert_exact(&pool, &env, &mut daemon, "stalled websocket").await;
    assert!(
        metric_value(
            &metrics,
            "tradepipe_feed_reconnects_total{reason=\"stalled\"}"
        ) >= 1.0,
        "the stall was detected:\n{metrics}"
    );
    assert!(
        metric_sum(&metrics, "tradepipe_feed_backfilled_trades_total") > 0.0,
        "what the stalled connection never sent came from REST:\n{metrics}"
    );
    eprintln!(
        "FAULT stalled websocket: backfilled {} trades; whole tape stored {:.1} s after start",
        metric_sum(&metrics, "tradepipe_feed_backfilled_trades_total"),
        took.as_secs_f64()
    );
    report(&pool, "stalled websocket", peak, None).await;
}

#[sqlx::test(migrations = false)]
async fn malformed_and_oversized_frames_are_counted_and_skipped(pool: PgPool) {
    let trades = demo_trades();
    // A malformed message after every 1,000 trades; an 8 MiB frame after every 15,000.
    let (_replay, port) = start_replay(&[
        "--max",
        "--malformed-every",
        "1000",
        "--oversized-every",
        "15000",
        "--oversized-bytes",
        &(8 << 20).to_string(),
    ]);
    let env = logged_env(&pool, port, "garbage");
    let mut daemon = env.start(&[]);
    wait_for_ticks(&pool, trades.len() as i64, WAIT).await;
    let peak = assert_recovered(&env, &daemon, "malformed and oversized frames").await;
    let metrics = env.metrics();
    stop_and_assert_exact(&pool, &env, &mut daemon, "malformed and oversized frames").await;
    let malformed = metric_sum(&metrics, "tradepipe_feed_messages_malformed_total");
    let too_large = metric_value(
        &metrics,
        "tradepipe_feed_reconnects_total{reason=\"message_too_large\"}",
    );
    // The first connection surely delivers 15 malformed messages, then the first oversized
    // frame (counted too); later connections add more, depending on how far the tape got while
    // the daemon backfilled. Each oversized frame is refused before its payload is buffered.
    assert!(malformed >= 16.0, "malformed messages counted:\n{metrics}");
    assert!(
        too_large >= 1.0,
        "oversized frames refused by the size limit (not parsed):\n{metrics}"
    );
    // A malformed message is skipped, not a reason to drop the connection.
    assert_eq!(
        metric_value(
            &metrics,
            "tradepipe_feed_reconnects_total{reason=\"error\"}"
        ),
        0.0,
        "{metrics}"
    );
    eprintln!(
        "FAULT malformed/oversized frames: malformed counted {malformed}, reconnects for oversized frames {too_large}"
    );
    report(&pool, "malformed and oversized frames", peak, None).await;
}

#[sqlx::test(migrations = false)]
async fn hostile_pages_fail_alone_and_every_article_lands_once(pool: PgPool) {
    // Slow-loris, a 1 GiB body, a gzip bomb inflating to 1 GiB, and an article inside 100,000
    // nested divs with invalid UTF-8, next to the real pages (and the existing oversized and
    // malformed ones).
    let server = tradepipe_testkit::news_server::start_with_faults(
        NewsServerConfig {
            pages_dir: std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/news/pages"),
            listen: "127.0.0.1:0".parse().expect("addr"),
            sources: 2,
            oversized_bytes: 6 * 1024 * 1024,
        },
        FaultPages {
            enabled: true,
            endless_bytes: 1 << 30,
        },
    )
    .await
    .expect("news server");
    let sources_file = quick_sources_file(&server, "faults-news");
    let (entries, fetchable) = listed_entries(&server);
    let articles_expected = entries
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                EntryKind::Page
                    | EntryKind::Redirect
                    | EntryKind::Malformed
                    | EntryKind::DeepNesting
            )
        })
        .count() as i64;

    let (_replay, port) = start_replay(&["--max"]);
    let mut env = logged_env(&pool, port, "hostile-web");
    env.extra_env.extend([
        (
            "TRADEPIPE_SOURCES_FILE".to_string(),
            sources_file.display().to_string(),
        ),
        ("TRADEPIPE__NEWS__POLL_INTERVAL_MS".into(), "200".into()),
        // A slow-loris page must cost seconds, not the default 15 s per attempt.
        ("TRADEPIPE__NEWS__REQUEST_TIMEOUT_MS".into(), "2000".into()),
        ("TRADEPIPE__NEWS__MAX_RETRIES".into(), "1".into()),
        ("TRADEPIPE__NEWS__RETRY_BACKOFF_MS".into(), "100".into()),
    ]);
    let mut daemon = env.start(&[]);
    let started = Instant::now();
    let counts = wait_for_crawl(&pool, fetchable, Duration::from_secs(240)).await;
    let took = started.elapsed();
    let peak = assert_recovered(&env, &daemon, "hostile web pages").await;
    let metrics = env.metrics();
    assert!(daemon.terminate(Duration::from_secs(60)).success());
    assert_no_panic(&env, "hostile web pages");

    // Each hostile page failed for good with its reason; nothing was stored truncated.
    let failed: HashMap<String, (String, String, i64)> = sqlx::query(
        "SELECT url, processing_status, coalesce(error_message, ''), length(raw_html) \
         FROM content.raw_articles WHERE processing_status = 'FAILED'",
    )
    .fetch_all(&pool)
    .await
    .expect("failed pages")
    .into_iter()
    .map(|r| {
        (
            r.get::<String, _>(0),
            (r.get(1), r.get(2), r.get::<i32, _>(3) as i64),
        )
    })
    .collect();
    let reason = |name: &str| {
        failed
            .iter()
            .find(|(url, _)| url.ends_with(&format!("/articles/{name}")))
            .map(|(_, (_, e, len))| {
                assert_eq!(*len, 0, "{name}: nothing stored truncated");
                e.clone()
            })
            .unwrap_or_else(|| panic!("{name} not stored as FAILED: {failed:?}"))
    };
    let slow = reason("slow-loris");
    assert!(slow.starts_with("timeout"), "slow-loris: {slow}");
    for name in ["endless", "gzip-bomb", "oversized"] {
        let e = reason(name);
        assert!(e.starts_with("too_large"), "{name}: {e}");
    }
    assert_eq!(failed.len(), 4, "only the hostile pages failed: {failed:?}");
    // The fetcher stopped reading at its cap: 2 GiB were on offer.
    let offered_read = server.hostile_bytes_sent();
    assert!(
        offered_read < 64 << 20,
        "{offered_read} bytes of the endless page and gzip bomb were sent"
    );
    assert!(
        metric_value(
            &metrics,
            "tradepipe_crawl_errors_total{source=\"local-1\",kind=\"timeout\"}"
        ) >= 1.0,
        "slow-loris counted as a timeout:\n{metrics}"
    );
    assert!(
        metric_value(
            &metrics,
            "tradepipe_crawl_errors_total{source=\"local-1\",kind=\"too_large\"}"
        ) >= 3.0,
        "capped bodies counted:\n{metrics}"
    );

    // Every other page became exactly one article, the deep one with its text.
    let (raw, raw_distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT url_hash) FROM content.raw_articles")
            .fetch_one(&pool)
            .await
            .expect("raw count");
    assert_eq!((raw, raw_distinct), (fetchable, fetchable), "{counts:?}");
    let (articles, articles_distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT url_hash) FROM content.articles")
            .fetch_one(&pool)
            .await
            .expect("article count");
    assert_eq!(articles, articles_distinct, "no article twice");
    assert_eq!(articles, articles_expected, "{counts:?}");
    let deep_body: String = sqlx::query_scalar(
        "SELECT a.body FROM content.articles a JOIN content.raw_articles r USING (url_hash) \
         WHERE r.url LIKE '%/articles/deep'",
    )
    .fetch_one(&pool)
    .await
    .expect("the deep page became an article");
    assert!(deep_body.contains(DEEP_SENTINEL), "{deep_body}");
    assert!(
        deep_body.contains('\u{fffd}'),
        "invalid bytes decoded lossily"
    );
    eprintln!(
        "FAULT hostile web pages: {articles} of {articles_expected} articles, 4 hostile pages FAILED \
         (timeout, too_large x3), {offered_read} of 2 GiB offered bytes sent, crawl done in {:.1} s, peak RSS {:.1} MiB",
        took.as_secs_f64(),
        peak as f64 / 1024.0
    );
    let _ = std::fs::remove_file(&sources_file);
}
