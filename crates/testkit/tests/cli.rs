//! The `tradepipe-testkit` binary offers the two peers the demo, tests and benchmarks start.
//! (Being an integration test of this crate also makes `cargo test --workspace` build the binary
//! before the daemon's end-to-end tests run.)

use std::process::Command;

#[test]
fn testkit_binary_offers_the_replay_peer_and_the_news_site() {
    let out = Command::new(env!("CARGO_BIN_EXE_tradepipe-testkit"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let help = String::from_utf8_lossy(&out.stdout);
    for command in ["replay", "news-server"] {
        assert!(help.contains(command), "--help lacks {command}:\n{help}");
    }
}

#[test]
fn replay_without_trade_files_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_tradepipe-testkit"))
        .args(["replay", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--trades"), "{err}");
}
