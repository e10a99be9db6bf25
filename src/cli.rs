//! The command line: one subcommand per job an operator runs.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "tradepipe",
    version,
    about = "Exchange trades to exact candles, news to analysis: persisted and published."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: every configured pipeline, until SIGINT/SIGTERM.
    Run {
        /// TOML configuration file (default: config/default.toml when present).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print a progress line (trades/s, candles written, lag) every few seconds on stderr.
        #[arg(long)]
        progress: bool,
        /// Exit once this many trades have been persisted (demos and end-to-end tests).
        #[arg(long)]
        exit_after_trades: Option<u64>,
    },
    /// Apply pending database migrations (idempotent), then exit.
    Migrate {
        #[arg(long, env = "TRADEPIPE_DATABASE_URL")]
        database_url: Option<String>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print the normalized article of a saved page as one JSON object: the NormalizerActor's
    /// own code path, for tuning a source's selectors.
    Normalize {
        /// The page (.html, or .html.gz).
        file: PathBuf,
        /// The URL the page was fetched from (resolves relative links; default
        /// http://localhost/<file name>).
        #[arg(long)]
        url: Option<String>,
        /// A source from the sources file whose selectors to use.
        #[arg(long)]
        source: Option<String>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Apply the retention policies once (archive, then remove what is past its age) and exit;
    /// the daemon's RetentionActor does the same on a schedule.
    Retention {
        /// Print per policy what would be archived and removed; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Run one pass and exit (the default; accepted for explicitness).
        #[arg(long)]
        once: bool,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print, one JSON object a line, the trades the feed client would pass on from a recorded
    /// session (cryptofeed `ws.N.0` or v3 `.jsonl`, or a REST trades page; gzipped or not).
    /// Several files are parallel connections of one session. A summary goes to stderr.
    Trades {
        /// binance, coinbase, okx, bybit or kraken.
        #[arg(long)]
        exchange: String,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Replay dated news and hourly prices through the daemon's analysis and prediction code,
    /// with no look-ahead: one prediction (JSON) a line, or with --summary the scored report
    /// (docs/PREDICTIONS.md).
    Backtest(BacktestArgs),
    /// Validate the configuration and print it, secrets redacted.
    CheckConfig {
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// `tradepipe backtest` (src/backtest): what to replay and how.
#[derive(Debug, Clone, Args)]
pub struct BacktestArgs {
    /// News as JSON lines: published_at (RFC 3339), title, optional body, source, url
    /// (scripts/news-csv-to-jsonl converts the shared CSV).
    #[arg(long)]
    pub news: PathBuf,
    /// Hourly klines CSV per symbol, SYMBOL=FILE (header with `date` = bar open time, UTC,
    /// and `close`).
    #[arg(long, num_args = 1.., required = true)]
    pub prices: Vec<String>,
    #[arg(long, value_delimiter = ',', default_value = "1h,4h,24h")]
    pub horizons: Vec<String>,
    /// Time between decisions.
    #[arg(long, default_value = "1h")]
    pub every: String,
    /// First decision (RFC 3339 or YYYY-MM-DD; default: the first article's hour).
    #[arg(long)]
    pub from: Option<String>,
    /// Last decision (default: the last article's hour).
    #[arg(long)]
    pub to: Option<String>,
    /// An article counts this long after its published_at (feeds round times down to the
    /// hour; "0m" counts it from published_at).
    #[arg(long, default_value = "1h")]
    pub embargo: String,
    /// Confidence of the stated predictions: walk-forward (fitted on the calls due before
    /// each month), shipped (the daemon's table), or a calibration file.
    #[arg(long, default_value = "walk-forward")]
    pub calibration: String,
    /// Print the scored report (Markdown) instead of the prediction lines.
    #[arg(long)]
    pub summary: bool,
    /// Fit the calibration on every call of this run and write it to FILE (how the shipped
    /// table crates/model/calibration/prediction_calibration.json is made).
    #[arg(long)]
    pub write_calibration: Option<PathBuf>,
    /// Configuration whose [analysis] keys and sources' reliability to use.
    #[arg(long)]
    pub config: Option<PathBuf>,
}
