//! Trade files (Binance public data and WebSocket recordings, plain, gzip or zip): reading never
//! panics, and what it accepts keeps the promises the replay peer relies on.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::trades_file(data));
