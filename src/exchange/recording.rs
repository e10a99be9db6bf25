//! Recorded venue sessions, read back as the frames a client received, and `tradepipe trades`:
//! those frames run through the client's own code ([`VenueSession`]) to show the trades it
//! would pass on.
//!
//! Formats (see `data/market/multiexchange/README.md`), plain or gzipped:
//! - cryptofeed raw-data v1 text (`EX.ws.N.0`): line 1 `<wss URL> <-> <epoch>`, sent frames
//!   `<URL> <- <epoch>: <json>`, received frames `<recv epoch>: <payload>`. One connection per
//!   file.
//! - cryptofeed v3 JSONL: a header line, then `{"t":"connect"|"send"|"recv"|"http","conn":..,
//!   "ts":..,"addr":..,"data":"<frame text>"}`. Several connections per file.
//! - A REST trade page (one JSON body, e.g. Kraken `/0/public/Trades`).
//!
//! Several files are parallel connections of one session: their frames are merged by receive
//! time, and the dedup drops what two connections both delivered.

use super::dedup::ConnId;
use super::session::{DEDUP_WINDOW, SessionStats, VenueSession};
use super::venue::{Venue, VenueTrade};
use super::wire::{epoch_seconds_to_us, excerpt};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// How many problems the report quotes in full; the rest are only counted.
const MAX_QUOTED_PROBLEMS: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a recording this tool reads ({reason})")]
    Format { path: PathBuf, reason: &'static str },
    #[error("cannot write the trades: {0}")]
    Output(#[source] std::io::Error),
}

/// One received frame.
#[derive(Debug, Clone)]
pub struct RecordedFrame {
    /// Receive time (the recorder's clock), UTC µs: orders frames of parallel connections.
    pub recv_us: i64,
    /// Index into [`Recording::conns`].
    pub conn: usize,
    pub payload: String,
    /// `file:line` for error messages.
    pub origin: String,
}

#[derive(Debug, Clone)]
pub struct RecordedConn {
    pub name: String,
    /// The endpoint it connected to, where the recording says.
    pub url: Option<String>,
}

#[derive(Debug, Default)]
pub struct Recording {
    pub conns: Vec<RecordedConn>,
    pub frames: Vec<RecordedFrame>,
    /// REST trade pages, with their origin.
    pub rest_pages: Vec<(String, Vec<u8>)>,
    /// Lines that are not frames (malformed), quoted with their origin.
    pub problems: Vec<String>,
}

impl Recording {
    fn problem(&mut self, msg: String) {
        self.problems.push(msg);
    }

    fn conn(&mut self, name: &str, url: Option<&str>) -> usize {
        if let Some(i) = self.conns.iter().position(|c| c.name == name) {
            if self.conns[i].url.is_none() {
                self.conns[i].url = url.map(str::to_string);
            }
            return i;
        }
        self.conns.push(RecordedConn {
            name: name.to_string(),
            url: url.map(str::to_string),
        });
        self.conns.len() - 1
    }
}

/// Reads a whole file, gunzipping it when it starts with gzip's magic bytes.
fn read_bytes(path: &Path) -> Result<Vec<u8>, RecordingError> {
    let io = |source| RecordingError::Io {
        path: path.to_path_buf(),
        source,
    };
    let raw = std::fs::read(path).map_err(io)?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(io)?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Reads one recording file into `rec`, numbering its connections after those already there.
/// `file_no` keeps connections of different files apart even when a file is given twice (two
/// parallel connections recorded alike).
pub fn read_recording(
    path: &Path,
    file_no: usize,
    rec: &mut Recording,
) -> Result<(), RecordingError> {
    let bytes = read_bytes(path)?;
    let name = path.display().to_string();
    let text = std::str::from_utf8(&bytes).map_err(|_| RecordingError::Format {
        path: path.to_path_buf(),
        reason: "not UTF-8 text",
    })?;
    let first = text.lines().next().unwrap_or_default();
    if first.starts_with("{\"t\":\"header\"") || first.starts_with("{\"t\": \"header\"") {
        read_jsonl(&name, file_no, text, rec);
    } else if text.trim_start().starts_with(['{', '[']) {
        rec.rest_pages.push((name, bytes));
    } else if first.contains(" <-> ") {
        read_v1_text(&name, file_no, text, rec);
    } else {
        return Err(RecordingError::Format {
            path: path.to_path_buf(),
            reason: "neither cryptofeed v1 text, v3 JSONL nor a JSON body",
        });
    }
    Ok(())
}

/// Cryptofeed v1: one connection per file, its URL on line 1.
fn read_v1_text(name: &str, file_no: usize, text: &str, rec: &mut Recording) {
    let mut lines = text.lines().enumerate();
    let url = lines
        .next()
        .and_then(|(_, l)| l.split_once(" <-> "))
        .map(|(u, _)| u.trim());
    let conn = rec.conn(&format!("{file_no}:{name}"), url);
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let origin = format!("{name}:{}", i + 1);
        let Some((head, payload)) = line.split_once(": ") else {
            rec.problem(format!(
                "{origin}: not `<time>: <frame>`: {:?}",
                excerpt(line.as_bytes())
            ));
            continue;
        };
        // Sent frames (`<URL> <- <epoch>`), REST captures (`<URL> -> <epoch>`), reconnects.
        if head.contains(' ') {
            continue;
        }
        match epoch_seconds_to_us(head, "receive time", line.as_bytes()) {
            Ok(recv_us) => rec.frames.push(RecordedFrame {
                recv_us,
                conn,
                payload: payload.to_string(),
                origin,
            }),
            Err(e) => rec.problem(format!("{origin}: {e}")),
        }
    }
}

#[derive(Deserialize)]
struct JsonlEvent<'a> {
    t: &'a str,
    #[serde(default)]
    conn: Option<String>,
    #[serde(borrow, default)]
    ts: Option<&'a RawValue>,
    #[serde(default)]
    addr: Option<String>,
    #[serde(default)]
    data: Option<String>,
}

/// Cryptofeed v3: connections named per event, URLs on `connect` / `send` events.
fn read_jsonl(name: &str, file_no: usize, text: &str, rec: &mut Recording) {
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let origin = format!("{name}:{}", i + 1);
        let ev: JsonlEvent<'_> = match serde_json::from_str(line) {
            Ok(ev) => ev,
            Err(e) => {
                rec.problem(format!("{origin}: {e}: {:?}", excerpt(line.as_bytes())));
                continue;
            }
        };
        let Some(conn_name) = ev.conn.as_deref() else {
            continue;
        };
        let conn = rec.conn(&format!("{file_no}:{name}#{conn_name}"), ev.addr.as_deref());
        if ev.t != "recv" {
            continue; // connect, send, http (metadata)
        }
        let (Some(ts), Some(data)) = (ev.ts, ev.data) else {
            rec.problem(format!("{origin}: a recv event without ts or data"));
            continue;
        };
        match epoch_seconds_to_us(ts.get(), "ts", line.as_bytes()) {
            Ok(recv_us) => rec.frames.push(RecordedFrame {
                recv_us,
                conn,
                payload: data,
                origin,
            }),
            Err(e) => rec.problem(format!("{origin}: {e}")),
        }
    }
}

/// What the client passed on from a recorded session, and what it made of the rest.
#[derive(Debug, Default)]
pub struct RecordedTrades {
    pub trades: Vec<VenueTrade>,
    pub stats: SessionStats,
    /// Every problem (bad line, frame that failed to decode), in order.
    pub problems: Vec<String>,
}

/// Runs `files` (parallel connections of one session) through `venue`'s client code.
pub fn recorded_trades(venue: Venue, files: &[PathBuf]) -> Result<RecordedTrades, RecordingError> {
    let mut rec = Recording::default();
    for (file_no, f) in files.iter().enumerate() {
        read_recording(f, file_no, &mut rec)?;
    }
    // Stable: frames of one connection keep their order even with equal receive times.
    rec.frames.sort_by_key(|f| f.recv_us);
    let mut session = VenueSession::new(venue, DEDUP_WINDOW);
    let wire = session.wire();
    let markets: Vec<_> = rec
        .conns
        .iter()
        .map(|c| wire.endpoint_market(c.url.as_deref().unwrap_or_default()))
        .collect();
    let mut out = RecordedTrades {
        problems: std::mem::take(&mut rec.problems),
        ..RecordedTrades::default()
    };
    for f in &rec.frames {
        let conn = ConnId::try_from(f.conn).unwrap_or(ConnId::MAX);
        if let Err(e) =
            session.on_frame(conn, markets[f.conn], f.payload.as_bytes(), &mut out.trades)
        {
            out.problems.push(format!("{}: {e}", f.origin));
        }
    }
    for (i, (origin, body)) in rec.rest_pages.iter().enumerate() {
        // Each page is its own source, numbered after the connections.
        let conn = ConnId::try_from(rec.conns.len() + i).unwrap_or(ConnId::MAX);
        let market = wire.endpoint_market("");
        if let Err(e) = session.on_rest_page(conn, market, None, body, &mut out.trades) {
            out.problems.push(format!("{origin}: {e}"));
        }
    }
    out.stats = session.stats().clone();
    Ok(out)
}

/// One output line of `tradepipe trades`.
#[derive(Serialize)]
struct TradeLine<'a> {
    exchange: &'a str,
    market: &'a str,
    symbol: &'a str,
    base: &'a str,
    quote: &'a str,
    /// Text, so that 19-digit ids survive JSON readers with 53-bit numbers; null without an id.
    trade_id: Option<String>,
    /// Exact decimal text as the venue wrote it.
    price: String,
    qty: String,
    /// UTC ms since the epoch.
    time: i64,
    /// The taker's side.
    side: &'a str,
}

/// The JSON object `tradepipe trades` prints for a trade.
pub fn trade_json(t: &VenueTrade) -> String {
    let line = TradeLine {
        exchange: t.venue.name(),
        market: t.market.name(),
        symbol: &t.symbol,
        base: &t.pair.base,
        quote: &t.pair.quote,
        trade_id: t.trade_id.as_ref().map(|id| id.to_string()),
        price: t.price.to_string(),
        qty: t.qty.to_string(),
        time: t.time_ms(),
        side: t.taker_side.name(),
    };
    // Serializing plain strings and numbers cannot fail.
    serde_json::to_string(&line).unwrap_or_default()
}

/// `tradepipe trades`: the trades on `out`, one JSON object a line; a summary and every problem
/// (the first [`MAX_QUOTED_PROBLEMS`] quoted) on `err`.
pub fn print_trades(
    venue: Venue,
    files: &[PathBuf],
    out: &mut impl Write,
    err: &mut impl Write,
) -> Result<RecordedTrades, RecordingError> {
    let r = recorded_trades(venue, files)?;
    write_report(venue, &r, out, err).map_err(RecordingError::Output)?;
    Ok(r)
}

fn write_report(
    venue: Venue,
    r: &RecordedTrades,
    out: &mut impl Write,
    err: &mut impl Write,
) -> std::io::Result<()> {
    for t in &r.trades {
        writeln!(out, "{}", trade_json(t))?;
    }
    out.flush()?;
    for p in r.problems.iter().take(MAX_QUOTED_PROBLEMS) {
        writeln!(err, "tradepipe trades: skipped: {p}")?;
    }
    if r.problems.len() > MAX_QUOTED_PROBLEMS {
        writeln!(
            err,
            "tradepipe trades: ... and {} more skipped",
            r.problems.len() - MAX_QUOTED_PROBLEMS
        )?;
    }
    let s = &r.stats;
    writeln!(
        err,
        "tradepipe trades: {venue}: {} trades from {} frames ({} with trades, {} heartbeats, {} other); {} duplicates removed; {} malformed frames and {} bad lines skipped",
        s.trades_passed,
        s.frames,
        s.trade_frames,
        s.heartbeats,
        s.other + s.control,
        s.duplicates,
        s.malformed,
        r.problems.len() as u64 - s.malformed.min(r.problems.len() as u64),
    )
}
