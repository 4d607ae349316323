-- The older list has no room for evictions: they read as deletions.
UPDATE sessions SET revoked_reason = 'session_deleted' WHERE revoked_reason = 'session_evicted';
ALTER TABLE sessions DROP CONSTRAINT sessions_revoked_reason_check,
    ADD CONSTRAINT sessions_revoked_reason_check CHECK (revoked_reason IN (
        'logout', 'logout_all', 'session_deleted', 'reuse_detected'
    ));

CREATE INDEX sessions_revoked_xid_idx ON sessions (revoked_xid) WHERE revoked_xid IS NOT NULL;
DROP INDEX sessions_revocation_feed_idx;
