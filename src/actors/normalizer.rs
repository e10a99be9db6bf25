//! The normalizer: turns PENDING raw articles into normalized articles, as a job of the
//! [`PollingActor`]. The store is the work queue: work is claimed with a lease, so after a crash
//! it is picked up again, and the article insert is keyed on `url_hash`, so nothing is normalized
//! into two articles. Parsing and extraction are CPU-bound and run on the [`CpuPool`], never on
//! the async runtime; the claim size bounds the work in flight.

use super::HandlerTimer;
use super::cpu_pool::{CpuPool, CpuWork};
use super::poller::{PollJob, PollingActor, Round};
use crate::config::NewsConfig;
use crate::domain::{Article, NewsSource, RawArticle};
use crate::news::normalize::build_article;
use crate::store::{DocumentStore, StoreError};
use futures_util::future::LocalBoxFuture;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tradepipe_model::aliases::SymbolAliases;

const ACTOR: &str = "normalizer";

/// What a pool thread does with one page; holds nothing but read-only tables.
pub struct Normalize {
    sources: HashMap<String, NewsSource>,
    aliases: SymbolAliases,
}

impl CpuWork for Normalize {
    const NAME: &'static str = "normalizer pool";
    const PANICKED: &'static str = "normalizer panicked on this page";
    type Input = RawArticle;
    type Output = Article;

    fn run(&self, raw: RawArticle) -> Result<Article, String> {
        build_article(
            &raw,
            self.sources.get(&raw.source_name),
            &self.aliases,
            chrono::Utc::now(),
        )
        .map_err(|e| e.to_string())
    }

    fn observe(seconds: f64) {
        metrics::histogram!("tradepipe_normalize_seconds").record(seconds);
    }
}

pub(crate) type NormalizePool = CpuPool<Normalize>;

/// Start the worker pool: `workers` threads.
pub fn start_pool(
    workers: usize,
    sources: Vec<NewsSource>,
    aliases: SymbolAliases,
) -> NormalizePool {
    let sources = sources.into_iter().map(|s| (s.name.clone(), s)).collect();
    CpuPool::start(workers, Normalize { sources, aliases })
}

/// One round: claim a batch of raw articles, normalize them on the pool, record each outcome.
pub struct NormalizeJob {
    store: Arc<dyn DocumentStore>,
    pool: NormalizePool,
    cfg: NewsConfig,
}

pub type NormalizerActor = PollingActor<NormalizeJob>;

impl PollingActor<NormalizeJob> {
    pub fn new(store: Arc<dyn DocumentStore>, pool: NormalizePool, cfg: NewsConfig) -> Self {
        PollingActor::with_job(NormalizeJob { store, pool, cfg })
    }
}

impl PollJob for NormalizeJob {
    const NAME: &'static str = ACTOR;
    type Error = StoreError;

    fn interval(&self) -> Duration {
        Duration::from_millis(self.cfg.poll_interval_ms.max(50))
    }

    fn round(&mut self) -> LocalBoxFuture<'static, Result<Round, StoreError>> {
        let store = self.store.clone();
        let pool = self.pool.clone();
        let limit = self.cfg.normalizer_workers.max(1) * 4;
        let lease = Duration::from_secs(self.cfg.claim_lease_secs);
        let max_retries = self.cfg.max_retries;
        Box::pin(async move {
            let claimed = store.claim_raw_articles(limit, lease).await?;
            let n = claimed.len();
            let jobs = claimed
                .into_iter()
                .map(|raw| normalize_one(raw, &pool, store.as_ref(), max_retries));
            futures_util::future::join_all(jobs).await;
            Ok(if n == limit { Round::More } else { Round::Idle })
        })
    }
}

/// Normalize one claimed page and record the outcome. A store error leaves the page
/// PROCESSING: its lease runs out and it is claimed again.
async fn normalize_one(
    raw: RawArticle,
    pool: &NormalizePool,
    store: &dyn DocumentStore,
    max_retries: u32,
) {
    let _timer = HandlerTimer::start(ACTOR);
    let raw_id = raw.id.clone();
    let url = raw.url.clone();
    match pool.run(raw).await {
        Ok(Ok(article)) => match store.complete_raw_article(&raw_id, &article).await {
            Ok(_) => metrics::counter!("tradepipe_normalized_total", "outcome" => "completed")
                .increment(1),
            Err(e) => {
                metrics::counter!("tradepipe_normalized_total", "outcome" => "store_error")
                    .increment(1);
                tracing::warn!(raw_id, %url, error = %e, "storing a normalized article failed; its lease will expire and it is retried");
            }
        },
        Ok(Err(reason)) => {
            metrics::counter!("tradepipe_normalized_total", "outcome" => "failed").increment(1);
            tracing::warn!(raw_id, %url, error = %reason, "page could not be normalized");
            if let Err(e) = store.fail_raw_article(&raw_id, &reason, max_retries).await {
                tracing::warn!(raw_id, error = %e, "recording the failure failed");
            }
        }
        Err(e) => tracing::error!(raw_id, error = %e, "normalizer pool unavailable"),
    }
}
