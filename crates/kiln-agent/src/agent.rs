//! The turn loop: assemble the context window → call the model → run its tool calls
//! (independent tools concurrently) with the caller's permissions → record calls, results and
//! state events on the branch → repeat up to the step budget → record the answer → detect
//! discoveries. Every write goes through the session manager with the branch head the turn
//! last saw, so a concurrent writer is a clean `head_moved`, never an interleaved turn.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use futures::future::join_all;
use kiln_db::{NewNode, Node};
use kiln_llm::{
    ChatMessage, ChatModel, ChatRequest, ChatResponse, Purpose, ResponseFormat, StreamEvent,
    TOOL_CALL_PREFIX, TOOL_RESULT_PREFIX, ToolCall,
};
use kiln_session::{AgentConfig, Caller, Error, Result, SessionManager};
use kiln_types::state::DiscoverySource;
use kiln_types::{ContextConfig, ErrorKind, NodeKind, Permission, ResearchState, StateEvent};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::context::{ContextInputs, ContextWindow, MemoryLine, RecallItem, assemble};
use crate::overview::{self, SessionSummary};
use crate::registry::Registry;
use crate::settings::{ModelSettings, ModelSettingsUpdate, ModelSlot};
use crate::tool::{ToolContext, ToolError, ToolOutput, clip};
use crate::turns::{QueuedTurn, TurnSlot};
use crate::{DISCOVERIES_PROMPT, SUMMARISE_PROMPT, SYSTEM_PROMPT, relevance, tokens};

/// Largest user message, in bytes.
const MAX_MESSAGE: usize = 64 * 1024;
/// Most older messages folded into one summary.
const MAX_SUMMARY_GAP: u32 = 400;
/// A model asking for the same call (same tool, same arguments) this many times in one turn is
/// going round in circles: the turn stops instead of running it again.
const MAX_REPEATED_CALLS: u32 = 3;

/// Tokens spent by the model calls of a turn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Model calls made.
    pub calls: u32,
}

impl Usage {
    fn add(&mut self, r: &ChatResponse) {
        self.prompt_tokens += u64::from(r.usage.prompt_tokens);
        self.completion_tokens += u64::from(r.usage.completion_tokens);
        self.calls += 1;
    }
}

/// One tool call of a turn, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolCallRecord {
    /// The call id.
    pub id: String,
    /// The tool name (as the model wrote it).
    pub name: String,
    /// The arguments (parsed when they were JSON, else the raw text).
    pub arguments: Value,
    /// Whether the call succeeded.
    pub ok: bool,
    /// The text the model got back.
    pub text: String,
    /// The structured result, or the error `{code, message}`.
    pub result: Value,
    /// The tool_call node.
    pub call_node: String,
    /// The tool_result node.
    pub result_node: String,
}

/// A discovery recorded automatically after an answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetectedRecord {
    /// The discovery id (its node).
    pub id: String,
    /// The category.
    pub category: String,
    /// The finding.
    pub description: String,
    /// 0..=1.
    pub confidence: f64,
}

/// What a turn did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TurnOutcome {
    /// The session.
    pub session: String,
    /// The branch.
    pub branch: String,
    /// The user's message node.
    pub user_node: String,
    /// The answer node.
    pub answer_node: String,
    /// The answer text.
    pub answer: String,
    /// Tool calls, in order.
    pub tool_calls: Vec<ToolCallRecord>,
    /// Discoveries detected in the answer.
    pub discoveries: Vec<DetectedRecord>,
    /// A summary node written at the start of the turn, if older turns were summarised.
    pub summary_node: Option<String>,
    /// Model calls made for the answer (tool rounds plus the final one).
    pub steps: u32,
    /// Tokens spent (summary and discovery calls included).
    pub usage: Usage,
    /// The model that answered.
    pub model: String,
    /// The client went away before the answer was complete; the partial answer is stored.
    pub interrupted: bool,
    /// The step budget ran out before the model gave a final answer.
    pub budget_exhausted: bool,
    /// The branch head after the turn.
    pub head: String,
    /// Tokens of the context window on the last step.
    pub context_tokens: u32,
}

/// A summary node just written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summarised {
    /// The summary node.
    pub node: String,
    /// The branch head after it.
    pub head: String,
    /// The first and last seq of the messages it covers.
    pub covers_from: i64,
    pub covers_through: i64,
    /// How many messages it covers.
    pub messages: usize,
}

/// What [`Agent::compress_history`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Compressed {
    /// The summary written, or `None` when there was nothing to compress.
    pub summary: Option<Summarised>,
    /// Tokens of the context window before and after.
    pub tokens_before: u32,
    pub tokens_after: u32,
    /// Tokens the summarising call spent.
    pub usage: Usage,
}

/// What a turn reports while it runs (the SSE stream and the terminal REPL show these).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TurnEvent {
    /// Other turns on the branch run first; this one starts when they are done.
    Queued {
        /// Turns running or waiting ahead of this one.
        ahead: usize,
    },
    /// The user's message is stored.
    Started {
        /// Its node.
        user_node: String,
    },
    /// Older turns were summarised into this node.
    Summarised {
        /// The summary node.
        node: String,
    },
    /// More answer text.
    Token {
        /// The text.
        text: String,
    },
    /// The model asked for a tool call.
    ToolCall {
        /// Call id.
        id: String,
        /// Tool name.
        name: String,
        /// Raw arguments.
        arguments: String,
    },
    /// A tool call finished and is recorded.
    ToolResult {
        /// Call id.
        id: String,
        /// Tool name.
        name: String,
        /// Whether it succeeded.
        ok: bool,
        /// The text the model got.
        text: String,
        /// The result node.
        node: String,
    },
    /// A discovery was detected and recorded.
    Discovery(DetectedRecord),
    /// The turn is complete.
    Done(Box<TurnOutcome>),
    /// The turn failed (the branch keeps what was recorded before).
    Error {
        /// Machine-readable code.
        code: String,
        /// What went wrong.
        message: String,
    },
}

/// Where a turn's events go: nowhere, or a channel whose closing means the client left; and,
/// compactly, to the session's live watchers on this server (who see the turn as it streams).
struct Events<'a> {
    tx: Option<&'a mpsc::Sender<TurnEvent>>,
    manager: &'a SessionManager,
    session: &'a str,
    branch: &'a str,
    /// The asking user's name.
    user: &'a str,
    message: &'a str,
}

impl Events<'_> {
    async fn send(&self, e: TurnEvent) {
        self.publish(&e);
        if let Some(tx) = self.tx {
            let _ = tx.send(e).await;
        }
    }

    /// The watchers' copy: who is asking on which branch, and what is happening.
    fn publish(&self, e: &TurnEvent) {
        let what = match e {
            TurnEvent::Started { user_node } => {
                json!({"event": "started", "node": user_node, "text": clip(self.message, 2000)})
            }
            TurnEvent::Token { text } => json!({"event": "token", "text": text}),
            TurnEvent::ToolCall { name, .. } => json!({"event": "tool_call", "name": name}),
            TurnEvent::ToolResult { name, ok, .. } => {
                json!({"event": "tool_result", "name": name, "ok": ok})
            }
            TurnEvent::Done(outcome) => json!({"event": "done", "node": outcome.answer_node}),
            TurnEvent::Error { code, .. } => json!({"event": "error", "code": code}),
            _ => return,
        };
        let mut data = what;
        data["branch"] = json!(self.branch);
        data["user"] = json!(self.user);
        self.manager.publish_turn(self.session, data);
    }

    fn gone(&self) -> bool {
        self.tx.is_some_and(mpsc::Sender::is_closed)
    }

    /// Resolves when the receiver is dropped (never, without one).
    async fn closed(&self) {
        match self.tx {
            Some(tx) => tx.closed().await,
            None => std::future::pending().await,
        }
    }
}

/// What a context window takes from beyond its session: the user's memory and the findings
/// recalled from their other sessions.
#[derive(Debug, Clone, Default)]
struct Reach {
    memory: Vec<MemoryLine>,
    recall: Vec<RecallItem>,
}

/// The research agent. Cheap to clone.
#[derive(Clone)]
pub struct Agent {
    manager: SessionManager,
    /// The model, replaceable while the service runs (the settings page).
    model: Arc<ModelSlot>,
    tools: Arc<Registry>,
    config: AgentConfig,
    turns: Arc<crate::turns::TurnQueues>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("model", &self.model)
            .field("tools", &self.tools)
            .finish_non_exhaustive()
    }
}

/// A call's result as it goes back to the model and onto the tree.
struct Ran {
    call: ToolCall,
    outcome: std::result::Result<ToolOutput, ToolError>,
    /// The arguments as read (after any repair), when they could be read.
    arguments: Option<Value>,
    /// Repairs that made the arguments readable (`trailing_comma`, …), recorded on the call.
    repaired: Vec<&'static str>,
    /// What the model is told besides a failure's message (the tools that exist, how to send
    /// arguments), so its next try can succeed.
    hint: Option<String>,
}

pub(crate) fn tool_error(e: &ToolError) -> Error {
    let kind = match e {
        ToolError::Refused { kind, .. } => *kind,
        ToolError::UnknownTool(_) => ErrorKind::NotFound,
        ToolError::Forbidden(_) => ErrorKind::Forbidden,
        ToolError::InvalidArguments(_) | ToolError::Failed(_) => ErrorKind::BadRequest,
    };
    Error::new(kind, e.code(), e.to_string())
}

pub(crate) fn seed_for(session: &str, head: &str, call: &str) -> u64 {
    let d = Sha256::digest(format!("{session}/{head}/{call}").as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_le_bytes(b)
}

/// A result as the model sees it: `{"ok": true, "text"}` or `{"ok": false, "error": {code,
/// message, hint?}}`. The readable text only: the full JSON stays on the result node
/// (`data.result`) for pages, exports and tools, and would otherwise fill the window in a few
/// turns.
fn result_for_model(ran: &Ran) -> String {
    match &ran.outcome {
        Ok(out) => json!({"ok": true, "text": out.text}).to_string(),
        Err(e) => {
            let mut error = json!({"code": e.code(), "message": e.to_string()});
            if let Some(hint) = &ran.hint {
                error["hint"] = json!(hint);
            }
            json!({"ok": false, "error": error}).to_string()
        }
    }
}

impl Agent {
    /// Returns an agent over `manager` answering with `model` and calling `tools`.
    ///
    /// Installs the registry as the manager's tool-state merger, so merges of branches that
    /// both changed a tool use that tool's own rule.
    pub fn new(
        manager: SessionManager,
        model: Arc<dyn ChatModel>,
        tools: Registry,
        config: AgentConfig,
    ) -> Self {
        Agent::with_model_slot(manager, ModelSlot::fixed(model), tools, config)
    }

    /// Returns an agent whose model is `slot`'s (settings saved on it apply at the next call).
    pub fn with_model_slot(
        manager: SessionManager,
        slot: ModelSlot,
        tools: Registry,
        config: AgentConfig,
    ) -> Self {
        let model = Arc::new(slot);
        let tools = Arc::new(tools);
        let manager = manager.with_tool_merger(tools.clone());
        let turns = Arc::new(crate::turns::TurnQueues::new(config.turn_queue as usize));
        Agent {
            manager,
            model,
            tools,
            config,
            turns,
        }
    }

    /// The session manager (with the tool merger installed).
    pub fn manager(&self) -> &SessionManager {
        &self.manager
    }

    /// The tool registry.
    pub fn tools(&self) -> &Registry {
        &self.tools
    }

    /// The model's name.
    pub fn model_name(&self) -> String {
        self.model.model().name().to_owned()
    }

    /// The model and its settings (no access check: for the process that runs the agent).
    pub fn model_slot(&self) -> &ModelSlot {
        &self.model
    }

    /// The model answering now (a turn takes it once per model call).
    fn model(&self) -> Arc<dyn ChatModel> {
        self.model.model()
    }

    /// The model settings in force (administrators only; never the key).
    pub fn model_settings(&self, caller: &Caller) -> Result<ModelSettings> {
        crate::settings::require_admin(caller)?;
        Ok(self.model.view())
    }

    /// Saves model settings and answers with the new model from the next call on
    /// (administrators only). A setting that cannot make a model changes nothing.
    pub async fn save_model_settings(
        &self,
        caller: &Caller,
        update: ModelSettingsUpdate,
    ) -> Result<ModelSettings> {
        crate::settings::require_admin(caller)?;
        let saved = self.model.save(update).await?;
        tracing::info!(model = %saved.active_model, user = %caller.name, "model settings saved");
        Ok(saved)
    }

    /// Forgets the saved model settings; the configuration's apply again (administrators only).
    pub async fn reset_model_settings(&self, caller: &Caller) -> Result<ModelSettings> {
        crate::settings::require_admin(caller)?;
        self.model.reset().await
    }

    /// Runs one tool-calling round trip against the model server in force (administrators
    /// only).
    pub async fn test_model_connection(
        &self,
        caller: &Caller,
    ) -> Result<kiln_llm::ConnectionReport> {
        crate::settings::require_admin(caller)?;
        self.model.test().await
    }

    /// Returns the context window the model would see now on `branch` (default: the
    /// session's default branch).
    pub async fn context(
        &self,
        caller: &Caller,
        session: &str,
        branch: Option<&str>,
    ) -> Result<ContextWindow> {
        let s = self.manager.session(caller, session).await?;
        let branch = branch.unwrap_or(&s.default_branch);
        Ok(self
            .load_context(caller, session, branch, &s.config.context, None)
            .await?
            .0)
    }

    /// The context window and the research state it was built from.
    /// The caller's memory and, when the session allows recall, what their other sessions
    /// found about `request`. Neither can fail a turn: an unreadable memory is logged and left
    /// out.
    async fn reach(
        &self,
        caller: &Caller,
        session: &str,
        cfg: &ContextConfig,
        request: &str,
    ) -> Reach {
        let memory = match self.manager.memory(caller).await {
            Ok(entries) => entries
                .into_iter()
                .map(|m| MemoryLine {
                    id: m.id,
                    kind: m.kind,
                    content: m.content,
                })
                .collect(),
            Err(e) => {
                tracing::warn!(
                    code = e.code,
                    "reading the user's memory failed: {}",
                    e.message
                );
                Vec::new()
            }
        };
        let recall = if cfg.recall && !request.trim().is_empty() {
            crate::recall::recall(&self.manager, caller, session, request, None).await
        } else {
            Vec::new()
        };
        Reach { memory, recall }
    }

    /// `reach` is what the window takes from beyond the session (the user's memory, recall);
    /// `None` reads it for the branch's last request.
    async fn load_context(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
        cfg: &ContextConfig,
        reach: Option<&Reach>,
    ) -> Result<(ContextWindow, ResearchState)> {
        let limit = cfg.max_history.clamp(1, 1000);
        let view = self
            .manager
            .turn_view(caller, session, branch, limit)
            .await?;
        let fresh;
        let reach = match reach {
            Some(r) => r,
            None => {
                let request = crate::context::query_of(&view.messages.items);
                fresh = self.reach(caller, session, cfg, request).await;
                &fresh
            }
        };
        let mut window = assemble(ContextInputs {
            system_prompt: SYSTEM_PROMPT,
            config: cfg,
            state: &view.state,
            summary: view.summary.as_ref(),
            history: &view.messages.items,
            memory: &reach.memory,
            recall: &reach.recall,
        });
        window.older_unfetched = view.messages.next_cursor.is_some();
        Ok((window, view.state))
    }

    /// Runs one tool directly, as the agent would (same permissions, same recorded nodes and
    /// state events) on `branch`, or the session's default branch. Bad arguments are a typed
    /// error and record nothing.
    pub async fn call_tool(
        &self,
        caller: &Caller,
        session: &str,
        branch: Option<&str>,
        name: &str,
        arguments: Value,
    ) -> Result<ToolCallRecord> {
        self.call_tool_as(caller, session, branch, name, arguments, None)
            .await
    }

    /// [`Agent::call_tool`] for a request carrying an optimizer controller's lock token
    /// (`Kiln-Lock-Token`), which the optimizer tool checks while a controller holds the branch.
    pub async fn call_tool_as(
        &self,
        caller: &Caller,
        session: &str,
        branch: Option<&str>,
        name: &str,
        arguments: Value,
        controller_token: Option<&str>,
    ) -> Result<ToolCallRecord> {
        // Checked before the tool runs: a tool may have effects (attachments) before the append.
        let s = self.manager.active_session(caller, session).await?;
        let branch = branch.unwrap_or(&s.default_branch);
        let tool = self
            .tools
            .get(name)
            .ok_or_else(|| tool_error(&ToolError::UnknownTool(name.to_owned())))?
            .clone();
        let head = self
            .manager
            .db()
            .branch(session, branch)
            .await
            .map_err(Error::from)?;
        let state = self.manager.state(caller, session, branch, None).await?;
        let digest = Sha256::digest(format!("{}/{name}/{arguments}", head.head).as_bytes());
        let call_id = format!("direct_{}", &hex::encode(digest)[..16]);
        let mut ctx = self.tool_context(caller, session, branch, state, &head.head, &call_id);
        ctx.controller_token = controller_token.map(str::to_owned);
        let out = tool
            .call(&ctx, arguments.clone())
            .await
            .map_err(|e| tool_error(&e))?;
        let call = ToolCall::new(call_id, name, &arguments);
        let ran = vec![Ran {
            call,
            outcome: Ok(out),
            arguments: Some(arguments),
            repaired: Vec::new(),
            hint: None,
        }];
        let (records, _) = self
            .record_step(caller, session, branch, Some(&head.head), &ran, None, true)
            .await?;
        records
            .into_iter()
            .next()
            .ok_or_else(|| Error::internal("the tool call was not recorded"))
    }

    fn tool_context(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
        state: ResearchState,
        head: &str,
        call: &str,
    ) -> ToolContext {
        ToolContext {
            manager: self.manager.clone(),
            caller: caller.clone(),
            session: session.to_owned(),
            branch: branch.to_owned(),
            state,
            data_dir: self.manager.data_dir().clone(),
            seed: seed_for(session, head, call),
            controller_token: None,
            by_model: false,
        }
    }

    /// Runs a step's calls: calls to different tools concurrently, calls to the same tool in
    /// order (each sees the state its predecessor left), results in the calls' order.
    async fn run_calls(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
        state: &ResearchState,
        head: &str,
        calls: &[ToolCall],
    ) -> Vec<Ran> {
        let mut groups: BTreeMap<&str, Vec<(usize, &ToolCall)>> = BTreeMap::new();
        for (i, c) in calls.iter().enumerate() {
            groups.entry(c.name.as_str()).or_default().push((i, c));
        }
        let futures = groups.into_values().map(|group| async move {
            let mut local = state.clone();
            let mut out = Vec::with_capacity(group.len());
            for (i, call) in group {
                let parsed = kiln_llm::parse_arguments(&call.arguments);
                let (arguments, repaired) = match &parsed {
                    Ok((value, repairs)) => (
                        Some(value.clone()),
                        repairs.iter().map(|r| r.as_str()).collect(),
                    ),
                    Err(_) => (None, Vec::new()),
                };
                let mut hint = None;
                let outcome = match (self.tools.get(&call.name), parsed) {
                    (None, _) => {
                        // A model that invents a tool is told which ones exist.
                        hint = Some(format!(
                            "There is no tool `{}`. The tools are: {}.",
                            call.name,
                            self.tools.names().join(", ")
                        ));
                        Err(ToolError::UnknownTool(call.name.clone()))
                    }
                    (Some(_), Err(e)) => {
                        hint = Some(
                            "Send the arguments again as one JSON object matching the tool's \
                             parameters, with double-quoted keys and strings."
                                .to_owned(),
                        );
                        Err(ToolError::InvalidArguments(format!(
                            "the arguments are not valid JSON: {e}"
                        )))
                    }
                    (Some(tool), Ok((args, _))) => {
                        let mut ctx = self.tool_context(
                            caller,
                            session,
                            branch,
                            local.clone(),
                            head,
                            &call.id,
                        );
                        ctx.by_model = true;
                        tool.call(&ctx, args).await
                    }
                };
                if let Ok(o) = &outcome {
                    for e in &o.events {
                        local.apply("pending", e);
                    }
                }
                out.push((
                    i,
                    Ran {
                        call: call.clone(),
                        outcome,
                        arguments,
                        repaired,
                        hint,
                    },
                ));
            }
            out
        });
        let mut all: Vec<(usize, Ran)> = join_all(futures).await.into_iter().flatten().collect();
        all.sort_by_key(|(i, _)| *i);
        all.into_iter().map(|(_, r)| r).collect()
    }

    /// Records a step's calls, results and events in one append; then the audit entries.
    #[allow(clippy::too_many_arguments)]
    async fn record_step(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
        expected_head: Option<&str>,
        ran: &[Ran],
        response: Option<&ChatResponse>,
        direct: bool,
    ) -> Result<(Vec<ToolCallRecord>, String)> {
        let mut nodes = Vec::with_capacity(ran.len() * 3);
        for (i, r) in ran.iter().enumerate() {
            let mut data = json!({
                "call_id": r.call.id,
                "name": r.call.name,
                "arguments": r.call.arguments,
            });
            if direct {
                data["direct"] = json!(true);
            }
            if !r.repaired.is_empty() {
                data["repaired"] = json!(r.repaired);
            }
            if let (0, Some(resp)) = (i, response) {
                data["model"] = json!(resp.model);
                data["usage"] = json!(resp.usage);
                data["latency_ms"] = json!(resp.latency.as_secs_f64() * 1000.0);
                if let Some(text) = resp.content.as_deref().filter(|t| !t.is_empty()) {
                    data["assistant_text"] = json!(text);
                }
            }
            let content = clip(&format!("{}({})", r.call.name, r.call.arguments), 500);
            let t = i64::from(tokens::count(&r.call.name) + tokens::count(&r.call.arguments));
            let author = direct.then(|| caller.user_id.clone());
            nodes.push(
                NewNode::message(NodeKind::ToolCall, author, content)
                    .with_data(data)
                    .with_tokens(t),
            );
        }
        for r in ran {
            let text = result_for_model(r);
            let data = match &r.outcome {
                Ok(o) => {
                    json!({"call_id": r.call.id, "name": r.call.name, "ok": true, "text": o.text, "result": o.data})
                }
                Err(e) => {
                    json!({"call_id": r.call.id, "name": r.call.name, "ok": false, "error": {"code": e.code(), "message": e.to_string()}})
                }
            };
            let t = i64::from(tokens::count(&text));
            nodes.push(
                NewNode::message(NodeKind::ToolResult, None, text)
                    .with_data(data)
                    .with_tokens(t),
            );
        }
        for r in ran {
            if let Ok(o) = &r.outcome {
                for e in &o.events {
                    nodes.push(NewNode::event(e.clone(), Some(caller.user_id.clone())));
                }
            }
        }
        let appended = self
            .manager
            .append_nodes(caller, session, branch, nodes, expected_head)
            .await?;
        let n = ran.len();
        let records = ran
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let (ok, text, result) = match &r.outcome {
                    Ok(o) => (true, o.text.clone(), o.data.clone()),
                    Err(e) => (
                        false,
                        e.to_string(),
                        json!({"code": e.code(), "message": e.to_string()}),
                    ),
                };
                ToolCallRecord {
                    id: r.call.id.clone(),
                    name: r.call.name.clone(),
                    arguments: r
                        .arguments
                        .clone()
                        .unwrap_or_else(|| Value::String(r.call.arguments.clone())),
                    ok,
                    text,
                    result,
                    call_node: appended
                        .nodes
                        .get(i)
                        .map(|n| n.id.clone())
                        .unwrap_or_default(),
                    result_node: appended
                        .nodes
                        .get(n + i)
                        .map(|n| n.id.clone())
                        .unwrap_or_default(),
                }
            })
            .collect();
        for r in ran {
            if let Ok(o) = &r.outcome {
                for (action, payload) in &o.audit {
                    self.manager
                        .record_audit(caller, session, action, payload)
                        .await?;
                }
            }
        }
        Ok((records, appended.head))
    }

    /// Summarises the messages the context window no longer holds (the token budget or
    /// `max_history` left them out), once at least `summary_batch` of them no summary covers.
    /// Returns the summary node and the new head, or `None` when nothing was due.
    async fn maybe_summarise(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
        cfg: &ContextConfig,
        usage: &mut Usage,
    ) -> Result<Option<Summarised>> {
        if !cfg.auto_summarise {
            return Ok(None);
        }
        let (window, _) = self
            .load_context(caller, session, branch, cfg, Some(&Reach::default()))
            .await?;
        let Some(oldest) = window.left_before() else {
            return Ok(None);
        };
        let before = oldest.to_string();
        let batch = self.config.summary_batch;
        self.summarise_before(caller, session, branch, None, Some(&before), batch, usage)
            .await
    }

    /// Summarises the messages on the path older than the newest `keep` that no summary covers
    /// yet, if there are at least `batch` of them, into one summary node appended at `head`
    /// (`None`: at whatever the head is).
    #[allow(clippy::too_many_arguments)]
    async fn summarise(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
        head: Option<&str>,
        keep: u32,
        batch: u32,
        usage: &mut Usage,
    ) -> Result<Option<Summarised>> {
        let cursor = if keep == 0 {
            None
        } else {
            let window = self
                .manager
                .messages(caller, session, branch, Some(keep), None)
                .await?;
            match window.next_cursor {
                Some(c) => Some(c),
                None => return Ok(None),
            }
        };
        self.summarise_before(
            caller,
            session,
            branch,
            head,
            cursor.as_deref(),
            batch,
            usage,
        )
        .await
    }

    /// Summarises the messages on the path before `cursor` (a message cursor; `None`: all)
    /// that no summary covers yet, if there are at least `batch` of them.
    #[allow(clippy::too_many_arguments)]
    async fn summarise_before(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
        head: Option<&str>,
        cursor: Option<&str>,
        batch: u32,
        usage: &mut Usage,
    ) -> Result<Option<Summarised>> {
        let previous = self.manager.latest_summary(caller, session, branch).await?;
        let covered = previous
            .as_ref()
            .and_then(|n| n.data.as_ref()?.get("covers_through")?.as_i64())
            .unwrap_or(-1);
        // Cheap probe first: are there at least `batch` unsummarised messages?
        let batch = batch.max(1);
        let probe = self
            .manager
            // +2: summary nodes sit among the messages and do not count.
            .messages(caller, session, branch, Some(batch + 2), cursor)
            .await?;
        let fresh = probe
            .items
            .iter()
            .filter(|n| n.seq > covered && n.kind != NodeKind::Summary)
            .count();
        if fresh < batch as usize {
            return Ok(None);
        }
        let gap_page = self
            .manager
            .messages(caller, session, branch, Some(MAX_SUMMARY_GAP), cursor)
            .await?;
        let mut gap: Vec<Node> = gap_page
            .items
            .into_iter()
            .filter(|n| n.seq > covered && n.kind != NodeKind::Summary)
            .collect();
        if gap.len() < batch as usize {
            return Ok(None);
        }
        gap.reverse();
        let mut messages = vec![ChatMessage::system(SUMMARISE_PROMPT)];
        if let Some(p) = &previous {
            messages.push(ChatMessage::system(format!(
                "Earlier summary:\n{}",
                p.content
            )));
        }
        for n in &gap {
            let m = match n.kind {
                NodeKind::User => ChatMessage::user(n.content.clone()),
                NodeKind::Assistant => ChatMessage::assistant(n.content.clone()),
                NodeKind::ToolCall => {
                    ChatMessage::assistant(format!("{TOOL_CALL_PREFIX}{}", n.content))
                }
                NodeKind::ToolResult => ChatMessage::user(format!(
                    "{TOOL_RESULT_PREFIX}{}",
                    n.data
                        .as_ref()
                        .and_then(|d| d.get("text"))
                        .and_then(Value::as_str)
                        .unwrap_or(&n.content)
                )),
                _ => ChatMessage::system(n.content.clone()),
            };
            messages.push(m);
        }
        let response = self
            .model()
            .complete(ChatRequest::new(messages).with_purpose(Purpose::Summarise))
            .await
            .map_err(|e| model_error(&e))?;
        usage.add(&response);
        let text = response.content.unwrap_or_default();
        if text.trim().is_empty() {
            return Ok(None);
        }
        let (first, last) = (&gap[0], &gap[gap.len() - 1]);
        let data = json!({
            "covers_from": first.seq,
            "covers_through": last.seq,
            "from_node": first.id,
            "through_node": last.id,
            "messages": gap.len(),
            "previous": previous.as_ref().map(|p| p.id.clone()),
            "model": response.model,
        });
        let t = i64::from(tokens::count(&text));
        let node = NewNode::message(NodeKind::Summary, None, text)
            .with_data(data)
            .with_tokens(t);
        let out = self
            .manager
            .append_nodes(caller, session, branch, vec![node], head)
            .await?;
        Ok(Some(Summarised {
            node: out.nodes.first().map(|n| n.id.clone()).unwrap_or_default(),
            head: out.head,
            covers_from: first.seq,
            covers_through: last.seq,
            messages: gap.len(),
        }))
    }

    /// Compresses a branch's history now: every message older than the newest `keep_recent`
    /// that no summary covers yet goes into one summary node (whatever `auto_summarise` says),
    /// and the context window drops the messages it covers. `None` when nothing is left to
    /// compress. Reports the window's token count before and after.
    pub async fn compress_history(
        &self,
        caller: &Caller,
        session: &str,
        branch: Option<&str>,
        keep_recent: u32,
    ) -> Result<Compressed> {
        let s = self.manager.active_session(caller, session).await?;
        let branch = branch.unwrap_or(&s.default_branch);
        let cfg = &s.config.context;
        let before = self
            .load_context(caller, session, branch, cfg, None)
            .await?
            .0;
        let mut usage = Usage::default();
        let done = self
            .summarise(
                caller,
                session,
                branch,
                None,
                keep_recent.min(1000),
                1,
                &mut usage,
            )
            .await?;
        let after = match &done {
            Some(_) => {
                self.load_context(caller, session, branch, cfg, None)
                    .await?
                    .0
            }
            None => before.clone(),
        };
        Ok(Compressed {
            summary: done,
            tokens_before: before.total_tokens,
            tokens_after: after.total_tokens,
            usage,
        })
    }

    /// The session summary of a branch: key findings, materials of interest, next steps.
    pub async fn session_summary(
        &self,
        caller: &Caller,
        session: &str,
        branch: Option<&str>,
    ) -> Result<SessionSummary> {
        let s = self.manager.session(caller, session).await?;
        let branch = branch.unwrap_or(&s.default_branch);
        let state = self.manager.state(caller, session, branch, None).await?;
        Ok(overview::summarise(&state))
    }

    /// Runs one turn: the user's `message` on `branch`, to a recorded answer.
    ///
    /// With `events`, progress is sent as it happens; if the receiver is dropped (the client
    /// left), the turn stops at the next point it can, stores the partial answer marked
    /// `interrupted`, and returns.
    pub async fn run_turn(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
        message: &str,
        events: Option<&mpsc::Sender<TurnEvent>>,
    ) -> Result<TurnOutcome> {
        let slot = self
            .reserve_turn(caller, session, branch)
            .await?
            .ready()
            .await?;
        self.run_reserved_turn(slot, caller, session, branch, message, events)
            .await
    }

    /// Joins the branch's line for a turn (turns run one at a time per branch; wait for the
    /// slot with [`QueuedTurn::ready`]); refuses with 429 `turn_queue_full` when `turn_queue`
    /// turns already wait. Only a caller who may write the session can queue, so nobody can
    /// fill another's line.
    pub async fn reserve_turn(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
    ) -> Result<QueuedTurn> {
        let perms = self.manager.permissions(caller, session).await?;
        if !perms.has(Permission::Write) {
            return Err(Error::forbidden(
                "asking the agent needs the write permission on this session",
            ));
        }
        self.turns.join(session, branch)
    }

    /// Runs a turn in a slot from [`Agent::reserve_turn`] (held until the turn ends).
    pub async fn run_reserved_turn(
        &self,
        slot: TurnSlot,
        caller: &Caller,
        session: &str,
        branch: &str,
        message: &str,
        events: Option<&mpsc::Sender<TurnEvent>>,
    ) -> Result<TurnOutcome> {
        let _slot = slot;
        let ev = Events {
            tx: events,
            manager: &self.manager,
            session,
            branch,
            user: &caller.name,
            message,
        };
        let result = self.turn(caller, session, branch, message, &ev).await;
        match &result {
            Ok(outcome) => ev.send(TurnEvent::Done(Box::new(outcome.clone()))).await,
            Err(e) => {
                ev.send(TurnEvent::Error {
                    code: e.code.to_owned(),
                    message: e.message.clone(),
                })
                .await;
            }
        }
        result
    }

    async fn turn(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
        message: &str,
        ev: &Events<'_>,
    ) -> Result<TurnOutcome> {
        let message = message.trim();
        if message.is_empty() {
            return Err(Error::bad_request("message must not be empty"));
        }
        if message.len() > MAX_MESSAGE {
            return Err(Error::bad_request(format!(
                "message is larger than {MAX_MESSAGE} bytes"
            )));
        }
        let current = self.manager.session(caller, session).await?;
        let cfg = current.config.context;
        let mut usage = Usage::default();
        // Older turns the window no longer holds are summarised first, so the summary sits
        // between turns, never between this question and what answers it.
        let mut summary_node = match self
            .maybe_summarise(caller, session, branch, &cfg, &mut usage)
            .await
        {
            Ok(Some(done)) => {
                ev.send(TurnEvent::Summarised {
                    node: done.node.clone(),
                })
                .await;
                Some(done.node)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(
                    code = e.code,
                    "summarising older turns failed: {}",
                    e.message
                );
                None
            }
        };

        // Then the user's words: whatever happens next, they are kept.
        let user = NewNode::message(NodeKind::User, Some(caller.user_id.clone()), message)
            .with_tokens(i64::from(tokens::count(message)));
        let appended = self
            .manager
            .append_nodes(caller, session, branch, vec![user], None)
            .await?;
        let user_node = appended.nodes[0].id.clone();
        let mut head = appended.head;
        // A session started without a name is named after its first request.
        if current.metadata.get("auto_title").is_some()
            && let Err(e) = self
                .manager
                .title_from_request(caller, session, message)
                .await
        {
            tracing::warn!(code = e.code, "naming the session failed: {}", e.message);
        }
        ev.send(TurnEvent::Started {
            user_node: user_node.clone(),
        })
        .await;
        // What the window takes from beyond the session, read once for the turn.
        let reach = self.reach(caller, session, &cfg, message).await;

        let specs = self.tools.specs();
        let mut records: Vec<ToolCallRecord> = Vec::new();
        let mut steps = 0u32;
        let mut interrupted = false;
        let mut budget_exhausted = false;
        let mut answer = String::new();
        let mut last: Option<ChatResponse> = None;
        let mut context_tokens = 0;
        let budget = self.config.step_budget.max(1);
        // The state the last step saw; the answer adds no events, so detection reuses it.
        let mut last_state: Option<ResearchState> = None;
        // Identical calls asked for so far this turn, and the one that was asked for too often.
        let mut asked: std::collections::HashMap<(String, String), u32> = Default::default();
        let mut looped: Option<String> = None;
        let mut overflow_retried = false;
        loop {
            if ev.gone() {
                interrupted = true;
                break;
            }
            if steps == budget {
                budget_exhausted = true;
                break;
            }
            steps += 1;
            let (window, step_state) = self
                .load_context(caller, session, branch, &cfg, Some(&reach))
                .await?;
            let state = last_state.insert(step_state);
            context_tokens = window.total_tokens;
            let planner = window.planner_context(session, branch);
            let request = ChatRequest::new(window.messages)
                .with_tools(specs.clone())
                .with_context(planner);
            let (response, partial, cut) = self.call_model(request, ev).await;
            let response = match response {
                Ok(r) => r,
                // Too long for the model: summarise what came before this turn and try once more.
                Err(kiln_llm::Error::ContextOverflow(_)) if !cut && !overflow_retried => {
                    overflow_retried = true;
                    steps -= 1;
                    let keep = 1 + 2 * records.len() as u32;
                    match self
                        .summarise(caller, session, branch, Some(&head), keep, 1, &mut usage)
                        .await
                    {
                        Ok(Some(done)) => {
                            head = done.head;
                            ev.send(TurnEvent::Summarised {
                                node: done.node.clone(),
                            })
                            .await;
                            summary_node = Some(done.node);
                        }
                        Ok(None) => {}
                        Err(e) => tracing::warn!(
                            code = e.code,
                            "summarising after a context overflow failed: {}",
                            e.message
                        ),
                    }
                    continue;
                }
                Err(e) => {
                    if cut {
                        interrupted = true;
                        answer = partial;
                        break;
                    }
                    let err = model_error(&e);
                    let note = format!("The model could not answer: {e}");
                    let node = NewNode::message(NodeKind::Assistant, None, note).with_data(
                        json!({"model": self.model_name(), "error": {"code": err.code, "message": err.message}}),
                    );
                    let _ = self
                        .manager
                        .append_nodes(caller, session, branch, vec![node], Some(&head))
                        .await;
                    return Err(err.with_details(json!({"user_node": user_node})));
                }
            };
            usage.add(&response);
            if response.tool_calls.is_empty() {
                answer = response.content.clone().unwrap_or_default();
                last = Some(response);
                break;
            }
            if let Some(name) = repeated_call(&mut asked, &response.tool_calls) {
                looped = Some(name);
                last = Some(response);
                break;
            }
            for c in &response.tool_calls {
                ev.send(TurnEvent::ToolCall {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    arguments: c.arguments.clone(),
                })
                .await;
            }
            let ran = self
                .run_calls(caller, session, branch, state, &head, &response.tool_calls)
                .await;
            let (recs, h) = self
                .record_step(
                    caller,
                    session,
                    branch,
                    Some(&head),
                    &ran,
                    Some(&response),
                    false,
                )
                .await?;
            head = h;
            for r in &recs {
                ev.send(TurnEvent::ToolResult {
                    id: r.id.clone(),
                    name: r.name.clone(),
                    ok: r.ok,
                    text: r.text.clone(),
                    node: r.result_node.clone(),
                })
                .await;
            }
            records.extend(recs);
            last = Some(response);
        }

        if let Some(name) = &looped {
            answer = format!(
                "I stopped: the model asked for `{name}` with the same arguments \
                 {MAX_REPEATED_CALLS} times in this turn without getting anywhere new. The \
                 {} tool result(s) above are recorded on the branch; try asking for one step \
                 at a time, or rephrase the request.",
                records.len()
            );
        } else if budget_exhausted {
            answer = format!(
                "I stopped after {budget} model calls (the step budget) before reaching a final \
                 answer. The {} tool result(s) above are recorded on the branch.",
                records.len()
            );
        } else if answer.trim().is_empty() && !interrupted {
            answer = "(the model returned an empty answer)".to_owned();
        }
        let mut data = json!({
            "model": self.model_name(),
            "steps": steps,
            "turn_usage": usage,
        });
        if let Some(r) = &last {
            data["usage"] = json!(r.usage);
            data["latency_ms"] = json!(r.latency.as_secs_f64() * 1000.0);
            data["finish_reason"] = json!(r.finish_reason);
        }
        if interrupted {
            data["interrupted"] = json!(true);
        }
        if budget_exhausted {
            data["budget_exhausted"] = json!(true);
        }
        if let Some(name) = &looped {
            data["repeated_call"] = json!(name);
        }
        let content = if answer.is_empty() {
            "(interrupted before any answer text)".to_owned()
        } else {
            answer.clone()
        };
        let node = NewNode::message(NodeKind::Assistant, None, content.clone())
            .with_data(data)
            .with_tokens(i64::from(tokens::count(&content)));
        let out = self
            .manager
            .append_nodes(caller, session, branch, vec![node], Some(&head))
            .await?;
        let answer_node = out.nodes[0].id.clone();
        head = out.head;

        let mut discoveries = Vec::new();
        let detect_on = self.config.auto_detect_discoveries
            && !interrupted
            && !budget_exhausted
            && looped.is_none();
        if let (true, Some(state)) = (detect_on, &last_state) {
            match self
                .detect(
                    caller,
                    session,
                    branch,
                    message,
                    &content,
                    &answer_node,
                    &records,
                    state,
                    &head,
                    &mut usage,
                )
                .await
            {
                Ok(Some((found, h))) => {
                    head = h;
                    for d in &found {
                        ev.send(TurnEvent::Discovery(d.clone())).await;
                    }
                    discoveries = found;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(code = e.code, "discovery detection failed: {}", e.message)
                }
            }
        }

        Ok(TurnOutcome {
            session: session.to_owned(),
            branch: branch.to_owned(),
            user_node,
            answer_node,
            answer: content,
            tool_calls: records,
            discoveries,
            summary_node,
            steps,
            usage,
            model: self.model_name(),
            interrupted,
            budget_exhausted,
            head,
            context_tokens,
        })
    }

    /// Streams one model call, forwarding text. Returns the response (or error), the text
    /// received so far, and whether the client went away mid-stream.
    async fn call_model(
        &self,
        request: ChatRequest,
        ev: &Events<'_>,
    ) -> (kiln_llm::Result<ChatResponse>, String, bool) {
        let model = self.model();
        let mut stream = model.complete_stream(request);
        let mut partial = String::new();
        loop {
            // A client that leaves while the model is silent (a slow or stalled stream) is
            // noticed at once, not at the next token.
            let item = tokio::select! {
                item = stream.next() => item,
                () = ev.closed() => {
                    return (
                        Err(kiln_llm::Error::Malformed("client disconnected".into())),
                        partial,
                        true,
                    );
                }
            };
            let Some(item) = item else { break };
            match item {
                Ok(StreamEvent::TextDelta(t)) => {
                    partial.push_str(&t);
                    ev.send(TurnEvent::Token { text: t }).await;
                    if ev.gone() {
                        return (
                            Err(kiln_llm::Error::Malformed("client disconnected".into())),
                            partial,
                            true,
                        );
                    }
                }
                Ok(StreamEvent::Done(r)) => return (Ok(r), partial, false),
                Ok(_) => {}
                Err(e) => return (Err(e), partial, false),
            }
        }
        (
            Err(kiln_llm::Error::Malformed(
                "the stream ended before the answer was complete".into(),
            )),
            partial,
            false,
        )
    }

    /// Classifies the answer into discoveries and records those that pass the filters.
    #[allow(clippy::too_many_arguments)]
    async fn detect(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
        question: &str,
        answer: &str,
        answer_node: &str,
        records: &[ToolCallRecord],
        state: &ResearchState,
        head: &str,
        usage: &mut Usage,
    ) -> Result<Option<(Vec<DetectedRecord>, String)>> {
        let request = ChatRequest {
            response_format: ResponseFormat::JsonObject,
            ..ChatRequest::new(vec![
                ChatMessage::system(DISCOVERIES_PROMPT),
                ChatMessage::user(question),
                ChatMessage::assistant(answer),
            ])
            .with_purpose(Purpose::DetectDiscoveries)
        };
        let response = self
            .model()
            .complete(request)
            .await
            .map_err(|e| model_error(&e))?;
        usage.add(&response);
        let found = kiln_llm::parse_discoveries(response.content.as_deref().unwrap_or(""))
            .map_err(|e| Error::new(ErrorKind::Unavailable, "model_malformed", e.to_string()))?;
        let mut evidence = vec![answer_node.to_owned()];
        evidence.extend(
            records
                .iter()
                .filter(|r| r.ok)
                .map(|r| r.result_node.clone()),
        );
        let mut events = Vec::new();
        let mut kept: Vec<(String, String, f64)> = Vec::new();
        for d in found {
            let category = d.category.as_str().to_owned();
            // f32 on the wire; three decimals are all a confidence means.
            let confidence = (f64::from(d.confidence) * 1000.0).round() / 1000.0;
            if confidence < self.config.min_confidence
                || !self.config.discovery_categories.contains(&category)
            {
                continue;
            }
            let q = relevance::terms(&d.description);
            let known = state
                .discoveries
                .iter()
                .any(|x| relevance::score(&q, &x.description) >= 0.8);
            if known || kept.iter().any(|(_, desc, _)| *desc == d.description) {
                continue;
            }
            events.push(StateEvent::Discovery {
                id: None,
                discovery_type: category.clone(),
                description: d.description.clone(),
                materials: state.focus.material.clone().into_iter().collect(),
                evidence: evidence.clone(),
                confidence: Some(confidence.clamp(0.0, 1.0)),
                source: DiscoverySource::Auto,
            });
            kept.push((category, d.description, confidence));
        }
        if events.is_empty() {
            return Ok(None);
        }
        let nodes = events
            .into_iter()
            .map(|e| NewNode::event(e, Some(caller.user_id.clone())))
            .collect();
        let out = self
            .manager
            .append_nodes(caller, session, branch, nodes, Some(head))
            .await?;
        let records = out
            .nodes
            .iter()
            .zip(kept)
            .map(|(n, (category, description, confidence))| DetectedRecord {
                id: n.id.clone(),
                category,
                description,
                confidence,
            })
            .collect();
        Ok(Some((records, out.head)))
    }
}

/// Counts this step's calls among those asked for earlier in the turn; returns the name of a
/// call asked for [`MAX_REPEATED_CALLS`] times (same tool, same arguments once read).
fn repeated_call(
    asked: &mut std::collections::HashMap<(String, String), u32>,
    calls: &[ToolCall],
) -> Option<String> {
    let mut repeated = None;
    for call in calls {
        let arguments = kiln_llm::parse_arguments(&call.arguments)
            .map_or_else(|_| call.arguments.trim().to_owned(), |(v, _)| v.to_string());
        let count = asked.entry((call.name.clone(), arguments)).or_default();
        *count += 1;
        if *count >= MAX_REPEATED_CALLS {
            repeated.get_or_insert_with(|| call.name.clone());
        }
    }
    repeated
}

fn model_error(e: &kiln_llm::Error) -> Error {
    if let kiln_llm::Error::ContextOverflow(said) = e {
        return Error::new(
            ErrorKind::BadRequest,
            "context_overflow",
            format!(
                "the conversation does not fit the model's context window, even after \
                 summarising the earlier turns (the model server said: {said}); lower the \
                 session's context_window to what the model takes, or continue on a new branch"
            ),
        );
    }
    let kind = match e {
        kiln_llm::Error::RateLimited { .. } => ErrorKind::TooManyRequests,
        kiln_llm::Error::Config(_) => ErrorKind::Internal,
        _ => ErrorKind::Unavailable,
    };
    Error::new(kind, "model_unavailable", e.to_string())
}
