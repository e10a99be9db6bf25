//! tradepipe: streams exchange trades into exact OHLCV candles, crawls and analyses news, and
//! persists and publishes it all. The module tree is the architecture:

pub mod actors; // one file per actor; bounded mailboxes, supervised
pub mod backoff; // one retry policy: capped exponential backoff with jitter, Retry-After honoured
pub mod backtest; // `tradepipe backtest`: news and prices replayed through the prediction code, scored
pub mod cli; // clap definitions
pub mod config; // typed configuration, defaults, env overrides, validation
pub mod domain; // plain data: Trade, Candle, Interval (no I/O)
pub mod exchange; // Binance wire format, REST client, trades files
pub mod lifecycle; // retention policies, archiving, one pass over them (RetentionActor, CLI)
pub mod news; // news extraction, normalization and crawling
pub mod pipelines; // wiring: which actor feeds which
pub mod redact; // what of a configured URL or key may be shown (logs, errors, check-config)
pub mod store; // PostgreSQL, Redis and the on-disk spool behind small traits
pub mod systemd; // sd_notify (READY, STATUS, STOPPING) and the liveness watchdog
pub mod telemetry; // tracing, metrics, /metrics /healthz /readyz
