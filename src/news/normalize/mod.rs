//! Normalization: a stored raw page becomes the stored article (the seed's `articles` document,
//! `domain::Article`), and the canonical URL and `url_hash` every stage keys pages by. Pure apart
//! from `tradepipe normalize` reading its file; the caller supplies the clock.

mod article; // raw page -> Article: every field and its fallbacks
mod dates; // which date to trust, and parsing it into UTC
mod file; // `tradepipe normalize FILE`
mod language; // detected or declared language
mod url; // canonical URL and url_hash

pub use article::{EXCERPT_CHARS, WORDS_PER_MINUTE, build_article};
pub use file::{NormalizeFileError, normalize_file, raw_from_file};
pub use url::{canonicalize_url, url_hash};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NormalizeError {
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    #[error("unsupported URL scheme: {0}")]
    UnsupportedScheme(String),
    #[error(transparent)]
    NotText(#[from] crate::news::crawl::decode::NotText),
}
