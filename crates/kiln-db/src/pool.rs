//! Opening the database: WAL, busy timeout, one writer connection and a few read-only ones.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection as _};
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard, OwnedMutexGuard};

use crate::{Error, Result};

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
///
/// Connections are held directly, not in an sqlx pool: every statement is already a hop to the
/// connection's worker thread, and the pool adds a `ping` hop on every release. The writer is
/// one connection behind a fair async mutex (writes queue in arrival order); readers are a
/// small set of lazily opened read-only connections.
#[derive(Clone)]
pub struct Db {
    pub(crate) writer: Arc<Mutex<Writer>>,
    readers: Arc<Readers>,
    pub(crate) snapshot_every: i64,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("readers", &self.readers.slots.len())
            .field("snapshot_every", &self.snapshot_every)
            .finish_non_exhaustive()
    }
}

/// The one writer connection and what only the writer may touch.
pub(crate) struct Writer {
    pub(crate) conn: SqliteConnection,
    /// A transaction may be open on `conn` that nobody will finish (its future was dropped,
    /// or a statement batch stopped half-way). The next holder rolls it back first.
    pub(crate) dirty: bool,
    /// Branch heads as this process last wrote them, for the append fast path. Only a hint:
    /// the fast path re-checks every field in SQL and falls back to the full path on a miss.
    pub(crate) heads: HashMap<(String, String), CachedHead>,
}

/// A branch head as the writer last left it.
#[derive(Debug, Clone)]
pub(crate) struct CachedHead {
    pub id: String,
    pub segment: i64,
    pub seq: i64,
    pub total_tokens: i64,
    pub version: i64,
    /// The head node's hash, which the next node's hash chains to.
    pub hash: Option<Vec<u8>>,
}

/// At most this many cached heads; the cache is cleared when it would grow past it.
const MAX_CACHED_HEADS: usize = 4096;

impl Writer {
    /// Rolls back a transaction left open by a dropped or failed write.
    pub(crate) async fn settle(&mut self) {
        if self.dirty {
            // "no transaction is active" is the expected error when the batch had finished.
            let _ = sqlx::query("ROLLBACK").execute(&mut self.conn).await;
            self.dirty = false;
        }
    }

    pub(crate) fn remember(&mut self, session: &str, branch: &str, head: CachedHead) {
        if self.heads.len() >= MAX_CACHED_HEADS {
            self.heads.clear();
        }
        self.heads
            .insert((session.to_string(), branch.to_string()), head);
    }
}

/// The writer connection, held.
pub(crate) type WriteConn = OwnedMutexGuard<Writer>;

/// A write transaction (`BEGIN IMMEDIATE`) on the writer connection. Dropped without
/// [`Tx::commit`], it is rolled back before the writer is used again.
pub(crate) struct Tx {
    w: WriteConn,
    lock: Arc<Mutex<Writer>>,
}

impl Tx {
    pub(crate) async fn commit(mut self) -> Result<()> {
        sqlx::query("COMMIT").execute(&mut self.w.conn).await?;
        self.w.dirty = false;
        Ok(())
    }

    /// The writer behind this transaction (for the head cache).
    pub(crate) fn writer(&mut self) -> &mut Writer {
        &mut self.w
    }
}

impl Deref for Tx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.w.conn
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.w.conn
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        if self.w.dirty
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            // Taking the lock after this guard is released runs the rollback at once rather
            // than at the next write, so the file's write lock is not held meanwhile.
            let lock = Arc::clone(&self.lock);
            rt.spawn(async move { lock.lock().await.settle().await });
        }
    }
}

/// Read-only connections, opened on first use.
struct Readers {
    slots: Box<[Mutex<Option<SqliteConnection>>]>,
    next: AtomicUsize,
    options: SqliteConnectOptions,
}

/// A read-only connection, held.
pub(crate) struct ReadConn<'a>(MappedMutexGuard<'a, SqliteConnection>);

impl Deref for ReadConn<'_> {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.0
    }
}

impl DerefMut for ReadConn<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.0
    }
}

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
        let mut conn = base.connect().await?;
        sqlx::migrate!("../../migrations/sqlite")
            .run(&mut conn)
            .await?;
        crate::chain::backfill(&mut conn).await?;
        let slots = (0..opts.max_readers.max(1))
            .map(|_| Mutex::new(None))
            .collect();
        Ok(Self {
            writer: Arc::new(Mutex::new(Writer {
                conn,
                dirty: false,
                heads: HashMap::new(),
            })),
            readers: Arc::new(Readers {
                slots,
                next: AtomicUsize::new(0),
                options: base.read_only(true),
            }),
            snapshot_every: i64::from(opts.snapshot_every.max(1)),
        })
    }

    /// Takes the writer connection (waiting for earlier writers), with no transaction open.
    pub(crate) async fn writer(&self) -> WriteConn {
        let mut w = Arc::clone(&self.writer).lock_owned().await;
        w.settle().await;
        w
    }

    /// Starts a write transaction on the one writer connection.
    pub(crate) async fn write(&self) -> Result<Tx> {
        self.begin(self.writer().await).await
    }

    /// Starts a write transaction on a writer connection already held.
    pub(crate) async fn begin(&self, mut w: WriteConn) -> Result<Tx> {
        w.dirty = true;
        // dialect: BEGIN IMMEDIATE takes SQLite's write lock up front: PostgreSQL uses BEGIN (row locks as it goes)
        sqlx::query("BEGIN IMMEDIATE").execute(&mut w.conn).await?;
        Ok(Tx {
            w,
            lock: Arc::clone(&self.writer),
        })
    }

    /// Takes a read-only connection: the first free one (so a quiet store keeps reusing one
    /// connection and its warm page cache), else waits for one in turn.
    pub(crate) async fn read(&self) -> Result<ReadConn<'_>> {
        let slots = &self.readers.slots;
        let free = slots.iter().find_map(|slot| slot.try_lock().ok());
        let mut guard = match free {
            Some(g) => g,
            None => {
                let next = self.readers.next.fetch_add(1, Ordering::Relaxed) % slots.len();
                slots[next].lock().await
            }
        };
        if guard.is_none() {
            *guard = Some(self.readers.options.connect().await?);
        }
        MutexGuard::try_map(guard, Option::as_mut)
            .map(ReadConn)
            .map_err(|_| Error::Corrupt("reader connection missing after open".into()))
    }

    /// Returns the journal mode and synchronous setting in force, as SQLite reports them.
    pub async fn durability(&self) -> Result<(String, String)> {
        let mut w = self.writer().await;
        // dialect: PRAGMA journal_mode: PostgreSQL has no journal mode (SHOW wal_level is the nearest)
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut w.conn)
            .await?;
        // dialect: PRAGMA synchronous: PostgreSQL uses SHOW synchronous_commit (text, not 0..3)
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut w.conn)
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
        let mut w = self.writer().await;
        // dialect: VACUUM INTO: PostgreSQL has no in-SQL copy (pg_dump)
        sqlx::query("VACUUM INTO $1")
            .bind(dest)
            .execute(&mut w.conn)
            .await?;
        Ok(())
    }

    /// Checkpoints the WAL into the main file and closes the read connections (the writer
    /// closes when the last clone of this store is dropped).
    pub async fn close(&self) {
        for slot in &self.readers.slots {
            if let Some(conn) = slot.lock().await.take() {
                let _ = conn.close().await;
            }
        }
        let mut w = self.writer().await;
        // dialect: PRAGMA wal_checkpoint: PostgreSQL uses CHECKPOINT (or nothing on close)
        let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut w.conn)
            .await;
    }
}

/// Returns the current time as stored: RFC 3339, UTC, microseconds.
pub fn now() -> String {
    stamp(chrono::Utc::now())
}

/// Formats a time as the store keeps times (RFC 3339, UTC, microseconds), so stored times
/// compare correctly as text.
pub fn stamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
