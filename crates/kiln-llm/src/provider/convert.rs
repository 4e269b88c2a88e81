//! Mapping between Kiln's chat types and the chat-completions wire types of async-openai.

use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls,
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestAssistantMessageContent,
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestSystemMessageContent, ChatCompletionRequestToolMessage,
    ChatCompletionRequestToolMessageContent, ChatCompletionRequestUserMessage,
    ChatCompletionRequestUserMessageContent, ChatCompletionStreamOptions, ChatCompletionTool,
    ChatCompletionTools, CompletionUsage, CreateChatCompletionRequest,
    CreateChatCompletionResponse, FinishReason as WireFinish, FunctionCall, FunctionObject,
    ResponseFormat as WireFormat,
};

use super::transport::{AttemptTimeout, CallRecord, INSUFFICIENT_QUOTA};
use crate::error::{Error, is_context_overflow};
use crate::types::{
    ChatMessage, ChatRequest, ChatResponse, FinishReason, ResponseFormat, ToolCall, Usage,
};

/// A tool's name as the provider is sent it. OpenAI's function names allow letters, digits,
/// `_` and `-` only, so an MCP server's namespaced tool (`units.convert`) goes as
/// `units__convert`; the registry finds a tool by either spelling (`Registry::get`).
pub fn wire_tool_name(name: &str) -> std::borrow::Cow<'_, str> {
    if name.contains('.') {
        std::borrow::Cow::Owned(name.replace('.', "__"))
    } else {
        std::borrow::Cow::Borrowed(name)
    }
}

/// Builds the wire request for `request` against `model`.
pub(crate) fn to_wire(
    request: &ChatRequest,
    model: &str,
    default_temperature: Option<f32>,
    stream: bool,
) -> CreateChatCompletionRequest {
    let tools: Vec<ChatCompletionTools> = request
        .tools
        .iter()
        .map(|tool| {
            ChatCompletionTools::Function(ChatCompletionTool {
                function: FunctionObject {
                    name: wire_tool_name(&tool.name).into_owned(),
                    description: Some(tool.description.clone()),
                    parameters: Some(tool.parameters.clone()),
                    strict: None,
                },
            })
        })
        .collect();
    CreateChatCompletionRequest {
        messages: request.messages.iter().map(message_to_wire).collect(),
        model: model.to_owned(),
        temperature: request.temperature.or(default_temperature),
        max_completion_tokens: request.max_tokens,
        tools: (!tools.is_empty()).then_some(tools),
        response_format: match request.response_format {
            ResponseFormat::Text => None,
            ResponseFormat::JsonObject => Some(WireFormat::JsonObject),
        },
        stream: stream.then_some(true),
        stream_options: stream.then_some(ChatCompletionStreamOptions {
            include_usage: Some(true),
            include_obfuscation: None,
        }),
        ..CreateChatCompletionRequest::default()
    }
}

fn message_to_wire(message: &ChatMessage) -> ChatCompletionRequestMessage {
    match message {
        ChatMessage::System { content } => {
            ChatCompletionRequestMessage::System(ChatCompletionRequestSystemMessage {
                content: ChatCompletionRequestSystemMessageContent::Text(content.clone()),
                name: None,
            })
        }
        ChatMessage::User { content } => {
            ChatCompletionRequestMessage::User(ChatCompletionRequestUserMessage {
                content: ChatCompletionRequestUserMessageContent::Text(content.clone()),
                name: None,
            })
        }
        ChatMessage::Assistant {
            content,
            tool_calls,
        } => {
            let calls: Vec<ChatCompletionMessageToolCalls> = tool_calls
                .iter()
                .map(|call| {
                    ChatCompletionMessageToolCalls::Function(ChatCompletionMessageToolCall {
                        id: call.id.clone(),
                        function: FunctionCall {
                            name: wire_tool_name(&call.name).into_owned(),
                            arguments: call.arguments.clone(),
                        },
                    })
                })
                .collect();
            ChatCompletionRequestMessage::Assistant(ChatCompletionRequestAssistantMessage {
                content: content
                    .clone()
                    .map(ChatCompletionRequestAssistantMessageContent::Text),
                tool_calls: (!calls.is_empty()).then_some(calls),
                ..ChatCompletionRequestAssistantMessage::default()
            })
        }
        ChatMessage::Tool {
            tool_call_id,
            content,
        } => ChatCompletionRequestMessage::Tool(ChatCompletionRequestToolMessage {
            content: ChatCompletionRequestToolMessageContent::Text(content.clone()),
            tool_call_id: tool_call_id.clone(),
        }),
    }
}

/// Converts a wire tool call; custom (free-text) tool calls keep their raw input.
pub(crate) fn tool_call_from_wire(call: ChatCompletionMessageToolCalls) -> ToolCall {
    match call {
        ChatCompletionMessageToolCalls::Function(call) => ToolCall {
            id: call.id,
            name: call.function.name,
            arguments: call.function.arguments,
        },
        ChatCompletionMessageToolCalls::Custom(call) => ToolCall {
            id: call.id,
            name: call.custom_tool.name,
            arguments: call.custom_tool.input,
        },
    }
}

pub(crate) fn usage_from_wire(usage: Option<&CompletionUsage>) -> Usage {
    usage.map_or_else(Usage::default, |usage| Usage {
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
    })
}

pub(crate) fn finish_from_wire(reason: Option<WireFinish>) -> Option<FinishReason> {
    reason.map(|reason| match reason {
        WireFinish::Stop => FinishReason::Stop,
        WireFinish::ToolCalls | WireFinish::FunctionCall => FinishReason::ToolCalls,
        WireFinish::Length => FinishReason::Length,
        WireFinish::ContentFilter => FinishReason::ContentFilter,
    })
}

/// Converts a whole (non-streamed) wire response; the first choice is the answer.
pub(crate) fn response_from_wire(
    wire: CreateChatCompletionResponse,
) -> Result<ChatResponse, Error> {
    let usage = usage_from_wire(wire.usage.as_ref());
    let choice = wire
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| Error::Malformed("the response has no choices".into()))?;
    let tool_calls: Vec<ToolCall> = choice
        .message
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .map(tool_call_from_wire)
        .collect();
    let finish_reason =
        finish_from_wire(choice.finish_reason).unwrap_or(if tool_calls.is_empty() {
            FinishReason::Other
        } else {
            FinishReason::ToolCalls
        });
    Ok(ChatResponse {
        content: choice.message.content.or(choice.message.refusal),
        tool_calls,
        usage,
        finish_reason,
        model: wire.model,
        ..ChatResponse::default()
    })
}

/// Classifies an async-openai error, using what the transport saw on the wire.
pub(crate) fn error_from_wire(error: OpenAIError, record: &CallRecord) -> Error {
    match error {
        OpenAIError::ApiError(api) => {
            let status = api.status_code.as_u16();
            let quota = [&api.api_error.r#type, &api.api_error.code]
                .iter()
                .any(|field| field.as_deref() == Some(INSUFFICIENT_QUOTA));
            if is_context_overflow(
                status,
                api.api_error.code.as_deref(),
                &api.api_error.message,
            ) {
                Error::ContextOverflow(api.api_error.message)
            } else if status == 429 && !quota {
                Error::RateLimited {
                    attempts: record.attempts,
                    retry_after: record.last_retry_after,
                    message: api.api_error.message,
                }
            } else {
                Error::Provider {
                    status,
                    message: api.api_error.message,
                }
            }
        }
        OpenAIError::JSONDeserialize(error, body) => match record.last_status {
            // An error status whose body is not OpenAI's error object (a proxy's HTML page).
            Some(429) => Error::RateLimited {
                attempts: record.attempts,
                retry_after: record.last_retry_after,
                message: truncate(&body),
            },
            Some(status) if is_context_overflow(status, None, &body) => {
                Error::ContextOverflow(truncate(&body))
            }
            Some(status) if !(200..300).contains(&status) => Error::Provider {
                status,
                message: truncate(&body),
            },
            _ => Error::Malformed(format!("{error}: {}", truncate(&body))),
        },
        OpenAIError::Reqwest(error) if error.is_timeout() => Error::Timeout(record.timeout),
        OpenAIError::Reqwest(error) => Error::Transport(error.to_string()),
        OpenAIError::StreamError(error) => Error::Transport(error.to_string()),
        OpenAIError::Boxed(error) => match error.downcast_ref::<AttemptTimeout>() {
            Some(AttemptTimeout(after)) => Error::Timeout(*after),
            None => Error::Transport(error.to_string()),
        },
        OpenAIError::InvalidArgument(message) => Error::Config(message),
        other => Error::Transport(other.to_string()),
    }
}

fn truncate(text: &str) -> String {
    const LIMIT: usize = 500;
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ToolSpec;
    use serde_json::json;

    #[test]
    fn request_maps_roles_tools_and_options() {
        let call = ToolCall::new("c1", "materials_analyzer", &json!({"formula": "LiFePO4"}));
        let request = ChatRequest {
            messages: vec![
                ChatMessage::system("sys"),
                ChatMessage::user("Analyse LiFePO4"),
                ChatMessage::assistant_tool_calls(None, vec![call]),
                ChatMessage::tool("c1", "{\"text\":\"ok\"}"),
            ],
            tools: vec![ToolSpec {
                name: "materials_analyzer".into(),
                description: "chemistry".into(),
                parameters: json!({"type": "object"}),
            }],
            max_tokens: Some(64),
            response_format: ResponseFormat::JsonObject,
            ..ChatRequest::default()
        };
        let wire = to_wire(&request, "m", Some(0.2), false);
        let value = serde_json::to_value(&wire).unwrap();
        assert_eq!(value["model"], "m");
        assert_eq!(
            value["temperature"].as_f64().map(|t| (t * 10.0).round()),
            Some(2.0)
        );
        assert_eq!(value["max_completion_tokens"], 64);
        assert_eq!(value["response_format"]["type"], "json_object");
        let roles: Vec<_> = value["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].clone())
            .collect();
        assert_eq!(
            roles,
            vec![
                json!("system"),
                json!("user"),
                json!("assistant"),
                json!("tool")
            ]
        );
        assert_eq!(
            value["messages"][2]["tool_calls"][0]["function"]["name"],
            "materials_analyzer"
        );
        assert_eq!(value["messages"][2]["tool_calls"][0]["type"], "function");
        assert_eq!(value["messages"][3]["tool_call_id"], "c1");
        assert_eq!(value["tools"][0]["type"], "function");
        assert_eq!(
            value["tools"][0]["function"]["parameters"],
            json!({"type": "object"})
        );
        assert!(value.get("stream").is_none());

        // A namespaced MCP tool is sent in the letters OpenAI accepts, in specs and history.
        let mut mcp = request.clone();
        mcp.tools[0].name = "units.convert".into();
        mcp.messages[2] = ChatMessage::assistant_tool_calls(
            None,
            vec![ToolCall::new("c1", "units.convert", &json!({}))],
        );
        let value = serde_json::to_value(to_wire(&mcp, "m", None, false)).unwrap();
        assert_eq!(value["tools"][0]["function"]["name"], "units__convert");
        assert_eq!(
            value["messages"][2]["tool_calls"][0]["function"]["name"],
            "units__convert"
        );

        let streamed = serde_json::to_value(to_wire(&request, "m", None, true)).unwrap();
        assert_eq!(streamed["stream"], true);
        assert_eq!(streamed["stream_options"]["include_usage"], true);
        assert!(streamed.get("temperature").is_none());
    }

    #[test]
    fn response_without_choices_is_malformed() {
        let wire: CreateChatCompletionResponse = serde_json::from_value(json!({
            "id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": []
        }))
        .unwrap();
        assert!(matches!(response_from_wire(wire), Err(Error::Malformed(_))));
    }

    #[test]
    fn long_bodies_are_truncated_on_a_char_boundary() {
        let body = "é".repeat(600);
        let cut = truncate(&body);
        assert_eq!(cut.chars().count(), 501);
    }
}
