//! Chat models for Kiln: the `ChatModel` trait, the OpenAI-compatible provider, the offline
//! planner and the scripted model. The only crate that knows a provider's wire format.

mod assemble;
mod check;
mod error;
mod model;
mod planner;
mod provider;
mod repair;
mod scripted;
mod select;
mod types;

pub use assemble::StreamAssembler;
pub use check::{CheckStep, ConnectionReport, check_connection, probe_ollama};
pub use error::{Error, Result};
pub use model::{ChatFuture, ChatModel, ChatStream, collect_stream, events_of};
pub use planner::{
    DetectedDiscovery, DiscoveryCategory, OFFLINE_PLANNER_NAME, OfflinePlanner, TOOL_CALL_PREFIX,
    TOOL_RESULT_PREFIX, detect_discoveries, find_formulas, looks_like_formula, parse_discoveries,
    summarise,
};
pub use provider::{
    API_KEY_ENV, ApiKey, OPENAI_BASE_URL, OpenAiProvider, ProviderConfig, wire_tool_name,
};
pub use repair::{Repair, parse_arguments};
pub use scripted::ScriptedModel;
pub use select::model_from_config;
pub use types::{
    ChatMessage, ChatRequest, ChatResponse, FinishReason, PlannerContext, Purpose, ResponseFormat,
    Role, StreamEvent, ToolCall, ToolSpec, Usage,
};
