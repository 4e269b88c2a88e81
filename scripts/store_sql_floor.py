#!/usr/bin/env python3
"""The SQL floor of one append and one read of the last 20 messages, driver overhead aside: runs Kiln's append statements (the fast
path's conditional INSERT + UPDATE … RETURNING in BEGIN IMMEDIATE … COMMIT) against a Kiln
database, and the OpenAI Agents SDK SQLiteSession's statements (INSERT OR IGNORE session,
INSERT message, UPDATE updated_at, COMMIT) against its schema, through the same driver
(Python's sqlite3), with the same durability (WAL, synchronous=NORMAL), one message per
transaction; then each store's read of the last 20 messages (Kiln's one-row JSON page query,
SQLiteSession's `ORDER BY id DESC LIMIT`), rows fetched, not parsed. It answers: how fast could
each store append and read if its driver cost nothing? Last, the floor under any store: one
INSERT + COMMIT per message into a single table clustered on (conversation, seq), and into a
bare rowid table.

    kiln --data-dir /tmp/floor bench compare --turns 50 --reads 10 --read-limit 20 --fork-at 25
    python3 scripts/store_sql_floor.py /tmp/floor/kiln.db --messages 20000
"""

import argparse
import os
import sqlite3
import tempfile
import time
import uuid

USER = "u" * 200
ASSISTANT = "a" * 600


def pragmas(conn):
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn.execute("PRAGMA journal_mode").fetchone()[0], conn.execute("PRAGMA synchronous").fetchone()[0]


def kiln(path, n):
    conn = sqlite3.connect(path, isolation_level=None)
    mode = pragmas(conn)
    conn.execute("PRAGMA foreign_keys=ON")
    session, name, head, version = conn.execute(
        "SELECT b.session_id, b.name, b.head_id, b.version FROM branches b "
        "JOIN sessions s ON s.id = b.session_id WHERE s.status = 'active' AND b.name = 'main' LIMIT 1"
    ).fetchone()
    segment, seq, total = conn.execute(
        "SELECT segment_id, seq, COALESCE(total_tokens, 0) FROM nodes WHERE session_id = ? AND id = ?",
        (session, head),
    ).fetchone()
    insert = (
        "INSERT INTO nodes (id, session_id, segment_id, seq, parent_id, merge_parent_id, kind, "
        "is_state, author, content, data, tokens, total_tokens, created_at) "
        "SELECT v.column1, ?, ?, v.column2, v.column3, NULL, v.column4, 0, v.column5, "
        "v.column6, v.column7, v.column8, v.column9, ? FROM (VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)) AS v "
        "WHERE EXISTS (SELECT 1 FROM branches b JOIN sessions s ON s.id = b.session_id "
        "WHERE b.session_id = ? AND b.name = ? AND b.version = ? AND b.head_id = ? "
        "AND b.status <> 'discarded' AND s.status = 'active')"
    )
    update = (
        "UPDATE branches SET head_id = ?, version = version + 1, updated_at = ?, "
        "status = CASE status WHEN 'merged' THEN 'open' ELSE status END "
        "WHERE session_id = ? AND name = ? AND version = ? AND head_id = ? AND status <> 'discarded' "
        "AND EXISTS (SELECT 1 FROM sessions s WHERE s.id = ? AND s.status = 'active') RETURNING version"
    )
    start = time.perf_counter()
    for i in range(n):
        node = str(uuid.uuid7()) if hasattr(uuid, "uuid7") else str(uuid.uuid1())
        now = "2026-11-23T16:00:00.000000Z"
        seq += 1
        content = USER if i % 2 == 0 else ASSISTANT
        total += 50
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(insert, (session, segment, now, node, seq, head, "user" if i % 2 == 0 else "assistant",
                              "alice", content, None, 50, total, session, name, version, head))
        version = conn.execute(update, (node, now, session, name, version, head, session)).fetchone()[0]
        conn.execute("COMMIT")
        head = node
    append = (time.perf_counter() - start) / n * 1e6
    # Kiln's read fast path (crates/kiln-db/src/tree.rs, last_messages), owner check left out.
    cols = "n.id, n.seq, n.parent_id, n.merge_parent_id, n.kind, n.author, n.content, n.data, n.tokens, n.created_at"
    read = (
        "SELECT p.root_segment, json_group_array(json_array(p.id, p.seq, p.parent_id, p.merge_parent_id, "
        "p.kind, p.author, p.content, json(p.data), p.tokens, p.created_at)) FROM "
        f"(SELECT g.parent_segment IS NULL AS root_segment, {cols} "
        "FROM branches b JOIN sessions s ON s.id = b.session_id "
        "JOIN nodes h ON h.session_id = b.session_id AND h.id = b.head_id "
        "JOIN segments g ON g.id = h.segment_id "
        "JOIN nodes n ON n.segment_id = h.segment_id "
        "AND n.seq >= COALESCE(g.fork_seq + 1, 0) AND n.seq <= MIN(h.seq, ?) "
        "AND (n.is_state = 0 OR n.kind = 'merge') AND n.kind != 'root' "
        "WHERE b.session_id = ? AND b.name = ? ORDER BY n.seq DESC LIMIT 21) AS p"
    )
    reads = max(1, n // 20)
    start = time.perf_counter()
    for _ in range(reads):
        rows = conn.execute(read, (2**62, session, name)).fetchall()
    assert rows and rows[0][1].count('"assistant"') + rows[0][1].count('"user"') >= 20
    return append, (time.perf_counter() - start) / reads * 1e6, mode


def sqlite_session(n):
    path = os.path.join(tempfile.mkdtemp(), "agents.db")
    conn = sqlite3.connect(path, isolation_level=None)
    mode = pragmas(conn)
    # The SDK's schema (agents/memory/sqlite_session.py, openai-agents 0.24).
    conn.executescript(
        "CREATE TABLE agent_sessions (session_id TEXT PRIMARY KEY, created_at TIMESTAMP DEFAULT "
        "CURRENT_TIMESTAMP, updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);"
        "CREATE TABLE agent_messages (id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL, "
        "message_data TEXT NOT NULL, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, "
        "FOREIGN KEY (session_id) REFERENCES agent_sessions (session_id) ON DELETE CASCADE);"
        "CREATE INDEX idx_agent_messages_session_id ON agent_messages (session_id, id);"
    )
    start = time.perf_counter()
    for i in range(n):
        content = '{"role": "user", "content": "%s"}' % (USER if i % 2 == 0 else ASSISTANT)
        conn.execute("BEGIN")
        conn.execute("INSERT OR IGNORE INTO agent_sessions (session_id) VALUES (?)", ("s",))
        conn.execute("INSERT INTO agent_messages (session_id, message_data) VALUES (?, ?)", ("s", content))
        conn.execute("UPDATE agent_sessions SET updated_at = CURRENT_TIMESTAMP WHERE session_id = ?", ("s",))
        conn.execute("COMMIT")
    append = (time.perf_counter() - start) / n * 1e6
    reads = max(1, n // 20)
    start = time.perf_counter()
    for _ in range(reads):
        rows = conn.execute(
            "SELECT message_data FROM agent_messages WHERE session_id = ? ORDER BY id DESC LIMIT ?", ("s", 20)
        ).fetchall()
    assert len(rows) == 20
    return append, (time.perf_counter() - start) / reads * 1e6, mode


def minimal(n):
    """The least any SQLite store can do per durable message: one INSERT and COMMIT into a
    single table clustered on (conversation, seq), which is also what a read of the last 20
    needs, and (below any usable store) into a bare rowid table with no way to find a
    conversation's messages but a scan."""
    path = os.path.join(tempfile.mkdtemp(), "minimal.db")
    conn = sqlite3.connect(path, isolation_level=None)
    mode = pragmas(conn)
    conn.executescript(
        "CREATE TABLE m (conv INTEGER, seq INTEGER, body TEXT, PRIMARY KEY (conv, seq)) WITHOUT ROWID;"
        "CREATE TABLE bare (body TEXT);"
    )
    start = time.perf_counter()
    for i in range(n):
        conn.execute("BEGIN")
        conn.execute("INSERT INTO m VALUES (1, ?, ?)", (i, USER if i % 2 == 0 else ASSISTANT))
        conn.execute("COMMIT")
    clustered = (time.perf_counter() - start) / n * 1e6
    start = time.perf_counter()
    for i in range(n):
        conn.execute("BEGIN")
        conn.execute("INSERT INTO bare VALUES (?)", (USER if i % 2 == 0 else ASSISTANT,))
        conn.execute("COMMIT")
    bare = (time.perf_counter() - start) / n * 1e6
    reads = max(1, n // 20)
    start = time.perf_counter()
    for _ in range(reads):
        rows = conn.execute("SELECT seq, body FROM m WHERE conv = 1 ORDER BY seq DESC LIMIT 20").fetchall()
    assert len(rows) == 20
    return clustered, bare, (time.perf_counter() - start) / reads * 1e6, mode


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kiln_db")
    ap.add_argument("--messages", type=int, default=20000)
    a = ap.parse_args()
    print(f"sqlite {sqlite3.sqlite_version}, {a.messages} messages, one per transaction")
    k, kr, km = kiln(a.kiln_db, a.messages)
    s, sr, sm = sqlite_session(a.messages)
    print(f"kiln statements           append {k:7.1f} µs/message  read-20 {kr:6.1f} µs  ({km[0]}, synchronous={km[1]})")
    print(f"SQLiteSession statements  append {s:7.1f} µs/message  read-20 {sr:6.1f} µs  ({sm[0]}, synchronous={sm[1]})")
    print(f"ratio kiln/SQLiteSession  append {k / s:7.2f}             read-20 {kr / sr:6.2f}")
    c, b, cr, cm = minimal(a.messages)
    print(f"one clustered table       append {c:7.1f} µs/message  read-20 {cr:6.1f} µs  ({cm[0]}, synchronous={cm[1]})")
    print(f"one bare rowid table      append {b:7.1f} µs/message  (no per-conversation read)")


if __name__ == "__main__":
    main()
