//! [`AnalysisStore`] on PostgreSQL: `content.analysis_results` and `content.trend_predictions`
//! from `migrations/0006_analysis.sql`, and the analysis queue on `content.articles`.
//!
//! Documents are stored whole in `doc` (JSONB) and read back from it; the columns beside it are
//! projections for the seed's indexes and for the queries here. The article's `doc` carries an
//! `analysis_status` too, kept equal to the column by every update here.
//!
//! Three reads tolerate lag and go through the [`super::ReadRouter`] (a read replica when one
//! is configured): the evidence a prediction weighs (hours of analyses; one a replica lacks is
//! weighed next round), the due predictions to score (one a replica does not show yet is scored
//! next round; scoring itself is an update on the primary that skips what is already scored),
//! and the counts. The hit rate reads the scores this round just wrote, so it stays on the
//! primary, as do the claims and everything that writes.

use super::{Call, PgDocumentStore, pg_err};
use crate::domain::{Article, ProcessingStatus};
use crate::store::contract::{check_accuracy, check_prediction, check_record};
use crate::store::{AnalysisCounts, AnalysisStore, StoreError};
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use std::time::Duration;
use tradepipe_model::analysis::SentimentSummary;
use tradepipe_model::record::{ActualOutcome, AnalysisRecord, Evidence, TrendPredictionRecord};

/// Upper bound on the evidence one prediction reads: a day of news for one symbol is far below
/// it; a flood must not make the predictor allocate without bound.
const MAX_EVIDENCE: i64 = 20_000;

fn limit_i64(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn to_doc<T: serde::Serialize>(what: &str, value: &T) -> Result<serde_json::Value, StoreError> {
    let mut v = serde_json::to_value(value)
        .map_err(|e| StoreError::Invalid(format!("serializing {what}: {e}")))?;
    if let Some(obj) = v.as_object_mut() {
        obj.remove("id");
    }
    Ok(v)
}

fn prediction_from(
    (id, Json(doc)): (String, Json<serde_json::Value>),
) -> Result<TrendPredictionRecord, StoreError> {
    let mut p: TrendPredictionRecord = serde_json::from_value(doc).map_err(|e| {
        StoreError::corrupt(
            "reading a trend prediction",
            format!("prediction {id}: {e}"),
        )
    })?;
    p.id = id;
    Ok(p)
}

#[async_trait::async_trait]
impl AnalysisStore for PgDocumentStore {
    /// Same claim as the normalizer's on raw articles: one statement, rows locked with
    /// `FOR UPDATE SKIP LOCKED`, so concurrent claimers skip each other's rows.
    async fn claim_articles_for_analysis(
        &self,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Article>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows: Vec<(String, Json<Article>)> = sqlx::query_as(
            "UPDATE content.articles
             SET analysis_status = 'PROCESSING',
                 analysis_lease_until = now() + make_interval(secs => $2),
                 doc = jsonb_set(doc, '{analysis_status}', '\"PROCESSING\"')
             WHERE id = ANY(ARRAY(
                 SELECT id FROM content.articles
                 WHERE analysis_status = 'PENDING'
                    OR (analysis_status = 'PROCESSING'
                        AND (analysis_lease_until IS NULL OR analysis_lease_until < now()))
                 ORDER BY crawled_at, id
                 LIMIT $1
                 FOR UPDATE SKIP LOCKED))
             RETURNING id::text, doc",
        )
        .bind(limit_i64(limit))
        .bind(lease.as_secs_f64())
        .fetch_all(self.pool())
        .await
        .map_err(|e| pg_err("claiming articles for analysis", e))?;
        let mut claimed: Vec<Article> = rows
            .into_iter()
            .map(|(id, Json(mut a))| {
                a.id = id;
                a.analysis_status = ProcessingStatus::Processing;
                a
            })
            .collect();
        claimed.sort_by(|a, b| (a.crawled_at, &a.id).cmp(&(b.crawled_at, &b.id)));
        Ok(claimed)
    }

    async fn complete_analysis(&self, record: &AnalysisRecord) -> Result<bool, StoreError> {
        check_record(record)?;
        let article_id = record.article_id.as_str();
        let call = Call::on("article", article_id, "completing the analysis of")?;
        let doc = to_doc("analysis result", record)?;
        let a = &record.analysis;
        let mut tx = self.pool().begin().await.map_err(call.err())?;
        // Lock the article first: a second worker completing it waits, then finds the result.
        let exists: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM content.articles WHERE id = $1::uuid FOR UPDATE")
                .bind(article_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(call.err())?;
        call.found(exists)?;
        let inserted = sqlx::query(
            "INSERT INTO content.analysis_results
                (article_id, model_version, analyzed_at, processing_time_ms, sentiment_label,
                 sentiment_score, trend_direction, symbols, doc)
             VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (article_id) DO NOTHING",
        )
        .bind(article_id)
        .bind(&a.model_version)
        .bind(record.analyzed_at)
        .bind(i64::try_from(a.processing_time_ms).unwrap_or(i64::MAX))
        .bind(a.sentiment.label.as_str())
        .bind(a.sentiment.score)
        .bind(a.trend_prediction.direction.as_str())
        .bind(&record.symbols)
        .bind(Json(&doc))
        .execute(&mut *tx)
        .await
        .map_err(call.err())?
        .rows_affected()
            == 1;
        // Either way the article has a result now, so it is COMPLETED.
        sqlx::query(
            "UPDATE content.articles
             SET analysis_status = 'COMPLETED', analysis_lease_until = NULL, analysis_error = NULL,
                 doc = jsonb_set(doc, '{analysis_status}', '\"COMPLETED\"')
             WHERE id = $1::uuid",
        )
        .bind(article_id)
        .execute(&mut *tx)
        .await
        .map_err(call.err())?;
        tx.commit().await.map_err(call.err())?;
        Ok(inserted)
    }

    async fn fail_analysis(&self, article_id: &str, error: &str) -> Result<(), StoreError> {
        let call = Call::on("article", article_id, "recording the analysis failure of")?;
        let exists: Option<String> = sqlx::query_scalar(
            "WITH upd AS (
                 UPDATE content.articles
                 SET analysis_status = 'FAILED', analysis_lease_until = NULL, analysis_error = $2,
                     doc = jsonb_set(doc, '{analysis_status}', '\"FAILED\"')
                 WHERE id = $1::uuid AND analysis_status <> 'COMPLETED'
                 RETURNING id)
             SELECT analysis_status FROM content.articles WHERE id = $1::uuid",
        )
        .bind(article_id)
        .bind(error)
        .fetch_optional(self.pool())
        .await
        .map_err(call.err())?;
        call.found(exists).map(drop)
    }

    async fn analysis_for_article(
        &self,
        article_id: &str,
    ) -> Result<Option<AnalysisRecord>, StoreError> {
        let Some(call) = Call::read("analysis of article", article_id) else {
            return Ok(None);
        };
        let row: Option<(String, Json<serde_json::Value>)> = sqlx::query_as(
            "SELECT id::text, doc FROM content.analysis_results WHERE article_id = $1::uuid",
        )
        .bind(article_id)
        .fetch_optional(self.pool())
        .await
        .map_err(call.err())?;
        row.map(|(id, Json(doc))| {
            let mut r: AnalysisRecord = serde_json::from_value(doc)
                .map_err(|e| StoreError::corrupt(&call.context, e.to_string()))?;
            r.id = id;
            Ok(r)
        })
        .transpose()
    }

    async fn recent_evidence(
        &self,
        symbol: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<Evidence>, StoreError> {
        let ctx = format!("reading the analyses about {symbol}");
        type Row = (
            String,
            String,
            String,
            Option<DateTime<Utc>>,
            DateTime<Utc>,
            Json<SentimentSummary>,
            Option<f64>,
            f64,
        );
        let rows: Vec<Row> = self
            .reads()
            .read(|pool| async move {
                sqlx::query_as(
                    "SELECT a.id::text, a.title, a.source_name, a.published_at, r.analyzed_at,
                            r.doc->'sentiment',
                            (SELECT max((e->>'relevance')::float8)
                               FROM jsonb_array_elements(r.doc->'entities') e
                              WHERE e->>'symbol' = $1),
                            COALESCE((s.metadata->>'reliability_score')::float8, 0.5)
                     FROM content.analysis_results r
                     JOIN content.articles a ON a.id = r.article_id
                     LEFT JOIN content.news_sources s ON s.name = a.source_name
                     WHERE r.analyzed_at >= $2
                       AND r.symbols @> ARRAY[$1]::varchar[]
                     ORDER BY r.analyzed_at, a.id
                     LIMIT $3",
                )
                .bind(symbol)
                .bind(since)
                .bind(MAX_EVIDENCE)
                .fetch_all(&pool)
                .await
            })
            .await
            .map_err(|e| pg_err(&ctx, e))?;
        Ok(rows
            .into_iter()
            .map(
                |(
                    article_id,
                    title,
                    source_name,
                    published_at,
                    analyzed_at,
                    Json(s),
                    rel,
                    reliability,
                )| {
                    Evidence {
                        article_id,
                        title,
                        source_name,
                        reliability,
                        published_at,
                        analyzed_at,
                        sentiment: s,
                        relevance: rel,
                    }
                },
            )
            .collect())
    }

    async fn insert_prediction(
        &self,
        p: &TrendPredictionRecord,
    ) -> Result<Option<String>, StoreError> {
        check_prediction(p)?;
        let ctx = format!("storing the {} prediction for {}", p.time_horizon, p.symbol);
        let doc = to_doc("trend prediction", p)?;
        sqlx::query_scalar(
            "INSERT INTO content.trend_predictions
                (symbol, prediction_time, time_horizon, horizon_seconds, due_at, direction,
                 confidence, doc, created_at)
             VALUES ($1, $2, $3, $4, $2 + make_interval(secs => $4::double precision), $5, $6, $7, $8)
             ON CONFLICT (symbol, time_horizon, prediction_time) DO NOTHING
             RETURNING id::text",
        )
        .bind(&p.symbol)
        .bind(p.prediction_time)
        .bind(&p.time_horizon)
        .bind(p.horizon_seconds)
        .bind(p.prediction.direction.as_str())
        .bind(p.prediction.confidence)
        .bind(Json(&doc))
        .bind(p.created_at)
        .fetch_optional(self.pool())
        .await
        .map_err(|e| pg_err(&ctx, e))
    }

    async fn due_predictions(
        &self,
        symbol: &str,
        market_time: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<TrendPredictionRecord>, StoreError> {
        let rows: Vec<(String, Json<serde_json::Value>)> = self
            .reads()
            .read(|pool| async move {
                sqlx::query_as(
                    "SELECT id::text, doc FROM content.trend_predictions
                     WHERE symbol = $1 AND scored_at IS NULL AND due_at <= $2
                     ORDER BY due_at, id LIMIT $3",
                )
                .bind(symbol)
                .bind(market_time)
                .bind(limit_i64(limit))
                .fetch_all(&pool)
                .await
            })
            .await
            .map_err(|e| pg_err(format!("reading due predictions for {symbol}"), e))?;
        rows.into_iter().map(prediction_from).collect()
    }

    async fn score_prediction(
        &self,
        id: &str,
        outcome: &ActualOutcome,
        accuracy: f64,
    ) -> Result<bool, StoreError> {
        let call = Call::on("prediction", id, "scoring")?;
        check_accuracy(id, accuracy)?;
        let outcome = serde_json::to_value(outcome)
            .map_err(|e| StoreError::Invalid(format!("serializing the outcome of {id}: {e}")))?;
        let (updated, exists): (bool, bool) = sqlx::query_as(
            "WITH upd AS (
                 UPDATE content.trend_predictions
                 SET accuracy_score = $2, scored_at = now(),
                     doc = doc || jsonb_build_object('actual_outcome', $3::jsonb,
                                                     'accuracy_score', $2)
                 WHERE id = $1::uuid AND scored_at IS NULL
                 RETURNING id)
             SELECT EXISTS (SELECT 1 FROM upd),
                    EXISTS (SELECT 1 FROM content.trend_predictions WHERE id = $1::uuid)",
        )
        .bind(id)
        .bind(accuracy)
        .bind(Json(&outcome))
        .fetch_one(self.pool())
        .await
        .map_err(call.err())?;
        if !exists {
            return Err(call.not_found());
        }
        Ok(updated)
    }

    async fn predictions(
        &self,
        symbol: &str,
        horizon: Option<&str>,
        scored_only: bool,
        limit: usize,
    ) -> Result<Vec<TrendPredictionRecord>, StoreError> {
        let rows: Vec<(String, Json<serde_json::Value>)> = sqlx::query_as(
            "SELECT id::text, doc FROM content.trend_predictions
             WHERE symbol = $1
               AND ($2::text IS NULL OR time_horizon = $2)
               AND (NOT $3 OR scored_at IS NOT NULL)
             ORDER BY prediction_time DESC, id LIMIT $4",
        )
        .bind(symbol)
        .bind(horizon)
        .bind(scored_only)
        .bind(limit_i64(limit))
        .fetch_all(self.pool())
        .await
        .map_err(|e| pg_err(format!("reading predictions for {symbol}"), e))?;
        rows.into_iter().map(prediction_from).collect()
    }

    async fn analysis_counts(&self) -> Result<AnalysisCounts, StoreError> {
        const CTX: &str = "counting analysis documents";
        type Totals = (i64, i64, i64);
        let (rows, (results, predictions, scored)): (Vec<(String, i64)>, Totals) = self
            .reads()
            .read(|pool| async move {
                let rows = sqlx::query_as(
                    "SELECT analysis_status, count(*) FROM content.articles
                     GROUP BY analysis_status",
                )
                .fetch_all(&pool)
                .await?;
                let totals = sqlx::query_as(
                    "SELECT (SELECT count(*) FROM content.analysis_results),
                            (SELECT count(*) FROM content.trend_predictions),
                            (SELECT count(*) FROM content.trend_predictions
                              WHERE scored_at IS NOT NULL)",
                )
                .fetch_one(&pool)
                .await?;
                Ok((rows, totals))
            })
            .await
            .map_err(|e| pg_err(CTX, e))?;
        let mut c = AnalysisCounts {
            results: results.unsigned_abs(),
            predictions: predictions.unsigned_abs(),
            predictions_scored: scored.unsigned_abs(),
            ..AnalysisCounts::default()
        };
        for (status, n) in rows {
            c.set_status(&status, n.unsigned_abs(), CTX)?;
        }
        Ok(c)
    }
}
