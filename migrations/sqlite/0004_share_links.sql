-- Read-only share links. Only the SHA-256 of the token is stored; the link is pinned to a node
-- (a branch head or a checkpoint at creation), so later messages and other branches stay out.
CREATE TABLE share_links (
    id          TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    token_hash  BLOB NOT NULL UNIQUE,
    node_id     TEXT NOT NULL,
    branch      TEXT,
    checkpoint  TEXT,
    created_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    max_views   INTEGER,
    views       INTEGER NOT NULL DEFAULT 0,
    revoked_at  TEXT
);
CREATE INDEX share_links_session ON share_links(session_id, created_at);
CREATE INDEX share_links_expiry ON share_links(expires_at);
