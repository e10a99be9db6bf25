//! `tradepipe-testkit news-server`: a local news site built from the real pages in `data/news/pages`, so
//! the crawler can be demonstrated and tested end to end without the internet, including the
//! unpleasant parts of the web.
//!
//! The pages are split over N sources named `local-1`..`local-N`. Source `i` (0-based) is an RSS
//! source reading `/<source>/feed.xml` when `i % 3 == 0`, an HTML source reading the listing page
//! `/<source>/latest` when `i % 3 == 1`, and an RSS source reading the Atom feed
//! `/<source>/atom.xml` when `i % 3 == 2`; every source has all three documents. Each page is
//! served at `/<source>/articles/<id>` (gzip-encoded when the client accepts it, as stored).
//!
//! The awkward cases, each listed in a feed so that a crawler meets them:
//! - `/robots.txt` disallows `/private/`, and the first page (sorted ids) is listed only at
//!   `/private/local-1/articles/<id>` (in `local-1`);
//! - the second page is listed at `/<s>/r/<id>`, which answers 301 to `/<s>/moved/<id>`, which
//!   answers 301 to `/<s>/articles/<id>` (in `local-2`, or `local-1` when there is one source);
//! - `/local-1/articles/oversized` streams `oversized_bytes` without a Content-Length;
//!   `/local-1/articles/oversized-declared` (not listed) sends the same with one;
//! - `/<s>/articles/malformed` has invalid UTF-8 bytes and thousands of unclosed nested tags
//!   (in the same source as the redirect).
//!
//! With `--fault-pages` ([`FaultPages`], for the fault suite) `local-1` also lists pages that
//! attack the crawler: `/local-1/articles/slow-loris` trickles one byte per second,
//! `/local-1/articles/endless` streams `endless_bytes` (1 GiB by default) without a
//! Content-Length, `/local-1/articles/gzip-bomb` is a small gzip body that inflates to about as
//! much, and `/<s>/articles/deep` (with the malformed page) is a real-looking article wrapped in
//! 100,000 nested `<div>`s with invalid UTF-8 bytes in its text.
//!
//! Feeds carry an ETag and a Last-Modified and answer `If-None-Match` / `If-Modified-Since` with
//! 304. Every request is logged (path, arrival time, headers, status) for tests to inspect.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration as ChronoDuration, SubsecRound, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use tradepipe::domain::news::{NewsSource, RateLimit, SourceKind, SourceMetadata, SourceSelectors};

/// The disallowed prefix announced in `/robots.txt`.
pub const PRIVATE_PREFIX: &str = "/private/";
/// Chunk size of the streamed oversized page.
const CHUNK: usize = 64 * 1024;

/// Command-line options of `tradepipe-testkit news-server`.
#[derive(clap::Args, Debug, Clone)]
pub struct NewsServerArgs {
    /// Directory with `<id>.html.gz` pages and `urls.json`.
    #[arg(long, value_name = "DIR", default_value = "data/news/pages")]
    pub pages: PathBuf,
    /// Address to serve on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8088")]
    pub listen: SocketAddr,
    /// Split the pages over this many sources.
    #[arg(long, default_value_t = 2)]
    pub sources: usize,
    /// Size of the oversized page (make it larger than `news.max_body_bytes`).
    #[arg(long, value_name = "BYTES", default_value_t = 6 * 1024 * 1024)]
    pub oversized_bytes: u64,
    /// Also write a `config/sources.toml`-style file pointing at this server.
    #[arg(long, value_name = "FILE")]
    pub write_sources: Option<PathBuf>,
    /// Also list the pages that attack a crawler (slow-loris, endless, gzip bomb, deep nesting).
    #[arg(long)]
    pub fault_pages: bool,
}

/// The hostile pages of `--fault-pages` (none by default).
#[derive(Debug, Clone, Default)]
pub struct FaultPages {
    pub enabled: bool,
    /// Body size of `/local-1/articles/endless`, and roughly the inflated size of the gzip bomb
    /// (0 = 1 GiB).
    pub endless_bytes: u64,
}

/// Default size of the endless page and the gzip bomb.
pub const ENDLESS_BYTES: u64 = 1 << 30;
/// The slow-loris page sends one byte per this interval, for at most this many bytes.
const SLOW_LORIS_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
const SLOW_LORIS_BYTES: usize = 3600;
/// Nesting depth of the deep page.
pub const DEEP_NESTING: usize = 100_000;
/// A sentence of the deep page's article text, for tests to find in the normalized body.
pub const DEEP_SENTINEL: &str =
    "Deep inside the nested markup, bitcoin miners kept their rigs running";

#[derive(Debug, Clone)]
pub struct NewsServerConfig {
    pub pages_dir: PathBuf,
    pub listen: SocketAddr,
    pub sources: usize,
    pub oversized_bytes: u64,
}

impl Default for NewsServerConfig {
    fn default() -> Self {
        NewsServerConfig {
            pages_dir: PathBuf::from("data/news/pages"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8088)),
            sources: 2,
            oversized_bytes: 6 * 1024 * 1024,
        }
    }
}

impl From<&NewsServerArgs> for NewsServerConfig {
    fn from(a: &NewsServerArgs) -> Self {
        NewsServerConfig {
            pages_dir: a.pages.clone(),
            listen: a.listen,
            sources: a.sources,
            oversized_bytes: a.oversized_bytes,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NewsServerError {
    #[error("reading pages from {path}: {message}")]
    Pages { path: PathBuf, message: String },
    #[error("invalid news server options: {0}")]
    Args(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// What a listed URL is, so tests know what the crawler should make of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A real page, served directly.
    Page,
    /// A real page under the robots.txt-disallowed prefix.
    Private,
    /// A real page reached through two 301s.
    Redirect,
    /// Larger than the cap; streamed without a Content-Length.
    Oversized,
    /// Invalid UTF-8 and unclosed, deeply nested tags (still a 200 page).
    Malformed,
    /// `--fault-pages`: one byte per second, never finishing within any sane timeout.
    SlowLoris,
    /// `--fault-pages`: an endless (1 GiB) body without a Content-Length.
    Endless,
    /// `--fault-pages`: a gzip body of about a MiB that inflates to about 1 GiB.
    GzipBomb,
    /// `--fault-pages`: an article inside 100,000 nested `<div>`s, with invalid UTF-8 bytes.
    DeepNesting,
}

/// One URL listed in a source's feeds and listing page.
#[derive(Debug, Clone)]
pub struct ListedEntry {
    /// Path on this server (prefix with [`NewsServer::base_url`]).
    pub path: String,
    pub kind: EntryKind,
    pub title: String,
    /// Id of the real page in `data/news/pages`, when there is one.
    pub page_id: Option<String>,
    /// Where the page was originally published.
    pub original_url: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ServedSource {
    pub name: String,
    pub entries: Vec<ListedEntry>,
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct LoggedRequest {
    /// Path and query.
    pub path: String,
    /// Arrival time.
    pub at: Instant,
    /// Lower-case names.
    pub headers: BTreeMap<String, String>,
    pub status: u16,
}

enum Resource {
    Page {
        gz: Bytes,
        html: Bytes,
    },
    Feed {
        body: Bytes,
        content_type: &'static str,
        etag: String,
    },
    Html(Bytes),
    Text(Bytes),
    Redirect(String),
    Oversized {
        declared: bool,
    },
    Malformed(Bytes),
    SlowLoris,
    Endless,
    GzipBomb,
}

struct Shared {
    routes: HashMap<String, Resource>,
    last_modified: DateTime<Utc>,
    oversized_bytes: u64,
    endless_bytes: u64,
    /// Bytes of the endless page and the gzip bomb actually handed to the network.
    hostile_bytes_sent: Arc<std::sync::atomic::AtomicU64>,
    log: Mutex<Vec<LoggedRequest>>,
}

/// A running news server (see [`start`]).
pub struct NewsServer {
    addr: SocketAddr,
    sources: Vec<ServedSource>,
    shared: Arc<Shared>,
    cancel: CancellationToken,
    server: tokio::task::JoinHandle<()>,
}

impl NewsServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>` without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    /// What each source lists.
    pub fn sources(&self) -> &[ServedSource] {
        &self.sources
    }

    /// The sources as configuration (see [`news_sources`]).
    pub fn news_sources(&self) -> Vec<NewsSource> {
        news_sources(self.addr, self.sources.len())
    }

    /// A `config/sources.toml` document for this server.
    pub fn sources_toml(&self) -> String {
        sources_toml(self.addr, self.sources.len())
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared
            .log
            .lock()
            .map(|l| l.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Bytes of `--fault-pages`' endless page and gzip bomb handed to clients so far: a client
    /// that stops at its cap leaves this far below the page size.
    pub fn hostile_bytes_sent(&self) -> u64 {
        self.shared
            .hostile_bytes_sent
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn shutdown_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    pub async fn shutdown(self) {
        self.cancel.cancel();
        let _ = self.server.await;
    }
}

fn source_name(i: usize) -> String {
    format!("local-{}", i + 1)
}

/// The listing document source `i` is configured to read.
fn source_feed_path(i: usize) -> (SourceKind, String) {
    let name = source_name(i);
    match i % 3 {
        0 => (SourceKind::Rss, format!("/{name}/feed.xml")),
        1 => (SourceKind::Html, format!("/{name}/latest")),
        _ => (SourceKind::Rss, format!("/{name}/atom.xml")),
    }
}

/// The `n` sources served at `addr`, active, as the crawler's configuration: one request per
/// second at most (the demo's politeness, not the seed's 6 s, so a demo round takes seconds).
pub fn news_sources(addr: SocketAddr, n: usize) -> Vec<NewsSource> {
    (0..n)
        .map(|i| {
            let (kind, path) = source_feed_path(i);
            let name = source_name(i);
            NewsSource {
                base_url: format!("http://{addr}/{name}/"),
                feed_url: Some(format!("http://{addr}{path}")),
                kind,
                is_active: true,
                crawl_interval_minutes: 15,
                selectors: SourceSelectors {
                    article_list: (kind == SourceKind::Html)
                        .then(|| "article.article-card".to_string()),
                    ..SourceSelectors::default()
                },
                rate_limit: RateLimit {
                    requests_per_minute: 60,
                    delay_ms: 1000,
                },
                metadata: SourceMetadata {
                    reliability_score: 0.5,
                    language: "en".into(),
                    categories: vec!["news".into()],
                },
                // This server runs on loopback: the explicit opt-in to private addresses.
                allowed_hosts: Vec::new(),
                allow_private_network: true,
                last_crawled_at: None,
                name,
            }
        })
        .collect()
}

/// A `config/sources.toml`-style document (`[[sources]]` with the seed's fields) for `n` sources
/// served at `addr`.
pub fn sources_toml(addr: SocketAddr, n: usize) -> String {
    #[derive(Serialize)]
    struct Doc {
        sources: Vec<NewsSource>,
    }
    let doc = Doc {
        sources: news_sources(addr, n),
    };
    let body = toml::to_string(&doc).unwrap_or_else(|e| format!("# cannot serialize: {e}\n"));
    format!(
        "# Sources served by `tradepipe-testkit news-server` at http://{addr} (generated).\n\n{body}"
    )
}

struct LoadedPage {
    id: String,
    gz: Vec<u8>,
    html: Vec<u8>,
    title: String,
    original_url: Option<String>,
}

fn load_pages(dir: &std::path::Path) -> Result<Vec<LoadedPage>, NewsServerError> {
    let err = |message: String| NewsServerError::Pages {
        path: dir.to_path_buf(),
        message,
    };
    let urls: HashMap<String, serde_json::Value> = std::fs::read(dir.join("urls.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let mut ids: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .map_err(|e| err(e.to_string()))?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".html.gz")
                .map(|id| (id.to_string(), e.path()))
        })
        .collect();
    ids.sort();
    let title_sel = scraper::Selector::parse("title").map_err(|e| err(e.to_string()))?;
    let mut pages = Vec::with_capacity(ids.len());
    for (id, path) in ids {
        let gz = std::fs::read(&path).map_err(|e| err(format!("{}: {e}", path.display())))?;
        let mut html = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut html)
            .map_err(|e| err(format!("{}: {e}", path.display())))?;
        let doc = scraper::Html::parse_document(&String::from_utf8_lossy(&html));
        let title = doc
            .select(&title_sel)
            .next()
            .map(|t| {
                t.text()
                    .collect::<String>()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| format!("Article {id}"));
        let original_url = urls
            .get(&id)
            .and_then(|v| v.get("url"))
            .and_then(|u| u.as_str())
            .map(str::to_string);
        pages.push(LoadedPage {
            id,
            gz,
            html,
            title,
            original_url,
        });
    }
    if pages.len() < 3 {
        return Err(err(format!(
            "need at least 3 pages (<id>.html.gz), found {}",
            pages.len()
        )));
    }
    Ok(pages)
}

/// Loads the pages, binds and starts serving; returns once the address is bound.
pub async fn start(cfg: NewsServerConfig) -> Result<NewsServer, NewsServerError> {
    start_with_faults(cfg, FaultPages::default()).await
}

/// [`start`], also serving the hostile pages of `faults`.
pub async fn start_with_faults(
    cfg: NewsServerConfig,
    faults: FaultPages,
) -> Result<NewsServer, NewsServerError> {
    if cfg.sources == 0 || cfg.sources > 100 {
        return Err(NewsServerError::Args(format!(
            "--sources must be 1..=100, not {}",
            cfg.sources
        )));
    }
    let dir = cfg.pages_dir.clone();
    let pages = tokio::task::spawn_blocking(move || load_pages(&dir))
        .await
        .map_err(|e| NewsServerError::Pages {
            path: cfg.pages_dir.clone(),
            message: e.to_string(),
        })??;
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| NewsServerError::Bind {
            addr: cfg.listen,
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| NewsServerError::Bind {
            addr: cfg.listen,
            source,
        })?;
    let now = Utc::now().trunc_subsecs(0);
    let (routes, sources) = build_site(addr, cfg.sources, pages, now, faults.enabled);
    let shared = Arc::new(Shared {
        routes,
        last_modified: now - ChronoDuration::minutes(5),
        oversized_bytes: cfg.oversized_bytes,
        endless_bytes: match faults.endless_bytes {
            0 => ENDLESS_BYTES,
            n => n,
        },
        hostile_bytes_sent: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        log: Mutex::new(Vec::new()),
    });
    let cancel = CancellationToken::new();
    let app = axum::Router::new()
        .fallback(serve)
        .with_state(shared.clone());
    let stop = cancel.clone();
    let server = tokio::spawn(async move {
        let serving = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned());
        if let Err(e) = serving.await {
            tracing::error!(error = %e, "news server failed");
        }
    });
    tracing::info!(%addr, sources = sources.len(), routes = shared.routes.len(), "news server: serving");
    Ok(NewsServer {
        addr,
        sources,
        shared,
        cancel,
        server,
    })
}

/// `tradepipe-testkit news-server`: serve until Ctrl-C.
pub async fn run(args: NewsServerArgs) -> anyhow::Result<()> {
    let faults = FaultPages {
        enabled: args.fault_pages,
        endless_bytes: 0,
    };
    let server = start_with_faults(NewsServerConfig::from(&args), faults).await?;
    if let Some(path) = &args.write_sources {
        std::fs::write(path, server.sources_toml())
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
        tracing::info!(file = %path.display(), "news server: wrote sources file");
    }
    for s in server.news_sources() {
        tracing::info!(source = %s.name, kind = ?s.kind, feed = ?s.feed_url, "news server: source");
    }
    tracing::info!(base = %server.base_url(), "news server: ready (Ctrl-C stops)");
    let token = server.shutdown_token();
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = token.cancelled() => {}
    }
    server.shutdown().await;
    Ok(())
}

fn build_site(
    addr: SocketAddr,
    n: usize,
    pages: Vec<LoadedPage>,
    now: DateTime<Utc>,
    fault_pages: bool,
) -> (HashMap<String, Resource>, Vec<ServedSource>) {
    let mut routes = HashMap::new();
    let mut sources: Vec<ServedSource> = (0..n)
        .map(|i| ServedSource {
            name: source_name(i),
            entries: Vec::new(),
        })
        .collect();
    let odd_one = 1 % n;
    for (k, p) in pages.into_iter().enumerate() {
        let (src, kind) = match k {
            0 => (0, EntryKind::Private),
            1 => (odd_one, EntryKind::Redirect),
            _ => (k % n, EntryKind::Page),
        };
        let name = source_name(src);
        let served = match kind {
            EntryKind::Private => format!("{PRIVATE_PREFIX}{name}/articles/{}", p.id),
            _ => format!("/{name}/articles/{}", p.id),
        };
        let listed = if kind == EntryKind::Redirect {
            let first = format!("/{name}/r/{}", p.id);
            let second = format!("/{name}/moved/{}", p.id);
            routes.insert(first.clone(), Resource::Redirect(second.clone()));
            routes.insert(second, Resource::Redirect(served.clone()));
            first
        } else {
            served.clone()
        };
        routes.insert(
            served,
            Resource::Page {
                gz: Bytes::from(p.gz),
                html: Bytes::from(p.html),
            },
        );
        sources[src].entries.push(ListedEntry {
            path: listed,
            kind,
            title: p.title,
            page_id: Some(p.id),
            original_url: p.original_url,
        });
    }
    // The synthetic pages: one route each, listed in one source's feeds.
    let mut synthetic = |src: usize, path: String, kind: EntryKind, title: &str, r: Resource| {
        routes.insert(path.clone(), r);
        sources[src].entries.push(ListedEntry {
            path,
            kind,
            title: title.to_string(),
            page_id: None,
            original_url: None,
        });
    };
    let first = source_name(0);
    synthetic(
        0,
        format!("/{first}/articles/oversized"),
        EntryKind::Oversized,
        "An extremely long article",
        Resource::Oversized { declared: false },
    );
    let broken = source_name(odd_one);
    synthetic(
        odd_one,
        format!("/{broken}/articles/malformed"),
        EntryKind::Malformed,
        "A broken page",
        Resource::Malformed(malformed_page()),
    );
    if fault_pages {
        let hostile = [
            ("slow-loris", EntryKind::SlowLoris, Resource::SlowLoris),
            ("endless", EntryKind::Endless, Resource::Endless),
            ("gzip-bomb", EntryKind::GzipBomb, Resource::GzipBomb),
        ];
        for (name, kind, resource) in hostile {
            let title = format!("A hostile page ({name})");
            synthetic(
                0,
                format!("/{first}/articles/{name}"),
                kind,
                &title,
                resource,
            );
        }
        synthetic(
            odd_one,
            format!("/{broken}/articles/deep"),
            EntryKind::DeepNesting,
            "Miners under a mountain of markup",
            Resource::Malformed(deep_page()),
        );
    }
    // Not listed anywhere.
    routes.insert(
        format!("/{first}/articles/oversized-declared"),
        Resource::Oversized { declared: true },
    );
    routes.insert(
        "/robots.txt".into(),
        Resource::Text(Bytes::from(format!(
            "# tradepipe local news server\nUser-agent: *\nDisallow: {PRIVATE_PREFIX}\n"
        ))),
    );
    let base = format!("http://{addr}");
    for s in &sources {
        let rss = rss_feed(&base, s, now);
        let atom = atom_feed(&base, s, now);
        routes.insert(
            format!("/{}/feed.xml", s.name),
            feed(rss, "application/rss+xml"),
        );
        routes.insert(
            format!("/{}/atom.xml", s.name),
            feed(atom, "application/atom+xml"),
        );
        routes.insert(
            format!("/{}/latest", s.name),
            Resource::Html(Bytes::from(listing_page(s))),
        );
    }
    (routes, sources)
}

fn feed(body: String, content_type: &'static str) -> Resource {
    let digest = Sha256::digest(body.as_bytes());
    let mut etag = String::from("\"");
    for b in digest.iter().take(12) {
        let _ = write!(etag, "{b:02x}");
    }
    etag.push('"');
    Resource::Feed {
        body: Bytes::from(body),
        content_type,
        etag,
    }
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// Entry `k` was "published" `k + 1` hours before the server started.
fn published(now: DateTime<Utc>, k: usize) -> DateTime<Utc> {
    now - ChronoDuration::hours(k as i64 + 1)
}

fn rss_feed(base: &str, s: &ServedSource, now: DateTime<Utc>) -> String {
    let mut x = String::new();
    let _ = write!(
        x,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel>\
         <title>{0} (tradepipe local news)</title><link>{base}/{0}/</link>\
         <description>Real article pages served locally</description>\
         <lastBuildDate>{1}</lastBuildDate>\n",
        s.name,
        now.to_rfc2822()
    );
    for (k, e) in s.entries.iter().enumerate() {
        let url = xml_escape(&format!("{base}{}", e.path));
        let _ = writeln!(
            x,
            "<item><title>{}</title><link>{url}</link><guid isPermaLink=\"true\">{url}</guid>\
             <pubDate>{}</pubDate><category>news</category><description>{}</description></item>",
            xml_escape(&e.title),
            published(now, k).to_rfc2822(),
            xml_escape(e.original_url.as_deref().unwrap_or("")),
        );
    }
    x.push_str("</channel></rss>\n");
    x
}

fn atom_feed(base: &str, s: &ServedSource, now: DateTime<Utc>) -> String {
    let mut x = String::new();
    let _ = write!(
        x,
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\
         <title>{0} (tradepipe local news)</title><id>urn:tradepipe:news:{0}</id>\
         <updated>{1}</updated><link rel=\"self\" href=\"{base}/{0}/atom.xml\"/>\n",
        s.name,
        now.to_rfc3339()
    );
    for (k, e) in s.entries.iter().enumerate() {
        let url = xml_escape(&format!("{base}{}", e.path));
        let at = published(now, k).to_rfc3339();
        let _ = writeln!(
            x,
            "<entry><title>{}</title><id>{url}</id><link rel=\"alternate\" href=\"{url}\"/>\
             <published>{at}</published><updated>{at}</updated>\
             <author><name>tradepipe news server</name></author><category term=\"news\"/>\
             <summary>{}</summary></entry>",
            xml_escape(&e.title),
            xml_escape(e.original_url.as_deref().unwrap_or("")),
        );
    }
    x.push_str("</feed>\n");
    x
}

fn listing_page(s: &ServedSource) -> String {
    let mut x = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{0} - latest</title></head>\
         <body><nav><a href=\"/\">Home</a> <a href=\"/{0}/about\">About</a></nav><main>\n",
        s.name
    );
    for e in &s.entries {
        let _ = writeln!(
            x,
            "<article class=\"article-card\"><h2><a href=\"{}\">{}</a></h2></article>",
            xml_escape(&e.path),
            xml_escape(&e.title)
        );
    }
    x.push_str("</main><footer><a href=\"/terms\">Terms</a></footer></body></html>\n");
    x
}

fn malformed_page() -> Bytes {
    let mut b: Vec<u8> = Vec::new();
    b.extend_from_slice(b"<html><head><title>A broken page \xff\xfe</title></head><body>");
    b.extend_from_slice(b"<p>Bitcoin \xc3\x28 price \xe2\x82 broken <b><i>unclosed");
    for _ in 0..5000 {
        b.extend_from_slice(b"<div><span>");
    }
    b.extend_from_slice(b"deep text \x80\x81 <table><tr><td>cell<p>para</table></b>");
    b.extend_from_slice(b"<script>var x = '</div>';</scr");
    Bytes::from(b)
}

/// An article (well over the extractor's minimum length) inside [`DEEP_NESTING`] `<div>`s, with
/// invalid UTF-8 bytes in its text.
fn deep_page() -> Bytes {
    let mut b: Vec<u8> = Vec::with_capacity(DEEP_NESTING * 11 + 4096);
    b.extend_from_slice(
        b"<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Miners under a mountain of markup</title></head><body>",
    );
    for _ in 0..DEEP_NESTING {
        b.extend_from_slice(b"<div>");
    }
    b.extend_from_slice(b"<article><h1>Miners under a mountain of markup</h1>");
    let paragraphs = [
        DEEP_SENTINEL,
        "Hashrate climbed to a record while the difficulty adjustment lagged behind, and several \
         pools reported that fees made up a larger share of block rewards than at any time since \
         the halving, which analysts said pointed to sustained demand for block space.",
        "Ether traded sideways as traders weighed the upcoming network upgrade against outflows \
         from exchange-traded products; options markets priced a wider range for the next month \
         than for the one before, a sign that volatility was expected to return.",
        "Regulators in several jurisdictions published consultations on stablecoin reserves, \
         asking issuers to hold short-dated government debt and to report holdings daily, a rule \
         the larger issuers said they already follow.",
    ];
    for (i, p) in paragraphs.iter().enumerate() {
        b.extend_from_slice(b"<p>");
        b.extend_from_slice(p.as_bytes());
        if i == 1 {
            b.extend_from_slice(b" \xff\xfe broken \xc3\x28 bytes.");
        }
        b.extend_from_slice(b"</p>");
    }
    b.extend_from_slice(b"</article>");
    for _ in 0..DEEP_NESTING {
        b.extend_from_slice(b"</div>");
    }
    b.extend_from_slice(b"</body></html>");
    Bytes::from(b)
}

/// Adds each chunk's length to `counter` as the network takes it.
fn counted(
    counter: Arc<std::sync::atomic::AtomicU64>,
    chunks: impl futures_util::Stream<Item = Bytes> + Send + 'static,
) -> Body {
    use futures_util::StreamExt;
    Body::from_stream(chunks.map(move |c| {
        counter.fetch_add(c.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok::<_, std::io::Error>(c)
    }))
}

/// `total` bytes of article-like HTML, produced lazily chunk by chunk (never held at once).
fn endless_body(total: u64, counter: Arc<std::sync::atomic::AtomicU64>) -> Body {
    let filler = b"<p>Bitcoin rose while ether fell; analysts disagreed at length about why.</p>\n";
    let mut chunk = Vec::with_capacity(CHUNK);
    while chunk.len() + filler.len() <= CHUNK {
        chunk.extend_from_slice(filler);
    }
    let chunk = Bytes::from(chunk);
    let chunks = futures_util::stream::unfold(total, move |left| {
        let chunk = chunk.clone();
        async move {
            (left > 0).then(|| {
                let n = (chunk.len() as u64).min(left) as usize;
                (chunk.slice(..n), left - n as u64)
            })
        }
    });
    counted(counter, chunks)
}

/// A gzip stream that inflates to about `total` bytes: one MiB of HTML compressed once with a
/// full flush (so the block stands alone and byte-aligned), repeated. There is no final block or
/// trailer: a client that reads to the end gets a decoding error, one that caps the inflated
/// size stops long before.
fn gzip_bomb_body(total: u64, counter: Arc<std::sync::atomic::AtomicU64>) -> Body {
    const BLOCK: usize = 1 << 20;
    let mut plain = b"<html><head><title>Bomb</title></head><body><p>".to_vec();
    plain.resize(BLOCK, b'a');
    let mut deflate = flate2::Compress::new(flate2::Compression::best(), false);
    let mut block = Vec::with_capacity(BLOCK / 100 + 1024);
    // With 1 MiB of output room a full flush completes in one call; an error only shortens
    // the bomb, which the caller sees as a smaller page.
    if let Err(e) = deflate.compress_vec(&plain, &mut block, flate2::FlushCompress::Full) {
        tracing::warn!(error = %e, "news server: cannot build the gzip bomb");
    }
    let header = Bytes::from_static(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    let block = Bytes::from(block);
    let blocks = total / BLOCK as u64;
    let chunks = futures_util::stream::iter(
        std::iter::once(header).chain((0..blocks).map(move |_| block.clone())),
    );
    counted(counter, chunks)
}

/// One byte of an HTML page per [`SLOW_LORIS_EVERY`].
fn slow_loris_body() -> Body {
    let page = b"<html><head><title>Slow</title></head><body><p>".repeat(SLOW_LORIS_BYTES / 46 + 1);
    let chunks = futures_util::stream::unfold(0usize, move |i| {
        let byte = page.get(i).copied();
        async move {
            let byte = byte.filter(|_| i < SLOW_LORIS_BYTES)?;
            if i > 0 {
                tokio::time::sleep(SLOW_LORIS_EVERY).await;
            }
            Some((Bytes::copy_from_slice(&[byte]), i + 1))
        }
    });
    use futures_util::StreamExt;
    Body::from_stream(chunks.map(Ok::<_, std::io::Error>))
}

fn oversized_body(total: u64) -> Body {
    let filler = b"<p>Bitcoin rose while ether fell; analysts disagreed at length about why.</p>\n";
    let mut chunk = Vec::with_capacity(CHUNK);
    while chunk.len() + filler.len() <= CHUNK {
        chunk.extend_from_slice(filler);
    }
    let chunk = Bytes::from(chunk);
    const HEAD: &[u8] = b"<html><head><title>Huge</title></head><body>";
    let mut parts: Vec<Result<Bytes, std::io::Error>> = vec![Ok(Bytes::from_static(HEAD))];
    // `total` is kept exact (for the declared Content-Length) as long as it exceeds the head.
    let mut left = total.saturating_sub(HEAD.len() as u64);
    while left > 0 {
        let n = (chunk.len() as u64).min(left) as usize;
        parts.push(Ok(chunk.slice(..n)));
        left -= n as u64;
    }
    Body::from_stream(futures_util::stream::iter(parts))
}

fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn not_modified(headers: &HeaderMap, etag: &str, last_modified: DateTime<Utc>) -> bool {
    // RFC 9110 13.2.2: If-None-Match wins; If-Modified-Since is only looked at without it.
    if let Some(inm) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        return inm
            .split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == "*" || t == etag);
    }
    headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| DateTime::parse_from_rfc2822(v).ok())
        .is_some_and(|ims| last_modified <= ims.with_timezone(&Utc))
}

async fn serve(State(shared): State<Arc<Shared>>, uri: Uri, headers: HeaderMap) -> Response {
    let at = Instant::now();
    let response = respond(&shared, uri.path(), &headers);
    let logged = LoggedRequest {
        path: uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| uri.path().to_string()),
        at,
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        status: response.status().as_u16(),
    };
    match shared.log.lock() {
        Ok(mut l) => l.push(logged),
        Err(p) => p.into_inner().push(logged),
    }
    response
}

fn respond(shared: &Shared, path: &str, headers: &HeaderMap) -> Response {
    let Some(resource) = shared.routes.get(path) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let html = HeaderValue::from_static("text/html; charset=utf-8");
    match resource {
        Resource::Page { gz, html: plain } => {
            let gzip_ok = headers
                .get(header::ACCEPT_ENCODING)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
            if gzip_ok {
                (
                    [
                        (header::CONTENT_TYPE, html),
                        (header::CONTENT_ENCODING, HeaderValue::from_static("gzip")),
                    ],
                    gz.clone(),
                )
                    .into_response()
            } else {
                ([(header::CONTENT_TYPE, html)], plain.clone()).into_response()
            }
        }
        Resource::Feed {
            body,
            content_type,
            etag,
        } => {
            let lm = http_date(shared.last_modified);
            let validators = [
                (header::ETAG, etag.clone()),
                (header::LAST_MODIFIED, lm),
                (header::CACHE_CONTROL, "max-age=60".to_string()),
            ];
            if not_modified(headers, etag, shared.last_modified) {
                (StatusCode::NOT_MODIFIED, validators).into_response()
            } else {
                (
                    validators,
                    [(header::CONTENT_TYPE, content_type.to_string())],
                    body.clone(),
                )
                    .into_response()
            }
        }
        Resource::Html(b) => ([(header::CONTENT_TYPE, html)], b.clone()).into_response(),
        Resource::Text(b) => (
            [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"))],
            b.clone(),
        )
            .into_response(),
        Resource::Redirect(to) => (
            StatusCode::MOVED_PERMANENTLY,
            [(header::LOCATION, to.clone())],
        )
            .into_response(),
        Resource::Oversized { declared } => {
            let mut r = (
                [(header::CONTENT_TYPE, html)],
                oversized_body(shared.oversized_bytes),
            )
                .into_response();
            if *declared {
                r.headers_mut().insert(
                    header::CONTENT_LENGTH,
                    HeaderValue::from(shared.oversized_bytes),
                );
            }
            r
        }
        // No charset: the bytes are not valid in any.
        Resource::Malformed(b) => (
            [(header::CONTENT_TYPE, HeaderValue::from_static("text/html"))],
            b.clone(),
        )
            .into_response(),
        Resource::SlowLoris => ([(header::CONTENT_TYPE, html)], slow_loris_body()).into_response(),
        Resource::Endless => (
            [(header::CONTENT_TYPE, html)],
            endless_body(shared.endless_bytes, shared.hostile_bytes_sent.clone()),
        )
            .into_response(),
        Resource::GzipBomb => (
            [
                (header::CONTENT_TYPE, html),
                (header::CONTENT_ENCODING, HeaderValue::from_static("gzip")),
            ],
            gzip_bomb_body(shared.endless_bytes, shared.hostile_bytes_sent.clone()),
        )
            .into_response(),
    }
}
