//! The SentimentActor in-process against the real PostgreSQL store and Redis: it analyses every
//! PENDING article, takes over an article whose worker died (PROCESSING with an expired lease),
//! never analyses one twice (a second actor started afterwards finds nothing to do), records a
//! failure for an article it cannot analyse, and announces each result once on `articles:new`.

use chrono::Utc;
use futures_util::StreamExt;
use sqlx::PgPool;
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tradepipe::actors::sentiment::{self, SentimentActor, StopAnalyzing};
use tradepipe::config::AnalysisConfig;
use tradepipe::config::RedisTarget;
use tradepipe::news::normalize::{build_article, raw_from_file};
use tradepipe::store::postgres::PgDocumentStore;
use tradepipe::store::redis::{AnalysisPublisher, RedisKeys};
use tradepipe::store::{AnalysisStore, DocumentStore};
use tradepipe_model::aliases::SymbolAliases;
use tradepipe_model::analysis::Analyzer;

fn redis_url() -> String {
    std::env::var("TRADEPIPE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The real pages shipped for the demo, normalized into PENDING articles.
async fn store_pages(store: &PgDocumentStore, n: usize) -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/news/pages");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".html.gz"))
        .collect();
    files.sort();
    let mut ids = Vec::new();
    for (i, path) in files.iter().take(n).enumerate() {
        let mut html = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
            .read_to_string(&mut html)
            .unwrap();
        let url = format!("https://news.example/articles/{i}");
        let raw = raw_from_file(html, &url, "Wire", Utc::now()).unwrap();
        let raw_id = store.insert_raw_article(&raw).await.unwrap().unwrap();
        let claimed = store
            .claim_raw_articles(1, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(claimed[0].id, raw_id);
        let article = build_article(
            &claimed[0],
            None,
            &SymbolAliases::default_crypto(),
            Utc::now(),
        )
        .unwrap();
        ids.push(store.complete_raw_article(&raw_id, &article).await.unwrap());
    }
    ids
}

async fn wait_until_analysed(store: &PgDocumentStore, expected_done: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let c = store.analysis_counts().await.unwrap();
        if c.completed + c.failed >= expected_done && c.pending + c.processing == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "analysis did not finish: {c:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn start_actor(
    store: &PgDocumentStore,
    publisher: AnalysisPublisher,
) -> actix::Addr<SentimentActor> {
    let cfg = AnalysisConfig {
        workers: 2,
        claim_batch: 3, // smaller than the backlog: the actor must go round several times
        claim_lease_secs: 60,
        poll_interval_ms: 50,
        ..AnalysisConfig::default()
    };
    let pool = sentiment::start_pool(cfg.workers, Arc::new(Analyzer::new()));
    let store: Arc<dyn AnalysisStore> = Arc::new(store.clone());
    actix::Supervisor::start(move |_| SentimentActor::new(store, pool, publisher, cfg))
}

/// Actors need an actix system: the scenario runs in one on its own thread, on the fresh test
/// database `#[sqlx::test]` made.
#[sqlx::test(migrations = "./migrations")]
async fn every_article_is_analysed_once_including_a_dead_workers(pool: PgPool) {
    let options = pool.connect_options().as_ref().clone();
    let scenario = std::thread::spawn(move || {
        actix::System::new().block_on(async move {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(5)
                .connect_with(options)
                .await
                .unwrap();
            scenario(pool).await;
        })
    });
    tokio::task::spawn_blocking(move || scenario.join())
        .await
        .unwrap()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
}

async fn scenario(pool: PgPool) {
    let store = PgDocumentStore::new(pool.clone());
    let ids = store_pages(&store, 7).await;

    // A worker claimed one article and died: PROCESSING with a lease that has run out.
    sqlx::query(
        "UPDATE content.articles SET analysis_status = 'PROCESSING',
                analysis_lease_until = now() - interval '1 second'
         WHERE id = $1::uuid",
    )
    .bind(&ids[0])
    .execute(&pool)
    .await
    .unwrap();
    // An article whose text is empty still gets a (neutral) analysis; one with a title only too.
    sqlx::query(
        "UPDATE content.articles SET doc = jsonb_set(doc, '{body}', '\"\"') WHERE id = $1::uuid",
    )
    .bind(&ids[1])
    .execute(&pool)
    .await
    .unwrap();

    let prefix = format!("test:sentiment:{}:", rand::random::<u32>());
    let client = redis::Client::open(redis_url()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub
        .subscribe(format!("{prefix}articles:new"))
        .await
        .unwrap();
    let publisher = AnalysisPublisher::connect(
        &RedisTarget::from_url(&redis_url()),
        RedisKeys::new(prefix.clone()),
    )
    .await
    .unwrap();

    let actor = start_actor(&store, publisher.clone());
    wait_until_analysed(&store, ids.len() as u64).await;
    actor.send(StopAnalyzing).await.unwrap();

    let c = store.analysis_counts().await.unwrap();
    assert_eq!(
        (c.completed, c.failed, c.results),
        (ids.len() as u64, 0, ids.len() as u64)
    );
    for id in &ids {
        let r = store
            .analysis_for_article(id)
            .await
            .unwrap()
            .expect("a result per article");
        assert_eq!(r.article_id, *id);
    }

    // A second actor (a restart) finds nothing to analyse again.
    let again = start_actor(&store, publisher);
    tokio::time::sleep(Duration::from_millis(500)).await;
    again.send(StopAnalyzing).await.unwrap();
    assert_eq!(
        store.analysis_counts().await.unwrap().results,
        ids.len() as u64
    );

    // One announcement per article, naming it.
    let mut messages = pubsub.on_message();
    let mut announced = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(500), messages.next()).await
    {
        let v: serde_json::Value =
            serde_json::from_str(&m.get_payload::<String>().unwrap()).unwrap();
        announced.push(v["id"].as_str().unwrap().to_string());
    }
    announced.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(announced, expected);

    // Statistics per label add up to the articles analysed.
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let stats: std::collections::HashMap<String, u64> = redis::cmd("HGETALL")
        .arg(format!("{prefix}stats:sentiment:count"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(stats.values().sum::<u64>(), ids.len() as u64);
    let _: () = redis::cmd("DEL")
        .arg(format!("{prefix}stats:sentiment:count"))
        .arg(format!("{prefix}stats:articles:analyzed"))
        .arg(format!(
            "{prefix}stats:sentiment:{}",
            Utc::now().date_naive()
        ))
        .query_async(&mut conn)
        .await
        .unwrap();
}
