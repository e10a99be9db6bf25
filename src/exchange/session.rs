//! The client side of one venue, without the socket: frames in, the trades to pass on out.
//! It is what `tradepipe trades` runs over a recording, and what a venue's feed runs over its
//! connections: the venue's parser, then the dedup shared by all of the venue's connections
//! (snapshots, REST pages and parallel connections overlap), with every outcome counted.

use super::dedup::{ConnId, TradeDedup};
use super::venue::{Frame, Market, Venue, VenueTrade, VenueWire};
use super::wire::WireError;

/// Ids remembered per symbol (and id-less trades in all) for dedup: many times a snapshot (100
/// trades) or a REST page (1,000), at a few dozen bytes each.
pub const DEDUP_WINDOW: usize = 100_000;

/// What a session has seen, for the operator's summary and metrics.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SessionStats {
    pub frames: u64,
    pub trade_frames: u64,
    pub heartbeats: u64,
    pub control: u64,
    pub other: u64,
    pub reconnects: u64,
    /// Frames that failed to decode (counted, skipped; the caller logs the error).
    pub malformed: u64,
    pub trades_passed: u64,
    pub duplicates: u64,
}

pub struct VenueSession {
    wire: &'static dyn VenueWire,
    dedup: TradeDedup,
    stats: SessionStats,
    parsed: Vec<VenueTrade>,
}

impl VenueSession {
    pub fn new(venue: Venue, dedup_window: usize) -> Self {
        VenueSession {
            wire: venue.wire(),
            dedup: TradeDedup::new(dedup_window),
            stats: SessionStats::default(),
            parsed: Vec::new(),
        }
    }

    pub fn wire(&self) -> &'static dyn VenueWire {
        self.wire
    }

    pub fn stats(&self) -> &SessionStats {
        &self.stats
    }

    /// Decodes one frame received on `conn` (connected to `market`'s endpoint) and appends the
    /// trades not passed on before to `out`. A frame that fails to decode adds nothing.
    pub fn on_frame(
        &mut self,
        conn: ConnId,
        market: Market,
        frame: &[u8],
        out: &mut Vec<VenueTrade>,
    ) -> Result<Frame, WireError> {
        self.stats.frames += 1;
        self.parsed.clear();
        let kind = match self.wire.parse_frame(market, frame, &mut self.parsed) {
            Ok(kind) => kind,
            Err(e) => {
                self.stats.malformed += 1;
                return Err(e);
            }
        };
        match kind {
            Frame::Trades => self.stats.trade_frames += 1,
            Frame::Heartbeat => self.stats.heartbeats += 1,
            Frame::Control => self.stats.control += 1,
            Frame::Other => self.stats.other += 1,
            Frame::Reconnect => self.stats.reconnects += 1,
        }
        self.pass_new(conn, out);
        Ok(kind)
    }

    /// A REST trade page (gap repair), deduplicated against everything passed on.
    pub fn on_rest_page(
        &mut self,
        conn: ConnId,
        market: Market,
        symbol: Option<&str>,
        body: &[u8],
        out: &mut Vec<VenueTrade>,
    ) -> Result<(), WireError> {
        self.parsed.clear();
        if let Err(e) = self
            .wire
            .parse_rest_trades(market, symbol, body, &mut self.parsed)
        {
            self.stats.malformed += 1;
            self.parsed.clear();
            return Err(e);
        }
        self.pass_new(conn, out);
        Ok(())
    }

    fn pass_new(&mut self, conn: ConnId, out: &mut Vec<VenueTrade>) {
        for t in self.parsed.drain(..) {
            if self.dedup.admit(conn, &t) {
                self.stats.trades_passed += 1;
                out.push(t);
            } else {
                self.stats.duplicates += 1;
            }
        }
    }
}
