//! `ProviderConfig`: where the OpenAI-compatible server is, which model, and how patient to be.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// The base URL used when a key is configured but no base URL is.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

/// The environment variable read when the configuration carries no key.
pub const API_KEY_ENV: &str = "OPENAI_API_KEY";

/// An API key. `Debug` and `Serialize` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key, refusing one that cannot be sent in an HTTP header.
    pub fn new(key: impl Into<String>) -> Result<Self> {
        let key = key.into();
        let key = key.trim().to_owned();
        if key.is_empty() {
            return Err(Error::Config("the API key is empty".into()));
        }
        if !key.bytes().all(|byte| (0x21..=0x7e).contains(&byte)) {
            return Err(Error::Config(
                "the API key contains characters an HTTP header cannot carry".into(),
            ));
        }
        Ok(ApiKey(key))
    }

    /// Returns the key itself, for the Authorization header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

impl Serialize for ApiKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // A configuration dump must not leak the secret.
        serializer.serialize_str("[redacted]")
    }
}

impl<'de> Deserialize<'de> for ApiKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        ApiKey::new(raw).map_err(serde::de::Error::custom)
    }
}

/// The `[llm]` configuration of an OpenAI-compatible provider (OpenAI, Ollama, vLLM,
/// llama.cpp server).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProviderConfig {
    /// Base URL up to and including `/v1` (`http://127.0.0.1:11434/v1` for Ollama).
    /// `None` means OpenAI's.
    pub base_url: Option<String>,
    /// API key; `None` reads `OPENAI_API_KEY`. Local servers usually need none.
    pub api_key: Option<ApiKey>,
    /// Model name sent with each request.
    pub model: String,
    /// Default sampling temperature; a request's own temperature wins.
    pub temperature: Option<f32>,
    /// Seconds to wait for response headers, and between two chunks of a body or stream.
    pub timeout_secs: u64,
    /// Retries after the first attempt on 429, 5xx and refused connections.
    pub max_retries: u32,
    /// First backoff delay in milliseconds; doubles each retry, with jitter.
    pub retry_base_ms: u64,
    /// Longest single backoff delay in milliseconds (caps `Retry-After` too).
    pub retry_max_ms: u64,
}

impl Default for ProviderConfig {
    fn default() -> Self {
        ProviderConfig {
            base_url: None,
            api_key: None,
            model: "gpt-4o-mini".into(),
            temperature: None,
            timeout_secs: 60,
            max_retries: 3,
            retry_base_ms: 500,
            retry_max_ms: 30_000,
        }
    }
}

impl ProviderConfig {
    /// Returns a configuration for the server at `base_url` serving `model`.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        ProviderConfig {
            base_url: Some(base_url.into()),
            model: model.into(),
            ..ProviderConfig::default()
        }
    }

    /// Returns the key to send: the configured one, else `OPENAI_API_KEY` if set and usable.
    pub fn resolved_api_key(&self) -> Option<ApiKey> {
        self.api_key.clone().or_else(|| {
            std::env::var(API_KEY_ENV)
                .ok()
                .and_then(|key| ApiKey::new(key).ok())
        })
    }

    /// Returns true when a provider should be used: a base URL or a key is configured.
    /// Otherwise the offline planner is the model.
    pub fn is_configured(&self) -> bool {
        self.base_url
            .as_deref()
            .is_some_and(|url| !url.trim().is_empty())
            || self.resolved_api_key().is_some()
    }

    /// Returns the base URL without a trailing slash, checked to be http(s).
    pub fn resolved_base_url(&self) -> Result<String> {
        let url = self
            .base_url
            .as_deref()
            .map(str::trim)
            .filter(|url| !url.is_empty());
        let url = url.unwrap_or(OPENAI_BASE_URL).trim_end_matches('/');
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .ok_or_else(|| {
                Error::Config(format!(
                    "base URL must start with http:// or https://: {url}"
                ))
            })?;
        if rest.is_empty() || rest.starts_with('/') {
            return Err(Error::Config(format!("base URL has no host: {url}")));
        }
        Ok(url.to_owned())
    }

    /// Returns the per-attempt timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs.max(1))
    }

    /// Checks everything a request needs, so a bad configuration fails at start-up.
    pub fn validate(&self) -> Result<()> {
        self.resolved_base_url()?;
        if self.model.trim().is_empty() {
            return Err(Error::Config("the model name is empty".into()));
        }
        if let Some(temperature) = self.temperature
            && !(0.0..=2.0).contains(&temperature)
        {
            return Err(Error::Config(format!(
                "temperature {temperature} is outside 0..=2"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_is_redacted_in_debug_and_serialisation() {
        let config = ProviderConfig {
            api_key: Some(ApiKey::new("sk-secret-123").unwrap()),
            ..ProviderConfig::default()
        };
        let debug = format!("{config:?}");
        assert!(!debug.contains("sk-secret-123"), "{debug}");
        let json = serde_json::to_string(&config).unwrap();
        assert!(!json.contains("sk-secret-123"), "{json}");
        assert_eq!(config.resolved_api_key().unwrap().expose(), "sk-secret-123");
    }

    #[test]
    fn keys_that_cannot_be_headers_are_refused() {
        for bad in ["", "   ", "sk-a\nb", "sk-é"] {
            assert!(ApiKey::new(bad).is_err(), "{bad:?}");
        }
        let parsed: Result<ProviderConfig, _> = serde_json::from_str(r#"{"api_key": "a b"}"#);
        assert!(parsed.is_err());
    }

    #[test]
    fn base_url_is_normalised_and_checked() {
        let cases = [
            (
                Some("http://127.0.0.1:11434/v1/"),
                Ok("http://127.0.0.1:11434/v1"),
            ),
            (None, Ok(OPENAI_BASE_URL)),
            (Some("  "), Ok(OPENAI_BASE_URL)),
            (Some("ftp://example.org"), Err(())),
            (Some("http://"), Err(())),
            (Some("localhost:8000"), Err(())),
        ];
        for (input, expected) in cases {
            let config = ProviderConfig {
                base_url: input.map(str::to_owned),
                ..Default::default()
            };
            let got = config.resolved_base_url().ok();
            assert_eq!(got.as_deref(), expected.ok(), "{input:?}");
        }
    }

    #[test]
    fn partial_config_takes_defaults() {
        let config: ProviderConfig =
            serde_json::from_str(r#"{"base_url": "http://localhost:8000/v1", "model": "llama3"}"#)
                .unwrap();
        assert_eq!(config.max_retries, 3);
        assert_eq!(config.timeout(), Duration::from_secs(60));
        assert!(config.is_configured());
        assert!(config.validate().is_ok());
        let bad = ProviderConfig {
            temperature: Some(3.0),
            ..config.clone()
        };
        assert!(bad.validate().is_err());
        let empty = ProviderConfig {
            model: " ".into(),
            ..config
        };
        assert!(empty.validate().is_err());
    }
}
