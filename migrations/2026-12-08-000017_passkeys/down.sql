ALTER TABLE sessions DROP CONSTRAINT sessions_revoked_reason_check;
UPDATE sessions SET revoked_reason = 'session_deleted' WHERE revoked_reason = 'passkey_removed';
ALTER TABLE sessions ADD CONSTRAINT sessions_revoked_reason_check CHECK (revoked_reason IN (
    'logout', 'logout_all', 'session_deleted', 'reuse_detected', 'session_evicted',
    'password_changed', 'password_reset', 'user_disabled', 'mfa_reset')) NOT VALID;
DROP INDEX sessions_passkey_idx;
ALTER TABLE sessions DROP COLUMN passkey_id;
DROP TABLE webauthn_challenges;
DROP TABLE passkeys;
