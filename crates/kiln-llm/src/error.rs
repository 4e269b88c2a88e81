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
    /// The request did not fit the model's context window (OpenAI's
    /// `context_length_exceeded`, or vLLM's, llama.cpp's or Ollama's wording of it).
    #[error("the conversation is longer than the model's context window: {0}")]
    ContextOverflow(String),
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
            Error::Malformed(_)
            | Error::Config(_)
            | Error::ScriptExhausted(_)
            | Error::ContextOverflow(_) => false,
        }
    }
}

/// Returns true when a provider's error (status, `code`, message) says the request was longer
/// than the model's context window. OpenAI sends `code: context_length_exceeded`; the servers
/// people run locally say it in words, matched here by the phrases they use.
pub(crate) fn is_context_overflow(status: u16, code: Option<&str>, message: &str) -> bool {
    if !matches!(status, 400 | 413 | 422 | 500) {
        return false;
    }
    if matches!(
        code,
        Some("context_length_exceeded" | "exceed_context_size_error")
    ) {
        return true;
    }
    let message = message.to_ascii_lowercase();
    const PHRASES: [&str; 8] = [
        // OpenAI and older vLLM: "This model's maximum context length is 4096 tokens. However…"
        "maximum context length",
        // vLLM: "… is too long to fit into the model (context length 4096)", "… exceeds the
        // maximum model length of 4096"
        "too long to fit into the model",
        "maximum model length",
        // llama.cpp server (and Ollama through it): "the request exceeds the available context
        // size, try increasing it"
        "exceeds the available context size",
        // Ollama: "input length exceeds maximum context length", "prompt is too long"
        "exceeds maximum context length",
        "exceeds the context window",
        "context window exceeded",
        "context_length_exceeded",
    ];
    PHRASES.iter().any(|phrase| message.contains(phrase))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_overflow_wordings() {
        let cases = [
            (400, Some("context_length_exceeded"), "too many", true),
            (
                400,
                None,
                "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens (4900 in the messages, 100 in the completion).",
                true,
            ),
            (
                400,
                None,
                "The prompt (total length 5000) is too long to fit into the model (context length 4096).",
                true,
            ),
            (
                400,
                None,
                "the request exceeds the available context size, try increasing it",
                true,
            ),
            (
                500,
                None,
                "input length exceeds maximum context length",
                true,
            ),
            (400, None, "bad tool schema", false),
            (429, Some("context_length_exceeded"), "x", false),
            (401, None, "maximum context length", false),
        ];
        for (status, code, message, expected) in cases {
            assert_eq!(
                is_context_overflow(status, code, message),
                expected,
                "{status} {code:?} {message}"
            );
        }
    }

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
