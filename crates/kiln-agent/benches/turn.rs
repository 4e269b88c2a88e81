//! The agent's own cost per turn, model time excluded: a stand-in model that answers instantly
//! asks for two tool calls (materials_analyzer analyze, notebook get_params), then answers.
//! Measured at 100, 10k and 100k nodes on the path: one whole turn (user node, context
//! assembly twice, two tool runs, three appends, state reads) and context assembly alone.
//!
//! `cargo bench -p kiln-agent --bench turn`; `KILN_BENCH_SIZES=100,10000` picks sizes.
//! Each timed turn runs on a fresh fork of the prepared branch (forking is not timed), so the
//! path length stays the size named.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use kiln_agent::{Agent, Registry};
use kiln_db::NewNode;
use kiln_llm::{
    ChatFuture, ChatMessage, ChatModel, ChatRequest, ChatResponse, FinishReason, Purpose, Role,
    ToolCall,
};
use kiln_session::{AgentConfig, BranchFrom, Caller, Config, CreateSession, SessionManager};
use kiln_types::{NodeKind, StateEvent};
use serde_json::json;
use tokio::runtime::Runtime;

/// Answers instantly: two tool calls after a user message, text after tool results.
struct Instant2;

impl ChatModel for Instant2 {
    fn name(&self) -> &str {
        "instant"
    }

    fn complete(&self, request: ChatRequest) -> ChatFuture<'_> {
        let last = request.messages.last().map(ChatMessage::role);
        let response = match (request.purpose, last) {
            (Purpose::Turn, Some(Role::User)) => ChatResponse {
                tool_calls: vec![
                    ToolCall::new(
                        "a",
                        "materials_analyzer",
                        &json!({"action": "analyze", "formula": "LiFePO4"}),
                    ),
                    ToolCall::new("b", "notebook", &json!({"action": "get_params"})),
                ],
                finish_reason: FinishReason::ToolCalls,
                ..ChatResponse::default()
            },
            _ => ChatResponse {
                content: Some("LiFePO4 weighs 157.755 g/mol; no parameters are set.".into()),
                ..ChatResponse::default()
            },
        };
        Box::pin(async move { Ok(response) })
    }
}

fn node(i: usize) -> NewNode {
    match i % 6 {
        0 => NewNode::message(NodeKind::User, None, format!("question {i} about LiFePO4 doping"))
            .with_tokens(8),
        1 => NewNode::message(
            NodeKind::Assistant,
            None,
            format!("answer {i}: the olivine structure keeps Li diffusion one-dimensional; {}", "x".repeat(200)),
        )
        .with_tokens(60),
        2 => NewNode::message(NodeKind::ToolCall, None, "materials_analyzer(...)").with_data(
            json!({"call_id": format!("c{i}"), "name": "materials_analyzer", "arguments": "{\"action\":\"analyze\",\"formula\":\"LiFePO4\"}"}),
        ),
        3 => NewNode::message(NodeKind::ToolResult, None, "{\"ok\":true,\"text\":\"LiFePO4: 157.755 g/mol\"}")
            .with_data(json!({"call_id": format!("c{}", i - 1)}))
            .with_tokens(20),
        4 => NewNode::event(
            StateEvent::Material {
                formula: format!("LiFe{}Mn{}PO4", i % 7, i % 5),
                data: None,
            },
            None,
        ),
        _ => NewNode::event(
            StateEvent::Focus {
                material: Some("LiFePO4".into()),
                topic: None,
            },
            None,
        ),
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    agent: Agent,
    mgr: SessionManager,
    caller: Caller,
    session: String,
}

async fn build(size: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    let mgr = SessionManager::open(&config).await.unwrap();
    let (u, _) = mgr.add_user("bench", true).await.unwrap();
    let caller: Caller = u.into();
    let session = mgr
        .create_session(
            &caller,
            CreateSession {
                name: "bench".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .id;
    let mut i = 0;
    while i < size {
        let n = (size - i).min(1000);
        mgr.append_nodes(
            &caller,
            &session,
            "main",
            (i..i + n).map(node).collect(),
            None,
        )
        .await
        .unwrap();
        i += n;
    }
    let config = AgentConfig {
        auto_detect_discoveries: false,
        ..AgentConfig::default()
    };
    let agent = Agent::new(mgr.clone(), Arc::new(Instant2), Registry::builtin(), config);
    // One turn first, as a long session would have had: older turns get their summary.
    agent
        .run_turn(&caller, &session, "main", "warm up", None)
        .await
        .unwrap();
    Fixture {
        _dir: dir,
        agent,
        mgr,
        caller,
        session,
    }
}

fn sizes() -> Vec<usize> {
    std::env::var("KILN_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100, 10_000, 100_000])
}

fn turn(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let counter = AtomicU64::new(0);
    let mut g = c.benchmark_group("agent");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    for size in sizes() {
        let f = rt.block_on(build(size));
        let (agent, a, s) = (&f.agent, &f.caller, f.session.as_str());
        g.bench_function(BenchmarkId::new("turn_two_tools", size), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let name = format!("t{}", counter.fetch_add(1, Ordering::Relaxed));
                    rt.block_on(f.mgr.create_branch(
                        a,
                        s,
                        &name,
                        Some(BranchFrom::Branch("main".into())),
                    ))
                    .unwrap();
                    let start = Instant::now();
                    let out = rt
                        .block_on(agent.run_turn(
                            a,
                            s,
                            &name,
                            "Analyse LiFePO4 and show the parameters",
                            None,
                        ))
                        .unwrap();
                    total += start.elapsed();
                    assert_eq!(out.tool_calls.len(), 2);
                }
                total
            })
        });
        g.bench_function(BenchmarkId::new("context_assembly", size), |b| {
            b.iter(|| rt.block_on(agent.context(a, s, Some("main"))).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, turn);
criterion_main!(benches);
