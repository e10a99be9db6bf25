-- Why: trading.price_candles becomes partitioned by RANGE on open_time, one partition per UTC
-- month (trading.price_candles_YYYYMM), as the seed plans for phase 3. Retention then drops a
-- month that is past every candle policy's age as a whole table (archived first) instead of
-- DELETEing it row by row: no dead rows, no vacuum debt, no index bloat. Existing rows are moved
-- in this migration, every column kept as it was (id included), and the count is checked.
--
-- Changes from the seed (and from 0002/0004), and why:
--  * The primary key is (id, open_time), not id alone: a unique constraint on a partitioned table
--    must contain the partition key (each partition enforces it on its own rows). id stays, with
--    the same sequence, so every stored id and every id handed out later is what it would have
--    been; what is lost is only the database's guarantee that an id is unique across months
--    (nothing writes an explicit id: the writer's upsert and the seed's INSERT take the default).
--    What reads id: retention, which identifies an archived row version by key and xmin, and now
--    by (id, open_time), the whole key; and archives/backups, which keep it as data. No query of
--    the daemon looks a candle up by id. Dropping id (as 0002 did for ticks) was not chosen: it
--    would change the rows the archive and an operator's tools see.
--  * unique_candle (symbol_id, interval, open_time) already contains open_time and stays as it
--    is: the writer's ON CONFLICT keeps deduplicating on it. The CHECKs and the foreign key to
--    trading.symbols are declared on the parent, so every partition has them.
--  * idx_candles_time (BRIN) and idx_candles_covering (0004) are declared on the parent: each
--    partition gets its own.
--  * A DEFAULT partition (trading.price_candles_default) takes a candle of any time whose month
--    has no partition yet: a historical backfill, an operator's INSERT following the seed's DDL,
--    a far-future typo. Nothing is refused for want of a partition.
--  * trading.ensure_candle_partition(month) creates a month: a standalone table with a CHECK
--    matching the bounds, the month's rows moved out of the DEFAULT partition (PostgreSQL refuses
--    to attach a range the default holds rows of), then ATTACH. ATTACH takes SHARE UPDATE
--    EXCLUSIVE on the parent (inserts and reads go on) and ACCESS EXCLUSIVE on the default
--    partition for the move, which only readers that cannot prune the default wait for (the
--    writer inserts into months that exist; src/store/postgres/candle_partitions.rs creates them
--    ahead and for every month a batch writes, under a lock_timeout). Operators call it too.
--  * Because of the DEFAULT partition, a month cannot be detached CONCURRENTLY (PostgreSQL
--    refuses it when a default partition exists): retention's plain DETACH takes ACCESS EXCLUSIVE
--    on the parent for a catalog-only change, bounded by a short lock_timeout, once per dropped
--    month. The alternative, no default and months created on demand by the writer only, would
--    make an operator's INSERT into a month without a partition fail.
--  * trading.symbol_summary (0004) reads price_candles: it is dropped and created again, the
--    same definition, with its data.
--
-- Running it: one transaction holding ACCESS EXCLUSIVE on price_candles while it copies every
-- row (stop the daemon first; docs/BENCHMARKS.md has the time per million rows). A failure
-- anywhere rolls it all back.

DROP MATERIALIZED VIEW trading.symbol_summary;

-- The old table steps aside (its indexes go with it before the new ones take their names); its
-- id sequence stays, for the new table.
ALTER TABLE trading.price_candles RENAME TO price_candles_0006;
ALTER SEQUENCE trading.price_candles_id_seq OWNED BY NONE;

CREATE TABLE trading.price_candles (
    id              BIGINT NOT NULL DEFAULT nextval('trading.price_candles_id_seq'),
    symbol_id       VARCHAR(20) NOT NULL,
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
    first_trade_id  BIGINT,
    last_trade_id   BIGINT,
    is_closed       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT NOW(),

    CONSTRAINT chk_interval CHECK (interval IN ('1m', '5m', '15m', '30m', '1h', '4h', '1d', '1w')),
    CONSTRAINT chk_candle_time CHECK (close_time > open_time),
    CONSTRAINT chk_candle_ohlc CHECK (low <= open AND low <= close AND high >= open AND high >= close),
    CONSTRAINT chk_candle_volume CHECK (volume >= 0 AND quote_volume >= 0 AND trade_count >= 0),
    CONSTRAINT chk_candle_trade_ids CHECK (
        (first_trade_id IS NULL) = (last_trade_id IS NULL)
        AND (first_trade_id IS NULL OR first_trade_id <= last_trade_id))
) PARTITION BY RANGE (open_time);
-- The keys, the foreign key and the indexes are added after the rows are in (below): one bulk
-- build and one validating join per partition instead of per-row index inserts and checks.

ALTER SEQUENCE trading.price_candles_id_seq OWNED BY trading.price_candles.id;

CREATE TABLE trading.price_candles_default PARTITION OF trading.price_candles DEFAULT;

-- Creates the partition trading.price_candles_YYYYMM holding [month 00:00 UTC, next month 00:00
-- UTC) of the month `month` falls in, if it does not exist yet; returns whether it created it.
-- Rows of that month in the DEFAULT partition move into it, in the same transaction. Run it in a
-- transaction of its own (with a lock_timeout, as the daemon does): the locks it takes are held
-- until commit. A racing creator makes it fail with duplicate_table (or a catalog unique
-- violation), which means the partition now exists.
CREATE FUNCTION trading.ensure_candle_partition(month date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    first date;
    part text;
    lo text;
    hi text;
    columns text := 'id, symbol_id, interval, open_time, close_time, open, high, low, close, '
        'volume, quote_volume, trade_count, first_trade_id, last_trade_id, is_closed, '
        'created_at, updated_at';
BEGIN
    IF month IS NULL THEN
        RAISE EXCEPTION 'trading.ensure_candle_partition: month is NULL';
    END IF;
    first := date_trunc('month', month)::date;
    part := 'price_candles_' || to_char(first, 'YYYYMM');
    IF to_regclass(format('trading.%I', part)) IS NOT NULL THEN
        RETURN false;
    END IF;
    -- Bounds spelled with an explicit +00 so the session TimeZone cannot shift them.
    lo := to_char(first, 'YYYY-MM-DD') || ' 00:00:00+00';
    hi := to_char((first + interval '1 month')::date, 'YYYY-MM-DD') || ' 00:00:00+00';
    EXECUTE format(
        'CREATE TABLE trading.%I (LIKE trading.price_candles INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)',
        part);
    -- Lets ATTACH skip scanning the new table for rows outside the bounds.
    EXECUTE format('ALTER TABLE trading.%I ADD CONSTRAINT bounds CHECK (open_time >= %L AND open_time < %L)',
        part, lo, hi);
    -- In the order ATTACH takes them (parent, then default), so no deadlock with another creator.
    LOCK TABLE ONLY trading.price_candles IN SHARE UPDATE EXCLUSIVE MODE;
    LOCK TABLE trading.price_candles_default IN ACCESS EXCLUSIVE MODE;
    EXECUTE format(
        'WITH moved AS (DELETE FROM trading.price_candles_default WHERE open_time >= %L AND open_time < %L RETURNING %s) '
        'INSERT INTO trading.%I (%s) SELECT %s FROM moved',
        lo, hi, columns, part, columns, columns);
    EXECUTE format('ALTER TABLE trading.price_candles ATTACH PARTITION trading.%I FOR VALUES FROM (%L) TO (%L)',
        part, lo, hi);
    EXECUTE format('ALTER TABLE trading.%I DROP CONSTRAINT bounds', part);
    RETURN true;
END;
$$;

-- Every month that has candles gets its partition; the DEFAULT partition starts empty.
SELECT count(trading.ensure_candle_partition(m))
FROM (SELECT DISTINCT date_trunc('month', open_time AT TIME ZONE 'UTC')::date AS m
      FROM trading.price_candles_0006) months;

INSERT INTO trading.price_candles (id, symbol_id, interval, open_time, close_time, open, high, low,
    close, volume, quote_volume, trade_count, first_trade_id, last_trade_id, is_closed, created_at,
    updated_at)
SELECT id, symbol_id, interval, open_time, close_time, open, high, low, close, volume,
       quote_volume, trade_count, first_trade_id, last_trade_id, is_closed, created_at, updated_at
FROM trading.price_candles_0006;

DO $$
DECLARE
    before bigint;
    after bigint;
    lost bigint;
BEGIN
    SELECT count(*) INTO before FROM trading.price_candles_0006;
    SELECT count(*) INTO after FROM trading.price_candles;
    IF before <> after THEN
        RAISE EXCEPTION 'candle partitioning: % rows before, % after', before, after;
    END IF;
    -- Field by field (row comparison of the whole row), not just the count.
    SELECT count(*) INTO lost FROM (
        SELECT id, symbol_id, interval, open_time, close_time, open, high, low, close, volume,
               quote_volume, trade_count, first_trade_id, last_trade_id, is_closed, created_at,
               updated_at FROM trading.price_candles_0006
        EXCEPT ALL
        SELECT id, symbol_id, interval, open_time, close_time, open, high, low, close, volume,
               quote_volume, trade_count, first_trade_id, last_trade_id, is_closed, created_at,
               updated_at FROM trading.price_candles) d;
    IF lost <> 0 THEN
        RAISE EXCEPTION 'candle partitioning: % rows differ after the move', lost;
    END IF;
END;
$$;

DROP TABLE trading.price_candles_0006;

ALTER TABLE trading.price_candles
    ADD CONSTRAINT price_candles_pkey PRIMARY KEY (id, open_time),
    ADD CONSTRAINT unique_candle UNIQUE (symbol_id, interval, open_time),
    ADD CONSTRAINT price_candles_symbol_id_fkey FOREIGN KEY (symbol_id) REFERENCES trading.symbols(id);
CREATE INDEX idx_candles_time ON trading.price_candles USING BRIN (open_time);
CREATE INDEX idx_candles_covering ON trading.price_candles (
    symbol_id, interval, open_time DESC
) INCLUDE (open, high, low, close, volume);

-- The current month, now with the indexes (a partition made by LIKE copies them).
SELECT trading.ensure_candle_partition((now() AT TIME ZONE 'UTC')::date);

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
