//! SentimentActor: analyses every normalized article once. The articles table is the queue:
//! PENDING articles are claimed with a lease (so after a crash or restart they are picked up
//! again) and completing one stores its `analysis_results` document and marks the article
//! COMPLETED in one step, unique per article (so none is analysed into two results).
//!
//! The analysis is CPU-bound and runs on a `SyncArbiter` pool of worker threads sized by
//! `analysis.workers`, never on the async runtime. At most `analysis.claim_batch` articles are
//! in flight: the pool's bounded mailbox and the claim size are the backpressure, and work that
//! is not claimed stays in the store, not in memory.

use super::{HandlerTimer, count_restart};
use crate::config::AnalysisConfig;
use crate::domain::Article;
use crate::store::redis::AnalysisPublisher;
use crate::store::{AnalysisStore, StoreError};
use actix::prelude::*;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tradepipe_model::analysis::{Analysis, Analyzer};
use tradepipe_model::record::AnalysisRecord;
use tradepipe_model::sentiment::Label;

const ACTOR: &str = "sentiment";
/// How often the backlog gauge is refreshed (a COUNT per status).
const BACKLOG_EVERY: Duration = Duration::from_secs(5);

/// One article to analyse on a worker thread.
pub struct AnalyzeJob {
    pub title: String,
    pub body: String,
    pub symbols: Vec<String>,
}

impl Message for AnalyzeJob {
    type Result = Result<Analysis, String>;
}

/// A worker of the pool: holds only the shared, read-only model.
pub struct AnalyzeWorker {
    analyzer: Arc<Analyzer>,
}

impl Actor for AnalyzeWorker {
    type Context = SyncContext<Self>;
}

impl Handler<AnalyzeJob> for AnalyzeWorker {
    type Result = Result<Analysis, String>;

    fn handle(&mut self, job: AnalyzeJob, _ctx: &mut SyncContext<Self>) -> Self::Result {
        let started = Instant::now();
        // A panic on some pathological text must cost this article, not the worker thread.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.analyzer
                .analyze_timed(&job.title, &job.body, &job.symbols)
        }));
        metrics::histogram!("tradepipe_analysis_seconds").record(started.elapsed().as_secs_f64());
        result.map_err(|_| "the analyzer panicked on this article".to_string())
    }
}

/// Starts the pool: `workers` threads sharing one model.
pub fn start_pool(workers: usize, analyzer: Arc<Analyzer>) -> Addr<AnalyzeWorker> {
    SyncArbiter::start(workers.max(1), move || AnalyzeWorker {
        analyzer: analyzer.clone(),
    })
}

/// New articles were stored: look for work now rather than at the next poll.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AnalysisAvailable;

/// Finish the batch in flight and stop claiming (shutdown). Answered when idle.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopAnalyzing;

pub struct SentimentActor {
    store: Arc<dyn AnalysisStore>,
    pool: Addr<AnalyzeWorker>,
    publisher: AnalysisPublisher,
    cfg: AnalysisConfig,
    busy: bool,
    stopping: bool,
    backlog_at: Option<Instant>,
}

impl SentimentActor {
    pub fn new(
        store: Arc<dyn AnalysisStore>,
        pool: Addr<AnalyzeWorker>,
        publisher: AnalysisPublisher,
        cfg: AnalysisConfig,
    ) -> Self {
        SentimentActor {
            store,
            pool,
            publisher,
            cfg,
            busy: false,
            stopping: false,
            backlog_at: None,
        }
    }

    /// Claims a batch, analyses it on the pool, stores each result. Runs under `ctx.wait`, so
    /// one batch is in flight at a time and a stop waits for it.
    fn round(&mut self, ctx: &mut Context<Self>) {
        if self.busy || self.stopping {
            return;
        }
        self.busy = true;
        let refresh_backlog = self.backlog_at.is_none_or(|t| t.elapsed() >= BACKLOG_EVERY);
        if refresh_backlog {
            self.backlog_at = Some(Instant::now());
        }
        let store = self.store.clone();
        let pool = self.pool.clone();
        let publisher = self.publisher.clone();
        let limit = self.cfg.claim_batch;
        let lease = Duration::from_secs(self.cfg.claim_lease_secs);
        let fut = async move {
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
            Ok::<usize, StoreError>(n)
        };
        ctx.wait(fut.into_actor(self).map(move |res, act, ctx| {
            act.busy = false;
            match res {
                // A full batch means there is probably more: go again at once.
                Ok(n) if n == limit => ctx.notify(AnalysisAvailable),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "claiming articles for analysis failed; retrying at the next poll"),
            }
        }));
    }
}

/// Analyse one claimed article and record the outcome. Store errors leave the article
/// PROCESSING: its lease runs out and it is claimed again (the result is unique per article,
/// so a retry never duplicates).
async fn analyse_one(
    article: Article,
    pool: &Addr<AnalyzeWorker>,
    store: &dyn AnalysisStore,
    publisher: &AnalysisPublisher,
) {
    let _timer = HandlerTimer::start(ACTOR);
    let job = AnalyzeJob {
        title: article.title.clone(),
        body: article.body.clone(),
        symbols: article.symbols.clone(),
    };
    let id = article.id.as_str();
    match pool.send(job).await {
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

impl Actor for SentimentActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(16);
        let every = Duration::from_millis(self.cfg.poll_interval_ms.max(50));
        ctx.run_interval(every, |act, ctx| act.round(ctx));
        self.round(ctx);
    }
}

impl Supervised for SentimentActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.busy = false;
        count_restart(ACTOR);
    }
}

impl Handler<AnalysisAvailable> for SentimentActor {
    type Result = ();

    fn handle(&mut self, _msg: AnalysisAvailable, ctx: &mut Context<Self>) {
        self.round(ctx);
    }
}

impl Handler<StopAnalyzing> for SentimentActor {
    type Result = ();

    fn handle(&mut self, _msg: StopAnalyzing, _ctx: &mut Context<Self>) {
        // The batch in flight runs under ctx.wait, so this is handled only after it.
        self.stopping = true;
    }
}
