//! Building the agent from Kiln's configuration: the `[llm]` section picks the model (the
//! provider when configured, the offline planner otherwise), `[agent]` tunes the loop.

use std::sync::Arc;

use kiln_llm::{ApiKey, ChatModel, ProviderConfig, model_from_config};
use kiln_session::{Config, LlmConfig, SessionManager};

use crate::settings::ModelSlot;
use crate::{Agent, Registry};

/// Maps the `[llm]` section onto the provider's configuration (defaults where unset). The key
/// is `api_key`, else the contents of `api_key_file`.
pub fn provider_config(llm: &LlmConfig) -> Result<ProviderConfig, kiln_llm::Error> {
    let d = ProviderConfig::default();
    let key = match (&llm.api_key, &llm.api_key_file) {
        (Some(key), _) => Some(ApiKey::new(key.as_str())?),
        (None, Some(path)) if !path.as_os_str().is_empty() => Some(read_key_file(path)?),
        _ => None,
    };
    Ok(ProviderConfig {
        base_url: llm.base_url.clone().filter(|u| !u.trim().is_empty()),
        api_key: key,
        model: llm.model.clone().unwrap_or(d.model),
        temperature: llm.temperature.or(d.temperature),
        timeout_secs: llm.timeout_secs.unwrap_or(d.timeout_secs),
        max_retries: llm.max_retries.unwrap_or(d.max_retries),
        retry_base_ms: llm.retry_base_ms.unwrap_or(d.retry_base_ms),
        retry_max_ms: llm.retry_max_ms.unwrap_or(d.retry_max_ms),
    })
}

/// Reads an API key from a file (its first line; the contents never appear in an error).
fn read_key_file(path: &std::path::Path) -> Result<ApiKey, kiln_llm::Error> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        kiln_llm::Error::Config(format!(
            "could not read the API key file {}: {}",
            path.display(),
            e.kind()
        ))
    })?;
    let line = text.lines().next().unwrap_or("");
    ApiKey::new(line)
        .map_err(|e| kiln_llm::Error::Config(format!("the API key file {}: {e}", path.display())))
}

/// Returns the model the configuration asks for (the `[llm]` section only; the settings page's
/// values are applied by [`Agent::from_config`]).
pub fn model(config: &Config) -> Result<Arc<dyn ChatModel>, kiln_llm::Error> {
    model_from_config(Some(&provider_config(&config.llm)?))
}

impl Agent {
    /// Returns the agent for `config` over `manager`, with the built-in tools, answering with
    /// the `[llm]` model overlaid by what the settings page saved in the data directory.
    pub fn from_config(manager: SessionManager, config: &Config) -> Result<Agent, kiln_llm::Error> {
        Agent::from_config_with_tools(manager, config, Registry::builtin())
    }

    /// Returns the agent for `config` calling `tools` (the built-in ones and, from kiln-mcp,
    /// the configured MCP servers' tools).
    pub fn from_config_with_tools(
        manager: SessionManager,
        config: &Config,
        tools: Registry,
    ) -> Result<Agent, kiln_llm::Error> {
        Ok(Agent::with_model_slot(
            manager,
            ModelSlot::load(config)?,
            tools,
            config.agent.clone(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_provider_configured_means_the_offline_planner() {
        // Only meaningful when the test environment has no OPENAI_API_KEY.
        if std::env::var_os(kiln_llm::API_KEY_ENV).is_some() {
            return;
        }
        let c = Config::default();
        assert_eq!(model(&c).unwrap().name(), kiln_llm::OFFLINE_PLANNER_NAME);
        let mut c = Config::default();
        c.llm.base_url = Some("http://127.0.0.1:9/v1".into());
        c.llm.model = Some("llama3.2".into());
        assert_eq!(model(&c).unwrap().name(), "llama3.2");
        c.llm.base_url = Some("ftp://nowhere".into());
        assert!(
            model(&c).is_err(),
            "a broken provider is an error, not a fallback"
        );
    }
}
