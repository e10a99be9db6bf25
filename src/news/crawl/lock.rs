//! The per-source crawl lock on Redis, so that one instance crawls a source at a time (several
//! daemons, or a restarted actor while its predecessor's round still runs, would otherwise fetch
//! every page twice and double the load on the site).
//!
//! `SET {prefix}lock:crawler:{source} {owner} NX EX ttl` takes it; releasing and extending are
//! compare-and-act Lua scripts, so an instance whose lock expired and was taken over can never
//! delete or prolong the new owner's lock. The TTL bounds how long a crashed owner blocks others.

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;

/// Deletes the key only while it still holds our owner id.
const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

/// Resets the TTL only while the key still holds our owner id.
const EXTEND: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"#;

#[derive(Debug, thiserror::Error)]
#[error("crawl lock {key}: {source}")]
pub struct LockError {
    pub key: String,
    #[source]
    pub source: redis::RedisError,
}

/// Takes per-source crawl locks. Cheap to clone (the connection manager is shared).
#[derive(Clone)]
pub struct CrawlLock {
    conn: ConnectionManager,
    key_prefix: String,
}

impl CrawlLock {
    /// Connects with short timeouts: a dead Redis must cost a crawl round a second, not a minute.
    pub async fn connect(
        target: &crate::config::RedisTarget,
        key_prefix: &str,
    ) -> Result<CrawlLock, LockError> {
        let err = |source| LockError {
            key: format!("{key_prefix}lock:crawler:*"),
            source,
        };
        let client = target.client().map_err(err)?;
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(1))
            .set_response_timeout(Duration::from_secs(2))
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_with_config(client, cfg)
            .await
            .map_err(err)?;
        Ok(CrawlLock::new(conn, key_prefix))
    }

    /// `key_prefix` is the deployment's Redis prefix (`redis.key_prefix`; unique per test).
    pub fn new(conn: ConnectionManager, key_prefix: &str) -> CrawlLock {
        CrawlLock {
            conn,
            key_prefix: key_prefix.to_string(),
        }
    }

    /// The shared connection (the crawler also counts articles on it).
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    pub(crate) fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    pub fn key(&self, source: &str) -> String {
        format!("{}lock:crawler:{source}", self.key_prefix)
    }

    /// Takes the lock for `source` unless someone holds it (`Ok(None)`). A TTL under one second
    /// is rounded up to one (EX counts whole seconds).
    pub async fn try_acquire(
        &self,
        source: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<LockGuard>, LockError> {
        let key = self.key(source);
        let secs = ttl.as_secs().max(1);
        let mut conn = self.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(owner)
            .arg("NX")
            .arg("EX")
            .arg(secs)
            .query_async(&mut conn)
            .await
            .map_err(|source| LockError {
                key: key.clone(),
                source,
            })?;
        Ok(set.map(|_| LockGuard {
            conn: self.conn.clone(),
            key,
            owner: owner.to_string(),
        }))
    }

    /// Who holds the lock for `source`, if anyone (for logs and tests).
    pub async fn holder(&self, source: &str) -> Result<Option<String>, LockError> {
        let key = self.key(source);
        let mut conn = self.conn.clone();
        redis::cmd("GET")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .map_err(|source| LockError { key, source })
    }

    /// Releases `source`'s lock if `owner` holds it; true when something was deleted. This is the
    /// primitive behind [`LockGuard::release`], public so that a non-owner's attempt is testable.
    pub async fn release_as(&self, source: &str, owner: &str) -> Result<bool, LockError> {
        release(&self.conn, &self.key(source), owner).await
    }
}

/// A held lock. Dropping it without [`LockGuard::release`] leaves the key to expire with its TTL
/// (there is no async drop); the crawler always releases explicitly.
pub struct LockGuard {
    conn: ConnectionManager,
    key: String,
    owner: String,
}

impl LockGuard {
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Prolongs the lock to `ttl` from now; false when it is no longer ours (it expired, maybe
    /// taken over), in which case the caller must stop crawling.
    pub async fn extend(&self, ttl: Duration) -> Result<bool, LockError> {
        let ms = ttl.as_millis().max(1) as u64;
        let mut conn = self.conn.clone();
        let n: i64 = redis::Script::new(EXTEND)
            .key(&self.key)
            .arg(&self.owner)
            .arg(ms)
            .invoke_async(&mut conn)
            .await
            .map_err(|source| LockError {
                key: self.key.clone(),
                source,
            })?;
        Ok(n == 1)
    }

    /// Deletes the lock if it is still ours; true when it was.
    pub async fn release(self) -> Result<bool, LockError> {
        release(&self.conn, &self.key, &self.owner).await
    }
}

async fn release(conn: &ConnectionManager, key: &str, owner: &str) -> Result<bool, LockError> {
    let mut conn = conn.clone();
    let n: i64 = redis::Script::new(RELEASE)
        .key(key)
        .arg(owner)
        .invoke_async(&mut conn)
        .await
        .map_err(|source| LockError {
            key: key.to_string(),
            source,
        })?;
    Ok(n == 1)
}
