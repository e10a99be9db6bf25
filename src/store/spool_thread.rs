//! The spool's own thread: every spool operation (appends and their fsyncs, segment reads of up
//! to 16 MiB, removals, rejected-batch files) runs there, so an async caller never waits on the
//! disk on its executor's thread and a slow disk cannot stall the actors sharing that thread.
//!
//! Operations run one at a time in the order they were queued, so appends keep their order and
//! an operation sees the effect of every one queued before it. The queue is bounded: a caller
//! waits to queue only while the disk is [`QUEUE`] operations behind (back-pressure), and an
//! append is durable only once its [`AppendAck`] says so.

use super::spool::{Spool, SpoolError, SpoolSegment};
use crate::domain::MarketBatch;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot};

/// Operations queued ahead of the disk before callers wait.
pub(crate) const QUEUE: usize = 4;

type Reply<T> = oneshot::Sender<Result<T, SpoolError>>;

enum Op {
    Append(Arc<MarketBatch>, Reply<()>),
    Oldest(Reply<Option<SpoolSegment>>),
    Remove(SpoolSegment, Reply<()>),
    KeepRejected(MarketBatch, String, Reply<PathBuf>),
    /// Answered once everything queued before it is done.
    Barrier(Reply<()>),
}

/// The spool's depth as of the last finished operation, readable without waiting for the disk.
#[derive(Debug, Default)]
struct Depth {
    batches: AtomicU64,
    bytes: AtomicU64,
}

impl Depth {
    fn update(&self, spool: &Spool) {
        self.batches.store(spool.depth_batches(), Ordering::Relaxed);
        self.bytes.store(spool.depth_bytes(), Ordering::Relaxed);
    }
}

/// A handle to the spool's thread; clones share it. The thread ends once every handle is
/// dropped and the operations already queued are done.
#[derive(Clone, Debug)]
pub struct SpoolThread {
    tx: mpsc::Sender<Op>,
    depth: Arc<Depth>,
}

/// The answer to a queued operation, once the spool thread has done it. For an append, Ok means
/// the batch is fsync'd: it survives a crash.
#[derive(Debug)]
pub(crate) struct Answer<T>(oneshot::Receiver<Result<T, SpoolError>>);

impl<T> Answer<T> {
    pub async fn get(self) -> Result<T, SpoolError> {
        self.0.await.unwrap_or(Err(SpoolError::Stopped))
    }
}

impl SpoolThread {
    /// Moves `spool` to a new thread named `tradepipe-spool`.
    pub fn start(spool: Spool) -> Result<SpoolThread, SpoolError> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let depth = Arc::new(Depth::default());
        depth.update(&spool);
        let d = depth.clone();
        std::thread::Builder::new()
            .name("tradepipe-spool".into())
            .spawn(move || run(spool, rx, &d))
            .map_err(|source| SpoolError::Io {
                context: "starting the spool thread",
                path: PathBuf::new(),
                source,
            })?;
        Ok(SpoolThread { tx, depth })
    }

    pub fn is_empty(&self) -> bool {
        self.depth_batches() == 0
    }

    /// Batches waiting in the spool.
    pub fn depth_batches(&self) -> u64 {
        self.depth.batches.load(Ordering::Relaxed)
    }

    /// Bytes of spooled batches on disk.
    pub fn depth_bytes(&self) -> u64 {
        self.depth.bytes.load(Ordering::Relaxed)
    }

    /// Queues an append, waiting only while the queue is full; the answer says when the batch is
    /// durable.
    pub(crate) async fn queue_append(
        &self,
        batch: Arc<MarketBatch>,
    ) -> Result<Answer<()>, SpoolError> {
        self.queue(|reply| Op::Append(batch, reply)).await
    }

    /// See [`Spool::oldest`].
    pub async fn oldest(&self) -> Result<Option<SpoolSegment>, SpoolError> {
        self.call(Op::Oldest).await
    }

    /// See [`Spool::remove`].
    pub async fn remove(&self, segment: SpoolSegment) -> Result<(), SpoolError> {
        self.call(|reply| Op::Remove(segment, reply)).await
    }

    /// Queues [`Spool::keep_rejected`], waiting only while the queue is full.
    pub(crate) async fn queue_keep_rejected(
        &self,
        batch: MarketBatch,
        error: String,
    ) -> Result<Answer<PathBuf>, SpoolError> {
        self.queue(|reply| Op::KeepRejected(batch, error, reply))
            .await
    }

    /// Waits until every operation queued before this call is done.
    pub(crate) async fn barrier(&self) -> Result<(), SpoolError> {
        self.call(Op::Barrier).await
    }

    async fn queue<T>(&self, op: impl FnOnce(Reply<T>) -> Op) -> Result<Answer<T>, SpoolError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(op(reply))
            .await
            .map_err(|_| SpoolError::Stopped)?;
        Ok(Answer(answer))
    }

    async fn call<T>(&self, op: impl FnOnce(Reply<T>) -> Op) -> Result<T, SpoolError> {
        self.queue(op).await?.get().await
    }
}

fn run(mut spool: Spool, mut rx: mpsc::Receiver<Op>, depth: &Depth) {
    // A caller that stopped waiting for an answer (its actor restarted) does not stop the work:
    // the operation is done either way, so answers that find nobody are ignored.
    while let Some(op) = rx.blocking_recv() {
        match op {
            Op::Append(batch, reply) => {
                let res = spool.append(&batch);
                depth.update(&spool);
                let _ = reply.send(res);
            }
            Op::Oldest(reply) => {
                let _ = reply.send(spool.oldest());
            }
            Op::Remove(segment, reply) => {
                let res = spool.remove(segment);
                depth.update(&spool);
                let _ = reply.send(res);
            }
            Op::KeepRejected(batch, error, reply) => {
                let _ = reply.send(spool.keep_rejected(&batch, &error));
            }
            Op::Barrier(reply) => {
                let _ = reply.send(Ok(()));
            }
        }
    }
}
