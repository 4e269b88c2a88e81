//! An external MCP tool server (tests/fixtures/mcp_units_server.py, on the official Python SDK)
//! as session tools: the agent (scripted model) calls it and the result is stored; a server
//! killed mid-call ends the turn with a readable tool error, not a hang; the next call starts
//! it again; images are kept as files; a user not allowed is refused.
//!
//! Needs a Python with the `mcp` package: `KILN_MCP_PYTHON` names it (scripts/mcp makes a
//! virtualenv and runs this with `--ignored`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kiln_agent::{Agent, Registry};
use kiln_llm::{ScriptedModel, ToolCall};
use kiln_session::{AgentConfig, Caller, Config, CreateSession, McpServerConfig, SessionManager};
use kiln_types::NodeKind;
use serde_json::{Value, json};

struct Env {
    dir: tempfile::TempDir,
    mgr: SessionManager,
    alice: Caller,
    bob: Caller,
}

fn python() -> String {
    std::env::var("KILN_MCP_PYTHON")
        .expect("KILN_MCP_PYTHON must name a Python with the mcp package (see scripts/mcp)")
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/mcp_units_server.py")
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.storage.data_dir = dir.path().join("data");
    let mgr = SessionManager::open(&config).await.unwrap();
    let (a, _) = mgr.add_user("alice", true).await.unwrap();
    let (b, _) = mgr.add_user("bob", false).await.unwrap();
    Env {
        dir,
        mgr,
        alice: a.into(),
        bob: b.into(),
    }
}

impl Env {
    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn server(&self) -> McpServerConfig {
        let env = [
            ("KILN_FIXTURE_PID_FILE", "pid"),
            ("KILN_FIXTURE_STARTS_FILE", "starts"),
            ("KILN_FIXTURE_SLOW_FILE", "slow"),
        ]
        .into_iter()
        .map(|(k, f)| (k.to_owned(), self.file(f).display().to_string()))
        .collect();
        McpServerConfig {
            name: "units".into(),
            command: python(),
            args: vec![fixture().display().to_string()],
            env,
            timeout_secs: 20,
            users: vec!["alice".into()],
            ..Default::default()
        }
    }

    fn starts(&self) -> usize {
        std::fs::read_to_string(self.file("starts"))
            .unwrap_or_default()
            .lines()
            .count()
    }

    async fn session(&self) -> String {
        let req = CreateSession {
            name: "units".into(),
            ..Default::default()
        };
        self.mgr.create_session(&self.alice, req).await.unwrap().id
    }
}

fn call(id: &str, name: &str, args: Value) -> ToolCall {
    ToolCall::new(id, name, &args)
}

fn quiet() -> AgentConfig {
    AgentConfig {
        auto_detect_discoveries: false,
        ..AgentConfig::default()
    }
}

#[tokio::test]
#[ignore = "needs KILN_MCP_PYTHON, a Python with the mcp package (scripts/mcp)"]
async fn an_external_server_is_a_session_tool_that_survives_a_crash() {
    let e = env().await;
    let mut tools = Registry::builtin();
    let names = kiln_mcp::attach(&mut tools, &[e.server()]).await.unwrap();
    for want in ["units.convert", "units.slow", "units.plot", "units.broken"] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    let convert = tools
        .infos()
        .into_iter()
        .find(|t| t.name == "units.convert");
    let schema = convert.expect("listed with the built-in tools").parameters;
    assert_eq!(schema["required"], json!(["value", "from_unit", "to_unit"]));
    assert_eq!(e.starts(), 1, "listing the tools started the server once");

    let model = Arc::new(ScriptedModel::new([
        ScriptedModel::tool_calls(vec![call(
            "c1",
            "units.convert",
            json!({"value": 1.0, "from_unit": "eV", "to_unit": "kJ/mol"}),
        )]),
        ScriptedModel::text("1 eV is 96.5 kJ/mol."),
    ]));
    let agent = Agent::new(e.mgr.clone(), model.clone(), tools, quiet());
    let s = e.session().await;

    // The agent calls the tool; call and result are recorded on the branch.
    let out = agent
        .run_turn(&e.alice, &s, "main", "What is 1 eV in kJ/mol?", None)
        .await
        .unwrap();
    let rec = &out.tool_calls[0];
    assert!(rec.ok, "{rec:?}");
    let value = rec.result["structured"]["value"].as_f64().unwrap();
    assert!((value - 96.485).abs() < 0.01, "{value}");
    let result = e.mgr.node(&e.alice, &s, &rec.result_node).await.unwrap();
    assert_eq!(result.kind, NodeKind::ToolResult);
    assert_eq!(
        result.data.as_ref().unwrap()["result"]["server"],
        json!("units")
    );
    // The model saw the tool among its tools, with the server's schema.
    let offered = &model.requests()[0].tools;
    assert!(offered.iter().any(|t| t.name == "units.convert"));

    // Images are kept as files on the data directory.
    let plot = agent
        .call_tool(&e.alice, &s, None, "units.plot", json!({}))
        .await
        .unwrap();
    let image = &plot.result["images"][0];
    assert_eq!(image["media_type"], "image/png");
    let path = e.mgr.data_dir().join(image["path"].as_str().unwrap());
    let png = std::fs::read(&path).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "{path:?}");

    // A tool's own error is a readable tool error.
    let err = agent
        .call_tool(&e.alice, &s, None, "units.broken", json!({}))
        .await
        .unwrap_err();
    assert!(
        err.message.contains("the furnace is off"),
        "{}",
        err.message
    );

    // Killed mid-call: the turn ends, with the failure recorded and readable.
    model.push(ScriptedModel::tool_calls(vec![call(
        "c2",
        "units.slow",
        json!({"seconds": 60}),
    )]));
    model.push(ScriptedModel::text("The converter crashed."));
    let slow_file = e.file("slow");
    let killer = tokio::spawn(async move {
        for _ in 0..200 {
            if let Ok(pid) = std::fs::read_to_string(&slow_file) {
                let status = std::process::Command::new("kill")
                    .args(["-9", pid.trim()])
                    .status()
                    .unwrap();
                assert!(status.success());
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the slow call never started");
    });
    let turn = agent.run_turn(&e.alice, &s, "main", "Take your time", None);
    let out = tokio::time::timeout(Duration::from_secs(15), turn)
        .await
        .expect("a crashed server ends the turn (no hang)")
        .unwrap();
    killer.await.unwrap();
    let rec = &out.tool_calls[0];
    assert!(!rec.ok);
    let message = rec.result["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("`units` failed") && message.contains("restarted"),
        "{message}"
    );
    assert_eq!(out.answer, "The converter crashed.");
    // The model was told, in words.
    let told = serde_json::to_string(&model.requests().last().unwrap().messages).unwrap();
    assert!(told.contains("restarted at the next call"), "{told}");

    // The next call starts the server again.
    let again = agent
        .call_tool(
            &e.alice,
            &s,
            None,
            "units.convert",
            json!({"value": 1.0, "from_unit": "kcal/mol", "to_unit": "kJ/mol"}),
        )
        .await
        .unwrap();
    assert!((again.result["structured"]["value"].as_f64().unwrap() - 4.184).abs() < 1e-9);
    assert_eq!(e.starts(), 2, "restarted once");

    // Bob is not among the server's users.
    let sb = e
        .mgr
        .create_session(
            &e.bob,
            CreateSession {
                name: "bob's".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .id;
    let refused = agent
        .call_tool(
            &e.bob,
            &sb,
            None,
            "units.convert",
            json!({"value": 1.0, "from_unit": "eV", "to_unit": "J"}),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code, "forbidden");
    assert!(refused.message.contains("units"), "{}", refused.message);
}

#[tokio::test]
async fn a_server_that_cannot_start_is_left_out_and_the_rest_still_come() {
    let mut tools = Registry::builtin();
    let before = tools.names().len();
    let missing = McpServerConfig {
        name: "ghost".into(),
        command: "/nonexistent/kiln-mcp-test-server".into(),
        timeout_secs: 5,
        ..Default::default()
    };
    let names = tokio::time::timeout(
        Duration::from_secs(10),
        kiln_mcp::attach(&mut tools, &[missing]),
    )
    .await
    .expect("answers within 10 s")
    .unwrap();
    assert!(names.is_empty());
    assert_eq!(tools.names().len(), before);
    // A configuration mistake is an error, not a silent skip.
    let two = McpServerConfig {
        name: "twice".into(),
        command: "/nonexistent".into(),
        ..Default::default()
    };
    let err = kiln_mcp::attach(&mut tools, &[two.clone(), two])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("twice"), "{err}");
}

#[tokio::test]
#[ignore = "needs KILN_MCP_PYTHON, a Python with the mcp package (scripts/mcp)"]
async fn an_expensive_tools_results_are_cached_per_user_across_sessions() {
    let e = env().await;
    let mut server = e.server();
    server.users = Vec::new();
    server.cache = "1h".into();
    server.cache_tools = [("plot".to_owned(), "off".to_owned())]
        .into_iter()
        .collect();
    let mut tools = Registry::builtin();
    kiln_mcp::attach(&mut tools, &[server]).await.unwrap();
    let agent = Agent::new(
        e.mgr.clone(),
        Arc::new(ScriptedModel::new([])),
        tools,
        quiet(),
    );
    let args = json!({"value": 2.0, "from_unit": "eV", "to_unit": "kJ/mol"});
    let first_session = e.session().await;
    let first = agent
        .call_tool(
            &e.alice,
            &first_session,
            None,
            "units.convert",
            args.clone(),
        )
        .await
        .unwrap();
    assert_eq!(first.result["cache"]["hit"], false, "{:?}", first.result);
    // The same call in another of alice's sessions, keys in another order: a hit, marked.
    let second_session = e.session().await;
    let reordered = json!({"to_unit": "kJ/mol", "value": 2.0, "from_unit": "eV"});
    let second = agent
        .call_tool(&e.alice, &second_session, None, "units.convert", reordered)
        .await
        .unwrap();
    assert_eq!(second.result["cache"]["hit"], true, "{:?}", second.result);
    assert_eq!(second.result["structured"], first.result["structured"]);
    assert!(
        second.text.contains("cached result from"),
        "{}",
        second.text
    );
    // Still recorded on the session like any call.
    let node = e
        .mgr
        .node(&e.alice, &second_session, &second.result_node)
        .await
        .unwrap();
    assert_eq!(node.kind, NodeKind::ToolResult);
    // Other arguments, another user, or a tool with the cache off: no hit.
    let other = agent
        .call_tool(
            &e.alice,
            &first_session,
            None,
            "units.convert",
            json!({"value": 3.0, "from_unit": "eV", "to_unit": "kJ/mol"}),
        )
        .await
        .unwrap();
    assert_eq!(other.result["cache"]["hit"], false);
    let bobs = e
        .mgr
        .create_session(
            &e.bob,
            CreateSession {
                name: "bob's".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .id;
    let theirs = agent
        .call_tool(&e.bob, &bobs, None, "units.convert", args)
        .await
        .unwrap();
    assert_eq!(
        theirs.result["cache"]["hit"], false,
        "never shared across users"
    );
    let plot = agent
        .call_tool(&e.alice, &first_session, None, "units.plot", json!({}))
        .await
        .unwrap();
    assert!(plot.result.get("cache").is_none(), "{:?}", plot.result);
}
