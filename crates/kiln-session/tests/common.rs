//! Shared set-up for the session manager's integration tests: a real SQLite file in a temp dir,
//! or, with `KILN_TEST_BACKEND=postgres` (scripts/test), a fresh database on the PostgreSQL
//! server `KILN_TEST_DATABASE_URL` names: the same tests on both backends.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use kiln_db::testing::Scratch;
use kiln_session::{Caller, Config, CreateSession, EventInput, MessageInput, SessionManager};
use kiln_types::Role;
use serde_json::Value;

pub struct Env {
    pub dir: tempfile::TempDir,
    pub mgr: SessionManager,
    pub alice: Caller,
    pub bob: Caller,
    /// The PostgreSQL database behind `mgr` on that backend; dropped after `mgr`.
    pub db: Option<Scratch>,
}

/// The PostgreSQL database each data directory's store lives in, on that backend, so a test
/// that reopens a directory reopens its database.
static DATABASES: Mutex<Option<HashMap<PathBuf, String>>> = Mutex::new(None);
/// Databases made for directories no `Env` owns; dropped by `scripts/pg` with its server.
static KEPT: Mutex<Vec<Scratch>> = Mutex::new(Vec::new());

/// Makes `url` the database of `dir` (a child process told its parent's).
pub fn remember(dir: &Path, url: &str) {
    DATABASES
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .insert(dir.to_path_buf(), url.to_owned());
}

/// Whether this run's stores are on PostgreSQL.
pub fn on_postgres() -> bool {
    kiln_db::testing::on_postgres()
}

/// Returns a configuration on `dir` with a small snapshot interval, so tests cross snapshots;
/// on PostgreSQL its store is the directory's database (made on first use).
pub fn config(dir: &Path, snapshot_every: u32) -> Config {
    let mut config = Config::default();
    config.storage.data_dir = dir.to_path_buf();
    config.storage.snapshot_every = snapshot_every;
    if on_postgres() {
        let known = DATABASES
            .lock()
            .unwrap()
            .as_ref()
            .and_then(|m| m.get(dir).cloned());
        config.database.url = known.unwrap_or_else(|| {
            let scratch = Scratch::blocking();
            let url = scratch.url.clone();
            remember(dir, &url);
            KEPT.lock().unwrap().push(scratch);
            url
        });
    }
    config
}

pub async fn env() -> Env {
    env_with(4).await
}

pub async fn env_with(snapshot_every: u32) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let db = Scratch::for_backend();
    if let Some(db) = &db {
        remember(dir.path(), &db.url);
    }
    let mgr = SessionManager::open(&config(dir.path(), snapshot_every))
        .await
        .unwrap();
    let (a, _) = mgr.add_user("alice", true).await.unwrap();
    let (b, _) = mgr.add_user("bob", false).await.unwrap();
    Env {
        dir,
        mgr,
        alice: a.into(),
        bob: b.into(),
        db,
    }
}

impl Env {
    /// Creates an interactive session owned by alice and returns its id.
    pub async fn session(&self, name: &str) -> String {
        self.mgr
            .create_session(
                &self.alice,
                CreateSession {
                    name: name.into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .id
    }

    /// Appends a message as alice and returns the new head.
    pub async fn say(&self, session: &str, branch: &str, role: Role, content: &str) -> String {
        self.mgr
            .append_message(&self.alice, session, branch, msg(role, content))
            .await
            .unwrap()
            .head
    }

    /// Records a state event (JSON with a `kind`) as alice and returns the new head.
    pub async fn record(&self, session: &str, branch: &str, event: Value) -> String {
        self.mgr
            .append_event(&self.alice, session, branch, ev(event))
            .await
            .unwrap()
            .head
    }

    pub async fn head(&self, session: &str, branch: &str) -> String {
        let branches = self.mgr.branches(&self.alice, session, true).await.unwrap();
        branches
            .into_iter()
            .find(|b| b.name == branch)
            .map(|b| b.head)
            .unwrap()
    }

    /// Returns the contents of a branch's conversation, oldest first.
    pub async fn contents(&self, session: &str, branch: &str) -> Vec<String> {
        let page = self
            .mgr
            .messages(&self.alice, session, branch, Some(1000), None)
            .await
            .unwrap();
        page.items.into_iter().rev().map(|n| n.content).collect()
    }
}

pub fn msg(role: Role, content: &str) -> MessageInput {
    MessageInput {
        role,
        content: content.into(),
        expected_head: None,
    }
}

pub fn ev(v: Value) -> EventInput {
    serde_json::from_value(v).unwrap()
}

/// Asserts that a result failed with the given code and returns the error.
#[track_caller]
pub fn code<T: std::fmt::Debug>(r: kiln_session::Result<T>, code: &str) -> kiln_session::Error {
    match r {
        Ok(v) => panic!("expected `{code}`, got Ok({v:?})"),
        Err(e) => {
            assert_eq!(
                e.code, code,
                "unexpected error: {} ({:?})",
                e.message, e.details
            );
            e
        }
    }
}

/// A value bound into a raw statement.
pub enum Arg {
    Text(String),
    Int(i64),
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(v.to_owned())
    }
}

impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Arg::Text(v.clone())
    }
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}

/// A connection straight to the store behind an `Env`, for tests that write what no API would
/// accept (tampering, hostile stored values). Statements use `$N` parameters, as both take.
pub enum Raw {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Env {
    /// Opens a [`Raw`] connection to this environment's store.
    pub async fn raw(&self) -> Raw {
        use sqlx::Connection;
        match &self.db {
            Some(db) => Raw::Postgres(sqlx::PgConnection::connect(&db.url).await.unwrap()),
            None => {
                let url = format!("sqlite://{}", self.dir.path().join("kiln.db").display());
                Raw::Sqlite(sqlx::SqliteConnection::connect(&url).await.unwrap())
            }
        }
    }
}

impl Raw {
    pub fn is_postgres(&self) -> bool {
        matches!(self, Raw::Postgres(_))
    }

    /// Runs `sql` with `args`; returns the rows it changed.
    pub async fn exec(&mut self, sql: &str, args: &[Arg]) -> u64 {
        macro_rules! run {
            ($conn:expr) => {{
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
                for a in args {
                    q = match a {
                        Arg::Text(t) => q.bind(t.clone()),
                        Arg::Int(i) => q.bind(*i),
                    };
                }
                q.execute($conn).await.unwrap().rows_affected()
            }};
        }
        match self {
            Raw::Sqlite(c) => run!(c),
            Raw::Postgres(c) => run!(c),
        }
    }

    /// The one integer `sql` selects.
    pub async fn count(&mut self, sql: &str) -> i64 {
        match self {
            Raw::Sqlite(c) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
                .fetch_one(c)
                .await
                .unwrap(),
            Raw::Postgres(c) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
                .fetch_one(c)
                .await
                .unwrap(),
        }
    }
}
