//! The Model Context Protocol both ways, on the official Rust SDK (`rmcp`): Kiln as an MCP
//! server (`kiln mcp` over stdio, `/mcp` over streamable HTTP, mounted by kiln-server) and the
//! configured MCP tool servers (`[[mcp.servers]]`) as session tools in the agent's registry.
//!
//! This crate speaks no SQL and knows no axum: every call goes through the Agent and the
//! SessionManager with the caller's identity, as the HTTP routes do.

mod external;
mod server;

use std::sync::Arc;

use kiln_agent::Agent;
use kiln_session::Caller;
use rmcp::ServiceExt;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

pub use external::{McpTool, ToolServer, attach, backoff};
pub use server::{Gate, KilnMcp};

/// Why the MCP side could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `[[mcp.servers]]` entry is not usable.
    #[error("{0}")]
    Config(String),
    /// The stdio connection failed.
    #[error("mcp: {0}")]
    Transport(String),
}

/// Serves Kiln over this process's stdin and stdout as `caller` until the client hangs up.
pub async fn serve_stdio(agent: Agent, caller: Caller) -> Result<(), Error> {
    let service = KilnMcp::for_caller(agent, caller)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| Error::Transport(e.to_string()))?;
    service
        .waiting()
        .await
        .map_err(|e| Error::Transport(e.to_string()))?;
    Ok(())
}

/// The streamable-HTTP MCP service. Mounted behind a bearer-token check that puts the
/// request's [`Caller`] in its extensions; each request acts as that caller. `gate` charges
/// expensive calls (the per-user budget).
pub type HttpService = StreamableHttpService<KilnMcp, LocalSessionManager>;

/// Builds the streamable-HTTP service over `agent`; requests carry at most `max_body_bytes`.
pub fn http_service(agent: Agent, gate: Option<Gate>, max_body_bytes: usize) -> HttpService {
    // Every request must carry a bearer token (checked before this service), which a page a
    // DNS-rebinding attack loads does not have: the Host check would only refuse real proxies.
    let config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .with_max_request_body_bytes(max_body_bytes);
    let handler = KilnMcp::per_request(agent, gate);
    StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    )
}
