-- Why: the news pipeline's document store, PostgreSQL backend (the default; seed "Articles
-- (Phase 1 with JSONB)" and the "MongoDB Collections" news_sources / raw_articles / articles,
-- mapped to tables). The same DocumentStore trait is implemented on MongoDB; one conformance test
-- suite holds both to the same behaviour, so the shapes here mirror the Mongo documents.
--
-- content.raw_articles is also the work queue of the normalizer: a page is claimed
-- (PENDING -> PROCESSING with lease_until) with FOR UPDATE SKIP LOCKED, and a claim whose lease ran
-- out (the worker died) is handed out again.
--
-- Departures from the seed, and why:
--  * Sources are keyed by name (the config file names them); raw_articles.source_name replaces the
--    seed's source_id ObjectId. There is no foreign key to news_sources: MongoDB cannot enforce
--    one, and the two backends must accept the same writes.
--  * raw_articles.url_hash is VARCHAR(64) with the same 64-lower-hex CHECK as
--    content.articles.url_hash (0003), not CHAR(64): bpchar compared with a text parameter
--    (`url_hash = ANY($1::text[])`, what a driver binds) is resolved as text = text, which cannot
--    use the bpchar unique index. The CHECK already fixes the length, so nothing is lost.
--  * No 90-day TTL on raw_articles here (MongoDB has its TTL index): PostgreSQL has no TTL, and
--    a retention job is a separate decision. articles.raw_article_id is ON DELETE SET NULL so such
--    a job never has to touch articles; the article document keeps the id, as in MongoDB.
--  * content.articles (0003) now holds normalized articles: the whole Article is `doc` (what the
--    store returns, so every field round-trips without a column each), and the seed's columns
--    stay filled as projections of it for SQL queries and indexes: url, url_hash (unique, the
--    dedup key: ON CONFLICT (url_hash)), title, body, source_name (= source.name), published_at,
--    crawled_at, symbols (GIN). The body is thus stored twice (column and doc); TOAST compresses
--    both, and article bodies are a few kB.
--  * The seed's `status` (RAW/NORMALIZED/ANALYZED/FAILED) described one row going through the
--    whole pipeline; raw pages now live in raw_articles, so a row here is at least NORMALIZED.
--    `status` becomes a generated column derived from analysis_status (PENDING/PROCESSING ->
--    NORMALIZED, COMPLETED -> ANALYZED, FAILED -> FAILED), so it keeps its meaning and can never
--    disagree with analysis_status. Nothing wrote content.articles before this migration, so
--    dropping and re-adding the column loses no data; its index is recreated.
--  * raw_data stays and stays NULL: the raw HTML is kept once, in raw_articles.
--  * Full-text search on title and body: a generated tsvector (title weight A, body weight B)
--    with a GIN index. Configuration 'english': the configured sources are English
--    (metadata.language defaults to "en"), stemming lets "surges" find "surge", and MongoDB's
--    text index also defaults to English, so both backends search alike. A generated column
--    needs one fixed configuration; per-article languages would need an immutable mapping
--    function and are not worth it while all sources are English. Only the first 100 000
--    characters of the body are indexed: a tsvector is limited to 1 MB, and an oversized page
--    must not make the insert fail.

CREATE TABLE content.news_sources (
    id                      UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name                    VARCHAR(100) NOT NULL UNIQUE,
    base_url                TEXT NOT NULL,
    feed_url                TEXT,
    type                    VARCHAR(10) NOT NULL,
    is_active               BOOLEAN NOT NULL DEFAULT TRUE,
    crawl_interval_minutes  INTEGER NOT NULL DEFAULT 15,
    selectors               JSONB NOT NULL DEFAULT '{}',
    rate_limit              JSONB NOT NULL DEFAULT '{}',
    metadata                JSONB NOT NULL DEFAULT '{}',
    last_crawled_at         TIMESTAMPTZ,
    created_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at              TIMESTAMPTZ NOT NULL DEFAULT now(),

    CONSTRAINT chk_news_sources_type CHECK (type IN ('RSS', 'HTML', 'API')),
    CONSTRAINT chk_news_sources_interval CHECK (crawl_interval_minutes > 0)
);

-- The seed's is_active and last_crawled_at indexes are covered by the compound one (leading
-- column) or not needed at this size (a handful of sources); the compound one answers "active
-- sources by crawl time", the only query the crawler makes.
CREATE INDEX idx_news_sources_active_crawled ON content.news_sources(is_active, last_crawled_at);

CREATE TRIGGER trg_news_sources_updated_at BEFORE UPDATE ON content.news_sources
    FOR EACH ROW EXECUTE FUNCTION public.touch_updated_at();

CREATE TABLE content.raw_articles (
    id                  UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    url                 TEXT NOT NULL,
    url_hash            VARCHAR(64) NOT NULL UNIQUE,
    source_name         VARCHAR(100) NOT NULL,
    raw_html            TEXT NOT NULL,
    response_headers    JSONB NOT NULL DEFAULT '{}',
    http_status         INTEGER NOT NULL,
    crawled_at          TIMESTAMPTZ NOT NULL,
    processing_status   VARCHAR(20) NOT NULL DEFAULT 'PENDING',
    retry_count         INTEGER NOT NULL DEFAULT 0,
    error_message       TEXT,
    feed_entry          JSONB,
    -- Set while PROCESSING: until then the claim is the worker's; after it anyone may claim it.
    lease_until         TIMESTAMPTZ,

    CONSTRAINT chk_raw_articles_status
        CHECK (processing_status IN ('PENDING', 'PROCESSING', 'COMPLETED', 'FAILED')),
    CONSTRAINT chk_raw_articles_url_hash CHECK (url_hash ~ '^[0-9a-f]{64}$'),
    -- 0 = no HTTP response was received (timeout, connection error, body over the size cap):
    -- such a page is stored FAILED with its error so it is neither lost nor refetched forever.
    CONSTRAINT chk_raw_articles_http_status CHECK (http_status = 0 OR http_status BETWEEN 100 AND 999),
    CONSTRAINT chk_raw_articles_retry_count CHECK (retry_count >= 0)
);

-- The claim query: PENDING (or expired PROCESSING) rows, oldest first.
CREATE INDEX idx_raw_articles_status_crawled ON content.raw_articles(processing_status, crawled_at);
CREATE INDEX idx_raw_articles_source ON content.raw_articles(source_name);

ALTER TABLE content.articles
    ADD COLUMN raw_article_id   UUID REFERENCES content.raw_articles(id) ON DELETE SET NULL,
    ADD COLUMN doc              JSONB NOT NULL,
    ADD COLUMN excerpt          TEXT NOT NULL DEFAULT '',
    ADD COLUMN language         VARCHAR(16),
    ADD COLUMN normalized_at    TIMESTAMPTZ,
    ADD COLUMN analysis_status  VARCHAR(20) NOT NULL DEFAULT 'PENDING',
    ADD COLUMN created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    ADD COLUMN updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    ADD CONSTRAINT chk_articles_analysis_status
        CHECK (analysis_status IN ('PENDING', 'PROCESSING', 'COMPLETED', 'FAILED'));

-- Dropping the column drops chk_status and idx_articles_status with it.
ALTER TABLE content.articles DROP COLUMN status;
ALTER TABLE content.articles
    ADD COLUMN status VARCHAR(20) GENERATED ALWAYS AS (
        CASE analysis_status
            WHEN 'COMPLETED' THEN 'ANALYZED'
            WHEN 'FAILED' THEN 'FAILED'
            ELSE 'NORMALIZED'
        END
    ) STORED,
    ADD COLUMN search TSVECTOR GENERATED ALWAYS AS (
        setweight(to_tsvector('english'::regconfig, title), 'A')
        || setweight(to_tsvector('english'::regconfig, left(coalesce(body, ''), 100000)), 'B')
    ) STORED;

CREATE INDEX idx_articles_status ON content.articles(status);
-- The analysis pipeline's queue: articles not yet analysed, oldest first.
CREATE INDEX idx_articles_analysis_status ON content.articles(analysis_status, crawled_at);
-- Needed by ON DELETE SET NULL (and to find the article of a raw page).
CREATE INDEX idx_articles_raw_article ON content.articles(raw_article_id);
CREATE INDEX idx_articles_search ON content.articles USING GIN(search);

CREATE TRIGGER trg_articles_updated_at BEFORE UPDATE ON content.articles
    FOR EACH ROW EXECUTE FUNCTION public.touch_updated_at();
