//! Test equipment for tradepipe, kept out of the production binary: the local peers the demo,
//! the tests and the benchmarks run the daemon's real client code against, and the support code
//! of the end-to-end tests.
//!
//! May use: the daemon's library (`tradepipe`: its wire formats and domain types, so the peers
//! speak exactly what the daemon parses) and the test engines. Nothing in the daemon uses it.

pub mod bodies; // generated response bodies: random bytes, a PNG, pages in legacy charsets
pub mod news_server; // real article pages, feeds, robots.txt, and the hostile cases (bombs, slow-loris)
pub mod replay; // a Binance peer (WebSocket + REST) playing public-data trade files back
pub mod support; // end-to-end helpers: child processes, fault proxy, reference candle fold
pub mod tls; // a throw-away CA (openssl) and a TLS-only redis-server
