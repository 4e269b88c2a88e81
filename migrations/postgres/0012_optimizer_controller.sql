-- The external-controller lock on a branch's optimizer: who drives it, since when, until when,
-- and the hash of the token that proves it (the token itself is never stored). Renewal updates
-- the row in place (no node, no audit entry); taking and giving up the lock are audit entries.
CREATE TABLE optimizer_controllers (
    session_id  text NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    branch      text NOT NULL,
    holder      text NOT NULL,
    token_hash  bytea NOT NULL,
    acquired_by text NOT NULL,
    acquired_at text NOT NULL,
    renewed_at  text NOT NULL,
    expires_at  text NOT NULL,
    PRIMARY KEY (session_id, branch)
);

-- An audit entry is activity: live watchers see decisions (a lock taken or released) that
-- write no node. (SQLite's WHEN reads the session row: here it is the function's first test.)
CREATE FUNCTION audit_insert_activity() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.at > (SELECT last_activity_at FROM sessions WHERE id = NEW.session_id) THEN
        UPDATE sessions SET last_activity_at = NEW.at WHERE id = NEW.session_id;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER audit_insert_activity AFTER INSERT ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_insert_activity();
