//! The OpenAI-compatible provider driven through the real async-openai client against a
//! scripted server on loopback: tool calls, parallel calls, streaming, retries, errors.

#[path = "support/server.rs"]
mod server;

use std::time::{Duration, Instant};

use futures::StreamExt;
use kiln_llm::{
    ChatMessage, ChatModel, ChatRequest, Error, FinishReason, OpenAiProvider, ResponseFormat,
    StreamEvent, ToolCall, ToolSpec, Usage, collect_stream,
};
use serde_json::json;
use server::{MockServer, Reply, chunk, error_reply, text_answer, tool_answer, usage_chunk};

fn analyzer_tool() -> ToolSpec {
    ToolSpec {
        name: "materials_analyzer".into(),
        description: "Analyses a chemical formula".into(),
        parameters: json!({
            "type": "object",
            "properties": {"action": {"type": "string"}, "formula": {"type": "string"}},
            "required": ["action"]
        }),
    }
}

fn request(text: &str) -> ChatRequest {
    ChatRequest::new(vec![
        ChatMessage::system("You are Kiln."),
        ChatMessage::user(text),
    ])
    .with_tools(vec![analyzer_tool()])
}

#[tokio::test]
async fn tool_call_then_final_answer() {
    let server = MockServer::start(vec![
        tool_answer(&[(
            "call_1",
            "materials_analyzer",
            r#"{"action":"analyze","formula":"LiFePO4"}"#,
        )]),
        text_answer("LiFePO4 has a molar mass of 157.76 g/mol."),
    ])
    .await;
    let provider = OpenAiProvider::new(&server.config()).unwrap();

    let first = provider.complete(request("Analyse LiFePO4")).await.unwrap();
    assert_eq!(first.finish_reason, FinishReason::ToolCalls);
    assert_eq!(first.content, None);
    assert_eq!(
        first.tool_calls,
        vec![ToolCall {
            id: "call_1".into(),
            name: "materials_analyzer".into(),
            arguments: r#"{"action":"analyze","formula":"LiFePO4"}"#.into(),
        }]
    );
    assert_eq!(
        first.usage,
        Usage {
            prompt_tokens: 20,
            completion_tokens: 7
        }
    );
    assert_eq!(first.attempts, 1);
    assert_eq!(first.model, "test-model");

    let mut follow_up = request("Analyse LiFePO4");
    follow_up.messages.push(first.to_message());
    follow_up.messages.push(ChatMessage::tool(
        "call_1",
        r#"{"text":"molar mass 157.76 g/mol"}"#,
    ));
    let second = provider.complete(follow_up).await.unwrap();
    assert_eq!(
        second.content.as_deref(),
        Some("LiFePO4 has a molar mass of 157.76 g/mol.")
    );
    assert_eq!(second.finish_reason, FinishReason::Stop);

    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer sk-test-key"));
    assert_eq!(seen[0].body["model"], "test-model");
    assert_eq!(
        seen[0].body["tools"][0]["function"]["name"],
        "materials_analyzer"
    );
    let messages = &seen[1].body["messages"];
    assert_eq!(messages[2]["role"], "assistant");
    assert_eq!(messages[2]["tool_calls"][0]["id"], "call_1");
    assert_eq!(messages[3]["role"], "tool");
    assert_eq!(messages[3]["tool_call_id"], "call_1");
}

#[tokio::test]
async fn two_parallel_tool_calls_in_one_response() {
    let server = MockServer::start(vec![tool_answer(&[
        (
            "a",
            "materials_analyzer",
            r#"{"action":"analyze","formula":"LiFePO4"}"#,
        ),
        (
            "b",
            "materials_analyzer",
            r#"{"action":"analyze","formula":"LiCoO2"}"#,
        ),
    ])])
    .await;
    let provider = OpenAiProvider::new(&server.config()).unwrap();
    let response = provider
        .complete(request("Compare LiFePO4 and LiCoO2"))
        .await
        .unwrap();
    let ids: Vec<_> = response
        .tool_calls
        .iter()
        .map(|call| call.id.as_str())
        .collect();
    assert_eq!(ids, ["a", "b"]);
    let formulas: Vec<_> = response
        .tool_calls
        .iter()
        .map(|call| {
            call.parse_arguments().unwrap()["formula"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(formulas, ["LiFePO4", "LiCoO2"]);
}

#[tokio::test]
async fn streamed_text_and_tool_call_deltas_are_assembled() {
    let server = MockServer::start(vec![Reply::Sse(vec![
        chunk(json!({"role": "assistant", "content": ""}), None),
        chunk(json!({"content": "Checking "}), None),
        chunk(json!({"content": "both."}), None),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "s1", "type": "function",
                "function": {"name": "materials_analyzer", "arguments": ""}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"action\":\"anal"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 1, "id": "s2", "type": "function",
                "function": {"name": "notebook", "arguments": "{\"action\":"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "yze\"}"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 1, "function": {"arguments": "\"log\"}"}}]}),
            None,
        ),
        chunk(json!({}), Some("tool_calls")),
        usage_chunk(30, 12),
    ])])
    .await;
    let provider = OpenAiProvider::new(&server.config()).unwrap();
    let events: Vec<StreamEvent> = provider
        .complete_stream(request("go"))
        .map(|event| event.unwrap())
        .collect()
        .await;

    let text: String = events
        .iter()
        .filter_map(|event| match event {
            StreamEvent::TextDelta(text) => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, "Checking both.");
    let deltas = events
        .iter()
        .filter(|e| matches!(e, StreamEvent::ToolCallDelta { .. }))
        .count();
    assert_eq!(deltas, 5);
    let expected_calls = vec![
        ToolCall {
            id: "s1".into(),
            name: "materials_analyzer".into(),
            arguments: r#"{"action":"analyze"}"#.into(),
        },
        ToolCall {
            id: "s2".into(),
            name: "notebook".into(),
            arguments: r#"{"action":"log"}"#.into(),
        },
    ];
    let complete: Vec<ToolCall> = events
        .iter()
        .filter_map(|event| match event {
            StreamEvent::ToolCall(call) => Some(call.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(complete, expected_calls);
    let Some(StreamEvent::Done(done)) = events.last() else {
        panic!("no Done: {events:?}")
    };
    assert_eq!(done.content.as_deref(), Some("Checking both."));
    assert_eq!(done.tool_calls, expected_calls);
    assert_eq!(
        done.usage,
        Usage {
            prompt_tokens: 30,
            completion_tokens: 12
        }
    );
    assert_eq!(done.finish_reason, FinishReason::ToolCalls);
    assert_eq!(done.attempts, 1);

    let seen = server.seen();
    assert_eq!(seen[0].body["stream"], true);
    assert_eq!(seen[0].body["stream_options"]["include_usage"], true);
}

#[tokio::test]
async fn streamed_plain_answer_collects() {
    let server = MockServer::start(vec![Reply::Sse(vec![
        chunk(json!({"content": "Hel"}), None),
        chunk(json!({"content": "lo"}), Some("stop")),
    ])])
    .await;
    let provider = OpenAiProvider::new(&server.config()).unwrap();
    let response = collect_stream(provider.complete_stream(request("hi")))
        .await
        .unwrap();
    assert_eq!(response.content.as_deref(), Some("Hello"));
    assert_eq!(response.finish_reason, FinishReason::Stop);
    assert!(response.tool_calls.is_empty());
}

#[tokio::test]
async fn rate_limit_then_success_retries_after_retry_after() {
    let server = MockServer::start(vec![
        error_reply(429, "slow down", vec![("retry-after", "1".into())]),
        text_answer("ok"),
    ])
    .await;
    let provider = OpenAiProvider::new(&server.config()).unwrap();
    let started = Instant::now();
    let response = provider.complete(request("hi")).await.unwrap();
    assert_eq!(response.content.as_deref(), Some("ok"));
    assert_eq!(response.attempts, 2);
    assert_eq!(server.seen().len(), 2);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After was not honoured"
    );
    assert!(response.latency >= Duration::from_millis(950));
}

#[tokio::test]
async fn rate_limit_on_every_attempt_is_rate_limited() {
    let server = MockServer::start(vec![
        error_reply(429, "slow down", Vec::new()),
        error_reply(429, "slow down", Vec::new()),
        error_reply(429, "still slow", vec![("retry-after", "0".into())]),
    ])
    .await;
    let config = kiln_llm::ProviderConfig {
        max_retries: 2,
        ..server.config()
    };
    let provider = OpenAiProvider::new(&config).unwrap();
    let error = provider.complete(request("hi")).await.unwrap_err();
    match error {
        Error::RateLimited {
            attempts,
            retry_after,
            message,
        } => {
            assert_eq!(attempts, 3);
            assert_eq!(retry_after, Some(Duration::ZERO));
            assert_eq!(message, "still slow");
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert_eq!(server.seen().len(), 3);
}

#[tokio::test]
async fn server_error_then_success() {
    let server = MockServer::start(vec![
        error_reply(500, "boom", Vec::new()),
        text_answer("recovered"),
    ])
    .await;
    let provider = OpenAiProvider::new(&server.config()).unwrap();
    let response = provider.complete(request("hi")).await.unwrap();
    assert_eq!(response.content.as_deref(), Some("recovered"));
    assert_eq!(response.attempts, 2);
    assert_eq!(server.seen().len(), 2);
}

#[tokio::test]
async fn streaming_retries_a_server_error_before_the_stream_starts() {
    let server = MockServer::start(vec![
        error_reply(503, "busy", Vec::new()),
        Reply::Sse(vec![chunk(json!({"content": "fine"}), Some("stop"))]),
    ])
    .await;
    let provider = OpenAiProvider::new(&server.config()).unwrap();
    let response = collect_stream(provider.complete_stream(request("hi")))
        .await
        .unwrap();
    assert_eq!(response.content.as_deref(), Some("fine"));
    assert_eq!(response.attempts, 2);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let server = MockServer::start(vec![error_reply(400, "bad tool schema", Vec::new())]).await;
    let provider = OpenAiProvider::new(&server.config()).unwrap();
    let error = provider.complete(request("hi")).await.unwrap_err();
    assert!(
        matches!(&error, Error::Provider { status: 400, message } if message == "bad tool schema"),
        "{error:?}"
    );
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn malformed_tool_arguments_pass_through_raw() {
    let raw = r#"{"action": "analyze", "formula": "LiFePO4""#;
    let server = MockServer::start(vec![tool_answer(&[("m1", "materials_analyzer", raw)])]).await;
    let provider = OpenAiProvider::new(&server.config()).unwrap();
    let response = provider.complete(request("hi")).await.unwrap();
    assert_eq!(response.tool_calls[0].arguments, raw);
    assert!(response.tool_calls[0].parse_arguments().is_err());
}

#[tokio::test]
async fn unknown_tool_names_pass_through() {
    let server = MockServer::start(vec![tool_answer(&[("u1", "teleporter", "{}")])]).await;
    let provider = OpenAiProvider::new(&server.config()).unwrap();
    let response = provider.complete(request("hi")).await.unwrap();
    assert_eq!(response.tool_calls[0].name, "teleporter");
}

#[tokio::test]
async fn slow_server_times_out_without_retry() {
    let server = MockServer::start(vec![Reply::Delayed(
        Duration::from_secs(4),
        Box::new(text_answer("too late")),
    )])
    .await;
    let config = kiln_llm::ProviderConfig {
        timeout_secs: 1,
        ..server.config()
    };
    let provider = OpenAiProvider::new(&config).unwrap();
    let started = Instant::now();
    let error = provider.complete(request("hi")).await.unwrap_err();
    assert!(
        matches!(error, Error::Timeout(after) if after == Duration::from_secs(1)),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn json_output_is_requested() {
    let server = MockServer::start(vec![text_answer(r#"{"discoveries": []}"#)]).await;
    let provider = OpenAiProvider::new(&server.config()).unwrap();
    let mut req = request("classify");
    req.response_format = ResponseFormat::JsonObject;
    let response = provider.complete(req).await.unwrap();
    assert_eq!(response.content.as_deref(), Some(r#"{"discoveries": []}"#));
    assert_eq!(
        server.seen()[0].body["response_format"]["type"],
        "json_object"
    );
}

#[tokio::test]
async fn unreachable_server_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let config = kiln_llm::ProviderConfig {
        max_retries: 1,
        retry_base_ms: 1,
        ..kiln_llm::ProviderConfig::new(format!("http://{addr}/v1"), "m")
    };
    let provider = OpenAiProvider::new(&config).unwrap();
    let error = provider.complete(request("hi")).await.unwrap_err();
    assert!(matches!(error, Error::Transport(_)), "{error:?}");
    assert!(error.is_transient());
}

#[tokio::test]
async fn non_json_success_body_is_malformed() {
    let server = MockServer::start(vec![Reply::Json {
        status: 200,
        body: json!({"unexpected": true}),
        headers: Vec::new(),
    }])
    .await;
    let provider = OpenAiProvider::new(&server.config()).unwrap();
    let error = provider.complete(request("hi")).await.unwrap_err();
    assert!(matches!(error, Error::Malformed(_)), "{error:?}");
}

#[tokio::test]
async fn stalled_stream_times_out_after_partial_text() {
    let server = MockServer::start(vec![Reply::SseStall(vec![chunk(
        json!({"content": "partial"}),
        None,
    )])])
    .await;
    let config = kiln_llm::ProviderConfig {
        timeout_secs: 1,
        ..server.config()
    };
    let provider = OpenAiProvider::new(&config).unwrap();
    let events: Vec<_> = provider.complete_stream(request("hi")).collect().await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(matches!(&events[0], Ok(StreamEvent::TextDelta(text)) if text == "partial"));
    assert!(
        matches!(&events[1], Err(Error::Timeout(_))),
        "{:?}",
        events[1]
    );
}

#[tokio::test]
async fn exhausted_quota_is_not_retried() {
    let server = MockServer::start(vec![Reply::Json {
        status: 429,
        body: json!({"error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "code": "insufficient_quota"}}),
        headers: Vec::new(),
    }])
    .await;
    let provider = OpenAiProvider::new(&server.config()).unwrap();
    let error = provider.complete(request("hi")).await.unwrap_err();
    assert!(
        matches!(&error, Error::Provider { status: 429, message } if message.contains("quota")),
        "{error:?}"
    );
    assert!(!error.is_transient());
    assert_eq!(server.seen().len(), 1);
}
