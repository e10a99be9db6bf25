//! Redis: the live side of the market and analysis pipelines, and the sessions retention
//! expires. Key and channel names follow the seed's design (see docs/redis.md for every key and
//! payload).

mod analysis;
mod publisher;
mod retention;

pub use analysis::{AnalysisPublisher, ArticleAnnouncement};
pub use publisher::{MarketUpdate, RedisSink, StreamTrim};
pub use retention::RedisSessionStore;

use crate::config::RedisTarget;
use crate::domain::Interval;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;

/// Key and channel names, all under an optional prefix (tests use one per test).
#[derive(Debug, Clone)]
pub struct RedisKeys {
    prefix: String,
}

impl RedisKeys {
    pub fn new(prefix: impl Into<String>) -> Self {
        RedisKeys {
            prefix: prefix.into(),
        }
    }
    pub(crate) fn latest_price(&self, sym: &str) -> String {
        format!("{}price:latest:{sym}", self.prefix)
    }
    pub fn ticks(&self, sym: &str) -> String {
        format!("{}price:ticks:{sym}", self.prefix)
    }
    /// Every closed candle of a symbol, all intervals: the stream consumer groups resume from.
    pub fn candles_stream(&self, sym: &str) -> String {
        format!("{}stream:candles:{sym}", self.prefix)
    }
    pub(crate) fn prices_channel(&self, sym: &str) -> String {
        format!("{}prices:{sym}", self.prefix)
    }
    pub fn candles(&self, sym: &str, iv: Interval) -> String {
        format!("{}price:candles:{sym}:{iv}", self.prefix)
    }
    pub(crate) fn candles_channel(&self, sym: &str, iv: Interval) -> String {
        format!("{}candles:{sym}:{iv}", self.prefix)
    }
    pub(crate) fn leaderboard(&self) -> String {
        format!("{}leaderboard:volume:24h", self.prefix)
    }
    /// `PUBLISH articles:new` (seed): one message per analysed article.
    pub(crate) fn articles_channel(&self) -> String {
        format!("{}articles:new", self.prefix)
    }
    /// `PUBLISH predictions:{SYM}`: one message per new trend prediction.
    pub(crate) fn predictions_channel(&self, sym: &str) -> String {
        format!("{}predictions:{sym}", self.prefix)
    }
    /// The newest prediction per symbol and horizon (String, JSON).
    pub(crate) fn latest_prediction(&self, sym: &str, horizon: &str) -> String {
        format!("{}prediction:latest:{sym}:{horizon}", self.prefix)
    }
    /// Hash label -> count of analysed articles, all time and per UTC day.
    pub(crate) fn sentiment_stats(&self) -> String {
        format!("{}stats:sentiment:count", self.prefix)
    }
    pub(crate) fn sentiment_stats_day(&self, day: chrono::NaiveDate) -> String {
        format!("{}stats:sentiment:{day}", self.prefix)
    }
    /// Hash source -> count of analysed articles (beside the seed's stats:articles:count,
    /// which counts stored ones).
    pub(crate) fn analyzed_stats(&self) -> String {
        format!("{}stats:articles:analyzed", self.prefix)
    }
    pub(crate) fn symbol_cache(&self, sym: &str) -> String {
        format!("{}cache:symbols:{sym}", self.prefix)
    }
}

/// A connection that reconnects by itself, with short timeouts: a dead Redis must cost a
/// pipeline a second, not a minute.
pub(crate) async fn connection_manager(
    target: &RedisTarget,
) -> redis::RedisResult<ConnectionManager> {
    let client = target.client()?;
    let cfg = ConnectionManagerConfig::new()
        .set_connection_timeout(Duration::from_secs(1))
        .set_response_timeout(Duration::from_secs(2))
        .set_number_of_retries(1);
    ConnectionManager::new_with_config(client, cfg).await
}
