//! The session layer's error: a closed kind, a stable code, a message and optional details.

use kiln_types::ErrorKind;
use serde_json::{Value, json};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub kind: ErrorKind,
    /// A stable machine-readable code such as `invalid_transition` or `head_moved`.
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl Error {
    pub fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            code,
            message: message.into(),
            details: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, "invalid_input", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, "not_found", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, "forbidden", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorized, "unauthorized", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, "internal", message)
    }

    /// The disk (or a quota) is full: 507, recoverable once space is freed.
    pub fn insufficient_storage(message: impl Into<String>) -> Self {
        Self::new(
            ErrorKind::InsufficientStorage,
            "insufficient_storage",
            message,
        )
    }

    /// Storage cannot be written for now (an I/O error, an unwritable directory): 503.
    pub fn storage_unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, "storage_unavailable", message)
    }

    /// The session is write-protected: 409 `session_protected` (distinct from an archived
    /// session's `session_not_active`).
    pub fn protected() -> Self {
        Self::new(
            ErrorKind::Conflict,
            "session_protected",
            "session is write-protected; its owner must unprotect it first",
        )
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
}

impl From<kiln_db::Error> for Error {
    fn from(e: kiln_db::Error) -> Self {
        use kiln_db::Error as D;
        let message = e.to_string();
        if e.is_busy() {
            return Error::new(
                ErrorKind::Unavailable,
                "busy",
                "the database is busy; retry",
            );
        }
        match e {
            D::NotFound(_) => Error::new(ErrorKind::NotFound, "not_found", message),
            D::Forbidden(_) => Error::new(ErrorKind::Forbidden, "forbidden", message),
            D::Invalid(_) => Error::new(ErrorKind::BadRequest, "invalid_input", message),
            D::AlreadyExists(_) => Error::new(ErrorKind::Conflict, "already_exists", message),
            D::InvalidTransition { from, to, allowed } => Error::new(
                ErrorKind::Conflict,
                "invalid_transition",
                format!("cannot move from {from} to {to}: {message}"),
            )
            .with_details(json!({"current": from, "requested": to, "allowed": allowed})),
            D::NotActive(status) => Error::new(ErrorKind::Conflict, "session_not_active", message)
                .with_details(json!({"status": status})),
            D::HeadMoved {
                branch,
                expected,
                actual,
            } => Error::new(ErrorKind::Conflict, "head_moved", message)
                .with_details(json!({"branch": branch, "expected": expected, "head": actual})),
            D::VersionConflict {
                yours,
                stored,
                fields,
            } => Error::new(ErrorKind::Conflict, "version_conflict", message).with_details(
                json!({"your_version": yours, "stored_version": stored, "fields": fields}),
            ),
            D::Protected => Error::protected(),
            D::BranchDiscarded(_) => Error::new(ErrorKind::Conflict, "branch_discarded", message),
            D::MergeConflict(conflicts) => {
                let (open, settled): (Vec<_>, Vec<_>) =
                    conflicts.into_iter().partition(|c| c.resolution.is_none());
                Error::new(ErrorKind::Conflict, "merge_conflict", message)
                    .with_details(json!({"conflicts": open, "settled": settled}))
            }
            D::BadResolution(e) => Error::new(ErrorKind::BadRequest, "invalid_resolution", message)
                .with_details(
                    json!({"unknown": e.unknown, "cannot_keep_both": e.cannot_keep_both}),
                ),
            D::Corrupt(_) => Error::new(ErrorKind::Internal, "corrupt", message),
            // Storage faults are the operator's to mend, then the caller's to retry: logged
            // here (without detail in the answer), answered 507 or 503, never 500.
            D::StorageFull(_) => {
                tracing::warn!(error = %message, "database disk full");
                Error::insufficient_storage("the server's disk is full; retry once space is freed")
            }
            D::StorageFailed(_) => {
                tracing::warn!(error = %message, "database storage failed");
                Error::storage_unavailable("the server's storage is failing; retry later")
            }
            D::Database(_) | D::Migrate(_) | D::Json(_) => {
                tracing::error!(error = %message, "store failure");
                Error::internal("internal error")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A full disk and a failing one are the operator's to mend and the caller's to retry,
    /// not internal errors (issue 13, item 7).
    #[test]
    fn storage_faults_of_the_store_are_507_and_503() {
        let full = Error::from(kiln_db::Error::StorageFull(
            "database or disk is full".into(),
        ));
        assert_eq!(
            (full.kind, full.code),
            (ErrorKind::InsufficientStorage, "insufficient_storage")
        );
        let failed = Error::from(kiln_db::Error::StorageFailed("disk I/O error".into()));
        assert_eq!(
            (failed.kind, failed.code),
            (ErrorKind::Unavailable, "storage_unavailable")
        );
        assert!(full.kind.recoverable() && failed.kind.recoverable());
        // The answer names no internals.
        assert!(!full.message.contains("database or disk") && !failed.message.contains("I/O"));
    }
}
