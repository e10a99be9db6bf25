//! Scores the extractor on the development split of the article-extraction
//! benchmark with the benchmark's metric (see SOURCES.md next to the data):
//! `\w+` tokens, 4-token shingles as multisets, per-page tp/fp/fn normalised to
//! sum to 1, precision and recall averaged over pages, F1 from the averages.
//!
//! Usage: cargo run --release --example eval_extract -- [DATA_DIR] [--worst N] [--dump DIR] [--repeat N]

use std::collections::HashMap;
use std::io::Read;
use std::time::Instant;

use regex::Regex;
use tradepipe::news::extract::extract_main_text;

fn shingles(re: &Regex, text: &str) -> HashMap<String, u32> {
    let toks: Vec<&str> = re.find_iter(text).map(|m| m.as_str()).collect();
    let mut out = HashMap::new();
    let n = 4;
    let count = if toks.len() >= n {
        toks.len() - n + 1
    } else {
        1
    };
    for i in 0..count {
        let end = (i + n).min(toks.len());
        let sh = toks[i..end].join(" ");
        if !sh.is_empty() {
            *out.entry(sh).or_insert(0) += 1;
        }
    }
    out
}

/// Returns normalised (tp, fp, fn) for one page.
fn score(re: &Regex, truth: &str, pred: &str) -> (f64, f64, f64) {
    let t = shingles(re, truth);
    let p = shingles(re, pred);
    let (mut tp, mut fp, mut fnn) = (0f64, 0f64, 0f64);
    for (k, &tc) in &t {
        let pc = p.get(k).copied().unwrap_or(0);
        tp += tc.min(pc) as f64;
        fnn += tc.saturating_sub(pc) as f64;
    }
    for (k, &pc) in &p {
        let tc = t.get(k).copied().unwrap_or(0);
        fp += pc.saturating_sub(tc) as f64;
    }
    let s = tp + fp + fnn;
    if s > 0.0 {
        (tp / s, fp / s, fnn / s)
    } else {
        (0.0, 0.0, 0.0)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/news/extraction"
    )
    .to_string();
    let mut worst = 10usize;
    let mut dump: Option<String> = None;
    let mut repeat = 3usize;
    // A repeat of 0 skips the timing run.
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--worst" => {
                worst = args.get(i + 1).and_then(|s| s.parse().ok()).unwrap_or(10);
                i += 1;
            }
            "--dump" => {
                dump = args.get(i + 1).cloned();
                i += 1;
            }
            "--repeat" => {
                repeat = args.get(i + 1).and_then(|s| s.parse().ok()).unwrap_or(3);
                i += 1;
            }
            d => dir = d.to_string(),
        }
        i += 1;
    }
    let gt: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(format!(
        "{dir}/ground-truth.dev.json"
    ))?)?;
    let gt = gt.as_object().ok_or("ground truth is not an object")?;
    let re = Regex::new(r"\w+")?;
    let mut pages = Vec::new();
    for (id, v) in gt {
        let f = std::fs::File::open(format!("{dir}/html/{id}.html.gz"))?;
        let mut s = String::new();
        flate2::read::GzDecoder::new(f).read_to_string(&mut s)?;
        let truth = v["articleBody"].as_str().unwrap_or("").to_string();
        let url = v["url"].as_str().map(str::to_string);
        pages.push((id.clone(), url, s, truth));
    }
    let mut rows = Vec::new();
    let (mut sp, mut sr, mut stp, mut sfp, mut sfn) = (0f64, 0f64, 0f64, 0f64, 0f64);
    for (id, url, html, truth) in &pages {
        let ex = extract_main_text(html, url.as_deref());
        let (tp, fp, fnn) = score(&re, truth, &ex.body);
        let p = if tp + fp > 0.0 { tp / (tp + fp) } else { 0.0 };
        let r = if tp + fnn > 0.0 { tp / (tp + fnn) } else { 0.0 };
        sp += p;
        sr += r;
        stp += tp;
        sfp += fp;
        sfn += fnn;
        let f = if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        };
        rows.push((
            f,
            p,
            r,
            id.clone(),
            url.clone().unwrap_or_default(),
            ex.method,
        ));
        if let Some(d) = &dump {
            std::fs::create_dir_all(d)?;
            std::fs::write(format!("{d}/{id}.pred.txt"), &ex.body)?;
            std::fs::write(format!("{d}/{id}.true.txt"), truth)?;
        }
    }
    let n = pages.len() as f64;
    let (p, r) = (sp / n, sr / n);
    let f1 = 2.0 * p * r / (p + r);
    println!("pages: {}", pages.len());
    println!("precision {p:.4}  recall {r:.4}  F1 {f1:.4}");
    let (pp, rr) = (stp / (stp + sfp), stp / (stp + sfn));
    println!(
        "(pooled normalised tp/fp/fn: precision {pp:.4} recall {rr:.4} F1 {:.4})",
        2.0 * pp * rr / (pp + rr)
    );
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    println!("worst {worst}:");
    for (f, p, r, id, url, m) in rows.iter().take(worst) {
        println!("  F1 {f:.3} P {p:.3} R {r:.3} {m:?} {} {url}", &id[..12]);
    }
    if repeat == 0 {
        return Ok(());
    }
    let bytes: usize = pages.iter().map(|p| p.2.len()).sum();
    let total = (pages.len() * repeat) as f64;
    let avg_kb = bytes as f64 / n / 1024.0;
    // Wall time is unreliable on a shared machine, so CPU time of this thread
    // is reported too (from /proc; Linux only).
    let (w0, c0) = (Instant::now(), thread_cpu_secs());
    let mut chars = 0usize;
    for _ in 0..repeat {
        for (_, url, html, _) in &pages {
            chars += extract_main_text(html, url.as_deref()).body.len();
        }
    }
    let (wall, cpu) = (w0.elapsed().as_secs_f64(), thread_cpu_secs() - c0);
    println!(
        "throughput (extract_main_text): {:.1} pages/s wall, {:.1} pages/s CPU, {:.1} MB/s CPU; avg page {avg_kb:.1} KB, {repeat} runs ({chars} chars out)",
        total / wall,
        total / cpu,
        bytes as f64 * repeat as f64 / cpu / 1e6,
    );
    // The whole normalization (extraction plus title, dates, language, symbols, images,
    // excerpt...), exactly as the NormalizerActor runs it.
    {
        use tradepipe::news::normalize::{build_article, raw_from_file};
        use tradepipe_model::aliases::SymbolAliases;
        let aliases = SymbolAliases::default_crypto();
        let now = chrono::Utc::now();
        // The raw pages are built before the clock starts: the crawler stores them, the
        // normalizer only reads them.
        let raws: Vec<_> = pages
            .iter()
            .filter_map(|(_, url, html, _)| {
                let url = url.as_deref().unwrap_or("http://localhost/page");
                raw_from_file(html.clone(), url, "", now).ok()
            })
            .collect();
        let (w0, c0) = (Instant::now(), thread_cpu_secs());
        let mut words = 0usize;
        for _ in 0..repeat {
            for raw in &raws {
                if let Ok(a) = build_article(raw, None, &aliases, now) {
                    words += a.word_count as usize;
                }
            }
        }
        let (wall, cpu) = (w0.elapsed().as_secs_f64(), thread_cpu_secs() - c0);
        println!(
            "throughput (build_article, one thread): {:.1} pages/s wall, {:.1} pages/s CPU; avg page {avg_kb:.1} KB ({words} words out)",
            total / wall,
            total / cpu,
        );
    }
    // The pages of 50-150 KB, i.e. "typical 100 KB" pages.
    let mid: Vec<_> = pages
        .iter()
        .filter(|p| (50_000..150_000).contains(&p.2.len()))
        .collect();
    if !mid.is_empty() {
        let mid_bytes: usize = mid.iter().map(|p| p.2.len()).sum();
        let (w0, c0) = (Instant::now(), thread_cpu_secs());
        for _ in 0..repeat {
            for (_, url, html, _) in &mid {
                std::hint::black_box(extract_main_text(html, url.as_deref()));
            }
        }
        let (wall, cpu) = (w0.elapsed().as_secs_f64(), thread_cpu_secs() - c0);
        let t = (mid.len() * repeat) as f64;
        println!(
            "  on the {} pages of 50-150 KB (avg {:.1} KB): {:.1} pages/s wall, {:.1} pages/s CPU",
            mid.len(),
            mid_bytes as f64 / mid.len() as f64 / 1024.0,
            t / wall,
            t / cpu
        );
    }
    let (w0, c0) = (Instant::now(), thread_cpu_secs());
    let mut nodes = 0usize;
    for _ in 0..repeat {
        for (_, _, html, _) in &pages {
            nodes += scraper::Html::parse_document(html).tree.values().count();
        }
    }
    let (wall, cpu) = (w0.elapsed().as_secs_f64(), thread_cpu_secs() - c0);
    println!(
        "baseline (HTML parse only): {:.1} pages/s wall, {:.1} pages/s CPU ({} nodes/page)",
        total / wall,
        total / cpu,
        nodes / (pages.len() * repeat)
    );
    Ok(())
}

/// CPU seconds used by the calling thread (user + system), from
/// /proc/thread-self/stat; 0 where unavailable.
fn thread_cpu_secs() -> f64 {
    let Ok(s) = std::fs::read_to_string("/proc/thread-self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields overall, in clock ticks (100 Hz on Linux).
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}
