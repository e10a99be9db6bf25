//! Binance stream messages (what the exchange, or anything between it and us, sends): parsing
//! never panics, and a message that parses as a trade survives a round trip through Binance's
//! wire format unchanged.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::stream_message(data));
