-- Kiln's initial schema. SQLite is the source of truth; see ARCHITECTURE.md for the invariants.

CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    is_owner    INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL
);

-- API tokens are stored only as SHA-256 hashes of the secret.
CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash  BLOB NOT NULL UNIQUE,
    label       TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    last_used_at TEXT
);

CREATE TABLE sessions (
    id              TEXT PRIMARY KEY,
    owner_id        TEXT NOT NULL REFERENCES users(id),
    name            TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    session_type    TEXT NOT NULL,
    status          TEXT NOT NULL,
    project         TEXT,
    tags            TEXT NOT NULL DEFAULT '[]',
    metadata        TEXT NOT NULL DEFAULT '{}',
    config          TEXT NOT NULL DEFAULT '{}',
    template        TEXT,
    default_branch  TEXT NOT NULL DEFAULT 'main',
    version         INTEGER NOT NULL DEFAULT 1,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX sessions_owner ON sessions(owner_id, id);
CREATE INDEX sessions_project ON sessions(project, id);
CREATE INDEX sessions_status ON sessions(status, id);

CREATE TABLE session_events (
    id          INTEGER PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    from_status TEXT,
    to_status   TEXT NOT NULL,
    actor       TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    at          TEXT NOT NULL
);
CREATE INDEX session_events_session ON session_events(session_id, id);

-- A segment is a linear run of nodes. A node's path is its segment up to its seq, then the
-- parent segment up to fork_seq, and so on: one index range scan per segment.
CREATE TABLE segments (
    id              INTEGER PRIMARY KEY,
    session_id      TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    parent_segment  INTEGER REFERENCES segments(id),
    fork_seq        INTEGER
);
CREATE INDEX segments_session ON segments(session_id);

-- Immutable nodes. seq is the depth on the path (root = 0).
-- Node ids are unique within their session, so an exported session imports with the same ids.
CREATE TABLE nodes (
    id              TEXT NOT NULL,
    session_id      TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    segment_id      INTEGER NOT NULL REFERENCES segments(id),
    seq             INTEGER NOT NULL,
    parent_id       TEXT,
    merge_parent_id TEXT,
    kind            TEXT NOT NULL,
    is_state        INTEGER NOT NULL DEFAULT 0,
    author          TEXT,
    content         TEXT NOT NULL DEFAULT '',
    data            TEXT,
    tokens          INTEGER,
    total_tokens    INTEGER,
    created_at      TEXT NOT NULL
);
CREATE UNIQUE INDEX nodes_id ON nodes(session_id, id);
CREATE UNIQUE INDEX nodes_segment_seq ON nodes(segment_id, seq);
CREATE INDEX nodes_state ON nodes(segment_id, seq) WHERE is_state = 1;

CREATE TABLE branches (
    session_id      TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    head_id         TEXT NOT NULL,
    base_id         TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'open',
    version         INTEGER NOT NULL DEFAULT 1,
    -- The folded research state at the head, and how many state events since the last snapshot.
    state           TEXT NOT NULL DEFAULT '{}',
    state_pending   INTEGER NOT NULL DEFAULT 0,
    created_by      TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (session_id, name)
) WITHOUT ROWID;

-- Checkpoints and tags: named pointers at nodes.
CREATE TABLE refs (
    session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    node_id     TEXT NOT NULL,
    branch      TEXT,
    auto        INTEGER NOT NULL DEFAULT 0,
    created_by  TEXT,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (session_id, name)
) WITHOUT ROWID;

-- Head moves that are not plain appends (create, restore, merge, discard, recover).
CREATE TABLE reflog (
    id          INTEGER PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    branch      TEXT NOT NULL,
    old_head    TEXT,
    new_head    TEXT NOT NULL,
    actor       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    at          TEXT NOT NULL
);
CREATE INDEX reflog_session ON reflog(session_id, id);

CREATE TABLE merges (
    id          INTEGER PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    from_branch TEXT NOT NULL,
    into_branch TEXT NOT NULL,
    from_head   TEXT NOT NULL,
    merge_node  TEXT NOT NULL,
    at          TEXT NOT NULL
);
CREATE INDEX merges_pair ON merges(session_id, into_branch, from_branch, id);

CREATE TABLE state_snapshots (
    session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    node_id     TEXT NOT NULL,
    state       TEXT NOT NULL,
    PRIMARY KEY (session_id, node_id)
);

-- Per-session hash chain: hash = sha256(prev_hash || canonical json of the entry).
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    payload     TEXT NOT NULL,
    at          TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL,
    UNIQUE (session_id, seq)
);

CREATE TABLE session_templates (
    name        TEXT PRIMARY KEY,
    description TEXT NOT NULL DEFAULT '',
    body        TEXT NOT NULL,
    created_by  TEXT,
    created_at  TEXT NOT NULL
);
