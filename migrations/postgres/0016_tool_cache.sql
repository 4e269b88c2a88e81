-- Results of expensive tools (ARCHITECTURE.md, "Tool results cache"): per user, keyed by the
-- tool, its version and its normalised arguments, shared by all of that user's sessions (the
-- call is still recorded on each session as usual; the hit is marked in the result).
CREATE TABLE tool_cache (
    user_id    text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    tool       text NOT NULL,
    version    text NOT NULL,
    args_hash  text NOT NULL,
    output     text NOT NULL,
    created_at text NOT NULL,
    expires_at text,
    PRIMARY KEY (user_id, tool, version, args_hash)
);
