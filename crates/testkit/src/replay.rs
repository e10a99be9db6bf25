//! `tradepipe-testkit replay`: a local Binance peer that plays recorded trades back over Binance's own
//! WebSocket and REST interfaces, so the daemon can be run and tested end to end (reconnects,
//! gap backfill, restarts) without the internet and with a known answer.
//!
//! One address serves everything: `/stream?streams=...` (combined) and `/ws/<stream>` (raw)
//! WebSockets, `/api/v3/historicalTrades`, `/api/v3/exchangeInfo` and `/api/v3/klines`, and the
//! peer's own counters at `/testkit/stats` (for benchmarks).
//!
//! The tape has ONE cursor per server, like an exchange where time goes on: a reconnecting client
//! continues where the tape is, not where it left off, and `--drop-every` / `--drop-skip` make it
//! miss trades it must then backfill over REST. REST only ever shows trades the tape has already
//! passed. The tape waits for the first client before it starts; in `--max` mode it also pauses
//! while nobody is connected (there is no reader to go "as fast as").
//!
//! `--replicate N` serves one recorded symbol under N names (`S0001USDT`..): the whole-market
//! benchmark's tape, loaded once and shared by every name rather than read N times.
//!
//! For the fault suite it can also misbehave the way a real peer sometimes does ([`ReplayFaults`]):
//! stall a connection (open, silent, no pings), and slip malformed or oversized frames between
//! the trades.

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path as AxPath, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::SinkExt;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tradepipe::domain::{Interval, Symbol, Trade};
use tradepipe::exchange::binance::{self, write_wire_decimal};
use tradepipe::exchange::trades_file::{self, TradesFileError};

/// Trades handed to a connection per channel message: amortises channel and flush costs so one
/// local client can take hundreds of thousands of messages per second.
const BATCH: usize = 256;
/// Batches buffered per connection before the tape waits for that client (backpressure).
const CONN_QUEUE: usize = 16;
/// Highest `--replicate`: far beyond any exchange's symbol count, low enough that a typo cannot
/// ask for billions of names.
const MAX_REPLICAS: u32 = 100_000;
/// The peer's own counters ([`ReplayStats`]) as JSON, outside Binance's `/api` namespace: what a
/// benchmark reads to know the rate it offered.
pub const STATS_PATH: &str = "/testkit/stats";
/// Binance's `historicalTrades` / `klines` defaults and caps.
const DEFAULT_LIMIT: usize = 500;
const MAX_LIMIT: usize = 1000;

/// Command-line options of `tradepipe-testkit replay`.
#[derive(clap::Args, Debug, Clone)]
pub struct ReplayArgs {
    /// Trade files to play: Binance public-data trades (.csv, .csv.gz, .zip) or WebSocket
    /// recordings (`<ns> <json>` lines). Several symbols are merged by trade time.
    #[arg(long = "trades", value_name = "FILE", required = true, num_args = 1..)]
    pub trades: Vec<PathBuf>,
    /// Address to serve WebSocket and REST on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:9443")]
    pub listen: SocketAddr,
    /// Pace by original trade time divided by this factor (default 1 = real time).
    #[arg(long, conflicts_with = "max")]
    pub speed: Option<f64>,
    /// Send as fast as the client reads.
    #[arg(long)]
    pub max: bool,
    /// Close each WebSocket connection after this many messages.
    #[arg(long, value_name = "N")]
    pub drop_every: Option<u64>,
    /// Trades that happen while a dropped client is away: never sent on the next connection, so
    /// the client must backfill them over REST.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub drop_skip: u64,
    /// Play the tape this many times; each loop shifts ids by the id range and times by the
    /// tape's span + 1 ms, so ids stay consecutive and times increase.
    #[arg(long = "loop", value_name = "N", default_value_t = 1)]
    pub loops: u64,
    /// Symbol for files whose name carries none.
    #[arg(long)]
    pub symbol: Option<String>,
    /// Serve the tape (which must hold one symbol) under N names instead of its own:
    /// `S<i>` + its quote asset, `i` = 1..N zero-padded to the width of N (`S0001USDT`..
    /// `S1000USDT` for BTCUSDT and N = 1000). Each name plays exactly the recorded trades (same
    /// ids, prices, times); at each tape step all N names' copies come one after another, so
    /// `--speed` offers N times the recorded rate. Loaded once, whatever N is.
    #[arg(long, value_name = "N")]
    pub replicate: Option<u32>,
    /// Seconds between WebSocket Ping frames (Binance: 20).
    #[arg(long, default_value_t = 20)]
    pub ping_interval_secs: u64,
    #[command(flatten)]
    pub faults: ReplayFaults,
}

/// Misbehaviour on purpose, per WebSocket connection (all off by default). Trades a stalled
/// connection never delivers have still "happened": they are on REST, as after a drop.
#[derive(clap::Args, Debug, Clone)]
pub struct ReplayFaults {
    /// After this many trade messages, the connection goes silent: it stays open but sends
    /// nothing more, not even pings, until the client gives up on it.
    #[arg(long, value_name = "N")]
    pub stall_after: Option<u64>,
    /// After every N trade messages, also send one malformed message (cycling through
    /// truncated JSON, wrong shapes, bad numbers, deep nesting and invalid UTF-8 in a binary
    /// frame). None of them is a trade, so nothing on the tape is lost.
    #[arg(long, value_name = "N")]
    pub malformed_every: Option<u64>,
    /// After every N trade messages, also send one text frame of `--oversized-bytes`.
    #[arg(long, value_name = "N")]
    pub oversized_every: Option<u64>,
    /// Size of the frames sent by `--oversized-every`.
    #[arg(long, value_name = "BYTES", default_value_t = 8 * 1024 * 1024)]
    pub oversized_bytes: usize,
}

impl Default for ReplayFaults {
    fn default() -> Self {
        ReplayFaults {
            stall_after: None,
            malformed_every: None,
            oversized_every: None,
            oversized_bytes: 8 * 1024 * 1024,
        }
    }
}

/// The malformed messages of `--malformed-every`, in the order they are sent (cycling). Text
/// unless marked binary. Each must fail to parse: a message that parsed as a trade would change
/// the answer the tests check against.
fn malformed_message(k: u64) -> Message {
    const TEXT: [&str; 9] = [
        r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":"#,
        "not json at all",
        r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"abc","q":"1","T":1,"m":true,"M":true}}"#,
        r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","p":"1","q":"1"}}"#,
        r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"-5","q":"1","T":1,"m":true,"M":true}}"#,
        r#"{"stream":"btcusdt@trade","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT"}}"#,
        r#"{"stream":"ethusdt@trade","data":{"e":"trade","E":1,"s":"ETH USDT!","t":1,"p":"1","q":"1","T":1,"m":true,"M":true}}"#,
        r#"{"stream":"ethusdt@trade","data":{"e":"trade","E":1,"s":"ETHUSDT","t":99999999999999999999999,"p":"1","q":"1","T":1,"m":true}}"#,
        r#"{"error":{"code":-1,"msg":"injected"}}"#,
    ];
    let n = TEXT.len() as u64 + 2;
    match k % n {
        i if i < TEXT.len() as u64 => Message::Text(Utf8Bytes::from_static(TEXT[i as usize])),
        i if i == TEXT.len() as u64 => {
            // Nesting far deeper than any JSON parser's recursion limit.
            let mut s = "[".repeat(100_000);
            s.push_str(&"]".repeat(100_000));
            Message::Text(s.into())
        }
        _ => Message::Binary(Bytes::from_static(
            b"\xff\xfe{\"e\":\"trade\",\"s\":\"BTC\x80USDT\"}\xc3\x28",
        )),
    }
}

/// A JSON-looking text frame of about `bytes` bytes (`--oversized-every`).
fn oversized_message(bytes: usize) -> Message {
    const HEAD: &str = r#"{"stream":"btcusdt@trade","data":{"e":"trade","pad":""#;
    let mut s = String::with_capacity(bytes.max(HEAD.len() + 3));
    s.push_str(HEAD);
    let fill = bytes.saturating_sub(HEAD.len() + 3);
    s.extend(std::iter::repeat_n('x', fill));
    s.push_str("\"}}");
    Message::Text(s.into())
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    File(#[from] TradesFileError),
    #[error("invalid replay options: {0}")]
    Args(String),
    #[error("the tape is empty: no trades in {0:?}")]
    EmptyTape(Vec<PathBuf>),
    #[error("{symbol}: trade id {id} appears twice across the input files")]
    DuplicateId { symbol: String, id: u64 },
    #[error(
        "{symbol}: trade {id} is earlier than the trade before it; the tape must be time-ordered"
    )]
    TimeOrder { symbol: String, id: u64 },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("--replicate needs a tape of one symbol, but the files hold {0}: {1}")]
    ReplicateSymbols(usize, String),
    #[error("loading the tape panicked or was cancelled: {0}")]
    Join(String),
}

/// Counters of a running peer, for logs and tests.
#[derive(Debug, Default)]
pub struct ReplayStats {
    /// Trade messages handed to connections.
    pub sent: AtomicU64,
    /// Tape positions passed that no connection received (drop-skip, nobody connected).
    pub unsent: AtomicU64,
    /// Connections closed by `--drop-every`.
    pub drops: AtomicU64,
    /// WebSocket connections accepted.
    pub connections: AtomicU64,
    /// Tape position: trades that have "happened".
    pub cursor: AtomicU64,
    /// Connections stalled by `--stall-after`.
    pub stalls: AtomicU64,
    /// Messages sent by `--malformed-every`.
    pub malformed: AtomicU64,
    /// Frames sent by `--oversized-every`.
    pub oversized: AtomicU64,
    /// With `--speed`: wall clock (Unix ms) and tape time at which pacing started (0 before).
    pub paced_since_wall_ms: AtomicI64,
    pub paced_since_tape_ms: AtomicI64,
}

/// One recorded symbol's trades in id order, plus what REST needs about them.
struct SymbolTape {
    trades: Vec<Trade>,
    /// Position of each trade in the merged base tape, ascending.
    positions: Vec<usize>,
    /// Shift of ids per loop: max - min + 1.
    id_span: u64,
    price_decimals: u32,
    qty_decimals: u32,
}

/// A symbol as served: the recorded one, or one of its `--replicate` names.
struct Served {
    symbol: Symbol,
    /// `<lowercase symbol>@trade`.
    stream: String,
}

/// The merged, loopable tape, with every recorded trade served under `replicas` names.
///
/// Names are numbered `s * replicas + r` (recorded symbol `s`, copy `r`). A loop holds
/// `n * replicas` virtual positions (`n` = merged recorded trades): virtual position `p` is loop
/// `p / (n * replicas)`, base position `(p mod n * replicas) / replicas`, copy `p mod replicas`.
/// The copies are arithmetic, never stored: memory is that of the recorded trades.
struct Tape {
    symbols: Vec<SymbolTape>,
    /// Every served name, indexed as above.
    names: Vec<Served>,
    /// Upper-case name -> index into `names`: streams and REST look names up per request, and
    /// there can be thousands.
    by_name: HashMap<String, usize>,
    replicas: u64,
    /// Merged base order: (symbol index, index into that symbol's trades).
    order: Vec<(usize, usize)>,
    loops: u64,
    /// Shift of times per loop: tape span + 1 ms.
    time_shift: i64,
    /// Lazily rendered `"p":"..","q":".."` per base position: the only costly part of a message,
    /// and the same in every loop.
    price_qty: Vec<OnceLock<Box<str>>>,
}

impl Tape {
    fn build(
        mut by_symbol: BTreeMap<String, Vec<Trade>>,
        loops: u64,
        replicate: Option<u32>,
    ) -> Result<Tape, ReplayError> {
        let mut symbols = Vec::with_capacity(by_symbol.len());
        let mut recorded = Vec::with_capacity(by_symbol.len());
        for (name, mut trades) in std::mem::take(&mut by_symbol) {
            trades.sort_by_key(|t| t.trade_id);
            for w in trades.windows(2) {
                if w[0].trade_id == w[1].trade_id {
                    return Err(ReplayError::DuplicateId {
                        symbol: name,
                        id: w[1].trade_id,
                    });
                }
                if w[1].time_ms < w[0].time_ms {
                    return Err(ReplayError::TimeOrder {
                        symbol: name,
                        id: w[1].trade_id,
                    });
                }
            }
            let (Some(first), Some(last)) = (trades.first(), trades.last()) else {
                continue;
            };
            let id_span = last.trade_id - first.trade_id + 1;
            let decimals = |d: &Decimal| d.normalize().scale();
            recorded.push(first.symbol.clone());
            symbols.push(SymbolTape {
                price_decimals: trades.iter().map(|t| decimals(&t.price)).max().unwrap_or(0),
                qty_decimals: trades.iter().map(|t| decimals(&t.qty)).max().unwrap_or(0),
                positions: Vec::with_capacity(trades.len()),
                trades,
                id_span,
            });
        }
        // k-way merge by trade time: keeps each symbol in id order whatever the other symbols do.
        let total: usize = symbols.iter().map(|s| s.trades.len()).sum();
        let mut order = Vec::with_capacity(total);
        let mut heap: BinaryHeap<std::cmp::Reverse<(i64, usize, usize)>> = symbols
            .iter()
            .enumerate()
            .map(|(s, st)| std::cmp::Reverse((st.trades[0].time_ms, s, 0)))
            .collect();
        while let Some(std::cmp::Reverse((_, s, j))) = heap.pop() {
            symbols[s].positions.push(order.len());
            order.push((s, j));
            if let Some(next) = symbols[s].trades.get(j + 1) {
                heap.push(std::cmp::Reverse((next.time_ms, s, j + 1)));
            }
        }
        let times = symbols
            .iter()
            .flat_map(|s| [s.trades[0].time_ms, s.trades[s.trades.len() - 1].time_ms]);
        let (min_t, max_t) = times.fold((i64::MAX, i64::MIN), |(a, b), t| (a.min(t), b.max(t)));
        let names: Vec<Served> = match replicate {
            None => recorded
                .into_iter()
                .map(|symbol| Served {
                    stream: binance::trade_stream_name(&symbol),
                    symbol,
                })
                .collect(),
            Some(n) => {
                let [symbol] = recorded.as_slice() else {
                    let list = recorded.iter().map(|s| &**s).collect::<Vec<_>>().join(", ");
                    return Err(ReplayError::ReplicateSymbols(recorded.len(), list));
                };
                replica_names(symbol, n)
                    .into_iter()
                    .map(|name| Served {
                        stream: binance::trade_stream_name(&name),
                        symbol: Symbol::from(name),
                    })
                    .collect()
            }
        };
        let by_name = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.symbol.to_ascii_uppercase(), i))
            .collect();
        Ok(Tape {
            price_qty: (0..order.len()).map(|_| OnceLock::new()).collect(),
            replicas: replicate.map_or(1, u64::from),
            symbols,
            names,
            by_name,
            order,
            loops: loops.max(1),
            time_shift: max_t.saturating_sub(min_t) + 1,
        })
    }

    fn base_len(&self) -> u64 {
        self.order.len() as u64
    }

    /// Virtual positions per loop: every recorded trade once per name.
    fn loop_len(&self) -> u64 {
        self.base_len() * self.replicas
    }

    fn total(&self) -> u64 {
        self.loop_len() * self.loops
    }

    fn symbol_index(&self, name: &str) -> Option<usize> {
        self.by_name.get(&name.to_ascii_uppercase()).copied()
    }

    /// Recorded symbol behind served name `i`.
    fn base_symbol(&self, i: usize) -> usize {
        i / self.replicas as usize
    }

    /// (loop, base position, copy) of virtual position `pos`.
    fn locate(&self, pos: u64) -> (u64, usize, u64) {
        let (k, q) = (pos / self.loop_len(), pos % self.loop_len());
        (k, (q / self.replicas) as usize, q % self.replicas)
    }

    /// (served name index, trade with loop shifts applied) at virtual tape position `pos`: the
    /// reference the tests hold the cheaper paths (`render_into`, `time_at`) to.
    #[cfg(test)]
    fn at(&self, pos: u64) -> (usize, Trade) {
        let (k, b, r) = self.locate(pos);
        let (s, j) = self.order[b];
        let i = s * self.replicas as usize + r as usize;
        let len = self.symbols[s].trades.len() as u64;
        (i, self.symbol_trade(i, k * len + j as u64))
    }

    /// Trade time at virtual position `pos`: what the pacing needs, without building a trade.
    fn time_at(&self, pos: u64) -> i64 {
        let (k, b, _) = self.locate(pos);
        let (s, j) = self.order[b];
        self.symbols[s].trades[j].time_ms + k as i64 * self.time_shift
    }

    fn symbol_of(&self, pos: u64) -> usize {
        let (_, b, r) = self.locate(pos);
        self.order[b].0 * self.replicas as usize + r as usize
    }

    /// The `v`-th trade of served name `i` across loops.
    fn symbol_trade(&self, i: usize, v: u64) -> Trade {
        let st = &self.symbols[self.base_symbol(i)];
        let len = st.trades.len() as u64;
        let k = v / len;
        let base = &st.trades[(v % len) as usize];
        Trade {
            symbol: self.names[i].symbol.clone(),
            trade_id: base.trade_id + k * st.id_span,
            time_ms: base.time_ms + k as i64 * self.time_shift,
            price: base.price,
            qty: base.qty,
            is_buyer_maker: base.is_buyer_maker,
        }
    }

    fn symbol_time(&self, i: usize, v: u64) -> i64 {
        let st = &self.symbols[self.base_symbol(i)];
        let len = st.trades.len() as u64;
        st.trades[(v % len) as usize].time_ms + (v / len) as i64 * self.time_shift
    }

    /// How many trades of served name `i` lie before tape position `cursor` (have "happened").
    fn published(&self, i: usize, cursor: u64) -> u64 {
        let s = self.base_symbol(i);
        let r = (i % self.replicas as usize) as u64;
        let st = &self.symbols[s];
        let (k, b, copy) = self.locate(cursor);
        let whole = k * st.trades.len() as u64 + st.positions.partition_point(|&p| p < b) as u64;
        // The copies of base position `b` that precede the cursor: 0..copy.
        whole + u64::from(self.order[b].0 == s && r < copy)
    }

    /// Index, among served name `i`'s trades, of the first trade with id >= `id`.
    fn index_of_id(&self, i: usize, id: u64) -> u64 {
        let st = &self.symbols[self.base_symbol(i)];
        let first = st.trades[0].trade_id;
        if id <= first {
            return 0;
        }
        let k = (id - first) / st.id_span;
        let local = id - k * st.id_span;
        k * st.trades.len() as u64 + st.trades.partition_point(|t| t.trade_id < local) as u64
    }

    /// Appends Binance's exact `@trade` message for tape position `pos`. Equal to
    /// [`binance::trade_message_json`] with `E` = `T` (the tape has no separate event time).
    fn render_into(&self, out: &mut String, pos: u64, combined: bool) {
        let (k, b, r) = self.locate(pos);
        let (s, j) = self.order[b];
        let st = &self.symbols[s];
        let name = &self.names[s * self.replicas as usize + r as usize];
        let t = &st.trades[j];
        let id = t.trade_id + k * st.id_span;
        let time = t.time_ms + k as i64 * self.time_shift;
        // Shared by every name and loop: the copies differ only in name, id and time.
        let pq = self.price_qty[b].get_or_init(|| {
            let mut f = String::with_capacity(48);
            f.push_str("\"p\":\"");
            write_wire_decimal(&mut f, &t.price);
            f.push_str("\",\"q\":\"");
            write_wire_decimal(&mut f, &t.qty);
            f.push('"');
            f.into_boxed_str()
        });
        if combined {
            out.push_str("{\"stream\":\"");
            out.push_str(&name.stream);
            out.push_str("\",\"data\":");
        }
        let _ = write!(
            out,
            "{{\"e\":\"trade\",\"E\":{time},\"s\":\"{}\",\"t\":{id},{pq},\"T\":{time},\"m\":{},\"M\":true}}",
            name.symbol, t.is_buyer_maker
        );
        if combined {
            out.push('}');
        }
    }
}

/// The names `--replicate n` serves `symbol` under: `S<i>` + its quote asset (just `S<i>` when
/// it has no known quote), `i` = 1..=n zero-padded to the width of `n`, so they sort in order.
fn replica_names(symbol: &str, n: u32) -> Vec<String> {
    let (_, quote) = split_assets(symbol);
    let width = n.to_string().len();
    (1..=n).map(|i| format!("S{i:0width$}{quote}")).collect()
}

/// What the tape driver hands a connection.
enum Outgoing {
    Trades(Vec<u64>),
    /// `--drop-every` reached: close the connection.
    Drop,
}

/// A connection as the driver sees it.
struct Subscriber {
    wants: Vec<bool>,
    tx: mpsc::Sender<Outgoing>,
    pending: Vec<u64>,
    sent: u64,
}

struct Shared {
    tape: Arc<Tape>,
    stats: Arc<ReplayStats>,
    register: mpsc::UnboundedSender<Subscriber>,
    ping_every: Duration,
    faults: ReplayFaults,
    cancel: CancellationToken,
    /// `--speed` (None: `--max`).
    speed: Option<f64>,
}

/// A running replay peer (see [`start`]).
pub struct ReplayServer {
    addr: SocketAddr,
    cancel: CancellationToken,
    stats: Arc<ReplayStats>,
    server: tokio::task::JoinHandle<()>,
    driver: tokio::task::JoinHandle<()>,
}

impl ReplayServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://<addr>`: base for `combined_stream_url`.
    pub fn ws_base(&self) -> url::Url {
        url_for("ws", self.addr)
    }

    /// `http://<addr>`: base for `BinanceRest`.
    pub fn http_base(&self) -> url::Url {
        url_for("http", self.addr)
    }

    pub fn stats(&self) -> &ReplayStats {
        &self.stats
    }

    /// A token that stops the server when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Sends `serverShutdown` to connected clients, closes them and stops serving.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        let _ = self.driver.await;
        let _ = self.server.await;
    }
}

fn url_for(scheme: &str, addr: SocketAddr) -> url::Url {
    let text = format!("{scheme}://{addr}");
    url::Url::parse(&text).unwrap_or_else(|_| unreachable!("a socket address always forms a URL"))
}

fn validate(args: &ReplayArgs) -> Result<Option<f64>, ReplayError> {
    if args.max && args.speed.is_some() {
        return Err(ReplayError::Args(
            "--speed and --max exclude each other".into(),
        ));
    }
    if args.drop_every == Some(0) {
        return Err(ReplayError::Args("--drop-every must be at least 1".into()));
    }
    if args.loops == 0 {
        return Err(ReplayError::Args("--loop must be at least 1".into()));
    }
    if args
        .replicate
        .is_some_and(|n| !(1..=MAX_REPLICAS).contains(&n))
    {
        return Err(ReplayError::Args(format!(
            "--replicate must be between 1 and {MAX_REPLICAS}"
        )));
    }
    let f = &args.faults;
    if [f.stall_after, f.malformed_every, f.oversized_every].contains(&Some(0)) {
        return Err(ReplayError::Args(
            "--stall-after, --malformed-every and --oversized-every must be at least 1".into(),
        ));
    }
    if args.ping_interval_secs == 0 {
        return Err(ReplayError::Args(
            "--ping-interval-secs must be at least 1".into(),
        ));
    }
    if args.max {
        return Ok(None);
    }
    match args.speed.unwrap_or(1.0) {
        s if s.is_finite() && s > 0.0 => Ok(Some(s)),
        s => Err(ReplayError::Args(format!(
            "--speed must be a positive number, not {s}"
        ))),
    }
}

async fn load_tape(args: &ReplayArgs) -> Result<Tape, ReplayError> {
    let files = args.trades.clone();
    let symbol = args.symbol.clone();
    let loops = args.loops;
    let replicate = args.replicate;
    tokio::task::spawn_blocking(move || {
        let mut by_symbol: BTreeMap<String, Vec<Trade>> = BTreeMap::new();
        for path in &files {
            let trades = trades_file::read_any_trades(path, symbol.as_deref())?;
            tracing::info!(file = %path.display(), trades = trades.len(), "replay: loaded");
            for t in trades {
                by_symbol.entry(t.symbol.to_string()).or_default().push(t);
            }
        }
        if by_symbol.values().all(Vec::is_empty) {
            return Err(ReplayError::EmptyTape(files));
        }
        Tape::build(by_symbol, loops, replicate)
    })
    .await
    .map_err(|e| ReplayError::Join(e.to_string()))?
}

/// Loads the tape, binds and starts serving; returns once the address is bound.
pub async fn start(args: ReplayArgs) -> Result<ReplayServer, ReplayError> {
    let pace = validate(&args)?;
    let tape = Arc::new(load_tape(&args).await?);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| ReplayError::Bind {
            addr: args.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ReplayError::Bind {
        addr: args.listen,
        source,
    })?;
    let cancel = CancellationToken::new();
    let stats = Arc::new(ReplayStats::default());
    let (register, registrations) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        tape: tape.clone(),
        stats: stats.clone(),
        register,
        ping_every: Duration::from_secs(args.ping_interval_secs),
        faults: args.faults.clone(),
        speed: pace,
        cancel: cancel.clone(),
    });
    let driver = tokio::spawn(drive(
        tape.clone(),
        registrations,
        Pacing {
            speed: pace,
            drop_every: args.drop_every,
            drop_skip: args.drop_skip,
        },
        stats.clone(),
        cancel.clone(),
    ));
    let app = axum::Router::new()
        .route("/stream", get(combined_ws))
        .route("/ws/{stream}", get(raw_ws))
        .route("/api/v3/historicalTrades", get(historical_trades))
        .route("/api/v3/exchangeInfo", get(exchange_info))
        .route("/api/v3/klines", get(klines))
        .route("/api/v3/ping", get(|| async { "{}" }))
        .route(STATS_PATH, get(peer_stats))
        .with_state(shared);
    let stop = cancel.clone();
    let server = tokio::spawn(async move {
        let serving = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned());
        if let Err(e) = serving.await {
            tracing::error!(error = %e, "replay: server failed");
        }
    });
    // Thousands of replicated names would drown the log: the first and last say which they are.
    let names = &tape.names;
    let shown: Vec<&str> = match names.len() {
        0..=8 => names.iter().map(|n| &*n.symbol).collect(),
        _ => vec![&names[0].symbol, "..", &names[names.len() - 1].symbol],
    };
    tracing::info!(
        %addr,
        symbols = ?shown,
        names = names.len(),
        trades = tape.total(),
        loops = tape.loops,
        mode = %pace.map_or("max".to_string(), |s| format!("speed x{s}")),
        "replay: serving Binance peer"
    );
    Ok(ReplayServer {
        addr,
        cancel,
        stats,
        server,
        driver,
    })
}

/// `tradepipe-testkit replay`: serve until Ctrl-C.
pub async fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let server = start(args).await?;
    tracing::info!(ws = %server.ws_base(), rest = %server.http_base(), "replay: ready (Ctrl-C stops)");
    let token = server.shutdown_token();
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = token.cancelled() => {}
    }
    server.shutdown().await;
    Ok(())
}

#[derive(Clone, Copy)]
struct Pacing {
    /// `None` = as fast as the clients read.
    speed: Option<f64>,
    drop_every: Option<u64>,
    drop_skip: u64,
}

/// Sends `sub`'s pending trades; false when the connection is gone or the server stops.
async fn flush(sub: &mut Subscriber, cancel: &CancellationToken) -> bool {
    if sub.pending.is_empty() {
        return !sub.tx.is_closed();
    }
    let batch = Outgoing::Trades(std::mem::replace(
        &mut sub.pending,
        Vec::with_capacity(BATCH),
    ));
    tokio::select! {
        r = sub.tx.send(batch) => r.is_ok(),
        _ = cancel.cancelled() => false,
    }
}

async fn flush_all(subs: &mut Vec<Subscriber>, cancel: &CancellationToken) {
    let mut i = 0;
    while i < subs.len() {
        if flush(&mut subs[i], cancel).await {
            i += 1;
        } else {
            subs.swap_remove(i);
        }
    }
}

/// The single tape cursor: walks the tape, paces it, fans trades out to the connections that
/// subscribed to their symbol, and applies `--drop-every` / `--drop-skip`.
async fn drive(
    tape: Arc<Tape>,
    mut registrations: mpsc::UnboundedReceiver<Subscriber>,
    pacing: Pacing,
    stats: Arc<ReplayStats>,
    cancel: CancellationToken,
) {
    let total = tape.total();
    let mut subs: Vec<Subscriber> = Vec::new();
    let mut clock: Option<(Instant, i64)> = None;
    let mut pos = 0u64;
    let started = std::time::Instant::now();
    while pos < total {
        while let Ok(s) = registrations.try_recv() {
            subs.push(s);
        }
        if subs.is_empty() && (pacing.speed.is_none() || clock.is_none()) {
            tokio::select! {
                s = registrations.recv() => match s {
                    Some(s) => subs.push(s),
                    None => return,
                },
                _ = cancel.cancelled() => return,
            }
            continue;
        }
        if let Some(speed) = pacing.speed {
            let t = tape.time_at(pos);
            let (wall0, t0) = *clock.get_or_insert_with(|| {
                stats.paced_since_tape_ms.store(t, Ordering::Release);
                stats.paced_since_wall_ms.store(now_ms(), Ordering::Release);
                (Instant::now(), t)
            });
            let due = wall0 + Duration::from_secs_f64((t - t0).max(0) as f64 / 1000.0 / speed);
            if due > Instant::now() {
                flush_all(&mut subs, &cancel).await;
                tokio::select! {
                    _ = tokio::time::sleep_until(due) => {}
                    _ = cancel.cancelled() => return,
                }
            }
        }
        let s = tape.symbol_of(pos);
        let mut delivered = false;
        let mut dropped = false;
        let mut i = 0;
        while i < subs.len() {
            let sub = &mut subs[i];
            if !sub.wants[s] {
                i += 1;
                continue;
            }
            sub.pending.push(pos);
            sub.sent += 1;
            delivered = true;
            let keep = if pacing.drop_every.is_some_and(|n| sub.sent >= n) {
                // Deliver exactly N messages, then close: deterministic for tests.
                let ok = flush(sub, &cancel).await;
                if ok {
                    tokio::select! {
                        _ = sub.tx.send(Outgoing::Drop) => {}
                        _ = cancel.cancelled() => return,
                    }
                }
                stats.drops.fetch_add(1, Ordering::Relaxed);
                dropped = true;
                false
            } else if sub.pending.len() >= BATCH {
                flush(sub, &cancel).await
            } else {
                true
            };
            if keep {
                i += 1;
            } else {
                subs.swap_remove(i);
            }
        }
        if delivered {
            stats.sent.fetch_add(1, Ordering::Relaxed);
        } else {
            stats.unsent.fetch_add(1, Ordering::Relaxed);
        }
        pos += 1;
        if dropped {
            // Trades that happen while the client reconnects: gone from the stream.
            let skip = pacing.drop_skip.min(total - pos);
            pos += skip;
            stats.unsent.fetch_add(skip, Ordering::Relaxed);
        }
        stats.cursor.store(pos, Ordering::Release);
        if pos.is_multiple_of(4 * BATCH as u64) {
            flush_all(&mut subs, &cancel).await;
        }
        if cancel.is_cancelled() {
            return;
        }
    }
    flush_all(&mut subs, &cancel).await;
    tracing::info!(
        trades = total,
        sent = stats.sent.load(Ordering::Relaxed),
        unsent = stats.unsent.load(Ordering::Relaxed),
        drops = stats.drops.load(Ordering::Relaxed),
        connections = stats.connections.load(Ordering::Relaxed),
        loops = tape.loops,
        secs = started.elapsed().as_secs_f64(),
        "replay: tape finished; connections stay open (pings only)"
    );
    // Keep every connection's channel open so clients stay connected and just get pings.
    loop {
        tokio::select! {
            s = registrations.recv() => match s {
                Some(s) => subs.push(s),
                None => return,
            },
            _ = cancel.cancelled() => return,
        }
        subs.retain(|s| !s.tx.is_closed());
    }
}

/// `GET /stream?streams=a@trade/b@trade`: the combined stream.
async fn combined_ws(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    let streams: Vec<&str> = q
        .get("streams")
        .map(|s| s.split('/').filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    subscribe(shared, ws, &streams, true)
}

/// `GET /ws/<stream>`: a raw stream.
async fn raw_ws(
    State(shared): State<Arc<Shared>>,
    AxPath(stream): AxPath<String>,
    ws: WebSocketUpgrade,
) -> Response {
    subscribe(shared, ws, &[stream.as_str()], false)
}

fn subscribe(
    shared: Arc<Shared>,
    ws: WebSocketUpgrade,
    streams: &[&str],
    combined: bool,
) -> Response {
    if streams.is_empty() || streams.len() > binance::MAX_STREAMS_PER_CONNECTION {
        return api_error(
            StatusCode::BAD_REQUEST,
            -1100,
            "1 to 1024 streams per connection",
        )
        .into_response();
    }
    let mut wants = vec![false; shared.tape.names.len()];
    for stream in streams {
        match stream
            .strip_suffix("@trade")
            .and_then(|sym| shared.tape.symbol_index(sym))
        {
            Some(i) => wants[i] = true,
            // Like Binance: an unknown stream is accepted and simply stays silent.
            None => tracing::warn!(
                stream,
                "replay: stream not on the tape; it will stay silent"
            ),
        }
    }
    ws.on_upgrade(move |socket| connection(shared, socket, wants, combined))
}

/// One client connection: renders and sends what the driver hands it, pings, answers closes.
async fn connection(shared: Arc<Shared>, mut socket: WebSocket, wants: Vec<bool>, combined: bool) {
    let conn = shared.stats.connections.fetch_add(1, Ordering::Relaxed) + 1;
    let (tx, mut rx) = mpsc::channel(CONN_QUEUE);
    let registered = shared.register.send(Subscriber {
        wants,
        tx,
        pending: Vec::with_capacity(BATCH),
        sent: 0,
    });
    let mut feed_open = registered.is_ok();
    tracing::info!(conn, combined, "replay: client connected");
    let mut ping = tokio::time::interval_at(Instant::now() + shared.ping_every, shared.ping_every);
    let mut buf = String::with_capacity(256);
    let faults = &shared.faults;
    // Trade messages sent on this connection, and whether `--stall-after` silenced it.
    let mut sent = 0u64;
    let mut stalled = false;
    let every = |n: Option<u64>, sent: u64| n.is_some_and(|n| sent.is_multiple_of(n));
    let reason = loop {
        tokio::select! {
            biased;
            _ = shared.cancel.cancelled() => {
                let now = now_ms();
                let msg = if combined {
                    format!("{{\"stream\":\"!serverShutdown\",\"data\":{{\"e\":\"serverShutdown\",\"E\":{now}}}}}")
                } else {
                    format!("{{\"e\":\"serverShutdown\",\"E\":{now}}}")
                };
                let _ = socket.send(Message::Text(msg.into())).await;
                let _ = socket.send(close(1001, "server shutdown")).await;
                break "server shutdown";
            }
            out = rx.recv(), if feed_open => match out {
                Some(Outgoing::Trades(positions)) => {
                    let mut failed = false;
                    for pos in positions {
                        buf.clear();
                        shared.tape.render_into(&mut buf, pos, combined);
                        let mut out = vec![Message::Text(Utf8Bytes::from(buf.as_str()))];
                        sent += 1;
                        if every(faults.malformed_every, sent) {
                            let k = shared.stats.malformed.fetch_add(1, Ordering::Relaxed);
                            out.push(malformed_message(k));
                        }
                        if every(faults.oversized_every, sent) {
                            shared.stats.oversized.fetch_add(1, Ordering::Relaxed);
                            out.push(oversized_message(faults.oversized_bytes));
                        }
                        for m in out {
                            if socket.feed(m).await.is_err() {
                                failed = true;
                                break;
                            }
                        }
                        if failed {
                            break;
                        }
                        if faults.stall_after.is_some_and(|n| sent >= n) {
                            // The rest of this batch, and everything after, is never sent here.
                            stalled = true;
                            break;
                        }
                    }
                    if failed || socket.flush().await.is_err() {
                        break "send failed";
                    }
                    if stalled {
                        shared.stats.stalls.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(conn, sent, "replay: connection stalled (--stall-after)");
                        rx.close();
                        feed_open = false;
                    }
                }
                Some(Outgoing::Drop) => {
                    let _ = socket.send(close(1001, "replay --drop-every")).await;
                    break "dropped (--drop-every)";
                }
                None => feed_open = false,
            },
            _ = ping.tick(), if !stalled => {
                let payload = Bytes::from(now_ms().to_string());
                if socket.send(Message::Ping(payload)).await.is_err() {
                    break "ping failed";
                }
            }
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break "client closed",
                Some(Ok(_)) => {} // pongs; axum answers pings itself
            },
        }
    };
    tracing::info!(conn, reason, "replay: connection closed");
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `GET /testkit/stats`: the tape position (trades that have "happened": the rate offered is its
/// growth), the tape's length, and the other [`ReplayStats`] counters.
async fn peer_stats(State(shared): State<Arc<Shared>>) -> Response {
    let st = &shared.stats;
    let load = |c: &AtomicU64| c.load(Ordering::Acquire);
    let body = serde_json::json!({
        "cursor": load(&st.cursor),
        "total": shared.tape.total(),
        "names": shared.tape.names.len(),
        "sent": load(&st.sent),
        "unsent": load(&st.unsent),
        "connections": load(&st.connections),
        "drops": load(&st.drops),
        "stalls": load(&st.stalls),
        "malformed": load(&st.malformed),
        "oversized": load(&st.oversized),
        "lag_ms": schedule_lag_ms(&shared),
    });
    json_response(StatusCode::OK, body.to_string())
}

/// With `--speed`: how far (in tape time) the cursor is behind where the pacing says the tape
/// should be. The tape waits for its slowest reader, so a client that cannot keep up shows here,
/// as the feed lag a live exchange's clock would give it. None with `--max`, before the first
/// client and after the tape's end.
fn schedule_lag_ms(shared: &Shared) -> Option<i64> {
    let (speed, st) = (shared.speed?, &shared.stats);
    let wall0 = st.paced_since_wall_ms.load(Ordering::Acquire);
    let cursor = st.cursor.load(Ordering::Acquire);
    if wall0 == 0 || cursor >= shared.tape.total() {
        return None;
    }
    let due =
        st.paced_since_tape_ms.load(Ordering::Acquire) + ((now_ms() - wall0) as f64 * speed) as i64;
    Some((due - shared.tape.time_at(cursor)).max(0))
}

/// A REST failure in Binance's shape: HTTP status plus body `{"code":..,"msg":".."}`.
struct ApiError {
    status: StatusCode,
    code: i32,
    msg: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "code": self.code, "msg": self.msg }).to_string();
        json_response(self.status, body)
    }
}

fn api_error(status: StatusCode, code: i32, msg: &str) -> ApiError {
    ApiError {
        status,
        code,
        msg: msg.to_string(),
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
        body,
    )
        .into_response()
}

type Params = Query<HashMap<String, String>>;

fn symbol_param(shared: &Shared, q: &HashMap<String, String>) -> Result<usize, ApiError> {
    let Some(sym) = q.get("symbol").filter(|s| !s.is_empty()) else {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            -1102,
            "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
        ));
    };
    shared
        .tape
        .symbol_index(sym)
        .ok_or_else(|| api_error(StatusCode::BAD_REQUEST, -1121, "Invalid symbol."))
}

fn number_param<T: std::str::FromStr>(
    q: &HashMap<String, String>,
    name: &str,
) -> Result<Option<T>, ApiError> {
    match q.get(name) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            api_error(
                StatusCode::BAD_REQUEST,
                -1100,
                &format!("Illegal characters found in parameter '{name}'."),
            )
        }),
    }
}

fn limit_param(q: &HashMap<String, String>) -> Result<usize, ApiError> {
    Ok(number_param::<usize>(q, "limit")?
        .unwrap_or(DEFAULT_LIMIT)
        .clamp(1, MAX_LIMIT))
}

/// `GET /api/v3/historicalTrades?symbol=&fromId=&limit=`: trades the tape has passed, from
/// `fromId` (or the most recent ones), looped ids included.
async fn historical_trades(State(shared): State<Arc<Shared>>, Query(q): Params) -> Response {
    let run = || -> Result<Response, ApiError> {
        let s = symbol_param(&shared, &q)?;
        let limit = limit_param(&q)? as u64;
        let from_id: Option<u64> = number_param(&q, "fromId")?;
        let tape = &shared.tape;
        let published = tape.published(s, shared.stats.cursor.load(Ordering::Acquire));
        let start = match from_id {
            Some(id) => tape.index_of_id(s, id),
            None => published.saturating_sub(limit),
        };
        let end = published.min(start.saturating_add(limit));
        let mut body = String::with_capacity(((end.saturating_sub(start)) * 160) as usize + 2);
        body.push('[');
        for v in start..end {
            if v > start {
                body.push(',');
            }
            binance::write_historical_trade_json(&mut body, &tape.symbol_trade(s, v));
        }
        body.push(']');
        Ok(json_response(StatusCode::OK, body))
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

/// The base and quote assets of a symbol, by the longest known quote suffix.
fn split_assets(symbol: &str) -> (String, String) {
    const QUOTES: [&str; 16] = [
        "FDUSD", "USDT", "USDC", "BUSD", "TUSD", "DAI", "TRY", "EUR", "GBP", "BRL", "JPY", "BTC",
        "ETH", "BNB", "USD", "BIDR",
    ];
    QUOTES
        .iter()
        .filter(|q| symbol.len() > q.len() && symbol.ends_with(*q))
        .max_by_key(|q| q.len())
        .map_or((symbol.to_string(), String::new()), |q| {
            (symbol[..symbol.len() - q.len()].to_string(), q.to_string())
        })
}

fn wire(d: Decimal) -> String {
    let mut s = String::new();
    write_wire_decimal(&mut s, &d);
    s
}

/// `GET /api/v3/exchangeInfo[?symbol=|symbols=[..]]`: the tape's symbols, with tick and step
/// sizes derived from the most decimals the tape's prices and quantities actually use.
async fn exchange_info(State(shared): State<Arc<Shared>>, Query(q): Params) -> Response {
    let tape = &shared.tape;
    let mut wanted: Vec<String> = Vec::new();
    if let Some(s) = q.get("symbol") {
        wanted.push(s.to_ascii_uppercase());
    }
    if let Some(list) = q.get("symbols") {
        match serde_json::from_str::<Vec<String>>(list) {
            Ok(l) => wanted.extend(l.into_iter().map(|s| s.to_ascii_uppercase())),
            Err(_) => {
                return api_error(
                    StatusCode::BAD_REQUEST,
                    -1100,
                    "Illegal characters found in parameter 'symbols'.",
                )
                .into_response();
            }
        }
    }
    // Tape order, each once, whatever order and repeats the request has.
    let mut chosen: Vec<usize> = Vec::with_capacity(wanted.len());
    for w in &wanted {
        match tape.symbol_index(w) {
            Some(i) => chosen.push(i),
            None => {
                return api_error(StatusCode::BAD_REQUEST, -1121, "Invalid symbol.")
                    .into_response();
            }
        }
    }
    if wanted.is_empty() {
        chosen.extend(0..tape.names.len());
    }
    chosen.sort_unstable();
    chosen.dedup();
    let symbols: Vec<serde_json::Value> = chosen
        .into_iter()
        .map(|i| {
            let name = &*tape.names[i].symbol;
            let st = &tape.symbols[tape.base_symbol(i)];
            let (base, quote) = split_assets(name);
            let tick = wire(Decimal::new(1, st.price_decimals));
            let step = wire(Decimal::new(1, st.qty_decimals));
            serde_json::json!({
                "symbol": name, "status": "TRADING",
                "baseAsset": base, "baseAssetPrecision": 8,
                "quoteAsset": quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
                "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
                "icebergAllowed": true, "ocoAllowed": true, "isSpotTradingAllowed": true,
                "isMarginTradingAllowed": false,
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "1000000.00000000", "tickSize": tick},
                    {"filterType": "LOT_SIZE", "minQty": step, "maxQty": "9000.00000000", "stepSize": step},
                ],
                "permissions": [], "permissionSets": [["SPOT"]],
            })
        })
        .collect();
    let body = serde_json::json!({
        "timezone": "UTC", "serverTime": now_ms(), "rateLimits": [], "exchangeFilters": [],
        "symbols": symbols,
    });
    json_response(StatusCode::OK, body.to_string())
}

/// One kline being folded (deliberately independent of the domain's candle engine, so the two
/// can check each other).
struct KlineAcc {
    open_time: i64,
    open: Decimal,
    high: Decimal,
    low: Decimal,
    close: Decimal,
    volume: Decimal,
    quote_volume: Decimal,
    trades: u64,
    taker_buy_volume: Decimal,
    taker_buy_quote: Decimal,
}

impl KlineAcc {
    fn new(open_time: i64, price: Decimal) -> KlineAcc {
        KlineAcc {
            open_time,
            open: price,
            high: price,
            low: price,
            close: price,
            volume: Decimal::ZERO,
            quote_volume: Decimal::ZERO,
            trades: 0,
            taker_buy_volume: Decimal::ZERO,
            taker_buy_quote: Decimal::ZERO,
        }
    }

    fn add(&mut self, t: &Trade) {
        if self.trades == 0 {
            self.open = t.price;
            self.high = t.price;
            self.low = t.price;
        }
        self.high = self.high.max(t.price);
        self.low = self.low.min(t.price);
        self.close = t.price;
        self.volume += t.qty;
        self.quote_volume += t.price * t.qty;
        self.trades += 1;
        if !t.is_buyer_maker {
            self.taker_buy_volume += t.qty;
            self.taker_buy_quote += t.price * t.qty;
        }
    }

    fn write(&self, out: &mut String, interval: Interval) {
        let _ = write!(out, "[{},", self.open_time);
        for d in [self.open, self.high, self.low, self.close, self.volume] {
            out.push('"');
            write_wire_decimal(out, &d.normalize());
            out.push_str("\",");
        }
        let _ = write!(out, "{},\"", interval.close_time(self.open_time));
        write_wire_decimal(out, &self.quote_volume.normalize());
        let _ = write!(out, "\",{},\"", self.trades);
        write_wire_decimal(out, &self.taker_buy_volume.normalize());
        out.push_str("\",\"");
        write_wire_decimal(out, &self.taker_buy_quote.normalize());
        out.push_str("\",\"0\"]");
    }
}

/// `GET /api/v3/klines?symbol=&interval=&startTime=&endTime=&limit=`: Binance's array-of-arrays
/// klines folded from the trades the tape has passed. An interval without trades between traded
/// ones is reported flat at the previous close with zero volume (how Binance shows quiet
/// intervals), so a client sees no holes in the series.
async fn klines(State(shared): State<Arc<Shared>>, Query(q): Params) -> Response {
    let run = || -> Result<Response, ApiError> {
        let s = symbol_param(&shared, &q)?;
        let interval: Interval = q
            .get("interval")
            .and_then(|i| i.parse().ok())
            .ok_or_else(|| api_error(StatusCode::BAD_REQUEST, -1120, "Invalid interval."))?;
        let limit = limit_param(&q)?;
        let start_time: Option<i64> = number_param(&q, "startTime")?;
        let end_time: Option<i64> = number_param(&q, "endTime")?;
        let tape = &shared.tape;
        let published = tape.published(s, shared.stats.cursor.load(Ordering::Acquire));
        // Klines whose open time lies in [startTime, endTime].
        let lo_t = start_time.map(|t| {
            let open = interval.open_time(t);
            if open == t {
                t
            } else {
                open + interval.duration_ms()
            }
        });
        let hi_t = end_time.map(|t| interval.close_time(interval.open_time(t)));
        let first = |t: i64| partition(published, |v| tape.symbol_time(s, v) < t);
        let lo = lo_t.map_or(0, first);
        let hi = hi_t.map_or(published, |t| first(t.saturating_add(1)));
        let mut rows: Vec<KlineAcc> = Vec::new();
        for v in lo..hi {
            let t = tape.symbol_trade(s, v);
            let open = interval.open_time(t.time_ms);
            match rows.last() {
                Some(last) if last.open_time == open => {}
                Some(last) => {
                    // Flat, empty klines for intervals without trades.
                    let mut gap = last.open_time + interval.duration_ms();
                    let close = last.close;
                    while gap < open {
                        rows.push(KlineAcc::new(gap, close));
                        gap = interval.open_time(gap + interval.duration_ms());
                    }
                    rows.push(KlineAcc::new(open, t.price));
                }
                None => rows.push(KlineAcc::new(open, t.price)),
            }
            if let Some(last) = rows.last_mut() {
                last.add(&t);
            }
            if start_time.is_some() && rows.len() > limit {
                break;
            }
        }
        let rows = if start_time.is_some() {
            &rows[..rows.len().min(limit)]
        } else {
            &rows[rows.len().saturating_sub(limit)..]
        };
        let mut body = String::with_capacity(rows.len() * 200 + 2);
        body.push('[');
        for (i, r) in rows.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            r.write(&mut body, interval);
        }
        body.push(']');
        Ok(json_response(StatusCode::OK, body))
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

/// First `v` in `0..n` for which `before(v)` is false (`before` must be monotone).
fn partition(n: u64, before: impl Fn(u64) -> bool) -> u64 {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if before(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn trade(sym: &str, id: u64, price: &str, time: i64) -> Trade {
        Trade {
            symbol: binance::intern_symbol(sym),
            trade_id: id,
            price: Decimal::from_str(price).unwrap(),
            qty: Decimal::from_str("0.50000000").unwrap(),
            time_ms: time,
            is_buyer_maker: id.is_multiple_of(2),
        }
    }

    /// Out of id order on purpose: the tape sorts.
    fn btc() -> Vec<Trade> {
        vec![
            trade("BTCUSDT", 12, "2.5", 1_005),
            trade("BTCUSDT", 10, "1.25", 1_000),
            trade("BTCUSDT", 11, "2", 1_003),
        ]
    }

    fn tape(loops: u64) -> Tape {
        let mut m = BTreeMap::new();
        m.insert("BTCUSDT".to_string(), btc());
        m.insert(
            "ETHUSDT".to_string(),
            vec![
                trade("ETHUSDT", 7, "3", 1_001),
                trade("ETHUSDT", 8, "3.5", 1_010),
            ],
        );
        Tape::build(m, loops, None).unwrap()
    }

    #[test]
    fn merge_by_time_and_loop_shifts() {
        let t = tape(3);
        assert_eq!(t.total(), 15);
        let seq: Vec<(String, u64, i64)> = (0..t.total())
            .map(|p| {
                let (_, tr) = t.at(p);
                (tr.symbol.to_string(), tr.trade_id, tr.time_ms)
            })
            .collect();
        assert_eq!(
            seq[..5],
            [
                ("BTCUSDT".into(), 10, 1_000),
                ("ETHUSDT".into(), 7, 1_001),
                ("BTCUSDT".into(), 11, 1_003),
                ("BTCUSDT".into(), 12, 1_005),
                ("ETHUSDT".into(), 8, 1_010),
            ]
        );
        // Span 1000..1010 -> shift 11 ms; ids shift by 3 (BTC) and 2 (ETH).
        assert_eq!(seq[5], ("BTCUSDT".into(), 13, 1_011));
        assert_eq!(seq[14], ("ETHUSDT".into(), 12, 1_032));
        for sym in ["BTCUSDT", "ETHUSDT"] {
            let ids: Vec<u64> = seq.iter().filter(|x| x.0 == sym).map(|x| x.1).collect();
            assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "{sym}: {ids:?}");
        }
        assert!(seq.windows(2).all(|w| w[1].2 >= w[0].2));
    }

    /// The BTC trades of [`tape`] alone, served under `n` names.
    fn replicated(n: u32, loops: u64) -> Tape {
        let m = BTreeMap::from([("BTCUSDT".to_string(), btc())]);
        Tape::build(m, loops, Some(n)).unwrap()
    }

    #[test]
    fn replicated_names_each_play_the_recorded_trades_in_consecutive_copies() {
        let t = replicated(3, 2);
        let names = ["S1USDT", "S2USDT", "S3USDT"];
        assert_eq!(
            t.names.iter().map(|n| &*n.symbol).collect::<Vec<_>>(),
            names
        );
        assert_eq!(t.total(), 3 * 3 * 2);
        let seq: Vec<(String, u64, i64, String)> = (0..t.total())
            .map(|p| {
                let (i, tr) = t.at(p);
                assert_eq!((i, t.time_at(p)), (t.symbol_of(p), tr.time_ms));
                (
                    tr.symbol.to_string(),
                    tr.trade_id,
                    tr.time_ms,
                    tr.price.to_string(),
                )
            })
            .collect();
        // One recorded trade, then its copy under every name, before the next recorded trade.
        let step = |id, time, price: &str| names.map(|n| (n.to_string(), id, time, price.into()));
        assert_eq!(seq[..3], step(10, 1_000, "1.25"));
        assert_eq!(seq[3..6], step(11, 1_003, "2"));
        assert_eq!(seq[6..9], step(12, 1_005, "2.5"));
        // The second loop: ids shift by the id span (3), times by the tape's span + 1 ms (6).
        assert_eq!(seq[9..12], step(13, 1_006, "1.25"));
        assert_eq!(seq[15..18], step(15, 1_011, "2.5"));
        for name in names {
            let mine: Vec<u64> = seq.iter().filter(|x| x.0 == name).map(|x| x.1).collect();
            assert_eq!(mine, [10, 11, 12, 13, 14, 15], "{name}");
        }
        assert!(seq.windows(2).all(|w| w[1].2 >= w[0].2));
        // What REST serves for a name: the same trades, under that name.
        let s2 = t.symbol_index("s2usdt").unwrap();
        assert_eq!(t.index_of_id(s2, 14), 4);
        let fifth = t.symbol_trade(s2, 4);
        assert_eq!(
            (&*fifth.symbol, fifth.trade_id, fifth.time_ms),
            ("S2USDT", 14, 1_009)
        );
        assert_eq!(t.symbol_time(s2, 4), 1_009);
    }

    #[test]
    fn published_counts_exactly_the_positions_before_the_cursor() {
        for t in [
            tape(2),
            replicated(3, 2),
            replicated(1, 1),
            replicated(4, 1),
        ] {
            for i in 0..t.names.len() {
                for cursor in 0..=t.total() {
                    let passed = (0..cursor).filter(|&p| t.symbol_of(p) == i).count() as u64;
                    assert_eq!(t.published(i, cursor), passed, "name {i} cursor {cursor}");
                }
            }
        }
    }

    #[test]
    fn replica_names_are_zero_padded_to_the_width_of_n() {
        assert_eq!(replica_names("BTCUSDT", 3), ["S1USDT", "S2USDT", "S3USDT"]);
        let names = replica_names("BTCUSDT", 1000);
        assert_eq!(
            (names.len(), names[0].as_str(), names[999].as_str()),
            (1000, "S0001USDT", "S1000USDT")
        );
        assert_eq!(replica_names("ETHBTC", 10)[8], "S09BTC");
        assert_eq!(replica_names("XYZ", 2), ["S1", "S2"]);
        let t = replicated(1000, 1);
        assert_eq!(t.symbol_index("s0500usdt"), Some(499));
        assert_eq!(t.names[499].stream, "s0500usdt@trade");
        // Only the replicated names are served, not the recorded one.
        assert_eq!(t.symbol_index("BTCUSDT"), None);
        // Every copy shares the recorded trades: memory does not grow with N.
        assert_eq!(
            (
                t.symbols.len(),
                t.symbols[0].trades.len(),
                t.price_qty.len()
            ),
            (1, 3, 3)
        );
    }

    #[test]
    fn replicating_several_symbols_or_zero_names_is_rejected() {
        let mut m = BTreeMap::new();
        m.insert("BTCUSDT".to_string(), vec![trade("BTCUSDT", 1, "1", 1)]);
        m.insert("ETHUSDT".to_string(), vec![trade("ETHUSDT", 1, "1", 1)]);
        let err = Tape::build(m, 1, Some(5)).err();
        assert!(
            matches!(&err, Some(ReplayError::ReplicateSymbols(2, list)) if list == "BTCUSDT, ETHUSDT"),
            "{err:?}"
        );
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: ReplayArgs,
        }
        let parse = |n: &str| {
            Cli::try_parse_from(["x", "--trades", "a.csv", "--replicate", n])
                .map(|c| c.args)
                .ok()
        };
        let a = parse("1000").unwrap();
        assert_eq!(
            (a.replicate, validate(&a).unwrap()),
            (Some(1000), Some(1.0))
        );
        assert!(validate(&parse("0").unwrap()).is_err());
        assert!(validate(&parse("100001").unwrap()).is_err());
        assert!(parse("-3").is_none());
    }

    #[test]
    fn rendering_matches_the_wire_module() {
        for t in [tape(2), replicated(3, 2)] {
            rendering_matches(&t);
        }
    }

    fn rendering_matches(t: &Tape) {
        for combined in [false, true] {
            for p in 0..t.total() {
                let mut out = String::new();
                t.render_into(&mut out, p, combined);
                let (_, tr) = t.at(p);
                assert_eq!(out, binance::trade_message_json(&tr, tr.time_ms, combined));
            }
        }
    }

    #[test]
    fn published_counts_and_id_lookup() {
        let t = tape(2);
        let btc = t.symbol_index("btcusdt").unwrap();
        assert_eq!(
            [0, 1, 2, 3, 5, 6, 10].map(|c| t.published(btc, c)),
            [0, 1, 1, 2, 3, 4, 6]
        );
        assert_eq!(t.index_of_id(btc, 0), 0);
        assert_eq!(t.index_of_id(btc, 12), 2);
        assert_eq!(t.index_of_id(btc, 14), 4);
        assert_eq!(t.symbol_trade(btc, 4).trade_id, 14);
    }

    #[test]
    fn duplicate_ids_and_bad_args_are_rejected() {
        let mut m = BTreeMap::new();
        m.insert(
            "BTCUSDT".to_string(),
            vec![trade("BTCUSDT", 1, "1", 1), trade("BTCUSDT", 1, "1", 2)],
        );
        assert!(matches!(
            Tape::build(m, 1, None),
            Err(ReplayError::DuplicateId { id: 1, .. })
        ));
        let mut m = BTreeMap::new();
        m.insert(
            "BTCUSDT".to_string(),
            vec![trade("BTCUSDT", 1, "1", 5), trade("BTCUSDT", 2, "1", 2)],
        );
        assert!(matches!(
            Tape::build(m, 1, None),
            Err(ReplayError::TimeOrder { id: 2, .. })
        ));
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: ReplayArgs,
        }
        let a = Cli::try_parse_from(["x", "--trades", "a.csv", "b.csv", "--max", "--loop", "2"])
            .unwrap()
            .args;
        assert_eq!(
            (
                a.trades.len(),
                a.max,
                a.loops,
                a.drop_skip,
                a.ping_interval_secs
            ),
            (2, true, 2, 100, 20)
        );
        assert_eq!(a.listen.to_string(), "127.0.0.1:9443");
        assert!(Cli::try_parse_from(["x", "--trades", "a", "--max", "--speed", "2"]).is_err());
        assert!(Cli::try_parse_from(["x"]).is_err());
        let mut a = a;
        a.max = false;
        a.speed = Some(0.0);
        assert!(validate(&a).is_err());
        a.speed = Some(10.0);
        assert_eq!(validate(&a).unwrap(), Some(10.0));
    }

    #[test]
    fn assets_split_by_quote_suffix() {
        assert_eq!(split_assets("BTCUSDT"), ("BTC".into(), "USDT".into()));
        assert_eq!(split_assets("ETHBTC"), ("ETH".into(), "BTC".into()));
        assert_eq!(split_assets("BTCFDUSD"), ("BTC".into(), "FDUSD".into()));
        assert_eq!(split_assets("XYZ"), ("XYZ".into(), String::new()));
    }
}
