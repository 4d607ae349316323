ALTER TABLE mail_outbox DROP CONSTRAINT mail_outbox_kind_check;
DELETE FROM mail_outbox WHERE kind NOT IN ('password_reset', 'email_verify');
ALTER TABLE mail_outbox ADD CONSTRAINT mail_outbox_kind_check CHECK (kind IN ('password_reset', 'email_verify'));
ALTER TABLE sessions DROP CONSTRAINT sessions_revoked_reason_check;
UPDATE sessions SET revoked_reason = 'user_disabled' WHERE revoked_reason = 'mfa_reset';
ALTER TABLE sessions ADD CONSTRAINT sessions_revoked_reason_check CHECK (revoked_reason IN (
    'logout', 'logout_all', 'session_deleted', 'reuse_detected', 'session_evicted',
    'password_changed', 'password_reset', 'user_disabled')) NOT VALID;
ALTER TABLE audit_events DROP CONSTRAINT audit_events_type_check;
DELETE FROM audit_events WHERE type IN ('mfa_enabled', 'mfa_disabled', 'recovery_codes_regenerated',
    'recovery_code_used', 'mfa_failed', 'mfa_reset', 'passkey_added', 'passkey_removed',
    'passkey_clone_suspected', 'reauthenticated');
ALTER TABLE audit_events ADD CONSTRAINT audit_events_type_check CHECK (type IN (
    'register', 'login', 'login_failed', 'refresh_reuse_detected', 'logout',
    'logout_all', 'session_deleted', 'session_evicted', 'password_changed',
    'password_reset_requested', 'password_reset', 'email_verified',
    'user_disabled', 'user_enabled', 'user_deleted', 'roles_changed')) NOT VALID;
DROP TABLE mfa_tokens;
DROP TABLE recovery_codes;
DROP TABLE totp_factors;
ALTER TABLE sessions DROP COLUMN auth_time, DROP COLUMN amr;
