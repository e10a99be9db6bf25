//! ExchangeFeedActor: one Binance combined-stream connection (up to 1024 streams). It answers
//! pings, reconnects with jittered exponential backoff, reconnects ahead of Binance's 24-hour
//! limit, and guarantees the candle builder sees every trade id exactly once and in order: ids
//! are consecutive per symbol, so any hole (in the stream, across a reconnect or a restart) is
//! filled from REST `historicalTrades` before later trades are passed on.

use super::candle_builder::{CandleBuilderActor, LastTradeIds, SetInSync, TradeBatch};
use super::{Mailbox, count_restart};
use crate::config::BinanceConfig;
use crate::domain::Trade;
use crate::exchange::binance::{StreamEvent, combined_stream_url, parse_stream_message};
use crate::exchange::rest::{BinanceRest, RestError};
use crate::telemetry::Health;
use actix::prelude::*;
use futures_util::{FutureExt, SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};
use tokio_util::sync::CancellationToken;

const ACTOR: &str = "exchange_feed";

/// Largest WebSocket message (and frame) the feed accepts. A Binance trade message is about 250
/// bytes; without a bound a broken or hostile peer could make the daemon buffer tungstenite's
/// default of 64 MiB per message. A larger frame is rejected before its payload is read; the
/// connection cannot continue after it, so the feed reconnects and backfills.
pub(crate) const MAX_MESSAGE_BYTES: usize = 1 << 20;

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES))
}

/// Stop reading from the exchange (shutdown). Answered once the last batch read was handed on.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct StopIntake;

pub(crate) struct ExchangeFeedActor {
    conn: usize,
    symbols: Vec<String>,
    cfg: Arc<BinanceConfig>,
    builder: Mailbox<CandleBuilderActor>,
    health: Arc<Health>,
    stop: CancellationToken,
    stopped: CancellationToken,
}

impl ExchangeFeedActor {
    pub fn new(
        conn: usize,
        symbols: Vec<String>,
        cfg: Arc<BinanceConfig>,
        builder: Mailbox<CandleBuilderActor>,
        health: Arc<Health>,
    ) -> Self {
        ExchangeFeedActor {
            conn,
            symbols,
            cfg,
            builder,
            health,
            stop: CancellationToken::new(),
            stopped: CancellationToken::new(),
        }
    }
}

impl Actor for ExchangeFeedActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.stop.is_cancelled() {
            return;
        }
        let session = FeedSession {
            conn: self.conn,
            symbols: self.symbols.clone(),
            cfg: self.cfg.clone(),
            builder: self.builder.clone(),
            health: self.health.clone(),
            stop: self.stop.clone(),
            last_ids: HashMap::new(),
        };
        let stopped = self.stopped.clone();
        // A panic inside the session must not take the arbiter down: it stops this actor and the
        // supervisor starts it again (counted), resuming from the builder's last trade ids.
        let fut = std::panic::AssertUnwindSafe(session.run()).catch_unwind();
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| match res {
            Ok(()) => stopped.cancel(),
            Err(_) => {
                tracing::error!(conn = act.conn, "feed session panicked; restarting");
                ctx.stop();
            }
        }));
    }
}

impl Supervised for ExchangeFeedActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        count_restart(ACTOR);
    }
}

impl Handler<StopIntake> for ExchangeFeedActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _msg: StopIntake, _ctx: &mut Context<Self>) -> Self::Result {
        self.stop.cancel();
        let stopped = self.stopped.clone();
        Box::pin(async move { stopped.cancelled().await })
    }
}

/// Why a connection ended; every reason but `Stop` leads to a reconnect.
#[derive(Debug)]
enum Ended {
    Stop,
    Reconnect(&'static str),
}

struct FeedSession {
    conn: usize,
    symbols: Vec<String>,
    cfg: Arc<BinanceConfig>,
    builder: Mailbox<CandleBuilderActor>,
    health: Arc<Health>,
    stop: CancellationToken,
    /// Last id handed to the builder, per symbol (upper case).
    last_ids: HashMap<String, u64>,
}

impl FeedSession {
    async fn run(mut self) {
        let rest = match binance_rest(&self.cfg) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot build the Binance REST client; the feed cannot backfill gaps");
                return;
            }
        };
        let streams: Vec<String> = self
            .symbols
            .iter()
            .map(|s| format!("{}@trade", s.to_lowercase()))
            .collect();
        let url = combined_stream_url(&self.cfg.ws_url, &streams);
        let policy = self.cfg.backoff();
        let mut failures: u32 = 0;
        let conn_label = self.conn.to_string();
        loop {
            if self.stop.is_cancelled() {
                break;
            }
            match self.builder.ask(LastTradeIds).await {
                Ok(ids) => self.last_ids = ids,
                Err(e) => {
                    tracing::error!(error = %e, "candle builder gone; feed stops");
                    break;
                }
            }
            tracing::info!(conn = self.conn, url = %crate::redact::redact_url(url.as_str()), streams = streams.len(), "connecting to the exchange");
            let ended = match tokio::time::timeout(
                Duration::from_secs(10),
                tokio_tungstenite::connect_async_with_config(
                    url.as_str(),
                    Some(ws_config()),
                    false,
                ),
            )
            .await
            {
                Ok(Ok((ws, _resp))) => {
                    failures = 0;
                    metrics::gauge!("tradepipe_feed_connected", "conn" => conn_label.clone())
                        .set(1.0);
                    Health::set(&self.health.feed, true);
                    let ended = self.connection(ws, &rest).await;
                    metrics::gauge!("tradepipe_feed_connected", "conn" => conn_label.clone())
                        .set(0.0);
                    Health::set(&self.health.feed, false);
                    let _ = self.builder.ask(SetInSync(false)).await;
                    ended
                }
                Ok(Err(e)) => {
                    tracing::warn!(conn = self.conn, error = %e, "connecting failed");
                    Ended::Reconnect("connect_failed")
                }
                Err(_) => Ended::Reconnect("connect_timeout"),
            };
            match ended {
                Ended::Stop => break,
                Ended::Reconnect(reason) => {
                    metrics::counter!("tradepipe_feed_reconnects_total", "reason" => reason)
                        .increment(1);
                    // Full jitter: many daemons reconnecting after an exchange outage spread out.
                    let wait = if reason == "scheduled" || reason == "server_shutdown" {
                        Duration::ZERO
                    } else {
                        failures = failures.saturating_add(1);
                        policy.delay(failures)
                    };
                    tracing::info!(
                        conn = self.conn,
                        reason,
                        wait_ms = wait.as_millis() as u64,
                        "reconnecting"
                    );
                    tokio::select! {
                        _ = self.stop.cancelled() => break,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
        tracing::info!(conn = self.conn, "feed intake stopped");
    }

    async fn connection<S>(
        &mut self,
        ws: tokio_tungstenite::WebSocketStream<S>,
        rest: &BinanceRest,
    ) -> Ended
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let (mut write, mut read) = ws.split();
        // Trades may have happened while we were away even for symbols that stay quiet now:
        // catch every symbol up before declaring the feed in sync.
        let symbols = self.symbols.clone();
        for sym in &symbols {
            if let Some(&last) = self.last_ids.get(sym)
                && let Err(ended) = self.backfill(rest, sym, last + 1, None).await
            {
                return ended;
            }
        }
        if self.builder.ask(SetInSync(true)).await.is_err() {
            return Ended::Stop;
        }
        let deadline =
            tokio::time::Instant::now() + Duration::from_secs(self.cfg.reconnect_after_secs);
        let stall = Duration::from_secs(self.cfg.stall_timeout_secs);
        let mut batch: Vec<Trade> = Vec::with_capacity(self.cfg.max_batch_trades);
        loop {
            let first = tokio::select! {
                _ = self.stop.cancelled() => {
                    let _ = write.send(WsMessage::Close(None)).await;
                    return Ended::Stop;
                }
                _ = tokio::time::sleep_until(deadline) => return Ended::Reconnect("scheduled"),
                m = tokio::time::timeout(stall, read.next()) => m,
            };
            let received_at = Instant::now();
            let mut next = match first {
                Err(_) => return Ended::Reconnect("stalled"),
                Ok(None) => return Ended::Reconnect("closed"),
                Ok(Some(Err(e))) => return self.read_failed(&e),
                Ok(Some(Ok(m))) => Some(m),
            };
            let mut ending = None;
            let mut drained = false;
            // Take everything the socket already holds, up to the batch bound: batches grow
            // with the rate, and cost no latency when the rate is low.
            while let Some(m) = next.take() {
                match m {
                    WsMessage::Text(t) => {
                        if let Err(ended) = self
                            .on_payload(t.as_bytes(), &mut batch, rest, received_at)
                            .await
                        {
                            ending = Some(ended);
                            break;
                        }
                    }
                    WsMessage::Binary(b) => {
                        if let Err(ended) = self.on_payload(&b, &mut batch, rest, received_at).await
                        {
                            ending = Some(ended);
                            break;
                        }
                    }
                    WsMessage::Ping(p) => {
                        if write.send(WsMessage::Pong(p)).await.is_err() {
                            ending = Some(Ended::Reconnect("error"));
                            break;
                        }
                    }
                    WsMessage::Close(frame) => {
                        tracing::info!(conn = self.conn, ?frame, "exchange closed the connection");
                        ending = Some(Ended::Reconnect("closed"));
                        break;
                    }
                    WsMessage::Pong(_) | WsMessage::Frame(_) => {}
                }
                if batch.len() >= self.cfg.max_batch_trades {
                    break;
                }
                next = match read.next().now_or_never() {
                    Some(Some(Ok(m))) => Some(m),
                    Some(Some(Err(e))) => {
                        ending = Some(self.read_failed(&e));
                        None
                    }
                    Some(None) => {
                        ending = Some(Ended::Reconnect("closed"));
                        None
                    }
                    None => {
                        drained = true;
                        None
                    }
                };
            }
            if let Err(ended) = self.hand_on(&mut batch, received_at, drained).await {
                return ended;
            }
            if let Some(ended) = ending {
                return ended;
            }
            // The candle builder runs on this thread. Frames already buffered by the WebSocket
            // reader are read without touching the socket, so without this the loop would not
            // yield while the exchange sends faster than the builder folds: batches piled up in
            // the builder's mailbox and waited up to 0.3 s for their PUBLISH (issue 11).
            tokio::task::yield_now().await;
        }
    }

    /// A read error ends the connection. Frames the peer should never have sent (over
    /// [`MAX_MESSAGE_BYTES`], a text frame that is not UTF-8, a protocol violation) are counted as
    /// malformed messages too: the reconnect and backfill lose nothing, but an operator should
    /// see that the exchange sent garbage.
    fn read_failed(&self, e: &WsError) -> Ended {
        let reason = match e {
            WsError::Capacity(_) => "message_too_large",
            WsError::Utf8(_) => "malformed_frame",
            // A peer that vanished without a close frame is a drop, not garbage.
            WsError::Protocol(p) if *p != ProtocolError::ResetWithoutClosingHandshake => {
                "malformed_frame"
            }
            _ => {
                tracing::warn!(conn = self.conn, error = %e, "WebSocket error");
                return Ended::Reconnect("error");
            }
        };
        metrics::counter!("tradepipe_feed_messages_malformed_total").increment(1);
        tracing::warn!(conn = self.conn, error = %e, reason, limit_bytes = MAX_MESSAGE_BYTES, "exchange sent an unreadable frame; reconnecting (the gap is backfilled)");
        Ended::Reconnect(reason)
    }

    /// One text frame: a trade is checked against the last id of its symbol (duplicates dropped,
    /// gaps filled first); anything malformed is counted, logged and skipped.
    async fn on_payload(
        &mut self,
        bytes: &[u8],
        batch: &mut Vec<Trade>,
        rest: &BinanceRest,
        received_at: Instant,
    ) -> Result<(), Ended> {
        match parse_stream_message(bytes) {
            Ok(StreamEvent::Trade(trade)) => {
                let sym = trade.symbol.to_string();
                metrics::counter!("tradepipe_trades_received_total", "symbol" => sym.clone())
                    .increment(1);
                match self.last_ids.get(&sym).copied() {
                    Some(last) if trade.trade_id <= last => {
                        metrics::counter!("tradepipe_trades_duplicate_total", "symbol" => sym)
                            .increment(1);
                        return Ok(());
                    }
                    Some(last) if trade.trade_id > last + 1 => {
                        metrics::counter!("tradepipe_feed_gaps_total", "symbol" => sym.clone())
                            .increment(1);
                        tracing::info!(symbol = %sym, from = last + 1, to = trade.trade_id - 1, "trade id gap; backfilling");
                        // Order matters to the candles: what we hold goes first, then the gap.
                        self.hand_on(batch, received_at, false).await?;
                        self.backfill(rest, &sym, last + 1, Some(trade.trade_id))
                            .await?;
                    }
                    _ => {}
                }
                self.last_ids.insert(sym, trade.trade_id);
                batch.push(trade);
                Ok(())
            }
            Ok(StreamEvent::ServerShutdown) => {
                tracing::info!(
                    conn = self.conn,
                    "exchange announced serverShutdown; reconnecting now"
                );
                self.hand_on(batch, received_at, false).await?;
                Err(Ended::Reconnect("server_shutdown"))
            }
            Ok(StreamEvent::Ignored) => Ok(()),
            Err(e) => {
                metrics::counter!("tradepipe_feed_messages_malformed_total").increment(1);
                tracing::warn!(conn = self.conn, error = %e, "malformed exchange message skipped");
                Ok(())
            }
        }
    }

    async fn hand_on(
        &mut self,
        batch: &mut Vec<Trade>,
        received_at: Instant,
        caught_up: bool,
    ) -> Result<(), Ended> {
        if batch.is_empty() {
            return Ok(());
        }
        let trades = std::mem::replace(batch, Vec::with_capacity(self.cfg.max_batch_trades));
        let weight = trades.len();
        self.builder
            .push(
                TradeBatch {
                    trades,
                    received_at,
                    caught_up,
                },
                weight,
            )
            .await
            .map_err(|_| Ended::Stop)
    }

    /// Fetches ids `from..to` (or from `from` until caught up when `to` is None) over REST and
    /// hands them on in pages. A failing endpoint is retried until `backfill_retry_secs`; a gap
    /// larger than `max_backfill_trades` is not attempted. Both are counted as unfilled and logged
    /// as errors: an operator must know that history has a hole.
    async fn backfill(
        &mut self,
        rest: &BinanceRest,
        sym: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<(), Ended> {
        if let Some(to) = to
            && to - from > self.cfg.max_backfill_trades
        {
            metrics::counter!("tradepipe_feed_gap_trades_unfilled_total", "symbol" => sym.to_string()).increment(to - from);
            tracing::error!(
                symbol = sym,
                from,
                to,
                "gap larger than binance.max_backfill_trades; not backfilled"
            );
            return Ok(());
        }
        let mut next = from;
        let mut fetched = 0u64;
        let mut retry_started: Option<Instant> = None;
        let policy = self.cfg.backoff();
        let mut failures: u32 = 0;
        loop {
            if to.is_some_and(|to| next >= to) || self.stop.is_cancelled() {
                break;
            }
            let page = tokio::select! {
                _ = self.stop.cancelled() => return Err(Ended::Stop),
                p = rest.historical_trades(sym, next, self.cfg.backfill_page) => p,
            };
            match page {
                Ok(trades) => {
                    retry_started = None;
                    failures = 0;
                    let full_page = trades.len() >= self.cfg.backfill_page as usize;
                    let mut out: Vec<Trade> = trades
                        .into_iter()
                        .filter(|t| t.trade_id >= next && to.is_none_or(|to| t.trade_id < to))
                        .collect();
                    out.sort_by_key(|t| t.trade_id);
                    out.dedup_by_key(|t| t.trade_id);
                    let Some(last) = out.last().map(|t| t.trade_id) else {
                        break;
                    };
                    if out[0].trade_id != next {
                        // The exchange no longer has these ids (or never had them).
                        let missing = out[0].trade_id - next;
                        metrics::counter!("tradepipe_feed_gap_trades_unfilled_total", "symbol" => sym.to_string()).increment(missing);
                        tracing::error!(
                            symbol = sym,
                            from = next,
                            missing,
                            "exchange returned a later id than asked for"
                        );
                    }
                    fetched += out.len() as u64;
                    metrics::counter!("tradepipe_feed_backfilled_trades_total", "symbol" => sym.to_string()).increment(out.len() as u64);
                    self.last_ids.insert(sym.to_string(), last);
                    next = last + 1;
                    let weight = out.len();
                    self.builder
                        .push(
                            TradeBatch {
                                trades: out,
                                received_at: Instant::now(),
                                caught_up: false,
                            },
                            weight,
                        )
                        .await
                        .map_err(|_| Ended::Stop)?;
                    if to.is_none() && !full_page {
                        break;
                    }
                }
                Err(e) => {
                    let since = *retry_started.get_or_insert_with(Instant::now);
                    if since.elapsed() >= Duration::from_secs(self.cfg.backfill_retry_secs) {
                        if let Some(to) = to {
                            metrics::counter!("tradepipe_feed_gap_trades_unfilled_total", "symbol" => sym.to_string()).increment(to - next);
                            // Accept the hole so later trades flow again.
                            self.last_ids.insert(sym.to_string(), to - 1);
                        }
                        tracing::error!(symbol = sym, from = next, ?to, error = %e, "backfill gave up after retrying");
                        break;
                    }
                    // Binance bans an IP that ignores its Retry-After: it is a floor.
                    let asked = match &e {
                        RestError::RateLimited { retry_after, .. } => Some(*retry_after),
                        _ => None,
                    };
                    failures = failures.saturating_add(1);
                    let wait = policy.wait(failures, asked);
                    tracing::warn!(symbol = sym, from = next, error = %e, wait_ms = wait.as_millis() as u64, "backfill request failed; retrying");
                    tokio::select! {
                        _ = self.stop.cancelled() => return Err(Ended::Stop),
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
        if fetched > 0 {
            tracing::info!(symbol = sym, from, fetched, "backfilled trades over REST");
        }
        Ok(())
    }
}

/// The REST client as configured (base URL, optional API key, request timeout).
pub(crate) fn binance_rest(cfg: &BinanceConfig) -> Result<BinanceRest, RestError> {
    let key = cfg.api_key.as_ref().map(|k| k.expose());
    BinanceRest::new(
        cfg.rest_url.clone(),
        key,
        Duration::from_millis(cfg.request_timeout_ms),
    )
}
