//! The crate's one error type: parse failures with byte positions, and analysis refusals.

use serde::Serialize;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when reading or analysing a formula.
///
/// Parse errors carry the byte offset into the (untrimmed) input where the problem was
/// found and, where it helps, what the parser expected there.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The input is empty or only whitespace.
    #[error("empty formula")]
    Empty,
    /// The input is longer than [`crate::parse::MAX_INPUT_LEN`] bytes.
    #[error("formula is {len} bytes long, the limit is {max}")]
    TooLong { len: usize, max: usize },
    /// A capitalised symbol that is not a chemical element.
    #[error("unknown element `{symbol}` at byte {position}")]
    UnknownElement { symbol: String, position: usize },
    /// A character (or the end of input) that cannot appear here.
    #[error("expected {expected} at byte {position}, found {found}")]
    Unexpected {
        position: usize,
        expected: &'static str,
        found: String,
    },
    /// An opening bracket that is never closed.
    #[error("`{open}` at byte {position} is never closed")]
    UnclosedGroup { position: usize, open: char },
    /// A closing bracket with no group open.
    #[error("`{close}` at byte {position} closes no group")]
    UnbalancedClose { position: usize, close: char },
    /// A group with nothing inside, such as `()`.
    #[error("empty group at byte {position}")]
    EmptyGroup { position: usize },
    /// Groups nested deeper than [`crate::parse::MAX_DEPTH`].
    #[error("groups nested deeper than {max} at byte {position}")]
    TooDeep { position: usize, max: usize },
    /// A zero, absurdly large or too finely divided amount.
    #[error("bad amount at byte {position}: {reason}")]
    BadAmount {
        position: usize,
        reason: &'static str,
    },
    /// The analysis needs an oxidation-state assignment and none exists.
    #[error("no charge-balanced oxidation states for {formula}")]
    NoOxidationStates { formula: String },
    /// Tool arguments that do not match the schema.
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
}

impl Error {
    /// Returns a stable machine-readable code for the error kind.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Empty => "empty",
            Error::TooLong { .. } => "too_long",
            Error::UnknownElement { .. } => "unknown_element",
            Error::Unexpected { .. } => "unexpected",
            Error::UnclosedGroup { .. } => "unclosed_group",
            Error::UnbalancedClose { .. } => "unbalanced_close",
            Error::EmptyGroup { .. } => "empty_group",
            Error::TooDeep { .. } => "too_deep",
            Error::BadAmount { .. } => "bad_amount",
            Error::NoOxidationStates { .. } => "no_oxidation_states",
            Error::InvalidArguments(_) => "invalid_arguments",
        }
    }

    /// Returns the byte offset the error points at, when it points anywhere.
    pub fn position(&self) -> Option<usize> {
        match self {
            Error::UnknownElement { position, .. }
            | Error::Unexpected { position, .. }
            | Error::UnclosedGroup { position, .. }
            | Error::UnbalancedClose { position, .. }
            | Error::EmptyGroup { position }
            | Error::TooDeep { position, .. }
            | Error::BadAmount { position, .. } => Some(*position),
            Error::Empty => Some(0),
            Error::TooLong { max, .. } => Some(*max),
            Error::NoOxidationStates { .. } | Error::InvalidArguments(_) => None,
        }
    }

    /// Returns the serialisable `{code, message, position}` view used by the tool and CLI.
    pub fn report(&self) -> ErrorReport {
        ErrorReport {
            code: self.code(),
            message: self.to_string(),
            position: self.position(),
        }
    }
}

/// The JSON shape of an error: `{"code", "message", "position"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorReport {
    pub code: &'static str,
    pub message: String,
    pub position: Option<usize>,
}
