//! Opening the database. SQLite: WAL, busy timeout, one writer connection and a few read-only
//! ones. PostgreSQL: a pool, and one advisory lock for every write transaction.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection as _};
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard, OwnedMutexGuard};

use crate::conn::{Conn, Dialect, query, run_plain};
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
/// On SQLite, connections are held directly, not in an sqlx pool: every statement is already a
/// hop to the connection's worker thread, and the pool adds a `ping` hop on every release. The
/// writer is one connection behind a fair async mutex (writes queue in arrival order); readers
/// are a small set of lazily opened read-only connections.
///
/// On PostgreSQL ([`Db::open_postgres`]), reads and writes take connections from an sqlx pool,
/// and every write transaction takes one advisory lock shared by every server on the database
/// ([`WRITE_LOCK`]): the counterpart of SQLite's single writer.
#[derive(Clone)]
pub struct Db {
    backend: Backend,
    pub(crate) snapshot_every: i64,
    /// Names this store among the processes sharing its database (a random id per open): turn
    /// notifications carry it so a listener skips its own (`notify.rs`).
    pub(crate) origin: Arc<str>,
    /// Nodes this process has appended (PostgreSQL only): a brand-new database is analyzed
    /// once when it passes [`ANALYZE_YOUNG_AFTER`].
    appended: Arc<AtomicU64>,
}

/// After this many nodes appended by one process, a PostgreSQL database whose `nodes` table
/// was never analyzed is analyzed (once). A statement prepared on empty tables keeps a generic
/// plan made without statistics, in which a lookup by `(session_id, id)` and a scan of the
/// session through the same index cost the same; until autovacuum first analyzes the table
/// (after a minute or more) the plan scans the session, and its cost grows with it. Analyzing
/// invalidates those plans. Only a database nobody analyzed yet pays it (ARCHITECTURE.md, "The
/// key order").
pub(crate) const ANALYZE_YOUNG_AFTER: u64 = 256;

#[derive(Clone)]
enum Backend {
    Lite {
        writer: Arc<Mutex<Writer>>,
        readers: Arc<Readers>,
    },
    Pg(PgPool),
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Db");
        match &self.backend {
            Backend::Lite { readers, .. } => d.field("readers", &readers.slots.len()),
            Backend::Pg(pool) => d.field("postgres_pool", &pool.size()),
        };
        d.field("snapshot_every", &self.snapshot_every)
            .finish_non_exhaustive()
    }
}

/// The key of the one PostgreSQL advisory lock every write transaction takes
/// (`pg_advisory_xact_lock`), on every server: writes are serialised as on SQLite's single
/// writer, and node rows commit in rowid order (the frontier a live watcher starts from relies
/// on it: live.rs). Correctness first: per-session locks (`hashtextextended(session_id, 0)`,
/// so writers of different sessions run in parallel) are the later refinement ARCHITECTURE.md
/// plans.
pub(crate) const WRITE_LOCK: i64 = 0x6b69_6c6e_0001; // "kiln", 1

/// A writer connection and what only the writer may touch.
pub(crate) struct Writer {
    pub(crate) conn: Conn,
    /// A transaction may be open on `conn` that nobody will finish (its future was dropped,
    /// or a statement batch stopped half-way). The next holder rolls it back first.
    pub(crate) dirty: bool,
    /// Branch heads as this process last wrote them, for the append fast path. Only a hint:
    /// the fast path re-checks every field in SQL and falls back to the full path on a miss.
    /// (Kept on SQLite's one writer; PostgreSQL's pooled writers start empty and take the
    /// full path, which re-reads the head under the write lock.)
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
            let _ = run_plain(&mut self.conn, "ROLLBACK").await;
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

/// A writer connection, held: SQLite's one writer, or a pooled PostgreSQL connection.
pub(crate) enum WriteConn {
    Lite(OwnedMutexGuard<Writer>),
    /// Always `Some` until dropped.
    Pg(Option<Writer>),
}

impl Deref for WriteConn {
    type Target = Writer;
    fn deref(&self) -> &Writer {
        match self {
            WriteConn::Lite(w) => w,
            WriteConn::Pg(w) => w.as_ref().expect("writer present until drop"),
        }
    }
}

impl DerefMut for WriteConn {
    fn deref_mut(&mut self) -> &mut Writer {
        match self {
            WriteConn::Lite(w) => w,
            WriteConn::Pg(w) => w.as_mut().expect("writer present until drop"),
        }
    }
}

impl Drop for WriteConn {
    fn drop(&mut self) {
        // A pooled PostgreSQL connection left inside a transaction is rolled back before it
        // goes back to the pool (which also releases the advisory write lock); without a
        // runtime to run the ROLLBACK on, it is closed instead, which ends the transaction.
        if let WriteConn::Pg(slot) = self
            && let Some(mut w) = slot.take()
            && w.dirty
        {
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn(async move {
                        if run_plain(&mut w.conn, "ROLLBACK").await.is_err()
                            && let Conn::Pg(c) = &mut w.conn
                        {
                            c.close_on_drop();
                        }
                    });
                }
                Err(_) => {
                    if let Conn::Pg(c) = &mut w.conn {
                        c.close_on_drop();
                    }
                }
            }
        }
    }
}

/// A write transaction on a writer connection: `BEGIN IMMEDIATE` on SQLite; `BEGIN` and the
/// advisory write lock on PostgreSQL. Dropped without [`Tx::commit`], it is rolled back before
/// the connection is used again.
pub(crate) struct Tx {
    w: WriteConn,
    /// SQLite's writer, to roll back on drop.
    lock: Option<Arc<Mutex<Writer>>>,
}

impl Tx {
    pub(crate) async fn commit(mut self) -> Result<()> {
        run_plain(&mut self.w.conn, "COMMIT").await?;
        self.w.dirty = false;
        Ok(())
    }

    /// The writer behind this transaction (for the head cache).
    pub(crate) fn writer(&mut self) -> &mut Writer {
        &mut self.w
    }
}

impl Deref for Tx {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        &self.w.conn
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.w.conn
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        if self.w.dirty
            && let Some(lock) = self.lock.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            // Taking the lock after this guard is released runs the rollback at once rather
            // than at the next write, so the file's write lock is not held meanwhile.
            rt.spawn(async move { lock.lock().await.settle().await });
        }
        // PostgreSQL: `WriteConn`'s own drop rolls back.
    }
}

/// Read-only connections, opened on first use.
struct Readers {
    slots: Box<[Mutex<Option<Conn>>]>,
    next: AtomicUsize,
    options: SqliteConnectOptions,
}

/// A read connection, held: one of SQLite's read-only connections, or a pooled PostgreSQL one.
pub(crate) enum ReadConn<'a> {
    Lite(MappedMutexGuard<'a, Conn>),
    Pg(Conn),
}

impl Deref for ReadConn<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        match self {
            ReadConn::Lite(c) => c,
            ReadConn::Pg(c) => c,
        }
    }
}

impl DerefMut for ReadConn<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        match self {
            ReadConn::Lite(c) => c,
            ReadConn::Pg(c) => c,
        }
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
        let mut conn = Conn::Lite(conn);
        crate::chain::backfill(&mut conn).await?;
        let slots = (0..opts.max_readers.max(1))
            .map(|_| Mutex::new(None))
            .collect();
        Ok(Self {
            backend: Backend::Lite {
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
            },
            snapshot_every: i64::from(opts.snapshot_every.max(1)),
            origin: new_origin(),
            appended: Arc::default(),
        })
    }

    /// Opens the PostgreSQL database at `url` (`postgres://…`): applies pending migrations,
    /// then serves reads and writes from a pool of `max_readers + 2` connections that wait up
    /// to `busy_timeout` for a free one.
    pub async fn open_postgres(url: &str, opts: &DbOptions) -> Result<Self> {
        crate::postgres::migrate_postgres(url).await?;
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_readers.max(1) + 2)
            .acquire_timeout(opts.busy_timeout.max(Duration::from_secs(1)))
            .connect(url)
            .await?;
        let db = Self {
            backend: Backend::Pg(pool),
            snapshot_every: i64::from(opts.snapshot_every.max(1)),
            origin: new_origin(),
            appended: Arc::default(),
        };
        let mut w = db.writer().await?;
        crate::chain::backfill(&mut w.conn).await?;
        Ok(db)
    }

    /// Counts `n` appended nodes; on PostgreSQL, the append that passes
    /// [`ANALYZE_YOUNG_AFTER`] starts [`Db::analyze_if_young`] in the background.
    pub(crate) fn count_appended(&self, n: usize) {
        let Backend::Pg(_) = &self.backend else {
            return;
        };
        let before = self.appended.fetch_add(n as u64, Ordering::Relaxed);
        if before < ANALYZE_YOUNG_AFTER && before + n as u64 >= ANALYZE_YOUNG_AFTER {
            let db = self.clone();
            tokio::spawn(async move {
                if let Err(e) = db.analyze_if_young().await {
                    tracing::warn!(error = %e, "could not analyze a young database");
                }
            });
        }
    }

    /// Analyzes the tables an append reads when `nodes` was never analyzed (PostgreSQL 14 and
    /// later mark that with `reltuples = -1`); true when it did. SQLite: nothing to do.
    pub async fn analyze_if_young(&self) -> Result<bool> {
        let Backend::Pg(_) = &self.backend else {
            return Ok(false);
        };
        let mut conn = self.read().await?;
        let young = query("SELECT reltuples < 0 FROM pg_class WHERE oid = 'nodes'::regclass")
            .fetch_one(&mut conn)
            .await?
            .flag(0)?;
        if young {
            run_plain(&mut conn, "ANALYZE nodes, segments, branches, sessions").await?;
        }
        Ok(young)
    }

    /// Which database this store runs on.
    pub(crate) fn dialect(&self) -> Dialect {
        match self.backend {
            Backend::Lite { .. } => Dialect::Sqlite,
            Backend::Pg(_) => Dialect::Postgres,
        }
    }

    /// Takes a writer connection (waiting for earlier writers on SQLite), with no transaction
    /// open.
    pub(crate) async fn writer(&self) -> Result<WriteConn> {
        match &self.backend {
            Backend::Lite { writer, .. } => {
                let mut w = Arc::clone(writer).lock_owned().await;
                w.settle().await;
                Ok(WriteConn::Lite(w))
            }
            Backend::Pg(pool) => Ok(WriteConn::Pg(Some(Writer {
                conn: Conn::Pg(pool.acquire().await?),
                dirty: false,
                heads: HashMap::new(),
            }))),
        }
    }

    /// Starts a write transaction.
    pub(crate) async fn write(&self) -> Result<Tx> {
        self.begin(self.writer().await?).await
    }

    /// Starts a write transaction on a writer connection already held.
    pub(crate) async fn begin(&self, mut w: WriteConn) -> Result<Tx> {
        w.dirty = true;
        let lock = match &self.backend {
            Backend::Lite { writer, .. } => {
                // dialect: BEGIN IMMEDIATE takes SQLite's write lock up front: PostgreSQL uses BEGIN (row locks as it goes)
                run_plain(&mut w.conn, "BEGIN IMMEDIATE").await?;
                Some(Arc::clone(writer))
            }
            Backend::Pg(_) => {
                run_plain(&mut w.conn, "BEGIN").await?;
                query("SELECT pg_advisory_xact_lock($1)")
                    .bind(WRITE_LOCK)
                    .execute(&mut w.conn)
                    .await?;
                None
            }
        };
        Ok(Tx { w, lock })
    }

    /// Starts a write transaction outside the store's write order, for rows no other write
    /// depends on (content-addressed file blobs): on PostgreSQL it takes no advisory lock, so
    /// a long upload never holds up appends; on SQLite it is an ordinary write transaction.
    pub(crate) async fn write_unordered(&self) -> Result<Tx> {
        match &self.backend {
            Backend::Lite { .. } => self.write().await,
            Backend::Pg(_) => {
                let mut w = self.writer().await?;
                w.dirty = true;
                run_plain(&mut w.conn, "BEGIN").await?;
                Ok(Tx { w, lock: None })
            }
        }
    }

    /// Takes a read connection. SQLite: the first free read-only connection (so a quiet store
    /// keeps reusing one connection and its warm page cache), else waits for one in turn.
    /// PostgreSQL: a pooled connection.
    pub(crate) async fn read(&self) -> Result<ReadConn<'_>> {
        let readers = match &self.backend {
            Backend::Lite { readers, .. } => readers,
            Backend::Pg(pool) => return Ok(ReadConn::Pg(Conn::Pg(pool.acquire().await?))),
        };
        let slots = &readers.slots;
        let free = slots.iter().find_map(|slot| slot.try_lock().ok());
        let mut guard = match free {
            Some(g) => g,
            None => {
                let next = readers.next.fetch_add(1, Ordering::Relaxed) % slots.len();
                slots[next].lock().await
            }
        };
        if guard.is_none() {
            *guard = Some(Conn::Lite(readers.options.connect().await?));
        }
        MutexGuard::try_map(guard, Option::as_mut)
            .map(ReadConn::Lite)
            .map_err(|_| Error::Corrupt("reader connection missing after open".into()))
    }

    /// The PostgreSQL pool, or `None` on SQLite.
    pub(crate) fn pg_pool(&self) -> Option<&PgPool> {
        match &self.backend {
            Backend::Lite { .. } => None,
            Backend::Pg(pool) => Some(pool),
        }
    }

    /// Whether this store is on PostgreSQL (several servers may share it) rather than SQLite.
    pub fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Pg(_))
    }

    /// Returns the journal mode and synchronous setting in force, as SQLite reports them. On
    /// PostgreSQL: `("postgres", <synchronous_commit>)`.
    pub async fn durability(&self) -> Result<(String, String)> {
        let mut w = self.writer().await?;
        let conn = match &mut w.conn {
            Conn::Lite(c) => c,
            Conn::Pg(c) => {
                // dialect: PRAGMA synchronous: PostgreSQL uses SHOW synchronous_commit (text, not 0..3)
                let sync: String = sqlx::query_scalar("SHOW synchronous_commit")
                    .fetch_one(&mut **c)
                    .await?;
                return Ok(("postgres".to_string(), sync));
            }
        };
        // dialect: PRAGMA journal_mode: PostgreSQL has no journal mode (SHOW wal_level is the nearest)
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await?;
        // dialect: PRAGMA synchronous: PostgreSQL uses SHOW synchronous_commit (text, not 0..3)
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

    /// Writes a consistent copy of the database to `dest` (`VACUUM INTO`). PostgreSQL has no
    /// in-SQL copy: refused there (use `pg_dump`).
    pub async fn backup_to(&self, dest: &Path) -> Result<()> {
        let dest = dest.to_string_lossy().to_string();
        let mut w = self.writer().await?;
        let Conn::Lite(conn) = &mut w.conn else {
            // dialect: VACUUM INTO: PostgreSQL has no in-SQL copy (pg_dump)
            return Err(Error::Invalid(
                "backup_to copies a SQLite file; on PostgreSQL use pg_dump".into(),
            ));
        };
        sqlx::query("VACUUM INTO $1")
            .bind(dest)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// SQLite: checkpoints the WAL into the main file and closes the read connections (the
    /// writer closes when the last clone of this store is dropped). PostgreSQL: closes the
    /// pool (PostgreSQL needs no checkpoint on close).
    pub async fn close(&self) {
        let (writer, readers) = match &self.backend {
            Backend::Lite { writer, readers } => (writer, readers),
            Backend::Pg(pool) => {
                pool.close().await;
                return;
            }
        };
        for slot in &readers.slots {
            if let Some(Conn::Lite(conn)) = slot.lock().await.take() {
                let _ = conn.close().await;
            }
        }
        let mut w = Arc::clone(writer).lock_owned().await;
        w.settle().await;
        // dialect: PRAGMA wal_checkpoint: PostgreSQL uses CHECKPOINT (or nothing on close)
        let _ = run_plain(&mut w.conn, "PRAGMA wal_checkpoint(TRUNCATE)").await;
    }
}

fn new_origin() -> Arc<str> {
    kiln_types::NodeId::new().to_string().into()
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
