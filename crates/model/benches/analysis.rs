//! Speed of the analysis model:
//! - `sentiment_sentence`: one PhraseBank test sentence scored on one thread (µs/sentence);
//! - `analyze_article_2_threads`: the full `Analyzer::analyze` (sentiment, entities, topics, key
//!   phrases, causal signals, trend, quality) on ~800-word articles, a batch split over two
//!   threads, as the daemon would on this 2-core machine (articles/s).
//!
//! Articles are real news bodies (the article-extraction benchmark's ground truth, MIT) joined
//! and cut at sentence ends to ~800 words. Both inputs are read at run time from `shared/`
//! (override with `TRADEPIPE_NEWS_DATA`); no text is stored in the repository.
//!
//! `nice -n 5 cargo bench --bench analysis`

/// The daemon's allocator (see src/main.rs), so the figure is the daemon's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::PathBuf;
use tradepipe_model::Analyzer;
use tradepipe_model::eval::parse_labelled;
use tradepipe_model::tokenize::split_sentences;

const ARTICLE_WORDS: usize = 800;
const BATCH: usize = 16;
const THREADS: usize = 2;

fn data_dir() -> PathBuf {
    std::env::var_os("TRADEPIPE_NEWS_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/data/news"
            ))
        })
}

/// (title, body) pairs of ~800 words each.
fn articles() -> Vec<(String, String)> {
    let path = data_dir().join("extraction/ground-truth.dev.json");
    let json = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let mut ids: Vec<&String> = v.as_object().unwrap().keys().collect();
    ids.sort();
    let mut out = Vec::new();
    let (mut body, mut words) = (String::new(), 0usize);
    for id in ids {
        let text = v[id]["articleBody"].as_str().unwrap_or_default();
        for s in split_sentences(text) {
            body.push_str(s);
            body.push(if words % 120 < 20 { '\n' } else { ' ' });
            words += s.split_whitespace().count();
            if words >= ARTICLE_WORDS {
                let title = split_sentences(&body)
                    .first()
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                out.push((title, std::mem::take(&mut body)));
                words = 0;
            }
        }
    }
    out
}

fn sentences() -> Vec<String> {
    let path = data_dir().join("sentiment/financial_phrasebank.test.tsv");
    let content =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse_labelled(&content)
        .0
        .into_iter()
        .map(|(_, t)| t)
        .collect()
}

fn bench(c: &mut Criterion) {
    let analyzer = Analyzer::new();
    let model = *analyzer.sentiment_model();
    let sents = sentences();
    let mut g = c.benchmark_group("sentiment");
    g.throughput(Throughput::Elements(sents.len() as u64));
    g.bench_function("sentiment_sentence_1_thread", |b| {
        b.iter(|| {
            for s in &sents {
                black_box(model.score_sentence(black_box(s)));
            }
        })
    });
    g.finish();

    let arts = articles();
    assert!(arts.len() >= BATCH, "only {} articles", arts.len());
    let mut g = c.benchmark_group("analysis");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.sample_size(20);
    let mut round = 0usize;
    g.bench_function("analyze_800_word_article_2_threads", |b| {
        b.iter(|| {
            round = (round + 1) % (arts.len() / BATCH);
            let batch = &arts[round * BATCH..(round + 1) * BATCH];
            std::thread::scope(|s| {
                for t in 0..THREADS {
                    let analyzer = &analyzer;
                    s.spawn(move || {
                        for (title, body) in batch.iter().skip(t).step_by(THREADS) {
                            black_box(analyzer.analyze(black_box(title), black_box(body), &[]));
                        }
                    });
                }
            });
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
