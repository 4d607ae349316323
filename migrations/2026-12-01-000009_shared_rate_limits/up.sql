-- Per-client limits on login, register and the requests that send mail,
-- counted in PostgreSQL so that they hold across replicas (auth-server's
-- `db/rate_limits.rs`). One row per limit (`scope`) and client (`key`: an
-- IPv4 address or an IPv6 /64), holding the GCRA's theoretical arrival
-- time: every hit is one `INSERT ... ON CONFLICT DO UPDATE`, atomic on its
-- own; a refused hit leaves the row as it was (no write). A row whose `tat`
-- has passed says no more than no row at all: the janitor deletes it.
CREATE TABLE rate_buckets (
    scope   TEXT        NOT NULL CHECK (length(scope) <= 32),
    key     TEXT        NOT NULL CHECK (length(key) <= 64),
    tat     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scope, key)
) WITH (fillfactor = 70);
-- No index on `tat`: every hit rewrites it, and without one the rewrite
-- stays a HOT update; the janitor's sweep scans the (bounded) table instead.
