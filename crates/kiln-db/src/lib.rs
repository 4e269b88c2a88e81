//! Kiln's store: the only crate that knows sqlx. On SQLite, one writer connection (every write
//! is a `BEGIN IMMEDIATE` transaction on it, so concurrent requests queue instead of failing
//! with "database is locked") and a few read-only connections; on PostgreSQL
//! (`Db::open_postgres`), a pool and one advisory lock per write transaction. Migrations are
//! embedded and applied at open. Repositories are grouped per aggregate and run on either
//! database through one connection type and query facade (`conn.rs`). PostgreSQL has its own
//! migrations (`postgres.rs`) and a schema description comparable with SQLite's (`schema.rs`),
//! and carries turn notifications between the servers sharing it (`notify.rs`).

mod audit;
mod batches;
mod blobs;
mod chain;
mod collaborators;
mod conn;
mod controllers;
mod digest;
mod error;
mod export;
mod fts;
mod graph;
pub mod integrity;
mod jobs;
mod keys;
mod live;
mod memory;
mod merge;
mod model;
mod notify;
mod pool;
mod postgres;
mod projects;
mod rates;
mod refs;
mod schema;
mod search;
mod sessions;
mod shares;
mod sql;
mod state;
mod templates;
#[doc(hidden)]
pub mod testing;
mod tool_cache;
mod tracks;
mod transfer;
mod tree;
mod users;

pub use audit::{AuditEntry, AuditVerification, verify as verify_chain};
pub use batches::{BatchItemRow, BatchRow, ItemOutcome, NewBatch};
pub use blobs::BLOB_CHUNK;
pub use chain::NodeVerification;
pub use collaborators::{Collaborator, Contribution, Membership};
pub use controllers::{Acquired, ControllerLock};
pub use digest::ActiveSession;
pub use error::{Error, Result};
pub use export::{
    CheckedExport, EXPORT_FORMAT, ImportOptions, MAX_MESSAGE_BYTES, Provenance, SessionExport,
};
pub use graph::{BranchGraph, GraphBranch, GraphCheckpoint, GraphMerge, GraphPoint};
pub use integrity::{ExportSignature, InstanceKey, PublicKey, Trust};
pub use live::{LiveBranch, LiveSnapshot, Present};
pub use memory::{MemoryEntry, NewMemory};
pub use merge::{
    DIFF_CONVERSATION_DEFAULT, DIFF_CONVERSATION_MAX, DiffResult, MergePreview, MergeRequest,
    MergeResult,
};
pub use model::*;
pub use notify::{TURN_CHANNEL, TURN_PAYLOAD_MAX, TurnListener, TurnNotice};
pub use pool::{Db, DbOptions, now, stamp};
pub use postgres::{
    describe_postgres, distribution_violations, migrate_postgres, postgres_migrations,
};
pub use projects::{Found, MAX_FOLDER_SESSIONS, Project};
pub use refs::Restored;
pub use schema::{
    Column, DISTRIBUTED, ForeignKey, Index, NOT_DISTRIBUTED_BY_SESSION, Schema, Table, Trigger,
    describe_sqlite, normalize_sql_text,
};
pub use search::{OutboxEntry, SearchNode};
pub use sessions::{NewSession, SessionFilter, SessionPatch, SessionSort, TallyRow};
pub use shares::{NewShare, ShareLink, ShareRefusal};
pub use templates::{NewTemplate, SavedTemplate, TemplateChange, Visibility};
pub use tool_cache::CachedOutput;
pub use tracks::{CHUNK as TRACK_CHUNK, FieldStats, Point, TrackBatch, point_from_json};
pub use transfer::{ContentTransfer, TableTransfer, TransferOptions, TransferReport, redact_url};
pub use tree::{AppendOutcome, NewNode, TurnView, check_access};
