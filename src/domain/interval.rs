//! Candle intervals and their UTC bucket boundaries, following Binance's conventions.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;
const WEEK_MS: i64 = 7 * DAY_MS;
/// 1970-01-01 was a Thursday; the first Monday 00:00 UTC is four days later. Binance's weekly
/// klines open on Monday 00:00 UTC, so week buckets are counted from here.
const FIRST_MONDAY_MS: i64 = 4 * DAY_MS;

/// The candle intervals tradepipe builds (the seed's `chk_interval` set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Interval {
    #[serde(rename = "1m")]
    M1,
    #[serde(rename = "5m")]
    M5,
    #[serde(rename = "15m")]
    M15,
    #[serde(rename = "30m")]
    M30,
    #[serde(rename = "1h")]
    H1,
    #[serde(rename = "4h")]
    H4,
    #[serde(rename = "1d")]
    D1,
    #[serde(rename = "1w")]
    W1,
}

impl Interval {
    pub const ALL: [Interval; 8] = [
        Interval::M1,
        Interval::M5,
        Interval::M15,
        Interval::M30,
        Interval::H1,
        Interval::H4,
        Interval::D1,
        Interval::W1,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Interval::M1 => "1m",
            Interval::M5 => "5m",
            Interval::M15 => "15m",
            Interval::M30 => "30m",
            Interval::H1 => "1h",
            Interval::H4 => "4h",
            Interval::D1 => "1d",
            Interval::W1 => "1w",
        }
    }

    pub fn duration_ms(self) -> i64 {
        match self {
            Interval::M1 => MINUTE_MS,
            Interval::M5 => 5 * MINUTE_MS,
            Interval::M15 => 15 * MINUTE_MS,
            Interval::M30 => 30 * MINUTE_MS,
            Interval::H1 => 60 * MINUTE_MS,
            Interval::H4 => 240 * MINUTE_MS,
            Interval::D1 => DAY_MS,
            Interval::W1 => WEEK_MS,
        }
    }

    /// Open time (UTC ms) of the bucket holding `time_ms`. Every interval up to a day is aligned
    /// to the epoch; weeks are aligned to Monday 00:00 UTC.
    pub fn open_time(self, time_ms: i64) -> i64 {
        let (origin, len) = match self {
            Interval::W1 => (FIRST_MONDAY_MS, WEEK_MS),
            other => (0, other.duration_ms()),
        };
        origin + (time_ms - origin).div_euclid(len) * len
    }

    /// Close time of the bucket that opens at `open_time_ms`: open + length - 1 ms, as Binance
    /// reports it.
    pub fn close_time(self, open_time_ms: i64) -> i64 {
        open_time_ms + self.duration_ms() - 1
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown candle interval {0:?} (expected one of 1m 5m 15m 30m 1h 4h 1d 1w)")]
pub struct UnknownInterval(pub String);

impl FromStr for Interval {
    type Err = UnknownInterval;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Interval::ALL
            .into_iter()
            .find(|i| i.as_str() == s)
            .ok_or_else(|| UnknownInterval(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_open_on_monday_utc() {
        // 2024-08-08 was a Thursday; its week opened Monday 2024-08-05 00:00 UTC.
        let thu = 1_723_161_600_000 - 1; // 2024-08-08T23:59:59.999Z
        assert_eq!(Interval::W1.open_time(thu), 1_722_816_000_000);
        assert_eq!(Interval::W1.open_time(1_722_816_000_000), 1_722_816_000_000);
        assert_eq!(
            Interval::W1.open_time(1_722_816_000_000 - 1),
            1_722_816_000_000 - WEEK_MS
        );
    }

    #[test]
    fn close_time_is_one_ms_before_next_open() {
        for i in Interval::ALL {
            let open = i.open_time(1_723_161_601_437);
            assert_eq!(i.close_time(open) + 1, i.open_time(open + i.duration_ms()));
            assert!(open <= 1_723_161_601_437 && 1_723_161_601_437 <= i.close_time(open));
        }
    }

    #[test]
    fn parses_its_own_names_only() {
        for i in Interval::ALL {
            assert_eq!(i.as_str().parse::<Interval>().ok(), Some(i));
        }
        assert!("2m".parse::<Interval>().is_err());
    }
}
