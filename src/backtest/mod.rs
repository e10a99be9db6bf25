//! `tradepipe backtest`: replays dated news and hourly prices through the daemon's own analysis
//! and prediction code, decision by decision with no look-ahead, and scores what it said
//! (docs/PREDICTIONS.md). `input` reads the files, `replay` analyses and decides (pure),
//! `score` finds outcomes, calibrates walk-forward and measures, `report` writes the summary.

pub mod input;
pub mod replay;
pub mod report;
pub mod score;

use crate::cli::BacktestArgs;
use crate::config::Config;
use crate::news::sources::load_sources;
use chrono::{DateTime, Duration, DurationRound, Utc};
use replay::{Market, ReplaySettings};
use score::CalibrationMode;
use std::io::Write;
use std::path::PathBuf;
use tradepipe_model::calibration::Calibration;
use tradepipe_model::predict::{self, Horizon, WeighParams};

#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    #[error("{file}: {problem}")]
    Input { file: String, problem: String },
    #[error("{0}")]
    Usage(String),
    #[error("writing the output: {0}")]
    Output(#[from] std::io::Error),
}

/// Everything a run needs, parsed from the command line and the configuration.
#[derive(Debug, Clone)]
pub struct BacktestOptions {
    pub news: PathBuf,
    /// (symbol, klines file).
    pub prices: Vec<(String, PathBuf)>,
    pub horizons: Vec<Horizon>,
    pub every: Duration,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// An article counts from `published_at + embargo`.
    pub embargo: Duration,
    pub calibration: CalibrationMode,
    /// The analysis keys the PredictionActor uses.
    pub weigh: WeighParams,
    pub volatility_minutes: u64,
    /// Source name (any case) -> reliability; others 0.5, as in the daemon.
    pub reliability: Vec<(String, f64)>,
    pub summary: bool,
    /// Fit the shipped table on this run's calls and write it here.
    pub write_calibration: Option<PathBuf>,
    /// The command line, recorded in a written table.
    pub command: String,
}

/// Checks the arguments and takes the PredictionActor's keys (`[analysis]`) and the sources'
/// reliability from the configuration, so the replay weighs evidence as the daemon does.
pub fn options(
    args: &BacktestArgs,
    cfg: &Config,
    command: String,
) -> Result<BacktestOptions, BacktestError> {
    let usage = BacktestError::Usage;
    let prices = args
        .prices
        .iter()
        .map(|p| parse_prices_arg(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(usage)?;
    let horizons = args
        .horizons
        .iter()
        .map(|h| h.parse::<Horizon>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(usage)?;
    let every = parse_duration(&args.every).map_err(usage)?;
    if every <= Duration::zero() {
        return Err(usage("--every must be longer than zero".into()));
    }
    let sources = load_sources(&cfg.news.sources_file).map_err(|e| BacktestError::Input {
        file: cfg.news.sources_file.display().to_string(),
        problem: e.to_string(),
    })?;
    Ok(BacktestOptions {
        news: args.news.clone(),
        prices,
        horizons,
        every,
        from: args
            .from
            .as_deref()
            .map(parse_time)
            .transpose()
            .map_err(usage)?,
        to: args
            .to
            .as_deref()
            .map(parse_time)
            .transpose()
            .map_err(usage)?,
        embargo: parse_duration(&args.embargo).map_err(usage)?,
        calibration: parse_calibration(&args.calibration)?,
        weigh: cfg.analysis.weigh_params(),
        volatility_minutes: cfg.analysis.volatility_minutes,
        reliability: sources
            .into_iter()
            .map(|s| (s.name, s.metadata.reliability_score))
            .collect(),
        summary: args.summary,
        write_calibration: args.write_calibration.clone(),
        command,
    })
}

/// Parses "walk-forward", "shipped" or a calibration file.
pub fn parse_calibration(text: &str) -> Result<CalibrationMode, BacktestError> {
    match text {
        "walk-forward" => Ok(CalibrationMode::WalkForward),
        "shipped" => Calibration::shipped()
            .map(CalibrationMode::Fixed)
            .map_err(BacktestError::Usage),
        path => {
            let text = std::fs::read_to_string(path).map_err(|e| BacktestError::Input {
                file: path.to_string(),
                problem: e.to_string(),
            })?;
            Calibration::from_json(&text)
                .map(CalibrationMode::Fixed)
                .map_err(|problem| BacktestError::Input {
                    file: path.to_string(),
                    problem,
                })
        }
    }
}

/// Parses `SYMBOL=FILE`.
pub fn parse_prices_arg(text: &str) -> Result<(String, PathBuf), String> {
    let (symbol, file) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected SYMBOL=FILE"))?;
    let symbol = symbol.trim().to_uppercase();
    if symbol.is_empty() || !symbol.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!("{text:?}: {symbol:?} is not a symbol"));
    }
    Ok((symbol, PathBuf::from(file)))
}

/// Parses an RFC 3339 time or a `YYYY-MM-DD` date (its midnight UTC).
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
        })
        .map_err(|_| format!("{text:?}: expected RFC 3339 or YYYY-MM-DD"))
}

/// Parses a duration like "1h", "30m" or "0m" (the embargo may be zero).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if text.trim().trim_end_matches(['m', 'h', 'd', 's']) == "0" {
        return Ok(Duration::zero());
    }
    predict::parse_horizon(text).map(|(_, secs)| Duration::seconds(secs))
}

/// Runs the back-test: prediction lines (or, with `summary`, the report) to `out`.
pub fn run(opts: &BacktestOptions, out: &mut dyn Write) -> Result<(), BacktestError> {
    let started = std::time::Instant::now();
    for h in &opts.horizons {
        if h.secs() % replay::BAR.num_seconds() != 0 {
            return Err(BacktestError::Usage(format!(
                "horizon {h}: the price files have hourly bars, so a horizon must be whole hours"
            )));
        }
    }
    if opts.prices.is_empty() {
        return Err(BacktestError::Usage("no --prices SYMBOL=FILE".into()));
    }
    let (news, news_counts) = input::read_news(&opts.news)?;
    let mut markets = Vec::new();
    let mut bar_counts = Vec::new();
    for (symbol, file) in &opts.prices {
        let (bars, counts) = input::read_bars(file)?;
        bar_counts.push((symbol.clone(), counts));
        markets.push(Market::new(symbol, bars));
    }
    let symbols: Vec<String> = markets.iter().map(|m| m.symbol.clone()).collect();
    let reliability = |source: &str| {
        opts.reliability
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(source))
            .map_or(0.5, |(_, r)| *r)
    };
    let evidence = replay::analyse_news(&news, &symbols, &reliability, opts.embargo);

    let hour = replay::BAR;
    let first_news = news.iter().map(|n| n.published_at).min();
    let last_news = news.iter().map(|n| n.published_at).max();
    let ceil_hour = |t: DateTime<Utc>| {
        let floor = t.duration_trunc(hour).unwrap_or(t);
        if floor == t { t } else { floor + hour }
    };
    let from = opts
        .from
        .or(first_news.map(|t| ceil_hour(t + opts.embargo)))
        .or(markets.iter().filter_map(Market::first_open).min());
    // The last article's hour: later decisions would only see the news age.
    let to = opts
        .to
        .or(last_news.map(ceil_hour))
        .or(markets.iter().filter_map(Market::last_close_time).max());
    let (Some(from), Some(to)) = (from, to) else {
        return Err(BacktestError::Usage(
            "no news and no prices: nothing to replay".into(),
        ));
    };
    let settings = ReplaySettings {
        weigh: opts.weigh,
        from,
        to,
        every: opts.every,
        volatility_bars: (opts.volatility_minutes / 60).max(2) as usize,
    };
    let decisions = replay::decide(&evidence, &markets, &settings);
    let rows = score::outcomes(&decisions, &markets, &opts.horizons);
    let eval = score::evaluate(&decisions, &rows, &opts.horizons, &opts.calibration);

    if let Some(path) = &opts.write_calibration {
        let fitted_on = format!(
            "{} hourly decisions {}..{}",
            symbols.join(", "),
            from.format("%Y-%m-%d"),
            to.format("%Y-%m-%d")
        );
        let table = score::fit_table(&decisions, &rows, &opts.horizons, &fitted_on, &opts.command);
        let json = serde_json::to_string_pretty(&table)
            .map_err(|e| BacktestError::Usage(format!("calibration table: {e}")))?;
        std::fs::write(path, json + "\n").map_err(|e| BacktestError::Input {
            file: path.display().to_string(),
            problem: e.to_string(),
        })?;
    }

    if opts.summary {
        let context = report::Context {
            opts,
            news_counts: &news_counts,
            bar_counts: &bar_counts,
            evidence: &evidence,
            from,
            to,
            seconds: started.elapsed().as_secs_f64(),
        };
        out.write_all(report::render(&context, &decisions, &rows, &eval).as_bytes())?;
        return Ok(());
    }
    for row in &rows {
        let d = &decisions[row.decision];
        let h = &opts.horizons[row.horizon];
        let key = (row.horizon, score::month_of(d.market.prediction_time));
        let Some(calibration) = eval.calibrations.get(&key) else {
            continue;
        };
        let mut record = predict::prediction_from_aggregate(
            &d.symbol,
            (h.label(), h.secs()),
            &d.market,
            d.aggregate.clone(),
            d.decided_at,
            &opts.weigh,
            calibration,
        );
        if let Some(price) = row.outcome {
            let due = record.due_at();
            let (outcome, accuracy) = predict::score(&record, price, due, due);
            record.actual_outcome = Some(outcome);
            record.accuracy_score = Some(accuracy);
        }
        let line = serde_json::to_string(&record)
            .map_err(|e| BacktestError::Usage(format!("prediction line: {e}")))?;
        writeln!(out, "{line}")?;
    }
    Ok(())
}
