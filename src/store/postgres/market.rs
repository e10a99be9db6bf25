//! The PostgreSQL market store: ticks by COPY, candles by one multi-row upsert, both in one
//! transaction per batch so stored candles always fold in exactly the stored ticks.
//!
//! Idempotence is what makes retries and spool replays safe: ticks are inserted with
//! `ON CONFLICT DO NOTHING` on their natural key, and a candle row is only replaced by a state that
//! is at least as new (`last_trade_id`, then `is_closed`).

use super::candle_partitions::WriterMonths;
use super::partitions::MAX_PARTITION_DAYS;
use super::pg_err;
use crate::domain::{Candle, Interval, MarketBatch, SymbolInfo};
use crate::store::{MarketStore, ResumeState, StoreError, WriteStats};
use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use rust_decimal::Decimal;
use sqlx::Row;
use sqlx::postgres::{PgPool, PgRow};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

/// Session-local staging table for COPY: COPY cannot do `ON CONFLICT`, so ticks are copied here
/// and moved with one `INSERT .. SELECT .. ON CONFLICT DO NOTHING`. `ON COMMIT DELETE ROWS` empties
/// it at every commit (and a rollback discards it), so it never carries rows between batches.
/// Sent together with BEGIN in one round trip; `client_min_messages` hides the "already exists"
/// NOTICE that sqlx would otherwise log at INFO for every batch.
const BEGIN_WITH_STAGING: &str = "BEGIN; \
    SET LOCAL client_min_messages = warning; \
    CREATE TEMP TABLE IF NOT EXISTS tradepipe_tick_staging ( \
        symbol_id text NOT NULL, trade_id bigint NOT NULL, price numeric NOT NULL, \
        quantity numeric NOT NULL, ts timestamptz NOT NULL, is_buyer_maker boolean NOT NULL \
    ) ON COMMIT DELETE ROWS";

const COPY_TICKS: &str = "COPY tradepipe_tick_staging \
    (symbol_id, trade_id, price, quantity, ts, is_buyer_maker) FROM STDIN";

const COPY_TICKS_DIRECT: &str = "COPY trading.price_ticks \
    (symbol_id, trade_id, price, quantity, timestamp, is_buyer_maker) FROM STDIN";

/// COPY `data` (text format) with `statement`; returns the rows copied.
async fn copy_rows(
    conn: &mut sqlx::PgConnection,
    statement: &str,
    data: &[u8],
) -> Result<u64, sqlx::Error> {
    let mut copy = conn.copy_in_raw(statement).await?;
    if let Err(e) = copy.send(data).await {
        // Best effort: the caller's transaction is rolled back anyway.
        let _ = copy.abort("tradepipe: sending COPY data failed").await;
        return Err(e);
    }
    copy.finish().await
}

const INSERT_TICKS: &str = "INSERT INTO trading.price_ticks \
        (symbol_id, trade_id, price, quantity, timestamp, is_buyer_maker) \
    SELECT symbol_id, trade_id, price, quantity, ts, is_buyer_maker FROM tradepipe_tick_staging \
    ON CONFLICT (symbol_id, trade_id, timestamp) DO NOTHING";

/// One statement for all candles of a batch. The WHERE clause is the "never go backwards" guard:
/// a state replaces the stored one only if it folded in at least the same trades (NULL = no
/// trades = -1) and, at equal trades, does not reopen a closed candle.
const UPSERT_CANDLES: &str = "INSERT INTO trading.price_candles AS c \
        (symbol_id, interval, open_time, close_time, open, high, low, close, volume, \
         quote_volume, trade_count, first_trade_id, last_trade_id, is_closed) \
    SELECT * FROM UNNEST($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], \
        $5::numeric[], $6::numeric[], $7::numeric[], $8::numeric[], $9::numeric[], \
        $10::numeric[], $11::int8[], $12::int8[], $13::int8[], $14::bool[]) \
    ON CONFLICT (symbol_id, interval, open_time) DO UPDATE SET \
        close_time = excluded.close_time, open = excluded.open, high = excluded.high, \
        low = excluded.low, close = excluded.close, volume = excluded.volume, \
        quote_volume = excluded.quote_volume, trade_count = excluded.trade_count, \
        first_trade_id = excluded.first_trade_id, last_trade_id = excluded.last_trade_id, \
        is_closed = excluded.is_closed, updated_at = now() \
    WHERE (COALESCE(excluded.last_trade_id, -1), excluded.is_closed) \
       >= (COALESCE(c.last_trade_id, -1), c.is_closed)";

const CANDLE_COLUMNS: &str = "symbol_id, interval, open_time, close_time, open, high, low, \
    close, volume, quote_volume, trade_count, first_trade_id, last_trade_id, is_closed";

/// Forget the cached partition days beyond this many (a long replay touches one per day).
const PARTITION_CACHE_MAX: usize = 4096;

/// Decimal places the columns hold; more would be rounded silently by PostgreSQL.
const PRICE_QTY_SCALE: u32 = 8;
const QUOTE_VOLUME_SCALE: u32 = 16;

/// [`MarketStore`] on PostgreSQL.
pub struct PgMarketStore {
    pool: PgPool,
    /// UTC days whose tick partition is known to exist, so the hot path does not look in the
    /// catalog for every batch.
    partitions: Mutex<HashSet<NaiveDate>>,
    /// Symbols known to be in trading.symbols. Ticks have no per-row foreign key (it cost a
    /// third of the COPY rate), so every batch's symbols are checked here instead.
    known_symbols: Mutex<HashSet<String>>,
    /// Monthly candle partitions known to exist (created before the first write into a month).
    candle_months: WriterMonths,
}

impl PgMarketStore {
    pub fn new(pool: PgPool) -> Self {
        PgMarketStore {
            pool,
            partitions: Mutex::new(HashSet::new()),
            known_symbols: Mutex::new(HashSet::new()),
            candle_months: WriterMonths::default(),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Forget which partitions exist; call after retention dropped partitions. (A write into a
    /// dropped day also recovers by itself: it re-creates the partition and retries once.)
    pub(crate) fn forget_partitions(&self) {
        self.known_partitions().clear();
    }

    fn known_partitions(&self) -> std::sync::MutexGuard<'_, HashSet<NaiveDate>> {
        // The set is only a cache: a panic elsewhere while holding it cannot corrupt anything.
        self.partitions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Creates the partitions of `days` not known to exist, outside the batch transaction and by
    /// attach, so neither this writer nor the readers of the ticks wait on it (`partitions`).
    async fn ensure_days(&self, days: &[NaiveDate]) -> Result<(), StoreError> {
        let missing: Vec<NaiveDate> = {
            let known = self.known_partitions();
            days.iter()
                .filter(|d| !known.contains(d))
                .copied()
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        super::ensure_tick_partitions(&self.pool, &missing).await?;
        let mut known = self.known_partitions();
        if known.len() + missing.len() > PARTITION_CACHE_MAX {
            known.clear();
        }
        known.extend(missing);
        Ok(())
    }

    async fn write_once(&self, batch: &PreparedBatch) -> Result<WriteStats, StoreError> {
        let fail = |what: &str| {
            let what = format!(
                "{what} ({} ticks, {} candles)",
                batch.tick_count,
                batch.candles.len()
            );
            move |e| pg_err(what, e)
        };
        let mut tx = if batch.tick_count > 0 {
            self.pool.begin_with(BEGIN_WITH_STAGING).await
        } else {
            self.pool.begin().await
        }
        .map_err(fail("beginning the batch transaction"))?;

        let mut stats = WriteStats::default();
        if batch.tick_count > 0 {
            // Fast path, the normal case: every tick is new, so COPY straight into the table.
            // Inside a savepoint: if any tick is already stored (a replay, a retry, a backfill
            // overlap) the unique key rejects the COPY, we roll back to the savepoint and take
            // the deduplicating path through the staging table.
            let mut direct = sqlx::Acquire::begin(&mut *tx)
                .await
                .map_err(fail("opening a savepoint"))?;
            match copy_rows(&mut direct, COPY_TICKS_DIRECT, &batch.copy_data).await {
                Ok(n) => {
                    direct
                        .commit()
                        .await
                        .map_err(fail("releasing the savepoint"))?;
                    stats.ticks_inserted = n;
                }
                Err(e) if db_code(&e).as_deref() == Some("23505") => {
                    direct
                        .rollback()
                        .await
                        .map_err(fail("rolling back to the savepoint"))?;
                    let staged = copy_rows(&mut tx, COPY_TICKS, &batch.copy_data)
                        .await
                        .map_err(fail("sending ticks by COPY"))?;
                    let inserted = sqlx::query(INSERT_TICKS)
                        .execute(&mut *tx)
                        .await
                        .map_err(fail("inserting staged ticks"))?
                        .rows_affected();
                    stats.ticks_inserted = inserted;
                    stats.ticks_duplicate = staged.saturating_sub(inserted);
                }
                Err(e) => return Err(fail("copying ticks")(e)),
            }
        }

        if !batch.candles.is_empty() {
            let c = &batch.candles;
            stats.candles_upserted = sqlx::query(UPSERT_CANDLES)
                .bind(&c.symbol)
                .bind(&c.interval)
                .bind(&c.open_time)
                .bind(&c.close_time)
                .bind(&c.open)
                .bind(&c.high)
                .bind(&c.low)
                .bind(&c.close)
                .bind(&c.volume)
                .bind(&c.quote_volume)
                .bind(&c.trade_count)
                .bind(&c.first_trade_id)
                .bind(&c.last_trade_id)
                .bind(&c.closed)
                .execute(&mut *tx)
                .await
                .map_err(fail("upserting candles"))?
                .rows_affected();
        }

        tx.commit()
            .await
            .map_err(fail("committing the batch transaction"))?;
        Ok(stats)
    }

    /// Fails with `UnknownSymbols` unless every symbol of the batch is in trading.symbols. One
    /// query the first time a symbol is seen, none after.
    async fn check_symbols(&self, symbols: &BTreeSet<String>) -> Result<(), StoreError> {
        let unknown: Vec<&str> = {
            let known = self.known_symbols.lock().unwrap_or_else(|p| p.into_inner());
            symbols
                .iter()
                .filter(|s| !known.contains(*s))
                .map(String::as_str)
                .collect()
        };
        if unknown.is_empty() {
            return Ok(());
        }
        let found: Vec<String> =
            sqlx::query_scalar("SELECT id FROM trading.symbols WHERE id = ANY($1)")
                .bind(&unknown)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| pg_err("checking the batch's symbols".to_string(), e))?;
        let missing: Vec<String> = unknown
            .iter()
            .filter(|s| !found.iter().any(|f| f == *s))
            .map(|s| s.to_string())
            .collect();
        self.known_symbols
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(found);
        if missing.is_empty() {
            Ok(())
        } else {
            Err(StoreError::UnknownSymbols { symbols: missing })
        }
    }

    /// Turns a foreign-key violation into the list of symbols that are missing, so the operator
    /// reads "unknown symbol FOOUSDT" rather than a constraint name.
    async fn unknown_symbols_error(
        &self,
        symbols: &BTreeSet<String>,
        original: StoreError,
    ) -> StoreError {
        let symbols: Vec<&str> = symbols.iter().map(String::as_str).collect();
        let missing = sqlx::query_scalar::<_, String>(
            "SELECT s FROM UNNEST($1::text[]) AS s \
             WHERE NOT EXISTS (SELECT 1 FROM trading.symbols WHERE id = s) ORDER BY s",
        )
        .bind(&symbols)
        .fetch_all(&self.pool)
        .await;
        match missing {
            Ok(missing) if !missing.is_empty() => StoreError::UnknownSymbols { symbols: missing },
            _ => original,
        }
    }
}

#[async_trait::async_trait]
impl MarketStore for PgMarketStore {
    async fn write_batch(&self, batch: &MarketBatch) -> Result<WriteStats, StoreError> {
        let prepared = PreparedBatch::new(batch)?;
        if prepared.tick_count == 0 && prepared.candles.is_empty() {
            return Ok(WriteStats::default());
        }
        self.check_symbols(&prepared.symbols).await?;
        self.ensure_days(&prepared.days).await?;
        self.candle_months
            .ensure(&self.pool, &prepared.candles.open_time)
            .await;
        let result = match self.write_once(&prepared).await {
            // Our cache said the day exists but it does not (retention dropped it, or another
            // process did), or a candle month was attached under the batch: retry once.
            Err(e) if sqlx_code(&e).as_deref() == Some("23514") && is_missing_partition(&e) => {
                tracing::warn!(error = %e, "a partition changed under the batch; re-creating the tick partitions and retrying");
                self.forget_partitions();
                self.ensure_days(&prepared.days).await?;
                self.write_once(&prepared).await
            }
            other => other,
        };
        match result {
            Err(e) if sqlx_code(&e).as_deref() == Some("23503") => {
                Err(self.unknown_symbols_error(&prepared.symbols, e).await)
            }
            other => other,
        }
    }

    async fn resume_state(&self, symbol: &str) -> Result<ResumeState, StoreError> {
        let intervals: Vec<&str> = Interval::ALL.iter().map(|i| i.as_str()).collect();
        // One index probe per interval (LATERAL .. LIMIT 1) instead of DISTINCT ON, which would
        // read every stored candle of the symbol.
        let latest_sql = format!(
            "SELECT {CANDLE_COLUMNS} FROM UNNEST($2::text[]) AS i(iv) \
             CROSS JOIN LATERAL (SELECT * FROM trading.price_candles \
                 WHERE symbol_id = $1 AND interval = i.iv ORDER BY open_time DESC LIMIT 1) c"
        );
        let rows = sqlx::query(&latest_sql)
            .bind(symbol)
            .bind(&intervals)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| pg_err(format!("reading latest candles of {symbol}"), e))?;
        let mut latest_candles = rows
            .iter()
            .map(candle_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        latest_candles.sort_by_key(|c| c.interval);

        // Trade ids grow with time per symbol, so the newest candle with trades of each interval
        // holds that interval's maximum. Open candles are written less often than closed ones
        // (writer.open_candle_write_ms), so intervals may stop at different ids: the feed
        // resumes after the lowest, and the builder folds the trades in between only into the
        // intervals that lack them (CandleBook::resume_after). The newest candle itself may be
        // empty (NULL ids), hence the IS NOT NULL probe.
        let last: Option<i64> = sqlx::query_scalar(
            "SELECT min(l.last_trade_id) FROM UNNEST($2::text[]) AS i(iv) \
             CROSS JOIN LATERAL (SELECT last_trade_id FROM trading.price_candles \
                 WHERE symbol_id = $1 AND interval = i.iv AND last_trade_id IS NOT NULL \
                 ORDER BY open_time DESC LIMIT 1) l",
        )
        .bind(symbol)
        .bind(&intervals)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| pg_err(format!("reading the resume trade id of {symbol}"), e))?;
        let last_trade_id = last.map(|id| to_u64(id, "last_trade_id")).transpose()?;
        Ok(ResumeState {
            latest_candles,
            last_trade_id,
        })
    }

    async fn upsert_symbols(&self, symbols: &[SymbolInfo]) -> Result<(), StoreError> {
        if symbols.is_empty() {
            return Ok(());
        }
        let mut by_id: HashMap<&str, &SymbolInfo> = HashMap::new();
        for s in symbols {
            if s.symbol.is_empty() || s.symbol.len() > 20 {
                return Err(StoreError::Invalid(format!(
                    "symbol {:?} must be 1 to 20 characters",
                    s.symbol
                )));
            }
            check_scale(&s.min_qty, PRICE_QTY_SCALE, || {
                format!("{} min_qty", s.symbol)
            })?;
            // The last entry wins: ON CONFLICT cannot update one row twice in a statement.
            by_id.insert(&s.symbol, s);
        }
        let rows: Vec<&SymbolInfo> = by_id.into_values().collect();
        let col = |f: fn(&SymbolInfo) -> &str| rows.iter().map(|s| f(s)).collect::<Vec<&str>>();
        sqlx::query(
            "INSERT INTO trading.symbols AS s \
                 (id, base_asset, quote_asset, exchange, precision_price, precision_qty, \
                  min_qty, is_active) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::int4[], \
                 $6::int4[], $7::numeric[], $8::bool[]) \
             ON CONFLICT (id) DO UPDATE SET base_asset = excluded.base_asset, \
                 quote_asset = excluded.quote_asset, exchange = excluded.exchange, \
                 precision_price = excluded.precision_price, \
                 precision_qty = excluded.precision_qty, min_qty = excluded.min_qty, \
                 is_active = excluded.is_active \
             WHERE (s.base_asset, s.quote_asset, s.exchange, s.precision_price, \
                    s.precision_qty, s.min_qty, s.is_active) \
                 IS DISTINCT FROM (excluded.base_asset, excluded.quote_asset, \
                    excluded.exchange, excluded.precision_price, excluded.precision_qty, \
                    excluded.min_qty, excluded.is_active)",
        )
        .bind(col(|s| &s.symbol))
        .bind(col(|s| &s.base_asset))
        .bind(col(|s| &s.quote_asset))
        .bind(col(|s| &s.exchange))
        .bind(rows.iter().map(|s| s.precision_price).collect::<Vec<i32>>())
        .bind(rows.iter().map(|s| s.precision_qty).collect::<Vec<i32>>())
        .bind(rows.iter().map(|s| s.min_qty).collect::<Vec<Decimal>>())
        .bind(rows.iter().map(|s| s.is_active).collect::<Vec<bool>>())
        .execute(&self.pool)
        .await
        .map_err(|e| pg_err(format!("upserting {} symbols", rows.len()), e))?;
        self.known_symbols
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(symbols.iter().map(|s| s.symbol.clone()));
        Ok(())
    }

    async fn ensure_tick_partitions(
        &self,
        from_day: NaiveDate,
        days: u32,
    ) -> Result<(), StoreError> {
        // Each partition is a table: a slip like `u32::MAX` must not create millions of them.
        if days as usize > MAX_PARTITION_DAYS {
            return Err(StoreError::Invalid(format!(
                "refusing to create {days} daily tick partitions (at most {MAX_PARTITION_DAYS})"
            )));
        }
        let days: Vec<NaiveDate> = from_day.iter_days().take(days as usize).collect();
        self.ensure_days(&days).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        super::execute(&self.pool, "SELECT 1", "pinging the database").await
    }
}

/// A batch converted and validated before any database work, so bad data fails without touching
/// the database and a retry does not redo the conversion.
struct PreparedBatch {
    /// Ticks in COPY text format.
    copy_data: Vec<u8>,
    tick_count: u64,
    /// UTC days the ticks span (sorted, distinct): their partitions must exist.
    days: Vec<NaiveDate>,
    candles: CandleColumns,
    /// Every symbol the batch references, to name the unknown ones on a FK violation.
    symbols: BTreeSet<String>,
}

/// Candles column by column, as the UNNEST upsert binds them.
#[derive(Default)]
struct CandleColumns {
    symbol: Vec<String>,
    interval: Vec<&'static str>,
    open_time: Vec<DateTime<Utc>>,
    close_time: Vec<DateTime<Utc>>,
    open: Vec<Decimal>,
    high: Vec<Decimal>,
    low: Vec<Decimal>,
    close: Vec<Decimal>,
    volume: Vec<Decimal>,
    quote_volume: Vec<Decimal>,
    trade_count: Vec<i64>,
    first_trade_id: Vec<Option<i64>>,
    last_trade_id: Vec<Option<i64>>,
    closed: Vec<bool>,
}

impl CandleColumns {
    fn len(&self) -> usize {
        self.symbol.len()
    }

    fn is_empty(&self) -> bool {
        self.symbol.is_empty()
    }
}

impl PreparedBatch {
    fn new(batch: &MarketBatch) -> Result<Self, StoreError> {
        let mut symbols = BTreeSet::new();
        let mut days = BTreeSet::new();
        // About 70 bytes per tick in text format.
        let mut copy_data = Vec::with_capacity(batch.ticks.len() * 72);
        for t in &batch.ticks {
            let what = || format!("tick {} {}", t.symbol, t.trade_id);
            let trade_id = to_i64(t.trade_id, &what)?;
            check_scale(&t.price, PRICE_QTY_SCALE, what)?;
            check_scale(&t.qty, PRICE_QTY_SCALE, what)?;
            let time = ms_to_utc(t.time_ms, &what)?;
            days.insert(time.date_naive());
            if !symbols.contains(&*t.symbol) {
                symbols.insert(t.symbol.to_string());
            }
            // COPY text format: tab-separated, one row per line. Writing to a Vec cannot fail.
            push_copy_text(&mut copy_data, &t.symbol);
            let _ = write!(
                VecWriter(&mut copy_data),
                "\t{trade_id}\t{}\t{}\t",
                t.price,
                t.qty
            );
            push_timestamp(&mut copy_data, &time);
            copy_data.extend_from_slice(if t.is_buyer_maker { b"\tt\n" } else { b"\tf\n" });
        }

        // ON CONFLICT DO UPDATE cannot touch the same row twice in one statement, so keep one
        // state per (symbol, interval, open_time): the newest, the later one on a tie.
        let mut newest: HashMap<(&str, Interval, i64), &Candle> = HashMap::new();
        for c in &batch.candles {
            let key = (&*c.symbol, c.interval, c.open_time_ms);
            match newest.get(&key) {
                Some(kept) if candle_rank(kept) > candle_rank(c) => {}
                _ => {
                    newest.insert(key, c);
                }
            }
        }
        let mut kept: Vec<&Candle> = newest.into_values().collect();
        // Deterministic row order keeps lock order stable between concurrent writers.
        kept.sort_by(|a, b| {
            (&*a.symbol, a.interval, a.open_time_ms).cmp(&(&*b.symbol, b.interval, b.open_time_ms))
        });
        let mut candles = CandleColumns::default();
        for c in kept {
            let what = || format!("candle {} {} {}", c.symbol, c.interval, c.open_time_ms);
            for (v, scale) in [
                (&c.open, PRICE_QTY_SCALE),
                (&c.high, PRICE_QTY_SCALE),
                (&c.low, PRICE_QTY_SCALE),
                (&c.close, PRICE_QTY_SCALE),
                (&c.volume, PRICE_QTY_SCALE),
                (&c.quote_volume, QUOTE_VOLUME_SCALE),
            ] {
                check_scale(v, scale, what)?;
            }
            if !symbols.contains(&*c.symbol) {
                symbols.insert(c.symbol.to_string());
            }
            candles.symbol.push(c.symbol.to_string());
            candles.interval.push(c.interval.as_str());
            candles.open_time.push(ms_to_utc(c.open_time_ms, &what)?);
            candles.close_time.push(ms_to_utc(c.close_time_ms, &what)?);
            candles.open.push(c.open);
            candles.high.push(c.high);
            candles.low.push(c.low);
            candles.close.push(c.close);
            candles.volume.push(c.volume);
            candles.quote_volume.push(c.quote_volume);
            candles.trade_count.push(to_i64(c.trade_count, &what)?);
            candles
                .first_trade_id
                .push(c.first_trade_id.map(|id| to_i64(id, &what)).transpose()?);
            candles
                .last_trade_id
                .push(c.last_trade_id.map(|id| to_i64(id, &what)).transpose()?);
            candles.closed.push(c.closed);
        }

        Ok(PreparedBatch {
            copy_data,
            tick_count: batch.ticks.len() as u64,
            days: days.into_iter().collect(),
            candles,
            symbols,
        })
    }
}

/// Orders candle states of one bucket by how much they know, as the SQL guard does.
fn candle_rank(c: &Candle) -> (i128, bool) {
    (c.last_trade_id.map_or(-1, i128::from), c.closed)
}

/// `fmt::Write` into a byte buffer without going through `String`.
struct VecWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for VecWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Appends `s` escaped for COPY text format (backslash, tab, newline, carriage return).
fn push_copy_text(buf: &mut Vec<u8>, s: &str) {
    for b in s.bytes() {
        match b {
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\r' => buf.extend_from_slice(b"\\r"),
            _ => buf.push(b),
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS.mmm+00`: explicit UTC offset, so the session TimeZone cannot shift it.
fn push_timestamp(buf: &mut Vec<u8>, t: &DateTime<Utc>) {
    let _ = write!(
        VecWriter(buf),
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}+00",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.timestamp_subsec_millis()
    );
}

/// UTC ms to a timestamp, limited to years 1..=9999 (PostgreSQL's text form of other years
/// differs, and no trade happens then).
fn ms_to_utc(ms: i64, what: &impl Fn() -> String) -> Result<DateTime<Utc>, StoreError> {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .filter(|t| (1..=9999).contains(&t.year()))
        .ok_or_else(|| StoreError::Invalid(format!("{}: time {ms} ms is out of range", what())))
}

fn to_i64(v: u64, what: &impl Fn() -> String) -> Result<i64, StoreError> {
    i64::try_from(v)
        .map_err(|_| StoreError::Invalid(format!("{}: {v} does not fit a BIGINT", what())))
}

fn to_u64(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Invalid(format!("stored {what} {v} is negative")))
}

/// Rejects values with more significant decimal places than the column keeps, which PostgreSQL
/// would round without a word. Trailing zeros do not count.
fn check_scale(v: &Decimal, max: u32, what: impl Fn() -> String) -> Result<(), StoreError> {
    if v.scale() > max && v.normalize().scale() > max {
        return Err(StoreError::Invalid(format!(
            "{}: {v} has more than {max} decimal places",
            what()
        )));
    }
    Ok(())
}

/// The SQLSTATE of a non-retryable database error, if that is what `e` is.
fn db_code(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

fn sqlx_code(e: &StoreError) -> Option<String> {
    e.sqlx().and_then(db_code)
}

/// "no partition of relation ... found for row" shares SQLSTATE 23514 with CHECK violations.
/// A row routed to a partition that is not there or no longer right for it: the day's tick
/// partition was dropped, or a candle went to the DEFAULT partition while its month was being
/// attached (PostgreSQL then rechecks the default's constraint and refuses the row). Written
/// again, the row finds its partition.
fn is_missing_partition(e: &StoreError) -> bool {
    matches!(e.sqlx(), Some(sqlx::Error::Database(db))
        if db.message().starts_with("no partition of relation")
            || db.message().contains("violates partition constraint"))
}

fn candle_from_row(row: &PgRow) -> Result<Candle, StoreError> {
    let bad = |e: sqlx::Error| pg_err("decoding a stored candle", e);
    let symbol: String = row.try_get("symbol_id").map_err(bad)?;
    let interval: String = row.try_get("interval").map_err(bad)?;
    let interval = Interval::from_str(&interval)
        .map_err(|e| StoreError::Invalid(format!("stored candle of {symbol}: {e}")))?;
    let open_time: DateTime<Utc> = row.try_get("open_time").map_err(bad)?;
    let close_time: DateTime<Utc> = row.try_get("close_time").map_err(bad)?;
    let trade_count: i64 = row.try_get("trade_count").map_err(bad)?;
    let first: Option<i64> = row.try_get("first_trade_id").map_err(bad)?;
    let last: Option<i64> = row.try_get("last_trade_id").map_err(bad)?;
    Ok(Candle {
        symbol: Arc::from(symbol),
        interval,
        open_time_ms: open_time.timestamp_millis(),
        close_time_ms: close_time.timestamp_millis(),
        open: row.try_get("open").map_err(bad)?,
        high: row.try_get("high").map_err(bad)?,
        low: row.try_get("low").map_err(bad)?,
        close: row.try_get("close").map_err(bad)?,
        volume: row.try_get("volume").map_err(bad)?,
        quote_volume: row.try_get("quote_volume").map_err(bad)?,
        trade_count: to_u64(trade_count, "trade_count")?,
        first_trade_id: first.map(|v| to_u64(v, "first_trade_id")).transpose()?,
        last_trade_id: last.map(|v| to_u64(v, "last_trade_id")).transpose()?,
        closed: row.try_get("is_closed").map_err(bad)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_check_ignores_trailing_zeros() {
        let ok = Decimal::from_str("1.1000000000").unwrap();
        assert!(check_scale(&ok, 8, || "x".into()).is_ok());
        let bad = Decimal::from_str("1.000000001").unwrap();
        assert!(check_scale(&bad, 8, || "x".into()).is_err());
    }

    #[test]
    fn copy_text_escapes() {
        let mut buf = Vec::new();
        push_copy_text(&mut buf, "A\tB\\C\nD");
        assert_eq!(buf, b"A\\tB\\\\C\\nD");
        let mut buf = Vec::new();
        push_timestamp(
            &mut buf,
            &ms_to_utc(1_723_161_601_437, &|| String::new()).unwrap(),
        );
        assert_eq!(buf, b"2024-08-09 00:00:01.437+00");
    }
}
