//! The CPU worker pool: a fixed number of threads (a `SyncArbiter`) that run CPU-bound work
//! (page normalization, article analysis) off the async runtime. Each item is timed into its
//! work's histogram, and a panic on one item costs that item, not the thread.
//!
//! Callers send one item per claimed document and the claim size bounds the items in flight: the
//! work that is not claimed waits in the store, not in this pool's queue.

use super::ActorGone;
use actix::prelude::*;
use std::sync::Arc;
use std::time::Instant;

/// What the pool's threads do with one item; one value is shared read-only by every thread.
pub trait CpuWork: Send + Sync + 'static {
    /// The pool's name in errors and logs.
    const NAME: &'static str;
    /// The reason recorded for an item whose run panicked.
    const PANICKED: &'static str;
    type Input: Send + 'static;
    type Output: Send + 'static;

    /// Processes one item; `Err` says why it could not be.
    fn run(&self, input: Self::Input) -> Result<Self::Output, String>;

    /// Records one item's time, panicked or not, in this work's histogram.
    fn observe(seconds: f64);
}

struct Item<W: CpuWork>(W::Input);

impl<W: CpuWork> Message for Item<W> {
    type Result = Result<W::Output, String>;
}

struct Worker<W: CpuWork> {
    work: Arc<W>,
}

impl<W: CpuWork> Actor for Worker<W> {
    type Context = SyncContext<Self>;
}

impl<W: CpuWork> Handler<Item<W>> for Worker<W> {
    type Result = Result<W::Output, String>;

    fn handle(&mut self, item: Item<W>, _ctx: &mut SyncContext<Self>) -> Self::Result {
        let started = Instant::now();
        // A panic on some pathological input must cost this item, not the worker thread.
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.work.run(item.0)));
        W::observe(started.elapsed().as_secs_f64());
        result.unwrap_or_else(|_| Err(W::PANICKED.to_string()))
    }
}

/// A handle on the pool; clones share its threads.
pub struct CpuPool<W: CpuWork> {
    addr: Addr<Worker<W>>,
}

impl<W: CpuWork> Clone for CpuPool<W> {
    fn clone(&self) -> Self {
        CpuPool {
            addr: self.addr.clone(),
        }
    }
}

impl<W: CpuWork> CpuPool<W> {
    /// Starts `workers` threads (at least one) sharing `work`.
    pub fn start(workers: usize, work: W) -> Self {
        let work = Arc::new(work);
        let addr = SyncArbiter::start(workers.max(1), move || Worker { work: work.clone() });
        CpuPool { addr }
    }

    /// Runs one item on the next free thread and waits for its outcome.
    pub async fn run(&self, input: W::Input) -> Result<Result<W::Output, String>, ActorGone> {
        self.addr
            .send(Item(input))
            .await
            .map_err(|_| ActorGone(W::NAME))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Halve;

    impl CpuWork for Halve {
        const NAME: &'static str = "test_halve";
        const PANICKED: &'static str = "halving panicked";
        type Input = i64;
        type Output = i64;

        fn run(&self, n: i64) -> Result<i64, String> {
            match n {
                0 => panic!("zero"),
                n if n % 2 == 1 => Err(format!("{n} is odd")),
                n => Ok(n / 2),
            }
        }

        fn observe(_seconds: f64) {}
    }

    #[actix_rt::test]
    async fn a_panicking_item_costs_that_item_not_the_thread() {
        let pool = CpuPool::start(1, Halve);
        assert_eq!(pool.run(4).await.unwrap(), Ok(2));
        assert_eq!(pool.run(3).await.unwrap(), Err("3 is odd".to_string()));
        assert_eq!(
            pool.run(0).await.unwrap(),
            Err("halving panicked".to_string())
        );
        // The only thread is still there.
        assert_eq!(pool.clone().run(8).await.unwrap(), Ok(4));
    }
}
