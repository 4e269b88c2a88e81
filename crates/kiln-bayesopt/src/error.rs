//! The crate's error type: every way a caller's input or a numerical step can fail.

use thiserror::Error;

/// Errors returned by the Bayesian optimisation library.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum Error {
    /// The search space definition is invalid (empty, reversed bounds, one-level categorical, ...).
    #[error("invalid search space: {0}")]
    InvalidSpace(String),
    /// One or more experiment rows failed validation; nothing was added.
    #[error("{} invalid experiment row(s): {}", .0.len(), format_rows(.0))]
    InvalidExperiments(Vec<RowError>),
    /// A point given for prediction or design does not fit the search space.
    #[error("invalid point: {0}")]
    InvalidPoint(String),
    /// Tool arguments are malformed (unknown action, missing field, wrong type).
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// The named experiment (or other record) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The action needs state that does not exist yet (for example no search space).
    #[error("{0}")]
    MissingState(String),
    /// No queued experiment has the given id.
    #[error("{0}")]
    NoSuchQueued(String),
    /// No proposed lock has the given id.
    #[error("{0}")]
    NoSuchProposal(String),
    /// A queued experiment is not in a status the action can move it from (complete a failed
    /// one, start a finished one).
    #[error("{0}")]
    QueueState(String),
    /// Text given for bulk import could not be parsed as CSV or JSON.
    #[error("could not parse {format}: {message}")]
    Parse {
        /// The format that was being parsed ("csv" or "json").
        format: &'static str,
        /// What went wrong, with a line number where known.
        message: String,
    },
    /// The Gaussian process could not be fitted even with jitter (degenerate data).
    #[error("model fit failed: {0}")]
    Numerical(String),
}

/// Why one experiment row was rejected.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RowError {
    /// Zero-based index of the row in the submitted batch.
    pub row: usize,
    /// One-based line of the row in uploaded text, when it came from text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The variable (or "output"/"noise") at fault, when there is one.
    pub field: Option<String>,
    /// Human-readable reason.
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "row {}: {}: {}", self.row, field, self.message),
            None => write!(f, "row {}: {}", self.row, self.message),
        }
    }
}

fn format_rows(rows: &[RowError]) -> String {
    rows.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
