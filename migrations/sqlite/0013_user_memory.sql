-- A user's memory (ARCHITECTURE.md, "Memory across sessions"): notes and preferences the
-- agent reads at the start of every context window of that user's turns, in every session.
-- Only its owner reads or changes it. `source` says who saved it (the user, or the agent when
-- the user asked it to remember); `session_id` is where it was saved, if from a session.
CREATE TABLE user_memory (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL DEFAULT 'note' CHECK (kind IN ('note', 'preference')),
    content     TEXT NOT NULL,
    source      TEXT NOT NULL DEFAULT 'user' CHECK (source IN ('user', 'agent')),
    session_id  TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX user_memory_user ON user_memory(user_id, created_at, id);
