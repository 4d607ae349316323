CREATE TABLE users (
    id            UUID        PRIMARY KEY,
    -- Stored trimmed and in lower case, so the plain unique constraint makes
    -- addresses unique regardless of case and lookups use the index directly.
    email         TEXT        NOT NULL UNIQUE CHECK (email = lower(email) AND length(email) <= 254),
    -- argon2id PHC string; never a plain password.
    password_hash TEXT        NOT NULL,
    roles         TEXT[]      NOT NULL DEFAULT '{}',
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
