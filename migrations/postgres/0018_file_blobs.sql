-- Notebook file and attachment contents held in the database, for stores that several
-- servers share (PostgreSQL), where no server's disk is the others'. Content-addressed by
-- SHA-256 within a kind (`files`, `attachments`: the data directory's folder of that name), in
-- chunks of at most 1 MiB so neither a write nor a read holds a whole file in memory.
-- SQLite keeps the contents in the data directory and leaves these tables empty; they exist
-- there too so both dialects keep one schema.
CREATE TABLE file_blobs (
    kind        text NOT NULL,
    sha256      text NOT NULL,
    bytes       bigint NOT NULL,
    created_at  text NOT NULL,
    PRIMARY KEY (kind, sha256)
);

CREATE TABLE file_chunks (
    kind    text NOT NULL,
    sha256  text NOT NULL,
    idx     bigint NOT NULL,
    data    bytea NOT NULL,
    PRIMARY KEY (kind, sha256, idx),
    FOREIGN KEY (kind, sha256) REFERENCES file_blobs(kind, sha256) ON DELETE CASCADE
);
