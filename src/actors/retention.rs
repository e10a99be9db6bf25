//! RetentionActor: runs a lifecycle pass (`crate::lifecycle`) every `retention.interval_secs`
//! and refreshes `trading.symbol_summary` every `retention.summary_refresh_secs`. It only
//! schedules; what a pass does and its metrics are in `Lifecycle`. It runs on its own arbiter:
//! a pass compresses archives and fsyncs files, which must not stall the market actors.

use super::count_restart;
use crate::lifecycle::{Lifecycle, PassReport};
use actix::prelude::*;
use std::sync::Arc;
use std::time::Duration;

const ACTOR: &str = "retention";

/// Run a pass now (unless one is running); answered with its report (None when one was running).
#[derive(Message)]
#[rtype(result = "Option<PassReport>")]
pub struct RunPass;

/// Stop scheduling passes. The pipeline then stops the actor's arbiter, which abandons a pass in
/// progress at its next await; that is safe: rows are deleted only after their archive is
/// complete, and temporary files are removed by the next pass.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopRetention;

pub struct RetentionActor {
    lifecycle: Arc<Lifecycle>,
    first_pass_after: Duration,
    pass_running: bool,
    refresh_running: bool,
    stopped: bool,
}

impl RetentionActor {
    pub fn new(lifecycle: Arc<Lifecycle>, first_pass_after: Duration) -> Self {
        RetentionActor {
            lifecycle,
            first_pass_after,
            pass_running: false,
            refresh_running: false,
            stopped: false,
        }
    }

    fn pass(&mut self) -> Option<ResponseActFuture<Self, Option<PassReport>>> {
        if self.stopped {
            return None;
        }
        if self.pass_running {
            tracing::warn!("retention pass still running; this one is skipped");
            return None;
        }
        self.pass_running = true;
        let lifecycle = self.lifecycle.clone();
        let dry_run = lifecycle.config().dry_run;
        Some(Box::pin(
            async move { lifecycle.run_pass(chrono::Utc::now(), dry_run).await }
                .into_actor(self)
                .map(move |res, act, _| {
                    act.pass_running = false;
                    match res {
                        Ok(report) => {
                            if dry_run {
                                tracing::info!(report = %report, "retention dry run");
                            }
                            Some(report)
                        }
                        Err(e) => {
                            metrics::counter!("tradepipe_retention_failures_total", "policy" => "pass")
                                .increment(1);
                            tracing::error!(error = %e, "retention pass could not run");
                            None
                        }
                    }
                }),
        ))
    }

    fn refresh(&mut self, ctx: &mut Context<Self>) {
        if self.refresh_running || self.stopped {
            return;
        }
        self.refresh_running = true;
        let lifecycle = self.lifecycle.clone();
        ctx.spawn(
            async move { lifecycle.refresh_summary().await }
                .into_actor(self)
                .map(|res, act, _| {
                    act.refresh_running = false;
                    if let Err(e) = res {
                        metrics::counter!("tradepipe_retention_failures_total", "policy" => "symbol_summary")
                            .increment(1);
                        tracing::warn!(error = %e, "refreshing trading.symbol_summary failed");
                    }
                }),
        );
    }
}

impl Actor for RetentionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let cfg = self.lifecycle.config();
        let every = Duration::from_secs(cfg.interval_secs);
        let summary_every = Duration::from_secs(cfg.summary_refresh_secs);
        ctx.run_later(self.first_pass_after, move |act, ctx| {
            if let Some(f) = act.pass() {
                ctx.spawn(f.map(|_, _, _| ()));
            }
            ctx.run_interval(every, |act, ctx| {
                if let Some(f) = act.pass() {
                    ctx.spawn(f.map(|_, _, _| ()));
                }
            });
        });
        ctx.run_interval(summary_every, |act, ctx| act.refresh(ctx));
    }
}

impl Supervised for RetentionActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        // A restart abandons the pass in progress (safe, see StopRetention).
        self.pass_running = false;
        self.refresh_running = false;
        count_restart(ACTOR);
    }
}

impl Handler<RunPass> for RetentionActor {
    type Result = ResponseActFuture<Self, Option<PassReport>>;

    fn handle(&mut self, _: RunPass, _: &mut Context<Self>) -> Self::Result {
        match self.pass() {
            Some(f) => f,
            None => Box::pin(actix::fut::ready(None)),
        }
    }
}

impl Handler<StopRetention> for RetentionActor {
    type Result = ();

    fn handle(&mut self, _: StopRetention, _: &mut Context<Self>) {
        self.stopped = true;
    }
}
