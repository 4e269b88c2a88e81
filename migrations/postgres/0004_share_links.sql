-- Read-only share links. Only the SHA-256 of the token is stored; the link is pinned to a node
-- (a branch head or a checkpoint at creation), so later messages and other branches stay out.
CREATE TABLE share_links (
    id          text PRIMARY KEY,
    session_id  text NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL UNIQUE,
    node_id     text NOT NULL,
    branch      text,
    checkpoint  text,
    created_by  text NOT NULL,
    created_at  text NOT NULL,
    expires_at  text NOT NULL,
    max_views   bigint,
    views       bigint NOT NULL DEFAULT 0,
    revoked_at  text
);
CREATE INDEX share_links_session ON share_links(session_id, created_at);
CREATE INDEX share_links_expiry ON share_links(expires_at);
