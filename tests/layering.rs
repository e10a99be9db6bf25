//! The shape of the code, kept by a test: imports only point down. Each top-level module of the
//! daemon may name only the modules listed for it in `ALLOWED` (docs/ARCHITECTURE.md draws the
//! same picture), the analysis model crate knows nothing of the daemon or of I/O, and the test kit
//! never reaches the production binary. A new upward import fails here with the file that made it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Small self-contained helpers below every layer, usable by any module: they use nothing.
const FOUNDATION: &[&str] = &["redact", "backoff"];

/// Daemon module -> the daemon modules it may use (besides `FOUNDATION`). Everything may use std
/// and external crates, and `tradepipe_model` (a lower crate).
const ALLOWED: &[(&str, &[&str])] = &[
    ("redact", &[]),
    ("backoff", &[]),
    ("domain", &[]),
    ("config", &["domain"]),
    ("store", &["domain", "config"]),
    ("exchange", &["domain", "config"]),
    ("news", &["domain", "config"]),
    ("lifecycle", &["domain", "config", "store"]),
    ("telemetry", &["domain", "config", "store"]),
    (
        "actors",
        &[
            "domain",
            "config",
            "store",
            "exchange",
            "news",
            "lifecycle",
            "telemetry",
        ],
    ),
    ("systemd", &["config", "telemetry", "actors"]),
    ("backtest", &["cli", "config", "news"]),
    (
        "pipelines",
        &[
            "domain",
            "config",
            "store",
            "exchange",
            "news",
            "lifecycle",
            "telemetry",
            "actors",
            "systemd",
        ],
    ),
    ("cli", &[]),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without comments and without its `#[cfg(test)] mod tests` (tests may
/// reach anywhere), so a doc comment that names a module is not an import.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => &text[..],
    };
    text.lines()
        .map(|l| match l.find("//") {
            // Keep "://" inside string literals (URLs); a comment marker is never preceded by ':'.
            Some(i) if !l[..i].ends_with(':') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The daemon modules a piece of code names: `crate::x`, and `x` inside `use crate::{x, ...}`.
fn named_modules(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (i, _) in code.match_indices("crate::") {
        // `tradepipe_model::x` or `some_crate::x` are other crates; only a bare `crate::` counts.
        let before = code[..i].chars().last();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find("};").unwrap_or(group.len());
            let mut depth = 0;
            let mut start = true;
            for (j, c) in group[..end].char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && !c.is_whitespace() => {
                        out.insert(ident(&group[j..]));
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            out.insert(ident(rest));
        }
    }
    out.retain(|m| !m.is_empty());
    out
}

#[test]
fn daemon_modules_only_import_downwards() {
    let allowed: BTreeMap<&str, BTreeSet<&str>> = ALLOWED
        .iter()
        .map(|(m, deps)| (*m, deps.iter().copied().collect()))
        .collect();
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(
        files.len() > 40,
        "found only {} files under src/",
        files.len()
    );
    let mut violations = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "main" {
            continue; // the crate's map and the entry point see everything
        }
        let Some(may_use) = allowed.get(top.as_str()) else {
            violations.push(format!(
                "{}: module `{top}` is not in ALLOWED",
                rel.display()
            ));
            continue;
        };
        for used in named_modules(&code_of(file)) {
            let foundation =
                FOUNDATION.contains(&used.as_str()) && !FOUNDATION.contains(&top.as_str());
            if used != top && !foundation && !may_use.contains(used.as_str()) {
                violations.push(format!("{}: `{top}` must not use `{used}`", rel.display()));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "upward imports:\n{}",
        violations.join("\n")
    );
}

/// The checker itself: it must see imports in every form the code uses.
#[test]
fn the_import_scanner_sees_grouped_and_qualified_paths() {
    let code = "use crate::{config::X, store::{a, b}};\nlet x = crate::actors::y();\ntradepipe_model::crate_like::z();\n";
    let found: Vec<String> = named_modules(code).into_iter().collect();
    assert_eq!(found, ["actors", "config", "store"]);
}

fn manifest_dependencies(manifest: &str, table: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join(manifest)).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    doc.get(table)
        .and_then(|t| t.as_table())
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn the_model_crate_is_pure_and_knows_nothing_of_the_daemon() {
    let deps = manifest_dependencies("crates/model/Cargo.toml", "dependencies");
    assert!(deps.contains("serde"), "{deps:?}");
    for io in [
        "tradepipe",
        "tokio",
        "actix",
        "sqlx",
        "redis",
        "mongodb",
        "reqwest",
        "axum",
    ] {
        assert!(!deps.contains(io), "tradepipe-model depends on {io}");
    }
    let mut files = Vec::new();
    rust_files(&root().join("crates/model/src"), &mut files);
    for file in files.iter().filter(|f| !f.ends_with("main.rs")) {
        let code = code_of(file);
        for word in ["tradepipe::", "std::net", "std::process", "tokio::"] {
            assert!(!code.contains(word), "{}: names {word}", file.display());
        }
    }
}

#[test]
fn the_test_kit_never_reaches_the_daemon() {
    let deps = manifest_dependencies("Cargo.toml", "dependencies");
    assert!(deps.contains("tradepipe-model"), "{deps:?}");
    assert!(
        !deps.contains("tradepipe-testkit"),
        "the daemon depends on the test kit"
    );
    let dev = manifest_dependencies("Cargo.toml", "dev-dependencies");
    assert!(dev.contains("tradepipe-testkit"), "{dev:?}");
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    for file in files {
        assert!(
            !code_of(&file).contains("tradepipe_testkit"),
            "{} names the test kit",
            file.display()
        );
    }
}
