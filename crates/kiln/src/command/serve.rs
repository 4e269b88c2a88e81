//! `kiln serve`: runs the HTTP service on the data directory.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use super::context::{GlobalArgs, open};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (overrides server.bind; default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<String>,
}

pub async fn run(global: &GlobalArgs, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let (config, mgr) = open(global).await?;
    let bind = args.bind.unwrap_or_else(|| config.server.bind.clone());
    let agent = kiln_agent::Agent::from_config(mgr, &config)
        .context("the [llm] configuration is not usable")?;
    kiln_server::run(
        agent,
        &bind,
        config.server.max_body_bytes,
        Some(config.server.public_url.as_str()),
        config.jobs.enabled.then(|| config.jobs.clone()),
    )
    .await
    .with_context(|| format!("could not serve on {bind}"))?;
    Ok(ExitCode::SUCCESS)
}
