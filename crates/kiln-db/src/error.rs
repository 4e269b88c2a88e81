//! Errors of the store: typed outcomes a caller can act on, plus wrapped database faults.

use kiln_types::{Conflict, SessionStatus};
use serde_json::Value;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("session is {from}; it can move to {}", allowed_list(.allowed))]
    InvalidTransition {
        from: SessionStatus,
        to: SessionStatus,
        allowed: Vec<SessionStatus>,
    },
    #[error("session is {0} and takes no new messages; resume it first")]
    NotActive(SessionStatus),
    #[error("branch `{branch}` moved: its head is {actual}, not {expected}")]
    HeadMoved {
        branch: String,
        expected: String,
        actual: String,
    },
    #[error("session was changed by someone else (version {stored}, yours {yours})")]
    VersionConflict {
        yours: i64,
        stored: i64,
        fields: Vec<Value>,
    },
    #[error("branch `{0}` is discarded; reopen it first")]
    BranchDiscarded(String),
    #[error("merge has {} conflict(s); retry with a strategy (ours, theirs, union)", .0.len())]
    MergeConflict(Vec<Conflict>),
    #[error("audit log is broken at entry {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored json is unreadable: {0}")]
    Json(#[from] serde_json::Error),
}

fn allowed_list(allowed: &[SessionStatus]) -> String {
    if allowed.is_empty() {
        return "nothing".into();
    }
    allowed
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Error {
    /// Returns whether SQLite answered "busy" or "locked" (another process held the lock past
    /// the busy timeout): worth retrying.
    pub fn is_busy(&self) -> bool {
        match self {
            Error::Database(e) => e
                .as_database_error()
                .and_then(|d| d.code())
                .is_some_and(|c| c == "5" || c == "6" || c == "517"),
            _ => false,
        }
    }

    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        Error::NotFound(what.into())
    }
}
