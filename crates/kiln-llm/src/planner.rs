//! The offline planner: a deterministic `ChatModel` with no network, the default when no
//! provider is configured. It maps common research requests to tool calls, then answers by
//! quoting the tools' results; it also summarises and detects discoveries by rules.

mod answer;
mod discovery;
mod formula;
mod intent;
mod optimizer;
mod summarise;

use std::time::Instant;

use serde_json::Value;

pub use discovery::{DetectedDiscovery, DiscoveryCategory, detect_discoveries, parse_discoveries};
pub use formula::{find_formulas, looks_like_formula};
pub use summarise::{TOOL_CALL_PREFIX, TOOL_RESULT_PREFIX, summarise};

use futures::stream::{self, StreamExt};

use crate::model::{ChatFuture, ChatModel, ChatStream};
use crate::types::{
    ChatMessage, ChatRequest, ChatResponse, FinishReason, Purpose, Role, StreamEvent, ToolCall,
    Usage,
};
use intent::{CAPABILITIES, Plan};

/// The model name recorded on nodes the planner writes.
pub const OFFLINE_PLANNER_NAME: &str = "offline-planner";

/// The offline planner. Stateless: everything it needs is in the request.
#[derive(Debug, Clone, Copy, Default)]
pub struct OfflinePlanner;

impl OfflinePlanner {
    /// Returns the planner.
    pub fn new() -> Self {
        OfflinePlanner
    }

    /// Answers a request synchronously (the `ChatModel` impl wraps this).
    pub fn respond(&self, request: &ChatRequest) -> ChatResponse {
        let started = Instant::now();
        let (content, tool_calls) = match request.purpose {
            Purpose::Summarise => (Some(summarise(&request.messages)), Vec::new()),
            Purpose::DetectDiscoveries => (Some(discoveries_json(&request.messages)), Vec::new()),
            Purpose::Turn => turn(request),
        };
        let prompt_chars: usize = request
            .messages
            .iter()
            .filter_map(ChatMessage::text)
            .map(str::len)
            .sum();
        let completion_chars = content.as_deref().map_or(0, str::len)
            + tool_calls
                .iter()
                .map(|call: &ToolCall| call.name.len() + call.arguments.len())
                .sum::<usize>();
        ChatResponse {
            finish_reason: if tool_calls.is_empty() {
                FinishReason::Stop
            } else {
                FinishReason::ToolCalls
            },
            content,
            tool_calls,
            usage: Usage {
                prompt_tokens: estimate_tokens(prompt_chars),
                completion_tokens: estimate_tokens(completion_chars),
            },
            latency: started.elapsed(),
            model: OFFLINE_PLANNER_NAME.to_owned(),
            attempts: 0,
        }
    }
}

impl ChatModel for OfflinePlanner {
    fn name(&self) -> &str {
        OFFLINE_PLANNER_NAME
    }

    fn complete(&self, request: ChatRequest) -> ChatFuture<'_> {
        let response = self.respond(&request);
        Box::pin(async move { Ok(response) })
    }

    /// Streams the answer word by word (so a terminal shows it arriving like a model's),
    /// then the tool calls, then `Done`.
    fn complete_stream(&self, request: ChatRequest) -> ChatStream<'_> {
        let response = self.respond(&request);
        let mut events: Vec<StreamEvent> = response
            .content
            .as_deref()
            .unwrap_or_default()
            .split_inclusive(char::is_whitespace)
            .map(|word| StreamEvent::TextDelta(word.to_owned()))
            .collect();
        events.extend(
            response
                .tool_calls
                .iter()
                .cloned()
                .map(StreamEvent::ToolCall),
        );
        events.push(StreamEvent::Done(response));
        stream::iter(events.into_iter().map(Ok)).boxed()
    }
}

/// About four characters per token: an estimate, reported as such (no tokenizer offline).
fn estimate_tokens(chars: usize) -> u32 {
    u32::try_from(chars.div_ceil(4)).unwrap_or(u32::MAX)
}

fn discoveries_json(messages: &[ChatMessage]) -> String {
    let text = messages
        .iter()
        .rev()
        .find(|message| message.role() == Role::Assistant && message.text().is_some())
        .or_else(|| {
            messages
                .iter()
                .rev()
                .find(|message| message.role() == Role::User)
        })
        .and_then(ChatMessage::text)
        .unwrap_or_default();
    serde_json::json!({ "discoveries": detect_discoveries(text) }).to_string()
}

fn turn(request: &ChatRequest) -> (Option<String>, Vec<ToolCall>) {
    let messages = &request.messages;
    let Some(last_user) = messages
        .iter()
        .rposition(|message| message.role() == Role::User)
    else {
        return (Some(CAPABILITIES.to_owned()), Vec::new());
    };
    let this_turn = messages.get(last_user + 1..).unwrap_or_default();
    let calls: Vec<ToolCall> = this_turn
        .iter()
        .flat_map(|m| m.tool_calls().iter().cloned())
        .collect();
    if !calls.is_empty() {
        let results: Vec<(String, String)> = this_turn
            .iter()
            .filter_map(|message| match message {
                ChatMessage::Tool {
                    tool_call_id,
                    content,
                } => Some((tool_call_id.clone(), content.clone())),
                _ => None,
            })
            .collect();
        return (Some(answer::compose(&calls, &results)), Vec::new());
    }
    let text = messages
        .get(last_user)
        .and_then(ChatMessage::text)
        .unwrap_or_default();
    let focus = request
        .context
        .focus
        .clone()
        .or_else(|| request.context.recent_materials.first().cloned())
        .or_else(|| history_focus(messages.get(..last_user).unwrap_or_default()));
    match intent::plan(text, focus.as_deref()) {
        Plan::Reply(reply) => (Some(reply), Vec::new()),
        Plan::Calls(planned) => {
            let (available, missing): (Vec<_>, Vec<_>) = planned
                .into_iter()
                .partition(|(name, _)| request.tools.iter().any(|tool| tool.name == *name));
            if available.is_empty() {
                let mut names: Vec<String> = missing.into_iter().map(|(name, _)| name).collect();
                names.dedup();
                let reply = format!(
                    "That needs the {} tool, which is not available in this session, so I cannot do it here.",
                    names.join(", ")
                );
                return (Some(reply), Vec::new());
            }
            let turn_number = messages.iter().filter(|m| m.role() == Role::User).count();
            let calls = available
                .into_iter()
                .enumerate()
                .map(|(index, (name, arguments))| {
                    ToolCall::new(format!("plan_{turn_number}_{index}"), name, &arguments)
                })
                .collect();
            (None, calls)
        }
    }
}

/// The most recent material of earlier turns: a formula in tool-call arguments or in what
/// the researcher wrote. Used when the request carries no focus.
fn history_focus(messages: &[ChatMessage]) -> Option<String> {
    messages.iter().rev().find_map(|message| match message {
        ChatMessage::Assistant { tool_calls, .. } => tool_calls.iter().rev().find_map(|call| {
            let arguments = call.parse_arguments().ok()?;
            arguments
                .get("formula")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| {
                    arguments
                        .get("formulas")?
                        .as_array()?
                        .last()?
                        .as_str()
                        .map(str::to_owned)
                })
        }),
        ChatMessage::User { content } => find_formulas(content).pop(),
        _ => None,
    })
}

#[cfg(test)]
mod tests;
