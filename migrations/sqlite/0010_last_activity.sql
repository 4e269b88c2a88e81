-- A session's last activity: the newest time anything happened in it (a message, an event, a
-- tool run, a branch or checkpoint move, a lifecycle change). Kept by triggers, so every path
-- that moves a branch or touches the session moves it without each remembering to. Times are
-- RFC 3339 UTC with microseconds everywhere in the store, so they compare as text.
ALTER TABLE sessions ADD COLUMN last_activity_at TEXT NOT NULL DEFAULT '';

UPDATE sessions SET last_activity_at = MAX(updated_at,
    COALESCE((SELECT MAX(b.updated_at) FROM branches b WHERE b.session_id = sessions.id), ''));

CREATE INDEX sessions_activity ON sessions(last_activity_at, id);

CREATE TRIGGER branches_insert_activity AFTER INSERT ON branches
WHEN NEW.updated_at > (SELECT last_activity_at FROM sessions WHERE id = NEW.session_id)
BEGIN
    UPDATE sessions SET last_activity_at = NEW.updated_at WHERE id = NEW.session_id;
END;

CREATE TRIGGER branches_update_activity AFTER UPDATE ON branches
WHEN NEW.updated_at > (SELECT last_activity_at FROM sessions WHERE id = NEW.session_id)
BEGIN
    UPDATE sessions SET last_activity_at = NEW.updated_at WHERE id = NEW.session_id;
END;

CREATE TRIGGER sessions_touch_activity AFTER UPDATE OF updated_at ON sessions
WHEN NEW.updated_at > NEW.last_activity_at
BEGIN
    UPDATE sessions SET last_activity_at = NEW.updated_at WHERE id = NEW.id;
END;
