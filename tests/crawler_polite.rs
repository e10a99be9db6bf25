//! Polite crawling end to end: the local news server (real pages) on port 0, the real Redis for
//! the crawl lock and statistics (one key prefix per test), and an in-memory fake of the
//! `DocumentStore` trait.

use actix::prelude::*;
use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tradepipe::actors::crawler::{CrawlNow, CrawlerActor, CrawlerDeps, RoundOutcome, StopCrawling};
use tradepipe::config::NewsConfig;
use tradepipe::config::RedisTarget;
use tradepipe::domain::news::RateLimit;
use tradepipe::domain::{Article, NewsSource, ProcessingStatus, RawArticle};
use tradepipe::news::crawl::egress::EgressPolicy;
use tradepipe::news::crawl::fetch::{FetchError, FetchSettings, Fetched, PoliteFetcher};
use tradepipe::news::crawl::lock::CrawlLock;
use tradepipe::news::normalize::canonicalize_url;
use tradepipe::store::{DocumentStore, StoreCounts, StoreError};
use tradepipe_testkit::news_server::{
    EntryKind, LoggedRequest, NewsServer, NewsServerConfig, start,
};

const REDIS: &str = "redis://127.0.0.1:6379/0";
const CAP: u64 = 1024 * 1024;
const DELAY_MS: u64 = 150;

// ---------------------------------------------------------------------------------------------
// In-memory DocumentStore

#[derive(Default)]
struct FakeStore {
    raws: Mutex<Vec<RawArticle>>,
    /// Every insert attempt, accepted or not.
    inserts: Mutex<u64>,
    crawled: Mutex<HashMap<String, DateTime<Utc>>>,
}

impl FakeStore {
    fn raws(&self) -> Vec<RawArticle> {
        self.raws.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl DocumentStore for FakeStore {
    async fn prepare(&self) -> Result<(), StoreError> {
        Ok(())
    }
    async fn upsert_sources(&self, _: &[NewsSource]) -> Result<(), StoreError> {
        Ok(())
    }
    async fn source(&self, _: &str) -> Result<Option<NewsSource>, StoreError> {
        Ok(None)
    }
    async fn mark_crawled(&self, source: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.crawled.lock().unwrap().insert(source.to_string(), at);
        Ok(())
    }
    async fn known_url_hashes(&self, hashes: &[String]) -> Result<HashSet<String>, StoreError> {
        let raws = self.raws.lock().unwrap();
        let have: HashSet<&String> = raws.iter().map(|r| &r.url_hash).collect();
        Ok(hashes
            .iter()
            .filter(|h| have.contains(h))
            .cloned()
            .collect())
    }
    async fn insert_raw_article(&self, raw: &RawArticle) -> Result<Option<String>, StoreError> {
        *self.inserts.lock().unwrap() += 1;
        let mut raws = self.raws.lock().unwrap();
        if raws.iter().any(|r| r.url_hash == raw.url_hash) {
            return Ok(None);
        }
        let mut stored = raw.clone();
        stored.id = format!("raw-{}", raws.len() + 1);
        raws.push(stored.clone());
        Ok(Some(stored.id))
    }
    async fn raw_article(&self, id: &str) -> Result<Option<RawArticle>, StoreError> {
        Ok(self.raws().into_iter().find(|r| r.id == id))
    }
    async fn claim_raw_articles(
        &self,
        _: usize,
        _: Duration,
    ) -> Result<Vec<RawArticle>, StoreError> {
        Ok(Vec::new())
    }
    async fn complete_raw_article(&self, _: &str, _: &Article) -> Result<String, StoreError> {
        Err(StoreError::Unsupported("fake".into()))
    }
    async fn fail_raw_article(&self, _: &str, _: &str, _: u32) -> Result<(), StoreError> {
        Ok(())
    }
    async fn article_by_url_hash(&self, _: &str) -> Result<Option<Article>, StoreError> {
        Ok(None)
    }
    async fn counts(&self) -> Result<StoreCounts, StoreError> {
        Ok(StoreCounts::default())
    }
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn prefix(test: &str) -> String {
    format!(
        "test:crawler_polite:{test}:{}:{}:",
        std::process::id(),
        Utc::now().timestamp_millis()
    )
}

async fn server(sources: usize) -> NewsServer {
    start(NewsServerConfig {
        pages_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/news/pages"),
        listen: "127.0.0.1:0".parse().unwrap(),
        sources,
        oversized_bytes: CAP + CAP / 2,
    })
    .await
    .unwrap()
}

fn news_config() -> NewsConfig {
    NewsConfig {
        max_body_bytes: CAP,
        request_timeout_ms: 10_000,
        max_retries: 1,
        retry_backoff_ms: 50,
        lock_ttl_secs: 30,
        ..NewsConfig::default()
    }
}

/// The egress policy of a source on the local test server: loopback, so explicitly opted in.
fn local_egress() -> EgressPolicy {
    let source: NewsSource = toml::from_str(
        "name = \"local\"\nbase_url = \"http://127.0.0.1/\"\ntype = \"HTML\"\n\
         allow_private_network = true\n",
    )
    .expect("a source");
    EgressPolicy::for_source(&source).expect("a policy")
}

fn polite(mut s: NewsSource) -> NewsSource {
    s.rate_limit = RateLimit {
        requests_per_minute: 600,
        delay_ms: DELAY_MS,
    };
    s
}

async fn crawler(
    source: NewsSource,
    store: Arc<FakeStore>,
    lock_prefix: &str,
    on_start: bool,
) -> Addr<CrawlerActor> {
    let lock = CrawlLock::connect(&RedisTarget::from_url(REDIS), lock_prefix)
        .await
        .unwrap();
    let deps = CrawlerDeps {
        news: Arc::new(news_config()),
        store,
        lock,
        interval_override: Some(Duration::from_secs(3600)),
        crawl_on_start: on_start,
    };
    let actor = CrawlerActor::new(source, deps).unwrap();
    Supervisor::start(move |_| actor)
}

/// An RSS source on a test site at `addr` whose feed is `/feed.xml`, paced at 20 ms.
fn feed_source(name: &str, addr: std::net::SocketAddr) -> NewsSource {
    NewsSource {
        name: name.into(),
        base_url: format!("http://{addr}/"),
        feed_url: Some(format!("http://{addr}/feed.xml")),
        kind: tradepipe::domain::news::SourceKind::Rss,
        is_active: true,
        crawl_interval_minutes: 15,
        selectors: Default::default(),
        rate_limit: RateLimit {
            requests_per_minute: 0,
            delay_ms: 20,
        },
        metadata: Default::default(),
        // The test site is on loopback: the explicit opt-in.
        allowed_hosts: Vec::new(),
        allow_private_network: true,
        last_crawled_at: None,
    }
}

fn canonical(srv: &NewsServer, path: &str) -> String {
    canonicalize_url(&srv.url(path)).unwrap()
}

/// Request starts of one fetcher, excluding redirect hops (reqwest follows those itself, within
/// the one paced request) and robots.txt (shared by the sources' fetchers on one host).
fn paced_starts(
    log: &[LoggedRequest],
    source: &str,
    redirect_target: Option<&str>,
) -> Vec<Instant> {
    log.iter()
        .filter(|r| r.path.starts_with(&format!("/{source}/")))
        .filter(|r| !r.path.contains("/moved/"))
        .filter(|r| redirect_target.is_none_or(|t| !r.path.ends_with(t)))
        .map(|r| r.at)
        .collect()
}

fn assert_spacing(starts: &[Instant], min: Duration) {
    assert!(starts.len() >= 2);
    for w in starts.windows(2) {
        let gap = w[1].duration_since(w[0]);
        assert!(gap >= min, "requests {gap:?} apart, want >= {min:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// The fetcher alone

#[tokio::test]
async fn fetcher_is_polite_and_strict() {
    let srv = server(2).await;
    let rate = RateLimit {
        requests_per_minute: 600,
        delay_ms: DELAY_MS,
    };
    let f = PoliteFetcher::new(
        "local-1",
        &rate,
        local_egress(),
        FetchSettings::from(&news_config()),
    )
    .unwrap();
    let src = &srv.sources()[0];
    let private = src
        .entries
        .iter()
        .find(|e| e.kind == EntryKind::Private)
        .unwrap();
    let page = src
        .entries
        .iter()
        .find(|e| e.kind == EntryKind::Page)
        .unwrap();

    let e = f.fetch(&srv.url(&private.path)).await.unwrap_err();
    assert!(matches!(e, FetchError::RobotsDisallowed { .. }), "{e}");
    let got = f.fetch(&srv.url(&page.path)).await.unwrap();
    assert_eq!(got.status, 200);
    assert!(got.body.to_lowercase().contains("<html"), "gzip decoded");
    for path in [
        "/local-1/articles/oversized",
        "/local-1/articles/oversized-declared",
    ] {
        let e = f.fetch(&srv.url(path)).await.unwrap_err();
        assert!(
            matches!(e, FetchError::TooLarge { limit: CAP, .. }),
            "{path}: {e}"
        );
        assert_eq!(e.kind(), "too_large");
    }
    let e = f
        .fetch(&srv.url("/local-1/articles/nope"))
        .await
        .unwrap_err();
    assert_eq!(
        e,
        FetchError::Status {
            url: srv.url("/local-1/articles/nope"),
            status: 404
        }
    );

    let feed = srv.url("/local-1/feed.xml");
    let Fetched::Page(first) = f.fetch_if_modified(&feed).await.unwrap() else {
        panic!("first fetch is a page");
    };
    // Not remembered yet: still a full answer.
    assert!(matches!(
        f.fetch_if_modified(&feed).await.unwrap(),
        Fetched::Page(_)
    ));
    f.remember(&feed, &first).await;
    assert!(matches!(
        f.fetch_if_modified(&feed).await.unwrap(),
        Fetched::NotModified { .. }
    ));

    let log = srv.requests();
    assert!(
        log.iter().all(|r| !r.path.starts_with("/private/")),
        "disallowed path requested"
    );
    assert_eq!(
        log.iter().filter(|r| r.path == "/robots.txt").count(),
        1,
        "robots.txt cached"
    );
    let last = log.last().unwrap();
    assert_eq!(last.status, 304);
    assert_eq!(last.headers.get("if-none-match"), first.headers.get("etag"));
    assert!(last.headers["user-agent"].starts_with("tradepipe/"));
    assert!(log.iter().any(|r| {
        r.headers
            .get("accept-encoding")
            .is_some_and(|v| v.contains("gzip"))
    }));
    let starts: Vec<Instant> = log.iter().map(|r| r.at).collect();
    assert_spacing(&starts, Duration::from_millis(DELAY_MS));

    // Redirects: two hops are fine with the default cap, not with a cap of one.
    let redirect = srv.sources()[1]
        .entries
        .iter()
        .find(|e| e.kind == EntryKind::Redirect)
        .unwrap();
    let fast = RateLimit {
        requests_per_minute: 0,
        delay_ms: 0,
    };
    let f2 = PoliteFetcher::new(
        "local-2",
        &fast,
        local_egress(),
        FetchSettings::from(&news_config()),
    )
    .unwrap();
    let got = f2.fetch(&srv.url(&redirect.path)).await.unwrap();
    assert!(
        got.final_url
            .ends_with(&format!("/articles/{}", redirect.page_id.as_ref().unwrap()))
    );
    let strict = NewsConfig {
        max_redirects: 1,
        ..news_config()
    };
    let f3 = PoliteFetcher::new(
        "local-2",
        &fast,
        local_egress(),
        FetchSettings::from(&strict),
    )
    .unwrap();
    let e = f3.fetch(&srv.url(&redirect.path)).await.unwrap_err();
    assert_eq!(e.kind(), "too_many_redirects", "{e}");
    srv.shutdown().await;
}

#[tokio::test]
async fn robots_errors_disallow_and_a_missing_robots_allows() {
    use axum::http::StatusCode;
    // A site whose robots.txt answers 503, and one with none (404).
    let app = axum::Router::new()
        .route(
            "/down/robots.txt",
            axum::routing::get(|| async { StatusCode::SERVICE_UNAVAILABLE }),
        )
        .route("/page", axum::routing::get(|| async { "<html>hi</html>" }));
    let l503 = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a503 = l503.local_addr().unwrap();
    let app503 = axum::Router::new()
        .route(
            "/robots.txt",
            axum::routing::get(|| async { StatusCode::SERVICE_UNAVAILABLE }),
        )
        .route("/page", axum::routing::get(|| async { "<html>hi</html>" }));
    tokio::spawn(async move { axum::serve(l503, app503).await });
    let l404 = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a404 = l404.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l404, app).await });

    let fast = RateLimit {
        requests_per_minute: 0,
        delay_ms: 0,
    };
    let f = PoliteFetcher::new(
        "t",
        &fast,
        local_egress(),
        FetchSettings::from(&news_config()),
    )
    .unwrap();
    let e = f.fetch(&format!("http://{a503}/page")).await.unwrap_err();
    assert!(matches!(e, FetchError::RobotsDisallowed { .. }), "{e}");
    let ok = f.fetch(&format!("http://{a404}/page")).await.unwrap();
    assert_eq!(ok.body, "<html>hi</html>");
    // Unreachable robots.txt: disallowed too (nothing is requested from the page either).
    let e = f.fetch("http://127.0.0.1:1/page").await.unwrap_err();
    assert!(matches!(e, FetchError::RobotsDisallowed { .. }), "{e}");
    // With robots.txt not respected, the connect error shows.
    let ignore = NewsConfig {
        respect_robots_txt: false,
        ..news_config()
    };
    let f = PoliteFetcher::new("t", &fast, local_egress(), FetchSettings::from(&ignore)).unwrap();
    let e = f.fetch("http://127.0.0.1:1/page").await.unwrap_err();
    assert_eq!(e.kind(), "connect", "{e}");
}

// ---------------------------------------------------------------------------------------------
// The actor

#[actix_rt::test]
async fn crawler_stores_each_page_once_politely_and_then_nothing_new() {
    let srv = server(2).await;
    let store = Arc::new(FakeStore::default());
    let keys = prefix("full");
    let sources: Vec<NewsSource> = srv.news_sources().into_iter().map(polite).collect();
    let mut addrs = Vec::new();
    for s in &sources {
        addrs.push(crawler(s.clone(), store.clone(), &keys, false).await);
    }
    let reports = futures_util::future::join_all(addrs.iter().map(|a| a.send(CrawlNow))).await;
    let reports: Vec<_> = reports.into_iter().map(Result::unwrap).collect();
    for r in &reports {
        assert_eq!(r.outcome, RoundOutcome::Completed, "{r:?}");
    }

    // What was stored, per listed entry.
    let raws = store.raws();
    let by_url: HashMap<&str, &RawArticle> = raws.iter().map(|r| (r.url.as_str(), r)).collect();
    assert_eq!(by_url.len(), raws.len(), "no URL stored twice");
    let mut expected = 0;
    for (s, report) in srv.sources().iter().zip(&reports) {
        for e in &s.entries {
            let url = canonical(&srv, &e.path);
            let raw = by_url.get(url.as_str());
            match e.kind {
                EntryKind::Private => assert!(raw.is_none(), "disallowed page stored"),
                EntryKind::Oversized => {
                    let raw = raw.expect("oversized page recorded");
                    assert_eq!(raw.processing_status, ProcessingStatus::Failed);
                    assert!(
                        raw.error_message
                            .as_deref()
                            .unwrap()
                            .starts_with("too_large"),
                        "{raw:?}"
                    );
                    assert!(raw.raw_html.is_empty());
                    expected += 1;
                }
                EntryKind::SlowLoris
                | EntryKind::Endless
                | EntryKind::GzipBomb
                | EntryKind::DeepNesting => panic!("fault pages are not served here"),
                EntryKind::Page | EntryKind::Redirect | EntryKind::Malformed => {
                    let raw = raw.unwrap_or_else(|| panic!("{} not stored", e.path));
                    assert_eq!(raw.processing_status, ProcessingStatus::Pending);
                    assert_eq!(raw.retry_count, 0);
                    assert_eq!(raw.http_status, 200);
                    assert_eq!(raw.source_name, s.name);
                    assert!(raw.response_headers.contains_key("content-type"));
                    assert!(!raw.raw_html.is_empty());
                    if e.kind == EntryKind::Malformed {
                        assert!(raw.raw_html.contains('\u{fffd}'), "decoded lossily");
                    }
                    expected += 1;
                }
            }
        }
        assert_eq!(
            report.disallowed,
            s.entries
                .iter()
                .filter(|e| e.kind == EntryKind::Private)
                .count()
        );
    }
    assert_eq!(raws.len(), expected);
    // RSS sources carry the feed's metadata; the HTML listing has none.
    let rss = raws.iter().find(|r| r.source_name == "local-1").unwrap();
    assert!(rss.feed_entry.as_ref().unwrap().title.is_some());
    assert!(
        raws.iter()
            .filter(|r| r.source_name == "local-2")
            .all(|r| r.feed_entry.is_none())
    );

    // Statistics on Redis count the PENDING pages per source.
    let mut redis = redis::Client::open(REDIS)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let counts: BTreeMap<String, u64> = redis
        .hgetall(format!("{keys}stats:articles:count"))
        .await
        .unwrap();
    for s in srv.sources() {
        let pending = raws
            .iter()
            .filter(|r| r.source_name == s.name && r.processing_status == ProcessingStatus::Pending)
            .count() as u64;
        assert_eq!(counts.get(&s.name).copied(), Some(pending));
    }
    assert_eq!(
        store.crawled.lock().unwrap().len(),
        2,
        "mark_crawled per source"
    );

    // Politeness from the server's side.
    let log = srv.requests();
    assert!(
        log.iter().all(|r| !r.path.starts_with("/private/")),
        "disallowed path requested"
    );
    let redirect_target = srv.sources()[1]
        .entries
        .iter()
        .find(|e| e.kind == EntryKind::Redirect)
        .and_then(|e| e.page_id.clone());
    assert_spacing(
        &paced_starts(&log, "local-1", None),
        Duration::from_millis(DELAY_MS),
    );
    assert_spacing(
        &paced_starts(&log, "local-2", redirect_target.as_deref()),
        Duration::from_millis(DELAY_MS),
    );

    // Second round: nothing new is stored, nothing is refetched, the feed is asked conditionally.
    let before = log.len();
    let inserts_before = *store.inserts.lock().unwrap();
    let again = futures_util::future::join_all(addrs.iter().map(|a| a.send(CrawlNow))).await;
    let again: Vec<_> = again.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        again[0].outcome,
        RoundOutcome::NotModified,
        "{:?}",
        again[0]
    );
    assert_eq!(again[1].outcome, RoundOutcome::Completed, "{:?}", again[1]);
    assert!(again.iter().all(|r| r.stored == 0 && r.failed == 0));
    assert_eq!(again[1].known, again[1].listed - again[1].disallowed);
    assert_eq!(store.raws().len(), raws.len());
    assert_eq!(*store.inserts.lock().unwrap(), inserts_before);
    let log = srv.requests();
    let new: Vec<&LoggedRequest> = log[before..].iter().collect();
    assert!(
        new.iter().all(|r| !r.path.contains("/articles/")),
        "pages refetched: {new:?}"
    );
    let feed = new
        .iter()
        .find(|r| r.path == "/local-1/feed.xml")
        .expect("feed asked again");
    assert!(feed.headers.contains_key("if-none-match"));
    assert_eq!(feed.status, 304);

    for a in &addrs {
        a.send(StopCrawling).await.unwrap();
    }
    srv.shutdown().await;
}

#[actix_rt::test]
async fn two_crawlers_on_one_source_store_each_page_once_in_total() {
    let srv = server(2).await;
    let store = Arc::new(FakeStore::default());
    let keys = prefix("two");
    let source = polite(srv.news_sources().remove(0));
    let a = crawler(source.clone(), store.clone(), &keys, false).await;
    let b = crawler(source, store.clone(), &keys, false).await;
    let (ra, rb) = futures_util::join!(a.send(CrawlNow), b.send(CrawlNow));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let outcomes = [ra.outcome, rb.outcome];
    assert!(outcomes.contains(&RoundOutcome::Completed), "{ra:?} {rb:?}");
    assert!(outcomes.contains(&RoundOutcome::LockHeld), "{ra:?} {rb:?}");
    let entries = &srv.sources()[0].entries;
    let want = entries
        .iter()
        .filter(|e| e.kind != EntryKind::Private)
        .count();
    assert_eq!(store.raws().len(), want);
    assert_eq!(
        *store.inserts.lock().unwrap(),
        want as u64,
        "no duplicate insert attempts"
    );
    // Each page was requested once in total.
    let log = srv.requests();
    for e in entries.iter().filter(|e| e.kind == EntryKind::Page) {
        assert_eq!(
            log.iter().filter(|r| r.path == e.path).count(),
            1,
            "{}",
            e.path
        );
    }
    // The lock is free again, and the other crawler now finds nothing new.
    let loser = if ra.outcome == RoundOutcome::LockHeld {
        &a
    } else {
        &b
    };
    let r = loser.send(CrawlNow).await.unwrap();
    assert_eq!(r.stored + r.failed, 0, "{r:?}");
    assert_eq!(store.raws().len(), want);
    a.send(StopCrawling).await.unwrap();
    b.send(StopCrawling).await.unwrap();
    srv.shutdown().await;
}

#[actix_rt::test]
async fn stop_crawling_ends_the_round_after_the_current_page() {
    let srv = server(1).await;
    let store = Arc::new(FakeStore::default());
    let keys = prefix("stop");
    let source = polite(srv.news_sources().remove(0));
    let a = crawler(source, store.clone(), &keys, true).await;
    // Let the round started on start get a few pages in.
    tokio::time::sleep(Duration::from_millis(6 * DELAY_MS)).await;
    a.send(StopCrawling).await.unwrap();
    let stored = store.raws().len();
    let requests = srv.requests().len();
    assert!(stored >= 1, "some pages were stored before the stop");
    assert!(
        stored < srv.sources()[0].entries.len() - 1,
        "stopped before the end"
    );
    tokio::time::sleep(Duration::from_millis(3 * DELAY_MS)).await;
    assert_eq!(
        srv.requests().len(),
        requests,
        "no request after StopCrawling answered"
    );
    assert_eq!(store.raws().len(), stored);
    // The lock was released on the way out.
    let lock = CrawlLock::connect(&RedisTarget::from_url(REDIS), &keys)
        .await
        .unwrap();
    assert_eq!(lock.holder("local-1").await.unwrap(), None);
    srv.shutdown().await;
}

#[actix_rt::test]
async fn failing_pages_are_retried_then_stored_failed_and_not_refetched() {
    use axum::extract::State;
    use axum::http::StatusCode;
    use std::sync::atomic::{AtomicU32, Ordering};
    // A site with one page that always answers 503 and one that fails once, then works.
    #[derive(Default)]
    struct Hits {
        broken: AtomicU32,
        flaky: AtomicU32,
    }
    let hits = Arc::new(Hits::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let feed = format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>t</title>\
         <item><title>Broken</title><link>http://{addr}/broken</link></item>\
         <item><title>Flaky</title><link>http://{addr}/flaky</link></item>\
         </channel></rss>"
    );
    let app = axum::Router::new()
        .route("/feed.xml", axum::routing::get(move || async move { feed }))
        .route(
            "/broken",
            axum::routing::get(|State(h): State<Arc<Hits>>| async move {
                h.broken.fetch_add(1, Ordering::SeqCst);
                StatusCode::SERVICE_UNAVAILABLE
            }),
        )
        .route(
            "/flaky",
            axum::routing::get(|State(h): State<Arc<Hits>>| async move {
                if h.flaky.fetch_add(1, Ordering::SeqCst) == 0 {
                    Err(StatusCode::BAD_GATEWAY)
                } else {
                    Ok("<html><title>Flaky</title><p>works now</p></html>")
                }
            }),
        )
        .with_state(hits.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let source = feed_source("flaky-site", addr);
    let store = Arc::new(FakeStore::default());
    let keys = prefix("retry");
    let a = crawler(source, store.clone(), &keys, false).await;
    let r = a.send(CrawlNow).await.unwrap();
    assert_eq!((r.stored, r.failed), (1, 1), "{r:?}");
    let max_retries = news_config().max_retries;
    assert_eq!(hits.broken.load(Ordering::SeqCst), max_retries + 1);
    assert_eq!(hits.flaky.load(Ordering::SeqCst), 2);
    let raws = store.raws();
    let broken = raws.iter().find(|r| r.url.ends_with("/broken")).unwrap();
    assert_eq!(broken.processing_status, ProcessingStatus::Failed);
    assert_eq!(broken.http_status, 503);
    assert_eq!(broken.retry_count, max_retries + 1);
    assert!(broken.error_message.as_deref().unwrap().contains("503"));
    let flaky = raws.iter().find(|r| r.url.ends_with("/flaky")).unwrap();
    assert_eq!(flaky.processing_status, ProcessingStatus::Pending);
    assert!(flaky.raw_html.contains("works now"));
    assert_eq!(
        flaky.feed_entry.as_ref().unwrap().title.as_deref(),
        Some("Flaky")
    );

    // The next round knows both: the broken page is not fetched again.
    let r = a.send(CrawlNow).await.unwrap();
    assert_eq!((r.stored, r.failed, r.known), (0, 0, 2), "{r:?}");
    assert_eq!(hits.broken.load(Ordering::SeqCst), max_retries + 1);
    a.send(StopCrawling).await.unwrap();
}

#[actix_rt::test]
async fn binary_pages_served_as_html_are_stored_failed_with_the_reason() {
    use tradepipe_testkit::bodies::{png, random_bytes};
    // A site whose feed links a PNG and random bytes, both served as text/html, and one article.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let feed = format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>t</title>\
         <item><title>Image</title><link>http://{addr}/image</link></item>\
         <item><title>Noise</title><link>http://{addr}/noise</link></item>\
         <item><title>Text</title><link>http://{addr}/text</link></item>\
         </channel></rss>"
    );
    let as_html = |body: Vec<u8>| {
        move || async move { ([("content-type", "text/html; charset=utf-8")], body) }
    };
    let app = axum::Router::new()
        .route("/feed.xml", axum::routing::get(move || async move { feed }))
        .route("/image", axum::routing::get(as_html(png(64, 64))))
        .route("/noise", axum::routing::get(as_html(random_bytes(100_000))))
        .route(
            "/text",
            axum::routing::get(as_html(
                b"<html><title>Text</title><p>a real page</p></html>".to_vec(),
            )),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let source = feed_source("binary-site", addr);
    let store = Arc::new(FakeStore::default());
    let a = crawler(source, store.clone(), &prefix("binary"), false).await;
    let r = a.send(CrawlNow).await.unwrap();
    assert_eq!((r.stored, r.failed), (1, 2), "{r:?}");
    let raws = store.raws();
    let find = |path: &str| {
        raws.iter()
            .find(|r| r.url.ends_with(path))
            .unwrap_or_else(|| panic!("{path} stored: {raws:?}"))
    };
    for (path, reason) in [("/image", "PNG image"), ("/noise", "is not text")] {
        let raw = find(path);
        assert_eq!(raw.processing_status, ProcessingStatus::Failed, "{path}");
        let message = raw.error_message.as_deref().unwrap_or_default();
        assert!(message.starts_with("not_text: "), "{path}: {message}");
        assert!(message.contains(reason), "{path}: {message}");
        assert!(raw.raw_html.is_empty(), "{path}: no binary stored as text");
        // Not worth retrying: the same bytes come back.
        assert_eq!(raw.retry_count, 1, "{path}");
    }
    assert_eq!(find("/text").processing_status, ProcessingStatus::Pending);
    a.send(StopCrawling).await.unwrap();
}

/// Issue 10, defect 8: a 429 with `Retry-After: 2` holds the next request to that site back at
/// least 2 s after the answer (the page retry's own backoff is 50 ms at most).
#[actix_rt::test]
async fn retry_after_on_429_holds_the_next_request_back() {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    use std::sync::atomic::{AtomicU32, Ordering};
    // (path, arrived, answered) for every request, robots.txt included.
    type Log = Arc<Mutex<Vec<(String, Instant, Instant)>>>;
    let log: Log = Arc::default();
    let limited_hits = Arc::new(AtomicU32::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let feed = format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>t</title>\
         <item><title>Limited</title><link>http://{addr}/limited</link></item>\
         </channel></rss>"
    );
    let hits = limited_hits.clone();
    let recorder = log.clone();
    let app = axum::Router::new()
        .route("/feed.xml", axum::routing::get(move || async move { feed }))
        .route(
            "/limited",
            axum::routing::get(move || async move {
                if hits.fetch_add(1, Ordering::SeqCst) == 0 {
                    (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "2")]).into_response()
                } else {
                    "<html><title>Limited</title><p>served at last</p></html>".into_response()
                }
            }),
        )
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let log = recorder.clone();
                async move {
                    let path = req.uri().path().to_string();
                    let arrived = Instant::now();
                    let resp = next.run(req).await;
                    log.lock().unwrap().push((path, arrived, Instant::now()));
                    resp
                }
            },
        ));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let source = feed_source("limited-site", addr);
    let store = Arc::new(FakeStore::default());
    let a = crawler(source, store.clone(), &prefix("retry_after"), false).await;
    let r = a.send(CrawlNow).await.unwrap();
    assert_eq!((r.stored, r.failed), (1, 0), "retried, then served: {r:?}");
    a.send(StopCrawling).await.unwrap();

    assert_eq!(limited_hits.load(Ordering::SeqCst), 2);
    let log = log.lock().unwrap().clone();
    let refused = log
        .iter()
        .position(|(p, _, _)| p == "/limited")
        .expect("the page was requested");
    let (_, _, refused_at) = &log[refused];
    let (next_path, next_at, _) = log.get(refused + 1).expect("a request after the 429");
    let gap = next_at.duration_since(*refused_at);
    assert!(
        gap >= Duration::from_secs(2),
        "{next_path} requested {gap:?} after a 429 with Retry-After: 2"
    );
}
