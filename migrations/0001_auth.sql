-- Why: accounts, preferences and watchlists (seed "Users & Authentication"). tradepipe itself does
-- not use them yet, but the platform's PostgreSQL schema is created in one place so every service
-- sees the same, versioned layout.
--
-- Changes from the seed:
--  * idx_users_email is not created: the UNIQUE constraint on email already builds exactly that
--    B-tree, a second one would only double the write cost.
--  * updated_at is maintained by a trigger; a DEFAULT only covers the INSERT.
--  * display_name etc. unchanged. gen_random_uuid() is built in since PostgreSQL 13.

CREATE SCHEMA IF NOT EXISTS auth;

-- Shared by every table with an updated_at column (auth, trading, content).
CREATE FUNCTION public.touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TABLE auth.users (
    id              UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    email           VARCHAR(255) NOT NULL UNIQUE,
    password_hash   VARCHAR(255) NOT NULL,
    display_name    VARCHAR(100),
    role            VARCHAR(20) NOT NULL DEFAULT 'TRADER',
    email_verified  BOOLEAN DEFAULT FALSE,
    is_active       BOOLEAN DEFAULT TRUE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    last_login_at   TIMESTAMPTZ,

    CONSTRAINT chk_role CHECK (role IN ('TRADER', 'ANALYST', 'ADMIN'))
);

CREATE TABLE auth.user_preferences (
    id               UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id          UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
    theme            VARCHAR(20) DEFAULT 'dark',
    default_symbol   VARCHAR(20) DEFAULT 'BTCUSDT',
    default_interval VARCHAR(10) DEFAULT '1h',
    timezone         VARCHAR(50) DEFAULT 'UTC',
    notifications    JSONB DEFAULT '{}',
    created_at       TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT NOW(),

    CONSTRAINT unique_user_prefs UNIQUE (user_id)
);

CREATE TABLE auth.watchlists (
    id              UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id         UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
    name            VARCHAR(100) NOT NULL,
    symbols         VARCHAR(20)[] NOT NULL DEFAULT '{}',
    is_default      BOOLEAN DEFAULT FALSE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

CREATE INDEX idx_users_role ON auth.users(role);
CREATE INDEX idx_watchlists_user ON auth.watchlists(user_id);

CREATE TRIGGER trg_users_updated_at BEFORE UPDATE ON auth.users
    FOR EACH ROW EXECUTE FUNCTION public.touch_updated_at();
CREATE TRIGGER trg_user_preferences_updated_at BEFORE UPDATE ON auth.user_preferences
    FOR EACH ROW EXECUTE FUNCTION public.touch_updated_at();
CREATE TRIGGER trg_watchlists_updated_at BEFORE UPDATE ON auth.watchlists
    FOR EACH ROW EXECUTE FUNCTION public.touch_updated_at();
