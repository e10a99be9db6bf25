//! NormalizerActor: turns PENDING raw articles into normalized articles. The store is the work
//! queue: work is claimed with a lease, so after a crash it is picked up again, and the article
//! insert is keyed on `url_hash`, so nothing is normalized into two articles. Parsing and
//! extraction are CPU-bound and run on a `SyncArbiter` pool of worker threads, never on the async
//! runtime; the pool's bounded mailbox and the claim size bound the work in flight.

use super::{HandlerTimer, count_restart};
use crate::config::NewsConfig;
use crate::domain::{Article, NewsSource, RawArticle};
use crate::news::article::build_article;
use crate::store::{DocumentStore, StoreError};
use actix::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tradepipe_model::aliases::SymbolAliases;

const ACTOR: &str = "normalizer";

/// One page to normalize on a worker thread.
pub struct NormalizeJob(pub RawArticle);

impl Message for NormalizeJob {
    type Result = Result<Article, String>;
}

/// A worker of the pool: owns nothing but read-only tables.
pub struct NormalizeWorker {
    sources: Arc<HashMap<String, NewsSource>>,
    aliases: Arc<SymbolAliases>,
}

impl Actor for NormalizeWorker {
    type Context = SyncContext<Self>;
}

impl Handler<NormalizeJob> for NormalizeWorker {
    type Result = Result<Article, String>;

    fn handle(&mut self, job: NormalizeJob, _ctx: &mut SyncContext<Self>) -> Self::Result {
        let started = Instant::now();
        let raw = job.0;
        // A panic on some pathological page must cost this page, not the worker thread.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            build_article(
                &raw,
                self.sources.get(&raw.source_name),
                &self.aliases,
                chrono::Utc::now(),
            )
        }));
        metrics::histogram!("tradepipe_normalize_seconds").record(started.elapsed().as_secs_f64());
        match result {
            Ok(Ok(article)) => Ok(article),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("normalizer panicked on this page".to_string()),
        }
    }
}

/// Start the worker pool: `workers` threads.
pub fn start_pool(
    workers: usize,
    sources: Vec<NewsSource>,
    aliases: SymbolAliases,
) -> Addr<NormalizeWorker> {
    let sources = Arc::new(
        sources
            .into_iter()
            .map(|s| (s.name.clone(), s))
            .collect::<HashMap<_, _>>(),
    );
    let aliases = Arc::new(aliases);
    SyncArbiter::start(workers.max(1), move || NormalizeWorker {
        sources: sources.clone(),
        aliases: aliases.clone(),
    })
}

/// New raw articles were stored: look for work now rather than at the next poll.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WorkAvailable;

/// Finish the claimed batch in flight and stop claiming (shutdown). Answered when idle.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopNormalizing;

pub struct NormalizerActor {
    store: Arc<dyn DocumentStore>,
    pool: Addr<NormalizeWorker>,
    cfg: NewsConfig,
    busy: bool,
    stopping: bool,
}

impl NormalizerActor {
    pub fn new(
        store: Arc<dyn DocumentStore>,
        pool: Addr<NormalizeWorker>,
        cfg: NewsConfig,
    ) -> Self {
        NormalizerActor {
            store,
            pool,
            cfg,
            busy: false,
            stopping: false,
        }
    }

    fn claim_size(&self) -> usize {
        self.cfg.normalizer_workers.max(1) * 4
    }

    /// Claims a batch, normalizes it on the pool, records each outcome. Runs while the actor
    /// waits (`ctx.wait`), so at most one batch is in flight.
    fn round(&mut self, ctx: &mut Context<Self>) {
        if self.busy || self.stopping {
            return;
        }
        self.busy = true;
        let store = self.store.clone();
        let pool = self.pool.clone();
        let limit = self.claim_size();
        let lease = Duration::from_secs(self.cfg.claim_lease_secs);
        let max_retries = self.cfg.max_retries;
        let fut = async move {
            let claimed = store.claim_raw_articles(limit, lease).await?;
            let n = claimed.len();
            let jobs = claimed.into_iter().map(|raw| {
                let pool = pool.clone();
                let store = store.clone();
                async move {
                    let _timer = HandlerTimer::start(ACTOR);
                    let raw_id = raw.id.clone();
                    let url = raw.url.clone();
                    match pool.send(NormalizeJob(raw)).await {
                        Ok(Ok(article)) => match store.complete_raw_article(&raw_id, &article).await {
                            Ok(_) => metrics::counter!("tradepipe_normalized_total", "outcome" => "completed").increment(1),
                            Err(e) => {
                                metrics::counter!("tradepipe_normalized_total", "outcome" => "store_error").increment(1);
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
            });
            futures_util::future::join_all(jobs).await;
            Ok::<usize, StoreError>(n)
        };
        ctx.wait(fut.into_actor(self).map(move |res, act, ctx| {
            act.busy = false;
            match res {
                // A full batch means there is probably more: go again at once.
                Ok(n) if n == limit => ctx.notify(WorkAvailable),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "claiming raw articles failed; retrying at the next poll"),
            }
        }));
    }
}

impl Actor for NormalizerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(16);
        let every = Duration::from_millis(self.cfg.poll_interval_ms.max(50));
        ctx.run_interval(every, |act, ctx| act.round(ctx));
        self.round(ctx);
    }
}

impl Supervised for NormalizerActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.busy = false;
        count_restart(ACTOR);
    }
}

impl Handler<WorkAvailable> for NormalizerActor {
    type Result = ();

    fn handle(&mut self, _msg: WorkAvailable, ctx: &mut Context<Self>) {
        self.round(ctx);
    }
}

impl Handler<StopNormalizing> for NormalizerActor {
    type Result = ();

    fn handle(&mut self, _msg: StopNormalizing, _ctx: &mut Context<Self>) {
        // The batch in flight runs under ctx.wait, so this message is handled only after it.
        self.stopping = true;
    }
}
