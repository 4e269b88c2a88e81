//! The scripted model: answers from a queue and records every request, for agent-loop tests.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::model::{ChatFuture, ChatModel};
use crate::types::{ChatRequest, ChatResponse, FinishReason, ToolCall};

/// A model that returns queued answers in order and remembers what it was asked.
///
/// Cloning shares the queue and the log, so a test keeps one handle while the agent owns
/// another. An empty queue answers [`Error::ScriptExhausted`]: a test that runs one step too
/// many fails loudly instead of hanging.
#[derive(Debug, Clone, Default)]
pub struct ScriptedModel {
    inner: Arc<Mutex<Script>>,
}

#[derive(Debug, Default)]
struct Script {
    queue: VecDeque<Result<ChatResponse>>,
    requests: Vec<ChatRequest>,
}

impl ScriptedModel {
    /// Returns a model that will answer `responses` in order.
    pub fn new(responses: impl IntoIterator<Item = ChatResponse>) -> Self {
        let model = Self::default();
        for response in responses {
            model.push(response);
        }
        model
    }

    /// Queues one more answer.
    pub fn push(&self, response: ChatResponse) {
        self.lock().queue.push_back(Ok(response));
    }

    /// Queues a failure (for testing how the agent handles infrastructure errors).
    pub fn push_error(&self, error: Error) {
        self.lock().queue.push_back(Err(error));
    }

    /// Returns every request received so far, in order.
    pub fn requests(&self) -> Vec<ChatRequest> {
        self.lock().requests.clone()
    }

    /// Returns how many answers are still queued.
    pub fn remaining(&self) -> usize {
        self.lock().queue.len()
    }

    /// Returns a final text answer, ready to queue.
    pub fn text(content: impl Into<String>) -> ChatResponse {
        ChatResponse {
            content: Some(content.into()),
            finish_reason: FinishReason::Stop,
            ..ChatResponse::default()
        }
    }

    /// Returns an answer asking for these tool calls, ready to queue.
    pub fn tool_calls(calls: Vec<ToolCall>) -> ChatResponse {
        ChatResponse {
            tool_calls: calls,
            finish_reason: FinishReason::ToolCalls,
            ..ChatResponse::default()
        }
    }

    fn lock(&self) -> MutexGuard<'_, Script> {
        // A panic while holding the lock cannot leave the queue half-updated: recover it.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ChatModel for ScriptedModel {
    fn name(&self) -> &str {
        "scripted"
    }

    fn complete(&self, request: ChatRequest) -> ChatFuture<'_> {
        let answer = {
            let mut script = self.lock();
            script.requests.push(request);
            let index = script.requests.len() - 1;
            script
                .queue
                .pop_front()
                .unwrap_or(Err(Error::ScriptExhausted(index)))
        };
        Box::pin(async move {
            answer.map(|mut response| {
                if response.model.is_empty() {
                    response.model = "scripted".into();
                }
                response
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ChatMessage;

    #[tokio::test]
    async fn answers_in_order_records_requests_then_exhausts() {
        let call = ToolCall::new(
            "c1",
            "session_search",
            &serde_json::json!({"query": "olivine"}),
        );
        let model = ScriptedModel::new([
            ScriptedModel::tool_calls(vec![call.clone()]),
            ScriptedModel::text("done"),
        ]);
        let handle = model.clone();
        let first = model
            .complete(ChatRequest::new(vec![ChatMessage::user("a")]))
            .await
            .unwrap();
        assert_eq!(first.tool_calls, vec![call]);
        assert_eq!(first.model, "scripted");
        let second = model
            .complete(ChatRequest::new(vec![ChatMessage::user("b")]))
            .await
            .unwrap();
        assert_eq!(second.content.as_deref(), Some("done"));
        assert_eq!(handle.remaining(), 0);
        let third = model.complete(ChatRequest::default()).await;
        assert!(matches!(third, Err(Error::ScriptExhausted(2))));
        let seen: Vec<_> = handle
            .requests()
            .iter()
            .map(|request| {
                request
                    .messages
                    .first()
                    .and_then(|m| m.text())
                    .map(str::to_owned)
            })
            .collect();
        assert_eq!(seen, vec![Some("a".to_owned()), Some("b".to_owned()), None]);
    }

    #[tokio::test]
    async fn queued_errors_are_returned() {
        let model = ScriptedModel::default();
        model.push_error(Error::Timeout(std::time::Duration::from_secs(3)));
        assert!(matches!(
            model.complete(ChatRequest::default()).await,
            Err(Error::Timeout(_))
        ));
    }
}
