//! Kiln's own MCP tools: one table of names, descriptions and argument schemas, and one
//! dispatch that calls the same Agent and SessionManager methods the HTTP routes call.

use kiln_agent::Agent;
use kiln_session::{
    BranchFrom, Caller, CreateSession, Error, EventInput, ListQuery, MessageInput, Result,
    SearchParams,
};
use kiln_types::{HypothesisStatus, MergeStrategy, Role, StateEvent};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// One of Kiln's own tools as an MCP client sees it.
pub(crate) struct Op {
    pub name: &'static str,
    pub description: &'static str,
    /// Properties of the arguments object, and which are required.
    pub properties: fn() -> Value,
    pub required: &'static [&'static str],
    /// Whether a call changes a session.
    pub writes: bool,
    /// Whether a call draws from the per-user budget of expensive requests.
    pub expensive: bool,
}

impl Op {
    pub fn schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": (self.properties)(),
            "required": self.required,
            "additionalProperties": false,
        })
    }
}

fn session_prop() -> Value {
    json!({"type": "string", "description": "The session id."})
}

fn branch_prop() -> Value {
    json!({"type": "string", "description": "The branch (default: the session's default branch)."})
}

/// The table. Session tools (`materials_analyzer`, …) are listed after these, from the agent's
/// registry.
pub(crate) const OPS: &[Op] = &[
    Op {
        name: "list_sessions",
        description: "Lists the sessions you can read, newest first (filters optional).",
        properties: || {
            json!({
                "status": {"type": "string", "enum": ["created", "active", "paused", "archived", "resumed"]},
                "project": {"type": "string"},
                "tag": {"type": "string"},
                "limit": {"type": "integer", "minimum": 1, "maximum": 200},
                "cursor": {"type": "string", "description": "next_cursor of the previous page"},
            })
        },
        required: &[],
        writes: false,
        expensive: false,
    },
    Op {
        name: "search_sessions",
        description: "Full-text search over the sessions you can read (messages, findings, \
                      materials); `session` limits it to one session.",
        properties: || {
            json!({
                "q": {"type": "string", "description": "The query (words, \"phrases\", AND, OR, NOT, prefix*)."},
                "session": {"type": "string"},
                "kind": {"type": "string", "description": "Only this node kind (user, assistant, discovery, …)."},
                "material": {"type": "string"},
                "limit": {"type": "integer", "minimum": 1, "maximum": 100, "description": "Sessions per page."},
            })
        },
        required: &["q"],
        writes: false,
        expensive: true,
    },
    Op {
        name: "create_session",
        description: "Creates a session, empty or from a template (see the prompts for the \
                      templates and their parameters).",
        properties: || {
            json!({
                "name": {"type": "string", "description": "The session's name (a template names it when omitted)."},
                "description": {"type": "string"},
                "template": {"type": "string"},
                "parameters": {"type": "object", "additionalProperties": {"type": "string"}},
            })
        },
        required: &[],
        writes: true,
        expensive: false,
    },
    Op {
        name: "open_context",
        description: "Returns the context window the session's agent would see now: system \
                      prompt, pins, focus, materials, findings, summary and recent history.",
        properties: || json!({"session": session_prop(), "branch": branch_prop()}),
        required: &["session"],
        writes: false,
        expensive: false,
    },
    Op {
        name: "ask_agent",
        description: "Asks the session's research agent a question; it may call the session's \
                      tools. Returns its answer and the tool calls it made, all recorded on the \
                      branch.",
        properties: || json!({"session": session_prop(), "question": {"type": "string"}, "branch": branch_prop()}),
        required: &["session", "question"],
        writes: true,
        expensive: true,
    },
    Op {
        name: "append_note",
        description: "Appends a note (your own text, not a question for the agent) to a branch.",
        properties: || json!({"session": session_prop(), "content": {"type": "string"}, "branch": branch_prop()}),
        required: &["session", "content"],
        writes: true,
        expensive: false,
    },
    Op {
        name: "record_hypothesis",
        description: "Records a hypothesis in the session's research state (or updates one by id).",
        properties: || {
            json!({
                "session": session_prop(),
                "statement": {"type": "string"},
                "status": {"type": "string", "enum": ["open", "supported", "refuted"]},
                "id": {"type": "string", "description": "An existing hypothesis to update."},
                "branch": branch_prop(),
            })
        },
        required: &["session", "statement"],
        writes: true,
        expensive: false,
    },
    Op {
        name: "create_branch",
        description: "Creates a branch at the head of another branch (default: the default \
                      branch), at a checkpoint or at a node.",
        properties: || {
            json!({
                "session": session_prop(),
                "name": {"type": "string"},
                "from_branch": {"type": "string"},
                "from_checkpoint": {"type": "string"},
                "from_node": {"type": "string"},
            })
        },
        required: &["session", "name"],
        writes: true,
        expensive: false,
    },
    Op {
        name: "create_checkpoint",
        description: "Names the current head of a branch as a checkpoint to restore later.",
        properties: || json!({"session": session_prop(), "name": {"type": "string"}, "branch": branch_prop()}),
        required: &["session", "name"],
        writes: true,
        expensive: false,
    },
    Op {
        name: "restore_checkpoint",
        description: "Moves a branch back to a checkpoint (nothing is lost: the old head is \
                      kept as a before-restore checkpoint).",
        properties: || json!({"session": session_prop(), "checkpoint": {"type": "string"}, "branch": branch_prop()}),
        required: &["session", "checkpoint"],
        writes: true,
        expensive: false,
    },
    Op {
        name: "merge_branches",
        description: "Merges branch `from` into `into` (default: the default branch). Conflicts \
                      are reported unless a strategy settles them.",
        properties: || {
            json!({
                "session": session_prop(),
                "from": {"type": "string"},
                "into": {"type": "string"},
                "strategy": {"type": "string", "enum": ["fail", "ours", "theirs", "union"]},
            })
        },
        required: &["session", "from"],
        writes: true,
        expensive: true,
    },
];

/// Looks an op up by name.
pub(crate) fn op(name: &str) -> Option<&'static Op> {
    OPS.iter().find(|o| o.name == name)
}

/// Reads the arguments as `T`, naming what is wrong.
fn args<T: DeserializeOwned>(value: Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| Error::bad_request(format!("invalid arguments: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Scoped {
    session: String,
    #[serde(default)]
    branch: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Search {
    q: String,
    #[serde(default)]
    session: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    material: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Create {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    template: Option<String>,
    #[serde(default)]
    parameters: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Ask {
    session: String,
    question: String,
    #[serde(default)]
    branch: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Note {
    session: String,
    content: String,
    #[serde(default)]
    branch: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Hypothesis {
    session: String,
    statement: String,
    #[serde(default)]
    status: HypothesisStatus,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    branch: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewBranch {
    session: String,
    name: String,
    #[serde(default)]
    from_branch: Option<String>,
    #[serde(default)]
    from_checkpoint: Option<String>,
    #[serde(default)]
    from_node: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCheckpoint {
    session: String,
    name: String,
    #[serde(default)]
    branch: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Restore {
    session: String,
    checkpoint: String,
    #[serde(default)]
    branch: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Merge {
    session: String,
    from: String,
    #[serde(default)]
    into: Option<String>,
    #[serde(default)]
    strategy: MergeStrategy,
}

/// A session tool's call: where, and the tool's own arguments.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SessionToolCall {
    pub session: String,
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default)]
    pub arguments: Option<Value>,
}

/// The arguments schema of a session tool as an MCP tool: the session, the branch and the
/// tool's own arguments (its schema unchanged, so nothing is lost in translation).
pub(crate) fn session_tool_schema(tool_schema: Value) -> Value {
    json!({
        "type": "object",
        "properties": {
            "session": session_prop(),
            "branch": branch_prop(),
            "arguments": tool_schema,
        },
        "required": ["session", "arguments"],
        "additionalProperties": false,
    })
}

/// The branch to write on: the given one or the session's default.
async fn branch_of(
    agent: &Agent,
    caller: &Caller,
    session: &str,
    b: Option<String>,
) -> Result<String> {
    match b {
        Some(b) => Ok(b),
        None => Ok(agent
            .manager()
            .session(caller, session)
            .await?
            .default_branch),
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| Error::internal(format!("json: {e}")))
}

/// Runs one of Kiln's own tools; the answer is the JSON the matching HTTP route returns.
pub(crate) async fn run(agent: &Agent, caller: &Caller, name: &str, a: Value) -> Result<Value> {
    let mgr = agent.manager();
    match name {
        "list_sessions" => {
            let q: ListQuery = args(a)?;
            to_json(&mgr.list_sessions(caller, q).await?)
        }
        "search_sessions" => {
            let s: Search = args(a)?;
            let p = SearchParams {
                q: s.q,
                session: s.session,
                kind: s.kind,
                material: s.material,
                limit: s.limit,
                ..Default::default()
            };
            to_json(&mgr.search_sessions(caller, p).await?)
        }
        "create_session" => {
            let c: Create = args(a)?;
            let s = match &c.template {
                Some(t) => {
                    let s = mgr.create_from_template(caller, t, &c.parameters).await?;
                    match c.name {
                        Some(name) if name != s.name => {
                            let patch = kiln_session::UpdateSession {
                                name: Some(name),
                                ..Default::default()
                            };
                            mgr.update_session(caller, &s.id, patch, None).await?
                        }
                        _ => s,
                    }
                }
                None => {
                    if !c.parameters.is_empty() {
                        return Err(Error::bad_request("parameters need a template"));
                    }
                    let req = CreateSession {
                        name: c.name.unwrap_or_default(),
                        description: c.description,
                        ..Default::default()
                    };
                    mgr.create_session(caller, req).await?
                }
            };
            to_json(&s)
        }
        "open_context" => {
            let s: Scoped = args(a)?;
            to_json(
                &agent
                    .context(caller, &s.session, s.branch.as_deref())
                    .await?,
            )
        }
        "ask_agent" => {
            let q: Ask = args(a)?;
            let branch = branch_of(agent, caller, &q.session, q.branch).await?;
            to_json(
                &agent
                    .run_turn(caller, &q.session, &branch, &q.question, None)
                    .await?,
            )
        }
        "append_note" => {
            let n: Note = args(a)?;
            let branch = branch_of(agent, caller, &n.session, n.branch).await?;
            let msg = MessageInput {
                role: Role::Note,
                content: n.content,
                expected_head: None,
            };
            to_json(&mgr.append_message(caller, &n.session, &branch, msg).await?)
        }
        "record_hypothesis" => {
            let h: Hypothesis = args(a)?;
            let branch = branch_of(agent, caller, &h.session, h.branch).await?;
            let input = EventInput {
                event: StateEvent::Hypothesis {
                    id: h.id,
                    statement: h.statement,
                    status: h.status,
                },
                expected_head: None,
            };
            to_json(&mgr.append_event(caller, &h.session, &branch, input).await?)
        }
        "create_branch" => {
            let b: NewBranch = args(a)?;
            let from = match (b.from_branch, b.from_checkpoint, b.from_node) {
                (None, None, None) => None,
                (Some(x), None, None) => Some(BranchFrom::Branch(x)),
                (None, Some(x), None) => Some(BranchFrom::Checkpoint(x)),
                (None, None, Some(x)) => Some(BranchFrom::Node(x)),
                _ => {
                    return Err(Error::bad_request(
                        "give at most one of from_branch, from_checkpoint, from_node",
                    ));
                }
            };
            to_json(&mgr.create_branch(caller, &b.session, &b.name, from).await?)
        }
        "create_checkpoint" => {
            let c: NewCheckpoint = args(a)?;
            to_json(
                &mgr.create_checkpoint(caller, &c.session, &c.name, c.branch.as_deref(), None)
                    .await?,
            )
        }
        "restore_checkpoint" => {
            let r: Restore = args(a)?;
            to_json(
                &mgr.restore(caller, &r.session, &r.checkpoint, r.branch.as_deref())
                    .await?,
            )
        }
        "merge_branches" => {
            let m: Merge = args(a)?;
            let into = branch_of(agent, caller, &m.session, m.into).await?;
            to_json(
                &mgr.merge(caller, &m.session, &m.from, &into, m.strategy)
                    .await?,
            )
        }
        other => Err(Error::not_found(format!("no tool `{other}`"))),
    }
}
