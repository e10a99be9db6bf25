//! The full per-article analysis: the seed's `analysis_results` document minus the storage
//! fields (`_id`, `article_id`, `analyzed_at`), which belong to whoever stores it.
//!
//! Everything here is a pure function of (title, body, symbols hint) and [`MODEL_VERSION`],
//! except `processing_time_ms`, which only [`Analyzer::analyze_timed`] fills in. The trend
//! prediction and quality metrics are transparent heuristics over the other outputs, with their
//! formulas documented on the functions that compute them: they are inputs for aggregation across
//! many articles, not calibrated forecasts.

use crate::aliases::SymbolAliases;
use crate::causal::{self, CausalSignal};
use crate::entities::{Entity, EntityTables, EntityType};
use crate::hash::round4;
use crate::sentiment::{Distribution, Label, Sentiment, SentimentModel};
use crate::text::words;
use crate::tokenize::split_sentences;
use crate::topics::{Topic, TopicTables, key_phrases};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Version of the whole analysis: bump the first part when any extractor or formula changes
/// output, the part after `+` is the sentiment weights' version.
pub const MODEL_VERSION: &str = "1.0.0+nlpsent-lr-2026.1";

/// `analysis_results.sentiment`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentimentSummary {
    pub label: Label,
    /// P(bullish) − P(bearish), −1..1.
    pub score: f64,
    /// Probability of the chosen label.
    pub confidence: f64,
    /// Sums to 1.
    pub distribution: Distribution,
}

/// `analysis_results.trend_prediction.direction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Direction {
    Up,
    Down,
    Sideways,
}

impl Direction {
    /// The seed's spelling, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "UP",
            Direction::Down => "DOWN",
            Direction::Sideways => "SIDEWAYS",
        }
    }
}

/// `analysis_results.trend_prediction`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendPrediction {
    pub direction: Direction,
    pub confidence: f64,
    /// "24h", "7d" or "30d".
    pub time_horizon: String,
    /// The evidence in plain words: sentiment, the words that drove it, causal statements,
    /// the asset and the topic.
    pub reasoning: String,
}

/// `analysis_results.quality_metrics`, each 0..1 (see [`quality`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityMetrics {
    pub text_quality: f64,
    pub information_density: f64,
    pub actionability: f64,
}

/// One analysed article, with the seed's field names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub model_version: String,
    /// Wall time of the analysis; 0 unless filled by [`Analyzer::analyze_timed`] or the caller.
    pub processing_time_ms: u64,
    pub sentiment: SentimentSummary,
    pub entities: Vec<Entity>,
    pub topics: Vec<Topic>,
    pub key_phrases: Vec<String>,
    pub causal_signals: Vec<CausalSignal>,
    pub trend_prediction: TrendPrediction,
    pub quality_metrics: QualityMetrics,
}

/// Characters of a title or body that are analysed. Normalized bodies are a few kB; a 5 MB page
/// of text must cost a bounded time, and its first 200 000 characters say what it is about.
pub const MAX_ANALYZED_CHARS: usize = 200_000;

fn truncate_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The analysis model: sentiment weights and extractor tables, built once and shared (it is
/// `Send + Sync` and holds no mutable state).
#[derive(Debug, Clone)]
pub struct Analyzer {
    sentiment: SentimentModel,
    entities: EntityTables,
    topics: TopicTables,
}

impl Default for Analyzer {
    fn default() -> Self {
        Self::new()
    }
}

impl Analyzer {
    /// With the normalizer's default alias table. Infallible: the weights are compiled in.
    pub fn new() -> Self {
        Self::with_aliases(&SymbolAliases::default_crypto())
    }

    /// With a configured alias table, so entities map to the same symbols the normalizer tags.
    pub fn with_aliases(aliases: &SymbolAliases) -> Self {
        Self {
            sentiment: SentimentModel::new(),
            entities: EntityTables::new(aliases),
            topics: TopicTables::new(),
        }
    }

    /// The sentiment scorer alone (sentence-level evaluation uses it).
    pub fn sentiment_model(&self) -> &SentimentModel {
        &self.sentiment
    }

    /// Analyses one article. `symbols_hint` (e.g. the normalizer's `symbols`) raises the
    /// relevance of those symbols' entities and names the asset when the text does not.
    /// Only the first [`MAX_ANALYZED_CHARS`] characters of title and body are read.
    pub fn analyze(&self, title: &str, body: &str, symbols_hint: &[String]) -> Analysis {
        let title = truncate_chars(title, MAX_ANALYZED_CHARS);
        let body = truncate_chars(body, MAX_ANALYZED_CHARS);
        let s = self.sentiment.score_article(title, body);
        let entities = self.entities.extract(title, body, symbols_hint);
        let topics = self.topics.extract(title, body);
        let key_phrases = key_phrases(title, body);
        let causal_signals = causal::extract(title, body);
        let quality_metrics = quality(
            title,
            body,
            &s,
            &entities,
            &topics,
            &causal_signals,
            symbols_hint,
        );
        let trend_prediction = trend(
            &s,
            &entities,
            &topics,
            &causal_signals,
            symbols_hint,
            title,
            body,
        );
        Analysis {
            model_version: MODEL_VERSION.to_string(),
            processing_time_ms: 0,
            sentiment: SentimentSummary {
                label: s.label,
                score: s.score,
                confidence: s.confidence,
                distribution: s.distribution,
            },
            entities,
            topics,
            key_phrases,
            causal_signals,
            trend_prediction,
            quality_metrics,
        }
    }

    /// [`Self::analyze`] with `processing_time_ms` measured.
    pub fn analyze_timed(&self, title: &str, body: &str, symbols_hint: &[String]) -> Analysis {
        let start = Instant::now();
        let mut a = self.analyze(title, body, symbols_hint);
        a.processing_time_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        a
    }
}

/// Words with at least one letter or digit.
fn word_count(text: &str) -> usize {
    words(text).len()
}

/// The article's main asset: the most relevant entity with a symbol, else the first hint.
fn main_asset(entities: &[Entity], hint: &[String]) -> Option<String> {
    entities
        .iter()
        .find(|e| e.symbol.is_some())
        .map(|e| format!("{} ({})", e.text, e.symbol.as_deref().unwrap_or_default()))
        .or_else(|| {
            hint.first()
                .map(|h| format!("{h} (from the caller's hint)"))
        })
}

/// Direction threshold on the combined signal: below it the article is no call either way.
pub const TREND_THRESHOLD: f64 = 0.15;

/// Trend for one article:
/// - combined = 0.7·sentiment score + 0.3·c when the text states price causes, where c is the
///   confidence-weighted mean of their directions (+1 increase, −1 decrease); else the score;
/// - UP if combined ≥ [`TREND_THRESHOLD`], DOWN if ≤ −threshold, else SIDEWAYS;
/// - confidence: UP/DOWN 0.4 + 0.5·min(1, |combined|/0.75); SIDEWAYS 0.3 + 0.5·P(neutral)·
///   (1 − |combined|/threshold); × 0.85 for texts under 30 words (little evidence);
/// - horizon: the most common causal horizon (short → 24h, medium → 7d, long → 30d; ties and
///   none → 24h).
fn trend(
    s: &Sentiment,
    entities: &[Entity],
    topics: &[Topic],
    causal: &[CausalSignal],
    hint: &[String],
    title: &str,
    body: &str,
) -> TrendPrediction {
    let (mut num, mut den) = (0.0, 0.0);
    for c in causal {
        if let Some(d) = c.price_direction() {
            num += d * c.confidence;
            den += c.confidence;
        }
    }
    let combined = if den > 0.0 {
        0.7 * s.score + 0.3 * num / den
    } else {
        s.score
    };
    let direction = if combined >= TREND_THRESHOLD {
        Direction::Up
    } else if combined <= -TREND_THRESHOLD {
        Direction::Down
    } else {
        Direction::Sideways
    };
    let mut confidence = match direction {
        Direction::Sideways => {
            0.3 + 0.5 * s.distribution.neutral * (1.0 - combined.abs() / TREND_THRESHOLD)
        }
        _ => 0.4 + 0.5 * (combined.abs() / 0.75).min(1.0),
    };
    if word_count(title) + word_count(body) < 30 {
        confidence *= 0.85;
    }
    let mut horizons = [0usize; 3];
    for c in causal {
        match c.time_horizon.as_str() {
            "long-term" => horizons[2] += 1,
            "medium-term" => horizons[1] += 1,
            _ => horizons[0] += 1,
        }
    }
    let time_horizon = if horizons[2] > horizons[0].max(horizons[1]) {
        "30d"
    } else if horizons[1] > horizons[0] {
        "7d"
    } else {
        "24h"
    };

    // Reasoning: plain words naming the evidence.
    let mut parts = vec![format!(
        "{} sentiment (score {:+.2}, confidence {:.2})",
        match s.label {
            Label::Bullish => "Bullish",
            Label::Bearish => "Bearish",
            Label::Neutral => "Neutral",
        },
        s.score,
        s.confidence
    )];
    let sign = match direction {
        Direction::Up => 1.0,
        Direction::Down => -1.0,
        Direction::Sideways => 0.0,
    };
    let cues: Vec<String> = s
        .evidence
        .iter()
        .filter(|e| sign == 0.0 || e.weight * sign > 0.0)
        .take(3)
        .map(|e| {
            if e.negated {
                format!("\"{}\" (negated)", e.text)
            } else {
                format!("\"{}\"", e.text)
            }
        })
        .collect();
    if !cues.is_empty() {
        parts.push(format!("driven by {}", cues.join(", ")));
    }
    let stated: Vec<String> = causal
        .iter()
        .filter(|c| c.price_direction().is_some())
        .take(2)
        .map(|c| format!("{} -> {}", c.cause, c.effect))
        .collect();
    if !stated.is_empty() {
        parts.push(format!("stated causes: {}", stated.join("; ")));
    }
    if let Some(asset) = main_asset(entities, hint) {
        parts.push(format!("about {asset}"));
    }
    if let Some(t) = topics.first() {
        parts.push(format!("main topic {}", t.name));
    }
    TrendPrediction {
        direction,
        confidence: round4(confidence.clamp(0.0, 1.0)),
        time_horizon: time_horizon.to_string(),
        reasoning: parts.join("; ") + ".",
    }
}

/// Quality metrics, each 0..1:
/// - `text_quality` = 0.4·min(1, words/150) + 0.3·shape + 0.3·clean, where shape is 1 for a mean
///   sentence length of 8–30 words (L/8 below, 30/L above) and clean is the share of ordinary
///   characters (letters, digits, whitespace, common punctuation) less the share of ALL-CAPS
///   words beyond 30%: short, run-on, shouting or garbled text scores low;
/// - `information_density` = 0.6·(1 − e^(−f/6)) + 0.4·variety, where f is facts per 100 words
///   (numbers + entity mentions + 2 per causal signal) and variety the distinct-word share of the
///   first 400 words;
/// - `actionability` = 0.35·(a tradable symbol is named or hinted) + 0.30·|sentiment score|
///   + 0.20·(a price cause is stated) + 0.15·(best topic score): how much a trader could act on.
fn quality(
    title: &str,
    body: &str,
    s: &Sentiment,
    entities: &[Entity],
    topics: &[Topic],
    causal: &[CausalSignal],
    hint: &[String],
) -> QualityMetrics {
    let ws: Vec<_> = words(title).into_iter().chain(words(body)).collect();
    let n = ws.len();
    let length = (n as f64 / 150.0).min(1.0);
    let sentences = split_sentences(body).len() + usize::from(!title.trim().is_empty());
    let mean_len = if sentences > 0 {
        n as f64 / sentences as f64
    } else {
        0.0
    };
    let shape = if mean_len <= 0.0 {
        0.0
    } else if mean_len < 8.0 {
        mean_len / 8.0
    } else if mean_len > 30.0 {
        30.0 / mean_len
    } else {
        1.0
    };
    let (mut total, mut ordinary) = (0usize, 0usize);
    for c in title.chars().chain(body.chars()) {
        total += 1;
        if c.is_alphanumeric()
            || c.is_whitespace()
            || ".,;:!?'\"()-%$€£/&\u{2019}\u{201c}\u{201d}\u{2013}\u{2014}".contains(c)
        {
            ordinary += 1;
        }
    }
    let caps = ws
        .iter()
        .filter(|w| w.text.len() > 3 && w.is_acronym())
        .count();
    let caps_share = if n > 0 { caps as f64 / n as f64 } else { 0.0 };
    let clean = if total > 0 {
        (ordinary as f64 / total as f64 - (caps_share - 0.3).max(0.0)).max(0.0)
    } else {
        0.0
    };
    let text_quality = 0.4 * length + 0.3 * shape + 0.3 * clean;

    let numbers = ws
        .iter()
        .filter(|w| w.text.bytes().any(|b| b.is_ascii_digit()))
        .count();
    let mentions: u32 = entities.iter().map(|e| e.count).sum();
    let facts = numbers as f64 + f64::from(mentions) + 2.0 * causal.len() as f64;
    let per_100 = if n > 0 { facts * 100.0 / n as f64 } else { 0.0 };
    let head: Vec<String> = ws.iter().take(400).map(|w| w.text.to_lowercase()).collect();
    let mut distinct = head.clone();
    distinct.sort();
    distinct.dedup();
    let variety = if head.is_empty() {
        0.0
    } else {
        distinct.len() as f64 / head.len() as f64
    };
    let information_density = 0.6 * (1.0 - (-per_100 / 6.0).exp()) + 0.4 * variety;

    let tradable = !hint.is_empty()
        || entities
            .iter()
            .any(|e| e.kind == EntityType::Cryptocurrency && e.symbol.is_some());
    let price_cause = causal.iter().any(|c| c.price_direction().is_some());
    let best_topic = topics.first().map(|t| t.score).unwrap_or(0.0);
    let actionability = 0.35 * f64::from(u8::from(tradable))
        + 0.30 * s.score.abs()
        + 0.20 * f64::from(u8::from(price_cause))
        + 0.15 * best_topic;

    QualityMetrics {
        text_quality: round4(text_quality.clamp(0.0, 1.0)),
        information_density: round4(information_density.clamp(0.0, 1.0)),
        actionability: round4(actionability.clamp(0.0, 1.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_is_cut_at_a_char_boundary_and_the_cut_bounds_the_work() {
        assert_eq!(truncate_chars("héllo", 2), "hé");
        assert_eq!(truncate_chars("abc", 10), "abc");
        let a = Analyzer::new();
        let sentence = "Bitcoin surges after record ETF inflows. ";
        let capped = sentence.repeat(MAX_ANALYZED_CHARS / sentence.len() + 1);
        let huge = capped.repeat(3);
        let x = a.analyze("t", &huge, &[]);
        let y = a.analyze("t", &capped, &[]);
        assert_eq!(x, y, "text past the cap is not read");
    }

    #[test]
    fn version_names_the_weights() {
        assert!(MODEL_VERSION.ends_with(SentimentModel::VERSION));
        assert_eq!(
            Analyzer::new().sentiment_model().loaded_version(),
            SentimentModel::VERSION
        );
    }

    #[test]
    fn empty_input_is_neutral_and_sideways() {
        let a = Analyzer::new().analyze("", "", &[]);
        assert_eq!(a.sentiment.label, Label::Neutral);
        assert_eq!(a.trend_prediction.direction, Direction::Sideways);
        assert!(a.entities.is_empty() && a.topics.is_empty() && a.causal_signals.is_empty());
        assert_eq!(a.quality_metrics.text_quality, 0.0);
    }

    #[test]
    fn seed_field_names() {
        let a = Analyzer::new().analyze(
            "Bitcoin surges after SEC approves spot ETFs",
            "BlackRock said inflows were strong.",
            &[],
        );
        let v = serde_json::to_value(&a).unwrap();
        for k in [
            "model_version",
            "processing_time_ms",
            "sentiment",
            "entities",
            "topics",
            "key_phrases",
            "causal_signals",
            "trend_prediction",
            "quality_metrics",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
        assert_eq!(v["sentiment"]["label"], "BULLISH");
        assert!(v["sentiment"]["distribution"]["bullish"].is_f64());
        assert_eq!(v["entities"][0]["type"], "CRYPTOCURRENCY");
        assert_eq!(v["entities"][0]["symbol"], "BTCUSDT");
        assert_eq!(v["trend_prediction"]["direction"], "UP");
        let back: Analysis = serde_json::from_value(v).unwrap();
        assert_eq!(back, a);
    }
}
