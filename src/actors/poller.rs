//! PollingActor: runs a job in rounds, on a schedule and again at once while there is more work,
//! never two rounds at a time. The normalizer, sentiment and prediction stages are jobs of this
//! one actor: a job says what one round does; the actor owns the schedule, the round in flight,
//! the graceful stop and the restarts.
//!
//! A round runs under `ctx.wait`: while it is in flight the actor handles no message and no
//! tick, so a stop is answered only once the round in flight finished. A round that fails is
//! logged and retried at the next tick; a round that panics stops the actor, and its supervisor
//! restarts it (counted in `tradepipe_actor_restarts_total`).

use super::count_restart;
use crate::config::MailboxConfig;
use actix::prelude::*;
use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

/// What one round found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Round {
    /// Nothing more waiting that this round saw: wait for the next tick.
    Idle,
    /// The round took all it could (a full claim): there is probably more, go again at once.
    More,
}

/// One kind of polled work.
pub trait PollJob: Unpin + 'static {
    /// The `actor` label of its restarts and the name in its logs.
    const NAME: &'static str;
    type Error: std::fmt::Display;

    /// Time between rounds when idle.
    fn interval(&self) -> Duration;

    /// Starts one round. The future owns what it uses: the job is not borrowed while it runs.
    fn round(&mut self) -> LocalBoxFuture<'static, Result<Round, Self::Error>>;

    /// Called when the supervisor restarts the actor; resets what the job keeps between rounds.
    fn restarting(&mut self) {}
}

/// Run a round now rather than at the next tick (new work was stored; a full round notifies
/// itself). Ignored while a round is in flight or after a stop.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct PollNow;

/// Finish the round in flight and start no other (shutdown). Answered once idle.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopPolling;

pub struct PollingActor<J: PollJob> {
    job: J,
    capacity: usize,
    busy: bool,
    stopping: bool,
}

impl<J: PollJob> PollingActor<J> {
    /// The actor for `job`, with the configured default mailbox capacity.
    pub(crate) fn with_job(job: J) -> Self {
        PollingActor {
            job,
            capacity: MailboxConfig::default().pollers,
            busy: false,
            stopping: false,
        }
    }

    /// Messages (poll-now, stop) that may wait in the mailbox: `mailbox.pollers`.
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    fn round(&mut self, ctx: &mut Context<Self>) {
        if self.busy || self.stopping {
            return;
        }
        self.busy = true;
        let job = &mut self.job;
        let fut = match std::panic::catch_unwind(AssertUnwindSafe(|| job.round())) {
            Ok(fut) => fut,
            Err(_) => return panicked(ctx),
        };
        ctx.wait(
            AssertUnwindSafe(fut)
                .catch_unwind()
                .into_actor(self)
                .map(|res, act, ctx| {
                    act.busy = false;
                    match res {
                        Ok(Ok(Round::More)) => ctx.notify(PollNow),
                        Ok(Ok(Round::Idle)) => {}
                        Ok(Err(e)) => tracing::warn!(
                            actor = J::NAME,
                            error = %e,
                            "polling round failed; retrying at the next poll"
                        ),
                        Err(_) => panicked(ctx),
                    }
                }),
        );
    }
}

/// Stops the actor: its supervisor restarts it with fresh flags and a fresh schedule.
fn panicked<J: PollJob>(ctx: &mut Context<PollingActor<J>>) {
    tracing::error!(actor = J::NAME, "a polling round panicked; restarting");
    ctx.stop();
}

impl<J: PollJob> Actor for PollingActor<J> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.capacity);
        ctx.run_interval(self.job.interval(), |act, ctx| act.round(ctx));
        self.round(ctx);
    }
}

impl<J: PollJob> Supervised for PollingActor<J> {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        // The round in flight was dropped with the old context.
        self.busy = false;
        self.job.restarting();
        count_restart(J::NAME);
    }
}

impl<J: PollJob> Handler<PollNow> for PollingActor<J> {
    type Result = ();

    fn handle(&mut self, _msg: PollNow, ctx: &mut Context<Self>) {
        self.round(ctx);
    }
}

impl<J: PollJob> Handler<StopPolling> for PollingActor<J> {
    type Result = ();

    fn handle(&mut self, _msg: StopPolling, _ctx: &mut Context<Self>) {
        // The round in flight runs under ctx.wait, so this message is handled only after it.
        self.stopping = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::restarts_so_far;
    use crate::actors::tests::until;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts rounds, the most ever in flight at once, and finished rounds; each round takes
    /// `takes`. Round number `panic_at` panics, `fail_at` fails; `more_until` rounds say More.
    #[derive(Default)]
    struct Probe {
        started: AtomicUsize,
        running: AtomicUsize,
        most: AtomicUsize,
        finished: AtomicUsize,
        restarts: AtomicUsize,
    }

    struct TestJob {
        probe: Arc<Probe>,
        every: Duration,
        takes: Duration,
        panic_at: Option<usize>,
        fail_at: Option<usize>,
        more_until: usize,
    }

    impl TestJob {
        fn new(every_ms: u64, takes_ms: u64) -> (Self, Arc<Probe>) {
            let probe = Arc::new(Probe::default());
            let job = TestJob {
                probe: probe.clone(),
                every: Duration::from_millis(every_ms),
                takes: Duration::from_millis(takes_ms),
                panic_at: None,
                fail_at: None,
                more_until: 0,
            };
            (job, probe)
        }
    }

    impl PollJob for TestJob {
        const NAME: &'static str = "test_poller";
        type Error = String;

        fn interval(&self) -> Duration {
            self.every
        }

        fn round(&mut self) -> LocalBoxFuture<'static, Result<Round, String>> {
            let n = self.probe.started.fetch_add(1, Ordering::SeqCst) + 1;
            let (probe, takes) = (self.probe.clone(), self.takes);
            let (panics, fails) = (self.panic_at == Some(n), self.fail_at == Some(n));
            let more = n < self.more_until;
            Box::pin(async move {
                let now = probe.running.fetch_add(1, Ordering::SeqCst) + 1;
                probe.most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(takes).await;
                probe.running.fetch_sub(1, Ordering::SeqCst);
                if panics {
                    panic!("round {n} panics");
                }
                probe.finished.fetch_add(1, Ordering::SeqCst);
                if fails {
                    return Err(format!("round {n} fails"));
                }
                Ok(if more { Round::More } else { Round::Idle })
            })
        }

        fn restarting(&mut self) {
            self.probe.restarts.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[actix_rt::test]
    async fn rounds_never_overlap() {
        // Ticks every 5 ms, rounds take 30 ms, and pokes arrive all the time.
        let (mut job, probe) = TestJob::new(5, 30);
        job.more_until = 4;
        let addr = Supervisor::start(move |_| PollingActor::with_job(job).with_capacity(4));
        for _ in 0..20 {
            addr.send(PollNow).await.unwrap();
        }
        until("six rounds", || probe.finished.load(Ordering::SeqCst) >= 6).await;
        addr.send(StopPolling).await.unwrap();
        assert_eq!(
            probe.most.load(Ordering::SeqCst),
            1,
            "two rounds ran at once"
        );
    }

    #[actix_rt::test]
    async fn a_full_round_goes_again_at_once() {
        // The schedule alone would give one round in this test.
        let (mut job, probe) = TestJob::new(60_000, 1);
        job.more_until = 5;
        let addr = Supervisor::start(move |_| PollingActor::with_job(job));
        until("five rounds", || probe.finished.load(Ordering::SeqCst) >= 5).await;
        addr.send(StopPolling).await.unwrap();
        assert_eq!(
            probe.started.load(Ordering::SeqCst),
            5,
            "round 5 was not full"
        );
    }

    #[actix_rt::test]
    async fn stop_waits_for_the_round_in_flight_and_starts_no_other() {
        let (job, probe) = TestJob::new(10, 200);
        let addr = Supervisor::start(move |_| PollingActor::with_job(job));
        until("a round", || probe.started.load(Ordering::SeqCst) == 1).await;
        addr.send(StopPolling).await.unwrap();
        assert_eq!(
            probe.finished.load(Ordering::SeqCst),
            1,
            "stop answered before the round in flight finished"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        addr.send(PollNow).await.unwrap();
        assert_eq!(
            probe.started.load(Ordering::SeqCst),
            1,
            "a round after stop"
        );
    }

    #[actix_rt::test]
    async fn a_failed_round_is_retried_at_the_next_tick_without_a_restart() {
        let (mut job, probe) = TestJob::new(10, 1);
        job.fail_at = Some(1);
        let addr = Supervisor::start(move |_| PollingActor::with_job(job));
        until("three rounds", || {
            probe.finished.load(Ordering::SeqCst) >= 3
        })
        .await;
        addr.send(StopPolling).await.unwrap();
        assert_eq!(probe.restarts.load(Ordering::SeqCst), 0);
    }

    #[actix_rt::test]
    async fn a_panicking_round_restarts_the_actor_and_is_counted() {
        let (mut job, probe) = TestJob::new(10, 1);
        job.panic_at = Some(2);
        let before = restarts_so_far();
        let addr = Supervisor::start(move |_| PollingActor::with_job(job));
        until("rounds after the panic", || {
            probe.finished.load(Ordering::SeqCst) >= 3
        })
        .await;
        assert_eq!(probe.restarts.load(Ordering::SeqCst), 1, "restarted once");
        assert!(restarts_so_far() > before, "restart counted");
        // The restarted actor still answers and still stops gracefully.
        addr.send(StopPolling).await.unwrap();
        let n = probe.started.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            probe.started.load(Ordering::SeqCst),
            n,
            "a round after stop"
        );
    }
}
