//! The data lifecycle: the seed's retention table as policies, and one pass that enforces them.
//! The RetentionActor runs a pass on a schedule, `tradepipe retention --once/--dry-run` runs one
//! by hand; both only call [`Lifecycle::run_pass`]. Storage is behind the retention traits of
//! `store::contract`.
//!
//! Safety rules a pass keeps:
//! - a row of an archived policy is deleted only after the file holding it and the manifest
//!   entry naming that file are durable, and only in the version that was archived (PostgreSQL
//!   `xmin`): a failure anywhere leaves at worst rows that are archived and not yet deleted,
//!   which the next pass deletes without archiving them twice;
//! - archived policies work by whole UTC days (one file per day), so a row goes once its whole
//!   day is past the policy age; ticks go by whole daily partitions the same way, candles by
//!   whole monthly partitions once a month is past every candle policy (`candle_months`);
//! - deletes are bounded batches, each its own statement; one policy failing does not stop the
//!   others, and is counted.

pub mod archive;
mod candle_months;

use crate::config::{AgePolicy, RetentionConfig};
use crate::store::{
    MarketMaintenance, Resolved, RowStore, RowTarget, RowVersion, SessionStore, StoreError,
};
use archive::{Archive, DayArchive};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

/// What can stop a pass: a store, or the archive files this module writes.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("archive {path}: {source}")]
    Archive {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("archive manifest {path}: {message}")]
    Manifest { path: String, message: String },
}

impl RetentionError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        RetentionError::Archive {
            path: path.display().to_string(),
            source,
        }
    }
}

/// Rows read per export statement.
const EXPORT_PAGE: usize = 10_000;

/// Which store a row policy's table lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Home {
    /// The market tables: always PostgreSQL.
    Market,
    /// The document store: PostgreSQL JSONB or MongoDB.
    Documents,
}

#[derive(Debug, Clone)]
pub enum PolicyKind {
    Ticks,
    Rows { target: RowTarget, home: Home },
    Sessions,
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub name: &'static str,
    pub kind: PolicyKind,
    pub max_age: Duration,
    pub archive: bool,
}

fn policy(name: &'static str, kind: PolicyKind, p: &AgePolicy) -> Policy {
    Policy {
        name,
        kind,
        max_age: Duration::hours(p.max_age_hours as i64),
        archive: p.archive,
    }
}

/// The seed's table, in the order a pass applies it: analysis results before the articles they
/// may reference, articles before the raw pages they point to.
pub fn policies(cfg: &RetentionConfig) -> Vec<Policy> {
    let rows = |table, time_columns, time_fallback, filter, home| PolicyKind::Rows {
        target: RowTarget {
            table,
            time_columns,
            time_fallback,
            filter,
        },
        home,
    };
    vec![
        policy("ticks", PolicyKind::Ticks, &cfg.ticks),
        policy(
            "candles_1m",
            rows(
                "trading.price_candles",
                &["open_time"],
                None,
                Some("interval = '1m'"),
                Home::Market,
            ),
            &cfg.candles_1m,
        ),
        policy(
            "candles_5m_plus",
            rows(
                "trading.price_candles",
                &["open_time"],
                None,
                Some("interval <> '1m'"),
                Home::Market,
            ),
            &cfg.candles_5m_plus,
        ),
        policy(
            "analysis_results",
            rows(
                "content.analysis_results",
                &["analyzed_at", "created_at"],
                None,
                None,
                Home::Documents,
            ),
            &cfg.analysis_results,
        ),
        policy(
            "articles",
            // An article whose analysis is still kept stays too: deleting it would cascade to
            // the analysis (ON DELETE CASCADE, migration 0006) without archiving it. Articles
            // and analyses share the 3-year age, and analyses go first, so this only holds back
            // an old article analysed late, until its analysis ages out.
            rows(
                "content.articles",
                &["published_at"],
                Some("crawled_at"),
                Some(
                    "NOT EXISTS (SELECT 1 FROM content.analysis_results r WHERE r.article_id = t.id)",
                ),
                Home::Documents,
            ),
            &cfg.articles,
        ),
        policy(
            "raw_articles",
            rows(
                "content.raw_articles",
                &["crawled_at"],
                None,
                None,
                Home::Documents,
            ),
            &cfg.raw_articles,
        ),
        policy("sessions", PolicyKind::Sessions, &cfg.sessions),
    ]
}

/// What a pass did (or, in a dry run, would do) for one policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyReport {
    pub policy: &'static str,
    /// Why the policy did nothing (its table does not exist, a TTL index does the work).
    pub skipped: Option<String>,
    /// Rows older than the cutoff (the rows a dry run would archive and remove).
    pub cutoff: Option<DateTime<Utc>>,
    pub rows_archived: u64,
    pub files_written: u64,
    pub rows_removed: u64,
    pub partitions_dropped: u64,
    pub partitions_created: u64,
    /// Session keys that had no TTL and got one.
    pub ttl_set: u64,
    pub analyzed: bool,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct PassReport {
    pub dry_run: bool,
    /// Another instance held the pass lock: nothing was done.
    pub locked_out: bool,
    pub policies: Vec<PolicyReport>,
    pub seconds: f64,
}

impl PassReport {
    pub fn failures(&self) -> usize {
        self.policies.iter().filter(|p| p.error.is_some()).count()
    }
}

impl fmt::Display for PassReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.locked_out {
            return writeln!(f, "another instance is running retention; nothing done");
        }
        let (archived, removed) = if self.dry_run {
            ("would archive", "would remove")
        } else {
            ("archived", "removed")
        };
        for p in &self.policies {
            write!(f, "{:<17}", p.policy)?;
            if let Some(why) = &p.skipped {
                writeln!(f, "skipped: {why}")?;
                continue;
            }
            if let Some(c) = p.cutoff {
                write!(f, "older than {} ", c.format("%Y-%m-%dT%H:%M:%SZ"))?;
            }
            match p.policy {
                "ticks" => write!(
                    f,
                    "{removed} {} partitions ({} rows), {} partitions created ahead",
                    p.partitions_dropped, p.rows_removed, p.partitions_created
                )?,
                "sessions" => write!(f, "session keys without TTL: {}", p.ttl_set)?,
                candle_months::STEP => write!(
                    f,
                    "{removed} {} month partitions whole (their rows are counted under their policies), {} created ahead",
                    p.partitions_dropped, p.partitions_created
                )?,
                _ => write!(
                    f,
                    "{archived} {} rows ({} files), {removed} {} rows{}",
                    p.rows_archived,
                    p.files_written,
                    p.rows_removed,
                    if p.analyzed { ", analyzed" } else { "" }
                )?,
            }
            match &p.error {
                Some(e) => writeln!(f, "  FAILED: {e}")?,
                None => writeln!(f)?,
            }
        }
        writeln!(f, "pass took {:.3}s", self.seconds)
    }
}

/// The stores a pass works on.
pub struct LifecycleStores {
    pub market: Arc<dyn RowStore>,
    pub documents: Arc<dyn RowStore>,
    pub maintenance: Arc<dyn MarketMaintenance>,
    /// None: no Redis configured for sessions (the policy is skipped).
    pub sessions: Option<Arc<dyn SessionStore>>,
}

pub struct Lifecycle {
    cfg: RetentionConfig,
    stores: LifecycleStores,
    archive: Archive,
    policies: Vec<Policy>,
}

fn start_of_day(t: DateTime<Utc>) -> DateTime<Utc> {
    t.date_naive().and_time(NaiveTime::MIN).and_utc()
}

fn day_start(d: NaiveDate) -> DateTime<Utc> {
    d.and_time(NaiveTime::MIN).and_utc()
}

/// Rows of `p` older than this go. Archived policies work by whole days: one file per day,
/// never a partial day.
fn cutoff(p: &Policy, now: DateTime<Utc>) -> DateTime<Utc> {
    if p.archive {
        start_of_day(now - p.max_age)
    } else {
        now - p.max_age
    }
}

/// Runs archive file work (reads, gzip, fsync) on the blocking pool: a pass runs on an async
/// thread (the RetentionActor's arbiter, the CLI's runtime) that must stay free for its other
/// work while the disk is slow.
async fn on_disk<T: Send + 'static>(
    archive: &Archive,
    work: impl FnOnce() -> Result<T, RetentionError> + Send + 'static,
) -> Result<T, RetentionError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| RetentionError::io(archive.dir(), std::io::Error::other(e)))?
}

impl Lifecycle {
    pub fn new(cfg: RetentionConfig, stores: LifecycleStores) -> Self {
        Lifecycle {
            archive: Archive::new(cfg.archive_dir.clone()),
            policies: policies(&cfg),
            cfg,
            stores,
        }
    }

    pub fn archive(&self) -> &Archive {
        &self.archive
    }

    pub fn config(&self) -> &RetentionConfig {
        &self.cfg
    }

    /// One pass over every policy as of `now`. Errors of one policy are reported (and counted)
    /// in its [`PolicyReport`]; `Err` only when the pass could not start at all.
    pub async fn run_pass(
        &self,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<PassReport, RetentionError> {
        let started = Instant::now();
        let mut report = PassReport {
            dry_run,
            ..PassReport::default()
        };
        let Some(lock) = self.stores.maintenance.try_lock_pass().await? else {
            tracing::info!("retention pass skipped: another instance holds the lock");
            report.locked_out = true;
            return Ok(report);
        };
        // What the candle month step did for each candle policy, handed to that policy's report.
        let mut months: Option<candle_months::MonthsOutcome> = None;
        for p in &self.policies {
            if months.is_none() && candle_months::is_candle_policy(p) {
                // Before the candle policies' row deletes: a month dropped whole is not deleted
                // row by row first.
                let outcome = self.candle_months(now, dry_run).await;
                self.record(&outcome.step, dry_run);
                report.policies.push(outcome.step.clone());
                months = Some(outcome);
            }
            let mut r = months
                .as_mut()
                .and_then(|m| m.take(p.name))
                .unwrap_or_else(|| PolicyReport {
                    policy: p.name,
                    ..PolicyReport::default()
                });
            let res = match &p.kind {
                PolicyKind::Ticks => self.ticks(p, now, dry_run, &mut r).await,
                PolicyKind::Rows { target, home } => {
                    self.rows(p, target, *home, now, dry_run, &mut r).await
                }
                PolicyKind::Sessions => self.sessions(p, dry_run, &mut r).await,
            };
            if let Err(e) = res {
                metrics::counter!("tradepipe_retention_failures_total", "policy" => p.name)
                    .increment(1);
                tracing::error!(policy = p.name, error = %e, "retention policy failed; the next pass continues where this one stopped");
                r.error = Some(e.to_string());
            }
            self.record(&r, dry_run);
            report.policies.push(r);
        }
        lock.release().await;
        report.seconds = started.elapsed().as_secs_f64();
        if !dry_run {
            metrics::histogram!("tradepipe_retention_pass_seconds").record(report.seconds);
            if report.failures() == 0 {
                metrics::gauge!("tradepipe_retention_last_success_timestamp_seconds")
                    .set(Utc::now().timestamp() as f64);
            }
        }
        Ok(report)
    }

    /// Counts and logs what a policy (or the candle month step) did.
    fn record(&self, r: &PolicyReport, dry_run: bool) {
        if !dry_run {
            metrics::counter!("tradepipe_retention_rows_archived_total", "policy" => r.policy)
                .increment(r.rows_archived);
            metrics::counter!("tradepipe_retention_rows_removed_total", "policy" => r.policy)
                .increment(r.rows_removed);
            metrics::counter!("tradepipe_retention_partitions_dropped_total")
                .increment(r.partitions_dropped);
        }
        if let Some(why) = &r.skipped {
            tracing::info!(policy = r.policy, reason = %why, "retention policy skipped");
        } else {
            tracing::info!(
                policy = r.policy,
                dry_run,
                rows_archived = r.rows_archived,
                files = r.files_written,
                rows_removed = r.rows_removed,
                partitions_dropped = r.partitions_dropped,
                "retention policy applied"
            );
        }
    }

    async fn ticks(
        &self,
        p: &Policy,
        now: DateTime<Utc>,
        dry_run: bool,
        r: &mut PolicyReport,
    ) -> Result<(), RetentionError> {
        let m = &self.stores.maintenance;
        let cutoff = now - p.max_age;
        r.cutoff = Some(cutoff);
        for part in m.tick_partitions().await? {
            // The partition holds [day, day + 1): all of it is past the policy once its end is.
            if day_start(part.day) + Duration::days(1) > cutoff {
                continue;
            }
            r.rows_removed += m.partition_rows(&part).await?;
            if !dry_run {
                m.drop_tick_partition(&part).await?;
                tracing::info!(partition = %part.name, "tick partition dropped");
            }
            r.partitions_dropped += 1;
        }
        let ahead = self.cfg.tick_partitions_ahead_days;
        if !dry_run && ahead > 0 {
            m.ensure_tick_partitions(now.date_naive(), ahead).await?;
            r.partitions_created = ahead as u64;
        }
        Ok(())
    }

    fn row_store(&self, home: Home) -> &Arc<dyn RowStore> {
        match home {
            Home::Market => &self.stores.market,
            Home::Documents => &self.stores.documents,
        }
    }

    async fn rows(
        &self,
        p: &Policy,
        target: &RowTarget,
        home: Home,
        now: DateTime<Utc>,
        dry_run: bool,
        r: &mut PolicyReport,
    ) -> Result<(), RetentionError> {
        let store = self.row_store(home);
        if let Some(why) = store.managed_by_ttl(target) {
            r.skipped = Some(why);
            return Ok(());
        }
        let Some(resolved) = store.resolve(target).await? else {
            r.skipped = Some(format!(
                "{} does not exist ({})",
                target.table,
                store.backend()
            ));
            return Ok(());
        };
        let cutoff = cutoff(p, now);
        r.cutoff = Some(cutoff);
        if dry_run {
            let n = store.count_before(&resolved, cutoff).await?;
            if p.archive {
                r.rows_archived = n;
            }
            r.rows_removed = n;
            return Ok(());
        }
        let before = store.estimated_rows(&resolved).await?;
        if p.archive {
            let (archive, policy) = (self.archive.clone(), p.name);
            on_disk(&self.archive, move || archive.remove_temporaries(policy)).await?;
            for day in store.days_before(&resolved, cutoff).await? {
                self.archive_day(p, store.as_ref(), &resolved, day, r, true)
                    .await?;
            }
        } else {
            loop {
                let n = store
                    .delete_before(&resolved, cutoff, self.cfg.batch_size)
                    .await?;
                r.rows_removed += n;
                if n < self.cfg.batch_size as u64 {
                    break;
                }
            }
        }
        // After removing a large share the planner's statistics are off; autovacuum would get
        // there eventually, but queries in between would plan for rows that are gone.
        if r.rows_removed > 0
            && (before == 0 || r.rows_removed as f64 >= self.cfg.analyze_fraction * before as f64)
        {
            store.analyze(&resolved).await?;
            r.analyzed = true;
        }
        Ok(())
    }

    /// Archives one day of a policy's rows, then (with `delete`) deletes exactly the archived row
    /// versions. Returns how many rows the day holds (archived now or by an earlier pass). The
    /// archive's file work runs on the blocking pool (see [`on_disk`]).
    async fn archive_day(
        &self,
        p: &Policy,
        store: &dyn RowStore,
        resolved: &Resolved,
        day: NaiveDate,
        r: &mut PolicyReport,
        delete: bool,
    ) -> Result<u64, RetentionError> {
        let (from, to) = (day_start(day), day_start(day) + Duration::days(1));
        let (archive, policy, table) = (self.archive.clone(), p.name, resolved.target.table);
        // Rows an interrupted pass already archived (same content) are deleted without being
        // written a second time.
        let mut file = on_disk(&self.archive, move || {
            DayArchive::open(archive, policy, table, day)
        })
        .await?;
        let mut versions: Vec<RowVersion> = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .export(resolved, from, to, after.as_ref(), EXPORT_PAGE)
                .await?;
            let full = page.len() == EXPORT_PAGE;
            after = page.last().cloned();
            let mut lines = Vec::with_capacity(page.len());
            for row in page {
                versions.push(row.id);
                lines.push(row.json);
            }
            file = on_disk(&self.archive, move || {
                file.write(&lines)?;
                Ok(file)
            })
            .await?;
            if !full {
                break;
            }
        }
        if let Some(entry) = on_disk(&self.archive, move || file.commit()).await? {
            r.rows_archived += entry.rows;
            r.files_written += 1;
            tracing::debug!(policy = p.name, file = %entry.file, rows = entry.rows, "archived");
        }
        if delete {
            for batch in versions.chunks(self.cfg.batch_size) {
                r.rows_removed += store.delete_versions(resolved, batch).await?;
            }
        }
        Ok(versions.len() as u64)
    }

    async fn sessions(
        &self,
        p: &Policy,
        dry_run: bool,
        r: &mut PolicyReport,
    ) -> Result<(), RetentionError> {
        let Some(s) = &self.stores.sessions else {
            r.skipped = Some("no session store".into());
            return Ok(());
        };
        let ttl = p.max_age.num_seconds().max(1) as u64;
        r.ttl_set = s.expire_sessions(ttl, !dry_run).await?;
        Ok(())
    }

    /// Refreshes `trading.symbol_summary` without blocking its readers.
    pub(crate) async fn refresh_summary(&self) -> Result<(), RetentionError> {
        Ok(self.stores.maintenance.refresh_symbol_summary().await?)
    }
}
