//! `kiln serve`: runs the HTTP service on the data directory.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use super::context::{GlobalArgs, load_config, open};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (overrides server.bind; default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<String>,
    /// An OpenAI-compatible server's base URL, up to /v1 (overrides llm.base_url), e.g.
    /// http://127.0.0.1:11434/v1 for Ollama.
    #[arg(long, value_name = "URL")]
    pub llm_base_url: Option<String>,
    /// The model to ask (overrides llm.model).
    #[arg(long, value_name = "NAME")]
    pub llm_model: Option<String>,
    /// A file holding the server's API key (overrides llm.api_key_file; or set
    /// KILN_LLM__API_KEY). The key is never printed or logged.
    #[arg(long, value_name = "PATH")]
    pub llm_api_key_file: Option<std::path::PathBuf>,
}

/// How long `serve` waits for a local Ollama server to answer the probe.
const OLLAMA_PROBE_WAIT: std::time::Duration = std::time::Duration::from_millis(300);

pub async fn run(global: &GlobalArgs, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(global)?;
    // One server per data directory: taken before anything is opened, held until exit.
    let _lock = kiln_session::ServeLock::acquire(&config.storage.data_dir)
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let (mut config, mgr) = open(global).await?;
    if let Some(bind) = args.bind {
        config.server.bind = bind;
    }
    if let Some(url) = args.llm_base_url {
        config.llm.base_url = Some(url);
    }
    if let Some(model) = args.llm_model {
        config.llm.model = Some(model);
    }
    if let Some(file) = args.llm_api_key_file {
        // The flag names a file: it wins over a key given in the configuration.
        config.llm.api_key = None;
        config.llm.api_key_file = Some(file);
    }
    let bind = config.server.bind.clone();
    let agent = super::mcp::agent(mgr, &config).await?;
    let settings = agent.model_slot().view();
    if settings.saved_on_page {
        println!(
            "Model settings saved on the settings page ({}) are in force; they override [llm] and the --llm-* flags.",
            config
                .storage
                .data_dir
                .join(kiln_agent::settings::SETTINGS_FILE)
                .display()
        );
    }
    if settings.base_url.is_none() && !config.llm.ollama_probe.trim().is_empty() {
        // Said, never switched to: the researcher chooses the model. The probe is bounded and
        // runs beside start-up, so start-up never waits for it.
        let addr = config.llm.ollama_probe.trim().to_owned();
        tokio::spawn(async move {
            if let Some(models) = kiln_llm::probe_ollama(&addr, OLLAMA_PROBE_WAIT).await {
                println!("{}", ollama_hint(&addr, &models));
            }
        });
    }
    kiln_server::run(agent, &config)
        .await
        .with_context(|| format!("could not serve on {bind}"))?;
    Ok(ExitCode::SUCCESS)
}

/// What `serve` says when an Ollama server answers and no model is configured.
fn ollama_hint(addr: &str, models: &[String]) -> String {
    let model = models.first().map_or("llama3.2", String::as_str);
    let listed = if models.is_empty() {
        "no models yet: `ollama pull llama3.2` first".to_owned()
    } else {
        format!("models: {}", models.join(", "))
    };
    format!(
        "An Ollama server answers on {addr} ({listed}). Kiln is using its offline planner; to \
         use Ollama instead, restart with\n  kiln serve --llm-base-url http://{addr}/v1 \
         --llm-model {model}\nor choose it on the settings page (/web/settings)."
    )
}

#[cfg(test)]
mod tests {
    use super::ollama_hint;

    #[test]
    fn the_ollama_hint_names_a_model_it_has() {
        let hint = ollama_hint("127.0.0.1:11434", &["qwen2.5:7b".into(), "llama3.2".into()]);
        assert!(hint.contains("--llm-base-url http://127.0.0.1:11434/v1 --llm-model qwen2.5:7b"));
        let empty = ollama_hint("127.0.0.1:11434", &[]);
        assert!(empty.contains("ollama pull"), "{empty}");
    }
}
