//! Drops trades the feed has already passed on: a snapshot overlapping live trades (Coinbase's
//! 100-trade snapshot, Kraken's 50, a REST page after a reconnect) and the same trade arriving on
//! parallel connections.
//!
//! A trade with an id is a duplicate when its (market, symbol, id) was passed on. A trade
//! without one (Kraken WS v1) can only be compared whole, and two real trades can be identical
//! (same µs, price, volume and side), so identical trades are counted per connection: the n-th
//! copy on a connection is passed on only if no connection has shown n copies yet. One connection
//! never loses a trade to this, and parallel copies of it count once.
//!
//! Memory is bounded: each symbol remembers its last `capacity` ids, and whole trades the last
//! `capacity` distinct ones, oldest forgotten first. A duplicate older than that window would
//! pass; windows are far larger than any snapshot or REST page.

use super::venue::{Market, Side, TradeId, VenueTrade};
use crate::domain::Symbol;
use rust_decimal::Decimal;
use std::collections::{HashMap, HashSet, VecDeque};

/// Which connection a frame came from, as the caller numbers them.
pub type ConnId = u32;

#[derive(Default)]
struct RecentIds {
    seen: HashSet<TradeId>,
    order: VecDeque<TradeId>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct WholeTrade {
    market: Market,
    symbol: Symbol,
    time_us: i64,
    price: Decimal,
    qty: Decimal,
    side: Side,
}

#[derive(Default)]
struct Copies {
    /// How many of these identical trades were passed on.
    passed: u32,
    /// How many each connection has shown.
    per_conn: Vec<(ConnId, u32)>,
}

pub struct TradeDedup {
    capacity: usize,
    ids: HashMap<(Market, Symbol), RecentIds>,
    whole: HashMap<WholeTrade, Copies>,
    whole_order: VecDeque<WholeTrade>,
}

impl TradeDedup {
    /// `capacity`: ids remembered per symbol, and id-less trades remembered in all.
    pub fn new(capacity: usize) -> Self {
        TradeDedup {
            capacity: capacity.max(1),
            ids: HashMap::new(),
            whole: HashMap::new(),
            whole_order: VecDeque::new(),
        }
    }

    /// True if `t` (received on `conn`) is new and must be passed on; it is then remembered.
    pub fn admit(&mut self, conn: ConnId, t: &VenueTrade) -> bool {
        match &t.trade_id {
            Some(id) => self.admit_id(t.market, &t.symbol, id),
            None => self.admit_whole(conn, t),
        }
    }

    fn admit_id(&mut self, market: Market, symbol: &Symbol, id: &TradeId) -> bool {
        let recent = self.ids.entry((market, symbol.clone())).or_default();
        if recent.seen.contains(id) {
            return false;
        }
        if recent.order.len() >= self.capacity
            && let Some(old) = recent.order.pop_front()
        {
            recent.seen.remove(&old);
        }
        recent.seen.insert(id.clone());
        recent.order.push_back(id.clone());
        true
    }

    fn admit_whole(&mut self, conn: ConnId, t: &VenueTrade) -> bool {
        let key = WholeTrade {
            market: t.market,
            symbol: t.symbol.clone(),
            time_us: t.time_us,
            price: t.price,
            qty: t.qty,
            side: t.taker_side,
        };
        if !self.whole.contains_key(&key) {
            if self.whole_order.len() >= self.capacity
                && let Some(old) = self.whole_order.pop_front()
            {
                self.whole.remove(&old);
            }
            self.whole_order.push_back(key.clone());
        }
        let copies = self.whole.entry(key).or_default();
        let shown = match copies.per_conn.iter_mut().find(|(c, _)| *c == conn) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                copies.per_conn.push((conn, 1));
                1
            }
        };
        if shown > copies.passed {
            copies.passed = shown;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::venue::{Venue, pair_of};
    use std::sync::Arc;

    fn t(id: Option<u64>, time_us: i64) -> VenueTrade {
        VenueTrade {
            venue: Venue::Kraken,
            market: Market::Spot,
            symbol: Symbol::from("XMR/USD"),
            pair: pair_of("XMR", "USD"),
            trade_id: id.map(TradeId::Number),
            price: Decimal::new(35404, 2),
            qty: Decimal::new(28245396, 8),
            time_us,
            taker_side: Side::Sell,
            historical: false,
        }
    }

    #[test]
    fn ids_are_passed_once_per_market_and_symbol() {
        let mut d = TradeDedup::new(100);
        assert!(d.admit(0, &t(Some(1), 5)));
        assert!(!d.admit(0, &t(Some(1), 5)), "a snapshot repeating it");
        assert!(!d.admit(1, &t(Some(1), 5)), "a parallel connection");
        assert!(d.admit(0, &t(Some(2), 5)));
        let mut linear = t(Some(1), 5);
        linear.market = Market::Linear;
        assert!(
            d.admit(0, &linear),
            "same symbol and id on another market is another trade"
        );
        let mut uuid = t(None, 5);
        uuid.trade_id = Some(TradeId::Text(Arc::from("a9188a0a")));
        assert!(d.admit(0, &uuid));
        assert!(!d.admit(1, &uuid));
    }

    #[test]
    fn identical_idless_trades_count_per_connection() {
        let mut d = TradeDedup::new(100);
        // Two real, identical trades on connection 0: both pass.
        assert!(d.admit(0, &t(None, 7)));
        assert!(d.admit(0, &t(None, 7)));
        // Connection 1 shows the same two: both duplicates.
        assert!(!d.admit(1, &t(None, 7)));
        assert!(!d.admit(1, &t(None, 7)));
        // A third copy on connection 1 is a trade connection 0 missed.
        assert!(d.admit(1, &t(None, 7)));
        assert!(!d.admit(0, &t(None, 7)));
        assert!(d.admit(0, &t(None, 8)));
    }

    #[test]
    fn memory_is_bounded_oldest_forgotten_first() {
        let mut d = TradeDedup::new(3);
        for id in 1..=4 {
            assert!(d.admit(0, &t(Some(id), 1)));
        }
        assert!(d.admit(0, &t(Some(1), 1)), "1 fell out of the window");
        assert!(!d.admit(0, &t(Some(4), 1)));
        for time in 1..=4 {
            assert!(d.admit(0, &t(None, time)));
        }
        assert_eq!(d.whole.len(), 3);
        assert!(!d.admit(1, &t(None, 4)));
    }
}
