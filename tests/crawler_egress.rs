//! The crawler's egress policy (issue 16, docs/SECURITY.md), against real sockets.
//!
//! A news site on 127.0.0.1 lists three pages: a real article on its own host, a link straight
//! to an "internal service" on 127.0.0.2 (standing in for a cloud metadata endpoint), and a
//! page on its own host that redirects there. The real daemon crawls it (the site opted into
//! private addresses, as the test and demo sites must): the article is stored, analysed and
//! announced; the other two end FAILED as `blocked_host`, with nothing of them stored, analysed
//! or published, and the internal service never sees a request.
//!
//! The fetcher on its own: a name resolving to loopback (`localhost`) and a loopback literal
//! are refused as `blocked_address` for a source that did not opt in, before any connection.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use sqlx::PgPool;
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tradepipe::domain::NewsSource;
use tradepipe::news::crawl::egress::EgressPolicy;
use tradepipe::news::crawl::fetch::{FetchError, FetchSettings, PoliteFetcher};
use tradepipe_testkit::support::*;

const CREDENTIALS_PATH: &str = "/latest/meta-data/iam/security-credentials/role";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/// Counts every request the "internal service" receives: it must stay at zero.
async fn internal_service(port: u16) -> Arc<AtomicUsize> {
    let hits = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .fallback(|State(hits): State<Arc<AtomicUsize>>| async move {
            hits.fetch_add(1, Ordering::SeqCst);
            format!("{{\"AccessKeyId\":\"ASIAEXAMPLE\",\"SecretAccessKey\":\"{SECRET}\"}}")
        })
        .with_state(hits.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.2", port))
        .await
        .expect("bind 127.0.0.2 (Linux routes all of 127/8 to loopback)");
    tokio::spawn(async move { axum::serve(listener, app).await });
    hits
}

struct Site {
    article: String,
    internal: String,
}

/// The news site: a feed with the three links, the article, and the redirect.
async fn news_site(internal_port: u16) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let page = std::fs::read_dir(repo_root().join("data/news/pages"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".html.gz"))
        .min()
        .expect("a demo page");
    let mut article = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(page).unwrap())
        .read_to_string(&mut article)
        .unwrap();
    let site = Arc::new(Site {
        article,
        internal: format!("http://127.0.0.2:{internal_port}{CREDENTIALS_PATH}"),
    });
    let app = Router::new()
        .route(
            "/feed.xml",
            get(move |State(site): State<Arc<Site>>| async move {
                let item = |title: &str, link: &str| {
                    format!(
                        "<item><title>{title}</title><link>{link}</link>\
                         <pubDate>Mon, 30 Nov 2026 12:00:00 GMT</pubDate></item>"
                    )
                };
                let body = format!(
                    "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Site</title>\
                     <link>http://{addr}/</link>{}{}{}</channel></rss>",
                    item("A real article", &format!("http://{addr}/news/article")),
                    item("Internal service", &site.internal),
                    item("Looks local", &format!("http://{addr}/go")),
                );
                ([(header::CONTENT_TYPE, "application/rss+xml")], body)
            }),
        )
        .route(
            "/news/article",
            get(|State(site): State<Arc<Site>>| async move {
                (
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    site.article.clone(),
                )
            }),
        )
        .route(
            "/go",
            get(|State(site): State<Arc<Site>>| async move {
                Response::builder()
                    .status(StatusCode::FOUND)
                    .header(header::LOCATION, site.internal.as_str())
                    .body(axum::body::Body::empty())
                    .unwrap()
            }),
        )
        .fallback(|| async { StatusCode::NOT_FOUND.into_response() })
        .with_state(site);
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[sqlx::test(migrations = false)]
async fn links_and_redirects_off_the_sources_host_are_refused_and_nothing_of_them_is_kept(
    pool: PgPool,
) {
    let internal_port = free_port();
    let hits = internal_service(internal_port).await;
    let site = news_site(internal_port).await;
    let sources = std::env::temp_dir().join(format!("tp-egress-{}.toml", std::process::id()));
    std::fs::write(
        &sources,
        format!(
            "[[sources]]\nname = \"loopback-site\"\nbase_url = \"http://{site}/\"\n\
             feed_url = \"http://{site}/feed.xml\"\ntype = \"RSS\"\nis_active = true\n\
             allow_private_network = true\n\
             rate_limit = {{ requests_per_minute = 600, delay_ms = 50 }}\n"
        ),
    )
    .unwrap();

    let (_replay, port) = start_replay(&["--max"]);
    let mut env = DaemonEnv::new(&pool, port, "egress");
    env.extra_env.extend([
        (
            "TRADEPIPE_SOURCES_FILE".to_string(),
            sources.display().to_string(),
        ),
        ("TRADEPIPE__NEWS__POLL_INTERVAL_MS".into(), "200".into()),
        ("TRADEPIPE__ANALYSIS__POLL_INTERVAL_MS".into(), "200".into()),
    ]);
    let published: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let client = redis::Client::open(env.redis_url()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub
        .psubscribe(format!("{}*", env.redis_prefix))
        .await
        .unwrap();
    let sink = published.clone();
    let listener = tokio::spawn(async move {
        let mut messages = pubsub.on_message();
        while let Some(m) = messages.next().await {
            let payload: String = m.get_payload().unwrap_or_default();
            sink.lock()
                .unwrap()
                .push((m.get_channel_name().to_string(), payload));
        }
    });

    let mut daemon = env.start(&[]);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (raw, analysed): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM content.raw_articles),
                    (SELECT count(*) FROM content.articles WHERE analysis_status = 'COMPLETED')",
        )
        .fetch_one(&pool)
        .await
        .unwrap_or((0, 0));
        if raw >= 3 && analysed >= 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "crawl not done: {raw} raw pages, {analysed} analysed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The announcement follows the analysis commit: give it a moment to arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let metrics = env.metrics();
    assert!(daemon.terminate(Duration::from_secs(30)).success());
    listener.abort();

    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the internal service was reached"
    );
    let rows: Vec<(String, String, Option<String>, i64)> = sqlx::query_as(
        "SELECT url, processing_status, error_message, length(raw_html)::int8
         FROM content.raw_articles ORDER BY url",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    let blocked: Vec<_> = rows.iter().filter(|r| r.1 == "FAILED").collect();
    assert_eq!(blocked.len(), 2, "{rows:?}");
    for (url, _, error, html_len) in &blocked {
        let error = error.as_deref().unwrap_or("");
        assert!(error.starts_with("blocked_host:"), "{url}: {error}");
        assert_eq!(*html_len, 0, "{url}: a refused page keeps no body");
    }
    assert!(
        blocked.iter().any(|r| r.0.ends_with("/go")),
        "the redirect to the internal host is the one refused: {rows:?}"
    );

    let articles: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT url, body FROM content.articles")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(articles.len(), 1, "only the real article becomes one");
    assert!(articles[0].0.ends_with("/news/article"));
    let leaked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM content.raw_articles WHERE raw_html LIKE '%' || $1 || '%'",
    )
    .bind(SECRET)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(leaked, 0);

    let published = published.lock().unwrap().clone();
    let announced: Vec<_> = published
        .iter()
        .filter(|(c, _)| c.ends_with("articles:new"))
        .collect();
    assert_eq!(announced.len(), 1, "one announcement: {announced:?}");
    assert!(
        published
            .iter()
            .all(|(_, p)| !p.contains(SECRET) && !p.contains(CREDENTIALS_PATH)),
        "nothing of the internal service was published"
    );
    let blocked_series: f64 = metrics
        .lines()
        .filter(|l| {
            l.starts_with("tradepipe_crawl_errors_total{") && l.contains("kind=\"blocked_host\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(blocked_series, 2.0, "{metrics}");
    let _ = std::fs::remove_file(&sources);
}

fn fetcher_for(base_url: &str, allow_private_network: bool) -> PoliteFetcher {
    let source: NewsSource = toml::from_str(&format!(
        "name = \"s\"\nbase_url = {base_url:?}\ntype = \"HTML\"\n\
         allow_private_network = {allow_private_network}\n"
    ))
    .unwrap();
    let settings = FetchSettings {
        user_agent: "tradepipe-test/1".into(),
        request_timeout: Duration::from_secs(5),
        max_redirects: 5,
        max_body_bytes: 1 << 20,
        respect_robots_txt: false,
        max_retry_after: Duration::from_secs(1),
    };
    PoliteFetcher::new(
        "s",
        &source.rate_limit,
        EgressPolicy::for_source(&source).unwrap(),
        settings,
    )
    .unwrap()
}

#[tokio::test]
async fn without_the_opt_in_loopback_is_refused_by_name_and_by_literal_before_connecting() {
    let hits = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .fallback(|State(hits): State<Arc<AtomicUsize>>| async move {
            hits.fetch_add(1, Ordering::SeqCst);
            "hello"
        })
        .with_state(hits.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });

    // By name: `localhost` resolves to loopback only, so the resolver hands the client nothing.
    let by_name = fetcher_for(&format!("http://localhost:{port}/"), false);
    match by_name
        .fetch(&format!("http://localhost:{port}/page"))
        .await
    {
        Err(e @ FetchError::Blocked { .. }) => {
            assert_eq!(e.kind(), "blocked_address", "{e}");
            assert!(e.to_string().contains("allow_private_network"), "{e}");
        }
        other => panic!("expected blocked_address, got {other:?}"),
    }
    // By literal: no resolution happens, so the literal itself is judged.
    let by_literal = fetcher_for(&format!("http://127.0.0.1:{port}/"), false);
    let e = by_literal
        .fetch(&format!("http://127.0.0.1:{port}/page"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "blocked_address", "{e}");
    assert_eq!(hits.load(Ordering::SeqCst), 0, "a refused fetch connected");

    // The same site with the opt-in is fetched: the refusals above were the policy's doing.
    let opted_in = fetcher_for(&format!("http://localhost:{port}/"), true);
    let page = opted_in
        .fetch(&format!("http://localhost:{port}/page"))
        .await
        .unwrap();
    assert_eq!(page.body, "hello");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}
