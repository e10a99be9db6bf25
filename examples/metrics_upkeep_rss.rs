//! Resident memory of the metrics recorder when nobody scrapes `/metrics` (issue 10, defect 2).
//!
//! `cargo run --release --example metrics_upkeep_rss -- with-upkeep 180` records 10,000
//! histogram samples a second for 180 s through the daemon's recorder
//! (`telemetry::metrics_handle`, which runs upkeep every 5 s) and prints the resident set every
//! 10 s. `without-upkeep` installs the recorder as the daemon did before the fix
//! (`install_recorder`, no upkeep) for comparison.

use metrics_exporter_prometheus::PrometheusBuilder;

/// As in the daemon (src/main.rs), so the resident set is comparable.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::time::{Duration, Instant};

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "with-upkeep".into());
    let secs: u64 = args.next().map_or(Ok(180), |s| s.parse())?;
    let _handle = match mode.as_str() {
        "with-upkeep" => tradepipe::telemetry::metrics_handle()?,
        "without-upkeep" => PrometheusBuilder::new().install_recorder()?,
        other => return Err(format!("mode {other:?}: with-upkeep or without-upkeep").into()),
    };
    let histogram = metrics::histogram!("tradepipe_writer_flush_seconds");
    let started = Instant::now();
    let mut next_report = Duration::ZERO;
    let mut samples: u64 = 0;
    println!("mode={mode} t=0s rss={:.1}MiB", rss_mib());
    while started.elapsed() < Duration::from_secs(secs) {
        // 10,000 samples a second, in 100 steps of 100.
        for _ in 0..100 {
            histogram.record((samples % 1000) as f64 * 1e-4);
            samples += 1;
        }
        std::thread::sleep(Duration::from_millis(10));
        if started.elapsed() >= next_report {
            println!(
                "mode={mode} t={}s samples={samples} rss={:.1}MiB",
                started.elapsed().as_secs(),
                rss_mib()
            );
            next_report += Duration::from_secs(10);
        }
    }
    println!(
        "mode={mode} end t={}s samples={samples} rss={:.1}MiB",
        started.elapsed().as_secs(),
        rss_mib()
    );
    Ok(())
}
