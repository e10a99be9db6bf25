//! End to end for news: the real daemon binary crawls the local news server (real pages, RSS,
//! Atom and an HTML listing, robots.txt, a redirect, an oversized and a malformed page) into the
//! real PostgreSQL document store and normalizes what it stored. Two instances share the
//! database and the Redis lock prefix, and one of them is killed (-9) mid-crawl and restarted:
//! every page is still fetched, stored and normalized exactly once.

use sqlx::PgPool;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tradepipe_testkit::news_server::{EntryKind, NewsServerConfig};
use tradepipe_testkit::support::*;

#[sqlx::test(migrations = false)]
async fn two_instances_and_a_kill_9_crawl_every_article_exactly_once(pool: PgPool) {
    let server = tradepipe_testkit::news_server::start(NewsServerConfig {
        pages_dir: std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/news/pages"),
        listen: "127.0.0.1:0".parse().unwrap(),
        sources: 3,
        oversized_bytes: 6 * 1024 * 1024,
    })
    .await
    .expect("news server");
    // The generated sources, made quicker (still paced) so the test takes seconds.
    let sources_file = quick_sources_file(&server, "news-e2e");
    let (entries, fetchable) = listed_entries(&server);
    let good: Vec<_> = entries
        .iter()
        .filter(|e| matches!(e.kind, EntryKind::Page | EntryKind::Redirect))
        .collect();
    assert!(good.len() >= 15, "the server lists the real pages");

    let (_replay_a, port_a) = start_replay(&["--max"]);
    let (_replay_b, port_b) = start_replay(&["--max"]);
    let mut env_a = DaemonEnv::new(&pool, port_a, "news-a");
    let mut env_b = DaemonEnv::new(&pool, port_b, "news-b");
    env_b.redis_prefix = env_a.redis_prefix.clone(); // one lock namespace: the same deployment
    for env in [&mut env_a, &mut env_b] {
        env.extra_env.extend([
            (
                "TRADEPIPE_SOURCES_FILE".to_string(),
                sources_file.display().to_string(),
            ),
            // A killed instance's lock and claims expire quickly in the test.
            ("TRADEPIPE__NEWS__LOCK_TTL_SECS".into(), "3".into()),
            ("TRADEPIPE__NEWS__CLAIM_LEASE_SECS".into(), "3".into()),
            ("TRADEPIPE__NEWS__POLL_INTERVAL_MS".into(), "200".into()),
        ]);
    }

    let mut a = env_a.start(&[]);
    // Let A store a few pages, then kill it mid-crawl (its lock and claims are left behind).
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let stored: i64 = raw_status_counts(&pool).await.values().sum();
        if stored >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "instance A stored nothing");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    a.kill9();
    let mut b = env_b.start(&[]);
    let mut a = env_a.start(&[]);

    let counts = wait_for_crawl(&pool, fetchable, Duration::from_secs(180)).await;
    assert!(a.terminate(Duration::from_secs(30)).success());
    assert!(b.terminate(Duration::from_secs(30)).success());

    // Each page once: raw pages and articles unique by url_hash, one article per completed page.
    let (raw, raw_distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT url_hash) FROM content.raw_articles")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        raw, fetchable,
        "one raw article per fetchable listed page: {counts:?}"
    );
    assert_eq!(raw, raw_distinct);
    let (articles, articles_distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT url_hash) FROM content.articles")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(articles, articles_distinct);
    assert_eq!(
        articles,
        counts.get("COMPLETED").copied().unwrap_or(0),
        "{counts:?}"
    );
    assert!(
        articles >= good.len() as i64,
        "every real page became an article: {counts:?}"
    );

    // The oversized page failed for good, with its reason kept.
    let oversized: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT processing_status, error_message FROM content.raw_articles WHERE url LIKE '%oversized%'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(
        !oversized.is_empty() && oversized.iter().all(|(s, e)| s == "FAILED" && e.is_some()),
        "{oversized:?}"
    );

    // Real articles have their text, and no page was fetched twice except one in flight at
    // the kill.
    let empty: i64 =
        sqlx::query_scalar("SELECT count(*) FROM content.articles WHERE length(body) < 200")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(
        empty <= 1,
        "{empty} articles without a body (only the malformed page may be short)"
    );
    let mut gets: HashMap<String, usize> = HashMap::new();
    for r in server.requests() {
        *gets.entry(r.path).or_default() += 1;
    }
    for e in &good {
        let n = gets.get(&e.path).copied().unwrap_or(0);
        assert!((1..=2).contains(&n), "{} fetched {n} times", e.path);
    }
    // A killed instance may have fetched but not yet stored one page per source it was
    // crawling (its crawlers run in parallel); those, and only those, are fetched again.
    let sources = server.sources().len();
    let twice = good
        .iter()
        .filter(|e| gets.get(&e.path).copied().unwrap_or(0) > 1)
        .count();
    assert!(
        twice <= sources,
        "{twice} pages fetched twice; at most one in flight per source ({sources}) at the kill"
    );
    assert!(
        !gets.keys().any(|p| p.starts_with("/private/")),
        "robots.txt disallows /private/"
    );
    let _ = std::fs::remove_file(&sources_file);
}
