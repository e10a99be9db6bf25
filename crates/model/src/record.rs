//! Stored analysis documents: one `analysis_results` record per article and the per-symbol
//! `trend_predictions`, with the seed's field names. Plain data; the arithmetic that produces
//! predictions and scores them lives in [`crate::predict`].

use crate::analysis::{Analysis, Direction, SentimentSummary};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// `analysis_results`: the model's output for one article plus the storage fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisRecord {
    /// The store's id; empty before insert.
    #[serde(default)]
    pub id: String,
    pub article_id: String,
    /// Not in the seed: the article's symbols together with its entities' symbols, sorted and
    /// unique, so "analyses about BTCUSDT" is one indexed lookup in either store.
    #[serde(default)]
    pub symbols: Vec<String>,
    pub analyzed_at: DateTime<Utc>,
    #[serde(flatten)]
    pub analysis: Analysis,
}

impl AnalysisRecord {
    /// `article_symbols` are the symbols the normalizer found in the article itself.
    pub fn new(
        article_id: &str,
        article_symbols: &[String],
        analysis: Analysis,
        analyzed_at: DateTime<Utc>,
    ) -> Self {
        let mut symbols: Vec<String> = article_symbols
            .iter()
            .cloned()
            .chain(analysis.entities.iter().filter_map(|e| e.symbol.clone()))
            .collect();
        symbols.sort();
        symbols.dedup();
        AnalysisRecord {
            id: String::new(),
            article_id: article_id.to_string(),
            symbols,
            analyzed_at,
            analysis,
        }
    }
}

/// One analysed article as the predictor sees it: what it said and how much to trust it.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    pub article_id: String,
    pub title: String,
    pub source_name: String,
    /// The source's `metadata.reliability_score` (0..1); 0.5 when the source is unknown.
    pub reliability: f64,
    pub published_at: Option<DateTime<Utc>>,
    pub analyzed_at: DateTime<Utc>,
    pub sentiment: SentimentSummary,
    /// Relevance (0..1) of the symbol's entity in the article; `None` when the article is tagged
    /// with the symbol but no entity names it.
    pub relevance: Option<f64>,
}

/// `trend_predictions.prediction.price_target`: exact decimals at the base price's scale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceTarget {
    pub low: Decimal,
    pub mid: Decimal,
    pub high: Decimal,
}

/// `trend_predictions.prediction`, plus what the scorer needs to judge it later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionCore {
    pub direction: Direction,
    pub confidence: f64,
    pub price_target: PriceTarget,
    /// Close of the 1m candle ending at `prediction_time`.
    pub base_price: Decimal,
    /// Realised volatility over the horizon (standard deviation of the log return), from the
    /// stored 1m candles.
    pub horizon_volatility: f64,
    /// A move smaller than this (relative, e.g. 0.002 = 0.2 %) counts as SIDEWAYS, both for
    /// the prediction and for its outcome.
    pub sideways_band: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContributingArticle {
    pub article_id: String,
    pub title: String,
    /// Share of the prediction (weights of one prediction sum to 1).
    pub weight: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SentimentCounts {
    pub bullish_count: u32,
    pub bearish_count: u32,
    pub neutral_count: u32,
    /// Weighted mean sentiment score (−1..1); 0 without articles.
    pub average_score: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMetadata {
    pub version: String,
    pub features_used: Vec<String>,
}

/// `trend_predictions.actual_outcome`: what the price did over the horizon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActualOutcome {
    pub direction: Direction,
    /// Close of the last 1m candle ending at or before `prediction_time + horizon`.
    pub price: Decimal,
    /// Relative change from the base price (0.01 = +1 %).
    pub change: f64,
    pub within_target: bool,
    /// Market time of the price used (end of its 1m candle).
    pub price_time: DateTime<Utc>,
    pub evaluated_at: DateTime<Utc>,
}

/// One `trend_predictions` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendPredictionRecord {
    #[serde(default)]
    pub id: String,
    pub symbol: String,
    /// Market time the prediction is anchored at (see migration 0006).
    pub prediction_time: DateTime<Utc>,
    /// "24h", "15m", ...: the seed's text form of `horizon_seconds`.
    pub time_horizon: String,
    pub horizon_seconds: i64,
    pub prediction: PredictionCore,
    pub contributing_articles: Vec<ContributingArticle>,
    pub sentiment_summary: SentimentCounts,
    pub reasoning: String,
    pub model_metadata: ModelMetadata,
    pub actual_outcome: Option<ActualOutcome>,
    pub accuracy_score: Option<f64>,
    pub created_at: DateTime<Utc>,
}

impl TrendPredictionRecord {
    /// When the horizon has passed (in market time).
    pub fn due_at(&self) -> DateTime<Utc> {
        self.prediction_time + chrono::Duration::seconds(self.horizon_seconds)
    }
}
