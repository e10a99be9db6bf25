//! The analysis side of the document store: the article analysis queue, `analysis_results` and
//! `trend_predictions`. A trait of its own (beside [`super::documents::DocumentStore`]) so the
//! SentimentActor and PredictionActor see only what they use; both document stores implement
//! it, held to one conformance suite (`tests/documents_conformance.rs`).
//!
//! The articles table/collection is the queue, as raw articles are the normalizer's: an article
//! is claimed (analysis_status PENDING -> PROCESSING with a lease), and completing it stores the
//! result and marks it COMPLETED in one step. Results are unique per article, so an article whose
//! lease ran out under a slow worker is still analysed into one result, never two.

use super::documents::{DocError, DocumentStore};
use crate::domain::Article;
use chrono::{DateTime, Utc};
use std::time::Duration;
use tradepipe_model::record::{ActualOutcome, AnalysisRecord, Evidence, TrendPredictionRecord};

#[async_trait::async_trait]
pub trait AnalysisStore: Send + Sync + 'static {
    /// Claims up to `limit` articles whose analysis is PENDING, or PROCESSING with an expired
    /// lease, oldest first, marking them PROCESSING until now + `lease`.
    async fn claim_articles_for_analysis(
        &self,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Article>, DocError>;
    /// Stores the result and marks the article COMPLETED, atomically. Returns `false` (and
    /// changes nothing) when the article already has a result: it was analysed once already.
    async fn complete_analysis(&self, record: &AnalysisRecord) -> Result<bool, DocError>;
    /// Marks the article FAILED with the error (not retried: the analysis is deterministic).
    /// An article that is already COMPLETED stays so.
    async fn fail_analysis(&self, article_id: &str, error: &str) -> Result<(), DocError>;
    async fn analysis_for_article(
        &self,
        article_id: &str,
    ) -> Result<Option<AnalysisRecord>, DocError>;
    /// Analyses stored at or after `since` of articles tagged with `symbol` or naming it in an
    /// entity, with their source's reliability.
    async fn recent_evidence(
        &self,
        symbol: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<Evidence>, DocError>;

    /// Inserts a prediction; `None` when one for the same (symbol, time_horizon,
    /// prediction_time) exists (no new market data since the last one).
    async fn insert_prediction(
        &self,
        p: &TrendPredictionRecord,
    ) -> Result<Option<String>, DocError>;
    /// Unscored predictions whose horizon ended at or before `market_time` for their symbol
    /// (`due_at <= market_time`), oldest first.
    async fn due_predictions(
        &self,
        symbol: &str,
        market_time: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<TrendPredictionRecord>, DocError>;
    /// Fills `actual_outcome` and `accuracy_score` once: `false` when it was already scored.
    async fn score_prediction(
        &self,
        id: &str,
        outcome: &ActualOutcome,
        accuracy: f64,
    ) -> Result<bool, DocError>;
    /// The newest predictions of a symbol (all horizons when `horizon` is `None`), newest first;
    /// with `scored_only` just those with an outcome.
    async fn predictions(
        &self,
        symbol: &str,
        horizon: Option<&str>,
        scored_only: bool,
        limit: usize,
    ) -> Result<Vec<TrendPredictionRecord>, DocError>;
    async fn analysis_counts(&self) -> Result<AnalysisCounts, DocError>;
}

/// Articles per analysis status and stored documents (for tests, metrics and the progress line).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnalysisCounts {
    pub pending: u64,
    pub processing: u64,
    pub completed: u64,
    pub failed: u64,
    pub results: u64,
    pub predictions: u64,
    pub predictions_scored: u64,
}

/// Both stores in one handle: the news pipeline's and the analysis pipeline's views of the same
/// backend.
pub trait FullDocumentStore: DocumentStore + AnalysisStore {}
impl<T: DocumentStore + AnalysisStore> FullDocumentStore for T {}

/// Analysis results must name their article and come from a known model; checked the same way
/// by every store before anything is written.
pub(crate) fn check_record(record: &AnalysisRecord) -> Result<(), DocError> {
    if record.article_id.is_empty() {
        return Err(DocError::Invalid(
            "analysis result without an article id".into(),
        ));
    }
    if record.analysis.model_version.is_empty() {
        return Err(DocError::Invalid(format!(
            "analysis of article {} has no model_version",
            record.article_id
        )));
    }
    let score = record.analysis.sentiment.score;
    if !score.is_finite() || !(-1.0..=1.0).contains(&score) {
        return Err(DocError::Invalid(format!(
            "analysis of article {}: sentiment score {score} outside -1..1",
            record.article_id
        )));
    }
    Ok(())
}

/// An accuracy score is a share: 0..1.
pub(crate) fn check_accuracy(id: &str, accuracy: f64) -> Result<(), DocError> {
    if !accuracy.is_finite() || !(0.0..=1.0).contains(&accuracy) {
        return Err(DocError::Invalid(format!(
            "accuracy {accuracy} of prediction {id} outside 0..1"
        )));
    }
    Ok(())
}

impl AnalysisCounts {
    /// Records `n` articles with analysis status `status` (as stored); an unknown status is an
    /// error naming `context`.
    pub(crate) fn set_status(
        &mut self,
        status: &str,
        n: u64,
        context: &str,
    ) -> Result<(), DocError> {
        let slots = [
            &mut self.pending,
            &mut self.processing,
            &mut self.completed,
            &mut self.failed,
        ];
        *super::documents::status_slot(slots, status, "analysis_status", context)? = n;
        Ok(())
    }
}

pub(crate) fn check_prediction(p: &TrendPredictionRecord) -> Result<(), DocError> {
    if p.symbol.is_empty() || p.horizon_seconds <= 0 {
        return Err(DocError::Invalid(format!(
            "prediction needs a symbol and a positive horizon (got {:?}, {} s)",
            p.symbol, p.horizon_seconds
        )));
    }
    let c = p.prediction.confidence;
    if !c.is_finite() || !(0.0..=1.0).contains(&c) {
        return Err(DocError::Invalid(format!(
            "prediction for {}: confidence {c} outside 0..1",
            p.symbol
        )));
    }
    Ok(())
}
