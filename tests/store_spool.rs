//! The on-disk spool: order, rotation, draining, and surviving interrupted writes.

use rust_decimal::Decimal;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use tradepipe::domain::{MarketBatch, Trade};
use tradepipe::store::Spool;

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
#[ignore]
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
