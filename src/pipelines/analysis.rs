//! The analysis pipeline, downstream of the news pipeline through the document store:
//!
//! ```text
//! articles (PENDING) --claim--> SentimentActor --(CPU pool)--> analysis_results --> PUBLISH articles:new
//! analysis_results + 1m candles --(schedule)--> PredictionActor --> trend_predictions --> PUBLISH predictions:{SYM}
//!                                                              \--> scores past predictions against the candles
//! ```
//! As between crawler and normalizer, the store is the queue: nothing waits only in memory.

use super::resources::Resources;
use crate::actors::poller::StopPolling;
use crate::actors::prediction::PredictionActor;
use crate::actors::sentiment::{self, SentimentActor};
use crate::config::Config;
use crate::store::FullDocumentStore;
use crate::store::postgres::PgPriceHistory;
use crate::store::redis::{AnalysisPublisher, RedisKeys};
use actix::{Addr, Supervisor};
use anyhow::Context as _;
use std::sync::Arc;
use tradepipe_model::aliases::SymbolAliases;
use tradepipe_model::analysis::Analyzer;
use tradepipe_model::calibration::Calibration;

pub(crate) struct AnalysisPipeline {
    sentiment: Addr<SentimentActor>,
    prediction: Addr<PredictionActor>,
}

impl AnalysisPipeline {
    /// Starts the analysis pool, the SentimentActor and the PredictionActor on `store` (the
    /// news pipeline's document store).
    pub async fn start(
        cfg: &Config,
        resources: &Resources,
        store: Arc<dyn FullDocumentStore>,
    ) -> anyhow::Result<AnalysisPipeline> {
        let keys = RedisKeys::new(cfg.redis.key_prefix.clone());
        let conn = resources.redis().await.context("analysis updates")?;
        let publisher = AnalysisPublisher::new(conn, keys);
        // Candle reads tolerate lag: a read replica serves them when one is configured.
        let prices = Arc::new(PgPriceHistory::new(resources.reads.clone()));

        let analyzer = Arc::new(Analyzer::with_aliases(&SymbolAliases::default_crypto()));
        let pool = sentiment::start_pool(cfg.analysis.workers, analyzer);
        let (s, p, c) = (store.clone(), publisher.clone(), cfg.analysis.clone());
        let cap = cfg.mailbox.pollers;
        let sentiment =
            Supervisor::start(move |_| SentimentActor::new(s, pool, p, c).with_capacity(cap));

        let calibration = Calibration::shipped()
            .map_err(anyhow::Error::msg)
            .context("prediction confidence")?;
        let predictor = PredictionActor::new(
            store,
            prices,
            publisher,
            cfg.market.symbols.clone(),
            &cfg.analysis,
            &calibration,
        )
        .with_capacity(cap);
        let prediction = Supervisor::start(move |_| predictor);
        tracing::info!(
            workers = cfg.analysis.workers,
            horizons = ?cfg.analysis.horizons,
            every_s = cfg.analysis.prediction_interval_secs,
            "analysis pipeline running"
        );
        Ok(AnalysisPipeline {
            sentiment,
            prediction,
        })
    }

    /// Let the batch in flight finish and stop claiming; finish the prediction round.
    /// Unanalysed articles stay PENDING in the store for the next start.
    pub async fn shutdown(&self) {
        let _ = self.sentiment.send(StopPolling).await;
        let _ = self.prediction.send(StopPolling).await;
    }
}
