DROP TRIGGER feed_events_notify ON feed_events;
DROP TABLE feed_events;
UPDATE sessions SET revoked_reason = 'logout_all' WHERE revoked_reason = 'user_disabled';
ALTER TABLE sessions DROP CONSTRAINT sessions_revoked_reason_check;
ALTER TABLE sessions ADD CONSTRAINT sessions_revoked_reason_check CHECK (revoked_reason IN (
    'logout', 'logout_all', 'session_deleted', 'reuse_detected', 'session_evicted',
    'password_changed', 'password_reset'));
DROP INDEX users_admins_idx;
ALTER TABLE users DROP COLUMN last_login_at, DROP COLUMN roles_version, DROP COLUMN disabled_at;
