//! The turn loop through the real async-openai client against a scripted OpenAI-compatible
//! server on 127.0.0.1; every case asserts the nodes written to the session.

mod common;

#[path = "../../kiln-llm/tests/support/server.rs"]
#[allow(dead_code)]
mod server;

use std::sync::Arc;

use common::{env, quiet};
use kiln_agent::TurnEvent;
use kiln_llm::OpenAiProvider;
use kiln_session::AgentConfig;
use kiln_types::NodeKind;
use serde_json::{Value, json};
use server::{MockServer, Reply, chunk, error_reply, usage_chunk};
use tokio::sync::mpsc;

/// A streamed text answer, in pieces.
fn sse_text(pieces: &[&str]) -> Reply {
    let mut events = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    events.extend(pieces.iter().map(|p| chunk(json!({"content": p}), None)));
    events.push(chunk(json!({}), Some("stop")));
    events.push(usage_chunk(30, 9));
    Reply::Sse(events)
}

/// A streamed answer calling `(id, name, raw arguments)` tools, arguments in two pieces.
fn sse_tools(calls: &[(&str, &str, &str)]) -> Reply {
    let mut events = vec![chunk(json!({"role": "assistant", "content": null}), None)];
    for (i, (id, name, args)) in calls.iter().enumerate() {
        let (a, b) = args.split_at(args.len() / 2);
        events.push(chunk(
            json!({"tool_calls": [{"index": i, "id": id, "type": "function", "function": {"name": name, "arguments": a}}]}),
            None,
        ));
        events.push(chunk(
            json!({"tool_calls": [{"index": i, "function": {"arguments": b}}]}),
            None,
        ));
    }
    events.push(chunk(json!({}), Some("tool_calls")));
    events.push(usage_chunk(40, 12));
    Reply::Sse(events)
}

async fn agent_for(e: &common::Env, server: &MockServer, config: AgentConfig) -> kiln_agent::Agent {
    let provider = OpenAiProvider::new(&server.config()).unwrap();
    e.agent(Arc::new(provider), config)
}

const ANALYZE: &str = r#"{"action": "analyze", "formula": "LiFePO4"}"#;

#[tokio::test]
async fn a_tool_call_then_a_final_answer() {
    let e = env().await;
    let s = e.session(None).await;
    let server = MockServer::start(vec![
        sse_tools(&[("call_1", "materials_analyzer", ANALYZE)]),
        sse_text(&["LiFePO4 is ", "157.755 g/mol."]),
    ])
    .await;
    let agent = agent_for(&e, &server, quiet()).await;
    let out = agent
        .run_turn(&e.alice, &s, "main", "Analyse LiFePO4", None)
        .await
        .unwrap();
    assert_eq!(out.answer, "LiFePO4 is 157.755 g/mol.");
    assert_eq!(out.model, "test-model");
    assert_eq!(out.usage.prompt_tokens, 70);
    assert_eq!(out.usage.completion_tokens, 21);
    assert_eq!(
        e.kinds(&s, "main").await,
        vec![
            NodeKind::User,
            NodeKind::ToolCall,
            NodeKind::ToolResult,
            NodeKind::Material,
            NodeKind::Focus,
            NodeKind::Assistant
        ]
    );
    let path = e.path(&s, "main").await;
    // Token usage and latency recorded per call: on the tool call node and on the answer.
    let call = path[1].data.as_ref().unwrap();
    assert_eq!(call["usage"]["prompt_tokens"], 40);
    assert!(call["latency_ms"].as_f64().is_some());
    let answer = path[5].data.as_ref().unwrap();
    assert_eq!(answer["usage"]["completion_tokens"], 9);
    // The second request sent the tool result back, paired with the call id, and the tools.
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    let msgs = seen[1].body["messages"].as_array().unwrap();
    let tool = msgs.iter().find(|m| m["role"] == "tool").unwrap();
    assert_eq!(tool["tool_call_id"], "call_1");
    assert!(tool["content"].as_str().unwrap().contains("157.755"));
    let names: Vec<&str> = seen[0].body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"materials_analyzer") && names.contains(&"bayesian_optimizer"));
}

#[tokio::test]
async fn two_parallel_tool_calls() {
    let e = env().await;
    let s = e.session(None).await;
    let server = MockServer::start(vec![
        sse_tools(&[
            ("a", "materials_analyzer", ANALYZE),
            (
                "b",
                "notebook",
                r#"{"action": "log", "message": "sample 7 annealed"}"#,
            ),
        ]),
        sse_text(&["Both done."]),
    ])
    .await;
    let agent = agent_for(&e, &server, quiet()).await;
    let out = agent
        .run_turn(&e.alice, &s, "main", "analyse and log", None)
        .await
        .unwrap();
    assert_eq!(out.tool_calls.len(), 2);
    assert!(out.tool_calls.iter().all(|r| r.ok));
    let kinds = e.kinds(&s, "main").await;
    assert_eq!(
        kinds[..5],
        [
            NodeKind::User,
            NodeKind::ToolCall,
            NodeKind::ToolCall,
            NodeKind::ToolResult,
            NodeKind::ToolResult
        ]
    );
    let msgs = server.seen()[1].body["messages"]
        .as_array()
        .unwrap()
        .clone();
    let assistant = msgs.iter().find(|m| m["role"] == "assistant").unwrap();
    assert_eq!(assistant["tool_calls"].as_array().unwrap().len(), 2);
    assert_eq!(msgs.iter().filter(|m| m["role"] == "tool").count(), 2);
}

#[tokio::test]
async fn a_streamed_answer_arrives_in_pieces() {
    let e = env().await;
    let s = e.session(None).await;
    let server =
        MockServer::start(vec![sse_text(&["Olivine ", "phosphates ", "are stable."])]).await;
    let agent = agent_for(&e, &server, quiet()).await;
    let (tx, mut rx) = mpsc::channel(64);
    let out = agent
        .run_turn(&e.alice, &s, "main", "tell me", Some(&tx))
        .await
        .unwrap();
    drop(tx);
    let mut tokens = Vec::new();
    let mut done = false;
    while let Some(ev) = rx.recv().await {
        match ev {
            TurnEvent::Token { text } => tokens.push(text),
            TurnEvent::Done(o) => {
                done = true;
                assert_eq!(o.answer_node, out.answer_node);
            }
            _ => {}
        }
    }
    assert!(done);
    assert_eq!(tokens, vec!["Olivine ", "phosphates ", "are stable."]);
    assert_eq!(server.seen()[0].body["stream"], true);
    let path = e.path(&s, "main").await;
    assert_eq!(
        path.last().unwrap().content,
        "Olivine phosphates are stable."
    );
}

#[tokio::test]
async fn a_429_then_success() {
    let e = env().await;
    let s = e.session(None).await;
    let server = MockServer::start(vec![
        error_reply(429, "slow down", vec![("retry-after", "0".into())]),
        sse_text(&["fine"]),
    ])
    .await;
    let agent = agent_for(&e, &server, quiet()).await;
    let out = agent
        .run_turn(&e.alice, &s, "main", "hi", None)
        .await
        .unwrap();
    assert_eq!(out.answer, "fine");
    assert_eq!(server.seen().len(), 2);
    assert_eq!(
        e.kinds(&s, "main").await,
        vec![NodeKind::User, NodeKind::Assistant]
    );
}

#[tokio::test]
async fn malformed_arguments_and_an_unknown_tool_go_back_to_the_model() {
    let e = env().await;
    let s = e.session(None).await;
    let server = MockServer::start(vec![
        sse_tools(&[
            (
                "bad",
                "materials_analyzer",
                r#"{"action": "analyze", "formula": "#,
            ),
            ("ghost", "crystal_ball", r#"{"q": 1}"#),
        ]),
        sse_text(&["Sorry, those failed."]),
    ])
    .await;
    let agent = agent_for(&e, &server, quiet()).await;
    let out = agent
        .run_turn(&e.alice, &s, "main", "try", None)
        .await
        .unwrap();
    assert_eq!(out.tool_calls[0].result["code"], "invalid_arguments");
    assert_eq!(out.tool_calls[1].result["code"], "unknown_tool");
    let path = e.path(&s, "main").await;
    let results: Vec<&Value> = path
        .iter()
        .filter(|n| n.kind == NodeKind::ToolResult)
        .map(|n| n.data.as_ref().unwrap())
        .collect();
    assert_eq!(results.len(), 2);
    assert!(results.iter().all(|d| d["ok"] == false));
    // The raw malformed text is kept on the call node, exactly as the model sent it.
    let call = path.iter().find(|n| n.kind == NodeKind::ToolCall).unwrap();
    assert_eq!(
        call.data.as_ref().unwrap()["arguments"],
        r#"{"action": "analyze", "formula": "#
    );
    let msgs = server.seen()[1].body["messages"]
        .as_array()
        .unwrap()
        .clone();
    let errors: Vec<&str> = msgs
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert!(errors[0].contains("not valid JSON") && errors[1].contains("unknown tool"));
    // No state event from failed calls.
    let state = e.mgr.state(&e.alice, &s, "main", None).await.unwrap();
    assert!(state.materials.is_empty());
}

#[tokio::test]
async fn the_step_budget_running_out() {
    let e = env().await;
    let s = e.session(None).await;
    let again = || sse_tools(&[("x", "notebook", r#"{"action": "get_params"}"#)]);
    let server = MockServer::start(vec![again(), again(), again(), again()]).await;
    let config = AgentConfig {
        step_budget: 3,
        ..quiet()
    };
    let agent = agent_for(&e, &server, config).await;
    let out = agent
        .run_turn(&e.alice, &s, "main", "spin", None)
        .await
        .unwrap();
    assert!(out.budget_exhausted);
    assert_eq!(server.seen().len(), 3);
    let kinds = e.kinds(&s, "main").await;
    assert_eq!(
        kinds.iter().filter(|k| **k == NodeKind::ToolCall).count(),
        3
    );
    assert_eq!(kinds.last(), Some(&NodeKind::Assistant));
}

#[tokio::test]
async fn discovery_detection_uses_a_json_call() {
    let e = env().await;
    let s = e.session(None).await;
    let json_reply = server::completion(
        json!({"role": "assistant", "content": json!({"discoveries": [{"category": "phase_relationship", "description": "LiFePO4 and FePO4 form a two-phase system on cycling.", "confidence": 0.8}]}).to_string()}),
        "stop",
        12,
        20,
    );
    let server = MockServer::start(vec![
        sse_text(&["LiFePO4 and FePO4 form a two-phase system on cycling."]),
        json_reply,
    ])
    .await;
    let agent = agent_for(&e, &server, AgentConfig::default()).await;
    let out = agent
        .run_turn(&e.alice, &s, "main", "How does LiFePO4 cycle?", None)
        .await
        .unwrap();
    assert_eq!(out.discoveries.len(), 1);
    let seen = server.seen();
    assert_eq!(seen[1].body["response_format"]["type"], "json_object");
    let kinds = e.kinds(&s, "main").await;
    assert_eq!(kinds.last(), Some(&NodeKind::Discovery));
}
