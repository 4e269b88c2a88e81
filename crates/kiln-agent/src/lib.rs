//! Kiln's research agent: the tool registry and built-in tools, the context window, and the
//! turn loop that drives a chat model over a session branch.
//!
//! Entry point: [`Agent::run_turn`] (and [`Agent::call_tool`] for scripts that drive one tool
//! directly). Everything a turn does is recorded on the branch through the session manager.

mod agent;
pub mod audit_export;
mod batch;
pub mod context;
pub mod dreamlake;
pub mod notebook;
pub mod optimizer;
pub mod overview;
mod recall;
mod registry;
pub mod relevance;
pub mod settings;
pub mod setup;
pub mod tokens;
mod tool;
pub mod tools;
mod turns;

pub use agent::{
    Agent, Compressed, DetectedRecord, Summarised, ToolCallRecord, TurnEvent, TurnOutcome, Usage,
};
pub use context::{ContextInputs, ContextPart, ContextWindow, MemoryLine, RecallItem, assemble};
pub use overview::SessionSummary;
pub use registry::{Registry, ToolInfo};
pub use settings::{KeySource, ModelSettings, ModelSettingsUpdate, ModelSlot};
pub use tool::{Tool, ToolContext, ToolError, ToolOutput, ToolView, ViewChart, ViewTable, clip};
pub use turns::{QueuedTurn, TurnSlot};

/// The system prompt (templates/prompts/system.md, embedded at build time).
pub const SYSTEM_PROMPT: &str = include_str!("../../../templates/prompts/system.md");
/// The instruction for summaries of older turns.
pub const SUMMARISE_PROMPT: &str = include_str!("../../../templates/prompts/summarise.md");
/// The instruction for discovery classification.
pub const DISCOVERIES_PROMPT: &str = include_str!("../../../templates/prompts/discoveries.md");
