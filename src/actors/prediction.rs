//! The prediction stage, a job of the [`PollingActor`]: on a schedule, for every tracked symbol and horizon, first scores the
//! predictions whose horizon has passed (in market time: the stored candles reach past it), then
//! makes a new prediction from the analyses of the last hours and the stored 1m candles (see
//! [`tradepipe_model::predict`] for the model; its confidence is the back-tested one of
//! [`tradepipe_model::calibration`], the same table `tradepipe backtest` scores). Each new prediction is stored once per market time and
//! published on `predictions:{SYM}`; the rolling hit rate per symbol and horizon is the gauge
//! `tradepipe_prediction_hit_rate`.
//!
//! Everything it does is a few indexed queries per symbol; it holds no state between rounds
//! (the store has it all), so a restart loses nothing and a second daemon instance makes no
//! duplicate (unique per symbol, horizon and market time).

use super::poller::{PollJob, PollingActor, Round};
use crate::config::AnalysisConfig;
use crate::store::redis::AnalysisPublisher;
use crate::store::{AnalysisStore, PriceHistory};
use chrono::Utc;
use futures_util::future::LocalBoxFuture;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tradepipe_model::calibration::{Calibration, HorizonCalibration};
use tradepipe_model::predict::{self, MarketView, WeighParams};

const ACTOR: &str = "prediction";
/// Due predictions scored per symbol and horizon per round (a backlog drains over rounds).
const SCORE_BATCH: usize = 500;

/// Everything a round needs; cloned into the round's future.
#[derive(Clone)]
struct Deps {
    store: Arc<dyn AnalysisStore>,
    prices: Arc<dyn PriceHistory>,
    publisher: AnalysisPublisher,
    symbols: Arc<[String]>,
    horizons: Arc<[PredictionHorizon]>,
    weigh: WeighParams,
    volatility_minutes: i64,
    hit_rate_window: usize,
}

/// A configured horizon with the back-tested calibration its calls are stated with.
struct PredictionHorizon {
    label: String,
    secs: i64,
    calibration: HorizonCalibration,
}

/// One round: for every symbol, score what is due, refresh the hit rates, predict.
pub struct PredictionJob {
    deps: Deps,
    every: Duration,
}

pub type PredictionActor = PollingActor<PredictionJob>;

impl PollingActor<PredictionJob> {
    /// `symbols` are the tracked ones (market.symbols); horizons were validated with the config.
    /// Each horizon states its calls with the calibration fitted nearest to it (the same
    /// table the back-test writes and scores, [`Calibration::shipped`] in the daemon).
    pub fn new(
        store: Arc<dyn AnalysisStore>,
        prices: Arc<dyn PriceHistory>,
        publisher: AnalysisPublisher,
        symbols: Vec<String>,
        cfg: &AnalysisConfig,
        calibration: &Calibration,
    ) -> Self {
        let horizons: Vec<PredictionHorizon> = cfg
            .horizons
            .iter()
            .map(|h| {
                let calibration = calibration.for_horizon(h.label(), h.secs());
                tracing::info!(
                    horizon = h.label(),
                    calibrated_at = %calibration.horizon,
                    edge = calibration.edge,
                    hit_rate = calibration.hit_rate,
                    fitted_on = %calibration.fitted_on,
                    "prediction confidence calibration"
                );
                PredictionHorizon {
                    label: h.label().to_string(),
                    secs: h.secs(),
                    calibration,
                }
            })
            .collect();
        PollingActor::with_job(PredictionJob {
            deps: Deps {
                store,
                prices,
                publisher,
                symbols: symbols.into(),
                horizons: horizons.into(),
                weigh: cfg.weigh_params(),
                volatility_minutes: cfg.volatility_minutes as i64,
                hit_rate_window: cfg.hit_rate_window,
            },
            every: Duration::from_secs(cfg.prediction_interval_secs.max(1)),
        })
    }
}

impl PollJob for PredictionJob {
    const NAME: &'static str = ACTOR;
    /// Each symbol's and horizon's failure is logged and retried next round; the round goes on.
    type Error = Infallible;

    fn interval(&self) -> Duration {
        self.every
    }

    fn round(&mut self) -> LocalBoxFuture<'static, Result<Round, Infallible>> {
        let deps = self.deps.clone();
        Box::pin(async move {
            for symbol in deps.symbols.iter() {
                if let Err(e) = score_due(&deps, symbol).await {
                    tracing::warn!(symbol, error = %e, "scoring predictions failed; retried next round");
                }
                for horizon in deps.horizons.iter() {
                    if let Err(e) = update_hit_rate(&deps, symbol, &horizon.label).await {
                        tracing::warn!(symbol, horizon = %horizon.label, error = %e, "reading the hit rate failed");
                    }
                    if let Err(e) = predict_one(&deps, symbol, horizon).await {
                        metrics::counter!("tradepipe_prediction_errors_total").increment(1);
                        tracing::warn!(symbol, horizon = %horizon.label, error = %e, "making a prediction failed; retried next round");
                    }
                }
            }
            Ok(Round::Idle)
        })
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
async fn predict_one(deps: &Deps, symbol: &str, horizon: &PredictionHorizon) -> anyhow::Result<()> {
    let (label, secs) = (horizon.label.as_str(), horizon.secs);
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
        (label, secs),
        &market,
        &evidence,
        now,
        &deps.weigh,
        &horizon.calibration,
    );
    let Some(id) = deps.store.insert_prediction(&record).await? else {
        tracing::debug!(symbol, horizon = label, %prediction_time, "no new market data since the last prediction");
        return Ok(());
    };
    record.id = id;
    metrics::counter!("tradepipe_predictions_total", "symbol" => symbol.to_string()).increment(1);
    tracing::info!(
        symbol,
        horizon = label,
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
