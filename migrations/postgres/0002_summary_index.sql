-- The agent reads the newest summary on a branch path every turn; this keeps that lookup an
-- index probe per segment however long the path is.
CREATE INDEX nodes_summary ON nodes(segment_id, seq) WHERE kind = 'summary';
