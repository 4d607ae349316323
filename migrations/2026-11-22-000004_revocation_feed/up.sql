-- The revocation feed's cursor. Each revocation records the id of the
-- transaction that made it (pg_current_xact_id()). A reader advances its
-- cursor only to its snapshot's xmin, below which every transaction has
-- finished, so a revocation that commits late is never skipped the way a
-- timestamp or sequence cursor would skip it.
ALTER TABLE sessions ADD COLUMN revoked_xid BIGINT;
UPDATE sessions SET revoked_xid = 0 WHERE revoked_at IS NOT NULL;
ALTER TABLE sessions ADD CONSTRAINT sessions_revoked_xid_check CHECK ((revoked_at IS NULL) = (revoked_xid IS NULL));
CREATE INDEX sessions_revoked_xid_idx ON sessions (revoked_xid) WHERE revoked_xid IS NOT NULL;
