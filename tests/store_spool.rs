//! The on-disk spool: order, rotation, draining, and surviving interrupted writes; and the market
//! writer's use of it: its disk work happens off the writer's thread, a stalled disk does not
//! stall the writer, and what it spills is durable when `FlushAll` answers (the store is a stub:
//! no database needed).

use rust_decimal::Decimal;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tradepipe::actors::MailboxDepth;
use tradepipe::actors::market_writer::{FlushAll, MarketWriterActor, Persist};
use tradepipe::config::WriterConfig;
use tradepipe::domain::{MarketBatch, SymbolInfo, Trade};
use tradepipe::store::{MarketStore, ResumeState, Spool, SpoolThread, StoreError, WriteStats};
use tradepipe::telemetry::Health;
use tradepipe::telemetry::progress::Progress;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tradepipe-spool-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn batch(n: u64) -> MarketBatch {
    MarketBatch {
        ticks: (0..3)
            .map(|i| Trade {
                symbol: Arc::from("BTCUSDT"),
                trade_id: n * 10 + i,
                price: Decimal::new(6_012_345_678_901, 8),
                qty: Decimal::new(12_345, 8),
                time_ms: 1_723_161_600_000 + n as i64,
                is_buyer_maker: i == 1,
            })
            .collect(),
        candles: vec![],
    }
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "spool"))
        .collect();
    v.sort();
    v
}

/// Drains the spool completely, returning every batch in order.
fn drain(spool: &mut Spool) -> Vec<MarketBatch> {
    let mut out = Vec::new();
    while let Some(seg) = spool.oldest().unwrap() {
        out.extend(seg.batches.iter().cloned());
        spool.remove(seg).unwrap();
    }
    out
}

#[test]
fn batches_come_back_in_order_across_segments_and_reopen() {
    let dir = TempDir::new("order");
    let mut spool = Spool::open_with_segment_bytes(&dir.0, 1_000).unwrap();
    assert!(spool.is_empty());
    assert!(spool.oldest().unwrap().is_none());
    for n in 0..20 {
        spool.append(&batch(n)).unwrap();
    }
    assert_eq!(spool.depth_batches(), 20);
    let files = segments(&dir.0);
    assert!(files.len() > 2, "rotation by size: {files:?}");
    let bytes: u64 = files.iter().map(|f| fs::metadata(f).unwrap().len()).sum();
    assert_eq!(spool.depth_bytes(), bytes);
    drop(spool);

    // A new process finds everything again, oldest first; exact decimals survive.
    let mut spool = Spool::open_with_segment_bytes(&dir.0, 1_000).unwrap();
    assert_eq!(spool.depth_batches(), 20);
    spool.append(&batch(20)).unwrap();
    let all = drain(&mut spool);
    assert_eq!(all, (0..21).map(batch).collect::<Vec<_>>());
    assert!(spool.is_empty());
    assert_eq!((spool.depth_batches(), spool.depth_bytes()), (0, 0));
    assert!(segments(&dir.0).is_empty());
}

#[test]
fn torn_last_line_is_counted_and_dropped() {
    let dir = TempDir::new("torn");
    let mut spool = Spool::open(&dir.0).unwrap();
    for n in 0..3 {
        spool.append(&batch(n)).unwrap();
    }
    drop(spool);
    // What a kill -9 in the middle of a write leaves behind: half a record, no newline.
    let file = segments(&dir.0).pop().unwrap();
    let line = serde_json::to_vec(&batch(3)).unwrap();
    OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap()
        .write_all(&line[..line.len() / 2])
        .unwrap();

    let mut spool = Spool::open(&dir.0).unwrap();
    assert_eq!(spool.torn_records(), 1);
    assert_eq!(spool.depth_batches(), 3);
    // Appends after recovery go to a new segment and are read after the old ones.
    spool.append(&batch(4)).unwrap();
    let all = drain(&mut spool);
    assert_eq!(all, vec![batch(0), batch(1), batch(2), batch(4)]);
}

#[test]
fn garbage_never_panics() {
    let dir = TempDir::new("garbage");
    fs::create_dir_all(&dir.0).unwrap();
    // A corrupt middle line, a torn tail of NUL bytes (unwritten blocks after a power loss),
    // an empty segment, a leftover temporary file and a foreign file.
    let good = serde_json::to_string(&batch(1)).unwrap();
    fs::write(
        dir.0.join("00000000000000000007.spool"),
        format!("{good}\n{{\"ticks\":[1,\n{good}\n\0\0\0\0"),
    )
    .unwrap();
    fs::write(dir.0.join("00000000000000000003.spool"), "").unwrap();
    fs::write(dir.0.join("00000000000000000009.tmp"), "partial").unwrap();
    fs::write(dir.0.join("notes.txt"), "hello").unwrap();

    let mut spool = Spool::open(&dir.0).unwrap();
    assert_eq!(spool.torn_records(), 1);
    let seg = spool.oldest().unwrap().unwrap();
    assert_eq!(seg.seq(), 7);
    assert_eq!(seg.batches, vec![batch(1), batch(1)]);
    assert_eq!(seg.dropped_records, 1);
    spool.remove(seg).unwrap();
    assert!(spool.is_empty());
    assert_eq!(spool.torn_records(), 2);
    // New segments continue after the highest number seen, never reusing a name.
    spool.append(&batch(2)).unwrap();
    assert_eq!(spool.oldest().unwrap().unwrap().seq(), 8);
    assert!(!dir.0.join("00000000000000000009.tmp").exists());
    assert!(dir.0.join("notes.txt").exists());
}

#[test]
fn appends_after_reading_the_active_segment_are_kept() {
    let dir = TempDir::new("active");
    let mut spool = Spool::open(&dir.0).unwrap();
    spool.append(&batch(0)).unwrap();
    spool.append(&batch(1)).unwrap();
    let seg = spool.oldest().unwrap().unwrap();
    assert_eq!(seg.batches.len(), 2);
    // The writer keeps spooling while it stores the segment it read.
    spool.append(&batch(2)).unwrap();
    spool.remove(seg).unwrap();
    assert_eq!(spool.depth_batches(), 1);
    spool.append(&batch(3)).unwrap();
    drop(spool);
    let mut spool = Spool::open(&dir.0).unwrap();
    assert_eq!(drain(&mut spool), vec![batch(2), batch(3)]);
}

#[test]
fn a_batch_larger_than_a_segment_gets_its_own() {
    let dir = TempDir::new("large");
    let mut spool = Spool::open_with_segment_bytes(&dir.0, 10).unwrap();
    for n in 0..3 {
        spool.append(&batch(n)).unwrap();
    }
    assert_eq!(segments(&dir.0).len(), 3);
    assert_eq!(drain(&mut spool), vec![batch(0), batch(1), batch(2)]);
}

/// Not a test on its own: the child process `survives_kill_9` starts and kills.
#[test]
#[ignore = "the child process of the kill -9 spool test, which runs it itself"]
fn child_appends_until_killed() {
    let Ok(dir) = std::env::var("TRADEPIPE_SPOOL_CHILD_DIR") else {
        return;
    };
    let mut spool = Spool::open_with_segment_bytes(Path::new(&dir), 4_096).unwrap();
    for n in 0.. {
        spool.append(&batch(n)).unwrap();
    }
}

#[test]
fn survives_kill_9() {
    let dir = TempDir::new("kill9");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_appends_until_killed",
            "--ignored",
            "--nocapture",
        ])
        .env("TRADEPIPE_SPOOL_CHILD_DIR", &dir.0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while (!dir.0.exists() || segments(&dir.0).len() < 3) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let mut spool = Spool::open_with_segment_bytes(&dir.0, 4_096).unwrap();
    let n = spool.depth_batches();
    assert!(n > 0);
    // Every durable batch is there, in order, with no gap.
    assert_eq!(drain(&mut spool), (0..n).map(batch).collect::<Vec<_>>());
}

// ---------------------------------------------------------------------------------------------
// The market writer and its spool

fn ids(b: &MarketBatch) -> Vec<u64> {
    b.ticks.iter().map(|t| t.trade_id).collect()
}

/// Records what it was asked to write; `up == false` answers like an unreachable database.
struct StubStore {
    written: Mutex<Vec<MarketBatch>>,
    up: AtomicBool,
}

impl StubStore {
    fn new(up: bool) -> Arc<StubStore> {
        Arc::new(StubStore {
            written: Mutex::new(Vec::new()),
            up: AtomicBool::new(up),
        })
    }

    fn written(&self) -> Vec<Vec<u64>> {
        self.written.lock().unwrap().iter().map(ids).collect()
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.up.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(StoreError::Unavailable {
                context: "stub".into(),
                source: tradepipe::store::BackendError::Postgres(sqlx::Error::PoolTimedOut),
            })
        }
    }
}

#[async_trait::async_trait]
impl MarketStore for StubStore {
    async fn write_batch(&self, batch: &MarketBatch) -> Result<WriteStats, StoreError> {
        self.check()?;
        self.written.lock().unwrap().push(batch.clone());
        Ok(WriteStats {
            ticks_inserted: batch.ticks.len() as u64,
            ..WriteStats::default()
        })
    }
    async fn resume_state(&self, _symbol: &str) -> Result<ResumeState, StoreError> {
        Ok(ResumeState::default())
    }
    async fn upsert_symbols(&self, _symbols: &[SymbolInfo]) -> Result<(), StoreError> {
        Ok(())
    }
    async fn ensure_tick_partitions(
        &self,
        _from_day: chrono::NaiveDate,
        _days: u32,
    ) -> Result<(), StoreError> {
        Ok(())
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.check()
    }
}

fn config(dir: &Path) -> WriterConfig {
    WriterConfig {
        batch_max_ticks: 1_000,
        flush_interval_ms: 20,
        // Every state in every transaction: these tests count what each write carried.
        open_candle_write_ms: 0,
        open_candle_long_write_ms: 0,
        max_buffered_ticks: 3,
        spool_dir: dir.to_path_buf(),
        retry_interval_ms: 50,
    }
}

/// The writer on an arbiter of its own, as the market pipeline runs it.
fn start_writer(
    store: Arc<StubStore>,
    spool: Spool,
    cfg: WriterConfig,
) -> actix::Addr<MarketWriterActor> {
    let spool = SpoolThread::start(spool).unwrap();
    let arbiter = actix::Arbiter::new();
    actix::Supervisor::start_in_arbiter(&arbiter.handle(), move |_| {
        MarketWriterActor::new(
            store,
            spool,
            cfg,
            MailboxDepth::new("market_writer", 10_000),
            10_000,
            Arc::new(Health::default()),
            Arc::new(Progress::default()),
        )
    })
}

async fn eventually(what: &str, within: Duration, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A spooled segment whose read blocks for seconds (a FIFO standing in for a stalled disk):
/// meanwhile the writer keeps taking live batches and writing them; when the read completes the
/// segment is replayed and removed. Before the spool had its own thread the read ran on the
/// writer's thread and nothing moved until the disk answered.
#[test]
fn a_stalled_spool_read_does_not_stall_the_writer() {
    let dir = TempDir::new("stalled-read");
    let mut spool = Spool::open(&dir.0).unwrap();
    spool.append(&batch(1)).unwrap();
    let [segment] = segments(&dir.0).try_into().unwrap();
    let content = fs::read(&segment).unwrap();
    // The same records, behind a FIFO: opening it for reading waits for a writer, and reading
    // waits for data.
    fs::remove_file(&segment).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&segment)
        .status()
        .unwrap();
    assert!(made.success());

    let opened = Arc::new(AtomicBool::new(false));
    let released = Arc::new(AtomicBool::new(false));
    let disk = {
        let (opened, released, segment) = (opened.clone(), released.clone(), segment.clone());
        std::thread::spawn(move || {
            let mut fifo = fs::OpenOptions::new().write(true).open(&segment).unwrap();
            opened.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_secs(3));
            released.store(true, Ordering::SeqCst);
            fifo.write_all(&content).unwrap();
        })
    };

    let store = StubStore::new(true);
    let s = store.clone();
    actix::System::new().block_on(async move {
        let writer = start_writer(s.clone(), spool, config(&dir.0));
        // The writer's first tick finds the spool non-empty and starts reading the segment.
        eventually("the spool read to start", Duration::from_secs(10), || {
            opened.load(Ordering::SeqCst)
        })
        .await;
        tokio::time::timeout(Duration::from_secs(2), writer.send(Persist(batch(2))))
            .await
            .expect("the writer takes a message while its spool read is stalled")
            .unwrap();
        eventually(
            "the live batch to be written",
            Duration::from_secs(2),
            || s.written().contains(&ids(&batch(2))),
        )
        .await;
        assert!(
            !released.load(Ordering::SeqCst),
            "the live batch was written only after the disk answered"
        );

        eventually(
            "the spooled batch to be replayed",
            Duration::from_secs(10),
            || s.written().contains(&ids(&batch(1))),
        )
        .await;
        eventually("the segment to be removed", Duration::from_secs(10), || {
            segments(&dir.0).is_empty()
        })
        .await;
        writer.send(FlushAll).await.unwrap();
    });
    disk.join().unwrap();
    assert_eq!(store.written(), vec![ids(&batch(2)), ids(&batch(1))]);
}

/// With the database down, what the writer holds goes to the spool, and `FlushAll` answers only
/// once it is on disk: a fresh `Spool::open` of the directory finds every batch, in order.
#[test]
fn flush_all_with_the_database_down_answers_once_everything_is_spooled() {
    let dir = TempDir::new("spill");
    let store = StubStore::new(false);
    let s = store.clone();
    let d = dir.0.clone();
    actix::System::new().block_on(async move {
        let spool = Spool::open(&d).unwrap();
        let writer = start_writer(s, spool, config(&d));
        for n in 1..=5 {
            writer.send(Persist(batch(n))).await.unwrap();
        }
        writer.send(FlushAll).await.unwrap();
    });
    assert!(store.written().is_empty());

    let mut spool = Spool::open(&dir.0).unwrap();
    let got: Vec<u64> = drain(&mut spool).iter().flat_map(ids).collect();
    let expected: Vec<u64> = (1..=5).flat_map(|n| ids(&batch(n))).collect();
    assert_eq!(got, expected);
}
