//! Binance: the wire format, the REST client and public-data trade files. The local replay peer
//! is test equipment (`crates/testkit`).

/// Wire format: stream messages, REST payloads, stream URLs (pure, no I/O).
pub mod binance;
/// REST client: `historicalTrades` backfill and `exchangeInfo`, rate-limit aware.
pub mod rest;
/// data.binance.vision trade files and WebSocket recordings -> `Vec<Trade>`.
pub mod trades_file;
