//! Binance spot REST client for what the feed needs besides the stream: backfilling missed
//! trades by id (`historicalTrades`) and symbol reference data (`exchangeInfo`).
//!
//! The API key, when configured, is sent only as the `X-MBX-APIKEY` header, marked sensitive so
//! HTTP-level debug output redacts it; it never appears in URLs, errors or logs.

use super::binance::{self, WireError};
use crate::domain::{SymbolInfo, Trade};
use axum::body::Bytes; // the `bytes` crate's type, re-exported (not a direct dependency)
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};
use std::time::Duration;

/// Binance caps `historicalTrades` at 1000 trades per call.
pub(crate) const MAX_HISTORICAL_LIMIT: u16 = 1000;
/// Wait assumed when a 429/418 arrives without a usable `Retry-After`: long enough not to turn a
/// rate limit into an IP ban.
pub(crate) const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(30);

const HISTORICAL_TRADES: &str = "/api/v3/historicalTrades";
const EXCHANGE_INFO: &str = "/api/v3/exchangeInfo";

#[derive(Debug, thiserror::Error)]
pub enum RestError {
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("invalid API key: it must be a visible ASCII header value")]
    BadApiKey,
    #[error("{endpoint}: request failed: {source}")]
    Request {
        endpoint: &'static str,
        #[source]
        source: reqwest::Error,
    },
    /// 429 (too many requests) or 418 (IP banned after ignoring 429s): the caller must wait
    /// `retry_after` before calling Binance again, on any endpoint.
    #[error("{endpoint}: rate limited (HTTP {status}), retry after {retry_after:?}")]
    RateLimited {
        endpoint: &'static str,
        status: u16,
        retry_after: Duration,
    },
    #[error("{endpoint}: HTTP {status}: {body}")]
    Status {
        endpoint: &'static str,
        status: u16,
        body: String,
    },
    #[error("{endpoint}: unexpected response: {source}")]
    Decode {
        endpoint: &'static str,
        #[source]
        source: WireError,
    },
}

impl RestError {
    /// Worth retrying later (transport trouble, rate limits, 5xx) as opposed to a request that
    /// will never succeed (4xx, undecodable payload).
    pub fn is_transient(&self) -> bool {
        match self {
            RestError::Request { .. } | RestError::RateLimited { .. } => true,
            RestError::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// A Binance spot REST client. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct BinanceRest {
    client: reqwest::Client,
    base: url::Url,
    has_key: bool,
}

impl std::fmt::Debug for BinanceRest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BinanceRest")
            .field("base", &self.base.as_str())
            .field("api_key", &if self.has_key { "<set>" } else { "<none>" })
            .finish()
    }
}

impl BinanceRest {
    /// `base` is e.g. `https://api.binance.com` (or the replay peer's `http://127.0.0.1:9443`).
    /// `timeout` bounds each whole request so a stalled backfill cannot hang the feed.
    pub fn new(
        base: url::Url,
        api_key: Option<&str>,
        timeout: Duration,
    ) -> Result<BinanceRest, RestError> {
        let mut headers = HeaderMap::new();
        let key = api_key.map(str::trim).filter(|k| !k.is_empty());
        if let Some(key) = key {
            let mut value = HeaderValue::from_str(key).map_err(|_| RestError::BadApiKey)?;
            value.set_sensitive(true);
            headers.insert("X-MBX-APIKEY", value);
        }
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .timeout(timeout)
            .user_agent(concat!("tradepipe/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(RestError::Client)?;
        Ok(BinanceRest {
            client,
            base,
            has_key: key.is_some(),
        })
    }

    pub fn base_url(&self) -> &url::Url {
        &self.base
    }

    fn url(&self, path: &str) -> url::Url {
        let mut url = self.base.clone();
        url.set_path(&format!(
            "{}{}",
            self.base.path().trim_end_matches('/'),
            path
        ));
        url.set_query(None);
        url
    }

    /// Up to `limit` (1..=1000) trades of `symbol` starting at id `from_id`, in id order: how the
    /// feed fills a gap the stream left (a reconnect, a dropped message).
    pub async fn historical_trades(
        &self,
        symbol: &str,
        from_id: u64,
        limit: u16,
    ) -> Result<Vec<Trade>, RestError> {
        let limit = limit.clamp(1, MAX_HISTORICAL_LIMIT);
        let symbol = symbol.to_ascii_uppercase();
        let request = self.client.get(self.url(HISTORICAL_TRADES)).query(&[
            ("symbol", symbol.as_str()),
            ("fromId", &from_id.to_string()),
            ("limit", &limit.to_string()),
        ]);
        let body = self.send(HISTORICAL_TRADES, request).await?;
        let trades = binance::parse_historical_trades(&symbol, &body).map_err(|source| {
            RestError::Decode {
                endpoint: HISTORICAL_TRADES,
                source,
            }
        })?;
        tracing::debug!(%symbol, from_id, limit, got = trades.len(), "historicalTrades");
        Ok(trades)
    }

    /// Reference data for `symbols` (all symbols when empty).
    pub async fn exchange_info(&self, symbols: &[String]) -> Result<Vec<SymbolInfo>, RestError> {
        let mut request = self.client.get(self.url(EXCHANGE_INFO));
        if !symbols.is_empty() {
            let upper: Vec<String> = symbols.iter().map(|s| s.to_ascii_uppercase()).collect();
            let list = serde_json::to_string(&upper).unwrap_or_default();
            request = request.query(&[("symbols", list)]);
        }
        let body = self.send(EXCHANGE_INFO, request).await?;
        let infos = binance::parse_exchange_info(&body).map_err(|source| RestError::Decode {
            endpoint: EXCHANGE_INFO,
            source,
        })?;
        tracing::debug!(requested = symbols.len(), got = infos.len(), "exchangeInfo");
        Ok(infos)
    }

    async fn send(
        &self,
        endpoint: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<Bytes, RestError> {
        let response = request
            .send()
            .await
            .map_err(|source| RestError::Request { endpoint, source })?;
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS || status.as_u16() == 418 {
            let retry_after =
                crate::backoff::retry_after(response.headers()).unwrap_or(DEFAULT_RETRY_AFTER);
            tracing::warn!(
                endpoint,
                status = status.as_u16(),
                ?retry_after,
                "Binance rate limit"
            );
            return Err(RestError::RateLimited {
                endpoint,
                status: status.as_u16(),
                retry_after,
            });
        }
        let body = response
            .bytes()
            .await
            .map_err(|source| RestError::Request { endpoint, source })?;
        if !status.is_success() {
            return Err(RestError::Status {
                endpoint,
                status: status.as_u16(),
                body: binance::excerpt(&body),
            });
        }
        Ok(body)
    }
}
