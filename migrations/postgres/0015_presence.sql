-- Who is watching a session now (ARCHITECTURE.md, "Live events"): each live stream is a row,
-- refreshed every few seconds while it is open and deleted when it closes; rows not refreshed
-- for a while (a server that died) are ignored and pruned. In the database, so watchers on
-- every server of a shared database see each other.
CREATE TABLE presence (
    session_id text NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    watcher    text NOT NULL,
    user_id    text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client     text,
    since      text NOT NULL,
    seen_at    text NOT NULL,
    PRIMARY KEY (session_id, watcher)
);
