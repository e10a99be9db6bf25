//! The analysis model through its public API: determinism, probability sanity, negation, crypto
//! vocabulary, entities, causal patterns, and the `analyze`/`eval` commands on constructed input.
//! All texts here are written for the tests (no PhraseBank sentences).

use std::io::Cursor;
use tradepipe_model::analysis::Direction;
use tradepipe_model::entities::EntityType;
use tradepipe_model::sentiment::Label;
use tradepipe_model::{Analyzer, MODEL_VERSION, NlpError, run_analyze, run_eval};

const ARTICLE_TITLE: &str = "Bitcoin jumps after SEC approves spot ETFs";
const ARTICLE_BODY: &str = "Bitcoin rose 7% to a record high on Thursday after the SEC approved \
    the first spot bitcoin ETFs. BlackRock and Fidelity reported strong inflows on the first day. \
    Analyst Jane Whitfield said the approval would draw institutional demand for months. \
    Trading volume on Binance and Coinbase doubled, and BTC options traders turned bullish.";

#[test]
fn same_input_same_output() {
    let a = Analyzer::new();
    let first = a.analyze(ARTICLE_TITLE, ARTICLE_BODY, &["BTCUSDT".to_string()]);
    for _ in 0..3 {
        let again = Analyzer::new().analyze(ARTICLE_TITLE, ARTICLE_BODY, &["BTCUSDT".to_string()]);
        assert_eq!(again, first);
        assert_eq!(
            serde_json::to_string(&again).unwrap(),
            serde_json::to_string(&first).unwrap()
        );
    }
    assert_eq!(first.model_version, MODEL_VERSION);
    assert_eq!(first.processing_time_ms, 0);
}

#[test]
fn full_article_reads_as_expected() {
    let a = Analyzer::new().analyze(ARTICLE_TITLE, ARTICLE_BODY, &[]);
    assert_eq!(a.sentiment.label, Label::Bullish, "{:?}", a.sentiment);
    assert_eq!(a.trend_prediction.direction, Direction::Up);
    assert!(
        a.trend_prediction.reasoning.contains("Bitcoin (BTCUSDT)"),
        "{}",
        a.trend_prediction.reasoning
    );
    assert_eq!(a.entities[0].text, "Bitcoin");
    assert_eq!(a.entities[0].count, 4, "{:?}", a.entities);
    assert_eq!(
        a.topics[0].name, "Institutional Investment / ETFs",
        "{:?}",
        a.topics
    );
    assert!(
        a.causal_signals
            .iter()
            .any(|c| c.cause == "SEC approves spot ETFs" && c.effect == "price increase"),
        "{:?}",
        a.causal_signals
    );
    assert!(
        a.key_phrases.iter().any(|p| p.contains("spot")),
        "{:?}",
        a.key_phrases
    );
    let q = &a.quality_metrics;
    for v in [
        q.text_quality,
        q.information_density,
        q.actionability,
        a.trend_prediction.confidence,
    ] {
        assert!((0.0..=1.0).contains(&v));
    }
    assert!(q.actionability > 0.6, "{q:?}");
}

#[test]
fn distribution_sums_to_one() {
    let an = Analyzer::new();
    for (t, b) in [
        ("", ""),
        ("x", ""),
        (ARTICLE_TITLE, ARTICLE_BODY),
        ("", "Prices were flat. Nothing happened. The end"),
        (
            "Exchange hacked",
            "Funds were stolen.\n\nWithdrawals halted.",
        ),
    ] {
        let s = an.analyze(t, b, &[]).sentiment;
        let d = s.distribution;
        assert!(
            (d.bullish + d.bearish + d.neutral - 1.0).abs() < 1e-9,
            "{t}|{b}"
        );
        assert!((-1.0..=1.0).contains(&s.score) && (0.0..=1.0).contains(&s.confidence));
    }
}

#[test]
fn negation_turns_a_bullish_statement() {
    let an = Analyzer::new();
    let pos = an
        .analyze("Traders are optimistic about ether", "", &[])
        .sentiment;
    let neg = an
        .analyze("Traders are not optimistic about ether", "", &[])
        .sentiment;
    assert_eq!(pos.label, Label::Bullish, "{pos:?}");
    assert_ne!(neg.label, Label::Bullish, "{neg:?}");
    assert!(neg.score < pos.score - 0.3);
}

#[test]
fn crypto_vocabulary() {
    let an = Analyzer::new();
    let label = |t: &str| an.analyze(t, "", &[]).sentiment;
    for (text, want) in [
        ("Spot bitcoin ETF inflows reach a record", Label::Bullish),
        (
            "Crypto exchange hacked, $150 million drained",
            Label::Bearish,
        ),
        (
            "Stablecoin depegs as holders rush to redeem",
            Label::Bearish,
        ),
        (
            "Binance lists new token, trading opens today",
            Label::Bullish,
        ),
        ("Exchange delists privacy coins", Label::Bearish),
    ] {
        let s = label(text);
        assert_eq!(s.label, want, "{text}: {s:?}");
    }
    // A large unlock is supply overhang: at least leaning bearish.
    let s = label("Token unlock of 10% of supply set for next week");
    assert!(s.score < 0.0, "{s:?}");
}

#[test]
fn entities_map_symbols_and_kinds() {
    let a = Analyzer::new().analyze(
        "SEC sues Binance over unregistered offerings",
        "The SEC said Binance misled investors. BTC and bitcoin both slipped; ETH held.",
        &[],
    );
    let find = |t: &str| a.entities.iter().find(|e| e.text == t);
    let btc = find("Bitcoin").expect("bitcoin");
    assert_eq!(btc.symbol.as_deref(), Some("BTCUSDT"));
    assert_eq!(btc.count, 2);
    assert_eq!(find("SEC").expect("sec").kind, EntityType::Regulator);
    assert_eq!(find("SEC").unwrap().count, 2);
    assert_eq!(find("Binance").expect("binance").kind, EntityType::Exchange);
    assert_eq!(
        find("Ethereum").expect("eth").symbol.as_deref(),
        Some("ETHUSDT")
    );
    let v = serde_json::to_value(&a.entities).unwrap();
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "REGULATOR" && e["symbol"].is_null())
    );
}

#[test]
fn causal_patterns_on_constructed_sentences() {
    let an = Analyzer::new();
    let causes = |t: &str| an.analyze("", t, &[]).causal_signals;
    let c = causes("Solana slumped 12% following a network outage.");
    assert_eq!(
        (c[0].cause.as_str(), c[0].effect.as_str()),
        ("network outage", "price decrease")
    );
    let c = causes("Ether climbed as staking demand grew.");
    assert_eq!(
        (c[0].cause.as_str(), c[0].effect.as_str()),
        ("staking demand grew", "price increase")
    );
    let c = causes("Rate cut hopes triggered a rally in altcoins.");
    assert_eq!(
        (c[0].cause.as_str(), c[0].effect.as_str()),
        ("Rate cut hopes", "price increase")
    );
    let c = causes("Bitcoin gained on the back of record ETF inflows over the coming months.");
    assert_eq!(c[0].cause, "record ETF inflows over the coming months");
    assert_eq!(c[0].time_horizon, "long-term");
    assert!(causes("Such as bitcoin, ether is traded as well.").is_empty());
}

#[test]
fn analyze_command_handles_mixed_lines() {
    let input = concat!(
        "{\"title\":\"Bitcoin rallies after ETF approval\",\"body\":\"Inflows were strong.\"}\n",
        "{\"title\": broken json\n",
        "\n",
        "Exchange hacked, funds stolen\n",
        "{\"text\":\"Ether slid amid liquidations.\",\"symbols\":[\"ETHUSDT\"]}\n",
        "[1,2,3]\n",
    );
    let mut out = Vec::new();
    let stats = run_analyze(Cursor::new(input), &mut out).unwrap();
    assert_eq!(
        (stats.lines, stats.analyzed, stats.errors, stats.blank),
        (6, 4, 1, 1)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0]["sentiment"]["label"], "BULLISH");
    assert_eq!(lines[1]["line"], 2);
    assert!(lines[1]["error"].as_str().unwrap().contains("expected"));
    assert_eq!(lines[2]["sentiment"]["label"], "BEARISH");
    assert_eq!(lines[3]["trend_prediction"]["direction"], "DOWN");
    // "[1,2,3]" is not an object but also not JSON-object-shaped: analysed as plain text.
    assert_eq!(lines[4]["model_version"], MODEL_VERSION);
}

#[test]
fn eval_command_gives_exact_metrics() {
    let dir = std::env::temp_dir().join(format!("tradepipe-nlp-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("labelled.tsv");
    // Sentences chosen so the model's verdicts are unambiguous; one deliberate mistake per
    // non-neutral class (gold neutral on a clearly bullish and a clearly bearish sentence).
    std::fs::write(
        &path,
        "label\ttext\n\
         positive\tBitcoin ETF inflows hit a record as prices rally\n\
         positive\tOperating profit rose sharply to a record high\n\
         negative\tCrypto exchange hacked and customer funds stolen\n\
         negative\tThe lender filed for bankruptcy after halting withdrawals\n\
         neutral\tThe conference takes place in Lisbon in May\n\
         neutral\tThe company has offices in three countries\n\
         neutral\tShares soared to an all-time high after record profit\n\
         neutral\tThe exchange was hacked and funds were stolen\n\
         unknown\tskipped row\n",
    )
    .unwrap();
    let mut out = Vec::new();
    let r = run_eval(&path, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!((r.n, r.skipped), (8, 1), "{text}");
    // gold bull 2 -> pred bull 2; gold bear 2 -> bear 2; gold neutral 4 -> 2 neutral, 1 bull, 1 bear.
    assert_eq!(r.confusion, [[2, 0, 0], [0, 2, 0], [1, 1, 2]], "{text}");
    assert!((r.accuracy - 0.75).abs() < 1e-12);
    let (bull, bear, neut) = (&r.classes[0], &r.classes[1], &r.classes[2]);
    assert!((bull.precision - 2.0 / 3.0).abs() < 1e-12 && bull.recall == 1.0);
    assert!((bull.f1 - 0.8).abs() < 1e-12 && (bear.f1 - 0.8).abs() < 1e-12);
    assert!(neut.precision == 1.0 && neut.recall == 0.5);
    assert!((neut.f1 - 2.0 / 3.0).abs() < 1e-12);
    assert!((r.macro_f1 - (0.8 + 0.8 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
    assert!(text.contains("accuracy=0.7500"), "{text}");
    assert!(text.contains("macro_f1=0.7556"), "{text}");
}

#[test]
fn eval_command_rejects_unlabelled_files() {
    let dir = std::env::temp_dir().join(format!("tradepipe-nlp-eval-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("empty.tsv");
    std::fs::write(&path, "label\ttext\n").unwrap();
    let r = run_eval(&path, Vec::new());
    std::fs::remove_dir_all(&dir).ok();
    assert!(matches!(r, Err(NlpError::Data { .. })), "{r:?}");
    assert!(matches!(
        run_eval(std::path::Path::new("/nonexistent/x.tsv"), Vec::new()),
        Err(NlpError::Data { .. })
    ));
}
