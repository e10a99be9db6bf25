//! `replay --replicate N` end to end over real sockets: one recorded tape (the demo's real BTCUSDT
//! trades) served under 1,000 names, as the whole-market benchmark runs it. Each name must look to
//! the daemon's own client code exactly like the recorded symbol: same trades on the combined
//! stream, same trades by REST backfill, its own row in exchangeInfo.

use futures_util::StreamExt;
use std::path::PathBuf;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tradepipe::domain::Trade;
use tradepipe::exchange::binance::{StreamEvent, combined_stream_url, parse_stream_message};
use tradepipe::exchange::rest::BinanceRest;
use tradepipe::exchange::trades_file::read_trades_file;
use tradepipe_testkit::replay::{ReplayArgs, STATS_PATH, start};

const BTC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../data/demo/BTCUSDT-trades-20240808T235415-20240809T000505.derived.csv.gz"
);
const NAMES: u32 = 1000;

fn args(extra: &[&str]) -> ReplayArgs {
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: ReplayArgs,
    }
    let mut argv = vec!["replay", "--trades", BTC, "--listen", "127.0.0.1:0"];
    argv.extend_from_slice(extra);
    <Cli as clap::Parser>::try_parse_from(argv)
        .expect("replay options parse")
        .args
}

/// The recorded trades as `name` serves them: everything equal but the symbol.
fn recorded_as(name: &str) -> Vec<Trade> {
    let symbol = tradepipe::exchange::binance::intern_symbol(name);
    read_trades_file(&PathBuf::from(BTC), None)
        .expect("the demo tape reads")
        .into_iter()
        .map(|t| Trade {
            symbol: symbol.clone(),
            ..t
        })
        .collect()
}

/// The next `n` trades on `ws`, failing after 20 s of silence.
async fn read_trades<S>(ws: &mut S, n: usize) -> Vec<Trade>
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        let msg = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .unwrap_or_else(|_| panic!("silent after {} trades", got.len()));
        match msg {
            Some(Ok(Message::Text(t))) => match parse_stream_message(t.as_bytes()) {
                Ok(StreamEvent::Trade(tr)) => got.push(tr),
                other => panic!("unexpected {other:?}"),
            },
            Some(Ok(_)) => {}
            other => panic!("stream ended after {} trades: {other:?}", got.len()),
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replicated_name_serves_the_recorded_trades_by_stream_and_by_rest() {
    let n = NAMES.to_string();
    let server = start(args(&["--max", "--replicate", &n])).await.unwrap();

    // Three names on one combined stream, as the daemon subscribes: at each recorded trade the
    // three copies come one after another, in name order, and each name plays the whole tape.
    let streams: Vec<String> = ["s0001usdt@trade", "s0500usdt@trade", "s1000usdt@trade"]
        .map(String::from)
        .to_vec();
    let url = combined_stream_url(&server.ws_base(), &streams);
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    let first = read_trades(&mut ws, 3 * 2_000).await;
    let expected: Vec<Vec<Trade>> = ["S0001USDT", "S0500USDT", "S1000USDT"]
        .map(recorded_as)
        .to_vec();
    for (k, triple) in first.chunks(3).enumerate() {
        for (copy, t) in triple.iter().enumerate() {
            assert_eq!(*t, expected[copy][k], "recorded trade {k}, name {copy}");
        }
    }

    // Trades of every name, subscribed or not, have "happened" as the tape passed them: REST
    // backfill gives any name the recorded trades, under its own name.
    let rest = BinanceRest::new(server.http_base(), None, Duration::from_secs(5)).unwrap();
    let s0777 = recorded_as("S0777USDT");
    let page = rest
        .historical_trades("S0777USDT", s0777[100].trade_id, 1000)
        .await
        .unwrap();
    assert_eq!(page, s0777[100..1100]);
    // The recorded symbol itself is not one of the names served.
    assert!(rest.historical_trades("BTCUSDT", 1, 10).await.is_err());

    // exchangeInfo: every name, each with the recorded symbol's precision.
    let all = rest.exchange_info(&[]).await.unwrap();
    assert_eq!(all.len(), NAMES as usize);
    assert_eq!(
        (all[0].symbol.as_str(), all[999].symbol.as_str()),
        ("S0001USDT", "S1000USDT")
    );
    let one = rest
        .exchange_info(&["s0042usdt".to_string(), "S0042USDT".to_string()])
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(
        (
            one[0].symbol.as_str(),
            one[0].base_asset.as_str(),
            one[0].quote_asset.as_str()
        ),
        ("S0042USDT", "S0042", "USDT")
    );
    assert_eq!((one[0].precision_price, one[0].precision_qty), (2, 5));

    // The peer's own counters: the cursor counts every name's copies, delivered or not.
    let stats: serde_json::Value =
        reqwest::get(format!("{}{}", server.http_base(), &STATS_PATH[1..]))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let cursor = stats["cursor"].as_u64().unwrap();
    assert_eq!(stats["names"], NAMES);
    assert_eq!(stats["total"], 19_904 * u64::from(NAMES));
    assert!(cursor >= 1999 * u64::from(NAMES) + 1000, "{stats}");
    assert!(stats["sent"].as_u64().unwrap() >= 3 * 2_000, "{stats}");
    assert!(stats["lag_ms"].is_null(), "--max has no schedule: {stats}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicated_loops_keep_each_names_ids_consecutive() {
    // Two loops of the tape under 3 names; read one name across the loop boundary.
    let server = start(args(&["--max", "--replicate", "3", "--loop", "2"]))
        .await
        .unwrap();
    let url = combined_stream_url(&server.ws_base(), &["s2usdt@trade".to_string()]);
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    let got = read_trades(&mut ws, 2 * 19_904).await;
    let recorded = recorded_as("S2USDT");
    assert_eq!(got[..19_904], recorded[..]);
    assert!(got.iter().all(|t| &*t.symbol == "S2USDT"));
    assert!(
        got.windows(2)
            .all(|w| w[1].trade_id == w[0].trade_id + 1 && w[1].time_ms >= w[0].time_ms)
    );
    server.shutdown().await;
}
