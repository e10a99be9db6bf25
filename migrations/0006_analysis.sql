-- Why: the analysis pipeline's documents, PostgreSQL backend (the default): the seed's MongoDB
-- collections `analysis_results` and `trend_predictions` mapped to tables whose `doc` JSONB holds
-- the whole document with the seed's field names (what the store returns), and whose columns are
-- projections of it for SQL queries and the seed's indexes. The MongoDB store keeps the same
-- documents in collections of those names; one conformance suite holds both to one behaviour.
--
-- content.articles is the analysis queue, as raw_articles is the normalizer's: an article is
-- claimed (analysis_status PENDING -> PROCESSING with analysis_lease_until) with FOR UPDATE SKIP
-- LOCKED; a claim whose lease ran out (the worker died) is handed out again.
--
-- Departures from the seed, and why:
--  * analysis_results.article_id is UNIQUE (the seed's 1:1 index) and is what makes "never
--    analysed twice" hold even when a lease expired under a slow worker: the second insert is
--    ON CONFLICT DO NOTHING, and the article is completed once. ON DELETE CASCADE: retention
--    removes an article together with its analysis (the seed keeps both 3 years).
--  * The analysis error is kept on the article (analysis_error): FAILED needs its reason, and
--    the analysis is deterministic, so a failed article is not retried (the same input and
--    model_version would fail again); a new model version can reset them to PENDING.
--  * trend_predictions.prediction_time is the MARKET time the prediction is anchored at: the
--    end of the newest closed 1m candle, whose close is the base price. created_at is the wall
--    clock. Live the two agree within a minute; on replayed or backfilled data only the market
--    time makes "the horizon has passed" checkable against the candles, and it makes the
--    prediction reproducible. UNIQUE (symbol, time_horizon, prediction_time): no new market data
--    since the last run (feed stalled, or a second daemon instance) means no duplicate
--    prediction.
--  * horizon_seconds is stored beside the seed's time_horizon text ("24h") so the scorer finds
--    due predictions with one indexed comparison on due_at = prediction_time + horizon.
--  * Prices in price_target and actual_outcome are exact decimal strings ("61837.63"), like every
--    Decimal the daemon writes as JSON, never floats.
--  * Indexes: the seed's, where a query uses them; plus the scorer's partial index on unscored
--    predictions by due_at.

ALTER TABLE content.articles
    ADD COLUMN analysis_lease_until TIMESTAMPTZ,
    ADD COLUMN analysis_error       TEXT;

CREATE TABLE content.analysis_results (
    id                  UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    article_id          UUID NOT NULL UNIQUE REFERENCES content.articles(id) ON DELETE CASCADE,
    model_version       VARCHAR(64) NOT NULL,
    analyzed_at         TIMESTAMPTZ NOT NULL,
    processing_time_ms  BIGINT NOT NULL DEFAULT 0,
    sentiment_label     VARCHAR(10) NOT NULL,
    sentiment_score     DOUBLE PRECISION NOT NULL,
    trend_direction     VARCHAR(10) NOT NULL,
    -- The article's symbols and its entities' symbols (entities[].symbol): the seed's
    -- entities.symbol index, widened so "analyses about BTCUSDT" is one GIN lookup.
    symbols             VARCHAR(20)[] NOT NULL DEFAULT '{}',
    doc                 JSONB NOT NULL,

    CONSTRAINT chk_analysis_label CHECK (sentiment_label IN ('BULLISH', 'BEARISH', 'NEUTRAL')),
    CONSTRAINT chk_analysis_direction CHECK (trend_direction IN ('UP', 'DOWN', 'SIDEWAYS')),
    CONSTRAINT chk_analysis_score CHECK (sentiment_score BETWEEN -1 AND 1)
);

CREATE INDEX idx_analysis_label_time ON content.analysis_results(sentiment_label, analyzed_at DESC);
CREATE INDEX idx_analysis_symbols ON content.analysis_results USING GIN(symbols);
CREATE INDEX idx_analysis_direction ON content.analysis_results(trend_direction);
CREATE INDEX idx_analysis_time ON content.analysis_results(analyzed_at DESC);

CREATE TABLE content.trend_predictions (
    id                  UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    symbol              VARCHAR(20) NOT NULL,
    prediction_time     TIMESTAMPTZ NOT NULL,
    time_horizon        VARCHAR(10) NOT NULL,
    horizon_seconds     BIGINT NOT NULL,
    -- prediction_time + horizon, written by the store (timestamptz + interval is only STABLE,
    -- so it cannot be a generated column); the CHECK keeps the two from disagreeing.
    due_at              TIMESTAMPTZ NOT NULL,
    direction           VARCHAR(10) NOT NULL,
    confidence          DOUBLE PRECISION NOT NULL,
    doc                 JSONB NOT NULL,
    accuracy_score      DOUBLE PRECISION,
    scored_at           TIMESTAMPTZ,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),

    CONSTRAINT uq_prediction UNIQUE (symbol, time_horizon, prediction_time),
    CONSTRAINT chk_prediction_direction CHECK (direction IN ('UP', 'DOWN', 'SIDEWAYS')),
    CONSTRAINT chk_prediction_confidence CHECK (confidence BETWEEN 0 AND 1),
    CONSTRAINT chk_prediction_horizon CHECK (horizon_seconds > 0),
    CONSTRAINT chk_prediction_accuracy CHECK (accuracy_score IS NULL OR accuracy_score BETWEEN 0 AND 1),
    CONSTRAINT chk_prediction_due CHECK (
        due_at = prediction_time + make_interval(secs => horizon_seconds::double precision)),
    CONSTRAINT chk_prediction_scored CHECK ((accuracy_score IS NULL) = (scored_at IS NULL))
);

-- The seed's (symbol, prediction_time DESC) is the unique constraint's leading part for one
-- horizon; this one serves "latest predictions of a symbol" across horizons.
CREATE INDEX idx_predictions_symbol_time ON content.trend_predictions(symbol, prediction_time DESC);
CREATE INDEX idx_predictions_time ON content.trend_predictions(prediction_time DESC);
CREATE INDEX idx_predictions_direction ON content.trend_predictions(direction, confidence DESC);
CREATE INDEX idx_predictions_due ON content.trend_predictions(due_at) WHERE scored_at IS NULL;
