//! The sentiment stage: analyses every normalized article once, as a job of the
//! [`PollingActor`]. The articles table is the queue: PENDING articles are claimed with a lease
//! (so after a crash or restart they are picked up again) and completing one stores its
//! `analysis_results` document and marks the article COMPLETED in one step, unique per article
//! (so none is analysed into two results).
//!
//! The analysis is CPU-bound and runs on the [`CpuPool`] sized by `analysis.workers`, never on
//! the async runtime. At most `analysis.claim_batch` articles are in flight: the claim size is
//! the backpressure, and work that is not claimed stays in the store, not in memory.

use super::HandlerTimer;
use super::cpu_pool::{CpuPool, CpuWork};
use super::poller::{PollJob, PollingActor, Round};
use crate::config::AnalysisConfig;
use crate::domain::Article;
use crate::store::AnalysisStore;
use crate::store::StoreError;
use crate::store::redis::AnalysisPublisher;
use futures_util::future::LocalBoxFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tradepipe_model::analysis::{Analysis, Analyzer};
use tradepipe_model::record::AnalysisRecord;
use tradepipe_model::sentiment::Label;

/// The shutdown message, under the name the stage had before it became a poll job.
pub use super::poller::StopPolling as StopAnalyzing;

const ACTOR: &str = "sentiment";
/// How often the backlog gauge is refreshed (a COUNT per status).
const BACKLOG_EVERY: Duration = Duration::from_secs(5);

/// One article to analyse on a pool thread.
pub struct AnalyzeInput {
    pub title: String,
    pub body: String,
    pub symbols: Vec<String>,
}

/// What a pool thread does with one article: holds only the shared, read-only model.
pub struct Analyze(Arc<Analyzer>);

impl CpuWork for Analyze {
    const NAME: &'static str = "analysis pool";
    const PANICKED: &'static str = "the analyzer panicked on this article";
    type Input = AnalyzeInput;
    type Output = Analysis;

    fn run(&self, job: AnalyzeInput) -> Result<Analysis, String> {
        Ok(self.0.analyze_timed(&job.title, &job.body, &job.symbols))
    }

    fn observe(seconds: f64) {
        metrics::histogram!("tradepipe_analysis_seconds").record(seconds);
    }
}

pub(crate) type AnalyzePool = CpuPool<Analyze>;

/// Starts the pool: `workers` threads sharing one model.
pub fn start_pool(workers: usize, analyzer: Arc<Analyzer>) -> AnalyzePool {
    CpuPool::start(workers, Analyze(analyzer))
}

/// One round: refresh the backlog gauge now and then, claim a batch, analyse it on the pool,
/// store each result.
pub struct SentimentJob {
    store: Arc<dyn AnalysisStore>,
    pool: AnalyzePool,
    publisher: AnalysisPublisher,
    cfg: AnalysisConfig,
    backlog_at: Option<Instant>,
}

pub type SentimentActor = PollingActor<SentimentJob>;

impl PollingActor<SentimentJob> {
    pub fn new(
        store: Arc<dyn AnalysisStore>,
        pool: AnalyzePool,
        publisher: AnalysisPublisher,
        cfg: AnalysisConfig,
    ) -> Self {
        PollingActor::with_job(SentimentJob {
            store,
            pool,
            publisher,
            cfg,
            backlog_at: None,
        })
    }
}

impl PollJob for SentimentJob {
    const NAME: &'static str = ACTOR;
    type Error = StoreError;

    fn interval(&self) -> Duration {
        Duration::from_millis(self.cfg.poll_interval_ms.max(50))
    }

    fn round(&mut self) -> LocalBoxFuture<'static, Result<Round, StoreError>> {
        let refresh_backlog = self.backlog_at.is_none_or(|t| t.elapsed() >= BACKLOG_EVERY);
        if refresh_backlog {
            self.backlog_at = Some(Instant::now());
        }
        let store = self.store.clone();
        let pool = self.pool.clone();
        let publisher = self.publisher.clone();
        let limit = self.cfg.claim_batch;
        let lease = Duration::from_secs(self.cfg.claim_lease_secs);
        Box::pin(async move {
            if refresh_backlog {
                match store.analysis_counts().await {
                    Ok(c) => metrics::gauge!("tradepipe_analysis_backlog_articles")
                        .set((c.pending + c.processing) as f64),
                    Err(e) => tracing::debug!(error = %e, "counting the analysis backlog failed"),
                }
            }
            let claimed = store.claim_articles_for_analysis(limit, lease).await?;
            let n = claimed.len();
            let jobs = claimed
                .into_iter()
                .map(|article| analyse_one(article, &pool, store.as_ref(), &publisher));
            futures_util::future::join_all(jobs).await;
            Ok(if n == limit { Round::More } else { Round::Idle })
        })
    }
}

/// Analyse one claimed article and record the outcome. Store errors leave the article
/// PROCESSING: its lease runs out and it is claimed again (the result is unique per article,
/// so a retry never duplicates).
async fn analyse_one(
    article: Article,
    pool: &AnalyzePool,
    store: &dyn AnalysisStore,
    publisher: &AnalysisPublisher,
) {
    let _timer = HandlerTimer::start(ACTOR);
    let job = AnalyzeInput {
        title: article.title.clone(),
        body: article.body.clone(),
        symbols: article.symbols.clone(),
    };
    let id = article.id.as_str();
    match pool.run(job).await {
        Ok(Ok(analysis)) => {
            let record =
                AnalysisRecord::new(&article.id, &article.symbols, analysis, chrono::Utc::now());
            match store.complete_analysis(&record).await {
                Ok(true) => {
                    metrics::counter!("tradepipe_analysis_results_total", "outcome" => "completed")
                        .increment(1);
                    let sentiment = match record.analysis.sentiment.label {
                        Label::Bullish => "bullish",
                        Label::Bearish => "bearish",
                        Label::Neutral => "neutral",
                    };
                    metrics::counter!("tradepipe_analysis_sentiment_total", "sentiment" => sentiment)
                        .increment(1);
                    if let Err(e) = publisher.article_analyzed(&article, &record).await {
                        metrics::counter!("tradepipe_redis_unpublished_total", "kind" => "article")
                            .increment(1);
                        tracing::warn!(article_id = id, error = %e, "PUBLISH articles:new failed; the analysis is stored");
                    }
                }
                Ok(false) => {
                    metrics::counter!("tradepipe_analysis_results_total", "outcome" => "duplicate")
                        .increment(1);
                    tracing::info!(
                        article_id = id,
                        "article was already analysed (lease expired under a slow worker); kept the first result"
                    );
                }
                Err(e) => {
                    metrics::counter!("tradepipe_analysis_results_total", "outcome" => "store_error")
                        .increment(1);
                    tracing::warn!(article_id = id, error = %e, "storing an analysis failed; the lease will expire and it is retried");
                }
            }
        }
        Ok(Err(reason)) => {
            metrics::counter!("tradepipe_analysis_results_total", "outcome" => "failed")
                .increment(1);
            tracing::warn!(article_id = id, url = %article.url, error = %reason, "article could not be analysed");
            if let Err(e) = store.fail_analysis(id, &reason).await {
                tracing::warn!(article_id = id, error = %e, "recording the analysis failure failed");
            }
        }
        Err(e) => tracing::error!(article_id = id, error = %e, "analysis pool unavailable"),
    }
}
