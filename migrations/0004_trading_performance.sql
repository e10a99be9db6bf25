-- Why: the seed's "Performance Optimization" objects for chart and dashboard reads: an index-only
-- path for chart queries and a per-symbol summary the dashboard reads instead of aggregating
-- price_candles on every request.
--
-- Changes from the seed, and why:
--  * trading.symbol_summary gets a UNIQUE index on symbol_id: REFRESH MATERIALIZED VIEW
--    CONCURRENTLY (the seed's own refresh statement) refuses to run without one.
--  * last_price breaks ties between intervals opening at the same instant deterministically
--    (they all hold the same latest close, but the result should not depend on the plan).
-- Note: idx_candles_covering includes columns every upsert changes, so candle updates are never
-- HOT; acceptable at candle write rates (a few rows per symbol per second).

CREATE INDEX idx_candles_covering ON trading.price_candles (
    symbol_id, interval, open_time DESC
) INCLUDE (open, high, low, close, volume);

CREATE MATERIALIZED VIEW trading.symbol_summary AS
SELECT
    pc.symbol_id,
    COUNT(*) AS candle_count,
    MAX(pc.close_time) AS last_update,
    (SELECT pc2.close FROM trading.price_candles pc2
     WHERE pc2.symbol_id = pc.symbol_id
     ORDER BY pc2.open_time DESC, pc2.close_time ASC
     LIMIT 1) AS last_price
FROM trading.price_candles pc
GROUP BY pc.symbol_id;

CREATE UNIQUE INDEX uq_symbol_summary_symbol ON trading.symbol_summary (symbol_id);
