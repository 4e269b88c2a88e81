//! The OpenAI-compatible provider: any server speaking `/v1/chat/completions` (OpenAI, Ollama,
//! vLLM, llama.cpp server), through async-openai with our own retrying transport.

mod config;
mod convert;
mod transport;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::ChatCompletionResponseStream;
use futures::stream::{self, StreamExt};

pub use config::{API_KEY_ENV, ApiKey, OPENAI_BASE_URL, ProviderConfig};
pub use convert::wire_tool_name;

use crate::assemble::StreamAssembler;
use crate::error::{Error, Result};
use crate::model::{ChatFuture, ChatModel, ChatStream};
use crate::types::{ChatRequest, ChatResponse, StreamEvent};
use convert::{error_from_wire, finish_from_wire, response_from_wire, to_wire, usage_from_wire};
use transport::{CALL, CallRecord, RetryPolicy, RetryTransport};

/// A chat model served by an OpenAI-compatible HTTP API.
#[derive(Clone)]
pub struct OpenAiProvider {
    client: Client<OpenAIConfig>,
    model: String,
    temperature: Option<f32>,
    timeout: Duration,
}

impl std::fmt::Debug for OpenAiProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The client's config holds the key: never print it.
        f.debug_struct("OpenAiProvider")
            .field(
                "base_url",
                &async_openai::config::Config::api_base(self.client.config()),
            )
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl OpenAiProvider {
    /// Builds a provider from its configuration; fails on an unusable configuration.
    pub fn new(config: &ProviderConfig) -> Result<Self> {
        config.validate()?;
        let timeout = config.timeout();
        let http = openai_reqwest::Client::builder()
            .connect_timeout(timeout)
            // A little longer than our own stream idle timeout, so a stalled stream reports a
            // typed `Timeout` from there rather than an opaque body-decoding error.
            .read_timeout(timeout + Duration::from_secs(1))
            .build()
            .map_err(|error| Error::Config(format!("could not build the HTTP client: {error}")))?;
        let policy = RetryPolicy {
            max_retries: config.max_retries,
            base: Duration::from_millis(config.retry_base_ms),
            max: Duration::from_millis(config.retry_max_ms.max(config.retry_base_ms)),
        };
        let api_key = config.resolved_api_key();
        // Set every field explicitly so stray OPENAI_* variables cannot change the request
        // (or make header construction fail inside async-openai).
        let openai = OpenAIConfig::new()
            .with_api_base(config.resolved_base_url()?)
            .with_api_key(api_key.as_ref().map_or("", ApiKey::expose))
            .with_org_id("")
            .with_project_id("");
        let client = Client::with_config(openai)
            .with_http_service(RetryTransport::new(http, policy, timeout));
        Ok(OpenAiProvider {
            client,
            model: config.model.trim().to_owned(),
            temperature: config.temperature,
            timeout,
        })
    }

    async fn complete_inner(&self, request: ChatRequest) -> Result<ChatResponse> {
        let record = Arc::new(Mutex::new(CallRecord::default()));
        let started = Instant::now();
        let wire = to_wire(&request, &self.model, self.temperature, false);
        let result = CALL
            .scope(record.clone(), self.client.chat().create(wire))
            .await;
        let record = take(&record);
        let mut response = result
            .map_err(|error| error_from_wire(error, &record))
            .and_then(response_from_wire)?;
        response.latency = started.elapsed();
        response.attempts = record.attempts;
        if response.model.is_empty() {
            response.model.clone_from(&self.model);
        }
        tracing::debug!(
            model = %response.model,
            prompt_tokens = response.usage.prompt_tokens,
            completion_tokens = response.usage.completion_tokens,
            latency_ms = response.latency.as_millis() as u64,
            attempts = response.attempts,
            "model call finished"
        );
        Ok(response)
    }

    async fn open_stream(
        &self,
        request: ChatRequest,
    ) -> Result<(ChatCompletionResponseStream, CallRecord)> {
        let record = Arc::new(Mutex::new(CallRecord::default()));
        let wire = to_wire(&request, &self.model, self.temperature, true);
        let result = CALL
            .scope(record.clone(), self.client.chat().create_stream(wire))
            .await;
        let record = take(&record);
        match result {
            Ok(stream) => Ok((stream, record)),
            Err(error) => Err(error_from_wire(error, &record)),
        }
    }
}

fn take(record: &Arc<Mutex<CallRecord>>) -> CallRecord {
    std::mem::take(
        &mut *record
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
    )
}

impl ChatModel for OpenAiProvider {
    fn name(&self) -> &str {
        &self.model
    }

    fn complete(&self, request: ChatRequest) -> ChatFuture<'_> {
        Box::pin(self.complete_inner(request))
    }

    fn complete_stream(&self, request: ChatRequest) -> ChatStream<'_> {
        let started = Instant::now();
        stream::once(async move {
            match self.open_stream(request).await {
                Ok((wire, record)) => {
                    let state = StreamState {
                        wire,
                        assembler: StreamAssembler::new(),
                        pending: VecDeque::new(),
                        done: false,
                        timeout: self.timeout,
                        started,
                        attempts: record.attempts,
                        model: self.model.clone(),
                    };
                    stream::unfold(state, next_event).boxed()
                }
                Err(error) => stream::iter([Err(error)]).boxed(),
            }
        })
        .flatten()
        .boxed()
    }
}

struct StreamState {
    wire: ChatCompletionResponseStream,
    assembler: StreamAssembler,
    pending: VecDeque<StreamEvent>,
    done: bool,
    timeout: Duration,
    started: Instant,
    attempts: u32,
    model: String,
}

async fn next_event(mut state: StreamState) -> Option<(Result<StreamEvent>, StreamState)> {
    loop {
        if let Some(event) = state.pending.pop_front() {
            return Some((Ok(event), state));
        }
        if state.done {
            return None;
        }
        let chunk = match tokio::time::timeout(state.timeout, state.wire.next()).await {
            Err(_) => {
                state.done = true;
                return Some((Err(Error::Timeout(state.timeout)), state));
            }
            Ok(None) => {
                finish(&mut state);
                continue;
            }
            Ok(Some(Err(error))) => {
                state.done = true;
                return Some((Err(stream_error(error, state.timeout)), state));
            }
            Ok(Some(Ok(chunk))) => chunk,
        };
        if !chunk.model.is_empty() {
            state.model = chunk.model;
        }
        if chunk.usage.is_some() {
            state
                .assembler
                .set_usage(usage_from_wire(chunk.usage.as_ref()));
        }
        // Kiln never asks for n > 1: the first choice is the answer.
        for choice in chunk.choices.into_iter().filter(|choice| choice.index == 0) {
            if let Some(text) = choice.delta.content.filter(|text| !text.is_empty()) {
                state.assembler.push_text(&text);
                state.pending.push_back(StreamEvent::TextDelta(text));
            }
            for fragment in choice.delta.tool_calls.unwrap_or_default() {
                let (name, arguments) = fragment
                    .function
                    .map(|function| (function.name, function.arguments.unwrap_or_default()))
                    .unwrap_or_default();
                state.assembler.push_tool_fragment(
                    fragment.index,
                    fragment.id.as_deref(),
                    name.as_deref(),
                    &arguments,
                );
                state.pending.push_back(StreamEvent::ToolCallDelta {
                    index: fragment.index,
                    id: fragment.id,
                    name,
                    arguments,
                });
            }
            if let Some(reason) = finish_from_wire(choice.finish_reason) {
                state.assembler.set_finish_reason(reason);
            }
        }
    }
}

fn finish(state: &mut StreamState) {
    let assembler = std::mem::take(&mut state.assembler);
    let mut response = assembler.finish();
    response.latency = state.started.elapsed();
    response.attempts = state.attempts;
    response.model = std::mem::take(&mut state.model);
    state.pending.extend(
        response
            .tool_calls
            .iter()
            .cloned()
            .map(StreamEvent::ToolCall),
    );
    state.pending.push_back(StreamEvent::Done(response));
    state.done = true;
}

fn stream_error(error: OpenAIError, timeout: Duration) -> Error {
    match error {
        OpenAIError::JSONDeserialize(error, body) => {
            Error::Malformed(format!("unreadable stream chunk ({error}): {body}"))
        }
        OpenAIError::Reqwest(error) if error.is_timeout() => Error::Timeout(timeout),
        other => Error::Transport(other.to_string()),
    }
}
