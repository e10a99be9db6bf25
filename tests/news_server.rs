//! The local news server over real sockets, with the real pages of `data/news/pages`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use tradepipe::news::crawl::feeds::{parse_feed, parse_listing};
use tradepipe_testkit::news_server::{EntryKind, NewsServer, NewsServerConfig, start};

const OVERSIZED: u64 = 1536 * 1024;

fn pages_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/news/pages")
}

async fn server(sources: usize) -> NewsServer {
    start(NewsServerConfig {
        pages_dir: pages_dir(),
        listen: "127.0.0.1:0".parse().unwrap(),
        sources,
        oversized_bytes: OVERSIZED,
    })
    .await
    .unwrap()
}

fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn feeds_and_listings_list_every_page() {
    let srv = server(3).await;
    let page_files = std::fs::read_dir(pages_dir())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".html.gz")
        })
        .count();
    let listed_pages: usize = srv
        .sources()
        .iter()
        .flat_map(|s| &s.entries)
        .filter(|e| e.page_id.is_some())
        .count();
    assert_eq!(listed_pages, page_files, "every real page is listed once");
    let c = plain_client();
    for (i, s) in srv.sources().iter().enumerate() {
        let want: BTreeSet<String> = s.entries.iter().map(|e| srv.url(&e.path)).collect();
        for feed in ["feed.xml", "atom.xml"] {
            let url = srv.url(&format!("/{}/{feed}", s.name));
            let body = c.get(&url).send().await.unwrap().bytes().await.unwrap();
            let items = parse_feed(&body, &url).unwrap();
            let got: BTreeSet<String> = items.iter().map(|i| i.url.clone()).collect();
            assert_eq!(got, want, "{url}");
            for (item, entry) in items.iter().zip(&s.entries) {
                assert_eq!(item.meta.title.as_deref(), Some(entry.title.as_str()));
                assert!(item.meta.published_at.is_some());
            }
        }
        let url = srv.url(&format!("/{}/latest", s.name));
        let html = c.get(&url).send().await.unwrap().text().await.unwrap();
        let got: BTreeSet<String> = parse_listing(&html, &url, "article.article-card")
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(got, want, "{url}");
        // The configuration points each source at the document of its type.
        let cfg = &srv.news_sources()[i];
        assert_eq!(cfg.name, s.name);
    }
    // Titles come from the pages' <title>.
    let titled = srv.sources()[0]
        .entries
        .iter()
        .filter(|e| e.kind == EntryKind::Page);
    assert!(titled.clone().all(|e| !e.title.starts_with("Article ")));
    srv.shutdown().await;
}

#[tokio::test]
async fn robots_disallows_the_private_article() {
    let srv = server(2).await;
    let c = plain_client();
    let robots = c
        .get(srv.url("/robots.txt"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let robot = texting_robots::Robot::new("tradepipe", robots.as_bytes()).unwrap();
    let private: Vec<_> = srv
        .sources()
        .iter()
        .flat_map(|s| &s.entries)
        .filter(|e| e.kind == EntryKind::Private)
        .collect();
    assert_eq!(private.len(), 1);
    assert!(!robot.allowed(&srv.url(&private[0].path)));
    let ordinary = srv.sources()[0]
        .entries
        .iter()
        .find(|e| e.kind == EntryKind::Page)
        .unwrap();
    assert!(robot.allowed(&srv.url(&ordinary.path)));
    // The page exists: only robots.txt keeps a polite crawler away.
    let r = c.get(srv.url(&private[0].path)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    srv.shutdown().await;
}

#[tokio::test]
async fn feeds_answer_conditional_requests_with_304() {
    let srv = server(2).await;
    let c = plain_client();
    let url = srv.url("/local-1/feed.xml");
    let first = c.get(&url).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    let lm = first.headers()["last-modified"]
        .to_str()
        .unwrap()
        .to_string();
    let r = c
        .get(&url)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = c
        .get(&url)
        .header("If-Modified-Since", &lm)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = c
        .get(&url)
        .header("If-None-Match", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .get(&url)
        .header("If-Modified-Since", "Mon, 01 Jan 2001 00:00:00 GMT")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let log = srv.requests();
    assert_eq!(log.len(), 5);
    assert_eq!(log[1].headers.get("if-none-match"), Some(&etag));
    assert_eq!(log[1].status, 304);
    srv.shutdown().await;
}

#[tokio::test]
async fn redirect_is_a_chain_of_two_301s_to_a_real_page() {
    let srv = server(2).await;
    let c = plain_client();
    let entry = srv
        .sources()
        .iter()
        .flat_map(|s| &s.entries)
        .find(|e| e.kind == EntryKind::Redirect)
        .unwrap()
        .clone();
    let mut url = srv.url(&entry.path);
    for _ in 0..2 {
        let r = c.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 301);
        url = srv.url(r.headers()["location"].to_str().unwrap());
    }
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(url.ends_with(entry.page_id.as_deref().unwrap()));
    srv.shutdown().await;
}

#[tokio::test]
async fn oversized_page_is_streamed_past_the_cap() {
    let srv = server(2).await;
    let c = plain_client();
    let r = c
        .get(srv.url("/local-1/articles/oversized"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.content_length().is_none(), "streamed, no Content-Length");
    assert_eq!(r.bytes().await.unwrap().len() as u64, OVERSIZED);
    let r = c
        .get(srv.url("/local-1/articles/oversized-declared"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.content_length(), Some(OVERSIZED));
    srv.shutdown().await;
}

#[tokio::test]
async fn malformed_page_is_invalid_utf8_and_broken_html() {
    let srv = server(2).await;
    let c = plain_client();
    let malformed = srv
        .sources()
        .iter()
        .flat_map(|s| &s.entries)
        .find(|e| e.kind == EntryKind::Malformed)
        .unwrap()
        .clone();
    let body = c
        .get(srv.url(&malformed.path))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(std::str::from_utf8(&body).is_err());
    assert!(body.windows(5).filter(|w| w == b"<div>").count() >= 1000);
    srv.shutdown().await;
}

#[tokio::test]
async fn pages_are_gzip_encoded_when_accepted_and_sources_toml_parses() {
    let srv = server(2).await;
    let entry = srv.sources()[0]
        .entries
        .iter()
        .find(|e| e.kind == EntryKind::Page)
        .unwrap();
    let gz = reqwest::Client::builder().gzip(true).build().unwrap();
    let r = gz.get(srv.url(&entry.path)).send().await.unwrap();
    let text = r.text().await.unwrap();
    assert!(text.to_lowercase().contains("<html"));
    let raw = reqwest::Client::builder()
        .gzip(false)
        .build()
        .unwrap()
        .get(srv.url(&entry.path))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.headers()["content-encoding"], "gzip");

    #[derive(serde::Deserialize)]
    struct Doc {
        sources: Vec<tradepipe::domain::NewsSource>,
    }
    let doc: Doc = toml::from_str(&srv.sources_toml()).unwrap();
    assert_eq!(doc.sources, srv.news_sources());
    assert_eq!(doc.sources.len(), 2);
    assert!(
        doc.sources[0]
            .feed_url
            .as_deref()
            .unwrap()
            .ends_with("/local-1/feed.xml")
    );
    assert_eq!(
        doc.sources[1].selectors.article_list.as_deref(),
        Some("article.article-card")
    );
    srv.shutdown().await;
}
