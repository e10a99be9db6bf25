//! Inputs that once broke (or were written to break) the parsers the fuzz targets cover,
//! replayed through the very checks the fuzzers run (`fuzz/checks.rs`). A crash found by
//! `scripts/fuzz` is committed under `tests/fuzz_regressions/<target>/` and fails here until it
//! is fixed. The seeds in `fuzz/seeds/` are replayed too, so the checks themselves stay honest.

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::Path;

/// What a fuzz target runs on each input (`fuzz/checks.rs`).
type Check = fn(&[u8]);

/// Every fuzz target (`fuzz/fuzz_targets/<target>.rs`) and the check it runs.
const TARGETS: [(&str, Check); 3] = [
    ("stream_message", checks::stream_message),
    ("trades_file", checks::trades_file),
    ("html_normalizer", checks::html_normalizer),
];

/// Every file under `<dir>/<target>/`, through the target's check; fails when there was none,
/// so that a replay test cannot pass without replaying anything.
fn replay(target: &str) {
    let (_, check) = TARGETS
        .iter()
        .find(|(t, _)| *t == target)
        .unwrap_or_else(|| panic!("{target} is not in TARGETS"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for dir in ["tests/fuzz_regressions", "fuzz/seeds"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        let mut files: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        files.sort();
        for f in files {
            let data = std::fs::read(&f).expect("regression input");
            eprintln!("{target}: {}", f.display());
            check(&data);
            n += 1;
        }
    }
    assert!(
        n > 0,
        "no input replayed for {target}: commit its crashes under tests/fuzz_regressions/{target}/ \
         or seeds under fuzz/seeds/{target}/"
    );
}

#[test]
fn stream_message_inputs_replay_cleanly() {
    replay("stream_message");
}

#[test]
fn trades_file_inputs_replay_cleanly() {
    replay("trades_file");
}

/// Hand-written hostile pages (deep nesting, invalid UTF-8, unclosed tags, JSON-LD past any
/// recursion limit, charsets the decoder does not know, UTF-16): the cases docs/RELIABILITY.md
/// describes, small enough to commit.
#[test]
fn html_normalizer_inputs_replay_cleanly() {
    replay("html_normalizer");
}

/// A new fuzz target needs its entry in TARGETS (and so its replay test).
#[test]
fn every_fuzz_target_is_replayed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
    let mut found: Vec<String> = std::fs::read_dir(&dir)
        .expect("fuzz/fuzz_targets")
        .filter_map(Result::ok)
        .filter_map(|e| Some(e.path().file_stem()?.to_str()?.to_string()))
        .collect();
    found.sort();
    let mut known: Vec<&str> = TARGETS.iter().map(|(t, _)| *t).collect();
    known.sort();
    assert_eq!(found, known);
}

/// `depth` copies of `open`, some text, `depth` copies of `close`, behind the flags byte.
fn nested(open: &str, close: &str, depth: usize) -> Vec<u8> {
    let mut page = vec![0u8];
    page.extend_from_slice(b"<html><body>");
    for _ in 0..depth {
        page.extend_from_slice(open.as_bytes());
    }
    page.extend_from_slice(
        "Bitcoin miners kept their rigs running. "
            .repeat(20)
            .as_bytes(),
    );
    for _ in 0..depth {
        page.extend_from_slice(close.as_bytes());
    }
    page.extend_from_slice(b"</body></html>");
    page
}

/// Deep nesting of every kind the HTML tree builder treats differently, on a test thread's small
/// (2 MiB) stack: no recursion over the DOM may depend on the input's depth. `<rt>` and
/// `<optgroup>` took 45-55 s for 10,000 levels in a debug build before the extractor's nesting
/// limit counted them (now well under a second for 100,000). Lists and tables stay at 10,000:
/// their cost still grows faster than linearly (2 s for 10,000 `<ul><li>` in a debug build).
#[test]
fn deeply_nested_html_does_not_overflow_the_stack() {
    let kinds = [
        ("<div>", "</div>", 100_000),
        ("<div>", "", 100_000),
        ("<b><i>", "</i></b>", 100_000),
        ("<span title=x>", "</span>", 100_000),
        ("<table><tr><td>", "</td></tr></table>", 10_000),
        ("<ul><li>", "</li></ul>", 10_000),
        ("<rt>", "</rt>", 100_000),
        ("<optgroup>", "", 100_000),
    ];
    for (open, close, depth) in kinds {
        let started = std::time::Instant::now();
        checks::html_normalizer(&nested(open, close, depth));
        eprintln!("{open}{close} x {depth}: {:?}", started.elapsed());
    }
}
