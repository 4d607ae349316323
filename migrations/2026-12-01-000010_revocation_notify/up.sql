-- Revocations are pushed to every auth replica: the transaction that
-- revokes a session also sends a NOTIFY on `revocations`, delivered when it
-- commits (and never if it rolls back). Each replica LISTENs on one
-- connection of its own and wakes the feed's held polls at once. The payload
-- is empty: the feed's cursor stays the source of truth, and PostgreSQL
-- folds identical notifications of one transaction into one, so a
-- logout-all sends one however many sessions it ends. A trigger rather than
-- a statement in each revoking path: every path that sets `revoked_xid`
-- (there are several, and more to come) notifies without knowing it.
CREATE FUNCTION notify_revocation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('revocations', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER sessions_notify_revocation
    AFTER UPDATE OF revoked_xid ON sessions
    FOR EACH ROW
    WHEN (OLD.revoked_xid IS NULL AND NEW.revoked_xid IS NOT NULL)
    EXECUTE FUNCTION notify_revocation();
