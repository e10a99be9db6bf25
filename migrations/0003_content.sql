-- Why: Phase 1 keeps crawled articles in PostgreSQL as JSONB (seed "Articles (Phase 1 with
-- JSONB)"); the content pipeline writes them here until they move to MongoDB in Phase 2.
--
-- Changes from the seed, and why:
--  * url is NOT UNIQUE by itself: a B-tree entry is limited to about 2.7 kB, so one long URL
--    (tracking parameters) would make the insert fail with "index row size exceeds maximum".
--    Deduplication is on url_hash (SHA-256 of the URL, constant size), which stays UNIQUE; use
--    ON CONFLICT (url_hash).
--  * idx_articles_url_hash is not created: the UNIQUE constraint on url_hash already is that index.
--  * url_hash is checked to be 64 lower-case hex digits so two spellings of one hash cannot both
--    be inserted.

CREATE SCHEMA IF NOT EXISTS content;

CREATE TABLE content.articles (
    id              UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    url             TEXT NOT NULL,
    url_hash        VARCHAR(64) NOT NULL UNIQUE,  -- SHA-256 for dedup
    title           TEXT NOT NULL,
    body            TEXT,
    source_name     VARCHAR(100) NOT NULL,
    published_at    TIMESTAMPTZ,
    crawled_at      TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    raw_data        JSONB,  -- Raw HTML, metadata
    symbols         VARCHAR(20)[] DEFAULT '{}',
    status          VARCHAR(20) DEFAULT 'RAW',

    CONSTRAINT chk_status CHECK (status IN ('RAW', 'NORMALIZED', 'ANALYZED', 'FAILED')),
    CONSTRAINT chk_url_hash CHECK (url_hash ~ '^[0-9a-f]{64}$')
);

CREATE INDEX idx_articles_source ON content.articles(source_name);
CREATE INDEX idx_articles_published ON content.articles(published_at DESC);
CREATE INDEX idx_articles_symbols ON content.articles USING GIN(symbols);
CREATE INDEX idx_articles_status ON content.articles(status);
