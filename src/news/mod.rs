//! News: main-text extraction and normalization of crawled pages (pure, no I/O), and the
//! crawling machinery (polite fetching, feeds, locks, the local news server).

pub mod extract; // general main-content extractor and per-source selectors
pub mod feeds; // RSS/Atom entries and HTML listing links
pub mod fetch; // polite HTTP: pacing, robots.txt, conditional GET, size cap
pub mod lock; // per-source crawl lock on Redis
pub mod normalize; // page -> the seed's normalized article; canonical URLs and url_hash
pub mod server; // local news server for the demo and tests
