//! Binance: the wire format, the REST client, public-data trade files and the local replay peer.

pub mod binance; // wire format: stream messages, REST payloads, URLs (pure, no I/O)
pub mod replay;
pub mod rest;
pub mod trades_file; // data.binance.vision trade files and WS recordings -> Vec<Trade> // REST client: historicalTrades backfill and exchangeInfo, rate-limit aware // `tradepipe replay`: local Binance peer (WS + REST) playing trade files
