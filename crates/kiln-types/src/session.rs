//! Session settings: type, context window configuration, research schedule.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What kind of work a session is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SessionType {
    #[default]
    Interactive,
    Batch,
    Research,
    Collaborative,
}

impl SessionType {
    pub const ALL: [SessionType; 4] = [
        SessionType::Interactive,
        SessionType::Batch,
        SessionType::Research,
        SessionType::Collaborative,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SessionType::Interactive => "interactive",
            SessionType::Batch => "batch",
            SessionType::Research => "research",
            SessionType::Collaborative => "collaborative",
        }
    }
}

impl fmt::Display for SessionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SessionType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SessionType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("unknown session type `{s}`"))
    }
}

/// How the agent assembles its context window for this session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContextConfig {
    /// The last this many messages are always in the window (budget permitting).
    pub max_history: u32,
    /// How many recently referenced materials the agent keeps in view.
    pub material_memory: u32,
    /// Whether older turns are summarised into summary nodes when the path outgrows the budget.
    pub auto_summarise: bool,
    /// Past findings need at least this search relevance (0..=1) to enter the window.
    pub relevance_threshold: f64,
    /// The token budget of the whole window.
    pub context_window: u32,
    /// Whether the window includes findings from the user's other sessions ("from your other
    /// sessions") when a request mentions a material or topic they have findings on.
    pub recall: bool,
}

impl Default for ContextConfig {
    fn default() -> Self {
        Self {
            max_history: 100,
            material_memory: 10,
            auto_summarise: true,
            relevance_threshold: 0.5,
            context_window: 8000,
            recall: true,
        }
    }
}

impl ContextConfig {
    /// Returns a description of the first out-of-range field, if any.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_history == 0 || self.max_history > 10_000 {
            return Err("context.max_history must be between 1 and 10000".into());
        }
        if self.material_memory > 1000 {
            return Err("context.material_memory must be at most 1000".into());
        }
        if !(0.0..=1.0).contains(&self.relevance_threshold) {
            return Err("context.relevance_threshold must be between 0 and 1".into());
        }
        if !(256..=2_000_000).contains(&self.context_window) {
            return Err("context.context_window must be between 256 and 2000000 tokens".into());
        }
        Ok(())
    }
}

/// When a research session is checkpointed automatically.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum CheckpointFrequency {
    Hourly,
    Daily,
    /// A cron expression (seconds optional), validated by the session manager.
    Cron(String),
}

impl From<CheckpointFrequency> for String {
    fn from(f: CheckpointFrequency) -> String {
        match f {
            CheckpointFrequency::Hourly => "hourly".into(),
            CheckpointFrequency::Daily => "daily".into(),
            CheckpointFrequency::Cron(c) => c,
        }
    }
}

impl TryFrom<String> for CheckpointFrequency {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        match s.trim() {
            "hourly" => Ok(CheckpointFrequency::Hourly),
            "daily" => Ok(CheckpointFrequency::Daily),
            "" => Err("checkpoint_frequency must be hourly, daily or a cron expression".into()),
            other => Ok(CheckpointFrequency::Cron(other.to_string())),
        }
    }
}

/// The settings stored with a session, beyond its name and labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    pub context: ContextConfig,
    /// Research sessions: planned length, after which the session is archived.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_days: Option<u32>,
    /// Research sessions: how often the session is checkpointed automatically.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_frequency: Option<CheckpointFrequency>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_frequency_reads_keywords_and_cron() {
        let f: CheckpointFrequency = serde_json::from_str("\"hourly\"").unwrap();
        assert_eq!(f, CheckpointFrequency::Hourly);
        let f: CheckpointFrequency = serde_json::from_str("\"0 0 * * * *\"").unwrap();
        assert_eq!(f, CheckpointFrequency::Cron("0 0 * * * *".into()));
        assert!(serde_json::from_str::<CheckpointFrequency>("\"  \"").is_err());
    }

    #[test]
    fn context_config_rejects_out_of_range_values() {
        assert!(ContextConfig::default().validate().is_ok());
        let bad = ContextConfig {
            relevance_threshold: 1.5,
            ..ContextConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("relevance_threshold"));
        let bad = ContextConfig {
            max_history: 0,
            ..ContextConfig::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn unknown_config_keys_are_refused() {
        let err = serde_json::from_str::<ContextConfig>(r#"{"max_histroy": 3}"#).unwrap_err();
        assert!(err.to_string().contains("max_histroy"));
    }
}
