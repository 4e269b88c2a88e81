-- Session fields copied onto every node document of the search index (owner, project, type,
-- tags) get their own outbox operation, so a change to them re-indexes the session's nodes;
-- name, description and status changes touch only the session's own document.
DROP TRIGGER search_outbox_session_changed;
CREATE TRIGGER search_outbox_session_changed
AFTER UPDATE OF name, description, status ON sessions BEGIN
    INSERT INTO search_outbox (session_id, op) VALUES (NEW.id, 'session');
END;
CREATE TRIGGER search_outbox_session_meta
AFTER UPDATE OF tags, project, session_type, owner_id ON sessions BEGIN
    INSERT INTO search_outbox (session_id, op) VALUES (NEW.id, 'meta');
END;
