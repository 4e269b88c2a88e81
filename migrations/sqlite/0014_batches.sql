-- Batch runs (ARCHITECTURE.md, "Batches"): one request template run by the agent once per item,
-- each item on its own branch from one checkpoint (or all in one shared branch). Keyed by
-- session first, like every table that grows with use. Items are claimed one at a time
-- (pending -> running -> done/failed/cancelled); a server that restarts puts its running items
-- back to pending and carries on, so an item done is never redone.
CREATE TABLE batches (
    session_id      TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    id              TEXT NOT NULL,
    user_id         TEXT NOT NULL REFERENCES users(id),
    request         TEXT NOT NULL,
    mode            TEXT NOT NULL CHECK (mode IN ('branches', 'shared')),
    concurrency     INTEGER NOT NULL,
    item_timeout_ms INTEGER NOT NULL,
    from_node       TEXT NOT NULL,
    checkpoint      TEXT,
    status          TEXT NOT NULL DEFAULT 'running'
                    CHECK (status IN ('running', 'done', 'cancelled')),
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    finished_at     TEXT,
    PRIMARY KEY (session_id, id)
) WITHOUT ROWID;
CREATE INDEX batches_running ON batches(status) WHERE status = 'running';

CREATE TABLE batch_items (
    session_id  TEXT NOT NULL,
    batch_id    TEXT NOT NULL,
    idx         INTEGER NOT NULL,
    item        TEXT NOT NULL,
    request     TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'running', 'done', 'failed', 'cancelled')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    branch      TEXT,
    answer      TEXT,
    numbers     TEXT,
    error       TEXT,
    started_at  TEXT,
    finished_at TEXT,
    PRIMARY KEY (session_id, batch_id, idx),
    FOREIGN KEY (session_id, batch_id) REFERENCES batches(session_id, id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX batch_items_pending ON batch_items(session_id, batch_id, status, idx);
