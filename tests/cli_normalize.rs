//! `tradepipe normalize`: the normalizer's own code path on a saved page, as an operator tuning
//! selectors uses it.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_tradepipe");

fn normalize(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .arg("normalize")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run tradepipe");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn prints_one_article_with_the_seed_fields() {
    let urls: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/news/pages/urls.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let (id, entry) = urls.as_object().unwrap().iter().next().unwrap();
    let url = entry["url"].as_str().unwrap();
    let file = format!("data/news/pages/{id}.html.gz");
    let (ok, out, err) = normalize(&[&file, "--url", url]);
    assert!(ok, "{err}");
    assert_eq!(out.trim().lines().count(), 1, "one JSON object on one line");
    let a: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    for field in [
        "title",
        "body",
        "excerpt",
        "source",
        "author",
        "published_at",
        "word_count",
        "reading_time_minutes",
        "language",
        "symbols",
        "tags",
        "categories",
        "images",
        "metadata",
        "url",
        "url_hash",
        "analysis_status",
    ] {
        assert!(
            a.get(field).is_some(),
            "field {field} present (null or empty when unknown): {a}"
        );
    }
    // The first page is a paywalled teaser: its human-annotated body has 67 words.
    let words = a["body"].as_str().unwrap().split_whitespace().count();
    assert!(words >= 50, "main text extracted ({words} words)");
    assert_eq!(a["word_count"].as_u64(), Some(words as u64));
    assert!(a["excerpt"].as_str().unwrap().chars().count() <= 201);
    assert_eq!(a["url_hash"].as_str().unwrap().len(), 64);
    assert_eq!(a["analysis_status"], "PENDING");
    assert!(a["metadata"].get("og_title").is_some());
}

#[test]
fn a_missing_file_or_unknown_source_is_a_clear_error() {
    let (ok, _, err) = normalize(&["/nonexistent/page.html"]);
    assert!(!ok && err.contains("/nonexistent/page.html"), "{err}");
    let (ok, _, err) = normalize(&["Cargo.toml", "--source", "NoSuchSource"]);
    assert!(!ok && err.contains("NoSuchSource"), "{err}");
}
