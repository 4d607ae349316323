-- The revocation feed pages in the total order (revoked_xid, id): many
-- revocations can share one transaction id (a logout-all), so the id alone
-- cannot say where a page ended. revoked_at is included so a page and its
-- count are read from the index alone.
CREATE INDEX sessions_revocation_feed_idx ON sessions (revoked_xid, id) INCLUDE (revoked_at)
    WHERE revoked_xid IS NOT NULL;
-- The feed's long poll counts by revoked_xid: the new index's prefix serves it.
DROP INDEX sessions_revoked_xid_idx;

-- Why a session ended. A named constraint, so that a later reason is one
-- statement (NOT VALID: a wider list cannot reject a row the narrower one
-- admitted, so no scan under an exclusive lock is needed):
--   ALTER TABLE sessions DROP CONSTRAINT sessions_revoked_reason_check,
--     ADD CONSTRAINT sessions_revoked_reason_check CHECK (revoked_reason IN (…, 'new_reason')) NOT VALID;
-- `RevocationReason::ALL` in auth-server/src/db/models.rs must list the same
-- reasons (a test checks that the database accepts every one).
ALTER TABLE sessions DROP CONSTRAINT sessions_revoked_reason_check,
    ADD CONSTRAINT sessions_revoked_reason_check CHECK (revoked_reason IN (
        'logout', 'logout_all', 'session_deleted', 'reuse_detected',
        -- MAX_SESSIONS_PER_USER: the oldest live session gave way to a new login.
        'session_evicted'
    )) NOT VALID;
