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
    /// The session is write-protected (a store trigger or the access check refused the write).
    #[error("session is write-protected; its owner must unprotect it first")]
    Protected,
    #[error("branch `{0}` is discarded; reopen it first")]
    BranchDiscarded(String),
    #[error(
        "merge has {} open conflict(s); settle each with a resolution (ours, theirs, both) or retry with a strategy (ours, theirs, union)",
        .0.iter().filter(|c| c.resolution.is_none()).count()
    )]
    MergeConflict(Vec<Conflict>),
    #[error("{0}")]
    BadResolution(kiln_types::ResolutionError),
    #[error("audit log is broken at entry {0}")]
    Corrupt(String),
    /// The disk under the database (or a quota) is full: SQLITE_FULL or ENOSPC. Recoverable
    /// once space is freed.
    #[error("the database's disk is full: {0}")]
    StorageFull(String),
    /// The database's storage failed: a disk I/O error, or a file it cannot open.
    #[error("the database's storage failed: {0}")]
    StorageFailed(String),
    #[error("database error: {0}")]
    Database(sqlx::Error),
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

impl From<sqlx::Error> for Error {
    /// Storage faults become their own variants, so callers can answer "disk full" (507) or
    /// "storage unavailable" (503) instead of an internal error.
    fn from(e: sqlx::Error) -> Self {
        const ENOSPC: i32 = 28;
        const EDQUOT: i32 = 122;
        // SQLite's primary result codes (the low byte of an extended code).
        const SQLITE_IOERR: i64 = 10;
        const SQLITE_FULL: i64 = 13;
        const SQLITE_CANTOPEN: i64 = 14;
        let sqlite = e
            .as_database_error()
            .and_then(|d| d.code())
            .and_then(|c| c.parse::<i64>().ok())
            .map(|c| c & 0xff);
        // The protection triggers' RAISE(ABORT, 'session_protected') (migration 0011).
        if e.as_database_error()
            .is_some_and(|d| d.message() == "session_protected")
        {
            return Error::Protected;
        }
        match (&e, sqlite) {
            (_, Some(SQLITE_FULL)) => Error::StorageFull(e.to_string()),
            (_, Some(SQLITE_IOERR | SQLITE_CANTOPEN)) => Error::StorageFailed(e.to_string()),
            (sqlx::Error::Io(io), _) if matches!(io.raw_os_error(), Some(ENOSPC | EDQUOT)) => {
                Error::StorageFull(e.to_string())
            }
            (sqlx::Error::Io(_), _) => Error::StorageFailed(e.to_string()),
            _ => Error::Database(e),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Connection;

    /// A real SQLITE_FULL: the database may not grow past a page limit, as on a full disk.
    #[tokio::test]
    async fn a_full_database_is_a_storage_fault_not_an_internal_error() {
        let mut c = sqlx::SqliteConnection::connect("sqlite::memory:")
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (b BLOB)")
            .execute(&mut c)
            .await
            .unwrap();
        // dialect: test of SQLite's SQLITE_FULL: PRAGMA max_page_count has no PostgreSQL form
        sqlx::query("PRAGMA max_page_count = 8")
            .execute(&mut c)
            .await
            .unwrap();
        let mut full = None;
        for _ in 0..64 {
            // dialect: zeroblob(4096): PostgreSQL uses decode(repeat('00', 4096), 'hex') (SQLite-only test)
            if let Err(e) = sqlx::query("INSERT INTO t VALUES (zeroblob(4096))")
                .execute(&mut c)
                .await
            {
                full = Some(e);
                break;
            }
        }
        let e = Error::from(full.expect("the page limit is reached"));
        assert!(matches!(e, Error::StorageFull(_)), "{e:?}");
        assert!(!e.is_busy());
        // So is a file system's "no space left" under the driver.
        let e = Error::from(sqlx::Error::Io(std::io::Error::from_raw_os_error(28)));
        assert!(matches!(e, Error::StorageFull(_)), "{e:?}");
        // Other database errors stay what they were.
        let e = Error::from(
            sqlx::query("SELECT nothing FROM nowhere")
                .execute(&mut c)
                .await
                .unwrap_err(),
        );
        assert!(matches!(e, Error::Database(_)), "{e:?}");
    }
}
