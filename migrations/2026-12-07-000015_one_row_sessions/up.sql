-- One row per session: a session's refresh token is no longer a row of its
-- own. The token carries the session's id and a generation, authenticated
-- by a MAC under the server's token key over them and the session's random
-- `token_secret` (see auth-server's `refresh_token.rs`): neither the key
-- alone nor a copy of this table can mint one. A rotation updates this one
-- row in one statement (generation + 1), so storage stays flat however many
-- times a session rotates.
--
-- `refresh_tokens` is no longer written for new sessions. Tokens issued
-- before this migration keep working until they expire: rotating one
-- converts its session to the new form (a generation, a secret). The
-- janitor deletes their rows as they expire; a later release drops the
-- table.
ALTER TABLE sessions
    -- 32 random bytes per session; NULL only for sessions created before
    -- this migration that have not rotated since.
    ADD COLUMN token_secret     BYTEA CHECK (length(token_secret) = 32),
    -- The live token's generation (0: the session still has an old-style
    -- token in refresh_tokens).
    ADD COLUMN generation       BIGINT NOT NULL DEFAULT 0 CHECK (generation >= 0),
    -- The id of the token key that minted the live generation: a retry
    -- within the grace is sent exactly that token again.
    ADD COLUMN token_key        SMALLINT CHECK (token_key BETWEEN 0 AND 255),
    ADD COLUMN token_expires_at TIMESTAMPTZ,
    -- When each of the last generations was consumed, newest first:
    -- consumed_at[1] is generation - 1's. Eight are kept (the rules need
    -- at least four); an older token is judged consumed long ago.
    ADD COLUMN consumed_at      TIMESTAMPTZ[] NOT NULL DEFAULT '{}'
        CHECK (cardinality(consumed_at) <= 8),
    ADD CONSTRAINT sessions_token_state_check CHECK (
        generation = 0 OR (token_secret IS NOT NULL AND token_key IS NOT NULL
                           AND token_expires_at IS NOT NULL));
-- Every rotation rewrites the row: room on each page for the new version,
-- so the update is heap-only (HOT). None of the columns a rotation sets
-- (generation, consumed_at, token_key, token_expires_at, last_used_at,
-- user_agent, client_ip) may ever be indexed, or it stops being HOT.
ALTER TABLE sessions SET (fillfactor = 80);
