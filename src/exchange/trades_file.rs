//! Binance public-data trade files (data.binance.vision) and WebSocket recordings as `Vec<Trade>`.
//!
//! These feed the replay peer and offline checks, so reading is strict: a malformed line is an
//! error naming file and line, never a skipped row, because a replay that silently drops or
//! bends a trade would make every candle downstream subtly wrong.

use super::binance::{self, StreamEvent, WireError};
use crate::domain::{Symbol, Trade};
use rust_decimal::Decimal;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Trade times above this are microseconds (Binance switched its spot files to µs in 2025); ms
/// timestamps stay below it until the year 5138.
const MICROS_THRESHOLD: i64 = 100_000_000_000_000;
/// Above this they are nanoseconds.
const NANOS_THRESHOLD: i64 = 100_000_000_000_000_000;

#[derive(Debug, thiserror::Error)]
pub enum TradesFileError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a readable zip archive: {source}")]
    Zip {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("{path}: {reason}")]
    Layout { path: PathBuf, reason: String },
    #[error(
        "{path}: cannot tell the symbol (name it like BTCUSDT-trades-2024-08-08.csv or pass --symbol)"
    )]
    NoSymbol { path: PathBuf },
    #[error("{path}: file name says symbol {from_name} but {given} was given")]
    SymbolConflict {
        path: PathBuf,
        from_name: String,
        given: String,
    },
    #[error("{path}:{line}: {reason}: {excerpt:?}")]
    Line {
        path: PathBuf,
        line: usize,
        reason: String,
        excerpt: String,
    },
    #[error("{path}:{line}: {source}")]
    Wire {
        path: PathBuf,
        line: usize,
        #[source]
        source: WireError,
    },
}

/// The symbol a Binance public-data file name carries: the part before `-trades-`
/// (`BTCUSDT-trades-2024-08-08.zip`, `BTCUSDT-trades-20240808T235415-...derived.csv.gz`).
pub(crate) fn symbol_from_file_name(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let (sym, _) = name.split_once("-trades-")?;
    let ok = !sym.is_empty() && sym.len() <= 32 && sym.bytes().all(|b| b.is_ascii_alphanumeric());
    ok.then(|| sym.to_ascii_uppercase())
}

/// Reads a Binance public-data trades file: `.csv`, `.csv.gz` or `.zip` (holding one csv), with
/// or without a header line, times in ms or µs (returned as ms), booleans `True`/`true`.
///
/// Without a header the columns are Binance's spot layout
/// `id,price,qty,quoteQty,time,isBuyerMaker,isBestMatch` (or the 6-column futures layout without
/// `isBestMatch`); with a header they are found by name. Ids must strictly increase.
pub fn read_trades_file(path: &Path, symbol: Option<&str>) -> Result<Vec<Trade>, TradesFileError> {
    let symbol = resolve_symbol(path, symbol)?;
    let text = read_text(path)?;
    parse_trades_csv(path, &text, binance::intern_symbol(&symbol))
}

fn resolve_symbol(path: &Path, given: Option<&str>) -> Result<String, TradesFileError> {
    let given = given.map(|s| s.trim().to_ascii_uppercase());
    match (symbol_from_file_name(path), given) {
        (Some(n), Some(g)) if n != g => Err(TradesFileError::SymbolConflict {
            path: path.to_path_buf(),
            from_name: n,
            given: g,
        }),
        (Some(n), _) => Ok(n),
        (None, Some(g))
            if !g.is_empty() && g.len() <= 32 && g.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            Ok(g)
        }
        _ => Err(TradesFileError::NoSymbol {
            path: path.to_path_buf(),
        }),
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TradesFileError + '_ {
    move |source| TradesFileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The whole decompressed text of `path`, chosen by extension (`.zip`, `.gz`, else plain).
fn read_text(path: &Path) -> Result<String, TradesFileError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut text = String::new();
    if name.ends_with(".zip") {
        let zip_err = |source| TradesFileError::Zip {
            path: path.to_path_buf(),
            source,
        };
        let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(zip_err)?;
        let csvs: Vec<usize> = (0..archive.len())
            .filter(|&i| {
                archive
                    .name_for_index(i)
                    .and_then(Result::ok)
                    .is_some_and(|n| n.to_ascii_lowercase().ends_with(".csv"))
            })
            .collect();
        let [index] = csvs[..] else {
            return Err(TradesFileError::Layout {
                path: path.to_path_buf(),
                reason: format!("expected exactly one .csv in the zip, found {}", csvs.len()),
            });
        };
        let mut entry = archive.by_index(index).map_err(zip_err)?;
        entry.read_to_string(&mut text).map_err(io_err(path))?;
    } else if name.ends_with(".gz") {
        flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file))
            .read_to_string(&mut text)
            .map_err(io_err(path))?;
    } else {
        std::io::BufReader::new(file)
            .read_to_string(&mut text)
            .map_err(io_err(path))?;
    }
    Ok(text)
}

/// Where each needed field sits in a row.
#[derive(Debug, Clone, Copy)]
struct Columns {
    id: usize,
    price: usize,
    qty: usize,
    time: usize,
    buyer_maker: usize,
    min_len: usize,
}

impl Columns {
    fn headerless(n: usize) -> Option<Columns> {
        // Spot: id,price,qty,quoteQty,time,isBuyerMaker,isBestMatch. Futures: the first six.
        (n == 6 || n == 7).then_some(Columns {
            id: 0,
            price: 1,
            qty: 2,
            time: 4,
            buyer_maker: 5,
            min_len: n,
        })
    }

    fn from_header(fields: &[&str]) -> Result<Columns, String> {
        let norm: Vec<String> = fields
            .iter()
            .map(|f| {
                f.trim()
                    .chars()
                    .take_while(|c| *c != '(')
                    .filter(|c| *c != '_')
                    .collect::<String>()
                    .to_ascii_lowercase()
            })
            .collect();
        let find = |names: &[&str]| {
            norm.iter()
                .position(|n| names.contains(&n.as_str()))
                .ok_or_else(|| format!("header has no {} column", names[0]))
        };
        Ok(Columns {
            id: find(&["id", "tradeid"])?,
            price: find(&["price"])?,
            qty: find(&["qty", "quantity"])?,
            time: find(&["time", "timestamp", "transacttime"])?,
            buyer_maker: find(&["isbuyermaker", "buyermaker"])?,
            min_len: fields.len(),
        })
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "True" | "true" | "TRUE" => Some(true),
        "False" | "false" | "FALSE" => Some(false),
        _ => None,
    }
}

/// A trade time in ms, whatever unit the file used.
pub(crate) fn normalize_time_ms(t: i64) -> i64 {
    if t >= NANOS_THRESHOLD {
        t.div_euclid(1_000_000)
    } else if t >= MICROS_THRESHOLD {
        t.div_euclid(1_000)
    } else {
        t
    }
}

fn parse_trades_csv(
    path: &Path,
    text: &str,
    symbol: Symbol,
) -> Result<Vec<Trade>, TradesFileError> {
    let mut trades = Vec::with_capacity(text.len() / 60);
    let mut columns: Option<Columns> = None;
    let mut fields: Vec<&str> = Vec::with_capacity(8);
    for (index, raw_line) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw_line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason: String| TradesFileError::Line {
            path: path.to_path_buf(),
            line: line_no,
            reason,
            excerpt: line.chars().take(120).collect(),
        };
        fields.clear();
        fields.extend(line.split(','));
        let cols = match columns {
            Some(c) => c,
            None => {
                let first = fields[0].trim().trim_start_matches('\u{feff}');
                let c = if first.bytes().all(|b| b.is_ascii_digit()) && !first.is_empty() {
                    Columns::headerless(fields.len()).ok_or_else(|| {
                        bad(format!(
                            "expected 7 (spot) or 6 (futures) columns, found {}",
                            fields.len()
                        ))
                    })?
                } else {
                    let mut header = fields.clone();
                    header[0] = first;
                    let c = Columns::from_header(&header).map_err(bad)?;
                    columns = Some(c);
                    continue;
                };
                columns = Some(c);
                c
            }
        };
        if fields.len() != cols.min_len {
            return Err(bad(format!(
                "expected {} columns, found {}",
                cols.min_len,
                fields.len()
            )));
        }
        let trade_id: u64 = fields[cols.id]
            .trim()
            .parse()
            .map_err(|_| bad("bad trade id".into()))?;
        let price = decimal(fields[cols.price]).ok_or_else(|| bad("bad price".into()))?;
        let qty = decimal(fields[cols.qty]).ok_or_else(|| bad("bad quantity".into()))?;
        let time: i64 = fields[cols.time]
            .trim()
            .parse()
            .map_err(|_| bad("bad time".into()))?;
        if time <= 0 {
            return Err(bad("time must be positive".into()));
        }
        let is_buyer_maker = parse_bool(fields[cols.buyer_maker].trim())
            .ok_or_else(|| bad("bad isBuyerMaker".into()))?;
        if let Some(prev) = trades.last().map(|t: &Trade| t.trade_id)
            && trade_id <= prev
        {
            return Err(bad(format!("trade id {trade_id} does not follow {prev}")));
        }
        trades.push(Trade {
            symbol: symbol.clone(),
            trade_id,
            price,
            qty,
            time_ms: normalize_time_ms(time),
            is_buyer_maker,
        });
    }
    Ok(trades)
}

/// A strictly positive decimal, parsed exactly.
fn decimal(s: &str) -> Option<Decimal> {
    Decimal::from_str(s.trim())
        .ok()
        .filter(|d| *d > Decimal::ZERO)
}

/// Reads either kind of file, told apart by content: a first line holding a JSON object is a
/// WebSocket recording (see [`read_ws_recording`]), anything else a public-data trades file (see
/// [`read_trades_file`]). `symbol` is checked against a recording's own symbols.
pub fn read_any_trades(path: &Path, symbol: Option<&str>) -> Result<Vec<Trade>, TradesFileError> {
    let text = read_text(path)?;
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    if first.contains('{') {
        let trades = recording_trades(path, &text)?;
        if let Some(given) = symbol.map(str::to_ascii_uppercase)
            && let Some(other) = trades.iter().find(|t| *t.symbol != *given)
        {
            return Err(TradesFileError::SymbolConflict {
                path: path.to_path_buf(),
                from_name: other.symbol.to_string(),
                given,
            });
        }
        Ok(trades)
    } else {
        let symbol = resolve_symbol(path, symbol)?;
        parse_trades_csv(path, &text, binance::intern_symbol(&symbol))
    }
}

/// Reads the trades of a WebSocket recording: one `<receive time> <json message>` per line
/// (hftbacktest's `.gz` files; cryptofeed's `<time>: <json>` works too), plain or gzipped.
/// Non-trade messages (depth, bookTicker, a REST depth snapshot, a URL header line) are skipped;
/// a line whose JSON does not decode is an error.
pub fn read_ws_recording(path: &Path) -> Result<Vec<Trade>, TradesFileError> {
    recording_trades(path, &read_text(path)?)
}

fn recording_trades(path: &Path, text: &str) -> Result<Vec<Trade>, TradesFileError> {
    let mut trades = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let Some(start) = line.find('{') else {
            continue;
        };
        match binance::parse_stream_message(&line.as_bytes()[start..]) {
            Ok(StreamEvent::Trade(t)) => trades.push(t),
            Ok(_) => {}
            Err(source) => {
                return Err(TradesFileError::Wire {
                    path: path.to_path_buf(),
                    line: index + 1,
                    source,
                });
            }
        }
    }
    Ok(trades)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbol_from_names() {
        let s = |p: &str| symbol_from_file_name(Path::new(p));
        assert_eq!(
            s("/x/BTCUSDT-trades-2024-08-08.csv").as_deref(),
            Some("BTCUSDT")
        );
        assert_eq!(
            s("ETHUSDT-trades-20240808T235415-20240809T000505.derived.csv.gz").as_deref(),
            Some("ETHUSDT")
        );
        assert_eq!(
            s("btcusdt-trades-2021-01-08.derived.csv").as_deref(),
            Some("BTCUSDT")
        );
        assert_eq!(s("trades.csv"), None);
        assert_eq!(s("BTC USDT-trades-1.csv"), None);
    }

    #[test]
    fn time_units() {
        assert_eq!(normalize_time_ms(1_723_161_255_342), 1_723_161_255_342);
        assert_eq!(normalize_time_ms(1_735_689_600_123_456), 1_735_689_600_123);
        assert_eq!(
            normalize_time_ms(1_735_689_600_123_456_789),
            1_735_689_600_123
        );
    }
}
