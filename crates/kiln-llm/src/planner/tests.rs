//! Planner tests through the `ChatModel` interface: the issue's LiFePO4 conversation driven by a
//! miniature agent loop, tool availability, summaries and discovery classification.

use serde_json::{Value, json};

use super::*;
use crate::types::{PlannerContext, ToolSpec};

fn tools() -> Vec<ToolSpec> {
    [
        "materials_analyzer",
        "bayesian_optimizer",
        "notebook",
        "session_search",
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

/// A fake tool whose text names what it was asked, so the answer can be checked for quoting.
fn fake_tool(call: &ToolCall) -> String {
    json!({"text": format!("[{} {}]", call.name, call.arguments), "data": {}}).to_string()
}

/// Runs one turn like the agent does; returns the tool calls made and the final answer.
async fn run_turn(
    model: &dyn ChatModel,
    messages: &mut Vec<ChatMessage>,
    context: &PlannerContext,
    text: &str,
) -> (Vec<ToolCall>, String) {
    messages.push(ChatMessage::user(text));
    let mut made = Vec::new();
    for _ in 0..4 {
        let request = ChatRequest::new(messages.clone())
            .with_tools(tools())
            .with_context(context.clone());
        let response = model.complete(request).await.unwrap();
        messages.push(response.to_message());
        if response.tool_calls.is_empty() {
            return (made, response.content.unwrap_or_default());
        }
        for call in &response.tool_calls {
            messages.push(ChatMessage::tool(call.id.clone(), fake_tool(call)));
        }
        made.extend(response.tool_calls);
    }
    panic!("the planner did not finish within the step budget");
}

fn arguments(calls: &[ToolCall]) -> Vec<(String, Value)> {
    calls
        .iter()
        .map(|call| (call.name.clone(), call.parse_arguments().unwrap()))
        .collect()
}

#[tokio::test]
async fn the_lifepo4_conversation_from_the_issue() {
    let model: Box<dyn ChatModel> = Box::new(OfflinePlanner::new());
    let mut messages = vec![ChatMessage::system("You are Kiln.")];
    let mut context = PlannerContext {
        session_id: Some("s1".into()),
        branch: Some("main".into()),
        ..Default::default()
    };

    let (calls, answer) =
        run_turn(model.as_ref(), &mut messages, &context, "Analyse LiFePO4").await;
    assert_eq!(
        arguments(&calls),
        vec![(
            "materials_analyzer".to_owned(),
            json!({"action": "analyze", "formula": "LiFePO4"})
        )]
    );
    assert_eq!(
        answer,
        format!("[materials_analyzer {}]", calls[0].arguments)
    );
    // The analyzer's material event makes LiFePO4 the focus.
    context.focus = Some("LiFePO4".into());
    context.recent_materials = vec!["LiFePO4".into()];

    let (calls, answer) = run_turn(
        model.as_ref(),
        &mut messages,
        &context,
        "What about its oxidation states?",
    )
    .await;
    assert_eq!(
        arguments(&calls),
        vec![(
            "materials_analyzer".to_owned(),
            json!({"action": "validate", "formula": "LiFePO4"})
        )]
    );
    assert!(answer.contains("validate"), "{answer}");

    let (calls, _) = run_turn(
        model.as_ref(),
        &mut messages,
        &context,
        "Show me similar cathode materials",
    )
    .await;
    assert_eq!(
        arguments(&calls),
        vec![(
            "materials_analyzer".to_owned(),
            json!({"action": "similar", "formula": "LiFePO4"})
        )]
    );

    let (calls, answer) = run_turn(
        model.as_ref(),
        &mut messages,
        &context,
        "Record that the olivine structure seems crucial for Li+ mobility",
    )
    .await;
    let recorded = arguments(&calls);
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].0, "record_discovery");
    assert_eq!(
        recorded[0].1["description"],
        "The olivine structure seems crucial for Li+ mobility"
    );
    assert_eq!(recorded[0].1["type"], "structure_property");
    assert_eq!(recorded[0].1["materials"], json!(["LiFePO4"]));
    assert!(answer.starts_with("[record_discovery"), "{answer}");

    // A branch asks a different question, then its transcript is summarised for the merge.
    let mut branch = messages.clone();
    let branch_context = PlannerContext {
        branch: Some("cobalt".into()),
        ..context.clone()
    };
    let (calls, _) = run_turn(
        model.as_ref(),
        &mut branch,
        &branch_context,
        "Compare it with LiCoO2",
    )
    .await;
    assert_eq!(
        arguments(&calls),
        vec![(
            "materials_analyzer".to_owned(),
            json!({"action": "compare", "formulas": ["LiFePO4", "LiCoO2"]})
        )]
    );
    let explored = branch.get(messages.len()..).unwrap_or_default().to_vec();
    let request = ChatRequest::new(explored).with_purpose(Purpose::Summarise);
    let summary = model.complete(request).await.unwrap().content.unwrap();
    assert!(
        summary.contains("The researcher asked: Compare it with LiCoO2"),
        "{summary}"
    );
    assert!(summary.contains("Materials discussed: LiCoO2"), "{summary}");

    // Every id is unique across the whole conversation, so results link unambiguously.
    let mut ids: Vec<String> = branch
        .iter()
        .flat_map(|m| m.tool_calls().iter().map(|c| c.id.clone()))
        .collect();
    let count = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count);
}

#[tokio::test]
async fn it_resolves_from_history_when_the_context_has_no_focus() {
    let model = OfflinePlanner::new();
    let mut messages = Vec::new();
    let context = PlannerContext::default();
    run_turn(&model, &mut messages, &context, "Analyse LiCoO2").await;
    let (calls, _) = run_turn(&model, &mut messages, &context, "Is it charge balanced?").await;
    assert_eq!(
        arguments(&calls)[0].1,
        json!({"action": "validate", "formula": "LiCoO2"})
    );
}

#[test]
fn unavailable_tools_are_said_not_called() {
    let request = ChatRequest::new(vec![ChatMessage::user("Analyse LiFePO4")]);
    let response = OfflinePlanner::new().respond(&request);
    assert!(response.tool_calls.is_empty());
    assert!(
        response
            .content
            .unwrap()
            .contains("materials_analyzer tool, which is not available")
    );
}

#[test]
fn tool_failures_are_reported_not_papered_over() {
    let call = ToolCall::new(
        "plan_1_0",
        "materials_analyzer",
        &json!({"action": "analyze", "formula": "Xx2"}),
    );
    let request = ChatRequest::new(vec![
        ChatMessage::user("Analyse Xx2"),
        ChatMessage::assistant_tool_calls(None, vec![call]),
        ChatMessage::tool(
            "plan_1_0",
            r#"{"error": {"code": "bad_formula", "message": "unknown element Xx"}}"#,
        ),
    ])
    .with_tools(tools());
    let response = OfflinePlanner::new().respond(&request);
    let content = response.content.unwrap();
    assert!(content.contains("failed: unknown element Xx"), "{content}");
    assert_eq!(response.finish_reason, FinishReason::Stop);
}

#[test]
fn detect_discoveries_purpose_answers_json() {
    let request = ChatRequest::new(vec![
        ChatMessage::user("anything"),
        ChatMessage::assistant(
            "LiFePO4 remains stable up to 400 C. The molar mass is 157.76 g/mol.",
        ),
    ])
    .with_purpose(Purpose::DetectDiscoveries);
    let response = OfflinePlanner::new().respond(&request);
    let parsed = parse_discoveries(response.content.as_deref().unwrap()).unwrap();
    assert_eq!(parsed.len(), 1);
    assert_eq!(parsed[0].category, DiscoveryCategory::StabilityInsight);
}

#[test]
fn deterministic_and_offline() {
    let request =
        ChatRequest::new(vec![ChatMessage::user("Suggest 3 experiments")]).with_tools(tools());
    let first = OfflinePlanner::new().respond(&request);
    let second = OfflinePlanner::new().respond(&request);
    assert_eq!(first.tool_calls, second.tool_calls);
    assert_eq!(first.attempts, 0);
    assert_eq!(first.model, OFFLINE_PLANNER_NAME);
    assert!(first.usage.prompt_tokens > 0);
}

#[test]
fn no_user_message_lists_capabilities() {
    let response = OfflinePlanner::new().respond(&ChatRequest::new(vec![ChatMessage::system("x")]));
    assert!(response.content.unwrap().contains("Analyse LiFePO4"));
}

#[tokio::test]
async fn streams_words_then_done() {
    use futures::StreamExt;
    let model = OfflinePlanner::new();
    let request = ChatRequest::new(vec![ChatMessage::user("Write me a poem")]);
    let events: Vec<StreamEvent> = model
        .complete_stream(request.clone())
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
    let Some(StreamEvent::Done(done)) = events.last() else {
        panic!("no Done")
    };
    assert!(events.len() > 3);
    assert_eq!(Some(text), done.content);
    assert_eq!(done.content, model.respond(&request).content);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the researcher types, the planner answers: either text or calls to listed
        /// tools whose arguments are valid JSON objects, with distinct ids.
        #[test]
        fn planner_never_panics_and_only_calls_listed_tools(
            text in "\\PC{0,120}",
            focus in proptest::option::of("[A-Z][a-z]?[0-9]?O[0-9]"),
        ) {
            let request = ChatRequest::new(vec![ChatMessage::user(text)])
                .with_tools(tools())
                .with_context(PlannerContext { focus, ..Default::default() });
            let response = OfflinePlanner::new().respond(&request);
            prop_assert!(response.content.is_some() == response.tool_calls.is_empty());
            let names: Vec<String> = tools().into_iter().map(|tool| tool.name).collect();
            let mut ids = std::collections::HashSet::new();
            for call in &response.tool_calls {
                prop_assert!(names.contains(&call.name));
                prop_assert!(call.parse_arguments().is_ok_and(|value| value.is_object()));
                prop_assert!(ids.insert(call.id.clone()));
            }
        }

        #[test]
        fn summaries_and_detection_never_panic(text in "\\PC{0,200}") {
            let _ = detect_discoveries(&text);
            let summary = summarise(&[ChatMessage::user(text.clone()), ChatMessage::tool("x", text)]);
            prop_assert!(!summary.is_empty());
        }
    }
}

/// The "never wrong, silently" rules of issue 14: each request is answered about the material
/// it names, or says plainly why not.
mod never_wrong {
    use super::*;

    fn respond(text: &str, focus: Option<&str>) -> ChatResponse {
        let request = ChatRequest::new(vec![ChatMessage::user(text)])
            .with_tools(tools())
            .with_context(PlannerContext {
                focus: focus.map(str::to_owned),
                recent_materials: focus.map(str::to_owned).into_iter().collect(),
                ..Default::default()
            });
        OfflinePlanner::new().respond(&request)
    }

    fn reply(text: &str, focus: Option<&str>) -> String {
        let response = respond(text, focus);
        assert!(
            response.tool_calls.is_empty(),
            "{text}: expected a reply, got calls {:?}",
            response.tool_calls
        );
        response.content.unwrap_or_default()
    }

    fn formulas_called(text: &str, focus: Option<&str>) -> Vec<Value> {
        respond(text, focus)
            .tool_calls
            .iter()
            .map(|call| call.parse_arguments().unwrap())
            .collect()
    }

    #[test]
    fn an_unknown_symbol_is_named_never_replaced_by_the_focus() {
        for (text, bad) in [
            ("Is LiCo3Xx2O9 valid?", "Xx"),
            ("LiCo3Xx2O9", "Xx"),
            ("analyse Qq2O3 please", "Qq"),
            ("what are the oxidation states in NaXzO2", "Xz"),
        ] {
            let answer = reply(text, Some("LiFePO4"));
            assert!(answer.contains(bad), "{text}: {answer}");
            assert!(!answer.contains("LiFePO4"), "{text}: {answer}");
        }
        // One good and one bad formula: nothing is run on a guess, the bad one is named.
        let answer = reply("compare LiCoO2 with LiQq2", Some("LiFePO4"));
        assert!(answer.contains("Qq"), "{answer}");
    }

    #[test]
    fn an_element_inside_a_question_is_not_the_subject() {
        let calls = formulas_called("What is the oxidation state of Co in LiCoO2?", None);
        assert_eq!(
            calls,
            vec![json!({"action": "validate", "formula": "LiCoO2"})]
        );
        let calls = formulas_called("what could replace Co in LiCoO2", None);
        assert_eq!(
            calls,
            vec![json!({"action": "similar", "formula": "LiCoO2"})]
        );
        // With no compound named, the element question is about the focus.
        let calls = formulas_called("what's the oxidation state of Fe?", Some("LiFePO4"));
        assert_eq!(
            calls,
            vec![json!({"action": "validate", "formula": "LiFePO4"})]
        );
    }

    #[test]
    fn the_focus_is_used_only_when_no_material_is_named_and_the_answer_says_so() {
        let call = ToolCall::new(
            "plan_1_0",
            "materials_analyzer",
            &json!({"action": "validate", "formula": "LiFePO4"}),
        );
        let request = ChatRequest::new(vec![
            ChatMessage::user("is it charge balanced?"),
            ChatMessage::assistant_tool_calls(None, vec![call.clone()]),
            ChatMessage::tool("plan_1_0", r#"{"ok": true, "text": "LiFePO4: valid (x)"}"#),
        ])
        .with_tools(tools());
        let answer = OfflinePlanner::new().respond(&request).content.unwrap();
        assert!(
            answer.starts_with("LiFePO4, the material in focus:"),
            "{answer}"
        );
        // Named explicitly, no such preamble.
        let request = ChatRequest::new(vec![
            ChatMessage::user("is LiFePO4 charge balanced?"),
            ChatMessage::assistant_tool_calls(None, vec![call]),
            ChatMessage::tool("plan_1_0", r#"{"ok": true, "text": "LiFePO4: valid (x)"}"#),
        ])
        .with_tools(tools());
        let answer = OfflinePlanner::new().respond(&request).content.unwrap();
        assert!(!answer.contains("in focus"), "{answer}");
    }

    #[test]
    fn a_request_it_cannot_map_gets_what_was_understood_and_close_offers() {
        let answer = reply("what is the band gap of LiFePO4?", Some("LiFePO4"));
        assert!(answer.contains("LiFePO4"), "{answer}");
        let offers = answer.matches("\n- ").count();
        assert!((2..=3).contains(&offers), "{answer}");
        assert!(answer.contains("\"Analyse LiFePO4\""), "{answer}");
        let answer = reply("Write me a poem about the sea", None);
        let offers = answer.matches("\n- ").count();
        assert!((2..=3).contains(&offers), "{answer}");
    }
}
