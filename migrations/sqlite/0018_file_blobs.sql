-- Notebook file and attachment contents held in the database, for stores that several
-- servers share (PostgreSQL), where no server's disk is the others'. Content-addressed by
-- SHA-256 within a kind (`files`, `attachments`: the data directory's folder of that name), in
-- chunks of at most 1 MiB so neither a write nor a read holds a whole file in memory.
-- SQLite keeps the contents in the data directory and leaves these tables empty; they exist
-- here so both dialects keep one schema.
CREATE TABLE file_blobs (
    kind        TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    bytes       INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (kind, sha256)
);

CREATE TABLE file_chunks (
    kind    TEXT NOT NULL,
    sha256  TEXT NOT NULL,
    idx     INTEGER NOT NULL,
    data    BLOB NOT NULL,
    PRIMARY KEY (kind, sha256, idx),
    FOREIGN KEY (kind, sha256) REFERENCES file_blobs(kind, sha256) ON DELETE CASCADE
);
