//! The news pipeline:
//!
//! ```text
//! CrawlerActor (1 per active source) --RawArticle--> document store (PENDING) --claim--> NormalizerActor --(CPU pool)--> articles
//! ```
//! The store is the queue between the two: nothing is held only in memory, so a restart or a
//! second daemon instance neither loses nor duplicates an article (the Redis lock keeps two
//! instances from crawling one source at once; claims with leases keep them from normalizing one
//! page at once; unique `url_hash` keeps every page and article single).

use super::resources::Resources;
use crate::actors::crawler::{CrawlerActor, CrawlerDeps, StopCrawling};
use crate::actors::normalizer::{self, NormalizerActor};
use crate::actors::poller::StopPolling;
use crate::config::Config;
use crate::news::crawl::lock::CrawlLock;
use crate::news::sources::load_sources;
use crate::store::{FullDocumentStore, open_document_store};
use actix::{Addr, Supervisor};
use anyhow::Context as _;
use std::sync::Arc;
use std::time::Duration;
use tradepipe_model::aliases::SymbolAliases;

pub(crate) struct NewsPipeline {
    crawlers: Vec<Addr<CrawlerActor>>,
    normalizer: Addr<NormalizerActor>,
    /// The document store, news and analysis views (the analysis pipeline runs on it).
    pub store: Arc<dyn FullDocumentStore>,
    /// The active sources' names (the `source` label values of the crawl metrics).
    pub sources: Vec<String>,
}

impl NewsPipeline {
    /// Starts crawlers for the active sources and the normalizer. `None` when no source is
    /// active: the daemon then runs the market pipeline alone.
    pub async fn start(
        cfg: &Config,
        resources: &Resources,
        crawl_every: Option<Duration>,
    ) -> anyhow::Result<Option<NewsPipeline>> {
        let sources = load_sources(&cfg.news.sources_file)?;
        let active: Vec<_> = sources.iter().filter(|s| s.is_active).cloned().collect();
        if active.is_empty() {
            tracing::info!(file = %cfg.news.sources_file.display(), "no active news source; the news pipeline is not started");
            return Ok(None);
        }
        // On the MongoDB backend the shared pool is simply not used by the document store.
        let store = open_document_store(&cfg.documents, resources.reads.clone())
            .await
            .context("opening the document store")?;
        store
            .prepare()
            .await
            .context("preparing the document store")?;
        store
            .upsert_sources(&sources)
            .await
            .context("upserting news sources")?;
        let lock = CrawlLock::new(
            resources.redis().await.context("the crawl locks")?,
            &cfg.redis.key_prefix,
        );

        let news_cfg = Arc::new(cfg.news.clone());
        let deps = CrawlerDeps {
            news: news_cfg,
            store: store.clone(),
            lock,
            interval_override: crawl_every,
            crawl_on_start: true,
        };
        let mut crawlers = Vec::new();
        let names = active.iter().map(|s| s.name.clone()).collect();
        for source in active {
            let name = source.name.clone();
            // Validated before anything starts: a source that cannot be crawled is a start error.
            let actor = CrawlerActor::new(source, deps.clone())
                .with_context(|| format!("news source {name}"))?;
            crawlers.push(Supervisor::start(move |_| actor));
        }
        let pool = normalizer::start_pool(
            cfg.news.normalizer_workers,
            sources,
            SymbolAliases::default_crypto(),
        );
        let (s, c, cap) = (store.clone(), cfg.news.clone(), cfg.mailbox.pollers);
        let normalizer =
            Supervisor::start(move |_| NormalizerActor::new(s, pool, c).with_capacity(cap));
        tracing::info!(
            crawlers = crawlers.len(),
            workers = cfg.news.normalizer_workers,
            "news pipeline running"
        );
        Ok(Some(NewsPipeline {
            crawlers,
            normalizer,
            store,
            sources: names,
        }))
    }

    /// Stop crawling (after the page in progress), then let the normalizer finish its batch.
    /// Whatever is left PENDING stays in the store for the next start.
    pub async fn shutdown(&self) {
        for c in &self.crawlers {
            let _ = c.send(StopCrawling).await;
        }
        let _ = self.normalizer.send(StopPolling).await;
    }
}
