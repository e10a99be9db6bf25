//! Helpers for end-to-end tests: run the real `tradepipe` daemon and the `tradepipe-testkit`
//! peers as child processes against the real PostgreSQL and Redis, and compute expected candles
//! with an obviously-correct reference fold.
//!
//! Test equipment, never linked into the daemon: here a failed set-up step (spawning a child,
//! binding a port, a test query) must fail the test that asked for it, so these helpers panic
//! through `expect` with a message saying which step failed, instead of returning errors every
//! test would only unwrap.

use rust_decimal::Decimal;
use sqlx::{PgPool, Row};
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tradepipe::domain::{Interval, Trade};

/// The repository's root (this crate lives in `crates/testkit`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The directory cargo put the running test's binaries in (`target/<profile>`): a test
/// executable runs from `target/<profile>/deps`.
fn target_profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let dir = exe.parent().expect("the test executable's directory");
    if dir.ends_with("deps") {
        dir.parent().expect("target/<profile>").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// The daemon binary that `cargo test` built for the root package's integration tests.
pub fn daemon_bin() -> PathBuf {
    target_profile_dir().join("tradepipe")
}

/// The `tradepipe-testkit` binary (replay peer, news site). `cargo test --workspace` (what
/// scripts/test runs) builds it, because this crate has integration tests of its own. A test run
/// of the root package alone does not: then, or when a source of the daemon or the test kit is
/// newer than the binary, the first call builds it (same profile) so a test never runs a stale peer.
pub fn testkit_bin() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = target_profile_dir();
            let bin = dir.join("tradepipe-testkit");
            let built_at = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
            let sources = [
                repo_root().join("src"),
                repo_root().join("crates/testkit/src"),
            ];
            let stale = match built_at {
                None => true,
                Some(t) => sources
                    .iter()
                    .any(|d| newest_mtime(d).is_some_and(|s| s > t)),
            };
            if stale {
                let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
                let mut cmd = Command::new(cargo);
                cmd.args(["build", "--quiet", "-p", "tradepipe-testkit", "--bin"])
                    .arg("tradepipe-testkit")
                    .current_dir(repo_root());
                if dir.ends_with("release") {
                    cmd.arg("--release");
                }
                let status = cmd.status().expect("run cargo build for tradepipe-testkit");
                assert!(
                    status.success(),
                    "cargo build -p tradepipe-testkit: {status}"
                );
            }
            bin
        })
        .clone()
}

/// The newest modification time of any file below `dir`.
fn newest_mtime(dir: &Path) -> Option<std::time::SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let t = if path.is_dir() {
            newest_mtime(&path)
        } else {
            entry.metadata().and_then(|m| m.modified()).ok()
        };
        newest = newest.max(t);
    }
    newest
}

pub fn data_file(name: &str) -> PathBuf {
    repo_root().join("data/demo").join(name)
}

pub fn demo_files() -> Vec<PathBuf> {
    vec![
        data_file("BTCUSDT-trades-20240808T235415-20240809T000505.derived.csv.gz"),
        data_file("ETHUSDT-trades-20240808T235415-20240809T000505.derived.csv.gz"),
    ]
}

pub fn demo_trades() -> Vec<Trade> {
    let mut all = Vec::new();
    for f in demo_files() {
        all.extend(
            tradepipe::exchange::trades_file::read_trades_file(&f, None).expect("demo sample"),
        );
    }
    all
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A child process that is killed (SIGKILL) if the test forgets it or fails.
pub struct Proc {
    pub child: Option<Child>,
    pub name: &'static str,
}

impl Proc {
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status();
    }

    /// Peak resident set size (`VmHWM`) in KiB while the process is alive.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for the exit status.
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        self.signal("TERM");
        self.wait(within)
    }

    /// [`Proc::terminate`] without blocking the async runtime: a proxy or server the test runs on
    /// that runtime keeps serving the daemon's last writes while it shuts down.
    pub async fn terminate_async(&mut self, within: Duration) -> ExitStatus {
        self.signal("TERM");
        let mut c = self.child.take().expect("process running");
        let deadline = Instant::now() + within;
        loop {
            if let Some(st) = exited(&mut c, self.name, within, deadline) {
                return st;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn wait(&mut self, within: Duration) -> ExitStatus {
        let mut c = self.child.take().expect("process running");
        let deadline = Instant::now() + within;
        loop {
            if let Some(st) = exited(&mut c, self.name, within, deadline) {
                return st;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// One look at whether `c` has exited; past `deadline` it is killed and the test fails.
fn exited(c: &mut Child, name: &str, within: Duration, deadline: Instant) -> Option<ExitStatus> {
    if let Some(st) = c.try_wait().expect("wait") {
        return Some(st);
    }
    if Instant::now() > deadline {
        let _ = c.kill();
        panic!("{name} did not exit within {within:?}");
    }
    None
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Waits until `proc` listens on `port`; fails at once if it exited instead. Generous: on a
/// loaded 2-core machine a debug binary can take a while to load its data.
fn wait_port(proc: &mut Proc, port: u16, within: Duration) {
    let deadline = Instant::now() + within;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(st) = proc
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
        {
            panic!("{} exited with {st} before listening on {port}", proc.name);
        }
        assert!(
            Instant::now() < deadline,
            "{} is not listening on port {port} after {within:?}",
            proc.name
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `tradepipe-testkit replay` on a free port with the demo sample; `extra` adds flags.
pub fn start_replay(extra: &[&str]) -> (Proc, u16) {
    let port = free_port();
    let mut cmd = Command::new(testkit_bin());
    cmd.arg("replay");
    for f in demo_files() {
        cmd.arg("--trades").arg(f);
    }
    cmd.args(["--listen", &format!("127.0.0.1:{port}")])
        .args(extra);
    cmd.env(
        "RUST_LOG",
        std::env::var("TEST_REPLAY_LOG").unwrap_or_else(|_| "warn".into()),
    );
    cmd.stdout(Stdio::null()).stderr(Stdio::inherit());
    let child = cmd.spawn().expect("spawn replay");
    let mut proc = Proc {
        child: Some(child),
        name: "replay",
    };
    wait_port(&mut proc, port, Duration::from_secs(90));
    (proc, port)
}

/// Everything a daemon under test needs that must not collide with other tests.
pub struct DaemonEnv {
    pub db_url: String,
    pub redis_prefix: String,
    pub spool_dir: PathBuf,
    pub http_port: u16,
    pub replay_port: u16,
    pub extra_env: Vec<(String, String)>,
    /// When set, the daemon's stderr (its log) is appended here instead of inherited, so a test
    /// can search it (e.g. for "panicked").
    pub log_file: Option<PathBuf>,
}

impl DaemonEnv {
    pub fn new(pool: &PgPool, replay_port: u16, tag: &str) -> Self {
        let db = pool
            .connect_options()
            .get_database()
            .expect("test database")
            .to_string();
        let base = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let db_url = match base.rfind('/') {
            Some(i) => format!("{}/{db}", &base[..i]),
            None => panic!("DATABASE_URL without a database"),
        };
        let spool_dir =
            std::env::temp_dir().join(format!("tradepipe-test-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&spool_dir);
        DaemonEnv {
            db_url,
            redis_prefix: format!("test:{tag}:{}:", std::process::id()),
            spool_dir,
            http_port: free_port(),
            replay_port,
            extra_env: Vec::new(),
            log_file: None,
        }
    }

    /// Deletes every Redis key under this test's prefix.
    pub async fn delete_redis_keys(&self) {
        let client = redis::Client::open(self.redis_url()).expect("redis url");
        let mut con = client
            .get_multiplexed_async_connection()
            .await
            .expect("redis");
        let _: () = redis::cmd("EVAL")
            .arg("for _,k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end")
            .arg(0)
            .arg(format!("{}*", self.redis_prefix))
            .query_async(&mut con)
            .await
            .expect("cleanup");
    }

    pub fn redis_url(&self) -> String {
        std::env::var("TRADEPIPE_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
    }

    pub fn start(&self, args: &[&str]) -> Proc {
        let mut cmd = Command::new(daemon_bin());
        cmd.arg("run").args(args);
        cmd.env("TRADEPIPE_DATABASE_URL", &self.db_url)
            .env("TRADEPIPE_REDIS_URL", self.redis_url())
            .env("TRADEPIPE__REDIS__KEY_PREFIX", &self.redis_prefix)
            .env(
                "TRADEPIPE_BINANCE_WS_URL",
                format!("ws://127.0.0.1:{}", self.replay_port),
            )
            .env(
                "TRADEPIPE_BINANCE_REST_URL",
                format!("http://127.0.0.1:{}", self.replay_port),
            )
            .env("TRADEPIPE_SYMBOLS", "BTCUSDT,ETHUSDT")
            .env(
                "TRADEPIPE_HTTP_ADDR",
                format!("127.0.0.1:{}", self.http_port),
            )
            .env("TRADEPIPE_SPOOL_DIR", &self.spool_dir)
            .env("TRADEPIPE__BINANCE__BACKOFF_INITIAL_MS", "50")
            .env("TRADEPIPE__BINANCE__BACKOFF_MAX_MS", "500")
            .env("TRADEPIPE__BINANCE__BACKFILL_RETRY_SECS", "30")
            // The replayed trades are from 2024: past every retention policy, so a pass (30 s
            // after start) would archive and remove what the test is checking. Retention has
            // its own tests (tests/retention.rs).
            .env("TRADEPIPE__RETENTION__ENABLED", "false")
            .env(
                "RUST_LOG",
                std::env::var("TEST_DAEMON_LOG").unwrap_or_else(|_| "warn,tradepipe=info".into()),
            )
            .current_dir(std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        if let Some(path) = &self.log_file {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .expect("daemon log file");
            cmd.stderr(Stdio::from(file));
        }
        Proc {
            child: Some(cmd.spawn().expect("spawn daemon")),
            name: "daemon",
        }
    }

    /// Makes the daemon reach Redis through a [`FaultProxy`] on `port`.
    pub fn redis_via(&mut self, port: u16) {
        self.extra_env.push((
            "TRADEPIPE_REDIS_URL".into(),
            format!("redis://127.0.0.1:{port}"),
        ));
    }

    /// The daemon's log so far (empty without `log_file`).
    pub fn log(&self) -> String {
        self.log_file
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// HTTP status of `GET <path>` on the daemon's listener (0 when it does not answer).
    pub fn http_status(&self, path: &str) -> u16 {
        Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "2",
                &format!("http://127.0.0.1:{}{path}", self.http_port),
            ])
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn metrics(&self) -> String {
        let out = Command::new("curl")
            .args([
                "-s",
                "--max-time",
                "2",
                &format!("http://127.0.0.1:{}/metrics", self.http_port),
            ])
            .output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default()
    }
}

/// Sum of every series of `name` (any labels) in a Prometheus text exposition.
pub fn metric_sum(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Value of the one series `name{labels}` (labels exactly as exported), or 0.
pub fn metric_value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Raw articles per `processing_status`.
/// The local news server's sources made quicker for a test (still paced: 50 ms between
/// requests) and written to a temp file named after `tag`, for `TRADEPIPE_SOURCES_FILE`.
pub fn quick_sources_file(server: &crate::news_server::NewsServer, tag: &str) -> PathBuf {
    let toml = server
        .sources_toml()
        .replace("delay_ms = 1000", "delay_ms = 50")
        .replace("requests_per_minute = 60", "requests_per_minute = 1200");
    let path = std::env::temp_dir().join(format!("tradepipe-{tag}-{}.toml", std::process::id()));
    std::fs::write(&path, toml).expect("writing the sources file");
    path
}

/// Every page the server lists (all sources), and how many of them a polite crawler may fetch
/// (robots.txt keeps it out of the private ones).
pub fn listed_entries(
    server: &crate::news_server::NewsServer,
) -> (Vec<crate::news_server::ListedEntry>, i64) {
    let entries: Vec<_> = server
        .sources()
        .iter()
        .flat_map(|s| s.entries.clone())
        .collect();
    let fetchable = entries
        .iter()
        .filter(|e| e.kind != crate::news_server::EntryKind::Private)
        .count() as i64;
    (entries, fetchable)
}

pub async fn raw_status_counts(pool: &PgPool) -> std::collections::HashMap<String, i64> {
    sqlx::query("SELECT processing_status, count(*) FROM content.raw_articles GROUP BY 1")
        .fetch_all(pool)
        .await
        .map(|rows| {
            rows.into_iter()
                .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1)))
                .collect()
        })
        .unwrap_or_default()
}

/// Polls until `fetchable` raw articles are stored and none is left PENDING or PROCESSING (the
/// crawl and its normalization are done); returns the counts per status.
pub async fn wait_for_crawl(
    pool: &PgPool,
    fetchable: i64,
    within: Duration,
) -> std::collections::HashMap<String, i64> {
    let deadline = Instant::now() + within;
    loop {
        let c = raw_status_counts(pool).await;
        let total: i64 = c.values().sum();
        let open =
            c.get("PENDING").copied().unwrap_or(0) + c.get("PROCESSING").copied().unwrap_or(0);
        if total >= fetchable && open == 0 {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "crawl did not finish: {c:?}, expected {fetchable} pages"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub async fn tick_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar::<_, i64>("SELECT count(*) FROM trading.price_ticks")
        .fetch_one(pool)
        .await
        .unwrap_or(0)
}

/// Polls until `expected` ticks are stored (or panics after `within`).
pub async fn wait_for_ticks(pool: &PgPool, expected: i64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let n = tick_count(pool).await;
        if n >= expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {n} of {expected} ticks stored after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// (symbol, trade_id) of every stored tick, with how often each is stored.
pub async fn stored_trade_ids(pool: &PgPool) -> BTreeMap<(String, i64), i64> {
    sqlx::query("SELECT symbol_id, trade_id, count(*) FROM trading.price_ticks GROUP BY 1, 2")
        .fetch_all(pool)
        .await
        .expect("ticks")
        .into_iter()
        .map(|r| {
            (
                (r.get::<String, _>(0), r.get::<i64, _>(1)),
                r.get::<i64, _>(2),
            )
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefCandle {
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub close: Decimal,
    pub volume: Decimal,
    pub quote_volume: Decimal,
    pub trade_count: i64,
    pub close_time_ms: i64,
}

pub type CandleKey = (String, String, i64);

/// The plainest fold there is: group by bucket, in id order.
pub fn reference_candles(trades: &[Trade]) -> BTreeMap<CandleKey, RefCandle> {
    let mut sorted: Vec<&Trade> = trades.iter().collect();
    sorted.sort_by_key(|t| (t.symbol.clone(), t.trade_id));
    let mut out: BTreeMap<CandleKey, RefCandle> = BTreeMap::new();
    for t in sorted {
        for iv in Interval::ALL {
            let open = iv.open_time(t.time_ms);
            let key = (t.symbol.to_string(), iv.as_str().to_string(), open);
            let q = t.price * t.qty;
            out.entry(key)
                .and_modify(|c| {
                    c.high = c.high.max(t.price);
                    c.low = c.low.min(t.price);
                    c.close = t.price;
                    c.volume += t.qty;
                    c.quote_volume += q;
                    c.trade_count += 1;
                })
                .or_insert(RefCandle {
                    open: t.price,
                    high: t.price,
                    low: t.price,
                    close: t.price,
                    volume: t.qty,
                    quote_volume: q,
                    trade_count: 1,
                    close_time_ms: iv.close_time(open),
                });
        }
    }
    out
}

/// Stored candles with at least one trade (empty ones are checked separately where they matter).
pub async fn stored_candles(pool: &PgPool) -> BTreeMap<CandleKey, RefCandle> {
    sqlx::query(
        "SELECT symbol_id, interval, (extract(epoch from open_time) * 1000)::bigint,
                open, high, low, close, volume, quote_volume, trade_count,
                (extract(epoch from close_time) * 1000)::bigint
         FROM trading.price_candles WHERE trade_count > 0",
    )
    .fetch_all(pool)
    .await
    .expect("candles")
    .into_iter()
    .map(|r| {
        (
            (
                r.get::<String, _>(0),
                r.get::<String, _>(1),
                r.get::<i64, _>(2),
            ),
            RefCandle {
                open: r.get(3),
                high: r.get(4),
                low: r.get(5),
                close: r.get(6),
                volume: r.get(7),
                quote_volume: r.get(8),
                trade_count: r.get::<i64, _>(9),
                close_time_ms: r.get(10),
            },
        )
    })
    .collect()
}

/// Asserts the stored ticks are exactly the sample's trades, each once, and the stored candles
/// equal the reference fold on every field.
pub async fn assert_exact(pool: &PgPool, trades: &[Trade]) {
    let ids = stored_trade_ids(pool).await;
    let dupes: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(dupes.is_empty(), "ticks stored more than once: {dupes:?}");
    let mut missing = Vec::new();
    for t in trades {
        if !ids.contains_key(&(t.symbol.to_string(), t.trade_id as i64)) {
            missing.push((t.symbol.to_string(), t.trade_id));
        }
    }
    assert!(
        missing.is_empty(),
        "{} trades missing, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert_eq!(ids.len(), trades.len(), "stored tick count");

    let expected = reference_candles(trades);
    let stored = stored_candles(pool).await;
    let mut diffs = Vec::new();
    for (k, want) in &expected {
        match stored.get(k) {
            Some(got) if got == want => {}
            other => diffs.push(format!("{k:?}: want {want:?}, got {other:?}")),
        }
    }
    for k in stored.keys() {
        if !expected.contains_key(k) {
            diffs.push(format!("{k:?}: stored but not expected"));
        }
    }
    assert!(
        diffs.is_empty(),
        "{} candle differences:\n{}",
        diffs.len(),
        diffs[..diffs.len().min(10)].join("\n")
    );
}

/// A TCP proxy in front of PostgreSQL or Redis that a test can cut: `set_down(true)` drops every
/// open connection and refuses new ones until `set_down(false)`. This is how the fault tests take
/// a database "away" without stopping the server other tests share.
pub struct FaultProxy {
    pub port: u16,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
    generation: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
}

impl FaultProxy {
    pub async fn start(upstream: &str) -> FaultProxy {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (tx, _rx) = tokio::sync::watch::channel(0u64);
        let generation = std::sync::Arc::new(tx);
        let upstream = upstream.to_string();
        let (d, g) = (down.clone(), generation.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if d.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let upstream = upstream.clone();
                let mut cut = g.subscribe();
                tokio::spawn(async move {
                    let Ok(mut out) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut out) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        FaultProxy {
            port,
            down,
            generation,
        }
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
        if down {
            self.generation.send_modify(|g| *g += 1);
        }
    }
}

/// Checks every file and directory below `dir` (not `dir` itself) has none of the permission
/// bits in `forbidden` (0o077: group and others; 0o007: others), and returns how many entries
/// were checked, so a caller can tell an empty tree from a private one.
pub fn assert_no_permission_bits(dir: &Path, forbidden: u32) -> usize {
    use std::os::unix::fs::PermissionsExt;
    let mut checked = 0;
    let mut stack: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("reading the directory under test")
        .flatten()
        .map(|e| e.path())
        .collect();
    while let Some(path) = stack.pop() {
        let meta = std::fs::metadata(&path).expect("metadata of an entry under test");
        let mode = meta.permissions().mode() & 0o777;
        assert_eq!(mode & forbidden, 0, "{} has mode {mode:o}", path.display());
        checked += 1;
        if meta.is_dir() {
            stack.extend(
                std::fs::read_dir(&path)
                    .expect("reading a directory under test")
                    .flatten()
                    .map(|e| e.path()),
            );
        }
    }
    checked
}

/// A lifecycle whose stores are all the PostgreSQL ones of `pool` (no session store): what the
/// retention tests run passes with.
pub fn pg_lifecycle(
    pool: &PgPool,
    cfg: tradepipe::config::RetentionConfig,
) -> tradepipe::lifecycle::Lifecycle {
    use tradepipe::store::postgres::PgRetentionStore;
    let pg = std::sync::Arc::new(PgRetentionStore::new(pool.clone()));
    tradepipe::lifecycle::Lifecycle::new(
        cfg,
        tradepipe::lifecycle::LifecycleStores {
            market: pg.clone(),
            documents: pg.clone(),
            maintenance: pg,
            sessions: None,
        },
    )
}

/// Every line of every archive file of `policy` under `dir`, each file checked against the
/// manifest, with how often the line occurs.
pub fn archived_lines(dir: &Path, policy: &str) -> std::collections::HashMap<String, usize> {
    let a = tradepipe::lifecycle::archive::Archive::new(dir);
    let m = a.manifest(policy).expect("reading the archive manifest");
    let mut out = std::collections::HashMap::new();
    for e in &m.files {
        for line in a
            .read_verified(policy, e)
            .expect("reading an archive file back")
        {
            *out.entry(line).or_default() += 1;
        }
    }
    out
}
