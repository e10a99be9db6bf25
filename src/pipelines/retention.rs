//! The data lifecycle wiring: the stores a pass works on (PostgreSQL for the market tables, the
//! configured document store, Redis for sessions), the RetentionActor on its own arbiter for the
//! daemon, and `tradepipe retention --once/--dry-run`.

use super::resources::Resources;
use crate::actors::retention::{RetentionActor, StopRetention};
use crate::config::{Config, DocumentBackend};
use crate::lifecycle::{Lifecycle, LifecycleStores, PassReport};
use crate::store::mongo::{MongoDocumentStore, MongoRetentionStore};
use crate::store::postgres::PgRetentionStore;
use crate::store::redis::RedisSessionStore;
use crate::store::{RowStore, SessionStore};
use actix::{Addr, Arbiter, Supervisor};
use anyhow::Context as _;
use std::sync::Arc;
use std::time::Duration;

/// The daemon waits this long after start before the first pass, so start-up (migrations,
/// backfill) is not competing with it.
const FIRST_PASS_AFTER: Duration = Duration::from_secs(30);

/// Builds the lifecycle on the configured stores. A pass takes up to three connections of the
/// shared pool: one holds the pass lock for the whole pass, one runs its statements, one is for
/// the summary refresh running beside a pass.
pub async fn lifecycle(cfg: &Config, resources: &Resources) -> anyhow::Result<Lifecycle> {
    let pg = Arc::new(PgRetentionStore::new(resources.pg.clone()));
    let documents: Arc<dyn RowStore> = match cfg.documents.backend {
        DocumentBackend::Postgres => pg.clone(),
        DocumentBackend::Mongodb => {
            let docs = MongoDocumentStore::connect(
                cfg.documents.mongodb_url.expose(),
                &cfg.documents.mongodb_database,
            )
            .await
            .context("connecting to MongoDB")?;
            let mongo = MongoRetentionStore::new(docs.database().clone());
            let ttl = Duration::from_secs(cfg.retention.sessions.max_age_hours * 3600);
            mongo
                .ensure_ttl_indexes(ttl)
                .await
                .context("creating MongoDB's TTL indexes")?;
            Arc::new(mongo)
        }
    };
    let sessions: Arc<dyn SessionStore> = Arc::new(RedisSessionStore::new(
        &cfg.redis.target(),
        &cfg.redis.key_prefix,
    )?);
    Ok(Lifecycle::new(
        cfg.retention.clone(),
        LifecycleStores {
            market: pg.clone(),
            documents,
            maintenance: pg,
            sessions: Some(sessions),
        },
    ))
}

/// `tradepipe retention [--once | --dry-run]`: one pass (migrations applied first), its report.
pub async fn run_once(cfg: &Config, dry_run: bool) -> anyhow::Result<PassReport> {
    let resources = Resources::open(cfg).await?;
    let lifecycle = lifecycle(cfg, &resources).await?;
    let report = lifecycle
        .run_pass(chrono::Utc::now(), dry_run || cfg.retention.dry_run)
        .await
        .context("running the retention pass")?;
    Ok(report)
}

pub(crate) struct RetentionPipeline {
    actor: Addr<RetentionActor>,
    arbiter: Arbiter,
}

impl RetentionPipeline {
    /// `None` when `retention.enabled` is false.
    pub async fn start(
        cfg: &Config,
        resources: &Resources,
    ) -> anyhow::Result<Option<RetentionPipeline>> {
        if !cfg.retention.enabled {
            tracing::info!("retention disabled (retention.enabled = false)");
            return Ok(None);
        }
        let lifecycle = Arc::new(lifecycle(cfg, resources).await?);
        let arbiter = Arbiter::new();
        let actor = Supervisor::start_in_arbiter(&arbiter.handle(), move |_| {
            RetentionActor::new(lifecycle, FIRST_PASS_AFTER)
        });
        tracing::info!(
            every_s = cfg.retention.interval_secs,
            archive_dir = %cfg.retention.archive_dir.display(),
            dry_run = cfg.retention.dry_run,
            "retention running"
        );
        Ok(Some(RetentionPipeline { actor, arbiter }))
    }

    /// First in the shutdown order: retention is not on the data path, and a pass abandoned
    /// part-way is safe (see `lifecycle`).
    pub async fn shutdown(&self) {
        let _ = self.actor.send(StopRetention).await;
        self.arbiter.stop();
    }
}
