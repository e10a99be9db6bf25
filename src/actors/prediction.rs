//! PredictionActor: on a schedule, for every tracked symbol and horizon, first scores the
//! predictions whose horizon has passed (in market time: the stored candles reach past it), then
//! makes a new prediction from the analyses of the last hours and the stored 1m candles (see
//! [`tradepipe_model::predict`] for the model). Each new prediction is stored once per market time and
//! published on `predictions:{SYM}`; the rolling hit rate per symbol and horizon is the gauge
//! `tradepipe_prediction_hit_rate`.
//!
//! Everything it does is a few indexed queries per symbol; it holds no state between rounds
//! (the store has it all), so a restart loses nothing and a second daemon instance makes no
//! duplicate (unique per symbol, horizon and market time).

use super::count_restart;
use crate::config::AnalysisConfig;
use crate::store::redis::AnalysisPublisher;
use crate::store::{AnalysisStore, PriceHistory};
use actix::prelude::*;
use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;
use tradepipe_model::predict::{self, MarketView, WeighParams};

const ACTOR: &str = "prediction";
/// Due predictions scored per symbol and horizon per round (a backlog drains over rounds).
const SCORE_BATCH: usize = 500;

/// Run a round now (tests and operators; the schedule runs them anyway).
#[derive(Message)]
#[rtype(result = "()")]
pub struct PredictNow;

/// Finish the round in flight and stop (shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopPredicting;

/// Everything a round needs; cloned into the round's future.
#[derive(Clone)]
struct Deps {
    store: Arc<dyn AnalysisStore>,
    prices: Arc<dyn PriceHistory>,
    publisher: AnalysisPublisher,
    symbols: Arc<[String]>,
    horizons: Arc<[(String, i64)]>,
    weigh: WeighParams,
    volatility_minutes: i64,
    hit_rate_window: usize,
}

pub struct PredictionActor {
    deps: Deps,
    every: Duration,
    busy: bool,
    stopping: bool,
}

impl PredictionActor {
    /// `symbols` are the tracked ones (market.symbols); horizons were validated with the config.
    pub fn new(
        store: Arc<dyn AnalysisStore>,
        prices: Arc<dyn PriceHistory>,
        publisher: AnalysisPublisher,
        symbols: Vec<String>,
        cfg: &AnalysisConfig,
    ) -> Result<Self, String> {
        let horizons = cfg
            .horizons
            .iter()
            .map(|h| predict::parse_horizon(h))
            .collect::<Result<Vec<_>, _>>()?;
        let half_life_ms = (cfg.recency_half_life_hours * 3_600_000.0) as i64;
        Ok(PredictionActor {
            deps: Deps {
                store,
                prices,
                publisher,
                symbols: symbols.into(),
                horizons: horizons.into(),
                weigh: WeighParams {
                    window: chrono::Duration::hours(cfg.window_hours as i64),
                    half_life: chrono::Duration::milliseconds(half_life_ms.max(1)),
                },
                volatility_minutes: cfg.volatility_minutes as i64,
                hit_rate_window: cfg.hit_rate_window,
            },
            every: Duration::from_secs(cfg.prediction_interval_secs.max(1)),
            busy: false,
            stopping: false,
        })
    }

    fn round(&mut self, ctx: &mut Context<Self>) {
        if self.busy || self.stopping {
            return;
        }
        self.busy = true;
        let deps = self.deps.clone();
        let fut = async move {
            for symbol in deps.symbols.iter() {
                if let Err(e) = score_due(&deps, symbol).await {
                    tracing::warn!(symbol, error = %e, "scoring predictions failed; retried next round");
                }
                for horizon in deps.horizons.iter() {
                    if let Err(e) = update_hit_rate(&deps, symbol, &horizon.0).await {
                        tracing::warn!(symbol, horizon = %horizon.0, error = %e, "reading the hit rate failed");
                    }
                    if let Err(e) = predict_one(&deps, symbol, horizon).await {
                        metrics::counter!("tradepipe_prediction_errors_total").increment(1);
                        tracing::warn!(symbol, horizon = %horizon.0, error = %e, "making a prediction failed; retried next round");
                    }
                }
            }
        };
        ctx.wait(fut.into_actor(self).map(|(), act, _| act.busy = false));
    }
}

/// Scores every prediction of `symbol` (any horizon) whose horizon ended at or before the
/// newest closed candle, with the close at its end.
async fn score_due(deps: &Deps, symbol: &str) -> anyhow::Result<()> {
    let Some((market_time, _)) = deps.prices.latest_close(symbol).await? else {
        return Ok(());
    };
    let due = deps
        .store
        .due_predictions(symbol, market_time, SCORE_BATCH)
        .await?;
    for p in &due {
        let Some((price_time, price)) = deps.prices.close_at(symbol, p.due_at()).await? else {
            continue;
        };
        let (outcome, accuracy) = predict::score(p, price, price_time, Utc::now());
        if deps
            .store
            .score_prediction(&p.id, &outcome, accuracy)
            .await?
        {
            let hit = if outcome.direction == p.prediction.direction {
                "hit"
            } else {
                "miss"
            };
            metrics::counter!("tradepipe_predictions_scored_total", "symbol" => symbol.to_string(), "horizon" => p.time_horizon.clone(), "result" => hit)
                .increment(1);
            tracing::info!(symbol, horizon = %p.time_horizon, predicted = p.prediction.direction.as_str(), actual = outcome.direction.as_str(), accuracy, "prediction scored");
        }
    }
    Ok(())
}

/// The rolling hit rate over the newest `hit_rate_window` scored predictions.
async fn update_hit_rate(deps: &Deps, symbol: &str, horizon: &str) -> anyhow::Result<()> {
    let recent = deps
        .store
        .predictions(symbol, Some(horizon), true, deps.hit_rate_window)
        .await?;
    if let Some(rate) = predict::hit_rate(&recent) {
        metrics::gauge!("tradepipe_prediction_hit_rate", "symbol" => symbol.to_string(), "horizon" => horizon.to_string())
            .set(rate);
    }
    Ok(())
}

/// One prediction for `symbol` at the end of its newest closed 1m candle. Nothing is made
/// before the first candle closed, and nothing twice for one market time.
async fn predict_one(
    deps: &Deps,
    symbol: &str,
    (horizon, secs): &(String, i64),
) -> anyhow::Result<()> {
    let Some((prediction_time, base_price)) = deps.prices.latest_close(symbol).await? else {
        tracing::debug!(symbol, "no closed 1m candle yet; no prediction");
        return Ok(());
    };
    let from = prediction_time - chrono::Duration::minutes(deps.volatility_minutes);
    let closes = deps
        .prices
        .minute_closes(symbol, from, prediction_time)
        .await?;
    let now = Utc::now();
    let evidence = deps
        .store
        .recent_evidence(symbol, now - deps.weigh.window)
        .await?;
    let market = MarketView {
        prediction_time,
        base_price,
        minute_volatility: predict::realized_volatility(&closes),
    };
    let mut record = predict::build_prediction(
        symbol,
        (horizon, *secs),
        &market,
        &evidence,
        now,
        &deps.weigh,
    );
    let Some(id) = deps.store.insert_prediction(&record).await? else {
        tracing::debug!(symbol, horizon = %horizon, %prediction_time, "no new market data since the last prediction");
        return Ok(());
    };
    record.id = id;
    metrics::counter!("tradepipe_predictions_total", "symbol" => symbol.to_string()).increment(1);
    tracing::info!(
        symbol,
        horizon = %horizon,
        direction = record.prediction.direction.as_str(),
        confidence = record.prediction.confidence,
        articles = evidence.len(),
        "trend prediction"
    );
    if let Err(e) = deps.publisher.prediction(&record).await {
        metrics::counter!("tradepipe_redis_unpublished_total", "kind" => "prediction").increment(1);
        tracing::warn!(symbol, error = %e, "PUBLISH predictions failed; the prediction is stored");
    }
    Ok(())
}

impl Actor for PredictionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(16);
        ctx.run_interval(self.every, |act, ctx| act.round(ctx));
        self.round(ctx);
    }
}

impl Supervised for PredictionActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.busy = false;
        count_restart(ACTOR);
    }
}

impl Handler<PredictNow> for PredictionActor {
    type Result = ();

    fn handle(&mut self, _msg: PredictNow, ctx: &mut Context<Self>) {
        self.round(ctx);
    }
}

impl Handler<StopPredicting> for PredictionActor {
    type Result = ();

    fn handle(&mut self, _msg: StopPredicting, _ctx: &mut Context<Self>) {
        self.stopping = true;
    }
}
