//! `tradepipe-testkit`: the local exchange and news site that the demo, the end-to-end tests and
//! the benchmarks start. Not installed with the daemon.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "tradepipe-testkit",
    version,
    about = "Local peers for tradepipe's demo, tests and benchmarks (not for production)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve Binance's WebSocket and REST API from public-data trade files: the local exchange
    /// the demo, the tests and the benchmarks run the real feed client against.
    Replay(tradepipe_testkit::replay::ReplayArgs),
    /// Serve real article pages with RSS/Atom feeds, robots.txt and the awkward cases (redirects,
    /// 304s, an oversized and a malformed page): the local news site the demo and tests crawl.
    NewsServer(tradepipe_testkit::news_server::NewsServerArgs),
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tradepipe-testkit: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    tradepipe::telemetry::init_logging(&tradepipe::config::LogConfig::default())?;
    tokio::runtime::Runtime::new()?.block_on(async {
        match cli.command {
            Command::Replay(args) => tradepipe_testkit::replay::run(args).await,
            Command::NewsServer(args) => tradepipe_testkit::news_server::run(args).await,
        }
    })
}
