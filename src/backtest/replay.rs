//! The replay: every article analysed once by the daemon's [`Analyzer`] (with the normalizer's
//! symbol tagging), then at every decision time each symbol's evidence folded by the
//! PredictionActor's [`predict::aggregate`]. Pure: no files, no clock.
//!
//! No look-ahead, by construction: an article becomes evidence at `published_at + embargo`
//! (its `analyzed_at` here), and a decision at `t` sees only evidence that arrived at or before
//! `t` and only bars that closed at or before `t`, exactly the daemon's view at `t`.

use super::input::{Bar, NewsItem};
use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use std::collections::HashMap;
use tradepipe_model::aliases::SymbolAliases;
use tradepipe_model::analysis::Analyzer;
use tradepipe_model::hash::{FNV_OFFSET, fnv1a};
use tradepipe_model::predict::{self, Aggregate, MarketView, WeighParams};
use tradepipe_model::record::{AnalysisRecord, Evidence};

/// Every bar of the price files lasts an hour.
pub const BAR: Duration = Duration::hours(1);

/// Evidence per symbol, in the order it arrived.
pub type EvidenceBySymbol = HashMap<String, Vec<Evidence>>;

/// Analyses every item once and files it as evidence under each tracked symbol it is about:
/// tagged in its text (the normalizer's rule) or named by an entity (the analysis's), with the
/// entity's relevance and the source's reliability, as the daemon's evidence query returns it.
pub fn analyse_news(
    items: &[NewsItem],
    symbols: &[String],
    reliability: &dyn Fn(&str) -> f64,
    embargo: Duration,
) -> EvidenceBySymbol {
    let aliases = SymbolAliases::default_crypto();
    let analyzer = Analyzer::with_aliases(&aliases);
    let mut by_symbol: EvidenceBySymbol = symbols.iter().map(|s| (s.clone(), Vec::new())).collect();
    for item in items {
        let tagged = aliases.find(&format!("{}\n{}", item.title, item.body));
        let analysis = analyzer.analyze(&item.title, &item.body, &tagged);
        let arrived = item.published_at + embargo;
        let id = article_id(item);
        let record = AnalysisRecord::new(&id, &tagged, analysis, arrived);
        for symbol in record.symbols.iter() {
            let Some(list) = by_symbol.get_mut(symbol) else {
                continue;
            };
            let relevance = record
                .analysis
                .entities
                .iter()
                .filter(|e| e.symbol.as_deref() == Some(symbol.as_str()))
                .map(|e| e.relevance)
                .reduce(f64::max);
            list.push(Evidence {
                article_id: id.clone(),
                title: item.title.clone(),
                source_name: item.source.clone(),
                reliability: reliability(&item.source),
                published_at: Some(item.published_at),
                analyzed_at: arrived,
                sentiment: record.analysis.sentiment.clone(),
                relevance,
            });
        }
    }
    for list in by_symbol.values_mut() {
        // By arrival, then id: the order the daemon's query returns (analyzed_at, id).
        list.sort_by(|a, b| {
            a.analyzed_at
                .cmp(&b.analyzed_at)
                .then_with(|| a.article_id.cmp(&b.article_id))
        });
    }
    by_symbol
}

/// A stable id from the article itself (its URL, else its title), so adding an article to the
/// file changes no other article's id.
fn article_id(item: &NewsItem) -> String {
    let key = item.url.as_deref().unwrap_or(&item.title);
    format!("{:016x}", fnv1a(FNV_OFFSET, key.as_bytes()))
}

/// One symbol's hourly bars, sorted by open time.
#[derive(Debug, Clone)]
pub struct Market {
    pub symbol: String,
    bars: Vec<Bar>,
    by_open: HashMap<DateTime<Utc>, usize>,
}

impl Market {
    pub fn new(symbol: &str, bars: Vec<Bar>) -> Market {
        let by_open = bars
            .iter()
            .enumerate()
            .map(|(i, b)| (b.open_time, i))
            .collect();
        Market {
            symbol: symbol.to_string(),
            bars,
            by_open,
        }
    }

    /// The last bar closed at or before `at` (its close time is its open + 1 h).
    fn last_closed(&self, at: DateTime<Utc>) -> Option<usize> {
        self.bars
            .partition_point(|b| b.open_time + BAR <= at)
            .checked_sub(1)
    }

    /// The close of the bar that closes at `at`, if there is one.
    pub fn close_ending_at(&self, at: DateTime<Utc>) -> Option<Decimal> {
        self.by_open.get(&(at - BAR)).map(|i| self.bars[*i].close)
    }

    pub fn first_open(&self) -> Option<DateTime<Utc>> {
        self.bars.first().map(|b| b.open_time)
    }

    pub fn last_close_time(&self) -> Option<DateTime<Utc>> {
        self.bars.last().map(|b| b.open_time + BAR)
    }

    /// What the predictor knows of the market at `at`: the close of the last bar closed by
    /// then (the prediction is anchored at its close time, market time, as in the daemon) and
    /// the realised volatility of the `volatility_bars` bars up to it, per minute (hourly
    /// volatility / √60: the daemon measures it on 1m candles, which the files do not have).
    pub fn view(&self, at: DateTime<Utc>, volatility_bars: usize) -> Option<MarketView> {
        let last = self.last_closed(at)?;
        let bar = self.bars[last];
        let first = (last + 1).saturating_sub(volatility_bars.max(2));
        let closes: Vec<Decimal> = self.bars[first..=last]
            .iter()
            .filter(|b| b.open_time > bar.open_time - BAR * volatility_bars as i32)
            .map(|b| b.close)
            .collect();
        Some(MarketView {
            prediction_time: bar.open_time + BAR,
            base_price: bar.close,
            minute_volatility: predict::realized_volatility(&closes).map(|v| v / 60f64.sqrt()),
        })
    }
}

/// How the replay decides.
#[derive(Debug, Clone)]
pub struct ReplaySettings {
    pub weigh: WeighParams,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub every: Duration,
    pub volatility_bars: usize,
}

/// One decision of one symbol: what the predictor saw and its raw (uncalibrated) call.
#[derive(Debug, Clone)]
pub struct Decision {
    pub symbol: String,
    pub decided_at: DateTime<Utc>,
    pub market: MarketView,
    pub aggregate: Aggregate,
}

/// Decisions at `from`, `from + every`, ... up to `to`, for every market with a closed bar by
/// then. Each sees the evidence that arrived within the window before it, as the daemon's
/// query `analyzed_at >= now − window` does at `now`.
pub fn decide(
    evidence: &EvidenceBySymbol,
    markets: &[Market],
    settings: &ReplaySettings,
) -> Vec<Decision> {
    let mut out = Vec::new();
    let step = settings.every.max(Duration::minutes(1));
    let mut at = settings.from;
    while at <= settings.to {
        for market in markets {
            let Some(view) = market.view(at, settings.volatility_bars) else {
                continue;
            };
            let all = evidence
                .get(&market.symbol)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let since = at - settings.weigh.window;
            let start = all.partition_point(|e| e.analyzed_at < since);
            let end = all.partition_point(|e| e.analyzed_at <= at);
            let visible = &all[start..end.max(start)];
            out.push(Decision {
                symbol: market.symbol.clone(),
                decided_at: at,
                aggregate: predict::aggregate(visible, at, &settings.weigh),
                market: view,
            });
        }
        at += step;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn bars(closes: &[&str]) -> Vec<Bar> {
        closes
            .iter()
            .enumerate()
            .map(|(i, c)| Bar {
                open_time: t("2022-01-01T00:00:00Z") + BAR * i as i32,
                close: c.parse().unwrap(),
            })
            .collect()
    }

    #[test]
    fn a_decision_sees_only_bars_closed_by_then() {
        let m = Market::new("BTCUSDT", bars(&["100", "101", "102", "103"]));
        // At 02:00 the 01:00 bar has just closed; the 02:00 bar has not.
        let v = m.view(t("2022-01-01T02:00:00Z"), 24).unwrap();
        assert_eq!(v.prediction_time, t("2022-01-01T02:00:00Z"));
        assert_eq!(v.base_price.to_string(), "101");
        let v = m.view(t("2022-01-01T02:59:59Z"), 24).unwrap();
        assert_eq!(v.base_price.to_string(), "101", "02:00 bar still open");
        assert!(m.view(t("2022-01-01T00:59:00Z"), 24).is_none());
        assert_eq!(
            m.close_ending_at(t("2022-01-01T04:00:00Z"))
                .map(|d| d.to_string()),
            Some("103".into())
        );
        assert_eq!(m.close_ending_at(t("2022-01-01T05:00:00Z")), None);
        // Volatility from the bars up to the reference only: 100 -> 101 -> 102.
        let two = m.view(t("2022-01-01T03:00:00Z"), 24).unwrap();
        let expected = predict::realized_volatility(
            &bars(&["100", "101", "102"])
                .iter()
                .map(|b| b.close)
                .collect::<Vec<_>>(),
        )
        .unwrap()
            / 60f64.sqrt();
        assert_eq!(two.minute_volatility, Some(expected));
    }
}
