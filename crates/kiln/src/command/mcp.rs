//! `kiln mcp`: Kiln as an MCP server on stdin and stdout (for desktop assistants), acting as
//! the user whose API token is in `KILN_TOKEN`.

use std::process::ExitCode;

use anyhow::{Context as _, anyhow};
use clap::Args;

use super::context::{Cli as _, GlobalArgs, open};

/// The environment variable holding the API token `kiln mcp` acts with.
pub const TOKEN_ENV: &str = "KILN_TOKEN";

#[derive(Debug, Args)]
pub struct McpArgs {}

pub async fn run(global: &GlobalArgs, _args: McpArgs) -> anyhow::Result<ExitCode> {
    let token = std::env::var(TOKEN_ENV).map_err(|_| {
        anyhow!(
            "set {TOKEN_ENV} to a Kiln API token (`kiln user token NAME`): kiln mcp acts as \
             that user"
        )
    })?;
    let (config, mgr) = open(global).await?;
    let caller = mgr
        .authenticate(token.trim())
        .await
        .cli()
        .with_context(|| format!("{TOKEN_ENV} is not a Kiln API token of this data directory"))?;
    let agent = agent(mgr.clone(), &config).await?;
    let served = kiln_mcp::serve_stdio(agent, caller).await;
    mgr.close().await;
    served.context("the MCP connection failed")?;
    Ok(ExitCode::SUCCESS)
}

/// The agent with the built-in tools and the configured MCP servers' tools (`serve` and `mcp`).
pub async fn agent(
    mgr: kiln_session::SessionManager,
    config: &kiln_session::Config,
) -> anyhow::Result<kiln_agent::Agent> {
    let mut tools = kiln_agent::Registry::builtin();
    let attached = kiln_mcp::attach(&mut tools, &config.mcp.servers)
        .await
        .context("the [[mcp.servers]] configuration is not usable")?;
    if !attached.is_empty() {
        tracing::info!(tools = %attached.join(", "), "mcp server tools attached");
    }
    kiln_agent::Agent::from_config_with_tools(mgr, config, tools)
        .context("the model configuration is not usable")
}
