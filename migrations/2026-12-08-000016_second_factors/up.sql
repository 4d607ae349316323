-- Second factors: how each session's user proved who they are, TOTP
-- authenticators, recovery codes, and the short-lived token that carries a
-- login from its password to its second factor.

-- The session's assurance, in its one row. `amr` holds RFC 8176 values
-- (the access token's `acr` is derived from them, never stored beside
-- them); `auth_time` is when a factor was last proven in the session
-- (NULL: at `created_at`, for sessions from before this migration, which
-- all signed in with a password). Neither is indexed: a rotation stays a
-- heap-only update.
ALTER TABLE sessions
    ADD COLUMN amr       TEXT[]      NOT NULL DEFAULT '{pwd}' CHECK (cardinality(amr) <= 8),
    ADD COLUMN auth_time TIMESTAMPTZ;

-- One TOTP authenticator per user: pending (`confirmed_at` NULL) from
-- enrolment until a first code confirms it. The secret is sealed
-- (ChaCha20-Poly1305) under a key derived from the server's token key
-- `seal_key` names, bound to the user's id: a copy of this table alone
-- yields no code. `last_step` is the last 30-second step a code was
-- accepted for: a code (or an older one) is never accepted twice, on any
-- replica.
CREATE TABLE totp_factors (
    user_id      UUID        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret       BYTEA       NOT NULL CHECK (length(secret) <= 128),
    seal_key     SMALLINT    NOT NULL CHECK (seal_key BETWEEN 0 AND 255),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    confirmed_at TIMESTAMPTZ,
    last_step    BIGINT
);

-- Ten at a time, SHA-256 of the code (80 random bits: no dictionary to try
-- against a dump), single use.
CREATE TABLE recovery_codes (
    id         UUID        PRIMARY KEY,
    user_id    UUID        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  BYTEA       NOT NULL CHECK (length(code_hash) = 32),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    used_at    TIMESTAMPTZ,
    UNIQUE (user_id, code_hash)
);

-- A login between its correct password and its second factor: 256 random
-- bits, only the hash stored; 5 tries, one success, MFA_TOKEN_TTL.
-- `password_check` is SHA-256 of the password hash that was verified: a
-- password changed or reset meanwhile makes the token useless, as it
-- defeats a login already in flight.
CREATE TABLE mfa_tokens (
    id             UUID        PRIMARY KEY,
    token_hash     BYTEA       NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    user_id        UUID        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    password_check BYTEA       NOT NULL CHECK (length(password_check) = 32),
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at     TIMESTAMPTZ NOT NULL,
    tries          INTEGER     NOT NULL DEFAULT 0 CHECK (tries >= 0),
    used_at        TIMESTAMPTZ
);
CREATE INDEX mfa_tokens_user_idx ON mfa_tokens (user_id);
CREATE INDEX mfa_tokens_expires_idx ON mfa_tokens (expires_at);

ALTER TABLE audit_events DROP CONSTRAINT audit_events_type_check;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_type_check CHECK (type IN (
    'register', 'login', 'login_failed', 'refresh_reuse_detected', 'logout',
    'logout_all', 'session_deleted', 'session_evicted', 'password_changed',
    'password_reset_requested', 'password_reset', 'email_verified',
    'user_disabled', 'user_enabled', 'user_deleted', 'roles_changed',
    'mfa_enabled', 'mfa_disabled', 'recovery_codes_regenerated',
    'recovery_code_used', 'mfa_failed', 'mfa_reset', 'passkey_added',
    'passkey_removed', 'passkey_clone_suspected', 'reauthenticated')) NOT VALID;

ALTER TABLE sessions DROP CONSTRAINT sessions_revoked_reason_check;
ALTER TABLE sessions ADD CONSTRAINT sessions_revoked_reason_check CHECK (revoked_reason IN (
    'logout', 'logout_all', 'session_deleted', 'reuse_detected', 'session_evicted',
    'password_changed', 'password_reset', 'user_disabled', 'mfa_reset')) NOT VALID;

-- Notices to the owner (a factor added or removed, a recovery code used)
-- go through the same queue as the mails with a link, with no token.
ALTER TABLE mail_outbox DROP CONSTRAINT mail_outbox_kind_check;
ALTER TABLE mail_outbox ADD CONSTRAINT mail_outbox_kind_check CHECK (kind IN (
    'password_reset', 'email_verify', 'factor_added', 'factor_removed',
    'recovery_code_used')) NOT VALID;
