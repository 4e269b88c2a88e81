-- The search outbox: every change the search index must see, written by triggers in the same
-- transaction as the change itself, so the index cannot drift from SQLite. The indexer applies
-- entries in id order and records the last applied id in its own commit.
CREATE TABLE search_outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id  TEXT NOT NULL,
    node_rowid  INTEGER,
    op          TEXT NOT NULL          -- node | session | delete
);

CREATE TRIGGER search_outbox_node AFTER INSERT ON nodes BEGIN
    INSERT INTO search_outbox (session_id, node_rowid, op) VALUES (NEW.session_id, NEW.rowid, 'node');
END;
CREATE TRIGGER search_outbox_session_new AFTER INSERT ON sessions BEGIN
    INSERT INTO search_outbox (session_id, op) VALUES (NEW.id, 'session');
END;
CREATE TRIGGER search_outbox_session_changed
AFTER UPDATE OF name, description, tags, project, session_type, status ON sessions BEGIN
    INSERT INTO search_outbox (session_id, op) VALUES (NEW.id, 'session');
END;
CREATE TRIGGER search_outbox_session_deleted AFTER DELETE ON sessions BEGIN
    INSERT INTO search_outbox (session_id, op) VALUES (OLD.id, 'delete');
END;
