//! Article pages (anything a web server sends): decoding, extraction and normalization never
//! panic or overflow the stack, with and without per-source selectors.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::html_normalizer(data));
