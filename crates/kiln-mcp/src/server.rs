//! Kiln as an MCP server: tools (Kiln's own and every session tool), resources (sessions, their
//! branches, state and report) and prompts (the session templates), each call made as the
//! authenticated Kiln user with the client's name on what it writes.

mod ops;
mod resources;

use std::sync::Arc;

use kiln_agent::Agent;
use kiln_session::{Caller, ClientInfo, Error};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, GetPromptRequestParams,
    GetPromptResponse, Implementation, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams,
    ReadResourceResponse, ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};

/// Charges a caller for an expensive call (the HTTP service's per-user budget, which may live
/// in the database); an error refuses the call.
pub type Gate = Arc<
    dyn Fn(Caller) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Error>> + Send>>
        + Send
        + Sync,
>;

/// Who the calls run as.
#[derive(Clone)]
enum Identity {
    /// One user for the whole connection (`kiln mcp` over stdio, from `KILN_TOKEN`).
    Fixed(Caller),
    /// The user the HTTP service authenticated for each request (a `Caller` in the request's
    /// extensions, put there by kiln-server's bearer check).
    PerRequest,
}

/// Kiln's MCP server over an agent. Cheap to clone; one per MCP connection.
#[derive(Clone)]
pub struct KilnMcp {
    agent: Agent,
    identity: Identity,
    gate: Option<Gate>,
}

impl std::fmt::Debug for KilnMcp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KilnMcp").finish_non_exhaustive()
    }
}

impl KilnMcp {
    /// A server acting as `caller` on every call (stdio).
    pub fn for_caller(agent: Agent, caller: Caller) -> Self {
        KilnMcp {
            agent,
            identity: Identity::Fixed(caller),
            gate: None,
        }
    }

    /// A server acting as each request's authenticated caller (streamable HTTP).
    pub fn per_request(agent: Agent, gate: Option<Gate>) -> Self {
        KilnMcp {
            agent,
            identity: Identity::PerRequest,
            gate,
        }
    }

    /// The caller of this request, acting through the client that connected.
    fn caller(&self, ctx: &RequestContext<RoleServer>) -> Result<Caller, ErrorData> {
        let caller = match &self.identity {
            Identity::Fixed(c) => c.clone(),
            Identity::PerRequest => ctx
                .extensions
                .get::<http::request::Parts>()
                .and_then(|p| p.extensions.get::<Caller>())
                .cloned()
                .ok_or_else(|| {
                    mcp_error(&Error::unauthorized(
                        "missing Authorization: Bearer <token> header",
                    ))
                })?,
        };
        let name = ctx
            .peer
            .peer_info()
            .map(|i| i.client_info.name.clone())
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| "unnamed client".into());
        Ok(caller.via(ClientInfo {
            protocol: "mcp".into(),
            name: kiln_types::clip(&name, 100).to_string(),
        }))
    }

    async fn charge(&self, caller: &Caller) -> Result<(), Error> {
        match &self.gate {
            Some(gate) => gate(caller.clone()).await,
            None => Ok(()),
        }
    }

    /// Every tool: Kiln's own, then the session tools with their schemas.
    fn tools(&self) -> Vec<Tool> {
        let mut out: Vec<Tool> = ops::OPS
            .iter()
            .map(|op| {
                tool(op.name, op.description, op.schema()).with_annotations(
                    ToolAnnotations::new()
                        .read_only(!op.writes)
                        .destructive(false)
                        .open_world(false),
                )
            })
            .collect();
        for info in self.agent.tools().infos() {
            let description = format!(
                "Session tool `{}` (runs on a session's branch and is recorded there, as when \
                 the session's agent calls it): {}",
                info.name, info.description
            );
            out.push(
                tool(
                    &info.name,
                    &description,
                    ops::session_tool_schema(info.parameters),
                )
                .with_annotations(ToolAnnotations::new().read_only(!info.writes)),
            );
        }
        out
    }

    async fn call(&self, caller: &Caller, name: &str, args: Value) -> Result<Value, Error> {
        if let Some(op) = ops::op(name) {
            if op.expensive {
                self.charge(caller).await?;
            }
            return ops::run(&self.agent, caller, name, args).await;
        }
        let Some(tool) = self.agent.tools().get(name) else {
            return Err(Error::not_found(format!("no tool `{name}`")));
        };
        if tool.expensive() {
            self.charge(caller).await?;
        }
        let call: ops::SessionToolCall = serde_json::from_value(args)
            .map_err(|e| Error::bad_request(format!("invalid arguments: {e}")))?;
        let arguments = call.arguments.unwrap_or_else(|| json!({}));
        if !arguments.is_object() {
            return Err(Error::bad_request("arguments must be a JSON object"));
        }
        let rec = self
            .agent
            .call_tool(
                caller,
                &call.session,
                call.branch.as_deref(),
                name,
                arguments,
            )
            .await?;
        serde_json::to_value(&rec).map_err(|e| Error::internal(format!("json: {e}")))
    }
}

fn tool(name: &str, description: &str, schema: Value) -> Tool {
    let schema = match schema {
        Value::Object(map) => map,
        _ => serde_json::Map::from_iter([("type".to_owned(), json!("object"))]),
    };
    Tool::new(name.to_owned(), description.to_owned(), Arc::new(schema))
}

/// A failure as an MCP protocol error: the JSON-RPC code for its kind, and Kiln's body
/// (`code`, `message`, `recoverable`) as the data.
pub(crate) fn mcp_error(e: &Error) -> ErrorData {
    use kiln_types::ErrorKind as K;
    let data = Some(json!({
        "code": e.code,
        "message": e.message,
        "recoverable": e.kind.recoverable(),
    }));
    let message = format!("{} [{}]", e.message, e.code);
    match e.kind {
        K::NotFound => ErrorData::resource_not_found(message, data),
        K::BadRequest | K::PayloadTooLarge => ErrorData::invalid_params(message, data),
        K::Internal | K::Unavailable | K::InsufficientStorage => {
            // Internals never leave the server; the log has them.
            tracing::error!(code = e.code, error = %e.message, "mcp request failed");
            ErrorData::internal_error(
                "internal error",
                data.map(|_| json!({"code": e.code, "recoverable": e.kind.recoverable()})),
            )
        }
        _ => ErrorData::invalid_request(message, data),
    }
}

/// A tool's failure as the client's model and user read it: an error result whose text says
/// what went wrong, with Kiln's error body as structured content.
fn tool_failure(e: &Error) -> CallToolResult {
    let internal = matches!(e.kind, kiln_types::ErrorKind::Internal);
    if internal {
        tracing::error!(code = e.code, error = %e.message, "mcp tool call failed");
    }
    let message = if internal {
        "internal error".to_owned()
    } else {
        e.message.clone()
    };
    let body = json!({"error": {
        "code": e.code,
        "message": message,
        "recoverable": e.kind.recoverable(),
    }});
    let mut r = CallToolResult::error(vec![ContentBlock::text(format!("{message} [{}]", e.code))]);
    r.structured_content = Some(body);
    r
}

impl ServerHandler for KilnMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_prompts()
                .build(),
        )
        .with_server_info(Implementation::new("kiln", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "Kiln keeps research sessions: a branching conversation with a research agent, its \
             tool calls and a research state (materials, discoveries, hypotheses). List or \
             search sessions, read their context, ask their agent, record notes and \
             hypotheses, branch, checkpoint, restore and merge, or call a session tool \
             directly. Everything you write is recorded on the session under your Kiln user.",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.caller(&ctx)?;
        Ok(ListToolsResult::with_all_items(self.tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let caller = self.caller(&ctx)?;
        let name = request.name.to_string();
        if ops::op(&name).is_none() && self.agent.tools().get(&name).is_none() {
            return Err(ErrorData::invalid_params(
                format!("no tool `{name}`"),
                Some(json!({"code": "unknown_tool"})),
            ));
        }
        let args = Value::Object(request.arguments.unwrap_or_default());
        let result = match self.call(&caller, &name, args).await {
            Ok(value) => {
                let text = serde_json::to_string_pretty(&value).unwrap_or_default();
                let mut r = CallToolResult::success(vec![ContentBlock::text(text)]);
                r.structured_content = Some(match value {
                    // Structured content is an object; a list is wrapped.
                    Value::Object(_) => value,
                    other => json!({"result": other}),
                });
                r
            }
            Err(e) => tool_failure(&e),
        };
        Ok(result.into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let caller = self.caller(&ctx)?;
        resources::list(&self.agent, &caller)
            .await
            .map(ListResourcesResult::with_all_items)
            .map_err(|e| mcp_error(&e))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        self.caller(&ctx)?;
        Ok(ListResourceTemplatesResult::with_all_items(
            resources::templates(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let caller = self.caller(&ctx)?;
        resources::read(&self.agent, &caller, &request.uri)
            .await
            .map(Into::into)
            .map_err(|e| mcp_error(&e))
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let caller = self.caller(&ctx)?;
        resources::prompts(&self.agent, &caller)
            .await
            .map(ListPromptsResult::with_all_items)
            .map_err(|e| mcp_error(&e))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let caller = self.caller(&ctx)?;
        resources::prompt(
            &self.agent,
            &caller,
            &request.name,
            request.arguments.unwrap_or_default(),
        )
        .await
        .map(Into::into)
        .map_err(|e| mcp_error(&e))
    }
}
