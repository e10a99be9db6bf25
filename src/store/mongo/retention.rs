//! MongoDB side of the data lifecycle (document backend `mongodb`). Where the seed defines a TTL
//! index (raw_articles.crawled_at 90 days, sessions.created_at 24 hours) MongoDB expires the
//! documents itself and the pass only makes sure the index exists; elsewhere (articles, analysis
//! results) it deletes in the same bounded batches as on PostgreSQL.
//!
//! Not exercised against a server here (none can run on the build machines): it compiles, and
//! the policies it serves are delete-only by default. Archiving from MongoDB is not implemented;
//! the configuration refuses `archive = true` for document policies on this backend.

use super::{mongo_err, to_bson_date};
use crate::store::{ExportedRow, Resolved, RowStore, RowTarget, RowVersion, StoreError};
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::IndexOptions;
use mongodb::{Database, IndexModel};
use std::time::Duration;

pub struct MongoRetentionStore {
    db: Database,
}

impl MongoRetentionStore {
    pub fn new(db: Database) -> Self {
        MongoRetentionStore { db }
    }

    /// The seed's session TTL index (`sessions.created_at`); raw_articles' TTL index is created
    /// by the document store's `prepare`.
    pub(crate) async fn ensure_ttl_indexes(
        &self,
        sessions_ttl: Duration,
    ) -> Result<(), StoreError> {
        let model = IndexModel::builder()
            .keys(doc! { "created_at": 1 })
            .options(
                IndexOptions::builder()
                    .name("created_at_ttl".to_string())
                    .expire_after(sessions_ttl)
                    .build(),
            )
            .build();
        self.db
            .collection::<Document>("sessions")
            .create_index(model)
            .await
            .map(|_| ())
            .map_err(|e| mongo_err("creating the sessions TTL index", e))
    }

    /// Documents older than `before` by the resolved time field (or its fallback when unset).
    fn older_than(r: &Resolved, before: DateTime<Utc>) -> Document {
        let before = to_bson_date(before);
        match r.target.time_fallback {
            Some(fb) => doc! { "$or": [
                { &r.time_expr: { "$lt": before } },
                { &r.time_expr: null, fb: { "$lt": before } },
            ] },
            None => doc! { &r.time_expr: { "$lt": before } },
        }
    }

    fn unsupported(what: &str) -> StoreError {
        StoreError::Unsupported(format!(
            "{what} is not implemented for MongoDB (document policies there are delete-only)"
        ))
    }
}

#[async_trait::async_trait]
impl RowStore for MongoRetentionStore {
    fn backend(&self) -> &'static str {
        "mongodb"
    }

    fn managed_by_ttl(&self, target: &RowTarget) -> Option<String> {
        (target.collection() == "raw_articles")
            .then(|| "MongoDB's TTL index raw_articles.crawled_at_ttl expires them".to_string())
    }

    async fn resolve(&self, target: &RowTarget) -> Result<Option<Resolved>, StoreError> {
        let names = self
            .db
            .list_collection_names()
            .filter(doc! { "name": target.collection() })
            .await
            .map_err(|e| mongo_err("listing collections", e))?;
        if names.is_empty() {
            return Ok(None);
        }
        let Some(time) = target.time_columns.first() else {
            return Err(StoreError::Unsupported(format!(
                "{} names no time field",
                target.table
            )));
        };
        Ok(Some(Resolved {
            target: target.clone(),
            time_expr: (*time).to_string(),
            key_column: "_id".into(),
            key_type: "ObjectId".into(),
            generated: Vec::new(),
            key_time: None,
            source: None,
        }))
    }

    async fn count_before(&self, r: &Resolved, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.db
            .collection::<Document>(r.target.collection())
            .count_documents(Self::older_than(r, before))
            .await
            .map_err(|e| mongo_err("counting old documents", e))
    }

    async fn days_before(
        &self,
        _r: &Resolved,
        _before: DateTime<Utc>,
    ) -> Result<Vec<chrono::NaiveDate>, StoreError> {
        Err(Self::unsupported("archiving"))
    }

    async fn export(
        &self,
        _r: &Resolved,
        _from: DateTime<Utc>,
        _to: DateTime<Utc>,
        _after: Option<&ExportedRow>,
        _limit: usize,
    ) -> Result<Vec<ExportedRow>, StoreError> {
        Err(Self::unsupported("archiving"))
    }

    async fn delete_versions(
        &self,
        _r: &Resolved,
        _rows: &[RowVersion],
    ) -> Result<u64, StoreError> {
        Err(Self::unsupported("archiving"))
    }

    /// Finds at most `limit` ids, then deletes exactly those: one bounded delete, like the
    /// PostgreSQL store's.
    async fn delete_before(
        &self,
        r: &Resolved,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<u64, StoreError> {
        let coll = self.db.collection::<Document>(r.target.collection());
        let ids: Vec<Bson> = coll
            .find(Self::older_than(r, before))
            .projection(doc! { "_id": 1 })
            .limit(limit as i64)
            .await
            .map_err(|e| mongo_err("finding old documents", e))?
            .try_collect::<Vec<Document>>()
            .await
            .map_err(|e| mongo_err("reading old documents", e))?
            .into_iter()
            .filter_map(|d| d.get("_id").cloned())
            .collect();
        if ids.is_empty() {
            return Ok(0);
        }
        coll.delete_many(doc! { "_id": { "$in": ids } })
            .await
            .map(|res| res.deleted_count)
            .map_err(|e| mongo_err("deleting old documents", e))
    }

    async fn estimated_rows(&self, r: &Resolved) -> Result<u64, StoreError> {
        self.db
            .collection::<Document>(r.target.collection())
            .estimated_document_count()
            .await
            .map_err(|e| mongo_err("estimating a collection's size", e))
    }

    /// MongoDB keeps no planner statistics to refresh.
    async fn analyze(&self, _r: &Resolved) -> Result<(), StoreError> {
        Ok(())
    }
}
