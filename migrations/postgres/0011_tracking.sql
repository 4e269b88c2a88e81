-- Experiment tracking (issue 16; see ARCHITECTURE.md, "Experiment tracking"): sessions found by
-- project and name, folders, write protection, and metric track points kept out of the branch's
-- JSON state.

-- A session's folder inside its project ("/" is the top; "/experiments/2026/jan").
ALTER TABLE sessions ADD COLUMN folder text NOT NULL DEFAULT '/';
-- Write protection: set by the owner, cleared only by the owner. NULL means writable.
ALTER TABLE sessions ADD COLUMN protected_at text;
ALTER TABLE sessions ADD COLUMN protected_by text;

-- Finding a session by (owner, project, name) and listing a project's folders. Not UNIQUE:
-- sessions made before names were unique per project keep working (the route reports them).
CREATE INDEX sessions_project_name ON sessions(owner_id, project, name);
CREATE INDEX sessions_project_folder ON sessions(project, folder, id);

-- The store refuses every write to a protected session's tree, whatever path it comes by (the
-- one-statement append, merges, restores, jobs): the session layer answers first, these make
-- sure nothing forgets to ask. SQLite's RAISE(ABORT, 'session_protected') is RAISE EXCEPTION
-- with the same message (SQLSTATE P0001), which kiln-db maps to Error::Protected on both.
CREATE FUNCTION nodes_protected() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT protected_at FROM sessions WHERE id = NEW.session_id) IS NOT NULL THEN
        RAISE EXCEPTION 'session_protected';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER nodes_protected BEFORE INSERT ON nodes
FOR EACH ROW EXECUTE FUNCTION nodes_protected();

CREATE FUNCTION branches_insert_protected() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT protected_at FROM sessions WHERE id = NEW.session_id) IS NOT NULL THEN
        RAISE EXCEPTION 'session_protected';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER branches_insert_protected BEFORE INSERT ON branches
FOR EACH ROW EXECUTE FUNCTION branches_insert_protected();

CREATE FUNCTION branches_update_protected() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT protected_at FROM sessions WHERE id = NEW.session_id) IS NOT NULL THEN
        RAISE EXCEPTION 'session_protected';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER branches_update_protected BEFORE UPDATE ON branches
FOR EACH ROW EXECUTE FUNCTION branches_update_protected();

CREATE FUNCTION refs_protected() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT protected_at FROM sessions WHERE id = NEW.session_id) IS NOT NULL THEN
        RAISE EXCEPTION 'session_protected';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER refs_protected BEFORE INSERT ON refs
FOR EACH ROW EXECUTE FUNCTION refs_protected();

-- Metric track points. A batch is one append (one node on the branch, whose notebook state
-- names the batch and its count); its points are stored in chunks of up to 1,000, each one row
-- holding the points as compact JSON, with the chunk's step range, so a range read fetches only
-- the chunks it needs and 1M points are about 1,000 rows. Keyed by session first, so the table
-- can be distributed by session_id without a rewrite. A batch no state names (its append
-- failed) is never read.
CREATE TABLE track_batches (
    session_id  text NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    batch       bigint NOT NULL,
    track       text NOT NULL,
    count       bigint NOT NULL,
    -- Per field: {"count", "min", "max", "sum", "last"}; the stats of a lineage add these up.
    stats       text NOT NULL,
    min_step    double precision,
    max_step    double precision,
    created_by  text,
    created_at  text NOT NULL,
    PRIMARY KEY (session_id, batch)
);

CREATE TABLE track_chunks (
    session_id  text NOT NULL,
    batch       bigint NOT NULL,
    chunk       bigint NOT NULL,
    count       bigint NOT NULL,
    min_step    double precision,
    max_step    double precision,
    -- {"fields": [names], "rows": [[value or null per field], ...]}
    points      text NOT NULL,
    PRIMARY KEY (session_id, batch, chunk)
);

CREATE FUNCTION track_batches_protected() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT protected_at FROM sessions WHERE id = NEW.session_id) IS NOT NULL THEN
        RAISE EXCEPTION 'session_protected';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER track_batches_protected BEFORE INSERT ON track_batches
FOR EACH ROW EXECUTE FUNCTION track_batches_protected();

CREATE FUNCTION track_batches_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM track_chunks WHERE session_id = OLD.session_id AND batch = OLD.batch;
    RETURN NULL;
END;
$$;
CREATE TRIGGER track_batches_deleted AFTER DELETE ON track_batches
FOR EACH ROW EXECUTE FUNCTION track_batches_deleted();
