-- The distribution keys of 0019, reordered: `session_id` last instead of first. Citus needs the
-- distribution column in every key, not in front, and with it first a statement prepared while
-- a table was still empty (no statistics yet) kept a generic plan that reached a row by
-- scanning its session and filtering, its cost growing with the session until the table was
-- analyzed (ARCHITECTURE.md, "The key order"; the figures are in the README). With the key's
-- own columns leading, a lookup by them is one probe of a unique index whatever the
-- statistics say, and the reads across sessions by those columns (the outbox in id order, nodes
-- by rowid, a share link by its token's hash) need no index of their own, so 0019's three
-- lookup indexes go. A session's nodes after a rowid (a live watcher, the tally) are a range of
-- the rowid key, as on SQLite. SQLite's 0022 is empty, as its 0019 is.
-- Constraint names are those PostgreSQL gives a table made with these keys.

-- Segments, and the links to a segment (a node's, a segment's parent).
ALTER TABLE nodes DROP CONSTRAINT nodes_session_id_segment_id_fkey;
ALTER TABLE segments DROP CONSTRAINT segments_session_id_parent_segment_fkey;
ALTER TABLE segments DROP CONSTRAINT segments_pkey, ADD PRIMARY KEY (id, session_id);
ALTER TABLE segments ADD CONSTRAINT segments_parent_segment_session_id_fkey
    FOREIGN KEY (parent_segment, session_id) REFERENCES segments(id, session_id);
ALTER TABLE nodes ADD CONSTRAINT nodes_segment_id_session_id_fkey
    FOREIGN KEY (segment_id, session_id) REFERENCES segments(id, session_id);

-- Nodes: a segment's slots and the explicit rowid.
DROP INDEX nodes_segment_seq;
CREATE UNIQUE INDEX nodes_segment_seq ON nodes(segment_id, seq, session_id);
DROP INDEX nodes_rowid;
ALTER TABLE nodes DROP CONSTRAINT nodes_session_id_rowid_key, ADD UNIQUE (rowid, session_id);

-- The per-session logs.
ALTER TABLE audit_log DROP CONSTRAINT audit_log_pkey, ADD PRIMARY KEY (id, session_id);
ALTER TABLE merges DROP CONSTRAINT merges_pkey, ADD PRIMARY KEY (id, session_id);
ALTER TABLE reflog DROP CONSTRAINT reflog_pkey, ADD PRIMARY KEY (id, session_id);
ALTER TABLE session_events DROP CONSTRAINT session_events_pkey, ADD PRIMARY KEY (id, session_id);

-- Share links: found by the token's hash, the key's first column.
ALTER TABLE share_links DROP CONSTRAINT share_links_pkey, ADD PRIMARY KEY (id, session_id);
DROP INDEX share_links_token;
ALTER TABLE share_links DROP CONSTRAINT share_links_session_id_token_hash_key,
    ADD UNIQUE (token_hash, session_id);

-- The search outbox, read across sessions in id order (each server's indexer, the trim).
ALTER TABLE search_outbox DROP CONSTRAINT search_outbox_pkey, ADD PRIMARY KEY (id, session_id);
DROP INDEX search_outbox_id;
