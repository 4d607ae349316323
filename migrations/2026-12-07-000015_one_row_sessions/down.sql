-- Sessions created since the up migration have no row in refresh_tokens:
-- their tokens stop working (their users log in again).
ALTER TABLE sessions RESET (fillfactor);
ALTER TABLE sessions
    DROP CONSTRAINT sessions_token_state_check,
    DROP COLUMN consumed_at,
    DROP COLUMN token_expires_at,
    DROP COLUMN token_key,
    DROP COLUMN generation,
    DROP COLUMN token_secret;
