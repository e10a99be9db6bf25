//! From a stored raw page to the stored normalized article: the one code path shared by the
//! NormalizerActor and `tradepipe normalize`. Pure; the caller supplies the clock.

use crate::domain::news::{ArticleAuthor, ArticleSource, FeedEntryMeta};
use crate::domain::{Article, NewsSource, ProcessingStatus, RawArticle};
use crate::news::normalize::{self, FeedEntry, NormalizeError, PageInput};
use chrono::{DateTime, Utc};
use tradepipe_model::aliases::SymbolAliases;

fn feed_entry(meta: &FeedEntryMeta) -> FeedEntry {
    FeedEntry {
        title: meta.title.clone(),
        published: meta.published_at.map(|d| d.to_rfc3339()),
        author: meta.author.clone(),
        summary: meta.summary.clone(),
        categories: meta.categories.clone(),
    }
}

/// Normalizes one raw page. `source` gives selectors and the source's id/name/url when known.
pub fn build_article(
    raw: &RawArticle,
    source: Option<&NewsSource>,
    aliases: &SymbolAliases,
    now: DateTime<Utc>,
) -> Result<Article, NormalizeError> {
    let selectors = source.map(|s| &s.selectors);
    let feed = raw.feed_entry.as_ref().map(feed_entry);
    let input = PageInput {
        html: &raw.raw_html,
        url: &raw.url,
        source_name: Some(raw.source_name.as_str()).filter(|s| !s.is_empty()),
        selectors,
        feed: feed.as_ref(),
    };
    let n = normalize::normalize_article(&input, aliases)?;
    let source_ref = match (source, n.source.as_ref()) {
        (Some(s), _) => ArticleSource {
            id: s.name.clone(),
            name: s.name.clone(),
            url: s.base_url.clone(),
        },
        (None, Some(r)) => ArticleSource {
            id: r.name.clone(),
            name: r.name.clone(),
            url: r.url.clone(),
        },
        (None, None) => ArticleSource::default(),
    };
    let mut categories = n.categories;
    if let Some(s) = source {
        for c in &s.metadata.categories {
            if !categories.contains(c) {
                categories.push(c.clone());
            }
        }
    }
    Ok(Article {
        id: String::new(),
        raw_article_id: raw.id.clone(),
        // The raw article's URL is already canonical and its hash is the dedup key the crawler
        // used; keep both identical so the two records always join.
        url: raw.url.clone(),
        url_hash: raw.url_hash.clone(),
        title: n.title,
        body: n.body,
        excerpt: n.excerpt,
        source: source_ref,
        author: n
            .author
            .map(|a| ArticleAuthor {
                name: Some(a.name),
                profile_url: a.profile_url,
            })
            .unwrap_or_default(),
        published_at: n.published_at,
        crawled_at: raw.crawled_at,
        normalized_at: now,
        word_count: n.word_count.min(u32::MAX as usize) as u32,
        reading_time_minutes: n.reading_time_minutes.min(u32::MAX as usize) as u32,
        language: n.language,
        symbols: n.symbols,
        tags: n.tags,
        categories,
        images: n.images,
        metadata: n.metadata,
        analysis_status: ProcessingStatus::Pending,
    })
}

/// A raw article record for a page read from disk (`tradepipe normalize FILE.html`).
pub fn raw_from_file(
    html: String,
    url: &str,
    source_name: &str,
    now: DateTime<Utc>,
) -> Result<RawArticle, NormalizeError> {
    let canonical = normalize::canonicalize_url(url)?;
    Ok(RawArticle {
        id: String::new(),
        url_hash: normalize::url_hash(&canonical),
        url: canonical,
        source_name: source_name.to_string(),
        raw_html: html,
        response_headers: Default::default(),
        http_status: 200,
        crawled_at: now,
        processing_status: ProcessingStatus::Processing,
        retry_count: 0,
        error_message: None,
        feed_entry: None,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum NormalizeFileError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Sources(#[from] crate::news::sources::SourcesError),
    #[error("source {0:?} is not in the sources file")]
    UnknownSource(String),
    #[error(transparent)]
    Normalize(#[from] NormalizeError),
    #[error("rendering JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// `tradepipe normalize`: the article of a page on disk as one JSON object (absent values are
/// present as null or empty, with the seed's field names).
pub fn normalize_file(
    path: &std::path::Path,
    url: Option<&str>,
    source: Option<&str>,
    sources_file: &std::path::Path,
) -> Result<String, NormalizeFileError> {
    use std::io::Read;
    let read_err = |e| NormalizeFileError::Read {
        path: path.display().to_string(),
        source: e,
    };
    let bytes = std::fs::read(path).map_err(read_err)?;
    let html = if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .map_err(read_err)?;
        String::from_utf8_lossy(&out).into_owned()
    } else {
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let known = match source {
        Some(name) => Some(
            crate::news::sources::load_sources(sources_file)?
                .into_iter()
                .find(|s| s.name == name)
                .ok_or_else(|| NormalizeFileError::UnknownSource(name.to_string()))?,
        ),
        None => None,
    };
    let default_url = format!(
        "http://localhost/{}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let now = Utc::now();
    let raw = raw_from_file(html, url.unwrap_or(&default_url), source.unwrap_or(""), now)?;
    let article = build_article(&raw, known.as_ref(), &SymbolAliases::default_crypto(), now)?;
    Ok(serde_json::to_string(&article)?)
}
