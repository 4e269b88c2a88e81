//! The offline planner's specification: every request in `tests/corpus/*.jsonl`, written the
//! way researchers write, must map to the expected tool calls (or the expected reply).
//!
//! A case is one JSON object per line: `text` (the request), optional `focus` (the session's
//! focus material), optional `findings` (those recorded on the branch, newest first), optional
//! `prior` (earlier requests in the same conversation, each run
//! through the planner first with a stand-in tool result), and either `calls` (a list of
//! `[tool, arguments]`; every key given must match, deeply) or `reply` (substrings the answer
//! must contain, with no tool call) and optional `not` (substrings it must not contain).

use std::path::Path;

use kiln_llm::{ChatMessage, ChatRequest, OfflinePlanner, PlannerContext, ToolSpec};
use serde_json::{Value, json};

fn tools() -> Vec<ToolSpec> {
    [
        "materials_analyzer",
        "bayesian_optimizer",
        "notebook",
        "session_search",
        "user_memory",
        "record_discovery",
    ]
    .into_iter()
    .map(|name| ToolSpec {
        name: name.into(),
        description: format!("the {name} tool"),
        parameters: json!({"type": "object"}),
    })
    .collect()
}

fn request(messages: &[ChatMessage], context: &PlannerContext) -> ChatRequest {
    ChatRequest::new(messages.to_vec())
        .with_tools(tools())
        .with_context(context.clone())
}

/// Runs one earlier turn to its answer, with a stand-in result for each call.
fn run_prior(messages: &mut Vec<ChatMessage>, context: &PlannerContext, text: &str) {
    messages.push(ChatMessage::user(text));
    for _ in 0..4 {
        let response = OfflinePlanner::new().respond(&request(messages, context));
        messages.push(response.to_message());
        if response.tool_calls.is_empty() {
            return;
        }
        for call in &response.tool_calls {
            let text = format!("{} done", call.name);
            messages.push(ChatMessage::tool(
                call.id.clone(),
                json!({"ok": true, "text": text}).to_string(),
            ));
        }
    }
}

/// Returns why the case fails, or `None` when the planner maps it right.
fn check(case: &Value) -> Option<String> {
    let text = case["text"].as_str()?;
    let context = PlannerContext {
        focus: case["focus"].as_str().map(str::to_owned),
        recent_materials: case["focus"]
            .as_str()
            .map(str::to_owned)
            .into_iter()
            .collect(),
        findings: case["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        ..Default::default()
    };
    let mut messages = vec![ChatMessage::system("You are Kiln.")];
    for prior in case["prior"].as_array().into_iter().flatten() {
        run_prior(&mut messages, &context, prior.as_str().unwrap_or_default());
    }
    messages.push(ChatMessage::user(text));
    let response = OfflinePlanner::new().respond(&request(&messages, &context));
    let got: Vec<Value> = response
        .tool_calls
        .iter()
        .map(|call| json!([call.name, call.parse_arguments().unwrap_or(Value::Null)]))
        .collect();
    let content = response.content.clone().unwrap_or_default();
    if let Some(expected) = case["calls"].as_array() {
        let matches = got.len() == expected.len()
            && got.iter().zip(expected).all(|(got, want)| {
                got[0] == want[0]
                    && want[1]
                        .as_object()
                        .is_some_and(|keys| keys.iter().all(|(k, v)| got[1].get(k) == Some(v)))
            });
        return (!matches).then(|| {
            format!(
                "expected {}\n     got {} {content:?}",
                json!(expected),
                json!(got)
            )
        });
    }
    let mut problems = Vec::new();
    if !got.is_empty() {
        problems.push(format!("expected a reply, got calls {}", json!(got)));
    }
    for want in case["reply"].as_array().into_iter().flatten() {
        let want = want.as_str().unwrap_or_default();
        if !content.contains(want) {
            problems.push(format!("the reply lacks {want:?}"));
        }
    }
    for unwanted in case["not"].as_array().into_iter().flatten() {
        let unwanted = unwanted.as_str().unwrap_or_default();
        if content.contains(unwanted) {
            problems.push(format!("the reply contains {unwanted:?}"));
        }
    }
    (!problems.is_empty()).then(|| format!("{}\n     reply: {content:?}", problems.join("; ")))
}

#[test]
fn the_planner_maps_every_request_in_the_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    let mut total = 0;
    let mut failures = Vec::new();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        for (line, text) in std::fs::read_to_string(&file).unwrap().lines().enumerate() {
            if text.trim().is_empty() {
                continue;
            }
            let case: Value = serde_json::from_str(text)
                .unwrap_or_else(|e| panic!("{name}:{}: not JSON: {e}", line + 1));
            assert!(case["text"].is_string(), "{name}:{}: no text", line + 1);
            assert!(
                case["calls"].is_array() != case["reply"].is_array(),
                "{name}:{}: a case has either calls or reply",
                line + 1
            );
            total += 1;
            if let Some(why) = check(&case) {
                failures.push(format!(
                    "{name}:{} {:?}\n     {why}",
                    line + 1,
                    case["text"]
                ));
            }
        }
    }
    let right = total - failures.len();
    println!(
        "corpus: {right} of {total} requests mapped right ({:.1}%)",
        100.0 * right as f64 / total as f64
    );
    assert!(total >= 150, "the corpus has only {total} requests");
    assert!(
        failures.is_empty(),
        "{} request(s) mapped wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
