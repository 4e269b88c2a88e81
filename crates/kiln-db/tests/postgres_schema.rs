//! PostgreSQL parity: `migrations/postgres` builds the same schema as `migrations/sqlite`
//! (tables, columns with type class, nullability, default and key position, unique sets,
//! foreign keys, checks, index names and definitions, trigger names and firing) but for the
//! declared distribution keys (`Schema::distributed`), which hold on every distributed table
//! (`distribution_violations`); it applies twice without change, and its triggers behave as
//! SQLite's (the same statements run on both and must leave the same rows). The PostgreSQL
//! tests need a server:
//! `scripts/pg run cargo test -p kiln-db --test postgres_schema -- --include-ignored`.

use std::collections::BTreeSet;
use std::path::Path;

mod support;

use kiln_db::{
    Db, DbOptions, Error, Schema, describe_postgres, describe_sqlite, distribution_violations,
    migrate_postgres,
};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection, SqliteConnection};
use support::Scratch;

/// A new SQLite store at `path`, opened (so migrated) and closed as Kiln does.
async fn sqlite_store(path: &Path) {
    let db = Db::open(path, &DbOptions::default()).await.unwrap();
    db.close().await;
}

async fn sqlite_conn(path: &Path) -> SqliteConnection {
    SqliteConnectOptions::new()
        .filename(path)
        .foreign_keys(true)
        .connect()
        .await
        .unwrap()
}

/// Both directories hold the same migrations: versions and descriptions, in order (no server
/// needed).
#[tokio::test]
async fn both_dialects_have_the_same_migration_list() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations/sqlite");
    let sqlite = sqlx::migrate::Migrator::new(dir).await.unwrap();
    let sqlite: Vec<(i64, String)> = sqlite
        .iter()
        .map(|m| (m.version, m.description.to_string()))
        .collect();
    assert!(
        sqlite.len() >= 17,
        "the SQLite migrations were not found: {sqlite:?}"
    );
    assert_eq!(kiln_db::postgres_migrations(), sqlite);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/pg runs it (KILN_TEST_DATABASE_URL)"]
async fn both_migration_sets_build_the_same_schema() {
    let scratch = Scratch::new().await;
    let url = scratch.url.clone();
    {
        migrate_postgres(&url).await.unwrap();
        let postgres = describe_postgres(&url).await.unwrap();
        // Applying them again changes nothing.
        migrate_postgres(&url).await.unwrap();
        assert_eq!(describe_postgres(&url).await.unwrap(), postgres);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kiln.db");
        sqlite_store(&path).await;
        let sqlite = describe_sqlite(&path).await.unwrap();

        // Both record the same applied versions, all successful.
        let query = "SELECT version, description, success FROM _sqlx_migrations ORDER BY version";
        let mut pg = PgConnection::connect(&url).await.unwrap();
        let pg_applied: Vec<(i64, String, bool)> =
            sqlx::query_as(query).fetch_all(&mut pg).await.unwrap();
        let mut lite = sqlite_conn(&path).await;
        let lite_applied: Vec<(i64, String, bool)> =
            sqlx::query_as(query).fetch_all(&mut lite).await.unwrap();
        assert_eq!(pg_applied, lite_applied);
        assert!(pg_applied.iter().all(|m| m.2));
        assert_eq!(pg_applied.len(), kiln_db::postgres_migrations().len());

        // The description is not empty on either side (a broken reader would compare equal).
        assert_eq!(sqlite.tables.len(), 31, "{:?}", sqlite.tables.keys());
        let count = |s: &Schema, f: fn(&kiln_db::Table) -> usize| -> usize {
            s.tables.values().map(f).sum()
        };
        assert_eq!(count(&sqlite, |t| t.triggers.len()), 15);
        assert_eq!(count(&sqlite, |t| t.checks.len()), 7);
        assert_eq!(count(&sqlite, |t| t.indexes.len()), 24);
        assert!(count(&sqlite, |t| t.foreign_keys.len()) >= 20);

        // PostgreSQL is SQLite with the distribution keys (kiln_db::DISTRIBUTED), exactly.
        let expected = sqlite.distributed();
        let differences = expected.differences(&postgres, "sqlite", "postgres");
        assert!(
            differences.is_empty(),
            "the PostgreSQL schema differs from SQLite's (with the distribution keys) in {} \
             place(s):\n{}",
            differences.len(),
            differences.join("\n")
        );
        // The rule is not vacuous: it changes the keys migration 0019 changed, and only those
        // tables' (the seven keyed by `id` alone, and nodes).
        let changed: Vec<&String> = sqlite
            .tables
            .iter()
            .filter(|(name, t)| expected.tables[name.as_str()] != **t)
            .map(|(name, _)| name)
            .collect();
        assert_eq!(
            changed,
            [
                "audit_log",
                "merges",
                "nodes",
                "reflog",
                "search_outbox",
                "segments",
                "session_events",
                "share_links"
            ],
            "tables whose keys the distribution rule changes"
        );
        assert!(sqlite.differences(&postgres, "sqlite", "postgres").len() >= 10);

        // The explicit rowid column is only where Kiln's SQL reads a table's rowid (nodes:
        // search, live events, statistics, hash backfill), and SQLite has one there too.
        assert_eq!(
            postgres.rowid,
            BTreeSet::from(["nodes".to_string()]),
            "PostgreSQL tables with an explicit rowid"
        );
        assert!(postgres.rowid.is_subset(&sqlite.rowid));
    }
}

/// One connection of either dialect; every statement below is the same text on both.
enum Conn {
    Sqlite(SqliteConnection),
    Pg(PgConnection),
}

impl Conn {
    fn name(&self) -> &'static str {
        match self {
            Conn::Sqlite(_) => "sqlite",
            Conn::Pg(_) => "postgres",
        }
    }

    async fn try_run(&mut self, sql: &'static str) -> Result<u64, sqlx::Error> {
        match self {
            Conn::Sqlite(c) => sqlx::query(sql).execute(c).await.map(|r| r.rows_affected()),
            Conn::Pg(c) => sqlx::query(sql).execute(c).await.map(|r| r.rows_affected()),
        }
    }

    async fn run(&mut self, sql: &'static str) -> u64 {
        let name = self.name();
        self.try_run(sql)
            .await
            .unwrap_or_else(|e| panic!("{name}: {sql}: {e}"))
    }

    /// Runs a write the protection triggers must refuse, and checks how.
    async fn refused(&mut self, sql: &'static str) {
        let name = self.name();
        let e = self
            .try_run(sql)
            .await
            .err()
            .unwrap_or_else(|| panic!("{name}: a protected session accepted {sql}"));
        let message = e.as_database_error().map(|d| d.message().to_string());
        assert_eq!(
            message.as_deref(),
            Some("session_protected"),
            "{name}: {sql}"
        );
        assert!(
            matches!(Error::from(e), Error::Protected),
            "{name}: {sql} is not Error::Protected"
        );
    }

    async fn text(&mut self, sql: &'static str) -> Option<String> {
        match self {
            Conn::Sqlite(c) => sqlx::query_scalar(sql).fetch_optional(c).await,
            Conn::Pg(c) => sqlx::query_scalar(sql).fetch_optional(c).await,
        }
        .unwrap()
    }

    async fn int(&mut self, sql: &'static str) -> i64 {
        match self {
            Conn::Sqlite(c) => sqlx::query_scalar(sql).fetch_one(c).await,
            Conn::Pg(c) => sqlx::query_scalar(sql).fetch_one(c).await,
        }
        .unwrap()
    }

    async fn outbox(&mut self) -> Vec<(String, Option<i64>, String)> {
        let sql = "SELECT session_id, node_rowid, op FROM search_outbox ORDER BY id";
        match self {
            Conn::Sqlite(c) => sqlx::query_as(sql).fetch_all(c).await,
            Conn::Pg(c) => sqlx::query_as(sql).fetch_all(c).await,
        }
        .unwrap()
    }

    async fn activity(&mut self) -> String {
        self.text("SELECT last_activity_at FROM sessions WHERE id = 's1'")
            .await
            .unwrap_or_default()
    }
}

/// Exercises every trigger through plain SQL and returns what it saw: the outbox and the
/// session's last activity after each step. Asserts the expected values on the way.
async fn trigger_script(db: &mut Conn) -> Vec<String> {
    let name = db.name();
    let mut seen = Vec::new();
    db.run(
        "INSERT INTO users (id, name, is_owner, created_at) \
         VALUES ('u1', 'ada', 1, '2026-01-01T00:00:00.000000Z')",
    )
    .await;
    db.run(
        "INSERT INTO sessions (id, owner_id, name, session_type, status, created_at, updated_at, \
         last_activity_at) VALUES ('s1', 'u1', 'one', 'research', 'active', \
         '2026-01-01T00:00:01.000000Z', '2026-01-01T00:00:01.000000Z', \
         '2026-01-01T00:00:01.000000Z')",
    )
    .await;
    assert_eq!(
        db.outbox().await,
        [("s1".into(), None, "session".into())],
        "{name}"
    );

    // A node goes to the outbox with its rowid.
    db.run("INSERT INTO segments (session_id) VALUES ('s1')")
        .await;
    db.run(
        "INSERT INTO nodes (id, session_id, segment_id, seq, kind, created_at) \
         VALUES ('n1', 's1', (SELECT id FROM segments WHERE session_id = 's1'), 0, 'root', \
         '2026-01-01T00:00:01.000000Z')",
    )
    .await;
    let rowid = db.int("SELECT rowid FROM nodes WHERE id = 'n1'").await;
    let outbox = db.outbox().await;
    assert_eq!(
        outbox.last(),
        Some(&("s1".into(), Some(rowid), "node".into())),
        "{name}"
    );
    seen.push(format!("node: {outbox:?}"));

    // Branch writes move the session's last activity forward, never back.
    db.run(
        "INSERT INTO branches (session_id, name, head_id, base_id, created_at, updated_at) \
         VALUES ('s1', 'main', 'n1', 'n1', '2026-01-01T00:00:02.000000Z', \
         '2026-01-01T00:00:02.000000Z')",
    )
    .await;
    assert_eq!(db.activity().await, "2026-01-01T00:00:02.000000Z", "{name}");
    db.run("UPDATE branches SET updated_at = '2026-01-01T00:00:03.000000Z', version = 2")
        .await;
    assert_eq!(db.activity().await, "2026-01-01T00:00:03.000000Z", "{name}");
    db.run("UPDATE branches SET updated_at = '2026-01-01T00:00:00.500000Z'")
        .await;
    assert_eq!(db.activity().await, "2026-01-01T00:00:03.000000Z", "{name}");

    // So does touching the session (only forward), and an audit entry.
    db.run("UPDATE sessions SET updated_at = '2026-01-01T00:00:04.000000Z' WHERE id = 's1'")
        .await;
    assert_eq!(db.activity().await, "2026-01-01T00:00:04.000000Z", "{name}");
    db.run("UPDATE sessions SET updated_at = '2026-01-01T00:00:01.500000Z' WHERE id = 's1'")
        .await;
    assert_eq!(db.activity().await, "2026-01-01T00:00:04.000000Z", "{name}");
    db.run(
        "INSERT INTO audit_log (session_id, seq, actor, action, payload, at, prev_hash, hash) \
         VALUES ('s1', 1, 'u1', 'x', '{}', '2026-01-01T00:00:05.000000Z', 'p', 'h')",
    )
    .await;
    assert_eq!(db.activity().await, "2026-01-01T00:00:05.000000Z", "{name}");
    db.run(
        "INSERT INTO audit_log (session_id, seq, actor, action, payload, at, prev_hash, hash) \
         VALUES ('s1', 2, 'u1', 'x', '{}', '2026-01-01T00:00:00.000000Z', 'h', 'h2')",
    )
    .await;
    assert_eq!(db.activity().await, "2026-01-01T00:00:05.000000Z", "{name}");
    seen.push(format!("activity: {}", db.activity().await));

    // Session changes: own document (name, description, status), meta (tags, project, type,
    // owner: named in the SET even when unchanged), nothing for the rest.
    let before = db.outbox().await.len();
    for sql in [
        "UPDATE sessions SET name = 'renamed' WHERE id = 's1'",
        "UPDATE sessions SET status = 'paused' WHERE id = 's1'",
        "UPDATE sessions SET tags = '[\"x\"]' WHERE id = 's1'",
        "UPDATE sessions SET owner_id = 'u1' WHERE id = 's1'",
        "UPDATE sessions SET metadata = '{\"k\": 1}' WHERE id = 's1'",
    ] {
        db.run(sql).await;
    }
    let ops: Vec<String> = db.outbox().await[before..]
        .iter()
        .map(|e| e.2.clone())
        .collect();
    assert_eq!(ops, ["session", "session", "meta", "meta"], "{name}");

    // Deleting a track batch deletes its chunks.
    db.run(
        "INSERT INTO track_batches (session_id, batch, track, count, stats, created_at) \
         VALUES ('s1', 1, 'loss', 2, '{}', '2026-01-01T00:00:06.000000Z')",
    )
    .await;
    db.run(
        "INSERT INTO track_chunks (session_id, batch, chunk, count, points) \
         VALUES ('s1', 1, 0, 1, '{}'), ('s1', 1, 1, 1, '{}'), ('s1', 2, 0, 1, '{}')",
    )
    .await;
    db.run("DELETE FROM track_batches WHERE session_id = 's1' AND batch = 1")
        .await;
    assert_eq!(
        db.int("SELECT COUNT(*) FROM track_chunks").await,
        1,
        "{name}: only the other batch's chunk is left"
    );

    // A protected session's tree refuses every write, with SQLite's message.
    db.run(
        "UPDATE sessions SET protected_at = '2026-01-01T00:00:07.000000Z', protected_by = 'u1' \
         WHERE id = 's1'",
    )
    .await;
    let outbox_before = db.outbox().await;
    db.refused(
        "INSERT INTO nodes (id, session_id, segment_id, seq, kind, created_at) \
         VALUES ('n2', 's1', (SELECT id FROM segments WHERE session_id = 's1'), 1, 'message', \
         '2026-01-01T00:00:08.000000Z')",
    )
    .await;
    db.refused(
        "INSERT INTO branches (session_id, name, head_id, base_id, created_at, updated_at) \
         VALUES ('s1', 'side', 'n1', 'n1', '2026-01-01T00:00:08.000000Z', \
         '2026-01-01T00:00:08.000000Z')",
    )
    .await;
    db.refused("UPDATE branches SET head_id = 'n1', updated_at = '2026-01-01T00:00:08.000000Z'")
        .await;
    db.refused(
        "INSERT INTO refs (session_id, name, node_id, created_at) \
         VALUES ('s1', 'cp', 'n1', '2026-01-01T00:00:08.000000Z')",
    )
    .await;
    db.refused(
        "INSERT INTO track_batches (session_id, batch, track, count, stats, created_at) \
         VALUES ('s1', 2, 'loss', 1, '{}', '2026-01-01T00:00:08.000000Z')",
    )
    .await;
    assert_eq!(
        db.outbox().await,
        outbox_before,
        "{name}: refused writes leave no trace"
    );
    assert_eq!(db.int("SELECT COUNT(*) FROM nodes").await, 1, "{name}");
    assert_eq!(db.activity().await, "2026-01-01T00:00:05.000000Z", "{name}");
    // Unprotected, it takes writes again.
    db.run("UPDATE sessions SET protected_at = NULL, protected_by = NULL WHERE id = 's1'")
        .await;
    db.run(
        "INSERT INTO refs (session_id, name, node_id, created_at) \
         VALUES ('s1', 'cp', 'n1', '2026-01-01T00:00:09.000000Z')",
    )
    .await;

    // Foreign keys hold: no node of a session that does not exist.
    assert!(
        db.try_run(
            "INSERT INTO nodes (id, session_id, segment_id, seq, kind, created_at) \
             VALUES ('n9', 'nope', (SELECT id FROM segments WHERE session_id = 's1'), 9, \
             'message', '2026-01-01T00:00:09.000000Z')",
        )
        .await
        .is_err(),
        "{name}: a node of a missing session was accepted"
    );

    // Deleting the session cascades to its tree and tells the outbox.
    db.run("DELETE FROM sessions WHERE id = 's1'").await;
    assert_eq!(db.int("SELECT COUNT(*) FROM nodes").await, 0, "{name}");
    assert_eq!(db.int("SELECT COUNT(*) FROM branches").await, 0, "{name}");
    assert_eq!(db.int("SELECT COUNT(*) FROM refs").await, 0, "{name}");
    let outbox = db.outbox().await;
    assert_eq!(
        outbox.last(),
        Some(&("s1".into(), None, "delete".into())),
        "{name}"
    );
    seen.push(format!("outbox: {outbox:?}"));
    seen
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/pg runs it (KILN_TEST_DATABASE_URL)"]
async fn triggers_behave_alike_on_both() {
    let scratch = Scratch::new().await;
    let url = scratch.url.clone();
    {
        migrate_postgres(&url).await.unwrap();
        let mut pg = Conn::Pg(PgConnection::connect(&url).await.unwrap());
        let on_postgres = trigger_script(&mut pg).await;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kiln.db");
        sqlite_store(&path).await;
        let mut lite = Conn::Sqlite(sqlite_conn(&path).await);
        let on_sqlite = trigger_script(&mut lite).await;

        assert_eq!(
            on_postgres, on_sqlite,
            "the same statements left different rows"
        );
    }
}

/// Every table distributed by session can be distributed as Citus requires: each unique key
/// holds the distribution column, each foreign key between two such tables pairs theirs, and
/// every table with a `session_id` is accounted for. A migration that breaks this fails here.
#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/pg runs it (KILN_TEST_DATABASE_URL)"]
async fn distribution_keys_hold_on_postgres() {
    let scratch = Scratch::new().await;
    migrate_postgres(&scratch.url).await.unwrap();
    let found = distribution_violations(&scratch.url).await.unwrap();
    assert!(found.is_empty(), "{}", found.join("\n"));

    // Each kind of break is reported, one line each.
    let mut pg = PgConnection::connect(&scratch.url).await.unwrap();
    for sql in [
        "ALTER TABLE reflog DROP CONSTRAINT reflog_pkey, ADD PRIMARY KEY (id)",
        "CREATE UNIQUE INDEX nodes_seq_only ON nodes(segment_id, seq)",
        "ALTER TABLE nodes DROP CONSTRAINT nodes_rowid_session_id_key, ADD UNIQUE (rowid)",
        "ALTER TABLE nodes DROP CONSTRAINT nodes_segment_id_session_id_fkey",
        "ALTER TABLE segments ADD UNIQUE (id)",
        "ALTER TABLE nodes ADD FOREIGN KEY (segment_id) REFERENCES segments(id)",
        "ALTER TABLE user_memory ADD FOREIGN KEY (session_id) REFERENCES sessions(id)",
        "CREATE TABLE notes (session_id text NOT NULL, body text)",
    ] {
        sqlx::query(sql).execute(&mut pg).await.unwrap();
    }
    let found = distribution_violations(&scratch.url).await.unwrap();
    eprintln!("{}", found.join("\n"));
    let expected = [
        "table reflog: unique key reflog_pkey (id) lacks session_id",
        "table nodes: unique key nodes_seq_only (segment_id, seq) lacks session_id",
        "table nodes: unique key nodes_rowid_key (rowid) lacks session_id",
        "table segments: unique key segments_id_key (id) lacks session_id",
        "table nodes: foreign key nodes_segment_id_fkey (segment_id) -> segments (id) does not \
         pair session_id with session_id",
        "table user_memory: foreign key user_memory_session_id_fkey into distributed table \
         sessions from a table that is not distributed",
        "table notes: has session_id but is neither in DISTRIBUTED nor in \
         NOT_DISTRIBUTED_BY_SESSION",
    ];
    for e in expected {
        assert!(
            found.iter().any(|f| f == e),
            "{e:?} not in:\n{}",
            found.join("\n")
        );
    }
    assert_eq!(found.len(), expected.len(), "{}", found.join("\n"));
}

/// The comparison is not vacuous: each kind of drift in the PostgreSQL schema is reported, one
/// readable line per difference.
#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/pg runs it (KILN_TEST_DATABASE_URL)"]
async fn drift_is_reported() {
    let scratch = Scratch::new().await;
    migrate_postgres(&scratch.url).await.unwrap();
    let mut pg = PgConnection::connect(&scratch.url).await.unwrap();
    for sql in [
        "ALTER TABLE users ALTER COLUMN is_owner DROP DEFAULT",
        "ALTER TABLE refs ALTER COLUMN auto TYPE integer",
        "DROP INDEX nodes_summary",
        "CREATE INDEX nodes_kind ON nodes(kind)",
        "ALTER TABLE batches DROP CONSTRAINT batches_mode_check",
        "DROP TRIGGER refs_protected ON refs",
        "ALTER TABLE presence DROP CONSTRAINT presence_user_id_fkey",
        "ALTER TABLE presence ADD FOREIGN KEY (user_id) REFERENCES users(id)",
        "ALTER TABLE audit_log DROP CONSTRAINT audit_log_session_id_seq_key",
        // A distribution key undone is drift too.
        "ALTER TABLE merges DROP CONSTRAINT merges_pkey, ADD PRIMARY KEY (id)",
        "ALTER TABLE share_links DROP CONSTRAINT share_links_token_hash_session_id_key",
    ] {
        sqlx::query(sql).execute(&mut pg).await.unwrap();
    }
    let postgres = describe_postgres(&scratch.url).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kiln.db");
    sqlite_store(&path).await;
    let sqlite = describe_sqlite(&path).await.unwrap().distributed();
    let differences = sqlite.differences(&postgres, "sqlite", "postgres");
    eprintln!("{}", differences.join("\n"));
    let expected = [
        "table users, column is_owner",
        "table refs, column auto",
        "table nodes: index nodes_summary only in sqlite",
        "table nodes: index nodes_kind only in postgres",
        "table batches: check \"mode in 'branches' , 'shared'\" only in sqlite",
        "table refs: trigger refs_protected only in sqlite",
        "table presence: foreign key",
        "table audit_log: unique [\"session_id\", \"seq\"] only in sqlite",
        "table merges, column session_id",
        "table share_links: unique [\"token_hash\", \"session_id\"] only in sqlite",
    ];
    for e in expected {
        assert!(
            differences.iter().any(|d| d.starts_with(e)),
            "no difference starting with {e:?} in:\n{}",
            differences.join("\n")
        );
    }
    // The foreign key shows up on both sides (its ON DELETE differs).
    assert_eq!(
        differences.len(),
        expected.len() + 1,
        "{}",
        differences.join("\n")
    );
}

/// Copies `dialect`'s migrations before 0008 into `scratch`, for a database from before it.
async fn migrations_before_owners(dialect: &str, scratch: &Path) -> sqlx::migrate::Migrator {
    let all = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../migrations")
        .join(dialect);
    for entry in std::fs::read_dir(&all).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.as_str() < "0008" {
            std::fs::copy(entry.path(), scratch.join(&name)).unwrap();
        }
    }
    let before = sqlx::migrate::Migrator::new(scratch).await.unwrap();
    assert_eq!(before.iter().count(), 7);
    before
}

/// Legacy templates (before 0008), as plain SQL both dialects run.
const LEGACY: &str = r#"
INSERT INTO users (id, name, is_owner, created_at) VALUES
    ('u-bob', 'bob', 0, '2025-01-01T00:00:00Z'),
    ('u-admin', 'root', 1, '2025-01-02T00:00:00Z'),
    ('u-carol', 'carol', 0, '2025-01-03T00:00:00Z');
INSERT INTO session_templates (name, description, body, created_by, created_at) VALUES
    ('bobs', 'bob''s', '{"name": "bobs", "session_name": "{{ 7*7 }} name", "session_description": "a {b}",
      "pins": {"k": "{v} }", "n": 5}, "focus": "{{ m }}", "hypotheses": ["{% for %}", "h"],
      "tasks": ["plain", "{"], "tags": ["t"], "duration_days": 3, "built_in": false}',
     'u-bob', '2025-01-01T00:00:00Z'),
    ('ghosts', '', '{"name": "ghosts", "session_name": "n", "built_in": true}',
     'u-gone', '2025-01-04T00:00:00Z'),
    ('nobody', 'x', '{"name": "nobody", "session_name": "{", "pins": {}, "hypotheses": [],
      "tasks": [], "focus": null}', NULL, '2025-01-05T00:00:00Z');
"#;

/// The templates after 0008, bodies parsed (key order is not meaningful).
type Moved = Vec<(String, String, String, serde_json::Value, String, String)>;

fn parse_moved(rows: Vec<(String, String, String, String, String, String)>) -> Moved {
    rows.into_iter()
        .map(|(o, n, v, b, c, u)| (o, n, v, serde_json::from_str(&b).unwrap(), c, u))
        .collect()
}

const MOVED: &str = "SELECT owner_id, name, visibility, body, created_at, updated_at \
                     FROM session_templates ORDER BY owner_id, name";

/// Migration 0008's data rewrite (owner, visibility, literal `{`) gives the same templates on
/// PostgreSQL as on SQLite.
#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/pg runs it (KILN_TEST_DATABASE_URL)"]
async fn template_owners_migrate_alike() {
    // PostgreSQL: 0001-0007, the legacy rows, then the embedded set (0008 onwards).
    let scratch = Scratch::new().await;
    let pg_dir = tempfile::tempdir().unwrap();
    let mut pg = PgConnection::connect(&scratch.url).await.unwrap();
    migrations_before_owners("postgres", pg_dir.path())
        .await
        .run(&mut pg)
        .await
        .unwrap();
    sqlx::raw_sql(LEGACY).execute(&mut pg).await.unwrap();
    migrate_postgres(&scratch.url).await.unwrap();
    let rows = sqlx::query_as(MOVED).fetch_all(&mut pg).await.unwrap();
    let on_postgres = parse_moved(rows);

    // SQLite: the same, the rest applied by opening the store.
    let dir = tempfile::tempdir().unwrap();
    let lite_dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kiln.db");
    let mut lite = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .foreign_keys(true)
        .connect()
        .await
        .unwrap();
    migrations_before_owners("sqlite", lite_dir.path())
        .await
        .run(&mut lite)
        .await
        .unwrap();
    sqlx::raw_sql(LEGACY).execute(&mut lite).await.unwrap();
    lite.close().await.unwrap();
    sqlite_store(&path).await;
    let mut lite = sqlite_conn(&path).await;
    let rows = sqlx::query_as(MOVED).fetch_all(&mut lite).await.unwrap();
    let on_sqlite = parse_moved(rows);

    assert_eq!(on_postgres, on_sqlite);
    assert_eq!(on_sqlite.len(), 3, "{on_sqlite:?}");
    let bobs = &on_sqlite.iter().find(|r| r.1 == "bobs").unwrap().3;
    assert_eq!(bobs["session_name"], "{{{{ 7*7 }} name");
    assert_eq!(bobs["pins"]["n"], "5");
    assert!(bobs.get("built_in").is_none());
    let ghosts = on_sqlite.iter().find(|r| r.1 == "ghosts").unwrap();
    assert_eq!(ghosts.0, "u-admin");
}
