-- Failed logins, counted in PostgreSQL so that every replica sees the same
-- counts (one atomic statement per failure; see auth-server's
-- `login_throttle.rs`). A bucket is one thing being counted: its `scope`
-- says what (`login_client`: one client's failures for one account;
-- `login_strangers`: the failures of every client an account has not seen
-- succeed), its `key` which one. Keys hold an HMAC of the normalised
-- e-mail, never the address, and the client's IPv4 address or IPv6 /64.
CREATE TABLE failure_buckets (
    scope               TEXT        NOT NULL CHECK (length(scope) <= 32),
    key                 TEXT        NOT NULL CHECK (length(key) <= 160),
    failures            INTEGER     NOT NULL CHECK (failures > 0),
    -- The first failure of the current run; a bucket empties once its
    -- window has passed without a failure.
    window_start        TIMESTAMPTZ NOT NULL,
    last_failure_at     TIMESTAMPTZ NOT NULL,
    -- The failure before the last: what the bucket said when the last one
    -- came, so a guess that raced past the throttle can be recognised.
    previous_failure_at TIMESTAMPTZ,
    PRIMARY KEY (scope, key)
);

-- The janitor's sweep of buckets whose window has passed.
CREATE INDEX failure_buckets_last_failure_at_idx ON failure_buckets (last_failure_at);

-- Clients (IPv4 address or IPv6 /64) that have logged in to an account:
-- failures of strangers never slow these down.
CREATE TABLE known_login_clients (
    account_key     BYTEA       NOT NULL CHECK (length(account_key) = 32),
    client_key      TEXT        NOT NULL CHECK (length(client_key) <= 64),
    last_success_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (account_key, client_key)
);

-- The janitor's sweep of clients not seen for a long time.
CREATE INDEX known_login_clients_last_success_at_idx ON known_login_clients (last_success_at);
