-- Collaborators: users other than the owner with permissions on a session. `perms` is the
-- expanded permission bit set of kiln_types::Permissions (read 1, comment 2, write 4,
-- add_materials 8, manage 16, owner 32), so SQL can check `perms & required = required`.
CREATE TABLE collaborators (
    session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    perms       INTEGER NOT NULL,
    added_by    TEXT,
    added_at    TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (session_id, user_id)
) WITHOUT ROWID;
CREATE INDEX collaborators_user ON collaborators(user_id, session_id);
