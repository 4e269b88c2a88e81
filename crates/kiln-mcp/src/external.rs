//! MCP tool servers as session tools: each `[[mcp.servers]]` entry is one kept-alive client
//! (a child process over stdio, or a streamable-HTTP endpoint), restarted after a crash with
//! backoff, and each of its tools is one [`kiln_agent::Tool`] named `server.tool`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures::future::BoxFuture;
use kiln_agent::{Registry, Tool, ToolContext, ToolError, ToolOutput};
use kiln_session::CachePolicy;
use kiln_session::McpServerConfig;
use rmcp::model::{CallToolRequestParams, CallToolResult, ContentBlock};
use rmcp::service::RunningService;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::Error;

/// The longest wait before a restart after repeated failures.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// The most text a result gives the model (the full result stays on the node).
const MAX_TEXT: usize = 16 * 1024;
/// The largest image kept from one result.
const MAX_IMAGE_BYTES: usize = 8 * 1024 * 1024;

/// How long to wait before the next start after `failures` failures in a row: the first
/// restart at once (a crash is usually one bad moment), then 1 s, 2 s, 4 s … up to a minute.
pub fn backoff(failures: u32) -> Duration {
    match failures {
        0 | 1 => Duration::ZERO,
        n => Duration::from_secs(1u64 << (n - 2).min(6)).min(MAX_BACKOFF),
    }
}

type Client = RunningService<RoleClient, ()>;

/// The connection to one server, started at first need.
struct Conn {
    client: Option<Arc<Client>>,
    /// Counts starts, so a failure only drops the connection it happened on.
    generation: u64,
    failures: u32,
    retry_at: Option<Instant>,
}

/// One configured MCP server.
pub struct ToolServer {
    cfg: McpServerConfig,
    conn: Mutex<Conn>,
}

impl std::fmt::Debug for ToolServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolServer")
            .field("name", &self.cfg.name)
            .finish_non_exhaustive()
    }
}

/// Why a call to a server did not give a result.
#[derive(Debug)]
enum CallError {
    /// The server could not be reached or started, or broke during the call: a restart may
    /// help.
    Broken(String),
    /// The server answered with a protocol error (it is alive).
    Refused(String),
}

impl ToolServer {
    /// A server as configured (nothing is started).
    pub fn new(cfg: McpServerConfig) -> Result<Self, Error> {
        let name = cfg.name.trim();
        // `__` is how a namespaced name travels to providers (`kiln_llm::wire_tool_name`).
        if name.is_empty()
            || name.contains("__")
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(Error::Config(format!(
                "mcp server name `{}` must be letters, digits, `_` or `-` (not `__`)",
                cfg.name
            )));
        }
        match (cfg.command.trim().is_empty(), cfg.url.trim().is_empty()) {
            (false, true) | (true, false) => {}
            _ => {
                return Err(Error::Config(format!(
                    "mcp server `{name}` needs exactly one of `command` and `url`"
                )));
            }
        }
        if cfg.timeout_secs == 0 {
            return Err(Error::Config(format!(
                "mcp server `{name}`: timeout_secs must be at least 1"
            )));
        }
        for policy in std::iter::once(&cfg.cache).chain(cfg.cache_tools.values()) {
            CachePolicy::parse(policy)
                .map_err(|e| Error::Config(format!("mcp server `{name}`: {e}")))?;
        }
        Ok(ToolServer {
            cfg,
            conn: Mutex::new(Conn {
                client: None,
                generation: 0,
                failures: 0,
                retry_at: None,
            }),
        })
    }

    /// The server's name (its tools' prefix).
    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// How long the results of `tool` (its name on the server) are cached.
    fn cache_policy(&self, tool: &str) -> CachePolicy {
        let text = self.cfg.cache_tools.get(tool).unwrap_or(&self.cfg.cache);
        CachePolicy::parse(text).unwrap_or_default()
    }

    /// The version the running server reported (`name/version`), if it is running.
    async fn version(&self) -> Option<String> {
        let conn = self.conn.lock().await;
        let client = conn.client.as_ref().filter(|c| !c.is_closed())?;
        // A server that did not say who it is still caches, under "unnamed".
        let version = client
            .peer_info()
            .and_then(|i| {
                i.server_info
                    .as_ref()
                    .map(|s| format!("{}/{}", s.name, s.version))
            })
            .unwrap_or_else(|| "unnamed".to_owned());
        Some(version)
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.cfg.timeout_secs)
    }

    async fn start(&self) -> Result<Client, String> {
        let started = if self.cfg.url.trim().is_empty() {
            let mut cmd = tokio::process::Command::new(&self.cfg.command);
            cmd.args(&self.cfg.args).envs(&self.cfg.env);
            let transport = TokioChildProcess::builder(cmd)
                .stderr(std::process::Stdio::inherit())
                .spawn()
                .map_err(|e| format!("could not start `{}`: {e}", self.cfg.command))?
                .0;
            tokio::time::timeout(self.timeout(), ().serve(transport)).await
        } else {
            let transport = StreamableHttpClientTransport::from_uri(self.cfg.url.trim());
            tokio::time::timeout(self.timeout(), ().serve(transport)).await
        };
        match started {
            Err(_) => Err(format!(
                "did not finish starting within {} s",
                self.cfg.timeout_secs
            )),
            Ok(Err(e)) => Err(format!("could not initialise: {e}")),
            Ok(Ok(client)) => Ok(client),
        }
    }

    /// The live connection, started (or restarted) if there is none and the backoff allows.
    async fn client(&self) -> Result<(Arc<Client>, u64), CallError> {
        let mut conn = self.conn.lock().await;
        if let Some(c) = &conn.client {
            if !c.is_closed() {
                return Ok((c.clone(), conn.generation));
            }
            conn.client = None;
        }
        if let Some(at) = conn.retry_at {
            let now = Instant::now();
            if at > now {
                return Err(CallError::Broken(format!(
                    "it failed {} times in a row; the next start is in {} s",
                    conn.failures,
                    (at - now).as_secs().max(1)
                )));
            }
        }
        conn.generation += 1;
        if conn.generation > 1 {
            tracing::info!(server = %self.cfg.name, "restarting mcp server");
        }
        match self.start().await {
            Ok(client) => {
                let client = Arc::new(client);
                conn.client = Some(client.clone());
                conn.retry_at = None;
                Ok((client, conn.generation))
            }
            Err(e) => {
                conn.failures += 1;
                conn.retry_at = Some(Instant::now() + backoff(conn.failures));
                tracing::warn!(server = %self.cfg.name, error = %e, "mcp server did not start");
                Err(CallError::Broken(e))
            }
        }
    }

    /// Records the end of a call: a success resets the failure count, a breakage drops the
    /// connection it happened on (the next call starts the server again, after the backoff).
    async fn settle(&self, generation: u64, broken: bool) {
        let mut conn = self.conn.lock().await;
        if !broken {
            conn.failures = 0;
            return;
        }
        if conn.generation == generation {
            if let Some(c) = conn.client.take() {
                c.cancellation_token().cancel();
            }
            conn.failures += 1;
            conn.retry_at = Some(Instant::now() + backoff(conn.failures));
        }
    }

    /// Lists the server's tools (starting it).
    pub async fn list_tools(&self) -> Result<Vec<rmcp::model::Tool>, String> {
        let (client, generation) = self.client().await.map_err(|e| match e {
            CallError::Broken(m) | CallError::Refused(m) => m,
        })?;
        match tokio::time::timeout(self.timeout(), client.list_all_tools()).await {
            Ok(Ok(tools)) => {
                self.settle(generation, false).await;
                Ok(tools)
            }
            Ok(Err(e)) => {
                self.settle(generation, true).await;
                Err(format!("could not list its tools: {e}"))
            }
            Err(_) => {
                self.settle(generation, true).await;
                Err(format!(
                    "did not list its tools within {} s",
                    self.cfg.timeout_secs
                ))
            }
        }
    }

    async fn call(&self, tool: &str, args: Value) -> Result<CallToolResult, CallError> {
        let (client, generation) = self.client().await?;
        let mut params = CallToolRequestParams::new(tool.to_owned());
        params.arguments = match args {
            Value::Object(map) => Some(map),
            _ => None,
        };
        let outcome = tokio::time::timeout(self.timeout(), client.call_tool(params)).await;
        let result = match outcome {
            Err(_) => Err(CallError::Broken(format!(
                "it did not answer within {} s",
                self.cfg.timeout_secs
            ))),
            Ok(Ok(r)) => Ok(r),
            Ok(Err(rmcp::ServiceError::McpError(e))) => {
                Err(CallError::Refused(e.message.to_string()))
            }
            Ok(Err(e)) => Err(CallError::Broken(e.to_string())),
        };
        self.settle(generation, matches!(result, Err(CallError::Broken(_))))
            .await;
        result
    }
}

/// One tool of an MCP server, as a session tool.
#[derive(Debug)]
pub struct McpTool {
    server: Arc<ToolServer>,
    /// The tool's name on its server.
    remote: String,
    /// `server.tool`.
    name: String,
    description: String,
    schema: Value,
    read_only: bool,
}

impl McpTool {
    fn new(server: Arc<ToolServer>, t: rmcp::model::Tool) -> Self {
        let remote = t.name.to_string();
        let name = format!("{}.{remote}", server.name());
        let description = format!(
            "{} (from the MCP server `{}`)",
            t.description.as_deref().unwrap_or("").trim(),
            server.name()
        );
        let read_only = t
            .annotations
            .as_ref()
            .and_then(|a| a.read_only_hint)
            .unwrap_or(false);
        McpTool {
            server,
            remote,
            name,
            description,
            schema: Value::Object((*t.input_schema).clone()),
            read_only,
        }
    }

    fn allowed(&self, user: &str) -> bool {
        let users = &self.server.cfg.users;
        users.is_empty() || users.iter().any(|u| u == user)
    }
}

impl Tool for McpTool {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn schema(&self) -> Value {
        self.schema.clone()
    }

    /// Follows the server's read-only hint (what `GET /v1/tools` says; the call and its result
    /// are recorded on the branch either way).
    fn writes(&self) -> bool {
        !self.read_only
    }

    fn call<'a>(
        &'a self,
        ctx: &'a ToolContext,
        args: Value,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
        Box::pin(async move {
            if !self.allowed(&ctx.caller.name) {
                return Err(ToolError::Forbidden(format!(
                    "`{}` may not use the MCP server `{}`",
                    ctx.caller.name,
                    self.server.name()
                )));
            }
            if !args.is_object() {
                return Err(ToolError::InvalidArguments(
                    "arguments must be a JSON object".into(),
                ));
            }
            let server = self.server.name();
            // A cached result of this user's for the same call to the same server version.
            let policy = self.server.cache_policy(&self.remote);
            if policy != CachePolicy::Off
                && let Some(version) = self.server.version().await
                && let Some(hit) = ctx
                    .manager
                    .cached_tool_result(&ctx.caller, &self.name, &version, &args)
                    .await
            {
                let mut data = hit.output.get("data").cloned().unwrap_or(Value::Null);
                data["cache"] =
                    json!({"hit": true, "stored_at": hit.created_at, "version": version});
                let text = hit.output.get("text").and_then(Value::as_str).unwrap_or("");
                return Ok(ToolOutput::new(
                    format!("{text}\n(cached result from {})", hit.created_at),
                    data,
                ));
            }
            match self.server.call(&self.remote, args.clone()).await {
                Ok(result) => {
                    let mut out = output(ctx, server, &self.remote, result).await?;
                    if policy != CachePolicy::Off
                        && let Some(version) = self.server.version().await
                    {
                        let kept = json!({"text": out.text, "data": out.data});
                        if let Err(e) = ctx
                            .manager
                            .cache_tool_result(
                                &ctx.caller,
                                &self.name,
                                &version,
                                &args,
                                &kept,
                                policy,
                            )
                            .await
                        {
                            tracing::debug!(
                                code = e.code,
                                "caching a result failed: {}",
                                e.message
                            );
                        }
                        out.data["cache"] = json!({"hit": false, "version": version});
                    }
                    Ok(out)
                }
                Err(CallError::Refused(m)) => Err(ToolError::Failed(format!(
                    "the MCP server `{server}` refused the call: {m}"
                ))),
                Err(CallError::Broken(m)) => Err(ToolError::Failed(format!(
                    "the MCP server `{server}` failed: {m}; it is restarted at the next call"
                ))),
            }
        })
    }
}

/// A result as the session keeps it: the text for the model, every content block, the
/// structured content, and images stored as files on the session's data directory.
async fn output(
    ctx: &ToolContext,
    server: &str,
    tool: &str,
    result: CallToolResult,
) -> Result<ToolOutput, ToolError> {
    let mut texts = Vec::new();
    let mut content = Vec::new();
    let mut images = Vec::new();
    for block in result.content {
        match &block {
            ContentBlock::Text(t) => {
                texts.push(t.text.clone());
                content.push(json!({"type": "text", "text": t.text}));
            }
            ContentBlock::Image(img) => {
                let stored = store_image(ctx, &img.data, &img.mime_type).await?;
                texts.push(format!("[image {} ({} bytes)]", stored.0, stored.1));
                images.push(json!({
                    "sha256": stored.0,
                    "bytes": stored.1,
                    "media_type": img.mime_type,
                    "path": format!("attachments/{}/{}", &stored.0[..2], stored.0),
                }));
            }
            other => content.push(serde_json::to_value(other).unwrap_or(Value::Null)),
        }
    }
    if texts.is_empty()
        && let Some(s) = &result.structured_content
    {
        texts.push(s.to_string());
    }
    let text = kiln_types::clip(&texts.join("\n"), MAX_TEXT).to_string();
    if result.is_error == Some(true) {
        let msg = if text.trim().is_empty() {
            "the tool reported an error without a message".to_owned()
        } else {
            text
        };
        return Err(ToolError::Failed(format!("`{server}.{tool}`: {msg}")));
    }
    let mut data = json!({"server": server, "tool": tool, "content": content});
    if let Some(s) = result.structured_content {
        data["structured"] = s;
    }
    if !images.is_empty() {
        data["images"] = Value::Array(images);
    }
    Ok(ToolOutput::new(text, data))
}

/// Stores a base64 image under `attachments/` (content-addressed, as the notebook stores its
/// attachments) and returns its digest and size.
async fn store_image(
    ctx: &ToolContext,
    b64: &str,
    mime: &str,
) -> Result<(String, usize), ToolError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| {
            ToolError::Failed(format!("the server sent an unreadable {mime} image: {e}"))
        })?;
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(ToolError::Failed(format!(
            "the server sent a {} byte image; the most kept is {MAX_IMAGE_BYTES}",
            bytes.len()
        )));
    }
    let sha = ctx
        .manager
        .store_content(kiln_session::files::Content::Attachments, &bytes)
        .await
        .map_err(|e| ToolError::Failed(format!("could not store the image: {e}")))?;
    Ok((sha, bytes.len()))
}

/// The configured servers, started to learn their tools, which are added to `registry`.
/// A server that cannot start is logged and left out (its tools are unknown); the others
/// still come. Servers start concurrently, each bounded by its timeout.
pub async fn attach(
    registry: &mut Registry,
    servers: &[McpServerConfig],
) -> Result<Vec<String>, Error> {
    let mut all = Vec::new();
    for cfg in servers {
        let s = Arc::new(ToolServer::new(cfg.clone())?);
        if all.iter().any(|o: &Arc<ToolServer>| o.name() == s.name()) {
            return Err(Error::Config(format!(
                "two mcp servers are called `{}`",
                s.name()
            )));
        }
        all.push(s);
    }
    let listed = futures::future::join_all(
        all.iter()
            .map(|s| async move { (s.clone(), s.list_tools().await) }),
    )
    .await;
    let mut names = Vec::new();
    for (server, tools) in listed {
        match tools {
            Ok(tools) => {
                for t in tools {
                    let tool = McpTool::new(server.clone(), t);
                    if registry.get(&tool.name).is_some() {
                        continue;
                    }
                    names.push(tool.name.clone());
                    registry.register(Arc::new(tool));
                }
            }
            Err(e) => tracing::warn!(
                server = %server.name(),
                error = %e,
                "mcp server left out: its tools are not available until kiln restarts"
            ),
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_back_off_after_the_first() {
        let waits: Vec<u64> = (0..10).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [0, 0, 1, 2, 4, 8, 16, 32, 60, 60]);
    }

    #[test]
    fn a_server_needs_a_name_and_one_way_to_reach_it() {
        let ok = McpServerConfig {
            name: "units".into(),
            command: "python3".into(),
            ..Default::default()
        };
        assert!(ToolServer::new(ok.clone()).is_ok());
        for bad in [
            McpServerConfig {
                name: "a.b".into(),
                ..ok.clone()
            },
            McpServerConfig {
                name: "a__b".into(),
                ..ok.clone()
            },
            McpServerConfig {
                url: "http://127.0.0.1:1/mcp".into(),
                ..ok.clone()
            },
            McpServerConfig {
                command: String::new(),
                ..ok.clone()
            },
            McpServerConfig {
                timeout_secs: 0,
                ..ok.clone()
            },
        ] {
            assert!(ToolServer::new(bad).is_err());
        }
    }
}
