-- Session fields copied onto every node document of the search index (owner, project, type,
-- tags) get their own outbox operation, so a change to them re-indexes the session's nodes;
-- name, description and status changes touch only the session's own document.
DROP TRIGGER search_outbox_session_changed ON sessions;
CREATE TRIGGER search_outbox_session_changed
AFTER UPDATE OF name, description, status ON sessions
FOR EACH ROW EXECUTE FUNCTION search_outbox_session_changed();

CREATE FUNCTION search_outbox_session_meta() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO search_outbox (session_id, op) VALUES (NEW.id, 'meta');
    RETURN NULL;
END;
$$;
CREATE TRIGGER search_outbox_session_meta
AFTER UPDATE OF tags, project, session_type, owner_id ON sessions
FOR EACH ROW EXECUTE FUNCTION search_outbox_session_meta();
