//! The contract between the daemon and its stores, in one place: the traits (what a pipeline
//! needs, not what a driver offers), the plain types they exchange, and the checks every backend
//! applies the same way before anything is written. The backends (`postgres/`, `mongo/`,
//! `redis/`) implement these and never import each other.
//!
//! The document store is also the work queue. A raw article is claimed (PENDING -> PROCESSING
//! with a lease) before it is normalized, and completing it inserts the article and marks the raw
//! page COMPLETED; a claim whose lease ran out (the process died) is handed out again. Because the
//! article insert is keyed on `url_hash`, a page normalized twice after such a crash still yields
//! one article. Articles are the analysis queue the same way, and analysis results are unique per
//! article, so an article whose lease ran out under a slow worker is still analysed into one
//! result, never two.

use super::StoreError;
use crate::domain::{
    Article, Candle, MarketBatch, NewsSource, ProcessingStatus, RawArticle, SymbolInfo,
};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use std::collections::HashSet;
use std::time::Duration;
use tradepipe_model::record::{ActualOutcome, AnalysisRecord, Evidence, TrendPredictionRecord};

// ---------------------------------------------------------------------------------------------
// Market data

/// Where market data is persisted. Implementations must make `write_batch` atomic and idempotent:
/// the writer retries a failed batch and replays spooled batches, so the same batch may arrive
/// more than once and must never duplicate ticks or move a candle backwards.
#[async_trait::async_trait]
pub trait MarketStore: Send + Sync + 'static {
    /// Persist a batch atomically: ticks (deduplicated on (symbol, trade_id)) and candle upserts in
    /// ONE transaction.
    async fn write_batch(&self, batch: &MarketBatch) -> Result<WriteStats, StoreError>;
    /// Latest stored candle per interval for a symbol (for CandleBook::restore) and the resume
    /// trade id (the lowest last_trade_id those reach).
    async fn resume_state(&self, symbol: &str) -> Result<ResumeState, StoreError>;
    async fn upsert_symbols(&self, symbols: &[SymbolInfo]) -> Result<(), StoreError>;
    /// Make sure the tick partitions for `days` UTC days starting at `from_day` exist.
    async fn ensure_tick_partitions(
        &self,
        from_day: chrono::NaiveDate,
        days: u32,
    ) -> Result<(), StoreError>;
    async fn ping(&self) -> Result<(), StoreError>;
}

/// What one `write_batch` did, for metrics and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Ticks that were new.
    pub ticks_inserted: u64,
    /// Ticks already stored (replay, retry or overlapping batches) and therefore skipped.
    pub ticks_duplicate: u64,
    /// Candle rows inserted or updated. A candle state older than the stored one (smaller
    /// `last_trade_id`) is skipped and not counted.
    pub candles_upserted: u64,
}

/// What a restarting feed needs to continue exactly where the stored data ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResumeState {
    /// The most recent stored candle (by open time) of every interval that has one.
    pub latest_candles: Vec<Candle>,
    /// The lowest of the intervals' newest folded trade ids: every interval holds the trades up
    /// to it, so the feed resumes after it (see `CandleBook::resume_after`). `None` when nothing
    /// with trades is stored for the symbol.
    pub last_trade_id: Option<u64>,
}

// ---------------------------------------------------------------------------------------------
// Market prices (what the PredictionActor reads of stored candles)

#[async_trait::async_trait]
pub trait PriceHistory: Send + Sync + 'static {
    /// End time and close of the newest closed 1m candle of `symbol`.
    async fn latest_close(
        &self,
        symbol: &str,
    ) -> Result<Option<(DateTime<Utc>, Decimal)>, StoreError>;
    /// End time and close of the newest closed 1m candle ending at or before `at`.
    async fn close_at(
        &self,
        symbol: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<(DateTime<Utc>, Decimal)>, StoreError>;
    /// Closes of the closed 1m candles ending in `(from, to]`, oldest first.
    async fn minute_closes(
        &self,
        symbol: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Decimal>, StoreError>;
}

// ---------------------------------------------------------------------------------------------
// Documents: sources, raw pages, articles

/// What a crawler, a normalizer (and later the analysis actors) need from the store, nothing more.
#[async_trait::async_trait]
pub trait DocumentStore: Send + Sync + 'static {
    /// Creates collections/indexes (MongoDB) or checks the schema (PostgreSQL). Idempotent.
    async fn prepare(&self) -> Result<(), StoreError>;

    /// Upserts by `name`; keeps `last_crawled_at` and `created_at` of existing sources.
    async fn upsert_sources(&self, sources: &[NewsSource]) -> Result<(), StoreError>;
    async fn source(&self, name: &str) -> Result<Option<NewsSource>, StoreError>;
    async fn mark_crawled(&self, source: &str, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// Which of these url hashes are already stored as raw articles (the crawler fetches only
    /// what is new).
    async fn known_url_hashes(&self, hashes: &[String]) -> Result<HashSet<String>, StoreError>;
    /// Stores a fetched page once: returns false (and stores nothing) when its `url_hash` is
    /// already known. The returned id is the store's.
    async fn insert_raw_article(&self, raw: &RawArticle) -> Result<Option<String>, StoreError>;
    async fn raw_article(&self, id: &str) -> Result<Option<RawArticle>, StoreError>;

    /// Claims up to `limit` raw articles that are PENDING, or PROCESSING with an expired lease,
    /// oldest first, marking them PROCESSING until now + `lease`. Two concurrent callers never
    /// get the same article while its lease runs.
    async fn claim_raw_articles(
        &self,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<RawArticle>, StoreError>;
    /// Inserts the normalized article (once per `url_hash`) and marks the raw article COMPLETED.
    /// Returns the article id (the existing one if the article was already stored).
    async fn complete_raw_article(
        &self,
        raw_id: &str,
        article: &Article,
    ) -> Result<String, StoreError>;
    /// Records a failure: retry_count + 1 and the error; back to PENDING while
    /// retry_count < max_retries, else FAILED for good.
    async fn fail_raw_article(
        &self,
        raw_id: &str,
        error: &str,
        max_retries: u32,
    ) -> Result<(), StoreError>;

    async fn article_by_url_hash(&self, url_hash: &str) -> Result<Option<Article>, StoreError>;
    /// Number of raw articles per processing status and of articles (for tests and metrics).
    async fn counts(&self) -> Result<StoreCounts, StoreError>;
    async fn ping(&self) -> Result<(), StoreError>;
}

/// The contract of `complete_raw_article`, the same for every store: the article's dedup key is
/// a SHA-256 hex digest, and an article that names its raw page names the one being completed.
pub(crate) fn check_completion(raw_id: &str, article: &Article) -> Result<(), StoreError> {
    validate_url_hash(&article.url_hash)?;
    if !article.raw_article_id.is_empty() && article.raw_article_id != raw_id {
        return Err(StoreError::Invalid(format!(
            "article {} names raw article {} but completes {raw_id}",
            article.url, article.raw_article_id
        )));
    }
    Ok(())
}

/// `url_hash` is the dedup key in every store: SHA-256 as 64 lower-case hex digits, so two
/// spellings of one hash can never both be stored (PostgreSQL also has a CHECK for it; MongoDB
/// relies on this).
pub(crate) fn validate_url_hash(hash: &str) -> Result<(), StoreError> {
    if hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "url_hash must be 64 lower-case hex digits (SHA-256), got {hash:?}"
        )))
    }
}

/// A processing status as every store spells it.
pub(crate) fn status_from_str(s: &str) -> Option<ProcessingStatus> {
    match s {
        "PENDING" => Some(ProcessingStatus::Pending),
        "PROCESSING" => Some(ProcessingStatus::Processing),
        "COMPLETED" => Some(ProcessingStatus::Completed),
        "FAILED" => Some(ProcessingStatus::Failed),
        _ => None,
    }
}

/// The counter of a queue status among `[pending, processing, completed, failed]`, for filling
/// counts from a GROUP BY on a status column (`what` names it in the error). Shared by the raw
/// page counts and the analysis queue counts of both stores.
pub(crate) fn status_slot<'a>(
    slots: [&'a mut u64; 4],
    status: &str,
    what: &str,
    context: &str,
) -> Result<&'a mut u64, StoreError> {
    use ProcessingStatus as S;
    let [pending, processing, completed, failed] = slots;
    match status_from_str(status) {
        Some(S::Pending) => Ok(pending),
        Some(S::Processing) => Ok(processing),
        Some(S::Completed) => Ok(completed),
        Some(S::Failed) => Ok(failed),
        None => Err(StoreError::corrupt(
            context,
            format!("unknown {what} {status:?}"),
        )),
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreCounts {
    pub raw_pending: u64,
    pub raw_processing: u64,
    pub raw_completed: u64,
    pub raw_failed: u64,
    pub articles: u64,
}

impl StoreCounts {
    /// Records `n` raw pages with processing status `status` (as stored).
    pub(crate) fn set_raw_status(
        &mut self,
        status: &str,
        n: u64,
        context: &str,
    ) -> Result<(), StoreError> {
        let slots = [
            &mut self.raw_pending,
            &mut self.raw_processing,
            &mut self.raw_completed,
            &mut self.raw_failed,
        ];
        *status_slot(slots, status, "processing_status", context)? = n;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Analysis: the article analysis queue, analysis results, trend predictions

#[async_trait::async_trait]
pub trait AnalysisStore: Send + Sync + 'static {
    /// Claims up to `limit` articles whose analysis is PENDING, or PROCESSING with an expired
    /// lease, oldest first, marking them PROCESSING until now + `lease`.
    async fn claim_articles_for_analysis(
        &self,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Article>, StoreError>;
    /// Stores the result and marks the article COMPLETED, atomically. Returns `false` (and
    /// changes nothing) when the article already has a result: it was analysed once already.
    async fn complete_analysis(&self, record: &AnalysisRecord) -> Result<bool, StoreError>;
    /// Marks the article FAILED with the error (not retried: the analysis is deterministic).
    /// An article that is already COMPLETED stays so.
    async fn fail_analysis(&self, article_id: &str, error: &str) -> Result<(), StoreError>;
    async fn analysis_for_article(
        &self,
        article_id: &str,
    ) -> Result<Option<AnalysisRecord>, StoreError>;
    /// Analyses stored at or after `since` of articles tagged with `symbol` or naming it in an
    /// entity, with their source's reliability.
    async fn recent_evidence(
        &self,
        symbol: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<Evidence>, StoreError>;

    /// Inserts a prediction; `None` when one for the same (symbol, time_horizon,
    /// prediction_time) exists (no new market data since the last one).
    async fn insert_prediction(
        &self,
        p: &TrendPredictionRecord,
    ) -> Result<Option<String>, StoreError>;
    /// Unscored predictions whose horizon ended at or before `market_time` for their symbol
    /// (`due_at <= market_time`), oldest first.
    async fn due_predictions(
        &self,
        symbol: &str,
        market_time: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<TrendPredictionRecord>, StoreError>;
    /// Fills `actual_outcome` and `accuracy_score` once: `false` when it was already scored.
    async fn score_prediction(
        &self,
        id: &str,
        outcome: &ActualOutcome,
        accuracy: f64,
    ) -> Result<bool, StoreError>;
    /// The newest predictions of a symbol (all horizons when `horizon` is `None`), newest first;
    /// with `scored_only` just those with an outcome.
    async fn predictions(
        &self,
        symbol: &str,
        horizon: Option<&str>,
        scored_only: bool,
        limit: usize,
    ) -> Result<Vec<TrendPredictionRecord>, StoreError>;
    async fn analysis_counts(&self) -> Result<AnalysisCounts, StoreError>;
}

/// Articles per analysis status and stored documents (for tests, metrics and the progress line).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnalysisCounts {
    pub pending: u64,
    pub processing: u64,
    pub completed: u64,
    pub failed: u64,
    pub results: u64,
    pub predictions: u64,
    pub predictions_scored: u64,
}

/// Both stores in one handle: the news pipeline's and the analysis pipeline's views of the same
/// backend.
pub trait FullDocumentStore: DocumentStore + AnalysisStore {}
impl<T: DocumentStore + AnalysisStore> FullDocumentStore for T {}

/// Analysis results must name their article and come from a known model; checked the same way
/// by every store before anything is written.
pub(crate) fn check_record(record: &AnalysisRecord) -> Result<(), StoreError> {
    if record.article_id.is_empty() {
        return Err(StoreError::Invalid(
            "analysis result without an article id".into(),
        ));
    }
    if record.analysis.model_version.is_empty() {
        return Err(StoreError::Invalid(format!(
            "analysis of article {} has no model_version",
            record.article_id
        )));
    }
    let score = record.analysis.sentiment.score;
    if !score.is_finite() || !(-1.0..=1.0).contains(&score) {
        return Err(StoreError::Invalid(format!(
            "analysis of article {}: sentiment score {score} outside -1..1",
            record.article_id
        )));
    }
    Ok(())
}

/// An accuracy score is a share: 0..1.
pub(crate) fn check_accuracy(id: &str, accuracy: f64) -> Result<(), StoreError> {
    if !accuracy.is_finite() || !(0.0..=1.0).contains(&accuracy) {
        return Err(StoreError::Invalid(format!(
            "accuracy {accuracy} of prediction {id} outside 0..1"
        )));
    }
    Ok(())
}

impl AnalysisCounts {
    /// Records `n` articles with analysis status `status` (as stored); an unknown status is an
    /// error naming `context`.
    pub(crate) fn set_status(
        &mut self,
        status: &str,
        n: u64,
        context: &str,
    ) -> Result<(), StoreError> {
        let slots = [
            &mut self.pending,
            &mut self.processing,
            &mut self.completed,
            &mut self.failed,
        ];
        *status_slot(slots, status, "analysis_status", context)? = n;
        Ok(())
    }
}

pub(crate) fn check_prediction(p: &TrendPredictionRecord) -> Result<(), StoreError> {
    if p.symbol.is_empty() || p.horizon_seconds <= 0 {
        return Err(StoreError::Invalid(format!(
            "prediction needs a symbol and a positive horizon (got {:?}, {} s)",
            p.symbol, p.horizon_seconds
        )));
    }
    let c = p.prediction.confidence;
    if !c.is_finite() || !(0.0..=1.0).contains(&c) {
        return Err(StoreError::Invalid(format!(
            "prediction for {}: confidence {c} outside 0..1",
            p.symbol
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Retention: what the data lifecycle needs of each backend

/// A table (PostgreSQL) or collection (MongoDB) a row policy applies to. Everything here is
/// compiled in, never configuration or external input, so it may be spelled into SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowTarget {
    /// `schema.table`; the MongoDB collection is the part after the dot.
    pub table: &'static str,
    /// Candidate time columns, first existing one wins (a table added by another pipeline may
    /// name it either way).
    pub time_columns: &'static [&'static str],
    /// Fallback when the time column is NULL (articles without a published date).
    pub time_fallback: Option<&'static str>,
    /// Extra SQL condition selecting the policy's rows within the table.
    pub filter: Option<&'static str>,
}

impl RowTarget {
    pub fn collection(&self) -> &'static str {
        self.table.rsplit('.').next().unwrap_or(self.table)
    }
}

/// A target as found in the database: `None` from [`RowStore::resolve`] means it does not exist.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub target: RowTarget,
    /// The SQL expression (or MongoDB field) holding each row's time.
    pub time_expr: String,
    /// Primary-key column and its SQL type (PostgreSQL), `_id` on MongoDB.
    pub key_column: String,
    pub key_type: String,
    /// Generated columns, left out of archives (they are derived, and cannot be inserted back).
    pub generated: Vec<String>,
    /// The time column that completes the primary key of a partitioned table (`open_time` of
    /// `trading.price_candles`: a key there must contain the partition key); a row is then
    /// identified by key and time.
    pub key_time: Option<String>,
    /// Where rows are read from when not `target.table`: a partition already detached from it.
    pub source: Option<String>,
}

impl Resolved {
    /// The same target, read from `table` (a detached partition of it).
    pub fn reading_from(&self, table: String) -> Resolved {
        Resolved {
            source: Some(table),
            ..self.clone()
        }
    }
}

/// Identifies one archived row version: its key and PostgreSQL's `xmin`. A row updated after it
/// was archived has a new `xmin` and is therefore not deleted (its new version was not archived).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RowVersion {
    pub key: String,
    pub version: String,
    /// The row's time: with [`Resolved::key_time`] part of its key.
    pub time: DateTime<Utc>,
}

/// A row exported for archiving: its identity, its time and its JSON text (one archive line).
#[derive(Debug, Clone)]
pub struct ExportedRow {
    pub id: RowVersion,
    pub time: DateTime<Utc>,
    pub json: String,
}

#[async_trait::async_trait]
pub trait RowStore: Send + Sync + 'static {
    /// Which backend this is, for logs.
    fn backend(&self) -> &'static str;
    /// Why the store expires this target by itself (a TTL index), if it does.
    fn managed_by_ttl(&self, _target: &RowTarget) -> Option<String> {
        None
    }
    async fn resolve(&self, target: &RowTarget) -> Result<Option<Resolved>, StoreError>;
    async fn count_before(&self, r: &Resolved, before: DateTime<Utc>) -> Result<u64, StoreError>;
    /// The UTC days that have rows older than `before`, oldest first (one statement: the
    /// archive loop then reads day by day through the time index).
    async fn days_before(
        &self,
        r: &Resolved,
        before: DateTime<Utc>,
    ) -> Result<Vec<NaiveDate>, StoreError>;
    /// Rows with time in `[from, to)` ordered by (time, key), at most `limit`, starting after
    /// `after` (keyset pagination: each page is one short statement, no open cursor).
    async fn export(
        &self,
        r: &Resolved,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        after: Option<&ExportedRow>,
        limit: usize,
    ) -> Result<Vec<ExportedRow>, StoreError>;
    /// Deletes exactly these row versions (one short statement); returns how many went.
    async fn delete_versions(&self, r: &Resolved, rows: &[RowVersion]) -> Result<u64, StoreError>;
    /// Deletes at most `limit` rows older than `before` (one short statement).
    async fn delete_before(
        &self,
        r: &Resolved,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<u64, StoreError>;
    /// The planner's row estimate, to decide on ANALYZE.
    async fn estimated_rows(&self, r: &Resolved) -> Result<u64, StoreError>;
    async fn analyze(&self, r: &Resolved) -> Result<(), StoreError>;
}

/// A daily tick partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TickPartition {
    pub name: String,
    pub day: NaiveDate,
    /// False for a table left detached by an interrupted pass (still to be dropped).
    pub attached: bool,
    /// A `DETACH ... CONCURRENTLY` was interrupted: it must be finalized before the drop.
    pub detach_pending: bool,
}

/// A monthly candle partition, `trading.price_candles_YYYYMM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandlePartition {
    pub name: String,
    /// The first day of its UTC month.
    pub month: NaiveDate,
    /// False for a table left detached by an interrupted pass (still to be archived and dropped).
    pub attached: bool,
}

/// PostgreSQL-only maintenance of the market tables.
#[async_trait::async_trait]
pub trait MarketMaintenance: Send + Sync + 'static {
    async fn tick_partitions(&self) -> Result<Vec<TickPartition>, StoreError>;
    async fn partition_rows(&self, p: &TickPartition) -> Result<u64, StoreError>;
    /// Detaches (without blocking writers) and drops one partition.
    async fn drop_tick_partition(&self, p: &TickPartition) -> Result<(), StoreError>;
    async fn ensure_tick_partitions(&self, from: NaiveDate, days: u32) -> Result<(), StoreError>;
    /// Monthly candle partitions, attached or left detached, oldest first.
    async fn candle_partitions(&self) -> Result<Vec<CandlePartition>, StoreError>;
    /// Detaches a month from `trading.price_candles`.
    async fn detach_candle_partition(&self, p: &CandlePartition) -> Result<(), StoreError>;
    /// Drops a detached month if it holds exactly `expected_rows`; keeps it and fails otherwise.
    async fn drop_candle_partition(
        &self,
        p: &CandlePartition,
        expected_rows: u64,
    ) -> Result<(), StoreError>;
    /// Creates the partitions of `months` months from the one `from` falls in; returns how many
    /// it created.
    async fn ensure_candle_partitions(
        &self,
        from: NaiveDate,
        months: u32,
    ) -> Result<u32, StoreError>;
    async fn refresh_symbol_summary(&self) -> Result<(), StoreError>;
    /// Held for the whole pass so two daemons never run retention at once; false when taken.
    async fn try_lock_pass(&self) -> Result<Option<Box<dyn PassLock>>, StoreError>;
}

/// The cross-instance retention pass lock, held for the whole pass; released by
/// [`PassLock::release`], or when dropped (the backend then makes sure it does not outlive the
/// process's use of it).
#[async_trait::async_trait]
pub trait PassLock: Send {
    async fn release(self: Box<Self>);
}

/// Sessions expire by Redis TTL: whatever session key lacks one gets it.
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Keys matching the session pattern that have no TTL; with `apply`, each gets `ttl_secs`.
    async fn expire_sessions(&self, ttl_secs: u64, apply: bool) -> Result<u64, StoreError>;
}
