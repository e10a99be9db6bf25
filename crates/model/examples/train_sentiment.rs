//! Trains the sentiment weights from a PhraseBank-format file (`label<TAB>text`); a thin argument
//! parser over `tradepipe_model::train`. `crates/model/train.sh` runs it with the committed
//! hyper-parameters and must reproduce `weights/sentiment_weights.json` byte for byte.
//!
//! Usage (`cargo run --release --example train_sentiment -- ...`):
//!   --train FILE --cv 5 [--errors N]            k-fold cross-validation on FILE only
//!   --train FILE --grid                          CV over the hyper-parameter grid
//!   --train FILE --out crates/model/weights/sentiment_weights.json --version V
//! Hyper-parameters: --epochs --lr --l2 --cw --average 0|1 --seed --folds (defaults: the
//! committed model's).

use std::process::ExitCode;
use tradepipe_model::eval::parse_labelled;
use tradepipe_model::sentiment::SentimentModel;
use tradepipe_model::train::{
    Example, Params, cross_validate_errors, grid_search, to_example, train_model,
};

fn arg<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn parse_or<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T, String> {
    match arg(args, name) {
        None => Ok(default),
        Some(s) => s.parse().map_err(|_| format!("bad value for {name}: {s}")),
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let train_path = arg(&args, "--train").ok_or("--train FILE is required")?;
    let content = std::fs::read_to_string(train_path).map_err(|e| format!("{train_path}: {e}"))?;
    let (rows, _) = parse_labelled(&content);
    if rows.is_empty() {
        return Err("no labelled rows".into());
    }
    let d = Params::default();
    let p = Params {
        epochs: parse_or(&args, "--epochs", d.epochs)?,
        lr: parse_or(&args, "--lr", d.lr)?,
        l2: parse_or(&args, "--l2", d.l2)?,
        cw_power: parse_or(&args, "--cw", d.cw_power)?,
        seed: parse_or(&args, "--seed", d.seed)?,
        average: parse_or(&args, "--average", u8::from(d.average))? != 0,
    };
    let k: usize = parse_or(&args, "--folds", 5)?;

    if args.iter().any(|a| a == "--grid") {
        let data: Vec<Example> = rows.iter().map(|(l, t)| to_example(t, *l)).collect();
        let results = grid_search(&data, k, p);
        for r in &results {
            println!(
                "{:?} acc={:.4} macro_f1={:.4}",
                r.params, r.accuracy, r.macro_f1
            );
        }
        if let Some(best) = results
            .iter()
            .reduce(|a, b| if b.macro_f1 > a.macro_f1 { b } else { a })
        {
            println!("best macro_f1={:.4} {:?}", best.macro_f1, best.params);
        }
        return Ok(());
    }

    if arg(&args, "--cv").is_some() {
        let k: usize = parse_or(&args, "--cv", 5)?;
        let show: usize = parse_or(&args, "--errors", 0)?;
        let data: Vec<Example> = rows.iter().map(|(l, t)| to_example(t, *l)).collect();
        let mut shown = 0;
        let (c, folds) = cross_validate_errors(&data, k, p, &mut |i, pred| {
            if shown < show {
                shown += 1;
                println!(
                    "ERR gold={} pred={} | {}",
                    rows[i].0.as_str(),
                    pred.as_str(),
                    rows[i].1
                );
            }
        });
        println!("{k}-fold CV on {train_path} with {p:?}");
        println!("per-fold macro_f1: {folds:.4?}");
        print!("{}", c.report());
        return Ok(());
    }

    let out = arg(&args, "--out").ok_or("--out FILE (or --cv K / --grid) is required")?;
    let version = arg(&args, "--version").unwrap_or(SentimentModel::VERSION);
    let trained = train_model(&rows, p, k, version, train_path);
    let json = trained.to_json().map_err(|e| e.to_string())?;
    std::fs::write(out, json).map_err(|e| format!("{out}: {e}"))?;
    println!(
        "wrote {out}: {} hashed rows; {}",
        trained.file.hashed.len(),
        trained.file.notes
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("train_sentiment: {e}");
            ExitCode::FAILURE
        }
    }
}
