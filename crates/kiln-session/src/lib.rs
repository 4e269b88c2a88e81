//! The SessionManager: every behaviour of Kiln sessions lives here once, and both the HTTP
//! service and the CLI call it. It checks input and permissions, then drives the store.

mod auth;
mod batches;
mod collaborators;
mod config;
mod context;
mod controller;
mod conversation;
mod digest;
mod error;
pub mod files;
mod integrity;
mod jobs;
mod live;
mod lock;
mod manager;
mod memory;
mod merging;
mod projects;
mod quota;
mod relay;
mod report;
mod search;
mod sessions;
mod shares;
mod templates;
mod tool_cache;
mod tracks;

pub use auth::{Caller, ClientInfo, hash_token, new_token};
pub use batches::{
    BatchCounts, BatchSpec, BatchView, MAX_BATCH_CONCURRENCY, MAX_BATCH_ITEMS, MAX_ITEM_SECONDS,
    batch_tag,
};
pub use config::{
    AgentConfig, Config, IntegrityConfig, LimitsConfig, LlmConfig, McpConfig, McpServerConfig,
    SearchConfig, ServerConfig, StorageConfig,
};
pub use context::{Cleared, ContextCleanup, ContextItemInput};
pub use controller::{CONTROLLER_HEADER, ControllerGrant, MAX_CONTROLLER_TTL, MAX_HOLDER_CHARS};
pub use conversation::{
    BranchFrom, EventInput, MAX_MESSAGE_BYTES, MessageInput, TreeBranch, entry_type_matches,
};
pub use digest::DigestReport;
pub use error::{Error, Result};
pub use integrity::InstanceKeyInfo;
pub use jobs::{JobReport, JobsConfig};
pub use kiln_db::ControllerLock;
pub use kiln_db::Visibility;
pub use kiln_db::{
    AppendOutcome, AuditEntry, AuditVerification, Branch, BranchGraph, Checkpoint, Collaborator,
    Contribution, Found, Membership, MemoryEntry, MergePreview, MergeResult, NewNode, Node,
    NodeVerification, Page, Project, ReflogEntry, Session, SessionEvent, SessionExport,
    SessionSort, ShareLink, TurnView, User,
};
pub use kiln_db::{BatchItemRow, BatchRow, ItemOutcome};
pub use kiln_db::{ContentTransfer, TableTransfer, TransferOptions, TransferReport, redact_url};
pub use kiln_db::{
    DIFF_CONVERSATION_DEFAULT, DIFF_CONVERSATION_MAX, DiffResult, GraphBranch, GraphCheckpoint,
    GraphMerge, GraphPoint,
};
pub use kiln_db::{FieldStats, Point, TrackBatch};
pub use kiln_search::{FaultSwitch, Hit, SearchPage, SessionHits, StorageFault, snippet_text};
pub use live::{LiveEvent, POLL as LIVE_POLL};
pub use lock::{LOCK_FILE, ServeLock};
pub use manager::SessionManager;
pub use memory::{MAX_MEMORY_CHARS, MAX_MEMORY_ENTRIES, MemoryInput, MemoryPatch, MemorySource};
pub use merging::{MAX_RESOLUTIONS, MergeChoices};
pub use projects::{FolderTree, ProjectTree, PutSession, normalize_folder};
pub use report::{Statistics, import_too_large};
pub use search::{Health, SearchParams};
pub use sessions::{CreateSession, ListQuery, Member, UpdateSession, title_of};
pub use shares::{
    CreateShare, CreatedShare, SharedNode, SharedSession, SharedView, is_share_token_shape,
};
pub use templates::{SaveTemplate, SessionTemplate, TemplateBody, TemplateParam, TemplatePatch};
pub use tool_cache::CachePolicy;
pub use tracks::{MAX_BATCH_POINTS, check_track_name, points_from_json};
