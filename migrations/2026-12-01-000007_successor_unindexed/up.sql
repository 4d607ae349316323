-- Consuming a token (setting consumed_at and successor_id) is the one update
-- each row ever gets, on every rotation. With neither column indexed,
-- PostgreSQL can make it a heap-only (HOT) update: no new entry in any of
-- the table's indexes, where an update touching an indexed column adds one
-- to each. The foreign key on successor_id needed that index (every deleted
-- token looked its predecessors up by it) and checked, on every rotation,
-- that the successor it names exists, which the rotation's own statement
-- guarantees. A successor never expires before its predecessor, so the
-- janitor deletes the predecessor first and no live row points at nothing.
ALTER TABLE refresh_tokens DROP CONSTRAINT refresh_tokens_successor_id_fkey;
DROP INDEX refresh_tokens_successor_id_idx;
-- Room on each page for that one update of each row.
ALTER TABLE refresh_tokens SET (fillfactor = 85);
