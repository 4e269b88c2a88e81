-- Integrity (see ARCHITECTURE.md, "Integrity"): a hash chain over the nodes, the provenance of
-- imported sessions, and the lease of an import that is still being written in chunks.

-- sha256 over the node's fields and its parents' hashes (kiln-db `integrity::node_hash`);
-- nodes written before this migration get theirs at the next open.
ALTER TABLE nodes ADD COLUMN hash bytea;

-- NULL: created here; 'verified': imported with a signature from a trusted key (original
-- authors kept); 'unverified': imported otherwise (nodes credited to the importer).
ALTER TABLE sessions ADD COLUMN provenance text;

-- Set while an import is written in chunks: the session is invisible until the last chunk
-- clears it, and a session whose lease ran out (a failed or killed import) is deleted.
ALTER TABLE sessions ADD COLUMN import_until text;
CREATE INDEX sessions_importing ON sessions(import_until) WHERE import_until IS NOT NULL;

-- Finds the nodes the backfill has yet to hash (empty once it ran; new nodes never enter it).
CREATE INDEX nodes_unhashed ON nodes(session_id) WHERE hash IS NULL;
