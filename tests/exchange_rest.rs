//! REST client against a small local fake: key header, rate limits, errors never leaking the key.

use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use std::collections::HashMap;
use std::time::Duration;
use tradepipe::exchange::rest::{BinanceRest, RestError};

const KEY: &str = "sEcReTkEy123";

async fn historical(
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> impl IntoResponse {
    let key = headers
        .get("x-mbx-apikey")
        .map(|v| v.to_str().unwrap().to_string());
    match q.get("symbol").map(String::as_str) {
        Some("LIMITED") => (
            StatusCode::TOO_MANY_REQUESTS,
            [("Retry-After", "7")],
            String::new(),
        )
            .into_response(),
        Some("BANNED") => (StatusCode::IM_A_TEAPOT, String::new()).into_response(),
        Some("BROKEN") => (
            StatusCode::BAD_REQUEST,
            r#"{"code":-1121,"msg":"Invalid symbol."}"#.to_string(),
        )
            .into_response(),
        Some("GARBAGE") => (StatusCode::OK, "<html>".to_string()).into_response(),
        Some(sym) => {
            let from: u64 = q["fromId"].parse().unwrap();
            let limit: u64 = q["limit"].parse().unwrap();
            // Echo what the client sent through the trade fields so the test can check them.
            let buyer_maker = key.as_deref() == Some(KEY);
            let rows: Vec<String> = (from..from + limit.min(3))
                .map(|id| format!(r#"{{"id":{id},"price":"1.50000000","qty":"2.00000000","quoteQty":"3.00000000","time":{},"isBuyerMaker":{buyer_maker},"isBestMatch":true}}"#, 1_700_000_000_000u64 + id))
                .collect();
            assert_eq!(sym, sym.to_ascii_uppercase());
            (StatusCode::OK, format!("[{}]", rows.join(","))).into_response()
        }
        None => StatusCode::BAD_REQUEST.into_response(),
    }
}

async fn exchange_info(Query(q): Query<HashMap<String, String>>) -> String {
    assert_eq!(q.get("symbols").map(String::as_str), Some(r#"["BTCUSDT"]"#));
    r#"{"symbols":[{"symbol":"BTCUSDT","status":"TRADING","baseAsset":"BTC","quoteAsset":"USDT","filters":[{"filterType":"PRICE_FILTER","tickSize":"0.01000000"},{"filterType":"LOT_SIZE","minQty":"0.00001000","stepSize":"0.00001000"}]}]}"#.to_string()
}

async fn serve() -> url::Url {
    let app = axum::Router::new()
        .route("/prefix/api/v3/historicalTrades", get(historical))
        .route("/prefix/api/v3/exchangeInfo", get(exchange_info));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url::Url::parse(&format!("http://{addr}/prefix/")).unwrap()
}

#[tokio::test]
async fn key_header_rate_limits_and_errors() {
    let base = serve().await;
    let keyed = BinanceRest::new(base.clone(), Some(KEY), Duration::from_secs(5)).unwrap();
    let anon = BinanceRest::new(base, None, Duration::from_secs(5)).unwrap();
    assert!(!format!("{keyed:?}").contains(KEY));

    let t = keyed.historical_trades("btcusdt", 41, 5000).await.unwrap();
    assert_eq!(
        t.iter().map(|t| t.trade_id).collect::<Vec<_>>(),
        [41, 42, 43]
    );
    assert_eq!(&*t[0].symbol, "BTCUSDT");
    assert!(t[0].is_buyer_maker, "the key header reached the server");
    let t = anon.historical_trades("BTCUSDT", 1, 1).await.unwrap();
    assert_eq!(t.len(), 1);
    assert!(!t[0].is_buyer_maker, "no key header without a key");

    match keyed.historical_trades("LIMITED", 1, 10).await {
        Err(
            e @ RestError::RateLimited {
                status: 429,
                retry_after,
                ..
            },
        ) => {
            assert_eq!(retry_after, Duration::from_secs(7));
            assert!(e.is_transient());
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        keyed.historical_trades("BANNED", 1, 10).await,
        Err(RestError::RateLimited { status: 418, .. })
    ));
    let err = keyed.historical_trades("BROKEN", 1, 10).await.unwrap_err();
    assert!(matches!(err, RestError::Status { status: 400, .. }));
    assert!(!err.is_transient());
    let text = err.to_string();
    assert!(
        text.contains("historicalTrades") && text.contains("Invalid symbol"),
        "{text}"
    );
    assert!(!text.contains(KEY) && !format!("{err:?}").contains(KEY));
    assert!(matches!(
        keyed.historical_trades("GARBAGE", 1, 10).await,
        Err(RestError::Decode { .. })
    ));

    let info = anon.exchange_info(&["btcusdt".to_string()]).await.unwrap();
    assert_eq!(info.len(), 1);
    assert_eq!((info[0].precision_price, info[0].precision_qty), (2, 5));
}

#[tokio::test]
async fn unreachable_host_is_a_transient_request_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let rest = BinanceRest::new(
        url::Url::parse(&format!("http://{addr}")).unwrap(),
        None,
        Duration::from_secs(2),
    )
    .unwrap();
    let err = rest.historical_trades("BTCUSDT", 1, 1).await.unwrap_err();
    assert!(
        matches!(
            err,
            RestError::Request {
                endpoint: "/api/v3/historicalTrades",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.is_transient());
    assert!(
        BinanceRest::new(
            url::Url::parse("http://x").unwrap(),
            Some("bad\nkey"),
            Duration::from_secs(1)
        )
        .is_err()
    );
}
