//! The analysis pipeline's live side in Redis: `PUBLISH articles:new` per analysed article,
//! `PUBLISH predictions:{SYM}` per prediction, the newest prediction per symbol and horizon, and
//! sentiment statistics. The document store is the record; Redis is best effort: a failed
//! publish is counted (`tradepipe_redis_unpublished_total`) and logged, never retried into a
//! backlog, and never blocks analysis.

use super::RedisKeys;
use crate::config::RedisTarget;
use crate::domain::Article;
use chrono::{DateTime, Utc};
use redis::aio::ConnectionManager;
use serde::Serialize;
use tradepipe_model::record::{AnalysisRecord, TrendPredictionRecord};

/// Days a per-day sentiment hash is kept.
const DAILY_STATS_TTL_SECS: i64 = 8 * 86_400;

/// `articles:new` payload: the seed's `{"id","title","sentiment"}` plus symbols and published_at.
#[derive(Debug, Serialize)]
pub struct ArticleAnnouncement<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub sentiment: &'static str,
    pub symbols: &'a [String],
    pub published_at: Option<DateTime<Utc>>,
}

impl<'a> ArticleAnnouncement<'a> {
    pub fn new(article: &'a Article, record: &AnalysisRecord) -> Self {
        ArticleAnnouncement {
            id: &article.id,
            title: &article.title,
            sentiment: record.analysis.sentiment.label.as_str(),
            symbols: &article.symbols,
            published_at: article.published_at,
        }
    }
}

#[derive(Clone)]
pub struct AnalysisPublisher {
    conn: ConnectionManager,
    keys: RedisKeys,
}

impl AnalysisPublisher {
    pub async fn connect(target: &RedisTarget, keys: RedisKeys) -> redis::RedisResult<Self> {
        Ok(Self::new(super::connection_manager(target).await?, keys))
    }

    /// On a connection shared with the rest of the daemon (it is multiplexed).
    pub fn new(conn: ConnectionManager, keys: RedisKeys) -> Self {
        AnalysisPublisher { conn, keys }
    }

    /// One MULTI/EXEC: the announcement and the statistics it changes.
    pub(crate) async fn article_analyzed(
        &self,
        article: &Article,
        record: &AnalysisRecord,
    ) -> redis::RedisResult<()> {
        let msg =
            serde_json::to_string(&ArticleAnnouncement::new(article, record)).map_err(|e| {
                redis::RedisError::from((
                    redis::ErrorKind::ClientError,
                    "articles:new payload",
                    e.to_string(),
                ))
            })?;
        let label = record.analysis.sentiment.label.as_str();
        let day = self
            .keys
            .sentiment_stats_day(record.analyzed_at.date_naive());
        let mut p = redis::pipe();
        p.atomic()
            .cmd("PUBLISH")
            .arg(self.keys.articles_channel())
            .arg(&msg)
            .ignore()
            .cmd("HINCRBY")
            .arg(self.keys.sentiment_stats())
            .arg(label)
            .arg(1)
            .ignore()
            .cmd("HINCRBY")
            .arg(&day)
            .arg(label)
            .arg(1)
            .ignore()
            .cmd("EXPIRE")
            .arg(&day)
            .arg(DAILY_STATS_TTL_SECS)
            .ignore()
            .cmd("HINCRBY")
            .arg(self.keys.analyzed_stats())
            .arg(&article.source.name)
            .arg(1)
            .ignore();
        let mut conn = self.conn.clone();
        p.query_async::<()>(&mut conn).await
    }

    /// `PUBLISH predictions:{SYM}` with the whole prediction document, and the newest one per
    /// symbol and horizon under `prediction:latest:{SYM}:{horizon}`.
    pub async fn prediction(&self, p: &TrendPredictionRecord) -> redis::RedisResult<()> {
        let json = serde_json::to_string(p).map_err(|e| {
            redis::RedisError::from((
                redis::ErrorKind::ClientError,
                "prediction payload",
                e.to_string(),
            ))
        })?;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(self.keys.latest_prediction(&p.symbol, &p.time_horizon))
            .arg(&json)
            .ignore()
            .cmd("PUBLISH")
            .arg(self.keys.predictions_channel(&p.symbol))
            .arg(&json)
            .ignore();
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await
    }
}
