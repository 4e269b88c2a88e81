//! The `Tool` trait every session tool implements, and what a call gets and gives back.

use std::path::PathBuf;

use futures::future::BoxFuture;
use kiln_session::{Caller, SessionManager};
use kiln_types::StateEvent;
use kiln_types::state::{ResearchState, Resolver, ToolMerge};
use serde::Serialize;
use serde_json::Value;

/// What a tool call runs with: the session, the branch, the caller (whose permissions the
/// call has) and the research state as it stands for this call.
#[derive(Clone)]
pub struct ToolContext {
    /// The session store; tools read through it with the caller's identity.
    pub manager: SessionManager,
    /// Who asked (the researcher, never the model): tools act with these permissions.
    pub caller: Caller,
    /// The session id.
    pub session: String,
    /// The branch the call runs on.
    pub branch: String,
    /// The research state before this call (earlier calls of the same tool in the same step
    /// already applied, so a tool's own state never loses an update).
    pub state: ResearchState,
    /// Where tools keep files (notebook attachments).
    pub data_dir: PathBuf,
    /// A seed for tools with randomness, fixed per call so a replay of the arguments is
    /// reproducible.
    pub seed: u64,
    /// The optimizer controller's lock token the request carried (`Kiln-Lock-Token`), if any;
    /// the model's own calls carry none.
    pub controller_token: Option<String>,
    /// Whether the model made the call (in a turn) rather than a person (a route or script):
    /// tools keep some decisions for people.
    pub by_model: bool,
}

impl std::fmt::Debug for ToolContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolContext")
            .field("session", &self.session)
            .field("branch", &self.branch)
            .field("caller", &self.caller.user_id)
            .finish_non_exhaustive()
    }
}

impl ToolContext {
    /// Returns this tool's saved state on the branch, if it has one.
    pub fn tool_state(&self, tool: &str) -> Option<&Value> {
        self.state.tools.get(tool)
    }
}

/// A successful call: text for the model, structured data for programs, and the state
/// events to record on the branch with the result.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolOutput {
    /// A short account for the model (and the offline planner, which quotes it).
    pub text: String,
    /// The structured result.
    pub data: Value,
    /// State events recorded after the result node (materials, focus, discoveries, tool state).
    pub events: Vec<StateEvent>,
    /// Decisions for the session's audit log, as `(action, payload)` (optimizer locks).
    pub audit: Vec<(String, Value)>,
}

impl ToolOutput {
    /// Returns an output with text and data and no events.
    pub fn new(text: impl Into<String>, data: Value) -> Self {
        ToolOutput {
            text: text.into(),
            data,
            events: Vec::new(),
            audit: Vec::new(),
        }
    }

    /// Returns the output with one more state event.
    pub fn with_event(mut self, event: StateEvent) -> Self {
        self.events.push(event);
        self
    }
}

/// Why a tool call failed. Sent back to the model as data; over HTTP a 4xx or 5xx.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ToolError {
    /// No tool by that name.
    #[error("unknown tool `{0}`")]
    UnknownTool(String),
    /// The arguments are not what the schema asks for (or not JSON at all).
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// The caller may not do this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The arguments were fine but the work failed (with the tool's explanation).
    #[error("{0}")]
    Failed(String),
    /// The session layer refused (a missing track, a file over the limit, a protected
    /// session): its kind and code carry over to HTTP unchanged.
    #[error("{message}")]
    Refused {
        kind: kiln_types::ErrorKind,
        code: &'static str,
        message: String,
    },
}

impl From<kiln_session::Error> for ToolError {
    fn from(e: kiln_session::Error) -> Self {
        ToolError::Refused {
            kind: e.kind,
            code: e.code,
            message: e.message,
        }
    }
}

impl ToolError {
    /// The machine-readable code (`invalid_arguments`, …).
    pub fn code(&self) -> &'static str {
        match self {
            ToolError::UnknownTool(_) => "unknown_tool",
            ToolError::InvalidArguments(_) => "invalid_arguments",
            ToolError::Forbidden(_) => "forbidden",
            ToolError::Failed(_) => "tool_failed",
            ToolError::Refused { code, .. } => code,
        }
    }
}

/// A session tool. Object safe: the registry holds `Arc<dyn Tool>`.
///
/// A tool never writes the conversation tree itself: it returns [`ToolOutput::events`] and
/// the agent records them, with the call and its result, in one transaction. That is what
/// makes a restore or a replay safe: recorded outputs are read back, never re-executed.
pub trait Tool: Send + Sync {
    /// The unique name the model calls (`materials_analyzer`).
    fn name(&self) -> &str;

    /// What the tool does, for the model.
    fn description(&self) -> &str;

    /// JSON schema of the arguments object.
    fn schema(&self) -> Value;

    /// Whether a call changes the session (and so needs write permission).
    fn writes(&self) -> bool {
        true
    }

    /// Whether a direct call counts against the per-user rate limit on expensive requests.
    /// A tool whose work is an append (a notebook line, a recorded finding) is as cheap as a
    /// message, which is not limited either; its bytes still count against the quota.
    fn expensive(&self) -> bool {
        true
    }

    /// Runs one call.
    fn call<'a>(
        &'a self,
        ctx: &'a ToolContext,
        args: Value,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>>;

    /// Merges this tool's state when both sides of a branch merge changed it, settling each
    /// conflict the resolver picks for; `None` means the tool has no merge rule (the generic
    /// rule then treats the whole state as one conflict).
    fn merge(
        &self,
        _base: Option<&Value>,
        _ours: &Value,
        _theirs: &Value,
        _resolver: &Resolver,
    ) -> Option<ToolMerge> {
        None
    }

    /// Describes in sentences how this tool's state changed (`None`: the generic sentence).
    fn describe_change(&self, _from: Option<&Value>, _to: Option<&Value>) -> Option<Vec<String>> {
        None
    }

    /// Renders this tool's state as Markdown for the session report (`None`: nothing to add).
    fn report(&self, _state: &Value) -> Option<String> {
        None
    }

    /// Shows this tool's state on the web pages (`None`: nothing to show).
    fn view(&self, _state: &Value) -> Option<ToolView> {
        None
    }
}

/// A tool's state as the web pages show it: tables of plain text (the page escapes them) and
/// SVG charts the tool draws itself (with its text escaped).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ToolView {
    /// One line on what the state holds.
    pub summary: String,
    pub tables: Vec<ViewTable>,
    pub charts: Vec<ViewChart>,
}

/// A captioned table.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ViewTable {
    pub caption: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// A chart as an SVG document.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ViewChart {
    pub title: String,
    pub svg: String,
}

pub use kiln_types::clip;

/// Returns a required string argument.
pub(crate) fn str_arg<'a>(args: &'a Value, key: &str) -> Result<&'a str, ToolError> {
    match args.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
        Some(Value::String(_)) => Err(ToolError::InvalidArguments(format!(
            "`{key}` must not be empty"
        ))),
        Some(_) => Err(ToolError::InvalidArguments(format!(
            "`{key}` must be a string"
        ))),
        None => Err(ToolError::InvalidArguments(format!("`{key}` is required"))),
    }
}

/// Returns an optional string argument (wrong type is an error).
pub(crate) fn opt_str_arg<'a>(args: &'a Value, key: &str) -> Result<Option<&'a str>, ToolError> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ToolError::InvalidArguments(format!(
            "`{key}` must be a string"
        ))),
    }
}

/// Rejects keys the schema does not know, naming them.
pub(crate) fn only_keys(args: &Value, allowed: &[&str]) -> Result<(), ToolError> {
    let Some(map) = args.as_object() else {
        return Err(ToolError::InvalidArguments(
            "arguments must be a JSON object".into(),
        ));
    };
    let unknown: Vec<&str> = map
        .keys()
        .map(String::as_str)
        .filter(|k| !allowed.contains(k))
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(ToolError::InvalidArguments(format!(
            "unknown argument(s) {} (expected {})",
            unknown.join(", "),
            allowed.join(", ")
        )))
    }
}
