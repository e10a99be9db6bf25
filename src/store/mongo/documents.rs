//! The MongoDB document store (the seed's Phase 2), through the official driver: collections
//! `news_sources`, `raw_articles` and `articles` with every index the seed lists for them.
//!
//! Documents are written through private wire structs rather than the domain types directly:
//! chrono's serde writes RFC 3339 strings, but the 90-day TTL index on `raw_articles.crawled_at`
//! (and date range queries) need BSON dates. The `chrono-0_4` feature of `bson`, which would
//! provide a serde helper for that, is not enabled in this build, so dates are converted through
//! `bson::DateTime::from_millis`. BSON dates have millisecond precision: finer parts of a time
//! are dropped on write.
//!
//! Ids are ObjectIds, exposed as 24-digit hex strings in the domain types. Sources are keyed by
//! name (as in the configuration), so `raw_articles.source_name` stands in for the seed's
//! `source_id`, and `articles.source.id` is kept as the string the normalizer set.
//!
//! Claims use `find_one_and_update`, atomic per document: two claimers can never both match and
//! update the same page, and each loop iteration takes the oldest claimable one. Lease times come
//! from the client's clock, so workers' clocks must agree to well within a lease (NTP).

use super::{
    Call, claim_oldest, connect_err, count_of, from_bson_date, is_duplicate_key, mongo_err,
    to_bson_date, to_bson_value,
};
use crate::domain::news::{
    ArticleAuthor, ArticleImage, ArticleMetadata, ArticleSource, FeedEntryMeta, RateLimit,
    SourceKind, SourceMetadata, SourceSelectors,
};
use crate::domain::{Article, NewsSource, ProcessingStatus, RawArticle};
use crate::store::contract::{check_completion, validate_url_hash};
use crate::store::{DocumentStore, StoreCounts, StoreError};
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{self, Document, doc};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

/// The seed's TTL on raw pages: 90 days. After it MongoDB deletes the page (whatever its status),
/// so its url_hash is no longer "known" and the crawler may fetch it again; the article, unique
/// on url_hash, is still not duplicated.
pub const RAW_ARTICLE_TTL: Duration = Duration::from_secs(7_776_000);

/// How long an operation waits for a usable server before failing with a retryable error. The
/// driver's default is 30 s; the pipeline should learn of an outage quickly and back off.
const SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// [`DocumentStore`] on MongoDB. Cheap to clone (the client is shared).
#[derive(Clone, Debug)]
pub struct MongoDocumentStore {
    db: Database,
    sources: Collection<SourceDoc>,
    raw: Collection<RawDoc>,
    articles: Collection<ArticleDoc>,
}

impl MongoDocumentStore {
    /// Parses the URL and creates the client. The driver connects lazily, so an unreachable
    /// server shows up on the first operation (call [`DocumentStore::prepare`] at start), as a
    /// retryable [`StoreError::Unavailable`] after [`SERVER_SELECTION_TIMEOUT`] (unless the URL sets
    /// `serverSelectionTimeoutMS`). No error contains the URL or its password.
    pub async fn connect(url: &str, database: &str) -> Result<Self, StoreError> {
        let context = format!("connecting to MongoDB database {database:?}");
        let mut options = ClientOptions::parse(url)
            .await
            .map_err(|e| connect_err(&context, e, url))?;
        // Short defaults; a value given in the URL (serverSelectionTimeoutMS, connectTimeoutMS)
        // is the operator's choice and wins.
        options
            .server_selection_timeout
            .get_or_insert(SERVER_SELECTION_TIMEOUT);
        options.connect_timeout.get_or_insert(CONNECT_TIMEOUT);
        options.app_name.get_or_insert_with(|| "tradepipe".into());
        let client = Client::with_options(options).map_err(|e| connect_err(&context, e, url))?;
        Ok(Self::with_database(client.database(database)))
    }

    /// Uses an existing database handle (shares the caller's client).
    pub(crate) fn with_database(db: Database) -> Self {
        MongoDocumentStore {
            sources: db.collection("news_sources"),
            raw: db.collection("raw_articles"),
            articles: db.collection("articles"),
            db,
        }
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    pub(super) fn articles(&self) -> &Collection<ArticleDoc> {
        &self.articles
    }

    /// Every index the seed defines for the three collections, plus the one the lease claim
    /// needs. Named explicitly so a changed definition is an error at start (MongoDB refuses an
    /// index whose name exists with other options) rather than a silent second index.
    pub(crate) fn index_models() -> [(&'static str, Vec<IndexModel>); 3] {
        fn index(keys: Document, options: IndexOptions) -> IndexModel {
            IndexModel::builder().keys(keys).options(options).build()
        }
        fn named(name: &str) -> IndexOptions {
            IndexOptions::builder().name(name.to_string()).build()
        }
        fn unique(name: &str) -> IndexOptions {
            IndexOptions::builder()
                .name(name.to_string())
                .unique(true)
                .build()
        }
        [
            (
                "news_sources",
                vec![
                    index(doc! { "name": 1 }, unique("name_unique")),
                    index(doc! { "is_active": 1 }, named("is_active")),
                    index(doc! { "last_crawled_at": 1 }, named("last_crawled_at")),
                    index(
                        doc! { "is_active": 1, "last_crawled_at": 1 },
                        named("is_active_last_crawled_at"),
                    ),
                ],
            ),
            (
                "raw_articles",
                vec![
                    index(doc! { "url_hash": 1 }, unique("url_hash_unique")),
                    index(
                        doc! { "processing_status": 1, "crawled_at": 1 },
                        named("processing_status_crawled_at"),
                    ),
                    // The seed's source_id: sources are keyed by name here.
                    index(doc! { "source_name": 1 }, named("source_name")),
                    index(
                        doc! { "crawled_at": 1 },
                        IndexOptions::builder()
                            .name("crawled_at_ttl".to_string())
                            .expire_after(RAW_ARTICLE_TTL)
                            .build(),
                    ),
                    // Not in the seed: finds PROCESSING pages whose lease ran out.
                    index(
                        doc! { "processing_status": 1, "lease_until": 1 },
                        named("processing_status_lease_until"),
                    ),
                ],
            ),
            (
                "articles",
                vec![
                    index(doc! { "url_hash": 1 }, unique("url_hash_unique")),
                    index(doc! { "published_at": -1 }, named("published_at_desc")),
                    index(
                        doc! { "source.name": 1, "published_at": -1 },
                        named("source_name_published_at"),
                    ),
                    index(
                        doc! { "symbols": 1, "published_at": -1 },
                        named("symbols_published_at"),
                    ),
                    index(doc! { "tags": 1 }, named("tags")),
                    index(doc! { "analysis_status": 1 }, named("analysis_status")),
                    // English, like the PostgreSQL store's tsvector (see 0005_documents.sql).
                    index(
                        doc! { "title": "text", "body": "text" },
                        IndexOptions::builder()
                            .name("title_body_text".to_string())
                            .default_language("english".to_string())
                            .build(),
                    ),
                ],
            ),
        ]
    }
}

#[derive(Debug, Clone, Deserialize)]
struct SourceDoc {
    name: String,
    base_url: String,
    #[serde(default)]
    feed_url: Option<String>,
    #[serde(rename = "type")]
    kind: SourceKind,
    is_active: bool,
    crawl_interval_minutes: i64,
    selectors: SourceSelectors,
    rate_limit: RateLimit,
    metadata: SourceMetadata,
    #[serde(default)]
    last_crawled_at: Option<bson::DateTime>,
}

impl SourceDoc {
    fn into_domain(self) -> Result<NewsSource, StoreError> {
        const CTX: &str = "reading a news source";
        Ok(NewsSource {
            crawl_interval_minutes: u32::try_from(self.crawl_interval_minutes).map_err(|_| {
                StoreError::corrupt(
                    CTX,
                    format!(
                        "crawl_interval_minutes {} out of range",
                        self.crawl_interval_minutes
                    ),
                )
            })?,
            // Crawler configuration, not stored (see the PostgreSQL store).
            allowed_hosts: Vec::new(),
            allow_private_network: false,
            last_crawled_at: self.last_crawled_at.map(from_bson_date).transpose()?,
            name: self.name,
            base_url: self.base_url,
            feed_url: self.feed_url,
            kind: self.kind,
            is_active: self.is_active,
            selectors: self.selectors,
            rate_limit: self.rate_limit,
            metadata: self.metadata,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct FeedEntryDoc {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    published_at: Option<bson::DateTime>,
    #[serde(default)]
    author: Option<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    categories: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RawDoc {
    #[serde(rename = "_id")]
    id: ObjectId,
    url: String,
    url_hash: String,
    source_name: String,
    raw_html: String,
    /// Header names are HTTP tokens; they never start with '$', which MongoDB would refuse.
    response_headers: BTreeMap<String, String>,
    http_status: i32,
    crawled_at: bson::DateTime,
    processing_status: ProcessingStatus,
    retry_count: i64,
    #[serde(default)]
    error_message: Option<String>,
    #[serde(default)]
    feed_entry: Option<FeedEntryDoc>,
    /// Null unless PROCESSING: until then the page is the claimer's.
    #[serde(default)]
    lease_until: Option<bson::DateTime>,
}

impl RawDoc {
    fn from_domain(raw: &RawArticle) -> Self {
        RawDoc {
            id: ObjectId::new(),
            url: raw.url.clone(),
            url_hash: raw.url_hash.clone(),
            source_name: raw.source_name.clone(),
            raw_html: raw.raw_html.clone(),
            response_headers: raw.response_headers.clone(),
            http_status: i32::from(raw.http_status),
            crawled_at: to_bson_date(raw.crawled_at),
            processing_status: raw.processing_status,
            retry_count: i64::from(raw.retry_count),
            error_message: raw.error_message.clone(),
            feed_entry: raw.feed_entry.as_ref().map(|f| FeedEntryDoc {
                title: f.title.clone(),
                published_at: f.published_at.map(to_bson_date),
                author: f.author.clone(),
                summary: f.summary.clone(),
                categories: f.categories.clone(),
            }),
            lease_until: None,
        }
    }

    fn into_domain(self) -> Result<RawArticle, StoreError> {
        const CTX: &str = "reading a raw article";
        let feed_entry = match self.feed_entry {
            Some(f) => Some(FeedEntryMeta {
                title: f.title,
                published_at: f.published_at.map(from_bson_date).transpose()?,
                author: f.author,
                summary: f.summary,
                categories: f.categories,
            }),
            None => None,
        };
        Ok(RawArticle {
            id: self.id.to_hex(),
            http_status: u16::try_from(self.http_status).map_err(|_| {
                StoreError::corrupt(
                    CTX,
                    format!("http_status {} out of range", self.http_status),
                )
            })?,
            crawled_at: from_bson_date(self.crawled_at)?,
            retry_count: u32::try_from(self.retry_count).map_err(|_| {
                StoreError::corrupt(
                    CTX,
                    format!("retry_count {} out of range", self.retry_count),
                )
            })?,
            url: self.url,
            url_hash: self.url_hash,
            source_name: self.source_name,
            raw_html: self.raw_html,
            response_headers: self.response_headers,
            processing_status: self.processing_status,
            error_message: self.error_message,
            feed_entry,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ArticleDoc {
    #[serde(rename = "_id")]
    id: ObjectId,
    raw_article_id: ObjectId,
    url: String,
    url_hash: String,
    title: String,
    body: String,
    excerpt: String,
    source: ArticleSource,
    author: ArticleAuthor,
    #[serde(default)]
    published_at: Option<bson::DateTime>,
    crawled_at: bson::DateTime,
    normalized_at: bson::DateTime,
    word_count: i64,
    reading_time_minutes: i64,
    #[serde(default)]
    language: Option<String>,
    symbols: Vec<String>,
    tags: Vec<String>,
    categories: Vec<String>,
    images: Vec<ArticleImage>,
    metadata: ArticleMetadata,
    analysis_status: ProcessingStatus,
    created_at: bson::DateTime,
    updated_at: bson::DateTime,
}

impl ArticleDoc {
    fn from_domain(raw_id: ObjectId, a: &Article) -> Self {
        let now = bson::DateTime::now();
        ArticleDoc {
            id: ObjectId::new(),
            raw_article_id: raw_id,
            url: a.url.clone(),
            url_hash: a.url_hash.clone(),
            title: a.title.clone(),
            body: a.body.clone(),
            excerpt: a.excerpt.clone(),
            source: a.source.clone(),
            author: a.author.clone(),
            published_at: a.published_at.map(to_bson_date),
            crawled_at: to_bson_date(a.crawled_at),
            normalized_at: to_bson_date(a.normalized_at),
            word_count: i64::from(a.word_count),
            reading_time_minutes: i64::from(a.reading_time_minutes),
            language: a.language.clone(),
            symbols: a.symbols.clone(),
            tags: a.tags.clone(),
            categories: a.categories.clone(),
            images: a.images.clone(),
            metadata: a.metadata.clone(),
            analysis_status: a.analysis_status,
            created_at: now,
            updated_at: now,
        }
    }

    pub(super) fn into_domain(self) -> Result<Article, StoreError> {
        const CTX: &str = "reading an article";
        let count = |what: &str, v: i64| {
            u32::try_from(v)
                .map_err(|_| StoreError::corrupt(CTX, format!("{what} {v} out of range")))
        };
        Ok(Article {
            id: self.id.to_hex(),
            raw_article_id: self.raw_article_id.to_hex(),
            published_at: self.published_at.map(from_bson_date).transpose()?,
            crawled_at: from_bson_date(self.crawled_at)?,
            normalized_at: from_bson_date(self.normalized_at)?,
            word_count: count("word_count", self.word_count)?,
            reading_time_minutes: count("reading_time_minutes", self.reading_time_minutes)?,
            url: self.url,
            url_hash: self.url_hash,
            title: self.title,
            body: self.body,
            excerpt: self.excerpt,
            source: self.source,
            author: self.author,
            language: self.language,
            symbols: self.symbols,
            tags: self.tags,
            categories: self.categories,
            images: self.images,
            metadata: self.metadata,
            analysis_status: self.analysis_status,
        })
    }
}

// ---------------------------------------------------------------------------------------------

#[async_trait::async_trait]
impl DocumentStore for MongoDocumentStore {
    /// Creates every index (idempotent: an identical existing index is left alone). MongoDB
    /// creates the collections on first use.
    async fn prepare(&self) -> Result<(), StoreError> {
        for (collection, models) in Self::index_models() {
            self.db
                .collection::<Document>(collection)
                .create_indexes(models)
                .await
                .map_err(|e| mongo_err(&format!("creating the indexes of {collection}"), e))?;
        }
        self.prepare_analysis().await
    }

    async fn upsert_sources(&self, sources: &[NewsSource]) -> Result<(), StoreError> {
        for s in sources {
            let ctx = format!("upserting news source {:?}", s.name);
            let now = bson::DateTime::now();
            let update = doc! {
                "$set": {
                    "base_url": &s.base_url,
                    "feed_url": s.feed_url.as_deref(),
                    "type": to_bson_value("source type", &s.kind)?,
                    "is_active": s.is_active,
                    "crawl_interval_minutes": i64::from(s.crawl_interval_minutes),
                    "selectors": to_bson_value("selectors", &s.selectors)?,
                    "rate_limit": to_bson_value("rate_limit", &s.rate_limit)?,
                    "metadata": to_bson_value("metadata", &s.metadata)?,
                    "updated_at": now,
                },
                // An existing source keeps its crawl time and creation time.
                "$setOnInsert": {
                    "created_at": now,
                    "last_crawled_at": s.last_crawled_at.map(to_bson_date),
                },
            };
            self.sources
                .update_one(doc! { "name": &s.name }, update)
                .upsert(true)
                .await
                .map_err(|e| mongo_err(&ctx, e))?;
        }
        Ok(())
    }

    async fn source(&self, name: &str) -> Result<Option<NewsSource>, StoreError> {
        self.sources
            .find_one(doc! { "name": name })
            .await
            .map_err(|e| mongo_err(&format!("reading news source {name:?}"), e))?
            .map(SourceDoc::into_domain)
            .transpose()
    }

    async fn mark_crawled(&self, source: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let done = self
            .sources
            .update_one(
                doc! { "name": source },
                doc! { "$set": {
                    "last_crawled_at": to_bson_date(at),
                    "updated_at": bson::DateTime::now(),
                } },
            )
            .await
            .map_err(|e| mongo_err(&format!("marking news source {source:?} crawled"), e))?;
        if done.matched_count == 0 {
            return Err(StoreError::not_found("news source", source));
        }
        Ok(())
    }

    async fn known_url_hashes(&self, hashes: &[String]) -> Result<HashSet<String>, StoreError> {
        const CTX: &str = "looking up known url hashes";
        if hashes.is_empty() {
            return Ok(HashSet::new());
        }
        let docs: Vec<Document> = self
            .raw
            .clone_with_type::<Document>()
            .find(doc! { "url_hash": { "$in": hashes } })
            .projection(doc! { "url_hash": 1, "_id": 0 })
            .await
            .map_err(|e| mongo_err(CTX, e))?
            .try_collect()
            .await
            .map_err(|e| mongo_err(CTX, e))?;
        docs.iter()
            .map(|d| {
                d.get_str("url_hash")
                    .map(str::to_string)
                    .map_err(|e| StoreError::corrupt(CTX, e.to_string()))
            })
            .collect()
    }

    async fn insert_raw_article(&self, raw: &RawArticle) -> Result<Option<String>, StoreError> {
        validate_url_hash(&raw.url_hash)?;
        let doc = RawDoc::from_domain(raw);
        match self.raw.insert_one(&doc).await {
            Ok(_) => Ok(Some(doc.id.to_hex())),
            Err(e) if is_duplicate_key(&e) => Ok(None),
            Err(e) => Err(mongo_err(&format!("inserting raw article {}", raw.url), e)),
        }
    }

    async fn raw_article(&self, id: &str) -> Result<Option<RawArticle>, StoreError> {
        let Some(call) = Call::read("raw article", id) else {
            return Ok(None);
        };
        self.raw
            .find_one(doc! { "_id": call.oid })
            .await
            .map_err(call.err())?
            .map(RawDoc::into_domain)
            .transpose()
    }

    async fn claim_raw_articles(
        &self,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<RawArticle>, StoreError> {
        let now_ms = Utc::now().timestamp_millis();
        let now = bson::DateTime::from_millis(now_ms);
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let until = bson::DateTime::from_millis(now_ms.saturating_add(lease_ms));
        let filter = doc! { "$or": [
            { "processing_status": "PENDING" },
            { "processing_status": "PROCESSING", "lease_until": { "$lt": now } },
            // A PROCESSING page without a lease (written so by hand) must not be stuck forever.
            { "processing_status": "PROCESSING", "lease_until": null },
        ] };
        let update = doc! { "$set": { "processing_status": "PROCESSING", "lease_until": until } };
        claim_oldest(&self.raw, filter, update, limit, "claiming raw articles")
            .await?
            .into_iter()
            .map(RawDoc::into_domain)
            .collect()
    }

    /// Two writes, no multi-document transaction (which would need a replica set): the article
    /// insert is keyed on the unique `url_hash`, so if the process dies between the two writes
    /// the page's lease runs out, it is normalized again, the insert hits the duplicate key and
    /// returns the stored article, and the page is then marked COMPLETED. Repeating is harmless.
    async fn complete_raw_article(
        &self,
        raw_id: &str,
        article: &Article,
    ) -> Result<String, StoreError> {
        check_completion(raw_id, article)?;
        let call = Call::on("raw article", raw_id, "completing")?;
        let oid = call.oid;
        call.exists(&self.raw).await?;

        let doc = ArticleDoc::from_domain(oid, article);
        let article_id = match self.articles.insert_one(&doc).await {
            Ok(_) => doc.id.to_hex(),
            Err(e) if is_duplicate_key(&e) => {
                let ctx = format!("looking up article {}", article.url_hash);
                let existing = self
                    .articles
                    .clone_with_type::<Document>()
                    .find_one(doc! { "url_hash": &article.url_hash })
                    .projection(doc! { "_id": 1 })
                    .await
                    .map_err(|e| mongo_err(&ctx, e))?
                    .ok_or_else(|| {
                        StoreError::corrupt(&ctx, "duplicate url_hash but no article found")
                    })?;
                existing
                    .get_object_id("_id")
                    .map_err(|e| StoreError::corrupt(&ctx, e.to_string()))?
                    .to_hex()
            }
            Err(e) => return Err(mongo_err(&format!("inserting article {}", article.url), e)),
        };

        self.raw
            .update_one(
                doc! { "_id": oid },
                doc! { "$set": { "processing_status": "COMPLETED", "lease_until": null } },
            )
            .await
            .map_err(call.err())?;
        Ok(article_id)
    }

    /// One atomic update (an aggregation pipeline, so the new status can depend on the stored
    /// retry_count). A COMPLETED page stays so, as in the PostgreSQL store.
    async fn fail_raw_article(
        &self,
        raw_id: &str,
        error: &str,
        max_retries: u32,
    ) -> Result<(), StoreError> {
        let call = Call::on("raw article", raw_id, "recording the failure of")?;
        let next_count = doc! { "$add": [ { "$ifNull": ["$retry_count", 0_i64] }, 1_i64 ] };
        let pipeline = vec![doc! { "$set": {
            "retry_count": next_count.clone(),
            // $literal: inside a pipeline a string starting with '$' would be a field path.
            "error_message": { "$literal": error },
            "processing_status": { "$cond": [
                { "$lt": [next_count, i64::from(max_retries)] }, "PENDING", "FAILED"
            ] },
            "lease_until": null,
        } }];
        let done = self
            .raw
            .update_one(
                doc! { "_id": call.oid, "processing_status": { "$ne": "COMPLETED" } },
                pipeline,
            )
            .await
            .map_err(call.err())?;
        if done.matched_count > 0 {
            return Ok(());
        }
        // Not changed: COMPLETED (stays so), or not there at all.
        call.exists(&self.raw).await
    }

    async fn article_by_url_hash(&self, url_hash: &str) -> Result<Option<Article>, StoreError> {
        self.articles
            .find_one(doc! { "url_hash": url_hash })
            .await
            .map_err(|e| mongo_err(&format!("reading article {url_hash}"), e))?
            .map(ArticleDoc::into_domain)
            .transpose()
    }

    async fn counts(&self) -> Result<StoreCounts, StoreError> {
        const CTX: &str = "counting documents";
        let groups: Vec<Document> = self
            .raw
            .aggregate([doc! { "$group": { "_id": "$processing_status", "n": { "$sum": 1 } } }])
            .await
            .map_err(|e| mongo_err(CTX, e))?
            .try_collect()
            .await
            .map_err(|e| mongo_err(CTX, e))?;
        let articles = self
            .articles
            .count_documents(doc! {})
            .await
            .map_err(|e| mongo_err(CTX, e))?;
        let mut counts = StoreCounts {
            articles,
            ..StoreCounts::default()
        };
        for g in groups {
            let status = g
                .get_str("_id")
                .map_err(|e| StoreError::corrupt(CTX, e.to_string()))?;
            let n = count_of(&g, CTX)?;
            counts.set_raw_status(status, n, CTX)?;
        }
        Ok(counts)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.db
            .run_command(doc! { "ping": 1 })
            .await
            .map_err(|e| mongo_err("pinging MongoDB", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::Bson;

    #[test]
    fn dates_are_bson_dates_with_milliseconds() {
        let t = DateTime::from_timestamp_millis(1_705_314_600_123).unwrap();
        assert_eq!(from_bson_date(to_bson_date(t)).unwrap(), t);
        let raw = RawDoc::from_domain(&RawArticle {
            id: String::new(),
            url: "https://x.example/a".into(),
            url_hash: "0".repeat(64),
            source_name: "X".into(),
            raw_html: String::new(),
            response_headers: BTreeMap::new(),
            http_status: 200,
            crawled_at: t,
            processing_status: ProcessingStatus::Pending,
            retry_count: 0,
            error_message: None,
            feed_entry: None,
        });
        // The TTL index only expires documents whose field is a BSON date.
        let doc = bson::to_document(&raw).unwrap();
        assert!(matches!(doc.get("crawled_at"), Some(Bson::DateTime(_))));
        assert_eq!(doc.get_str("processing_status").unwrap(), "PENDING");
    }

    #[test]
    fn every_seed_index_is_declared() {
        let models = MongoDocumentStore::index_models();
        let raw = &models[1].1;
        let ttl = raw
            .iter()
            .find(|m| m.keys == doc! { "crawled_at": 1 })
            .unwrap();
        assert_eq!(
            ttl.options.as_ref().unwrap().expire_after,
            Some(Duration::from_secs(7_776_000))
        );
        let counts: Vec<usize> = models.iter().map(|(_, m)| m.len()).collect();
        assert_eq!(counts, [4, 5, 7]);
    }
}
