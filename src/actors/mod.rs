//! The actors, one per file, and the small runtime pieces they share: a bounded mailbox handle
//! whose `push` waits while the consumer is full, per-actor metrics, restart counting, the
//! polling actor the store-queued stages plug into (`poller.rs`) and their CPU worker pool
//! (`cpu_pool.rs`).
//!
//! Data paths use `Mailbox::push` (fire-and-forget, but it waits for room: that is the
//! backpressure from PostgreSQL back to the socket). Control messages (flush, stop, queries) use
//! `Mailbox::ask`, which waits for the handler's answer; mailboxes are FIFO, so an `ask` after a
//! series of pushes is answered only once those pushes were handled.

pub mod candle_builder;
pub mod cpu_pool;
pub mod crawler;
pub mod exchange_feed;
pub mod market_writer;
pub mod normalizer;
pub mod poller;
pub mod prediction;
pub mod redis_publisher;
pub mod retention;
pub mod sentiment;

use actix::dev::ToEnvelope;
use actix::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The consumer stopped for good (its arbiter is gone): nothing will ever read the message.
#[derive(Debug, thiserror::Error)]
#[error("actor {0} is gone")]
pub struct ActorGone(pub &'static str);

/// Messages pushed to an actor and not yet handled; exported as `tradepipe_actor_mailbox_depth`.
/// It is also the bound, counted in trades (what memory actually holds; a message is a batch of
/// one to a few thousand): a push takes its batch's weight in permits and the actor returns them
/// when it takes the message, so at most `capacity` trades wait, however many producers or clones
/// push. (actix's own capacity is per sender and counts messages, so it cannot be the bound.)
#[derive(Clone, Debug)]
pub struct MailboxDepth {
    actor: &'static str,
    depth: Arc<AtomicI64>,
    /// Messages taken so far: the liveness check (`systemd.rs`) tells a busy actor from a stuck one.
    taken: Arc<AtomicU64>,
    permits: Arc<tokio::sync::Semaphore>,
    capacity: usize,
}

impl MailboxDepth {
    pub fn new(actor: &'static str, capacity: usize) -> Self {
        let capacity = capacity.clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
        MailboxDepth {
            actor,
            depth: Arc::new(AtomicI64::new(0)),
            taken: Arc::new(AtomicU64::new(0)),
            permits: Arc::new(tokio::sync::Semaphore::new(capacity)),
            capacity,
        }
    }

    /// A message's weight, clamped so that one message larger than the whole bound still fits.
    fn weight(&self, weight: usize) -> u32 {
        weight.clamp(1, self.capacity).min(u32::MAX as usize) as u32
    }

    fn add(&self, n: i64) {
        let now = self.depth.fetch_add(n, Ordering::Relaxed) + n;
        metrics::gauge!("tradepipe_actor_mailbox_depth", "actor" => self.actor).set(now as f64);
    }

    /// Called by the actor when it takes a pushed message (of this weight) out of its mailbox.
    pub fn taken(&self, weight: usize) {
        self.taken.fetch_add(1, Ordering::Relaxed);
        self.add(-1);
        self.permits.add_permits(self.weight(weight) as usize);
    }

    /// Called by an actor that takes a message out of its mailbox but keeps its items in a
    /// buffer of its own (the Redis publisher's outbox): the message is counted as taken, but
    /// its permits come back only through [`release`](Self::release), with the returned count,
    /// when the items leave the buffer; so the bound covers mailbox and buffer together.
    pub fn taken_keeping_permits(&self, weight: usize) -> usize {
        self.taken.fetch_add(1, Ordering::Relaxed);
        self.add(-1);
        self.weight(weight) as usize
    }

    /// Returns permits kept by [`taken_keeping_permits`](Self::taken_keeping_permits).
    pub fn release(&self, permits: usize) {
        self.permits.add_permits(permits);
    }

    pub fn get(&self) -> i64 {
        self.depth.load(Ordering::Relaxed)
    }

    pub(crate) fn taken_total(&self) -> u64 {
        self.taken.load(Ordering::Relaxed)
    }

    pub fn actor(&self) -> &'static str {
        self.actor
    }
}

/// A bounded mailbox handle; the bound is its `MailboxDepth` (actix's own capacity is set as well,
/// to the same number, which as a message count is never the tighter one).
///
/// Clones share ONE actix sender (`Arc<Addr>`). actix bounds a mailbox per sender: every `Addr`
/// clone may enqueue one message past the capacity before it is parked, so a producer that
/// cloned the address per message (as a `'static` future must) would never be held back. Found
/// by the memory benchmark: with a lagging writer, memory grew with every trade.
pub(crate) struct Mailbox<A: Actor> {
    addr: Arc<Addr<A>>,
    depth: MailboxDepth,
}

impl<A: Actor> Clone for Mailbox<A> {
    fn clone(&self) -> Self {
        Mailbox {
            addr: self.addr.clone(),
            depth: self.depth.clone(),
        }
    }
}

impl<A: Actor> Mailbox<A> {
    pub fn new(addr: Addr<A>, depth: MailboxDepth) -> Self {
        Mailbox {
            addr: Arc::new(addr),
            depth,
        }
    }

    pub fn depth(&self) -> &MailboxDepth {
        &self.depth
    }

    /// Enqueues `msg`, waiting while the mailbox is full (see [`push_weighted`]).
    pub async fn push<M>(&self, msg: M, weight: usize) -> Result<(), ActorGone>
    where
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        push_weighted(&self.depth, msg, weight, |m| self.addr.try_send(m)).await
    }

    /// The same bounded mailbox seen as a sink of `M` alone, for a producer that should not
    /// name its consumer's type.
    pub(crate) fn recipient<M>(&self) -> BoundedRecipient<M>
    where
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        BoundedRecipient::new(self.addr.as_ref().clone().recipient(), self.depth.clone())
    }

    /// Sends a control message and waits for the handler's answer.
    pub(crate) async fn ask<M>(&self, msg: M) -> Result<M::Result, ActorGone>
    where
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        self.addr
            .send(msg)
            .await
            .map_err(|_| ActorGone(self.depth.actor))
    }
}

/// A bounded mailbox for one message type, whatever actor handles it: the candle builder's sinks
/// are these, so it can be run against small stubs. The bound is the consumer's `MailboxDepth`,
/// shared with its `Mailbox`; clones share ONE actix sender, for the reason given on `Mailbox`.
pub(crate) struct BoundedRecipient<M>
where
    M: Message + Send,
    M::Result: Send,
{
    recipient: Arc<Recipient<M>>,
    depth: MailboxDepth,
}

impl<M> Clone for BoundedRecipient<M>
where
    M: Message + Send,
    M::Result: Send,
{
    fn clone(&self) -> Self {
        BoundedRecipient {
            recipient: self.recipient.clone(),
            depth: self.depth.clone(),
        }
    }
}

impl<M> BoundedRecipient<M>
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    /// `depth` must be the one the consumer calls `taken` on, or pushes wait for ever.
    pub fn new(recipient: Recipient<M>, depth: MailboxDepth) -> Self {
        BoundedRecipient {
            recipient: Arc::new(recipient),
            depth,
        }
    }

    /// Enqueues `msg`, waiting while the mailbox is full (see [`push_weighted`]).
    pub async fn push(&self, msg: M, weight: usize) -> Result<(), ActorGone> {
        push_weighted(&self.depth, msg, weight, |m| self.recipient.try_send(m)).await
    }
}

/// Enqueues `msg` through `try_send`, first waiting for `weight` permits of `depth`: that wait is
/// the backpressure, and the consumer returns the permits through `MailboxDepth::taken`. actix's
/// `try_send` refuses once the mailbox holds its capacity; we retry on a short timer rather than
/// awaiting the handler's reply, so the producer keeps working while the consumer handles
/// earlier messages.
async fn push_weighted<M>(
    depth: &MailboxDepth,
    msg: M,
    weight: usize,
    try_send: impl Fn(M) -> Result<(), SendError<M>>,
) -> Result<(), ActorGone> {
    let weight = depth.weight(weight);
    match depth.permits.acquire_many(weight).await {
        Ok(permit) => permit.forget(),
        Err(_) => return Err(ActorGone(depth.actor)),
    }
    let mut msg = msg;
    loop {
        match try_send(msg) {
            Ok(()) => {
                depth.add(1);
                return Ok(());
            }
            // actix's own per-sender bound is never tighter than ours; if it says full
            // anyway, wait a timer tick (1 ms is tokio's resolution) and try again.
            Err(SendError::Full(back)) => {
                msg = back;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err(SendError::Closed(_)) => {
                depth.permits.add_permits(weight as usize);
                return Err(ActorGone(depth.actor));
            }
        }
    }
}

/// Records one handled message and its handler time when dropped.
pub(crate) struct HandlerTimer {
    actor: &'static str,
    started: Instant,
}

impl HandlerTimer {
    pub fn start(actor: &'static str) -> Self {
        HandlerTimer {
            actor,
            started: Instant::now(),
        }
    }
}

impl Drop for HandlerTimer {
    fn drop(&mut self) {
        metrics::counter!("tradepipe_actor_messages_total", "actor" => self.actor).increment(1);
        metrics::histogram!("tradepipe_actor_handler_seconds", "actor" => self.actor)
            .record(self.started.elapsed().as_secs_f64());
    }
}

static RESTARTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Restarts in this process so far, all actors (the metric has them per actor).
#[cfg(test)]
pub(crate) fn restarts_so_far() -> u64 {
    RESTARTS.load(Ordering::Relaxed)
}

/// Every `Supervised::restarting` calls this, so restarts are visible to operators.
pub(crate) fn count_restart(actor: &'static str) {
    RESTARTS.fetch_add(1, Ordering::Relaxed);
    metrics::counter!("tradepipe_actor_restarts_total", "actor" => actor).increment(1);
    tracing::warn!(actor, "actor restarting under its supervisor");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Handles `Work` slowly (each takes 20 ms of the actor's time) and can be told to stop.
    struct Slow {
        handled: Arc<AtomicU64>,
        depth: MailboxDepth,
    }

    impl Actor for Slow {
        type Context = Context<Self>;
        fn started(&mut self, ctx: &mut Context<Self>) {
            ctx.set_mailbox_capacity(2);
        }
    }

    impl Supervised for Slow {
        fn restarting(&mut self, _ctx: &mut Context<Self>) {
            count_restart("test_slow");
        }
    }

    #[derive(Message)]
    #[rtype(result = "()")]
    struct Work;

    #[derive(Message)]
    #[rtype(result = "u64")]
    struct Handled;

    #[derive(Message)]
    #[rtype(result = "()")]
    struct Crash;

    impl Handler<Work> for Slow {
        type Result = AtomicResponse<Self, ()>;
        fn handle(&mut self, _: Work, _: &mut Context<Self>) -> Self::Result {
            self.depth.taken(1);
            self.handled.fetch_add(1, Ordering::SeqCst);
            AtomicResponse::new(Box::pin(
                tokio::time::sleep(Duration::from_millis(20)).into_actor(self),
            ))
        }
    }

    impl Handler<Handled> for Slow {
        type Result = u64;
        fn handle(&mut self, _: Handled, _: &mut Context<Self>) -> u64 {
            self.handled.load(Ordering::SeqCst)
        }
    }

    impl Handler<Crash> for Slow {
        type Result = ();
        fn handle(&mut self, _: Crash, ctx: &mut Context<Self>) {
            ctx.stop();
        }
    }

    /// Waits until `cond` holds; fails the test after five seconds.
    pub(super) async fn until(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn start() -> (Mailbox<Slow>, Arc<AtomicU64>) {
        let handled = Arc::new(AtomicU64::new(0));
        let depth = MailboxDepth::new("test_slow", 2);
        let (h, d) = (handled.clone(), depth.clone());
        let addr = Supervisor::start(move |_| Slow {
            handled: h,
            depth: d,
        });
        (Mailbox::new(addr, depth), handled)
    }

    #[actix_rt::test]
    async fn push_waits_while_the_mailbox_is_full() {
        let (mb, handled) = start();
        let started = Instant::now();
        let mut most = 0;
        for _ in 0..40 {
            mb.push(Work, 1).await.unwrap();
            most = most.max(mb.depth.get());
        }
        // Never more than the capacity waiting, whatever the number of pushes: the producer is
        // held back instead of queueing without bound.
        assert!(most <= 2, "{most} messages waiting with capacity 2");
        // 40 pushes could only complete as the consumer made room.
        assert!(
            handled.load(Ordering::SeqCst) >= 37,
            "pushes did not wait for the consumer"
        );
        assert!(started.elapsed() >= Duration::from_millis(37 * 20));
        assert_eq!(mb.ask(Handled).await.unwrap(), 40, "nothing lost");
    }

    #[actix_rt::test]
    async fn clones_share_one_bound() {
        let (mb, handled) = start();
        let mut most = 0;
        for _ in 0..40 {
            // A fresh clone per message, as a producer's 'static futures take one.
            mb.clone().push(Work, 1).await.unwrap();
            most = most.max(mb.depth.get());
        }
        assert!(
            most <= 2,
            "{most} messages waiting: clones bypassed the bound"
        );
        assert!(handled.load(Ordering::SeqCst) >= 37);
        assert_eq!(mb.ask(Handled).await.unwrap(), 40);
    }

    #[actix_rt::test]
    async fn a_stopped_actor_is_restarted_counted_and_keeps_its_state() {
        let (mb, _) = start();
        mb.push(Work, 1).await.unwrap();
        let before = restarts_so_far();
        mb.ask(Crash).await.unwrap();
        mb.push(Work, 1).await.unwrap();
        // Same struct after the restart: the count carried over.
        assert_eq!(mb.ask(Handled).await.unwrap(), 2);
        assert!(restarts_so_far() > before, "restart counted");
    }
}
