//! The extractive summariser: one line per message worth keeping, quoting the messages'
//! own first sentences, plus the materials mentioned. Nothing is paraphrased or invented.

use std::collections::HashMap;

use super::answer::tool_text;
use super::discovery::sentences;
use super::formula::find_formulas;
use crate::types::ChatMessage;

/// Most points kept; beyond this the oldest middle points are dropped.
const MAX_POINTS: usize = 20;
/// Longest quoted sentence, in characters.
const MAX_QUOTE: usize = 200;

/// How a transcript handed to a summariser as plain text marks a tool call (an assistant
/// message `[tool call] name({…})`) and its result (a user message `[tool result] text`), so
/// any model can read it without tool-call pairing.
pub const TOOL_CALL_PREFIX: &str = "[tool call] ";
/// See [`TOOL_CALL_PREFIX`].
pub const TOOL_RESULT_PREFIX: &str = "[tool result] ";

/// Returns an extractive summary of `messages` (system messages are skipped).
///
/// Deterministic: the same messages always give the same summary, so a summary node can be
/// compared and tested.
pub fn summarise(messages: &[ChatMessage]) -> String {
    let mut call_names: HashMap<&str, &str> = HashMap::new();
    // The tool named by the last plain-text tool call, for the plain-text result after it.
    let mut last_call: Option<&str> = None;
    let mut points: Vec<String> = Vec::new();
    let mut materials: Vec<String> = Vec::new();
    for message in messages {
        let mut note_materials = |text: &str| {
            for formula in find_formulas(text) {
                if !materials.contains(&formula) {
                    materials.push(formula);
                }
            }
        };
        match message {
            ChatMessage::System { .. } => {}
            ChatMessage::User { content } => {
                note_materials(content);
                if let Some(result) = content.strip_prefix(TOOL_RESULT_PREFIX) {
                    if let Some(quote) = first_sentence(&tool_text(result)) {
                        let tool = last_call.take().unwrap_or("a tool");
                        points.push(format!("{tool} reported: {quote}"));
                    }
                } else if let Some(quote) = first_sentence(content) {
                    points.push(format!("The researcher asked: {quote}"));
                }
            }
            ChatMessage::Assistant {
                content,
                tool_calls,
            } => {
                for call in tool_calls {
                    call_names.insert(&call.id, &call.name);
                }
                if let Some(call) = content
                    .as_deref()
                    .and_then(|c| c.strip_prefix(TOOL_CALL_PREFIX))
                {
                    // The result says what came of it; the call itself is not a point.
                    let name = call.split('(').next().unwrap_or(call).trim();
                    last_call = (!name.is_empty()).then_some(name);
                } else if let Some(quote) = content.as_deref().and_then(first_sentence) {
                    note_materials(content.as_deref().unwrap_or_default());
                    points.push(format!("The assistant answered: {quote}"));
                }
            }
            ChatMessage::Tool {
                tool_call_id,
                content,
            } => {
                let text = tool_text(content);
                note_materials(&text);
                let tool = call_names
                    .get(tool_call_id.as_str())
                    .copied()
                    .unwrap_or("a tool");
                if let Some(quote) = first_sentence(&text) {
                    points.push(format!("{tool} reported: {quote}"));
                }
            }
        }
    }
    if points.is_empty() {
        return "Nothing to summarise yet.".to_owned();
    }
    let omitted = points.len().saturating_sub(MAX_POINTS);
    if omitted > 0 {
        // Keep how the conversation started and everything recent.
        let head = 5.min(points.len());
        points.drain(head..head + omitted);
        points.insert(head, format!("({omitted} intermediate points omitted)"));
    }
    let mut summary = format!("Summary of {} messages:\n", messages.len());
    for point in &points {
        summary.push_str("- ");
        summary.push_str(point);
        summary.push('\n');
    }
    if !materials.is_empty() {
        summary.push_str("Materials discussed: ");
        summary.push_str(&materials.join(", "));
        summary.push('\n');
    }
    summary.trim_end().to_owned()
}

fn first_sentence(text: &str) -> Option<String> {
    let sentence = sentences(text).into_iter().next()?;
    let mut quote: String = sentence.chars().take(MAX_QUOTE).collect();
    if sentence.chars().count() > MAX_QUOTE {
        quote.push('…');
    }
    Some(quote)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ToolCall;
    use serde_json::json;

    #[test]
    fn quotes_each_role_and_lists_materials() {
        let call = ToolCall::new("c1", "materials_analyzer", &json!({"formula": "LiFePO4"}));
        let messages = vec![
            ChatMessage::system("You are Kiln."),
            ChatMessage::user("Analyse LiFePO4. Thanks!"),
            ChatMessage::assistant_tool_calls(None, vec![call]),
            ChatMessage::tool(
                "c1",
                r#"{"text": "LiFePO4: molar mass 157.76 g/mol. Valid."}"#,
            ),
            ChatMessage::assistant("LiFePO4 has a molar mass of 157.76 g/mol."),
        ];
        let summary = summarise(&messages);
        let expected = "Summary of 5 messages:\n\
            - The researcher asked: Analyse LiFePO4.\n\
            - materials_analyzer reported: LiFePO4: molar mass 157.76 g/mol.\n\
            - The assistant answered: LiFePO4 has a molar mass of 157.76 g/mol.\n\
            Materials discussed: LiFePO4";
        assert_eq!(summary, expected);
    }

    #[test]
    fn plain_text_tool_calls_and_results_are_not_taken_for_the_researcher() {
        let messages = vec![
            ChatMessage::user("Analyse LiFePO4"),
            ChatMessage::assistant(format!(
                "{TOOL_CALL_PREFIX}materials_analyzer({{\"action\":\"analyze\",\"formula\":\"LiFePO4\"}})"
            )),
            ChatMessage::user(format!(
                "{TOOL_RESULT_PREFIX}LiFePO4: molar mass 157.755 g/mol."
            )),
            ChatMessage::assistant("LiFePO4: molar mass 157.755 g/mol."),
            ChatMessage::user(format!(
                "{TOOL_RESULT_PREFIX}{{\"error\":{{\"code\":\"invalid_arguments\",\"message\":\"no search space yet\"}},\"ok\":false}}"
            )),
        ];
        let summary = summarise(&messages);
        let expected = "Summary of 5 messages:\n\
            - The researcher asked: Analyse LiFePO4\n\
            - materials_analyzer reported: LiFePO4: molar mass 157.755 g/mol.\n\
            - The assistant answered: LiFePO4: molar mass 157.755 g/mol.\n\
            - a tool reported: no search space yet\n\
            Materials discussed: LiFePO4";
        assert_eq!(summary, expected);
    }

    #[test]
    fn long_histories_keep_the_start_and_the_end() {
        let messages: Vec<_> = (0..40)
            .map(|i| ChatMessage::user(format!("Question {i}")))
            .collect();
        let summary = summarise(&messages);
        assert!(summary.contains("Question 0"));
        assert!(summary.contains("Question 39"));
        assert!(!summary.contains("Question 10\n"));
        assert!(summary.contains("(20 intermediate points omitted)"));
        assert_eq!(
            summary
                .lines()
                .filter(|line| line.starts_with("- "))
                .count(),
            MAX_POINTS + 1
        );
    }

    #[test]
    fn empty_input_says_so() {
        assert_eq!(
            summarise(&[ChatMessage::system("x")]),
            "Nothing to summarise yet."
        );
    }
}
