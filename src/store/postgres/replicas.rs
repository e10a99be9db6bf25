//! Read replicas: the reads that tolerate lag go through [`ReadRouter::read`], to a healthy hot
//! standby of the primary when `database.read_urls` names one, else to the primary. Writes, and
//! reads of what the daemon itself has just written, never come here: they use the primary pool.
//!
//! **How lag is measured.** `now() - pg_last_xact_replay_timestamp()` on the standby is the usual
//! recipe, but it is the age of the last replayed *transaction*: while the primary is idle it
//! grows without bound although the standby has everything, and it mixes two servers' clocks.
//! The distance between the primary's WAL position and the standby's replayed one is exact, but
//! in bytes, which say nothing about staleness. So every check samples the primary's WAL
//! position against this process's clock, and a replica's lag is how long ago the primary had
//! written no more than the replica has replayed: zero when it has replayed everything the
//! primary had written at the latest sample (an idle primary included), otherwise the age of the
//! newest sample it has passed. One clock, no idle artefact; the figure is an upper bound whose
//! resolution is the check interval.

use super::{is_retryable, parse_url, pool_options};
use crate::config::DatabaseConfig;
use crate::redact::redact_url;
use crate::store::StoreError;
use sqlx::PgPool;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A check that takes longer than this finds the server down; a replica that cannot hand out a
/// connection this fast is no use for a read either (sqlx retries a refused connection until the
/// acquire timeout, so this bounds what a read pays for a replica that just went away).
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// The primary's WAL write position, in bytes.
const PRIMARY_POSITION: &str = "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::int8";
/// Whether a server is a standby, and the WAL position it has replayed (NULL on a primary).
const REPLICA_POSITION: &str =
    "SELECT pg_is_in_recovery(), (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::int8";

/// Routes lag-tolerant reads. Cheap to clone (the pools and the replicas' state are shared).
/// Without replicas every read goes to the primary, so stores take one whatever the config.
#[derive(Clone, Debug)]
pub struct ReadRouter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    primary: PgPool,
    replicas: Vec<Replica>,
    /// Round robin over the usable replicas.
    next: AtomicUsize,
    max_lag: Duration,
    check_every: Duration,
    wal: Mutex<WalHistory>,
}

#[derive(Debug)]
struct Replica {
    /// `host:port`: the metric label and what logs show (never credentials).
    name: String,
    pool: PgPool,
    state: AtomicU8,
    /// The lag last measured, in milliseconds; `u64::MAX` before the first measure.
    lag_ms: AtomicU64,
}

/// What the last check found of a replica. Only a `Usable` one receives reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaState {
    /// Not judged yet: no check has run, or the primary's WAL history is still shorter than
    /// the lag the replica shows.
    Unchecked,
    /// Answering, a standby, and at most `database.replica_max_lag_ms` behind.
    Usable,
    /// Answering, but further behind than `database.replica_max_lag_ms`.
    Behind,
    /// Not answering, not a standby, or a read on it failed for a reason on its side.
    Down,
}

impl ReplicaState {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => ReplicaState::Usable,
            2 => ReplicaState::Behind,
            3 => ReplicaState::Down,
            _ => ReplicaState::Unchecked,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            ReplicaState::Unchecked => 0,
            ReplicaState::Usable => 1,
            ReplicaState::Behind => 2,
            ReplicaState::Down => 3,
        }
    }
}

/// One replica as `/readyz`, tests and logs see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaStatus {
    pub name: String,
    pub state: ReplicaState,
    /// The last measured lag (kept while the replica cannot be measured).
    pub lag: Option<Duration>,
}

impl From<PgPool> for ReadRouter {
    /// A router without replicas: every read goes to `primary`.
    fn from(primary: PgPool) -> Self {
        ReadRouter::with_replicas(primary, Vec::new(), Duration::ZERO, Duration::from_secs(1))
    }
}

impl ReadRouter {
    /// The replicas of `db.read_urls` in front of `primary` (the pool of `db.url`). Their pools
    /// connect lazily, so the daemon starts while a replica is down; until the first check
    /// ([`ReadRouter::run_checks`]) every read goes to the primary.
    pub fn connect(primary: PgPool, db: &DatabaseConfig) -> Result<ReadRouter, StoreError> {
        let mut replicas = Vec::with_capacity(db.read_urls.len());
        for read_url in &db.read_urls {
            let url = inherit_from_primary(db.url.expose(), read_url.expose())?;
            replicas.push(Replica {
                name: host_port(&url),
                pool: pool_options(db.max_connections)
                    .acquire_timeout(CHECK_TIMEOUT)
                    .connect_lazy_with(parse_url(&url)?),
                state: AtomicU8::new(ReplicaState::Unchecked.as_u8()),
                lag_ms: AtomicU64::new(u64::MAX),
            });
        }
        Ok(ReadRouter::with_replicas(
            primary,
            replicas,
            Duration::from_millis(db.replica_max_lag_ms),
            Duration::from_millis(db.replica_check_interval_ms.max(1)),
        ))
    }

    fn with_replicas(
        primary: PgPool,
        replicas: Vec<Replica>,
        max_lag: Duration,
        check_every: Duration,
    ) -> Self {
        ReadRouter {
            inner: Arc::new(Inner {
                primary,
                replicas,
                next: AtomicUsize::new(0),
                max_lag,
                check_every,
                wal: Mutex::new(WalHistory::default()),
            }),
        }
    }

    /// The primary's pool: writes and read-your-write reads.
    pub fn primary(&self) -> &PgPool {
        &self.inner.primary
    }

    pub fn has_replicas(&self) -> bool {
        !self.inner.replicas.is_empty()
    }

    /// Every configured replica, in configuration order.
    pub fn status(&self) -> Vec<ReplicaStatus> {
        (self.inner.replicas.iter())
            .map(|r| ReplicaStatus {
                name: r.name.clone(),
                state: r.state(),
                lag: match r.lag_ms.load(Ordering::Relaxed) {
                    u64::MAX => None,
                    ms => Some(Duration::from_millis(ms)),
                },
            })
            .collect()
    }

    /// Runs `query` on a usable replica, or on the primary when none is. A query that fails on a
    /// replica runs again on the primary: a standby can lack what the primary created moments
    /// ago (a database, a table), cancel a query that conflicts with replay, or be gone; the
    /// primary's answer is the one that counts. A connection-level failure also takes the replica
    /// out of use until the next check finds it well.
    pub async fn read<T, F, Fut>(&self, query: F) -> Result<T, sqlx::Error>
    where
        F: Fn(PgPool) -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        if let Some(replica) = self.pick() {
            match query(replica.pool.clone()).await {
                Ok(v) => {
                    metrics::counter!("tradepipe_postgres_reads_total", "target" => "replica")
                        .increment(1);
                    return Ok(v);
                }
                Err(e) if is_retryable(&e) => {
                    if replica.set_state(ReplicaState::Down) == ReplicaState::Usable {
                        metrics::gauge!("tradepipe_postgres_replica_usable", "replica" => replica.name.clone())
                            .set(0.0);
                        tracing::warn!(replica = %replica.name, error = %e, "read replica failed; reading from the primary until it checks well again");
                    }
                }
                Err(e) => {
                    tracing::debug!(replica = %replica.name, error = %e, "read failed on the replica; retrying on the primary");
                }
            }
        }
        metrics::counter!("tradepipe_postgres_reads_total", "target" => "primary").increment(1);
        query(self.inner.primary.clone()).await
    }

    fn pick(&self) -> Option<&Replica> {
        let replicas = &self.inner.replicas;
        if replicas.is_empty() {
            return None;
        }
        let start = self.inner.next.fetch_add(1, Ordering::Relaxed);
        (0..replicas.len())
            .map(|i| &replicas[(start + i) % replicas.len()])
            .find(|r| r.state() == ReplicaState::Usable)
    }

    /// Checks every replica until the primary pool is closed (the daemon's shutdown), every
    /// `database.replica_check_interval_ms`.
    pub async fn run_checks(self) {
        if !self.has_replicas() {
            return;
        }
        let mut tick = tokio::time::interval(self.inner.check_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !self.inner.primary.is_closed() {
            tick.tick().await;
            self.check_now().await;
        }
    }

    /// One check: sample the primary's WAL position, then judge every replica.
    pub async fn check_now(&self) {
        let inner = &self.inner;
        if inner.replicas.is_empty() {
            return;
        }
        let primary = tokio::time::timeout(
            CHECK_TIMEOUT,
            sqlx::query_scalar::<_, i64>(PRIMARY_POSITION).fetch_one(&inner.primary),
        )
        .await;
        match primary {
            Ok(Ok(position)) => {
                let keep = inner.max_lag + 2 * inner.check_every;
                self.wal().record(Instant::now(), position, keep);
            }
            // The primary's own probe reports it down; the replicas are judged against the
            // positions already sampled.
            Ok(Err(e)) => tracing::debug!(error = %e, "reading the primary's WAL position failed"),
            Err(_) => tracing::debug!("reading the primary's WAL position timed out"),
        }
        for replica in &inner.replicas {
            let answer = tokio::time::timeout(
                CHECK_TIMEOUT,
                sqlx::query_as::<_, (bool, Option<i64>)>(REPLICA_POSITION).fetch_one(&replica.pool),
            )
            .await;
            let verdict = match answer {
                Err(_) => Verdict::down(format!("no answer within {CHECK_TIMEOUT:?}")),
                Ok(Err(e)) => Verdict::down(e.to_string()),
                Ok(Ok((false, _))) => {
                    Verdict::down("not in recovery: not a standby (promoted, or a primary)")
                }
                Ok(Ok((true, None))) => Verdict::down("has replayed no WAL yet"),
                Ok(Ok((true, Some(replayed)))) => {
                    let lag = self.wal().lag(replayed, Instant::now());
                    Verdict::from_lag(lag, inner.max_lag)
                }
            };
            replica.apply(verdict, inner.max_lag);
        }
    }

    fn wal(&self) -> MutexGuard<'_, WalHistory> {
        // The history is plain data; a panic while holding it cannot leave it inconsistent.
        self.inner.wal.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What one check concluded about one replica.
struct Verdict {
    state: ReplicaState,
    lag: Option<Duration>,
    reason: String,
}

impl Verdict {
    fn down(reason: impl Into<String>) -> Self {
        Verdict {
            state: ReplicaState::Down,
            lag: None,
            reason: reason.into(),
        }
    }

    fn from_lag(lag: Option<Lag>, max_lag: Duration) -> Self {
        let (state, lag) = match lag {
            None => (ReplicaState::Unchecked, None),
            Some(Lag::AtMost(d)) if d <= max_lag => (ReplicaState::Usable, Some(d)),
            Some(Lag::AtMost(d)) => (ReplicaState::Behind, Some(d)),
            Some(Lag::MoreThan(d)) if d > max_lag => (ReplicaState::Behind, Some(d)),
            // Behind every sample, but the history is younger than max_lag: not known yet.
            Some(Lag::MoreThan(_)) => (ReplicaState::Unchecked, None),
        };
        Verdict {
            state,
            lag,
            reason: String::new(),
        }
    }
}

impl Replica {
    fn state(&self) -> ReplicaState {
        ReplicaState::from_u8(self.state.load(Ordering::Relaxed))
    }

    /// Sets the state, returning the one before.
    fn set_state(&self, state: ReplicaState) -> ReplicaState {
        ReplicaState::from_u8(self.state.swap(state.as_u8(), Ordering::Relaxed))
    }

    /// Records a check's verdict in the state, the metrics and (on a change) the log.
    fn apply(&self, v: Verdict, max_lag: Duration) {
        let before = self.set_state(v.state);
        let label = self.name.clone();
        if let Some(lag) = v.lag {
            let ms = u64::try_from(lag.as_millis()).unwrap_or(u64::MAX - 1);
            self.lag_ms.store(ms, Ordering::Relaxed);
            metrics::gauge!("tradepipe_postgres_replica_lag_seconds", "replica" => label.clone())
                .set(lag.as_secs_f64());
        }
        let usable = if v.state == ReplicaState::Usable {
            1.0
        } else {
            0.0
        };
        metrics::gauge!("tradepipe_postgres_replica_usable", "replica" => label).set(usable);
        if before == v.state {
            return;
        }
        let lag_ms = v.lag.map(|d| d.as_millis() as u64);
        match v.state {
            ReplicaState::Usable => {
                tracing::info!(replica = %self.name, ?lag_ms, "read replica in use")
            }
            ReplicaState::Behind => tracing::warn!(
                replica = %self.name,
                ?lag_ms,
                max_lag_ms = max_lag.as_millis() as u64,
                "read replica skipped: too far behind the primary"
            ),
            ReplicaState::Down => {
                tracing::warn!(replica = %self.name, reason = %v.reason, "read replica skipped")
            }
            ReplicaState::Unchecked => {}
        }
    }
}

/// A replica's lag as far as the sampled history can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lag {
    /// It has replayed what the primary had written this long ago (or less long).
    AtMost(Duration),
    /// It is behind every retained sample, the oldest of which is this old.
    MoreThan(Duration),
}

/// The primary's WAL position over time, as seen by this process's checks. A position seen
/// again keeps one entry whose time moves on (the primary was still there then), so an idle
/// primary costs one entry; otherwise entries older than `keep` (max lag plus two checks) are
/// dropped, which bounds the history to about `keep / check interval` entries.
#[derive(Debug, Default)]
struct WalHistory {
    samples: VecDeque<(Instant, i64)>,
}

impl WalHistory {
    fn record(&mut self, at: Instant, position: i64, keep: Duration) {
        match self.samples.back_mut() {
            Some(last) if last.1 >= position => last.0 = at,
            _ => self.samples.push_back((at, position)),
        }
        while self.samples.len() > 1
            && self
                .samples
                .front()
                .is_some_and(|(t, _)| at.saturating_duration_since(*t) > keep)
        {
            self.samples.pop_front();
        }
    }

    /// `None` before the first sample.
    fn lag(&self, replayed: i64, now: Instant) -> Option<Lag> {
        let &(_, newest) = self.samples.back()?;
        if replayed >= newest {
            return Some(Lag::AtMost(Duration::ZERO));
        }
        // The latest moment the primary had written nothing the replica lacks.
        match self.samples.iter().rev().find(|(_, p)| *p <= replayed) {
            Some((t, _)) => Some(Lag::AtMost(now.saturating_duration_since(*t))),
            None => {
                let (oldest, _) = self.samples.front()?;
                Some(Lag::MoreThan(now.saturating_duration_since(*oldest)))
            }
        }
    }
}

/// A read URL with what it leaves out taken from the primary's: user and password (when it
/// names no user), the database (when it names none) and the TLS parameters (`ssl*`, when it
/// sets none), so a replica is reached as securely as the primary unless configured otherwise.
pub(crate) fn inherit_from_primary(primary: &str, replica: &str) -> Result<String, StoreError> {
    let parse = |raw: &str| {
        url::Url::parse(raw)
            .map_err(|e| StoreError::InvalidUrl(format!("{} ({e})", redact_url(raw))))
    };
    let p = parse(primary)?;
    let mut r = parse(replica)?;
    let no_host = || StoreError::InvalidUrl(format!("{}: no host", redact_url(replica)));
    if r.username().is_empty() && !p.username().is_empty() {
        r.set_username(p.username()).map_err(|()| no_host())?;
        r.set_password(p.password()).map_err(|()| no_host())?;
    }
    if matches!(r.path(), "" | "/") {
        r.set_path(p.path());
    }
    if !r.query_pairs().any(|(k, _)| k.starts_with("ssl")) {
        let tls: Vec<(String, String)> = (p.query_pairs())
            .filter(|(k, _)| k.starts_with("ssl"))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if !tls.is_empty() {
            r.query_pairs_mut().extend_pairs(tls);
        }
    }
    Ok(r.into())
}

/// `host:port` of a PostgreSQL URL (5432 when it names no port).
fn host_port(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}:{}",
            u.host_str().unwrap_or("localhost"),
            u.port().unwrap_or(5432)
        ),
        Err(_) => redact_url(url),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn an_idle_primary_gives_a_caught_up_replica_no_lag() {
        let t0 = Instant::now();
        let mut h = WalHistory::default();
        for i in 0..100u32 {
            h.record(t0 + 1000 * MS * i, 5000, 7000 * MS);
        }
        assert_eq!(
            h.samples.len(),
            1,
            "one entry while the position stands still"
        );
        assert_eq!(
            h.lag(5000, t0 + 100_000 * MS),
            Some(Lag::AtMost(Duration::ZERO))
        );
    }

    #[test]
    fn lag_is_the_age_of_the_newest_position_the_replica_has_passed() {
        let t0 = Instant::now();
        let mut h = WalHistory::default();
        h.record(t0, 100, 10_000 * MS);
        h.record(t0 + 1000 * MS, 200, 10_000 * MS);
        h.record(t0 + 2000 * MS, 300, 10_000 * MS);
        let now = t0 + 2500 * MS;
        assert_eq!(h.lag(300, now), Some(Lag::AtMost(Duration::ZERO)));
        assert_eq!(h.lag(250, now), Some(Lag::AtMost(1500 * MS)));
        assert_eq!(h.lag(200, now), Some(Lag::AtMost(1500 * MS)));
        assert_eq!(h.lag(100, now), Some(Lag::AtMost(2500 * MS)));
        assert_eq!(h.lag(50, now), Some(Lag::MoreThan(2500 * MS)));
        assert_eq!(WalHistory::default().lag(1, now), None);
    }

    #[test]
    fn history_keeps_only_its_window() {
        let t0 = Instant::now();
        let mut h = WalHistory::default();
        for i in 0..1000i64 {
            h.record(t0 + 100 * MS * i as u32, i, 3000 * MS);
        }
        assert!(h.samples.len() <= 31, "{}", h.samples.len());
        // A replica stuck at the start is known to be further behind than the window.
        let now = t0 + 100_000 * MS;
        assert!(matches!(h.lag(0, now), Some(Lag::MoreThan(d)) if d >= 3000 * MS));
    }

    #[test]
    fn verdicts_skip_what_is_behind_or_unknown() {
        let max = 5000 * MS;
        let state = |lag| Verdict::from_lag(lag, max).state;
        assert_eq!(state(Some(Lag::AtMost(5000 * MS))), ReplicaState::Usable);
        assert_eq!(state(Some(Lag::AtMost(5001 * MS))), ReplicaState::Behind);
        assert_eq!(state(Some(Lag::MoreThan(6000 * MS))), ReplicaState::Behind);
        assert_eq!(
            state(Some(Lag::MoreThan(1000 * MS))),
            ReplicaState::Unchecked
        );
        assert_eq!(state(None), ReplicaState::Unchecked);
    }

    #[test]
    fn a_read_url_takes_what_it_leaves_out_from_the_primary() {
        let primary = "postgres://app:pw@db1:5432/trading?sslmode=verify-full&sslrootcert=/ca.pem&application_name=x";
        let r = inherit_from_primary(primary, "postgres://db2:5433").unwrap();
        let u = url::Url::parse(&r).unwrap();
        assert_eq!(
            (u.host_str(), u.port(), u.username(), u.password(), u.path()),
            (Some("db2"), Some(5433), "app", Some("pw"), "/trading")
        );
        let q: Vec<_> = u.query_pairs().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(q, ["sslmode=verify-full", "sslrootcert=/ca.pem"]);
        // What it names is its own.
        let r = inherit_from_primary(primary, "postgres://ro@db2/other?sslmode=require").unwrap();
        assert_eq!(r, "postgres://ro@db2/other?sslmode=require");
        assert_eq!(host_port("postgres://db2/x"), "db2:5432");
        let e = inherit_from_primary(primary, "not a url").unwrap_err();
        assert!(matches!(e, StoreError::InvalidUrl(_)), "{e}");
    }
}
