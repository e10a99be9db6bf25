//! Crawling: what the CrawlerActor needs to fetch a source politely (pacing, robots.txt, caps),
//! read its feed or listing page, and hold the per-source crawl lock on Redis.

pub mod decode; // response bytes -> page text: WHATWG charsets, binary bodies refused
pub mod egress; // which hosts and addresses a source may reach (SSRF defence)
pub mod feeds; // RSS/Atom feeds and HTML listing pages -> article URLs
pub mod fetch; // polite HTTP: pacing, robots.txt, conditional GET, size and redirect caps
pub mod lock; // lock:crawler:{source} on Redis, so one instance crawls a source at a time
