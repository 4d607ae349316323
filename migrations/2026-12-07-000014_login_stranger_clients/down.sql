ALTER TABLE failure_buckets
    DROP CONSTRAINT failure_buckets_recent_in_step,
    DROP COLUMN recent_failures,
    DROP COLUMN recent_clients;
