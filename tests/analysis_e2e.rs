//! End to end for analysis: the real daemon crawls the local news server's real pages, analyses
//! every article once (PUBLISH articles:new each time), makes trend predictions for the tracked
//! symbols from those analyses and the candles of the replayed market, and once the replay has
//! passed a prediction's horizon, scores it: the outcome price is exactly the close of the
//! stored 1m candle ending at the horizon.

use futures_util::StreamExt;
use rust_decimal::Decimal;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tradepipe_model::calibration::Calibration;
use tradepipe_model::record::TrendPredictionRecord;
use tradepipe_testkit::news_server::NewsServerConfig;
use tradepipe_testkit::support::*;

const HORIZON: &str = "2m";

async fn scored(pool: &PgPool, symbol: &str) -> Vec<TrendPredictionRecord> {
    let rows: Vec<(String, serde_json::Value)> = sqlx::query_as(
        "SELECT id::text, doc FROM content.trend_predictions
         WHERE symbol = $1 AND scored_at IS NOT NULL ORDER BY prediction_time",
    )
    .bind(symbol)
    .fetch_all(pool)
    .await
    .unwrap_or_default(); // before the daemon migrated: none yet
    rows.into_iter()
        .map(|(id, doc)| {
            let mut p: TrendPredictionRecord = serde_json::from_value(doc).unwrap();
            p.id = id;
            p
        })
        .collect()
}

#[sqlx::test(migrations = false)]
async fn articles_are_analysed_once_and_predictions_scored_against_the_replayed_market(
    pool: PgPool,
) {
    let server = tradepipe_testkit::news_server::start(NewsServerConfig {
        pages_dir: std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/news/pages"),
        listen: "127.0.0.1:0".parse().unwrap(),
        sources: 2,
        oversized_bytes: 6 * 1024 * 1024,
    })
    .await
    .expect("news server");
    let sources_file = quick_sources_file(&server, "analysis-e2e");

    // The 11 recorded minutes at 12x: about 55 s, so analyses exist before most predictions
    // and the early predictions' 2-minute horizons pass well before the tape ends.
    let (_replay, port) = start_replay(&["--speed", "12"]);
    let mut env = DaemonEnv::new(&pool, port, "analysis");
    env.extra_env.extend([
        (
            "TRADEPIPE_SOURCES_FILE".to_string(),
            sources_file.display().to_string(),
        ),
        ("TRADEPIPE__NEWS__POLL_INTERVAL_MS".into(), "200".into()),
        ("TRADEPIPE__ANALYSIS__POLL_INTERVAL_MS".into(), "200".into()),
        (
            "TRADEPIPE__ANALYSIS__PREDICTION_INTERVAL_SECS".into(),
            "1".into(),
        ),
        (
            "TRADEPIPE__ANALYSIS__HORIZONS".into(),
            format!("[\"{HORIZON}\"]"),
        ),
        (
            "TRADEPIPE__ANALYSIS__VOLATILITY_MINUTES".into(),
            "30".into(),
        ),
    ]);

    // Everything published under the test's prefix, by channel.
    let published: Arc<Mutex<HashMap<String, Vec<String>>>> = Arc::default();
    let client = redis::Client::open(env.redis_url()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub
        .psubscribe(format!("{}*", env.redis_prefix))
        .await
        .unwrap();
    let sink = published.clone();
    let prefix = env.redis_prefix.clone();
    let listener = tokio::spawn(async move {
        let mut messages = pubsub.on_message();
        while let Some(m) = messages.next().await {
            let channel = m.get_channel_name().trim_start_matches(&prefix).to_string();
            if channel == "articles:new" || channel.starts_with("predictions:") {
                let payload: String = m.get_payload().unwrap();
                sink.lock()
                    .unwrap()
                    .entry(channel)
                    .or_default()
                    .push(payload);
            }
        }
    });

    let mut daemon = env.start(&[]);
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let (articles, open): (i64, i64) = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE analysis_status IN ('PENDING', 'PROCESSING'))
             FROM content.articles",
        )
        .fetch_one(&pool)
        .await
        .unwrap_or((0, 1));
        let btc = scored(&pool, "BTCUSDT").await.len();
        let eth = scored(&pool, "ETHUSDT").await.len();
        if articles >= 15 && open == 0 && btc >= 2 && eth >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not done: {articles} articles ({open} unanalysed), scored predictions BTC {btc} ETH {eth}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let metrics = env.metrics();
    assert!(daemon.terminate(Duration::from_secs(60)).success());
    listener.abort();

    // Every article analysed exactly once, with the seed's fields.
    let (articles, completed, failed, results, distinct): (i64, i64, i64, i64, i64) =
        sqlx::query_as(
            "SELECT (SELECT count(*) FROM content.articles),
                    (SELECT count(*) FROM content.articles WHERE analysis_status = 'COMPLETED'),
                    (SELECT count(*) FROM content.articles WHERE analysis_status = 'FAILED'),
                    (SELECT count(*) FROM content.analysis_results),
                    (SELECT count(DISTINCT article_id) FROM content.analysis_results)",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(completed + failed, articles);
    assert_eq!(failed, 0, "real pages analyse");
    assert_eq!((results, distinct), (completed, completed));
    let docs: Vec<serde_json::Value> =
        sqlx::query_scalar("SELECT doc FROM content.analysis_results")
            .fetch_all(&pool)
            .await
            .unwrap();
    for d in &docs {
        let dist = &d["sentiment"]["distribution"];
        let sum: f64 = ["bullish", "bearish", "neutral"]
            .iter()
            .map(|k| dist[k].as_f64().unwrap())
            .sum();
        assert!((sum - 1.0).abs() < 1e-6, "distribution sums to 1: {d}");
        for key in [
            "model_version",
            "entities",
            "topics",
            "key_phrases",
            "causal_signals",
            "trend_prediction",
            "quality_metrics",
            "processing_time_ms",
        ] {
            assert!(d.get(key).is_some(), "{key} missing in {d}");
        }
    }

    // One articles:new per analysed article, with the announced fields.
    let published = published.lock().unwrap().clone();
    let announced = published.get("articles:new").cloned().unwrap_or_default();
    assert_eq!(
        announced.len() as i64,
        completed,
        "one PUBLISH per analysis"
    );
    for m in &announced {
        let v: serde_json::Value = serde_json::from_str(m).unwrap();
        for key in ["id", "title", "sentiment", "symbols", "published_at"] {
            assert!(v.get(key).is_some(), "{key} missing in {m}");
        }
    }

    // Predictions for the symbols the articles mention, built from those articles.
    let mentioned: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT unnest(symbols) FROM content.analysis_results ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for symbol in ["BTCUSDT", "ETHUSDT"] {
        let with_articles: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM content.trend_predictions
             WHERE symbol = $1 AND jsonb_array_length(doc->'contributing_articles') > 0",
        )
        .bind(symbol)
        .fetch_one(&pool)
        .await
        .unwrap();
        if mentioned.iter().any(|s| s == symbol) {
            assert!(
                with_articles > 0,
                "{symbol} is mentioned but no prediction used an article"
            );
        }
        let channel = format!("predictions:{symbol}");
        assert!(
            published.get(&channel).is_some_and(|m| !m.is_empty()),
            "PUBLISH {channel}"
        );

        // Scored against the market: the outcome is the close of the 1m candle ending at the
        // horizon, exactly, and the score is within 0..1.
        let scored = scored(&pool, symbol).await;
        assert!(scored.len() >= 2);
        // Stated with the shipped calibration of the nearest back-tested horizon: where it
        // found no edge, every call is SIDEWAYS with confidence 0.
        let calibration = Calibration::shipped()
            .unwrap()
            .for_horizon(HORIZON, scored[0].horizon_seconds);
        let stated: Vec<f64> = calibration
            .hit_probability
            .iter()
            .map(|h| ((2.0 * h - 1.0) * 10_000.0).round() / 10_000.0)
            .collect();
        for p in &scored {
            assert_eq!(p.time_horizon, HORIZON);
            let c = p.prediction.confidence;
            if calibration.edge {
                assert!(
                    c == 0.0 || stated.contains(&c),
                    "{c} is no calibrated value"
                );
            } else {
                assert_eq!(
                    (p.prediction.direction.as_str(), c),
                    ("SIDEWAYS", 0.0),
                    "{}",
                    p.reasoning
                );
            }
            let o = p.actual_outcome.as_ref().expect("outcome");
            let a = p.accuracy_score.expect("accuracy");
            assert!((0.0..=1.0).contains(&a));
            let close: Decimal = sqlx::query_scalar(
                "SELECT close FROM trading.price_candles
                 WHERE symbol_id = $1 AND interval = '1m' AND is_closed
                   AND open_time = $2::timestamptz - interval '1 minute'",
            )
            .bind(symbol)
            .bind(p.due_at())
            .fetch_one(&pool)
            .await
            .expect("the candle ending at the horizon");
            assert_eq!(o.price, close, "{symbol} outcome at {}", p.due_at());
            assert_eq!(o.price_time, p.due_at());
            let base: Decimal = sqlx::query_scalar(
                "SELECT close FROM trading.price_candles
                 WHERE symbol_id = $1 AND interval = '1m'
                   AND open_time = $2::timestamptz - interval '1 minute'",
            )
            .bind(symbol)
            .bind(p.prediction_time)
            .fetch_one(&pool)
            .await
            .unwrap();
            assert_eq!(
                p.prediction.base_price, base,
                "base price is the close at prediction time"
            );
            let t = &p.prediction.price_target;
            assert!(t.low <= t.mid && t.mid <= t.high);
        }
        assert!(
            metrics.contains(&format!(
                "tradepipe_prediction_hit_rate{{symbol=\"{symbol}\",horizon=\"{HORIZON}\"}}"
            )) || metrics.contains(&format!(
                "tradepipe_prediction_hit_rate{{horizon=\"{HORIZON}\",symbol=\"{symbol}\"}}"
            )),
            "hit rate gauge for {symbol}"
        );
    }
    // No duplicate prediction for one market time.
    let dupes: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT 1 FROM content.trend_predictions
         GROUP BY symbol, time_horizon, prediction_time HAVING count(*) > 1) d",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(dupes, 0);
}
