//! The SessionManager: every behaviour of Kiln sessions lives here once, and both the HTTP
//! service and the CLI call it. It checks input and permissions, then drives the store.

mod auth;
mod collaborators;
mod config;
mod context;
mod conversation;
mod error;
mod jobs;
mod manager;
mod report;
mod search;
mod sessions;
mod shares;
mod templates;

pub use auth::{Caller, hash_token, new_token};
pub use config::{AgentConfig, Config, LlmConfig, ServerConfig, StorageConfig};
pub use context::{Cleared, ContextCleanup, ContextItemInput};
pub use conversation::{BranchFrom, EventInput, MAX_MESSAGE_BYTES, MessageInput, TreeBranch};
pub use error::{Error, Result};
pub use jobs::{JobReport, JobsConfig};
pub use kiln_db::Visibility;
pub use kiln_db::{
    AppendOutcome, AuditEntry, AuditVerification, Branch, Checkpoint, Collaborator, Contribution,
    MergeResult, NewNode, Node, Page, ReflogEntry, Session, SessionEvent, SessionExport, ShareLink,
    TurnView, User,
};
pub use kiln_search::{Hit, SearchPage, SessionHits, snippet_text};
pub use manager::SessionManager;
pub use report::Statistics;
pub use search::SearchParams;
pub use sessions::{CreateSession, ListQuery, UpdateSession};
pub use shares::{
    CreateShare, CreatedShare, SharedNode, SharedSession, SharedView, is_share_token_shape,
};
pub use templates::{SaveTemplate, SessionTemplate, TemplateBody, TemplateParam, TemplatePatch};
