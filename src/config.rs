//! Typed configuration: compiled-in defaults, then `config/default.toml` (or `--config FILE`), then
//! environment variables. It is deserialized and validated once at start; running code never
//! re-checks it. A bad value fails at start with a message naming the key.

use crate::redact::redact_url;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tradepipe_model::predict::Horizon;

mod redis_target;
pub use redis_target::{RedisTarget, RedisTls};

/// The environment variables with a short name, mapped to their configuration key. Every key is
/// also reachable as `TRADEPIPE__SECTION__KEY` (double underscores).
pub(crate) const ENV_SHORTCUTS: &[(&str, &str)] = &[
    ("TRADEPIPE_DATABASE_URL", "database.url"),
    ("TRADEPIPE_DATABASE_READ_URLS", "database.read_urls"),
    ("TRADEPIPE_REDIS_URL", "redis.url"),
    ("TRADEPIPE_BINANCE_WS_URL", "binance.ws_url"),
    ("TRADEPIPE_BINANCE_REST_URL", "binance.rest_url"),
    ("TRADEPIPE_BINANCE_API_KEY", "binance.api_key"),
    ("TRADEPIPE_SYMBOLS", "market.symbols"),
    ("TRADEPIPE_HTTP_ADDR", "http.addr"),
    ("TRADEPIPE_LOG_FORMAT", "log.format"),
    ("TRADEPIPE_SPOOL_DIR", "writer.spool_dir"),
    ("TRADEPIPE_SOURCES_FILE", "news.sources_file"),
    ("TRADEPIPE_DOCUMENT_STORE", "documents.backend"),
    ("TRADEPIPE_MONGODB_URL", "documents.mongodb_url"),
    ("TRADEPIPE_ARCHIVE_DIR", "retention.archive_dir"),
];

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub binance: BinanceConfig,
    pub market: MarketConfig,
    pub writer: WriterConfig,
    pub mailbox: MailboxConfig,
    pub http: HttpConfig,
    pub log: LogConfig,
    pub shutdown: ShutdownConfig,
    pub news: NewsConfig,
    pub documents: DocumentsConfig,
    pub analysis: AnalysisConfig,
    pub retention: RetentionConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    pub url: Secret,
    pub max_connections: u32,
    /// Hot standbys of `url` for the reads that tolerate lag (`store::postgres::replicas`);
    /// `TRADEPIPE_DATABASE_READ_URLS=url,url` overrides. What a URL leaves out (user and
    /// password, database, `ssl*` parameters) is taken from `url`.
    #[serde(deserialize_with = "secrets_from_list_or_csv")]
    pub read_urls: Vec<Secret>,
    /// A replica further behind the primary than this is skipped until it catches up.
    pub replica_max_lag_ms: u64,
    /// How often every replica's health and lag are checked (also the lag's resolution).
    pub replica_check_interval_ms: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: Secret("postgres://postgres@127.0.0.1:5432/tradepipe".into()),
            max_connections: 8,
            read_urls: Vec::new(),
            replica_max_lag_ms: 5_000,
            replica_check_interval_ms: 1_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    pub url: Secret,
    /// Certificates for a `rediss://` URL (`[redis.tls]`).
    pub tls: RedisTls,
    /// Prepended to every key and channel; empty in production, unique per test.
    pub key_prefix: String,
    /// After a failed round trip, publishing is skipped (and counted) for this long before the
    /// next attempt, so a dead Redis never slows the PostgreSQL path.
    pub retry_interval_ms: u64,
    /// Open-candle updates go out at most this often per candle; closed candles always go out once.
    pub candle_throttle_ms: u64,
    /// The same for the 5m and longer candles, which change less per update and are watched
    /// less closely: with a thousand symbols, publishing all eight intervals four times a
    /// second was most of Redis's work.
    pub candle_throttle_long_ms: u64,
    /// `price:ticks:{SYM}` keeps about this many entries (`XADD ... MAXLEN ~`), unless
    /// `ticks_stream_retention_secs` is set.
    pub ticks_stream_maxlen: u64,
    /// When above 0, `price:ticks:{SYM}` keeps the entries of this many seconds instead
    /// (`XADD ... MINID ~`), so a consumer group that stops for less than that resumes without
    /// a gap. Memory grows with the trade rate: see docs/redis.md before turning it on for a
    /// whole market.
    pub ticks_stream_retention_secs: u64,
    /// `stream:candles:{SYM}` (every closed candle of every interval, for consumer groups)
    /// keeps this many seconds of entries; 0 turns the stream off.
    pub candles_stream_retention_secs: u64,
    /// `price:candles:*` keeps this many candles, trimmed when one closes (the open candle
    /// can be one more).
    pub candles_keep: u64,
}

impl RedisConfig {
    /// The server to connect to, with its TLS settings.
    pub fn target(&self) -> RedisTarget {
        RedisTarget::new(self.url.clone(), self.tls.clone())
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: Secret("redis://127.0.0.1:6379/0".into()),
            tls: RedisTls::default(),
            key_prefix: String::new(),
            retry_interval_ms: 1000,
            candle_throttle_ms: 250,
            candle_throttle_long_ms: 2000,
            ticks_stream_maxlen: 1000,
            ticks_stream_retention_secs: 0,
            candles_stream_retention_secs: 86_400,
            candles_keep: 500,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BinanceConfig {
    pub ws_url: url::Url,
    pub rest_url: url::Url,
    /// Optional; sent as `X-MBX-APIKEY` on REST calls when set. Never logged.
    pub api_key: Option<Secret>,
    pub max_streams_per_connection: usize,
    /// Binance closes a connection after 24 h; we reconnect earlier, and the gap check backfills
    /// whatever traded in between.
    pub reconnect_after_secs: u64,
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    /// A REST `Retry-After` is obeyed up to this long.
    pub max_retry_after_secs: u64,
    /// A connection that delivers no frame at all (not even a ping) for this long is dead.
    pub stall_timeout_secs: u64,
    /// Trades per historicalTrades call (Binance allows at most 1000).
    pub backfill_page: u16,
    /// A gap larger than this is not backfilled (counted as unfilled): after a long outage the
    /// REST weight limit would be exhausted long before it closed.
    pub max_backfill_trades: u64,
    /// How long one gap's backfill keeps retrying a failing REST endpoint before giving up.
    pub backfill_retry_secs: u64,
    pub request_timeout_ms: u64,
    /// Upper bound of trades per batch handed to the candle builder.
    pub max_batch_trades: usize,
}

impl BinanceConfig {
    /// The retry policy of reconnects and REST backfill.
    pub fn backoff(&self) -> crate::backoff::Backoff {
        crate::backoff::Backoff::from_settings(
            self.backoff_initial_ms,
            self.backoff_max_ms,
            self.max_retry_after_secs,
        )
    }
}

impl Default for BinanceConfig {
    fn default() -> Self {
        BinanceConfig {
            ws_url: default_url("wss://stream.binance.com:9443"),
            rest_url: default_url("https://api.binance.com"),
            api_key: None,
            max_streams_per_connection: 1024,
            reconnect_after_secs: 23 * 3600 + 50 * 60,
            backoff_initial_ms: 250,
            backoff_max_ms: 30_000,
            max_retry_after_secs: 300,
            stall_timeout_secs: 60,
            backfill_page: 1000,
            max_backfill_trades: 2_000_000,
            backfill_retry_secs: 60,
            request_timeout_ms: 10_000,
            max_batch_trades: 2048,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MarketConfig {
    /// Upper-case Binance symbols. `TRADEPIPE_SYMBOLS=BTCUSDT,ETHUSDT` overrides.
    #[serde(deserialize_with = "symbols_from_list_or_csv")]
    pub symbols: Vec<String>,
    /// How often the builder closes candles whose interval ended without a new trade.
    pub close_check_ms: u64,
    /// A candle is closed by the clock only this long after its close time (trades can still be
    /// on the wire), and only while the feed is caught up.
    pub close_grace_ms: u64,
}

impl Default for MarketConfig {
    fn default() -> Self {
        MarketConfig {
            symbols: vec!["BTCUSDT".into(), "ETHUSDT".into()],
            close_check_ms: 500,
            close_grace_ms: 2000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WriterConfig {
    /// Flush when this many ticks are buffered ...
    pub batch_max_ticks: usize,
    /// ... or when the oldest buffered tick is this old.
    pub flush_interval_ms: u64,
    /// A symbol's open (not yet closed) candles are written at most this often; ticks and
    /// closed candles go in every transaction. 0 writes open candles in every transaction.
    /// With a thousand symbols, every transaction would otherwise rewrite ~8 candle rows per
    /// symbol it touched, several times the work of the ticks themselves. A crash loses nothing:
    /// on restart the feed resumes after the lowest trade id the stored intervals reach and the
    /// builder folds the trades in between into the intervals that lack them.
    pub open_candle_write_ms: u64,
    /// The same for the 5m and longer open candles (at least `open_candle_write_ms`): with
    /// thousands of symbols, seven intervals a second per symbol was PostgreSQL's main work.
    /// A restart re-reads up to this long of trades per symbol (one REST call each).
    pub open_candle_long_write_ms: u64,
    /// In-memory bound. Above it the writer waits for PostgreSQL (backpressure) while the
    /// database answers, and spills to the spool while it does not.
    pub max_buffered_ticks: usize,
    pub spool_dir: PathBuf,
    pub retry_interval_ms: u64,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            batch_max_ticks: 20_000,
            flush_interval_ms: 200,
            open_candle_write_ms: 1000,
            open_candle_long_write_ms: 10_000,
            max_buffered_ticks: 100_000,
            spool_dir: PathBuf::from("./spool"),
            retry_interval_ms: 1000,
        }
    }
}

/// Mailbox capacities, in trades waiting (a message is a batch of trades; candle states count as
/// one each). Counting trades, not messages, bounds memory whatever the batch sizes, and does not
/// fill up with tiny batches at low rates. Producers wait when a mailbox is full: that is the
/// backpressure path from PostgreSQL back to the socket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailboxConfig {
    pub candle_builder: usize,
    pub market_writer: usize,
    pub redis_publisher: usize,
    /// Messages (not trades) waiting for each polling actor (normalizer, sentiment, prediction):
    /// only poll-now and stop; their work waits in the store.
    pub pollers: usize,
}

impl Default for MailboxConfig {
    fn default() -> Self {
        MailboxConfig {
            candle_builder: 32_768,
            market_writer: 65_536,
            redis_publisher: 32_768,
            pollers: 16,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// /metrics, /healthz, /readyz. Loopback by default: metrics are not for the internet.
    pub addr: SocketAddr,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 9898)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable, for a terminal.
    Text,
    /// One JSON object per line, for journald and log shippers.
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// An `EnvFilter` directive; `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    /// SIGTERM to exit: stop intake, drain, flush. Past this the process exits non-zero.
    pub deadline_secs: u64,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig { deadline_secs: 30 }
    }
}

/// The news pipeline (crawlers per source and the normalizer).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NewsConfig {
    /// TOML file with `[[sources]]` (seed fields). Missing file or no active source: the news
    /// pipeline does not start and the daemon runs the market pipeline alone.
    pub sources_file: PathBuf,
    /// Sent on every request so site operators can tell who we are and reach us.
    pub user_agent: String,
    pub request_timeout_ms: u64,
    pub max_redirects: usize,
    /// Larger responses are cut off and recorded as a failure (never stored half).
    pub max_body_bytes: u64,
    pub respect_robots_txt: bool,
    /// A page that failed this many times stays FAILED with its error.
    pub max_retries: u32,
    pub retry_backoff_ms: u64,
    pub retry_backoff_max_ms: u64,
    /// A site's `Retry-After` (429/503) holds requests to that source back up to this long.
    pub max_retry_after_secs: u64,
    /// `lock:crawler:{source}` TTL: one instance crawls a source at a time.
    pub lock_ttl_secs: u64,
    /// CPU-bound normalization runs on this many worker threads, never on the async runtime.
    pub normalizer_workers: usize,
    /// A claimed raw article not completed within this lease is handed out again (crash safety).
    pub claim_lease_secs: u64,
    /// How often the normalizer polls the store for PENDING work when idle.
    pub poll_interval_ms: u64,
}

impl Default for NewsConfig {
    fn default() -> Self {
        NewsConfig {
            sources_file: PathBuf::from("config/sources.toml"),
            user_agent: concat!(
                "tradepipe/",
                env!("CARGO_PKG_VERSION"),
                " (news crawler; +https://github.com/tradepipe/tradepipe)"
            )
            .into(),
            request_timeout_ms: 15_000,
            max_redirects: 5,
            max_body_bytes: 5 * 1024 * 1024,
            respect_robots_txt: true,
            max_retries: 3,
            retry_backoff_ms: 2_000,
            retry_backoff_max_ms: 60_000,
            max_retry_after_secs: 600,
            lock_ttl_secs: 300,
            normalizer_workers: 2,
            claim_lease_secs: 300,
            poll_interval_ms: 1_000,
        }
    }
}

impl NewsConfig {
    /// The retry policy of page fetches.
    pub fn backoff(&self) -> crate::backoff::Backoff {
        crate::backoff::Backoff::from_settings(
            self.retry_backoff_ms,
            self.retry_backoff_max_ms,
            self.max_retry_after_secs,
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DocumentBackend {
    /// PostgreSQL JSONB (the seed's Phase 1): the default, nothing else to run.
    Postgres,
    /// MongoDB (the seed's Phase 2) through the official driver.
    Mongodb,
}

/// Where sources, raw pages and articles live. Choosing the store is this one key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DocumentsConfig {
    pub backend: DocumentBackend,
    pub mongodb_url: Secret,
    pub mongodb_database: String,
}

impl Default for DocumentsConfig {
    fn default() -> Self {
        DocumentsConfig {
            backend: DocumentBackend::Postgres,
            mongodb_url: Secret("mongodb://127.0.0.1:27017".into()),
            mongodb_database: "trading_platform".into(),
        }
    }
}

/// The analysis pipeline: SentimentActor (per-article analysis) and PredictionActor (per-symbol
/// trend predictions, scored after their horizon). Runs with the news pipeline.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalysisConfig {
    /// Threads for CPU-bound analysis (a SyncArbiter pool, never the async runtime's threads).
    pub workers: usize,
    /// Articles claimed per round; also the bound on analyses in flight.
    pub claim_batch: usize,
    /// A claimed article not completed within this lease is handed out again (crash safety).
    pub claim_lease_secs: u64,
    /// How often the SentimentActor looks for PENDING articles when idle.
    pub poll_interval_ms: u64,
    /// How often a trend prediction is made per tracked symbol and horizon.
    pub prediction_interval_secs: u64,
    /// Prediction horizons ("15m", "4h", "24h", "7d"); each gets its own prediction.
    pub horizons: Vec<Horizon>,
    /// Analyses newer than this feed a prediction.
    pub window_hours: u64,
    /// An article's weight halves every this many hours of age.
    pub recency_half_life_hours: f64,
    /// 1m candles used for realised volatility.
    pub volatility_minutes: u64,
    /// Scored predictions per symbol and horizon in the rolling hit rate.
    pub hit_rate_window: usize,
}

impl AnalysisConfig {
    /// How the PredictionActor and the back-test weigh evidence: one reading of the keys.
    pub fn weigh_params(&self) -> tradepipe_model::predict::WeighParams {
        let half_life_ms = (self.recency_half_life_hours * 3_600_000.0) as i64;
        tradepipe_model::predict::WeighParams {
            window: chrono::Duration::hours(self.window_hours as i64),
            half_life: chrono::Duration::milliseconds(half_life_ms.max(1)),
        }
    }
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        AnalysisConfig {
            workers: 2,
            claim_batch: 64,
            claim_lease_secs: 120,
            poll_interval_ms: 500,
            prediction_interval_secs: 900,
            horizons: vec![Horizon::hours(24)],
            window_hours: 24,
            recency_half_life_hours: 6.0,
            volatility_minutes: 1440,
            hit_rate_window: 50,
        }
    }
}

/// Data lifecycle (`RetentionActor`, `tradepipe retention`): the seed's retention table, each
/// age configurable. Ages are in hours so that 24-hour and multi-year policies read alike.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Whether the daemon runs the RetentionActor at all (`tradepipe retention` runs regardless).
    pub enabled: bool,
    /// Seconds between two passes (the first runs shortly after start).
    pub interval_secs: u64,
    /// Seconds between two `REFRESH MATERIALIZED VIEW CONCURRENTLY trading.symbol_summary`.
    pub summary_refresh_secs: u64,
    /// Rows per DELETE statement (each its own short transaction).
    pub batch_size: usize,
    /// `ANALYZE` a table after a pass removed more than this share of its rows.
    pub analyze_fraction: f64,
    /// Where archives and their MANIFEST.json go. `TRADEPIPE_ARCHIVE_DIR` overrides.
    pub archive_dir: PathBuf,
    pub compression: Compression,
    /// Log what would be archived and removed, change nothing.
    pub dry_run: bool,
    /// Daily tick partitions created ahead of today.
    pub tick_partitions_ahead_days: u32,
    /// Monthly candle partitions created ahead, the current month included.
    pub candle_partitions_ahead_months: u32,
    pub ticks: AgePolicy,
    pub candles_1m: AgePolicy,
    pub candles_5m_plus: AgePolicy,
    pub raw_articles: AgePolicy,
    pub articles: AgePolicy,
    pub analysis_results: AgePolicy,
    pub sessions: AgePolicy,
}

/// One retention policy: rows older than `max_age_hours` go, after being archived when `archive`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgePolicy {
    pub max_age_hours: u64,
    #[serde(default)]
    pub archive: bool,
}

impl AgePolicy {
    fn new(max_age_hours: u64, archive: bool) -> Self {
        AgePolicy {
            max_age_hours,
            archive,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Gzip,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        // The seed's table: archive where it has a Cold/Archive tier (the candles), delete only
        // elsewhere. 1 year = 365 days.
        RetentionConfig {
            enabled: true,
            interval_secs: 3600,
            summary_refresh_secs: 300,
            batch_size: 5000,
            analyze_fraction: 0.1,
            archive_dir: PathBuf::from("./archive"),
            compression: Compression::Gzip,
            dry_run: false,
            tick_partitions_ahead_days: 3,
            candle_partitions_ahead_months: 2,
            ticks: AgePolicy::new(24, false),
            candles_1m: AgePolicy::new(365 * 24, true),
            candles_5m_plus: AgePolicy::new(5 * 365 * 24, true),
            raw_articles: AgePolicy::new(90 * 24, false),
            articles: AgePolicy::new(3 * 365 * 24, false),
            analysis_results: AgePolicy::new(3 * 365 * 24, false),
            sessions: AgePolicy::new(24, false),
        }
    }
}

impl RetentionConfig {
    fn validate(&self, documents: DocumentBackend) -> Result<(), ConfigError> {
        if self.interval_secs == 0 {
            return Err(invalid("retention.interval_secs", "must be at least 1"));
        }
        if self.summary_refresh_secs == 0 {
            return Err(invalid(
                "retention.summary_refresh_secs",
                "must be at least 1",
            ));
        }
        if !(1..=100_000).contains(&self.batch_size) {
            return Err(invalid("retention.batch_size", "must be 1..=100000"));
        }
        if !(0.0..=1.0).contains(&self.analyze_fraction) {
            return Err(invalid("retention.analyze_fraction", "must be 0..=1"));
        }
        for (key, p) in [
            ("retention.ticks.max_age_hours", &self.ticks),
            ("retention.candles_1m.max_age_hours", &self.candles_1m),
            (
                "retention.candles_5m_plus.max_age_hours",
                &self.candles_5m_plus,
            ),
            ("retention.raw_articles.max_age_hours", &self.raw_articles),
            ("retention.articles.max_age_hours", &self.articles),
            (
                "retention.analysis_results.max_age_hours",
                &self.analysis_results,
            ),
            ("retention.sessions.max_age_hours", &self.sessions),
        ] {
            // Ten thousand years would overflow chrono's date range on subtraction.
            if !(1..=87_600_000).contains(&p.max_age_hours) {
                return Err(invalid(key, "must be 1..=87600000"));
            }
        }
        // Each partition is a table: a slip must not create hundreds of them.
        if self.candle_partitions_ahead_months > 120 {
            return Err(invalid(
                "retention.candle_partitions_ahead_months",
                "must be 0..=120",
            ));
        }
        // Ticks go by dropping whole partitions and sessions by Redis TTL: neither has rows to
        // archive one by one.
        if self.ticks.archive {
            return Err(invalid(
                "retention.ticks.archive",
                "ticks are not archived (the seed keeps them 24 hours, no cold tier)",
            ));
        }
        if self.sessions.archive {
            return Err(invalid(
                "retention.sessions.archive",
                "sessions expire by Redis TTL and cannot be archived",
            ));
        }
        if documents == DocumentBackend::Mongodb {
            for (key, p) in [
                ("retention.raw_articles.archive", &self.raw_articles),
                ("retention.articles.archive", &self.articles),
                ("retention.analysis_results.archive", &self.analysis_results),
            ] {
                if p.archive {
                    return Err(invalid(key, "archiving from MongoDB is not implemented"));
                }
            }
        }
        Ok(())
    }
}

/// A configuration value that must never reach a log or a metric. Its `Debug` and `Display`
/// redact; URLs keep scheme, host and path so an operator can still tell which server is meant.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl Secret {
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    pub(crate) fn redacted(&self) -> String {
        redact_url(&self.0)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// figment's message names the key and the provider (file or environment variable).
    #[error("configuration: {0}")]
    Load(String),
    #[error("configuration key `{key}`: {problem}")]
    Invalid { key: &'static str, problem: String },
    #[error("configuration file {path}: not found")]
    MissingFile { path: PathBuf },
}

fn invalid(key: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        problem: problem.into(),
    }
}

impl Config {
    /// Defaults, then the TOML file, then the environment. An explicitly named file must exist;
    /// the default path `config/default.toml` is optional so the binary runs from anywhere.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        match path {
            Some(p) if !p.exists() => {
                return Err(ConfigError::MissingFile {
                    path: p.to_path_buf(),
                });
            }
            Some(p) => fig = fig.merge(Toml::file_exact(p)),
            None => fig = fig.merge(Toml::file("config/default.toml")),
        }
        fig = fig.merge(Env::prefixed("TRADEPIPE__").split("__").lowercase(true));
        for (var, key) in ENV_SHORTCUTS {
            if let Ok(value) = std::env::var(var) {
                fig = fig.merge(Serialized::default(key, value));
            }
        }
        let config: Config = fig.extract().map_err(|e| {
            // One line per problem, with the key spelled as in the file (figment reports keys
            // from the environment in upper case).
            let msgs: Vec<String> = e
                .into_iter()
                .map(|err| {
                    let key = err.path.join(".").to_lowercase();
                    let origin = err
                        .metadata
                        .as_ref()
                        .map(|m| m.name.to_string())
                        .unwrap_or_default();
                    format!("key `{key}` ({origin}): {}", err.kind)
                })
                .collect();
            ConfigError::Load(msgs.join("; "))
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot: ranges, URL schemes, symbol spelling, addresses.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_url(
            "database.url",
            self.database.url.expose(),
            &["postgres", "postgresql"],
        )?;
        for read_url in &self.database.read_urls {
            check_url(
                "database.read_urls",
                read_url.expose(),
                &["postgres", "postgresql"],
            )?;
        }
        let db = &self.database;
        if db.replica_check_interval_ms < 100
            || db.replica_max_lag_ms < db.replica_check_interval_ms
        {
            return Err(invalid(
                "database.replica_max_lag_ms",
                "replica_check_interval_ms must be at least 100 and replica_max_lag_ms at least \
                 replica_check_interval_ms (lag is measured in steps of one check)",
            ));
        }
        check_url("redis.url", self.redis.url.expose(), &["redis", "rediss"])?;
        if !self.redis.tls.is_empty() && !self.redis.url.expose().starts_with("rediss://") {
            return Err(invalid(
                "redis.tls",
                "certificates are set but redis.url is not rediss://; they would be ignored",
            ));
        }
        if self.redis.tls.client_cert_file.is_some() != self.redis.tls.client_key_file.is_some() {
            return Err(invalid(
                "redis.tls",
                "client_cert_file and client_key_file go together",
            ));
        }
        check_scheme("binance.ws_url", &self.binance.ws_url, &["ws", "wss"])?;
        check_scheme(
            "binance.rest_url",
            &self.binance.rest_url,
            &["http", "https"],
        )?;
        if self.database.max_connections == 0 {
            return Err(invalid("database.max_connections", "must be at least 1"));
        }
        if self.market.symbols.is_empty() {
            return Err(invalid("market.symbols", "at least one symbol is needed"));
        }
        for s in &self.market.symbols {
            let ok = (2..=20).contains(&s.len())
                && s.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
            if !ok {
                return Err(invalid(
                    "market.symbols",
                    format!(
                        "{s:?} is not a Binance symbol (upper-case letters and digits, e.g. BTCUSDT)"
                    ),
                ));
            }
        }
        if !(1..=1024).contains(&self.binance.max_streams_per_connection) {
            return Err(invalid(
                "binance.max_streams_per_connection",
                "must be 1..=1024 (Binance's limit per connection)",
            ));
        }
        if !(1..=1000).contains(&self.binance.backfill_page) {
            return Err(invalid(
                "binance.backfill_page",
                "must be 1..=1000 (Binance's limit)",
            ));
        }
        if self.binance.backoff_initial_ms == 0
            || self.binance.backoff_initial_ms > self.binance.backoff_max_ms
        {
            return Err(invalid(
                "binance.backoff_initial_ms",
                "must be > 0 and <= binance.backoff_max_ms",
            ));
        }
        if self.binance.max_batch_trades == 0 {
            return Err(invalid("binance.max_batch_trades", "must be at least 1"));
        }
        if self.writer.batch_max_ticks == 0 {
            return Err(invalid("writer.batch_max_ticks", "must be at least 1"));
        }
        if self.writer.max_buffered_ticks < self.writer.batch_max_ticks {
            return Err(invalid(
                "writer.max_buffered_ticks",
                "must be >= writer.batch_max_ticks",
            ));
        }
        for (key, cap) in [
            ("mailbox.candle_builder", self.mailbox.candle_builder),
            ("mailbox.market_writer", self.mailbox.market_writer),
            ("mailbox.redis_publisher", self.mailbox.redis_publisher),
            ("mailbox.pollers", self.mailbox.pollers),
        ] {
            if cap == 0 {
                return Err(invalid(key, "a mailbox needs a capacity of at least 1"));
            }
        }
        if self.news.normalizer_workers == 0 {
            return Err(invalid("news.normalizer_workers", "must be at least 1"));
        }
        let a = &self.analysis;
        if a.workers == 0 || a.claim_batch == 0 {
            return Err(invalid(
                "analysis.workers",
                "analysis.workers and analysis.claim_batch must be at least 1",
            ));
        }
        if a.prediction_interval_secs == 0 || a.window_hours == 0 || a.hit_rate_window == 0 {
            return Err(invalid(
                "analysis.prediction_interval_secs",
                "prediction_interval_secs, window_hours and hit_rate_window must be at least 1",
            ));
        }
        if !(a.recency_half_life_hours.is_finite() && a.recency_half_life_hours > 0.0) {
            return Err(invalid("analysis.recency_half_life_hours", "must be > 0"));
        }
        if a.volatility_minutes < 3 {
            return Err(invalid("analysis.volatility_minutes", "must be at least 3"));
        }
        if a.horizons.is_empty() {
            return Err(invalid(
                "analysis.horizons",
                "at least one horizon is needed",
            ));
        }
        if self.news.max_body_bytes < 1024 {
            return Err(invalid("news.max_body_bytes", "must be at least 1024"));
        }
        if self.documents.backend == DocumentBackend::Mongodb {
            check_url(
                "documents.mongodb_url",
                self.documents.mongodb_url.expose(),
                &["mongodb", "mongodb+srv"],
            )?;
        }
        self.retention.validate(self.documents.backend)?;
        if self
            .log
            .level
            .parse::<tracing_subscriber::EnvFilter>()
            .is_err()
        {
            return Err(invalid(
                "log.level",
                format!("{:?} is not a log filter", self.log.level),
            ));
        }
        Ok(())
    }

    /// The effective configuration as TOML with every secret redacted (`check-config`).
    pub fn to_redacted_toml(&self) -> String {
        let mut shown = self.clone();
        shown.database.url = Secret(self.database.url.redacted());
        shown.database.read_urls = (self.database.read_urls.iter())
            .map(|u| Secret(u.redacted()))
            .collect();
        shown.redis.url = Secret(self.redis.url.redacted());
        shown.documents.mongodb_url = Secret(self.documents.mongodb_url.redacted());
        shown.binance.api_key = self.binance.api_key.as_ref().map(|_| Secret("***".into()));
        toml_string(&shown)
    }
}

fn toml_string(cfg: &Config) -> String {
    // The output is itself a valid configuration file (with the secrets replaced).
    toml::to_string_pretty(cfg).unwrap_or_else(|e| format!("# cannot render configuration: {e}"))
}

fn check_url(key: &'static str, raw: &str, schemes: &[&str]) -> Result<(), ConfigError> {
    let u = url::Url::parse(raw)
        .map_err(|e| invalid(key, format!("{:?} is not a URL: {e}", redact_url(raw))))?;
    check_scheme(key, &u, schemes)
}

/// A compiled-in default URL (a literal; `Config::default()` is tested, so a typo fails the
/// suite, never a running daemon).
fn default_url(literal: &str) -> url::Url {
    // invariant: only called with the valid literals above.
    url::Url::parse(literal).expect("compiled-in default URL")
}

fn check_scheme(key: &'static str, u: &url::Url, schemes: &[&str]) -> Result<(), ConfigError> {
    if !schemes.contains(&u.scheme()) {
        return Err(invalid(
            key,
            format!(
                "scheme {:?} is not one of {}",
                u.scheme(),
                schemes.join(", ")
            ),
        ));
    }
    Ok(())
}

/// `symbols = ["BTCUSDT"]` in TOML, or `BTCUSDT,ETHUSDT` from the environment.
fn symbols_from_list_or_csv<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<String>, D::Error> {
    Ok(list_or_csv(d)?.iter().map(|s| s.to_uppercase()).collect())
}

/// `read_urls = ["postgres://..."]` in TOML, or comma-separated from the environment (a comma
/// inside one URL is written `%2C`).
fn secrets_from_list_or_csv<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<Secret>, D::Error> {
    Ok(list_or_csv(d)?.into_iter().map(Secret).collect())
}

/// A list, or one string of comma-separated items; items trimmed, empty ones dropped.
fn list_or_csv<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrCsv {
        List(Vec<String>),
        Csv(String),
    }
    let items = match ListOrCsv::deserialize(d)? {
        ListOrCsv::List(v) => v,
        ListOrCsv::Csv(s) => s.split(',').map(str::to_string).collect(),
    };
    Ok(items
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_password_but_keeps_host() {
        let r = redact_url("postgres://app:hunter2@db.internal:5432/tp");
        assert!(!r.contains("hunter2"), "{r}");
        assert!(r.contains("db.internal"), "{r}");
        assert_eq!(redact_url("abcdef-api-key"), "***");
        let s = Secret("redis://:topsecret@127.0.0.1:6379/0".into());
        assert!(!format!("{s:?} {s}").contains("topsecret"));
        let s = Secret("postgres://app@db:5432/trading?password=hunter2".into());
        assert!(!format!("{s:?} {s}").contains("hunter2"), "{s}");
    }

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn bad_values_name_their_key() {
        let mut c = Config::default();
        c.market.symbols = vec!["btc-usdt".into()];
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("market.symbols")
        );
        let mut c = Config::default();
        c.binance.ws_url = url::Url::parse("http://x").unwrap();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("binance.ws_url")
        );
        let mut c = Config::default();
        c.mailbox.market_writer = 0;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("mailbox.market_writer")
        );
    }

    #[test]
    fn retention_refuses_what_it_cannot_do() {
        let mut c = Config::default();
        c.retention.ticks.archive = true;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("retention.ticks.archive"), "{e}");
        let mut c = Config::default();
        c.documents.backend = DocumentBackend::Mongodb;
        c.retention.articles.archive = true;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("retention.articles.archive"), "{e}");
        let mut c = Config::default();
        c.retention.batch_size = 0;
        assert!(c.validate().is_err());
    }

    #[test]
    fn default_toml_documents_the_compiled_retention_defaults() {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml"));
        let text = std::fs::read_to_string(path).unwrap();
        let file: Config = toml::from_str(&text).unwrap();
        assert_eq!(
            toml::to_string(&file.retention).unwrap(),
            toml::to_string(&RetentionConfig::default()).unwrap()
        );
    }

    #[test]
    fn check_config_output_has_no_secret() {
        let mut c = Config::default();
        c.database.url = Secret("postgres://u:pw-123@h/db".into());
        c.binance.api_key = Some(Secret("KEY-456".into()));
        c.redis.url = Secret("rediss://:pw-789@h:6380/0?token=tk-000".into());
        c.database.read_urls = vec![Secret("postgres://u:pw-321@replica/db".into())];
        let shown = c.to_redacted_toml();
        assert!(shown.contains("replica"), "{shown}");
        assert!(
            ["pw-123", "KEY-456", "pw-789", "tk-000", "pw-321"]
                .iter()
                .all(|s| !shown.contains(s)),
            "{shown}"
        );
    }
}
