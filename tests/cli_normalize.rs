//! `tradepipe normalize`: the normalizer's own code path on a saved page, as an operator tuning
//! selectors uses it.

use std::path::PathBuf;
use std::process::Command;
use tradepipe_testkit::bodies::{charset_pages, png, random_bytes};

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

/// Saved pages and the source whose selectors to use (none: the general extractor). The expected
/// output of each is in tests/golden/normalize/, recorded from `tradepipe normalize` before the
/// news module was split by stage, so a refactoring that changes any field fails here.
const GOLDEN: &[(&str, Option<&str>)] = &[
    ("042bb7b5", None),
    ("16c30add", None),
    ("20b2b649", None),
    ("05844573", Some("Golden Wire")),
    ("0e014df6", Some("Golden Wire")),
];

/// The output with the clock's two fields (`crawled_at`, `normalized_at`: now) masked.
fn mask_clock(json: &str) -> String {
    let re = regex::Regex::new(r#""(crawled_at|normalized_at)":"[^"]*""#).unwrap();
    re.replace_all(json.trim(), r#""$1":"<now>""#).into_owned()
}

#[test]
fn output_is_unchanged_for_saved_pages() {
    let root = env!("CARGO_MANIFEST_DIR");
    let urls: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{root}/data/news/pages/urls.json")).unwrap(),
    )
    .unwrap();
    for (prefix, source) in GOLDEN {
        let (id, entry) = urls
            .as_object()
            .unwrap()
            .iter()
            .find(|(k, _)| k.starts_with(prefix))
            .unwrap_or_else(|| panic!("page {prefix} in urls.json"));
        let file = format!("data/news/pages/{id}.html.gz");
        let mut args = vec![file.as_str(), "--url", entry["url"].as_str().unwrap()];
        if let Some(s) = source {
            args.extend(["--source", s]);
        }
        let out = Command::new(BIN)
            .arg("normalize")
            .args(&args)
            .env(
                "TRADEPIPE_SOURCES_FILE",
                "tests/golden/normalize/sources.toml",
            )
            .current_dir(root)
            .output()
            .expect("run tradepipe");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = mask_clock(&String::from_utf8_lossy(&out.stdout));
        assert!(
            got.contains(r#""crawled_at":"<now>""#),
            "clock masked: {got}"
        );
        let name = match source {
            Some(_) => format!("{prefix}-selectors"),
            None => prefix.to_string(),
        };
        let golden = format!("{root}/tests/golden/normalize/{name}.json");
        let want = std::fs::read_to_string(&golden).unwrap_or_else(|e| panic!("{golden}: {e}"));
        assert_eq!(got, want.trim(), "page {prefix} ({golden})");
    }
}

/// `bytes` written to a fresh file `name` in the temp directory.
fn saved_page(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tradepipe-cli-normalize-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the temp dir");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write the page");
    path
}

#[test]
fn random_bytes_or_a_png_saved_as_html_are_refused_not_normalized() {
    // 100 kB of random bytes once came out as a 1,772-word "article".
    let noise = saved_page("noise.html", &random_bytes(100_000));
    let (ok, out, err) = normalize(&[noise.to_str().expect("UTF-8 temp path")]);
    assert!(!ok, "random bytes normalized: {out}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("noise.html is not a text page"), "{err}");
    assert!(err.contains("is not text"), "{err}");

    let image = saved_page("image.html", &png(64, 64));
    let (ok, out, err) = normalize(&[image.to_str().expect("UTF-8 temp path")]);
    assert!(!ok, "a PNG normalized: {out}");
    assert!(err.contains("image.html is not a text page"), "{err}");
    assert!(err.contains("PNG image"), "{err}");
}

#[test]
fn a_saved_page_is_decoded_in_the_charset_it_declares() {
    // Saved pages have no Content-Type: the <meta> or the BOM decides (not the GBK page, whose
    // charset only its header named).
    for page in charset_pages().iter().filter(|p| p.charset != "GBK") {
        let file = saved_page(&format!("{}.html", page.charset), &page.bytes);
        let (ok, out, err) = normalize(&[file.to_str().expect("UTF-8 temp path")]);
        assert!(ok, "{}: {err}", page.charset);
        let a: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
        let body = a["body"].as_str().unwrap_or_default();
        assert!(body.contains(page.text), "{}: body {body:?}", page.charset);
    }
}
