//! Inputs that once broke (or were written to break) the parsers the fuzz targets cover,
//! replayed through the very checks the fuzzers run (`fuzz/checks.rs`). A crash found by
//! `scripts/fuzz` is committed under `tests/fuzz_regressions/<target>/` and fails here until it
//! is fixed. The seeds in `fuzz/seeds/` are replayed too, so the checks themselves stay honest.

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::Path;

/// Every file under `<dir>/<target>/`, through `check`; returns how many ran.
fn replay(target: &str, check: fn(&[u8])) -> usize {
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
    n
}

#[test]
fn stream_message_inputs_replay_cleanly() {
    assert!(replay("stream_message", checks::stream_message) > 0);
}

#[test]
fn trades_file_inputs_replay_cleanly() {
    assert!(replay("trades_file", checks::trades_file) > 0);
}

#[test]
fn html_normalizer_inputs_replay_cleanly() {
    replay("html_normalizer", checks::html_normalizer);
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
