-- A session's last activity: the newest time anything happened in it (a message, an event, a
-- tool run, a branch or checkpoint move, a lifecycle change). Kept by triggers, so every path
-- that moves a branch or touches the session moves it without each remembering to. Times are
-- RFC 3339 UTC with microseconds everywhere in the store, so they compare as text (fixed
-- width, digits and separators in the same places: the same order in any collation).
ALTER TABLE sessions ADD COLUMN last_activity_at text NOT NULL DEFAULT '';

UPDATE sessions SET last_activity_at = GREATEST(updated_at,
    COALESCE((SELECT MAX(b.updated_at) FROM branches b WHERE b.session_id = sessions.id), ''));

CREATE INDEX sessions_activity ON sessions(last_activity_at, id);

-- PostgreSQL allows no subquery in a trigger's WHEN, so SQLite's WHEN conditions that read
-- another row are the first test of the function instead; the others stay WHEN clauses.
CREATE FUNCTION branches_insert_activity() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.updated_at > (SELECT last_activity_at FROM sessions WHERE id = NEW.session_id) THEN
        UPDATE sessions SET last_activity_at = NEW.updated_at WHERE id = NEW.session_id;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER branches_insert_activity AFTER INSERT ON branches
FOR EACH ROW EXECUTE FUNCTION branches_insert_activity();

CREATE FUNCTION branches_update_activity() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.updated_at > (SELECT last_activity_at FROM sessions WHERE id = NEW.session_id) THEN
        UPDATE sessions SET last_activity_at = NEW.updated_at WHERE id = NEW.session_id;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER branches_update_activity AFTER UPDATE ON branches
FOR EACH ROW EXECUTE FUNCTION branches_update_activity();

CREATE FUNCTION sessions_touch_activity() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE sessions SET last_activity_at = NEW.updated_at WHERE id = NEW.id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER sessions_touch_activity AFTER UPDATE OF updated_at ON sessions
FOR EACH ROW WHEN (NEW.updated_at > NEW.last_activity_at)
EXECUTE FUNCTION sessions_touch_activity();
