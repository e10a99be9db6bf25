//! Candle months: `trading.price_candles` is partitioned by UTC month (migration 0007), so a
//! month past the age of every candle policy goes whole: detached, archived by the policies'
//! usual path (one file per policy and day, deduplicated against earlier passes), then dropped,
//! instead of being deleted row by row. What is left to the policies' own row path is the rest:
//! the month only partly past its age, the 1m rows of a month whose 5m+ rows are still kept (a
//! partition holds every interval), and rows in the DEFAULT partition.
//!
//! Order and failures: the month is detached first and archived from the detached table, so the
//! archive holds exactly what is dropped (nothing can be written into a detached table through
//! the parent: a candle for that month now goes to the default partition). The drop checks that
//! the table holds exactly the rows the policies archived or counted. A failure anywhere leaves
//! the table detached, its rows not lost; the next pass finds it by name and finishes it.

use super::{Lifecycle, Policy, PolicyKind, PolicyReport, RetentionError, cutoff, day_start};
use crate::store::{CandlePartition, Resolved, RowTarget};
use chrono::{DateTime, Datelike, Months, Utc};

/// The name of the step in a pass's report.
pub const STEP: &str = "candle_months";

const CANDLE_TABLE: &str = "trading.price_candles";

pub(super) fn is_candle_policy(p: &Policy) -> bool {
    candle_target(p).is_some()
}

fn candle_target(p: &Policy) -> Option<&RowTarget> {
    match &p.kind {
        PolicyKind::Rows { target, .. } if target.table == CANDLE_TABLE => Some(target),
        _ => None,
    }
}

/// What the step did: its own report (partitions), and per candle policy the rows it archived
/// and removed and an archive failure, which [`Lifecycle::run_pass`] hands to that policy's
/// report so each row is counted under the policy it belongs to.
pub(super) struct MonthsOutcome {
    pub step: PolicyReport,
    per_policy: Vec<PolicyReport>,
}

impl MonthsOutcome {
    pub fn take(&mut self, policy: &str) -> Option<PolicyReport> {
        let i = self.per_policy.iter().position(|r| r.policy == policy)?;
        Some(self.per_policy.swap_remove(i))
    }
}

fn failed(r: &mut PolicyReport, e: &RetentionError) {
    metrics::counter!("tradepipe_retention_failures_total", "policy" => r.policy).increment(1);
    tracing::error!(policy = r.policy, error = %e, "candle month step failed; the next pass continues where this one stopped");
    r.error = Some(e.to_string());
}

impl Lifecycle {
    pub(super) async fn candle_months(&self, now: DateTime<Utc>, dry_run: bool) -> MonthsOutcome {
        let policies: Vec<&Policy> = self
            .policies
            .iter()
            .filter(|p| is_candle_policy(p))
            .collect();
        let mut out = MonthsOutcome {
            step: PolicyReport {
                policy: STEP,
                ..PolicyReport::default()
            },
            per_policy: policies
                .iter()
                .map(|p| PolicyReport {
                    policy: p.name,
                    ..PolicyReport::default()
                })
                .collect(),
        };
        if let Err(e) = self.months(&policies, now, dry_run, &mut out).await {
            failed(&mut out.step, &e);
        }
        out
    }

    async fn months(
        &self,
        policies: &[&Policy],
        now: DateTime<Utc>,
        dry_run: bool,
        out: &mut MonthsOutcome,
    ) -> Result<(), RetentionError> {
        let (m, store) = (&self.stores.maintenance, &self.stores.market);
        let mut resolved: Vec<Resolved> = Vec::new();
        for p in policies {
            let Some(target) = candle_target(p) else {
                continue;
            };
            let Some(r) = store.resolve(target).await? else {
                out.step.skipped = Some(format!("{CANDLE_TABLE} does not exist"));
                return Ok(());
            };
            resolved.push(r);
        }
        // A partition holds every interval: it goes only once it is past the age of every
        // candle policy (a month past one year holds 1m candles that may go and 1d candles that
        // stay five years).
        let Some(drop_before) = policies.iter().map(|p| cutoff(p, now)).min() else {
            out.step.skipped = Some("no candle policy".into());
            return Ok(());
        };
        out.step.cutoff = Some(drop_before);
        let ahead = self.cfg.candle_partitions_ahead_months;
        if !dry_run && ahead > 0 {
            out.step.partitions_created =
                m.ensure_candle_partitions(now.date_naive(), ahead).await? as u64;
        }
        for part in m.candle_partitions().await? {
            let Some(next) = part.month.checked_add_months(Months::new(1)) else {
                continue;
            };
            if day_start(next) > drop_before {
                if !part.attached {
                    tracing::warn!(partition = %part.name, "detached candle partition not past every candle policy's age (were the ages raised?); left as it is");
                }
                continue;
            }
            out.step.partitions_dropped += 1;
            if dry_run {
                // Its rows are in the policies' own dry-run counts (all rows past the cutoff).
                continue;
            }
            if !self.month(&part, policies, &resolved, out).await? {
                // An archive failure, reported under its policy: stop here, as a row policy
                // stops at its first failing day.
                out.step.partitions_dropped -= 1;
                return Ok(());
            }
        }
        Ok(())
    }

    /// Detaches (if still attached), archives and drops one month. False when archiving failed
    /// (reported under the policy).
    async fn month(
        &self,
        part: &CandlePartition,
        policies: &[&Policy],
        resolved: &[Resolved],
        out: &mut MonthsOutcome,
    ) -> Result<bool, RetentionError> {
        let (m, store) = (&self.stores.maintenance, &self.stores.market);
        if part.attached {
            m.detach_candle_partition(part).await?;
        }
        let table = format!("trading.{}", part.name);
        let next = part
            .month
            .checked_add_months(Months::new(1))
            .unwrap_or(part.month);
        let mut rows = Vec::with_capacity(policies.len());
        for (i, (p, r)) in policies.iter().zip(resolved).enumerate() {
            let from_part = r.reading_from(table.clone());
            let report = &mut out.per_policy[i];
            let n = if p.archive {
                match self.archive_month(p, &from_part, part, report).await {
                    Ok(n) => n,
                    Err(e) => {
                        failed(report, &e);
                        return Ok(false);
                    }
                }
            } else {
                store.count_before(&from_part, day_start(next)).await?
            };
            rows.push(n);
        }
        m.drop_candle_partition(part, rows.iter().sum()).await?;
        for (report, n) in out.per_policy.iter_mut().zip(rows) {
            report.rows_removed += n;
        }
        Ok(true)
    }

    /// Archives a policy's rows of one month, day by day, without deleting them (the table is
    /// dropped instead); returns how many rows the month holds for the policy.
    async fn archive_month(
        &self,
        p: &Policy,
        from_part: &Resolved,
        part: &CandlePartition,
        report: &mut PolicyReport,
    ) -> Result<u64, RetentionError> {
        let (archive, policy) = (self.archive.clone(), p.name);
        super::on_disk(&self.archive, move || archive.remove_temporaries(policy)).await?;
        let store = self.stores.market.as_ref();
        let mut rows = 0;
        for day in part
            .month
            .iter_days()
            .take_while(|d| d.month0() == part.month.month0())
        {
            rows += self
                .archive_day(p, store, from_part, day, report, false)
                .await?;
        }
        Ok(rows)
    }
}
