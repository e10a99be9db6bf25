//! Every metric the daemon exports, in one table: name, type, labels, help text and buckets.
//! The recorder is configured from it (buckets), `/metrics` documents itself from it (HELP and
//! TYPE), and at start every series whose label values are known is registered at zero, so
//! dashboards and alert rules see a metric before its first event and `rate()` counts that event.
//! `docs/metrics.md` is the same table for people; a test keeps the two equal.

/// How a metric is exported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Counter,
    Gauge,
    /// Prometheus histogram with these bucket bounds.
    Histogram(&'static [f64]),
    /// Client-side quantiles (not aggregatable across instances; used where the target is a
    /// quantile of one process).
    Summary,
}

impl Kind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram(_) => "histogram",
            Kind::Summary => "summary",
        }
    }
}

/// Where a label's values come from. Every label set is bounded: configuration or code decides it,
/// never external data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Values {
    /// A fixed set named in code.
    Fixed(&'static [&'static str]),
    /// The configured symbols (`market.symbols`).
    Symbols,
    /// The candle intervals (1m .. 1w).
    Intervals,
    /// The supervised actors.
    Actors,
    /// The configured news sources.
    Sources,
    /// The feed connections: "0", "1", ... one per `binance.max_streams_per_connection` symbols.
    Connections,
    /// Known only once the component reports (a retention policy, a prediction horizon), or
    /// without a meaningful value before its first event (a price); bounded by configuration,
    /// but not registered ahead.
    Runtime,
}

#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    pub name: &'static str,
    pub kind: Kind,
    pub labels: &'static [(&'static str, Values)],
    pub help: &'static str,
}

const SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const SLOW_SECONDS: &[f64] = &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
const PASS_SECONDS: &[f64] = &[0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0];
const BATCH_TICKS: &[f64] = &[
    1.0, 10.0, 100.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 50000.0,
];

pub(crate) const ACTORS: &[&str] = &[
    "exchange_feed",
    "candle_builder",
    "market_writer",
    "redis_publisher",
    "crawler",
    "normalizer",
    "sentiment",
    "prediction",
];

const SYMBOL: (&str, Values) = ("symbol", Values::Symbols);
const ACTOR: (&str, Values) = ("actor", Values::Actors);
const SOURCE: (&str, Values) = ("source", Values::Sources);

use Kind::*;

pub const CATALOGUE: &[MetricDef] = &[
    // Exchange feed.
    MetricDef {
        name: "tradepipe_trades_received_total",
        kind: Counter,
        labels: &[SYMBOL],
        help: "Trades received from the exchange (live and backfilled), per symbol.",
    },
    MetricDef {
        name: "tradepipe_trades_late_total",
        kind: Counter,
        labels: &[SYMBOL],
        help: "New trades stamped before the open minute, folded into it because their candle had already closed (each makes a candle inexact; expected 0).",
    },
    MetricDef {
        name: "tradepipe_trades_duplicate_total",
        kind: Counter,
        labels: &[SYMBOL],
        help: "Trades dropped because their id was already processed, per symbol.",
    },
    MetricDef {
        name: "tradepipe_trades_unknown_symbol_total",
        kind: Counter,
        labels: &[],
        help: "Trades for a symbol the candle builder does not track (dropped).",
    },
    MetricDef {
        name: "tradepipe_feed_messages_malformed_total",
        kind: Counter,
        labels: &[],
        help: "WebSocket messages that could not be parsed (logged and skipped).",
    },
    MetricDef {
        name: "tradepipe_feed_gaps_total",
        kind: Counter,
        labels: &[SYMBOL],
        help: "Trade-id gaps detected, per symbol.",
    },
    MetricDef {
        name: "tradepipe_feed_backfilled_trades_total",
        kind: Counter,
        labels: &[SYMBOL],
        help: "Trades fetched over REST to fill gaps, per symbol.",
    },
    MetricDef {
        name: "tradepipe_feed_gap_trades_unfilled_total",
        kind: Counter,
        labels: &[SYMBOL],
        help: "Trades in gaps that could not be backfilled, per symbol.",
    },
    MetricDef {
        name: "tradepipe_feed_reconnects_total",
        kind: Counter,
        labels: &[(
            "reason",
            Values::Fixed(&[
                "connect_failed",
                "connect_timeout",
                "scheduled",
                "stalled",
                "closed",
                "error",
                "server_shutdown",
            ]),
        )],
        help: "WebSocket reconnects, by reason.",
    },
    MetricDef {
        name: "tradepipe_feed_connected",
        kind: Gauge,
        labels: &[("conn", Values::Connections)],
        help: "1 while the feed connection is up, per connection (0, 1, ... per 1024 streams).",
    },
    MetricDef {
        name: "tradepipe_last_trade_price",
        kind: Gauge,
        labels: &[("symbol", Values::Runtime)],
        help: "Price of the newest trade per symbol, in the quote asset (for display; the exact \
               decimal is in PostgreSQL and Redis).",
    },
    MetricDef {
        name: "tradepipe_feed_lag_seconds",
        kind: Gauge,
        labels: &[],
        help: "Wall clock minus the exchange time of the newest trade handled by the candle builder.",
    },
    // Actors.
    MetricDef {
        name: "tradepipe_actor_messages_total",
        kind: Counter,
        labels: &[ACTOR],
        help: "Messages handled, per actor.",
    },
    MetricDef {
        name: "tradepipe_actor_handler_seconds",
        kind: Histogram(SECONDS),
        labels: &[ACTOR],
        help: "Handler time per message, per actor.",
    },
    MetricDef {
        name: "tradepipe_actor_mailbox_depth",
        kind: Gauge,
        labels: &[ACTOR],
        help: "Messages sent to an actor and not yet handled.",
    },
    MetricDef {
        name: "tradepipe_actor_restarts_total",
        kind: Counter,
        labels: &[ACTOR],
        help: "Supervisor restarts, per actor.",
    },
    MetricDef {
        name: "tradepipe_watchdog_healthy",
        kind: Gauge,
        labels: &[],
        help: "1 when the last liveness check passed (every arbiter answers, no mailbox with work \
               has stalled); systemd's WATCHDOG=1 is sent only then.",
    },
    // Candles and the writer.
    MetricDef {
        name: "tradepipe_candles_closed_total",
        kind: Counter,
        labels: &[("interval", Values::Intervals)],
        help: "Candles closed, per interval.",
    },
    MetricDef {
        name: "tradepipe_writer_rows_written_total",
        kind: Counter,
        labels: &[("table", Values::Fixed(&["price_ticks", "price_candles"]))],
        help: "Rows written to PostgreSQL, per table.",
    },
    MetricDef {
        name: "tradepipe_writer_batch_ticks",
        kind: Histogram(BATCH_TICKS),
        labels: &[],
        help: "Ticks per PostgreSQL transaction.",
    },
    MetricDef {
        name: "tradepipe_writer_flush_seconds",
        kind: Histogram(SECONDS),
        labels: &[],
        help: "Time to write one batch to PostgreSQL.",
    },
    MetricDef {
        name: "tradepipe_writer_buffered_ticks",
        kind: Gauge,
        labels: &[],
        help: "Ticks held in memory waiting for PostgreSQL.",
    },
    MetricDef {
        name: "tradepipe_writer_errors_total",
        kind: Counter,
        labels: &[(
            "kind",
            Values::Fixed(&["unavailable", "rejected", "spool_read"]),
        )],
        help: "Failed PostgreSQL writes, by kind.",
    },
    MetricDef {
        name: "tradepipe_spool_batches",
        kind: Gauge,
        labels: &[],
        help: "Batches waiting in the on-disk spool.",
    },
    MetricDef {
        name: "tradepipe_spool_bytes",
        kind: Gauge,
        labels: &[],
        help: "Bytes waiting in the on-disk spool.",
    },
    // Redis publishing.
    MetricDef {
        name: "tradepipe_redis_commands_total",
        kind: Counter,
        labels: &[],
        help: "Commands sent to Redis in pipelines.",
    },
    MetricDef {
        name: "tradepipe_redis_unpublished_total",
        kind: Counter,
        labels: &[(
            "kind",
            Values::Fixed(&["tick", "candle", "article", "prediction"]),
        )],
        help: "Updates not published because Redis was unavailable, by kind.",
    },
    MetricDef {
        name: "tradepipe_redis_pipeline_seconds",
        kind: Histogram(SECONDS),
        labels: &[],
        help: "Round trip of one Redis pipeline.",
    },
    MetricDef {
        name: "tradepipe_tick_to_publish_seconds",
        kind: Summary,
        labels: &[],
        help: "From reading a trade off the socket to Redis acknowledging its PUBLISH.",
    },
    // News crawling and normalization.
    MetricDef {
        name: "tradepipe_crawl_rounds_total",
        kind: Counter,
        labels: &[
            SOURCE,
            (
                "outcome",
                Values::Fixed(&[
                    "completed",
                    "lock_held",
                    "not_modified",
                    "stopped",
                    "failed",
                ]),
            ),
        ],
        help: "Crawl rounds per source, by outcome.",
    },
    MetricDef {
        name: "tradepipe_crawl_urls_total",
        kind: Counter,
        labels: &[SOURCE, ("outcome", Values::Fixed(&["known", "new"]))],
        help: "Article URLs found in listings per source: already stored or new.",
    },
    MetricDef {
        name: "tradepipe_crawl_requests_total",
        kind: Counter,
        labels: &[SOURCE],
        help: "HTTP requests sent, per source (robots.txt, listings, pages).",
    },
    MetricDef {
        name: "tradepipe_crawl_errors_total",
        kind: Counter,
        labels: &[
            SOURCE,
            (
                "kind",
                Values::Fixed(&[
                    "invalid_url",
                    "robots_disallowed",
                    "timeout",
                    "connect",
                    "too_many_redirects",
                    "status",
                    "too_large",
                    "body",
                    "not_text",
                    "request",
                    "blocked_host",
                    "blocked_address",
                ]),
            ),
        ],
        help: "Failed fetches per source, by kind (blocked_*: refused by the egress policy).",
    },
    MetricDef {
        name: "tradepipe_crawl_request_seconds",
        kind: Histogram(SLOW_SECONDS),
        labels: &[SOURCE],
        help: "Time per HTTP request (after pacing), per source.",
    },
    MetricDef {
        name: "tradepipe_crawl_bytes_total",
        kind: Counter,
        labels: &[SOURCE],
        help: "Response body bytes read, per source.",
    },
    MetricDef {
        name: "tradepipe_normalized_total",
        kind: Counter,
        labels: &[(
            "outcome",
            Values::Fixed(&["completed", "failed", "store_error"]),
        )],
        help: "Raw pages normalized into articles, by outcome.",
    },
    MetricDef {
        name: "tradepipe_news_raw_pages",
        kind: Gauge,
        labels: &[(
            "status",
            Values::Fixed(&["pending", "processing", "completed", "failed"]),
        )],
        help: "Crawled pages in the document store, by processing status (pending + processing \
               is the normalization backlog).",
    },
    MetricDef {
        name: "tradepipe_news_articles",
        kind: Gauge,
        labels: &[],
        help: "Normalized articles in the document store.",
    },
    MetricDef {
        name: "tradepipe_normalize_seconds",
        kind: Histogram(SECONDS),
        labels: &[],
        help: "Time to normalize one page (extraction, cleaning, language, symbols).",
    },
    // Analysis (issue 4).
    MetricDef {
        name: "tradepipe_analysis_results_total",
        kind: Counter,
        labels: &[(
            "outcome",
            Values::Fixed(&["completed", "failed", "duplicate", "store_error"]),
        )],
        help: "Articles analysed, by outcome (duplicate: already analysed, kept the first; store_error: retried after its lease).",
    },
    MetricDef {
        name: "tradepipe_analysis_sentiment_total",
        kind: Counter,
        labels: &[(
            "sentiment",
            Values::Fixed(&["bullish", "bearish", "neutral"]),
        )],
        help: "Articles analysed, by overall sentiment.",
    },
    MetricDef {
        name: "tradepipe_analysis_backlog_articles",
        kind: Gauge,
        labels: &[],
        help: "Normalized articles waiting for analysis.",
    },
    MetricDef {
        name: "tradepipe_analysis_seconds",
        kind: Histogram(SECONDS),
        labels: &[],
        help: "Time to analyse one article.",
    },
    MetricDef {
        name: "tradepipe_predictions_total",
        kind: Counter,
        labels: &[SYMBOL],
        help: "Trend predictions made, per symbol.",
    },
    MetricDef {
        name: "tradepipe_predictions_scored_total",
        kind: Counter,
        labels: &[
            SYMBOL,
            ("horizon", Values::Runtime),
            ("result", Values::Fixed(&["hit", "miss"])),
        ],
        help: "Predictions whose horizon passed and were scored against the candles, by whether the direction was right.",
    },
    MetricDef {
        name: "tradepipe_prediction_errors_total",
        kind: Counter,
        labels: &[],
        help: "Prediction rounds for a symbol and horizon that failed (store or candles unavailable); retried next round.",
    },
    MetricDef {
        name: "tradepipe_prediction_hit_rate",
        kind: Gauge,
        labels: &[SYMBOL, ("horizon", Values::Runtime)],
        help: "Rolling share (0..1) of scored predictions whose direction was right.",
    },
    // Retention (issue 5).
    MetricDef {
        name: "tradepipe_retention_rows_archived_total",
        kind: Counter,
        labels: &[("policy", Values::Runtime)],
        help: "Rows written to archive files before removal, per retention policy.",
    },
    MetricDef {
        name: "tradepipe_retention_rows_removed_total",
        kind: Counter,
        labels: &[("policy", Values::Runtime)],
        help: "Rows removed, per retention policy.",
    },
    MetricDef {
        name: "tradepipe_retention_partitions_dropped_total",
        kind: Counter,
        labels: &[],
        help: "Partitions dropped: daily tick partitions and monthly candle partitions.",
    },
    MetricDef {
        name: "tradepipe_retention_pass_seconds",
        kind: Histogram(PASS_SECONDS),
        labels: &[],
        help: "Duration of one retention pass over every policy.",
    },
    MetricDef {
        name: "tradepipe_retention_last_success_timestamp_seconds",
        kind: Gauge,
        labels: &[],
        help: "Unix time of the last retention pass that completed (0: none yet in this process).",
    },
    MetricDef {
        name: "tradepipe_retention_failures_total",
        kind: Counter,
        labels: &[("policy", Values::Runtime)],
        help: "Retention steps that failed, per policy.",
    },
    // Dependencies and the process.
    MetricDef {
        name: "tradepipe_postgres_up",
        kind: Gauge,
        labels: &[],
        help: "1 when the last PostgreSQL ping (SELECT 1) succeeded.",
    },
    MetricDef {
        name: "tradepipe_postgres_ping_seconds",
        kind: Histogram(SECONDS),
        labels: &[],
        help: "Round trip of the PostgreSQL ping (successful pings only).",
    },
    MetricDef {
        name: "tradepipe_postgres_replica_usable",
        kind: Gauge,
        labels: &[("replica", Values::Runtime)],
        help: "1 while the read replica (host:port from database.read_urls) receives reads: it answers, is a standby and is within database.replica_max_lag_ms.",
    },
    MetricDef {
        name: "tradepipe_postgres_replica_lag_seconds",
        kind: Gauge,
        labels: &[("replica", Values::Runtime)],
        help: "How long ago the primary had written no more than the replica has replayed (0: caught up), at the last check that reached it.",
    },
    MetricDef {
        name: "tradepipe_postgres_reads_total",
        kind: Counter,
        labels: &[("target", Values::Fixed(&["replica", "primary"]))],
        help: "Reads that tolerate lag (predictor candles and evidence, due predictions, counts), by the server that answered.",
    },
    MetricDef {
        name: "tradepipe_redis_up",
        kind: Gauge,
        labels: &[],
        help: "1 when the last Redis PING succeeded.",
    },
    MetricDef {
        name: "tradepipe_redis_ping_seconds",
        kind: Histogram(SECONDS),
        labels: &[],
        help: "Round trip of the Redis PING (successful pings only).",
    },
    MetricDef {
        name: "tradepipe_metrics_upkeep_total",
        kind: Counter,
        labels: &[],
        help: "Upkeep runs of the metrics recorder (drains histogram samples when nobody scrapes; expected every 5 s).",
    },
    MetricDef {
        name: "process_resident_memory_bytes",
        kind: Gauge,
        labels: &[],
        help: "Resident set size of the daemon (VmRSS from /proc/self/status).",
    },
    MetricDef {
        name: "process_open_fds",
        kind: Gauge,
        labels: &[],
        help: "Open file descriptors (entries in /proc/self/fd).",
    },
    MetricDef {
        name: "process_start_time_seconds",
        kind: Gauge,
        labels: &[],
        help: "Unix time the daemon started.",
    },
];

/// Label values that are known only from configuration.
#[derive(Debug, Default, Clone)]
pub(crate) struct KnownLabels {
    pub symbols: Vec<String>,
    pub sources: Vec<String>,
    pub connections: usize,
}

pub fn find(name: &str) -> Option<&'static MetricDef> {
    CATALOGUE.iter().find(|m| m.name == name)
}

/// Help and type for every metric, so `/metrics` documents itself.
pub(super) fn describe_all() {
    for m in CATALOGUE {
        let (name, help) = (m.name, m.help);
        metrics::with_recorder(|r| match m.kind {
            Counter => r.describe_counter(name.into(), None, help.into()),
            Gauge => r.describe_gauge(name.into(), None, help.into()),
            Histogram(_) | Summary => r.describe_histogram(name.into(), None, help.into()),
        });
    }
}

/// Every label combination of `m` that can be known ahead, or `None` if a label's values only
/// appear at run time. A metric without labels has one (empty) combination.
pub(crate) fn label_sets(m: &MetricDef, known: &KnownLabels) -> Option<Vec<Vec<(String, String)>>> {
    let mut sets: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for (label, values) in m.labels {
        let values: Vec<String> = match values {
            Values::Fixed(v) => v.iter().map(|s| s.to_string()).collect(),
            Values::Symbols => known.symbols.clone(),
            Values::Sources => known.sources.clone(),
            Values::Connections => (0..known.connections).map(|i| i.to_string()).collect(),
            Values::Intervals => crate::domain::Interval::ALL
                .iter()
                .map(|i| i.as_str().to_string())
                .collect(),
            Values::Actors => ACTORS.iter().map(|s| s.to_string()).collect(),
            Values::Runtime => return None,
        };
        sets = sets
            .into_iter()
            .flat_map(|set| {
                values.iter().map(move |v| {
                    let mut s = set.clone();
                    s.push((label.to_string(), v.clone()));
                    s
                })
            })
            .collect();
    }
    Some(sets)
}

/// Registers every series that can be known ahead at zero (counters and gauges at 0, histograms
/// empty). Gauges are only created, not overwritten, so a value set earlier stays.
pub(crate) fn register_known(known: &KnownLabels) {
    for m in CATALOGUE {
        let Some(sets) = label_sets(m, known) else {
            continue;
        };
        for set in sets {
            let labels: Vec<metrics::Label> = set
                .into_iter()
                .map(|(k, v)| metrics::Label::new(k, v))
                .collect();
            match m.kind {
                Counter => metrics::counter!(m.name, labels).increment(0),
                Gauge => metrics::gauge!(m.name, labels).increment(0.0),
                Histogram(_) | Summary => {
                    let _ = metrics::histogram!(m.name, labels);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_follow_prometheus_conventions() {
        let mut seen = HashSet::new();
        for m in CATALOGUE {
            assert!(seen.insert(m.name), "{} listed twice", m.name);
            assert!(
                m.name.starts_with("tradepipe_") || m.name.starts_with("process_"),
                "{}: no namespace",
                m.name
            );
            assert!(
                m.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{}: not snake case",
                m.name
            );
            match m.kind {
                Counter => assert!(m.name.ends_with("_total"), "counter {}", m.name),
                _ => assert!(!m.name.ends_with("_total"), "non-counter {}", m.name),
            }
            if m.name.contains("seconds") || m.name.contains("bytes") {
                assert!(
                    m.name.ends_with("_seconds")
                        || m.name.ends_with("_bytes")
                        || m.name.ends_with("_seconds_total")
                        || m.name.ends_with("_bytes_total"),
                    "{}: unit not at the end",
                    m.name
                );
            }
            assert!(m.help.ends_with('.'), "{}: help is a sentence", m.name);
        }
    }

    #[test]
    fn label_sets_are_the_product_of_bounded_values() {
        let known = KnownLabels {
            symbols: vec!["BTCUSDT".into(), "ETHUSDT".into()],
            sources: vec!["a".into()],
            connections: 1,
        };
        let rounds = find("tradepipe_crawl_rounds_total").unwrap();
        let sets = label_sets(rounds, &known).unwrap();
        assert_eq!(sets.len(), 5);
        assert!(sets.contains(&vec![
            ("source".into(), "a".into()),
            ("outcome".into(), "lock_held".into())
        ]));
        let lag = find("tradepipe_feed_lag_seconds").unwrap();
        assert_eq!(label_sets(lag, &known).unwrap(), vec![Vec::new()]);
        let hit = find("tradepipe_prediction_hit_rate").unwrap();
        assert!(
            label_sets(hit, &known).is_none(),
            "horizon known at run time"
        );
    }

    /// Every metric name written in the source is in the catalogue (a metric added without a
    /// catalogue entry would go undocumented and unregistered).
    #[test]
    fn every_metric_in_the_source_is_catalogued() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let re = regex::Regex::new(r#"(?:counter|gauge|histogram)!\(\s*"([a-z_0-9]+)""#).unwrap();
        let mut missing = Vec::new();
        let mut stack = vec![root];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for cap in re.captures_iter(&text) {
                        let name = &cap[1];
                        if name.starts_with("tradepipe_") && find(name).is_none() {
                            missing.push(format!("{name} ({})", path.display()));
                        }
                    }
                }
            }
        }
        assert!(missing.is_empty(), "not in the catalogue: {missing:?}");
    }
}
