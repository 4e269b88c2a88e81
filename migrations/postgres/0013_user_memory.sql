-- A user's memory (ARCHITECTURE.md, "Memory across sessions"): notes and preferences the
-- agent reads at the start of every context window of that user's turns, in every session.
-- Only its owner reads or changes it. `source` says who saved it (the user, or the agent when
-- the user asked it to remember); `session_id` is where it was saved, if from a session.
CREATE TABLE user_memory (
    id          text PRIMARY KEY,
    user_id     text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind        text NOT NULL DEFAULT 'note' CHECK (kind IN ('note', 'preference')),
    content     text NOT NULL,
    source      text NOT NULL DEFAULT 'user' CHECK (source IN ('user', 'agent')),
    session_id  text,
    created_at  text NOT NULL,
    updated_at  text NOT NULL
);
CREATE INDEX user_memory_user ON user_memory(user_id, created_at, id);
