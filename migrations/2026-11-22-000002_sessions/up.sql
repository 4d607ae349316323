CREATE TABLE sessions (
    id             UUID        PRIMARY KEY,
    user_id        UUID        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Absolute lifetime: no rotation ever moves it.
    expires_at     TIMESTAMPTZ NOT NULL,
    revoked_at     TIMESTAMPTZ,
    revoked_reason TEXT CHECK (revoked_reason IN ('logout', 'logout_all', 'session_deleted', 'reuse_detected')),
    user_agent     TEXT CHECK (length(user_agent) <= 512),
    client_ip      TEXT CHECK (length(client_ip) <= 64),
    CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL))
);

-- A user's live sessions: the sessions list and logout-all.
CREATE INDEX sessions_user_live_idx ON sessions (user_id, created_at) WHERE revoked_at IS NULL;
-- The revocation feed read by resource APIs, newest first or after a cursor.
CREATE INDEX sessions_revoked_at_idx ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
-- The janitor's sweep of sessions past retention.
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
