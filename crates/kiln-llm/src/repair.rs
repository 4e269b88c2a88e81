//! Reading a tool call's arguments as a model sent them: strict JSON first, then a few repairs
//! whose meaning is unambiguous (a code fence around the object, trailing commas, single-quoted
//! strings, an object sent as a JSON string). Anything else is an error the model sees.

use serde_json::Value;

/// What had to be changed to read the arguments, for the record on the call node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repair {
    /// The object was wrapped in a Markdown code fence.
    CodeFence,
    /// A comma stood before a closing `}` or `]`.
    TrailingComma,
    /// Strings or keys were in single quotes.
    SingleQuotes,
    /// The object came as a JSON string holding the object's text.
    DoublyEncoded,
}

impl Repair {
    /// A short name (`trailing_comma`) for node data and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Repair::CodeFence => "code_fence",
            Repair::TrailingComma => "trailing_comma",
            Repair::SingleQuotes => "single_quotes",
            Repair::DoublyEncoded => "doubly_encoded",
        }
    }
}

/// Parses a tool call's raw arguments. Returns the value and the repairs it took (none for
/// valid JSON), or the strict parser's error when no unambiguous repair reads it: that error is
/// what the model is told.
///
/// Empty arguments are `{}` (some servers send `""` for a tool without parameters).
pub fn parse_arguments(raw: &str) -> Result<(Value, Vec<Repair>), String> {
    let strict_error = match serde_json::from_str::<Value>(raw) {
        Ok(value) => return Ok(unwrap_string(value, Vec::new())),
        Err(e) => e,
    };
    if raw.trim().is_empty() {
        return Ok((Value::Object(Default::default()), Vec::new()));
    }
    let mut repairs = Vec::new();
    let mut text = raw.trim().to_owned();
    if let Some(inner) = strip_fence(&text) {
        text = inner.to_owned();
        repairs.push(Repair::CodeFence);
    }
    if let Some(fixed) = single_to_double_quotes(&text) {
        text = fixed;
        repairs.push(Repair::SingleQuotes);
    }
    if let Some(fixed) = drop_trailing_commas(&text) {
        text = fixed;
        repairs.push(Repair::TrailingComma);
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(value) if !repairs.is_empty() => Ok(unwrap_string(value, repairs)),
        _ => Err(strict_error.to_string()),
    }
}

/// A JSON string whose text is itself a JSON object is that object.
fn unwrap_string(value: Value, mut repairs: Vec<Repair>) -> (Value, Vec<Repair>) {
    if let Value::String(s) = &value
        && let Ok(inner @ Value::Object(_)) = serde_json::from_str::<Value>(s)
    {
        repairs.push(Repair::DoublyEncoded);
        return (inner, repairs);
    }
    (value, repairs)
}

/// The body of a text that is exactly one fenced block (```` ```json … ``` ````).
fn strip_fence(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("```")?;
    let rest = rest.strip_suffix("```")?;
    // The info string (`json`, `JSON`) runs to the first newline.
    let body = match rest.split_once('\n') {
        Some((info, body)) if !info.trim_start().starts_with(['{', '[']) => body,
        _ => rest,
    };
    Some(body.trim())
}

/// Rewrites single-quoted strings as JSON strings; `None` when there are none. Double-quoted
/// strings are kept as they are (an apostrophe inside one is text, not a quote).
fn single_to_double_quotes(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len() + 8);
    let mut changed = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                out.push('"');
                let mut escaped = false;
                for c in chars.by_ref() {
                    out.push(c);
                    match (escaped, c) {
                        (true, _) => escaped = false,
                        (false, '\\') => escaped = true,
                        (false, '"') => break,
                        _ => {}
                    }
                }
            }
            '\'' => {
                changed = true;
                out.push('"');
                let mut escaped = false;
                for c in chars.by_ref() {
                    match (escaped, c) {
                        (true, '\'') => {
                            out.push('\'');
                            escaped = false;
                        }
                        (true, c) => {
                            out.push('\\');
                            out.push(c);
                            escaped = false;
                        }
                        (false, '\\') => escaped = true,
                        (false, '\'') => break,
                        (false, '"') => out.push_str("\\\""),
                        (false, c) => out.push(c),
                    }
                }
                out.push('"');
            }
            c => out.push(c),
        }
    }
    changed.then_some(out)
}

/// Removes commas that stand (whitespace aside) before `}` or `]`, outside strings; `None` when
/// there are none.
fn drop_trailing_commas(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut in_string = false;
    let mut escaped = false;
    for (i, &c) in chars.iter().enumerate() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        if c == '"' {
            in_string = true;
        } else if c == ','
            && chars[i + 1..]
                .iter()
                .find(|c| !c.is_whitespace())
                .is_some_and(|next| matches!(next, '}' | ']'))
        {
            changed = true;
            continue;
        }
        out.push(c);
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn repairs_only_what_is_unambiguous() {
        let object = json!({"action": "analyze", "formula": "LiFePO4"});
        type Expected = Option<(Value, &'static [Repair])>;
        let cases: [(&str, Expected); 12] = [
            (
                r#"{"action": "analyze", "formula": "LiFePO4"}"#,
                Some((object.clone(), &[])),
            ),
            (
                r#"{"action": "analyze", "formula": "LiFePO4",}"#,
                Some((object.clone(), &[Repair::TrailingComma])),
            ),
            (
                "{'action': 'analyze', 'formula': 'LiFePO4'}",
                Some((object.clone(), &[Repair::SingleQuotes])),
            ),
            (
                "```json\n{\"action\": \"analyze\", \"formula\": \"LiFePO4\"}\n```",
                Some((object.clone(), &[Repair::CodeFence])),
            ),
            (
                "```\n{'action': 'analyze', 'formula': 'LiFePO4', }\n```",
                Some((
                    object.clone(),
                    &[
                        Repair::CodeFence,
                        Repair::SingleQuotes,
                        Repair::TrailingComma,
                    ],
                )),
            ),
            (
                r#""{\"action\": \"analyze\", \"formula\": \"LiFePO4\"}""#,
                Some((object.clone(), &[Repair::DoublyEncoded])),
            ),
            ("", Some((json!({}), &[]))),
            // An apostrophe inside a double-quoted string is text; a comma inside one is too.
            (
                r#"{"message": "it's done, ]", "tags": ["a", "b",],}"#,
                Some((
                    json!({"message": "it's done, ]", "tags": ["a", "b"]}),
                    &[Repair::TrailingComma],
                )),
            ),
            (
                r#"{'message': 'say "hi" and it\'s ok'}"#,
                Some((
                    json!({"message": "say \"hi\" and it's ok"}),
                    &[Repair::SingleQuotes],
                )),
            ),
            // Truncated, unquoted keys, two objects: not guessed at.
            (r#"{"action": "analyze", "formula": "#, None),
            ("{action: 'analyze'}", None),
            (r#"{"a": 1} {"b": 2}"#, None),
        ];
        for (raw, want) in cases {
            let got = parse_arguments(raw);
            match want {
                Some((value, repairs)) => {
                    let (v, r) = got.unwrap_or_else(|e| panic!("{raw}: {e}"));
                    assert_eq!(v, value, "{raw}");
                    assert_eq!(r, repairs, "{raw}");
                }
                None => assert!(got.is_err(), "{raw} was read as {got:?}"),
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(raw in ".{0,64}") {
            let _ = parse_arguments(&raw);
        }
    }
}
