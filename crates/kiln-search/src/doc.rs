//! Turning nodes and sessions into index documents: the searchable text of every node kind,
//! and the materials (formulas) and elements a node mentions.

use kiln_db::{SearchNode, Session};
use serde_json::Value;

/// What one node contributes to the index.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeDoc {
    pub text: String,
    /// Formulas mentioned (material events, discoveries, formulas in messages) and their
    /// chemical systems (`Fe-Li-O-P`).
    pub materials: Vec<String>,
    /// Element symbols of those materials.
    pub elements: Vec<String>,
}

/// Keys of a state event whose values are worth searching.
const EVENT_KEYS: [&str; 11] = [
    "description",
    "statement",
    "formula",
    "topic",
    "material",
    "key",
    "value",
    "notes",
    "relationship",
    "type",
    "discovery_type",
];

/// What a tool result says in words: the tool's one-line text, or why it failed. Its content
/// is the JSON handed to the model, whose keys would make every result match `formula`.
fn result_text(n: &SearchNode) -> Option<String> {
    let (words, _) = kiln_db::tool_result_words(n.data.as_ref()?)?;
    Some(words.to_owned())
}

/// The searchable text and materials of a node.
pub fn node_doc(n: &SearchNode) -> NodeDoc {
    let mut text = match n.kind.as_str() {
        "tool_result" => result_text(n).unwrap_or_else(|| n.content.clone()),
        _ => n.content.clone(),
    };
    let mut materials = Vec::new();
    if let Some(Value::Object(data)) = &n.data
        && n.kind != "tool_state"
        && n.content.is_empty()
    {
        for key in EVENT_KEYS {
            match data.get(key) {
                Some(Value::String(s)) => push_line(&mut text, s),
                Some(v @ Value::Object(_)) => {
                    if let Some(c) = v.get("content").and_then(Value::as_str) {
                        push_line(&mut text, c);
                    }
                }
                _ => {}
            }
        }
    }
    if let Some(data) = &n.data {
        if let Some(f) = data.get("formula").and_then(Value::as_str) {
            materials.push(f.to_string());
        }
        if let Some(list) = data.get("materials").and_then(Value::as_array) {
            materials.extend(list.iter().filter_map(Value::as_str).map(str::to_string));
        }
    }
    materials.extend(formulas_in(&text));
    let mut elements = Vec::new();
    let mut reduced = Vec::new();
    for m in materials {
        if let Ok(f) = kiln_materials::parse(&m) {
            let mut symbols: Vec<&str> = f.elements().iter().map(|(e, _)| e.symbol()).collect();
            elements.extend(symbols.iter().map(|s| s.to_string()));
            // The chemical system (`Fe-Li-O-P`) is searchable as a material too.
            symbols.sort_unstable();
            symbols.dedup();
            reduced.push(symbols.join("-"));
            reduced.push(m);
        }
    }
    reduced.sort();
    reduced.dedup();
    elements.sort();
    elements.dedup();
    NodeDoc {
        text,
        materials: reduced,
        elements,
    }
}

fn push_line(text: &mut String, s: &str) {
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str(s);
}

/// Words of `text` that read as chemical formulas: a capital letter start, at least two
/// element symbols or a digit, and a successful parse (so "I" or "He" in prose do not count).
pub fn formulas_in(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | ':' | '?' | '!' | '"'))
        .map(|w| {
            w.trim_end_matches('.')
                .trim_matches(|c| c == '\'' || c == '`')
        })
        .filter(|w| {
            (2..=40).contains(&w.len())
                && w.starts_with(|c: char| c.is_ascii_uppercase())
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "()[]·.".contains(c))
                && (w.chars().any(|c| c.is_ascii_digit())
                    || w.chars().filter(char::is_ascii_uppercase).count() >= 2)
        })
        .filter(|w| kiln_materials::parse(w).is_ok_and(|f| !f.elements().is_empty()))
        .map(str::to_string)
        .collect()
}

/// The searchable text of a session: name, description, tags, project, type and status.
pub fn session_text(s: &Session) -> String {
    let mut text = s.name.clone();
    push_line(&mut text, &s.description);
    push_line(&mut text, &s.tags.join(" "));
    if let Some(p) = &s.project {
        push_line(&mut text, p);
    }
    push_line(
        &mut text,
        &format!("{} {}", s.session_type.as_str(), s.status.as_str()),
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(kind: &str, content: &str, data: Option<Value>) -> SearchNode {
        SearchNode {
            rowid: 1,
            session_id: "s".into(),
            id: "n".into(),
            kind: kind.into(),
            author: None,
            content: content.into(),
            data,
            created_at: "2026-11-23T00:00:00Z".into(),
        }
    }

    #[test]
    fn tool_results_are_searched_by_their_words_not_their_json() {
        let content = r#"{"data":{"anonymized_formula":"ABCD4","molar_mass":157.755},"ok":true,"text":"LiFePO4: molar mass 157.755 g/mol"}"#;
        let d = node_doc(&node(
            "tool_result",
            content,
            Some(json!({"name": "materials_analyzer", "ok": true,
                        "text": "LiFePO4: molar mass 157.755 g/mol"})),
        ));
        assert_eq!(d.text, "LiFePO4: molar mass 157.755 g/mol");
        assert!(d.materials.contains(&"LiFePO4".to_owned()), "{d:?}");
        let failed = node_doc(&node(
            "tool_result",
            r#"{"error":{"code":"x","message":"no search space yet"},"ok":false}"#,
            Some(json!({"ok": false, "error": {"code": "x", "message": "no search space yet"}})),
        ));
        assert_eq!(failed.text, "no search space yet");
        // A result recorded without data (imported, say) is still searchable by its content.
        assert_eq!(node_doc(&node("tool_result", "plain", None)).text, "plain");
    }

    #[test]
    fn formulas_are_found_in_prose_but_not_ordinary_words() {
        assert_eq!(
            formulas_in("Analyse LiFePO4, then compare it with NaCl. I think He is right."),
            ["LiFePO4", "NaCl"]
        );
        assert!(formulas_in("Hello World").is_empty());
    }

    #[test]
    fn events_are_searchable_by_their_text_and_materials() {
        let d = node_doc(&node(
            "discovery",
            "",
            Some(
                json!({"type": "stability_insight", "description": "Olivine framework is stable",
                        "materials": ["LiFePO4"]}),
            ),
        ));
        assert!(d.text.contains("Olivine framework") && d.text.contains("stability_insight"));
        assert_eq!(d.materials, ["Fe-Li-O-P", "LiFePO4"]);
        assert_eq!(d.elements, ["Fe", "Li", "O", "P"]);
        let m = node_doc(&node("material", "", Some(json!({"formula": "CuSO4"}))));
        assert_eq!(m.materials, ["Cu-O-S", "CuSO4"]);
        let pin = node_doc(&node(
            "context_pin",
            "",
            Some(json!({"key": "goal:x", "value": {"kind": "goal", "content": "beat 160 mAh/g"}})),
        ));
        assert!(pin.text.contains("beat 160 mAh/g"));
        // Tool states are not searched by their (large) JSON.
        let t = node_doc(&node(
            "tool_state",
            "",
            Some(json!({"description": "hidden"})),
        ));
        assert!(t.text.is_empty());
    }
}
