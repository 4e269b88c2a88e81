//! A scripted OpenAI-compatible server on loopback: queued JSON or SSE replies, recorded requests.

// Each test binary that includes this module uses a different part of it.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use futures::StreamExt;
use kiln_llm::ProviderConfig;
use serde_json::{Value, json};

/// One queued reply.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A JSON body with a status and extra headers.
    Json {
        status: u16,
        body: Value,
        headers: Vec<(&'static str, String)>,
    },
    /// An SSE body: each item is one `data:` payload; `[DONE]` is appended.
    Sse(Vec<Value>),
    /// An SSE body that sends these payloads, then stalls forever without `[DONE]`.
    SseStall(Vec<Value>),
    /// Waits, then replies.
    Delayed(Duration, Box<Reply>),
}

/// A request the server received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub body: Value,
    pub authorization: Option<String>,
    /// When it arrived.
    pub at: Instant,
}

#[derive(Default)]
struct Script {
    replies: Mutex<VecDeque<Reply>>,
    seen: Mutex<Vec<Seen>>,
    /// What `GET /v1/models` lists; `None` answers 404.
    models: Mutex<Option<Vec<String>>>,
}

/// The running server.
pub struct MockServer {
    pub addr: SocketAddr,
    script: Arc<Script>,
}

impl MockServer {
    pub async fn start(replies: Vec<Reply>) -> MockServer {
        let script = Arc::new(Script {
            replies: Mutex::new(replies.into()),
            ..Script::default()
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(handle))
            .route("/v1/models", get(models))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        MockServer { addr, script }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// A provider configuration pointing here, with fast retries.
    pub fn config(&self) -> ProviderConfig {
        ProviderConfig {
            api_key: Some(kiln_llm::ApiKey::new("sk-test-key").unwrap()),
            timeout_secs: 5,
            max_retries: 3,
            retry_base_ms: 5,
            retry_max_ms: 2_000,
            ..ProviderConfig::new(self.base_url(), "test-model")
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.script.seen.lock().unwrap().clone()
    }

    /// Makes `GET /v1/models` list these model ids.
    pub fn set_models(&self, ids: &[&str]) {
        *self.script.models.lock().unwrap() = Some(ids.iter().map(|s| s.to_string()).collect());
    }
}

async fn models(State(script): State<Arc<Script>>) -> Response {
    let models = script.models.lock().unwrap().clone();
    match models {
        Some(ids) => {
            let data: Vec<Value> = ids
                .iter()
                .map(|id| json!({"id": id, "object": "model", "created": 1, "owned_by": "test"}))
                .collect();
            json_response(200, &json!({"object": "list", "data": data}), &[])
        }
        None => json_response(404, &json!({"error": {"message": "no such route"}}), &[]),
    }
}

async fn handle(State(script): State<Arc<Script>>, headers: HeaderMap, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    script.seen.lock().unwrap().push(Seen {
        body,
        authorization,
        at: Instant::now(),
    });
    let reply = script.replies.lock().unwrap().pop_front();
    match reply {
        Some(reply) => render(reply).await,
        None => json_response(500, &json!({"error": {"message": "script exhausted"}}), &[]),
    }
}

async fn render(mut reply: Reply) -> Response {
    loop {
        match reply {
            Reply::Delayed(wait, inner) => {
                tokio::time::sleep(wait).await;
                reply = *inner;
            }
            Reply::Json {
                status,
                body,
                headers,
            } => return json_response(status, &body, &headers),
            Reply::SseStall(events) => {
                let chunks: Vec<Result<Bytes, Infallible>> = events
                    .iter()
                    .map(|event| Ok(Bytes::from(format!("data: {event}\n\n"))))
                    .collect();
                let stalled = futures::stream::iter(chunks).chain(futures::stream::pending());
                return Response::builder()
                    .status(StatusCode::OK)
                    .header(header::CONTENT_TYPE, "text/event-stream")
                    .body(Body::from_stream(stalled))
                    .unwrap();
            }
            Reply::Sse(events) => {
                let mut chunks: Vec<Result<Bytes, Infallible>> = events
                    .iter()
                    .map(|event| Ok(Bytes::from(format!("data: {event}\n\n"))))
                    .collect();
                chunks.push(Ok(Bytes::from_static(b"data: [DONE]\n\n")));
                return Response::builder()
                    .status(StatusCode::OK)
                    .header(header::CONTENT_TYPE, "text/event-stream")
                    .body(Body::from_stream(futures::stream::iter(chunks)))
                    .unwrap();
            }
        }
    }
}

fn json_response(status: u16, body: &Value, headers: &[(&'static str, String)]) -> Response {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .header(header::CONTENT_TYPE, "application/json");
    for (name, value) in headers {
        builder = builder.header(*name, value);
    }
    builder.body(Body::from(body.to_string())).unwrap()
}

/// A 200 chat completion with this message and usage.
pub fn completion(message: Value, finish: &str, prompt: u32, completion: u32) -> Reply {
    Reply::Json {
        status: 200,
        body: json!({
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "test-model",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
        }),
        headers: Vec::new(),
    }
}

/// A 200 answer with text only.
pub fn text_answer(text: &str) -> Reply {
    completion(json!({"role": "assistant", "content": text}), "stop", 10, 5)
}

/// A 200 answer calling these `(id, name, raw arguments)` tools.
pub fn tool_answer(calls: &[(&str, &str, &str)]) -> Reply {
    let calls: Vec<Value> = calls
        .iter()
        .map(|(id, name, arguments)| {
            json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}})
        })
        .collect();
    completion(
        json!({"role": "assistant", "content": null, "tool_calls": calls}),
        "tool_calls",
        20,
        7,
    )
}

/// An error reply.
pub fn error_reply(status: u16, message: &str, headers: Vec<(&'static str, String)>) -> Reply {
    Reply::Json {
        status,
        body: json!({"error": {"message": message, "type": "test"}}),
        headers,
    }
}

/// One SSE chunk with this delta.
pub fn chunk(delta: Value, finish: Option<&str>) -> Value {
    json!({
        "id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1, "model": "test-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
    })
}

/// The final usage chunk (`stream_options.include_usage`).
pub fn usage_chunk(prompt: u32, completion: u32) -> Value {
    json!({
        "id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1, "model": "test-model",
        "choices": [],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    })
}
