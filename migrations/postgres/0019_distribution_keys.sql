-- Distribution keys (ARCHITECTURE.md, "Past one database"): every table that grows with use is
-- to be distributed by session (Citus-style, co-located with `sessions` by its id), and Citus
-- requires every primary or unique key of a distributed table to contain the distribution
-- column, and a foreign key between two distributed tables to pair their distribution columns.
-- So the keys here that lacked `session_id` take it first; the store's statements already name
-- the session, so the new keys serve them as the old ones did. SQLite keeps its keys (its
-- 0019 is empty): it never distributes, and an INTEGER PRIMARY KEY there is the rowid itself.
-- The rule that relates the two schemas is `kiln_db::DISTRIBUTED` (schema.rs); the parity
-- test checks it. Constraint names are those PostgreSQL gives a table made with these keys.

-- Segments: (session_id, id), and the links to a segment (a node's, a segment's parent) say
-- which session's segment they mean.
ALTER TABLE nodes DROP CONSTRAINT nodes_segment_id_fkey;
ALTER TABLE segments DROP CONSTRAINT segments_parent_segment_fkey;
ALTER TABLE segments DROP CONSTRAINT segments_pkey, ADD PRIMARY KEY (session_id, id);
ALTER TABLE segments ADD CONSTRAINT segments_session_id_parent_segment_fkey
    FOREIGN KEY (session_id, parent_segment) REFERENCES segments(session_id, id);
ALTER TABLE nodes ADD CONSTRAINT nodes_session_id_segment_id_fkey
    FOREIGN KEY (session_id, segment_id) REFERENCES segments(session_id, id);

-- Nodes: a segment's slots are unique within the session, and so is the explicit rowid. The
-- reads that cross sessions in rowid order (rebuilding the search index, the outbox's nodes)
-- keep a plain index on rowid.
DROP INDEX nodes_segment_seq;
CREATE UNIQUE INDEX nodes_segment_seq ON nodes(session_id, segment_id, seq);
ALTER TABLE nodes DROP CONSTRAINT nodes_rowid_key, ADD UNIQUE (session_id, rowid);
CREATE INDEX nodes_rowid ON nodes(rowid);

-- The per-session logs.
ALTER TABLE audit_log DROP CONSTRAINT audit_log_pkey, ADD PRIMARY KEY (session_id, id);
ALTER TABLE merges DROP CONSTRAINT merges_pkey, ADD PRIMARY KEY (session_id, id);
ALTER TABLE reflog DROP CONSTRAINT reflog_pkey, ADD PRIMARY KEY (session_id, id);
ALTER TABLE session_events DROP CONSTRAINT session_events_pkey, ADD PRIMARY KEY (session_id, id);

-- Share links: a token's hash is unique per session (256 random bits: no two links share one
-- anywhere), and a link is found by its hash alone, which a plain index keeps one probe.
ALTER TABLE share_links DROP CONSTRAINT share_links_pkey, ADD PRIMARY KEY (session_id, id);
ALTER TABLE share_links DROP CONSTRAINT share_links_token_hash_key, ADD UNIQUE (session_id, token_hash);
CREATE INDEX share_links_token ON share_links(token_hash);

-- The search outbox is read across sessions in id order (each server's indexer, the trim).
ALTER TABLE search_outbox DROP CONSTRAINT search_outbox_pkey, ADD PRIMARY KEY (session_id, id);
CREATE INDEX search_outbox_id ON search_outbox(id);
