//! The extractive summary a merge node carries: what the merged branch asked, what its research
//! state gained or changed since the merge base, and its last answer.
//!
//! The summary is what the target branch's context shows in place of the branch's transcript,
//! so everything the branch changed must appear in it: a branch that only proposed a
//! hypothesis or moved a task must not read as "nothing happened".

use std::collections::HashMap;

use kiln_types::NodeKind;
use kiln_types::state::{Hypothesis, ResearchState, Task};
use serde::Serialize;

use crate::model::Node;

/// Items listed per kind; the rest are counted.
const LIST: usize = 5;
/// Characters kept of a quoted text.
const QUOTE: usize = 160;

/// Summarises branch `from`: `nodes` are its nodes after the merge base, `base` the research
/// state there and `theirs` the state at the branch's head.
pub(super) fn summarise(
    from: &str,
    nodes: &[Node],
    base: &ResearchState,
    theirs: &ResearchState,
) -> String {
    let count = |k: NodeKind| nodes.iter().filter(|n| n.kind == k).count();
    let tally = [
        plural(count(NodeKind::User), "question", "questions"),
        plural(count(NodeKind::Assistant), "answer", "answers"),
        plural(count(NodeKind::ToolCall), "tool call", "tool calls"),
        plural(count(NodeKind::Note), "note", "notes"),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>();
    let mut out = format!("Merged branch `{from}`");
    if tally.is_empty() {
        out.push_str(": no conversation.");
    } else {
        out.push_str(&format!(": {}.", tally.join(", ")));
    }
    let asked: Vec<String> = nodes
        .iter()
        .filter(|n| n.kind == NodeKind::User)
        .map(|n| quote(&n.content))
        .collect();
    section(&mut out, "It asked", &asked);

    let known: HashMap<&str, &str> = base
        .discoveries
        .iter()
        .map(|d| (d.id.as_str(), d.description.as_str()))
        .collect();
    let discoveries: Vec<String> = theirs
        .discoveries
        .iter()
        .filter(|d| !known.contains_key(d.id.as_str()))
        .map(|d| match d.confidence {
            Some(c) => format!(
                "[{}] {} (confidence {c})",
                d.discovery_type,
                quote(&d.description)
            ),
            None => format!("[{}] {}", d.discovery_type, quote(&d.description)),
        })
        .collect();
    section(&mut out, "Discoveries", &discoveries);

    let described: HashMap<&str, &str> = theirs
        .discoveries
        .iter()
        .map(|d| (d.id.as_str(), d.description.as_str()))
        .collect();
    let links: Vec<String> = theirs
        .links
        .iter()
        .filter(|l| {
            !base
                .links
                .iter()
                .any(|b| b.from == l.from && b.to == l.to && b.relationship == l.relationship)
        })
        .map(|l| {
            let name = |id: &str| quote(described.get(id).copied().unwrap_or(id));
            format!("{} {} {}", name(&l.from), l.relationship, name(&l.to))
        })
        .collect();
    section(&mut out, "Links", &links);

    let materials: Vec<String> = theirs
        .materials
        .iter()
        .filter(|m| !base.materials.iter().any(|b| b.formula == m.formula))
        .map(|m| m.formula.clone())
        .collect();
    if !materials.is_empty() {
        out.push_str(&format!("\nNew materials: {}.", materials.join(", ")));
    }

    let hypothesis = |h: &Hypothesis| (h.id.clone(), label(&h.status), h.statement.clone());
    let hypotheses = status_changes(&base.hypotheses, &theirs.hypotheses, hypothesis);
    section(&mut out, "Hypotheses", &hypotheses);
    let task = |t: &Task| (t.id.clone(), label(&t.status), t.description.clone());
    let tasks = status_changes(&base.tasks, &theirs.tasks, task);
    section(&mut out, "Tasks", &tasks);

    let pins: Vec<String> = theirs
        .context
        .iter()
        .filter(|(k, v)| base.context.get(*k) != Some(*v))
        .map(|(k, v)| {
            let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            format!("{k}: {}", quote(&text))
        })
        .collect();
    section(&mut out, "Pinned", &pins);

    let tools: Vec<&str> = theirs
        .tools
        .iter()
        .filter(|(k, v)| base.tools.get(*k) != Some(*v))
        .map(|(k, _)| k.as_str())
        .collect();
    if !tools.is_empty() {
        out.push_str(&format!("\nTool state changed: {}.", tools.join(", ")));
    }
    if theirs.focus != base.focus {
        let focus: Vec<&str> = [&theirs.focus.material, &theirs.focus.topic]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        if !focus.is_empty() {
            out.push_str(&format!("\nFocus: {}.", focus.join(", ")));
        }
    }
    if let Some(last) = nodes.iter().rev().find(|n| n.kind == NodeKind::Assistant) {
        out.push_str(&format!("\nLast answer: {}", quote_long(&last.content)));
    }
    out
}

/// "1 answer", "3 answers", nothing for zero.
fn plural(n: usize, one: &str, many: &str) -> Option<String> {
    match n {
        0 => None,
        1 => Some(format!("1 {one}")),
        _ => Some(format!("{n} {many}")),
    }
}

/// A list under a heading, at most [`LIST`] items and a count of the rest.
fn section(out: &mut String, heading: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    out.push_str(&format!("\n{heading}:"));
    for item in items.iter().take(LIST) {
        out.push_str(&format!("\n- {item}"));
    }
    if items.len() > LIST {
        out.push_str(&format!("\n- … and {} more", items.len() - LIST));
    }
}

/// The items of `theirs` that are new (`[status] text`) or changed status since `base`
/// (`[old → new] text`); `view` gives an item's id, status and text.
fn status_changes<T>(
    base: &[T],
    theirs: &[T],
    view: impl Fn(&T) -> (String, String, String),
) -> Vec<String> {
    let before: HashMap<String, String> = base
        .iter()
        .map(|x| {
            let (id, status, _) = view(x);
            (id, status)
        })
        .collect();
    theirs
        .iter()
        .filter_map(|x| {
            let (id, now, text) = view(x);
            match before.get(&id) {
                None => Some(format!("[{now}] {}", quote(&text))),
                Some(b) if *b != now => Some(format!("[{b} → {now}] {}", quote(&text))),
                Some(_) => None,
            }
        })
        .collect()
}

/// A status as it is serialised (`open`, `in_progress`, …).
fn label(status: &impl Serialize) -> String {
    match serde_json::to_value(status) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

fn quote(text: &str) -> String {
    clip(text, QUOTE)
}

fn quote_long(text: &str) -> String {
    clip(text, 2 * QUOTE)
}

/// `text` on one line, at most `max` characters.
fn clip(text: &str, max: usize) -> String {
    kiln_types::clip(&text.split_whitespace().collect::<Vec<_>>().join(" "), max)
}

#[cfg(test)]
mod tests {
    use kiln_types::{NodeKind, ResearchState, StateEvent};
    use serde_json::{Value, json};

    use super::summarise;
    use crate::model::Node;

    fn fold(state: &mut ResearchState, node: &str, event: Value) {
        let e: StateEvent = serde_json::from_value(event).expect("a valid event");
        state.apply(node, &e);
    }

    fn message(kind: NodeKind, content: &str) -> Node {
        Node {
            id: format!("n-{content}"),
            seq: 1,
            parent_id: None,
            merge_parent_id: None,
            kind,
            role: kind,
            author: None,
            content: content.to_owned(),
            data: None,
            tokens: None,
            created_at: String::new(),
        }
    }

    #[test]
    fn a_branch_with_only_state_changes_says_what_changed() {
        let mut base = ResearchState::default();
        fold(
            &mut base,
            "b1",
            json!({"kind": "material", "formula": "LiFePO4"}),
        );
        fold(
            &mut base,
            "b2",
            json!({"kind": "task", "id": "t1", "description": "Measure capacity", "status": "pending"}),
        );
        fold(
            &mut base,
            "b3",
            json!({"kind": "hypothesis", "id": "h0", "statement": "Old idea", "status": "open"}),
        );
        let mut theirs = base.clone();
        fold(
            &mut theirs,
            "n1",
            json!({"kind": "hypothesis", "statement": "Na on the Li site keeps the olivine", "status": "open"}),
        );
        fold(
            &mut theirs,
            "n2",
            json!({"kind": "task", "id": "t1", "description": "Measure capacity", "status": "done"}),
        );
        fold(
            &mut theirs,
            "n3",
            json!({"kind": "material", "formula": "NaFePO4"}),
        );
        fold(
            &mut theirs,
            "n3b",
            json!({"kind": "material", "formula": "LiFePO4"}),
        );
        fold(
            &mut theirs,
            "n4",
            json!({"kind": "discovery", "type": "structure", "description": "NaFePO4 keeps the olivine frame", "confidence": 0.8}),
        );
        fold(
            &mut theirs,
            "n5",
            json!({"kind": "discovery", "type": "property", "description": "Volume grows 17 %"}),
        );
        fold(
            &mut theirs,
            "n6",
            json!({"kind": "discovery_link", "from": "n5", "to": "n4", "relationship": "supports"}),
        );
        fold(
            &mut theirs,
            "n7",
            json!({"kind": "context_pin", "key": "goal", "value": "A cathode above 160 mAh/g"}),
        );
        fold(
            &mut theirs,
            "n8",
            json!({"kind": "tool_state", "tool": "notebook", "state": {"log": ["x"]}}),
        );
        fold(
            &mut theirs,
            "n9",
            json!({"kind": "focus", "material": "NaFePO4"}),
        );

        let text = summarise("sodium", &[], &base, &theirs);
        assert!(
            text.starts_with("Merged branch `sodium`: no conversation."),
            "{text}"
        );
        assert!(
            text.contains("Hypotheses:\n- [open] Na on the Li site keeps the olivine"),
            "{text}"
        );
        assert!(
            !text.contains("Old idea"),
            "an unchanged hypothesis is not news: {text}"
        );
        assert!(
            text.contains("Tasks:\n- [pending → done] Measure capacity"),
            "{text}"
        );
        assert!(text.contains("New materials: NaFePO4."), "{text}");
        assert!(
            !text.contains("LiFePO4,"),
            "a material already known is not new: {text}"
        );
        assert!(
            text.contains("- [structure] NaFePO4 keeps the olivine frame (confidence 0.8)"),
            "{text}"
        );
        assert!(
            text.contains("Links:\n- Volume grows 17 % supports NaFePO4 keeps the olivine frame"),
            "{text}"
        );
        assert!(
            text.contains("Pinned:\n- goal: A cathode above 160 mAh/g"),
            "{text}"
        );
        assert!(text.contains("Tool state changed: notebook."), "{text}");
        assert!(text.contains("Focus: NaFePO4."), "{text}");
    }

    #[test]
    fn conversation_is_counted_quoted_and_lists_are_capped() {
        let state = ResearchState::default();
        let mut nodes = vec![message(NodeKind::User, "What about\nsodium?")];
        nodes.push(message(NodeKind::Assistant, "First answer"));
        for i in 0..7 {
            nodes.push(message(NodeKind::User, &format!("question {i}")));
        }
        nodes.push(message(NodeKind::ToolCall, "call"));
        nodes.push(message(NodeKind::Assistant, &"long ".repeat(200)));
        let text = summarise("b", &nodes, &state, &state);
        assert!(
            text.starts_with("Merged branch `b`: 8 questions, 2 answers, 1 tool call."),
            "{text}"
        );
        assert!(text.contains("It asked:\n- What about sodium?\n"), "{text}");
        assert!(text.contains("- … and 3 more"), "{text}");
        assert!(!text.contains("question 4"), "{text}");
        let last = text.split("Last answer: ").nth(1).expect("the last answer");
        assert!(last.ends_with('…') && last.chars().count() == 321, "{last}");
        assert!(
            !text.contains("Hypotheses") && !text.contains("Tool state"),
            "{text}"
        );
    }
}
