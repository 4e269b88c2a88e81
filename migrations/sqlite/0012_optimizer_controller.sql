-- The external-controller lock on a branch's optimizer: who drives it, since when, until when,
-- and the hash of the token that proves it (the token itself is never stored). Renewal updates
-- the row in place (no node, no audit entry); taking and giving up the lock are audit entries.
CREATE TABLE optimizer_controllers (
    session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    branch      TEXT NOT NULL,
    holder      TEXT NOT NULL,
    token_hash  BLOB NOT NULL,
    acquired_by TEXT NOT NULL,
    acquired_at TEXT NOT NULL,
    renewed_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    PRIMARY KEY (session_id, branch)
);

-- An audit entry is activity: live watchers see decisions (a lock taken or released) that
-- write no node.
CREATE TRIGGER audit_insert_activity AFTER INSERT ON audit_log
WHEN NEW.at > (SELECT last_activity_at FROM sessions WHERE id = NEW.session_id)
BEGIN
    UPDATE sessions SET last_activity_at = NEW.at WHERE id = NEW.session_id;
END;
