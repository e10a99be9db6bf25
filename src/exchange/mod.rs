//! Binance: the wire format, the REST client, public-data trade files and the local replay peer.

/// Wire format: stream messages, REST payloads, stream URLs (pure, no I/O).
pub mod binance;
/// `tradepipe replay`: a local Binance peer (WS + REST) playing trade files back.
pub mod replay;
/// REST client: `historicalTrades` backfill and `exchangeInfo`, rate-limit aware.
pub mod rest;
/// data.binance.vision trade files and WebSocket recordings -> `Vec<Trade>`.
pub mod trades_file;
