//! The data lifecycle against a real PostgreSQL (a fresh database per test): data spread over two
//! years, one pass, and exactly the rows past each policy gone, each of them in an archive whose
//! manifest matches; failures in the middle of a pass leave no row deleted without its archive;
//! a second pass does nothing; a dry run changes nothing.
//! Set DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/postgres).

use chrono::{DateTime, TimeZone, Utc};
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tradepipe::config::RedisTarget;
use tradepipe::config::RetentionConfig;
use tradepipe::lifecycle::archive::Archive;
use tradepipe::lifecycle::{Lifecycle, PassReport, PolicyReport};
use tradepipe::store::SessionStore;
use tradepipe::store::redis::RedisSessionStore;

/// Mid-morning, so that the day-granular cutoffs differ from the exact ones.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
}

fn archive_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tp-retention-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// The seed's ages, except where two years of data would otherwise show nothing: 5m+ candles
/// 540 days, articles 400 days and archived (to hold a UUID-keyed table with generated columns
/// to the same archive contract).
fn config(dir: &Path, batch: usize) -> RetentionConfig {
    let mut c = RetentionConfig {
        archive_dir: dir.to_path_buf(),
        batch_size: batch,
        ..RetentionConfig::default()
    };
    c.candles_5m_plus.max_age_hours = 540 * 24;
    c.articles.max_age_hours = 400 * 24;
    c.articles.archive = true;
    c
}

fn lifecycle(pool: &PgPool, cfg: RetentionConfig) -> Lifecycle {
    tradepipe_testkit::support::pg_lifecycle(pool, cfg)
}

/// Two years of candles (1m every 6 h, 1h every 8 h, 1d daily, two symbols), ticks in four daily
/// partitions, raw pages and articles every 5 days (some articles without a published date).
async fn seed(pool: &PgPool) {
    let now = now();
    let sql = [
        "INSERT INTO trading.symbols (id, base_asset, quote_asset) VALUES
             ('BTCUSDT', 'BTC', 'USDT'), ('ETHUSDT', 'ETH', 'USDT')",
        "INSERT INTO trading.price_candles
             (symbol_id, interval, open_time, close_time, open, high, low, close, volume,
              quote_volume, trade_count, first_trade_id, last_trade_id, is_closed)
         SELECT s, iv, t, t + step - interval '1 millisecond', 60123.45000000, 60200.1, 60000.00000001,
                60100.5, 1.23456789, 74123.4567890123456789, 7, n * 10, n * 10 + 6, true
         FROM unnest(ARRAY['BTCUSDT', 'ETHUSDT']) s,
              (VALUES ('1m', interval '1 minute', interval '6 hours'),
                      ('1h', interval '1 hour', interval '8 hours'),
                      ('1d', interval '1 day', interval '1 day')) v(iv, step, every),
              LATERAL generate_series(date_trunc('day', $1::timestamptz) - interval '730 days',
                                      $1::timestamptz, every) WITH ORDINALITY g(t, n)",
        "SELECT trading.ensure_tick_partition(($1::timestamptz - d * interval '1 day')::date)
         FROM generate_series(0, 3) d",
        "INSERT INTO trading.price_ticks (symbol_id, trade_id, price, quantity, timestamp, is_buyer_maker)
         SELECT 'BTCUSDT', n, 60000.12345678, 0.001, date_trunc('day', $1::timestamptz) - interval '3 days'
                + n * interval '5 minutes', n % 2 = 0
         FROM generate_series(0, 3 * 288 + 100) n",
        "INSERT INTO content.raw_articles (url, url_hash, source_name, raw_html, http_status, crawled_at)
         SELECT 'https://news.example/' || n, encode(sha256(('u' || n)::bytea), 'hex'), 'example',
                '<html>' || n || '</html>', 200, $1::timestamptz - n * interval '5 days' - interval '1 hour'
         FROM generate_series(0, 145) n",
        "INSERT INTO content.articles (url, url_hash, title, body, source_name, published_at,
                                       crawled_at, raw_article_id, doc, symbols)
         SELECT r.url, r.url_hash, 'Title ' || n, 'Body ' || n, 'example',
                CASE WHEN n % 3 = 0 THEN NULL ELSE r.crawled_at - interval '2 hours' END,
                r.crawled_at, r.id, jsonb_build_object('n', n), ARRAY['BTCUSDT']
         FROM content.raw_articles r, LATERAL (SELECT regexp_replace(r.url, '^.*/', '')::int AS n) x",
    ];
    for s in sql {
        sqlx::query(s).bind(now).execute(pool).await.unwrap();
    }
}

/// Every row a policy should remove, as the JSON an archive line holds.
async fn rows_json(pool: &PgPool, table: &str, cond: &str) -> HashSet<String> {
    let sql = format!(
        "SELECT (to_jsonb(t) - ARRAY['search', 'status'])::text FROM {table} t WHERE {cond}"
    );
    let rows: Vec<String> = sqlx::query_scalar(&sql).fetch_all(pool).await.unwrap();
    let set: HashSet<String> = rows.iter().cloned().collect();
    assert_eq!(set.len(), rows.len());
    set
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

/// Every line of every archived file of a policy, checked against the manifest, with how often
/// it occurs.
fn archived(dir: &Path, policy: &str) -> HashMap<String, usize> {
    tradepipe_testkit::support::archived_lines(dir, policy)
}

/// The policy's archive holds exactly `expected`, each row once, in files others cannot read.
fn archived_exactly_once(dir: &Path, policy: &str, expected: &HashSet<String>) {
    // Archives hold archived rows (sessions among them): nothing is open to others, whatever
    // the umask (the tests run under the default 022).
    tradepipe_testkit::support::assert_no_permission_bits(dir, 0o007);
    let a = archived(dir, policy);
    assert_eq!(&a.keys().cloned().collect::<HashSet<_>>(), expected);
    assert!(
        a.values().all(|n| *n == 1),
        "{policy}: a row was archived twice"
    );
}

/// Makes deleting candles matching `condition` fail, as a database error in the middle of a
/// pass would.
async fn refuse_deletes(pool: &PgPool, condition: &str) {
    sqlx::raw_sql(&format!(
        "CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF {condition} THEN RAISE EXCEPTION 'simulated failure'; END IF; RETURN OLD; END $$;
         CREATE TRIGGER test_refuse BEFORE DELETE ON trading.price_candles
             FOR EACH ROW EXECUTE FUNCTION test_refuse();"
    ))
    .execute(pool)
    .await
    .unwrap();
}

async fn allow_deletes(pool: &PgPool) {
    sqlx::raw_sql("DROP TRIGGER test_refuse ON trading.price_candles")
        .execute(pool)
        .await
        .unwrap();
}

fn report<'a>(r: &'a PassReport, policy: &str) -> &'a PolicyReport {
    r.policies.iter().find(|p| p.policy == policy).unwrap()
}

struct Expected {
    candles_1m: HashSet<String>,
    candles_5m: HashSet<String>,
    articles: HashSet<String>,
    candles_total: i64,
    raw_total: i64,
    raw_old: i64,
}

async fn expected(pool: &PgPool) -> Expected {
    let day_1y = "date_trunc('day', '2026-11-25T10:00:00Z'::timestamptz - interval '365 days')";
    let day_540 = "date_trunc('day', '2026-11-25T10:00:00Z'::timestamptz - interval '540 days')";
    let day_400 = "date_trunc('day', '2026-11-25T10:00:00Z'::timestamptz - interval '400 days')";
    Expected {
        candles_1m: rows_json(
            pool,
            "trading.price_candles",
            &format!("interval = '1m' AND open_time < {day_1y}"),
        )
        .await,
        candles_5m: rows_json(
            pool,
            "trading.price_candles",
            &format!("interval <> '1m' AND open_time < {day_540}"),
        )
        .await,
        articles: rows_json(
            pool,
            "content.articles",
            &format!("coalesce(published_at, crawled_at) < {day_400}"),
        )
        .await,
        candles_total: count(pool, "SELECT count(*) FROM trading.price_candles").await,
        raw_total: count(pool, "SELECT count(*) FROM content.raw_articles").await,
        raw_old: count(
            pool,
            "SELECT count(*) FROM content.raw_articles
             WHERE crawled_at < '2026-11-25T10:00:00Z'::timestamptz - interval '90 days'",
        )
        .await,
    }
}

/// No 1m candle is gone without being in the archive: whatever of the expected rows is no
/// longer in the table must be archived, exactly as it was.
async fn no_1m_candle_lost(pool: &PgPool, dir: &Path, exp: &Expected) {
    let (policy, table) = ("candles_1m", "trading.price_candles");
    let present = rows_json(pool, table, "true").await;
    let archived = archived(dir, policy);
    for row in &exp.candles_1m {
        assert!(
            present.contains(row) || archived.contains_key(row),
            "{policy}: a row was deleted without being archived: {row}"
        );
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn one_pass_removes_exactly_the_rows_past_each_policy_and_archives_them(pool: PgPool) {
    seed(&pool).await;
    let exp = expected(&pool).await;
    assert!(exp.candles_1m.len() > 1000 && exp.candles_5m.len() > 500 && exp.articles.len() > 10);
    let dir = archive_dir("one-pass");
    let lc = lifecycle(&pool, config(&dir, 100));

    let r = lc.run_pass(now(), false).await.unwrap();
    assert_eq!(r.failures(), 0, "{r}");

    // Candles: exactly the rows past each policy are gone, every one of them archived once.
    archived_exactly_once(&dir, "candles_1m", &exp.candles_1m);
    let a5 = archived(&dir, "candles_5m_plus");
    assert_eq!(a5.keys().cloned().collect::<HashSet<_>>(), exp.candles_5m);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM trading.price_candles").await,
        exp.candles_total - exp.candles_1m.len() as i64 - exp.candles_5m.len() as i64
    );
    let left_1m = count(
        &pool,
        "SELECT count(*) FROM trading.price_candles WHERE interval = '1m'
         AND open_time < date_trunc('day', '2026-11-25T10:00:00Z'::timestamptz - interval '365 days')",
    )
    .await;
    assert_eq!(left_1m, 0);
    assert_eq!(
        report(&r, "candles_1m").rows_removed,
        exp.candles_1m.len() as u64
    );
    assert_eq!(
        report(&r, "candles_1m").rows_archived,
        exp.candles_1m.len() as u64
    );
    // One file per UTC day.
    let m = Archive::new(&dir).manifest("candles_1m").unwrap();
    let days: HashSet<_> = m.files.iter().map(|f| f.day).collect();
    assert_eq!(days.len(), m.files.len());

    // Articles (archived here) by published_at, crawled_at when unknown.
    let aa = archived(&dir, "articles");
    assert_eq!(aa.keys().cloned().collect::<HashSet<_>>(), exp.articles);
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM content.articles WHERE coalesce(published_at, crawled_at)
             < date_trunc('day', '2026-11-25T10:00:00Z'::timestamptz - interval '400 days')"
        )
        .await,
        0
    );

    // Raw pages: delete-only, by the exact cutoff; the articles that pointed at them stay.
    assert_eq!(
        count(&pool, "SELECT count(*) FROM content.raw_articles").await,
        exp.raw_total - exp.raw_old
    );
    assert_eq!(report(&r, "raw_articles").rows_removed, exp.raw_old as u64);

    // Ticks: whole days whose end is 24 h past are dropped (22nd and 23rd); the 24th stays
    // although part of it is older than 24 h; partitions exist ahead.
    let parts: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'trading.price_ticks'::regclass ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        parts,
        [
            "price_ticks_20261124",
            "price_ticks_20261125",
            "price_ticks_20261126",
            "price_ticks_20261127"
        ]
    );
    assert_eq!(report(&r, "ticks").partitions_dropped, 2);
    assert_eq!(report(&r, "ticks").rows_removed, 2 * 288);
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM trading.price_ticks WHERE timestamp < '2026-11-24'"
        )
        .await,
        0
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM trading.price_ticks").await,
        288 + 101
    );
    assert_eq!(report(&r, "analysis_results").skipped, None);
    assert_eq!(
        report(&r, "analysis_results").rows_removed,
        0,
        "no analyses here"
    );

    // A second pass does nothing: no row, no file, no partition.
    let manifests = ["candles_1m", "candles_5m_plus", "articles"]
        .map(|p| Archive::new(&dir).manifest(p).unwrap());
    let r2 = lc.run_pass(now(), false).await.unwrap();
    assert_eq!(r2.failures(), 0, "{r2}");
    for p in &r2.policies {
        assert_eq!(
            (
                p.rows_archived,
                p.rows_removed,
                p.partitions_dropped,
                p.files_written
            ),
            (0, 0, 0, 0),
            "{r2}"
        );
    }
    assert_eq!(
        ["candles_1m", "candles_5m_plus", "articles"]
            .map(|p| Archive::new(&dir).manifest(p).unwrap()),
        manifests
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[sqlx::test(migrations = "./migrations")]
async fn dry_run_reports_and_changes_nothing(pool: PgPool) {
    seed(&pool).await;
    let exp = expected(&pool).await;
    let dir = archive_dir("dry-run");
    let lc = lifecycle(&pool, config(&dir, 100));
    let ticks_before = count(&pool, "SELECT count(*) FROM trading.price_ticks").await;
    let r = lc.run_pass(now(), true).await.unwrap();
    assert_eq!(
        report(&r, "candles_1m").rows_archived,
        exp.candles_1m.len() as u64
    );
    assert_eq!(
        report(&r, "candles_1m").rows_removed,
        exp.candles_1m.len() as u64
    );
    assert_eq!(report(&r, "raw_articles").rows_removed, exp.raw_old as u64);
    assert_eq!(report(&r, "ticks").partitions_dropped, 2);
    let text = r.to_string();
    assert!(text.contains("would archive"), "{text}");
    assert_eq!(
        count(&pool, "SELECT count(*) FROM trading.price_candles").await,
        exp.candles_total
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM content.raw_articles").await,
        exp.raw_total
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM trading.price_ticks").await,
        ticks_before
    );
    assert!(!dir.exists(), "a dry run wrote archives");
}

#[sqlx::test(migrations = "./migrations")]
async fn an_archive_failure_mid_pass_deletes_nothing_unarchived_and_the_next_pass_finishes(
    pool: PgPool,
) {
    seed(&pool).await;
    let exp = expected(&pool).await;
    let dir = archive_dir("archive-failure");
    // 2025's directory cannot be created (a file is in the way): the 1m candles of 2024 are
    // archived and deleted, then the first day of 2025 fails.
    std::fs::create_dir_all(dir.join("candles_1m")).unwrap();
    std::fs::write(dir.join("candles_1m").join("2025"), b"in the way").unwrap();
    // (Made here by the test, not by the archive: as private as the archive makes its own.)
    use std::os::unix::fs::PermissionsExt;
    for (path, mode) in [("candles_1m", 0o750), ("candles_1m/2025", 0o640)] {
        std::fs::set_permissions(dir.join(path), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let lc = lifecycle(&pool, config(&dir, 100));
    let r = lc.run_pass(now(), false).await.unwrap();
    let c1 = report(&r, "candles_1m");
    assert!(c1.error.is_some(), "{r}");
    assert!(c1.rows_removed > 0, "the failure should come mid-pass: {r}");
    // The other policies went on.
    assert!(report(&r, "candles_5m_plus").error.is_none());
    assert_eq!(
        report(&r, "candles_5m_plus").rows_removed,
        exp.candles_5m.len() as u64
    );
    no_1m_candle_lost(&pool, &dir, &exp).await;
    assert!(
        count(
            &pool,
            "SELECT count(*) FROM trading.price_candles WHERE interval = '1m'
             AND open_time >= '2025-01-01' AND open_time < '2025-11-25'"
        )
        .await
            > 0
    );

    std::fs::remove_file(dir.join("candles_1m").join("2025")).unwrap();
    let r2 = lc.run_pass(now(), false).await.unwrap();
    assert_eq!(r2.failures(), 0, "{r2}");
    archived_exactly_once(&dir, "candles_1m", &exp.candles_1m);
    let r3 = lc.run_pass(now(), false).await.unwrap();
    assert!(
        r3.policies
            .iter()
            .all(|p| p.rows_removed == 0 && p.rows_archived == 0),
        "{r3}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_delete_failing_after_the_archive_leaves_rows_archived_once(pool: PgPool) {
    seed(&pool).await;
    let exp = expected(&pool).await;
    // A row in the middle of a day refuses to be deleted: the day's archive is complete, some
    // of its rows are deleted (batches of 3), the batch holding this one fails.
    let poisoned: i64 = sqlx::query_scalar(
        "SELECT id FROM trading.price_candles WHERE interval = '1m' AND symbol_id = 'ETHUSDT'
         ORDER BY open_time OFFSET 200 LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    refuse_deletes(&pool, &format!("OLD.id = {poisoned}")).await;
    let dir = archive_dir("delete-failure");
    let lc = lifecycle(&pool, config(&dir, 3));
    let r = lc.run_pass(now(), false).await.unwrap();
    assert!(report(&r, "candles_1m").error.is_some(), "{r}");
    no_1m_candle_lost(&pool, &dir, &exp).await;
    assert_eq!(
        count(
            &pool,
            &format!("SELECT count(*) FROM trading.price_candles WHERE id = {poisoned}")
        )
        .await,
        1
    );

    allow_deletes(&pool).await;
    let r2 = lc.run_pass(now(), false).await.unwrap();
    assert_eq!(r2.failures(), 0, "{r2}");
    // The rows archived by the failed pass were deleted without being written twice.
    archived_exactly_once(&dir, "candles_1m", &exp.candles_1m);
    let _ = std::fs::remove_dir_all(&dir);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_row_changed_after_archiving_is_archived_again_not_lost(pool: PgPool) {
    // The same day is archived twice: once as it was, then (the first pass failing before its
    // delete) after one row changed. The changed version goes into a second part; the
    // unchanged rows are not duplicated.
    seed(&pool).await;
    let dir = archive_dir("changed-row");
    refuse_deletes(&pool, "true").await;
    let lc = lifecycle(&pool, config(&dir, 100));
    let r = lc.run_pass(now(), false).await.unwrap();
    assert!(report(&r, "candles_1m").error.is_some());
    let m = Archive::new(&dir).manifest("candles_1m").unwrap();
    assert_eq!(m.files.len(), 1, "the pass stops at the first failing day");
    let day = m.files[0].day;
    sqlx::query(
        "UPDATE trading.price_candles SET trade_count = trade_count + 1
         WHERE id = (SELECT min(id) FROM trading.price_candles WHERE interval = '1m'
                     AND open_time >= $1::date AND open_time < $1::date + 1)",
    )
    .bind(day)
    .execute(&pool)
    .await
    .unwrap();
    allow_deletes(&pool).await;
    let exp = expected(&pool).await;
    let r2 = lc.run_pass(now(), false).await.unwrap();
    assert_eq!(r2.failures(), 0, "{r2}");
    let m = Archive::new(&dir).manifest("candles_1m").unwrap();
    let parts: Vec<_> = m.files.iter().filter(|f| f.day == day).collect();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[1].rows, 1, "only the changed row is archived again");
    let a1 = archived(&dir, "candles_1m");
    for row in &exp.candles_1m {
        assert!(a1.contains_key(row));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Analyses (migration 0006) age by analyzed_at, before their articles; an article older than
/// its policy whose analysis is still kept stays, because deleting it would cascade to an
/// analysis that was never archived.
#[sqlx::test(migrations = "./migrations")]
async fn analysis_results_go_before_their_articles_and_hold_them_back(pool: PgPool) {
    sqlx::raw_sql(
        "INSERT INTO content.articles (url, url_hash, title, source_name, crawled_at, published_at, doc)
         SELECT 'https://x.example/' || n, encode(sha256(('u' || n)::bytea), 'hex'), 't', 'Wire', ts, ts, '{}'
         FROM (SELECT n, '2026-11-25T10:00:00Z'::timestamptz - n * interval '30 days' AS ts
               FROM generate_series(0, 47) n) s;
         INSERT INTO content.analysis_results
             (article_id, model_version, analyzed_at, sentiment_label, sentiment_score, trend_direction, doc)
         SELECT id, 'v', published_at, 'NEUTRAL', 0, 'SIDEWAYS', '{}' FROM content.articles;
         -- Published four years ago, analysed just now: the article must wait for its analysis.
         INSERT INTO content.articles (url, url_hash, title, source_name, crawled_at, published_at, doc)
         VALUES ('https://x.example/late', encode(sha256('late'::bytea), 'hex'), 'late', 'Wire',
                 '2022-11-01T00:00:00Z', '2022-11-01T00:00:00Z', '{}');
         INSERT INTO content.analysis_results
             (article_id, model_version, analyzed_at, sentiment_label, sentiment_score, trend_direction, doc)
         SELECT id, 'v', '2026-11-25T09:00:00Z', 'NEUTRAL', 0, 'SIDEWAYS', '{}'
         FROM content.articles WHERE title = 'late';",
    )
    .execute(&pool)
    .await
    .unwrap();
    let old = count(
        &pool,
        "SELECT count(*) FROM content.analysis_results
         WHERE analyzed_at < '2026-11-25T10:00:00Z'::timestamptz - interval '1095 days'",
    )
    .await;
    assert!(old > 0);
    let dir = archive_dir("analysis");
    let lc = lifecycle(&pool, config(&dir, 5));
    let r = lc.run_pass(now(), false).await.unwrap();
    assert_eq!(r.failures(), 0, "{r}");
    let removed = report(&r, "analysis_results").rows_removed;
    // Archived policies remove whole UTC days past the age: at most the count above.
    assert!(removed > 0 && removed <= old as u64, "{r}");
    let kept = count(&pool, "SELECT count(*) FROM content.analysis_results").await;
    assert_eq!(kept, 49 - removed as i64);
    // Every remaining analysis still has its article, and the late one's article is kept.
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM content.analysis_results r
             JOIN content.articles a ON a.id = r.article_id"
        )
        .await,
        kept
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM content.articles WHERE title = 'late'"
        )
        .await,
        1,
        "an article whose analysis is kept stays"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn session_keys_without_ttl_get_one() {
    // Like every other Redis test: the local server by default, never a silent skip.
    let url = std::env::var("TRADEPIPE_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("test-retention-{}:", std::process::id());
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let key = |k: &str| format!("{prefix}{k}");
    let _: () = redis::cmd("SET")
        .arg(key("session:a"))
        .arg("x")
        .query_async(&mut c)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(key("session:b"))
        .arg("x")
        .arg("EX")
        .arg(100)
        .query_async(&mut c)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(key("other"))
        .arg("x")
        .query_async(&mut c)
        .await
        .unwrap();
    let store = RedisSessionStore::new(&RedisTarget::from_url(&url), &prefix).unwrap();
    assert_eq!(store.expire_sessions(86_400, false).await.unwrap(), 1);
    let ttl = |k: String| {
        let mut c = c.clone();
        async move {
            redis::cmd("TTL")
                .arg(k)
                .query_async::<i64>(&mut c)
                .await
                .unwrap()
        }
    };
    assert_eq!(ttl(key("session:a")).await, -1, "dry run changed a TTL");
    assert_eq!(store.expire_sessions(86_400, true).await.unwrap(), 1);
    assert!(ttl(key("session:a")).await > 86_000);
    assert!(ttl(key("session:b")).await <= 100);
    assert_eq!(ttl(key("other")).await, -1);
    assert_eq!(store.expire_sessions(86_400, true).await.unwrap(), 0);
    let _: () = redis::cmd("DEL")
        .arg(key("session:a"))
        .arg(key("session:b"))
        .arg(key("other"))
        .query_async(&mut c)
        .await
        .unwrap();
}

/// The actor as the daemon runs it: `RunPass` answers with the pass's report, and the pass
/// is the same as the library's (the policies applied, the archive written).
#[sqlx::test(migrations = "./migrations")]
async fn the_actor_runs_a_pass_on_request(pool: PgPool) {
    use tradepipe::actors::retention::{RetentionActor, RunPass, StopRetention};
    seed(&pool).await;
    let exp = expected(&pool).await;
    let dir = archive_dir("actor");
    let options = (*pool.connect_options()).clone();
    let cfg = config(&dir, 500);
    // actix needs its own system (and the pass its own pool on it: connections belong to the
    // runtime that opened them).
    let got = std::thread::spawn(move || {
        actix::System::new().block_on(async move {
            let own = PgPool::connect_with(options).await.unwrap();
            let lc = Arc::new(lifecycle(&own, cfg));
            // The schedule's first pass is an hour away: only the request runs one.
            let addr = actix::Supervisor::start(move |_| {
                RetentionActor::new(lc, std::time::Duration::from_secs(3600))
            });
            let got = addr.send(RunPass).await.unwrap();
            addr.send(StopRetention).await.unwrap();
            own.close().await;
            got
        })
    })
    .join()
    .unwrap()
    .expect("a pass report");
    assert_eq!(got.failures(), 0, "{got}");
    // The actor's pass ran as of the real clock: everything a year older than today is gone,
    // which includes every row the fixed-date expectation names.
    assert!(report(&got, "candles_1m").rows_removed >= exp.candles_1m.len() as u64);
    nothing_left_older_than_a_year(&pool).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A pass whose archive disk stalls for seconds (the manifest is a FIFO that answers late) leaves
/// its thread free: the archive's file work runs on the blocking pool, so the other tasks of a
/// one-thread runtime (the RetentionActor's arbiter, the CLI's runtime) keep running. Before, the
/// read ran on that thread and nothing else moved until the disk answered.
#[sqlx::test(migrations = "./migrations")]
async fn a_stalled_archive_disk_does_not_stall_the_pass_thread(pool: PgPool) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};
    seed(&pool).await;
    let dir = archive_dir("stalled");
    let cfg = config(&dir, 500);
    let policy = tradepipe::lifecycle::policies(&cfg)
        .into_iter()
        .find(|p| p.archive)
        .expect("an archived policy")
        .name;
    let manifest = Archive::new(&dir).manifest_path(policy);
    std::fs::create_dir_all(manifest.parent().unwrap()).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&manifest)
        .status()
        .unwrap();
    assert!(made.success());
    let (opened, released) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let disk = {
        let (opened, released) = (opened.clone(), released.clone());
        let empty = format!(r#"{{"policy":"{policy}","files":[]}}"#);
        std::thread::spawn(move || {
            use std::io::Write;
            let mut fifo = std::fs::OpenOptions::new()
                .write(true)
                .open(&manifest)
                .unwrap();
            opened.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_secs(3));
            released.store(true, Ordering::SeqCst);
            fifo.write_all(empty.as_bytes()).unwrap();
        })
    };

    let options = (*pool.connect_options()).clone();
    let (got, ticks_while_stalled) = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let own = PgPool::connect_with(options).await.unwrap();
            let lc = Arc::new(lifecycle(&own, cfg));
            let pass = tokio::spawn(async move { lc.run_pass(now(), false).await });
            // Another task on the same thread, counting while the disk is stalled.
            let mut ticks = 0;
            let deadline = Instant::now() + Duration::from_secs(60);
            while !released.load(Ordering::SeqCst) {
                assert!(
                    Instant::now() < deadline,
                    "the pass never read the manifest"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
                if opened.load(Ordering::SeqCst) && !released.load(Ordering::SeqCst) {
                    ticks += 1;
                }
            }
            let got = pass.await.unwrap().unwrap();
            own.close().await;
            (got, ticks)
        })
    })
    .join()
    .unwrap();
    disk.join().unwrap();
    assert!(
        ticks_while_stalled >= 10,
        "the pass's thread ran other work {ticks_while_stalled} times in the 3 s the disk stalled"
    );
    assert_eq!(got.failures(), 0, "{got}");
    assert!(report(&got, policy).rows_archived > 0, "{got}");
    let _ = std::fs::remove_dir_all(&dir);
}

async fn nothing_left_older_than_a_year(pool: &PgPool) {
    assert_eq!(
        count(
            pool,
            "SELECT count(*) FROM trading.price_candles WHERE interval = '1m'
             AND open_time < date_trunc('day', now() - interval '365 days')"
        )
        .await,
        0
    );
}
