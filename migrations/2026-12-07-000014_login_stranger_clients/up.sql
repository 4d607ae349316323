-- The distinct clients behind an account's strangers' failures (the
-- `login_strangers` scope only; NULL elsewhere): the client keys (an IPv4
-- address or an IPv6 /64) of the most recent few, newest first, and when
-- each last failed, in step. Strangers share a delay only while several of
-- them fail within the window (see auth-server's `login_throttle.rs`); the
-- arrays are capped there, so a row stays small however many clients fail.
ALTER TABLE failure_buckets
    ADD COLUMN recent_clients  TEXT[]        CHECK (cardinality(recent_clients) <= 8),
    ADD COLUMN recent_failures TIMESTAMPTZ[] CHECK (cardinality(recent_failures) <= 8),
    ADD CONSTRAINT failure_buckets_recent_in_step
        CHECK (cardinality(recent_clients) = cardinality(recent_failures));
