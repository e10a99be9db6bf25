//! The command line: one subcommand per job an operator runs.

use clap::{Parser, Subcommand};
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
    /// Serve Binance's WebSocket and REST API from public-data trade files: the local exchange
    /// the demo, the tests and the benchmarks run the real feed client against.
    Replay(crate::exchange::replay::ReplayArgs),
    /// Serve real article pages with RSS/Atom feeds, robots.txt and the awkward cases (redirects,
    /// 304s, an oversized and a malformed page): the local news site the demo and tests crawl.
    NewsServer(crate::news::server::NewsServerArgs),
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
    /// Analyse articles: JSON lines ({"title":..,"body":..}) or plain text lines on stdin, one
    /// analysis JSON line per input on stdout (the analysis model's own code path). With --eval,
    /// score the sentiment model on a labelled file instead.
    Analyze {
        /// A labelled file (Financial PhraseBank `label<TAB>text`, or {"label","text"} lines):
        /// prints accuracy, per-class precision/recall/F1 and macro-F1.
        #[arg(long, value_name = "FILE")]
        eval: Option<PathBuf>,
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
    /// Validate the configuration and print it, secrets redacted.
    CheckConfig {
        #[arg(long)]
        config: Option<PathBuf>,
    },
}
