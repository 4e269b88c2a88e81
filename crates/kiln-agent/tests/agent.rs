//! The turn loop against a real SQLite store, with the scripted model and the offline planner.

mod common;

use std::sync::Arc;

use common::{env, quiet};
use kiln_agent::TurnEvent;
use kiln_llm::{ChatMessage, OfflinePlanner, ScriptedModel, ToolCall};
use kiln_session::AgentConfig;
use kiln_types::{ContextConfig, MergeStrategy, NodeKind};
use serde_json::{Value, json};
use tokio::sync::mpsc;

fn call(id: &str, name: &str, args: Value) -> ToolCall {
    ToolCall::new(id, name, &args)
}

#[tokio::test]
async fn a_tool_call_then_an_answer_is_recorded_in_order() {
    let e = env().await;
    let s = e.session(None).await;
    let model = Arc::new(ScriptedModel::new([
        ScriptedModel::tool_calls(vec![call(
            "c1",
            "materials_analyzer",
            json!({"action": "analyze", "formula": "LiFePO4"}),
        )]),
        ScriptedModel::text("LiFePO4 weighs 157.755 g/mol."),
    ]));
    let agent = e.agent(model.clone(), quiet());
    let out = agent
        .run_turn(&e.alice, &s, "main", "Analyse LiFePO4", None)
        .await
        .unwrap();
    assert_eq!(out.answer, "LiFePO4 weighs 157.755 g/mol.");
    assert_eq!(out.steps, 2);
    assert_eq!(out.tool_calls.len(), 1);
    assert!(out.tool_calls[0].ok);
    assert_eq!(out.tool_calls[0].result["reduced_formula"], "LiFePO4");
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
    let state = e.mgr.state(&e.alice, &s, "main", None).await.unwrap();
    assert_eq!(state.focus.material.as_deref(), Some("LiFePO4"));
    assert_eq!(state.materials[0].formula, "LiFePO4");
    // The second model call saw the call and its result, paired by id.
    let second = &model.requests()[1];
    let tool_msg = second
        .messages
        .iter()
        .find_map(|m| match m {
            ChatMessage::Tool {
                tool_call_id,
                content,
            } => Some((tool_call_id.clone(), content.clone())),
            _ => None,
        })
        .expect("a tool message");
    assert_eq!(tool_msg.0, "c1");
    assert!(tool_msg.1.contains("157.755"), "{}", tool_msg.1);
    // The focus is in the window of the second call.
    assert!(second.messages.iter().any(|m| {
        m.text()
            .is_some_and(|t| t.contains("Current focus material: LiFePO4"))
    }));
    let path = e.path(&s, "main").await;
    let answer = path.last().unwrap();
    assert_eq!(answer.id, out.answer_node);
    assert_eq!(answer.data.as_ref().unwrap()["steps"], 2);
    assert!(answer.tokens.unwrap() > 0);
}

#[tokio::test]
async fn parallel_calls_bad_arguments_and_unknown_tools_go_back_as_data() {
    let e = env().await;
    let s = e.session(None).await;
    let model = Arc::new(ScriptedModel::new([
        ScriptedModel::tool_calls(vec![
            call(
                "a",
                "materials_analyzer",
                json!({"action": "validate", "formula": "Fe2O3"}),
            ),
            call(
                "b",
                "notebook",
                json!({"action": "log", "message": "annealed 2 h"}),
            ),
            ToolCall {
                id: "c".into(),
                name: "notebook".into(),
                arguments: "{\"action\": \"log\", ".into(),
            },
            call("d", "warp_drive", json!({})),
            call(
                "e",
                "notebook",
                json!({"action": "log", "message": "cooled"}),
            ),
        ]),
        ScriptedModel::text("Done."),
    ]));
    let agent = e.agent(model.clone(), quiet());
    let out = agent
        .run_turn(&e.alice, &s, "main", "do several things", None)
        .await
        .unwrap();
    let oks: Vec<(String, bool)> = out
        .tool_calls
        .iter()
        .map(|r| (r.id.clone(), r.ok))
        .collect();
    assert_eq!(
        oks,
        vec![
            ("a".into(), true),
            ("b".into(), true),
            ("c".into(), false),
            ("d".into(), false),
            ("e".into(), true)
        ]
    );
    assert_eq!(out.tool_calls[2].result["code"], "invalid_arguments");
    assert_eq!(out.tool_calls[3].result["code"], "unknown_tool");
    // Two calls to the same stateful tool in one step: both lines kept, in order.
    let state = e.mgr.state(&e.alice, &s, "main", None).await.unwrap();
    let log = state.tools["notebook"]["log"].as_array().unwrap();
    let lines: Vec<&str> = log.iter().map(|l| l["message"].as_str().unwrap()).collect();
    assert_eq!(lines, vec!["annealed 2 h", "cooled"]);
    // The model got five tool messages, errors included.
    let tool_results: Vec<String> = model.requests()[1]
        .messages
        .iter()
        .filter_map(|m| match m {
            ChatMessage::Tool { content, .. } => Some(content.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(tool_results.len(), 5);
    assert!(tool_results[3].contains("unknown tool `warp_drive`"));
    let kinds = e.kinds(&s, "main").await;
    assert_eq!(
        kinds.iter().filter(|k| **k == NodeKind::ToolCall).count(),
        5
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == NodeKind::ToolResult).count(),
        5
    );
}

#[tokio::test]
async fn the_step_budget_ends_a_turn_that_keeps_calling_tools() {
    let e = env().await;
    let s = e.session(None).await;
    let looping =
        || ScriptedModel::tool_calls(vec![call("x", "notebook", json!({"action": "get_params"}))]);
    let model = Arc::new(ScriptedModel::new([looping(), looping(), looping()]));
    let config = AgentConfig {
        step_budget: 2,
        ..quiet()
    };
    let agent = e.agent(model.clone(), config);
    let out = agent
        .run_turn(&e.alice, &s, "main", "loop forever", None)
        .await
        .unwrap();
    assert!(out.budget_exhausted);
    assert_eq!(out.steps, 2);
    assert_eq!(model.remaining(), 1, "no third model call");
    assert!(out.answer.contains("step budget"), "{}", out.answer);
    let last = e.path(&s, "main").await.pop().unwrap();
    assert_eq!(last.kind, NodeKind::Assistant);
    assert_eq!(last.data.unwrap()["budget_exhausted"], true);
}

#[tokio::test]
async fn a_model_failure_keeps_the_question_and_says_what_happened() {
    let e = env().await;
    let s = e.session(None).await;
    let model = Arc::new(ScriptedModel::default());
    model.push_error(kiln_llm::Error::Provider {
        status: 400,
        message: "bad request".into(),
    });
    let agent = e.agent(model, quiet());
    let err = agent
        .run_turn(&e.alice, &s, "main", "hello?", None)
        .await
        .unwrap_err();
    assert_eq!(err.code, "model_unavailable");
    let path = e.path(&s, "main").await;
    assert_eq!(path[0].content, "hello?");
    assert_eq!(path[1].kind, NodeKind::Assistant);
    assert!(path[1].data.as_ref().unwrap().get("error").is_some());
    // Empty and paused are typed errors that store nothing.
    let before = e.path(&s, "main").await.len();
    let err = agent
        .run_turn(&e.alice, &s, "main", "   ", None)
        .await
        .unwrap_err();
    assert_eq!(err.code, "invalid_input");
    e.mgr
        .set_status(&e.alice, &s, kiln_types::SessionStatus::Paused)
        .await
        .unwrap();
    let err = agent
        .run_turn(&e.alice, &s, "main", "are you there", None)
        .await
        .unwrap_err();
    assert_eq!(err.code, "session_not_active");
    assert_eq!(e.path(&s, "main").await.len(), before);
}

#[tokio::test]
async fn a_client_leaving_mid_answer_leaves_a_consistent_branch() {
    let e = env().await;
    let s = e.session(None).await;
    let agent = e.agent(Arc::new(OfflinePlanner::new()), quiet());
    let (tx, mut rx) = mpsc::channel(1);
    let task = {
        let agent = agent.clone();
        let alice = e.alice.clone();
        let s = s.clone();
        tokio::spawn(async move {
            agent
                .run_turn(&alice, &s, "main", "Analyse LiFePO4", Some(&tx))
                .await
        })
    };
    let mut tokens = 0;
    while let Some(ev) = rx.recv().await {
        if let TurnEvent::Token { .. } = ev {
            tokens += 1;
            if tokens == 2 {
                break;
            }
        }
    }
    drop(rx);
    let out = task.await.unwrap().unwrap();
    assert!(out.interrupted);
    let path = e.path(&s, "main").await;
    let last = path.last().unwrap();
    assert_eq!(last.kind, NodeKind::Assistant);
    assert_eq!(last.data.as_ref().unwrap()["interrupted"], true);
    assert!(!last.content.is_empty());
    // The tool call made before the client left is recorded with its result.
    let kinds: Vec<NodeKind> = path.iter().map(|n| n.kind).collect();
    assert!(kinds.contains(&NodeKind::ToolCall) && kinds.contains(&NodeKind::ToolResult));
}

#[tokio::test]
async fn detected_discoveries_pass_the_filters_and_cite_the_answer() {
    let e = env().await;
    let s = e.session(None).await;
    let model = Arc::new(ScriptedModel::new([
        ScriptedModel::text("The olivine framework gives LiFePO4 its thermal stability."),
        ScriptedModel::text(
            json!({"discoveries": [
                {"category": "stability_insight", "description": "The olivine framework gives LiFePO4 thermal stability.", "confidence": 0.9},
                {"category": "structure_property", "description": "A weak guess.", "confidence": 0.2}
            ]})
            .to_string(),
        ),
    ]));
    let agent = e.agent(model, AgentConfig::default());
    let out = agent
        .run_turn(&e.alice, &s, "main", "Why is LiFePO4 stable?", None)
        .await
        .unwrap();
    assert_eq!(out.discoveries.len(), 1);
    assert_eq!(out.discoveries[0].category, "stability_insight");
    let state = e.mgr.state(&e.alice, &s, "main", None).await.unwrap();
    assert_eq!(state.discoveries.len(), 1);
    let d = &state.discoveries[0];
    assert_eq!(d.evidence, vec![out.answer_node.clone()]);
    assert_eq!(
        serde_json::to_value(d.source).unwrap(),
        json!("auto"),
        "detected, not manual"
    );
    assert_eq!(d.confidence, Some(0.9));
}

#[tokio::test]
async fn older_turns_are_summarised_once_and_the_summary_is_used() {
    let e = env().await;
    let ctx = ContextConfig {
        max_history: 4,
        ..ContextConfig::default()
    };
    let s = e.session(Some(ctx)).await;
    let model = Arc::new(ScriptedModel::default());
    let config = AgentConfig {
        summary_batch: 4,
        ..quiet()
    };
    let agent = e.agent(model.clone(), config);
    let mut summaries = Vec::new();
    for i in 0..8 {
        // A summary call may come first; queue enough answers either way.
        model.push(ScriptedModel::text(format!("summary text {i}")));
        model.push(ScriptedModel::text(format!("answer {i}")));
        let out = agent
            .run_turn(&e.alice, &s, "main", &format!("question {i}"), None)
            .await
            .unwrap();
        if let Some(n) = out.summary_node {
            summaries.push(n);
        }
        // Drain whichever answer was not used, so the queue stays aligned.
        while model.remaining() > 0 {
            let _ = kiln_llm::ChatModel::complete(model.as_ref(), kiln_llm::ChatRequest::default())
                .await;
        }
    }
    assert!(summaries.len() >= 2, "summaries: {summaries:?}");
    let path = e.path(&s, "main").await;
    let ranges: Vec<(i64, i64)> = path
        .iter()
        .filter(|n| n.kind == NodeKind::Summary)
        .map(|n| {
            let d = n.data.as_ref().unwrap();
            (
                d["covers_from"].as_i64().unwrap(),
                d["covers_through"].as_i64().unwrap(),
            )
        })
        .collect();
    for pair in ranges.windows(2) {
        assert!(pair[1].0 > pair[0].1, "ranges overlap: {ranges:?}");
    }
    // The last turn's request carried the newest summary, and no more than 4 history messages.
    let window = agent.context(&e.alice, &s, Some("main")).await.unwrap();
    assert_eq!(window.summary_node.as_ref(), summaries.last());
    assert!(window.history_nodes.len() <= 4);
    // A fork inherits the summary; the ancestor nodes are unchanged.
    e.mgr
        .create_branch(&e.alice, &s, "fork", None)
        .await
        .unwrap();
    let forked = agent.context(&e.alice, &s, Some("fork")).await.unwrap();
    assert_eq!(forked.summary_node, window.summary_node);
}

#[tokio::test]
async fn the_offline_conversation_from_the_brief_works_across_a_branch_and_merge() {
    let e = env().await;
    let s = e.session(None).await;
    let agent = e.agent(Arc::new(OfflinePlanner::new()), AgentConfig::default());
    let ask = |q: &'static str, branch: &'static str| {
        let agent = agent.clone();
        let alice = e.alice.clone();
        let s = s.clone();
        async move { agent.run_turn(&alice, &s, branch, q, None).await.unwrap() }
    };
    let a1 = ask("Analyse LiFePO4", "main").await;
    assert!(a1.answer.contains("157.755"), "{}", a1.answer);
    let a2 = ask("What about its oxidation states?", "main").await;
    assert_eq!(a2.tool_calls[0].arguments["formula"], "LiFePO4");
    assert_eq!(a2.tool_calls[0].arguments["action"], "validate");
    let a3 = ask("Show me similar cathode materials", "main").await;
    assert_eq!(a3.tool_calls[0].arguments["action"], "similar");
    assert!(a3.answer.contains("LiMnPO4"), "{}", a3.answer);
    let a4 = ask(
        "Record that the olivine structure seems crucial for Li+ mobility",
        "main",
    )
    .await;
    assert_eq!(a4.tool_calls[0].name, "record_discovery");
    let state = e.mgr.state(&e.alice, &s, "main", None).await.unwrap();
    assert_eq!(state.discoveries.len(), 1, "{:?}", state.discoveries);
    assert_eq!(state.discoveries[0].materials, vec!["LiFePO4".to_string()]);

    e.mgr
        .create_branch(&e.alice, &s, "cobalt", None)
        .await
        .unwrap();
    let b1 = ask("Analyse LiCoO2", "cobalt").await;
    assert!(b1.answer.contains("LiCoO2"), "{}", b1.answer);
    let main_state = e.mgr.state(&e.alice, &s, "main", None).await.unwrap();
    assert!(main_state.materials.iter().all(|m| m.formula != "LiCoO2"));
    let merged = e
        .mgr
        .merge(&e.alice, &s, "cobalt", "main", MergeStrategy::Fail)
        .await
        .unwrap();
    assert!(merged.merged);
    let state = e.mgr.state(&e.alice, &s, "main", None).await.unwrap();
    let formulas: Vec<&str> = state.materials.iter().map(|m| m.formula.as_str()).collect();
    assert!(
        formulas.contains(&"LiCoO2") && formulas.contains(&"LiFePO4"),
        "{formulas:?}"
    );
    assert_eq!(state.discoveries.len(), 1);
}

#[tokio::test]
async fn direct_tool_calls_record_like_the_agent_and_reject_bad_arguments() {
    let e = env().await;
    let s = e.session(None).await;
    let agent = e.agent(Arc::new(OfflinePlanner::new()), quiet());
    let err = agent
        .call_tool(
            &e.alice,
            &s,
            Some("main"),
            "materials_analyzer",
            json!({"action": "analyze", "formula": "Xx2O3"}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, "invalid_arguments");
    let err = agent
        .call_tool(&e.alice, &s, Some("main"), "nope", json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.code, "unknown_tool");
    assert!(e.path(&s, "main").await.is_empty(), "nothing recorded");
    let space = json!({"action": "define_space",
        "variables": [{"name": "t", "type": "real", "bounds": [300, 900]}],
        "objective": {"name": "y", "goal": "maximize"}});
    let rec = agent
        .call_tool(&e.alice, &s, Some("main"), "bayesian_optimizer", space)
        .await
        .unwrap();
    assert!(rec.ok);
    // A malformed call says what is wrong once, not "invalid arguments: invalid arguments: …".
    let err = agent
        .call_tool(
            &e.alice,
            &s,
            Some("main"),
            "bayesian_optimizer",
            json!({"action": "suggest", "seed": 1}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, "invalid_arguments");
    assert_eq!(
        err.message.matches("invalid arguments").count(),
        1,
        "{}",
        err.message
    );
    assert!(
        err.message.contains("unknown field `seed`"),
        "{}",
        err.message
    );
    assert_eq!(
        e.kinds(&s, "main").await,
        vec![
            NodeKind::ToolCall,
            NodeKind::ToolResult,
            NodeKind::ToolState
        ]
    );
    // Two branches add different experiments; the merge unions them with the tool's rule.
    e.mgr.create_branch(&e.alice, &s, "b", None).await.unwrap();
    agent
        .call_tool(&e.alice, &s, Some("main"), "bayesian_optimizer", json!({"action": "add_experiments", "experiments": [{"inputs": {"t": 400}, "output": 0.3}]}))
        .await
        .unwrap();
    agent
        .call_tool(&e.alice, &s, Some("b"), "bayesian_optimizer", json!({"action": "add_experiments", "experiments": [{"inputs": {"t": 800}, "output": 0.6}]}))
        .await
        .unwrap();
    // The agent's manager carries the tool registry as its merger.
    agent
        .manager()
        .merge(&e.alice, &s, "b", "main", MergeStrategy::Fail)
        .await
        .unwrap();
    let state = e.mgr.state(&e.alice, &s, "main", None).await.unwrap();
    let n = state.tools["bayesian_optimizer"]["experiments"]
        .as_array()
        .map(Vec::len);
    assert_eq!(n, Some(2));
    // The web view: the data table has a row per experiment, the best (0.6) starred, and
    // a convergence chart.
    let view = agent
        .tools()
        .get("bayesian_optimizer")
        .unwrap()
        .view(&state.tools["bayesian_optimizer"])
        .unwrap();
    let data = view
        .tables
        .iter()
        .find(|t| t.caption.starts_with("Data"))
        .unwrap();
    assert_eq!(data.columns, ["#", "t", "y"]);
    assert_eq!(data.rows.len(), 2);
    let best: Vec<&Vec<String>> = data.rows.iter().filter(|r| r[0].ends_with('★')).collect();
    assert_eq!(best.len(), 1);
    assert_eq!(best[0][2], "0.6");
    assert!(view.charts[0].svg.starts_with("<svg"));
    assert!(
        view.summary
            .starts_with("maximize y over 1 variable(s); 2 experiment(s)")
    );
    assert_eq!(view.charts.len(), 1, "no model charts below 3 experiments");
    // With a third experiment and a fitted model, the view adds the model along each variable
    // and the LOO parity chart; new data makes the stored model stale and a page view does not
    // refit, so they leave until the next fit.
    let tool = agent.tools().get("bayesian_optimizer").unwrap().clone();
    agent
        .call_tool(&e.alice, &s, Some("main"), "bayesian_optimizer", json!({"action": "add_experiments", "experiments": [{"inputs": {"t": 600}, "output": 0.9}]}))
        .await
        .unwrap();
    agent
        .call_tool(
            &e.alice,
            &s,
            Some("main"),
            "bayesian_optimizer",
            json!({"action": "suggest"}),
        )
        .await
        .unwrap();
    let state = e.mgr.state(&e.alice, &s, "main", None).await.unwrap();
    let view = tool.view(&state.tools["bayesian_optimizer"]).unwrap();
    let titles: Vec<&str> = view.charts.iter().map(|c| c.title.as_str()).collect();
    assert_eq!(
        titles,
        [
            "Convergence",
            "Model along t",
            "Leave-one-out: predicted vs measured"
        ]
    );
    assert!(view.charts.iter().all(|c| c.svg.contains("<desc>")));
    agent
        .call_tool(&e.alice, &s, Some("main"), "bayesian_optimizer", json!({"action": "add_experiments", "experiments": [{"inputs": {"t": 700}, "output": 0.8}]}))
        .await
        .unwrap();
    let state = e.mgr.state(&e.alice, &s, "main", None).await.unwrap();
    let view = tool.view(&state.tools["bayesian_optimizer"]).unwrap();
    assert_eq!(view.charts.len(), 1, "a stale model is not drawn");
    // Another user cannot run tools on alice's session.
    let err = agent
        .call_tool(
            &e.bob,
            &s,
            Some("main"),
            "notebook",
            json!({"action": "list"}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, "not_found");
}

#[tokio::test]
async fn the_optimizer_restores_exactly_without_refitting_and_reports_in_the_markdown_export() {
    let e = env().await;
    let s = e.session(None).await;
    let agent = e.agent(Arc::new(OfflinePlanner::new()), quiet());
    let run = |args: Value| {
        let agent = agent.clone();
        let (alice, s) = (e.alice.clone(), s.clone());
        async move {
            agent
                .call_tool(&alice, &s, Some("main"), "bayesian_optimizer", args)
                .await
                .unwrap()
        }
    };
    run(json!({"action": "define_space",
        "variables": [
            {"name": "t", "type": "real", "bounds": [300, 900], "unit": "K"},
            {"name": "dopant", "type": "categorical", "categories": ["Mn", "Co", "Ni"]}
        ],
        "objective": {"name": "capacity", "goal": "maximize"}}))
    .await;
    let experiments: Vec<Value> = [
        (350.0, "Mn", 120.0),
        (500.0, "Co", 141.0),
        (650.0, "Ni", 150.0),
        (800.0, "Mn", 133.0),
        (720.0, "Co", 152.0),
    ]
    .iter()
    .map(|(t, d, y)| json!({"inputs": {"t": t, "dopant": d}, "output": y}))
    .collect();
    run(json!({"action": "add_experiments", "experiments": experiments})).await;
    run(json!({"action": "suggest", "strategy": "EI"})).await;
    e.mgr
        .create_checkpoint(&e.alice, &s, "fitted", None, None)
        .await
        .unwrap();
    let tool_state = |st: kiln_types::ResearchState| st.tools["bayesian_optimizer"].clone();
    let at_checkpoint = tool_state(e.mgr.state(&e.alice, &s, "main", None).await.unwrap());
    assert!(!at_checkpoint["last_suggestions"].is_null());

    // More work after the checkpoint: new data, a new fit and suggestion, a lock.
    run(json!({"action": "add_experiments",
        "experiments": [{"inputs": {"t": 700, "dopant": "Ni"}, "output": 155.0}]}))
    .await;
    run(json!({"action": "suggest", "strategy": "UCB", "beta": 2.0})).await;
    run(json!({"action": "lock", "what": "data"})).await;
    let later = tool_state(e.mgr.state(&e.alice, &s, "main", None).await.unwrap());
    assert_ne!(later, at_checkpoint);

    // Restore gives back the optimizer exactly: data, fitted model and suggestions.
    e.mgr.restore(&e.alice, &s, "fitted", None).await.unwrap();
    let restored = tool_state(e.mgr.state(&e.alice, &s, "main", None).await.unwrap());
    assert_eq!(restored, at_checkpoint);
    // Reading the status after a load does not refit: the stored state is untouched.
    let status = run(json!({"action": "status"})).await;
    assert!(status.ok);
    let after_status = tool_state(e.mgr.state(&e.alice, &s, "main", None).await.unwrap());
    assert_eq!(after_status, at_checkpoint);

    // The Markdown export carries the optimizer's tables.
    let md = agent.manager().export_markdown(&e.alice, &s).await.unwrap();
    assert!(md.contains("### Tool `bayesian_optimizer`"), "{md}");
    assert!(md.contains("#### Search space"), "{md}");
    assert!(md.contains("| t | real | [300, 900]"), "{md}");
    assert!(md.contains("#### Data (5 experiments)"), "{md}");
    assert!(md.contains("#### Latest suggestions (EI)"), "{md}");
    assert!(md.contains("dopant = "), "{md}");
    assert!(
        md.contains("#### Convergence") && md.contains("<svg"),
        "{md}"
    );
}

/// A researcher's 30-turn conversation with the offline planner at the default settings:
/// analyses, checks, comparisons, an optimisation campaign in lab shorthand, notes, metrics and
/// findings. Tool results enter the context as their text (the JSON stays on the node), so the
/// default 8,000-token window holds the conversation well past turn 20 before anything must be
/// summarised; and a summary, when one comes, sits between two turns.
#[tokio::test]
async fn a_realistic_conversation_is_not_summarised_before_turn_20() {
    let e = env().await;
    let s = e.session(None).await;
    let agent = e.agent(Arc::new(OfflinePlanner::new()), AgentConfig::default());
    let turns = [
        "Analyse LiFePO4",
        "what are the possible oxidation states for Mn3O4",
        "is Li3PO4 plausible",
        "LiFePO4 vs LiMn2O4",
        "what could replace Co in LiCoO2?",
        "what is the composition by weight of LiFePO4",
        "temperature 300-900 °C, time 1-10 h, atmosphere air or argon, maximise capacity",
        "got 151 mAh/g at 700 °C for 5 h in air",
        "got 138 mAh/g at 600 °C for 3 h in argon",
        "got 160 mAh/g at 800 °C for 6 h in air",
        "suggest 4 experiments",
        "note: the furnace drifted by 5 °C during run 3",
        "got 155 mAh/g at 750 °C for 4 h in argon",
        "where should I measure next?",
        "Optimizer status",
        "track coulombic efficiency 99.2 %",
        "We found that Mn doping reduces capacity fade",
        "analyze LiFePO4, LiCoO2, LiMn2O4",
        "difference between Fe2O3 and Fe3O4",
        "parameters: furnace=tube, crucible=alumina",
        "got 149 mAh/g at 650 °C for 8 h in air",
        "suggest 2 experiments",
        "Does Fe3O4 balance?",
        "any substitutions for LiNiO2?",
        "lab note - ball milled for 4 h at 300 rpm",
        "log metric rmse 0.12 at step 4",
        "discovery: annealing above 800 °C destroys the layered phase",
        "Search the session for olivine",
        "mass fractions for CuSO4·5H2O",
        "how has the capacity metric evolved?",
    ];
    let mut first_summary = None;
    let mut summaries = 0;
    let mut peak = 0;
    for (i, text) in turns.iter().enumerate() {
        let out = agent
            .run_turn(&e.alice, &s, "main", text, None)
            .await
            .unwrap_or_else(|err| panic!("turn {} ({text}): {err:?}", i + 1));
        peak = peak.max(out.context_tokens);
        if out.summary_node.is_some() {
            summaries += 1;
            first_summary.get_or_insert(i + 1);
        }
    }
    println!(
        "30 turns: first summary at turn {first_summary:?}, {summaries} summaries, peak context \
         {peak} tokens"
    );
    assert!(
        first_summary.is_none_or(|t| t >= 20),
        "summarised at turn {first_summary:?}"
    );
    // Summaries sit between turns: right before a question, never between a question and
    // what answers it.
    let path = e.path(&s, "main").await;
    let messages: Vec<_> = path
        .iter()
        .filter(|n| {
            matches!(
                n.kind,
                NodeKind::User
                    | NodeKind::Assistant
                    | NodeKind::ToolCall
                    | NodeKind::ToolResult
                    | NodeKind::Summary
            )
        })
        .collect();
    for (i, n) in messages.iter().enumerate() {
        if n.kind == NodeKind::Summary {
            assert_eq!(
                messages[i + 1].kind,
                NodeKind::User,
                "a summary before a question"
            );
            assert_ne!(messages[i - 1].kind, NodeKind::User, "not after a question");
        }
    }
}

/// "What have we found?" lists the findings recorded on the branch (the agent hands them to the
/// planner), newest first; a session that has none says so.
#[tokio::test]
async fn the_findings_of_a_branch_are_listed_on_request() {
    let e = env().await;
    let s = e.session(None).await;
    let agent = e.agent(Arc::new(OfflinePlanner::new()), quiet());
    for text in [
        "We found that Mn doping reduces capacity fade",
        "discovery: annealing above 800 °C destroys the layered phase",
    ] {
        agent
            .run_turn(&e.alice, &s, "main", text, None)
            .await
            .unwrap();
    }
    let out = agent
        .run_turn(&e.alice, &s, "main", "what have we discovered?", None)
        .await
        .unwrap();
    let (newest, older) = (
        out.answer
            .find("Annealing above 800 °C destroys the layered phase"),
        out.answer.find("Mn doping reduces capacity fade"),
    );
    assert!(newest.is_some() && older.is_some(), "{}", out.answer);
    assert!(newest < older, "newest first: {}", out.answer);
    let other = e.session(None).await;
    let out = agent
        .run_turn(&e.alice, &other, "main", "what did we find so far?", None)
        .await
        .unwrap();
    assert!(
        out.answer.starts_with("No findings are recorded"),
        "{}",
        out.answer
    );
}
