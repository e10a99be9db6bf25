//! The connections the pipelines share, opened once and handed out: one PostgreSQL pool sized by
//! `database.max_connections` (the news, analysis and retention stores and the market store's
//! start-up reads all draw from it) and one Redis connection manager (crawl locks and analysis
//! updates), instead of a pool and a connection per pipeline. With `database.read_urls`, a
//! [`ReadRouter`] in front of that pool sends the reads that tolerate lag to read replicas and
//! checks them in the background until the pool is closed.
//!
//! Three connections stay apart on purpose. The market writer and the Redis publisher, the hot
//! path, open theirs on their own arbiter threads, so their sockets are driven by the runtime
//! that uses them and a busy neighbour cannot delay a commit or a PUBLISH. The readiness probes
//! keep one connection each, so `/readyz` does not report PostgreSQL down while the shared pool
//! is merely busy.

use crate::config::Config;
use crate::store;
use crate::store::postgres::ReadRouter;
use anyhow::Context as _;
use redis::aio::ConnectionManager;
use sqlx::PgPool;
use sqlx::migrate::MigrateDatabase;
use std::time::Duration;
use tokio::sync::OnceCell;

pub struct Resources {
    /// The shared pool, connected and migrated.
    pub pg: PgPool,
    /// The same pool, and the read replicas for the reads that tolerate lag.
    pub reads: ReadRouter,
    redis: OnceCell<ConnectionManager>,
    redis_target: crate::config::RedisTarget,
}

impl Resources {
    /// Connects to PostgreSQL (creating the database and applying migrations). Redis is
    /// connected on first use, so a daemon whose pipelines need no shared Redis connection starts
    /// while Redis is away (the publisher reconnects on its own).
    pub async fn open(cfg: &Config) -> anyhow::Result<Resources> {
        let pg = connect_and_migrate(cfg).await?;
        let reads = ReadRouter::connect(pg.clone(), &cfg.database)
            .context("configuring the read replicas (database.read_urls)")?;
        if reads.has_replicas() {
            tokio::spawn(reads.clone().run_checks());
        }
        Ok(Resources {
            pg,
            reads,
            redis: OnceCell::new(),
            redis_target: cfg.redis.target(),
        })
    }

    /// The shared Redis connection manager (multiplexed and reconnecting: clones share it).
    pub async fn redis(&self) -> anyhow::Result<ConnectionManager> {
        let conn = self
            .redis
            .get_or_try_init(|| store::redis::connection_manager(&self.redis_target))
            .await
            .with_context(|| format!("connecting to Redis at {}", self.redis_target))?;
        Ok(conn.clone())
    }

    /// Closes the shared pool once every pipeline has shut down.
    pub async fn close(&self) {
        self.pg.close().await;
    }
}

/// Creates the database when missing (a fresh machine has only `postgres`), then migrates.
/// PostgreSQL may still be starting: retry for a while before giving up.
pub(crate) async fn connect_and_migrate(cfg: &Config) -> anyhow::Result<PgPool> {
    let url = cfg.database.url.expose();
    let mut wait = Duration::from_millis(250);
    let mut tries = 0;
    loop {
        let attempt = async {
            if !sqlx::Postgres::database_exists(url).await? {
                tracing::info!(database = %cfg.database.url, "creating the database");
                sqlx::Postgres::create_database(url).await?;
            }
            Ok::<_, sqlx::Error>(())
        };
        match attempt.await {
            Ok(()) => break,
            Err(e) if tries < 20 => {
                tries += 1;
                tracing::warn!(database = %cfg.database.url, error = %e, "PostgreSQL not reachable yet; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                return Err(e).with_context(|| format!("connecting to {}", cfg.database.url));
            }
        }
    }
    let pool = store::postgres::connect(url, cfg.database.max_connections)
        .await
        .with_context(|| format!("connecting to {}", cfg.database.url))?;
    store::postgres::migrate(&pool)
        .await
        .context("applying migrations")?;
    Ok(pool)
}
