//! The one retry policy of the daemon (crawler, exchange REST backfill, exchange reconnects):
//! capped exponential backoff with full jitter, and a server's `Retry-After` honoured up to a
//! configured maximum. Full jitter (a uniform draw in `[0, cap]`) spreads the retries of many
//! clients that failed together, so a site or exchange recovering from an outage is not hit by
//! a synchronized wave.

use chrono::{DateTime, NaiveDateTime, Utc};
use rand::Rng;
use std::time::Duration;

/// Exponential backoff with full jitter. `attempt` counts from 1 (the first retry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The cap of the first retry's draw.
    pub initial: Duration,
    /// No draw exceeds this.
    pub max: Duration,
    /// A server's `Retry-After` is obeyed up to this long (a larger one is clamped to it).
    pub max_retry_after: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration, max_retry_after: Duration) -> Backoff {
        Backoff {
            initial: initial.max(Duration::from_millis(1)),
            max: max.max(initial),
            max_retry_after,
        }
    }

    /// From configuration keys: `*_ms` durations and a Retry-After maximum in seconds.
    pub(crate) fn from_settings(
        initial_ms: u64,
        max_ms: u64,
        max_retry_after_secs: u64,
    ) -> Backoff {
        Backoff::new(
            Duration::from_millis(initial_ms),
            Duration::from_millis(max_ms),
            Duration::from_secs(max_retry_after_secs),
        )
    }

    /// `min(max, initial * 2^(attempt-1))`: the upper bound of attempt `attempt`'s draw.
    pub(crate) fn ceiling(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(30);
        self.initial
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// A uniform draw in `[0, ceiling(attempt)]`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let cap = self.ceiling(attempt).as_millis() as u64;
        Duration::from_millis(rand::rng().random_range(0..=cap))
    }

    /// How long to wait before retry `attempt`: the jittered delay, but never less than what the
    /// server asked for (clamped to `max_retry_after`).
    pub fn wait(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let drawn = self.delay(attempt);
        match retry_after {
            Some(asked) => drawn.max(self.clamp_retry_after(asked)),
            None => drawn,
        }
    }

    pub(crate) fn clamp_retry_after(&self, asked: Duration) -> Duration {
        asked.min(self.max_retry_after)
    }
}

/// A `Retry-After` value: delay-seconds (`120`) or an HTTP-date (`Wed, 21 Oct 2015 07:28:00 GMT`,
/// and the obsolete RFC 850 and asctime forms), as a wait from `now`. A date in the past is a
/// zero wait; a value that is neither is `None` (the caller falls back to its own backoff).
pub(crate) fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Absurdly long digit strings saturate instead of failing.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = http_date(value)?;
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// The `Retry-After` header of a response, parsed against the current time.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, Utc::now())
}

fn http_date(value: &str) -> Option<DateTime<Utc>> {
    // IMF-fixdate is a subset of RFC 2822 (GMT is an accepted zone name there).
    if let Ok(d) = DateTime::parse_from_rfc2822(value) {
        return Some(d.with_timezone(&Utc));
    }
    for format in ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"] {
        if let Ok(d) = NaiveDateTime::parse_from_str(value, format) {
            return Some(d.and_utc());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn policy() -> Backoff {
        Backoff::new(
            Duration::from_millis(100),
            Duration::from_secs(2),
            Duration::from_secs(60),
        )
    }

    #[test]
    fn jitter_stays_within_the_exponential_ceiling() {
        let p = policy();
        assert_eq!(p.ceiling(1), Duration::from_millis(100));
        assert_eq!(p.ceiling(2), Duration::from_millis(200));
        assert_eq!(p.ceiling(5), Duration::from_millis(1600));
        assert_eq!(p.ceiling(6), Duration::from_secs(2), "capped");
        assert_eq!(p.ceiling(u32::MAX), Duration::from_secs(2), "no overflow");
        for attempt in 1..=8 {
            let draws: Vec<Duration> = (0..500).map(|_| p.delay(attempt)).collect();
            assert!(draws.iter().all(|d| *d <= p.ceiling(attempt)));
            // Jittered, not a fixed schedule: the draws spread over the range.
            let lo = draws.iter().min().copied().unwrap_or_default();
            let hi = draws.iter().max().copied().unwrap_or_default();
            assert!(
                hi - lo >= p.ceiling(attempt) / 2,
                "attempt {attempt}: {lo:?}..{hi:?}"
            );
        }
    }

    #[test]
    fn retry_after_is_a_floor_clamped_to_the_maximum() {
        let p = policy();
        for _ in 0..100 {
            assert!(p.wait(1, Some(Duration::from_secs(2))) >= Duration::from_secs(2));
            assert_eq!(
                p.wait(1, Some(Duration::from_secs(3600))),
                Duration::from_secs(60)
            );
            assert!(p.wait(1, None) <= Duration::from_millis(100));
        }
    }

    #[test]
    fn retry_after_seconds_and_http_dates() {
        let now = Utc.with_ymd_and_hms(2015, 10, 21, 7, 27, 0).unwrap();
        let p = |v| parse_retry_after(v, now);
        assert_eq!(p("2"), Some(Duration::from_secs(2)));
        assert_eq!(p(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(
            p("99999999999999999999999"),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(
            p("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            p("Wednesday, 21-Oct-15 07:28:30 GMT"),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            p("Wed Oct 21 07:29:00 2015"),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            p("Wed, 21 Oct 2015 07:00:00 GMT"),
            Some(Duration::ZERO),
            "in the past"
        );
        for bad in ["", "-1", "1.5", "soon", "Wed, 99 Oct 2015 07:28:00 GMT"] {
            assert_eq!(p(bad), None, "{bad:?}");
        }
    }
}
