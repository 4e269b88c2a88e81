//! The offline planner: a deterministic `ChatModel` with no network, the default when no
//! provider is configured. It maps common research requests to tool calls, then answers by
//! quoting the tools' results; it also summarises and detects discoveries by rules.

mod answer;
mod discovery;
mod formula;
mod intent;
mod materials;
mod memory;
mod notebook;
mod offers;
mod optimizer;
mod quantity;
mod search;
mod summarise;
mod words;

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
use intent::{CAPABILITIES, Context, Plan};
use optimizer::Space;

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
        let text = messages
            .get(last_user)
            .and_then(ChatMessage::text)
            .unwrap_or_default();
        if let Some(call) = goal_step(text, &calls, &results, request, last_user) {
            return (None, vec![call]);
        }
        return (Some(answer::compose(text, &calls, &results)), Vec::new());
    }
    let text = messages
        .get(last_user)
        .and_then(ChatMessage::text)
        .unwrap_or_default();
    let context = context(request, messages.get(..last_user).unwrap_or_default());
    match intent::plan(text, &context) {
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

/// For a goal ("a cathode with higher voltage than LiFePO4"), after the similar materials
/// came back: the comparison of the material with the first candidate.
fn goal_step(
    text: &str,
    calls: &[ToolCall],
    results: &[(String, String)],
    request: &ChatRequest,
    last_user: usize,
) -> Option<ToolCall> {
    let [call] = calls else { return None };
    let arguments = call.parse_arguments().ok()?;
    if call.name != "materials_analyzer"
        || arguments.get("action").and_then(Value::as_str) != Some("similar")
        || !answer::is_goal(text)
    {
        return None;
    }
    let original = materials::subject(&arguments)?;
    let (_, content) = results.iter().find(|(id, _)| *id == call.id)?;
    if answer::tool_error(content).is_some() {
        return None;
    }
    let candidate = materials::goal_candidate(&original, &answer::tool_text(content))?;
    let turn_number = request
        .messages
        .iter()
        .take(last_user + 1)
        .filter(|m| m.role() == Role::User)
        .count();
    Some(ToolCall::new(
        format!("plan_{turn_number}_goal"),
        "materials_analyzer",
        &serde_json::json!({"action": "compare", "formulas": [original, candidate]}),
    ))
}

/// What the request is resolved against: the focus (the session's, else the last material
/// of the conversation), the last materials action and its materials, and the optimiser's
/// space (the session's, else the last one defined in the conversation).
fn context(request: &ChatRequest, history: &[ChatMessage]) -> Context {
    let mut context = Context {
        focus: request
            .context
            .focus
            .clone()
            .or_else(|| request.context.recent_materials.first().cloned()),
        space: request
            .context
            .optimizer_space
            .as_ref()
            .and_then(Space::from_arguments),
        findings: request.context.findings.clone(),
        ..Context::default()
    };
    for message in history.iter().rev() {
        let ChatMessage::Assistant { tool_calls, .. } = message else {
            continue;
        };
        for call in tool_calls.iter().rev() {
            let Ok(arguments) = call.parse_arguments() else {
                continue;
            };
            match call.name.as_str() {
                // The last turn's materials; while they are fewer than two, earlier turns' too,
                // so "compare them" after two single analyses compares both.
                "materials_analyzer"
                    if context.previous_action.is_none()
                        || context.previous_materials.len() < 2 =>
                {
                    let latest = context.previous_action.is_none();
                    if latest {
                        context.previous_action = arguments
                            .get("action")
                            .and_then(Value::as_str)
                            .map(str::to_owned);
                    }
                    let mut materials: Vec<String> = Vec::new();
                    for call in tool_calls.iter().filter(|c| c.name == call.name) {
                        let Ok(arguments) = call.parse_arguments() else {
                            continue;
                        };
                        let named = arguments
                            .get("formulas")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .chain(materials::subject(&arguments));
                        for formula in named {
                            if !materials.contains(&formula) {
                                materials.push(formula);
                            }
                        }
                    }
                    if latest {
                        if context.focus.is_none() {
                            context.focus = materials.first().cloned();
                        }
                        context.previous_materials = materials;
                    } else {
                        materials.retain(|m| !context.previous_materials.contains(m));
                        materials.append(&mut context.previous_materials);
                        context.previous_materials = materials;
                    }
                }
                "bayesian_optimizer"
                    if context.space.is_none()
                        && arguments.get("action").and_then(Value::as_str)
                            == Some("define_space") =>
                {
                    context.space = Space::from_arguments(&arguments);
                }
                _ => {}
            }
        }
    }
    context
}

#[cfg(test)]
mod tests;
