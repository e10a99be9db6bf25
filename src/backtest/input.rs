//! The back-test's two inputs, read once: dated news (JSON lines) and hourly klines (CSV). A bad
//! line is counted, logged with its line number and skipped; a file that cannot be read at all
//! is an error naming it.

use super::BacktestError;
use chrono::{DateTime, NaiveDateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use std::collections::HashSet;
use std::path::Path;

/// One news item as published.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NewsItem {
    pub published_at: DateTime<Utc>,
    pub title: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub url: Option<String>,
}

/// What reading a file skipped, for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadCounts {
    pub lines: usize,
    pub kept: usize,
    pub bad: usize,
    pub duplicates: usize,
}

/// Reads news JSON lines. Duplicates (the same URL, or the same title) are dropped after the
/// first: an article republished under a second URL is one piece of news, and counting it twice
/// would double its weight. Keeps the file's order; the replay sorts by time itself.
pub fn read_news(path: &Path) -> Result<(Vec<NewsItem>, ReadCounts), BacktestError> {
    let text = read(path)?;
    Ok(parse_news(&text, &path.display().to_string()))
}

pub fn parse_news(text: &str, name: &str) -> (Vec<NewsItem>, ReadCounts) {
    let mut counts = ReadCounts::default();
    let mut seen_urls: HashSet<String> = HashSet::new();
    let mut seen_titles: HashSet<String> = HashSet::new();
    let mut items = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        counts.lines += 1;
        let item: NewsItem = match serde_json::from_str(line) {
            Ok(item) => item,
            Err(e) => {
                counts.bad += 1;
                tracing::warn!(file = name, line = i + 1, error = %e, "news line skipped");
                continue;
            }
        };
        let title_key = item.title.trim().to_lowercase();
        if title_key.is_empty() {
            counts.bad += 1;
            tracing::warn!(
                file = name,
                line = i + 1,
                "news line without a title skipped"
            );
            continue;
        }
        let url_key = item
            .url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_string);
        let dup_url = url_key.as_ref().is_some_and(|u| seen_urls.contains(u));
        if dup_url || seen_titles.contains(&title_key) {
            counts.duplicates += 1;
            continue;
        }
        if let Some(u) = url_key {
            seen_urls.insert(u);
        }
        seen_titles.insert(title_key);
        items.push(item);
    }
    counts.kept = items.len();
    (items, counts)
}

/// One hourly bar: its open time and close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bar {
    pub open_time: DateTime<Utc>,
    pub close: Decimal,
}

/// Reads klines CSV with a header naming `date` and `close` (other columns ignored); `date` is
/// the bar's open time in UTC, `YYYY-MM-DD HH:MM:SS` or RFC 3339. Returns the bars sorted by
/// open time, one per time (a repeated time keeps the first and is counted as a duplicate).
pub fn read_bars(path: &Path) -> Result<(Vec<Bar>, ReadCounts), BacktestError> {
    let text = read(path)?;
    parse_bars(&text, &path.display().to_string())
}

pub fn parse_bars(text: &str, name: &str) -> Result<(Vec<Bar>, ReadCounts), BacktestError> {
    let mut lines = text.lines().enumerate();
    let header = lines
        .next()
        .map(|(_, h)| h.trim_start_matches('\u{feff}'))
        .unwrap_or_default();
    let columns: Vec<&str> = header.split(',').map(str::trim).collect();
    let column = |want: &str| {
        columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(want))
            .ok_or_else(|| BacktestError::Input {
                file: name.to_string(),
                problem: format!("header {header:?} has no `{want}` column"),
            })
    };
    let (date_at, close_at) = (column("date")?, column("close")?);
    let mut counts = ReadCounts::default();
    let mut bars = Vec::new();
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        counts.lines += 1;
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let parsed = fields
            .get(date_at)
            .and_then(|d| parse_bar_time(d))
            .zip(fields.get(close_at).and_then(|c| c.parse::<Decimal>().ok()))
            .filter(|(_, close)| *close > Decimal::ZERO);
        match parsed {
            Some((open_time, close)) => bars.push(Bar { open_time, close }),
            None => {
                counts.bad += 1;
                tracing::warn!(
                    file = name,
                    line = i + 1,
                    "price line skipped: no date or no positive close"
                );
            }
        }
    }
    bars.sort_by_key(|b| b.open_time);
    let before = bars.len();
    bars.dedup_by_key(|b| b.open_time);
    counts.duplicates = before - bars.len();
    counts.kept = bars.len();
    Ok((bars, counts))
}

fn parse_bar_time(text: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .map(|t| t.and_utc())
        .ok()
        .or_else(|| {
            DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        })
}

fn read(path: &Path) -> Result<String, BacktestError> {
    std::fs::read_to_string(path).map_err(|e| BacktestError::Input {
        file: path.display().to_string(),
        problem: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn news_lines_are_checked_and_deduplicated() {
        let text = r#"{"published_at":"2022-01-01T10:00:00Z","title":"Bitcoin rallies","url":"https://a/1"}
not json
{"published_at":"2022-01-01T11:00:00Z","title":"Other news","url":"https://a/1"}
{"published_at":"2022-01-01T12:00:00Z","title":"  bitcoin RALLIES ","url":"https://b/2"}
{"published_at":"2022-01-01T13:00:00Z","title":""}
{"published_at":"yesterday","title":"x"}
{"published_at":"2022-01-02T09:30:00+02:00","title":"Ether slips","body":"ETH fell.","source":"Wire"}
"#;
        let (items, counts) = parse_news(text, "t");
        assert_eq!(
            counts,
            ReadCounts {
                lines: 7,
                kept: 2,
                bad: 3,
                duplicates: 2
            }
        );
        assert_eq!(
            items[1].published_at.to_rfc3339(),
            "2022-01-02T07:30:00+00:00"
        );
        assert_eq!(items[1].body, "ETH fell.");
    }

    #[test]
    fn klines_need_a_date_and_a_close_and_come_out_sorted() {
        let text = "date,open,high,low,close,volume,ticker
2021-10-01 01:00:00,1,1,1,43742.74000000,1,BTCUSDT
2021-10-01 00:00:00,1,1,1,43694.48000000,1,BTCUSDT
2021-10-01 00:00:00,1,1,1,1.0,1,BTCUSDT
2021-10-01 02:00:00,1,1,1,-5,1,BTCUSDT
garbage
";
        let (bars, counts) = parse_bars(text, "t").unwrap();
        assert_eq!((counts.kept, counts.bad, counts.duplicates), (2, 2, 1));
        assert_eq!(bars[0].close.to_string(), "43694.48000000");
        assert!(bars[0].open_time < bars[1].open_time);
        assert!(matches!(
            parse_bars("time,price\n", "t"),
            Err(BacktestError::Input { .. })
        ));
    }
}
