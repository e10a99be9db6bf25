//! News: main-text extraction and normalization of crawled pages (pure, no I/O), and the
//! crawling machinery (polite fetching, feeds, locks). The local news site is test equipment
//! (`crates/testkit`).

pub mod article; // raw page -> stored article (shared by the actor and the normalize command)
pub mod decode; // response bytes -> page text: WHATWG charsets, binary bodies refused
pub mod extract; // general main-content extractor and per-source selectors
pub mod feeds; // RSS/Atom feeds and HTML listing pages -> article URLs
pub mod fetch; // polite HTTP: pacing, robots.txt, conditional GET, size and redirect caps
pub mod lock; // lock:crawler:{source} on Redis, so one instance crawls a source at a time
pub mod normalize; // page -> the seed's normalized article; canonical URLs and url_hash
pub mod sources; // the configured news sources, validated at start
