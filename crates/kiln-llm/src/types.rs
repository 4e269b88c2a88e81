//! Provider-neutral chat types: messages, tool specs and calls, requests, responses, stream events.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions for the model (system prompt, pinned context, summaries).
    System,
    /// The researcher.
    User,
    /// The model.
    Assistant,
    /// A tool's result, answering one assistant tool call.
    Tool,
}

/// One message of a conversation, in the shape every chat-completions API shares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum ChatMessage {
    /// A system message.
    System {
        /// The text.
        content: String,
    },
    /// A user message.
    User {
        /// The text.
        content: String,
    },
    /// A model message: text, tool calls, or both.
    Assistant {
        /// The text, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<String>,
        /// The tool calls the model asked for, in order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCall>,
    },
    /// A tool result answering the assistant tool call with id `tool_call_id`.
    Tool {
        /// The id of the [`ToolCall`] this answers.
        tool_call_id: String,
        /// The result as text (Kiln's tools send JSON with a `text` field).
        content: String,
    },
}

impl ChatMessage {
    /// Returns a system message.
    pub fn system(content: impl Into<String>) -> Self {
        ChatMessage::System {
            content: content.into(),
        }
    }

    /// Returns a user message.
    pub fn user(content: impl Into<String>) -> Self {
        ChatMessage::User {
            content: content.into(),
        }
    }

    /// Returns an assistant message with text only.
    pub fn assistant(content: impl Into<String>) -> Self {
        ChatMessage::Assistant {
            content: Some(content.into()),
            tool_calls: Vec::new(),
        }
    }

    /// Returns an assistant message asking for tool calls (with optional text).
    pub fn assistant_tool_calls(content: Option<String>, tool_calls: Vec<ToolCall>) -> Self {
        ChatMessage::Assistant {
            content,
            tool_calls,
        }
    }

    /// Returns a tool result answering the call `tool_call_id`.
    pub fn tool(tool_call_id: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage::Tool {
            tool_call_id: tool_call_id.into(),
            content: content.into(),
        }
    }

    /// Returns the role of the message.
    pub fn role(&self) -> Role {
        match self {
            ChatMessage::System { .. } => Role::System,
            ChatMessage::User { .. } => Role::User,
            ChatMessage::Assistant { .. } => Role::Assistant,
            ChatMessage::Tool { .. } => Role::Tool,
        }
    }

    /// Returns the text of the message, if it has any.
    pub fn text(&self) -> Option<&str> {
        match self {
            ChatMessage::System { content }
            | ChatMessage::User { content }
            | ChatMessage::Tool { content, .. } => Some(content),
            ChatMessage::Assistant { content, .. } => content.as_deref(),
        }
    }

    /// Returns the tool calls of an assistant message (empty for other roles).
    pub fn tool_calls(&self) -> &[ToolCall] {
        match self {
            ChatMessage::Assistant { tool_calls, .. } => tool_calls,
            _ => &[],
        }
    }
}

/// A tool the model may call: name, description and JSON schema of its arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// Unique tool name (`materials_analyzer`).
    pub name: String,
    /// What the tool does, for the model.
    pub description: String,
    /// JSON schema of the arguments object.
    pub parameters: serde_json::Value,
}

/// One tool call asked for by the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The call id; the tool result message quotes it.
    pub id: String,
    /// The tool name, as the model wrote it (it may not exist).
    pub name: String,
    /// The arguments exactly as the model returned them: JSON text that may be malformed.
    pub arguments: String,
}

impl ToolCall {
    /// Returns a call with `arguments` serialised from a JSON value.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        arguments: &serde_json::Value,
    ) -> Self {
        ToolCall {
            id: id.into(),
            name: name.into(),
            arguments: arguments.to_string(),
        }
    }

    /// Parses the raw arguments; the error is what the agent feeds back to the model.
    pub fn parse_arguments(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_str(&self.arguments)
    }
}

/// What a request is for. Providers answer every purpose with the same chat call (the agent
/// writes the matching prompt); the offline planner switches to its summariser or its
/// discovery rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// A conversation turn: answer or call tools.
    #[default]
    Turn,
    /// Summarise the given messages (auto-summarise, merge summaries).
    Summarise,
    /// Classify the last assistant answer into discoveries, answering JSON
    /// `{"discoveries": [{"category", "description", "confidence"}]}`.
    DetectDiscoveries,
}

/// The shape asked of the model's text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseFormat {
    /// Free text.
    #[default]
    Text,
    /// One JSON object (`response_format: json_object`).
    JsonObject,
}

/// What the offline planner needs to know about the session, beyond the messages.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PlannerContext {
    /// The session id.
    pub session_id: Option<String>,
    /// The branch the turn runs on.
    pub branch: Option<String>,
    /// The current focus material (formula), which "it / its / this material" refers to.
    pub focus: Option<String>,
    /// The most recent materials, newest first (the session's `material_memory`).
    pub recent_materials: Vec<String>,
    /// The optimiser's space as `define_space` arguments (`variables` with names, units and
    /// levels; `objective`), when the session has one: results and points written with
    /// units are read against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimizer_space: Option<serde_json::Value>,
    /// The findings recorded on the branch, newest first (at most 20): what "what have we
    /// found?" lists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<String>,
}

/// One call to a chat model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChatRequest {
    /// The conversation, system prompt first.
    pub messages: Vec<ChatMessage>,
    /// The tools the model may call.
    pub tools: Vec<ToolSpec>,
    /// Sampling temperature; `None` uses the model's configured default.
    pub temperature: Option<f32>,
    /// Most tokens to generate.
    pub max_tokens: Option<u32>,
    /// Text or one JSON object.
    pub response_format: ResponseFormat,
    /// What the request is for.
    pub purpose: Purpose,
    /// Session facts for the offline planner (ignored by providers).
    pub context: PlannerContext,
}

impl ChatRequest {
    /// Returns a turn request over `messages`, with no tools.
    pub fn new(messages: Vec<ChatMessage>) -> Self {
        ChatRequest {
            messages,
            ..ChatRequest::default()
        }
    }

    /// Returns the request with these tools.
    pub fn with_tools(mut self, tools: Vec<ToolSpec>) -> Self {
        self.tools = tools;
        self
    }

    /// Returns the request with this planner context.
    pub fn with_context(mut self, context: PlannerContext) -> Self {
        self.context = context;
        self
    }

    /// Returns the request with this purpose.
    pub fn with_purpose(mut self, purpose: Purpose) -> Self {
        self.purpose = purpose;
        self
    }
}

/// Tokens spent by one call, as reported by the provider (estimated by the offline planner).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens in the prompt.
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub completion_tokens: u32,
}

impl Usage {
    /// Returns prompt plus completion tokens.
    pub fn total(&self) -> u32 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// A natural end of the answer.
    #[default]
    Stop,
    /// The model asked for tool calls.
    ToolCalls,
    /// `max_tokens` (or the context) ran out.
    Length,
    /// The provider filtered the content.
    ContentFilter,
    /// No reason given, or one Kiln does not know.
    Other,
}

/// The model's answer to one [`ChatRequest`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The text, if any.
    pub content: Option<String>,
    /// Tool calls asked for, in order (several per response are allowed).
    pub tool_calls: Vec<ToolCall>,
    /// Tokens spent.
    pub usage: Usage,
    /// Why the model stopped.
    pub finish_reason: FinishReason,
    /// Wall time of the call, retries and backoff included.
    pub latency: Duration,
    /// The model that answered (as the provider names it).
    pub model: String,
    /// HTTP attempts made (1 without retries; 0 for models that make no request).
    pub attempts: u32,
}

impl ChatResponse {
    /// Returns the assistant message to append to the conversation.
    pub fn to_message(&self) -> ChatMessage {
        ChatMessage::Assistant {
            content: self.content.clone(),
            tool_calls: self.tool_calls.clone(),
        }
    }
}

/// One event of a streamed answer.
///
/// A successful stream ends with exactly one [`StreamEvent::Done`] carrying the whole
/// response: the concatenated `TextDelta`s equal its `content`, and every tool call appears
/// once as a [`StreamEvent::ToolCall`] before it (possibly preceded by deltas).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum StreamEvent {
    /// More answer text.
    TextDelta(String),
    /// A fragment of the tool call at position `index` (arguments arrive in pieces).
    ToolCallDelta {
        /// Position of the call in the response.
        index: u32,
        /// The call id, on the first fragment.
        id: Option<String>,
        /// The tool name, on the first fragment.
        name: Option<String>,
        /// The next piece of the raw arguments text.
        arguments: String,
    },
    /// A tool call, complete.
    ToolCall(ToolCall),
    /// The end of the answer, with everything assembled.
    Done(ChatResponse),
}
