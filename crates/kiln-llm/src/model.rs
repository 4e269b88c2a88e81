//! The `ChatModel` trait every model implements, and helpers for streams of answers.

use futures::future::BoxFuture;
use futures::stream::{self, BoxStream, StreamExt};

use crate::error::{Error, Result};
use crate::types::{ChatRequest, ChatResponse, StreamEvent};

/// The future returned by [`ChatModel::complete`].
pub type ChatFuture<'a> = BoxFuture<'a, Result<ChatResponse>>;

/// The stream returned by [`ChatModel::complete_stream`].
pub type ChatStream<'a> = BoxStream<'a, Result<StreamEvent>>;

/// A chat model: the OpenAI-compatible provider, the offline planner or the scripted model.
///
/// Object safe, so the agent holds an `Arc<dyn ChatModel>`. The methods return boxed futures
/// and streams rather than using `async fn` (not object safe) or `async-trait` (one more
/// proc-macro dependency for the same boxing); implementors write `Box::pin(async move { .. })`.
/// The futures are `Send`, so a turn can run on any runtime worker or in a spawned task.
pub trait ChatModel: Send + Sync {
    /// Returns the model's name as recorded on nodes (`gpt-4o-mini`, `offline-planner`).
    fn name(&self) -> &str;

    /// Answers one request.
    fn complete(&self, request: ChatRequest) -> ChatFuture<'_>;

    /// Answers one request as a stream of events ending in [`StreamEvent::Done`].
    ///
    /// The default calls [`ChatModel::complete`] and emits the whole text once, then each
    /// tool call, then `Done`.
    fn complete_stream(&self, request: ChatRequest) -> ChatStream<'_> {
        stream::once(self.complete(request))
            .flat_map(|result| match result {
                Ok(response) => stream::iter(events_of(response).into_iter().map(Ok)).boxed(),
                Err(error) => stream::iter([Err(error)]).boxed(),
            })
            .boxed()
    }
}

/// Returns the events a non-streaming model emits for a whole response.
pub fn events_of(response: ChatResponse) -> Vec<StreamEvent> {
    let mut events = Vec::with_capacity(response.tool_calls.len() + 2);
    if let Some(text) = response.content.as_ref().filter(|text| !text.is_empty()) {
        events.push(StreamEvent::TextDelta(text.clone()));
    }
    events.extend(
        response
            .tool_calls
            .iter()
            .cloned()
            .map(StreamEvent::ToolCall),
    );
    events.push(StreamEvent::Done(response));
    events
}

/// Drains a stream and returns the response carried by its `Done` event.
///
/// A stream that ends without `Done` (the provider hung up) is [`Error::Malformed`].
pub async fn collect_stream(mut stream: ChatStream<'_>) -> Result<ChatResponse> {
    while let Some(event) = stream.next().await {
        if let StreamEvent::Done(response) = event? {
            return Ok(response);
        }
    }
    Err(Error::Malformed(
        "the stream ended before the answer was complete".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{FinishReason, ToolCall};

    struct Fixed(ChatResponse);

    impl ChatModel for Fixed {
        fn name(&self) -> &str {
            "fixed"
        }
        fn complete(&self, _request: ChatRequest) -> ChatFuture<'_> {
            let response = self.0.clone();
            Box::pin(async move { Ok(response) })
        }
    }

    #[tokio::test]
    async fn default_stream_emits_text_calls_then_done() {
        let call = ToolCall::new("c1", "notebook", &serde_json::json!({"action": "log"}));
        let response = ChatResponse {
            content: Some("hello".into()),
            tool_calls: vec![call.clone()],
            finish_reason: FinishReason::ToolCalls,
            ..ChatResponse::default()
        };
        let model: Box<dyn ChatModel> = Box::new(Fixed(response.clone()));
        let events: Vec<_> = model
            .complete_stream(ChatRequest::default())
            .collect()
            .await;
        let events: Vec<StreamEvent> = events.into_iter().collect::<Result<_>>().unwrap();
        assert_eq!(
            events,
            vec![
                StreamEvent::TextDelta("hello".into()),
                StreamEvent::ToolCall(call),
                StreamEvent::Done(response.clone())
            ]
        );
        let collected = collect_stream(model.complete_stream(ChatRequest::default())).await;
        assert_eq!(collected.unwrap(), response);
    }

    #[tokio::test]
    async fn collect_without_done_is_malformed() {
        let stream = stream::iter([Ok(StreamEvent::TextDelta("partial".into()))]).boxed();
        assert!(matches!(
            collect_stream(stream).await,
            Err(Error::Malformed(_))
        ));
    }
}
