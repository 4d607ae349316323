-- Passkeys (WebAuthn): a user's credentials, the ceremonies in flight, and
-- which passkey a session signed in with (removing the passkey ends it).

-- A registered credential. `credential` is webauthn-rs's `Passkey` (the
-- public key, its algorithm, the signature counter): nothing in it signs
-- or proves anything alone. `counter` is the last signature counter seen;
-- one that goes backwards is refused (a cloned authenticator).
CREATE TABLE passkeys (
    id            UUID        PRIMARY KEY,
    user_id       UUID        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id BYTEA       NOT NULL UNIQUE CHECK (length(credential_id) <= 1023),
    name          TEXT        NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    credential    JSONB       NOT NULL,
    counter       BIGINT      NOT NULL DEFAULT 0 CHECK (counter >= 0),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at  TIMESTAMPTZ
);
CREATE INDEX passkeys_user_idx ON passkeys (user_id, created_at);

-- A ceremony between its start and its finish: single use, 5 minutes, on
-- any replica. `state` is webauthn-rs's server-side state (the challenge
-- and what the finish must check); `user_id` is whose ceremony it is
-- (NULL for a passkey sign-in, where the authenticator names the user).
CREATE TABLE webauthn_challenges (
    id         UUID        PRIMARY KEY,
    purpose    TEXT        NOT NULL CHECK (purpose IN ('register', 'login', 'second_factor', 'reauthenticate')),
    user_id    UUID        REFERENCES users (id) ON DELETE CASCADE,
    state      JSONB       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);
CREATE INDEX webauthn_challenges_expires_idx ON webauthn_challenges (expires_at);

-- The passkey a session signed in with (alone or as its second factor).
-- Indexed, but no rotation ever sets it: rotations stay heap-only.
ALTER TABLE sessions ADD COLUMN passkey_id UUID;
CREATE INDEX sessions_passkey_idx ON sessions (passkey_id) WHERE passkey_id IS NOT NULL;

ALTER TABLE sessions DROP CONSTRAINT sessions_revoked_reason_check;
ALTER TABLE sessions ADD CONSTRAINT sessions_revoked_reason_check CHECK (revoked_reason IN (
    'logout', 'logout_all', 'session_deleted', 'reuse_detected', 'session_evicted',
    'password_changed', 'password_reset', 'user_disabled', 'mfa_reset',
    'passkey_removed')) NOT VALID;
