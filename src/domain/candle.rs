//! OHLCV candles built from trades, equal field by field to Binance's own klines.
//!
//! # Conventions (checked against the recorded data in the shared `data/market` folder)
//!
//! - A bucket is `[open, open + length)`; `close_time = open + length - 1`. Every recorded
//!   `kline_1m` message (74: Binance spot, Binance.US, USD-M futures) has `T = t + 59999`, and so
//!   does every row of the official `BTCUSDT-1m-2020-01-0{1,2,3}` files (4,320 rows).
//! - `f`/`L` are the first/last trade ids and `n = L - f + 1` in every recorded kline with trades;
//!   a closed kline's `L + 1` is the next minute's `f`. The book counts trades rather than taking
//!   the id span, so a gap in the feed shows as `trade_count < last - first + 1` instead of being
//!   papered over.
//! - Quote volume is the exact sum of `price * qty`. The official files write it with exactly 8
//!   decimals, and BTCUSDT's price (2 decimals) times its qty (6 decimals in the 2020 files, at most
//!   5 in the 2024 recordings) never needs more, so the exact sum is what Binance reports. Nothing
//!   is rounded here; volumes are only normalised (trailing zeros stripped) so that a value always
//!   has one text form.
//! - Weeks open Monday 00:00 UTC (`Interval::open_time`).
//!
//! # Intervals without trades
//!
//! Binance publishes klines for buckets with no trade: the stream sends `f = L = -1`, `n = 0`,
//! `v = q = 0` and `o = h = l = c` (a recorded spot ETHUSDT `kline_1s` message of that shape, all
//! four prices 1870.76, is quoted in a third-party repository). The book does the same, so a
//! stored series has no holes and neither a chart nor a restart has to guess: when a trade (or
//! `close_elapsed`) moves past whole buckets, each skipped bucket is emitted closed with
//! `o = h = l = c =` the close of the interval's previous candle, volumes 0, count 0 and ids `None`.
//! `current`/`open_candles` show an idle interval's current bucket the same way. Nothing is emitted
//! before an interval has a price.
//!
//! Not verified here: no recording holds an empty kline (every recorded kline and every official
//! 2020 minute has trades), and the third-party message does not show the previous close, so
//! "price = previous close" is taken on trust, not proven by this data. Nor could the book be
//! compared with official klines of the same minutes (no such pairing is reachable, see
//! `SOURCES.md`); the real-data tests compare against an independent reference fold instead.
//!
//! # Why a segment
//!
//! Folding a trade into eight `Decimal` candles costs eight times what folding it into one does.
//! Every interval is a whole number of minutes and aligned to minute boundaries, so all of them
//! share the current minute: a trade is folded into one per-minute segment, each interval keeps
//! `acc`, the part of its current bucket before that minute, and an interval's candle is
//! `merge(acc, segment)`, computed only when someone asks or the bucket closes. The same split makes
//! `restore` exact: a stored candle becomes `acc` and the segment starts empty.

use super::{Interval, Symbol, Trade};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

const MINUTE_MS: i64 = 60_000;
const N_INTERVALS: usize = Interval::ALL.len();

/// One candle of one symbol and interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candle {
    pub symbol: Symbol,
    pub interval: Interval,
    /// UTC ms, aligned per `Interval::open_time`.
    pub open_time_ms: i64,
    /// open + interval - 1 ms.
    pub close_time_ms: i64,
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub close: Decimal,
    pub volume: Decimal,
    pub quote_volume: Decimal,
    pub trade_count: u64,
    /// First and last trade id folded in; `None` for an interval without trades.
    pub first_trade_id: Option<u64>,
    pub last_trade_id: Option<u64>,
    /// True once the interval has ended (a later trade or the clock passed its close time).
    pub closed: bool,
}

impl Candle {
    /// A bucket nobody traded in, shown at the last known price the way Binance shows it, so that
    /// a series has no holes.
    pub fn empty(
        symbol: Symbol,
        interval: Interval,
        open_time_ms: i64,
        price: Decimal,
        closed: bool,
    ) -> Self {
        Candle {
            symbol,
            interval,
            open_time_ms,
            close_time_ms: interval.close_time(open_time_ms),
            open: price,
            high: price,
            low: price,
            close: price,
            volume: Decimal::ZERO,
            quote_volume: Decimal::ZERO,
            trade_count: 0,
            first_trade_id: None,
            last_trade_id: None,
            closed,
        }
    }

    /// True for a bucket without trades (its prices only carry the previous close forward).
    pub fn is_empty(&self) -> bool {
        self.trade_count == 0
    }
}

/// Trades folded over a stretch of time: a minute's segment or the earlier part of a bucket.
/// `count == 0` means empty, and then the other fields mean nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Part {
    open: Decimal,
    high: Decimal,
    low: Decimal,
    close: Decimal,
    volume: Decimal,
    quote_volume: Decimal,
    count: u64,
    first_id: Option<u64>,
    last_id: Option<u64>,
}

impl Part {
    const EMPTY: Part = Part {
        open: Decimal::ZERO,
        high: Decimal::ZERO,
        low: Decimal::ZERO,
        close: Decimal::ZERO,
        volume: Decimal::ZERO,
        quote_volume: Decimal::ZERO,
        count: 0,
        first_id: None,
        last_id: None,
    };

    fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The hot path: one trade, one comparison pair, two additions and one multiplication.
    #[inline]
    fn fold(&mut self, price: Decimal, qty: Decimal, id: u64) {
        let quote = price * qty;
        if self.count == 0 {
            *self = Part {
                open: price,
                high: price,
                low: price,
                close: price,
                volume: qty,
                quote_volume: quote,
                count: 1,
                first_id: Some(id),
                last_id: Some(id),
            };
            return;
        }
        if price > self.high {
            self.high = price;
        } else if price < self.low {
            self.low = price;
        }
        self.close = price;
        self.volume += qty;
        self.quote_volume += quote;
        self.count += 1;
        self.last_id = Some(id);
    }

    /// `self` followed by `later`. Exact: nothing is recomputed from prices.
    fn merge(&self, later: &Part) -> Part {
        if later.is_empty() {
            return *self;
        }
        if self.is_empty() {
            return *later;
        }
        Part {
            open: self.open,
            high: self.high.max(later.high),
            low: self.low.min(later.low),
            close: later.close,
            volume: self.volume + later.volume,
            quote_volume: self.quote_volume + later.quote_volume,
            count: self.count + later.count,
            first_id: self.first_id.or(later.first_id),
            last_id: later.last_id.or(self.last_id),
        }
    }

    /// Products of 8-decimal strings come at scale 16, and a sum near `Decimal`'s 28 digits gets
    /// rescaled by `rust_decimal` itself (exactly, the dropped digits being zeros), so the same
    /// value could print as `12.5` or `12.500000000000000`. Stripping zeros gives one text form.
    fn normalised(mut self) -> Part {
        self.volume = self.volume.normalize();
        self.quote_volume = self.quote_volume.normalize();
        self
    }

    fn from_candle(c: &Candle) -> Part {
        if c.trade_count == 0 {
            return Part::EMPTY;
        }
        Part {
            open: c.open,
            high: c.high,
            low: c.low,
            close: c.close,
            volume: c.volume,
            quote_volume: c.quote_volume,
            count: c.trade_count,
            first_id: c.first_trade_id,
            last_id: c.last_trade_id,
        }
    }
}

/// One interval's state besides the shared segment.
#[derive(Debug, Clone)]
struct Slot {
    interval: Interval,
    /// Open time of the current bucket; `None` until the interval has a price.
    open_ms: Option<i64>,
    /// What the current bucket holds from before the segment's minute.
    acc: Part,
    /// Close of the interval's previous candle: the price of a bucket without trades.
    carry: Option<Decimal>,
    /// Highest trade id this slot holds from `restore` or from a catch-up fold. A replayed trade
    /// at or below it is already in the stored candle and must not be counted twice.
    seen_through: Option<u64>,
}

impl Slot {
    fn new(interval: Interval) -> Self {
        Slot {
            interval,
            open_ms: None,
            acc: Part::EMPTY,
            carry: None,
            seen_through: None,
        }
    }

    fn candle(&self, symbol: &Symbol, open_ms: i64, part: &Part, closed: bool) -> Option<Candle> {
        if part.is_empty() {
            return self
                .carry
                .map(|p| Candle::empty(symbol.clone(), self.interval, open_ms, p, closed));
        }
        let part = part.normalised();
        Some(Candle {
            symbol: symbol.clone(),
            interval: self.interval,
            open_time_ms: open_ms,
            close_time_ms: self.interval.close_time(open_ms),
            open: part.open,
            high: part.high,
            low: part.low,
            close: part.close,
            volume: part.volume,
            quote_volume: part.quote_volume,
            trade_count: part.count,
            first_trade_id: part.first_id,
            last_trade_id: part.last_id,
            closed,
        })
    }

    /// Moves the slot to the bucket holding `minute_ms` (the segment must already be folded into
    /// `acc`), emitting the bucket it leaves and every bucket skipped in between.
    fn roll(&mut self, symbol: &Symbol, minute_ms: i64, closed: &mut Vec<Candle>) {
        let new_open = self.interval.open_time(minute_ms);
        let Some(old_open) = self.open_ms else {
            self.open_ms = Some(new_open);
            return;
        };
        if new_open <= old_open {
            return;
        }
        if let Some(c) = self.candle(symbol, old_open, &self.acc, true) {
            self.carry = Some(c.close);
            closed.push(c);
        }
        if let Some(price) = self.carry {
            let step = self.interval.duration_ms();
            let mut open = old_open + step;
            while open < new_open {
                closed.push(Candle::empty(
                    symbol.clone(),
                    self.interval,
                    open,
                    price,
                    true,
                ));
                open += step;
            }
        }
        self.open_ms = Some(new_open);
        self.acc = Part::EMPTY;
    }
}

/// All open candles (every interval) of one symbol.
#[derive(Debug, Clone)]
pub struct CandleBook {
    symbol: Symbol,
    /// In `Interval::ALL` order, so index 0 is 1m.
    slots: [Slot; N_INTERVALS],
    /// Trades of the current minute, part of every interval's current bucket.
    seg: Part,
    /// Open time of the current minute; `None` before the first trade or restored candle.
    minute_ms: Option<i64>,
    /// `minute_ms + 1 minute`, cached so the hot path is one comparison; `i64::MIN` when there is
    /// no current minute, so that the first trade always opens one.
    minute_end_ms: i64,
    /// New trades stamped before the current minute, folded into it (see [`Self::apply`]).
    /// Each one is a candle that is not exactly the exchange's; counted so it shows.
    pub late_trades: u64,
    /// Highest trade id the book holds, folded or restored.
    last_id: Option<u64>,
    /// Highest id folded through the segment: every slot holds it, so a replayed trade at or
    /// below it is a duplicate for all of them.
    fast_through: Option<u64>,
}

impl CandleBook {
    pub fn new(symbol: Symbol) -> Self {
        CandleBook {
            symbol,
            slots: Interval::ALL.map(Slot::new),
            seg: Part::EMPTY,
            minute_ms: None,
            minute_end_ms: i64::MIN,
            late_trades: 0,
            last_id: None,
            fast_through: None,
        }
    }

    /// Restore after a restart from the stored latest candle of each interval (any subset; missing
    /// intervals start empty). A trade whose id <= an interval's restored last_trade_id is not
    /// folded into that interval again.
    ///
    /// Candles of another symbol are ignored rather than mixed in. Of several candles of one
    /// interval the latest wins. A closed candle means its bucket was already emitted, so the
    /// interval resumes at the next bucket. An empty candle has no id of its own, but an empty
    /// bucket can only follow every trade stored so far, so it takes the highest restored id: a
    /// replay of those trades then cannot land in it.
    pub fn restore(symbol: Symbol, latest: Vec<Candle>) -> Self {
        let mut book = CandleBook::new(symbol);
        let mut chosen: [Option<Candle>; N_INTERVALS] = Default::default();
        for c in latest {
            if c.symbol != book.symbol {
                continue;
            }
            let i = slot_index(c.interval);
            let newer = match &chosen[i] {
                None => true,
                Some(old) => {
                    (c.open_time_ms, c.last_trade_id, c.closed)
                        > (old.open_time_ms, old.last_trade_id, old.closed)
                }
            };
            if newer {
                chosen[i] = Some(c);
            }
        }
        book.last_id = chosen
            .iter()
            .flatten()
            .filter_map(|c| c.last_trade_id)
            .max();
        for (slot, c) in book.slots.iter_mut().zip(chosen.iter()) {
            let Some(c) = c else { continue };
            let interval = slot.interval;
            // Re-align: a stored open time is trusted for its bucket, not for its exact value.
            let open = interval.open_time(c.open_time_ms);
            slot.seen_through = if c.trade_count > 0 {
                c.last_trade_id
            } else {
                book.last_id
            };
            if c.closed {
                slot.open_ms = Some(interval.open_time(open + interval.duration_ms()));
                slot.acc = Part::EMPTY;
                slot.carry = Some(c.close);
            } else {
                slot.open_ms = Some(open);
                slot.acc = Part::from_candle(c);
                slot.carry = slot.acc.is_empty().then_some(c.close);
            }
        }
        if let Some(m) = book.slots.iter().filter_map(|s| s.open_ms).max() {
            book.set_minute(m);
            // A missing interval must own the current minute too, or the segment it shares would
            // later be flushed into whatever bucket it opens next.
            for slot in book.slots.iter_mut() {
                slot.open_ms.get_or_insert(slot.interval.open_time(m));
            }
        }
        book
    }

    pub fn symbol(&self) -> &Symbol {
        &self.symbol
    }

    /// Fold one trade (trades arrive in id order). Pushes onto `closed` every candle this trade
    /// closed (closed=true), oldest first, including empty candles for intervals that had no
    /// trade. Returns false and changes nothing for a trade whose id was already folded in
    /// (duplicate / replay).
    ///
    /// A trade stamped before the current minute (the exchange does not do this, but a restored
    /// book or a clock-driven `close_elapsed` may be ahead of it) is folded into the current
    /// candles: a closed candle has been published and is never reopened.
    #[inline]
    pub fn apply(&mut self, trade: &Trade, closed: &mut Vec<Candle>) -> bool {
        if self.minute_ms.is_some()
            && trade.time_ms < self.minute_end_ms.saturating_sub(MINUTE_MS)
            && self.last_id.is_none_or(|last| trade.trade_id > last)
        {
            self.late_trades += 1;
        }
        let id = trade.trade_id;
        if self.last_id.is_some_and(|last| id <= last) {
            return self.apply_catch_up(trade, closed);
        }
        if trade.time_ms >= self.minute_end_ms {
            self.advance(trade.time_ms, closed);
        }
        self.seg.fold(trade.price, trade.qty, id);
        self.last_id = Some(id);
        self.fast_through = Some(id);
        true
    }

    /// A trade at or below the highest id held. After a restore whose intervals stopped at
    /// different ids, some intervals still need it; fold it into those directly, the segment
    /// being emptied first so that every `acc` stays "everything before the segment".
    #[cold]
    fn apply_catch_up(&mut self, trade: &Trade, closed: &mut Vec<Candle>) -> bool {
        let id = trade.trade_id;
        let fast = self.fast_through;
        let wants = |s: &Slot| s.seen_through.max(fast).is_none_or(|seen| id > seen);
        if !self.slots.iter().any(wants) {
            return false;
        }
        self.flush_segment();
        if trade.time_ms >= self.minute_end_ms {
            self.advance(trade.time_ms, closed);
        }
        for slot in self.slots.iter_mut() {
            if wants(slot) {
                slot.acc.fold(trade.price, trade.qty, id);
                slot.seen_through = Some(id);
            }
        }
        true
    }

    /// The current (not yet closed) candle of every interval, appended to `out`, 1m first.
    pub fn open_candles(&self, out: &mut Vec<Candle>) {
        out.extend(self.slots.iter().filter_map(|s| self.current_of(s)));
    }

    /// The current candle of one interval.
    pub fn current(&self, interval: Interval) -> Option<Candle> {
        self.current_of(&self.slots[slot_index(interval)])
    }

    fn current_of(&self, slot: &Slot) -> Option<Candle> {
        let open = slot.open_ms?;
        slot.candle(&self.symbol, open, &slot.acc.merge(&self.seg), false)
    }

    /// Close (push onto `closed`) every candle whose close_time < now_ms — used by a timer when no
    /// trade arrives. A later trade stamped before `now_ms` can no longer reach those candles, so
    /// the caller passes exchange time less the feed's usual lateness.
    pub(crate) fn close_elapsed(&mut self, now_ms: i64, closed: &mut Vec<Candle>) {
        if self.minute_ms.is_some() && now_ms >= self.minute_end_ms {
            self.advance(now_ms, closed);
        }
    }

    pub fn last_trade_id(&self) -> Option<u64> {
        self.last_id
    }

    /// The id after which the feed must resume: the lowest id that every interval has folded
    /// in. Equal to [`CandleBook::last_trade_id`] once running; lower after a restore from
    /// intervals stored at different ids (open candles are written less often than ticks and
    /// closed candles, see `writer.open_candle_write_ms`), so that the trades only some
    /// intervals lack are read again and folded into those (`apply_catch_up`). Intervals with
    /// nothing restored do not hold it back: they start at the resume point.
    pub fn resume_after(&self) -> Option<u64> {
        let fast = self.fast_through;
        self.slots
            .iter()
            .filter_map(|s| s.seen_through.max(fast))
            .min()
            .or(self.last_id)
    }

    fn flush_segment(&mut self) {
        if self.seg.is_empty() {
            return;
        }
        for slot in self.slots.iter_mut() {
            slot.acc = slot.acc.merge(&self.seg).normalised();
        }
        self.seg = Part::EMPTY;
    }

    /// Enters the minute holding `time_ms` if it is later than the current one: the segment joins
    /// every interval's `acc`, and every interval whose bucket changed closes.
    fn advance(&mut self, time_ms: i64, closed: &mut Vec<Candle>) {
        let minute = Interval::M1.open_time(time_ms);
        if self.minute_ms.is_some_and(|m| minute <= m) {
            return;
        }
        self.flush_segment();
        let start = closed.len();
        for slot in self.slots.iter_mut() {
            slot.roll(&self.symbol, minute, closed);
        }
        // Only a jump over empty buckets yields candles with different close times; a stable sort
        // keeps 1m before 5m when they end together.
        let new = &mut closed[start..];
        if !new.is_sorted_by_key(|c| c.close_time_ms) {
            new.sort_by_key(|c| c.close_time_ms);
        }
        self.set_minute(minute);
    }

    fn set_minute(&mut self, minute_ms: i64) {
        self.minute_ms = Some(minute_ms);
        self.minute_end_ms = minute_ms.saturating_add(MINUTE_MS);
    }
}

fn slot_index(interval: Interval) -> usize {
    match interval {
        Interval::M1 => 0,
        Interval::M5 => 1,
        Interval::M15 => 2,
        Interval::M30 => 3,
        Interval::H1 => 4,
        Interval::H4 => 5,
        Interval::D1 => 6,
        Interval::W1 => 7,
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_trade_stamped_before_the_open_minute_is_counted_as_late() {
        let mut book = CandleBook::new(Symbol::from("BTCUSDT"));
        let mut closed = Vec::new();
        let t = |id: u64, time_ms: i64| Trade {
            symbol: Symbol::from("BTCUSDT"),
            trade_id: id,
            price: "100".parse().unwrap(),
            qty: "1".parse().unwrap(),
            time_ms,
            is_buyer_maker: false,
        };
        assert!(book.apply(&t(1, 60_000), &mut closed));
        assert!(
            book.apply(&t(2, 125_000), &mut closed),
            "opens the 2nd minute after"
        );
        assert_eq!(book.late_trades, 0);
        assert!(
            book.apply(&t(3, 119_999), &mut closed),
            "folded, not dropped"
        );
        assert_eq!(book.late_trades, 1);
        assert!(
            !book.apply(&t(2, 125_000), &mut closed),
            "a duplicate is not late"
        );
        assert_eq!(book.late_trades, 1);
    }

    use super::*;
    use std::str::FromStr;

    /// Monday 2024-08-05 00:00 UTC.
    const MONDAY: i64 = 1_722_816_000_000;
    const MIN: i64 = 60_000;

    fn sym() -> Symbol {
        Symbol::from("BTCUSDT")
    }

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn tr(id: u64, time_ms: i64, price: &str, qty: &str) -> Trade {
        Trade {
            symbol: sym(),
            trade_id: id,
            price: d(price),
            qty: d(qty),
            time_ms,
            is_buyer_maker: false,
        }
    }

    fn open(book: &CandleBook) -> Vec<Candle> {
        let mut v = Vec::new();
        book.open_candles(&mut v);
        v
    }

    /// Folds `trades`, returning every closed candle in emission order.
    fn run(book: &mut CandleBook, trades: &[Trade]) -> Vec<Candle> {
        let mut closed = Vec::new();
        for t in trades {
            book.apply(t, &mut closed);
        }
        closed
    }

    /// A deterministic stream across minute, hour, day and week boundaries, with idle minutes,
    /// idle hours and prices of differing scales.
    fn synthetic() -> Vec<Trade> {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut time = MONDAY - 2 * 3_600_000 - 7 * MIN + 123;
        let mut out = Vec::new();
        for id in 1_000..4_000u64 {
            let r = next();
            time += match r % 100 {
                0 => 3 * 3_600_000 + (r % 7_000) as i64, // idle for hours
                1..=3 => 4 * MIN + 1,                    // a few idle minutes
                _ => (r % 9_000) as i64,
            };
            let price = format!("{}.{:02}", 60_000 + (next() % 500), next() % 100);
            let qty = format!("0.{:08}", 1 + next() % 99_999_999);
            out.push(tr(id, time, &price, &qty));
        }
        out
    }

    #[test]
    fn trade_at_open_and_at_close_time_stay_in_their_minute() {
        let mut book = CandleBook::new(sym());
        let mut closed = Vec::new();
        assert!(book.apply(&tr(1, MONDAY, "10", "1"), &mut closed));
        assert!(book.apply(&tr(2, MONDAY + MIN - 1, "12", "1"), &mut closed));
        assert!(closed.is_empty());
        let m1 = book.current(Interval::M1).unwrap();
        assert_eq!(
            (m1.open_time_ms, m1.close_time_ms),
            (MONDAY, MONDAY + MIN - 1)
        );
        assert_eq!((m1.trade_count, m1.close, m1.high), (2, d("12"), d("12")));

        assert!(book.apply(&tr(3, MONDAY + MIN, "11", "1"), &mut closed));
        assert_eq!(closed.len(), 1, "only 1m ends at the first minute");
        let c = &closed[0];
        assert_eq!(
            (c.interval, c.open_time_ms, c.closed),
            (Interval::M1, MONDAY, true)
        );
        assert_eq!((c.first_trade_id, c.last_trade_id), (Some(1), Some(2)));
        assert_eq!(
            (c.open, c.high, c.low, c.close),
            (d("10"), d("12"), d("10"), d("12"))
        );
        assert_eq!(c.quote_volume, d("22"));
        let m5 = book.current(Interval::M5).unwrap();
        assert_eq!(
            (m5.trade_count, m5.open, m5.close, m5.low),
            (3, d("10"), d("11"), d("10"))
        );
        assert!(!m5.closed);
    }

    #[test]
    fn a_jump_over_idle_minutes_emits_empty_candles_at_the_previous_close() {
        let mut book = CandleBook::new(sym());
        let mut closed = Vec::new();
        book.apply(&tr(1, MONDAY + 3 * MIN + 5, "10", "1"), &mut closed);
        book.apply(&tr(2, MONDAY + 3 * MIN + 6, "9.5", "2"), &mut closed);
        // 00:03 traded; 00:04..00:06 idle; the next trade is at 00:07.
        book.apply(&tr(3, MONDAY + 7 * MIN, "11", "1"), &mut closed);
        let got: Vec<_> = closed
            .iter()
            .map(|c| (c.interval, (c.open_time_ms - MONDAY) / MIN, c.trade_count))
            .collect();
        assert_eq!(
            got,
            vec![
                (Interval::M1, 3, 2),
                (Interval::M1, 4, 0),
                (Interval::M5, 0, 2),
                (Interval::M1, 5, 0),
                (Interval::M1, 6, 0),
            ],
            "ordered by close time, 1m before 5m when they end together"
        );
        for c in closed.iter().filter(|c| c.is_empty()) {
            assert_eq!(
                (c.open, c.high, c.low, c.close),
                (d("9.5"), d("9.5"), d("9.5"), d("9.5"))
            );
            assert_eq!((c.volume, c.quote_volume), (Decimal::ZERO, Decimal::ZERO));
            assert_eq!((c.first_trade_id, c.last_trade_id), (None, None));
            assert!(c.closed);
            assert_eq!(c.close_time_ms, c.open_time_ms + MIN - 1);
        }
    }

    #[test]
    fn the_week_closes_at_monday_midnight_utc() {
        let mut book = CandleBook::new(sym());
        let mut closed = Vec::new();
        book.apply(&tr(1, MONDAY - 1, "10", "1"), &mut closed);
        assert_eq!(
            book.current(Interval::W1).unwrap().open_time_ms,
            MONDAY - 7 * 86_400_000
        );
        book.apply(&tr(2, MONDAY, "20", "1"), &mut closed);
        let intervals: Vec<_> = closed.iter().map(|c| c.interval).collect();
        assert_eq!(intervals, Interval::ALL.to_vec(), "everything ends at once");
        assert!(closed.iter().all(|c| c.close_time_ms == MONDAY - 1));
        let w = book.current(Interval::W1).unwrap();
        assert_eq!(
            (w.open_time_ms, w.close_time_ms),
            (MONDAY, MONDAY + 7 * 86_400_000 - 1)
        );
        assert_eq!((w.open, w.trade_count), (d("20"), 1));
    }

    #[test]
    fn duplicates_and_replays_change_nothing() {
        let trades = synthetic();
        let mut book = CandleBook::new(sym());
        let mut closed = run(&mut book, &trades[..500]);
        let before = (open(&book), closed.len(), book.last_trade_id());
        for t in trades[490..500].iter().chain(&trades[..3]) {
            assert!(
                !book.apply(t, &mut closed),
                "id {} is a duplicate",
                t.trade_id
            );
        }
        assert_eq!((open(&book), closed.len(), book.last_trade_id()), before);
    }

    /// The core restart property: storing the latest candle of each interval at any point and
    /// restoring from it loses and double-counts nothing, in any interval, in any field.
    #[test]
    fn restore_at_any_point_equals_an_uninterrupted_run() {
        let trades = synthetic();
        let mut whole = CandleBook::new(sym());
        let all_closed = run(&mut whole, &trades);
        let final_open = open(&whole);
        for split in (1..trades.len()).step_by(7) {
            let mut a = CandleBook::new(sym());
            let mut closed = run(&mut a, &trades[..split]);
            let mut b = CandleBook::restore(sym(), open(&a));
            assert_eq!(b.last_trade_id(), Some(trades[split - 1].trade_id));
            assert_eq!(open(&b), open(&a), "restored state at {split}");
            // The feed resumes with some overlap, as a reconnect does.
            closed.extend(run(&mut b, &trades[split.saturating_sub(5)..]));
            assert_eq!(
                closed, all_closed,
                "closed candles after a restart at {split}"
            );
            assert_eq!(
                open(&b),
                final_open,
                "open candles after a restart at {split}"
            );
        }
    }

    #[test]
    fn restore_from_intervals_stored_at_different_ids_catches_each_up() {
        let trades = synthetic();
        let mut whole = CandleBook::new(sym());
        let all_closed = run(&mut whole, &trades);
        for split in (50..trades.len()).step_by(97) {
            let early = split - 40;
            let mut a = CandleBook::new(sym());
            let mut closed = run(&mut a, &trades[..early]);
            let at_early = open(&a);
            closed.extend(run(&mut a, &trades[early..split]));
            // 1m and 1h saved at `split`, the rest at `early` (only where still the same bucket,
            // which is what a store that writes candles per batch can leave).
            let mut stored = Vec::new();
            for (late, old) in open(&a).into_iter().zip(at_early) {
                let take_late = matches!(late.interval, Interval::M1 | Interval::H1)
                    || late.open_time_ms != old.open_time_ms;
                stored.push(if take_late { late } else { old });
            }
            let mut b = CandleBook::restore(sym(), stored);
            let resume = b.resume_after().expect("restored ids");
            assert_eq!(resume, trades[early - 1].trade_id, "split {split}");
            let from = trades.iter().position(|t| t.trade_id > resume).unwrap();
            closed.extend(run(&mut b, &trades[from..]));
            assert_eq!(b.resume_after(), b.last_trade_id(), "caught up at {split}");
            assert_eq!(closed, all_closed, "split {split}");
            assert_eq!(open(&b), open(&whole), "split {split}");
        }
    }

    #[test]
    fn a_missing_interval_starts_empty_and_the_others_continue() {
        let trades = synthetic();
        for split in [1_000, 1_001, 2_345] {
            let mut a = CandleBook::new(sym());
            run(&mut a, &trades[..split]);
            // Only 1m and 1h were stored; the next trades start inside the same minute.
            let stored = [Interval::M1, Interval::H1].map(|i| a.current(i).unwrap());
            let mut b = CandleBook::restore(sym(), stored.to_vec());
            let mut fresh = CandleBook::new(sym());
            let rest = &trades[split..split + 300];
            let a_closed = run(&mut a, rest);
            let b_closed = run(&mut b, rest);
            let fresh_closed = run(&mut fresh, rest);
            for i in Interval::ALL {
                let (want_cur, want_closed) = match i {
                    Interval::M1 | Interval::H1 => (a.current(i), &a_closed),
                    _ => (fresh.current(i), &fresh_closed),
                };
                let of = |v: &[Candle]| {
                    v.iter()
                        .filter(|c| c.interval == i)
                        .cloned()
                        .collect::<Vec<_>>()
                };
                assert_eq!(b.current(i), want_cur, "{i} at {split}");
                assert_eq!(of(&b_closed), of(want_closed), "{i} at {split}");
            }
        }
    }

    #[test]
    fn a_restored_closed_candle_is_not_emitted_again() {
        let mut book = CandleBook::new(sym());
        let mut closed = run(
            &mut book,
            &[tr(1, MONDAY + 5, "10", "1"), tr(2, MONDAY + MIN, "11", "1")],
        );
        let stored = closed.pop().unwrap();
        assert_eq!((stored.interval, stored.closed), (Interval::M1, true));
        let mut b = CandleBook::restore(sym(), vec![stored]);
        let cur = b.current(Interval::M1).unwrap();
        assert_eq!(
            (cur.open_time_ms, cur.trade_count, cur.close),
            (MONDAY + MIN, 0, d("10"))
        );
        let out = run(
            &mut b,
            &[
                tr(2, MONDAY + MIN, "11", "1"),
                tr(3, MONDAY + 2 * MIN, "12", "1"),
            ],
        );
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].open_time_ms, out[0].first_trade_id),
            (MONDAY + MIN, Some(2))
        );
    }

    #[test]
    fn a_restored_empty_candle_does_not_take_replayed_trades() {
        let mut book = CandleBook::new(sym());
        let trades = [tr(1, MONDAY + 5, "10", "1"), tr(2, MONDAY + 6, "11", "1")];
        run(&mut book, &trades);
        let mut closed = Vec::new();
        book.close_elapsed(MONDAY + 2 * MIN + 1, &mut closed);
        let mut latest = open(&book);
        assert_eq!(latest[0].trade_count, 0, "1m is idle");
        latest.truncate(2); // 1m (empty) and 5m (with trades 1 and 2)
        let mut b = CandleBook::restore(sym(), latest);
        assert_eq!(run(&mut b, &trades).len(), 0);
        assert!(!b.apply(&trades[1], &mut closed));
        assert_eq!(b.current(Interval::M1).unwrap().trade_count, 0);
        assert_eq!(b.current(Interval::M5).unwrap().trade_count, 2);
    }

    #[test]
    fn close_elapsed_closes_only_what_has_ended() {
        let mut book = CandleBook::new(sym());
        let mut closed = Vec::new();
        book.close_elapsed(MONDAY + 10 * MIN, &mut closed);
        assert!(
            closed.is_empty() && open(&book).is_empty(),
            "nothing to close yet"
        );
        book.apply(&tr(1, MONDAY + 10, "10", "1"), &mut closed);
        book.close_elapsed(MONDAY + MIN - 1, &mut closed);
        assert!(closed.is_empty(), "close_time == now has not passed");
        book.close_elapsed(MONDAY + MIN, &mut closed);
        assert_eq!(closed.len(), 1);
        assert_eq!(
            (closed[0].interval, closed[0].trade_count),
            (Interval::M1, 1)
        );
        book.close_elapsed(MONDAY + 5 * MIN + 30_000, &mut closed);
        let m1: Vec<_> = closed
            .iter()
            .filter(|c| c.interval == Interval::M1)
            .collect();
        assert_eq!(m1.len(), 5, "00:00 with the trade, 00:01..00:04 empty");
        assert_eq!(
            closed.iter().filter(|c| c.interval == Interval::M5).count(),
            1
        );
        let cur = book.current(Interval::M1).unwrap();
        assert_eq!(
            (cur.open_time_ms, cur.trade_count, cur.closed),
            (MONDAY + 5 * MIN, 0, false)
        );
        // A trade inside the current minute still lands in it.
        closed.clear();
        book.apply(&tr(2, MONDAY + 5 * MIN + 40_000, "12", "1"), &mut closed);
        assert!(closed.is_empty());
        let cur = book.current(Interval::M1).unwrap();
        assert_eq!(
            (cur.open, cur.trade_count, cur.first_trade_id),
            (d("12"), 1, Some(2))
        );
        assert_eq!(book.current(Interval::M5).unwrap().trade_count, 1);
        assert_eq!(book.current(Interval::H1).unwrap().trade_count, 2);
    }

    #[test]
    fn a_trade_stamped_before_the_current_minute_joins_the_open_candle() {
        let mut book = CandleBook::new(sym());
        let mut closed = Vec::new();
        book.apply(&tr(1, MONDAY + MIN, "10", "1"), &mut closed);
        book.apply(&tr(2, MONDAY + MIN - 1, "9", "1"), &mut closed);
        assert!(closed.is_empty());
        let cur = book.current(Interval::M1).unwrap();
        assert_eq!(
            (cur.open_time_ms, cur.trade_count, cur.low),
            (MONDAY + MIN, 2, d("9"))
        );
    }

    /// 10,000 trades of 8-decimal strings: the exact sum needs 30 significant digits at the
    /// scale the products come in (16), more than `Decimal` holds, so it only stays exact if the
    /// trailing zeros give way. Checked within one minute (the segment) and across minutes.
    #[test]
    fn quote_volume_is_exact_even_over_huge_sums() {
        // Python: Decimal('123456.78000000') * Decimal('9876.54321000') * 10000
        let expected = d("12193262222374.638");
        for spacing_ms in [1, 1_000] {
            let mut book = CandleBook::new(sym());
            let mut closed = Vec::new();
            for id in 0..10_000u64 {
                let t = tr(
                    id,
                    MONDAY + id as i64 * spacing_ms,
                    "123456.78000000",
                    "9876.54321000",
                );
                book.apply(&t, &mut closed);
            }
            let w = book.current(Interval::W1).unwrap();
            assert_eq!(w.quote_volume, expected, "spacing {spacing_ms} ms");
            assert_eq!(w.quote_volume.to_string(), "12193262222374.638");
            assert_eq!(w.volume.to_string(), "98765432.1");
        }
    }
}
