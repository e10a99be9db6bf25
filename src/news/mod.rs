//! News, by stage: `crawl` fetches pages politely (the only I/O), `extract` finds a page's main
//! text and metadata, `normalize` assembles the stored article. Extraction and normalization are
//! pure. The local news site is test equipment (`crates/testkit`).

pub mod crawl; // polite fetching, robots.txt, feeds and listings, the Redis crawl lock
pub mod extract; // general main-content extractor and per-source selectors
pub mod normalize; // raw page -> stored article; canonical URLs and url_hash
pub mod sources; // the configured news sources, validated at start
