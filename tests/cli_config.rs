//! The configuration as an operator meets it: `tradepipe check-config` with files and
//! environment variables, bad values, and secrets.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_tradepipe");

fn check_config(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.arg("check-config")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    for (k, _) in std::env::vars() {
        if k.starts_with("TRADEPIPE") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run tradepipe");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn environment_overrides_file_and_defaults() {
    let (ok, out, err) = check_config(
        &[],
        &[
            ("TRADEPIPE_SYMBOLS", "solusdt, BTCUSDT"),
            ("TRADEPIPE__WRITER__BATCH_MAX_TICKS", "777"),
            ("TRADEPIPE_HTTP_ADDR", "127.0.0.1:9999"),
        ],
    );
    assert!(ok, "{err}");
    let v: toml::Value = toml::from_str(&out).expect("check-config prints TOML");
    let syms: Vec<&str> = v["market"]["symbols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(syms, ["SOLUSDT", "BTCUSDT"]);
    assert_eq!(v["writer"]["batch_max_ticks"].as_integer(), Some(777));
    assert_eq!(v["http"]["addr"].as_str(), Some("127.0.0.1:9999"));
    // Untouched keys keep the file's (= default) values.
    assert_eq!(v["writer"]["flush_interval_ms"].as_integer(), Some(200));
    // The printed configuration is itself a valid configuration file.
    let path = std::env::temp_dir().join(format!("tradepipe-cfg-{}.toml", std::process::id()));
    std::fs::write(&path, &out).unwrap();
    let (ok, again, err) = check_config(&["--config", path.to_str().unwrap()], &[]);
    assert!(ok, "{err}");
    assert_eq!(again, out);
}

#[test]
fn a_bad_value_names_its_key() {
    let (ok, _, err) = check_config(
        &[],
        &[("TRADEPIPE_BINANCE_WS_URL", "http://not-a-websocket")],
    );
    assert!(!ok);
    assert!(err.contains("binance.ws_url"), "{err}");
    let (ok, _, err) = check_config(&[], &[("TRADEPIPE__WRITER__BATCH_MAX_TICKS", "lots")]);
    assert!(!ok);
    assert!(err.contains("writer.batch_max_ticks"), "{err}");
    // URLs, socket addresses and horizons are parsed once, as the configuration is read.
    for (var, value, key) in [
        (
            "TRADEPIPE_BINANCE_REST_URL",
            "not a url",
            "binance.rest_url",
        ),
        ("TRADEPIPE_HTTP_ADDR", "localhost-ish", "http.addr"),
        (
            "TRADEPIPE__ANALYSIS__HORIZONS",
            "[\"2m\",\"9x\"]",
            "analysis.horizons",
        ),
    ] {
        let (ok, _, err) = check_config(&[], &[(var, value)]);
        assert!(!ok, "{var}={value} accepted");
        assert!(err.contains(key), "{var}={value}: {err}");
    }
    let (ok, _, err) = check_config(&["--config", "/nonexistent/tradepipe.toml"], &[]);
    assert!(!ok);
    assert!(err.contains("/nonexistent/tradepipe.toml"), "{err}");
}

#[test]
fn secrets_are_redacted() {
    let (ok, out, err) = check_config(
        &[],
        &[
            (
                "TRADEPIPE_DATABASE_URL",
                "postgres://app:s3cr3t-pw@db.example:5432/tp",
            ),
            (
                "TRADEPIPE_REDIS_URL",
                "redis://:r3dis-pw@cache.example:6379/0",
            ),
            ("TRADEPIPE_BINANCE_API_KEY", "K3Y-abcdef"),
        ],
    );
    assert!(ok, "{err}");
    for secret in ["s3cr3t-pw", "r3dis-pw", "K3Y-abcdef"] {
        assert!(
            !out.contains(secret) && !err.contains(secret),
            "{secret} leaked:\n{out}\n{err}"
        );
    }
    assert!(out.contains("db.example"), "the host stays visible:\n{out}");
}

/// Issue 10, defect 1: a password passed as a query parameter leaked in clear.
#[test]
fn query_string_passwords_are_redacted() {
    let (ok, out, err) = check_config(
        &[],
        &[
            (
                "TRADEPIPE_DATABASE_URL",
                "postgres://app@db:5432/trading?password=hunter2",
            ),
            (
                "TRADEPIPE_REDIS_URL",
                "rediss://default:hunter3@cache.example:6380/0",
            ),
            ("TRADEPIPE_DOCUMENT_STORE", "mongodb"),
            (
                "TRADEPIPE_MONGODB_URL",
                "mongodb+srv://app@cluster0.example.net/news?SslPassword=hunter4&retryWrites=true",
            ),
        ],
    );
    assert!(ok, "{err}");
    for secret in ["hunter2", "hunter3", "hunter4"] {
        assert!(
            !out.contains(secret) && !err.contains(secret),
            "{secret} leaked:\n{out}\n{err}"
        );
    }
    // What an operator needs to tell the servers apart stays.
    for kept in [
        "db:5432/trading",
        "cache.example:6380",
        "cluster0.example.net",
        "retryWrites=true",
    ] {
        assert!(out.contains(kept), "{kept} missing:\n{out}");
    }
}

#[test]
fn read_replicas_come_from_the_environment_redacted() {
    let (ok, out, err) = check_config(
        &[],
        &[
            (
                "TRADEPIPE_DATABASE_READ_URLS",
                "postgres://ro:pw-r1@replica-1:5432/tp, postgres://replica-2",
            ),
            ("TRADEPIPE__DATABASE__REPLICA_MAX_LAG_MS", "2500"),
        ],
    );
    assert!(ok, "{err}");
    assert!(!out.contains("pw-r1"), "{out}");
    let v: toml::Value = toml::from_str(&out).expect("check-config prints TOML");
    let urls: Vec<&str> = v["database"]["read_urls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(urls.len(), 2, "{urls:?}");
    assert!(urls[0].contains("replica-1:5432") && urls[1].contains("replica-2"));
    assert_eq!(v["database"]["replica_max_lag_ms"].as_integer(), Some(2500));
    // Lag is measured in steps of one check: a maximum below one check is refused.
    let (ok, _, err) = check_config(&[], &[("TRADEPIPE__DATABASE__REPLICA_MAX_LAG_MS", "50")]);
    assert!(!ok);
    assert!(err.contains("database.replica_max_lag_ms"), "{err}");
    let (ok, _, err) = check_config(&[], &[("TRADEPIPE_DATABASE_READ_URLS", "mysql://replica")]);
    assert!(!ok);
    assert!(err.contains("database.read_urls"), "{err}");
}
