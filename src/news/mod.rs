//! News: main-text extraction and normalization of crawled pages (pure, no I/O), and the
//! crawling machinery (polite fetching, feeds, locks, the local news server).

pub mod article; // raw page -> stored article (shared by the actor and the normalize command)
pub mod extract; // general main-content extractor and per-source selectors
pub mod normalize; // page -> the seed's normalized article; canonical URLs and url_hash
pub mod sources; // the configured news sources, validated at start
