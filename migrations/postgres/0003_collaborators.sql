-- Collaborators: users other than the owner with permissions on a session. `perms` is the
-- expanded permission bit set of kiln_types::Permissions (read 1, comment 2, write 4,
-- add_materials 8, manage 16, owner 32), so SQL can check `perms & required = required`
-- (bigint & bigint in PostgreSQL, as in SQLite).
CREATE TABLE collaborators (
    session_id  text NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    user_id     text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    perms       bigint NOT NULL,
    added_by    text,
    added_at    text NOT NULL,
    updated_at  text NOT NULL,
    PRIMARY KEY (session_id, user_id)
);
CREATE INDEX collaborators_user ON collaborators(user_id, session_id);
