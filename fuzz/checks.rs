//! What each fuzz target checks, shared by the fuzz targets (fuzz/fuzz_targets) and the
//! regression test that replays committed inputs (tests/fuzz_regressions.rs), so a crash found
//! by the fuzzer fails the ordinary test suite in exactly the same way.
#![allow(dead_code)] // each fuzz target uses one of these

use std::path::PathBuf;
use tradepipe::domain::news::{NewsSource, SourceKind, SourceSelectors};
use tradepipe::exchange::binance::{StreamEvent, parse_stream_message, trade_message_json};
use tradepipe::exchange::trades_file::{read_any_trades, read_trades_file};
use tradepipe::news::crawl::decode::decode_body;
use tradepipe::news::normalize::{build_article, raw_from_file};
use tradepipe_model::aliases::SymbolAliases;

/// Binance stream messages: parsing never panics, and a message that parses as a trade survives
/// a round trip through Binance's wire format (raw and combined) unchanged.
pub fn stream_message(data: &[u8]) {
    if let Ok(StreamEvent::Trade(trade)) = parse_stream_message(data) {
        for combined in [false, true] {
            let wire = trade_message_json(&trade, trade.time_ms, combined);
            match parse_stream_message(wire.as_bytes()) {
                Ok(StreamEvent::Trade(again)) => assert_eq!(again, trade, "{wire}"),
                other => panic!("re-rendered trade does not parse back: {other:?} from {wire}"),
            }
        }
    }
}

/// The first byte picks the container, the rest is the file.
const NAMES: [&str; 4] = [
    "BTCUSDT-trades-fuzz.csv",
    "BTCUSDT-trades-fuzz.csv.gz",
    "BTCUSDT-trades-fuzz.zip",
    "recording-fuzz.jsonl",
];

/// Trade files (Binance public data and WebSocket recordings; plain, gzip or zip): reading never
/// panics, and what it accepts keeps the promises the replay peer relies on.
pub fn trades_file(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!(
        "tradepipe-fuzz-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::create_dir_all(&dir);
    let path: PathBuf = dir.join(NAMES[usize::from(pick) % NAMES.len()]);
    if std::fs::write(&path, body).is_err() {
        return;
    }
    if let Ok(trades) = read_trades_file(&path, None) {
        assert!(
            trades.windows(2).all(|w| w[0].trade_id < w[1].trade_id),
            "ids strictly increase"
        );
        assert!(
            trades
                .iter()
                .all(|t| t.price > 0.into() && t.qty > 0.into())
        );
        assert!(trades.iter().all(|t| &*t.symbol == "BTCUSDT"));
    }
    let _ = read_any_trades(&path, Some("BTCUSDT"));
    let _ = std::fs::remove_file(&path);
}

/// Article pages: decoding, extraction and normalization never panic or overflow the stack, with
/// and without per-source selectors (bit 1 of the first byte) and a single-byte charset (bit 0).
pub fn html_normalizer(data: &[u8]) {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let content_type = (flags & 1 == 1).then_some("text/html; charset=windows-1252");
    let Ok(html) = decode_body(body, content_type) else {
        return; // not text: refused before extraction
    };
    let selectors = SourceSelectors {
        title: Some("h1.headline, article h1".into()),
        body: Some("div.article-body p, article > p".into()),
        published_date: Some("time[datetime]".into()),
        author: Some("[rel=author], .byline".into()),
        article_list: None,
    };
    let source = NewsSource {
        name: "fuzz".into(),
        base_url: "https://news.example.com".into(),
        feed_url: None,
        kind: SourceKind::Rss,
        is_active: true,
        crawl_interval_minutes: 15,
        selectors,
        rate_limit: Default::default(),
        metadata: Default::default(),
        allowed_hosts: Vec::new(),
        allow_private_network: false,
        last_crawled_at: None,
    };
    let now = chrono::Utc::now();
    let url = "https://news.example.com/2024/08/09/article?utm_source=x#top";
    let Ok(raw) = raw_from_file(html.clone(), url, "fuzz", now) else {
        panic!("the fixed URL is valid");
    };
    let aliases = SymbolAliases::default_crypto();
    let source = (flags & 2 == 2).then_some(&source);
    if let Ok(article) = build_article(&raw, source, &aliases, now) {
        assert!(
            article.body.len() <= html.len() * 4 + 1024,
            "body grew far beyond the input"
        );
    }
}
