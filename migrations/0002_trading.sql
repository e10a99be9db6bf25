-- Why: the market data tradepipe writes: symbols, exact OHLCV candles and raw trades (ticks)
-- (seed "Trading Symbols" and "Price Data"). The candle and tick writers rely on the keys, the
-- partitioning and trading.ensure_tick_partition() defined here.
--
-- Changes from the seed, and why:
--  * symbols.base_asset/quote_asset are VARCHAR(20), not 10: Binance lists base assets longer
--    than 10 characters (e.g. BROCCOLI714), which would make the symbol upsert fail.
--  * precision_* are checked to 0..8: prices and quantities are stored as DECIMAL(20,8), so a
--    symbol needing more places could not be stored exactly anyway.
--  * candles: trade_count is BIGINT and NOT NULL, first_trade_id/last_trade_id are added (the
--    writer resumes exactly after max(last_trade_id) and refuses to overwrite a newer candle state
--    with an older one), is_closed records whether the interval has ended, updated_at shows the
--    last write.
--  * candles.quote_volume is NUMERIC(40,16), not DECIMAL(30,8): it is a sum of price x qty, and
--    with 8 decimal places on both factors each product has 16, so DECIMAL(30,8) would silently
--    round every candle's quote volume. 24 integer digits leave room for any realistic sum.
--    Price columns stay DECIMAL(20,8): Binance sends 8 decimal places.
--  * idx_candles_symbol_interval_time is not created: the unique_candle constraint already
--    builds a B-tree on (symbol_id, interval, open_time), which PostgreSQL scans backwards for
--    ORDER BY open_time DESC; a second identical index only doubles the write cost of every
--    upsert. (idx_candles_covering, see 0004, serves chart queries index-only.)
--  * idx_candles_time is BRIN, as the seed's own index table says: candles arrive in time order,
--    so block ranges correlate with open_time and a BRIN index is tiny.
--  * price_ticks is partitioned by RANGE on timestamp, one partition per UTC day
--    (trading.price_ticks_YYYYMMDD, created by trading.ensure_tick_partition). Retention then drops
--    whole partitions instead of DELETEing 24 hours of rows (no bloat, no vacuum debt).
--  * the seed's partial index idx_ticks_recent (WHERE timestamp > NOW() - INTERVAL '1 hour') is
--    dropped: index predicates must be immutable and NOW() is not, so PostgreSQL refuses to create
--    it (and it would not move with time anyway). Daily partitions give the same "recent data is
--    small" effect through partition pruning.
--  * ticks gain trade_id BIGINT NOT NULL. A unique constraint on a partitioned table must contain
--    the partition key, so the key is (symbol_id, trade_id, timestamp). An exchange trade id fixes
--    its trade time, so this is unique per (symbol, trade_id) in effect; it is what the writer's
--    ON CONFLICT DO NOTHING deduplicates replays and overlaps on.
--  * ticks: the key is ordered (symbol_id, timestamp, trade_id) (same uniqueness) so that it also
--    serves the seed's idx_ticks_symbol_time queries, and that second index is not created; the
--    symbol is compared with COLLATE "C" (byte order: symbols are ASCII); and the per-row foreign
--    key to trading.symbols is dropped. Measured here with psql COPY of 200,000 rows into one
--    daily partition: no index 310k rows/s; the key alone 160k (C.UTF-8) / 178k (COLLATE "C");
--    plus the (symbol, time) index 89k; plus the foreign key 64k. Ticks come in at up to 100k/s,
--    so each of these matters. Integrity does not depend on the per-row check: the writer
--    checks every batch's symbols against trading.symbols, and each batch carries the candles of
--    its symbols, whose foreign key fails the whole transaction for an unknown symbol.
--  * the ticks' BIGSERIAL id is dropped and the natural key above is the primary key: nothing
--    references a tick by surrogate id, and the sequence would cost a nextval() per row plus an
--    8-byte column and its own (partition-local, hence not even unique) index on the hottest table.

CREATE SCHEMA IF NOT EXISTS trading;

CREATE TABLE trading.symbols (
    id              VARCHAR(20) PRIMARY KEY,  -- e.g. 'BTCUSDT'
    base_asset      VARCHAR(20) NOT NULL,     -- e.g. 'BTC'
    quote_asset     VARCHAR(20) NOT NULL,     -- e.g. 'USDT'
    exchange        VARCHAR(50) NOT NULL DEFAULT 'binance',
    precision_price INT NOT NULL DEFAULT 2,
    precision_qty   INT NOT NULL DEFAULT 8,
    min_qty         DECIMAL(20, 8) NOT NULL DEFAULT 0,
    is_active       BOOLEAN NOT NULL DEFAULT TRUE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT NOW(),

    CONSTRAINT chk_symbol_precision CHECK (precision_price BETWEEN 0 AND 8
                                           AND precision_qty BETWEEN 0 AND 8),
    CONSTRAINT chk_symbol_min_qty CHECK (min_qty >= 0)
);

CREATE INDEX idx_symbols_exchange ON trading.symbols(exchange);
CREATE INDEX idx_symbols_active ON trading.symbols(is_active);

CREATE TRIGGER trg_symbols_updated_at BEFORE UPDATE ON trading.symbols
    FOR EACH ROW EXECUTE FUNCTION public.touch_updated_at();

CREATE TABLE trading.price_candles (
    id              BIGSERIAL PRIMARY KEY,
    symbol_id       VARCHAR(20) NOT NULL REFERENCES trading.symbols(id),
    interval        VARCHAR(10) NOT NULL,
    open_time       TIMESTAMPTZ NOT NULL,
    close_time      TIMESTAMPTZ NOT NULL,
    open            DECIMAL(20, 8) NOT NULL,
    high            DECIMAL(20, 8) NOT NULL,
    low             DECIMAL(20, 8) NOT NULL,
    close           DECIMAL(20, 8) NOT NULL,
    volume          DECIMAL(30, 8) NOT NULL,
    quote_volume    NUMERIC(40, 16) NOT NULL,
    trade_count     BIGINT NOT NULL DEFAULT 0,
    -- First and last exchange trade id folded into this candle; NULL for an interval without
    -- trades. max(last_trade_id) per symbol is where a restarted feed resumes.
    first_trade_id  BIGINT,
    last_trade_id   BIGINT,
    is_closed       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT NOW(),

    -- Note: Database supports 30m and 1w intervals beyond UI default options (1m, 5m, 15m, 1h, 4h, 1d)
    -- This allows flexibility for future UI expansion and API consumers
    CONSTRAINT chk_interval CHECK (interval IN ('1m', '5m', '15m', '30m', '1h', '4h', '1d', '1w')),
    CONSTRAINT chk_candle_time CHECK (close_time > open_time),
    CONSTRAINT chk_candle_ohlc CHECK (low <= open AND low <= close AND high >= open AND high >= close),
    CONSTRAINT chk_candle_volume CHECK (volume >= 0 AND quote_volume >= 0 AND trade_count >= 0),
    CONSTRAINT chk_candle_trade_ids CHECK (
        (first_trade_id IS NULL) = (last_trade_id IS NULL)
        AND (first_trade_id IS NULL OR first_trade_id <= last_trade_id)),
    CONSTRAINT unique_candle UNIQUE (symbol_id, interval, open_time)
);

CREATE INDEX idx_candles_time ON trading.price_candles USING BRIN (open_time);

CREATE TABLE trading.price_ticks (
    symbol_id       VARCHAR(20) COLLATE "C" NOT NULL,
    trade_id        BIGINT NOT NULL,
    price           DECIMAL(20, 8) NOT NULL,
    quantity        DECIMAL(20, 8) NOT NULL,
    timestamp       TIMESTAMPTZ NOT NULL,
    is_buyer_maker  BOOLEAN,

    CONSTRAINT pk_price_ticks PRIMARY KEY (symbol_id, timestamp, trade_id),
    CONSTRAINT chk_tick_values CHECK (trade_id >= 0 AND price >= 0 AND quantity >= 0)
) PARTITION BY RANGE (timestamp);

-- No idx_ticks_symbol_time: the primary key (symbol_id, timestamp, trade_id) serves "ticks of a
-- symbol in a time range, newest first" by itself (a backward index scan), and every index costs
-- the hottest insert path dearly (see the measurements in the header).

-- Creates the partition trading.price_ticks_YYYYMMDD holding [day 00:00 UTC, day+1 00:00 UTC) if
-- it does not exist yet; returns whether it created it. The writer calls it for every day a batch
-- spans (replayed trades may be years old) and ahead for the coming days, in its own short
-- transaction: creating a partition locks the parent table until commit.
-- Idempotent and safe under concurrency: a racing creator makes CREATE TABLE fail with
-- duplicate_table (or a unique violation in the catalogs), which means the partition now exists.
CREATE FUNCTION trading.ensure_tick_partition(day date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    part text := 'price_ticks_' || to_char(day, 'YYYYMMDD');
BEGIN
    IF day IS NULL THEN
        RAISE EXCEPTION 'trading.ensure_tick_partition: day is NULL';
    END IF;
    IF to_regclass(format('trading.%I', part)) IS NOT NULL THEN
        RETURN false;
    END IF;
    BEGIN
        -- Bounds spelled with an explicit +00 so the session TimeZone cannot shift them.
        EXECUTE format(
            'CREATE TABLE trading.%I PARTITION OF trading.price_ticks FOR VALUES FROM (%L) TO (%L)',
            part,
            to_char(day, 'YYYY-MM-DD') || ' 00:00:00+00',
            to_char(day + 1, 'YYYY-MM-DD') || ' 00:00:00+00');
    EXCEPTION WHEN duplicate_table OR unique_violation THEN
        RETURN false;
    END;
    RETURN true;
END;
$$;
