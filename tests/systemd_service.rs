//! The daemon as a systemd `Type=notify` service: the unit file passes `systemd-analyze verify`,
//! and the real daemon, given a notify socket as systemd would, reports READY=1, STATUS= with
//! its progress, WATCHDOG=1 from its liveness check and STOPPING=1 on SIGTERM.

use sqlx::PgPool;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tradepipe_testkit::support::*;

fn unit_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/tradepipe.service")
}

/// `systemd-analyze verify` on a unit; Ok(stderr) when it passed without a single remark.
fn verify(unit: &Path) -> Result<(), String> {
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(unit)
        .output()
        .map_err(|e| format!("running systemd-analyze: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    if out.status.success() && stderr.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("{}: {stderr}", out.status))
    }
}

/// Unknown keys and bad values are warnings to `systemd-analyze verify`, not failures, so the
/// test fails on any remark at all. The executable is the one just built (verify checks that
/// ExecStart exists); everything else is the file as shipped. Not every machine has a working
/// systemd, so the test is `#[ignore]`d with the reason (a plain `cargo test` lists it as
/// ignored, never as passed); `scripts/test` runs it where `systemd-analyze verify` works, and
/// run elsewhere it fails saying why.
#[test]
#[ignore = "needs a working systemd-analyze; scripts/test runs it where there is one"]
fn unit_file_passes_systemd_analyze_verify() {
    let dir = std::env::temp_dir().join(format!("tradepipe-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Control: a minimal valid unit. If even that does not verify, systemd cannot work in this
    // environment (e.g. a container without its runtime directories) and the check means nothing.
    let control = dir.join("control.service");
    std::fs::write(
        &control,
        "[Unit]\nDescription=control\n[Service]\nType=simple\nExecStart=/bin/true\n",
    )
    .unwrap();
    if let Err(why) = verify(&control) {
        panic!("systemd-analyze verify does not work here (a trivial unit fails): {why}");
    }
    let shipped = std::fs::read_to_string(unit_file()).unwrap();
    assert!(
        shipped.contains(
            "ExecStart=/usr/local/bin/tradepipe run --config /etc/tradepipe/tradepipe.toml"
        )
    );
    let unit = dir.join("tradepipe.service");
    std::fs::write(
        &unit,
        shipped.replace("/usr/local/bin/tradepipe", daemon_bin().to_str().unwrap()),
    )
    .unwrap();
    verify(&unit).unwrap_or_else(|e| panic!("deploy/tradepipe.service: {e}"));

    // The check itself catches a mistake: a misspelt hardening key.
    let typo = dir.join("typo.service");
    std::fs::write(
        &typo,
        shipped
            .replace("/usr/local/bin/tradepipe", daemon_bin().to_str().unwrap())
            .replace("ProtectHome=yes", "ProtectHomes=yes"),
    )
    .unwrap();
    let err = verify(&typo).expect_err("a misspelt key is reported");
    assert!(err.contains("ProtectHomes"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The hardening the issue asks for is in the unit (verify checks syntax, not intent).
#[test]
fn unit_file_runs_hardened_as_a_notify_service_with_a_watchdog() {
    let unit = std::fs::read_to_string(unit_file()).unwrap();
    for line in [
        "Type=notify",
        "NotifyAccess=main",
        "Restart=on-failure",
        "StartLimitBurst=",
        "StartLimitIntervalSec=",
        "User=tradepipe",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "ReadWritePaths=/var/lib/tradepipe/spool /var/lib/tradepipe/archive",
        "EnvironmentFile=/etc/tradepipe/tradepipe.env",
        "Environment=TRADEPIPE_LOG_FORMAT=json",
        "Environment=TRADEPIPE_SPOOL_DIR=/var/lib/tradepipe/spool",
        "Environment=TRADEPIPE_ARCHIVE_DIR=/var/lib/tradepipe/archive",
    ] {
        assert!(
            unit.lines().any(|l| l.starts_with(line)),
            "unit lacks {line}"
        );
    }
    // The watchdog must outlast a stop's drain and the liveness check's stall bound (half of it).
    let watchdog: u64 = unit
        .lines()
        .find_map(|l| l.strip_prefix("WatchdogSec="))
        .and_then(|v| v.trim().parse().ok())
        .expect("WatchdogSec in seconds");
    assert!(watchdog >= 60, "WatchdogSec={watchdog}");
}

/// Collects every datagram sent to a notify socket, as systemd's manager would receive them.
struct NotifySocket {
    path: PathBuf,
    messages: Arc<Mutex<Vec<String>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl NotifySocket {
    fn bind(tag: &str) -> NotifySocket {
        let path =
            std::env::temp_dir().join(format!("tradepipe-{tag}-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let sock = UnixDatagram::bind(&path).expect("bind notify socket");
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (m, s) = (messages.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while !s.load(std::sync::atomic::Ordering::SeqCst) {
                if let Ok(n) = sock.recv(&mut buf) {
                    m.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&buf[..n]).to_string());
                }
            }
        });
        NotifySocket {
            path,
            messages,
            stop,
        }
    }

    fn messages(&self) -> Vec<String> {
        self.messages.lock().unwrap().clone()
    }

    /// Waits until a message satisfies `pred` (or panics after `within`, with what did arrive).
    fn wait_for(&self, what: &str, within: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(m) = self.messages().into_iter().find(|m| pred(m)) {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within {within:?}; received: {:#?}",
                self.messages()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::fs::remove_file(&self.path);
    }
}

#[sqlx::test(migrations = false)]
async fn daemon_tells_systemd_ready_status_watchdog_and_stopping(pool: PgPool) {
    let trades = demo_trades();
    let (_replay, port) = start_replay(&["--max"]);
    let notify = NotifySocket::bind("notify");
    let mut env = DaemonEnv::new(&pool, port, "notify");
    env.extra_env.extend([
        (
            "NOTIFY_SOCKET".to_string(),
            notify.path.display().to_string(),
        ),
        // 4 s: the liveness check runs every second and pings after each pass.
        ("WATCHDOG_USEC".to_string(), "4000000".to_string()),
    ]);
    let mut daemon = env.start(&[]);

    let ready = notify.wait_for("READY=1", Duration::from_secs(120), |m| {
        m.lines().any(|l| l == "READY=1")
    });
    assert!(
        ready.contains("STATUS=running: 2 symbols"),
        "READY carries a status: {ready:?}"
    );
    wait_for_ticks(&pool, trades.len() as i64, Duration::from_secs(180)).await;
    // STATUS= is the progress line; once every trade is stored it says so.
    let all = format!("trades written {}", trades.len());
    let status = notify.wait_for(&all, Duration::from_secs(30), |m| {
        m.starts_with("STATUS=") && m.contains(&all)
    });
    assert!(status.contains("candle upserts"), "{status}");
    notify.wait_for("WATCHDOG=1", Duration::from_secs(30), |m| m == "WATCHDOG=1");

    assert!(
        daemon.terminate(Duration::from_secs(30)).success(),
        "SIGTERM exits 0"
    );
    let stopping = notify.wait_for("STOPPING=1", Duration::from_secs(5), |m| {
        m.lines().any(|l| l == "STOPPING=1")
    });
    assert!(
        stopping.contains("STATUS=shutting down (SIGTERM)"),
        "{stopping}"
    );

    // Order: nothing before READY=1 (systemd counts the watchdog from it), STOPPING=1 last of
    // the state changes.
    let received = notify.messages();
    let pos = |pred: &dyn Fn(&str) -> bool| received.iter().position(|m| pred(m));
    let ready_at = pos(&|m| m.starts_with("READY=1")).unwrap();
    assert_eq!(ready_at, 0, "READY=1 comes first: {received:#?}");
    let stopping_at = pos(&|m| m.starts_with("STOPPING=1")).unwrap();
    assert!(
        received[stopping_at + 1..]
            .iter()
            .all(|m| !m.starts_with("READY")),
        "{received:#?}"
    );
}
