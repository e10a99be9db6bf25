//! The `analyze` and sentiment `eval` commands as functions over a reader and a writer, so the
//! binary only wires stdin/stdout (or files) and tests drive them with byte buffers.

use crate::NlpError;
use crate::analysis::Analyzer;
use crate::eval::{EvalReport, evaluate, parse_labelled};
use crate::sentiment::SentimentModel;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use std::path::Path;

/// Counts of one `run_analyze` pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AnalyzeStats {
    /// Input lines read, blank ones included.
    pub lines: u64,
    /// Analyses written.
    pub analyzed: u64,
    /// Error lines written (malformed JSON input).
    pub errors: u64,
    /// Blank lines, skipped without output.
    pub blank: u64,
}

/// A JSON input line. `text` is accepted as a synonym of `body`; `symbols` is the hint.
#[derive(Debug, Deserialize)]
struct Input {
    #[serde(default)]
    title: String,
    #[serde(default, alias = "text")]
    body: String,
    #[serde(default)]
    symbols: Vec<String>,
}

/// Reads one article per line and writes one JSON line per non-blank input line:
/// - a line starting with `{` is a JSON object `{"title": .., "body": .., "symbols": [..]}`
///   (all optional); if it does not parse, the output line is `{"error": .., "line": N}`
///   (N counted from 1) and the run goes on;
/// - any other line is plain text and is analysed as a headline.
///
/// Fails only on I/O errors of the reader or writer.
pub fn run_analyze(input: impl BufRead, mut output: impl Write) -> Result<AnalyzeStats, NlpError> {
    let analyzer = Analyzer::new();
    let mut stats = AnalyzeStats::default();
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        stats.lines += 1;
        let trimmed = line.trim();
        if trimmed.is_empty() {
            stats.blank += 1;
            continue;
        }
        if trimmed.starts_with('{') {
            match serde_json::from_str::<Input>(trimmed) {
                Ok(a) => {
                    let analysis = analyzer.analyze_timed(&a.title, &a.body, &a.symbols);
                    serde_json::to_writer(&mut output, &analysis)?;
                    stats.analyzed += 1;
                }
                Err(e) => {
                    let err = serde_json::json!({ "error": e.to_string(), "line": i + 1 });
                    serde_json::to_writer(&mut output, &err)?;
                    stats.errors += 1;
                }
            }
        } else {
            let analysis = analyzer.analyze_timed(trimmed, "", &[]);
            serde_json::to_writer(&mut output, &analysis)?;
            stats.analyzed += 1;
        }
        output.write_all(b"\n")?;
    }
    output.flush()?;
    Ok(stats)
}

/// Scores every labelled sentence of `path` (`label<TAB>text` as in
/// `shared/data/news/sentiment/`, or JSON lines `{"label", "text"}`) and writes accuracy,
/// per-class precision/recall/F1, macro-F1 and the confusion matrix. A file without a single
/// labelled row is an error: a report of zeros would read like a broken model.
pub fn run_eval(path: &Path, mut output: impl Write) -> Result<EvalReport, NlpError> {
    let content = std::fs::read_to_string(path).map_err(|e| NlpError::Data {
        path: path.display().to_string(),
        msg: e.to_string(),
    })?;
    let (rows, skipped) = parse_labelled(&content);
    if rows.is_empty() {
        return Err(NlpError::Data {
            path: path.display().to_string(),
            msg: "no labelled rows (expected label<TAB>text or {\"label\",\"text\"} lines)".into(),
        });
    }
    let model = SentimentModel::new();
    let confusion = evaluate(&model, &rows);
    let report = EvalReport::from_confusion(model.loaded_version(), &confusion, skipped);
    writeln!(
        output,
        "model {} on {}",
        report.model_version,
        path.display()
    )?;
    writeln!(
        output,
        "n={} skipped={} accuracy={:.4} macro_f1={:.4}",
        report.n, report.skipped, report.accuracy, report.macro_f1
    )?;
    writeln!(
        output,
        "{:<8} {:>9} {:>9} {:>9} {:>8}",
        "class", "precision", "recall", "f1", "support"
    )?;
    for c in &report.classes {
        writeln!(
            output,
            "{:<8} {:>9.4} {:>9.4} {:>9.4} {:>8}",
            c.label.as_str(),
            c.precision,
            c.recall,
            c.f1,
            c.support
        )?;
    }
    writeln!(
        output,
        "confusion [gold][pred] (bullish, bearish, neutral): {:?}",
        report.confusion
    )?;
    output.flush()?;
    Ok(report)
}
