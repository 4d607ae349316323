-- Accounts people can keep: verified addresses, e-mail tokens, the outbox of
-- mail waiting to go out, and the audit trail of security events.

ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT false;

-- Sessions now also end because the password changed or was reset, or (the
-- session cap) because a newer one evicted them.
ALTER TABLE sessions DROP CONSTRAINT sessions_revoked_reason_check;
ALTER TABLE sessions ADD CONSTRAINT sessions_revoked_reason_check CHECK (revoked_reason IN (
    'logout', 'logout_all', 'session_deleted', 'reuse_detected', 'session_evicted',
    'password_changed', 'password_reset'));

-- Reset and verification tokens. Only SHA-256 of the token is stored; the
-- token itself (256 bits from the CSPRNG) exists only in the mail, and a
-- retried mail carries a fresh one whose hash replaces this one.
CREATE TABLE email_tokens (
    id         UUID        PRIMARY KEY,
    user_id    UUID        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT        NOT NULL CHECK (purpose IN ('password_reset', 'email_verify')),
    -- The address the link went to: verifying proves this one, no other.
    email      TEXT        NOT NULL CHECK (length(email) <= 254),
    token_hash BYTEA       NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    -- Used, or killed by a newer request or a password change: single use.
    spent_at   TIMESTAMPTZ
);
CREATE INDEX email_tokens_user_live_idx ON email_tokens (user_id, purpose) WHERE spent_at IS NULL;
CREATE INDEX email_tokens_expires_at_idx ON email_tokens (expires_at);

-- Mail waiting to go out, so that no request waits for SMTP and nothing is
-- lost while the mail server is down. A row names what to send and to whom;
-- the worker mints its token (token_id) when it first takes the row, and a
-- fresh token for every later attempt: no row ever holds a usable link.
CREATE TABLE mail_outbox (
    id             UUID        PRIMARY KEY,
    kind           TEXT        NOT NULL CHECK (kind IN ('password_reset', 'email_verify')),
    recipient      TEXT        NOT NULL CHECK (length(recipient) <= 254),
    -- Known for verification mail from the start; for a reset, once minted.
    user_id        UUID        REFERENCES users (id) ON DELETE CASCADE,
    token_id       UUID        REFERENCES email_tokens (id) ON DELETE CASCADE,
    -- Who asked, for the audit event written when the token is minted.
    ip             TEXT        CHECK (length(ip) <= 64),
    user_agent     TEXT        CHECK (length(user_agent) <= 512),
    request_id     UUID,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- When a worker may take it next: now, after a backoff, or after another
    -- worker's lease on it runs out.
    due_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts       INTEGER     NOT NULL DEFAULT 0,
    last_error     TEXT        CHECK (length(last_error) <= 500),
    sent_at        TIMESTAMPTZ,
    dropped_at     TIMESTAMPTZ,
    dropped_reason TEXT        CHECK (length(dropped_reason) <= 100)
);
CREATE INDEX mail_outbox_due_idx ON mail_outbox (due_at) WHERE sent_at IS NULL AND dropped_at IS NULL;
-- The limits on outgoing mail per address and per account.
CREATE INDEX mail_outbox_recipient_idx ON mail_outbox (recipient, created_at);
CREATE INDEX mail_outbox_user_idx ON mail_outbox (user_id, created_at) WHERE user_id IS NOT NULL;
CREATE INDEX mail_outbox_token_idx ON mail_outbox (token_id) WHERE token_id IS NOT NULL;

-- Security events, each written in the transaction of the change it records.
-- No foreign key on user_id: events outlive the users they are about. Never a
-- token, a password or a hash.
CREATE TABLE audit_events (
    id         UUID        PRIMARY KEY,
    at         TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    type       TEXT        NOT NULL CHECK (type IN (
        'register', 'login', 'login_failed', 'refresh_reuse_detected', 'logout',
        'logout_all', 'session_deleted', 'session_evicted', 'password_changed',
        'password_reset_requested', 'password_reset', 'email_verified',
        'user_disabled', 'user_enabled', 'user_deleted', 'roles_changed')),
    -- The acting user; NULL for the CLI and the server itself.
    actor_id   UUID,
    user_id    UUID,
    session_id UUID,
    ip         TEXT        CHECK (length(ip) <= 64),
    user_agent TEXT        CHECK (length(user_agent) <= 512),
    request_id UUID
);
-- A user's events, newest first (GET /auth/events).
CREATE INDEX audit_events_user_idx ON audit_events (user_id, at DESC, id DESC);
-- All events newest first, and by type (the administration's audit query).
CREATE INDEX audit_events_at_idx ON audit_events (at DESC, id DESC);
CREATE INDEX audit_events_type_idx ON audit_events (type, at DESC, id DESC);
