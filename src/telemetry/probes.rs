//! Cheap periodic probes for what the pipelines' own metrics cannot say: is PostgreSQL reachable
//! (`SELECT 1`), is Redis reachable (`PING`), and how much memory and how many descriptors the
//! process holds. They run on their own small connections, so a probe never waits behind the
//! writer's batches and the writer never waits behind a probe.

use std::time::{Duration, Instant};

/// How often the probes run. Prometheus scrapes every 15 s by default; this is finer.
pub(crate) const PROBE_INTERVAL: Duration = Duration::from_secs(5);
/// A probe that takes longer than this counts as a failure.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Runs the probes until the process ends. URLs are secrets (they may hold passwords): they are
/// only ever shown redacted.
pub async fn run(database_url: String, redis: crate::config::RedisTarget) {
    let pg = match crate::store::postgres::connect_lazy(&database_url, 1) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!(error = %e, "PostgreSQL probe not configured");
            None
        }
    };
    let redis = match redis.client() {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(error = %e, "Redis probe not configured");
            None
        }
    };
    let mut redis_conn: Option<redis::aio::MultiplexedConnection> = None;
    let mut tick = tokio::time::interval(PROBE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let pg_ok = match &pg {
            Some(pool) => timed(
                "tradepipe_postgres_ping_seconds",
                sqlx::query("SELECT 1").execute(pool),
            )
            .await
            .is_some(),
            None => false,
        };
        metrics::gauge!("tradepipe_postgres_up").set(if pg_ok { 1.0 } else { 0.0 });

        let redis_ok = match &redis {
            Some(client) => ping_redis(client, &mut redis_conn).await,
            None => false,
        };
        metrics::gauge!("tradepipe_redis_up").set(if redis_ok { 1.0 } else { 0.0 });

        record_process();
    }
}

/// How often the news store is counted: a count is a scan, so less often than the pings.
const NEWS_COUNT_INTERVAL: Duration = Duration::from_secs(30);

/// Keeps the news backlog gauges (`tradepipe_news_raw_pages{status}`, `tradepipe_news_articles`)
/// current until the process ends.
pub(crate) async fn run_news_counts(store: std::sync::Arc<dyn crate::store::DocumentStore>) {
    let mut tick = tokio::time::interval(NEWS_COUNT_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match tokio::time::timeout(NEWS_COUNT_INTERVAL, store.counts()).await {
            Ok(Ok(c)) => {
                for (status, n) in [
                    ("pending", c.raw_pending),
                    ("processing", c.raw_processing),
                    ("completed", c.raw_completed),
                    ("failed", c.raw_failed),
                ] {
                    metrics::gauge!("tradepipe_news_raw_pages", "status" => status).set(n as f64);
                }
                metrics::gauge!("tradepipe_news_articles").set(c.articles as f64);
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "counting the news store failed"),
            Err(_) => tracing::warn!("counting the news store timed out"),
        }
    }
}

/// Runs `probe` under the timeout; on success records its round trip in `histogram`.
async fn timed<T, E>(
    histogram: &'static str,
    probe: impl Future<Output = Result<T, E>>,
) -> Option<T> {
    let started = Instant::now();
    match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
        Ok(Ok(v)) => {
            metrics::histogram!(histogram).record(started.elapsed().as_secs_f64());
            Some(v)
        }
        _ => None,
    }
}

async fn ping_redis(
    client: &redis::Client,
    conn: &mut Option<redis::aio::MultiplexedConnection>,
) -> bool {
    if conn.is_none() {
        *conn = tokio::time::timeout(PROBE_TIMEOUT, client.get_multiplexed_async_connection())
            .await
            .ok()
            .and_then(Result::ok);
    }
    let Some(c) = conn.as_mut() else {
        return false;
    };
    let pong = timed(
        "tradepipe_redis_ping_seconds",
        redis::cmd("PING").query_async::<String>(c),
    )
    .await;
    if pong.is_none() {
        // A connection that failed once is not trusted again: reconnect on the next round.
        *conn = None;
    }
    pong.is_some()
}

/// Resident memory and open descriptors, from /proc (Linux only; elsewhere the gauges stay 0).
pub(crate) fn record_process() {
    if let Some(rss) = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| vm_rss_bytes(&s))
    {
        metrics::gauge!("process_resident_memory_bytes").set(rss as f64);
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        metrics::gauge!("process_open_fds").set(dir.count() as f64);
    }
}

/// `VmRSS:   12345 kB` from /proc/self/status, in bytes.
fn vm_rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut parts = line.split_whitespace().skip(1);
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") => Some(value * 1024),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_is_read_in_bytes() {
        let status = "Name:\ttradepipe\nVmPeak:\t  999 kB\nVmRSS:\t   20480 kB\nThreads:\t7\n";
        assert_eq!(vm_rss_bytes(status), Some(20480 * 1024));
        assert_eq!(vm_rss_bytes("VmRSS:\t12 MB\n"), None, "unknown unit");
        assert_eq!(vm_rss_bytes("Name:\tx\n"), None);
    }

    #[test]
    fn this_process_has_memory() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        assert!(vm_rss_bytes(&status).unwrap() > 1024 * 1024);
    }
}
