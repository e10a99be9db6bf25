//! tradepipe's analysis model and prediction math: pure functions from article text to the seed's `analysis_results`
//! document (sentiment, entities, topics, key phrases, causal signals, a per-article trend
//! prediction and quality metrics). No I/O and no global mutable state, so every actor or thread
//! can share one [`Analyzer`] and the same input always gives the same output for a given
//! [`analysis::MODEL_VERSION`] (only `processing_time_ms` varies).
//!
//! Layout: `tokenize` → `lexicon` → `sentiment` (the trained scorer; `train`/`eval`/`metrics`
//! build and measure it), the table-driven extractors `entities`, `topics`, `causal`, and
//! `analysis` which combines them. `predict` turns analyses into per-symbol trend predictions and
//! scores them; `record` holds the stored documents both produce. `cli` holds the line-oriented
//! `analyze`/`eval` logic that this crate's `tradepipe-model` binary wires to stdin/stdout.
//!
//! May use: std, serde, chrono, rust_decimal. Knows nothing of the daemon, its actors, stores or
//! I/O, so the daemon, the benchmarks and the model tools share one copy of the arithmetic.

pub mod aliases; // mention -> trading symbol table, shared with the normalizer
pub mod analysis; // Analyzer: the whole analysis_results document for one article
pub mod calibration; // back-tested hit probability of a raw news call: the stated confidence
pub mod causal; // cause -> effect statements ("fell after", "sparked")
pub mod cli; // line-oriented analyze and eval commands (reader in, writer out)
pub mod entities; // gazetteers + alias table + capitalised-span heuristic
pub mod eval; // accuracy, per-class P/R/F1 and speed on labelled sentences
pub mod hash; // FNV-1a and round4, shared by the model and the extractor
pub mod lexicon; // hand-written finance and crypto polarity tables, negation, modifiers
pub mod metrics; // confusion matrix and derived scores
pub mod predict; // per-symbol trend predictions from analysed news, scored against candles
pub mod record; // analysis_results and trend_predictions documents (plain data)
pub mod sentiment; // lexicon + hashed-feature logistic regression, sentence and article
pub mod text; // case-preserving word scanner with offsets
pub mod tokenize; // tokenizer, stemmer, sentence splitter
pub mod topics; // keyword-group topics and key phrases
pub mod train; // deterministic trainer for `weights/sentiment_weights.json`

pub use analysis::{Analysis, Analyzer, MODEL_VERSION};
pub use cli::{AnalyzeStats, run_analyze, run_eval};
pub use eval::EvalReport;

/// Errors of the line-oriented commands (the model itself cannot fail).
#[derive(Debug, thiserror::Error)]
pub enum NlpError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{path}: {msg}")]
    Data { path: String, msg: String },
}
