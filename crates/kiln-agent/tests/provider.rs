//! The turn loop through the real async-openai client against a scripted OpenAI-compatible
//! server on 127.0.0.1; every case asserts the nodes written to the session.

mod common;

#[path = "../../kiln-llm/tests/support/server.rs"]
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
    // Different arguments each time: a model making progress, not one going round in circles.
    let log = |n: u32| {
        let args = format!(r#"{{"action": "log", "message": "step {n}"}}"#);
        sse_tools(&[("x", "notebook", &args)])
    };
    let server = MockServer::start(vec![log(1), log(2), log(3), log(4)]).await;
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

/// The tool messages of a recorded request, parsed.
fn tool_messages(seen: &server::Seen) -> Vec<Value> {
    seen.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| serde_json::from_str(m["content"].as_str().unwrap()).unwrap())
        .collect()
}

#[tokio::test]
async fn arguments_with_unambiguous_mistakes_are_repaired() {
    let e = env().await;
    let s = e.session(None).await;
    let server = MockServer::start(vec![
        sse_tools(&[
            (
                "comma",
                "materials_analyzer",
                r#"{"action": "analyze", "formula": "LiFePO4",}"#,
            ),
            (
                "quotes",
                "notebook",
                "{'action': 'log', 'message': \"it's annealed\"}",
            ),
            (
                "fence",
                "session_search",
                "```json\n{\"query\": \"olivine\"}\n```",
            ),
        ]),
        sse_text(&["Done."]),
    ])
    .await;
    let agent = agent_for(&e, &server, quiet()).await;
    let out = agent
        .run_turn(&e.alice, &s, "main", "analyse, log and search", None)
        .await
        .unwrap();
    for record in &out.tool_calls {
        assert!(record.ok, "{record:?}");
    }
    assert_eq!(out.tool_calls[0].arguments["formula"], "LiFePO4");
    assert_eq!(out.tool_calls[1].arguments["message"], "it's annealed");
    let state = e.mgr.state(&e.alice, &s, "main", None).await.unwrap();
    assert!(state.materials.iter().any(|m| m.formula == "LiFePO4"));
    // The call nodes keep the raw text as sent and say what was repaired.
    let path = e.path(&s, "main").await;
    let calls: Vec<&Value> = path
        .iter()
        .filter(|n| n.kind == NodeKind::ToolCall)
        .map(|n| n.data.as_ref().unwrap())
        .collect();
    assert_eq!(
        calls[0]["arguments"],
        r#"{"action": "analyze", "formula": "LiFePO4",}"#
    );
    assert_eq!(calls[0]["repaired"], json!(["trailing_comma"]));
    assert_eq!(calls[1]["repaired"], json!(["single_quotes"]));
    assert_eq!(calls[2]["repaired"], json!(["code_fence"]));
}

#[tokio::test]
async fn unreadable_arguments_are_explained_and_the_next_try_succeeds() {
    let e = env().await;
    let s = e.session(None).await;
    let server = MockServer::start(vec![
        sse_tools(&[(
            "first",
            "materials_analyzer",
            r#"{action: analyze, formula: LiFePO4"#,
        )]),
        sse_tools(&[("second", "materials_analyzer", ANALYZE)]),
        sse_text(&["LiFePO4 weighs 157.755 g/mol."]),
    ])
    .await;
    let agent = agent_for(&e, &server, quiet()).await;
    let out = agent
        .run_turn(&e.alice, &s, "main", "Analyse LiFePO4", None)
        .await
        .unwrap();
    assert_eq!(out.tool_calls.len(), 2);
    assert!(!out.tool_calls[0].ok && out.tool_calls[1].ok);
    let told = &tool_messages(&server.seen()[1])[0];
    assert_eq!(told["error"]["code"], "invalid_arguments");
    assert!(
        told["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("one JSON object"),
        "{told}"
    );
    assert_eq!(out.answer, "LiFePO4 weighs 157.755 g/mol.");
}

#[tokio::test]
async fn a_model_inventing_a_tool_is_told_which_tools_exist() {
    let e = env().await;
    let s = e.session(None).await;
    let server = MockServer::start(vec![
        sse_tools(&[("ghost", "periodic_table_lookup", r#"{"element": "Fe"}"#)]),
        sse_tools(&[("real", "materials_analyzer", ANALYZE)]),
        sse_text(&["Found it."]),
    ])
    .await;
    let agent = agent_for(&e, &server, quiet()).await;
    let out = agent
        .run_turn(&e.alice, &s, "main", "look up iron", None)
        .await
        .unwrap();
    assert_eq!(out.tool_calls[0].result["code"], "unknown_tool");
    let told = &tool_messages(&server.seen()[1])[0];
    let hint = told["error"]["hint"].as_str().unwrap();
    for name in agent.tools().names() {
        assert!(hint.contains(&name), "{hint} lacks {name}");
    }
    assert!(out.tool_calls[1].ok);
}

#[tokio::test]
async fn a_model_repeating_one_call_is_stopped_with_a_clear_message() {
    let e = env().await;
    let s = e.session(None).await;
    // The same call, key order and spacing aside, five times: the model is going nowhere.
    let same = [
        r#"{"action": "get_params"}"#,
        r#"{ "action":"get_params" }"#,
        r#"{"action": "get_params"}"#,
        r#"{"action": "get_params"}"#,
        r#"{"action": "get_params"}"#,
    ];
    let server = MockServer::start(
        same.iter()
            .map(|args| sse_tools(&[("x", "notebook", args)]))
            .collect(),
    )
    .await;
    let agent = agent_for(&e, &server, quiet()).await;
    let out = agent
        .run_turn(&e.alice, &s, "main", "what are my parameters", None)
        .await
        .unwrap();
    assert_eq!(
        server.seen().len(),
        3,
        "stopped at the third identical call"
    );
    assert_eq!(out.tool_calls.len(), 2, "the third was not run");
    assert!(!out.budget_exhausted);
    assert!(
        out.answer
            .contains("`notebook` with the same arguments 3 times"),
        "{}",
        out.answer
    );
    let path = e.path(&s, "main").await;
    let answer = path.last().unwrap();
    assert_eq!(answer.kind, NodeKind::Assistant);
    assert_eq!(answer.data.as_ref().unwrap()["repeated_call"], "notebook");
}

#[tokio::test]
async fn tool_calls_split_across_many_chunks_are_assembled() {
    let e = env().await;
    let s = e.session(None).await;
    let log = r#"{"action": "log", "message": "sample 7 annealed"}"#;
    // Id, name and every few characters of the arguments in their own chunks, two calls
    // interleaved, some text first: as vLLM and Ollama stream them.
    let mut events = vec![
        chunk(
            json!({"role": "assistant", "content": "Let me check."}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "c0", "type": "function", "function": {"name": ""}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"name": "materials_analyzer"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 1, "id": "c1", "type": "function", "function": {"name": "notebook", "arguments": ""}}]}),
            None,
        ),
    ];
    let (a, b): (Vec<char>, Vec<char>) = (ANALYZE.chars().collect(), log.chars().collect());
    for i in (0..a.len().max(b.len())).step_by(3) {
        for (index, text) in [(0, &a), (1, &b)] {
            let piece: String = text.iter().skip(i).take(3).collect();
            if !piece.is_empty() {
                events.push(chunk(
                    json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}),
                    None,
                ));
            }
        }
    }
    events.push(chunk(json!({}), Some("tool_calls")));
    events.push(usage_chunk(40, 30));
    let server =
        MockServer::start(vec![server::Reply::Sse(events), sse_text(&["Both done."])]).await;
    let agent = agent_for(&e, &server, quiet()).await;
    let (tx, mut rx) = mpsc::channel(256);
    let out = agent
        .run_turn(&e.alice, &s, "main", "analyse and log", Some(&tx))
        .await
        .unwrap();
    drop(tx);
    let mut announced = Vec::new();
    while let Some(ev) = rx.recv().await {
        if let TurnEvent::ToolCall {
            name, arguments, ..
        } = ev
        {
            announced.push((name, arguments));
        }
    }
    assert_eq!(
        announced,
        vec![
            ("materials_analyzer".to_owned(), ANALYZE.to_owned()),
            ("notebook".to_owned(), log.to_owned())
        ]
    );
    assert!(out.tool_calls.iter().all(|r| r.ok), "{:?}", out.tool_calls);
    let path = e.path(&s, "main").await;
    let first = path.iter().find(|n| n.kind == NodeKind::ToolCall).unwrap();
    assert_eq!(
        first.data.as_ref().unwrap()["assistant_text"],
        "Let me check."
    );
}

#[tokio::test]
async fn a_429_waits_as_long_as_retry_after_says() {
    let e = env().await;
    let s = e.session(None).await;
    let server = MockServer::start(vec![
        error_reply(429, "slow down", vec![("retry-after", "1".into())]),
        sse_text(&["fine"]),
    ])
    .await;
    // The configured backoff (5 ms) is far shorter: only Retry-After explains a longer wait.
    let agent = agent_for(&e, &server, quiet()).await;
    let out = agent
        .run_turn(&e.alice, &s, "main", "hi", None)
        .await
        .unwrap();
    assert_eq!(out.answer, "fine");
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    let waited = seen[1].at - seen[0].at;
    assert!(
        waited >= std::time::Duration::from_millis(950),
        "retried after {waited:?}"
    );
}

/// One earlier turn on the branch, so there is something to summarise.
async fn earlier_turn(e: &common::Env, s: &str) {
    let warmup = MockServer::start(vec![sse_text(&["LiFePO4 is an olivine cathode."])]).await;
    agent_for(e, &warmup, quiet())
        .await
        .run_turn(&e.alice, s, "main", "Tell me about LiFePO4", None)
        .await
        .unwrap();
}

fn overflow(code: Option<&str>, message: &str) -> server::Reply {
    server::Reply::Json {
        status: 400,
        body: json!({"error": {"message": message, "type": "invalid_request_error", "param": "messages", "code": code}}),
        headers: Vec::new(),
    }
}

#[tokio::test]
async fn a_context_overflow_summarises_and_retries_once() {
    let wordings = [
        (
            Some("context_length_exceeded"),
            "This model's maximum context length is 4096 tokens. However, your messages resulted in 9000 tokens.",
        ),
        // vLLM
        (
            None,
            "The prompt (total length 9000) is too long to fit into the model (context length 4096).",
        ),
        // Ollama / llama.cpp server
        (
            None,
            "the request exceeds the available context size, try increasing it",
        ),
    ];
    for (code, message) in wordings {
        let e = env().await;
        let s = e.session(None).await;
        earlier_turn(&e, &s).await;
        let server = MockServer::start(vec![
            overflow(code, message),
            server::text_answer("Earlier: LiFePO4 was introduced as an olivine cathode."),
            sse_text(&["It is LiFePO4."]),
        ])
        .await;
        let agent = agent_for(&e, &server, quiet()).await;
        let out = agent
            .run_turn(&e.alice, &s, "main", "Which material was that?", None)
            .await
            .unwrap_or_else(|err| panic!("{message}: {err:?}"));
        assert_eq!(out.answer, "It is LiFePO4.");
        assert!(out.summary_node.is_some(), "{message}");
        assert_eq!(out.steps, 1, "the refused call is not a step");
        let seen = server.seen();
        assert_eq!(seen.len(), 3);
        // The retry carried the summary instead of the earlier turn.
        let retry = seen[2].body["messages"].to_string();
        assert!(retry.contains("Earlier: LiFePO4 was introduced"), "{retry}");
        assert!(!retry.contains("Tell me about LiFePO4"), "{retry}");
    }
}

#[tokio::test]
async fn a_second_context_overflow_is_a_clear_error() {
    let e = env().await;
    let s = e.session(None).await;
    earlier_turn(&e, &s).await;
    let too_long = || {
        overflow(
            Some("context_length_exceeded"),
            "maximum context length is 512 tokens",
        )
    };
    let server = MockServer::start(vec![
        too_long(),
        server::text_answer("Earlier: LiFePO4."),
        too_long(),
    ])
    .await;
    let agent = agent_for(&e, &server, quiet()).await;
    let err = agent
        .run_turn(&e.alice, &s, "main", "Which material was that?", None)
        .await
        .unwrap_err();
    assert_eq!(err.code, "context_overflow");
    assert!(err.message.contains("context_window"), "{}", err.message);
    assert_eq!(server.seen().len(), 3, "one retry, not more");
    // The user's message and the failure are on the branch.
    let path = e.path(&s, "main").await;
    let last = path.last().unwrap();
    assert_eq!(last.kind, NodeKind::Assistant);
    assert_eq!(
        last.data.as_ref().unwrap()["error"]["code"],
        "context_overflow"
    );
}
