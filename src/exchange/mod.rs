//! Venues' wire formats behind one trait (`venue`), Binance's REST client and public-data trade
//! files, and recorded sessions. The local replay peer is test equipment (`crates/testkit`).

/// Wire format: stream messages, REST payloads, stream URLs (pure, no I/O).
pub mod binance;
/// Bybit v5 public trades (spot, linear, inverse).
pub mod bybit;
/// Coinbase Advanced Trade and the legacy Exchange feed.
pub mod coinbase;
/// Drops trades already passed on (snapshots, REST pages, parallel connections).
pub mod dedup;
/// Kraken WS v2 (and v1 as recorded) and REST trades.
pub mod kraken;
/// OKX v5 public trades.
pub mod okx;
/// Recorded sessions (cryptofeed formats, REST pages) and `tradepipe trades`.
pub mod recording;
/// REST client: `historicalTrades` backfill and `exchangeInfo`, rate-limit aware.
pub mod rest;
/// One venue's client without the socket: parse, dedup, count.
pub mod session;
/// data.binance.vision trade files and WebSocket recordings -> `Vec<Trade>`.
pub mod trades_file;
/// The venue abstraction: the trait every venue implements, and the types it speaks.
pub mod venue;
/// What every wire format shares: the error type, exact decimals and times.
pub mod wire;
