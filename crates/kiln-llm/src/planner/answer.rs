//! The planner's final answer after its tool calls: the tools' own text, quoted, one block per
//! call, and failures said as failures. No value is ever written that a tool did not return.

use serde_json::Value;

use super::materials::UNKNOWN_PROPERTIES;
use super::materials::{self, Action};
use super::words::correct_typos;
use crate::types::ToolCall;

/// True when the request states a goal (similar materials, then a comparison).
pub(crate) fn is_goal(text: &str) -> bool {
    let cues = correct_typos(&text.to_lowercase());
    let named = super::formula::Mentions::scan(text).compounds.len();
    materials::action(&cues, named) == Some(Action::Goal)
}

/// For a goal: what the tools can and cannot judge about it.
fn goal_caveat(text: &str) -> String {
    let cues = correct_typos(&text.to_lowercase());
    let property = UNKNOWN_PROPERTIES.iter().find(|p| cues.contains(**p));
    let cannot = match property {
        Some(property) => format!(
            "I cannot judge {property}: none of my tools computes it, so the candidates above are \
             not ranked by it."
        ),
        None => "I cannot judge the property you asked about: my tools do not compute it, so the \
                 candidates above are not ranked by it."
            .to_owned(),
    };
    format!(
        "\n\n**What this does and does not tell you.** The candidates are charge-balanced ionic \
         substitutes of the material, ranked by how likely the substitution is (Hautier 2011); the \
         comparison shows composition and mass. {cannot} Check the candidates against data or a \
         model for that."
    )
}

/// Returns the readable text of a tool result: the `text` field of a JSON object, an error's
/// message, other JSON compacted, or the content itself.
pub(crate) fn tool_text(content: &str) -> String {
    match serde_json::from_str::<Value>(content) {
        Ok(Value::Object(map)) => {
            if let Some(text) = map.get("text").and_then(Value::as_str) {
                return text.trim().to_owned();
            }
            if let Some(message) = error_message(&Value::Object(map.clone())) {
                return message;
            }
            if let Some(message) = map.get("message").and_then(Value::as_str) {
                return message.trim().to_owned();
            }
            compact(&Value::Object(map))
        }
        Ok(Value::String(text)) => text.trim().to_owned(),
        Ok(other) => compact(&other),
        Err(_) => content.trim().to_owned(),
    }
}

/// Returns the error message if the result reports a failure.
pub(crate) fn tool_error(content: &str) -> Option<String> {
    let value: Value = serde_json::from_str(content).ok()?;
    error_message(&value)
}

fn error_message(value: &Value) -> Option<String> {
    let map = value.as_object()?;
    let failed = map.get("ok").and_then(Value::as_bool) == Some(false)
        || map.get("is_error").and_then(Value::as_bool) == Some(true);
    match map.get("error") {
        Some(Value::String(message)) => Some(message.trim().to_owned()),
        Some(Value::Object(error)) => {
            Some(error.get("message").and_then(Value::as_str).map_or_else(
                || compact(&Value::Object(error.clone())),
                |m| m.trim().to_owned(),
            ))
        }
        Some(Value::Null) | None if failed => Some(
            map.get("text")
                .or_else(|| map.get("message"))
                .and_then(Value::as_str)
                .unwrap_or("the tool reported a failure")
                .trim()
                .to_owned(),
        ),
        _ => None,
    }
}

/// A tool's error as the researcher would want to read it: what is needed and how to say it,
/// not the tool's own vocabulary ("call define_space first").
pub(crate) fn in_plain_words(message: &str) -> String {
    let message = message
        .strip_prefix("invalid arguments: ")
        .unwrap_or(message)
        .trim();
    if message.contains("search space first") || message.contains("no search space") {
        return "I need a search space first: tell me the variables and their ranges, for \
                example \"Define the space: temperature 300-900 °C, time 1-10 h; maximise \
                capacity\"."
            .to_owned();
    }
    if let Some(rest) = message.strip_prefix("unknown element `") {
        let symbol = rest.split('`').next().unwrap_or_default();
        return format!(
            "`{symbol}` is not an element symbol, so I cannot read that formula ({message})."
        );
    }
    message.to_owned()
}

fn compact(value: &Value) -> String {
    const LIMIT: usize = 2_000;
    let text = value.to_string();
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// What a call is about: its formula, formulas (`A vs B`) or query.
fn subject(call: &ToolCall) -> Option<String> {
    let arguments: Value = call.parse_arguments().unwrap_or(Value::Null);
    arguments
        .get("formula")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| {
            arguments
                .get("formulas")
                .and_then(Value::as_array)
                .map(|formulas| {
                    formulas
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(" vs ")
                })
        })
        .or_else(|| {
            arguments
                .get("query")
                .and_then(Value::as_str)
                .map(|q| format!("\"{q}\""))
        })
}

/// A short label for a call: the tool and its main argument.
fn label(call: &ToolCall) -> String {
    let arguments: Value = call.parse_arguments().unwrap_or(Value::Null);
    let action = arguments.get("action").and_then(Value::as_str);
    match (action, subject(call)) {
        (Some(action), Some(subject)) => format!("{} {action} {subject}", call.name),
        (Some(action), None) => format!("{} {action}", call.name),
        (None, Some(subject)) => format!("{} {subject}", call.name),
        (None, None) => call.name.clone(),
    }
}

/// Several one-line results about named subjects, as a list: `- **LiFePO4**: molar mass …`.
/// `None` when a result is longer than a line or a call names no subject.
fn as_list(calls: &[ToolCall], results: &[(String, Result<String, String>)]) -> Option<String> {
    let mut items = Vec::with_capacity(results.len());
    for (id, result) in results {
        let call = calls.iter().find(|call| call.id == *id)?;
        let subject = subject(call)?;
        let line = match result {
            Ok(text) if !text.contains('\n') => match text.strip_prefix(&format!("{subject}:")) {
                Some(rest) => format!("- **{subject}**:{rest}"),
                None => format!("- **{subject}**: {text}"),
            },
            Err(message) if !message.contains('\n') => {
                format!("- **{subject}**: could not be done: {message}")
            }
            _ => return None,
        };
        items.push(line);
    }
    Some(items.join("\n"))
}

/// A result's text without the formula it starts with (`LiFePO4: molar mass …`, or the tool's
/// normalised spelling of it, `Li1Mn0.1Co0.1Ni0.8O2: …`), when the answer names it already.
fn without_subject<'a>(text: &'a str, formula: &str) -> &'a str {
    if let Some(rest) = text.strip_prefix(&format!("{formula}:")) {
        return rest.trim_start();
    }
    match text.split_once(": ") {
        Some((head, rest))
            if !head.contains(' ')
                && head.starts_with(|c: char| c.is_ascii_uppercase())
                && head.chars().any(|c| c.is_ascii_digit()) =>
        {
            rest
        }
        _ => text,
    }
}

/// Composes the final answer from the calls made and their results (`(tool_call_id, content)`).
pub(crate) fn compose(user_text: &str, calls: &[ToolCall], results: &[(String, String)]) -> String {
    if results.is_empty() {
        return "I asked for tool results, but none came back, so I have nothing to report.".into();
    }
    let mut blocks = Vec::with_capacity(results.len());
    let mut outcomes = Vec::with_capacity(results.len());
    let mut failures = 0;
    for (id, content) in results {
        let call = calls.iter().find(|call| call.id == *id);
        let heading = call.map_or_else(|| "a tool".to_owned(), label);
        match tool_error(content) {
            Some(message) => {
                failures += 1;
                let message = in_plain_words(&message);
                blocks.push(format!("{heading} failed: {message}"));
                outcomes.push((id.clone(), Err(message)));
            }
            None => {
                let mut text = tool_text(content);
                // A material the researcher did not name came from the focus: say so.
                // A material named by its shorthand: say which formula was read.
                if let Some(call) = call
                    && call.name == "materials_analyzer"
                    && let Some(formula) = call
                        .parse_arguments()
                        .ok()
                        .as_ref()
                        .and_then(materials::subject)
                    && let Some((alias, _)) = super::formula::Mentions::scan(user_text)
                        .aliases
                        .into_iter()
                        .find(|(_, f)| *f == formula)
                {
                    let rest = without_subject(&text, &formula);
                    text = format!("{alias} ({formula}): {rest}");
                }
                if let Some(call) = call
                    && call.name == "materials_analyzer"
                    && let Some(formula) = call
                        .parse_arguments()
                        .ok()
                        .as_ref()
                        .and_then(materials::subject)
                    && !materials::named_in(user_text, &formula)
                {
                    let rest = without_subject(&text, &formula);
                    text = format!("{formula}, the material in focus: {rest}");
                }
                if results.len() == 1 {
                    blocks.push(text.clone());
                } else {
                    blocks.push(format!("**{heading}**\n{text}"));
                }
                outcomes.push((id.clone(), Ok(text)));
            }
        }
    }
    let mut answer = match results.len() {
        1 => blocks.join(""),
        _ => as_list(calls, &outcomes).unwrap_or_else(|| blocks.join("\n\n")),
    };
    if failures == 0 && is_goal(user_text) {
        answer.push_str(&goal_caveat(user_text));
    }
    if failures > 0 && failures == results.len() {
        answer.push_str(
            "\n\nI could not get a result, so I have no values to report for this request.",
        );
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tool_text_shapes() {
        let cases = [
            (
                r#"{"text": " LiFePO4: 157.76 g/mol ", "data": {}}"#,
                "LiFePO4: 157.76 g/mol",
            ),
            (
                r#"{"error": {"code": "bad_formula", "message": "unknown element Xx"}}"#,
                "unknown element Xx",
            ),
            (
                r#"{"ok": false, "text": "no space defined"}"#,
                "no space defined",
            ),
            (r#"{"count": 2}"#, r#"{"count":2}"#),
            ("plain words", "plain words"),
            (r#""quoted""#, "quoted"),
        ];
        for (content, expected) in cases {
            assert_eq!(tool_text(content), expected, "{content}");
        }
        assert_eq!(
            tool_error(r#"{"error": "unknown tool"}"#).as_deref(),
            Some("unknown tool")
        );
        assert_eq!(tool_error(r#"{"text": "fine"}"#), None);
        assert_eq!(tool_error("not json"), None);
    }

    #[test]
    fn composes_quotes_and_failures() {
        let a = ToolCall::new(
            "a",
            "materials_analyzer",
            &json!({"action": "analyze", "formula": "LiFePO4"}),
        );
        let b = ToolCall::new(
            "b",
            "materials_analyzer",
            &json!({"action": "analyze", "formula": "Xx2"}),
        );
        let single = compose(
            "Analyse LiFePO4",
            std::slice::from_ref(&a),
            &[("a".into(), r#"{"text": "Molar mass 157.76 g/mol."}"#.into())],
        );
        assert_eq!(single, "Molar mass 157.76 g/mol.");
        let both = compose(
            "Analyse LiFePO4 and Xx2",
            &[a, b],
            &[
                ("a".into(), r#"{"text": "Molar mass 157.76 g/mol."}"#.into()),
                (
                    "b".into(),
                    r#"{"error": {"message": "unknown element Xx"}}"#.into(),
                ),
            ],
        );
        assert_eq!(
            both,
            "- **LiFePO4**: Molar mass 157.76 g/mol.\n\
             - **Xx2**: could not be done: unknown element Xx"
        );
        // Results longer than a line keep a block each.
        let (c, d) = (
            ToolCall::new(
                "c",
                "materials_analyzer",
                &json!({"action": "analyze", "formula": "LiCoO2"}),
            ),
            ToolCall::new(
                "d",
                "materials_analyzer",
                &json!({"action": "analyze", "formula": "NaCl"}),
            ),
        );
        let blocks = compose(
            "Analyse LiCoO2 and NaCl",
            &[c, d],
            &[
                (
                    "c".into(),
                    r#"{"text": "LiCoO2: 97.87 g/mol\nvalid"}"#.into(),
                ),
                ("d".into(), r#"{"text": "NaCl: 58.44 g/mol"}"#.into()),
            ],
        );
        assert!(
            blocks.starts_with("**materials_analyzer analyze LiCoO2**\nLiCoO2: 97.87"),
            "{blocks}"
        );
        assert_eq!(
            in_plain_words(
                "invalid arguments: I need a search space first: tell me the variables and their ranges (define_space)"
            ),
            "I need a search space first: tell me the variables and their ranges, for example \
             \"Define the space: temperature 300-900 °C, time 1-10 h; maximise capacity\"."
        );
        assert!(
            in_plain_words("unknown element `Qq` at byte 0")
                .starts_with("`Qq` is not an element symbol")
        );
        let failed = compose("", &[], &[("z".into(), r#"{"error": "boom"}"#.into())]);
        assert!(failed.starts_with("a tool failed: boom"));
        assert!(failed.contains("no values to report"));
    }
}
