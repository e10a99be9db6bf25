//! How far the market pipeline has come: the counters behind the `--progress` line and
//! `--exit-after-trades`. Written by the market writer, read by the wiring; the metrics carry the
//! same facts for operators.

use crate::store::WriteStats;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

/// Counters for the progress line and `--exit-after-trades`; the metrics carry the same facts.
#[derive(Debug, Default)]
pub struct Progress {
    pub ticks_written: AtomicU64,
    pub candles_written: AtomicU64,
    pub newest_trade_ms: AtomicI64,
    /// Milliseconds since `epoch` of the first and the latest successful tick write: the
    /// sustained rate is measured between them, without start-up and shutdown.
    pub first_write_ms: AtomicI64,
    pub last_write_ms: AtomicI64,
    pub epoch: std::sync::OnceLock<Instant>,
}

impl Progress {
    pub(crate) fn record_written(&self, s: &WriteStats) {
        if s.ticks_inserted > 0 {
            let now = self.epoch.get_or_init(Instant::now).elapsed().as_millis() as i64;
            let _ = self.first_write_ms.compare_exchange(
                0,
                now.max(1),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            self.last_write_ms.store(now.max(1), Ordering::Relaxed);
        }
        self.ticks_written
            .fetch_add(s.ticks_inserted, Ordering::Relaxed);
        self.candles_written
            .fetch_add(s.candles_upserted, Ordering::Relaxed);
    }
}
