//! What every venue's wire format shares: the one error type, bounded excerpts of bad input,
//! and strict conversions of the exchanges' text into exact values (prices and quantities to
//! `Decimal` without ever passing through `f64`, times to UTC microseconds).

use rust_decimal::Decimal;
use std::str::FromStr;

/// How many bytes of an offending message an error quotes: enough to recognise it in a log, not so
/// much that one bad 100 kB depth snapshot floods it.
const EXCERPT_LEN: usize = 160;

/// Why a message or payload could not be decoded. Every variant quotes a short excerpt so a log
/// line alone identifies the offending input.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("malformed JSON ({source}) in {excerpt:?}")]
    Json {
        #[source]
        source: serde_json::Error,
        excerpt: String,
    },
    #[error("trade message without field {field:?}: {excerpt:?}")]
    MissingField {
        field: &'static str,
        excerpt: String,
    },
    #[error("field {field:?} is not a decimal ({value:?}): {excerpt:?}")]
    BadDecimal {
        field: &'static str,
        value: String,
        excerpt: String,
    },
    #[error("field {field:?} is invalid ({reason}): {excerpt:?}")]
    BadValue {
        field: &'static str,
        reason: &'static str,
        excerpt: String,
    },
    #[error("exchange reported an error: {excerpt:?}")]
    Exchange { excerpt: String },
    #[error("unsupported message ({reason}): {excerpt:?}")]
    Unsupported {
        reason: &'static str,
        excerpt: String,
    },
}

/// A short, lossy, UTF-8 safe prefix of `bytes` for error messages.
pub fn excerpt(bytes: &[u8]) -> String {
    let cut = bytes.len().min(EXCERPT_LEN);
    let mut s = String::from_utf8_lossy(&bytes[..cut]).into_owned();
    if bytes.len() > cut {
        s.push('…');
    }
    s
}

/// The largest price or quantity accepted (1e15). No venue's price and lot filters come near it;
/// a value near `Decimal::MAX` can only be corrupt.
pub(crate) const MAX_WIRE_VALUE: Decimal =
    Decimal::from_parts(0xA4C6_8000, 0x0003_8D7E, 0, false, 0);
/// The largest price × quantity of one trade accepted (1e18): candles sum it over up to a week,
/// and `Decimal` arithmetic panics on overflow, so a hostile trade must not get near it.
pub(crate) const MAX_NOTIONAL: Decimal = Decimal::from_parts(0xA764_0000, 0x0DE0_B6B3, 0, false, 0);

/// Rejects a price × quantity that could overflow the candles' sums. Found by fuzzing the Binance
/// parser: it accepted a 28-digit price, and a few dozen such trades in one candle overflow its
/// quote volume, which panics.
pub(crate) fn check_notional(
    price: Decimal,
    qty: Decimal,
    field: &'static str,
    raw: &[u8],
) -> Result<(), WireError> {
    match price.checked_mul(qty) {
        Some(n) if n <= MAX_NOTIONAL => Ok(()),
        _ => Err(WireError::BadValue {
            field,
            reason: "price x quantity is implausibly large",
            excerpt: excerpt(raw),
        }),
    }
}

/// Parses a price or quantity written as a decimal string. No venue reports a zero or negative
/// one (or one above [`MAX_WIRE_VALUE`]), so such a value means the message is corrupt and must
/// not reach the candles.
pub(crate) fn positive_decimal(
    field: &'static str,
    s: &str,
    raw: &[u8],
) -> Result<Decimal, WireError> {
    checked_positive(field, s, Decimal::from_str(s), raw)
}

/// [`positive_decimal`] for a JSON number's literal text (Kraken WS v2 sends numbers), which may
/// be in scientific notation (`1e-05`); read exactly from the text, never through `f64`.
pub(crate) fn positive_json_number(
    field: &'static str,
    s: &str,
    raw: &[u8],
) -> Result<Decimal, WireError> {
    let parsed = if s.bytes().any(|b| b == b'e' || b == b'E') {
        Decimal::from_scientific(s)
    } else {
        Decimal::from_str(s)
    };
    checked_positive(field, s, parsed, raw)
}

fn checked_positive(
    field: &'static str,
    s: &str,
    parsed: Result<Decimal, rust_decimal::Error>,
    raw: &[u8],
) -> Result<Decimal, WireError> {
    let d = parsed.map_err(|_| WireError::BadDecimal {
        field,
        value: s.chars().take(40).collect(),
        excerpt: excerpt(raw),
    })?;
    if d <= Decimal::ZERO {
        return Err(WireError::BadValue {
            field,
            reason: "must be positive",
            excerpt: excerpt(raw),
        });
    }
    if d > MAX_WIRE_VALUE {
        return Err(WireError::BadValue {
            field,
            reason: "implausibly large (over 1e15)",
            excerpt: excerpt(raw),
        });
    }
    Ok(d)
}

/// Earliest and latest trade time accepted (2009-01-01 and 2100-01-01 UTC, in µs): a time outside
/// is a unit mistake or corruption, and would put a trade in a bucket nobody ever closes.
const MIN_TIME_US: i64 = 1_230_768_000_000_000;
const MAX_TIME_US: i64 = 4_102_444_800_000_000;

fn checked_time_us(us: i64, field: &'static str, raw: &[u8]) -> Result<i64, WireError> {
    if (MIN_TIME_US..MAX_TIME_US).contains(&us) {
        Ok(us)
    } else {
        Err(WireError::BadValue {
            field,
            reason: "time outside 2009..2100 (wrong unit?)",
            excerpt: excerpt(raw),
        })
    }
}

/// Epoch milliseconds (an integer, or its decimal text) -> UTC microseconds.
pub(crate) fn millis_to_us(ms: i64, field: &'static str, raw: &[u8]) -> Result<i64, WireError> {
    let us = ms.checked_mul(1000).ok_or(WireError::BadValue {
        field,
        reason: "time overflows",
        excerpt: excerpt(raw),
    })?;
    checked_time_us(us, field, raw)
}

/// Epoch seconds written as decimal text (`"1618678142.557535"`, or a JSON number's literal
/// `1762795433.9717445`) -> UTC microseconds, truncated toward the past. Done on the text, not
/// through `f64`, whose 53 bits cannot hold a µs timestamp's 16 digits exactly.
pub(crate) fn epoch_seconds_to_us(
    text: &str,
    field: &'static str,
    raw: &[u8],
) -> Result<i64, WireError> {
    let bad = || WireError::BadValue {
        field,
        reason: "not epoch seconds",
        excerpt: excerpt(raw),
    };
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty()
        || whole.len() > 12
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let secs: i64 = whole.parse().map_err(|_| bad())?;
    // First six fractional digits, padded: µs; anything finer is dropped (truncation).
    let mut micros: i64 = 0;
    for i in 0..6 {
        let digit = frac.as_bytes().get(i).map_or(0, |b| i64::from(b - b'0'));
        micros = micros * 10 + digit;
    }
    checked_time_us(secs * 1_000_000 + micros, field, raw)
}

/// An RFC 3339 time (`2026-08-09T21:05:38.50436Z`: Coinbase drops trailing zeros, so the number
/// of fractional digits varies) -> UTC microseconds, truncated.
pub(crate) fn rfc3339_to_us(text: &str, field: &'static str, raw: &[u8]) -> Result<i64, WireError> {
    let t = chrono::DateTime::parse_from_rfc3339(text).map_err(|_| WireError::BadValue {
        field,
        reason: "not an RFC 3339 time",
        excerpt: excerpt(raw),
    })?;
    checked_time_us(t.timestamp_micros(), field, raw)
}

/// `serde_json::from_slice` with the error carrying an excerpt of the input.
pub(crate) fn from_json<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, WireError> {
    serde_json::from_slice(bytes).map_err(|source| WireError::Json {
        source,
        excerpt: excerpt(bytes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_seconds_are_exact_to_the_microsecond() {
        let us = |s| epoch_seconds_to_us(s, "t", b"").unwrap();
        assert_eq!(us("1618678142.557535"), 1_618_678_142_557_535);
        // Truncated, not rounded: 0.9717445 s is 971744.5 µs.
        assert_eq!(us("1762795433.9717445"), 1_762_795_433_971_744);
        assert_eq!(us("1762795433"), 1_762_795_433_000_000);
        assert_eq!(us("1762795433.5"), 1_762_795_433_500_000);
        for bad in ["", ".5", "-1.0", "1e9", "17627954339717445", "12.3.4", "x"] {
            assert!(epoch_seconds_to_us(bad, "t", b"").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rfc3339_times_with_any_number_of_fractional_digits() {
        let us = |s| rfc3339_to_us(s, "time", b"").unwrap();
        assert_eq!(us("2026-08-09T21:05:38.50436Z"), 1_786_309_538_504_360);
        assert_eq!(us("2026-08-09T21:05:38.5043Z"), 1_786_309_538_504_300);
        assert_eq!(us("2026-08-09T21:05:38.228568804Z"), 1_786_309_538_228_568);
        assert_eq!(us("2021-04-17T16:43:30Z"), 1_618_677_810_000_000);
        assert!(rfc3339_to_us("2021-04-17 16:43", "time", b"").is_err());
        assert!(rfc3339_to_us("1970-01-01T00:00:00Z", "time", b"").is_err());
    }

    #[test]
    fn decimals_keep_their_text_and_reject_nonsense() {
        let d = |s| positive_decimal("p", s, b"").unwrap().to_string();
        assert_eq!(d("65114.20"), "65114.20");
        assert_eq!(d("40.0"), "40.0");
        let n = |s| positive_json_number("p", s, b"").unwrap().to_string();
        assert_eq!(n("1e-05"), "0.00001");
        assert_eq!(n("0.5117"), "0.5117");
        for bad in ["0", "-1", "1.2.3", "", "NaN", "2e15"] {
            assert!(positive_decimal("p", bad, b"").is_err(), "{bad:?}");
            assert!(positive_json_number("p", bad, b"").is_err(), "{bad:?}");
        }
    }
}
