ALTER TABLE refresh_tokens RESET (fillfactor);
UPDATE refresh_tokens SET successor_id = NULL
    WHERE successor_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM refresh_tokens s WHERE s.id = refresh_tokens.successor_id);
CREATE INDEX refresh_tokens_successor_id_idx ON refresh_tokens (successor_id) WHERE successor_id IS NOT NULL;
ALTER TABLE refresh_tokens ADD CONSTRAINT refresh_tokens_successor_id_fkey
    FOREIGN KEY (successor_id) REFERENCES refresh_tokens (id) ON DELETE SET NULL;
