//! `tradepipe normalize`: a page saved on disk (.html or .html.gz) through the normalizer's own
//! code path, printed as the stored article's JSON, for an operator tuning a source's selectors.

use super::{NormalizeError, build_article, canonicalize_url, url_hash};
use crate::domain::{ProcessingStatus, RawArticle};
use crate::news::crawl::decode::{NotText, decode_body};
use crate::news::sources::{SourcesError, load_sources};
use chrono::{DateTime, Utc};
use tradepipe_model::aliases::SymbolAliases;

/// A raw article record for a page read from disk (`tradepipe normalize FILE.html`).
pub fn raw_from_file(
    html: String,
    url: &str,
    source_name: &str,
    now: DateTime<Utc>,
) -> Result<RawArticle, NormalizeError> {
    let canonical = canonicalize_url(url)?;
    Ok(RawArticle {
        id: String::new(),
        url_hash: url_hash(&canonical),
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
    Sources(#[from] SourcesError),
    #[error("source {0:?} is not in the sources file")]
    UnknownSource(String),
    #[error("{path} is not a text page: {source}")]
    NotText { path: String, source: NotText },
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
    let mut bytes = std::fs::read(path).map_err(read_err)?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .map_err(read_err)?;
        bytes = out;
    }
    // Decoded as the crawler decodes a response without a Content-Type charset (BOM, <meta>,
    // else UTF-8), and refused the same way when it is not text.
    let html = decode_body(&bytes, None).map_err(|source| NormalizeFileError::NotText {
        path: path.display().to_string(),
        source,
    })?;
    let known = match source {
        Some(name) => Some(
            load_sources(sources_file)?
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
