CREATE TABLE refresh_tokens (
    id           UUID        PRIMARY KEY,
    -- SHA-256 of the token. The token itself is never stored: it carries 256
    -- random bits, so a fast hash is enough to make a stolen table useless.
    token_hash   BYTEA       NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    session_id   UUID        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issued_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ NOT NULL,
    -- Consumed tokens stay until they expire, so a late replay is still
    -- recognised as reuse rather than as an unknown token.
    consumed_at  TIMESTAMPTZ,
    successor_id UUID        REFERENCES refresh_tokens (id) ON DELETE SET NULL,
    CHECK ((successor_id IS NULL) OR (consumed_at IS NOT NULL))
);

CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_expires_at_idx ON refresh_tokens (expires_at);
-- ON DELETE SET NULL looks predecessors up by successor.
CREATE INDEX refresh_tokens_successor_id_idx ON refresh_tokens (successor_id) WHERE successor_id IS NOT NULL;
