-- Batch runs (ARCHITECTURE.md, "Batches"): one request template run by the agent once per item,
-- each item on its own branch from one checkpoint (or all in one shared branch). Keyed by
-- session first, like every table that grows with use. Items are claimed one at a time
-- (pending -> running -> done/failed/cancelled); a server that restarts puts its running items
-- back to pending and carries on, so an item done is never redone.
CREATE TABLE batches (
    session_id      text NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    id              text NOT NULL,
    user_id         text NOT NULL REFERENCES users(id),
    request         text NOT NULL,
    mode            text NOT NULL CHECK (mode IN ('branches', 'shared')),
    concurrency     bigint NOT NULL,
    item_timeout_ms bigint NOT NULL,
    from_node       text NOT NULL,
    checkpoint      text,
    status          text NOT NULL DEFAULT 'running'
                    CHECK (status IN ('running', 'done', 'cancelled')),
    created_at      text NOT NULL,
    updated_at      text NOT NULL,
    finished_at     text,
    PRIMARY KEY (session_id, id)
);
CREATE INDEX batches_running ON batches(status) WHERE status = 'running';

CREATE TABLE batch_items (
    session_id  text NOT NULL,
    batch_id    text NOT NULL,
    idx         bigint NOT NULL,
    item        text NOT NULL,
    request     text NOT NULL,
    status      text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'running', 'done', 'failed', 'cancelled')),
    attempts    bigint NOT NULL DEFAULT 0,
    branch      text,
    answer      text,
    numbers     text,
    error       text,
    started_at  text,
    finished_at text,
    PRIMARY KEY (session_id, batch_id, idx),
    FOREIGN KEY (session_id, batch_id) REFERENCES batches(session_id, id) ON DELETE CASCADE
);
CREATE INDEX batch_items_pending ON batch_items(session_id, batch_id, status, idx);
