//! The `--summary` report (Markdown): inputs, then per horizon every model's coverage,
//! accuracy with its 95 % interval, Brier score against the coin and the base rate, the
//! reliability tables, and the calibration in force month by month.

use super::BacktestOptions;
use super::input::ReadCounts;
use super::replay::{Decision, EvidenceBySymbol};
use super::score::{self, Evaluation, MODELS, Model, Row};
use chrono::{DateTime, Utc};
use std::fmt::Write as _;

pub struct Context<'a> {
    pub opts: &'a BacktestOptions,
    pub news_counts: &'a ReadCounts,
    pub bar_counts: &'a [(String, ReadCounts)],
    pub evidence: &'a EvidenceBySymbol,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub seconds: f64,
}

fn pct(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

pub fn render(ctx: &Context, decisions: &[Decision], rows: &[Row], eval: &Evaluation) -> String {
    let mut s = String::new();
    let o = ctx.opts;
    let _ = writeln!(s, "# Back-test of news-driven predictions\n");
    let _ = writeln!(s, "Command: `{}`\n", o.command);
    let n = ctx.news_counts;
    let _ = writeln!(
        s,
        "- news: {} lines, {} used, {} duplicates and {} bad lines skipped",
        n.lines, n.kept, n.duplicates, n.bad
    );
    for (symbol, c) in ctx.bar_counts {
        let _ = writeln!(
            s,
            "- {symbol}: {} hourly bars ({} bad, {} duplicate times skipped); {} articles about it",
            c.kept,
            c.bad,
            c.duplicates,
            ctx.evidence.get(symbol).map_or(0, Vec::len)
        );
    }
    let _ = writeln!(
        s,
        "- decisions every {} min from {} to {} ({} symbol-decisions); an article counts {} min after `published_at`; evidence window {} h, half-life {:.1} h",
        o.every.num_minutes(),
        ctx.from.format("%Y-%m-%d %H:%M"),
        ctx.to.format("%Y-%m-%d %H:%M"),
        decisions.len(),
        o.embargo.num_minutes(),
        o.weigh.window.num_hours(),
        o.weigh.half_life.num_minutes() as f64 / 60.0
    );
    let first = eval.months.first().copied();
    let scored_months: Vec<String> = eval
        .months
        .iter()
        .skip(1)
        .map(|m| score::month_label(*m))
        .collect();
    let mode = match &o.calibration {
        score::CalibrationMode::WalkForward => {
            "walk-forward (each month stated with the calibration fitted on the calls due before it)"
                .to_string()
        }
        score::CalibrationMode::Fixed(t) => format!("one fixed table ({})", t.made_by),
    };
    let _ = writeln!(
        s,
        "- calibration: {mode}; scored months: {} (the first month, {}, only trains)",
        scored_months.join(", "),
        first.map(score::month_label).unwrap_or_default()
    );
    let _ = writeln!(s, "- run time: {:.1} s\n", ctx.seconds);
    let _ = writeln!(
        s,
        "A call comes true when the close `horizon` later is strictly above (UP) or below (DOWN) the reference close. \
         p(up) = 0.5 + c/2 for UP, 0.5 − c/2 for DOWN, 0.5 for SIDEWAYS; Brier of p(up) against \"the close rose\". \
         Intervals: 95 %, bootstrap resampling whole days ({} draws, fixed seed).\n",
        tradepipe_model::calibration::BOOTSTRAP_DRAWS
    );

    let symbols: Vec<String> = o.prices.iter().map(|(s, _)| s.clone()).collect();
    for (k, h) in o.horizons.iter().enumerate() {
        let _ = writeln!(s, "## Horizon {h}\n");
        let _ = writeln!(
            s,
            "| symbol | model | scored | coverage | accuracy [95 % CI] | Brier | coin | base rate (Brier) |"
        );
        let _ = writeln!(s, "|---|---|---:|---:|---|---:|---:|---|");
        let mut groups: Vec<(String, Option<String>)> = symbols
            .iter()
            .map(|x| (x.clone(), Some(x.clone())))
            .collect();
        if symbols.len() > 1 {
            groups.push(("all".into(), None));
        }
        for (name, only) in &groups {
            let keep = |r: &Row| {
                r.horizon == k
                    && Some(score::month_of(
                        decisions[r.decision].market.prediction_time,
                    )) != first
                    && only
                        .as_ref()
                        .is_none_or(|sym| decisions[r.decision].symbol == *sym)
            };
            let base = score::base_rate(rows, &keep);
            for (m, model) in MODELS.iter().enumerate() {
                let f = score::figures(decisions, rows, eval, m, &keep);
                let accuracy = match (f.accuracy(), f.ci95) {
                    (Some(a), Some((lo, hi))) => {
                        format!("{} [{}–{}] of {}", pct(a), pct(lo), pct(hi), f.calls)
                    }
                    _ => "no calls".into(),
                };
                let brier = f.brier.map_or("–".into(), |b| format!("{b:.4}"));
                let base_text = if m == 0 {
                    base.map_or("–".into(), |(b, bs)| format!("{} up ({bs:.4})", pct(b)))
                } else {
                    String::new()
                };
                let _ = writeln!(
                    s,
                    "| {name} | {} | {} | {} | {accuracy} | {brier} | 0.2500 | {base_text} |",
                    model.name(),
                    f.rows,
                    pct(f.coverage()),
                );
            }
        }
        let keep_all = |r: &Row| {
            r.horizon == k
                && Some(score::month_of(
                    decisions[r.decision].market.prediction_time,
                )) != first
        };
        for model in [Model::Calibrated, Model::Raw] {
            let m = MODELS.iter().position(|x| *x == model).unwrap_or(0);
            let lines = score::reliability(rows, eval, m, &keep_all);
            let _ = writeln!(
                s,
                "\nReliability, {} (all symbols): stated confidence -> share of calls that came true\n",
                model.name()
            );
            if lines.is_empty() {
                let _ = writeln!(
                    s,
                    "No UP/DOWN calls: every prediction was SIDEWAYS (p(up) = 0.5)."
                );
                continue;
            }
            let _ = writeln!(
                s,
                "| confidence below | calls | mean confidence | should come true | came true |"
            );
            let _ = writeln!(s, "|---:|---:|---:|---:|---:|");
            for l in lines {
                let _ = writeln!(
                    s,
                    "| {:.2} | {} | {:.3} | {} | {} |",
                    l.upper.min(1.0),
                    l.calls,
                    l.mean_confidence,
                    pct(l.stated_hit),
                    pct(l.realised_hit)
                );
            }
        }
        let _ = writeln!(
            s,
            "\nCalibration in force per month (news calls due before the month):\n"
        );
        let _ = writeln!(s, "| month | calls | days | hit rate [95 % CI] | edge |");
        let _ = writeln!(s, "|---|---:|---:|---|---|");
        for &month in &eval.months {
            if let Some(c) = eval.calibrations.get(&(k, month)) {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} [{}–{}] | {} |",
                    score::month_label(month),
                    c.calls,
                    c.days,
                    pct(c.hit_rate),
                    pct(c.hit_rate_ci95[0]),
                    pct(c.hit_rate_ci95[1]),
                    if c.edge {
                        format!("yes: {:?}", c.hit_probability)
                    } else {
                        "no".into()
                    }
                );
            }
        }
        let _ = writeln!(s);
    }
    s
}
