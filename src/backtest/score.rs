//! Scoring the replay: each decision's outcome at each horizon (the daemon's reference and
//! outcome prices and its [`predict::relative_change`]), the walk-forward calibration (fitted on
//! the calls due before a month, applied to that month), the baselines, and their figures.

use super::replay::{Decision, Market};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use tradepipe_model::analysis::Direction;
use tradepipe_model::calibration::{
    self, BOOTSTRAP_DRAWS, BOOTSTRAP_SEED, Calibration, CallSample, HorizonCalibration,
};
use tradepipe_model::predict::{self, Horizon};

/// A decision's outcome at one horizon.
#[derive(Debug, Clone)]
pub struct Row {
    pub decision: usize,
    pub horizon: usize,
    /// Close of the bar closing at `prediction_time + horizon`; `None` when the file has none.
    pub outcome: Option<Decimal>,
    pub change: Option<f64>,
    /// The move over the horizon before the prediction time (the momentum baseline's input).
    pub momentum: Option<f64>,
}

impl Row {
    fn up(&self) -> Option<bool> {
        self.change.map(|c| c > 0.0)
    }
}

/// Outcomes of every decision at every horizon.
pub fn outcomes(decisions: &[Decision], markets: &[Market], horizons: &[Horizon]) -> Vec<Row> {
    let mut rows = Vec::with_capacity(decisions.len() * horizons.len());
    for (i, d) in decisions.iter().enumerate() {
        let Some(market) = markets.iter().find(|m| m.symbol == d.symbol) else {
            continue;
        };
        let pt = d.market.prediction_time;
        let base = d.market.base_price;
        for (k, h) in horizons.iter().enumerate() {
            let span = chrono::Duration::seconds(h.secs());
            let outcome = market.close_ending_at(pt + span);
            rows.push(Row {
                decision: i,
                horizon: k,
                outcome,
                change: outcome.map(|p| predict::relative_change(base, p)),
                momentum: market
                    .close_ending_at(pt - span)
                    .map(|before| predict::relative_change(before, base)),
            });
        }
    }
    rows
}

/// The models compared in the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Model {
    /// The daemon's prediction, confidence calibrated walk-forward (or by the given table).
    Calibrated,
    /// The same calls with the raw confidence, as the daemon stated them before calibration.
    Raw,
    AlwaysUp,
    /// The sign of the move over the previous horizon.
    Momentum,
    /// No news at all: the majority direction of the calls' training months, its share as p(up).
    SentimentFree,
}

pub const MODELS: [Model; 5] = [
    Model::Calibrated,
    Model::Raw,
    Model::AlwaysUp,
    Model::Momentum,
    Model::SentimentFree,
];

impl Model {
    pub fn name(self) -> &'static str {
        match self {
            Model::Calibrated => "news, calibrated",
            Model::Raw => "news, raw confidence",
            Model::AlwaysUp => "always UP",
            Model::Momentum => "momentum",
            Model::SentimentFree => "sentiment-free",
        }
    }
}

/// What one model stated for one row: its direction and its probability of "up".
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Call {
    pub direction: Direction,
    pub p_up: f64,
}

/// Which calibration the stated predictions use.
#[derive(Debug, Clone)]
pub enum CalibrationMode {
    /// Fitted on the calls due before each month, applied to that month.
    WalkForward,
    /// One table for every decision (e.g. the shipped one: in-sample on its own period).
    Fixed(Calibration),
}

/// A UTC calendar month, as `year * 12 + month0`.
pub type Month = i32;

pub fn month_of(t: DateTime<Utc>) -> Month {
    t.year() * 12 + t.month0() as i32
}

fn month_start(m: Month) -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(m.div_euclid(12), m.rem_euclid(12) as u32 + 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

pub fn month_label(m: Month) -> String {
    format!("{:04}-{:02}", m.div_euclid(12), m.rem_euclid(12) + 1)
}

fn day_of(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(86_400)
}

/// The calibrations in force, per horizon and month, and each model's call per row.
pub struct Evaluation {
    pub months: Vec<Month>,
    /// (horizon, month) -> the calibration the stated predictions of that month used.
    pub calibrations: BTreeMap<(usize, Month), HorizonCalibration>,
    /// Per row, per model (in [`MODELS`] order).
    pub calls: Vec<[Call; 5]>,
}

/// Training calls of a horizon due before `before`: the raw news calls and the baselines'.
struct Training {
    news: Vec<CallSample>,
    always_up: Vec<CallSample>,
    momentum: Vec<CallSample>,
    ups: usize,
    n: usize,
}

fn training(
    decisions: &[Decision],
    rows: &[Row],
    horizon: usize,
    secs: i64,
    before: DateTime<Utc>,
) -> Training {
    let mut t = Training {
        news: Vec::new(),
        always_up: Vec::new(),
        momentum: Vec::new(),
        ups: 0,
        n: 0,
    };
    for r in rows.iter().filter(|r| r.horizon == horizon) {
        let d = &decisions[r.decision];
        let pt = d.market.prediction_time;
        let (Some(change), true) = (r.change, pt + chrono::Duration::seconds(secs) <= before)
        else {
            continue;
        };
        let day = day_of(pt);
        let sample = |direction: Direction, raw: f64| {
            predict::call_came_true(direction, change).map(|hit| CallSample {
                raw_confidence: raw,
                hit,
                day,
            })
        };
        t.news
            .extend(sample(d.aggregate.direction, d.aggregate.confidence));
        t.always_up.extend(sample(Direction::Up, 1.0));
        t.momentum
            .extend(r.momentum.and_then(|m| sample(momentum_call(m), 1.0)));
        t.ups += usize::from(change > 0.0);
        t.n += 1;
    }
    t
}

fn momentum_call(previous_move: f64) -> Direction {
    if previous_move > 0.0 {
        Direction::Up
    } else if previous_move < 0.0 {
        Direction::Down
    } else {
        Direction::Sideways
    }
}

/// Fits, month by month and horizon by horizon, on what was due before the month, and states
/// every row's call under every model.
pub fn evaluate(
    decisions: &[Decision],
    rows: &[Row],
    horizons: &[Horizon],
    mode: &CalibrationMode,
) -> Evaluation {
    let mut months: Vec<Month> = decisions
        .iter()
        .map(|d| month_of(d.market.prediction_time))
        .collect();
    months.sort_unstable();
    months.dedup();
    let mut calibrations = BTreeMap::new();
    // (horizon, month) -> (always-up, momentum, sentiment-free direction and calibration).
    let mut baselines: BTreeMap<(usize, Month), [(Direction, HorizonCalibration); 3]> =
        BTreeMap::new();
    for (k, h) in horizons.iter().enumerate() {
        for &m in &months {
            let start = month_start(m);
            let t = training(decisions, rows, k, h.secs(), start);
            let fitted_on = format!("walk-forward: calls due before {}", month_label(m));
            let news = match mode {
                CalibrationMode::WalkForward => {
                    calibration::fit(h.label(), h.secs(), &fitted_on, &t.news)
                }
                CalibrationMode::Fixed(table) => table.for_horizon(h.label(), h.secs()),
            };
            calibrations.insert((k, m), news);
            let majority = if t.n == 0 {
                Direction::Sideways
            } else if 2 * t.ups > t.n {
                Direction::Up
            } else {
                Direction::Down
            };
            // The sentiment-free model's calls in training: the majority direction each time.
            let free: Vec<CallSample> = t
                .always_up
                .iter()
                .map(|s| CallSample {
                    hit: s.hit == (majority == Direction::Up),
                    ..*s
                })
                .collect();
            baselines.insert(
                (k, m),
                [
                    (
                        Direction::Up,
                        calibration::fit(h.label(), h.secs(), &fitted_on, &t.always_up),
                    ),
                    (
                        Direction::Sideways,
                        calibration::fit(h.label(), h.secs(), &fitted_on, &t.momentum),
                    ),
                    (
                        majority,
                        calibration::fit(h.label(), h.secs(), &fitted_on, &free),
                    ),
                ],
            );
        }
    }
    let calls = rows
        .iter()
        .map(|r| {
            let d = &decisions[r.decision];
            let key = (r.horizon, month_of(d.market.prediction_time));
            let news = calibrations
                .get(&key)
                .map(|c| c.apply(d.aggregate.direction, d.aggregate.confidence));
            let calibrated = news.map_or(SIDEWAYS, |c| Call {
                direction: c.direction,
                p_up: c.p_up,
            });
            let raw = raw_call(d.aggregate.direction, d.aggregate.confidence);
            let [up, mom, free] = match baselines.get(&key) {
                Some(b) => b.clone(),
                None => return [calibrated, raw, SIDEWAYS, SIDEWAYS, SIDEWAYS],
            };
            let stated = |direction: Direction, cal: &HorizonCalibration| Call {
                direction,
                p_up: cal.apply(direction, 1.0).p_up,
            };
            let momentum = r
                .momentum
                .map_or(SIDEWAYS, |m| stated(momentum_call(m), &mom.1));
            [
                calibrated,
                raw,
                stated(up.0, &up.1),
                momentum,
                stated(free.0, &free.1),
            ]
        })
        .collect();
    Evaluation {
        months,
        calibrations,
        calls,
    }
}

const SIDEWAYS: Call = Call {
    direction: Direction::Sideways,
    p_up: 0.5,
};

/// The daemon's call before calibration: `p(up) = 0.5 ± raw confidence / 2`.
fn raw_call(direction: Direction, confidence: f64) -> Call {
    let p_up = match direction {
        Direction::Up => 0.5 + confidence / 2.0,
        Direction::Down => 0.5 - confidence / 2.0,
        Direction::Sideways => 0.5,
    };
    Call { direction, p_up }
}

/// Fits the table the daemon ships: every call of the given period whose outcome is known.
pub fn fit_table(
    decisions: &[Decision],
    rows: &[Row],
    horizons: &[Horizon],
    fitted_on: &str,
    made_by: &str,
) -> Calibration {
    let horizons = horizons
        .iter()
        .enumerate()
        .map(|(k, h)| {
            let t = training(decisions, rows, k, h.secs(), DateTime::<Utc>::MAX_UTC);
            calibration::fit(h.label(), h.secs(), fitted_on, &t.news)
        })
        .collect();
    Calibration {
        made_by: made_by.to_string(),
        horizons,
    }
}

/// One model's figures on a set of rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    pub rows: usize,
    pub calls: usize,
    pub hits: usize,
    pub ci95: Option<(f64, f64)>,
    pub brier: Option<f64>,
}

impl Figures {
    pub fn coverage(&self) -> f64 {
        self.calls as f64 / self.rows.max(1) as f64
    }

    pub fn accuracy(&self) -> Option<f64> {
        (self.calls > 0).then(|| self.hits as f64 / self.calls as f64)
    }
}

/// Figures of `model` over the scored rows selected by `keep`.
pub fn figures(
    decisions: &[Decision],
    rows: &[Row],
    eval: &Evaluation,
    model: usize,
    keep: &dyn Fn(&Row) -> bool,
) -> Figures {
    let mut samples = Vec::new();
    let mut forecasts = Vec::new();
    for (r, calls) in rows.iter().zip(&eval.calls) {
        let (Some(change), true) = (r.change, keep(r)) else {
            continue;
        };
        let call = calls[model];
        forecasts.push((call.p_up, change > 0.0));
        if let Some(hit) = predict::call_came_true(call.direction, change) {
            samples.push(CallSample {
                raw_confidence: 1.0,
                hit,
                day: day_of(decisions[r.decision].market.prediction_time),
            });
        }
    }
    Figures {
        rows: forecasts.len(),
        calls: samples.len(),
        hits: samples.iter().filter(|s| s.hit).count(),
        ci95: calibration::day_block_bootstrap(&samples, BOOTSTRAP_DRAWS, BOOTSTRAP_SEED),
        brier: calibration::brier(forecasts),
    }
}

/// The in-hindsight base rate of "up" on the selected rows and its Brier score `b(1 − b)`.
pub fn base_rate(rows: &[Row], keep: &dyn Fn(&Row) -> bool) -> Option<(f64, f64)> {
    let ups: Vec<bool> = rows
        .iter()
        .filter(|r| keep(r))
        .filter_map(Row::up)
        .collect();
    if ups.is_empty() {
        return None;
    }
    let b = ups.iter().filter(|u| **u).count() as f64 / ups.len() as f64;
    Some((b, b * (1.0 - b)))
}

/// Upper edges of the stated-confidence buckets of the reliability table.
pub const RELIABILITY_BUCKETS: [f64; 5] = [0.1, 0.2, 0.3, 0.5, 1.01];

/// One line of a reliability table: calls whose stated confidence fell in a bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct ReliabilityLine {
    pub upper: f64,
    pub calls: usize,
    pub mean_confidence: f64,
    /// Mean of `(1 + c) / 2`: the share of these calls that should come true.
    pub stated_hit: f64,
    pub realised_hit: f64,
}

/// The reliability table of `model` over the selected scored rows (UP/DOWN calls only).
pub fn reliability(
    rows: &[Row],
    eval: &Evaluation,
    model: usize,
    keep: &dyn Fn(&Row) -> bool,
) -> Vec<ReliabilityLine> {
    let mut acc = [(0usize, 0.0f64, 0usize); RELIABILITY_BUCKETS.len()];
    for (r, calls) in rows.iter().zip(&eval.calls) {
        let (Some(change), true) = (r.change, keep(r)) else {
            continue;
        };
        let call = calls[model];
        let Some(hit) = predict::call_came_true(call.direction, change) else {
            continue;
        };
        // The stated confidence is |2·p(up) − 1| for every model.
        let c = (2.0 * call.p_up - 1.0).abs();
        let b = RELIABILITY_BUCKETS
            .iter()
            .position(|u| c < *u)
            .unwrap_or(RELIABILITY_BUCKETS.len() - 1);
        acc[b].0 += 1;
        acc[b].1 += c;
        acc[b].2 += usize::from(hit);
    }
    acc.iter()
        .zip(RELIABILITY_BUCKETS)
        .filter(|((n, _, _), _)| *n > 0)
        .map(|((n, sum_c, hits), upper)| {
            let mean = sum_c / *n as f64;
            ReliabilityLine {
                upper,
                calls: *n,
                mean_confidence: mean,
                stated_hit: (1.0 + mean) / 2.0,
                realised_hit: *hits as f64 / *n as f64,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradepipe_model::predict::{Aggregate, MarketView};
    use tradepipe_model::record::SentimentCounts;

    /// Hourly UP calls with raw confidence 0.5 through January and February 2022; the price
    /// rises after every January call and after February's as `february_up` says.
    fn history(february_up: bool) -> (Vec<Decision>, Vec<Row>) {
        let start = DateTime::parse_from_rfc3339("2022-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut decisions = Vec::new();
        let mut rows = Vec::new();
        for i in 0..(59 * 24) {
            let at = start + chrono::Duration::hours(i);
            let up = at.month() == 1 || february_up;
            decisions.push(Decision {
                symbol: "BTCUSDT".into(),
                decided_at: at,
                market: MarketView {
                    prediction_time: at,
                    base_price: Decimal::ONE_HUNDRED,
                    minute_volatility: None,
                },
                aggregate: Aggregate {
                    direction: Direction::Up,
                    confidence: 0.5,
                    counts: SentimentCounts::default(),
                    contributors: Vec::new(),
                    effective_articles: 1.0,
                },
            });
            rows.push(Row {
                decision: i as usize,
                horizon: 0,
                outcome: None,
                change: Some(if up { 0.01 } else { -0.01 }),
                momentum: None,
            });
        }
        (decisions, rows)
    }

    #[test]
    fn walk_forward_calibrates_a_month_only_on_calls_due_before_it() {
        let horizons = [Horizon::hours(1)];
        let (decisions, rows) = history(true);
        let eval = evaluate(&decisions, &rows, &horizons, &CalibrationMode::WalkForward);
        let jan = month_of(decisions[0].decided_at);
        let feb = jan + 1;
        assert_eq!(eval.months, vec![jan, feb]);
        assert!(!eval.calibrations[&(0, jan)].edge, "nothing before January");
        let feb_cal = &eval.calibrations[&(0, feb)];
        assert!(feb_cal.edge, "every January call came true: {feb_cal:?}");
        // January's last call is due at 1 February 00:00, so it counts; none of February's.
        assert_eq!(feb_cal.calls, 31 * 24);
        let feb_row = 40 * 24;
        assert_eq!(eval.calls[feb_row][0].direction, Direction::Up);
        assert!(eval.calls[feb_row][0].p_up > 0.5);
        assert_eq!(eval.calls[0][0].direction, Direction::Sideways);

        // February's outcomes turned around: February's calibration cannot know.
        let (decisions, rows) = history(false);
        let turned = evaluate(&decisions, &rows, &horizons, &CalibrationMode::WalkForward);
        assert_eq!(&turned.calibrations[&(0, feb)], feb_cal);
        let f = figures(&decisions, &rows, &turned, 0, &|r: &Row| {
            month_of(decisions[r.decision].decided_at) == feb
        });
        assert_eq!((f.calls, f.hits), (28 * 24, 0));
        assert!(f.brier.unwrap() > 0.25, "a wrong edge costs: {f:?}");
        assert_eq!(
            base_rate(&rows, &|r: &Row| r.decision < 24),
            Some((1.0, 0.0))
        );
    }
}
