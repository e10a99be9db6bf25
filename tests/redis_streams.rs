//! Durable Redis streams for subscribers without Kafka (issue 15): a consumer group on
//! `price:ticks:{SYM}` that stops for a while and comes back resumes where it acknowledged,
//! without a gap, because the stream keeps entries by age, not by count; and
//! `stream:candles:{SYM}` carries every closed candle once, exact. The real daemon against the
//! real replay peer and Redis, as in market_e2e.rs.

use redis::AsyncCommands;
use redis::streams::{StreamReadOptions, StreamReadReply};
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::time::Duration;
use tradepipe_testkit::support::*;

const WAIT: Duration = Duration::from_secs(180);
const GROUP: &str = "downstream";
const CONSUMER: &str = "engine-1";

/// Reads up to `count` entries for `consumer` (`id` ">" for new ones, "0" for its own pending
/// ones), returning (entry id, trade id) pairs.
async fn read_group(
    con: &mut redis::aio::MultiplexedConnection,
    key: &str,
    id: &str,
    count: usize,
) -> Vec<(String, u64)> {
    let opts = StreamReadOptions::default()
        .group(GROUP, CONSUMER)
        .count(count)
        .block(1000);
    let reply: Option<StreamReadReply> = con
        .xread_options(&[key], &[id], &opts)
        .await
        .expect("XREADGROUP");
    let mut out = Vec::new();
    for stream in reply.map(|r| r.keys).unwrap_or_default() {
        for entry in stream.ids {
            let trade_id: String = entry.get("trade_id").expect("trade_id field");
            out.push((
                entry.id.clone(),
                trade_id.parse().expect("numeric trade id"),
            ));
        }
    }
    out
}

async fn ack(con: &mut redis::aio::MultiplexedConnection, key: &str, entries: &[(String, u64)]) {
    if entries.is_empty() {
        return;
    }
    let ids: Vec<&str> = entries.iter().map(|(id, _)| id.as_str()).collect();
    let acked: i64 = con.xack(key, GROUP, &ids).await.expect("XACK");
    assert_eq!(
        acked as usize,
        entries.len(),
        "every delivered entry acknowledged"
    );
}

#[sqlx::test(migrations = false)]
async fn a_consumer_group_that_stops_resumes_without_a_gap(pool: PgPool) {
    let trades = demo_trades();
    let mut btc: Vec<u64> = trades
        .iter()
        .filter(|t| &*t.symbol == "BTCUSDT")
        .map(|t| t.trade_id)
        .collect();
    btc.sort_unstable();
    // Paced, so the stream keeps growing while the consumer is away.
    let (_replay, port) = start_replay(&["--speed", "60"]);
    let mut env = DaemonEnv::new(&pool, port, "streams");
    // A count limit far below what arrives while the consumer is away: if retention by age did
    // not replace it, the entries the consumer had not read would be trimmed and it would come
    // back to a gap.
    env.extra_env.extend([
        ("TRADEPIPE__REDIS__TICKS_STREAM_MAXLEN".into(), "100".into()),
        (
            "TRADEPIPE__REDIS__TICKS_STREAM_RETENTION_SECS".into(),
            "3600".into(),
        ),
    ]);
    let key = format!("{}price:ticks:BTCUSDT", env.redis_prefix);
    let client = redis::Client::open(env.redis_url()).expect("redis url");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    // The group exists before the first trade: it is to see every one.
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&key)
        .arg(GROUP)
        .arg("$")
        .arg("MKSTREAM")
        .query_async(&mut con)
        .await
        .expect("XGROUP CREATE");

    let mut daemon = env.start(&[]);
    // The first life of the consumer: process and acknowledge 3,000 trades, then take one more
    // batch and die before acknowledging it.
    let mut processed: Vec<u64> = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while processed.len() < 3000 {
        assert!(tokio::time::Instant::now() < deadline, "ticks never came");
        let got = read_group(&mut con, &key, ">", 500).await;
        processed.extend(got.iter().map(|(_, t)| *t));
        ack(&mut con, &key, &got).await;
    }
    let lost_with_the_crash = read_group(&mut con, &key, ">", 200).await;
    assert!(!lost_with_the_crash.is_empty());
    drop(con);

    // Away until the daemon has stored everything: thousands of entries arrive meanwhile.
    wait_for_ticks(&pool, trades.len() as i64, WAIT).await;
    assert!(daemon.terminate(Duration::from_secs(30)).success());
    let len: usize = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis")
        .xlen(&key)
        .await
        .expect("XLEN");
    assert!(
        len > btc.len() - 3000,
        "the stream kept what the group had not read ({len} entries)"
    );

    // The second life: its own pending entries first (delivered, never acknowledged), then new.
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let pending = read_group(&mut con, &key, "0", 10_000).await;
    assert_eq!(
        pending, lost_with_the_crash,
        "the unacknowledged batch comes back first"
    );
    processed.extend(pending.iter().map(|(_, t)| *t));
    ack(&mut con, &key, &pending).await;
    loop {
        let got = read_group(&mut con, &key, ">", 1000).await;
        if got.is_empty() {
            break;
        }
        processed.extend(got.iter().map(|(_, t)| *t));
        ack(&mut con, &key, &got).await;
    }
    assert_eq!(
        processed, btc,
        "every BTCUSDT trade processed once, in trade-id order, none missing"
    );

    // stream:candles: every closed 1m candle once, equal to the fold of the tape.
    let candles_key = format!("{}stream:candles:BTCUSDT", env.redis_prefix);
    let entries: redis::streams::StreamRangeReply =
        con.xrange_all(&candles_key).await.expect("XRANGE");
    let mut minutes: BTreeMap<i64, serde_json::Value> = BTreeMap::new();
    for e in &entries.ids {
        let interval: String = e.get("interval").expect("interval field");
        let json: String = e.get("candle").expect("candle field");
        let v: serde_json::Value = serde_json::from_str(&json).expect("candle json");
        assert_eq!(v["x"], serde_json::Value::Bool(true), "only closed candles");
        if interval == "1m" {
            let open = v["t"].as_i64().expect("open time");
            assert!(
                minutes.insert(open, v).is_none(),
                "minute {open} appears twice in the stream"
            );
        }
    }
    let reference = reference_candles(&trades);
    let reference_1m: Vec<_> = reference
        .iter()
        .filter(|((s, i, _), _)| s == "BTCUSDT" && i == "1m")
        .collect();
    // The last minute of the tape may still be open when the daemon stops.
    assert!(
        minutes.len() + 1 >= reference_1m.len(),
        "{} closed minutes in the stream of {}",
        minutes.len(),
        reference_1m.len()
    );
    for ((_, _, open), want) in reference_1m {
        let Some(got) = minutes.get(open) else {
            continue;
        };
        assert_eq!(got["c"].to_string(), want.close.normalize().to_string());
        assert_eq!(got["v"].to_string(), want.volume.normalize().to_string());
        assert_eq!(got["n"].as_i64(), Some(want.trade_count));
    }

    env.delete_redis_keys().await;
}
