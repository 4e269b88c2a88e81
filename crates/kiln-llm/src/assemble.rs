//! Assembly of a streamed answer: text deltas and tool-call fragments into one `ChatResponse`.

use std::collections::BTreeMap;

use crate::types::{ChatResponse, FinishReason, ToolCall, Usage};

/// Collects the pieces of a streamed answer in arrival order.
///
/// Tool-call fragments are keyed by their `index`: the first fragment of a call carries its id
/// and name, later ones append to the raw arguments text. Arguments are never parsed here: a
/// model that streams broken JSON gets its broken JSON back, and the agent decides.
#[derive(Debug, Default)]
pub struct StreamAssembler {
    text: String,
    saw_text: bool,
    calls: BTreeMap<u32, PartialCall>,
    usage: Option<Usage>,
    finish_reason: Option<FinishReason>,
}

#[derive(Debug, Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

impl StreamAssembler {
    /// Returns an empty assembler.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends answer text.
    pub fn push_text(&mut self, delta: &str) {
        self.saw_text = true;
        self.text.push_str(delta);
    }

    /// Adds a fragment of the tool call at `index`.
    pub fn push_tool_fragment(
        &mut self,
        index: u32,
        id: Option<&str>,
        name: Option<&str>,
        arguments: &str,
    ) {
        let call = self.calls.entry(index).or_default();
        if let Some(id) = id.filter(|id| !id.is_empty()) {
            call.id = id.to_owned();
        }
        if let Some(name) = name.filter(|name| !name.is_empty()) {
            // Some servers repeat the name on every fragment; others send it in pieces.
            if call.name != name {
                call.name.push_str(name);
            }
        }
        call.arguments.push_str(arguments);
    }

    /// Records the usage reported by the final chunk.
    pub fn set_usage(&mut self, usage: Usage) {
        self.usage = Some(usage);
    }

    /// Records why the model stopped.
    pub fn set_finish_reason(&mut self, reason: FinishReason) {
        self.finish_reason = Some(reason);
    }

    /// Returns the tool calls assembled so far, in index order; calls without an id get one
    /// derived from their index so tool results can still be linked.
    pub fn tool_calls(&self) -> Vec<ToolCall> {
        self.calls
            .iter()
            .map(|(index, call)| ToolCall {
                id: if call.id.is_empty() {
                    format!("call_{index}")
                } else {
                    call.id.clone()
                },
                name: call.name.clone(),
                arguments: call.arguments.clone(),
            })
            .collect()
    }

    /// Returns the assembled response (latency, model and attempts are the caller's to fill).
    pub fn finish(self) -> ChatResponse {
        let tool_calls = self.tool_calls();
        let finish_reason = self.finish_reason.unwrap_or(if tool_calls.is_empty() {
            FinishReason::Stop
        } else {
            FinishReason::ToolCalls
        });
        ChatResponse {
            content: self.saw_text.then_some(self.text),
            tool_calls,
            usage: self.usage.unwrap_or_default(),
            finish_reason,
            ..ChatResponse::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaved_fragments_assemble_by_index() {
        let mut assembler = StreamAssembler::new();
        assembler.push_text("Let me ");
        assembler.push_tool_fragment(0, Some("a"), Some("materials_analyzer"), "");
        assembler.push_tool_fragment(1, Some("b"), Some("notebook"), "{\"act");
        assembler.push_tool_fragment(0, None, None, "{\"formula\":");
        assembler.push_text("check.");
        assembler.push_tool_fragment(1, None, None, "ion\":\"log\"}");
        assembler.push_tool_fragment(0, None, None, "\"LiFePO4\"}");
        let response = assembler.finish();
        assert_eq!(response.content.as_deref(), Some("Let me check."));
        assert_eq!(response.finish_reason, FinishReason::ToolCalls);
        assert_eq!(
            response.tool_calls,
            vec![
                ToolCall {
                    id: "a".into(),
                    name: "materials_analyzer".into(),
                    arguments: "{\"formula\":\"LiFePO4\"}".into()
                },
                ToolCall {
                    id: "b".into(),
                    name: "notebook".into(),
                    arguments: "{\"action\":\"log\"}".into()
                },
            ]
        );
    }

    #[test]
    fn repeated_name_is_not_doubled_and_missing_id_is_derived() {
        let mut assembler = StreamAssembler::new();
        assembler.push_tool_fragment(2, None, Some("notebook"), "{");
        assembler.push_tool_fragment(2, None, Some("notebook"), "}");
        let calls = assembler.tool_calls();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].name, "notebook");
        assert_eq!(calls[0].id, "call_2");
        assert_eq!(calls[0].arguments, "{}");
    }

    #[test]
    fn empty_stream_has_no_content() {
        let response = StreamAssembler::new().finish();
        assert_eq!(response.content, None);
        assert_eq!(response.finish_reason, FinishReason::Stop);
    }
}
