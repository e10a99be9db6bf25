//! CrawlerActor: crawls one news source politely, on start and then every
//! `crawl_interval_minutes`, and stores each new page once as a PENDING raw article.
//!
//! A round: take the Redis crawl lock (skip the round if another instance holds it) -> fetch the
//! feed or listing page (conditional GET) -> canonicalize the listed URLs and ask the store which
//! `url_hash`es it knows -> fetch only the new pages through the source's [`PoliteFetcher`] ->
//! store each one -> `mark_crawled` -> release the lock.
//!
//! A page that keeps failing (after `max_retries` retries with backoff within the round) is stored
//! as a FAILED raw article carrying the error: it is visible to operators and not refetched every
//! round forever. A page that robots.txt forbids is neither fetched nor stored (robots.txt may
//! change; the check costs no request). The work runs as a future in the actor's context, like
//! the exchange feed: the arbiter is never blocked, and a panic restarts the actor (counted).

use super::count_restart;
use crate::config::NewsConfig;
use crate::domain::news::{FeedEntryMeta, NewsSource, SourceKind};
use crate::domain::{ProcessingStatus, RawArticle};
use crate::news::crawl::egress::EgressPolicy;
use crate::news::crawl::feeds::{self, FeedItem};
use crate::news::crawl::fetch::{FetchError, FetchSettings, Fetched, FetchedPage, PoliteFetcher};
use crate::news::crawl::lock::{CrawlLock, LockGuard};
use crate::news::normalize::{canonicalize_url, url_hash};
use crate::store::DocumentStore;
use actix::prelude::*;
use chrono::Utc;
use futures_util::FutureExt;
use rand::Rng;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const ACTOR: &str = "crawler";

/// Runs a crawl round now (after any round in progress) and answers with its report.
#[derive(Message)]
#[rtype(result = "RoundReport")]
pub struct CrawlNow;

/// Stops crawling after the page in progress (shutdown). Answered once no round is running.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopCrawling;

/// How a round ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RoundOutcome {
    /// Every listed URL was handled.
    #[default]
    Completed,
    /// Another instance holds the source's lock.
    LockHeld,
    /// The feed answered 304: nothing changed since the last complete round.
    NotModified,
    /// Stopped by `StopCrawling` part-way.
    Stopped,
    /// Failed (lock, listing or store error; see the log); the next round tries again.
    Failed,
}

/// What a round did, for tests and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoundReport {
    pub outcome: RoundOutcome,
    /// Distinct valid URLs listed.
    pub listed: usize,
    /// Already stored before the round.
    pub known: usize,
    /// Stored as PENDING this round.
    pub stored: usize,
    /// Stored as FAILED this round.
    pub failed: usize,
    /// Not fetched: robots.txt disallows them.
    pub disallowed: usize,
    pub error: Option<String>,
}

/// Everything a crawler needs besides the source itself.
#[derive(Clone)]
pub struct CrawlerDeps {
    pub news: Arc<NewsConfig>,
    pub store: Arc<dyn DocumentStore>,
    /// Also carries the Redis key prefix and the connection used for `stats:articles:count`.
    pub lock: CrawlLock,
    /// Replaces `crawl_interval_minutes` (tests, demos).
    pub interval_override: Option<Duration>,
    /// Crawl on start (the default) or only on `CrawlNow` and each interval.
    pub crawl_on_start: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CrawlerSetupError {
    #[error("source {source_name}: type API is not supported by the crawler")]
    ApiUnsupported { source_name: String },
    #[error("source {source_name}: HTML sources need selectors.article_list")]
    NoArticleList { source_name: String },
    #[error("source {source_name}: {message}")]
    Fetcher {
        source_name: String,
        message: String,
    },
}

pub struct CrawlerActor {
    crawl: Arc<Crawl>,
    interval: Duration,
    crawl_on_start: bool,
}

impl CrawlerActor {
    /// Checks the source can be crawled at all (type, selectors) before anything starts.
    pub fn new(source: NewsSource, deps: CrawlerDeps) -> Result<CrawlerActor, CrawlerSetupError> {
        match source.kind {
            SourceKind::Api => {
                return Err(CrawlerSetupError::ApiUnsupported {
                    source_name: source.name,
                });
            }
            SourceKind::Html if source.selectors.article_list.is_none() => {
                return Err(CrawlerSetupError::NoArticleList {
                    source_name: source.name,
                });
            }
            _ => {}
        }
        let egress =
            EgressPolicy::for_source(&source).map_err(|message| CrawlerSetupError::Fetcher {
                source_name: source.name.clone(),
                message,
            })?;
        let fetcher = PoliteFetcher::new(
            &source.name,
            &source.rate_limit,
            egress,
            FetchSettings::from(deps.news.as_ref()),
        )
        .map_err(|e| CrawlerSetupError::Fetcher {
            source_name: source.name.clone(),
            message: e.to_string(),
        })?;
        let interval = deps.interval_override.unwrap_or_else(|| {
            Duration::from_secs(u64::from(source.crawl_interval_minutes.max(1)) * 60)
        });
        // Unique per actor instance: two crawlers in one process must not share a lock owner.
        let owner = format!(
            "{}:{}:{:016x}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into()),
            std::process::id(),
            rand::rng().random::<u64>()
        );
        Ok(CrawlerActor {
            crawl: Arc::new(Crawl {
                source,
                news: deps.news,
                store: deps.store,
                lock: deps.lock,
                fetcher,
                owner,
                stop: CancellationToken::new(),
                round: tokio::sync::Mutex::new(()),
            }),
            interval,
            crawl_on_start: deps.crawl_on_start,
        })
    }

    /// The lock owner id this actor uses.
    pub fn owner(&self) -> &str {
        &self.crawl.owner
    }
}

impl Actor for CrawlerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.crawl.stop.is_cancelled() {
            return;
        }
        let crawl = self.crawl.clone();
        let interval = self.interval;
        let on_start = self.crawl_on_start;
        let schedule = async move {
            let mut wait = if on_start { Duration::ZERO } else { interval };
            loop {
                tokio::select! {
                    _ = crawl.stop.cancelled() => break,
                    _ = tokio::time::sleep(wait) => {}
                }
                if crawl.stop.is_cancelled() {
                    break;
                }
                let report = crawl.run_round().await;
                wait = match report.outcome {
                    // The holder may have died with the lock: look again once it could have
                    // expired instead of a whole crawl interval later.
                    RoundOutcome::LockHeld => crawl.ttl().min(interval),
                    // Store or listing trouble: try again soon, but not in a tight loop.
                    RoundOutcome::Failed => interval.min(Duration::from_secs(60)),
                    _ => interval,
                };
            }
        };
        // A panic must not take the arbiter down: it stops this actor and the supervisor starts
        // it again (counted); the store's url_hash keeps the retried round from duplicating.
        let fut = std::panic::AssertUnwindSafe(schedule).catch_unwind();
        ctx.spawn(fut.into_actor(self).map(|res, act, ctx| {
            if res.is_err() {
                tracing::error!(source = %act.crawl.source.name, "crawl schedule panicked; restarting");
                ctx.stop();
            }
        }));
    }
}

impl Supervised for CrawlerActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        count_restart(ACTOR);
    }
}

impl Handler<CrawlNow> for CrawlerActor {
    type Result = ResponseFuture<RoundReport>;

    fn handle(&mut self, _msg: CrawlNow, _ctx: &mut Context<Self>) -> Self::Result {
        let crawl = self.crawl.clone();
        Box::pin(async move {
            let guarded = std::panic::AssertUnwindSafe(crawl.run_round()).catch_unwind();
            guarded.await.unwrap_or_else(|_| {
                tracing::error!(source = %crawl.source.name, "crawl round panicked");
                RoundReport {
                    outcome: RoundOutcome::Failed,
                    error: Some("crawl round panicked".into()),
                    ..RoundReport::default()
                }
            })
        })
    }
}

impl Handler<StopCrawling> for CrawlerActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _msg: StopCrawling, _ctx: &mut Context<Self>) -> Self::Result {
        self.crawl.stop.cancel();
        let crawl = self.crawl.clone();
        Box::pin(async move {
            // Rounds hold this while running: once we get it, none is.
            let _idle = crawl.round.lock().await;
        })
    }
}

/// One source's crawling state, shared by the schedule and `CrawlNow`.
struct Crawl {
    source: NewsSource,
    news: Arc<NewsConfig>,
    store: Arc<dyn DocumentStore>,
    lock: CrawlLock,
    fetcher: PoliteFetcher,
    owner: String,
    stop: CancellationToken,
    /// Serializes rounds within this actor (the Redis lock serializes across instances).
    round: tokio::sync::Mutex<()>,
}

/// One listed URL, canonicalized.
struct Listed {
    /// What to request (as listed).
    fetch_url: String,
    canonical: String,
    hash: String,
    meta: Option<FeedEntryMeta>,
}

/// Why a round stopped before the end.
enum Abort {
    Stopped,
    Failed(String),
}

impl Crawl {
    fn name(&self) -> &str {
        &self.source.name
    }

    fn ttl(&self) -> Duration {
        Duration::from_secs(self.news.lock_ttl_secs.max(1))
    }

    async fn run_round(&self) -> RoundReport {
        let _one_at_a_time = self.round.lock().await;
        let mut report = RoundReport::default();
        if self.stop.is_cancelled() {
            report.outcome = RoundOutcome::Stopped;
            return report;
        }
        let started = std::time::Instant::now();
        let guard = match self
            .lock
            .try_acquire(self.name(), &self.owner, self.ttl())
            .await
        {
            Ok(Some(g)) => g,
            Ok(None) => {
                tracing::info!(source = %self.name(), "crawl lock held by another instance; round skipped");
                report.outcome = RoundOutcome::LockHeld;
                self.count_round(&report);
                return report;
            }
            Err(e) => {
                // Without the lock we cannot know we are alone; the site's politeness wins.
                tracing::warn!(source = %self.name(), error = %e, "crawl lock unavailable; round skipped");
                report.outcome = RoundOutcome::Failed;
                report.error = Some(e.to_string());
                self.count_round(&report);
                return report;
            }
        };
        let result = self.locked_round(&guard, &mut report).await;
        match result {
            Ok(()) => {}
            Err(Abort::Stopped) => report.outcome = RoundOutcome::Stopped,
            Err(Abort::Failed(e)) => {
                tracing::warn!(source = %self.name(), error = %e, "crawl round failed");
                report.outcome = RoundOutcome::Failed;
                report.error = Some(e);
            }
        }
        match guard.release().await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(source = %self.name(), "crawl lock had expired before release")
            }
            Err(e) => {
                tracing::warn!(source = %self.name(), error = %e, "releasing the crawl lock failed; it expires with its TTL")
            }
        }
        tracing::info!(
            source = %self.name(),
            outcome = ?report.outcome,
            listed = report.listed,
            known = report.known,
            stored = report.stored,
            failed = report.failed,
            disallowed = report.disallowed,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "crawl round done"
        );
        self.count_round(&report);
        report
    }

    fn count_round(&self, r: &RoundReport) {
        let outcome = match r.outcome {
            RoundOutcome::Completed => "completed",
            RoundOutcome::LockHeld => "lock_held",
            RoundOutcome::NotModified => "not_modified",
            RoundOutcome::Stopped => "stopped",
            RoundOutcome::Failed => "failed",
        };
        metrics::counter!("tradepipe_crawl_rounds_total", "source" => self.source.name.clone(), "outcome" => outcome)
            .increment(1);
    }

    async fn locked_round(&self, guard: &LockGuard, report: &mut RoundReport) -> Result<(), Abort> {
        let listing_url = self
            .source
            .feed_url
            .clone()
            .unwrap_or_else(|| self.source.base_url.clone());
        let page = match self.fetcher.fetch_if_modified(&listing_url).await {
            Ok(Fetched::Page(p)) => p,
            Ok(Fetched::NotModified { .. }) => {
                report.outcome = RoundOutcome::NotModified;
                self.mark_crawled().await;
                return Ok(());
            }
            Err(e) => return Err(Abort::Failed(format!("fetching the listing: {e}"))),
        };
        let listed = self.listed(&page)?;
        report.listed = listed.len();
        let hashes: Vec<String> = listed.iter().map(|l| l.hash.clone()).collect();
        let known = self
            .store
            .known_url_hashes(&hashes)
            .await
            .map_err(|e| Abort::Failed(format!("asking the store for known URLs: {e}")))?;
        let fresh: Vec<&Listed> = listed.iter().filter(|l| !known.contains(&l.hash)).collect();
        report.known = listed.len() - fresh.len();
        let label = self.source.name.clone();
        metrics::counter!("tradepipe_crawl_urls_total", "source" => label.clone(), "outcome" => "known")
            .increment(report.known as u64);
        metrics::counter!("tradepipe_crawl_urls_total", "source" => label, "outcome" => "new")
            .increment(fresh.len() as u64);
        let mut all_handled = true;
        for item in fresh {
            if self.stop.is_cancelled() {
                return Err(Abort::Stopped);
            }
            // Pages are paced seconds apart: keep the lock ours for the whole round.
            match guard.extend(self.ttl()).await {
                Ok(true) => {}
                Ok(false) => return Err(Abort::Failed("crawl lock lost mid-round".into())),
                Err(e) => return Err(Abort::Failed(format!("extending the crawl lock: {e}"))),
            }
            if !self.crawl_page(item, report).await? {
                all_handled = false;
            }
        }
        // Only now may the feed's validators be trusted: a 304 next time means "nothing new".
        if all_handled {
            self.fetcher.remember(&listing_url, &page).await;
        }
        self.mark_crawled().await;
        Ok(())
    }

    async fn mark_crawled(&self) {
        if let Err(e) = self.store.mark_crawled(self.name(), Utc::now()).await {
            tracing::warn!(source = %self.name(), error = %e, "mark_crawled failed");
        }
    }

    /// The feed's or listing's URLs, canonicalized and deduplicated.
    fn listed(&self, page: &FetchedPage) -> Result<Vec<Listed>, Abort> {
        let items: Vec<FeedItem> = match self.source.kind {
            SourceKind::Html => {
                let selector = self.source.selectors.article_list.as_deref().unwrap_or("a");
                feeds::parse_listing(&page.body, &page.final_url, selector)
                    .map_err(|e| Abort::Failed(e.to_string()))?
                    .into_iter()
                    .map(|url| FeedItem {
                        url,
                        meta: FeedEntryMeta::default(),
                    })
                    .collect()
            }
            _ => feeds::parse_feed(page.body.as_bytes(), &page.final_url)
                .map_err(|e| Abort::Failed(e.to_string()))?,
        };
        let with_meta = self.source.kind != SourceKind::Html;
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let canonical = match canonicalize_url(&item.url) {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(source = %self.name(), url = %item.url, error = %e, "listed URL skipped");
                    continue;
                }
            };
            let hash = url_hash(&canonical);
            if seen.insert(hash.clone()) {
                out.push(Listed {
                    fetch_url: item.url,
                    canonical,
                    hash,
                    meta: with_meta.then_some(item.meta),
                });
            }
        }
        Ok(out)
    }

    /// Fetches one new page (with retries) and stores it, PENDING or FAILED. Ok(false) when the
    /// page was left for a later round (the store refused it).
    async fn crawl_page(&self, item: &Listed, report: &mut RoundReport) -> Result<bool, Abort> {
        let mut attempts: u32 = 0;
        let outcome = loop {
            attempts += 1;
            match self.fetcher.fetch(&item.fetch_url).await {
                Ok(page) => break Ok(page),
                Err(e) if e.is_retryable() && attempts <= self.news.max_retries => {
                    let wait = self.backoff(attempts);
                    tracing::info!(source = %self.name(), url = %item.fetch_url, error = %e, attempt = attempts, wait_ms = wait.as_millis() as u64, "page fetch failed; retrying");
                    tokio::select! {
                        _ = self.stop.cancelled() => return Err(Abort::Stopped),
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
                Err(e) => break Err(e),
            }
        };
        let raw = match outcome {
            Ok(page) => RawArticle {
                id: String::new(),
                url: item.canonical.clone(),
                url_hash: item.hash.clone(),
                source_name: self.source.name.clone(),
                raw_html: page.body,
                response_headers: page.headers,
                http_status: page.status,
                crawled_at: Utc::now(),
                processing_status: ProcessingStatus::Pending,
                retry_count: 0,
                error_message: None,
                feed_entry: item.meta.clone(),
            },
            Err(FetchError::RobotsDisallowed { .. }) => {
                tracing::info!(source = %self.name(), url = %item.fetch_url, "robots.txt disallows the page; not fetched");
                report.disallowed += 1;
                // Handled for this round: a 304 feed will not bring it back until robots.txt
                // and the feed both change, which is what robots.txt asked for.
                return Ok(true);
            }
            Err(e) => {
                tracing::warn!(source = %self.name(), url = %item.fetch_url, error = %e, kind = e.kind(), attempts, "page failed; stored as FAILED");
                RawArticle {
                    id: String::new(),
                    url: item.canonical.clone(),
                    url_hash: item.hash.clone(),
                    source_name: self.source.name.clone(),
                    raw_html: String::new(),
                    response_headers: BTreeMap::new(),
                    http_status: e.status().unwrap_or(0),
                    crawled_at: Utc::now(),
                    processing_status: ProcessingStatus::Failed,
                    retry_count: attempts,
                    error_message: Some(format!("{}: {e}", e.kind())),
                    feed_entry: item.meta.clone(),
                }
            }
        };
        let failed = raw.processing_status == ProcessingStatus::Failed;
        match self.store.insert_raw_article(&raw).await {
            Ok(Some(id)) => {
                if failed {
                    report.failed += 1;
                } else {
                    report.stored += 1;
                    self.count_article().await;
                }
                tracing::debug!(source = %self.name(), url = %raw.url, id, status = raw.processing_status.as_str(), "raw article stored");
                Ok(true)
            }
            Ok(None) => {
                // Stored meanwhile by someone else (e.g. a previous owner of the lock).
                report.known += 1;
                Ok(true)
            }
            Err(e) if e.is_retryable() => Err(Abort::Failed(format!("storing {}: {e}", raw.url))),
            Err(e) => {
                tracing::error!(source = %self.name(), url = %raw.url, error = %e, "store refused the raw article; left for the next round");
                Ok(false)
            }
        }
    }

    /// Jittered, so crawlers that failed together do not retry together. A site's
    /// `Retry-After` is enforced by the fetcher, for every request to the source.
    fn backoff(&self, attempt: u32) -> Duration {
        self.news.backoff().delay(attempt)
    }

    /// `HINCRBY {prefix}stats:articles:count {source} 1`; a Redis hiccup only costs the statistic.
    async fn count_article(&self) {
        let key = format!("{}stats:articles:count", self.lock.key_prefix());
        let mut conn = self.lock.connection();
        let r: redis::RedisResult<i64> = redis::cmd("HINCRBY")
            .arg(&key)
            .arg(&self.source.name)
            .arg(1)
            .query_async(&mut conn)
            .await;
        if let Err(e) = r {
            tracing::warn!(source = %self.name(), error = %e, "HINCRBY stats:articles:count failed");
        }
    }
}
