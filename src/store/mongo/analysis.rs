//! [`AnalysisStore`] on MongoDB: collections `analysis_results` and `trend_predictions` with the
//! seed's indexes, and the analysis queue on `articles` (claimed with `find_one_and_update`,
//! atomic per document, like raw pages).
//!
//! As in the other collections, the dates that are queried (`analyzed_at`, `prediction_time`,
//! `due_at`, `created_at`) are BSON dates; nested ones stay RFC 3339 strings. No
//! multi-document transaction (that needs a replica set): the unique index on
//! `analysis_results.article_id` makes completing an article twice harmless, exactly as the
//! unique `url_hash` does for articles.

use super::{
    Call, MongoDocumentStore, claim_oldest, count_of, from_bson_date, is_duplicate_key, mongo_err,
    parse_id, to_bson_date,
};
use crate::domain::Article;
use crate::store::contract::{check_accuracy, check_prediction, check_record};
use crate::store::{AnalysisCounts, AnalysisStore, StoreError};
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use mongodb::bson::{self, Bson, Document, doc, oid::ObjectId};
use mongodb::options::IndexOptions;
use mongodb::{Collection, IndexModel};
use std::collections::HashMap;
use std::time::Duration;
use tradepipe_model::analysis::Analysis;
use tradepipe_model::record::{ActualOutcome, AnalysisRecord, Evidence, TrendPredictionRecord};

const MAX_EVIDENCE: i64 = 20_000;

impl MongoDocumentStore {
    fn analyses(&self) -> Collection<Document> {
        self.database().collection("analysis_results")
    }

    fn predictions_coll(&self) -> Collection<Document> {
        self.database().collection("trend_predictions")
    }

    /// The seed's indexes on `analysis_results` and `trend_predictions`, plus the ones the
    /// queries here need (analysis queue, symbols, unique prediction per market time, due).
    pub(crate) fn analysis_index_models() -> [(&'static str, Vec<IndexModel>); 3] {
        fn index(keys: Document, name: &str, unique: bool) -> IndexModel {
            let options = IndexOptions::builder()
                .name(name.to_string())
                .unique(unique.then_some(true))
                .build();
            IndexModel::builder().keys(keys).options(options).build()
        }
        [
            (
                "analysis_results",
                vec![
                    index(doc! { "article_id": 1 }, "article_id_unique", true),
                    index(
                        doc! { "sentiment.label": 1, "analyzed_at": -1 },
                        "label_analyzed_at",
                        false,
                    ),
                    index(doc! { "entities.symbol": 1 }, "entities_symbol", false),
                    index(
                        doc! { "trend_prediction.direction": 1 },
                        "trend_direction",
                        false,
                    ),
                    index(doc! { "analyzed_at": -1 }, "analyzed_at_desc", false),
                    index(
                        doc! { "symbols": 1, "analyzed_at": 1 },
                        "symbols_analyzed_at",
                        false,
                    ),
                ],
            ),
            (
                "trend_predictions",
                vec![
                    index(
                        doc! { "symbol": 1, "prediction_time": -1 },
                        "symbol_prediction_time",
                        false,
                    ),
                    index(
                        doc! { "prediction_time": -1 },
                        "prediction_time_desc",
                        false,
                    ),
                    index(
                        doc! { "prediction.direction": 1, "prediction.confidence": -1 },
                        "direction_confidence",
                        false,
                    ),
                    index(
                        doc! { "symbol": 1, "time_horizon": 1, "prediction_time": 1 },
                        "symbol_horizon_time_unique",
                        true,
                    ),
                    index(
                        doc! { "symbol": 1, "scored_at": 1, "due_at": 1 },
                        "symbol_scored_due",
                        false,
                    ),
                ],
            ),
            (
                "articles",
                vec![index(
                    doc! { "analysis_status": 1, "crawled_at": 1 },
                    "analysis_status_crawled_at",
                    false,
                )],
            ),
        ]
    }

    pub(super) async fn prepare_analysis(&self) -> Result<(), StoreError> {
        for (collection, models) in Self::analysis_index_models() {
            self.database()
                .collection::<Document>(collection)
                .create_indexes(models)
                .await
                .map_err(|e| mongo_err(&format!("creating the indexes of {collection}"), e))?;
        }
        Ok(())
    }
}

fn to_document<T: serde::Serialize>(what: &str, v: &T) -> Result<Document, StoreError> {
    let mut d = bson::to_document(v)
        .map_err(|e| StoreError::Invalid(format!("serializing {what}: {e}")))?;
    d.remove("id");
    Ok(d)
}

/// Replaces a BSON date field by the RFC 3339 string chrono's serde reads.
fn date_to_text(d: &mut Document, field: &str, ctx: &str) -> Result<DateTime<Utc>, StoreError> {
    let t = from_bson_date(
        d.get_datetime(field)
            .map_err(|e| StoreError::corrupt(ctx, format!("{field}: {e}")))?
            .to_owned(),
    )?;
    d.insert(
        field,
        t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
    );
    Ok(t)
}

fn record_from(mut d: Document) -> Result<AnalysisRecord, StoreError> {
    const CTX: &str = "reading an analysis result";
    let id = d
        .get_object_id("_id")
        .map_err(|e| StoreError::corrupt(CTX, e.to_string()))?;
    let article = d
        .get_object_id("article_id")
        .map_err(|e| StoreError::corrupt(CTX, e.to_string()))?;
    let analyzed_at = from_bson_date(
        *d.get_datetime("analyzed_at")
            .map_err(|e| StoreError::corrupt(CTX, e.to_string()))?,
    )?;
    let symbols = d
        .get_array("symbols")
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    for f in ["_id", "article_id", "analyzed_at", "symbols"] {
        d.remove(f);
    }
    let analysis: Analysis =
        bson::from_document(d).map_err(|e| StoreError::corrupt(CTX, format!("{id}: {e}")))?;
    Ok(AnalysisRecord {
        id: id.to_hex(),
        article_id: article.to_hex(),
        symbols,
        analyzed_at,
        analysis,
    })
}

fn prediction_from(mut d: Document) -> Result<TrendPredictionRecord, StoreError> {
    const CTX: &str = "reading a trend prediction";
    let id = d
        .get_object_id("_id")
        .map_err(|e| StoreError::corrupt(CTX, e.to_string()))?;
    date_to_text(&mut d, "prediction_time", CTX)?;
    date_to_text(&mut d, "created_at", CTX)?;
    for f in ["_id", "due_at", "scored_at"] {
        d.remove(f);
    }
    let mut p: TrendPredictionRecord =
        bson::from_document(d).map_err(|e| StoreError::corrupt(CTX, format!("{id}: {e}")))?;
    p.id = id.to_hex();
    Ok(p)
}

impl MongoDocumentStore {
    async fn find_predictions(
        &self,
        filter: Document,
        sort: Document,
        limit: usize,
        ctx: &str,
    ) -> Result<Vec<TrendPredictionRecord>, StoreError> {
        self.predictions_coll()
            .find(filter)
            .sort(sort)
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .await
            .map_err(|e| mongo_err(ctx, e))?
            .try_collect::<Vec<Document>>()
            .await
            .map_err(|e| mongo_err(ctx, e))?
            .into_iter()
            .map(prediction_from)
            .collect()
    }
}

#[async_trait::async_trait]
impl AnalysisStore for MongoDocumentStore {
    async fn claim_articles_for_analysis(
        &self,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Article>, StoreError> {
        let now_ms = Utc::now().timestamp_millis();
        let now = bson::DateTime::from_millis(now_ms);
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let until = bson::DateTime::from_millis(now_ms.saturating_add(lease_ms));
        let filter = doc! { "$or": [
            { "analysis_status": "PENDING" },
            { "analysis_status": "PROCESSING", "analysis_lease_until": { "$lt": now } },
            { "analysis_status": "PROCESSING", "analysis_lease_until": null },
        ] };
        let update = doc! { "$set": {
            "analysis_status": "PROCESSING", "analysis_lease_until": until, "updated_at": now,
        } };
        claim_oldest(
            self.articles(),
            filter,
            update,
            limit,
            "claiming articles for analysis",
        )
        .await?
        .into_iter()
        .map(|a| a.into_domain())
        .collect()
    }

    /// Insert (unique on article_id), then mark the article: if the process dies between the
    /// two, the lease runs out, the article is analysed again, the insert hits the duplicate key
    /// and the article is marked COMPLETED then.
    async fn complete_analysis(&self, record: &AnalysisRecord) -> Result<bool, StoreError> {
        check_record(record)?;
        let article_id = record.article_id.as_str();
        let call = Call::on("article", article_id, "completing the analysis of")?;
        let oid = call.oid;
        call.exists(self.articles()).await?;
        let mut d = to_document("analysis result", &record.analysis)?;
        d.insert("_id", ObjectId::new());
        d.insert("article_id", oid);
        d.insert("symbols", record.symbols.clone());
        d.insert("analyzed_at", to_bson_date(record.analyzed_at));
        let inserted = match self.analyses().insert_one(&d).await {
            Ok(_) => true,
            Err(e) if is_duplicate_key(&e) => false,
            Err(e) => return Err(call.err()(e)),
        };
        self.articles()
            .update_one(
                doc! { "_id": oid },
                doc! {
                    "$set": { "analysis_status": "COMPLETED", "updated_at": bson::DateTime::now() },
                    "$unset": { "analysis_lease_until": "", "analysis_error": "" },
                },
            )
            .await
            .map_err(call.err())?;
        Ok(inserted)
    }

    async fn fail_analysis(&self, article_id: &str, error: &str) -> Result<(), StoreError> {
        let call = Call::on("article", article_id, "recording the analysis failure of")?;
        let res = self
            .articles()
            .update_one(
                doc! { "_id": call.oid, "analysis_status": { "$ne": "COMPLETED" } },
                doc! {
                    "$set": {
                        "analysis_status": "FAILED", "analysis_error": error,
                        "updated_at": bson::DateTime::now(),
                    },
                    "$unset": { "analysis_lease_until": "" },
                },
            )
            .await
            .map_err(call.err())?;
        if res.matched_count == 1 {
            return Ok(());
        }
        call.exists(self.articles()).await
    }

    async fn analysis_for_article(
        &self,
        article_id: &str,
    ) -> Result<Option<AnalysisRecord>, StoreError> {
        let Some(call) = Call::read("analysis of article", article_id) else {
            return Ok(None);
        };
        self.analyses()
            .find_one(doc! { "article_id": call.oid })
            .await
            .map_err(call.err())?
            .map(record_from)
            .transpose()
    }

    /// Three reads (analyses, their articles, the sources) joined here rather than with
    /// `$lookup`: plain finds on indexed keys, and the same result shape as PostgreSQL's join.
    async fn recent_evidence(
        &self,
        symbol: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<Evidence>, StoreError> {
        let ctx = format!("reading the analyses about {symbol}");
        let records: Vec<AnalysisRecord> = self
            .analyses()
            .find(doc! { "symbols": symbol, "analyzed_at": { "$gte": to_bson_date(since) } })
            .sort(doc! { "analyzed_at": 1, "article_id": 1 })
            .limit(MAX_EVIDENCE)
            .await
            .map_err(|e| mongo_err(&ctx, e))?
            .try_collect::<Vec<Document>>()
            .await
            .map_err(|e| mongo_err(&ctx, e))?
            .into_iter()
            .map(record_from)
            .collect::<Result<_, _>>()?;
        let ids: Vec<ObjectId> = records
            .iter()
            .filter_map(|r| parse_id(&r.article_id))
            .collect();
        let mut articles: HashMap<String, Article> = HashMap::new();
        let mut cursor = self
            .articles()
            .find(doc! { "_id": { "$in": ids } })
            .await
            .map_err(|e| mongo_err(&ctx, e))?;
        while let Some(a) = cursor.try_next().await.map_err(|e| mongo_err(&ctx, e))? {
            let a = a.into_domain()?;
            articles.insert(a.id.clone(), a);
        }
        let mut reliability: HashMap<String, f64> = HashMap::new();
        let names: Vec<&str> = articles.values().map(|a| a.source.name.as_str()).collect();
        let mut sources = self
            .database()
            .collection::<Document>("news_sources")
            .find(doc! { "name": { "$in": names } })
            .projection(doc! { "name": 1, "metadata.reliability_score": 1 })
            .await
            .map_err(|e| mongo_err(&ctx, e))?;
        while let Some(s) = sources.try_next().await.map_err(|e| mongo_err(&ctx, e))? {
            if let (Ok(name), Ok(meta)) = (s.get_str("name"), s.get_document("metadata")) {
                let r = meta.get_f64("reliability_score").unwrap_or(0.5);
                reliability.insert(name.to_string(), r);
            }
        }
        Ok(records
            .into_iter()
            .filter_map(|r| {
                let a = articles.get(&r.article_id)?;
                let relevance = r
                    .analysis
                    .entities
                    .iter()
                    .filter(|e| e.symbol.as_deref() == Some(symbol))
                    .map(|e| e.relevance)
                    .reduce(f64::max);
                Some(Evidence {
                    article_id: r.article_id.clone(),
                    title: a.title.clone(),
                    source_name: a.source.name.clone(),
                    reliability: reliability.get(&a.source.name).copied().unwrap_or(0.5),
                    published_at: a.published_at,
                    analyzed_at: r.analyzed_at,
                    sentiment: r.analysis.sentiment.clone(),
                    relevance,
                })
            })
            .collect())
    }

    async fn insert_prediction(
        &self,
        p: &TrendPredictionRecord,
    ) -> Result<Option<String>, StoreError> {
        check_prediction(p)?;
        let ctx = format!("storing the {} prediction for {}", p.time_horizon, p.symbol);
        let mut d = to_document("trend prediction", p)?;
        let id = ObjectId::new();
        d.insert("_id", id);
        d.insert("prediction_time", to_bson_date(p.prediction_time));
        d.insert("created_at", to_bson_date(p.created_at));
        d.insert("due_at", to_bson_date(p.due_at()));
        d.insert("scored_at", Bson::Null);
        match self.predictions_coll().insert_one(&d).await {
            Ok(_) => Ok(Some(id.to_hex())),
            Err(e) if is_duplicate_key(&e) => Ok(None),
            Err(e) => Err(mongo_err(&ctx, e)),
        }
    }

    async fn due_predictions(
        &self,
        symbol: &str,
        market_time: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<TrendPredictionRecord>, StoreError> {
        let ctx = format!("reading due predictions for {symbol}");
        self.find_predictions(
            doc! {
                "symbol": symbol, "scored_at": null,
                "due_at": { "$lte": to_bson_date(market_time) },
            },
            doc! { "due_at": 1, "_id": 1 },
            limit,
            &ctx,
        )
        .await
    }

    async fn score_prediction(
        &self,
        id: &str,
        outcome: &ActualOutcome,
        accuracy: f64,
    ) -> Result<bool, StoreError> {
        let call = Call::on("prediction", id, "scoring")?;
        check_accuracy(id, accuracy)?;
        let outcome = bson::to_bson(outcome)
            .map_err(|e| StoreError::Invalid(format!("serializing the outcome of {id}: {e}")))?;
        let res = self
            .predictions_coll()
            .update_one(
                doc! { "_id": call.oid, "scored_at": null },
                doc! { "$set": {
                    "actual_outcome": outcome, "accuracy_score": accuracy,
                    "scored_at": bson::DateTime::now(),
                } },
            )
            .await
            .map_err(call.err())?;
        if res.matched_count == 1 {
            return Ok(true);
        }
        call.exists(&self.predictions_coll()).await.map(|()| false)
    }

    async fn predictions(
        &self,
        symbol: &str,
        horizon: Option<&str>,
        scored_only: bool,
        limit: usize,
    ) -> Result<Vec<TrendPredictionRecord>, StoreError> {
        let mut filter = doc! { "symbol": symbol };
        if let Some(h) = horizon {
            filter.insert("time_horizon", h);
        }
        if scored_only {
            filter.insert("scored_at", doc! { "$ne": null });
        }
        let ctx = format!("reading predictions for {symbol}");
        self.find_predictions(
            filter,
            doc! { "prediction_time": -1, "_id": 1 },
            limit,
            &ctx,
        )
        .await
    }

    async fn analysis_counts(&self) -> Result<AnalysisCounts, StoreError> {
        const CTX: &str = "counting analysis documents";
        let groups: Vec<Document> = self
            .articles()
            .aggregate([doc! { "$group": { "_id": "$analysis_status", "n": { "$sum": 1 } } }])
            .await
            .map_err(|e| mongo_err(CTX, e))?
            .try_collect()
            .await
            .map_err(|e| mongo_err(CTX, e))?;
        let count = |c: Collection<Document>, filter: Document| async move {
            c.count_documents(filter)
                .await
                .map_err(|e| mongo_err(CTX, e))
        };
        let mut c = AnalysisCounts {
            results: count(self.analyses(), doc! {}).await?,
            predictions: count(self.predictions_coll(), doc! {}).await?,
            predictions_scored: count(
                self.predictions_coll(),
                doc! { "scored_at": { "$ne": null } },
            )
            .await?,
            ..AnalysisCounts::default()
        };
        for g in groups {
            let status = g.get_str("_id").unwrap_or("(not a string)");
            c.set_status(status, count_of(&g, CTX)?, CTX)?;
        }
        Ok(c)
    }
}
