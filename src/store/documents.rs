//! The document store: news sources, raw pages and normalized articles (later: analysis results
//! and predictions). One small trait with two implementations, PostgreSQL JSONB (the seed's
//! Phase 1, the default) and MongoDB (Phase 2), held to one conformance test suite.
//!
//! The store is also the work queue. A raw article is claimed (PENDING -> PROCESSING with a
//! lease) before it is normalized, and completing it inserts the article and marks the raw page
//! COMPLETED; a claim whose lease ran out (the process died) is handed out again. Because the
//! article insert is keyed on `url_hash`, a page normalized twice after such a crash still yields
//! one article.

use crate::domain::{Article, NewsSource, RawArticle};
use chrono::{DateTime, Utc};
use std::collections::HashSet;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum DocError {
    /// The store cannot be reached right now; the same call may succeed later.
    #[error("document store unavailable while {context}: {message}")]
    Unavailable { context: String, message: String },
    /// The store answered with an error a retry will not fix.
    #[error("document store error while {context}: {message}")]
    Store { context: String, message: String },
    #[error("unknown {what}: {key}")]
    NotFound { what: &'static str, key: String },
    #[error("{0}")]
    Invalid(String),
    /// The configured backend is not available in this build or setup.
    #[error("document store not available: {0}")]
    NotAvailable(String),
}

impl DocError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, DocError::Unavailable { .. })
    }
}

/// What a crawler, a normalizer (and later the analysis actors) need from the store, nothing more.
#[async_trait::async_trait]
pub trait DocumentStore: Send + Sync + 'static {
    /// Creates collections/indexes (MongoDB) or checks the schema (PostgreSQL). Idempotent.
    async fn prepare(&self) -> Result<(), DocError>;

    /// Upserts by `name`; keeps `last_crawled_at` and `created_at` of existing sources.
    async fn upsert_sources(&self, sources: &[NewsSource]) -> Result<(), DocError>;
    async fn source(&self, name: &str) -> Result<Option<NewsSource>, DocError>;
    async fn mark_crawled(&self, source: &str, at: DateTime<Utc>) -> Result<(), DocError>;

    /// Which of these url hashes are already stored as raw articles (the crawler fetches only
    /// what is new).
    async fn known_url_hashes(&self, hashes: &[String]) -> Result<HashSet<String>, DocError>;
    /// Stores a fetched page once: returns false (and stores nothing) when its `url_hash` is
    /// already known. The returned id is the store's.
    async fn insert_raw_article(&self, raw: &RawArticle) -> Result<Option<String>, DocError>;
    async fn raw_article(&self, id: &str) -> Result<Option<RawArticle>, DocError>;

    /// Claims up to `limit` raw articles that are PENDING, or PROCESSING with an expired lease,
    /// oldest first, marking them PROCESSING until now + `lease`. Two concurrent callers never
    /// get the same article while its lease runs.
    async fn claim_raw_articles(
        &self,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<RawArticle>, DocError>;
    /// Inserts the normalized article (once per `url_hash`) and marks the raw article COMPLETED.
    /// Returns the article id (the existing one if the article was already stored).
    async fn complete_raw_article(
        &self,
        raw_id: &str,
        article: &Article,
    ) -> Result<String, DocError>;
    /// Records a failure: retry_count + 1 and the error; back to PENDING while
    /// retry_count < max_retries, else FAILED for good.
    async fn fail_raw_article(
        &self,
        raw_id: &str,
        error: &str,
        max_retries: u32,
    ) -> Result<(), DocError>;

    async fn article_by_url_hash(&self, url_hash: &str) -> Result<Option<Article>, DocError>;
    /// Number of raw articles per processing status and of articles (for tests and metrics).
    async fn counts(&self) -> Result<StoreCounts, DocError>;
    async fn ping(&self) -> Result<(), DocError>;
}

/// The contract of `complete_raw_article`, the same for every store: the article's dedup key is
/// a SHA-256 hex digest, and an article that names its raw page names the one being completed.
pub(crate) fn check_completion(raw_id: &str, article: &Article) -> Result<(), DocError> {
    crate::store::documents_pg::validate_url_hash(&article.url_hash)?;
    if !article.raw_article_id.is_empty() && article.raw_article_id != raw_id {
        return Err(DocError::Invalid(format!(
            "article {} names raw article {} but completes {raw_id}",
            article.url, article.raw_article_id
        )));
    }
    Ok(())
}

/// The counter of a queue status among `[pending, processing, completed, failed]`, for filling
/// counts from a GROUP BY on a status column (`what` names it in the error). Shared by the raw
/// page counts and the analysis queue counts of both stores.
pub(crate) fn status_slot<'a>(
    slots: [&'a mut u64; 4],
    status: &str,
    what: &str,
    context: &str,
) -> Result<&'a mut u64, DocError> {
    use crate::domain::ProcessingStatus as S;
    let [pending, processing, completed, failed] = slots;
    match super::documents_pg::status_from_str(status) {
        Some(S::Pending) => Ok(pending),
        Some(S::Processing) => Ok(processing),
        Some(S::Completed) => Ok(completed),
        Some(S::Failed) => Ok(failed),
        None => Err(DocError::Store {
            context: context.to_string(),
            message: format!("unknown {what} {status:?}"),
        }),
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreCounts {
    pub raw_pending: u64,
    pub raw_processing: u64,
    pub raw_completed: u64,
    pub raw_failed: u64,
    pub articles: u64,
}

impl StoreCounts {
    /// Records `n` raw pages with processing status `status` (as stored).
    pub(crate) fn set_raw_status(
        &mut self,
        status: &str,
        n: u64,
        context: &str,
    ) -> Result<(), DocError> {
        let slots = [
            &mut self.raw_pending,
            &mut self.raw_processing,
            &mut self.raw_completed,
            &mut self.raw_failed,
        ];
        *status_slot(slots, status, "processing_status", context)? = n;
        Ok(())
    }
}

/// Opens the configured document store: PostgreSQL on the daemon's pool (the default), or
/// MongoDB at `cfg.mongodb_url` (the client connects lazily). Call [`DocumentStore::prepare`]
/// before use: it creates MongoDB's indexes and checks PostgreSQL's migration, and is where an
/// unreachable server first shows up.
pub async fn open_document_store(
    cfg: &crate::config::DocumentsConfig,
    pg: sqlx::PgPool,
) -> Result<std::sync::Arc<dyn super::analysis::FullDocumentStore>, DocError> {
    use crate::config::DocumentBackend;
    Ok(match cfg.backend {
        DocumentBackend::Postgres => {
            std::sync::Arc::new(super::documents_pg::PgDocumentStore::new(pg))
        }
        DocumentBackend::Mongodb => std::sync::Arc::new(
            super::documents_mongo::MongoDocumentStore::connect(
                cfg.mongodb_url.expose(),
                &cfg.mongodb_database,
            )
            .await?,
        ),
    })
}
