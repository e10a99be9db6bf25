//! Folding real BTCUSDT trades through a `CandleBook`: the per-trade cost of candle building.
//!
//! The ~19.9k recorded trades (both files) are repeated with ids and times shifted past the
//! previous copy, so the book sees ~1M trades in id order with the real price, size and minute
//! pattern. The shift is a whole number of minutes, so every copy closes the same buckets.
//!
//! `nice -n 5 cargo bench --bench candles` (data directory: `TRADEPIPE_MARKET_DATA`).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use flate2::read::GzDecoder;
use rust_decimal::Decimal;
use std::hint::black_box;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::str::FromStr;
use tradepipe::domain::{CandleBook, Symbol, Trade};

const COPIES: u64 = 50;

fn recorded_btcusdt() -> Vec<Trade> {
    let dir = std::env::var_os("TRADEPIPE_MARKET_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/data/market"
            ))
        });
    let symbol = Symbol::from("BTCUSDT");
    let dec = |v: &serde_json::Value| Decimal::from_str(v.as_str().unwrap()).unwrap();
    let mut out = Vec::new();
    for day in ["20240808", "20240809"] {
        let path = dir.join(format!("hftbacktest_ws_spot/btcusdt_{day}.gz"));
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for line in BufReader::new(GzDecoder::new(file)).lines() {
            let line = line.unwrap();
            let (_, json) = line.split_once(' ').unwrap();
            let msg: serde_json::Value = serde_json::from_str(json).unwrap();
            if msg["stream"] != "btcusdt@trade" {
                continue;
            }
            let d = &msg["data"];
            out.push(Trade {
                symbol: symbol.clone(),
                trade_id: d["t"].as_u64().unwrap(),
                price: dec(&d["p"]),
                qty: dec(&d["q"]),
                time_ms: d["T"].as_i64().unwrap(),
                is_buyer_maker: d["m"].as_bool().unwrap(),
            });
        }
    }
    out
}

fn looped(base: &[Trade]) -> Vec<Trade> {
    let (first, last) = (&base[0], &base[base.len() - 1]);
    let id_span = last.trade_id - first.trade_id + 1;
    let ms_span = (last.time_ms - first.time_ms) / 60_000 * 60_000 + 60_000;
    (0..COPIES)
        .flat_map(|k| {
            base.iter().map(move |t| Trade {
                trade_id: t.trade_id + k * id_span,
                time_ms: t.time_ms + k as i64 * ms_span,
                ..t.clone()
            })
        })
        .collect()
}

fn fold(c: &mut Criterion) {
    let trades = looped(&recorded_btcusdt());
    let mut group = c.benchmark_group("candle_book");
    group.sample_size(20);
    group.throughput(Throughput::Elements(trades.len() as u64));
    group.bench_with_input(
        BenchmarkId::new("apply_real_btcusdt", trades.len()),
        &trades,
        |b, trades| {
            let mut closed = Vec::with_capacity(64);
            b.iter(|| {
                let mut book = CandleBook::new(Symbol::from("BTCUSDT"));
                for t in trades {
                    book.apply(black_box(t), &mut closed);
                    closed.clear();
                }
                black_box(book.last_trade_id())
            })
        },
    );
    group.finish();
}

criterion_group!(benches, fold);
criterion_main!(benches);
