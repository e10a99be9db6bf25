//! Sessions live in Redis (`{prefix}session:*`, written by the platform's API) and expire by TTL,
//! as the seed wants (24 hours). Whatever session key was written without a TTL would live
//! forever; the retention pass finds those with SCAN (incremental, never KEYS) and gives them one.

use crate::config::RedisTarget;
use crate::store::{SessionStore, StoreError};
use redis::AsyncCommands;

pub struct RedisSessionStore {
    client: redis::Client,
    pattern: String,
}

impl RedisSessionStore {
    pub fn new(target: &RedisTarget, key_prefix: &str) -> Result<Self, StoreError> {
        let client = target
            .client()
            .map_err(redis_err("opening the Redis client for sessions"))?;
        Ok(RedisSessionStore {
            client,
            pattern: format!("{key_prefix}session:*"),
        })
    }
}

fn redis_err(context: &str) -> impl FnOnce(redis::RedisError) -> StoreError + '_ {
    move |source| StoreError::Backend {
        context: context.to_string(),
        source: source.into(),
    }
}

#[async_trait::async_trait]
impl SessionStore for RedisSessionStore {
    async fn expire_sessions(&self, ttl_secs: u64, apply: bool) -> Result<u64, StoreError> {
        let mut conn = self
            .client
            .get_multiplexed_async_connection()
            .await
            .map_err(redis_err("connecting to Redis for sessions"))?;
        let mut keys = Vec::new();
        {
            let mut iter = conn
                .scan_match::<_, String>(&self.pattern)
                .await
                .map_err(redis_err("scanning session keys"))?;
            while let Some(k) = futures_util::StreamExt::next(&mut iter).await {
                keys.push(k);
            }
        }
        let mut fixed = 0;
        for chunk in keys.chunks(500) {
            let mut ttl = redis::pipe();
            for k in chunk {
                ttl.ttl(k);
            }
            let ttls: Vec<i64> = ttl
                .query_async(&mut conn)
                .await
                .map_err(redis_err("reading session TTLs"))?;
            // -1: exists without TTL (-2: gone meanwhile).
            let missing: Vec<&String> = chunk
                .iter()
                .zip(&ttls)
                .filter(|(_, t)| **t == -1)
                .map(|(k, _)| k)
                .collect();
            fixed += missing.len() as u64;
            if apply && !missing.is_empty() {
                let mut exp = redis::pipe();
                for k in missing {
                    exp.expire(k, ttl_secs as i64).ignore();
                }
                exp.query_async::<()>(&mut conn)
                    .await
                    .map_err(redis_err("setting session TTLs"))?;
            }
        }
        Ok(fixed)
    }
}
