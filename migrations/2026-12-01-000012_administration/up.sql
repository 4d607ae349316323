-- Administration: disabled accounts, a per-user roles version that access
-- tokens carry (`rv`), the last login, and feed entries that survive the
-- rows they are about.

ALTER TABLE users
    -- A disabled user cannot log in or refresh; every session was revoked.
    ADD COLUMN disabled_at   TIMESTAMPTZ,
    -- Bumped by every change of roles. Access tokens carry the version they
    -- were issued under; the feed tells the APIs to refuse older ones.
    ADD COLUMN roles_version BIGINT      NOT NULL DEFAULT 0 CHECK (roles_version >= 0),
    ADD COLUMN last_login_at TIMESTAMPTZ;

-- The administration's user list pages in e-mail order (the unique index on
-- email serves it); enabled admins are counted for `last_admin`.
CREATE INDEX users_admins_idx ON users (id) WHERE 'admin' = ANY (roles) AND disabled_at IS NULL;

ALTER TABLE sessions DROP CONSTRAINT sessions_revoked_reason_check;
ALTER TABLE sessions ADD CONSTRAINT sessions_revoked_reason_check CHECK (revoked_reason IN (
    'logout', 'logout_all', 'session_deleted', 'reuse_detected', 'session_evicted',
    'password_changed', 'password_reset', 'user_disabled')) NOT VALID;

-- Revocation feed entries that are not a revoked session row: the sessions
-- of a deleted user (their rows go with the user's), and a user's roles
-- version (tokens of `user_id` with an older `rv` are refused; the largest
-- BIGINT refuses them all: a deleted user). The feed reads them together
-- with `sessions` in the one order `(xid, id)` (see
-- auth-server/src/db/revocations.rs); `xid` is the transaction that wrote
-- the row, as `sessions.revoked_xid`. No foreign key: they outlive the user.
CREATE TABLE feed_events (
    id            UUID        PRIMARY KEY,
    xid           BIGINT      NOT NULL DEFAULT pg_current_xact_id()::text::bigint,
    at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    user_id       UUID        NOT NULL,
    session_id    UUID,
    roles_version BIGINT,
    CHECK ((session_id IS NULL) <> (roles_version IS NULL))
);
CREATE INDEX feed_events_feed_idx ON feed_events (xid, id) INCLUDE (at);
-- The janitor's sweep once no token they are about can be valid.
CREATE INDEX feed_events_at_idx ON feed_events (at);

-- A deleted user's sessions and a change of roles reach other replicas'
-- held polls as revocations do (migration 000010): one notification when
-- the transaction commits.
CREATE TRIGGER feed_events_notify
    AFTER INSERT ON feed_events
    FOR EACH STATEMENT
    EXECUTE FUNCTION notify_revocation();
