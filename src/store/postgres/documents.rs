//! The PostgreSQL document store (the default backend): `content.news_sources`,
//! `content.raw_articles` and `content.articles` from `migrations/0005_documents.sql`.
//!
//! Raw pages double as the normalizer's work queue. A claim is one statement that locks the rows
//! it takes with `FOR UPDATE SKIP LOCKED`, so concurrent claimers (other tasks or other daemons)
//! skip each other's rows instead of waiting for or duplicating them. Completing a page inserts
//! its article and marks the page COMPLETED in one transaction, and the insert is keyed on
//! `url_hash`, so a page completed twice (lease expired, a second worker took over) still yields
//! one article.
//!
//! Articles are stored whole as `doc` (JSONB) and read back from it; the seed's columns (title,
//! body, symbols, ...) are filled from the same value for SQL queries, indexes and full-text
//! search.

use super::{Call, ReadRouter, pg_err};
use crate::domain::news::{FeedEntryMeta, RateLimit, SourceKind, SourceMetadata, SourceSelectors};
use crate::domain::{Article, NewsSource, RawArticle};
use crate::store::contract::{check_completion, status_from_str, validate_url_hash};
use crate::store::{DocumentStore, StoreCounts, StoreError};
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::{PgPool, PgRow};
use sqlx::types::Json;
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

/// [`DocumentStore`] on PostgreSQL. Cheap to clone (the pool is shared).
#[derive(Clone, Debug)]
pub struct PgDocumentStore {
    pool: PgPool,
    /// The same primary, and the replicas the reads that tolerate lag may use.
    reads: ReadRouter,
}

impl PgDocumentStore {
    /// Uses the daemon's pool (or a [`ReadRouter`]: its primary, and its replicas for the reads
    /// that tolerate lag); the schema comes from the embedded migrations (`store::migrate`),
    /// which [`DocumentStore::prepare`] checks were applied.
    pub fn new(pool: impl Into<ReadRouter>) -> Self {
        let reads = pool.into();
        PgDocumentStore {
            pool: reads.primary().clone(),
            reads,
        }
    }

    pub(super) fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub(super) fn reads(&self) -> &ReadRouter {
        &self.reads
    }
}

fn kind_str(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Rss => "RSS",
        SourceKind::Html => "HTML",
        SourceKind::Api => "API",
    }
}

fn kind_from_str(s: &str) -> Option<SourceKind> {
    match s {
        "RSS" => Some(SourceKind::Rss),
        "HTML" => Some(SourceKind::Html),
        "API" => Some(SourceKind::Api),
        _ => None,
    }
}

const RAW_COLUMNS: &str = "id::text AS id, url, url_hash, source_name, raw_html, \
     response_headers, http_status, crawled_at, processing_status, retry_count, error_message, \
     feed_entry";

fn raw_from_row(row: &PgRow) -> Result<RawArticle, StoreError> {
    const CTX: &str = "reading a raw article";
    let get = |e: sqlx::Error| pg_err(CTX, e);
    let status: String = row.try_get("processing_status").map_err(get)?;
    let http_status: i32 = row.try_get("http_status").map_err(get)?;
    let retry_count: i32 = row.try_get("retry_count").map_err(get)?;
    let headers: Json<BTreeMap<String, String>> = row.try_get("response_headers").map_err(get)?;
    let feed_entry: Option<Json<FeedEntryMeta>> = row.try_get("feed_entry").map_err(get)?;
    Ok(RawArticle {
        id: row.try_get("id").map_err(get)?,
        url: row.try_get("url").map_err(get)?,
        url_hash: row.try_get("url_hash").map_err(get)?,
        source_name: row.try_get("source_name").map_err(get)?,
        raw_html: row.try_get("raw_html").map_err(get)?,
        response_headers: headers.0,
        http_status: u16::try_from(http_status).map_err(|_| {
            StoreError::corrupt(CTX, format!("http_status {http_status} out of range"))
        })?,
        crawled_at: row.try_get("crawled_at").map_err(get)?,
        processing_status: status_from_str(&status).ok_or_else(|| {
            StoreError::corrupt(CTX, format!("unknown processing_status {status:?}"))
        })?,
        retry_count: u32::try_from(retry_count).map_err(|_| {
            StoreError::corrupt(CTX, format!("retry_count {retry_count} out of range"))
        })?,
        error_message: row.try_get("error_message").map_err(get)?,
        feed_entry: feed_entry.map(|j| j.0),
    })
}

fn source_from_row(row: &PgRow) -> Result<NewsSource, StoreError> {
    const CTX: &str = "reading a news source";
    let get = |e: sqlx::Error| pg_err(CTX, e);
    let kind: String = row.try_get("type").map_err(get)?;
    let interval: i32 = row.try_get("crawl_interval_minutes").map_err(get)?;
    let selectors: Json<SourceSelectors> = row.try_get("selectors").map_err(get)?;
    let rate_limit: Json<RateLimit> = row.try_get("rate_limit").map_err(get)?;
    let metadata: Json<SourceMetadata> = row.try_get("metadata").map_err(get)?;
    Ok(NewsSource {
        name: row.try_get("name").map_err(get)?,
        base_url: row.try_get("base_url").map_err(get)?,
        feed_url: row.try_get("feed_url").map_err(get)?,
        kind: kind_from_str(&kind)
            .ok_or_else(|| StoreError::corrupt(CTX, format!("unknown source type {kind:?}")))?,
        is_active: row.try_get("is_active").map_err(get)?,
        crawl_interval_minutes: u32::try_from(interval).map_err(|_| {
            StoreError::corrupt(
                CTX,
                format!("crawl_interval_minutes {interval} out of range"),
            )
        })?,
        selectors: selectors.0,
        rate_limit: rate_limit.0,
        metadata: metadata.0,
        // The egress policy is crawler configuration (sources.toml), not stored: a source read
        // back from the store gets the strict default.
        allowed_hosts: Vec::new(),
        allow_private_network: false,
        last_crawled_at: row.try_get("last_crawled_at").map_err(get)?,
    })
}

/// The article as stored in `doc`: without its id (the row's primary key is the id) and with
/// `raw_article_id` set to the raw page it was completed from.
fn article_doc(raw_id: &str, article: &Article) -> Result<serde_json::Value, StoreError> {
    let mut doc = article.clone();
    doc.id = String::new();
    doc.raw_article_id = raw_id.to_string();
    let mut value = serde_json::to_value(&doc)
        .map_err(|e| StoreError::Invalid(format!("serializing article {}: {e}", article.url)))?;
    if let Some(obj) = value.as_object_mut() {
        obj.remove("id");
    }
    Ok(value)
}

fn to_i32(what: &str, v: u32) -> Result<i32, StoreError> {
    i32::try_from(v).map_err(|_| StoreError::Invalid(format!("{what} {v} is too large")))
}

#[async_trait::async_trait]
impl DocumentStore for PgDocumentStore {
    /// The schema is created by the migrations; this only checks that 0005 was applied, so a
    /// daemon started against an old database fails at start with a clear message.
    async fn prepare(&self) -> Result<(), StoreError> {
        const CTX: &str = "checking the document schema";
        let ok: bool = sqlx::query_scalar(
            "SELECT to_regclass('content.news_sources') IS NOT NULL
                AND to_regclass('content.raw_articles') IS NOT NULL
                AND EXISTS (SELECT 1 FROM information_schema.columns
                            WHERE table_schema = 'content' AND table_name = 'articles'
                              AND column_name = 'doc')",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(|e| pg_err(CTX, e))?;
        if ok {
            Ok(())
        } else {
            Err(StoreError::corrupt(
                CTX,
                "content.news_sources/raw_articles/articles.doc missing: \
                 migration 0005_documents has not been applied",
            ))
        }
    }

    async fn upsert_sources(&self, sources: &[NewsSource]) -> Result<(), StoreError> {
        const CTX: &str = "upserting news sources";
        let mut tx = self.pool.begin().await.map_err(|e| pg_err(CTX, e))?;
        // One statement per source: a list naming a source twice must not fail ("ON CONFLICT
        // DO UPDATE command cannot affect row a second time"); the last entry wins. Sources are
        // a handful, so the round trips do not matter.
        for s in sources {
            sqlx::query(
                "INSERT INTO content.news_sources
                    (name, base_url, feed_url, type, is_active, crawl_interval_minutes,
                     selectors, rate_limit, metadata, last_crawled_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (name) DO UPDATE SET
                    base_url = EXCLUDED.base_url,
                    feed_url = EXCLUDED.feed_url,
                    type = EXCLUDED.type,
                    is_active = EXCLUDED.is_active,
                    crawl_interval_minutes = EXCLUDED.crawl_interval_minutes,
                    selectors = EXCLUDED.selectors,
                    rate_limit = EXCLUDED.rate_limit,
                    metadata = EXCLUDED.metadata",
            )
            .bind(&s.name)
            .bind(&s.base_url)
            .bind(&s.feed_url)
            .bind(kind_str(s.kind))
            .bind(s.is_active)
            .bind(to_i32("crawl_interval_minutes", s.crawl_interval_minutes)?)
            .bind(Json(&s.selectors))
            .bind(Json(&s.rate_limit))
            .bind(Json(&s.metadata))
            .bind(s.last_crawled_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| pg_err(format!("upserting news source {:?}", s.name), e))?;
        }
        tx.commit().await.map_err(|e| pg_err(CTX, e))
    }

    async fn source(&self, name: &str) -> Result<Option<NewsSource>, StoreError> {
        let row = sqlx::query(
            "SELECT name, base_url, feed_url, type, is_active, crawl_interval_minutes,
                    selectors, rate_limit, metadata, last_crawled_at
             FROM content.news_sources WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| pg_err(format!("reading news source {name:?}"), e))?;
        row.as_ref().map(source_from_row).transpose()
    }

    async fn mark_crawled(&self, source: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let done =
            sqlx::query("UPDATE content.news_sources SET last_crawled_at = $2 WHERE name = $1")
                .bind(source)
                .bind(at)
                .execute(&self.pool)
                .await
                .map_err(|e| pg_err(format!("marking news source {source:?} crawled"), e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("news source", source));
        }
        Ok(())
    }

    async fn known_url_hashes(&self, hashes: &[String]) -> Result<HashSet<String>, StoreError> {
        if hashes.is_empty() {
            return Ok(HashSet::new());
        }
        let known: Vec<String> = sqlx::query_scalar(
            "SELECT url_hash FROM content.raw_articles WHERE url_hash = ANY($1::text[])",
        )
        .bind(hashes)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| pg_err("looking up known url hashes", e))?;
        Ok(known.into_iter().collect())
    }

    async fn insert_raw_article(&self, raw: &RawArticle) -> Result<Option<String>, StoreError> {
        validate_url_hash(&raw.url_hash)?;
        let id: Option<String> = sqlx::query_scalar(
            "INSERT INTO content.raw_articles
                (url, url_hash, source_name, raw_html, response_headers, http_status, crawled_at,
                 processing_status, retry_count, error_message, feed_entry)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (url_hash) DO NOTHING
             RETURNING id::text",
        )
        .bind(&raw.url)
        .bind(&raw.url_hash)
        .bind(&raw.source_name)
        .bind(&raw.raw_html)
        .bind(Json(&raw.response_headers))
        .bind(i32::from(raw.http_status))
        .bind(raw.crawled_at)
        .bind(raw.processing_status.as_str())
        .bind(to_i32("retry_count", raw.retry_count)?)
        .bind(&raw.error_message)
        .bind(raw.feed_entry.as_ref().map(Json))
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| pg_err(format!("inserting raw article {}", raw.url), e))?;
        Ok(id)
    }

    async fn raw_article(&self, id: &str) -> Result<Option<RawArticle>, StoreError> {
        let Some(call) = Call::read("raw article", id) else {
            return Ok(None);
        };
        let row = sqlx::query(&format!(
            "SELECT {RAW_COLUMNS} FROM content.raw_articles WHERE id = $1::uuid"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(call.err())?;
        row.as_ref().map(raw_from_row).transpose()
    }

    /// One statement. The candidate ids are collected by an `ARRAY(...)` sub-select, which
    /// PostgreSQL runs exactly once (an init plan); a plain `IN (SELECT ... LIMIT n)` may be
    /// planned as a join whose inner side is re-scanned, locking more rows than it returns.
    /// `SKIP LOCKED` makes concurrent claimers pass over each other's rows, and the re-check
    /// PostgreSQL does on a locked row that changed meanwhile drops rows another claimer has
    /// just taken (they no longer match the WHERE clause). A PROCESSING row without a lease
    /// (inserted so by hand) counts as expired so it can never be stuck.
    async fn claim_raw_articles(
        &self,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<RawArticle>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = sqlx::query(&format!(
            "UPDATE content.raw_articles
             SET processing_status = 'PROCESSING',
                 lease_until = now() + make_interval(secs => $2)
             WHERE id = ANY(ARRAY(
                 SELECT id FROM content.raw_articles
                 WHERE processing_status = 'PENDING'
                    OR (processing_status = 'PROCESSING'
                        AND (lease_until IS NULL OR lease_until < now()))
                 ORDER BY crawled_at, id
                 LIMIT $1
                 FOR UPDATE SKIP LOCKED))
             RETURNING {RAW_COLUMNS}"
        ))
        .bind(limit)
        .bind(lease.as_secs_f64())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| pg_err("claiming raw articles", e))?;
        let mut claimed = rows
            .iter()
            .map(raw_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        // RETURNING has no order; the contract is oldest first.
        claimed.sort_by(|a, b| (a.crawled_at, &a.id).cmp(&(b.crawled_at, &b.id)));
        Ok(claimed)
    }

    async fn complete_raw_article(
        &self,
        raw_id: &str,
        article: &Article,
    ) -> Result<String, StoreError> {
        check_completion(raw_id, article)?;
        let call = Call::on("raw article", raw_id, "completing")?;
        let doc = article_doc(raw_id, article)?;
        let mut tx = self.pool.begin().await.map_err(call.err())?;
        // Lock the page first: a second worker completing the same page waits here and then
        // finds the article already stored.
        let exists: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM content.raw_articles WHERE id = $1::uuid FOR UPDATE")
                .bind(raw_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(call.err())?;
        call.found(exists)?;
        let inserted: Option<String> = sqlx::query_scalar(
            "INSERT INTO content.articles
                (url, url_hash, title, body, source_name, published_at, crawled_at, symbols,
                 raw_article_id, doc, excerpt, language, normalized_at, analysis_status)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::uuid, $10, $11, $12, $13, $14)
             ON CONFLICT (url_hash) DO NOTHING
             RETURNING id::text",
        )
        .bind(&article.url)
        .bind(&article.url_hash)
        .bind(&article.title)
        .bind(&article.body)
        .bind(&article.source.name)
        .bind(article.published_at)
        .bind(article.crawled_at)
        .bind(&article.symbols)
        .bind(raw_id)
        .bind(Json(&doc))
        .bind(&article.excerpt)
        .bind(&article.language)
        .bind(article.normalized_at)
        .bind(article.analysis_status.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| pg_err(format!("inserting article {}", article.url), e))?;
        let article_id = match inserted {
            Some(id) => id,
            // Already stored (this page completed before, or another page with the same
            // url_hash): the existing article is the one.
            None => sqlx::query_scalar("SELECT id::text FROM content.articles WHERE url_hash = $1")
                .bind(&article.url_hash)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| pg_err(format!("looking up article {}", article.url_hash), e))?,
        };
        sqlx::query(
            "UPDATE content.raw_articles
             SET processing_status = 'COMPLETED', lease_until = NULL
             WHERE id = $1::uuid",
        )
        .bind(raw_id)
        .execute(&mut *tx)
        .await
        .map_err(call.err())?;
        tx.commit().await.map_err(call.err())?;
        Ok(article_id)
    }

    /// A page that is already COMPLETED stays so (a worker whose lease ran out reporting a
    /// failure after another worker finished the page must not send it round again).
    async fn fail_raw_article(
        &self,
        raw_id: &str,
        error: &str,
        max_retries: u32,
    ) -> Result<(), StoreError> {
        let call = Call::on("raw article", raw_id, "recording the failure of")?;
        let exists: Option<String> = sqlx::query_scalar(
            "WITH target AS (SELECT id FROM content.raw_articles WHERE id = $1::uuid),
                  changed AS (
                    UPDATE content.raw_articles r
                    SET retry_count = r.retry_count + 1,
                        error_message = $2,
                        processing_status = CASE WHEN r.retry_count + 1 < $3 THEN 'PENDING'
                                                 ELSE 'FAILED' END,
                        lease_until = NULL
                    FROM target
                    WHERE r.id = target.id AND r.processing_status <> 'COMPLETED'
                    RETURNING r.id)
             SELECT id::text FROM target",
        )
        .bind(raw_id)
        .bind(error)
        .bind(i64::from(max_retries))
        .fetch_optional(&self.pool)
        .await
        .map_err(call.err())?;
        call.found(exists).map(drop)
    }

    async fn article_by_url_hash(&self, url_hash: &str) -> Result<Option<Article>, StoreError> {
        let ctx = format!("reading article {url_hash}");
        let row: Option<(String, Json<Article>)> =
            sqlx::query_as("SELECT id::text, doc FROM content.articles WHERE url_hash = $1")
                .bind(url_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| pg_err(&ctx, e))?;
        Ok(row.map(|(id, Json(mut article))| {
            article.id = id;
            article
        }))
    }

    /// Backlog gauges and the progress line: a replica's counts do.
    async fn counts(&self) -> Result<StoreCounts, StoreError> {
        const CTX: &str = "counting documents";
        let (rows, articles): (Vec<(String, i64)>, i64) = self
            .reads
            .read(|pool| async move {
                let rows = sqlx::query_as(
                    "SELECT processing_status, count(*) FROM content.raw_articles
                     GROUP BY processing_status",
                )
                .fetch_all(&pool)
                .await?;
                let articles = sqlx::query_scalar("SELECT count(*) FROM content.articles")
                    .fetch_one(&pool)
                    .await?;
                Ok((rows, articles))
            })
            .await
            .map_err(|e| pg_err(CTX, e))?;
        let mut counts = StoreCounts {
            articles: articles.unsigned_abs(),
            ..StoreCounts::default()
        };
        for (status, n) in rows {
            let n = n.unsigned_abs();
            counts.set_raw_status(&status, n, CTX)?;
        }
        Ok(counts)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        super::execute(&self.pool, "SELECT 1", "pinging PostgreSQL").await
    }
}
