//! Evaluation of the sentiment model on labelled sentences, as a library so `run_eval`, the
//! `eval_sentiment` example and tests all compute the same numbers the same way.

use crate::metrics::Confusion;
use crate::sentiment::{Label, SentimentModel};
use serde::Serialize;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Precision/recall/F1 of one class, named for printing and JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassReport {
    pub label: Label,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: u64,
}

/// Result of scoring a labelled file sentence by sentence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    pub model_version: String,
    /// Labelled rows scored.
    pub n: u64,
    /// Non-empty lines that were neither a header nor a labelled row (unknown label, no text).
    pub skipped: u64,
    pub accuracy: f64,
    pub macro_f1: f64,
    pub classes: Vec<ClassReport>,
    /// `[gold][predicted]` in bullish, bearish, neutral order.
    pub confusion: [[u64; 3]; 3],
}

impl EvalReport {
    /// Builds the report from a confusion matrix.
    pub fn from_confusion(model_version: &str, c: &Confusion, skipped: u64) -> Self {
        Self {
            model_version: model_version.to_string(),
            n: c.total(),
            skipped,
            accuracy: c.accuracy(),
            macro_f1: c.macro_f1(),
            classes: Label::ALL
                .iter()
                .map(|&label| {
                    let s = c.class(label);
                    ClassReport {
                        label,
                        precision: s.precision,
                        recall: s.recall,
                        f1: s.f1,
                        support: s.support,
                    }
                })
                .collect(),
            confusion: c.m,
        }
    }
}

/// Labelled rows in either of two formats, decided per line:
/// - `label<TAB>text` (the PhraseBank files in `shared/data/news/sentiment/`; header skipped),
/// - a JSON object `{"label": "...", "text": "..."}` (what the daemon's own tools emit).
///
/// Labels: positive/negative/neutral or BULLISH/BEARISH/NEUTRAL, any case. Returns the rows and
/// the count of other non-empty lines (the header `label<TAB>text` is not counted).
pub fn parse_labelled(content: &str) -> (Vec<(Label, String)>, u64) {
    #[derive(serde::Deserialize)]
    struct Row {
        label: String,
        text: String,
    }
    let mut rows = Vec::new();
    let mut skipped = 0;
    for line in content.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let parsed = if line.trim_start().starts_with('{') {
            serde_json::from_str::<Row>(line)
                .ok()
                .and_then(|r| Some((Label::parse(&r.label)?, r.text)))
        } else {
            line.split_once('\t')
                .and_then(|(l, t)| Some((Label::parse(l)?, t.to_string())))
        };
        match parsed {
            Some((label, text)) if !text.trim().is_empty() => rows.push((label, text)),
            _ if line.eq_ignore_ascii_case("label\ttext") => {}
            _ => skipped += 1,
        }
    }
    (rows, skipped)
}

/// Scores each row as one sentence (PhraseBank rows are sentences) and tallies the confusion.
pub fn evaluate(model: &SentimentModel, rows: &[(Label, String)]) -> Confusion {
    let mut c = Confusion::default();
    for (gold, text) in rows {
        c.add(*gold, model.score_sentence(text).label);
    }
    c
}

/// Wall-clock speed of a repeated job.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Speed {
    pub items: u64,
    pub seconds: f64,
}

impl Speed {
    pub fn per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.items as f64 / self.seconds
        } else {
            0.0
        }
    }
    pub fn micros_per_item(&self) -> f64 {
        if self.items > 0 {
            self.seconds * 1e6 / self.items as f64
        } else {
            0.0
        }
    }
}

/// Scores all `texts` as sentences repeatedly for at least `min` on one thread.
pub fn sentence_speed(model: &SentimentModel, texts: &[&str], min: Duration) -> Speed {
    let start = Instant::now();
    let mut items = 0u64;
    if texts.is_empty() {
        return Speed {
            items,
            seconds: 0.0,
        };
    }
    while start.elapsed() < min {
        for t in texts {
            black_box(model.score_sentence(black_box(t)));
        }
        items += texts.len() as u64;
    }
    Speed {
        items,
        seconds: start.elapsed().as_secs_f64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tsv_jsonl_and_counts_junk() {
        let (rows, skipped) = parse_labelled(
            "label\ttext\npositive\tgood\n{\"label\":\"BEARISH\",\"text\":\"bad\"}\nweird\tx\n\nno tab\n",
        );
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1], (Label::Bearish, "bad".to_string()));
        assert_eq!(skipped, 2);
    }
}
