//! The crate's one error type: what can go wrong when asking a chat model for an answer.

use std::time::Duration;

/// Result alias used across kiln-llm.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a chat model call can fail with, classified for the caller.
///
/// The agent treats all of these as infrastructure failures of one model call; whether a turn
/// is aborted or retried later is its decision. Retries on rate limits and server errors have
/// already happened inside the provider by the time one of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The provider answered 429 on every attempt.
    #[error("rate limited by the model provider after {attempts} attempts: {message}")]
    RateLimited {
        /// Attempts made, the first one included.
        attempts: u32,
        /// The provider's last `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
        /// The provider's message.
        message: String,
    },
    /// No response (or no next stream chunk) arrived within the configured timeout.
    #[error("the model provider did not answer within {0:?}")]
    Timeout(Duration),
    /// The provider answered with an error status (after retries for 5xx).
    #[error("model provider error {status}: {message}")]
    Provider {
        /// HTTP status code.
        status: u16,
        /// The provider's message, as sent.
        message: String,
    },
    /// The provider could not be reached (connection refused, reset, TLS failure).
    #[error("could not reach the model provider: {0}")]
    Transport(String),
    /// The provider's answer could not be understood (not the chat-completions shape).
    #[error("malformed answer from the model provider: {0}")]
    Malformed(String),
    /// The model configuration is unusable (bad base URL, empty model name, bad header value).
    #[error("invalid model configuration: {0}")]
    Config(String),
    /// A scripted model was asked for more responses than were queued.
    #[error("the scripted model has no response left for request {0}")]
    ScriptExhausted(usize),
}

impl Error {
    /// Returns true when a later call may succeed without any change (rate limit, timeout,
    /// server error, unreachable provider).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::RateLimited { .. } | Error::Timeout(_) | Error::Transport(_) => true,
            Error::Provider { status, .. } => *status >= 500,
            Error::Malformed(_) | Error::Config(_) | Error::ScriptExhausted(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_classification() {
        let cases = [
            (Error::Timeout(Duration::from_secs(1)), true),
            (
                Error::Provider {
                    status: 503,
                    message: String::new(),
                },
                true,
            ),
            (
                Error::Provider {
                    status: 400,
                    message: String::new(),
                },
                false,
            ),
            (Error::Malformed("x".into()), false),
            (Error::Config("x".into()), false),
            (
                Error::RateLimited {
                    attempts: 3,
                    retry_after: None,
                    message: String::new(),
                },
                true,
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(error.is_transient(), expected, "{error}");
        }
    }
}
