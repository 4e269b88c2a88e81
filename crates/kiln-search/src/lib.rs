//! Kiln's full-text search: a tantivy index of every node's text, session metadata and the
//! materials and elements nodes mention, fed from SQLite's `search_outbox` (written by triggers
//! in the same transaction as each change). The index records the last outbox id it applied in
//! its commit payload, so it cannot drift: at open, outstanding entries are applied; a missing,
//! corrupt or older-schema index is rebuilt from SQLite.
//!
//! Access control is not the index's business: callers pass the sessions the user may read,
//! and every query is restricted to them, so hits (and counts) from other sessions never leave.

pub mod directory;
pub mod doc;
mod exclude;
mod group;
pub mod query;

use std::collections::HashMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use kiln_db::{Db, OutboxEntry, SearchNode, Session};
use serde::{Deserialize, Serialize};
use tantivy::query::{
    BooleanQuery, ConstScoreQuery, EnableScoring, Occur, Query, QueryParser, RangeQuery,
    RegexQuery, TermQuery, TermSetQuery, Weight,
};
use tantivy::schema::{
    DateOptions, FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TEXT, Value,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::{
    DateTime, Index, IndexReader, IndexSettings, IndexWriter, ReloadPolicy, TantivyDocument, Term,
};

use directory::GuardedDirectory;
pub use directory::{FaultSwitch, StorageFault};
pub use query::{Limits, SyntaxError};

/// Bumped whenever the schema or the document content changes; an index of another version is
/// rebuilt at open.
pub const SCHEMA_VERSION: u32 = 5;

/// Outbox entries applied per commit.
const BATCH: u32 = 2000;

/// Index operations handed to the writer per blocking call.
const CHUNK: usize = 2000;

/// The writer's memory budget (tantivy flushes a segment when it is used up).
const WRITER_HEAP: usize = 32_000_000;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Syntax(SyntaxError),
    #[error("{0}")]
    Invalid(String),
    /// The search (or the catching up before it) ran past its deadline and was stopped.
    #[error("the search ran past its deadline")]
    Timeout,
    /// The index's storage failed under it; the writer is re-opened at the next sync.
    #[error("search index storage: {}", .0.reason())]
    Storage(StorageFault),
    #[error("search index error: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error(transparent)]
    Db(#[from] kiln_db::Error),
    #[error("search index directory: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, Clone, Copy)]
struct Fields {
    /// `n<rowid>` for nodes, `s<session id>` for sessions: the unit of replacement.
    key: Field,
    /// Also a fast field: hits are grouped per session by its ordinal, not the doc store.
    session: Field,
    node: Field,
    kind: Field,
    author: Field,
    /// The session's owner, project, type and tags, copied onto every document so the common
    /// filters are term queries (a change to them re-indexes the session: outbox op `meta`).
    owner: Field,
    project: Field,
    stype: Field,
    tag: Field,
    material: Field,
    element: Field,
    created: Field,
    created_text: Field,
    text: Field,
}

/// The session field's name, for the grouping collector's fast-field lookup.
const SESSION: &str = "session";

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let f = Fields {
        key: b.add_text_field("key", STRING),
        session: b.add_text_field(SESSION, STRING | STORED | FAST),
        node: b.add_text_field("node", STRING | STORED),
        kind: b.add_text_field("kind", STRING | STORED),
        author: b.add_text_field("author", STRING),
        owner: b.add_text_field("owner", STRING),
        project: b.add_text_field("project", STRING),
        stype: b.add_text_field("type", STRING),
        tag: b.add_text_field("tag", STRING),
        material: b.add_text_field("material", STRING),
        element: b.add_text_field("element", STRING),
        created: b.add_date_field("created", DateOptions::from(INDEXED)),
        created_text: b.add_text_field("created_at", STORED),
        text: b.add_text_field("text", TEXT | STORED),
    };
    (b.build(), f)
}

/// What the index committed last.
#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    schema: u32,
    outbox: i64,
}

impl Payload {
    fn of(index: &Index) -> Option<Payload> {
        serde_json::from_str(index.load_metas().ok()?.payload.as_deref()?).ok()
    }
}

/// One change handed to the writer.
enum Op {
    Delete(Term),
    Add(TantivyDocument),
}

/// The writer, shared with the blocking threads that use it; `None` after a write failed,
/// until the next sync opens a new one.
type SharedWriter = Arc<std::sync::Mutex<Option<IndexWriter>>>;

/// The search index over one data directory.
///
/// Every tantivy write (and the open) runs on tokio's blocking threads, never on the async
/// workers; searches are synchronous and the caller runs them there too.
pub struct SearchIndex {
    dir: PathBuf,
    /// This server's name in the database's outbox cursors (`server_id`).
    server: String,
    index: Index,
    reader: IndexReader,
    f: Fields,
    faults: FaultSwitch,
    writer: SharedWriter,
    /// Held for the whole of a sync or rebuild, so they apply the outbox in order.
    state: tokio::sync::Mutex<SyncState>,
}

struct SyncState {
    /// Another process holds the index's writer lock: this one only reads what it commits.
    read_only: bool,
    /// The outbox id the index has committed up to.
    applied: i64,
    /// When the last sync that succeeded began: a sync requested before then has nothing left
    /// to do (every write made before the request was in the outbox when it read it).
    synced_from: Option<Instant>,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// How an open went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// The index was there and current; `applied` outstanding outbox entries were applied.
    Current { applied: usize },
    /// The index was missing, unreadable or of another schema, and was rebuilt.
    Rebuilt { nodes: u64 },
}

/// Which sessions a search may see: those `user` owns plus `shared` (read access granted), or
/// exactly `only` when the caller narrowed them down (a status filter, one session).
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub user: String,
    pub shared: Vec<String>,
    pub only: Option<Vec<String>>,
}

/// Filters on hits.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    pub q: String,
    pub owner: Option<String>,
    pub project: Option<String>,
    pub session_type: Option<String>,
    pub tag: Option<String>,
    pub kind: Option<String>,
    pub author: Option<String>,
    pub material: Option<String>,
    pub element: Option<String>,
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    /// Sessions per page.
    pub limit: usize,
    /// Hits shown per session.
    pub hits_per_session: usize,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Bounds on `q`.
    pub limits: Limits,
    /// When the search must stop (`Error::Timeout`) rather than run on.
    pub deadline: Option<Instant>,
}

/// One hit.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    /// The node (none for a match on the session's own name, description or tags).
    pub node_id: Option<String>,
    pub kind: String,
    /// The matching text with the matched terms in `<b>…</b>` (HTML-escaped otherwise).
    pub snippet: String,
    pub score: f32,
    pub created_at: Option<String>,
    /// The branches whose path reaches the node (filled in by the caller).
    pub branches: Vec<String>,
}

/// The hits of one session.
#[derive(Debug, Clone, Serialize)]
pub struct SessionHits {
    pub session_id: String,
    pub session_name: String,
    pub score: f32,
    pub hits: Vec<Hit>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SearchPage {
    pub items: Vec<SessionHits>,
    pub next_cursor: Option<String>,
    /// Nothing matched exactly, so the words were matched with one typo allowed.
    pub fuzzy: bool,
}

fn date(at: &str) -> Option<DateTime> {
    let t: chrono::DateTime<chrono::Utc> = at.parse().ok()?;
    Some(to_date(t))
}

/// tantivy stores nanoseconds in an i64 (years 1678 to 2261); later or earlier times are
/// clamped to that range instead of overflowing.
fn to_date(t: chrono::DateTime<chrono::Utc>) -> DateTime {
    const LIMIT: i64 = i64::MAX / 1000 - 1;
    DateTime::from_timestamp_micros(t.timestamp_micros().clamp(-LIMIT, LIMIT))
}

/// Returns `Error::Timeout` once `deadline` has passed.
fn check(deadline: Option<Instant>) -> Result<()> {
    match deadline {
        Some(d) if Instant::now() >= d => Err(Error::Timeout),
        _ => Ok(()),
    }
}

/// This server's name among the servers sharing a database: a random id kept beside the index
/// (`<data_dir>/search-server.id`), so it outlives rebuilds, which empty the index directory.
fn server_id(dir: &Path) -> String {
    let file = dir
        .parent()
        .map(|p| p.join("search-server.id"))
        .unwrap_or_else(|| dir.with_extension("server-id"));
    if let Ok(id) = std::fs::read_to_string(&file) {
        let id = id.trim();
        if !id.is_empty()
            && id.len() <= 64
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return id.to_string();
        }
    }
    let id = uuid::Uuid::now_v7().to_string();
    if let Err(e) = std::fs::write(&file, &id) {
        tracing::warn!(file = %file.display(), "could not keep the search server id: {e}");
    }
    id
}

/// Runs blocking index work on tokio's blocking threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Index(tantivy::TantivyError::ErrorInThread(e.to_string())))?
}

impl SearchIndex {
    /// Opens the index in `dir` (creating or rebuilding it from `db` when needed) and applies
    /// outstanding outbox entries. `progress(done, total)` is called while rebuilding. Every
    /// write goes through `faults` (see `directory`).
    pub async fn open(
        dir: &Path,
        db: &Db,
        progress: impl Fn(u64, u64),
        faults: FaultSwitch,
    ) -> Result<(Self, Opened)> {
        let (path, sw) = (dir.to_path_buf(), faults.clone());
        let existing = blocking(move || Ok(Self::open_existing(&path, sw))).await?;
        match existing {
            Some(idx) => {
                let applied = idx.sync(db, None).await?;
                Ok((idx, Opened::Current { applied }))
            }
            None => {
                let (path, sw) = (dir.to_path_buf(), faults.clone());
                let idx = blocking(move || Self::create(&path, sw))
                    .await
                    .map_err(|e| classify(e, &faults))?;
                let nodes = idx.rebuild(db, progress).await?;
                Ok((idx, Opened::Rebuilt { nodes }))
            }
        }
    }

    /// Opens an index of the current schema, or `None` (missing, unreadable, stale).
    fn open_existing(dir: &Path, faults: FaultSwitch) -> Option<Self> {
        let index = Index::open(GuardedDirectory::open(dir, faults.clone()).ok()?).ok()?;
        let payload = Payload::of(&index)?;
        if payload.schema != SCHEMA_VERSION {
            tracing::info!(
                found = payload.schema,
                want = SCHEMA_VERSION,
                "search index schema changed"
            );
            return None;
        }
        let (schema, f) = schema();
        if index.schema() != schema {
            return None;
        }
        Self::with_index(dir, index, f, payload.outbox, faults).ok()
    }

    fn create(dir: &Path, faults: FaultSwitch) -> Result<Self> {
        empty_dir(dir)?;
        let (schema, f) = schema();
        let directory =
            GuardedDirectory::open(dir, faults.clone()).map_err(|e| Error::Index(e.into()))?;
        let index = Index::create(directory, schema, IndexSettings::default())?;
        Self::with_index(dir, index, f, 0, faults)
    }

    fn with_index(
        dir: &Path,
        index: Index,
        f: Fields,
        applied: i64,
        faults: FaultSwitch,
    ) -> Result<Self> {
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let (w, read_only) = match index.writer_with_num_threads(1, WRITER_HEAP) {
            Ok(w) => (Some(w), false),
            Err(tantivy::TantivyError::LockFailure(..)) => {
                tracing::info!(dir = %dir.display(), "search index is written by another process");
                (None, true)
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            server: server_id(dir),
            index,
            reader,
            f,
            faults,
            writer: Arc::new(std::sync::Mutex::new(w)),
            state: tokio::sync::Mutex::new(SyncState {
                read_only,
                applied,
                synced_from: None,
            }),
        })
    }

    /// The switch the index's writes go through (a test seam; see `FaultSwitch`).
    pub fn faults(&self) -> &FaultSwitch {
        &self.faults
    }

    /// Applies outbox entries written since the last commit; returns how many. Stops with
    /// `Error::Timeout` at `deadline` (what was committed by then stays). After a storage
    /// failure (`Error::Storage`) the writer is dropped, and the next sync opens a new one
    /// and starts again from the last commit: the outbox in SQLite is the source of truth.
    pub async fn sync(&self, db: &Db, deadline: Option<Instant>) -> Result<usize> {
        let asked = Instant::now();
        let mut st = match deadline {
            Some(d) => tokio::time::timeout_at(d.into(), self.state.lock())
                .await
                .map_err(|_| Error::Timeout)?,
            None => self.state.lock().await,
        };
        if st.synced_from.is_some_and(|t| t >= asked) {
            return Ok(0);
        }
        let began = Instant::now();
        self.faults.take_seen();
        match self.sync_locked(&mut st, db, deadline).await {
            Ok(n) => {
                st.synced_from = Some(began);
                Ok(n)
            }
            Err(e) => Err(self.failed(e).await),
        }
    }

    async fn sync_locked(
        &self,
        st: &mut SyncState,
        db: &Db,
        deadline: Option<Instant>,
    ) -> Result<usize> {
        if st.read_only {
            self.reader.reload()?;
            return Ok(0);
        }
        self.ensure_writer(st).await?;
        // Another server trimmed entries this index never applied (it was down for over a
        // day, or new): only a rebuild from the database gets them back.
        let trimmed = db.outbox_trimmed().await?;
        if trimmed > st.applied {
            tracing::info!(
                applied = st.applied,
                trimmed,
                "search index is behind the shared outbox; rebuilding"
            );
            let nodes = self.rebuild_locked(st, db, |_, _| {}).await?;
            return Ok(usize::try_from(nodes).unwrap_or(usize::MAX));
        }
        let mut total = 0;
        loop {
            check(deadline)?;
            let entries = db.outbox_after(st.applied, BATCH).await?;
            let Some(last) = entries.last().map(|e| e.id) else {
                break;
            };
            let mut ops = Vec::new();
            self.apply(db, &entries, &mut ops, deadline).await?;
            self.write(ops, Some(last)).await?;
            st.applied = last;
            total += entries.len();
        }
        if total > 0 {
            db.trim_outbox(&self.server, st.applied).await?;
        }
        Ok(total)
    }

    /// Opens a writer when the last one was dropped after a failure, and takes up from what
    /// the index last committed.
    async fn ensure_writer(&self, st: &mut SyncState) -> Result<()> {
        if self.writer_slot().is_some() {
            return Ok(());
        }
        let (index, slot) = (self.index.clone(), self.writer.clone());
        let applied = blocking(move || {
            let w = index.writer_with_num_threads(1, WRITER_HEAP)?;
            let applied = Payload::of(&index).map(|p| p.outbox);
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(w);
            Ok(applied)
        })
        .await;
        match applied {
            Ok(applied) => {
                st.applied = applied.unwrap_or(0);
                tracing::info!(applied = st.applied, "search index writer re-opened");
                Ok(())
            }
            Err(Error::Index(tantivy::TantivyError::LockFailure(..))) => {
                tracing::info!("search index is now written by another process");
                st.read_only = true;
                self.reader.reload()?;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn writer_slot(&self) -> std::sync::MutexGuard<'_, Option<IndexWriter>> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// After a failed sync or rebuild: a failure of the index's own storage drops the writer
    /// (tantivy's writer does not survive a failed write), so the next sync opens a fresh one.
    async fn failed(&self, e: Error) -> Error {
        let e = classify(e, &self.faults);
        if matches!(e, Error::Storage(_) | Error::Index(_) | Error::Io(_)) {
            let old = self.writer_slot().take();
            // Dropping a writer joins its threads.
            let _ = tokio::task::spawn_blocking(move || drop(old)).await;
        }
        e
    }

    /// Hands `ops` to the writer on a blocking thread, then commits up to `commit` (an outbox
    /// id) when given, and shows the commit to searches.
    async fn write(&self, ops: Vec<Op>, commit: Option<i64>) -> Result<()> {
        let (slot, reader) = (self.writer.clone(), self.reader.clone());
        blocking(move || {
            let mut guard = slot.lock().unwrap_or_else(|p| p.into_inner());
            let w = guard.as_mut().ok_or_else(|| {
                Error::Index(tantivy::TantivyError::InternalError(
                    "the search index writer is closed".into(),
                ))
            })?;
            for op in ops {
                match op {
                    Op::Delete(t) => {
                        w.delete_term(t);
                    }
                    Op::Add(d) => {
                        w.add_document(d)?;
                    }
                }
            }
            if let Some(outbox) = commit {
                let payload = serde_json::to_string(&Payload {
                    schema: SCHEMA_VERSION,
                    outbox,
                })
                .unwrap_or_default();
                let mut prepared = w.prepare_commit()?;
                prepared.set_payload(&payload);
                prepared.commit()?;
                reader.reload()?;
            }
            Ok(())
        })
        .await
    }

    /// Writes `ops` once they fill a chunk, so a large re-index streams to the writer.
    async fn flush_full(&self, ops: &mut Vec<Op>, deadline: Option<Instant>) -> Result<()> {
        if ops.len() >= CHUNK {
            check(deadline)?;
            self.write(std::mem::take(ops), None).await?;
        }
        Ok(())
    }

    async fn apply(
        &self,
        db: &Db,
        entries: &[OutboxEntry],
        ops: &mut Vec<Op>,
        deadline: Option<Instant>,
    ) -> Result<()> {
        let keys: Vec<(&str, i64)> = entries
            .iter()
            .filter_map(|e| Some((e.session_id.as_str(), e.node_rowid?)))
            .collect();
        let nodes = db.search_nodes(&keys).await?;
        let mut by_rowid: HashMap<i64, SearchNode> =
            nodes.into_iter().map(|n| (n.rowid, n)).collect();
        let mut sessions: HashMap<String, Option<Session>> = HashMap::new();
        for e in entries {
            match (e.op.as_str(), e.node_rowid) {
                ("node", Some(r)) => {
                    let Some(n) = by_rowid.remove(&r) else {
                        continue;
                    };
                    if !sessions.contains_key(&n.session_id) {
                        let s = match db.session(&n.session_id).await {
                            Ok(s) => Some(s),
                            Err(kiln_db::Error::NotFound(_)) => None,
                            Err(err) => return Err(err.into()),
                        };
                        sessions.insert(n.session_id.clone(), s);
                    }
                    if let Some(Some(s)) = sessions.get(&n.session_id) {
                        self.put_node(ops, &n, s);
                    }
                }
                ("session", _) => match db.session(&e.session_id).await {
                    Ok(s) => self.put_session(ops, &s),
                    Err(kiln_db::Error::NotFound(_)) => {}
                    Err(err) => return Err(err.into()),
                },
                ("meta", _) => match db.session(&e.session_id).await {
                    Ok(s) => {
                        self.put_session(ops, &s);
                        let mut after = 0;
                        loop {
                            let nodes = db.session_nodes_after(&s.id, after, BATCH).await?;
                            let Some(last) = nodes.last().map(|n| n.rowid) else {
                                break;
                            };
                            for n in &nodes {
                                self.put_node(ops, n, &s);
                            }
                            self.flush_full(ops, deadline).await?;
                            after = last;
                        }
                        sessions.insert(s.id.clone(), Some(s));
                    }
                    Err(kiln_db::Error::NotFound(_)) => {}
                    Err(err) => return Err(err.into()),
                },
                ("delete", _) => {
                    ops.push(Op::Delete(Term::from_field_text(
                        self.f.session,
                        &e.session_id,
                    )));
                }
                _ => {}
            }
            self.flush_full(ops, deadline).await?;
        }
        Ok(())
    }

    /// Adds the session fields every document carries.
    fn session_fields(&self, td: &mut TantivyDocument, s: &Session) {
        td.add_text(self.f.owner, &s.owner_id);
        if let Some(p) = &s.project {
            td.add_text(self.f.project, p);
        }
        td.add_text(self.f.stype, s.session_type.as_str());
        for t in &s.tags {
            td.add_text(self.f.tag, t);
        }
    }

    fn put_node(&self, ops: &mut Vec<Op>, n: &SearchNode, s: &Session) {
        let key = format!("n{}", n.rowid);
        ops.push(Op::Delete(Term::from_field_text(self.f.key, &key)));
        let d = doc::node_doc(n);
        if d.text.trim().is_empty() && d.materials.is_empty() {
            return;
        }
        let mut td = TantivyDocument::default();
        td.add_text(self.f.key, &key);
        td.add_text(self.f.session, &n.session_id);
        td.add_text(self.f.node, &n.id);
        td.add_text(self.f.kind, &n.kind);
        if let Some(a) = &n.author {
            td.add_text(self.f.author, a);
        }
        self.session_fields(&mut td, s);
        for m in &d.materials {
            td.add_text(self.f.material, m);
        }
        for e in &d.elements {
            td.add_text(self.f.element, e);
        }
        if let Some(t) = date(&n.created_at) {
            td.add_date(self.f.created, t);
        }
        td.add_text(self.f.created_text, &n.created_at);
        td.add_text(self.f.text, &d.text);
        ops.push(Op::Add(td));
    }

    fn put_session(&self, ops: &mut Vec<Op>, s: &Session) {
        let key = format!("s{}", s.id);
        ops.push(Op::Delete(Term::from_field_text(self.f.key, &key)));
        let mut td = TantivyDocument::default();
        td.add_text(self.f.key, &key);
        td.add_text(self.f.session, &s.id);
        td.add_text(self.f.kind, "session");
        td.add_text(self.f.author, &s.owner_id);
        self.session_fields(&mut td, s);
        if let Some(t) = date(&s.created_at) {
            td.add_date(self.f.created, t);
        }
        td.add_text(self.f.created_text, &s.created_at);
        td.add_text(self.f.text, doc::session_text(s));
        ops.push(Op::Add(td));
    }

    /// Rebuilds the whole index from SQLite; returns the nodes indexed.
    pub async fn rebuild(&self, db: &Db, progress: impl Fn(u64, u64)) -> Result<u64> {
        let mut st = self.state.lock().await;
        if st.read_only {
            return Err(Error::Invalid(
                "the search index is being written by another Kiln process; stop it first".into(),
            ));
        }
        self.faults.take_seen();
        match self.rebuild_locked(&mut st, db, progress).await {
            Ok(n) => Ok(n),
            Err(e) => Err(self.failed(e).await),
        }
    }

    async fn rebuild_locked(
        &self,
        st: &mut SyncState,
        db: &Db,
        progress: impl Fn(u64, u64),
    ) -> Result<u64> {
        self.ensure_writer(st).await?;
        // Entries written from here on are applied by the next sync (re-adding is idempotent).
        let upto = db.outbox_max().await?;
        // Claims them now, so no other server trims past them while this one reads the store.
        // Whatever another server trimmed before the claim was deleted before the read below
        // began, so the read covers it: the index has applied up to that watermark too.
        db.trim_outbox(&self.server, upto).await?;
        let upto = upto.max(db.outbox_trimmed().await?);
        {
            let slot = self.writer.clone();
            blocking(move || {
                if let Some(w) = slot.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
                    w.delete_all_documents()?;
                }
                Ok(())
            })
            .await?;
        }
        let mut ops = Vec::new();
        let mut sessions: HashMap<String, Session> = HashMap::new();
        for s in db.all_sessions().await? {
            self.put_session(&mut ops, &s);
            sessions.insert(s.id.clone(), s);
            self.flush_full(&mut ops, None).await?;
        }
        let total = u64::try_from(db.node_count().await?).unwrap_or(0);
        let (mut after, mut done) = (0i64, 0u64);
        loop {
            let nodes = db.search_nodes_after(after, BATCH).await?;
            let Some(last) = nodes.last().map(|n| n.rowid) else {
                break;
            };
            for n in &nodes {
                if let Some(s) = sessions.get(&n.session_id) {
                    self.put_node(&mut ops, n, s);
                }
            }
            self.flush_full(&mut ops, None).await?;
            done += nodes.len() as u64;
            after = last;
            progress(done, total);
        }
        self.write(ops, Some(upto)).await?;
        st.applied = upto;
        st.synced_from = None;
        db.trim_outbox(&self.server, upto).await?;
        Ok(done)
    }

    /// The outbox id the index has applied up to.
    pub async fn applied(&self) -> i64 {
        self.state.lock().await.applied
    }

    /// Searches the sessions `access` allows; session names are left for the caller. Blocks
    /// (run it on a blocking thread); stops with `Error::Timeout` at `req.deadline`.
    pub fn search(&self, req: &SearchRequest, access: &Access) -> Result<SearchPage> {
        let prepared = query::prepare(&req.q, &req.limits).map_err(Error::Syntax)?;
        let offset: usize = match &req.cursor {
            Some(c) => c
                .parse()
                .map_err(|_| Error::Invalid("cursor must come from next_cursor".into()))?,
            None => 0,
        };
        let limit = req.limit.clamp(1, 100);
        let per = req.hits_per_session.clamp(1, 20);
        let empty = SearchPage {
            items: Vec::new(),
            next_cursor: None,
            fuzzy: false,
        };
        if access.only.as_ref().is_some_and(Vec::is_empty) {
            return Ok(empty);
        }
        let searcher = self.reader.searcher();
        let mut parser = QueryParser::for_index(&self.index, vec![self.f.text]);
        parser.set_conjunction_by_default();
        let filters = self.filters(req, access)?;
        let mut user = self.user_query(&parser, &prepared)?;
        // The sessions of this page and one more, to know whether another page follows.
        let want = offset.saturating_add(limit).saturating_add(1);
        let mut fuzzy = false;
        let mut weight = self.weight(&searcher, &*self.and(user.box_clone(), &filters))?;
        let mut ranked = self.top_sessions(&searcher, &*weight, want, req.deadline)?;
        if ranked.is_empty() && offset == 0 {
            // Nothing matched exactly: allow one typo per word.
            parser.set_field_fuzzy(self.f.text, false, 1, true);
            if let Ok(q) = self.user_query(&parser, &prepared) {
                let w = self.weight(&searcher, &*self.and(q.box_clone(), &filters))?;
                let r = self.top_sessions(&searcher, &*w, want, req.deadline)?;
                if !r.is_empty() {
                    user = q;
                    weight = w;
                    ranked = r;
                    fuzzy = true;
                }
            }
        }
        let page: Vec<String> = ranked
            .iter()
            .skip(offset)
            .take(limit)
            .map(|(s, _)| s.clone())
            .collect();
        if page.is_empty() {
            return Ok(SearchPage { fuzzy, ..empty });
        }
        let groups = group::best_hits(
            &searcher,
            &*weight,
            self.f.session,
            &page,
            per,
            req.deadline,
        )
        .map_err(stopped)?;
        let mut snippets = SnippetGenerator::create(&searcher, &*user, self.f.text)?;
        snippets.set_max_num_chars(200);
        let mut items = Vec::new();
        for (sid, docs) in page.into_iter().zip(groups) {
            check(req.deadline)?;
            let mut hits = Vec::new();
            for (score, addr) in docs {
                let d: TantivyDocument = searcher.doc(addr)?;
                let get = |f: Field| d.get_first(f).and_then(|v| v.as_str()).map(str::to_string);
                let mut snippet = snippets.snippet_from_doc(&d).to_html();
                if snippet.is_empty() {
                    let t = get(self.f.text).unwrap_or_default();
                    snippet = escape(&t.chars().take(200).collect::<String>());
                }
                hits.push(Hit {
                    node_id: get(self.f.node),
                    kind: get(self.f.kind).unwrap_or_default(),
                    snippet,
                    score,
                    created_at: get(self.f.created_text),
                    branches: Vec::new(),
                });
            }
            items.push(SessionHits {
                session_id: sid,
                session_name: String::new(),
                score: hits.first().map_or(0.0, |h| h.score),
                hits,
            });
        }
        let next_cursor = (ranked.len() > offset + limit).then(|| (offset + limit).to_string());
        Ok(SearchPage {
            items,
            next_cursor,
            fuzzy,
        })
    }

    /// The query's weight, scored against the whole index (both passes share it, so they
    /// score every document alike).
    fn weight(&self, searcher: &tantivy::Searcher, q: &dyn Query) -> Result<Box<dyn Weight>> {
        Ok(q.weight(EnableScoring::enabled_from_searcher(searcher))?)
    }

    /// The best `k` sessions by their best document: the pass that ranks sessions without
    /// naming every matching one (see `group`).
    fn top_sessions(
        &self,
        searcher: &tantivy::Searcher,
        weight: &dyn Weight,
        k: usize,
        deadline: Option<Instant>,
    ) -> Result<Vec<(String, tantivy::Score)>> {
        group::top_sessions(searcher, weight, SESSION, k, deadline).map_err(stopped)
    }

    /// The user's words: the parsed text and a prefix query per `word*`, all required.
    fn user_query(&self, parser: &QueryParser, p: &query::Prepared) -> Result<Box<dyn Query>> {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        if !p.text.is_empty() {
            let q = parser.parse_query(&p.text).map_err(|e| {
                Error::Syntax(SyntaxError {
                    message: e.to_string(),
                    position: None,
                })
            })?;
            clauses.push((Occur::Must, exclude::plain_exclusions(q)));
        }
        for prefix in &p.prefixes {
            // Prefixes are letters and digits only (query::prepare), so need no escaping.
            let pattern = format!("{prefix}.*");
            let q = RegexQuery::from_pattern(&pattern, self.f.text)?;
            clauses.push((Occur::Must, Box::new(q)));
        }
        Ok(match clauses.len() {
            1 => clauses.remove(0).1,
            _ => Box::new(BooleanQuery::new(clauses)),
        })
    }

    /// The filter clauses: what `access` allows, then each given filter.
    fn filters(&self, req: &SearchRequest, access: &Access) -> Result<Vec<Box<dyn Query>>> {
        let f = self.f;
        let term = |field: Field, v: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, v),
                IndexRecordOption::Basic,
            ))
        };
        let sessions = |ids: &[String]| -> Box<dyn Query> {
            Box::new(TermSetQuery::new(
                ids.iter().map(|id| Term::from_field_text(f.session, id)),
            ))
        };
        let mut out: Vec<Box<dyn Query>> = Vec::new();
        match &access.only {
            Some(ids) => out.push(sessions(ids)),
            None => {
                let mut either = vec![(Occur::Should, term(f.owner, &access.user))];
                if !access.shared.is_empty() {
                    either.push((Occur::Should, sessions(&access.shared)));
                }
                out.push(Box::new(BooleanQuery::new(either)));
            }
        }
        for (field, v) in [
            (f.kind, &req.kind),
            (f.author, &req.author),
            (f.material, &req.material),
            (f.element, &req.element),
            (f.owner, &req.owner),
            (f.project, &req.project),
            (f.stype, &req.session_type),
            (f.tag, &req.tag),
        ] {
            if let Some(v) = v {
                out.push(term(field, v));
            }
        }
        if req.from.is_some() || req.to.is_some() {
            if let (Some(a), Some(b)) = (req.from, req.to)
                && a > b
            {
                return Err(Error::Invalid("`from` is after `to`".into()));
            }
            let bound = |t: Option<chrono::DateTime<chrono::Utc>>, incl: bool| match t {
                Some(t) => {
                    let term = Term::from_field_date_for_search(f.created, to_date(t));
                    if incl {
                        Bound::Included(term)
                    } else {
                        Bound::Excluded(term)
                    }
                }
                None => Bound::Unbounded,
            };
            out.push(Box::new(RangeQuery::new(
                bound(req.from, true),
                bound(req.to, true),
            )));
        }
        Ok(out)
    }

    /// The user's query restricted by `filters`, which narrow but do not score: a hit's score
    /// is its words' alone, and the filter terms (the owner's matches every document of a
    /// single-user instance) are not scored for every match.
    fn and(&self, q: Box<dyn Query>, filters: &[Box<dyn Query>]) -> Box<dyn Query> {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, q)];
        clauses.extend(filters.iter().map(|f| {
            let unscored: Box<dyn Query> = Box::new(ConstScoreQuery::new(f.box_clone(), 0.0));
            (Occur::Must, unscored)
        }));
        Box::new(BooleanQuery::new(clauses))
    }
}

fn stopped(s: group::Stop) -> Error {
    match s {
        group::Stop::Late => Error::Timeout,
        group::Stop::Index(e) => e.into(),
    }
}

/// A hit's snippet as plain text with its matches marked by `open` and `close` (`<b>` and
/// `</b>` become those; the HTML escapes of the text are undone).
pub fn snippet_text(html: &str, open: &str, close: &str) -> String {
    html.replace("<b>", open)
        .replace("</b>", close)
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Names the storage fault behind a failed index write: what the directory saw, or the I/O
/// error tantivy passed up. Other errors are left as they are.
/// Empties `dir` (creating it when missing) but keeps the directory itself, so the index may
/// live on a volume of its own: `dir` may be a mount point or a symlink to one.
fn empty_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(entry.path())?;
        } else {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

fn classify(e: Error, faults: &FaultSwitch) -> Error {
    let seen = faults.take_seen();
    let direct = match &e {
        Error::Io(io) => StorageFault::of(io),
        Error::Index(t) => tantivy_fault(t),
        _ => return e,
    };
    match direct.or(seen) {
        Some(f) => Error::Storage(f),
        None => e,
    }
}

fn tantivy_fault(e: &tantivy::TantivyError) -> Option<StorageFault> {
    use tantivy::directory::error::{OpenDirectoryError, OpenReadError, OpenWriteError};
    match e {
        tantivy::TantivyError::IoError(io) => StorageFault::of(io),
        tantivy::TantivyError::OpenWriteError(OpenWriteError::IoError { io_error, .. }) => {
            StorageFault::of(io_error)
        }
        tantivy::TantivyError::OpenReadError(OpenReadError::IoError { io_error, .. }) => {
            StorageFault::of(io_error)
        }
        tantivy::TantivyError::OpenDirectoryError(OpenDirectoryError::IoError {
            io_error, ..
        }) => StorageFault::of(io_error),
        _ => None,
    }
}
