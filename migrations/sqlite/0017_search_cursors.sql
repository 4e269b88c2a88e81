-- How far each server's search index has applied the outbox. Several servers on one database
-- (PostgreSQL) each keep their own index, so the outbox is trimmed only below what every live
-- server has applied; a server silent for a day is forgotten. The row with server '' holds the
-- highest id trimmed so far: a server whose index is behind it missed entries and rebuilds.
CREATE TABLE search_cursors (
    server      TEXT PRIMARY KEY,
    applied     INTEGER NOT NULL,
    seen_at     TEXT NOT NULL
);
