-- Results of expensive tools (ARCHITECTURE.md, "Tool results cache"): per user, keyed by the
-- tool, its version and its normalised arguments, shared by all of that user's sessions (the
-- call is still recorded on each session as usual; the hit is marked in the result).
CREATE TABLE tool_cache (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    tool       TEXT NOT NULL,
    version    TEXT NOT NULL,
    args_hash  TEXT NOT NULL,
    output     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    PRIMARY KEY (user_id, tool, version, args_hash)
) WITHOUT ROWID;
