DROP TABLE audit_events;
DROP TABLE mail_outbox;
DROP TABLE email_tokens;
ALTER TABLE sessions DROP CONSTRAINT sessions_revoked_reason_check;
ALTER TABLE sessions ADD CONSTRAINT sessions_revoked_reason_check CHECK (revoked_reason IN (
    'logout', 'logout_all', 'session_deleted', 'reuse_detected'));
ALTER TABLE users DROP COLUMN email_verified;
