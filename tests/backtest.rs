//! `tradepipe backtest` on three days of real news and prices (tests/fixtures/backtest): no
//! decision sees an article or a price from after it, outcomes are the documented closes, and
//! the command line prints the predictions and the report.

use chrono::{DateTime, Utc};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use tradepipe::backtest::score::CalibrationMode;
use tradepipe::backtest::{self, BacktestOptions};
use tradepipe::config::AnalysisConfig;
use tradepipe_model::calibration::{Calibration, HorizonCalibration};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/backtest")
        .join(name)
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A table that states calls (an edge at every horizon), so that the direction and confidence
/// of a decision, not only its evidence, would show a leak.
fn edge_table() -> Calibration {
    let edge = |label: &str, secs: i64| HorizonCalibration {
        edge: true,
        hit_rate: 0.6,
        hit_rate_ci95: [0.55, 0.65],
        hit_probability: vec![0.55, 0.6, 0.65, 0.7, 0.8],
        ..HorizonCalibration::no_edge(label, secs, "test")
    };
    Calibration {
        made_by: "test".into(),
        horizons: vec![edge("1h", 3600), edge("4h", 14_400)],
    }
}

fn options(news: PathBuf, prices: Vec<(String, PathBuf)>) -> BacktestOptions {
    let analysis = AnalysisConfig::default();
    BacktestOptions {
        news,
        prices,
        horizons: vec!["1h".parse().unwrap(), "4h".parse().unwrap()],
        every: chrono::Duration::hours(1),
        from: Some(t("2022-02-01T02:00:00Z")),
        to: Some(t("2022-02-03T23:00:00Z")),
        embargo: chrono::Duration::zero(),
        calibration: CalibrationMode::Fixed(edge_table()),
        weigh: analysis.weigh_params(),
        volatility_minutes: analysis.volatility_minutes,
        reliability: vec![("Cointelegraph".into(), 0.8)],
        summary: false,
        write_calibration: None,
        command: "test".into(),
    }
}

fn real_prices() -> Vec<(String, PathBuf)> {
    vec![
        ("BTCUSDT".into(), fixture("BTCUSDT_1h.csv")),
        ("ETHUSDT".into(), fixture("ETHUSDT_1h.csv")),
    ]
}

/// The prediction lines of a run, with each line's decision time.
fn run(opts: &BacktestOptions) -> Vec<(DateTime<Utc>, String)> {
    let mut out = Vec::new();
    backtest::run(opts, &mut out).unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (t(v["created_at"].as_str().unwrap()), l.to_string())
        })
        .collect()
}

/// The fixture's news plus `extra` lines, in a temporary file.
fn news_with(dir: &Path, extra: &[String]) -> PathBuf {
    let mut text = std::fs::read_to_string(fixture("news.jsonl")).unwrap();
    for line in extra {
        text.push_str(line);
        text.push('\n');
    }
    let path = dir.join(format!("news-{}.jsonl", extra.len()));
    std::fs::write(&path, text).unwrap();
    path
}

fn bullish_bitcoin_article(published_at: &str, url: &str) -> String {
    serde_json::json!({
        "published_at": published_at,
        "title": "Bitcoin soars to a record high as a huge rally lifts BTC",
        "body": "Bitcoin surged 20 % as strong buying and bullish investors drove BTC to record gains.",
        "source": "CoinTelegraph",
        "url": url,
    })
    .to_string()
}

fn tempdir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("tradepipe-backtest-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Splits lines into those decided at or before `at` and the later ones.
fn split(lines: &[(DateTime<Utc>, String)], at: DateTime<Utc>) -> (Vec<&str>, Vec<&str>) {
    let before = lines
        .iter()
        .filter(|(d, _)| *d <= at)
        .map(|(_, l)| l.as_str())
        .collect();
    let after = lines
        .iter()
        .filter(|(d, _)| *d > at)
        .map(|(_, l)| l.as_str())
        .collect();
    (before, after)
}

#[test]
fn an_article_published_after_a_decision_cannot_change_it() {
    let dir = tempdir("late");
    let decision = t("2022-02-02T12:00:00Z");
    let base = run(&options(fixture("news.jsonl"), real_prices()));
    assert_eq!(base.len(), 70 * 2 * 2, "hours × symbols × horizons");

    // One minute after the decision: every decision up to it is byte for byte the same...
    let late = news_with(
        &dir,
        &[bullish_bitcoin_article(
            "2022-02-02T12:01:00Z",
            "https://example.test/late",
        )],
    );
    let with_late = run(&options(late, real_prices()));
    let (before, after) = split(&base, decision);
    let (before_late, after_late) = split(&with_late, decision);
    assert_eq!(before, before_late);
    // ...and the article does count from the next decision on (so the comparison above could fail).
    assert_ne!(after, after_late, "the late article changed nothing at all");
    let first_after: Vec<&str> = with_late
        .iter()
        .filter(|(d, l)| *d == t("2022-02-02T13:00:00Z") && l.contains("BTCUSDT"))
        .map(|(_, l)| l.as_str())
        .collect();
    assert!(
        first_after.iter().all(|l| l.contains("Bitcoin soars")),
        "the next decision uses it"
    );

    // Published exactly at the decision time, it counts at that decision.
    let on_time = news_with(
        &dir,
        &[bullish_bitcoin_article(
            "2022-02-02T12:00:00Z",
            "https://example.test/on-time",
        )],
    );
    let with_on_time = run(&options(on_time, real_prices()));
    let (at_decision, _) = split(&with_on_time, decision);
    assert_ne!(before, at_decision);
    let (earlier, _) = split(&base, decision - chrono::Duration::hours(1));
    assert_eq!(&at_decision[..earlier.len()], &earlier[..]);
}

#[test]
fn the_embargo_delays_an_article_by_its_length() {
    let dir = tempdir("embargo");
    let mut opts = options(fixture("news.jsonl"), real_prices());
    opts.embargo = chrono::Duration::hours(1);
    let base = run(&opts);
    // Published 11:30: with a 1 h embargo it arrives 12:30, after the 12:00 decision.
    opts.news = news_with(
        &dir,
        &[bullish_bitcoin_article(
            "2022-02-02T11:30:00Z",
            "https://example.test/embargo",
        )],
    );
    let with = run(&opts);
    let decision = t("2022-02-02T12:00:00Z");
    assert_eq!(split(&base, decision).0, split(&with, decision).0);
    let at_13: Vec<&String> = with
        .iter()
        .filter(|(d, l)| *d == t("2022-02-02T13:00:00Z") && l.contains("\"BTCUSDT\""))
        .map(|(_, l)| l)
        .collect();
    assert!(!at_13.is_empty() && at_13.iter().all(|l| l.contains("Bitcoin soars")));
}

/// A decision's fields, without what is known only afterwards (its outcome).
fn stated(line: &str) -> Value {
    let mut v: Value = serde_json::from_str(line).unwrap();
    let o = v.as_object_mut().unwrap();
    o.remove("actual_outcome");
    o.remove("accuracy_score");
    v
}

#[test]
fn later_prices_cannot_change_a_decision() {
    let dir = tempdir("prices");
    let decision = t("2022-02-02T12:00:00Z");
    // Every bar closing after the decision doubled.
    let text = std::fs::read_to_string(fixture("BTCUSDT_1h.csv")).unwrap();
    let doubled: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let f: Vec<&str> = l.split(',').collect();
            if i == 0 || f[0] < "2022-02-02 12:00:00" {
                return l.to_string();
            }
            let close: f64 = f[4].parse().unwrap();
            format!(
                "{},{},{},{},{:.2},{}",
                f[0],
                f[1],
                f[2],
                f[3],
                close * 2.0,
                f[5..].join(",")
            )
        })
        .collect();
    let changed = dir.join("BTCUSDT_1h.csv");
    std::fs::write(&changed, doubled.join("\n")).unwrap();
    let prices = vec![
        ("BTCUSDT".into(), changed),
        ("ETHUSDT".into(), fixture("ETHUSDT_1h.csv")),
    ];
    let base = run(&options(fixture("news.jsonl"), real_prices()));
    let with = run(&options(fixture("news.jsonl"), prices));
    let (before, _) = split(&base, decision);
    let (before_changed, _) = split(&with, decision);
    let stated_before: Vec<Value> = before.iter().map(|l| stated(l)).collect();
    let stated_changed: Vec<Value> = before_changed.iter().map(|l| stated(l)).collect();
    assert_eq!(stated_before, stated_changed);
    // The outcomes of those decisions did see the later prices (so the test could fail).
    assert_ne!(before, before_changed);
}

/// The close of the bar that opened at `open` ("YYYY-MM-DD HH:MM:SS") in a fixture file.
fn close_of(file: &str, open: &str) -> String {
    std::fs::read_to_string(fixture(file))
        .unwrap()
        .lines()
        .find(|l| l.starts_with(open))
        .map(|l| l.split(',').nth(4).unwrap().to_string())
        .unwrap()
}

#[test]
fn outcomes_are_the_closes_at_the_prediction_time_and_the_horizon() {
    let lines = run(&options(fixture("news.jsonl"), real_prices()));
    let line = lines
        .iter()
        .map(|(_, l)| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| {
            v["symbol"] == "BTCUSDT"
                && v["time_horizon"] == "4h"
                && v["prediction_time"] == "2022-02-02T12:00:00Z"
        })
        .expect("the 12:00 4h BTCUSDT prediction");
    // Reference: the bar that opened 11:00 and closed 12:00; outcome: the bar closing 16:00.
    assert_eq!(
        line["prediction"]["base_price"],
        close_of("BTCUSDT_1h.csv", "2022-02-02 11:00:00")
    );
    let outcome = &line["actual_outcome"];
    assert_eq!(
        outcome["price"],
        close_of("BTCUSDT_1h.csv", "2022-02-02 15:00:00")
    );
    assert_eq!(outcome["price_time"], "2022-02-02T16:00:00Z");
    for key in [
        "symbol",
        "prediction_time",
        "time_horizon",
        "sentiment_summary",
    ] {
        assert!(line.get(key).is_some(), "{key}");
    }
    let c = line["prediction"]["confidence"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&c));
    let unscored = lines
        .iter()
        .filter(|(_, l)| l.contains("\"actual_outcome\":null"))
        .count();
    assert_eq!(
        unscored, 0,
        "the fixture's prices run two days past the news"
    );
}

fn tradepipe() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tradepipe"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn cli_args(news: &Path) -> Vec<String> {
    vec![
        "backtest".into(),
        "--news".into(),
        news.display().to_string(),
        "--prices".into(),
        format!("BTCUSDT={}", fixture("BTCUSDT_1h.csv").display()),
        format!("ETHUSDT={}", fixture("ETHUSDT_1h.csv").display()),
        "--horizons".into(),
        "1h,4h,24h".into(),
    ]
}

#[test]
fn the_command_prints_predictions_stated_with_the_shipped_calibration() {
    let mut args = cli_args(&fixture("news.jsonl"));
    args.extend(["--calibration".into(), "shipped".into()]);
    let out = tradepipe().args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shipped = Calibration::shipped().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut seen = 0;
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let horizon = v["time_horizon"].as_str().unwrap();
        let secs = v["horizon_seconds"].as_i64().unwrap();
        let direction = v["prediction"]["direction"].as_str().unwrap();
        let confidence = v["prediction"]["confidence"].as_f64().unwrap();
        assert!(["UP", "DOWN", "SIDEWAYS"].contains(&direction));
        assert!((0.0..=1.0).contains(&confidence));
        if !shipped.for_horizon(horizon, secs).edge {
            assert_eq!((direction, confidence), ("SIDEWAYS", 0.0), "{line}");
        }
        seen += 1;
    }
    // 2 symbols × 3 horizons × the hours from the first to the last article.
    assert!(seen > 400, "{seen}");
    assert_eq!(seen % 6, 0);
}

#[test]
fn the_summary_reports_every_model_and_counts_bad_input() {
    let dir = tempdir("summary");
    let news = news_with(&dir, &["{not json".to_string()]);
    let mut args = cli_args(&news);
    args.push("--summary".into());
    let out = tradepipe().args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "## Horizon 1h",
        "## Horizon 24h",
        "news, calibrated",
        "news, raw confidence",
        "always UP",
        "momentum",
        "sentiment-free",
        "1 bad lines skipped",
        "Calibration in force per month",
    ] {
        assert!(report.contains(needle), "{needle} missing:\n{report}");
    }
}

#[test]
fn a_missing_price_file_is_an_error_naming_it() {
    let out = tradepipe()
        .args([
            "backtest",
            "--news",
            &fixture("news.jsonl").display().to_string(),
            "--prices",
            "BTCUSDT=/nonexistent/prices.csv",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/prices.csv"), "{err}");
    let out = tradepipe()
        .args(["backtest", "--news", "x", "--prices", "BTCUSDT"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("SYMBOL=FILE"));
}
