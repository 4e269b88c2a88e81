//! The closed set of error kinds every Kiln error maps to; the server maps each to one status.

use serde::Serialize;

/// What went wrong, as far as a caller can act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    Gone,
    /// The route exists but not with this method.
    MethodNotAllowed,
    PayloadTooLarge,
    TooManyRequests,
    Unavailable,
    /// The server's disk is full (or over quota): retry once space is freed.
    InsufficientStorage,
    Internal,
}

impl ErrorKind {
    /// Returns whether a caller can fix the request (or retry) and succeed.
    pub fn recoverable(self) -> bool {
        !matches!(self, ErrorKind::Internal)
    }
}
