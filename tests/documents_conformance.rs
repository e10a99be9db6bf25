//! One conformance suite for every [`DocumentStore`]: the PostgreSQL store runs it against a fresh
//! database per test (`#[sqlx::test]`, set DATABASE_URL, e.g.
//! postgres://postgres@127.0.0.1:5432/postgres); the MongoDB store runs it when MONGODB_URL is
//! set, in a database `tradepipe_test_<random>` that is dropped afterwards.
//!
//! The suite is one sequence of steps on one store. Every step leaves no claimable raw article
//! behind (it completes or fails what it inserted), so the next step's claims see only its own
//! rows, and counts are checked as differences from the start of the step.
//!
//! MongoDB is not always available (CI has none), so its test is `#[ignore]`d with the reason: a
//! plain `cargo test` lists it as ignored, never as passed. `scripts/test` runs it (`--ignored`)
//! when MONGODB_URL is set; run without MONGODB_URL, it fails.
//!
//! Times carry milliseconds but no finer: MongoDB stores dates with millisecond precision, and
//! both stores must return exactly what they were given.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use sqlx::PgPool;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tradepipe::config::{DocumentBackend, DocumentsConfig, Secret};
use tradepipe::domain::news::{
    ArticleAuthor, ArticleImage, ArticleMetadata, ArticleSource, FeedEntryMeta, RateLimit,
    SourceKind, SourceMetadata, SourceSelectors,
};
use tradepipe::domain::{Article, NewsSource, ProcessingStatus, RawArticle};
use tradepipe::news::normalize::url_hash;
use tradepipe::store::mongo::MongoDocumentStore;
use tradepipe::store::postgres::PgDocumentStore;
use tradepipe::store::{
    AnalysisCounts, DocumentStore, FullDocumentStore, StoreCounts, StoreError, open_document_store,
};
use tradepipe_model::analysis::{Analyzer, Direction};
use tradepipe_model::calibration::HorizonCalibration;
use tradepipe_model::predict::{MarketView, WeighParams, build_prediction, score};
use tradepipe_model::record::{AnalysisRecord, TrendPredictionRecord};

const LONG_LEASE: Duration = Duration::from_secs(600);

/// An hour ago, on a whole second plus 123 ms, and the same on every call: fixtures are stamped
/// relative to it. A fixed date would be older than the store's own 90-day TTL index on
/// `raw_articles.crawled_at`, and MongoDB's TTL monitor (every 60 s) could delete documents in
/// the middle of the suite.
fn t(offset_secs: i64) -> DateTime<Utc> {
    static ANCHOR: std::sync::OnceLock<DateTime<Utc>> = std::sync::OnceLock::new();
    let anchor = ANCHOR.get_or_init(|| {
        let hour_ago = (Utc::now() - ChronoDuration::hours(1)).timestamp();
        DateTime::from_timestamp_millis(hour_ago * 1000 + 123).unwrap()
    });
    *anchor + ChronoDuration::seconds(offset_secs)
}

/// Every fixture time (the suite uses offsets up to 401 s) stays well inside the TTL, however
/// long the suite runs.
#[test]
fn fixture_times_are_far_from_the_ttl_index() {
    use tradepipe::store::mongo::RAW_ARTICLE_TTL;
    let ttl = ChronoDuration::from_std(RAW_ARTICLE_TTL).unwrap();
    for offset in [0, 401] {
        let age = Utc::now() - t(offset);
        assert!(
            age < ttl - ChronoDuration::days(1),
            "fixture t({offset}) is {age} old"
        );
    }
    assert_eq!(
        t(0).timestamp_subsec_millis(),
        123,
        "millisecond precision is exercised"
    );
}

fn source(name: &str) -> NewsSource {
    NewsSource {
        name: name.to_string(),
        base_url: format!("https://{}.example", name.to_lowercase()),
        feed_url: Some(format!("https://{}.example/rss", name.to_lowercase())),
        kind: SourceKind::Rss,
        is_active: true,
        crawl_interval_minutes: 15,
        selectors: SourceSelectors {
            article_list: Some("article.card".into()),
            title: Some("h1.title".into()),
            body: Some("div.content".into()),
            published_date: Some("time".into()),
            author: None,
        },
        rate_limit: RateLimit {
            requests_per_minute: 12,
            delay_ms: 2500,
        },
        metadata: SourceMetadata {
            reliability_score: 0.95,
            language: "en".into(),
            categories: vec!["crypto".into(), "markets".into()],
        },
        allowed_hosts: Vec::new(),
        allow_private_network: false,
        last_crawled_at: None,
    }
}

fn raw(url: &str, crawled_at: DateTime<Utc>) -> RawArticle {
    RawArticle {
        id: String::new(),
        url: url.to_string(),
        url_hash: url_hash(url),
        source_name: "Wire".into(),
        raw_html: format!("<html><body><h1>{url}</h1><p>Body of {url}</p></body></html>"),
        response_headers: BTreeMap::from([
            (
                "content-type".to_string(),
                "text/html; charset=utf-8".to_string(),
            ),
            (
                "last-modified".to_string(),
                "Mon, 15 Jan 2024 10:00:00 GMT".to_string(),
            ),
        ]),
        http_status: 200,
        crawled_at,
        processing_status: ProcessingStatus::Pending,
        retry_count: 0,
        error_message: None,
        feed_entry: Some(FeedEntryMeta {
            title: Some(format!("Feed title of {url}")),
            published_at: Some(crawled_at - ChronoDuration::minutes(30)),
            author: Some("Feed Author".into()),
            summary: None,
            categories: vec!["markets".into()],
        }),
    }
}

/// An article with every field set, nested ones included, so a round trip checks them all.
fn article_for(raw: &RawArticle, title: &str, body: &str) -> Article {
    Article {
        id: String::new(),
        raw_article_id: raw.id.clone(),
        url: raw.url.clone(),
        url_hash: raw.url_hash.clone(),
        title: title.to_string(),
        body: body.to_string(),
        excerpt: body.chars().take(40).collect(),
        source: ArticleSource {
            id: "wire-source-id".into(),
            name: raw.source_name.clone(),
            url: "https://wire.example".into(),
        },
        author: ArticleAuthor {
            name: Some("Jane Doe".into()),
            profile_url: Some("https://wire.example/authors/jane-doe".into()),
        },
        published_at: Some(raw.crawled_at - ChronoDuration::hours(2)),
        crawled_at: raw.crawled_at,
        normalized_at: raw.crawled_at + ChronoDuration::seconds(61),
        word_count: body.split_whitespace().count() as u32,
        reading_time_minutes: 1,
        language: Some("en".into()),
        symbols: vec!["BTCUSDT".into(), "ETHUSDT".into()],
        tags: vec!["bitcoin".into(), "rally".into()],
        categories: vec!["markets".into()],
        images: vec![
            ArticleImage {
                url: "https://wire.example/img/chart.png".into(),
                alt: Some("Bitcoin chart".into()),
                kind: "featured".into(),
            },
            ArticleImage {
                url: "https://wire.example/img/inline.jpg".into(),
                alt: None,
                kind: "inline".into(),
            },
        ],
        metadata: ArticleMetadata {
            og_title: Some(format!("OG {title}")),
            og_description: Some("An open graph description".into()),
            canonical_url: Some(raw.url.clone()),
        },
        analysis_status: ProcessingStatus::Pending,
    }
}

/// A well-formed id (same length and alphabet as `id`) that names nothing: the last hex digit
/// changed. Works for UUIDs and ObjectIds alike.
fn sibling_id(id: &str) -> String {
    let mut s = id.to_string();
    let last = s.pop().unwrap();
    s.push(if last == '0' { '1' } else { '0' });
    s
}

fn delta(before: &StoreCounts, after: &StoreCounts) -> [i64; 5] {
    let d = |a: u64, b: u64| b as i64 - a as i64;
    [
        d(before.raw_pending, after.raw_pending),
        d(before.raw_processing, after.raw_processing),
        d(before.raw_completed, after.raw_completed),
        d(before.raw_failed, after.raw_failed),
        d(before.articles, after.articles),
    ]
}

async fn insert(store: &dyn DocumentStore, raw: &RawArticle) -> RawArticle {
    let id = store
        .insert_raw_article(raw)
        .await
        .unwrap()
        .expect("a new url_hash is inserted");
    RawArticle { id, ..raw.clone() }
}

/// Runs every step on one store. Call on a fresh, empty store.
pub async fn conformance(store: Arc<dyn FullDocumentStore>) {
    store.prepare().await.unwrap();
    store.prepare().await.expect("prepare is idempotent");
    store.ping().await.unwrap();
    assert_eq!(store.counts().await.unwrap(), StoreCounts::default());

    sources(&*store).await;
    raw_insert_dedups(&*store).await;
    concurrent_claims_are_disjoint(store.clone() as Arc<dyn DocumentStore>).await;
    leases_and_order(&*store).await;
    complete_and_fail(&*store).await;
    analysis_queue_and_results(&*store).await;
    predictions_are_stored_once_and_scored_once(&*store).await;
}

/// Upsert by name keeps one source and its last_crawled_at; mark_crawled; unknown names.
async fn sources(store: &dyn DocumentStore) {
    let wire = source("Wire");
    let other = source("Other");
    store
        .upsert_sources(&[wire.clone(), other.clone()])
        .await
        .unwrap();
    assert_eq!(store.source("Wire").await.unwrap(), Some(wire.clone()));
    assert_eq!(store.source("Other").await.unwrap(), Some(other));
    assert_eq!(store.source("Nobody").await.unwrap(), None);

    store.mark_crawled("Wire", t(5)).await.unwrap();
    assert_eq!(
        store.source("Wire").await.unwrap().unwrap().last_crawled_at,
        Some(t(5))
    );
    assert!(matches!(
        store.mark_crawled("Nobody", t(5)).await,
        Err(StoreError::NotFound { .. })
    ));

    // The configuration changes; the same name twice in one call and once more: one source,
    // the last configuration, the crawl time kept.
    let mut changed = wire.clone();
    changed.base_url = "https://wire.example/new".into();
    changed.kind = SourceKind::Html;
    changed.is_active = false;
    changed.crawl_interval_minutes = 30;
    changed.selectors.author = Some("span.author".into());
    changed.rate_limit.delay_ms = 4000;
    changed.metadata.reliability_score = 0.5;
    changed.feed_url = None;
    store
        .upsert_sources(&[wire.clone(), changed.clone()])
        .await
        .unwrap();
    store.upsert_sources(&[changed.clone()]).await.unwrap();
    let stored = store.source("Wire").await.unwrap().unwrap();
    assert_eq!(
        stored,
        NewsSource {
            last_crawled_at: Some(t(5)),
            ..changed
        }
    );
}

/// A page is stored once per url_hash; known_url_hashes reports exactly the stored ones.
async fn raw_insert_dedups(store: &dyn DocumentStore) {
    let before = store.counts().await.unwrap();
    let page = raw("https://wire.example/a/dedup", t(10));
    let stored = insert(store, &page).await;
    assert!(!stored.id.is_empty());
    assert_eq!(
        store.raw_article(&stored.id).await.unwrap(),
        Some(stored.clone())
    );

    let mut again = page.clone();
    again.raw_html = "<html>different body, same URL</html>".into();
    assert_eq!(
        store.insert_raw_article(&again).await.unwrap(),
        None,
        "a known url_hash is not stored again"
    );
    assert_eq!(
        store
            .raw_article(&stored.id)
            .await
            .unwrap()
            .unwrap()
            .raw_html,
        page.raw_html,
        "the first page is kept"
    );

    let unknown = url_hash("https://wire.example/never-crawled");
    let known = store
        .known_url_hashes(&[page.url_hash.clone(), unknown])
        .await
        .unwrap();
    assert_eq!(known, HashSet::from([page.url_hash.clone()]));
    assert!(store.known_url_hashes(&[]).await.unwrap().is_empty());

    assert_eq!(store.raw_article("no-such-id").await.unwrap(), None);
    assert_eq!(
        store.raw_article(&sibling_id(&stored.id)).await.unwrap(),
        None
    );

    let mut bad = raw("https://wire.example/a/bad-hash", t(11));
    bad.url_hash = bad.url_hash.to_uppercase();
    assert!(matches!(
        store.insert_raw_article(&bad).await,
        Err(StoreError::Invalid(_))
    ));

    let after = store.counts().await.unwrap();
    assert_eq!(delta(&before, &after), [1, 0, 0, 0, 0]);

    // Leave nothing claimable: fail it for good.
    store
        .fail_raw_article(&stored.id, "cleanup", 0)
        .await
        .unwrap();
}

async fn claim_until_empty(store: Arc<dyn DocumentStore>) -> Vec<String> {
    let mut got = Vec::new();
    loop {
        let batch = store.claim_raw_articles(3, LONG_LEASE).await.unwrap();
        if batch.is_empty() {
            return got;
        }
        for r in batch {
            assert_eq!(r.processing_status, ProcessingStatus::Processing);
            got.push(r.id);
        }
        tokio::task::yield_now().await;
    }
}

/// Two claimers racing over the same PENDING pages: every page goes to exactly one of them.
async fn concurrent_claims_are_disjoint(store: Arc<dyn DocumentStore>) {
    let before = store.counts().await.unwrap();
    let mut ids = HashSet::new();
    for i in 0..60 {
        let page = raw(&format!("https://wire.example/race/{i}"), t(100 + i));
        ids.insert(insert(&*store, &page).await.id);
    }
    let a = tokio::spawn(claim_until_empty(store.clone()));
    let b = tokio::spawn(claim_until_empty(store.clone()));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    let set_a: HashSet<_> = a.iter().cloned().collect();
    let set_b: HashSet<_> = b.iter().cloned().collect();
    assert_eq!(set_a.len(), a.len(), "claimer A got a page twice");
    assert_eq!(set_b.len(), b.len(), "claimer B got a page twice");
    assert!(
        set_a.is_disjoint(&set_b),
        "both claimers got {:?}",
        set_a.intersection(&set_b).collect::<Vec<_>>()
    );
    let union: HashSet<_> = set_a.union(&set_b).cloned().collect();
    assert_eq!(union, ids, "every page is claimed");
    assert!(
        store
            .claim_raw_articles(10, LONG_LEASE)
            .await
            .unwrap()
            .is_empty(),
        "leased pages are not handed out again"
    );
    let mid = store.counts().await.unwrap();
    assert_eq!(delta(&before, &mid), [0, 60, 0, 0, 0]);

    for id in &ids {
        store.fail_raw_article(id, "cleanup", 0).await.unwrap();
    }
    let after = store.counts().await.unwrap();
    assert_eq!(delta(&before, &after), [0, 0, 0, 60, 0]);
}

/// Oldest first; a live lease keeps a page, an expired one gives it back.
async fn leases_and_order(store: &dyn DocumentStore) {
    // Inserted newest first, so insertion order cannot pass for age order.
    let c = insert(store, &raw("https://wire.example/lease/c", t(203))).await;
    let b = insert(store, &raw("https://wire.example/lease/b", t(202))).await;
    let a = insert(store, &raw("https://wire.example/lease/a", t(201))).await;

    let first = store.claim_raw_articles(2, LONG_LEASE).await.unwrap();
    let first_ids: Vec<_> = first.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(first_ids, [a.id.as_str(), b.id.as_str()], "oldest first");

    let short = store
        .claim_raw_articles(5, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(short.len(), 1);
    assert_eq!(short[0].id, c.id);
    assert_eq!(
        store
            .raw_article(&c.id)
            .await
            .unwrap()
            .unwrap()
            .processing_status,
        ProcessingStatus::Processing
    );
    assert!(
        store
            .claim_raw_articles(5, LONG_LEASE)
            .await
            .unwrap()
            .is_empty(),
        "live leases are not claimable"
    );

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = store.claim_raw_articles(5, LONG_LEASE).await.unwrap();
    let again_ids: Vec<_> = again.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        again_ids,
        [c.id.as_str()],
        "only the expired lease is claimable"
    );
    assert!(
        store
            .claim_raw_articles(5, LONG_LEASE)
            .await
            .unwrap()
            .is_empty()
    );

    for id in [&a.id, &b.id, &c.id] {
        store.fail_raw_article(id, "cleanup", 0).await.unwrap();
    }
}

/// Completing inserts the article once (a repeat returns the same id) and every field round
/// trips; failures go back to PENDING below max_retries and to FAILED at it.
async fn complete_and_fail(store: &dyn DocumentStore) {
    let before = store.counts().await.unwrap();
    let a = insert(store, &raw("https://wire.example/done/a", t(301))).await;
    let b = insert(store, &raw("https://wire.example/done/b", t(302))).await;
    let claimed = store.claim_raw_articles(10, LONG_LEASE).await.unwrap();
    assert_eq!(claimed.len(), 2);

    let art = article_for(
        &a,
        "Bitcoin Surges Past $50,000",
        "Bitcoin surged past fifty thousand dollars as institutional interest grew.",
    );
    let id = store.complete_raw_article(&a.id, &art).await.unwrap();
    assert!(!id.is_empty());
    assert_eq!(
        store.complete_raw_article(&a.id, &art).await.unwrap(),
        id,
        "completing twice returns the stored article"
    );
    let stored_raw = store.raw_article(&a.id).await.unwrap().unwrap();
    assert_eq!(stored_raw.processing_status, ProcessingStatus::Completed);
    assert_eq!(
        store.article_by_url_hash(&art.url_hash).await.unwrap(),
        Some(Article {
            id: id.clone(),
            ..art.clone()
        }),
        "every field round-trips"
    );
    assert_eq!(
        store
            .article_by_url_hash(&url_hash("https://wire.example/nothing"))
            .await
            .unwrap(),
        None
    );

    // Another page that normalizes to the same url_hash: still one article.
    let mut same = art.clone();
    same.raw_article_id = String::new();
    same.title = "A different title".into();
    assert_eq!(store.complete_raw_article(&b.id, &same).await.unwrap(), id);
    assert_eq!(
        store
            .article_by_url_hash(&art.url_hash)
            .await
            .unwrap()
            .unwrap()
            .title,
        art.title
    );
    // An article naming another raw page than the one completed is refused.
    let mut mismatched = article_for(&b, "x", "y");
    mismatched.raw_article_id = a.id.clone();
    assert!(matches!(
        store.complete_raw_article(&b.id, &mismatched).await,
        Err(StoreError::Invalid(_))
    ));
    let mut orphan = art.clone();
    orphan.raw_article_id.clear();
    assert!(matches!(
        store
            .complete_raw_article(&sibling_id(&a.id), &orphan)
            .await,
        Err(StoreError::NotFound { .. })
    ));
    // A completed page stays completed when a late worker reports a failure.
    store.fail_raw_article(&a.id, "late", 3).await.unwrap();
    assert_eq!(
        store
            .raw_article(&a.id)
            .await
            .unwrap()
            .unwrap()
            .processing_status,
        ProcessingStatus::Completed
    );
    assert!(
        store
            .claim_raw_articles(10, LONG_LEASE)
            .await
            .unwrap()
            .is_empty(),
        "completed pages are not claimable"
    );

    // Failures: max_retries = 3. The error text starts with '$' on purpose (MongoDB would read
    // an unquoted one as a field path).
    let c = insert(store, &raw("https://wire.example/fail/c", t(303))).await;
    for attempt in 1..=3u32 {
        let claimed = store.claim_raw_articles(10, LONG_LEASE).await.unwrap();
        assert_eq!(
            claimed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            [c.id.as_str()]
        );
        assert_eq!(claimed[0].retry_count, attempt - 1);
        let error = format!("$timeout: attempt {attempt}");
        store.fail_raw_article(&c.id, &error, 3).await.unwrap();
        let stored = store.raw_article(&c.id).await.unwrap().unwrap();
        assert_eq!(stored.retry_count, attempt);
        assert_eq!(stored.error_message.as_deref(), Some(error.as_str()));
        let expected = if attempt < 3 {
            ProcessingStatus::Pending
        } else {
            ProcessingStatus::Failed
        };
        assert_eq!(
            stored.processing_status, expected,
            "after attempt {attempt}"
        );
    }
    assert!(
        store
            .claim_raw_articles(10, LONG_LEASE)
            .await
            .unwrap()
            .is_empty(),
        "FAILED pages are not claimable"
    );
    assert!(matches!(
        store.fail_raw_article(&sibling_id(&c.id), "x", 3).await,
        Err(StoreError::NotFound { .. })
    ));

    let after = store.counts().await.unwrap();
    // a and b completed, c failed, one article.
    assert_eq!(delta(&before, &after), [0, 0, 2, 1, 1]);
}

#[sqlx::test(migrations = "./migrations")]
async fn postgres_store_conforms(pool: PgPool) {
    conformance(Arc::new(PgDocumentStore::new(pool.clone()))).await;

    // What the trait cannot show: one row per source name, one article row.
    let sources: i64 =
        sqlx::query_scalar("SELECT count(*) FROM content.news_sources WHERE name = 'Wire'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(sources, 1);
}

/// The seed's columns are filled from the article, and full-text search finds it by a stemmed
/// body word that is not in the title.
#[sqlx::test(migrations = "./migrations")]
async fn postgres_articles_are_searchable(pool: PgPool) {
    let store = PgDocumentStore::new(pool.clone());
    store.prepare().await.unwrap();
    let page = insert(&store, &raw("https://wire.example/fts", t(0))).await;
    let art = article_for(
        &page,
        "Bitcoin Surges Past $50,000",
        "Institutional investors were accumulating coins throughout the week.",
    );
    let id = store.complete_raw_article(&page.id, &art).await.unwrap();
    let other = insert(&store, &raw("https://wire.example/fts-other", t(1))).await;
    store
        .complete_raw_article(
            &other.id,
            &article_for(&other, "Ether upgrade", "Gas fees fell."),
        )
        .await
        .unwrap();

    let found: Vec<String> = sqlx::query_scalar(
        "SELECT id::text FROM content.articles
         WHERE search @@ websearch_to_tsquery('english', 'accumulate')",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(found, std::slice::from_ref(&id));

    let (title, body, source_name, symbols, status, raw_id, published_at): (
        String,
        String,
        String,
        Vec<String>,
        String,
        String,
        Option<DateTime<Utc>>,
    ) = sqlx::query_as(
        "SELECT title, body, source_name, symbols::text[], status, raw_article_id::text,
                published_at
         FROM content.articles WHERE id = $1::uuid",
    )
    .bind(&id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(title, art.title);
    assert_eq!(body, art.body);
    assert_eq!(source_name, "Wire");
    assert_eq!(symbols, art.symbols);
    assert_eq!(status, "NORMALIZED");
    assert_eq!(raw_id, page.id);
    assert_eq!(published_at, art.published_at);
}

/// The same suite on MongoDB, in a throw-away database that is dropped even when the suite
/// fails. Also checks what only MongoDB has: the seed's indexes (the 90-day TTL among them) and
/// dates stored as BSON dates (a TTL index ignores anything else).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs MONGODB_URL (docker compose up -d mongodb); scripts/test runs it when set"]
async fn mongodb_store_conforms() {
    use futures_util::FutureExt;

    let url = std::env::var("MONGODB_URL").expect(
        "MONGODB_URL: this test runs against a real MongoDB \
         (docker compose up -d mongodb; MONGODB_URL=mongodb://127.0.0.1:27017)",
    );
    let name = format!("tradepipe_test_{:016x}", rand::random::<u64>());
    let store = MongoDocumentStore::connect(&url, &name).await.unwrap();
    let db = store.database().clone();
    let outcome = std::panic::AssertUnwindSafe(async {
        conformance(Arc::new(store)).await;
        mongo_layout(&db).await;
    })
    .catch_unwind()
    .await;
    db.drop().await.unwrap();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn mongo_layout(db: &mongodb::Database) {
    use futures_util::TryStreamExt;
    use mongodb::IndexModel;
    use mongodb::bson::{Bson, Document, doc};

    let expected: [(&str, &[&str]); 3] = [
        (
            "news_sources",
            &[
                "name_unique",
                "is_active",
                "last_crawled_at",
                "is_active_last_crawled_at",
            ],
        ),
        (
            "raw_articles",
            &[
                "url_hash_unique",
                "processing_status_crawled_at",
                "source_name",
                "crawled_at_ttl",
                "processing_status_lease_until",
            ],
        ),
        (
            "articles",
            &[
                "url_hash_unique",
                "published_at_desc",
                "source_name_published_at",
                "symbols_published_at",
                "tags",
                "analysis_status",
                "title_body_text",
            ],
        ),
    ];
    for (collection, names) in expected {
        let indexes: Vec<IndexModel> = db
            .collection::<Document>(collection)
            .list_indexes()
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let by_name = |n: &str| {
            indexes
                .iter()
                .find(|m| m.options.as_ref().and_then(|o| o.name.as_deref()) == Some(n))
                .unwrap_or_else(|| panic!("{collection} has no index {n}: {indexes:?}"))
        };
        for n in names {
            by_name(n);
        }
        let unique = by_name(if collection == "news_sources" {
            "name_unique"
        } else {
            "url_hash_unique"
        });
        assert_eq!(unique.options.as_ref().unwrap().unique, Some(true));
        if collection == "raw_articles" {
            let ttl = by_name("crawled_at_ttl");
            assert_eq!(ttl.keys, doc! { "crawled_at": 1 });
            assert_eq!(
                ttl.options.as_ref().unwrap().expire_after,
                Some(Duration::from_secs(7_776_000))
            );
        }
        if collection == "articles" {
            // A text index is listed by its internal keys.
            assert_eq!(
                by_name("title_body_text").keys.get("_fts"),
                Some(&Bson::String("text".into()))
            );
        }
    }

    let raw = db
        .collection::<Document>("raw_articles")
        .find_one(doc! {})
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(raw.get("crawled_at"), Some(Bson::DateTime(_))),
        "{raw:?}"
    );
    let article = db
        .collection::<Document>("articles")
        .find_one(doc! {})
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        article.get("published_at"),
        Some(Bson::DateTime(_))
    ));
    let sources = db
        .collection::<Document>("news_sources")
        .count_documents(doc! { "name": "Wire" })
        .await
        .unwrap();
    assert_eq!(sources, 1, "upsert by name keeps one source");
}

/// The factory opens what the configuration names; a MongoDB that cannot be reached is a
/// retryable error (the pipeline backs off and tries again), and its message does not contain
/// the password from the URL. This part runs without a MongoDB server.
#[sqlx::test(migrations = "./migrations")]
async fn factory_opens_the_configured_backend(pool: PgPool) {
    let mut cfg = DocumentsConfig::default();
    assert_eq!(cfg.backend, DocumentBackend::Postgres);
    let store = open_document_store(&cfg, pool.clone()).await.unwrap();
    store.prepare().await.unwrap();
    store.upsert_sources(&[source("Wire")]).await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM content.news_sources")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 1, "the default backend writes to PostgreSQL");

    cfg.backend = DocumentBackend::Mongodb;
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    cfg.mongodb_url =
        Secret("mongodb://app:hunter2secret@127.0.0.1:1/?serverSelectionTimeoutMS=300".into());
    let store = open_document_store(&cfg, pool).await.unwrap();
    let err = store.prepare().await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(!err.to_string().contains("hunter2secret"), "{err}");
    assert!(store.ping().await.unwrap_err().is_retryable());
}

// ---------------------------------------------------------------------------------------------
// Analysis: the article queue, analysis_results, trend_predictions

/// A stored article, PENDING analysis.
async fn stored_article(
    store: &dyn FullDocumentStore,
    url: &str,
    title: &str,
    body: &str,
    crawled: i64,
) -> Article {
    let r = insert(store, &raw(url, t(crawled))).await;
    let claimed = store.claim_raw_articles(100, LONG_LEASE).await.unwrap();
    assert!(claimed.iter().any(|c| c.id == r.id));
    let mut article = article_for(&r, title, body);
    article.id = store.complete_raw_article(&r.id, &article).await.unwrap();
    article
}

fn analysed(article: &Article, at: DateTime<Utc>) -> AnalysisRecord {
    let a = Analyzer::new().analyze(&article.title, &article.body, &article.symbols);
    AnalysisRecord::new(&article.id, &article.symbols, a, at)
}

fn counts_delta(before: &AnalysisCounts, after: &AnalysisCounts) -> [i64; 5] {
    let d = |a: u64, b: u64| b as i64 - a as i64;
    [
        d(before.pending, after.pending),
        d(before.processing, after.processing),
        d(before.completed, after.completed),
        d(before.failed, after.failed),
        d(before.results, after.results),
    ]
}

/// Claims with leases, one result per article whatever happens, FAILED is final, COMPLETED
/// stays so, and the predictor's evidence query finds what was analysed.
async fn analysis_queue_and_results(store: &dyn FullDocumentStore) {
    // Articles left PENDING by the earlier steps are analysed first, like any backlog.
    let backlog = store
        .claim_articles_for_analysis(1000, LONG_LEASE)
        .await
        .unwrap();
    for a in &backlog {
        assert!(store.complete_analysis(&analysed(a, t(50))).await.unwrap());
    }
    let before = store.analysis_counts().await.unwrap();
    assert_eq!((before.pending, before.processing), (0, 0));
    let mut wire = source("Wire");
    wire.metadata.reliability_score = 0.8;
    store.upsert_sources(&[wire]).await.unwrap();

    let bull = stored_article(store, "https://wire.example/a/etf-inflows", "Bitcoin surges as ETF inflows hit a record", "Bitcoin rallied 8 percent after record inflows into spot bitcoin ETFs, and analysts expect further gains.", 1).await;
    let hack = stored_article(store, "https://wire.example/a/exchange-hack", "Exchange hacked, ether slumps", "Hackers drained 200 million dollars of ether from the exchange; the price of ether fell 6 percent.", 2).await;
    let slow = stored_article(
        store,
        "https://wire.example/a/slow",
        "Markets wait for the Fed",
        "Traders were cautious ahead of the decision.",
        3,
    )
    .await;
    let mid = store.analysis_counts().await.unwrap();
    assert_eq!(counts_delta(&before, &mid), [3, 0, 0, 0, 0]);

    let claimed = store
        .claim_articles_for_analysis(2, LONG_LEASE)
        .await
        .unwrap();
    let ids: Vec<&str> = claimed.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, [bull.id.as_str(), hack.id.as_str()], "oldest first");
    assert!(
        claimed
            .iter()
            .all(|a| a.analysis_status == ProcessingStatus::Processing)
    );
    assert_eq!(
        claimed[0].title, bull.title,
        "the claimed article is the stored one"
    );
    // A short lease on the third: it runs out and the article is handed out again.
    let short = store
        .claim_articles_for_analysis(10, Duration::from_millis(1))
        .await
        .unwrap();
    assert_eq!(short.len(), 1);
    assert_eq!(short[0].id, slow.id);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let again = store
        .claim_articles_for_analysis(10, LONG_LEASE)
        .await
        .unwrap();
    assert_eq!(
        again.iter().map(|a| a.id.clone()).collect::<Vec<_>>(),
        std::slice::from_ref(&slow.id)
    );
    assert!(
        store
            .claim_articles_for_analysis(10, LONG_LEASE)
            .await
            .unwrap()
            .is_empty(),
        "leased articles are not handed out"
    );

    let record = analysed(&bull, t(120));
    assert!(record.symbols.contains(&"BTCUSDT".to_string()));
    assert!(store.complete_analysis(&record).await.unwrap());
    assert!(
        !store
            .complete_analysis(&analysed(&bull, t(121)))
            .await
            .unwrap(),
        "an article is analysed into one result"
    );
    let stored = store
        .analysis_for_article(&bull.id)
        .await
        .unwrap()
        .expect("stored");
    assert!(!stored.id.is_empty());
    assert_eq!(
        AnalysisRecord {
            id: String::new(),
            ..stored
        },
        record,
        "the first result is kept whole"
    );
    assert_eq!(
        store
            .analysis_for_article(&sibling_id(&bull.id))
            .await
            .unwrap(),
        None
    );

    // The hack article fails for good; failing a completed article changes nothing.
    store
        .fail_analysis(&hack.id, "model exploded")
        .await
        .unwrap();
    store
        .fail_analysis(&bull.id, "late failure report")
        .await
        .unwrap();
    assert!(matches!(
        store.fail_analysis(&sibling_id(&hack.id), "x").await,
        Err(StoreError::NotFound { .. })
    ));
    let mut unknown = analysed(&slow, t(130));
    unknown.article_id = sibling_id(&slow.id);
    assert!(matches!(
        store.complete_analysis(&unknown).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(
        store
            .complete_analysis(&analysed(&slow, t(130)))
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_articles_for_analysis(10, LONG_LEASE)
            .await
            .unwrap()
            .is_empty(),
        "FAILED and COMPLETED are final"
    );
    let after = store.analysis_counts().await.unwrap();
    assert_eq!(counts_delta(&before, &after), [0, 0, 2, 1, 2]);
    let bull_stored = store
        .article_by_url_hash(&bull.url_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bull_stored.analysis_status, ProcessingStatus::Completed);

    // Evidence: the analysed articles tagged BTCUSDT since a time, with the source's reliability.
    let evidence = store.recent_evidence("BTCUSDT", t(110)).await.unwrap();
    let ids: HashSet<&str> = evidence.iter().map(|e| e.article_id.as_str()).collect();
    assert_eq!(
        ids,
        HashSet::from([bull.id.as_str(), slow.id.as_str()]),
        "newer than t(110), failed excluded"
    );
    let e = evidence.iter().find(|e| e.article_id == bull.id).unwrap();
    assert_eq!(
        (e.title.as_str(), e.source_name.as_str()),
        (bull.title.as_str(), "Wire")
    );
    assert_eq!(e.reliability, 0.8, "the source's reliability_score");
    assert_eq!(e.sentiment, record.analysis.sentiment);
    assert_eq!(e.analyzed_at, t(120));
    assert_eq!(e.published_at, bull.published_at);
    assert!(
        e.relevance.is_some_and(|r| r > 0.0),
        "Bitcoin is an entity of the article"
    );
    assert!(
        store
            .recent_evidence("BTCUSDT", t(200))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .recent_evidence("XRPUSDT", t(0))
            .await
            .unwrap()
            .is_empty()
    );
}

fn prediction_at(symbol: &str, minute: i64) -> TrendPredictionRecord {
    let market = MarketView {
        prediction_time: DateTime::from_timestamp(1_723_161_600 + minute * 60, 0).unwrap(),
        base_price: "61837.63".parse().unwrap(),
        minute_volatility: Some(0.0004),
    };
    let weigh = WeighParams {
        window: ChronoDuration::hours(24),
        half_life: ChronoDuration::hours(6),
    };
    let calibration = HorizonCalibration::no_edge("1h", 3600, "test");
    build_prediction(
        symbol,
        ("1h", 3600),
        &market,
        &[],
        t(300),
        &weigh,
        &calibration,
    )
}

async fn predictions_are_stored_once_and_scored_once(store: &dyn FullDocumentStore) {
    let before = store.analysis_counts().await.unwrap();
    let p0 = prediction_at("BTCUSDT", 0);
    let id0 = store.insert_prediction(&p0).await.unwrap().expect("new");
    assert!(
        store.insert_prediction(&p0).await.unwrap().is_none(),
        "one prediction per market time"
    );
    let p1 = prediction_at("BTCUSDT", 5);
    let id1 = store.insert_prediction(&p1).await.unwrap().expect("new");
    store
        .insert_prediction(&prediction_at("ETHUSDT", 0))
        .await
        .unwrap()
        .expect("other symbol");

    let due_at = p0.due_at();
    assert!(
        store
            .due_predictions("BTCUSDT", due_at - ChronoDuration::seconds(1), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let due = store.due_predictions("BTCUSDT", due_at, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        due[0],
        TrendPredictionRecord {
            id: id0.clone(),
            ..p0.clone()
        },
        "stored whole"
    );
    let due = store
        .due_predictions("BTCUSDT", p1.due_at() + ChronoDuration::hours(1), 10)
        .await
        .unwrap();
    assert_eq!(
        due.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        [id0.as_str(), id1.as_str()],
        "oldest due first"
    );

    let (outcome, accuracy) = score(&due[0], "62100.5".parse().unwrap(), due_at, t(400));
    assert!(
        store
            .score_prediction(&id0, &outcome, accuracy)
            .await
            .unwrap()
    );
    let (other, _) = score(&due[0], "1".parse().unwrap(), due_at, t(401));
    assert!(
        !store.score_prediction(&id0, &other, 0.0).await.unwrap(),
        "scored once"
    );
    assert!(matches!(
        store
            .score_prediction(&sibling_id(&id0), &outcome, 0.5)
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(
        store.score_prediction(&id1, &outcome, 1.5).await.is_err(),
        "accuracy is 0..1"
    );

    let due = store
        .due_predictions("BTCUSDT", p1.due_at() + ChronoDuration::hours(1), 10)
        .await
        .unwrap();
    assert_eq!(
        due.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        [id1.as_str()],
        "scored ones are no longer due"
    );
    let scored = store
        .predictions("BTCUSDT", Some("1h"), true, 10)
        .await
        .unwrap();
    assert_eq!(scored.len(), 1);
    assert_eq!(scored[0].actual_outcome.as_ref(), Some(&outcome));
    assert_eq!(scored[0].accuracy_score, Some(accuracy));
    assert_eq!(
        scored[0].actual_outcome.as_ref().map(|o| o.direction),
        Some(Direction::Up)
    );
    let all = store.predictions("BTCUSDT", None, false, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        [id1.as_str(), id0.as_str()],
        "newest first"
    );
    assert!(
        store
            .predictions("BTCUSDT", Some("24h"), false, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let after = store.analysis_counts().await.unwrap();
    assert_eq!(
        (
            after.predictions - before.predictions,
            after.predictions_scored - before.predictions_scored
        ),
        (3, 1)
    );
}
