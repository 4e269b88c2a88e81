//! Choosing the model for a configuration: the provider when one is configured, else the
//! offline planner, so a fresh machine always has a working model.

use std::sync::Arc;

use crate::error::Result;
use crate::model::ChatModel;
use crate::planner::OfflinePlanner;
use crate::provider::{OpenAiProvider, ProviderConfig};

/// Returns the model for the `[llm]` section: an [`OpenAiProvider`] when a base URL or an API
/// key (config or `OPENAI_API_KEY`) is present, the [`OfflinePlanner`] otherwise.
///
/// A configured but invalid provider is an error, not a silent fallback: the researcher asked
/// for a model and should learn why it is not used.
pub fn model_from_config(config: Option<&ProviderConfig>) -> Result<Arc<dyn ChatModel>> {
    match config {
        Some(config) if config.is_configured() => Ok(Arc::new(OpenAiProvider::new(config)?)),
        _ => Ok(Arc::new(OfflinePlanner::new())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planner::OFFLINE_PLANNER_NAME;

    #[test]
    fn selects_by_configuration() {
        assert_eq!(
            model_from_config(None).unwrap().name(),
            OFFLINE_PLANNER_NAME
        );
        let local = ProviderConfig::new("http://127.0.0.1:11434/v1", "llama3.2");
        assert_eq!(model_from_config(Some(&local)).unwrap().name(), "llama3.2");
        let broken = ProviderConfig::new("127.0.0.1:11434", "llama3.2");
        assert!(model_from_config(Some(&broken)).is_err());
    }
}
