//! Calibrated confidence: what a raw news call has been worth in a back-test, so that the stated
//! confidence of a prediction means what it says.
//!
//! [`crate::predict::aggregate`] turns the evidence into a raw call (UP or DOWN with a raw
//! confidence, or SIDEWAYS). A [`HorizonCalibration`], fitted by [`fit`] on back-tested calls
//! whose outcome is known, maps the raw confidence to the probability `h` that such a call comes
//! true (the price is strictly higher for UP, strictly lower for DOWN, `horizon` later). The
//! stated confidence is then `c = 2h − 1`, so that `p(up) = 0.5 + c/2` for UP and `0.5 − c/2`
//! for DOWN: confidence 0.5 means three calls in four come true, 0 means a coin. Where the
//! back-test shows no edge (the 95 % interval of the hit rate, block-bootstrapped by day,
//! reaches down to 0.5), every call becomes SIDEWAYS with confidence 0: `p(up) = 0.5`, a Brier
//! score of exactly the coin's. Contrarian edges (news reliably wrong) are not used.
//!
//! The shipped table (`calibration/prediction_calibration.json`, written by
//! `tradepipe backtest --write-calibration`) is compiled in, like the sentiment weights.

use crate::analysis::Direction;
use serde::{Deserialize, Serialize};

/// Upper edges of the raw-confidence buckets a calibration keeps one hit probability for (raw
/// confidences are at most 0.95).
pub const RAW_BUCKETS: [f64; 5] = [0.1, 0.2, 0.3, 0.45, 1.0];
/// Each bucket's hit rate is shrunk towards 0.5 as if this many days of calls had hit half the
/// time: hourly calls overlap and share their evidence, so a day is closer to one observation
/// than 24 are.
const SHRINK_DAYS: f64 = 10.0;
/// Fewer days of calls than this never show an edge.
const MIN_DAYS: usize = 14;
/// Resamples of the day-block bootstrap.
pub const BOOTSTRAP_DRAWS: usize = 2_000;
/// The bootstrap's fixed seed: the same calls always give the same interval.
pub const BOOTSTRAP_SEED: u64 = 0x7472_6164_6570_6970;
/// No calibrated call claims more than this.
const MAX_HIT_PROBABILITY: f64 = 0.95;

const SHIPPED_JSON: &str = include_str!("../calibration/prediction_calibration.json");

/// One back-tested call whose outcome is known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallSample {
    /// The raw confidence of the UP/DOWN call (or any score a baseline uses; 1 when it has none).
    pub raw_confidence: f64,
    /// The price moved the called way.
    pub hit: bool,
    /// Days since the epoch of the call's prediction time: the bootstrap's block.
    pub day: i64,
}

/// The calibration of one horizon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HorizonCalibration {
    /// "1h", "24h": the horizon it was fitted for.
    pub horizon: String,
    pub horizon_seconds: i64,
    /// What it was fitted on, in words ("BTCUSDT, ETHUSDT 2021-10-12..2022-04-30").
    pub fitted_on: String,
    /// UP/DOWN calls and distinct days they fell on.
    pub calls: usize,
    pub days: usize,
    /// Share of those calls that came true, and its 95 % interval (day-block bootstrap).
    pub hit_rate: f64,
    pub hit_rate_ci95: [f64; 2],
    /// Whether the interval lies above 0.5; without an edge every entry below is 0.5.
    pub edge: bool,
    /// Probability that a call comes true, per bucket of [`RAW_BUCKETS`]; non-decreasing.
    pub hit_probability: Vec<f64>,
}

/// A calibrated call: what a prediction states.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CalibratedCall {
    pub direction: Direction,
    /// `2h − 1`; 0 for SIDEWAYS.
    pub confidence: f64,
    /// The probability that the price is higher at the horizon (0.5 for SIDEWAYS).
    pub p_up: f64,
}

impl HorizonCalibration {
    /// A calibration that claims nothing: every call SIDEWAYS, confidence 0.
    pub fn no_edge(horizon: &str, horizon_seconds: i64, fitted_on: &str) -> HorizonCalibration {
        HorizonCalibration {
            horizon: horizon.to_string(),
            horizon_seconds,
            fitted_on: fitted_on.to_string(),
            calls: 0,
            days: 0,
            hit_rate: 0.5,
            hit_rate_ci95: [0.0, 1.0],
            edge: false,
            hit_probability: vec![0.5; RAW_BUCKETS.len()],
        }
    }

    /// The probability that a raw call of this confidence comes true.
    pub fn hit_probability(&self, raw_confidence: f64) -> f64 {
        if !self.edge {
            return 0.5;
        }
        self.hit_probability
            .get(bucket_of(raw_confidence))
            .copied()
            .filter(|h| h.is_finite())
            .unwrap_or(0.5)
            .clamp(0.5, MAX_HIT_PROBABILITY)
    }

    /// The stated call for a raw one.
    pub fn apply(&self, raw_direction: Direction, raw_confidence: f64) -> CalibratedCall {
        let h = self.hit_probability(raw_confidence);
        // Rounded as stored, so p(up) computed from a stored prediction is this one.
        let confidence = crate::hash::round4(2.0 * h - 1.0);
        match raw_direction {
            Direction::Up if confidence > 0.0 => CalibratedCall {
                direction: Direction::Up,
                confidence,
                p_up: 0.5 + confidence / 2.0,
            },
            Direction::Down if confidence > 0.0 => CalibratedCall {
                direction: Direction::Down,
                confidence,
                p_up: 0.5 - confidence / 2.0,
            },
            _ => CalibratedCall {
                direction: Direction::Sideways,
                confidence: 0.0,
                p_up: 0.5,
            },
        }
    }

    /// Checks a table read from a file: one probability per bucket, each in 0.5..=0.95.
    fn validate(&self) -> Result<(), String> {
        if self.hit_probability.len() != RAW_BUCKETS.len() {
            return Err(format!(
                "horizon {}: {} hit probabilities for {} buckets",
                self.horizon,
                self.hit_probability.len(),
                RAW_BUCKETS.len()
            ));
        }
        if let Some(h) = self
            .hit_probability
            .iter()
            .find(|h| !(0.5..=MAX_HIT_PROBABILITY).contains(*h))
        {
            return Err(format!(
                "horizon {}: hit probability {h} outside 0.5..=0.95",
                self.horizon
            ));
        }
        if self.horizon_seconds <= 0 {
            return Err(format!("horizon {}: no length", self.horizon));
        }
        Ok(())
    }
}

/// The calibrations of every back-tested horizon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// How the table was made: the command and the data.
    pub made_by: String,
    pub horizons: Vec<HorizonCalibration>,
}

impl Calibration {
    /// The table compiled into the daemon (fitted on the development period only).
    pub fn shipped() -> Result<Calibration, String> {
        Calibration::from_json(SHIPPED_JSON)
            .map_err(|e| format!("the shipped prediction calibration: {e}"))
    }

    pub fn from_json(text: &str) -> Result<Calibration, String> {
        let c: Calibration = serde_json::from_str(text).map_err(|e| e.to_string())?;
        for h in &c.horizons {
            h.validate()?;
        }
        Ok(c)
    }

    /// The calibration for a horizon of `secs`: the fitted horizon nearest on a log scale (a 2m
    /// or 15m horizon uses the shortest one fitted, a 7d one the longest), or one that claims
    /// nothing when the table is empty.
    pub fn for_horizon(&self, label: &str, secs: i64) -> HorizonCalibration {
        let distance = |h: &HorizonCalibration| {
            ((h.horizon_seconds.max(1) as f64) / (secs.max(1) as f64))
                .ln()
                .abs()
        };
        self.horizons
            .iter()
            .min_by(|a, b| distance(a).total_cmp(&distance(b)))
            .cloned()
            .unwrap_or_else(|| HorizonCalibration::no_edge(label, secs, "nothing"))
    }
}

/// Fits a horizon's calibration on calls whose outcome is known: the overall hit rate and its
/// day-block bootstrap interval decide whether there is an edge at all; if there is, each
/// raw-confidence bucket's hit rate, shrunk towards 0.5 by [`SHRINK_DAYS`] days of calls and
/// made non-decreasing (pool adjacent violators), is its hit probability.
pub fn fit(
    horizon: &str,
    horizon_seconds: i64,
    fitted_on: &str,
    samples: &[CallSample],
) -> HorizonCalibration {
    let mut cal = HorizonCalibration::no_edge(horizon, horizon_seconds, fitted_on);
    let (hits, n) = count(samples.iter());
    let days = distinct_days(samples);
    cal.calls = n;
    cal.days = days;
    if n == 0 {
        return cal;
    }
    cal.hit_rate = round6(hits as f64 / n as f64);
    let Some((lo, hi)) = day_block_bootstrap(samples, BOOTSTRAP_DRAWS, BOOTSTRAP_SEED) else {
        return cal;
    };
    cal.hit_rate_ci95 = [round6(lo), round6(hi)];
    if days < MIN_DAYS || lo <= 0.5 {
        return cal;
    }
    cal.edge = true;
    let prior = SHRINK_DAYS * n as f64 / days as f64;
    let blocks: Vec<(f64, f64)> = (0..RAW_BUCKETS.len())
        .map(|b| {
            let (h, m) = count(samples.iter().filter(|s| bucket_of(s.raw_confidence) == b));
            let weight = m as f64 + prior;
            (0.5 + (h as f64 - m as f64 / 2.0) / weight, weight)
        })
        .collect();
    cal.hit_probability = pool_adjacent_violators(&blocks)
        .into_iter()
        .map(|p| round6(p.clamp(0.5, MAX_HIT_PROBABILITY)))
        .collect();
    cal
}

/// The bucket of [`RAW_BUCKETS`] a raw confidence falls in (the last holds anything above).
fn bucket_of(raw_confidence: f64) -> usize {
    RAW_BUCKETS
        .iter()
        .position(|edge| raw_confidence < *edge)
        .unwrap_or(RAW_BUCKETS.len() - 1)
}

fn count<'a>(samples: impl Iterator<Item = &'a CallSample>) -> (usize, usize) {
    samples.fold((0, 0), |(h, n), s| (h + usize::from(s.hit), n + 1))
}

fn distinct_days(samples: &[CallSample]) -> usize {
    let mut days: Vec<i64> = samples.iter().map(|s| s.day).collect();
    days.sort_unstable();
    days.dedup();
    days.len()
}

/// Weighted isotonic (non-decreasing) fit of `(value, weight)` blocks.
fn pool_adjacent_violators(blocks: &[(f64, f64)]) -> Vec<f64> {
    // Each pooled run: (mean, weight, how many original blocks).
    let mut runs: Vec<(f64, f64, usize)> = Vec::with_capacity(blocks.len());
    for &(v, w) in blocks {
        runs.push((v, w, 1));
        while runs.len() > 1 {
            let (b, a) = (runs[runs.len() - 1], runs[runs.len() - 2]);
            if a.0 <= b.0 {
                break;
            }
            runs.truncate(runs.len() - 2);
            let w = a.1 + b.1;
            runs.push(((a.0 * a.1 + b.0 * b.1) / w, w, a.2 + b.2));
        }
    }
    runs.into_iter()
        .flat_map(|(v, _, k)| std::iter::repeat_n(v, k))
        .collect()
}

/// 95 % interval of the hit rate of `samples`, resampling whole days with replacement (calls of
/// one day share their evidence and their market, so they are not independent). Seeded, so
/// the same calls always give the same interval. `None` without calls.
pub fn day_block_bootstrap(samples: &[CallSample], draws: usize, seed: u64) -> Option<(f64, f64)> {
    let mut per_day: std::collections::BTreeMap<i64, (u64, u64)> = Default::default();
    for s in samples {
        let e = per_day.entry(s.day).or_default();
        e.0 += u64::from(s.hit);
        e.1 += 1;
    }
    let days: Vec<(u64, u64)> = per_day.into_values().collect();
    if days.is_empty() || draws == 0 {
        return None;
    }
    let mut rng = SplitMix64(seed);
    let mut rates: Vec<f64> = (0..draws)
        .map(|_| {
            let (mut hits, mut n) = (0u64, 0u64);
            for _ in 0..days.len() {
                let (h, m) = days[rng.below(days.len())];
                hits += h;
                n += m;
            }
            hits as f64 / n.max(1) as f64
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    let at = |q: f64| rates[((q * (draws - 1) as f64).round() as usize).min(draws - 1)];
    Some((at(0.025), at(0.975)))
}

/// A small seeded generator (Steele, Lea, Flood 2014): the bootstrap needs reproducible draws,
/// not cryptographic ones, and no thread-local state.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; the modulo bias is below 2^-40 for the sizes used here).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The Brier score of probabilities of "up" against what happened.
pub fn brier(forecasts: impl IntoIterator<Item = (f64, bool)>) -> Option<f64> {
    let (sum, n) = forecasts
        .into_iter()
        .fold((0.0, 0usize), |(s, n), (p, up)| {
            let y = if up { 1.0 } else { 0.0 };
            (s + (p - y) * (p - y), n + 1)
        });
    (n > 0).then(|| sum / n as f64)
}

fn round6(x: f64) -> f64 {
    (x * 1_000_000.0).round() / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `days` days of `per_day` calls each, the i-th call hitting when `hit(day, i)`.
    fn calls(
        days: i64,
        per_day: usize,
        raw: impl Fn(usize) -> f64,
        hit: impl Fn(i64, usize) -> bool,
    ) -> Vec<CallSample> {
        (0..days)
            .flat_map(|d| {
                let raw = &raw;
                let hit = &hit;
                (0..per_day).map(move |i| CallSample {
                    raw_confidence: raw(i),
                    hit: hit(d, i),
                    day: 19_000 + d,
                })
            })
            .collect()
    }

    #[test]
    fn the_shipped_table_loads_and_claims_only_what_it_measured() {
        let c = Calibration::shipped().unwrap();
        assert!(!c.horizons.is_empty());
        for h in &c.horizons {
            assert_eq!(h.edge, h.hit_rate_ci95[0] > 0.5, "{h:?}");
            if !h.edge {
                assert!(h.hit_probability.iter().all(|p| *p == 0.5));
            }
            assert!(h.hit_probability.windows(2).all(|w| w[0] <= w[1]));
        }
    }

    #[test]
    fn a_coin_flip_history_shows_no_edge_and_calls_sideways() {
        // Half the calls of every day come true: no edge, whatever the raw confidence.
        let samples = calls(60, 24, |i| (i % 10) as f64 / 10.0, |_, i| i % 2 == 0);
        let cal = fit("1h", 3600, "test", &samples);
        assert!(!cal.edge);
        assert_eq!(cal.hit_rate, 0.5);
        assert!(cal.hit_rate_ci95[0] <= 0.5 && cal.hit_rate_ci95[1] >= 0.5);
        let call = cal.apply(Direction::Up, 0.9);
        assert_eq!(
            (call.direction, call.confidence, call.p_up),
            (Direction::Sideways, 0.0, 0.5)
        );
    }

    #[test]
    fn a_real_edge_is_kept_and_grows_with_raw_confidence() {
        // Weak calls hit 55 %, strong ones 80 % (per day, so the whole days agree).
        let samples = calls(
            60,
            20,
            |i| if i < 10 { 0.05 } else { 0.5 },
            |d, i| {
                if i < 10 {
                    (i as i64 + d) % 20 < 11
                } else {
                    (i as i64 + d) % 5 != 0
                }
            },
        );
        let cal = fit("24h", 86_400, "test", &samples);
        assert!(cal.edge, "{cal:?}");
        let weak = cal.hit_probability(0.05);
        let strong = cal.hit_probability(0.5);
        assert!((0.5..0.56).contains(&weak), "{weak}");
        assert!(strong > 0.7 && strong < 0.8, "shrunk towards 0.5: {strong}");
        let up = cal.apply(Direction::Up, 0.5);
        assert_eq!(up.direction, Direction::Up);
        assert!((up.p_up - strong).abs() < 1e-4);
        let down = cal.apply(Direction::Down, 0.5);
        assert!((down.p_up - (1.0 - strong)).abs() < 1e-4);
        assert_eq!(
            cal.apply(Direction::Sideways, 0.9).direction,
            Direction::Sideways
        );
    }

    #[test]
    fn a_short_or_contrarian_history_shows_no_edge() {
        let few_days = calls(5, 50, |_| 0.5, |_, i| i % 10 != 0);
        assert!(!fit("1h", 3600, "t", &few_days).edge, "90 % over 5 days");
        let wrong = calls(60, 20, |_| 0.5, |_, i| i % 10 == 0);
        let cal = fit("1h", 3600, "t", &wrong);
        assert!(!cal.edge);
        assert_eq!(
            cal.apply(Direction::Down, 0.5).direction,
            Direction::Sideways
        );
    }

    #[test]
    fn the_bootstrap_is_seeded_and_resamples_days() {
        let samples = calls(30, 10, |_| 0.3, |d, _| d % 3 != 0);
        let a = day_block_bootstrap(&samples, 500, 7).unwrap();
        assert_eq!(a, day_block_bootstrap(&samples, 500, 7).unwrap());
        assert_ne!(a, day_block_bootstrap(&samples, 500, 8).unwrap());
        assert!(a.0 < 2.0 / 3.0 && 2.0 / 3.0 < a.1, "{a:?}");
        // Whole days hit or miss together: the interval is as wide as 30 observations, not 300.
        assert!(a.1 - a.0 > 0.2, "{a:?}");
        assert_eq!(day_block_bootstrap(&[], 500, 7), None);
    }

    #[test]
    fn isotonic_pooling_makes_probabilities_non_decreasing() {
        let p = pool_adjacent_violators(&[(0.6, 1.0), (0.5, 1.0), (0.7, 2.0), (0.65, 2.0)]);
        assert_eq!(p.len(), 4);
        assert!((p[0] - 0.55).abs() < 1e-12 && (p[1] - 0.55).abs() < 1e-12);
        assert!((p[2] - 0.675).abs() < 1e-12 && (p[3] - 0.675).abs() < 1e-12);
    }

    #[test]
    fn nearest_horizon_on_a_log_scale() {
        let mut hs = Vec::new();
        for (label, secs) in [("1h", 3600), ("4h", 14_400), ("24h", 86_400)] {
            hs.push(HorizonCalibration::no_edge(label, secs, "t"));
        }
        let c = Calibration {
            made_by: "test".into(),
            horizons: hs,
        };
        assert_eq!(c.for_horizon("2m", 120).horizon, "1h");
        assert_eq!(c.for_horizon("2h", 7_200).horizon, "1h");
        assert_eq!(c.for_horizon("8h", 28_800).horizon, "4h");
        assert_eq!(c.for_horizon("7d", 604_800).horizon, "24h");
        let empty = Calibration {
            made_by: "none".into(),
            horizons: vec![],
        };
        assert!(!empty.for_horizon("1h", 3600).edge);
        assert!(Calibration::from_json(r#"{"made_by":"x","horizons":[{"horizon":"1h","horizon_seconds":3600,"fitted_on":"x","calls":1,"days":1,"hit_rate":0.9,"hit_rate_ci95":[0.6,1.0],"edge":true,"hit_probability":[0.6]}]}"#).is_err());
    }

    #[test]
    fn brier_scores_probabilities() {
        assert_eq!(brier([(0.5, true), (0.5, false)]), Some(0.25));
        assert_eq!(brier([(1.0, true), (0.0, false)]), Some(0.0));
        assert_eq!(brier(std::iter::empty()), None);
    }
}
