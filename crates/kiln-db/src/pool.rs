//! Opening the database: WAL, busy timeout, one writer connection and a read-only pool.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

use crate::Result;

/// How the store opens its database.
#[derive(Debug, Clone)]
pub struct DbOptions {
    pub busy_timeout: Duration,
    pub max_readers: u32,
    /// A state snapshot is written every this many state events on a path.
    pub snapshot_every: u32,
    /// `synchronous = FULL` instead of `NORMAL` (WAL + NORMAL loses nothing on a process kill).
    pub synchronous_full: bool,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            busy_timeout: Duration::from_secs(5),
            max_readers: 8,
            snapshot_every: 32,
            synchronous_full: false,
        }
    }
}

/// The store: cheap to clone, shared by the server, the CLI and the jobs.
#[derive(Debug, Clone)]
pub struct Db {
    pub(crate) writer: SqlitePool,
    pub(crate) reader: SqlitePool,
    pub(crate) snapshot_every: i64,
}

pub(crate) type Tx = Transaction<'static, Sqlite>;

impl Db {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub async fn open(path: &Path, opts: &DbOptions) -> Result<Self> {
        let sync = if opts.synchronous_full {
            SqliteSynchronous::Full
        } else {
            SqliteSynchronous::Normal
        };
        let base = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(sync)
            .busy_timeout(opts.busy_timeout)
            .foreign_keys(true)
            .statement_cache_capacity(256);
        // No ping before handing out a connection: it is a local file, not a socket, and the
        // ping is one more round trip through the worker thread on every operation (the pool
        // still pings on release, which catches connections left mid-statement).
        let writer = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(base.clone())
            .await?;
        sqlx::migrate!("../../migrations").run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(opts.max_readers.max(1))
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(base.read_only(true))
            .await?;
        Ok(Self {
            writer,
            reader,
            snapshot_every: i64::from(opts.snapshot_every.max(1)),
        })
    }

    /// Starts a write transaction on the one writer connection.
    pub(crate) async fn write(&self) -> Result<Tx> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Returns the journal mode and synchronous setting in force, as SQLite reports them.
    pub async fn durability(&self) -> Result<(String, String)> {
        let mut conn = self.writer.acquire().await?;
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await?;
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await?;
        let sync = match sync {
            0 => "off",
            1 => "normal",
            2 => "full",
            _ => "extra",
        };
        Ok((mode, sync.to_string()))
    }

    /// Writes a consistent copy of the database to `dest` (`VACUUM INTO`).
    pub async fn backup_to(&self, dest: &Path) -> Result<()> {
        let dest = dest.to_string_lossy().to_string();
        sqlx::query("VACUUM INTO ?")
            .bind(dest)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Checkpoints the WAL into the main file and closes every connection.
    pub async fn close(&self) {
        let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.writer)
            .await;
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// Returns the current time as stored: RFC 3339, UTC, microseconds.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
