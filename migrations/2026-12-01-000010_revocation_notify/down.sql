DROP TRIGGER sessions_notify_revocation ON sessions;
DROP FUNCTION notify_revocation();
