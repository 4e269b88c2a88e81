//! Building the agent from Kiln's configuration: the `[llm]` section picks the model (the
//! provider when configured, the offline planner otherwise), `[agent]` tunes the loop.

use std::sync::Arc;

use kiln_llm::{ApiKey, ChatModel, ProviderConfig, model_from_config};
use kiln_session::{Config, LlmConfig, SessionManager};

use crate::{Agent, Registry};

/// Maps the `[llm]` section onto the provider's configuration (defaults where unset).
pub fn provider_config(llm: &LlmConfig) -> Result<ProviderConfig, kiln_llm::Error> {
    let d = ProviderConfig::default();
    Ok(ProviderConfig {
        base_url: llm.base_url.clone().filter(|u| !u.trim().is_empty()),
        api_key: llm.api_key.as_deref().map(ApiKey::new).transpose()?,
        model: llm.model.clone().unwrap_or(d.model),
        temperature: llm.temperature.or(d.temperature),
        timeout_secs: llm.timeout_secs.unwrap_or(d.timeout_secs),
        max_retries: llm.max_retries.unwrap_or(d.max_retries),
        retry_base_ms: llm.retry_base_ms.unwrap_or(d.retry_base_ms),
        retry_max_ms: llm.retry_max_ms.unwrap_or(d.retry_max_ms),
    })
}

/// Returns the model the configuration asks for.
pub fn model(config: &Config) -> Result<Arc<dyn ChatModel>, kiln_llm::Error> {
    model_from_config(Some(&provider_config(&config.llm)?))
}

impl Agent {
    /// Returns the agent for `config` over `manager`, with the built-in tools.
    pub fn from_config(manager: SessionManager, config: &Config) -> Result<Agent, kiln_llm::Error> {
        Ok(Agent::new(
            manager,
            model(config)?,
            Registry::builtin(),
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
