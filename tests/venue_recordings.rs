//! `tradepipe trades` against every real recording the multi-venue issue names
//! (`data/market/multiexchange`, see each SOURCES.md): the binary's output must equal an
//! independent reading of the file, trade for trade (count, id, price, qty, time, taker side).
//!
//! The independent readers below walk the files with plain `serde_json::Value` and share no code
//! with the parsers: they know each format from its SOURCES.md, not from `src/exchange`. The
//! expected counts are the ones SOURCES.md reports (computed there by a separate Python script).
//!
//! The data lives outside the repository (`TRADEPIPE_MARKET_DATA` points elsewhere). A missing
//! file fails the test rather than skipping it: a green run must mean the data was checked.

use flate2::read::GzDecoder;
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::PathBuf;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_tradepipe");

fn data_dir() -> PathBuf {
    std::env::var_os("TRADEPIPE_MARKET_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/data/market"
            ))
        })
        .join("multiexchange")
}

fn path(rel: &str) -> PathBuf {
    let p = data_dir().join(rel);
    assert!(p.exists(), "{} is missing", p.display());
    p
}

fn gz_text(rel: &str) -> String {
    let mut s = String::new();
    GzDecoder::new(std::fs::File::open(path(rel)).unwrap())
        .read_to_string(&mut s)
        .unwrap();
    s
}

/// One trade as both sides describe it. Sorted and compared as a whole.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Row {
    market: String,
    symbol: String,
    trade_id: Option<String>,
    price: String,
    qty: String,
    time: i64,
    side: String,
}

/// Runs `tradepipe trades` and reads its lines; also returns stderr.
fn run_trades(exchange: &str, files: &[&str]) -> (Vec<Row>, Vec<Value>, String) {
    let out = Command::new(BIN)
        .arg("trades")
        .arg("--exchange")
        .arg(exchange)
        .args(files.iter().map(|f| path(f)))
        .output()
        .expect("run tradepipe");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    // OKX was OKEx; the tool accepts the old name and prints the current one.
    let venue = if exchange == "okex" { "okx" } else { exchange };
    let rows = lines
        .iter()
        .map(|v| {
            assert_eq!(v["exchange"].as_str(), Some(venue));
            Row {
                market: v["market"].as_str().unwrap().to_string(),
                symbol: v["symbol"].as_str().unwrap().to_string(),
                trade_id: v["trade_id"].as_str().map(str::to_string),
                price: v["price"].as_str().unwrap().to_string(),
                qty: v["qty"].as_str().unwrap().to_string(),
                time: v["time"].as_i64().unwrap(),
                side: v["side"].as_str().unwrap().to_string(),
            }
        })
        .collect();
    (rows, lines, stderr)
}

fn sorted(mut rows: Vec<Row>) -> Vec<Row> {
    rows.sort();
    rows
}

fn opposite(side: &str) -> String {
    match side.to_ascii_lowercase().as_str() {
        "buy" => "sell".into(),
        "sell" => "buy".into(),
        other => panic!("side {other}"),
    }
}

fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_string()
}

/// RFC 3339 -> ms, by chrono (the parsers go through µs; this takes ms directly).
fn iso_ms(v: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap()
        .timestamp_millis()
}

/// "1618678142.557535" -> 1618678142557: whole seconds and the first three decimals.
fn seconds_text_ms(t: &str) -> i64 {
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    let frac3: String = frac.chars().chain("000".chars()).take(3).collect();
    whole.parse::<i64>().unwrap() * 1000 + frac3.parse::<i64>().unwrap()
}

/// The received frames of a cryptofeed v1 text recording.
fn v1_frames(rel: &str) -> Vec<Value> {
    gz_text(rel)
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty() && !l.starts_with("wss://"))
        .map(|l| serde_json::from_str(l.split_once(": ").unwrap().1).unwrap())
        .collect()
}

/// The received frames of a cryptofeed v3 JSONL recording, with the address of their connection.
fn v3_frames(rel: &str) -> Vec<(String, Value)> {
    let mut addr: HashMap<String, String> = HashMap::new();
    let mut out = Vec::new();
    for line in gz_text(rel).lines().skip(1) {
        let ev: Value = serde_json::from_str(line).unwrap();
        let conn = ev["conn"].as_str().unwrap_or_default().to_string();
        match ev["t"].as_str() {
            Some("connect") => {
                addr.insert(conn, s(&ev["addr"]));
            }
            Some("recv") => {
                let data: Value = serde_json::from_str(ev["data"].as_str().unwrap()).unwrap();
                out.push((addr.get(&conn).cloned().unwrap_or_default(), data));
            }
            _ => {}
        }
    }
    out
}

fn coinbase_advanced_expected() -> Vec<Row> {
    let mut seen = HashSet::new();
    let mut rows = Vec::new();
    for (_, m) in v3_frames("coinbase/COINBASE.v3.jsonl.gz") {
        if m["channel"] != "market_trades" {
            continue;
        }
        for ev in m["events"].as_array().unwrap() {
            for t in ev["trades"].as_array().unwrap() {
                if seen.insert((s(&t["product_id"]), s(&t["trade_id"]))) {
                    rows.push(Row {
                        market: "spot".into(),
                        symbol: s(&t["product_id"]),
                        trade_id: Some(s(&t["trade_id"])),
                        price: s(&t["price"]),
                        qty: s(&t["size"]),
                        time: iso_ms(&t["time"]),
                        side: opposite(t["side"].as_str().unwrap()), // the maker's side
                    });
                }
            }
        }
    }
    rows
}

#[test]
fn coinbase_advanced_trade_recording() {
    let expected = coinbase_advanced_expected();
    assert_eq!(expected.len(), 279);
    let (got, _, _) = run_trades("coinbase", &["coinbase/COINBASE.v3.jsonl.gz"]);
    assert_eq!(sorted(got.clone()), sorted(expected));
    // Newest first on the wire, passed on in id order: per product the ids ascend by one.
    let mut last: HashMap<&str, u64> = HashMap::new();
    for r in &got {
        let id: u64 = r.trade_id.as_deref().unwrap().parse().unwrap();
        if let Some(prev) = last.insert(&r.symbol, id) {
            assert_eq!(id, prev + 1, "{} after {prev}", r.symbol);
        }
    }
    assert_eq!(last.len(), 2);
}

/// The recording itself shows that Advanced Trade's `side` is the maker's: live trades at the
/// best ask (a buyer lifted it) say SELL, at the best bid say BUY.
#[test]
fn advanced_trade_side_is_the_makers() {
    let mut quote: HashMap<String, (f64, f64)> = HashMap::new(); // ordering only, not data
    let mut tally: BTreeMap<(&str, String), u32> = BTreeMap::new();
    for (_, m) in v3_frames("coinbase/COINBASE.v3.jsonl.gz") {
        match m["channel"].as_str() {
            Some("ticker") => {
                for ev in m["events"].as_array().unwrap() {
                    for t in ev["tickers"].as_array().unwrap() {
                        let px = |k: &str| t[k].as_str().unwrap().parse::<f64>().unwrap();
                        quote.insert(s(&t["product_id"]), (px("best_bid"), px("best_ask")));
                    }
                }
            }
            Some("market_trades") => {
                for ev in m["events"].as_array().unwrap() {
                    if ev["type"] != "update" {
                        continue;
                    }
                    for t in ev["trades"].as_array().unwrap() {
                        let Some(&(bid, ask)) = quote.get(&s(&t["product_id"])) else {
                            continue;
                        };
                        let p: f64 = s(&t["price"]).parse().unwrap();
                        let at = if p >= ask {
                            "ask"
                        } else if p <= bid {
                            "bid"
                        } else {
                            "inside"
                        };
                        *tally.entry((at, s(&t["side"]))).or_default() += 1;
                    }
                }
            }
            _ => {}
        }
    }
    let n = |at, side: &str| tally.get(&(at, side.to_string())).copied().unwrap_or(0);
    assert!(n("ask", "SELL") > 10 * n("ask", "BUY").max(1), "{tally:?}");
    assert!(n("bid", "BUY") > 10 * n("bid", "SELL").max(1), "{tally:?}");
}

#[test]
fn coinbase_legacy_feed_recording() {
    let mut rows = Vec::new();
    for m in v1_frames("coinbase/COINBASE.ws.28.0.gz") {
        if m["type"] == "match" || m["type"] == "last_match" {
            rows.push(Row {
                market: "spot".into(),
                symbol: s(&m["product_id"]),
                trade_id: Some(m["trade_id"].as_u64().unwrap().to_string()),
                price: s(&m["price"]),
                qty: s(&m["size"]),
                time: iso_ms(&m["time"]),
                side: opposite(m["side"].as_str().unwrap()),
            });
        }
    }
    assert_eq!(rows.len(), 107);
    let (got, _, _) = run_trades("coinbase", &["coinbase/COINBASE.ws.28.0.gz"]);
    assert_eq!(sorted(got), sorted(rows));
}

fn okx_market(inst: &str) -> &'static str {
    let parts: Vec<&str> = inst.split('-').collect();
    match parts.len() {
        2 => "spot",
        3 if parts[2] == "SWAP" => "swap",
        3 => "future",
        _ => "option",
    }
}

fn okx_expected(rel: &str) -> Vec<Row> {
    let mut seen = HashSet::new();
    let mut rows = Vec::new();
    for m in v1_frames(rel) {
        if m["arg"]["channel"] != "trades" || m.get("data").is_none() {
            continue;
        }
        for t in m["data"].as_array().unwrap() {
            if seen.insert((s(&t["instId"]), s(&t["tradeId"]))) {
                rows.push(Row {
                    market: okx_market(t["instId"].as_str().unwrap()).into(),
                    symbol: s(&t["instId"]),
                    trade_id: Some(s(&t["tradeId"])),
                    price: s(&t["px"]),
                    qty: s(&t["sz"]),
                    time: s(&t["ts"]).parse().unwrap(),
                    side: s(&t["side"]),
                });
            }
        }
    }
    rows
}

#[test]
fn okx_v5_recording() {
    let expected = okx_expected("okx/OKX.ws.1.0.gz");
    assert_eq!(expected.len(), 74);
    let (got, _, _) = run_trades("okx", &["okx/OKX.ws.1.0.gz"]);
    assert_eq!(sorted(got.clone()), sorted(expected));
    let btc: Vec<u64> = got
        .iter()
        .filter(|r| r.symbol == "BTC-USDT")
        .map(|r| r.trade_id.as_deref().unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        btc,
        (338476307..=338476375).collect::<Vec<_>>(),
        "contiguous, in order"
    );
}

/// OKEx recorded three parallel connections with the same subscriptions: 36 trades each, 36 in all.
#[test]
fn parallel_connections_pass_each_trade_once() {
    let files = [
        "okx/OKEX.ws.1.0@906605df.gz",
        "okx/OKEX.ws.2.0@906605df.gz",
        "okx/OKEX.ws.3.0@906605df.gz",
    ];
    let one = okx_expected(files[0]);
    assert_eq!(one.len(), 36);
    for f in &files[1..] {
        assert_eq!(sorted(okx_expected(f)), sorted(one.clone()));
    }
    let (got, _, stderr) = run_trades("okex", &files);
    assert_eq!(sorted(got), sorted(one));
    assert!(stderr.contains("72 duplicates removed"), "{stderr}");
    // Id-less trades (Kraken v1) and snapshot trades (Coinbase) from a second copy of the
    // connection are dropped too.
    let (k, _, _) = run_trades(
        "kraken",
        &["kraken/KRAKEN.ws.48.0.gz", "kraken/KRAKEN.ws.48.0.gz"],
    );
    assert_eq!(k.len(), 10);
    let (c, _, _) = run_trades(
        "coinbase",
        &[
            "coinbase/COINBASE.v3.jsonl.gz",
            "coinbase/COINBASE.v3.jsonl.gz",
        ],
    );
    assert_eq!(sorted(c), sorted(coinbase_advanced_expected()));
}

#[test]
fn bybit_v5_spot_and_linear_recording() {
    let mut rows = Vec::new();
    for (addr, m) in v3_frames("bybit/BYBIT.v3.jsonl.gz") {
        if !m["topic"]
            .as_str()
            .is_some_and(|t| t.starts_with("publicTrade."))
        {
            continue;
        }
        let market = if addr.ends_with("/linear") {
            "linear"
        } else {
            "spot"
        };
        for t in m["data"].as_array().unwrap() {
            rows.push(Row {
                market: market.into(),
                symbol: s(&t["s"]),
                trade_id: Some(s(&t["i"])),
                price: s(&t["p"]),
                qty: s(&t["v"]),
                time: t["T"].as_i64().unwrap(),
                side: s(&t["S"]).to_lowercase(),
            });
        }
    }
    assert_eq!(rows.len(), 347);
    let (got, lines, _) = run_trades("bybit", &["bybit/BYBIT.v3.jsonl.gz"]);
    assert_eq!(sorted(got.clone()), sorted(rows));
    // BTCUSDT exists on both endpoints: 56 linear (UUID ids) and 11 spot (numeric) trades.
    let count = |market: &str| {
        got.iter()
            .filter(|r| r.symbol == "BTCUSDT" && r.market == market)
            .count()
    };
    assert_eq!((count("linear"), count("spot")), (56, 11));
    let l = lines.iter().find(|v| v["market"] == "linear").unwrap();
    assert_eq!(
        (l["base"].as_str(), l["quote"].as_str()),
        (Some("BTC"), Some("USDT"))
    );
}

#[test]
fn bybit_legacy_v2_is_refused_not_silently_empty() {
    let (got, _, stderr) = run_trades("bybit", &["bybit/BYBIT.ws.26.0.gz"]);
    assert!(got.is_empty());
    assert!(stderr.contains("retired v2 feed"), "{stderr}");
    assert!(stderr.contains("76 malformed frames"), "{stderr}");
}

#[test]
fn kraken_ws_v1_recording() {
    let mut rows = Vec::new();
    for m in v1_frames("kraken/KRAKEN.ws.48.0.gz") {
        let Some(a) = m.as_array() else { continue };
        if a.len() != 4 || a[2] != "trade" {
            continue;
        }
        for t in a[1].as_array().unwrap() {
            rows.push(Row {
                market: "spot".into(),
                symbol: s(&a[3]),
                trade_id: None,
                price: s(&t[0]),
                qty: s(&t[1]),
                time: seconds_text_ms(t[2].as_str().unwrap()),
                side: if t[3] == "b" {
                    "buy".into()
                } else {
                    "sell".into()
                },
            });
        }
    }
    assert_eq!(rows.len(), 10);
    let (got, lines, _) = run_trades("kraken", &["kraken/KRAKEN.ws.48.0.gz"]);
    assert_eq!(sorted(got), sorted(rows));
    assert!(lines.iter().all(|v| v["trade_id"].is_null()));
}

#[test]
fn kraken_rest_trades_page() {
    #[derive(serde::Deserialize)]
    struct Page {
        result: HashMap<String, Box<RawValue>>,
    }
    let page: Page =
        serde_json::from_str(&gz_text("kraken/nautilus_http_trades_XBTUSDT.json.gz")).unwrap();
    let rows: Vec<Vec<Box<RawValue>>> = serde_json::from_str(page.result["XBTUSDT"].get()).unwrap();
    let text = |r: &RawValue| serde_json::from_str::<String>(r.get()).unwrap();
    let expected: Vec<Row> = rows
        .iter()
        .map(|r| Row {
            market: "spot".into(),
            symbol: "XBTUSDT".into(),
            trade_id: Some(r[6].get().to_string()),
            price: text(&r[0]),
            qty: text(&r[1]),
            time: seconds_text_ms(r[2].get()),
            side: if text(&r[3]) == "b" {
                "buy".into()
            } else {
                "sell".into()
            },
        })
        .collect();
    assert_eq!(expected.len(), 1000);
    let (got, lines, _) = run_trades("kraken", &["kraken/nautilus_http_trades_XBTUSDT.json.gz"]);
    assert_eq!(sorted(got.clone()), sorted(expected));
    let ids: Vec<u64> = got
        .iter()
        .map(|r| r.trade_id.as_deref().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids, (10218208..=10219207).collect::<Vec<_>>());
    assert_eq!(
        (lines[0]["base"].as_str(), lines[0]["quote"].as_str()),
        (Some("BTC"), Some("USDT"))
    );
}
