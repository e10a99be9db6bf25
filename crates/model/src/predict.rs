//! Per-symbol trend predictions from analysed news, and their scoring against the market. Pure
//! functions: the PredictionActor fetches evidence and candles and stores what these return.
//!
//! The model, in full (each step is a function below with its formula):
//! 1. every analysed article mentioning the symbol in the window gets a weight
//!    `recency × source reliability × sentiment confidence × relevance of the symbol`;
//! 2. the weighted mean sentiment score `s` (−1..1) decides the direction: UP above
//!    [`DIRECTION_THRESHOLD`], DOWN below its negative, SIDEWAYS between;
//! 3. the raw confidence grows with |s| and with the effective number of articles; the stated
//!    direction and confidence are that raw call calibrated on a back-test
//!    ([`crate::calibration`]): the probability `h` that such a call came true, as `2h − 1`, or
//!    SIDEWAYS with confidence 0 where the news showed no edge at the horizon;
//! 4. the price target is the base price moved by a fraction of the horizon's realised
//!    volatility in the predicted direction, ± one volatility for low/high;
//! 5. after the horizon, the outcome is what the candles say; the score rewards the right
//!    direction (70 %) and a price inside the target range (30 %).

use crate::analysis::{Direction, MODEL_VERSION};
use crate::calibration::HorizonCalibration;
use crate::hash::round4;
use crate::record::{
    ActualOutcome, ContributingArticle, Evidence, ModelMetadata, PredictionCore, PriceTarget,
    SentimentCounts, TrendPredictionRecord,
};
use crate::sentiment::Label;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use std::fmt::Write as _;

/// |weighted mean score| at or above which the prediction has a direction.
pub const DIRECTION_THRESHOLD: f64 = 0.15;
/// Relevance assumed for an article tagged with the symbol but without an entity for it.
const DEFAULT_RELEVANCE: f64 = 0.5;
/// Lower bounds that keep targets and the sideways band meaningful on a dead-quiet market.
const MIN_HORIZON_VOLATILITY: f64 = 1e-4;
const MIN_SIDEWAYS_BAND: f64 = 5e-4;
/// Share of the horizon's volatility that a fully confident prediction expects the price to move.
const EXPECTED_MOVE_SHARE: f64 = 0.5;
/// Contributing articles listed in a prediction (the strongest ones); the counts cover all.
const MAX_CONTRIBUTORS: usize = 10;

pub const FEATURES_USED: [&str; 5] = [
    "sentiment",
    "entities",
    "source_reliability",
    "recency",
    "realized_volatility",
];

/// A prediction horizon ("15m", "4h", "24h", "7d"), parsed once where configuration is read:
/// its canonical text (the stored `time_horizon`) and its length in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Horizon {
    label: String,
    secs: i64,
}

impl Horizon {
    /// A horizon of `n` hours (1..=8760).
    pub fn hours(n: u16) -> Horizon {
        let n = n.clamp(1, 8_760);
        Horizon {
            label: format!("{n}h"),
            secs: i64::from(n) * 3_600,
        }
    }

    /// The canonical text, as stored in `time_horizon`.
    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn secs(&self) -> i64 {
        self.secs
    }
}

impl std::str::FromStr for Horizon {
    type Err = String;
    fn from_str(text: &str) -> Result<Horizon, String> {
        parse_horizon(text).map(|(label, secs)| Horizon { label, secs })
    }
}

impl std::fmt::Display for Horizon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label)
    }
}

impl serde::Serialize for Horizon {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.label)
    }
}

impl<'de> serde::Deserialize<'de> for Horizon {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Horizon, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Parses a horizon like "15m", "4h", "24h", "7d" into (canonical text, seconds).
pub fn parse_horizon(text: &str) -> Result<(String, i64), String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("horizon {text:?} needs a unit (m, h or d)"))?;
    let (num, unit) = t.split_at(split);
    let n: i64 = num
        .parse()
        .map_err(|_| format!("horizon {text:?} must start with a whole number"))?;
    let unit_secs = match unit {
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(format!("horizon {text:?}: unit must be m, h or d")),
    };
    if n <= 0 || n > 365 * 86_400 / unit_secs {
        return Err(format!("horizon {text:?} must be between 1m and 365d"));
    }
    Ok((format!("{n}{unit}"), n * unit_secs))
}

/// How the evidence is weighed.
#[derive(Debug, Clone, Copy)]
pub struct WeighParams {
    /// Only analyses newer than this count (the seed: 24 hours).
    pub window: chrono::Duration,
    /// An article's weight halves every `half_life` of age.
    pub half_life: chrono::Duration,
}

/// The evidence folded into one view.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    pub direction: Direction,
    pub confidence: f64,
    pub counts: SentimentCounts,
    /// Strongest first, weights normalized over all articles.
    pub contributors: Vec<ContributingArticle>,
    /// (Σw)² / Σw²: how many equally weighted articles the evidence is worth.
    pub effective_articles: f64,
}

/// Weight of one article: `0.5^(age / half_life) × reliability × confidence × relevance`, where
/// age is measured from its publication (or analysis, when the page had no date) and capped to
/// the window, so an old page just crawled counts as the oldest news, not as nothing.
pub fn weight(e: &Evidence, now: DateTime<Utc>, p: &WeighParams) -> f64 {
    let at = e.published_at.unwrap_or(e.analyzed_at).min(e.analyzed_at);
    let age = (now - at).clamp(chrono::Duration::zero(), p.window);
    let half = p.half_life.num_milliseconds().max(1) as f64;
    let recency = 0.5f64.powf(age.num_milliseconds() as f64 / half);
    let w = recency
        * e.reliability.clamp(0.0, 1.0)
        * e.sentiment.confidence.clamp(0.0, 1.0)
        * e.relevance.unwrap_or(DEFAULT_RELEVANCE).clamp(0.0, 1.0);
    if w.is_finite() { w } else { 0.0 }
}

/// Steps 1–3 of the model. Without evidence (or with zero total weight): SIDEWAYS, confidence 0.
pub fn aggregate(evidence: &[Evidence], now: DateTime<Utc>, p: &WeighParams) -> Aggregate {
    let mut counts = SentimentCounts::default();
    for e in evidence {
        match e.sentiment.label {
            Label::Bullish => counts.bullish_count += 1,
            Label::Bearish => counts.bearish_count += 1,
            Label::Neutral => counts.neutral_count += 1,
        }
    }
    let weights: Vec<f64> = evidence.iter().map(|e| weight(e, now, p)).collect();
    let total: f64 = weights.iter().sum();
    if evidence.is_empty() || total <= 0.0 {
        return Aggregate {
            direction: Direction::Sideways,
            confidence: 0.0,
            counts,
            contributors: Vec::new(),
            effective_articles: 0.0,
        };
    }
    let score = evidence
        .iter()
        .zip(&weights)
        .map(|(e, w)| w * e.sentiment.score.clamp(-1.0, 1.0))
        .sum::<f64>()
        / total;
    counts.average_score = round4(score);
    let sum_sq: f64 = weights.iter().map(|w| w * w).sum();
    let effective = total * total / sum_sq;
    // Evidence saturates: one article gives 39 % of the strength of many, three give 78 %.
    let evidence_strength = 1.0 - (-effective / 2.0).exp();
    let (direction, confidence) = if score >= DIRECTION_THRESHOLD {
        (Direction::Up, score * evidence_strength)
    } else if score <= -DIRECTION_THRESHOLD {
        (Direction::Down, -score * evidence_strength)
    } else {
        // Confident in "no move" when the news is balanced and plentiful.
        (
            Direction::Sideways,
            0.5 * (1.0 - score.abs() / DIRECTION_THRESHOLD) * evidence_strength,
        )
    };
    let mut contributors: Vec<ContributingArticle> = evidence
        .iter()
        .zip(&weights)
        .map(|(e, w)| ContributingArticle {
            article_id: e.article_id.clone(),
            title: e.title.clone(),
            weight: round4(w / total),
        })
        .collect();
    contributors.sort_by(|a, b| {
        b.weight
            .total_cmp(&a.weight)
            .then_with(|| a.article_id.cmp(&b.article_id))
    });
    contributors.truncate(MAX_CONTRIBUTORS);
    Aggregate {
        direction,
        confidence: round4(confidence.clamp(0.0, 0.95)),
        counts,
        contributors,
        effective_articles: round4(effective),
    }
}

/// Standard deviation of the log returns between consecutive closes (per candle), or `None`
/// with fewer than two returns.
pub fn realized_volatility(closes: &[Decimal]) -> Option<f64> {
    let prices: Vec<f64> = closes
        .iter()
        .filter_map(|c| c.to_f64())
        .filter(|p| *p > 0.0)
        .collect();
    let returns: Vec<f64> = prices.windows(2).map(|w| (w[1] / w[0]).ln()).collect();
    if returns.len() < 2 {
        return None;
    }
    let n = returns.len() as f64;
    let mean = returns.iter().sum::<f64>() / n;
    let var = returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0);
    Some(var.sqrt())
}

/// Volatility over the horizon from the per-minute one (random walk: σ√t).
pub fn horizon_volatility(per_minute: Option<f64>, horizon_seconds: i64) -> f64 {
    let minutes = (horizon_seconds as f64 / 60.0).max(1.0);
    (per_minute.unwrap_or(0.0) * minutes.sqrt()).max(MIN_HORIZON_VOLATILITY)
}

/// Moves below this relative size count as SIDEWAYS: a quarter of the horizon's volatility,
/// at least 5 basis points.
pub fn sideways_band(horizon_vol: f64) -> f64 {
    (0.25 * horizon_vol).max(MIN_SIDEWAYS_BAND)
}

/// Step 4: `mid = base·e^μ`, `low = base·e^(μ−σ)`, `high = base·e^(μ+σ)` with
/// `μ = ±confidence·σ/2` (0 for SIDEWAYS), rounded to the base price's scale.
pub fn price_target(
    base: Decimal,
    direction: Direction,
    confidence: f64,
    horizon_vol: f64,
) -> PriceTarget {
    let sign = match direction {
        Direction::Up => 1.0,
        Direction::Down => -1.0,
        Direction::Sideways => 0.0,
    };
    let mu = sign * confidence * EXPECTED_MOVE_SHARE * horizon_vol;
    let scale = base.scale();
    let at = |log_move: f64| -> Decimal {
        match Decimal::from_f64(log_move.exp()) {
            Some(factor) => (base * factor).round_dp(scale),
            None => base,
        }
    };
    PriceTarget {
        low: at(mu - horizon_vol),
        mid: at(mu),
        high: at(mu + horizon_vol),
    }
}

/// Everything the predictor knows at `prediction_time` about one symbol's market.
#[derive(Debug, Clone)]
pub struct MarketView {
    pub prediction_time: DateTime<Utc>,
    pub base_price: Decimal,
    /// Per-minute realised volatility, if enough candles.
    pub minute_volatility: Option<f64>,
}

/// Steps 1–4 into one stored prediction: the PredictionActor's and the back-test's one path.
pub fn build_prediction(
    symbol: &str,
    horizon: (&str, i64),
    market: &MarketView,
    evidence: &[Evidence],
    now: DateTime<Utc>,
    weigh: &WeighParams,
    calibration: &HorizonCalibration,
) -> TrendPredictionRecord {
    let agg = aggregate(evidence, now, weigh);
    prediction_from_aggregate(symbol, horizon, market, agg, now, weigh, calibration)
}

/// Steps 3–4 on an [`aggregate`] already made: the back-test folds the evidence once per
/// decision and states it for every horizon.
pub fn prediction_from_aggregate(
    symbol: &str,
    (time_horizon, horizon_seconds): (&str, i64),
    market: &MarketView,
    agg: Aggregate,
    now: DateTime<Utc>,
    weigh: &WeighParams,
    calibration: &HorizonCalibration,
) -> TrendPredictionRecord {
    let call = calibration.apply(agg.direction, agg.confidence);
    let vol = horizon_volatility(market.minute_volatility, horizon_seconds);
    let band = sideways_band(vol);
    let target = price_target(market.base_price, call.direction, call.confidence, vol);
    let reasoning = reasoning(
        symbol,
        time_horizon,
        &agg,
        calibration,
        market,
        vol,
        &target,
        weigh,
    );
    TrendPredictionRecord {
        id: String::new(),
        symbol: symbol.to_string(),
        prediction_time: market.prediction_time,
        time_horizon: time_horizon.to_string(),
        horizon_seconds,
        prediction: PredictionCore {
            direction: call.direction,
            confidence: call.confidence,
            price_target: target,
            base_price: market.base_price,
            horizon_volatility: round6(vol),
            sideways_band: round6(band),
        },
        contributing_articles: agg.contributors,
        sentiment_summary: agg.counts,
        reasoning,
        model_metadata: ModelMetadata {
            version: MODEL_VERSION.to_string(),
            features_used: FEATURES_USED.iter().map(|s| s.to_string()).collect(),
        },
        actual_outcome: None,
        accuracy_score: None,
        created_at: now,
    }
}

#[allow(clippy::too_many_arguments)]
fn reasoning(
    symbol: &str,
    horizon: &str,
    agg: &Aggregate,
    calibration: &HorizonCalibration,
    market: &MarketView,
    vol: f64,
    target: &PriceTarget,
    weigh: &WeighParams,
) -> String {
    let c = &agg.counts;
    let articles = c.bullish_count + c.bearish_count + c.neutral_count;
    let mut s = String::new();
    let window_h = weigh.window.num_hours();
    if articles == 0 {
        let _ = write!(
            s,
            "No analysed articles mention {symbol} in the last {window_h} hours, so there is no news signal: SIDEWAYS with no confidence."
        );
    } else {
        let _ = write!(
            s,
            "Based on {articles} articles in the last {window_h} hours mentioning {symbol} ({} bullish, {} bearish, {} neutral; worth {:.1} equally weighted articles), the weighted sentiment is {:+.2}, ",
            c.bullish_count,
            c.bearish_count,
            c.neutral_count,
            agg.effective_articles,
            c.average_score,
        );
        let verdict = match agg.direction {
            Direction::Up => "bullish enough to expect a rise",
            Direction::Down => "bearish enough to expect a fall",
            Direction::Sideways => "too balanced or weak to expect a move",
        };
        let _ = write!(s, "{verdict} over {horizon}.");
        if agg.direction != Direction::Sideways {
            let [lo, hi] = calibration.hit_rate_ci95;
            if calibration.edge {
                let h = calibration.hit_probability(agg.confidence);
                let _ = write!(
                    s,
                    " In the back-test ({}), such calls at {} came true {:.0} % of the time, so it is called with confidence {:.2}.",
                    calibration.fitted_on,
                    calibration.horizon,
                    h * 100.0,
                    2.0 * h - 1.0
                );
            } else {
                let _ = write!(
                    s,
                    " But in the back-test ({}) news calls at {} came true {:.1} % of the time (95 % interval {:.1}–{:.1} %): no edge, so it is called SIDEWAYS with no confidence.",
                    calibration.fitted_on,
                    calibration.horizon,
                    calibration.hit_rate * 100.0,
                    lo * 100.0,
                    hi * 100.0
                );
            }
        }
        if let Some(top) = agg.contributors.first() {
            let _ = write!(
                s,
                " Strongest article: \"{}\" ({:.0} % of the weight).",
                top.title,
                top.weight * 100.0
            );
        }
    }
    let _ = write!(
        s,
        " Price {} at {}; realised volatility over {horizon} {:.2} %, target {} to {} (mid {}).",
        market.base_price,
        market.prediction_time.format("%Y-%m-%d %H:%M UTC"),
        vol * 100.0,
        target.low,
        target.high,
        target.mid
    );
    s
}

fn direction_of(change: f64, band: f64) -> Direction {
    if change >= band {
        Direction::Up
    } else if change <= -band {
        Direction::Down
    } else {
        Direction::Sideways
    }
}

/// Step 5: the outcome at `price` (the close at `price_time`, the end of the horizon) and the
/// accuracy score `0.7·[direction right] + 0.3·range`, where range is 1 inside the target and
/// falls linearly to 0 one target-width outside it.
pub fn score(
    p: &TrendPredictionRecord,
    price: Decimal,
    price_time: DateTime<Utc>,
    now: DateTime<Utc>,
) -> (ActualOutcome, f64) {
    let change = relative_change(p.prediction.base_price, price);
    let direction = direction_of(change, p.prediction.sideways_band);
    let t = &p.prediction.price_target;
    let within = t.low <= price && price <= t.high;
    let range_score = if within {
        1.0
    } else {
        let width = (t.high - t.low).to_f64().unwrap_or(0.0);
        let outside = if price < t.low {
            t.low - price
        } else {
            price - t.high
        }
        .to_f64()
        .unwrap_or(f64::MAX);
        if width > 0.0 {
            (1.0 - outside / width).max(0.0)
        } else {
            0.0
        }
    };
    let hit = if direction == p.prediction.direction {
        1.0
    } else {
        0.0
    };
    let accuracy = round4(0.7 * hit + 0.3 * range_score);
    (
        ActualOutcome {
            direction,
            price,
            change: round6(change),
            within_target: within,
            price_time,
            evaluated_at: now,
        },
        accuracy,
    )
}

/// `(price − base) / base`: the move a prediction is scored on (0 for a zero base).
pub fn relative_change(base: Decimal, price: Decimal) -> f64 {
    if base.is_zero() {
        0.0
    } else {
        ((price - base) / base).to_f64().unwrap_or(0.0)
    }
}

/// Whether an UP or DOWN call came true: the price strictly higher (UP) or strictly lower
/// (DOWN) at the horizon, however little. `None` for SIDEWAYS, which calls no direction. This is
/// what a calibrated confidence is a probability of ([`crate::calibration`]).
pub fn call_came_true(direction: Direction, change: f64) -> Option<bool> {
    match direction {
        Direction::Up => Some(change > 0.0),
        Direction::Down => Some(change < 0.0),
        Direction::Sideways => None,
    }
}

/// Fraction of scored predictions whose direction was right (`None` without any).
pub fn hit_rate(scored: &[TrendPredictionRecord]) -> Option<f64> {
    let outcomes: Vec<bool> = scored
        .iter()
        .filter_map(|p| {
            p.actual_outcome
                .as_ref()
                .map(|o| o.direction == p.prediction.direction)
        })
        .collect();
    if outcomes.is_empty() {
        return None;
    }
    Some(outcomes.iter().filter(|h| **h).count() as f64 / outcomes.len() as f64)
}

fn round6(x: f64) -> f64 {
    (x * 1_000_000.0).round() / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::SentimentSummary;
    use crate::sentiment::Distribution;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_723_161_600, 0).unwrap()
    }

    fn params() -> WeighParams {
        WeighParams {
            window: chrono::Duration::hours(24),
            half_life: chrono::Duration::hours(6),
        }
    }

    fn ev(id: &str, label: Label, score: f64, age_h: i64, reliability: f64) -> Evidence {
        let (bullish, bearish) = ((1.0 + score) / 2.0 * 0.9, (1.0 - score) / 2.0 * 0.9);
        Evidence {
            article_id: id.into(),
            title: format!("article {id}"),
            source_name: "Wire".into(),
            reliability,
            published_at: Some(now() - chrono::Duration::hours(age_h)),
            analyzed_at: now(),
            sentiment: SentimentSummary {
                label,
                score,
                confidence: 0.8,
                distribution: Distribution {
                    bullish,
                    bearish,
                    neutral: 1.0 - bullish - bearish,
                },
            },
            relevance: Some(0.9),
        }
    }

    #[test]
    fn horizons_parse_once_and_render_canonically() {
        let h: Horizon = " 24h".parse().unwrap();
        assert_eq!((h.label(), h.secs()), ("24h", 86_400));
        assert_eq!(h, Horizon::hours(24));
        assert_eq!(serde_json::to_string(&h).unwrap(), "\"24h\"");
        let back: Horizon = serde_json::from_str("\"15m\"").unwrap();
        assert_eq!(back.secs(), 900);
        assert!(serde_json::from_str::<Horizon>("\"15x\"").is_err());
        assert!("0h".parse::<Horizon>().is_err());
    }

    #[test]
    fn horizons_parse_and_reject_nonsense() {
        assert_eq!(parse_horizon("24h").unwrap(), ("24h".into(), 86_400));
        assert_eq!(parse_horizon(" 5m").unwrap(), ("5m".into(), 300));
        assert_eq!(parse_horizon("7d").unwrap().1, 604_800);
        for bad in ["", "h", "0m", "5", "5s", "-1h", "400d", "1.5h"] {
            assert!(parse_horizon(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn recent_reliable_articles_weigh_more() {
        let p = params();
        let fresh = weight(&ev("a", Label::Bullish, 0.6, 0, 0.9), now(), &p);
        let old = weight(&ev("b", Label::Bullish, 0.6, 6, 0.9), now(), &p);
        let dubious = weight(&ev("c", Label::Bullish, 0.6, 0, 0.3), now(), &p);
        assert!((old / fresh - 0.5).abs() < 1e-9, "one half-life halves");
        assert!((dubious / fresh - 0.3 / 0.9).abs() < 1e-9);
        // Older than the window: capped, not zero.
        let ancient = weight(&ev("d", Label::Bullish, 0.6, 24 * 365, 0.9), now(), &p);
        assert!((ancient / fresh - 0.0625).abs() < 1e-9);
    }

    #[test]
    fn bullish_news_predicts_up_and_mixed_news_sideways() {
        let p = params();
        let bull = [
            ev("a", Label::Bullish, 0.7, 1, 0.9),
            ev("b", Label::Bullish, 0.5, 2, 0.8),
            ev("c", Label::Neutral, 0.0, 3, 0.9),
        ];
        let a = aggregate(&bull, now(), &p);
        assert_eq!(a.direction, Direction::Up);
        assert!(
            a.confidence > 0.2 && a.confidence < 0.95,
            "{}",
            a.confidence
        );
        assert_eq!(
            (
                a.counts.bullish_count,
                a.counts.bearish_count,
                a.counts.neutral_count
            ),
            (2, 0, 1)
        );
        let total: f64 = a.contributors.iter().map(|c| c.weight).sum();
        assert!((total - 1.0).abs() < 1e-3);
        assert_eq!(
            a.contributors[0].article_id, "a",
            "freshest and strongest first"
        );

        let mixed = [
            ev("a", Label::Bullish, 0.6, 1, 0.9),
            ev("b", Label::Bearish, -0.6, 1, 0.9),
        ];
        let m = aggregate(&mixed, now(), &p);
        assert_eq!(m.direction, Direction::Sideways);
        assert!(m.counts.average_score.abs() < 1e-9);

        let bear = [ev("a", Label::Bearish, -0.8, 0, 0.9)];
        assert_eq!(aggregate(&bear, now(), &p).direction, Direction::Down);
        let none = aggregate(&[], now(), &p);
        assert_eq!(
            (none.direction, none.confidence),
            (Direction::Sideways, 0.0)
        );
    }

    #[test]
    fn more_agreeing_articles_mean_more_confidence() {
        let p = params();
        let one = aggregate(&[ev("a", Label::Bullish, 0.6, 0, 0.9)], now(), &p);
        let many: Vec<Evidence> = (0..6)
            .map(|i| ev(&i.to_string(), Label::Bullish, 0.6, 0, 0.9))
            .collect();
        let six = aggregate(&many, now(), &p);
        assert!(six.confidence > one.confidence);
        assert!((six.effective_articles - 6.0).abs() < 1e-3);
    }

    #[test]
    fn volatility_and_targets_are_consistent_and_exact_scale() {
        let closes = [dec("100"), dec("101"), dec("100"), dec("101"), dec("100")];
        let v = realized_volatility(&closes).unwrap();
        assert!(v > 0.009 && v < 0.012, "{v}");
        assert_eq!(realized_volatility(&[dec("1"), dec("2")]), None);
        let hv = horizon_volatility(Some(v), 3_600);
        assert!((hv / v - 60f64.sqrt()).abs() < 1e-9);

        let base = dec("61837.63");
        let up = price_target(base, Direction::Up, 0.8, 0.02);
        assert!(up.low < base && base < up.mid && up.mid < up.high);
        assert_eq!(up.mid.scale(), 2);
        let down = price_target(base, Direction::Down, 0.8, 0.02);
        assert!(down.mid < base);
        let flat = price_target(base, Direction::Sideways, 0.8, 0.02);
        assert_eq!(flat.mid, base);
    }

    fn no_edge() -> HorizonCalibration {
        HorizonCalibration::no_edge("1h", 3600, "test")
    }

    /// Calls at 24h that came true 55 % (weakest raw confidence) to 75 % (strongest).
    fn edge_24h() -> HorizonCalibration {
        HorizonCalibration {
            edge: true,
            hit_rate: 0.6,
            hit_rate_ci95: [0.55, 0.65],
            hit_probability: vec![0.55, 0.6, 0.65, 0.7, 0.75],
            ..HorizonCalibration::no_edge("24h", 86_400, "test")
        }
    }

    #[test]
    fn the_stated_call_is_the_calibrated_one() {
        let market = MarketView {
            prediction_time: now(),
            base_price: dec("100.00"),
            minute_volatility: Some(0.001),
        };
        let bull = [
            ev("a", Label::Bullish, 0.7, 1, 0.9),
            ev("b", Label::Bullish, 0.6, 2, 0.9),
        ];
        let raw = aggregate(&bull, now(), &params());
        assert_eq!(raw.direction, Direction::Up);
        let with_edge = build_prediction(
            "BTCUSDT",
            ("24h", 86_400),
            &market,
            &bull,
            now(),
            &params(),
            &edge_24h(),
        );
        assert_eq!(with_edge.prediction.direction, Direction::Up);
        let h = edge_24h().hit_probability(raw.confidence);
        assert!((with_edge.prediction.confidence - (2.0 * h - 1.0)).abs() < 1e-4);
        assert!(
            with_edge.reasoning.contains("came true"),
            "{}",
            with_edge.reasoning
        );
        assert!(with_edge.prediction.price_target.mid > market.base_price);

        let without = build_prediction(
            "BTCUSDT",
            ("1h", 3600),
            &market,
            &bull,
            now(),
            &params(),
            &no_edge(),
        );
        assert_eq!(
            (without.prediction.direction, without.prediction.confidence),
            (Direction::Sideways, 0.0)
        );
        assert_eq!(without.prediction.price_target.mid, market.base_price);
        assert!(
            without.reasoning.contains("no edge"),
            "{}",
            without.reasoning
        );
        assert_eq!(
            without.contributing_articles.len(),
            2,
            "the evidence is still shown"
        );
    }

    fn prediction(direction: Direction) -> TrendPredictionRecord {
        let market = MarketView {
            prediction_time: now(),
            base_price: dec("100.00"),
            minute_volatility: Some(0.001),
        };
        let mut p = build_prediction(
            "BTCUSDT",
            ("1h", 3600),
            &market,
            &[],
            now(),
            &params(),
            &no_edge(),
        );
        p.prediction.direction = direction;
        p
    }

    #[test]
    fn scores_reward_direction_and_range() {
        let p = prediction(Direction::Up);
        let band = p.prediction.sideways_band;
        assert!(band > 0.0);
        let (o, s) = score(&p, dec("100.50"), now(), now());
        assert_eq!(o.direction, Direction::Up);
        assert!(o.within_target);
        assert_eq!(s, 1.0);
        let (o, s) = score(&p, dec("99.00"), now(), now());
        assert_eq!(o.direction, Direction::Down);
        assert!(
            s < 0.3,
            "wrong direction scores at most the range part: {s}"
        );
        let (o, _) = score(&p, dec("100.01"), now(), now());
        assert_eq!(o.direction, Direction::Sideways, "inside the band");
        let far = score(&p, dec("150"), now(), now());
        assert_eq!(far.1, 0.7, "right direction, far outside the target");
    }

    #[test]
    fn hit_rate_counts_only_scored_predictions() {
        let mut right = prediction(Direction::Up);
        right.actual_outcome = Some(score(&right, dec("101"), now(), now()).0);
        let mut wrong = prediction(Direction::Down);
        wrong.actual_outcome = Some(score(&wrong, dec("101"), now(), now()).0);
        let unscored = prediction(Direction::Up);
        assert_eq!(
            hit_rate(&[right.clone(), wrong, unscored.clone()]),
            Some(0.5)
        );
        assert_eq!(hit_rate(&[unscored]), None);
        assert_eq!(hit_rate(&[right]), Some(1.0));
    }

    #[test]
    fn prediction_reads_as_plain_words() {
        let market = MarketView {
            prediction_time: now(),
            base_price: dec("61837.63"),
            minute_volatility: Some(0.0005),
        };
        let evidence = [ev("a", Label::Bullish, 0.7, 1, 0.9)];
        let p = build_prediction(
            "BTCUSDT",
            ("24h", 86_400),
            &market,
            &evidence,
            now(),
            &params(),
            &edge_24h(),
        );
        assert!(
            p.reasoning.contains("Based on 1 articles"),
            "{}",
            p.reasoning
        );
        assert!(p.reasoning.contains("61837.63"));
        assert_eq!(p.due_at(), now() + chrono::Duration::hours(24));
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["prediction"]["direction"], "UP");
        assert_eq!(
            json["prediction"]["price_target"]["mid"]
                .as_str()
                .map(|s| s.contains('.')),
            Some(true)
        );
    }
}
