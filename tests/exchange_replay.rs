//! The replay peer end to end over real sockets, with the real recorded BTCUSDT and ETHUSDT tape.

use futures_util::{SinkExt, StreamExt};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tradepipe::domain::Trade;
use tradepipe::exchange::binance::{StreamEvent, combined_stream_url, parse_stream_message};
use tradepipe::exchange::rest::BinanceRest;
use tradepipe::exchange::trades_file::read_trades_file;
use tradepipe_testkit::replay::{ReplayArgs, ReplayServer, start};

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/data/market/hftbacktest_ws_spot"
);
const BTC: &str = "BTCUSDT-trades-20240808T235415-20240809T000505.derived.csv.gz";
const ETH: &str = "ETHUSDT-trades-20240808T235415-20240809T000505.derived.csv.gz";
const BTC_N: usize = 19_904;
const ETH_N: usize = 14_515;

fn args(files: &[&str]) -> ReplayArgs {
    ReplayArgs {
        trades: files.iter().map(|f| PathBuf::from(DIR).join(f)).collect(),
        listen: "127.0.0.1:0".parse().unwrap(),
        speed: None,
        max: true,
        drop_every: None,
        drop_skip: 100,
        loops: 1,
        symbol: None,
        replicate: None,
        ping_interval_secs: 20,
        faults: Default::default(),
    }
}

fn file_trades(f: &str) -> Vec<Trade> {
    read_trades_file(&PathBuf::from(DIR).join(f), None).unwrap()
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(server: &ReplayServer, streams: &[&str]) -> Ws {
    let streams: Vec<String> = streams.iter().map(|s| s.to_string()).collect();
    let url = combined_stream_url(&server.ws_base(), &streams);
    tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap()
        .0
}

enum Next {
    Trade(Trade),
    Closed,
    Idle,
}

/// Next trade, or Closed when the server closed the connection, or Idle after `idle` of silence.
async fn next_trade(ws: &mut Ws, idle: Duration) -> Next {
    loop {
        match tokio::time::timeout(idle, ws.next()).await {
            Err(_) => return Next::Idle,
            Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return Next::Closed,
            Ok(Some(Ok(Message::Text(t)))) => match parse_stream_message(t.as_bytes()).unwrap() {
                StreamEvent::Trade(tr) => return Next::Trade(tr),
                other => panic!("unexpected {other:?}"),
            },
            Ok(Some(Ok(_))) => {}
        }
    }
}

fn by_symbol(trades: &[Trade]) -> BTreeMap<String, Vec<Trade>> {
    let mut m: BTreeMap<String, Vec<Trade>> = BTreeMap::new();
    for t in trades {
        m.entry(t.symbol.to_string()).or_default().push(t.clone());
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_trade_once_in_order_then_sane_rest() {
    let server = start(args(&[BTC, ETH])).await.unwrap();
    let mut ws = connect(&server, &["btcusdt@trade", "ethusdt@trade"]).await;
    let began = Instant::now();
    let mut got = Vec::with_capacity(BTC_N + ETH_N);
    while got.len() < BTC_N + ETH_N {
        match next_trade(&mut ws, Duration::from_secs(20)).await {
            Next::Trade(t) => got.push(t),
            _ => panic!("stream ended after {} trades", got.len()),
        }
    }
    let secs = began.elapsed().as_secs_f64();
    println!(
        "{} msgs in {secs:.3}s = {:.0} msgs/s",
        got.len(),
        got.len() as f64 / secs
    );
    // Merged by trade time across symbols.
    assert!(got.windows(2).all(|w| w[1].time_ms >= w[0].time_ms));
    let m = by_symbol(&got);
    assert_eq!(
        m["BTCUSDT"],
        file_trades(BTC),
        "BTC: every id exactly once, in order, unchanged"
    );
    assert_eq!(m["ETHUSDT"], file_trades(ETH));
    // Tape finished: the connection stays open, but nothing more arrives.
    assert!(matches!(
        next_trade(&mut ws, Duration::from_millis(300)).await,
        Next::Idle
    ));

    let rest = BinanceRest::new(server.http_base(), None, Duration::from_secs(5)).unwrap();
    let info = rest.exchange_info(&[]).await.unwrap();
    let btc = info.iter().find(|i| i.symbol == "BTCUSDT").unwrap();
    assert_eq!(
        (btc.base_asset.as_str(), btc.quote_asset.as_str()),
        ("BTC", "USDT")
    );
    assert_eq!((btc.precision_price, btc.precision_qty), (2, 5));
    assert_eq!(btc.min_qty.to_string(), "0.00001000");
    assert_eq!(info.len(), 2);
    let raw = reqwest::get(format!(
        "{}api/v3/exchangeInfo?symbol=BTCUSDT",
        server.http_base()
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(
        raw.contains(r#""tickSize":"0.01000000""#) && raw.contains(r#""stepSize":"0.00001000""#),
        "{raw}"
    );

    // historicalTrades with and without fromId, and Binance-style errors.
    let all_btc = file_trades(BTC);
    let page = rest
        .historical_trades("BTCUSDT", all_btc[100].trade_id, 1000)
        .await
        .unwrap();
    assert_eq!(page, all_btc[100..1100]);
    let tail = reqwest::get(format!(
        "{}api/v3/historicalTrades?symbol=BTCUSDT&limit=3",
        server.http_base()
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(
        tail.contains(&format!("\"id\":{}", all_btc[BTC_N - 1].trade_id)),
        "{tail}"
    );
    assert!(
        rest.historical_trades("DOGEUSDT", 1, 10)
            .await
            .unwrap_err()
            .to_string()
            .contains("Invalid symbol")
    );

    // klines: an independent check of the fold against the file.
    let k1: Vec<serde_json::Value> = reqwest::get(format!(
        "{}api/v3/klines?symbol=BTCUSDT&interval=1m",
        server.http_base()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(k1.len(), 12, "23:54 .. 00:05");
    let mut counts: BTreeMap<i64, u64> = BTreeMap::new();
    for t in &all_btc {
        *counts.entry(t.time_ms - t.time_ms % 60_000).or_default() += 1;
    }
    for row in &k1 {
        let r = row.as_array().unwrap();
        assert_eq!(r.len(), 12);
        let open_time = r[0].as_i64().unwrap();
        assert_eq!(r[6].as_i64().unwrap(), open_time + 59_999);
        assert_eq!(r[8].as_u64().unwrap(), counts[&open_time]);
        let d = |i: usize| {
            r[i].as_str()
                .unwrap()
                .parse::<rust_decimal::Decimal>()
                .unwrap()
        };
        assert!(d(2) >= d(1).max(d(4)) && d(3) <= d(1).min(d(4)) && d(9) <= d(5));
    }
    assert_eq!(
        k1[0][1].as_str().unwrap(),
        "61837.63000000",
        "open = first trade's price"
    );
    assert_eq!(
        k1[11][4].as_str().unwrap(),
        format!("{:.8}", all_btc[BTC_N - 1].price)
    );
    let total_volume: rust_decimal::Decimal = all_btc.iter().map(|t| t.qty).sum();
    let wk: Vec<serde_json::Value> = reqwest::get(format!(
        "{}api/v3/klines?symbol=BTCUSDT&interval=1w",
        server.http_base()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(wk.len(), 1);
    assert_eq!(
        wk[0][0].as_i64().unwrap(),
        1_722_816_000_000,
        "week opens Monday 2024-08-05"
    );
    assert_eq!(wk[0][8].as_u64().unwrap(), BTC_N as u64);
    assert_eq!(
        wk[0][5]
            .as_str()
            .unwrap()
            .parse::<rust_decimal::Decimal>()
            .unwrap(),
        total_volume
    );
    let ranged: Vec<serde_json::Value> = reqwest::get(format!(
        "{}api/v3/klines?symbol=BTCUSDT&interval=1m&startTime=1723161600000&limit=2",
        server.http_base()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        ranged
            .iter()
            .map(|r| r[0].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [1_723_161_600_000, 1_723_161_660_000]
    );
    let bad = reqwest::get(format!(
        "{}api/v3/klines?symbol=BTCUSDT&interval=2m",
        server.http_base()
    ))
    .await
    .unwrap();
    assert_eq!(bad.status(), 400);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drops_close_the_connection_and_skipped_trades_come_back_by_rest() {
    let mut a = args(&[BTC, ETH]);
    a.drop_every = Some(5000);
    let server = start(a).await.unwrap();
    let total = (BTC_N + ETH_N) as u64;
    let mut got: Vec<Trade> = Vec::new();
    let mut per_connection = Vec::new();
    'outer: loop {
        let mut ws = connect(&server, &["btcusdt@trade", "ethusdt@trade"]).await;
        let mut n = 0;
        let mut idle_rounds = 0;
        loop {
            match next_trade(&mut ws, Duration::from_millis(500)).await {
                Next::Trade(t) => {
                    got.push(t);
                    n += 1;
                }
                Next::Closed => break,
                Next::Idle
                    if server
                        .stats()
                        .cursor
                        .load(std::sync::atomic::Ordering::Acquire)
                        == total =>
                {
                    per_connection.push(n);
                    break 'outer;
                }
                // A loaded machine may pause; 20 s of silence mid-tape is a real stall.
                Next::Idle => {
                    idle_rounds += 1;
                    assert!(idle_rounds < 40, "stalled after {} trades", got.len());
                }
            }
        }
        per_connection.push(n);
    }
    let drops = per_connection.len() - 1;
    assert!(drops >= 6, "{per_connection:?}");
    assert!(
        per_connection[..drops].iter().all(|&n| n == 5000),
        "{per_connection:?}"
    );
    assert_eq!(got.len() as u64, total - 100 * drops as u64);

    let rest = BinanceRest::new(server.http_base(), None, Duration::from_secs(5)).unwrap();
    let mut backfilled = 0;
    for (sym, file) in [("BTCUSDT", BTC), ("ETHUSDT", ETH)] {
        let expected = file_trades(file);
        let mut mine: Vec<Trade> = by_symbol(&got).remove(sym).unwrap();
        let seen: BTreeSet<u64> = mine.iter().map(|t| t.trade_id).collect();
        assert_eq!(
            seen.len(),
            mine.len(),
            "{sym}: no duplicates over reconnects"
        );
        // Fill every gap the way the daemon would: historicalTrades from the first missing id.
        let missing: Vec<u64> = expected
            .iter()
            .map(|t| t.trade_id)
            .filter(|id| !seen.contains(id))
            .collect();
        assert!(!missing.is_empty());
        let mut i = 0;
        while i < missing.len() {
            let page = rest.historical_trades(sym, missing[i], 1000).await.unwrap();
            assert_eq!(
                page[0].trade_id, missing[i],
                "{sym}: the page starts at the asked id"
            );
            for t in page {
                if i < missing.len() && t.trade_id == missing[i] {
                    mine.push(t);
                    i += 1;
                    backfilled += 1;
                }
            }
        }
        mine.sort_by_key(|t| t.trade_id);
        assert_eq!(mine, expected, "{sym}: stream + backfill = the whole tape");
    }
    assert_eq!(backfilled, 100 * drops);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_stream_loops_with_consecutive_ids_and_increasing_times() {
    let mut a = args(&[BTC, ETH]);
    a.loops = 2;
    let server = start(a).await.unwrap();
    let url = format!("{}ws/ethusdt@trade", server.ws_base());
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    let mut got = Vec::new();
    while got.len() < 2 * ETH_N {
        match tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Text(t))) => {
                assert!(
                    t.as_str().starts_with(r#"{"e":"trade""#),
                    "raw form, no envelope"
                );
                match parse_stream_message(t.as_bytes()).unwrap() {
                    StreamEvent::Trade(tr) => got.push(tr),
                    other => panic!("{other:?}"),
                }
            }
            Some(Ok(_)) => {}
            other => panic!("{other:?} after {}", got.len()),
        }
    }
    assert!(got.iter().all(|t| &*t.symbol == "ETHUSDT"));
    assert!(
        got.windows(2)
            .all(|w| w[1].trade_id == w[0].trade_id + 1 && w[1].time_ms >= w[0].time_ms)
    );
    let file = file_trades(ETH);
    assert_eq!(got[ETH_N].price, file[0].price);
    assert!(got[ETH_N].time_ms > got[ETH_N - 1].time_ms);
    // The second loop's ids are served by REST too.
    let rest = BinanceRest::new(server.http_base(), None, Duration::from_secs(5)).unwrap();
    let page = rest
        .historical_trades("ETHUSDT", got[ETH_N + 10].trade_id, 5)
        .await
        .unwrap();
    assert_eq!(page, got[ETH_N + 10..ETH_N + 15]);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paced_replay_pings_and_announces_shutdown() {
    let mut a = args(&[BTC]);
    a.max = false;
    a.speed = Some(1000.0); // the ~650 s tape in ~0.65 s
    a.ping_interval_secs = 1;
    let server = start(a).await.unwrap();
    let mut ws = connect(&server, &["btcusdt@trade"]).await;
    let began = Instant::now();
    let mut n = 0;
    let mut pings = 0;
    while n < BTC_N || pings == 0 {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Text(_))) => n += 1,
            Some(Ok(Message::Ping(_))) => pings += 1,
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    let secs = began.elapsed().as_secs_f64();
    assert!(secs > 0.5, "paced, not instant: {secs}");
    assert_eq!(n, BTC_N);
    ws.send(Message::Pong(Default::default())).await.unwrap();
    let stop = tokio::spawn(server.shutdown());
    let mut saw_shutdown = false;
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
        if let Message::Text(t) = m {
            saw_shutdown |=
                parse_stream_message(t.as_bytes()).unwrap() == StreamEvent::ServerShutdown;
        }
    }
    assert!(saw_shutdown);
    tokio::time::timeout(Duration::from_secs(5), stop)
        .await
        .unwrap()
        .unwrap();
}

/// Throughput of `--max` to one local client. Run in release:
/// `cargo test --release --test exchange_replay throughput -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn throughput() {
    let mut a = args(&[BTC, ETH]);
    a.loops = 10;
    let server = start(a).await.unwrap();
    let mut ws = connect(&server, &["btcusdt@trade", "ethusdt@trade"]).await;
    let want = 10 * (BTC_N + ETH_N);
    let began = Instant::now();
    let mut n = 0;
    while n < want {
        if let Some(Ok(Message::Text(_))) = ws.next().await {
            n += 1;
        }
    }
    let secs = began.elapsed().as_secs_f64();
    println!(
        "throughput: {n} msgs in {secs:.3}s = {:.0} msgs/s",
        n as f64 / secs
    );
    server.shutdown().await;
}
