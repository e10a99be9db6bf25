//! News sources, raw pages and normalized articles: the seed's `news_sources`, `raw_articles` and
//! `articles` documents, as plain data. Field names are the seed's, so the PostgreSQL (JSONB) and
//! MongoDB stores serialize the same shape.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SourceKind {
    /// RSS or Atom feed lists the articles.
    Rss,
    /// An HTML listing page; `selectors.article_list` finds the article links.
    Html,
    /// A JSON API (not implemented: such a source is rejected at start with a clear error).
    Api,
}

/// CSS selectors for a source's pages; any may be absent (the general extractor fills in).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourceSelectors {
    pub article_list: Option<String>,
    pub title: Option<String>,
    pub body: Option<String>,
    pub published_date: Option<String>,
    pub author: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimit {
    pub requests_per_minute: u32,
    /// Minimum pause between two requests to the source.
    pub delay_ms: u64,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            requests_per_minute: 10,
            delay_ms: 1000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourceMetadata {
    /// 0..1; weighs the source's articles in predictions.
    pub reliability_score: f64,
    pub language: String,
    pub categories: Vec<String>,
}

impl Default for SourceMetadata {
    fn default() -> Self {
        SourceMetadata {
            reliability_score: 0.5,
            language: "en".into(),
            categories: Vec::new(),
        }
    }
}

/// A configured news source (`config/sources.toml`, upserted by name into `news_sources`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewsSource {
    pub name: String,
    pub base_url: String,
    #[serde(default)]
    pub feed_url: Option<String>,
    #[serde(rename = "type")]
    pub kind: SourceKind,
    #[serde(default)]
    pub is_active: bool,
    #[serde(default = "default_crawl_interval")]
    pub crawl_interval_minutes: u32,
    #[serde(default)]
    pub selectors: SourceSelectors,
    #[serde(default)]
    pub rate_limit: RateLimit,
    #[serde(default)]
    pub metadata: SourceMetadata,
    /// Hosts besides the base and feed URLs' own that the crawler may fetch for this source
    /// (`"cdn.example.com"`, or `"*.example.com"` for a domain and its subdomains). Every other
    /// host a feed links or redirects to is refused (`blocked_host`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_hosts: Vec<String>,
    /// Lets this source's fetches reach loopback, private and link-local addresses: only for a
    /// site you run on your own network (the test and demo news server). Off, such addresses
    /// are refused (`blocked_address`) whatever name leads to them.
    #[serde(default)]
    pub allow_private_network: bool,
    /// Kept current by the crawler; not configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_crawled_at: Option<DateTime<Utc>>,
}

fn default_crawl_interval() -> u32 {
    15
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ProcessingStatus {
    Pending,
    Processing,
    Completed,
    Failed,
}

impl ProcessingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProcessingStatus::Pending => "PENDING",
            ProcessingStatus::Processing => "PROCESSING",
            ProcessingStatus::Completed => "COMPLETED",
            ProcessingStatus::Failed => "FAILED",
        }
    }
}

/// What the feed said about an entry; the normalizer falls back to it (title, date, author).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FeedEntryMeta {
    pub title: Option<String>,
    pub published_at: Option<DateTime<Utc>>,
    pub author: Option<String>,
    pub summary: Option<String>,
    pub categories: Vec<String>,
}

/// One fetched page, stored once (`url_hash` is unique) before anything is derived from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawArticle {
    /// Store-assigned id (UUID text in PostgreSQL, ObjectId hex in MongoDB); empty before insert.
    #[serde(default)]
    pub id: String,
    /// The canonical URL (see `news::normalize::canonicalize_url`).
    pub url: String,
    /// SHA-256 hex of `url`: the dedup key everywhere.
    pub url_hash: String,
    pub source_name: String,
    pub raw_html: String,
    pub response_headers: BTreeMap<String, String>,
    pub http_status: u16,
    pub crawled_at: DateTime<Utc>,
    pub processing_status: ProcessingStatus,
    pub retry_count: u32,
    pub error_message: Option<String>,
    #[serde(default)]
    pub feed_entry: Option<FeedEntryMeta>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArticleSource {
    pub id: String,
    pub name: String,
    pub url: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArticleAuthor {
    pub name: Option<String>,
    pub profile_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArticleImage {
    pub url: String,
    pub alt: Option<String>,
    /// `featured` (og:image) or `inline`.
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArticleMetadata {
    pub og_title: Option<String>,
    pub og_description: Option<String>,
    pub canonical_url: Option<String>,
}

/// A normalized article (the seed's `articles` document).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Article {
    #[serde(default)]
    pub id: String,
    pub raw_article_id: String,
    pub url: String,
    pub url_hash: String,
    pub title: String,
    pub body: String,
    pub excerpt: String,
    pub source: ArticleSource,
    pub author: ArticleAuthor,
    pub published_at: Option<DateTime<Utc>>,
    pub crawled_at: DateTime<Utc>,
    pub normalized_at: DateTime<Utc>,
    pub word_count: u32,
    pub reading_time_minutes: u32,
    pub language: Option<String>,
    pub symbols: Vec<String>,
    pub tags: Vec<String>,
    pub categories: Vec<String>,
    pub images: Vec<ArticleImage>,
    pub metadata: ArticleMetadata,
    /// PENDING until the analysis pipeline has written its result.
    pub analysis_status: ProcessingStatus,
}
