//! Sentence-level evaluation of the sentiment model on a labelled file (default: the PhraseBank
//! test split beside the repository), then its speed on those sentences on one thread.
//!
//! `cargo run --release --example eval_sentiment [-- FILE]`

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tradepipe_model::eval::{parse_labelled, sentence_speed};
use tradepipe_model::run_eval;
use tradepipe_model::sentiment::SentimentModel;

fn main() -> ExitCode {
    let path = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/data/news/sentiment/financial_phrasebank.test.tsv"
            ))
        });
    let report = match run_eval(&path, std::io::stdout().lock()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("eval_sentiment: {e}");
            return ExitCode::FAILURE;
        }
    };
    let content = std::fs::read_to_string(&path).unwrap_or_default();
    let (rows, _) = parse_labelled(&content);
    let texts: Vec<&str> = rows.iter().map(|(_, t)| t.as_str()).collect();
    let speed = sentence_speed(&SentimentModel::new(), &texts, Duration::from_secs(3));
    println!(
        "speed 1 thread: {:.2} µs/sentence, {:.0} sentences/s ({} sentences scored)",
        speed.micros_per_item(),
        speed.per_second(),
        speed.items
    );
    println!(
        "n={} accuracy={:.4} macro_f1={:.4}",
        report.n, report.accuracy, report.macro_f1
    );
    ExitCode::SUCCESS
}
