//! Thin entry point: parse the command line, load configuration, hand over to the library.

use clap::Parser;
use std::process::ExitCode;
use tradepipe::cli::{Cli, Command};
use tradepipe::config::Config;

/// mimalloc instead of glibc malloc: the analysis model allocates many small strings per word,
/// and glibc's malloc/free (with its consolidation passes) was a fifth of analysis time; the
/// trade path allocates per batch and gains too. Measured in docs/BENCHMARKS.md.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // `{:#}` prints the whole context chain on one line.
            eprintln!("tradepipe: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::CheckConfig { config } => {
            let cfg = Config::load(config.as_deref())?;
            print!("{}", cfg.to_redacted_toml());
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate {
            database_url,
            config,
        } => {
            let mut cfg = Config::load(config.as_deref())?;
            if let Some(url) = database_url {
                cfg.database.url = tradepipe::config::Secret(url);
            }
            tradepipe::telemetry::init_logging(&cfg.log)?;
            tokio::runtime::Runtime::new()?.block_on(tradepipe::pipelines::migrate(&cfg))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Normalize {
            file,
            url,
            source,
            config,
        } => {
            let cfg = Config::load(config.as_deref())?;
            let json = tradepipe::news::normalize::normalize_file(
                &file,
                url.as_deref(),
                source.as_deref(),
                &cfg.news.sources_file,
            )?;
            println!("{json}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Trades { exchange, files } => {
            let venue: tradepipe::exchange::venue::Venue = exchange.parse()?;
            tradepipe::exchange::recording::print_trades(
                venue,
                &files,
                &mut std::io::stdout().lock(),
                &mut std::io::stderr().lock(),
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Retention {
            dry_run,
            once: _,
            config,
        } => {
            let cfg = Config::load(config.as_deref())?;
            tradepipe::telemetry::init_logging(&cfg.log)?;
            let report = tokio::runtime::Runtime::new()?
                .block_on(tradepipe::pipelines::retention::run_once(&cfg, dry_run))?;
            print!("{report}");
            Ok(if report.failures() == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Backtest(args) => {
            let cfg = Config::load(args.config.as_deref())?;
            // As typed, under the binary's name (not its build path), for the report.
            let command = std::iter::once("tradepipe".to_string())
                .chain(std::env::args().skip(1))
                .collect::<Vec<_>>()
                .join(" ");
            let opts = tradepipe::backtest::options(&args, &cfg, command)?;
            tradepipe::backtest::run(&opts, &mut std::io::stdout().lock())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            config,
            progress,
            exit_after_trades,
        } => {
            let cfg = Config::load(config.as_deref())?;
            tradepipe::telemetry::init_logging(&cfg.log)?;
            let opts = tradepipe::pipelines::RunOptions {
                progress,
                exit_after_trades,
            };
            tradepipe::pipelines::run_daemon(cfg, opts)
        }
    }
}
