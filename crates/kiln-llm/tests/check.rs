//! The connection check and the Ollama probe against scripted servers on 127.0.0.1.

#[path = "support/server.rs"]
mod server;

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use kiln_llm::{ConnectionReport, check_connection, probe_ollama};
use serde_json::json;
use server::{MockServer, error_reply, text_answer, tool_answer};

fn oks(report: &ConnectionReport) -> Vec<Option<bool>> {
    report.steps.iter().map(|s| s.ok).collect()
}

fn no_key_in(report: &ConnectionReport) {
    let text = serde_json::to_string(report).unwrap();
    assert!(!text.contains("sk-test-key"), "{text}");
}

#[tokio::test]
async fn a_working_server_passes_every_step() {
    let server = MockServer::start(vec![
        tool_answer(&[("c1", "kiln_echo", r#"{"word": "kiln"}"#)]),
        text_answer("The tool said kiln."),
    ])
    .await;
    server.set_models(&["other", "test-model"]);
    let report = check_connection(&server.config()).await;
    assert!(report.ok, "{report:#?}");
    assert_eq!(oks(&report), vec![Some(true); 4]);
    assert!(report.steps[3].detail.contains("The tool said kiln."));
    // The second request gave the tool's result back under the call's id.
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].body["tools"][0]["function"]["name"], "kiln_echo");
    let tool = seen[1].body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .unwrap()
        .clone();
    assert_eq!(tool["tool_call_id"], "c1");
    no_key_in(&report);
}

#[tokio::test]
async fn a_missing_model_is_named_with_the_ones_the_server_has() {
    let server = MockServer::start(vec![error_reply(
        404,
        "model 'test-model' not found, try pulling it first",
        vec![],
    )])
    .await;
    server.set_models(&["llama3.2", "qwen2.5"]);
    let report = check_connection(&server.config()).await;
    assert!(!report.ok);
    assert_eq!(oks(&report), vec![Some(true), Some(false), None, None]);
    assert!(
        report.steps[1].detail.contains("llama3.2, qwen2.5"),
        "{report:#?}"
    );
    no_key_in(&report);
}

#[tokio::test]
async fn a_model_that_answers_in_text_has_no_tool_calls() {
    // No model list (404): the chat call alone shows the model exists.
    let server = MockServer::start(vec![text_answer("I would call kiln_echo.")]).await;
    let report = check_connection(&server.config()).await;
    assert_eq!(
        oks(&report),
        vec![Some(true), Some(true), Some(false), None]
    );
    assert!(
        report.steps[2]
            .detail
            .contains("instead of calling the tool"),
        "{report:#?}"
    );
}

#[tokio::test]
async fn a_refused_key_is_reported_without_the_key() {
    let server = MockServer::start(vec![error_reply(
        401,
        "Incorrect API key provided: sk-test-key",
        vec![],
    )])
    .await;
    let report = check_connection(&server.config()).await;
    assert_eq!(report.steps[0].ok, Some(false), "{report:#?}");
    assert!(report.steps[0].detail.contains("refused the API key"));
    no_key_in(&report);
}

#[tokio::test]
async fn nothing_listening_fails_the_first_step() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let config = kiln_llm::ProviderConfig::new(format!("http://{addr}/v1"), "m");
    let report = check_connection(&config).await;
    assert_eq!(oks(&report), vec![Some(false), None, None, None]);
    assert!(report.steps[0].detail.contains("no answer from"));
}

#[tokio::test]
async fn the_ollama_probe_lists_models_and_gives_up_quickly() {
    let app = Router::new().route(
        "/api/tags",
        get(|| async {
            axum::Json(json!({"models": [{"name": "llama3.2:latest"}, {"name": "qwen2.5:7b"}]}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let found = probe_ollama(&addr.to_string(), Duration::from_millis(300)).await;
    assert_eq!(
        found,
        Some(vec!["llama3.2:latest".to_owned(), "qwen2.5:7b".to_owned()])
    );

    // A listener that accepts and never answers: the probe returns within its bound.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let started = Instant::now();
    let none = probe_ollama(&silent_addr.to_string(), Duration::from_millis(300)).await;
    assert_eq!(none, None);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the probe must not wait"
    );
    hold.abort();
    // Something that is not Ollama (our chat mock answers 404 there).
    let other = MockServer::start(vec![]).await;
    assert_eq!(
        probe_ollama(&other.addr.to_string(), Duration::from_millis(300)).await,
        None
    );
}
