//! `tradepipe-model`: the analysis model on the command line, for tuning and measuring it without
//! a daemon. `analyze` reads articles on stdin and writes one analysis JSON line each; `eval FILE`
//! scores the sentiment model on a labelled file. Training is `examples/train_sentiment.rs`
//! (`crates/model/train.sh`).

use std::path::Path;
use std::process::ExitCode;

/// The daemon's allocator, so `analyze` timings measure what the daemon runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: tradepipe-model analyze < articles.jsonl
       tradepipe-model eval FILE

analyze  JSON lines ({\"title\":..,\"body\":..,\"symbols\":[..]}) or plain text lines on stdin;
         one analysis JSON line per input on stdout, a summary on stderr
eval     a labelled file (Financial PhraseBank `label<TAB>text`, or {\"label\",\"text\"} lines):
         accuracy, per-class precision/recall/F1 and macro-F1";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["analyze"] => {
            tradepipe_model::run_analyze(std::io::stdin().lock(), std::io::stdout().lock())
                .map(|stats| eprintln!("{stats:?}"))
        }
        ["eval", file] => {
            tradepipe_model::run_eval(Path::new(file), std::io::stdout().lock()).map(|_| ())
        }
        ["-h"] | ["--help"] | ["help"] => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tradepipe-model: error: {e}");
            ExitCode::FAILURE
        }
    }
}
