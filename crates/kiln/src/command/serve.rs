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
}

pub async fn run(global: &GlobalArgs, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(global)?;
    // One server per data directory: taken before anything is opened, held until exit.
    let _lock = kiln_session::ServeLock::acquire(&config.storage.data_dir)
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let (mut config, mgr) = open(global).await?;
    if let Some(bind) = args.bind {
        config.server.bind = bind;
    }
    let bind = config.server.bind.clone();
    let agent = kiln_agent::Agent::from_config(mgr, &config)
        .context("the [llm] configuration is not usable")?;
    kiln_server::run(agent, &config)
        .await
        .with_context(|| format!("could not serve on {bind}"))?;
    Ok(ExitCode::SUCCESS)
}
