//! The publication time: which of the page's date candidates to trust (selector, publisher
//! metadata, JSON-LD, `<time>`, the feed), and parsing the formats seen in them into UTC.

use crate::domain::news::FeedEntryMeta;
use crate::news::extract::{Extracted, JsonLd, PageMeta};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// Publication time, most specific source first: the source's configured
/// selector, then publisher metadata (`article:published_time` and friends,
/// JSON-LD `datePublished`), then the first `<time datetime>` (less reliable:
/// it may belong to a sidebar item), then the feed entry.
pub(super) fn published_at(
    ex: &Extracted,
    meta: &PageMeta,
    ld: &JsonLd,
    feed: Option<&FeedEntryMeta>,
) -> Option<DateTime<Utc>> {
    let metas = [
        "article:published_time",
        "og:published_time",
        "datepublished",
        "pubdate",
        "publishdate",
        "parsely-pub-date",
        "sailthru.date",
        "dc.date.issued",
        "dc.date",
        "date",
    ];
    ex.published
        .as_deref()
        .and_then(parse_datetime)
        .or_else(|| {
            metas
                .iter()
                .find_map(|k| meta.get(k).and_then(parse_datetime))
        })
        .or_else(|| ld.date_published.as_deref().and_then(parse_datetime))
        .or_else(|| meta.time_datetimes.iter().find_map(|t| parse_datetime(t)))
        // Already a time (the feed parser read it), not text to parse again.
        .or_else(|| feed.and_then(|f| f.published_at))
}

/// Parses the date formats seen in article metadata and feeds into UTC.
/// Values without an offset are taken as UTC; date-only values as midnight UTC.
pub(super) fn parse_datetime(raw: &str) -> Option<DateTime<Utc>> {
    let s = raw.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&Utc));
    }
    if let Ok(d) = DateTime::parse_from_rfc2822(s) {
        return Some(d.with_timezone(&Utc));
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S %z",
        "%a, %d %b %Y %H:%M:%S %Z",
    ] {
        if let Ok(d) = DateTime::parse_from_str(s, f) {
            return Some(d.with_timezone(&Utc));
        }
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S%.fZ",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, f) {
            return Some(Utc.from_utc_datetime(&d));
        }
    }
    // "... GMT"/"... UTC" suffixes that chrono's %Z cannot parse.
    for suffix in [" GMT", " UTC", "Z"] {
        if let Some(rest) = s.strip_suffix(suffix)
            && let Some(d) = [
                "%a, %d %b %Y %H:%M:%S",
                "%Y-%m-%dT%H:%M:%S",
                "%Y-%m-%d %H:%M:%S",
            ]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(rest.trim(), f).ok())
        {
            return Some(Utc.from_utc_datetime(&d));
        }
    }
    let date_part = s.get(..10).unwrap_or(s);
    for f in ["%Y-%m-%d", "%Y/%m/%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(date_part, f) {
            return d.and_hms_opt(0, 0, 0).map(|n| Utc.from_utc_datetime(&n));
        }
    }
    for f in ["%B %d, %Y", "%b %d, %Y", "%d %B %Y", "%d %b %Y"] {
        if let Ok(d) = NaiveDate::parse_from_str(s, f) {
            return d.and_hms_opt(0, 0, 0).map(|n| Utc.from_utc_datetime(&n));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Datelike;

    #[test]
    fn dates_parse_to_utc() {
        let d = parse_datetime("2024-01-15T10:00:00+02:00").unwrap();
        assert_eq!(d.to_rfc3339(), "2024-01-15T08:00:00+00:00");
        let d = parse_datetime("Mon, 15 Jan 2024 10:00:00 GMT").unwrap();
        assert_eq!(d.to_rfc3339(), "2024-01-15T10:00:00+00:00");
        let d = parse_datetime("Mon, 15 Jan 2024 10:00:00 -0500").unwrap();
        assert_eq!(d.to_rfc3339(), "2024-01-15T15:00:00+00:00");
        let d = parse_datetime("2024-01-15T10:00:00.123-0500").unwrap();
        assert_eq!(d.to_rfc3339(), "2024-01-15T15:00:00.123+00:00");
        assert_eq!(parse_datetime("2024-01-15").unwrap().day(), 15);
        assert_eq!(
            parse_datetime("2024-01-15 10:00:00").unwrap().to_rfc3339(),
            "2024-01-15T10:00:00+00:00"
        );
        assert_eq!(parse_datetime("November 19, 2019").unwrap().month(), 11);
        assert!(parse_datetime("yesterday").is_none());
        assert!(parse_datetime("").is_none());
    }
}
