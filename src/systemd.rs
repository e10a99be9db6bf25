//! systemd integration for `Type=notify`: the sd_notify datagram protocol (READY=1, STATUS=,
//! STOPPING=1, WATCHDOG=1) and the liveness check that decides whether WATCHDOG=1 may be sent.
//!
//! WATCHDOG=1 is not a timer: it is sent only when every arbiter thread answers and no mailbox
//! that holds work has stopped taking it, so a pipeline that is stuck stops the pings and systemd
//! restarts the daemon. A pipeline that is merely waiting (PostgreSQL down, the writer spooling;
//! a quiet market) is not stuck. Without `NOTIFY_SOCKET` everything here is a no-op apart from
//! the `tradepipe_watchdog_healthy` gauge.

use crate::actors::MailboxDepth;
use actix::ArbiterHandle;
use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

/// Where the service manager listens. Messages are fire-and-forget datagrams; a failure to send
/// is logged and never stops the daemon.
pub(crate) struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
}

impl Notifier {
    /// From `$NOTIFY_SOCKET` (set by systemd for `Type=notify` units); a no-op notifier without it.
    pub(crate) fn from_env() -> Notifier {
        match std::env::var("NOTIFY_SOCKET") {
            Ok(spec) if !spec.is_empty() => match Notifier::to_socket(&spec) {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(socket = %spec, error = %e, "NOTIFY_SOCKET unusable; not notifying systemd");
                    Notifier::disabled()
                }
            },
            _ => Notifier::disabled(),
        }
    }

    pub(crate) fn disabled() -> Notifier {
        Notifier { target: None }
    }

    /// A path, or `@name` for a Linux abstract socket (what systemd uses in some setups).
    pub(crate) fn to_socket(spec: &str) -> io::Result<Notifier> {
        let addr = match spec.strip_prefix('@') {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name.as_bytes())?
            }
            None => SocketAddr::from_pathname(spec)?,
        };
        let sock = UnixDatagram::unbound()?;
        // Never block an actix thread on a full notify socket: drop the message instead.
        sock.set_nonblocking(true)?;
        Ok(Notifier {
            target: Some((sock, addr)),
        })
    }

    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Sends one state datagram (`KEY=VALUE` lines).
    pub fn notify(&self, state: &str) {
        if let Some((sock, addr)) = &self.target
            && let Err(e) = sock.send_to_addr(state.as_bytes(), addr)
        {
            tracing::warn!(error = %e, state, "sd_notify failed");
        }
    }

    pub fn ready(&self, status: &str) {
        self.notify(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    pub fn status(&self, status: &str) {
        self.notify(&format!("STATUS={}", one_line(status)));
    }

    pub fn stopping(&self, status: &str) {
        self.notify(&format!("STOPPING=1\nSTATUS={}", one_line(status)));
    }

    pub fn watchdog(&self) {
        self.notify("WATCHDOG=1");
    }
}

/// A newline would start a new `KEY=VALUE` assignment.
fn one_line(s: &str) -> String {
    s.trim().replace(['\n', '\r'], " ")
}

/// The watchdog timeout systemd expects pings within (`WatchdogSec=`), if it watches this process.
pub(crate) fn watchdog_timeout() -> Option<Duration> {
    parse_watchdog(
        std::env::var("WATCHDOG_USEC").ok().as_deref(),
        std::env::var("WATCHDOG_PID").ok().as_deref(),
        std::process::id(),
    )
}

/// `WATCHDOG_PID`, when set, names the process meant to ping; an inherited value for another
/// process (our parent) is not ours to act on.
fn parse_watchdog(usec: Option<&str>, pid: Option<&str>, me: u32) -> Option<Duration> {
    if let Some(pid) = pid
        && pid.trim().parse::<u32>().ok() != Some(me)
    {
        return None;
    }
    let usec: u64 = usec?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// What the liveness check watches: the stages, and the actor threads (arbiters) by name.
pub(crate) type LivenessInputs = (Vec<Box<dyn Stage>>, Vec<(&'static str, ArbiterHandle)>);

/// One stage of a pipeline as the liveness check sees it.
pub(crate) trait Stage: Send {
    fn name(&self) -> &'static str;
    /// Messages waiting in its mailbox.
    fn waiting(&self) -> i64;
    /// Messages it has taken out of its mailbox so far.
    fn taken(&self) -> u64;
}

impl Stage for MailboxDepth {
    fn name(&self) -> &'static str {
        self.actor()
    }
    fn waiting(&self) -> i64 {
        self.get()
    }
    fn taken(&self) -> u64 {
        self.taken_total()
    }
}

struct Tracked {
    stage: Box<dyn Stage>,
    last_taken: u64,
    /// When the stage was last seen idle or making progress.
    progress_at: Instant,
}

/// Decides whether the pipelines are alive: a stage is stalled when work has waited in its
/// mailbox and it has taken none of it for `stall_after`; an arbiter (an actor thread) is stuck
/// when a task spawned on it does not run within the check's timeout.
pub(crate) struct Liveness {
    stages: Vec<Tracked>,
    arbiters: Vec<(&'static str, ArbiterHandle)>,
    stall_after: Duration,
}

impl Liveness {
    pub fn new(
        stages: Vec<Box<dyn Stage>>,
        arbiters: Vec<(&'static str, ArbiterHandle)>,
        stall_after: Duration,
        now: Instant,
    ) -> Liveness {
        Liveness {
            stages: stages
                .into_iter()
                .map(|stage| Tracked {
                    last_taken: stage.taken(),
                    stage,
                    progress_at: now,
                })
                .collect(),
            arbiters,
            stall_after,
        }
    }

    /// The stages stalled at `now`.
    pub fn stalled(&mut self, now: Instant) -> Vec<&'static str> {
        let mut out = Vec::new();
        for t in &mut self.stages {
            let taken = t.stage.taken();
            if taken != t.last_taken || t.stage.waiting() <= 0 {
                t.last_taken = taken;
                t.progress_at = now;
            } else if now.saturating_duration_since(t.progress_at) >= self.stall_after {
                out.push(t.stage.name());
            }
        }
        out
    }

    /// The arbiters (actor threads) that did not run a spawned task within `within`, or are gone.
    pub(crate) async fn unresponsive_arbiters(&self, within: Duration) -> Vec<&'static str> {
        let mut waits = Vec::new();
        let mut silent = Vec::new();
        for (name, a) in &self.arbiters {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            if a.spawn(async move {
                let _ = tx.send(());
            }) {
                waits.push((*name, rx));
            } else {
                silent.push(*name);
            }
        }
        // One deadline for all: each waits at most what is left of `within`.
        let deadline = tokio::time::Instant::now() + within;
        for (name, rx) in waits {
            if !matches!(tokio::time::timeout_at(deadline, rx).await, Ok(Ok(()))) {
                silent.push(name);
            }
        }
        silent
    }

    /// `Ok` when the pipelines are alive, else what is wrong, for the log.
    pub async fn check(&mut self, within: Duration) -> Result<(), String> {
        let stalled = self.stalled(Instant::now());
        let stuck = self.unresponsive_arbiters(within).await;
        if stalled.is_empty() && stuck.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "stalled mailboxes: {stalled:?}; unresponsive actor threads: {stuck:?}"
            ))
        }
    }
}

/// Checks liveness periodically, sets `tradepipe_watchdog_healthy` and, when systemd watches
/// (`WATCHDOG_USEC`), sends WATCHDOG=1 after each check that passed. Checks run four times per
/// watchdog timeout, and a stage counts as stalled after half of it: a stuck pipeline misses the
/// pings for longer than the timeout and systemd restarts the daemon.
pub(crate) async fn run_watchdog(
    stages: Vec<Box<dyn Stage>>,
    arbiters: Vec<(&'static str, ArbiterHandle)>,
    notifier: std::sync::Arc<Notifier>,
) {
    let timeout = watchdog_timeout().filter(|_| notifier.enabled());
    let (every, stall_after) = match timeout {
        Some(t) => ((t / 4).max(Duration::from_millis(50)), t / 2),
        None => (Duration::from_secs(10), Duration::from_secs(60)),
    };
    let mut liveness = Liveness::new(stages, arbiters, stall_after, Instant::now());
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut was_healthy = true;
    loop {
        tick.tick().await;
        match liveness.check(every.min(Duration::from_secs(5))).await {
            Ok(()) => {
                metrics::gauge!("tradepipe_watchdog_healthy").set(1.0);
                if timeout.is_some() {
                    notifier.watchdog();
                }
                if !was_healthy {
                    tracing::info!("pipelines alive again");
                }
                was_healthy = true;
            }
            Err(why) => {
                metrics::gauge!("tradepipe_watchdog_healthy").set(0.0);
                tracing::error!(reason = %why, "liveness check failed; not pinging the watchdog");
                was_healthy = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

    #[derive(Clone, Default)]
    struct Fake {
        waiting: Arc<AtomicI64>,
        taken: Arc<AtomicU64>,
    }

    impl Stage for Fake {
        fn name(&self) -> &'static str {
            "fake"
        }
        fn waiting(&self) -> i64 {
            self.waiting.load(Ordering::SeqCst)
        }
        fn taken(&self) -> u64 {
            self.taken.load(Ordering::SeqCst)
        }
    }

    /// One fake stage under a 30 s stall bound, and its liveness check.
    fn watched(t0: Instant) -> (Fake, Liveness) {
        let f = Fake::default();
        let l = Liveness::new(
            vec![Box::new(f.clone())],
            vec![],
            Duration::from_secs(30),
            t0,
        );
        (f, l)
    }

    fn at(t0: Instant, secs: u64) -> Instant {
        t0 + Duration::from_secs(secs)
    }

    #[test]
    fn a_mailbox_with_work_that_nobody_takes_is_stalled() {
        let t0 = Instant::now();
        let (f, mut l) = watched(t0);
        f.waiting.store(5, Ordering::SeqCst);
        assert!(l.stalled(at(t0, 10)).is_empty(), "not yet");
        assert!(l.stalled(at(t0, 29)).is_empty(), "not yet");
        assert_eq!(l.stalled(at(t0, 30)), vec!["fake"]);
        // It takes one message: progress, the clock starts again.
        f.taken.fetch_add(1, Ordering::SeqCst);
        assert!(l.stalled(at(t0, 31)).is_empty());
        assert!(l.stalled(at(t0, 60)).is_empty());
        assert_eq!(l.stalled(at(t0, 61)), vec!["fake"]);
    }

    #[test]
    fn an_idle_stage_is_never_stalled() {
        let t0 = Instant::now();
        let (f, mut l) = watched(t0);
        assert!(l.stalled(at(t0, 3600)).is_empty(), "a quiet market");
        // Work arrives after a long quiet: the stall clock starts at the last idle check.
        f.waiting.store(1, Ordering::SeqCst);
        assert!(l.stalled(at(t0, 3601)).is_empty());
        assert_eq!(l.stalled(at(t0, 3630)), vec!["fake"]);
    }

    #[test]
    fn a_busy_stage_that_keeps_taking_is_alive() {
        let t0 = Instant::now();
        let (f, mut l) = watched(t0);
        f.waiting.store(1000, Ordering::SeqCst);
        for s in (0..600).step_by(15) {
            f.taken.fetch_add(1, Ordering::SeqCst);
            assert!(l.stalled(at(t0, s)).is_empty(), "at {s}s");
        }
    }

    #[test]
    fn watchdog_settings_follow_systemds_variables() {
        assert_eq!(
            parse_watchdog(Some("30000000"), None, 7),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_watchdog(Some("30000000"), Some("7"), 7),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_watchdog(Some("30000000"), Some("8"), 7), None);
        assert_eq!(parse_watchdog(Some("0"), None, 7), None);
        assert_eq!(parse_watchdog(Some("x"), None, 7), None);
        assert_eq!(parse_watchdog(None, None, 7), None);
    }

    #[test]
    fn notifies_a_path_socket_and_an_abstract_one() {
        let dir = std::env::temp_dir().join(format!("tp-notify-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::to_socket(path.to_str().unwrap()).unwrap();
        n.ready("up: 2 symbols\nsecond line");
        let mut buf = [0u8; 512];
        let len = server.recv(&mut buf).unwrap();
        assert_eq!(
            std::str::from_utf8(&buf[..len]).unwrap(),
            "READY=1\nSTATUS=up: 2 symbols second line"
        );
        let _ = std::fs::remove_dir_all(&dir);

        use std::os::linux::net::SocketAddrExt;
        let name = format!("tradepipe-test-{}", std::process::id());
        let server =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        let n = Notifier::to_socket(&format!("@{name}")).unwrap();
        n.watchdog();
        let len = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"WATCHDOG=1");
    }

    #[actix_rt::test]
    async fn a_blocked_arbiter_is_unresponsive() {
        let live = actix::Arbiter::new();
        let blocked = actix::Arbiter::new();
        let (release, hold) = std::sync::mpsc::channel::<()>();
        blocked.spawn(async move {
            // A handler that never returns: the thread is held until the test releases it.
            let _ = hold.recv();
        });
        let l = Liveness::new(
            vec![],
            vec![("live", live.handle()), ("blocked", blocked.handle())],
            Duration::from_secs(30),
            Instant::now(),
        );
        assert_eq!(
            l.unresponsive_arbiters(Duration::from_millis(300)).await,
            vec!["blocked"]
        );
        release.send(()).unwrap();
        assert!(
            l.unresponsive_arbiters(Duration::from_secs(30))
                .await
                .is_empty()
        );
        live.stop();
        blocked.stop();
    }
}
