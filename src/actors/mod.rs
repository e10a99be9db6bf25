//! The actors, one per file, and the small runtime pieces they share: a bounded mailbox handle
//! whose `push` waits while the consumer is full, per-actor metrics, and restart counting.
//!
//! Data paths use `Mailbox::push` (fire-and-forget, but it waits for room: that is the
//! backpressure from PostgreSQL back to the socket). Control messages (flush, stop, queries) use
//! `Mailbox::ask`, which waits for the handler's answer; mailboxes are FIFO, so an `ask` after a
//! series of pushes is answered only once those pushes were handled.

pub mod candle_builder;
pub mod crawler;
pub mod exchange_feed;
pub mod market_writer;
pub mod redis_publisher;

use actix::dev::ToEnvelope;
use actix::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

/// The consumer stopped for good (its arbiter is gone): nothing will ever read the message.
#[derive(Debug, thiserror::Error)]
#[error("actor {0} is gone")]
pub struct ActorGone(pub &'static str);

/// Messages pushed to an actor and not yet handled; exported as `tradepipe_actor_mailbox_depth`.
#[derive(Clone, Debug)]
pub struct MailboxDepth {
    actor: &'static str,
    depth: Arc<AtomicI64>,
}

impl MailboxDepth {
    pub fn new(actor: &'static str) -> Self {
        MailboxDepth {
            actor,
            depth: Arc::new(AtomicI64::new(0)),
        }
    }

    fn add(&self, n: i64) {
        let now = self.depth.fetch_add(n, Ordering::Relaxed) + n;
        metrics::gauge!("tradepipe_actor_mailbox_depth", "actor" => self.actor).set(now as f64);
    }

    /// Called by the actor when it takes a pushed message out of its mailbox.
    pub fn taken(&self) {
        self.add(-1);
    }

    pub fn get(&self) -> i64 {
        self.depth.load(Ordering::Relaxed)
    }
}

/// A bounded mailbox handle. Capacity is set by the actor itself (`ctx.set_mailbox_capacity`)
/// from configuration.
pub struct Mailbox<A: Actor> {
    addr: Addr<A>,
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
        Mailbox { addr, depth }
    }

    pub fn addr(&self) -> &Addr<A> {
        &self.addr
    }

    /// Enqueues `msg`, waiting while the mailbox is full. actix's `try_send` refuses once the
    /// mailbox holds its capacity; we retry on a short timer rather than awaiting the handler's
    /// reply, so the producer keeps working while the consumer handles earlier messages.
    pub async fn push<M>(&self, msg: M) -> Result<(), ActorGone>
    where
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        let mut msg = msg;
        let mut waited = Duration::ZERO;
        loop {
            match self.addr.try_send(msg) {
                Ok(()) => {
                    self.depth.add(1);
                    return Ok(());
                }
                Err(SendError::Full(back)) => {
                    msg = back;
                    // Backpressure: the consumer is behind. 1 ms is tokio's timer resolution.
                    let pause = Duration::from_millis(1);
                    tokio::time::sleep(pause).await;
                    waited += pause;
                    if waited >= Duration::from_secs(5) && waited.as_millis() % 5000 == 0 {
                        tracing::warn!(
                            actor = self.depth.actor,
                            waited_s = waited.as_secs(),
                            "mailbox full; producer waiting"
                        );
                    }
                }
                Err(SendError::Closed(_)) => return Err(ActorGone(self.depth.actor)),
            }
        }
    }

    /// Sends a control message and waits for the handler's answer.
    pub async fn ask<M>(&self, msg: M) -> Result<M::Result, ActorGone>
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

/// Records one handled message and its handler time when dropped.
pub struct HandlerTimer {
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

/// Every `Supervised::restarting` calls this, so restarts are visible to operators.
pub fn count_restart(actor: &'static str) {
    metrics::counter!("tradepipe_actor_restarts_total", "actor" => actor).increment(1);
    tracing::warn!(actor, "actor restarting under its supervisor");
}
